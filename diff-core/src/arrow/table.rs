//! One table's changed rows as record batches: `op`, `key`, `before`,
//! `after`, `changed` and `unrepresentable` (see `docs/output-format.md`).

use std::sync::Arc;

use arrow::array::{ArrayRef, ListBuilder, StringBuilder, StructArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::columns::{ColumnBuilder, Shape};
use super::BatchLimits;
use crate::report::{Op, RowChange, TableInfo};
use crate::value::Value;

/// The struct of one side's values (or the key's): one field per column.
fn struct_fields(info: &TableInfo, n: usize) -> Fields {
    info.column_info.iter().take(n).map(|c| Shape::of(c).field(&c.name)).collect()
}

fn unrepresentable_fields() -> Fields {
    Fields::from(vec![Field::new("column", DataType::Utf8, false), Field::new("value", DataType::Utf8, false)])
}

fn unrepresentable_item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Struct(unrepresentable_fields()), true))
}

/// The Arrow schema of a table's batches: `op` (`insert`, `update`, `delete`),
/// `key` (a struct of the key columns; absent when the table has none),
/// `before` and `after` (structs of every compared column; null for an
/// insert's `before` and a delete's `after`), `changed` (the changed columns'
/// names, updates only) and `unrepresentable` (values the Arrow type cannot
/// hold, as `side.column` and PostgreSQL's text; null when there are none).
pub fn table_schema(info: &TableInfo) -> Schema {
    let all = struct_fields(info, info.column_info.len());
    let mut fields = vec![Field::new("op", DataType::Utf8, false)];
    if !info.key.is_empty() {
        fields.push(Field::new("key", DataType::Struct(struct_fields(info, info.key.len())), false));
    }
    fields.push(Field::new("before", DataType::Struct(all.clone()), true));
    fields.push(Field::new("after", DataType::Struct(all), true));
    fields.push(Field::new("changed", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true));
    fields.push(Field::new("unrepresentable", DataType::List(unrepresentable_item()), true));
    let metadata = std::collections::HashMap::from([
        ("pgbranchdiff:schema".to_string(), info.schema.clone()),
        ("pgbranchdiff:table".to_string(), info.name.clone()),
    ]);
    Schema::new(fields).with_metadata(metadata)
}

/// A struct column being built: one builder per field and the struct's validity.
struct Side {
    fields: Fields,
    columns: Vec<ColumnBuilder>,
    valid: Vec<bool>,
    /// `key`, `before` or `after`: how a refused value is named.
    name: &'static str,
}

impl Side {
    fn new(fields: Fields, info: &TableInfo, name: &'static str) -> Side {
        let columns = info.column_info.iter().take(fields.len()).map(|c| ColumnBuilder::new(Shape::of(c))).collect();
        Side { fields, columns, valid: vec![], name }
    }

