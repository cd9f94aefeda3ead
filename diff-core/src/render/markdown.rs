//! Markdown for pull-request comments and CI summaries (GitHub, GitLab): the
//! verdict first, then data loss, per-table counts, schema changes (dangerous
//! first) and a few example rows per table in collapsible `<details>` blocks.
//! Every value is escaped so that no data can break a table or inject markup,
//! and the whole stays under [`LIMIT`] characters (GitHub's comment limit is
//! 65,536), saying what was cut.

use std::fmt::Write as _;

use crate::report::{Op, Report, TableReport};
use crate::value::Value;

/// Characters the document stays under.
pub const LIMIT: usize = 60_000;
/// Example rows shown per table.
const EXAMPLE_ROWS: usize = 5;

/// Renders the report, with the gate's verdict when there is a gate.
pub fn markdown(r: &Report, verdict: Option<&crate::gate::Verdict>) -> String {
    let s = r.summary();
    let mut out = String::new();
    let headline = match verdict {
        Some(v) if v.passed => format!("✅ {}", cell(&v.headline())),
        Some(v) => format!("❌ {}", cell(&v.headline())),
        None if !r.has_differences() => "✅ identical".to_string(),
        None => "⚠️ differences found".to_string(),
    };
    let _ = writeln!(out, "### pgbranchdiff: {headline}\n");
    let _ = writeln!(out, "`{}` → `{}`\n", code(&r.parent.endpoint), code(&r.child.endpoint));
    let rows = if r.rows_compared {
        format!(
            "{} compared, {} changed: **+{} ~{} −{}** rows",
            plural(s.tables_compared, "table"),
            s.tables_changed,
            s.rows.inserted,
            s.rows.updated,
            s.rows.deleted
        )
    } else {
        "rows not compared".into()
    };
    let schema = if r.schema_compared {
        format!("**{}** ({} dangerous)", plural(s.schema_changes, "schema change"), s.dangerous_schema_changes)
    } else {
        "schema not compared".into()
    };
    let _ = writeln!(out, "{rows}; {schema}\n");

    if let Some(v) = verdict.filter(|v| !v.passed) {
        // The reasons, a bounded few: the heading stays one short line however large the diff.
        out.push_str("#### Why the gate failed\n\n");
        for reason in v.reasons.iter().take(20) {
            let _ = writeln!(out, "- {}", cell(reason));
        }
        if v.reasons.len() > 20 {
            let _ = writeln!(out, "- … and {} more (see the JSON report)", v.reasons.len() - 20);
        }
        out.push('\n');
    }
    out.push_str("#### Data loss\n\n");
    if !r.schema_compared {
        out.push_str("_Dropped objects were not checked (`--data-only`)._\n\n");
    }
    if r.data_loss.is_empty() {
        out.push_str("No data lost.\n\n");
    } else {
        out.push_str("| kind | object | count | accepted |\n|---|---|---:|---|\n");
        for l in &r.data_loss {
            let note = if l.accepted { "yes" } else { "" };
            let _ = writeln!(out, "| `{}` | {} | {} | {note} |", l.kind.id(), cell(&l.object()), l.count);
        }
        out.push('\n');
    }
    if r.filtered {
        out.push_str("_Within the tables and schemas the filters selected._\n\n");
    }

    let changed: Vec<&TableReport> = r.tables.iter().filter(|t| t.summary.counts.any()).collect();
    if !changed.is_empty() {
        out.push_str("#### Rows\n\n| table | inserted | updated | deleted |\n|---|---:|---:|---:|\n");
        for t in &changed {
            let c = t.summary.counts;
            let _ = writeln!(out, "| {} | {} | {} | {} |", cell(&t.info.qualified()), c.inserted, c.updated, c.deleted);
        }
        out.push('\n');
    }
    for note in r.tables.iter().filter_map(|t| t.info.converted_note()) {
        let _ = writeln!(out, "_{}_\n", cell(&note));
    }

    let mut roots: Vec<_> = r.schema_changes.iter().filter(|c| c.cause.is_none()).collect();
    roots.sort_by_key(|c| !c.is_dangerous());
    if !roots.is_empty() {
        out.push_str("#### Schema changes\n\n| change | object | details | danger |\n|---|---|---|---|\n");
        for c in roots {
            let danger: Vec<String> = c.danger.iter().map(|d| format!("`{}`", d.label())).collect();
            // What the text report says of it: old → new type, a renamed column's old name, the note.
            let mut details = super::text::details(c);
            details.extend(c.note.clone());
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} |",
                c.op.label(),
                cell(&c.kind),
                cell(&c.object),
                cell(&details.join("; ")),
                danger.join(" ")
            );
        }
        out.push('\n');
    }

    // Example rows last: they are what gets cut when the document is too long.
    let mut cut = 0;
    for (i, t) in changed.iter().enumerate() {
        let block = examples(t);
        if out.len() + block.len() + 200 > LIMIT {
            cut = changed.len() - i;
            break;
        }
        out.push_str(&block);
    }
    if cut > 0 {
        let _ = writeln!(out, "_Example rows of {cut} more tables cut to stay under {LIMIT} characters._\n");
    }
    if let Some(v) = verdict {
        let _ = writeln!(out, "{}", cell(&v.headline()));
    }
    truncate(out)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// A table's first rows, collapsed.
