//! The JSON document (`--format json`), documented in `docs/output-format.md`.
//! Output structs are separate from the model so the format can stay stable
//! while the model evolves.
//!
//! [`JsonWriter`] builds the document from events without keeping rows in
//! memory: each table's rows are serialised as they arrive into a spill
//! buffer that moves to an anonymous temporary file past 64 KiB, and the
//! document is assembled at the end. Memory stays flat however large the diff.

use std::io::{self, BufWriter, Read, Seek, Write};

use serde::Serialize;
use serde_json::{Map, Value as J};

use crate::report::{Counts, Endpoint, Event, Report, RowChange, SideStats, TableInfo, TableSummary};
use crate::schema::{ChangeOp, Danger, SchemaChange};
use crate::value::Value;

/// Version of the JSON document's shape.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
pub(crate) struct Summary {
    tables_compared: usize,
    tables_changed: usize,
    inserted: u64,
    updated: u64,
    deleted: u64,
    schema_changes: usize,
    dangerous_schema_changes: usize,
}

#[derive(Serialize)]
pub(crate) struct Stats {
    pub(crate) millis: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) received: Option<crate::report::BytesReceived>,
}

#[derive(Serialize)]
struct TableHead<'a> {
    schema: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    renamed_from: Option<&'a str>,
    key: &'a [String],
    key_source: &'a crate::plan::KeySource,
    columns: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    converted: Vec<Converted<'a>>,
}

/// A column whose type changed, and how it is compared (see [`TableInfo::converted`]).
#[derive(Serialize)]
pub(crate) struct Converted<'a> {
    pub(crate) column: &'a str,
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    /// `new_type` or `as_is`.
    pub(crate) compared: &'static str,
}

/// The converted columns of a table, for the JSON and NDJSON table heads.
pub(crate) fn converted(info: &TableInfo) -> Vec<Converted<'_>> {
    info.converted()
        .into_iter()
        .map(|(column, from, to, new)| Converted { column, from, to, compared: if new { "new_type" } else { "as_is" } })
        .collect()
}

#[derive(Serialize)]
pub(crate) struct TableStats<'a> {
    strategy: crate::report::ReadStrategy,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks: Option<crate::report::BlockStats>,
    parent: SideStats,
    child: SideStats,
    millis: u64,
}

/// What was compared (`--schema-only`, `--data-only` leave one out).
#[derive(Serialize, Clone, Copy)]
pub(crate) struct Compared {
    pub(crate) rows: bool,
    pub(crate) schema: bool,
    /// Filters narrowed the comparison (and so the data-loss section).
    pub(crate) filtered: bool,
}

#[derive(Serialize)]
pub(crate) struct Loss<'a> {
    kind: crate::loss::LossKind,
    schema: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<&'a str>,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    examples: Vec<Map<String, J>>,
    accepted: bool,
}

/// The `--fail-on` gate's verdict, as written into the document.
#[derive(Debug, Clone, Serialize)]
pub struct GateJson {
    /// Classes asked for.
    pub fail_on: Vec<String>,
    /// Whether no change of those classes is present (accepted ones aside).
    pub passed: bool,
    /// Why it failed: one line per class and object.
    pub reasons: Vec<String>,
    /// `--accept` patterns that matched no change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unused_accepts: Vec<String>,
}

