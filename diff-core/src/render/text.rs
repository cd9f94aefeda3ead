//! Text for people: schema changes (dangerous first), a summary table, then
//! each changed table's rows; updates show only the changed columns, long
//! values as a compact inline diff.

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};
use similar::{ChangeTag, TextDiff};

use crate::loss::LossKind;
use crate::plan::KeySource;
use crate::report::{Op, Report, RowChange, TableReport};
use crate::schema::{ChangeOp, SchemaChange};
use crate::value::Value;

/// How text is rendered.
#[derive(Debug, Clone)]
pub struct TextOptions {
    /// ANSI colours.
    pub color: bool,
    /// Changed rows shown per table (the rest are counted).
    pub max_rows: usize,
    /// How each table was read and why, and the bytes received from each side.
    pub verbose: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions { color: false, max_rows: 20, verbose: false }
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// Renders the report as text. Every value, name and message from the
/// databases is escaped ([`escape`]): no value can forge a line or send the
/// terminal a control sequence.
///
/// ```no_run
/// # fn f(report: &diff_core::Report) {
/// use diff_core::render::{text, TextOptions};
/// print!("{}", text(report, &TextOptions { color: false, max_rows: 5, verbose: false }));
/// # }
/// ```
pub fn text(r: &Report, opts: &TextOptions) -> String {
    let paint = Paint(opts.color);
    let mut out = String::new();
    let _ = writeln!(out, "parent: {}\nchild:  {}", escape(&r.parent.endpoint), escape(&r.child.endpoint));
    let summary = r.summary();
    out.push_str(&loss_section(&r.data_loss, &r.tables, &paint));
    if !r.schema_compared {
        out.push_str("  (dropped objects not checked: --data-only)\n");
    }
    if r.filtered {
        out.push_str("  (within the tables and schemas the filters selected)\n");
    }
    if !r.schema_changes.is_empty() {
        out.push_str(&schema_section(&r.schema_changes, &r.data_loss, &summary, &paint));
    }
    let changed: Vec<&TableReport> = r.tables.iter().filter(|t| t.summary.counts.any()).collect();
    if !changed.is_empty() {
        out.push('\n');
        out.push_str(&summary_table(&changed, opts.color));
        out.push('\n');
        for t in &changed {
            out.push_str(&table_rows(t, opts, &paint));
        }
    }
    let notes: Vec<String> = r.tables.iter().filter_map(|t| t.info.converted_note()).collect();
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "{}", paint.dim(&escape(&n)));
        }
    }
    let rows = if r.rows_compared {
        let t = summary.rows;
        format!(
            "{} table{} compared, {} with row changes: {} {} {}",
            summary.tables_compared,
            if summary.tables_compared == 1 { "" } else { "s" },
            summary.tables_changed,
            paint.green(&format!("+{}", t.inserted)),
            paint.yellow(&format!("~{}", t.updated)),
            paint.red(&format!("-{}", t.deleted)),
        )
    } else {
        "rows not compared (--schema-only)".to_string()
    };
    let schema = if r.schema_compared { schema_count(&summary) } else { "schema not compared (--data-only)".into() };
    let identical = if !r.has_differences() && r.rows_compared && r.schema_compared { " (identical)" } else { "" };
    let _ = writeln!(out, "\n{rows}; {schema}{identical}");
    if opts.verbose {
        for line in how_read(r).lines() {
            let _ = writeln!(out, "{}", paint.dim(&escape(line)));
        }
    }
    out
}

/// `--verbose`: per table how its rows were read and why, then the bytes received.
fn how_read(r: &Report) -> String {
    let mut out = String::new();
    for t in r.tables.iter().filter(|_| r.rows_compared) {
        let s = &t.summary;
        let strategy = serde_json::to_value(s.strategy).ok().and_then(|v| v.as_str().map(str::to_string));
        let _ = write!(out, "{}: {}", t.info.qualified(), strategy.unwrap_or_default());
        if !s.reason.is_empty() {
            let _ = write!(out, " ({})", s.reason);
        }
        if let Some(b) = s.blocks {
            let _ = write!(
                out,
                ", {} of {} blocks ({}) differed, hashed on {} connection(s) a side",
                b.differing,
                b.count,
                b.by.as_str().replace('_', " "),
                b.parts
            );
        }
        if let Some(f) = &s.fallback {
            let _ = write!(out, "; fallback: {f}");
        }
        let _ = writeln!(out, "; rows read {} + {}", s.parent.rows, s.child.rows);
    }
    if let Some(b) = r.received {
        let _ = writeln!(out, "bytes received: parent {}, child {}", b.parent, b.child);
    }
    out
}

