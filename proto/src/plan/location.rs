//! Where in the file a plan error is: [`PlanError`] carries the file, line,
//! column and field, and the helpers here turn serde-saphyr's errors into one
//! (its message without its own location, the key its position belongs to).

/// A plan error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}", location(*.line, *.column), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct PlanError {
    /// File name as given by the user.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The field the error is about, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// serde-saphyr prefixes messages with "error: line N column M: " (and may end
/// them with " at line N, column M"); we print our own location.
pub(super) fn first_line(msg: &str) -> String {
    let msg = msg.lines().next().unwrap_or(msg);
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    let msg = match msg.find(": ") {
        Some(i) if msg[..i].starts_with("line ") => &msg[i + 2..],
        _ => msg,
    };
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The mapping key that the position (`line`, `column`) belongs to: on
/// `    rate: fast` it is `rate`, and in a flow mapping
/// `{ name: a, rate: fast }` the last key that starts at or before the column.
///
/// serde-saphyr points a bad value at the value, but a value of the wrong type
/// (`duration: [1s, 2s]`) or an unknown field at the key itself, so a key
/// starting exactly at the column is the one meant. A `key:` counts only when
/// the colon ends the line or is followed by a space (`target: nginx:80` has one
/// key) and is outside quotes.
pub(super) fn key_on_line(text: &str, line: u64, column: Option<u64>) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let upto = column
        .and_then(|c| usize::try_from(c).ok())
        .and_then(|c| l.char_indices().nth(c.saturating_sub(1)).map(|(i, _)| i))
        .unwrap_or(l.len());
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    // Every `key:` on the line; the last one at or before the column wins, the
    // first one if the column points before any.
    let mut keys = Vec::new();
    // A quote opens a quoted scalar only where a scalar starts (`it's` is plain).
    let (mut quote, mut prev) = (None, None);
    for (i, c) in l.char_indices() {
        let scalar_start = prev.is_none_or(|p| matches!(p, ':' | ',' | '{' | '[' | '-'));
        if quote.is_none() && !c.is_whitespace() {
            prev = Some(c);
        }
        match (quote, c) {
            (None, '\'' | '"') if scalar_start => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, ':') if l[i + 1..].chars().next().is_none_or(char::is_whitespace) => {
                let before = l[..i].trim_end();
                let start = before
                    .char_indices()
                    .rev()
                    .find(|&(_, c)| !is_key(c))
                    .map_or(0, |(p, c)| p + c.len_utf8());
                let key = &before[start..];
                if !key.is_empty() {
                    keys.push((start, key.to_string()));
                }
            }
            _ => {}
        }
    }
    keys.iter()
        .rev()
        .find(|(start, _)| *start <= upto)
        .or(keys.first())
        .map(|(_, k)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_location_and_field() {
        let e = PlanError {
            file: "p.yaml".into(),
            line: Some(3),
            column: Some(7),
            field: Some("rate".into()),
            message: "too fast".into(),
        };
        assert_eq!(e.to_string(), "p.yaml:3:7: field `rate`: too fast");
        let e = PlanError {
            column: None,
            field: None,
            ..e
        };
        assert_eq!(e.to_string(), "p.yaml:3: too fast");
    }

    #[test]
    fn first_line_drops_serde_saphyrs_location() {
        assert_eq!(
            first_line("error: line 3 column 7: unknown field `x`\n  snippet"),
            "unknown field `x`"
        );
        assert_eq!(first_line("bad value at line 3, column 7"), "bad value");
        assert_eq!(first_line("plain"), "plain");
    }

    #[test]
    fn key_on_line_finds_block_and_flow_keys() {
        let text = "name: x\n    rate: fast\n  - { name: a, rate: fast }\n";
        assert_eq!(key_on_line(text, 2, Some(11)).as_deref(), Some("rate"));
        assert_eq!(key_on_line(text, 3, Some(22)).as_deref(), Some("rate"));
        assert_eq!(key_on_line(text, 3, Some(14)).as_deref(), Some("name"));
        // Before any key: the first one.
        assert_eq!(key_on_line(text, 3, Some(1)).as_deref(), Some("name"));
        assert_eq!(key_on_line(text, 9, Some(1)), None);
        assert_eq!(key_on_line(text, 0, Some(1)), None);
        // Colons inside quotes or values are not keys; an apostrophe inside a
        // plain scalar opens no quote.
        let text = "- { name: it's, cni: 'a: b', target: x:80, rate: fast }";
        assert_eq!(key_on_line(text, 1, Some(50)).as_deref(), Some("rate"));
        assert_eq!(key_on_line(text, 1, Some(38)).as_deref(), Some("target"));
        assert_eq!(key_on_line(text, 1, Some(26)).as_deref(), Some("cni"));
    }

    /// The field serde's error is reported against, for a scenario with `fields`.
    fn field_of(fields: &str) -> Option<String> {
        let text = format!(
            "name: x\nscenarios:\n  - {{ name: rr, traffic: tcp-rr, {fields}, path: pod-to-pod-cross-node }}\n"
        );
        super::super::load("f.yaml", &text).unwrap_err().field
    }

    #[test]
    fn flow_mapping_errors_name_their_own_field() {
        // Type errors and unknown fields point at the key itself, value errors at
        // the value: either way the key at or before the column is the field.
        for (fields, field) in [
            ("duration: [1s, 2s]", "duration"),
            ("request_size: [1, lots]", "request_size"),
            ("request_size: { a: 1 }", "request_size"),
            ("request_size: lots", "request_size"),
            ("bogus: 1", "bogus"),
            ("slo: { p99: [1] }", "p99"),
            ("slo: { p99: x }", "p99"),
            ("slo: { p98: 1ms }", "p98"),
            ("server_stall: { at: 1s, for: [1] }", "for"),
            ("target: nginx:80", "target"),
            ("request_size: 'a: b'", "request_size"),
        ] {
            assert_eq!(field_of(fields).as_deref(), Some(field), "{fields}");
        }
    }
}
