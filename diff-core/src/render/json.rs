//! The JSON document (`--format json`), documented in `docs/output-format.md`.
//! Output structs are separate from the model so the format can stay stable
//! while the model evolves.

use serde::Serialize;
use serde_json::{Map, Value as J};

use crate::report::{Counts, Endpoint, Report, RowChange, SideStats, TableReport};
use crate::schema::{ChangeOp, Danger, SchemaChange};
use crate::value::Value;

/// Version of the JSON document's shape.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Doc<'a> {
    format_version: u32,
    parent: &'a Endpoint,
    child: &'a Endpoint,
    identical: bool,
    summary: Summary,
    tables: Vec<Table<'a>>,
    schema_changes: Vec<Schema<'a>>,
    stats: Stats,
}

#[derive(Serialize)]
struct Summary {
    tables_compared: usize,
    tables_changed: usize,
    inserted: u64,
    updated: u64,
    deleted: u64,
    schema_changes: usize,
}

#[derive(Serialize)]
struct Stats {
    millis: u64,
}

#[derive(Serialize)]
struct Table<'a> {
    schema: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    renamed_from: Option<&'a str>,
    key: &'a [String],
    key_source: &'a crate::plan::KeySource,
    columns: &'a [String],
    counts: Counts,
    rows: Vec<Row>,
    rows_omitted: u64,
    stats: TableStats,
}

#[derive(Serialize)]
struct TableStats {
    parent: SideStats,
    child: SideStats,
    millis: u64,
}

#[derive(Serialize)]
struct Row {
    op: crate::report::Op,
    key: Map<String, J>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<Vec<String>>,
    before: Option<Map<String, J>>,
    after: Option<Map<String, J>>,
}

#[derive(Serialize)]
struct Schema<'a> {
    kind: &'a str,
    op: ChangeOp,
    object: &'a str,
    before: &'a std::collections::BTreeMap<String, String>,
    after: &'a std::collections::BTreeMap<String, String>,
    danger: &'a [Danger],
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
}

const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A value as JSON: numbers where lossless, strings otherwise (bigint beyond
/// 2^53, numeric, NaN/Infinity), json/jsonb embedded as JSON.
pub fn value_to_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) if i.abs() <= MAX_SAFE_INTEGER => J::from(*i),
        Value::Float(f) if f.is_finite() => J::from(*f),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| J::String(s.clone())),
        other => J::String(other.to_text().unwrap_or_default()),
    }
}

fn object(names: &[String], values: &[Value]) -> Map<String, J> {
    names.iter().zip(values).map(|(n, v)| (n.clone(), value_to_json(v))).collect()
}

fn row(t: &TableReport, r: &RowChange) -> Row {
    let cols = &t.info.columns;
    Row {
        op: r.op,
        key: object(&t.info.key, &r.key),
        changed: (!r.changed.is_empty()).then(|| r.changed.iter().map(|&i| cols[i].clone()).collect()),
        before: r.before.as_ref().map(|v| object(cols, v)),
        after: r.after.as_ref().map(|v| object(cols, v)),
    }
}

fn schema(c: &SchemaChange) -> Schema<'_> {
    Schema {
        kind: &c.kind,
        op: c.op,
        object: &c.object,
        before: &c.before,
        after: &c.after,
        danger: &c.danger,
        cause: c.cause.as_deref(),
    }
}

/// The report as a JSON value.
pub fn json_value(r: &Report) -> J {
    let totals = r.totals();
    let doc = Doc {
        format_version: FORMAT_VERSION,
        parent: &r.parent,
        child: &r.child,
        identical: !r.has_differences(),
        summary: Summary {
            tables_compared: r.tables.len(),
            tables_changed: r.tables.iter().filter(|t| t.summary.counts.any()).count(),
            inserted: totals.inserted,
            updated: totals.updated,
            deleted: totals.deleted,
            schema_changes: r.schema_changes.len(),
        },
        tables: r
            .tables
            .iter()
            .map(|t| Table {
                schema: &t.info.schema,
                name: &t.info.name,
                renamed_from: t.info.parent_name.as_deref(),
                key: &t.info.key,
                key_source: &t.info.key_source,
                columns: &t.info.columns,
                counts: t.summary.counts,
                rows: t.rows.iter().map(|x| row(t, x)).collect(),
                rows_omitted: t.omitted,
                stats: TableStats { parent: t.summary.parent, child: t.summary.child, millis: t.summary.millis },
            })
            .collect(),
        schema_changes: r.schema_changes.iter().map(schema).collect(),
        stats: Stats { millis: r.millis },
    };
    serde_json::to_value(doc).expect("report serialises")
}

/// The report as pretty-printed JSON text.
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(&json_value(r)).expect("report serialises");
    s.push('\n');
    s
}