    /// Appends a row's values (or a null struct), recording values that did not fit.
    fn append(&mut self, values: Option<&[Value]>, refused: &mut Vec<(String, String)>) {
        self.valid.push(values.is_some());
        for (i, col) in self.columns.iter_mut().enumerate() {
            let v = values.and_then(|v| v.get(i));
            match v {
                Some(v) if !col.append(v) => {
                    refused.push((format!("{}.{}", self.name, self.fields[i].name()), v.to_text().unwrap_or_default()));
                }
                Some(_) => {}
                None => col.append_null(),
            }
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let arrays =
            self.columns.iter_mut().zip(self.fields.iter()).map(|(c, f)| c.finish(f)).collect::<Result<_, _>>()?;
        let valid = std::mem::take(&mut self.valid);
        let len = valid.len();
        let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
        // A table with no compared column still has rows: the length cannot come from the fields.
        Ok(Arc::new(StructArray::try_new_with_length(self.fields.clone(), arrays, nulls, len)?))
    }
}

/// Builds one table's batches.
pub struct TableBatcher {
    schema: Arc<Schema>,
    limits: BatchLimits,
    op: StringBuilder,
    key: Option<Side>,
    before: Side,
    after: Side,
    changed: ListBuilder<StringBuilder>,
    refused: Vec<Option<Vec<(String, String)>>>,
    names: Vec<String>,
    rows: usize,
    bytes: usize,
}

/// About how many bytes a value takes in Arrow buffers.
fn weight(v: &Value) -> usize {
    8 + match v {
        Value::Text(s) | Value::Literal(s) | Value::Numeric(s) | Value::Json(s) | Value::Redacted(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 0,
    }
}

impl TableBatcher {
    /// Starts the table's first batch.
    pub fn new(info: &TableInfo, limits: BatchLimits) -> TableBatcher {
        let all = struct_fields(info, info.column_info.len());
        let key = (!info.key.is_empty()).then(|| Side::new(struct_fields(info, info.key.len()), info, "key"));
        TableBatcher {
            schema: Arc::new(table_schema(info)),
            limits,
            op: StringBuilder::new(),
            key,
            before: Side::new(all.clone(), info, "before"),
            after: Side::new(all, info, "after"),
            changed: ListBuilder::new(StringBuilder::new()),
            refused: vec![],
            names: info.columns.clone(),
            rows: 0,
            bytes: 0,
        }
    }

    /// The batches' schema.
    pub fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    /// Adds a row; returns the batch it completed, if the limits were reached.
    /// The batch so far is cut before a row that would take it past the byte
    /// limit.
    pub fn push(&mut self, r: &RowChange) -> Result<Option<RecordBatch>, ArrowError> {
        let size: usize = [&r.before, &r.after].into_iter().flatten().flatten().map(weight).sum();
        let mut done = None;
        if self.rows > 0 && self.bytes + size > self.limits.bytes {
            done = self.flush()?;
        }
        self.append(r);
        self.bytes += size;
        self.rows += 1;
        if done.is_none() && self.rows >= self.limits.rows {
            done = self.flush()?;
        }
        Ok(done)
    }

    fn append(&mut self, r: &RowChange) {
        self.op.append_value(match r.op {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        });
        let mut refused = vec![];
        if let Some(k) = &mut self.key {
            k.append(Some(&r.key), &mut refused);
        }
        self.before.append(r.before.as_deref(), &mut refused);
        self.after.append(r.after.as_deref(), &mut refused);
        if r.op == Op::Update {
            for &i in &r.changed {
                self.changed.values().append_value(self.names.get(i).map_or("", String::as_str));
            }
            self.changed.append(true);
        } else {
            self.changed.append(false);
        }
        self.refused.push((!refused.is_empty()).then_some(refused));
    }

    /// The rows added since the last batch, as a batch (`None` if there are none).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.op.finish())];
        if let Some(k) = &mut self.key {
            columns.push(k.finish()?);
        }
        columns.push(self.before.finish()?);
        columns.push(self.after.finish()?);
        columns.push(Arc::new(self.changed.finish()));
        columns.push(self.finish_refused()?);
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), columns).map(Some)
    }

    fn finish_refused(&mut self) -> Result<ArrayRef, ArrowError> {
        let (item, fields) = (unrepresentable_item(), unrepresentable_fields());
        let (mut column, mut value) = (StringBuilder::new(), StringBuilder::new());
        let mut offsets = vec![0i32];
        let mut valid = vec![];
        for entry in std::mem::take(&mut self.refused) {
            valid.push(entry.is_some());
            for (c, v) in entry.iter().flatten() {
                column.append_value(c);
                value.append_value(v);
            }
            offsets.push(offsets.last().unwrap_or(&0) + entry.map_or(0, |e| e.len() as i32));
        }
        let items: Vec<ArrayRef> = vec![Arc::new(column.finish()), Arc::new(value.finish())];
        let structs = StructArray::try_new(fields, items, None)?;
        Ok(Arc::new(arrow::array::ListArray::try_new(
            item,
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            Arc::new(structs),
            Some(NullBuffer::from(valid)),
        )?))
    }
}