impl From<&crate::gate::Verdict> for GateJson {
    fn from(v: &crate::gate::Verdict) -> GateJson {
        GateJson {
            fail_on: v.fail_on.clone(),
            passed: v.passed,
            reasons: v.reasons.clone(),
            unused_accepts: v.unused_accepts.clone(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Row {
    op: crate::report::Op,
    key: Map<String, J>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<Vec<String>>,
    before: Option<Map<String, J>>,
    after: Option<Map<String, J>>,
}

#[derive(Serialize)]
pub(crate) struct Schema<'a> {
    kind: &'a str,
    op: ChangeOp,
    object: &'a str,
    before: &'a std::collections::BTreeMap<String, String>,
    after: &'a std::collections::BTreeMap<String, String>,
    danger: &'a [Danger],
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A value as JSON: numbers where lossless, strings otherwise (bigint beyond
/// 2^53, numeric, NaN/Infinity), json/jsonb embedded as JSON.
pub fn value_to_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => J::from(*i),
        Value::Float(f) if f.is_finite() => J::from(*f),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| J::String(s.clone())),
        other => J::String(other.to_text().unwrap_or_default()),
    }
}

fn object(names: &[String], values: &[Value]) -> Map<String, J> {
    names.iter().zip(values).map(|(n, v)| (n.clone(), value_to_json(v))).collect()
}

pub(crate) fn row(info: &TableInfo, r: &RowChange) -> Row {
    let cols = &info.columns;
    Row {
        op: r.op,
        key: object(&info.key, &r.key),
        changed: (!r.changed.is_empty()).then(|| r.changed.iter().map(|&i| cols[i].clone()).collect()),
        before: r.before.as_ref().map(|v| object(cols, v)),
        after: r.after.as_ref().map(|v| object(cols, v)),
    }
}

pub(crate) fn table_stats(s: &TableSummary) -> TableStats<'_> {
    TableStats {
        strategy: s.strategy,
        fallback: s.fallback.as_deref(),
        reason: &s.reason,
        blocks: s.blocks,
        parent: s.parent,
        child: s.child,
        millis: s.millis,
    }
}

/// A data-loss entry, its examples keyed by the table's key columns.
pub(crate) fn loss<'a>(l: &'a crate::report::DataLoss, key_names: &[String]) -> Loss<'a> {
    Loss {
        kind: l.kind,
        schema: &l.schema,
        table: l.table.as_deref(),
        column: l.column.as_deref(),
        count: l.count,
        bytes: l.bytes,
        examples: l.examples.iter().map(|k| object(key_names, k)).collect(),
        accepted: l.accepted,
    }
}

pub(crate) fn schema(c: &SchemaChange) -> Schema<'_> {
    Schema {
        kind: &c.kind,
        op: c.op,
        object: &c.object,
        before: &c.before,
        after: &c.after,
        danger: &c.danger,
        cause: c.cause.as_deref(),
        note: c.note.as_deref(),
    }
}

/// The summary's numbers, added up as schema changes and finished tables
/// arrive: one computation for the JSON document and the NDJSON summary line.
#[derive(Default)]
pub(crate) struct Tally {
    totals: Counts,
    tables_changed: usize,
    schema_changes: usize,
    dangerous: usize,
}

impl Tally {
    pub(crate) fn schema(&mut self, c: &SchemaChange) {
        // Consequences (with a cause) are part of their cause's change, not counted again.
        if c.cause.is_none() {
            self.schema_changes += 1;
            self.dangerous += c.is_dangerous() as usize;
        }
    }

    pub(crate) fn table(&mut self, c: &Counts) {
        self.totals.inserted += c.inserted;
        self.totals.updated += c.updated;
        self.totals.deleted += c.deleted;
        self.tables_changed += c.any() as usize;
    }

    pub(crate) fn identical(&self) -> bool {
        self.schema_changes == 0 && !self.totals.any()
    }

    pub(crate) fn summary(&self, tables_compared: usize) -> Summary {
        Summary {
            tables_compared,
            tables_changed: self.tables_changed,
            inserted: self.totals.inserted,
            updated: self.totals.updated,
            deleted: self.totals.deleted,
            schema_changes: self.schema_changes,
            dangerous_schema_changes: self.dangerous,
        }
    }
}

/// Rows kept in memory per table before they move to a temporary file: small,
/// so memory does not grow with the size of the diff.
const SPILL_AT: usize = 64 << 10;

/// Serialised rows of one table: in memory until large, then in a temporary file.
#[derive(Default)]
struct Spill {
    memory: Vec<u8>,
    file: Option<BufWriter<std::fs::File>>,
    kept: u64,
    omitted: u64,
    summary: TableSummary,
}

