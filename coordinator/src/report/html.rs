//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no
//! external fonts, stylesheets or images), readable offline and printable.

use super::doc::{Block, Doc, Tone, split_spread, superscript};
use std::fmt::Write as _;

const CSS: &str = "
body { margin: 0; background: #fff; color: #1f2328;
  font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p { margin: 6px 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 6px 0; }
dt { color: #59636e; } dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { padding: 4px 7px; border-bottom: 1px solid #d8dee4; text-align: left; white-space: nowrap; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #d0d7de; }
tr.warn td { background: #fff8e5; }
tr.bad td { background: #ffebe9; }
.spread { display: block; font-size: 11px; color: #59636e; font-weight: 400; }
sup.flag { color: #9a6700; font-weight: 700; margin-left: 1px; }
ol.notes { margin: 4px 0 8px; padding: 0; list-style: none; font-size: 13px; color: #59636e; }
ol.notes li sup { color: #9a6700; font-weight: 700; margin-right: 4px; }
.charts { display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0; }
figure { margin: 0; padding: 6px; border: 1px solid #d8dee4; border-radius: 6px; background: #fff; }
figcaption { font-size: 12px; color: #59636e; margin: 0 0 4px 4px; }
figure svg { display: block; max-width: 100%; height: auto; }
.error { color: #b42318; }
";

/// Escape text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn marks_html(marks: &[usize]) -> String {
    format!("<sup class=\"flag\">{}</sup>", escape(&superscript(marks)))
}

/// Render the document as a complete HTML page.
pub(crate) fn render(doc: &Doc) -> String {
    let mut out = String::new();
    let title = escape(&doc.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n"
    );
    for b in &doc.blocks {
        match b {
            Block::Heading(level, t) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(t));
            }
            Block::Text(t) => {
                let _ = writeln!(out, "<p>{}</p>", escape(t));
            }
            Block::Fields(fields) => {
                out.push_str("<dl>\n");
                for (k, v) in fields {
                    let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
                }
                out.push_str("</dl>\n");
            }
            Block::Table(t) => {
                out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
                for (i, (name, _)) in t.cols.iter().enumerate() {
                    let class = if t.numeric(i) { " class=\"num\"" } else { "" };
                    let _ = write!(out, "<th{class}>{}</th>", escape(name));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in &t.rows {
                    let class = match r.tone {
                        Tone::Normal => "",
                        Tone::Total => " class=\"total\"",
                        Tone::Warn => " class=\"warn\"",
                        Tone::Bad => " class=\"bad\"",
                    };
                    let _ = write!(out, "<tr{class}>");
                    for (i, cell) in r.cells.iter().enumerate() {
                        let marks = t.marks(r, i);
                        let mark = if marks.is_empty() {
                            String::new()
                        } else {
                            marks_html(marks)
                        };
                        if !t.numeric(i) {
                            let _ = write!(out, "<td>{}{mark}</td>", escape(cell));
                            continue;
                        }
                        let (value, spread) = split_spread(cell);
                        let spread = spread.map_or_else(String::new, |s| {
                            format!("<span class=\"spread\">{}</span>", escape(s))
                        });
                        let _ = write!(
                            out,
                            "<td class=\"num\">{}{mark}{spread}</td>",
                            escape(&value)
                        );
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table></div>\n");
            }
            Block::Notes(notes) => {
                out.push_str("<ol class=\"notes\">\n");
                for (n, text) in notes {
                    let _ = writeln!(
                        out,
                        "<li><sup>{}</sup>{}</li>",
                        escape(&superscript(&[*n])),
                        escape(text)
                    );
                }
                out.push_str("</ol>\n");
            }
            Block::Charts(charts) => {
                out.push_str("<div class=\"charts\">\n");
                for c in charts {
                    let _ = writeln!(out, "<figure><figcaption>{}</figcaption>", escape(&c.title));
                    match &c.svg {
                        Ok(svg) => out.push_str(svg),
                        Err(e) => {
                            let _ = write!(
                                out,
                                "<p class=\"error\">chart not drawn: {}</p>",
                                escape(e)
                            );
                        }
                    }
                    out.push_str("</figure>\n");
                }
                out.push_str("</div>\n");
            }
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::doc::{Row, Table};

    #[test]
    fn escapes_and_aligns() {
        let mut t = Table::new(&["name", "#n"]);
        t.rows.push(Row {
            cells: vec!["<b>&".into(), "2".into()],
            marks: vec![vec![], vec![3]],
            tone: Tone::Warn,
        });
        let html = render(&Doc {
            title: "a<b".into(),
            blocks: vec![Block::Table(t)],
        });
        assert!(html.contains("<title>a&lt;b</title>"));
        assert!(html.contains(
            "<td>&lt;b&gt;&amp;</td><td class=\"num\">2<sup class=\"flag\">³</sup></td>"
        ));
        assert!(html.contains("<tr class=\"warn\">"));
    }
}
