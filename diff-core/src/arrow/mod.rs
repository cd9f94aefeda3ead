//! Arrow output (cargo feature `arrow`): a diff's changed rows as typed
//! Arrow record batches per table, and [`ArrowSink`], which writes them as a
//! directory of Arrow IPC files that pyarrow, polars and DuckDB read as they
//! are. The layout and the type mapping are in `docs/output-format.md`
//! ("Arrow").
//!
//! [`ArrowTables`] takes the diff's events and hands back batches as they fill
//! (at most [`BatchLimits::rows`] rows or about [`BatchLimits::bytes`] bytes),
//! and a table's last batch at its `TableDone`: memory stays flat however
//! large the diff.
//!
//! ```no_run
//! # async fn demo() -> diff_core::Result<()> {
//! use diff_core::arrow::ArrowTables;
//! use diff_core::{ConnConfig, Options, SideName};
//!
//! let parent = ConnConfig::parse(SideName::Parent, "postgresql://app@prod/shop")?;
//! let child = ConnConfig::parse(SideName::Child, "postgresql://app@branch/shop")?;
//! let mut stream = diff_core::start(&parent, &child, &Options::default()).await?;
//! let mut tables = ArrowTables::new();
//! while let Some(event) = stream.next().await {
//!     for (table, batch) in tables.push(&event?).expect("batches of the table's schema") {
//!         let info = tables.info(table).unwrap();
//!         println!("{}: {} rows, schema {:?}", info.qualified(), batch.num_rows(), batch.schema());
//!     }
//! }
//! # Ok(()) }
//! ```

mod columns;
mod parse;
mod sink;
mod summary;
mod table;

pub use sink::{file_name, is_report_dir, ArrowSink, CHECK_FILE};
pub use table::{table_schema, TableBatcher};

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::report::{Event, TableInfo};

/// When a table's rows are handed out as a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Rows per batch.
    pub rows: usize,
    /// Approximate bytes of values per batch: a batch is cut before a row that
    /// would take it past this, so that no array's 32-bit offsets can overflow
    /// (PostgreSQL values are at most 1 GiB).
    pub bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits { rows: 8192, bytes: 64 << 20 }
    }
}

/// Turns a diff's events into typed record batches, one stream of batches
/// per table. Tables are interleaved in the event stream; each has its own
/// builder until its `TableDone`.
pub struct ArrowTables {
    limits: BatchLimits,
    infos: Vec<TableInfo>,
    open: Vec<Option<TableBatcher>>,
}

impl Default for ArrowTables {
    fn default() -> ArrowTables {
        ArrowTables::new()
    }
}

impl ArrowTables {
    /// With the default [`BatchLimits`].
    pub fn new() -> ArrowTables {
        ArrowTables::with_limits(BatchLimits::default())
    }

    /// With other batch limits.
    pub fn with_limits(limits: BatchLimits) -> ArrowTables {
        ArrowTables { limits, infos: vec![], open: vec![] }
    }

    /// The table announced under `id` by [`Event::Started`].
    pub fn info(&self, id: usize) -> Option<&TableInfo> {
        self.infos.get(id)
    }

    /// The Arrow schema of table `id`'s batches.
    pub fn schema(&self, id: usize) -> Option<arrow::datatypes::SchemaRef> {
        self.infos.get(id).map(|t| std::sync::Arc::new(table_schema(t)))
    }