impl Spill {
    fn push(&mut self, line: &[u8]) -> io::Result<()> {
        if self.kept > 0 {
            self.write(b",\n      ")?;
        }
        self.kept += 1;
        self.write(line)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            return f.write_all(bytes);
        }
        if self.memory.capacity() == 0 {
            self.memory.reserve_exact(SPILL_AT + 4096);
        }
        self.memory.extend_from_slice(bytes);
        if self.memory.len() > SPILL_AT {
            let mut f = BufWriter::new(tempfile::tempfile()?);
            f.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(f);
        }
        Ok(())
    }

    fn copy_to(self, out: &mut impl Write) -> io::Result<()> {
        match self.file {
            None => out.write_all(&self.memory),
            Some(f) => {
                let mut f = f.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                let mut buf = vec![0; 1 << 16];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    out.write_all(&buf[..n])?;
                }
            }
        }
    }
}

/// Builds the JSON document from events with flat memory.
pub struct JsonWriter {
    parent: Option<Endpoint>,
    child: Option<Endpoint>,
    tables: Vec<TableInfo>,
    spills: Vec<Spill>,
    schema_changes: Vec<SchemaChange>,
    data_loss: Vec<crate::report::DataLoss>,
    gate: Option<GateJson>,
    compared: Compared,
    max_rows: Option<usize>,
}

impl JsonWriter {
    /// Keeps at most `max_rows` rows per table (counts stay exact).
    pub fn new(max_rows: Option<usize>) -> JsonWriter {
        JsonWriter {
            parent: None,
            child: None,
            tables: vec![],
            spills: vec![],
            schema_changes: vec![],
            data_loss: vec![],
            gate: None,
            compared: Compared { rows: true, schema: true, filtered: false },
            max_rows,
        }
    }

    /// Takes one event.
    pub fn push(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started { parent, child, tables, rows, schema, filtered } => {
                self.compared = Compared { rows: *rows, schema: *schema, filtered: *filtered };
                self.parent = Some(parent.clone());
                self.child = Some(child.clone());
                self.tables = tables.clone();
                self.spills = tables.iter().map(|_| Spill::default()).collect();
            }
            Event::Schema(c) => self.schema_changes.push(c.clone()),
            Event::DataLoss(l) => self.data_loss.push(l.clone()),
            Event::Row { table, change } => {
                let (Some(info), Some(spill)) = (self.tables.get(*table), self.spills.get_mut(*table)) else {
                    return Ok(());
                };
                if self.max_rows.is_some_and(|m| spill.kept as usize >= m) {
                    spill.omitted += 1;
                } else {
                    spill.push(&serde_json::to_vec(&row(info, change)).map_err(io::Error::other)?)?;
                }
            }
            Event::Progress { .. } => {}
            Event::TableDone { table, summary } => {
                if let Some(s) = self.spills.get_mut(*table) {
                    s.summary = summary.clone();
                }
            }
        }
        Ok(())
    }

    /// Whether anything differs (valid once all events were pushed).
    pub fn has_differences(&self) -> bool {
        !self.schema_changes.is_empty() || self.spills.iter().any(|s| s.summary.counts.any())
    }

    /// The gate's verdict, written as `gate` (with `--fail-on`).
    pub fn set_gate(&mut self, gate: GateJson) {
        self.gate = Some(gate);
    }

    /// Writes the document; `received`: bytes received from each side, when known (written under `stats`).
    pub fn finish(
        mut self,
        out: &mut impl Write,
        millis: u64,
        received: Option<crate::report::BytesReceived>,
    ) -> io::Result<()> {
        crate::report::sort_losses(&mut self.data_loss, &self.tables);
        let identical = !self.has_differences();
        let js = |v: &dyn erased::Ser| v.json();
        let mut tally = Tally::default();
        for c in &self.schema_changes {
            tally.schema(c);
        }
        for s in &self.spills {
            tally.table(&s.summary.counts);
        }
        let summary = tally.summary(self.tables.len());
        write!(
            out,
            "{{\n  \"format_version\": {FORMAT_VERSION},\n  \"parent\": {},\n  \"child\": {},\n",
            js(&self.parent),
            js(&self.child)
        )?;
        write!(
            out,
            "  \"identical\": {identical},\n  \"compared\": {},\n  \"summary\": {},\n  \"schema_changes\": [",
            js(&self.compared),
            js(&summary)
        )?;
        for (i, c) in self.schema_changes.iter().enumerate() {
            write!(out, "{}\n    {}", if i > 0 { "," } else { "" }, js(&schema(c)))?;
        }
        write!(out, "{}],\n  \"data_loss\": [", if self.schema_changes.is_empty() { "" } else { "\n  " })?;
        for (i, l) in self.data_loss.iter().enumerate() {
            let key_names = |l: &crate::report::DataLoss| {
                self.tables
                    .iter()
                    .find(|t| Some(t.name.as_str()) == l.table.as_deref() && t.schema == l.schema)
                    .map(|t| t.key.clone())
                    .unwrap_or_default()
            };
            let loss = loss(l, &key_names(l));
            write!(out, "{}\n    {}", if i > 0 { "," } else { "" }, js(&loss))?;
        }
        if let Some(g) = &self.gate {
            write!(
                out,
                "{}],\n  \"gate\": {},\n  \"tables\": [",
                if self.data_loss.is_empty() { "" } else { "\n  " },
                js(g)
            )?;
        } else {
            write!(out, "{}],\n  \"tables\": [", if self.data_loss.is_empty() { "" } else { "\n  " })?;
        }
        for (i, (info, spill)) in self.tables.iter().zip(self.spills).enumerate() {
            let head = js(&TableHead {
                schema: &info.schema,
                name: &info.name,
                renamed_from: info.parent_name.as_deref(),
                key: &info.key,
                key_source: &info.key_source,
                columns: &info.columns,
                converted: converted(info),
            });
            // The head is an object; reopen it to append rows, counts and stats.
            write!(out, "{}\n    {},\n    \"rows\": [", if i > 0 { "," } else { "" }, &head[..head.len() - 1])?;
            let (kept, omitted, s) = (spill.kept, spill.omitted, spill.summary.clone());
            if kept > 0 {
                out.write_all(b"\n      ")?;
                spill.copy_to(out)?;
                out.write_all(b"\n    ")?;
            }
            let stats = table_stats(&s);
            write!(
                out,
                "],\n    \"rows_omitted\": {omitted},\n    \"counts\": {},\n    \"stats\": {}}}",
                js(&s.counts),
                js(&stats)
            )?;
        }
        write!(
            out,
            "{}],\n  \"stats\": {}\n}}\n",
            if self.tables.is_empty() { "" } else { "\n  " },
            js(&Stats { millis, received })
        )?;
        Ok(())
    }
}

