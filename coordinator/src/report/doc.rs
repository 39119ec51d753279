//! A small document model shared by the Markdown and HTML renderers, so both
//! files carry the same tables, notes and numbers. Charts are HTML-only.

use std::fmt::Write as _;

/// A report: a title and blocks in order.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    /// Page title (first heading).
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

/// One piece of content.
#[derive(Debug)]
pub(crate) enum Block {
    /// Section heading, level 2 or 3.
    Heading(u8, String),
    /// A paragraph of plain text.
    Text(String),
    /// Label / value pairs.
    Fields(Vec<(String, String)>),
    /// A table.
    Table(Table),
    /// Numbered notes (footnotes of the table above).
    Notes(Vec<(usize, String)>),
    /// Charts side by side (HTML only; Markdown points to report.html).
    Charts(Vec<Chart>),
}

/// A rendered chart.
#[derive(Debug)]
pub(crate) struct Chart {
    /// Caption.
    pub title: String,
    /// Inline SVG, or why it could not be drawn.
    pub svg: Result<String, String>,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text, left-aligned.
    Text,
    /// A measured number: right-aligned, may carry note marks.
    Measure,
    /// A count that flags do not qualify (e.g. repetitions): right-aligned.
    Count,
}

/// A table; numeric columns are right-aligned.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// Column headings and kinds.
    pub cols: Vec<(String, Kind)>,
    /// Rows.
    pub rows: Vec<Row>,
}

/// How a row is highlighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Tone {
    /// Plain.
    #[default]
    Normal,
    /// Summary row (bold).
    Total,
    /// Numbers carry validity flags (partial, stalls).
    Warn,
    /// Nothing usable measured.
    Bad,
}

/// One table row.
#[derive(Debug, Default)]
pub(crate) struct Row {
    /// Cells, one per column.
    pub cells: Vec<String>,
    /// Per cell, the notes that qualify its number (shown on measures only).
    pub marks: Vec<Vec<usize>>,
    /// Highlight.
    pub tone: Tone,
}

/// Text shown for a number that was not measured (null in result.json).
pub(crate) const MISSING: &str = "-";

impl Table {
    /// A table with these columns: a `#` prefix marks a [`Kind::Measure`]
    /// column, `=` a [`Kind::Count`], none [`Kind::Text`].
    pub fn new(cols: &[&str]) -> Table {
        Table {
            cols: cols
                .iter()
                .map(|c| {
                    if let Some(name) = c.strip_prefix('#') {
                        (name.to_string(), Kind::Measure)
                    } else if let Some(name) = c.strip_prefix('=') {
                        (name.to_string(), Kind::Count)
                    } else {
                        (c.to_string(), Kind::Text)
                    }
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Append a plain row.
    pub fn push(&mut self, cells: Vec<String>) {
        self.rows.push(Row {
            cells,
            ..Row::default()
        });
    }

    /// Whether column `col` is right-aligned.
    pub fn numeric(&self, col: usize) -> bool {
        self.cols.get(col).is_some_and(|c| c.1 != Kind::Text)
    }

    /// The note marks shown on cell `col` of `row`: measures only, never on "-".
    pub fn marks<'a>(&self, row: &'a Row, col: usize) -> &'a [usize] {
        let text = row.cells.get(col).map_or(MISSING, String::as_str);
        if self.cols.get(col).is_some_and(|c| c.1 == Kind::Measure) && text != MISSING {
            row.marks.get(col).map_or(&[], Vec::as_slice)
        } else {
            &[]
        }
    }
}

/// Split a cell like `21.39 [20.50..22.27] x0.74` into the value with what
/// follows the spread (`21.39 x0.74`) and the spread (`[20.50..22.27]`), so HTML
/// can show the spread on a line of its own.
pub(crate) fn split_spread(text: &str) -> (String, Option<&str>) {
    let Some(open) = text.find(" [") else {
        return (text.to_string(), None);
    };
    let Some(len) = text[open..].find(']') else {
        return (text.to_string(), None);
    };
    let close = open + len + 1;
    (
        format!("{}{}", &text[..open], &text[close..]),
        Some(&text[open + 1..close]),
    )
}

/// Note numbers as superscript digits: 1, 12 -> "¹,¹²".
pub(crate) fn superscript(marks: &[usize]) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    marks
        .iter()
        .map(|m| {
            m.to_string()
                .bytes()
                .map(|b| DIGITS[usize::from(b - b'0')])
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Doc {
    /// Render as GitHub-flavoured Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n", self.title);
        for b in &self.blocks {
            out.push('\n');
            match b {
                Block::Heading(level, t) => {
                    let _ = writeln!(out, "{} {t}", "#".repeat(usize::from(*level)));
                }
                Block::Text(t) => {
                    let _ = writeln!(out, "{t}");
                }
                Block::Fields(fields) => {
                    for (k, v) in fields {
                        let _ = writeln!(out, "- **{k}**: {v}");
                    }
                }
                Block::Table(t) => {
                    let heads: Vec<&str> = t.cols.iter().map(|c| c.0.as_str()).collect();
                    let _ = writeln!(out, "| {} |", heads.join(" | "));
                    let rule: Vec<&str> = t
                        .cols
                        .iter()
                        .enumerate()
                        .map(|(i, _)| if t.numeric(i) { "---:" } else { "---" })
                        .collect();
                    let _ = writeln!(out, "|{}|", rule.join("|"));
                    for r in &t.rows {
                        let cells: Vec<String> = r
                            .cells
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let mut s = md_escape(c);
                                let marks = t.marks(r, i);
                                if !marks.is_empty() {
                                    s.push_str(&superscript(marks));
                                }
                                if r.tone == Tone::Total && !s.is_empty() && s != MISSING {
                                    s = format!("**{s}**");
                                }
                                s
                            })
                            .collect();
                        let _ = writeln!(out, "| {} |", cells.join(" | "));
                    }
                }
                Block::Notes(notes) => {
                    for (n, text) in notes {
                        let _ = writeln!(out, "{} {text}  ", superscript(&[*n]));
                    }
                }
                Block::Charts(charts) => {
                    let names: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
                    let _ = writeln!(out, "_Charts in report.html: {}._", names.join("; "));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_marks_numbers_not_dashes() {
        let mut t = Table::new(&["name", "#value", "#other", "=n"]);
        t.rows.push(Row {
            cells: vec!["a|b".into(), "1.5".into(), MISSING.into(), "2".into()],
            marks: vec![vec![1], vec![1, 12], vec![1], vec![1]],
            tone: Tone::Warn,
        });
        let doc = Doc {
            title: "T".into(),
            blocks: vec![Block::Table(t), Block::Notes(vec![(1, "partial".into())])],
        };
        let md = doc.markdown();
        assert!(md.contains("| a\\|b | 1.5¹,¹² | - | 2 |"), "{md}");
        assert!(md.contains("|---|---:|---:|---:|"), "{md}");
        assert!(md.contains("¹ partial"), "{md}");
        assert_eq!(
            split_spread("21.39 [20.50..22.27] x0.74 ≈"),
            ("21.39 x0.74 ≈".to_string(), Some("[20.50..22.27]"))
        );
        assert_eq!(split_spread("-"), ("-".to_string(), None));
    }
}