/// What was lost, first: the question a reviewer asks before any other.
fn loss_section(losses: &[crate::report::DataLoss], tables: &[TableReport], paint: &Paint) -> String {
    if losses.is_empty() {
        return "\nNo data lost.\n".into();
    }
    let accepted = losses.iter().filter(|l| l.accepted).count();
    let mut head = format!("Data loss ({}", losses.len());
    if accepted > 0 {
        let _ = write!(head, ", {accepted} accepted");
    }
    head.push(')');
    let mut out = format!("\n{}\n", paint.bold(&head));
    for l in losses {
        let unit = match (l.kind, l.count == 1) {
            (LossKind::DroppedSequence, _) => "last value",
            (LossKind::DroppedLargeObject | LossKind::OverwrittenLargeObject, _) => "large object",
            (
                LossKind::DroppedTable
                | LossKind::DroppedMaterializedView
                | LossKind::DroppedSchema
                | LossKind::EmptiedTable
                | LossKind::DeletedRows,
                one,
            ) => {
                if one {
                    "row"
                } else {
                    "rows"
                }
            }
            (_, true) => "value",
            _ => "values",
        };
        let mut line = format!("  {:<26} {}  ", paint.red(l.kind.id()), escape(&l.object()));
        if l.kind == LossKind::DroppedSequence {
            let _ = write!(line, "{unit} {}", l.count);
        } else {
            let _ = write!(line, "{} {unit}", l.count);
        }
        if let Some(b) = l.bytes {
            let _ = write!(line, " ({})", human_bytes(b));
        }
        if !l.examples.is_empty() {
            let names = tables
                .iter()
                .find(|t| t.info.schema == l.schema && Some(&t.info.name) == l.table.as_ref())
                .map(|t| t.info.key.clone())
                .unwrap_or_default();
            let keys: Vec<String> = l
                .examples
                .iter()
                .map(|k| {
                    names
                        .iter()
                        .zip(k)
                        .map(|(n, v)| format!("{}={}", escape(n), show(v, 30)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let _ = write!(line, "  {}", paint.dim(&format!("e.g. {}", keys.join(", "))));
        }
        if l.accepted {
            let _ = write!(line, "  {}", paint.dim("(accepted)"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// "N schema changes (+M consequences)": the footer's words for the header's numbers.
fn schema_count(s: &crate::report::Summary) -> String {
    let mut text = format!("{} schema change{}", s.schema_changes, if s.schema_changes == 1 { "" } else { "s" });
    if s.consequences > 0 {
        let _ = write!(text, " (+{} consequences)", s.consequences);
    }
    text
}

/// Root changes (dangerous first), each followed by the changes it caused.
fn schema_section(
    changes: &[SchemaChange],
    losses: &[crate::report::DataLoss],
    summary: &crate::report::Summary,
    paint: &Paint,
) -> String {
    let roots: Vec<&SchemaChange> = changes.iter().filter(|c| c.cause.is_none()).collect();
    let mut consequences = String::new();
    if summary.consequences > 0 {
        consequences = format!(" (+{} consequences)", summary.consequences);
    }
    let mut out = format!("\n{}\n", paint.bold(&format!("Schema changes: {}{consequences}", summary.schema_changes)));
    let mut shown = 0;
    for root in &roots {
        let mut line = schema_line(root, paint, "  ");
        // A drop says what it destroyed (the data-loss section has the details).
        if let Some(l) = losses.iter().find(|l| l.kind.is_dropped_object() && l.object() == root.object) {
            let lost = format!(
                "  {} lost",
                if l.kind == LossKind::DroppedSequence {
                    format!("last value {}", l.count)
                } else {
                    format!("{} {}", l.count, if l.column.is_some() { "values" } else { "rows" })
                }
            );
            if let Some(end) = line.find('\n') {
                line.insert_str(end, &paint.red(&lost));
            }
        }
        out.push_str(&line);
        shown += 1;
        for c in changes.iter().filter(|c| c.cause.as_deref() == Some(root.object.as_str())) {
            out.push_str(&schema_line(c, paint, "      ↳ "));
            shown += 1;
        }
    }
    // Consequences whose cause was filtered out still appear.
    if shown < changes.len() {
        for c in changes.iter().filter(|c| c.cause.as_ref().is_some_and(|k| !roots.iter().any(|r| &r.object == k))) {
            out.push_str(&schema_line(c, paint, "  "));
        }
    }
    out
}

fn schema_line(c: &SchemaChange, paint: &Paint, indent: &str) -> String {
    let op = match c.op {
        ChangeOp::Added => paint.green("added  "),
        ChangeOp::Dropped => paint.red("dropped"),
        ChangeOp::Altered => paint.yellow("altered"),
        ChangeOp::Renamed => paint.yellow("renamed"),
    };
    let details = details(c);
    let mut diffs = String::new();
    for (b, a) in long_changes(c) {
        diffs.push_str(&unified(b, a, indent, paint));
    }
    if let Some(def) = whole_definition(c) {
        let pad = " ".repeat(indent.chars().count() + 4);
        for line in pretty(def).lines() {
            let _ = writeln!(diffs, "{pad}{}", paint.dim(&escape(line)));
        }
    }
    let danger: Vec<&str> = c.danger.iter().map(|d| d.label()).collect();
    let mut line = format!("{indent}{op} {:<8} {}", c.kind, escape(&c.object));
    if !details.is_empty() {
        let _ = write!(line, "  ({})", escape(&details.join(", ")));
    }
    if !danger.is_empty() {
        let _ = write!(line, "  {}", paint.red(&format!("[{}]", danger.join(", "))));
    }
    if let Some(cause) = &c.cause {
        let _ = write!(line, "  {}", paint.dim(&format!("because of {}", escape(cause))));
    }
    if let Some(note) = &c.note {
        let _ = write!(line, "  {}", paint.dim(&format!("({})", escape(note))));
    }
    line.push('\n');
    line.push_str(&diffs);
    line
}

/// How an attribute an object lacks reads: no ACL means the owner's default privileges, not none.
fn absent(attr: &str) -> &'static str {
    if attr.ends_with("privileges") {
        "(defaults)"
    } else {
        "(none)"
    }
}

/// A change's attributes in short (`type integer → bigint`, `name old → new`); long or
/// multi-line values only say that they changed (text shows them as a diff). Text and
/// Markdown both use it, so they say the same.
pub(crate) fn details(c: &SchemaChange) -> Vec<String> {
    let mut details = vec![];
    let keys: std::collections::BTreeSet<&String> = c.before.keys().chain(c.after.keys()).collect();
    // An added or dropped object is named by what a reviewer needs, not all it has.
    let whole = matches!(c.op, ChangeOp::Added | ChangeOp::Dropped);
    for k in keys.into_iter().filter(|k| !whole || WHOLE_OBJECT_ATTRS.contains(&k.as_str())) {
        match (c.before.get(k), c.after.get(k)) {
            (Some(b), Some(a)) if is_long(b, a) => details.push(format!("{k} changed")),
            (Some(b), Some(a)) => details.push(format!("{k} {b} → {a}")),
            (Some(b), None) if !whole => details.push(format!("{k} {b} → {}", absent(k))),
            (None, Some(a)) if !whole => details.push(format!("{k} {} → {a}", absent(k))),
            // A view's or function's definition reads as lines under the change, not escaped on one.
            (Some(v), None) | (None, Some(v)) if v.contains('\n') => {
                details.push(format!("{k} ({} lines)", v.trim().lines().count()))
            }
            (Some(v), None) | (None, Some(v)) => details.push(format!("{k} {v}")),
            (None, None) => {}
        }
    }
    details
}

/// Long or multi-line definitions read as a unified diff under the line.
fn is_long(b: &str, a: &str) -> bool {
    b.contains('\n') || a.contains('\n') || b.len() + a.len() > 120
}

/// The multi-line definition of an added or dropped object, shown under its line.
fn whole_definition(c: &SchemaChange) -> Option<&String> {
    let side = match c.op {
        ChangeOp::Added => &c.after,
        ChangeOp::Dropped => &c.before,
        _ => return None,
    };
    side.get("definition").filter(|d| d.contains('\n'))
}

/// The (before, after) of the attributes [`details`] only names.
fn long_changes(c: &SchemaChange) -> Vec<(&String, &String)> {
    if matches!(c.op, ChangeOp::Added | ChangeOp::Dropped) {
        return vec![];
    }
    c.before.iter().filter_map(|(k, b)| c.after.get(k).map(|a| (b, a))).filter(|(b, a)| is_long(b, a)).collect()
}

/// What an added or dropped object shows: its type, nullability or definition.
const WHOLE_OBJECT_ATTRS: &[&str] = &["type", "not_null", "definition"];

/// A definition's change as a unified diff (`similar`), indented under its change.
fn unified(before: &str, after: &str, indent: &str, paint: &Paint) -> String {
    let pad = " ".repeat(indent.chars().count() + 4);
    let (before, after) = (pretty(before), pretty(after));
    let diff = TextDiff::from_lines(&before, &after);
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        for change in hunk.iter_changes() {
            let text = escape(change.value().trim_end_matches('\n')).into_owned();
            let line = match change.tag() {
                ChangeTag::Delete => paint.red(&format!("- {text}")),
                ChangeTag::Insert => paint.green(&format!("+ {text}")),
                ChangeTag::Equal => paint.dim(&format!("  {text}")),
            };
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    out
}

/// One-line definitions broken at their clauses, so a diff shows which clause changed.
fn pretty(s: &str) -> String {
    if s.contains('\n') {
        return s.trim().to_string() + "\n";
    }
    let mut out = String::with_capacity(s.len() + 16);
    for word in s.split(' ') {
        if matches!(word, "FROM" | "WHERE" | "GROUP" | "ORDER" | "HAVING" | "JOIN" | "LEFT" | "UNION" | "CHECK") {
            out.push('\n');
        } else if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out + "\n"
}

fn summary_table(tables: &[&TableReport], color: bool) -> String {
    let mut t = Table::new();
    t.load_preset_condensed(color);
    t.set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(vec!["table", "key", "inserted", "updated", "deleted"]);
    for tr in tables {
        let c = tr.summary.counts;
        t.add_row(vec![
            Cell::new(escape(&tr.info.qualified())),
            Cell::new(match tr.info.key_source {
                KeySource::WholeRow => "(whole row)".to_string(),
                _ => escape(&tr.info.key.join(", ")).into_owned(),
            }),
            Cell::new(format!("+{}", c.inserted)).set_alignment(CellAlignment::Right),
            Cell::new(format!("~{}", c.updated)).set_alignment(CellAlignment::Right),
            Cell::new(format!("-{}", c.deleted)).set_alignment(CellAlignment::Right),
        ]);
    }
    format!("{t}\n")
}

trait Preset {
    fn load_preset_condensed(&mut self, color: bool);
}

impl Preset for Table {
    fn load_preset_condensed(&mut self, color: bool) {
        self.load_style(UTF8_FULL_CONDENSED);
        if !color {
            self.force_no_tty();
        }
    }
}

fn table_rows(t: &TableReport, opts: &TextOptions, paint: &Paint) -> String {
    let c = t.summary.counts;
    let mut out = format!(
        "\n{}  {} {} {}\n",
        paint.bold(&escape(&t.info.qualified())),
        paint.green(&format!("+{}", c.inserted)),
        paint.yellow(&format!("~{}", c.updated)),
        paint.red(&format!("-{}", c.deleted))
    );
    for r in t.rows.iter().take(opts.max_rows) {
        out.push_str(&row_line(t, r, paint));
    }
    let hidden = (t.rows.len().saturating_sub(opts.max_rows)) as u64 + t.omitted;
    if hidden > 0 {
        let _ = writeln!(out, "  {}", paint.dim(&format!("… {hidden} more changed rows (--max-rows)")));
    }
    out
}

fn row_line(t: &TableReport, r: &RowChange, paint: &Paint) -> String {
    let key: Vec<String> =
        t.info.key.iter().zip(&r.key).map(|(k, v)| format!("{}={}", escape(k), show(v, 40))).collect();
    let key = key.join(" ");
    let cols = &t.info.columns;
    let nkey = t.info.key.len();
    match r.op {
        Op::Insert | Op::Delete => {
            let vals = if r.op == Op::Insert { r.after.as_ref() } else { r.before.as_ref() };
            let rest: Vec<String> = vals
                .map(|v| cols.iter().zip(v).skip(nkey).map(|(c, v)| format!("{}={}", escape(c), show(v, 60))).collect())
                .unwrap_or_default();
            let (sign, k) = if r.op == Op::Insert {
                (paint.green("+"), paint.green(&key))
            } else {
                (paint.red("-"), paint.red(&key))
            };
            if rest.is_empty() {
                format!("  {sign} {k}\n")
            } else {
                format!("  {sign} {k}  {}\n", paint.dim(&rest.join(", ")))
            }
        }
        Op::Update => {
            let mut s = format!("  {} {}\n", paint.yellow("~"), paint.yellow(&key));
            let (b, a) = (r.before.as_deref().unwrap_or(&[]), r.after.as_deref().unwrap_or(&[]));
            for &i in &r.changed {
                let (old, new) = (b.get(i).unwrap_or(&Value::Null), a.get(i).unwrap_or(&Value::Null));
                let _ = writeln!(s, "      {}: {}", escape(&cols[i]), change(old, new, paint));
            }
            s
        }
    }
}

/// Control characters (C0, DEL, C1) as visible escapes: `\n`, `\t`, `\r`,
/// else `\u{…}`, so a value cannot break a line or steer the terminal.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters that would not show as themselves: control characters, and the
/// bidirectional controls (U+202A–U+202E, U+2066–U+2069, marks) that reorder
/// what a reader sees (CVE-2021-42574, "Trojan Source"), and invisible joiners.
pub(crate) fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
}

/// A value as shown in text: strings quoted, long ones shortened, control characters escaped.
fn show(v: &Value, max: usize) -> String {
    let Some(text) = v.to_text() else { return "NULL".into() };
    let quoted = matches!(v, Value::Text(_));
    let n = text.chars().count();
    let body = if n > max {
        let head: String = text.chars().take(max).collect();
        format!("{}…({n} chars)", escape(&head))
    } else {
        escape(&text).into_owned()
    };
    if quoted {
        format!("'{}'", body.replace('\'', "''"))
    } else {
        body
    }
}

/// Context kept around the changed part of a long value.
const CONTEXT: usize = 24;
/// Beyond this, the changed middle is not diffed character by character.
const INLINE_LIMIT: usize = 4000;

fn change(old: &Value, new: &Value, paint: &Paint) -> String {
    if let (Value::Bytes(o), Value::Bytes(n)) = (old, new) {
        if o.len() + n.len() > 30 {
            return format!("\\x{}", hex_diff(o, n, paint));
        }
    }
    // JSON reads best whole: an inline diff only when it is long.
    let limit = if matches!(old, Value::Json(_)) { 300 } else { 60 };
    match (old.to_text(), new.to_text()) {
        (Some(o), Some(n)) if o.chars().count() + n.chars().count() > limit => inline_diff(&o, &n, paint, 1),
        _ => format!("{} → {}", paint.red(&show(old, 80)), paint.green(&show(new, 80))),
    }
}

/// bytea: the inline diff of the hex digits, cut at whole bytes and counted in bytes.
fn hex_diff(old: &[u8], new: &[u8], paint: &Paint) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    inline_diff(&hex(old), &hex(new), paint, 2)
}

/// Long values: common prefix and suffix are skipped (a one-byte change in a
/// 5 MB value costs one linear scan), the middle is diffed with `similar`.
/// `unit` characters make one counted byte (2 for the hex digits of bytea),
/// and the skipped parts are cut at whole units.
fn inline_diff(old: &str, new: &str, paint: &Paint, unit: usize) -> String {
    let prefix = common_prefix(old, new) / unit * unit;
    let suffix = common_suffix(&old[prefix..], &new[prefix..]) / unit * unit;
    let (om, nm) = (&old[prefix..old.len() - suffix], &new[prefix..new.len() - suffix]);
    let mut s = String::new();
    let head = &old[..prefix];
    let head_ctx = tail_chars(head, CONTEXT / unit * unit);
    if head_ctx.len() < head.len() {
        s.push_str(&paint.dim(&format!("…({} bytes same)…", (head.len() - head_ctx.len()) / unit)));
    }
    s.push_str(&escape(head_ctx));
    if om.len() + nm.len() <= INLINE_LIMIT {
        // Runs of one tag are marked once, not character by character.
        let mut runs: Vec<(ChangeTag, String)> = vec![];
        for ch in TextDiff::from_chars(om, nm).iter_all_changes() {
            match runs.last_mut() {
                Some((tag, text)) if *tag == ch.tag() => text.push_str(ch.value()),
                _ => runs.push((ch.tag(), ch.value().to_string())),
            }
        }
        for (tag, v) in runs {
            match tag {
                ChangeTag::Equal => s.push_str(&escape(&v)),
                ChangeTag::Delete => s.push_str(&mark(paint, &escape(&v), true)),
                ChangeTag::Insert => s.push_str(&mark(paint, &escape(&v), false)),
            }
        }
    } else {
        let shown = |m: &str| format!("{}…({} bytes)", escape(head_chars(m, 40 / unit * unit)), m.len() / unit);
        s.push_str(&mark(paint, &shown(om), true));
        s.push_str(&mark(paint, &shown(nm), false));
    }
    let tail = &old[old.len() - suffix..];
    let tail_ctx = head_chars(tail, CONTEXT / unit * unit);
    s.push_str(&escape(tail_ctx));
    if tail_ctx.len() < tail.len() {
        s.push_str(&paint.dim(&format!("…({} bytes same)…", (tail.len() - tail_ctx.len()) / unit)));
    }
    s
}

fn mark(paint: &Paint, v: &str, deleted: bool) -> String {
    match (paint.0, deleted) {
        (true, true) => paint.wrap("31;4", v),
        (true, false) => paint.wrap("32;4", v),
        (false, true) => format!("[-{v}-]"),
        (false, false) => format!("{{+{v}+}}"),
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    (0..=n).rev().find(|&i| a.is_char_boundary(i) && b.is_char_boundary(i)).unwrap_or(0)
}

fn common_suffix(a: &str, b: &str) -> usize {
    let n = a.bytes().rev().zip(b.bytes().rev()).take_while(|(x, y)| x == y).count();
    (0..=n).rev().find(|&i| a.is_char_boundary(a.len() - i) && b.is_char_boundary(b.len() - i)).unwrap_or(0)
}

fn head_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn tail_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    match s.char_indices().nth(count - n) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_views_definition_reads_as_lines() {
        let mut c = SchemaChange::new("view", ChangeOp::Dropped, "public.v".into());
        c.before.insert("definition".into(), " SELECT t.a\n   FROM t\n  WHERE t.a > 1;".into());
        let line = schema_line(&c, &Paint(false), "  ");
        assert!(line.contains("(definition (3 lines))"), "{line}");
        assert!(!line.contains("\\n"), "no escaped newline: {line}");
        assert!(line.lines().any(|l| l.trim() == "FROM t"), "{line}");
    }

    #[test]
    fn one_byte_in_a_long_value() {
        let old = "a".repeat(5_000_000) + "X" + &"b".repeat(1000);
        let new = "a".repeat(5_000_000) + "Y" + &"b".repeat(1000);
        let s = inline_diff(&old, &new, &Paint(false), 1);
        assert!(s.len() < 200, "{s}");
        assert!(s.contains("[-X-]{+Y+}"), "{s}");
        assert!(s.contains("(4999976 bytes same)"), "{s}");
    }

    #[test]
    fn bytea_counts_bytes() {
        // A change at byte 15,000 of 30,000: 15,000 - 12 context bytes are skipped before it.
        let old = vec![7u8; 30_000];
        let mut new = old.clone();
        new[15_000] = 8;
        let s = hex_diff(&old, &new, &Paint(false));
        assert!(s.contains("(14988 bytes same)"), "{s}");
        assert!(s.contains("[-7-]{+8+}"), "{s}");
        assert!(s.ends_with("(14987 bytes same)…"), "{s}");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\nb\x1b[2Jc\\"), "a\\nb\\u{1b}[2Jc\\");
        assert_eq!(escape("plain"), "plain");
        let v = Value::Text("x\n  ~ id=2\r".into());
        assert_eq!(show(&v, 80), "'x\\n  ~ id=2\\r'");
    }
}