fn examples(t: &TableReport) -> String {
    let cols = &t.info.columns;
    let mut s = format!(
        "<details><summary>{} — first {} of {} changed rows</summary>\n\n| op | {} |\n|---|{}\n",
        html(&t.info.qualified()),
        t.rows.len().min(EXAMPLE_ROWS),
        t.summary.counts.inserted + t.summary.counts.updated + t.summary.counts.deleted,
        cols.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "),
        "---|".repeat(cols.len())
    );
    for row in t.rows.iter().take(EXAMPLE_ROWS) {
        let (sign, vals) = match row.op {
            Op::Insert => ("+", row.after.as_deref()),
            Op::Delete => ("−", row.before.as_deref()),
            Op::Update => ("~", row.after.as_deref()),
        };
        let shown: Vec<String> = (0..cols.len())
            .map(|i| {
                let v = vals.and_then(|v| v.get(i)).unwrap_or(&Value::Null);
                match (row.op, row.before.as_deref().and_then(|b| b.get(i))) {
                    (Op::Update, Some(old)) if row.changed.contains(&i) => {
                        format!("{} → {}", value(old), value(v))
                    }
                    _ => value(v),
                }
            })
            .collect();
        let _ = writeln!(s, "| {sign} | {} |", shown.join(" | "));
    }
    s.push_str("\n</details>\n\n");
    s
}

/// A value in a table cell: short, escaped, NULL marked.
fn value(v: &Value) -> String {
    match v.to_text() {
        None => "_NULL_".into(),
        // An empty code span renders as nothing: show the empty string as SQL writes it.
        Some(t) if t.is_empty() => "`''`".into(),
        Some(t) => {
            let short: String = t.chars().take(80).collect();
            let more = if t.chars().count() > 80 { "…" } else { "" };
            format!("`{}`{more}", code(&short))
        }
    }
}

/// Text inside a table cell: no row or cell break, no markup, no HTML, no
/// live `@mention` or link (a word joiner after `@` and in `://`, `www.`).
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            c if super::text::hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    unlinked(&out)
}

/// `@name`, `https://…` and `www.…` break with an invisible word joiner, so GitHub links nothing.
fn unlinked(s: &str) -> String {
    s.replace('@', "@\u{2060}").replace("://", ":\u{2060}//").replace("www.", "www\u{2060}.")
}

/// Text inside a code span within a table cell: backticks and pipes cannot end it.
fn code(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '`' => "ˋ".to_string(),
            '|' => "\\|".to_string(),
            '\n' | '\r' => " ".to_string(),
            c if super::text::hidden(c) => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Text inside HTML (the `<summary>`).
fn html(s: &str) -> String {
    let escaped: String = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .chars()
        .map(|c| if super::text::hidden(c) { format!("\\u{{{:x}}}", c as u32) } else { c.to_string() })
        .collect();
    unlinked(&escaped)
}

/// The hard cap, should the sections before the examples alone be too long.
fn truncate(mut out: String) -> String {
    if out.len() <= LIMIT {
        return out;
    }
    let mut end = LIMIT - 200;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    // Cut at a line end, so no table row is left half-written.
    let end = out[..end].rfind('\n').unwrap_or(end);
    out.truncate(end);
    let _ =
        write!(out, "\n\n_The report was cut to stay under {LIMIT} characters; see the JSON report for all of it._\n");
    out
}

#[cfg(test)]
mod escaping {
    use super::*;

    #[test]
    fn no_mentions_links_or_hidden_characters() {
        let c = cell("@octocat https://evil.example www.x.org a\u{202e}b");
        assert!(!c.contains("@o") && !c.contains("https://") && !c.contains("www."), "{c}");
        assert!(c.contains("\\u{202e}") && !c.contains('\u{202e}'), "{c}");
        let h = html("team @org/admins\u{1b}[31m");
        assert!(!h.contains("@org") && h.contains("\\u{1b}") && !h.contains('\u{1b}'), "{h}");
        assert_eq!(value(&Value::Text(String::new())), "`''`");
    }
}