    /// Takes one event; returns the batches it completed as `(table id, batch)`:
    /// a full batch on a row, the rest of a table's rows on its `TableDone`.
    /// Other events return nothing.
    pub fn push(&mut self, event: &Event) -> Result<Vec<(usize, RecordBatch)>, ArrowError> {
        let mut out = vec![];
        match event {
            Event::Started { tables, .. } => {
                self.infos = tables.clone();
                self.open = tables.iter().map(|_| None).collect();
            }
            Event::Row { table, change } => {
                let (Some(info), Some(slot)) = (self.infos.get(*table), self.open.get_mut(*table)) else {
                    return Ok(out);
                };
                let batcher = slot.get_or_insert_with(|| TableBatcher::new(info, self.limits));
                if let Some(batch) = batcher.push(change)? {
                    out.push((*table, batch));
                }
            }
            Event::TableDone { table, .. } => {
                if let Some(mut batcher) = self.open.get_mut(*table).and_then(Option::take) {
                    if let Some(batch) = batcher.flush()? {
                        out.push((*table, batch));
                    }
                }
            }
            _ => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ColumnInfo, Op, RowChange, TableSummary};
    use crate::Value;
    use arrow::array::{Array, AsArray};

    fn started(columns: Vec<ColumnInfo>) -> Event {
        let endpoint = crate::report::Endpoint { endpoint: "u@h:1/db".into(), server_version: 150000 };
        Event::Started {
            parent: endpoint.clone(),
            child: endpoint,
            tables: vec![TableInfo {
                id: 0,
                schema: "public".into(),
                name: "t".into(),
                parent_name: None,
                key: vec!["id".into()],
                key_source: crate::plan::KeySource::PrimaryKey,
                columns: columns.iter().map(|c| c.name.clone()).collect(),
                column_info: columns,
                parent_side: Default::default(),
                child_side: Default::default(),
            }],
            rows: true,
            schema: true,
            filtered: false,
        }
    }

    fn insert(id: &str, v: Value) -> Event {
        let values = vec![Value::Text(id.into()), v];
        let change =
            RowChange { op: Op::Insert, key: values[..1].to_vec(), changed: vec![], before: None, after: Some(values) };
        Event::Row { table: 0, change }
    }

    fn done() -> Event {
        Event::TableDone { table: 0, summary: TableSummary::default() }
    }

    #[test]
    fn batches_by_rows_then_the_rest_at_table_done() {
        let mut t = ArrowTables::with_limits(BatchLimits { rows: 2, bytes: 1 << 20 });
        assert!(t.push(&started(vec![ColumnInfo::text("id"), ColumnInfo::text("v")])).unwrap().is_empty());
        assert!(t.push(&insert("a", Value::Null)).unwrap().is_empty());
        let full = t.push(&insert("b", Value::Text("x".into()))).unwrap();
        assert_eq!(full.iter().map(|(id, b)| (*id, b.num_rows())).collect::<Vec<_>>(), [(0, 2)]);
        assert!(t.push(&insert("c", Value::Null)).unwrap().is_empty());
        let rest = t.push(&done()).unwrap();
        assert_eq!(rest.iter().map(|(id, b)| (*id, b.num_rows())).collect::<Vec<_>>(), [(0, 1)]);
        assert_eq!(rest[0].1.schema(), t.schema(0).unwrap());
        // An insert has no `before`: the struct is null, `after` is not.
        let batch = &rest[0].1;
        assert!(batch.column_by_name("before").unwrap().is_null(0));
        assert!(batch.column_by_name("after").unwrap().is_valid(0));
        assert!(batch.column_by_name("changed").unwrap().is_null(0));
    }

    #[test]
    fn a_batch_is_cut_before_a_row_that_would_pass_the_byte_limit() {
        // 3 rows of 400 KB under a 1 MB limit: 2 + 1, each value whole.
        let mut t = ArrowTables::with_limits(BatchLimits { rows: 100, bytes: 1 << 20 });
        t.push(&started(vec![ColumnInfo::text("id"), ColumnInfo::text("v")])).unwrap();
        let big = "x".repeat(400_000);
        let mut batches = vec![];
        for id in ["a", "b", "c"] {
            batches.extend(t.push(&insert(id, Value::Text(big.clone()))).unwrap());
        }
        batches.extend(t.push(&done()).unwrap());
        assert_eq!(batches.iter().map(|(_, b)| b.num_rows()).collect::<Vec<_>>(), [2, 1]);
        let after =
            batches[1].1.column_by_name("after").unwrap().as_struct().column(1).as_string::<i32>().value(0).len();
        assert_eq!(after, 400_000);
    }

    #[test]
    fn redacted_columns_are_text() {
        let mut secret =
            ColumnInfo { base_type_oid: 23, reading: crate::reading::Reading::Builtin(23), ..ColumnInfo::text("v") };
        secret.redacted = true;
        let mut t = ArrowTables::new();
        t.push(&started(vec![ColumnInfo::text("id"), secret])).unwrap();
        t.push(&insert("a", Value::Redacted("00ff".into()))).unwrap();
        let (_, batch) = t.push(&done()).unwrap().remove(0);
        let after = batch.column_by_name("after").unwrap().as_struct();
        assert_eq!(after.column(1).as_string::<i32>().value(0), "redacted:00ff");
        assert!(batch.column_by_name("unrepresentable").unwrap().is_null(0));
    }
}
