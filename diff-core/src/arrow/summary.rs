//! The report's small tables as record batches: `tables` (per-table counts and
//! read statistics), `schema_changes` and `data_loss`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, ListBuilder, MapBuilder, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::report::{DataLoss, SchemaChange, TableInfo, TableSummary};

/// A serde enum's JSON label (`primary_key`, `dropped_table`, …): the same words as the JSON report.
fn label<T: serde::Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(o)) => o.get("source").and_then(|s| s.as_str()).unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

fn strings<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn numbers(values: impl IntoIterator<Item = Option<u64>>) -> ArrayRef {
    let mut b = UInt64Builder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn lists<'a, I: IntoIterator<Item = &'a str>>(values: impl IntoIterator<Item = Option<I>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for v in values {
        match v {
            Some(items) => {
                for s in items {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

fn batch(columns: Vec<(&str, ArrayRef)>, metadata: HashMap<String, String>) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let schema = Schema::new(fields).with_metadata(metadata);
    RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect())
}

/// One row per compared table, changed or not, in report order: name, key,
/// counts, how rows were read, and `file`, the table's file when it has rows.
pub(crate) fn tables(
    infos: &[TableInfo],
    summaries: &[Option<TableSummary>],
    files: &[Option<String>],
    metadata: HashMap<String, String>,
) -> Result<RecordBatch, ArrowError> {
    let none = TableSummary::default();
    let s = |i: usize| summaries.get(i).and_then(Option::as_ref).unwrap_or(&none);
    let n = infos.len();
    fn key_index(t: &TableInfo) -> Option<&str> {
        match &t.key_source {
            crate::plan::KeySource::UniqueIndex(name) => Some(name.as_str()),
            _ => None,
        }
    }
    let num = |f: &dyn Fn(&TableSummary) -> u64| numbers((0..n).map(|i| Some(f(s(i)))));
    let blocks = |f: &dyn Fn(&crate::report::BlockStats) -> u64| numbers((0..n).map(|i| s(i).blocks.as_ref().map(f)));
    let key_sources: Vec<String> = infos.iter().map(|t| label(&t.key_source)).collect();
    let strategies: Vec<String> = (0..n).map(|i| label(&s(i).strategy)).collect();
    batch(
        vec![
            ("schema", strings(infos.iter().map(|t| Some(t.schema.as_str())))),
            ("name", strings(infos.iter().map(|t| Some(t.name.as_str())))),
            ("renamed_from", strings(infos.iter().map(|t| t.parent_name.as_deref()))),
            ("key", lists(infos.iter().map(|t| Some(t.key.iter().map(String::as_str))))),
            ("key_source", strings(key_sources.iter().map(|k| Some(k.as_str())))),
            ("key_index", strings(infos.iter().map(key_index))),
            ("columns", lists(infos.iter().map(|t| Some(t.columns.iter().map(String::as_str))))),
            ("inserted", num(&|s| s.counts.inserted)),
            ("updated", num(&|s| s.counts.updated)),
            ("deleted", num(&|s| s.counts.deleted)),
            ("strategy", strings(strategies.iter().map(|k| Some(k.as_str())))),
            ("fallback", strings((0..n).map(|i| s(i).fallback.as_deref()))),
            ("reason", strings((0..n).map(|i| Some(s(i).reason.as_str())))),
            // The hash strategy's blocks, null for tables read otherwise (as JSON's `blocks`).
            ("blocks_by", strings((0..n).map(|i| s(i).blocks.map(|b| b.by.as_str())))),
            ("blocks_count", blocks(&|b| b.count)),
            ("blocks_differing", blocks(&|b| b.differing)),
            ("blocks_parts", blocks(&|b| b.parts)),
            ("blocks_refined_parts", blocks(&|b| b.refined_parts)),
            ("blocks_refined_differing", blocks(&|b| b.refined_differing)),
            ("parent_rows", num(&|s| s.parent.rows)),
            ("parent_bytes", num(&|s| s.parent.bytes)),
            ("parent_identity_checked", num(&|s| s.parent.identity_checked)),
            ("child_rows", num(&|s| s.child.rows)),
            ("child_bytes", num(&|s| s.child.bytes)),
            ("child_identity_checked", num(&|s| s.child.identity_checked)),
            ("millis", num(&|s| s.millis)),
            ("file", strings((0..n).map(|i| files.get(i).and_then(|f| f.as_deref())))),
        ],
        metadata,
    )
}

fn attributes(
    changes: &[SchemaChange],
    side: impl Fn(&SchemaChange) -> &std::collections::BTreeMap<String, String>,
) -> ArrayRef {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for c in changes {
        for (k, v) in side(c) {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        // A MapBuilder appends a valid map unless told otherwise; it cannot fail here.
        let _ = b.append(true);
    }
    Arc::new(b.finish())
}

/// The schema changes in report order: `before` and `after` are maps of the
/// attributes that differ.
pub(crate) fn schema_changes(changes: &[SchemaChange]) -> Result<RecordBatch, ArrowError> {
    let ops: Vec<String> = changes.iter().map(|c| label(&c.op)).collect();
    let dangers: Vec<Vec<String>> = changes.iter().map(|c| c.danger.iter().map(label).collect()).collect();
    batch(
        vec![
            ("kind", strings(changes.iter().map(|c| Some(c.kind.as_str())))),
            ("op", strings(ops.iter().map(|o| Some(o.as_str())))),
            ("object", strings(changes.iter().map(|c| Some(c.object.as_str())))),
            ("before", attributes(changes, |c| &c.before)),
            ("after", attributes(changes, |c| &c.after)),
            ("danger", lists(dangers.iter().map(|d| Some(d.iter().map(String::as_str))))),
            ("cause", strings(changes.iter().map(|c| c.cause.as_deref()))),
            ("note", strings(changes.iter().map(|c| c.note.as_deref()))),
        ],
        HashMap::new(),
    )
}

/// The data-loss entries in report order; `examples` holds the key values of
/// a few rows as JSON objects (as in the JSON report).
pub(crate) fn data_loss(losses: &[DataLoss], infos: &[TableInfo]) -> Result<RecordBatch, ArrowError> {
    let kinds: Vec<String> = losses.iter().map(|l| label(&l.kind)).collect();
    let examples: Vec<Vec<String>> = losses
        .iter()
        .map(|l| {
            let key = infos
                .iter()
                .find(|t| t.schema == l.schema && Some(&t.name) == l.table.as_ref())
                .map(|t| t.key.clone())
                .unwrap_or_default();
            l.examples
                .iter()
                .map(|values| {
                    let object: serde_json::Map<String, serde_json::Value> =
                        key.iter().zip(values).map(|(k, v)| (k.clone(), crate::render::value_to_json(v))).collect();
                    serde_json::Value::Object(object).to_string()
                })
                .collect()
        })
        .collect();
    let mut accepted = BooleanBuilder::new();
    for l in losses {
        accepted.append_value(l.accepted);
    }
    let example_item =
        Field::new("item", DataType::Utf8, true).with_metadata(super::columns::extension_metadata("arrow.json"));
    let mut ex = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(example_item));
    for e in &examples {
        for s in e {
            ex.values().append_value(s);
        }
        ex.append(true);
    }
    batch(
        vec![
            ("kind", strings(kinds.iter().map(|k| Some(k.as_str())))),
            ("schema", strings(losses.iter().map(|l| Some(l.schema.as_str())))),
            ("table", strings(losses.iter().map(|l| l.table.as_deref()))),
            ("column", strings(losses.iter().map(|l| l.column.as_deref()))),
            ("count", numbers(losses.iter().map(|l| Some(l.count)))),
            ("bytes", numbers(losses.iter().map(|l| l.bytes))),
            ("examples", Arc::new(ex.finish())),
            ("accepted", Arc::new(accepted.finish())),
        ],
        HashMap::new(),
    )
}