mod erased {
    /// Object-safe "serialise to compact JSON".
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("serialisable")
        }
    }
}

/// The report as JSON text (the document of `docs/output-format.md`).
///
/// ```no_run
/// # fn f(report: &diff_core::Report) {
/// std::fs::write("diff.json", diff_core::render::json(report)).unwrap();
/// # }
/// ```
pub fn json(r: &Report) -> String {
    let mut w = JsonWriter::new(None);
    let tables = r.tables.iter().map(|t| t.info.clone()).collect();
    let started = Event::Started {
        parent: r.parent.clone(),
        child: r.child.clone(),
        tables,
        rows: r.rows_compared,
        schema: r.schema_compared,
        filtered: r.filtered,
    };
    let push = |w: &mut JsonWriter, e: Event| w.push(&e).expect("in-memory JSON");
    push(&mut w, started);
    for c in &r.schema_changes {
        push(&mut w, Event::Schema(c.clone()));
    }
    for l in &r.data_loss {
        push(&mut w, Event::DataLoss(l.clone()));
    }
    for t in &r.tables {
        for change in &t.rows {
            push(&mut w, Event::Row { table: t.info.id, change: change.clone() });
        }
        push(&mut w, Event::TableDone { table: t.info.id, summary: t.summary.clone() });
        // Rows the report itself did not keep were counted by its builder.
        if let Some(s) = w.spills.get_mut(t.info.id) {
            s.omitted += t.omitted;
        }
    }
    let mut out = Vec::new();
    w.finish(&mut out, r.millis, r.received).expect("in-memory JSON");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The report as a JSON value.
pub fn json_value(r: &Report) -> J {
    serde_json::from_str(&json(r)).expect("valid JSON")
}
