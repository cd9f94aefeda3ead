//! The diff model: events streamed while the diff runs, and the complete
//! report they add up to. Renderers (`render`) and JSON output structs are
//! separate from it.

use crate::plan::{KeySource, TablePlan};
use crate::value::Value;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Only in the child.
    Insert,
    /// Same key, other values.
    Update,
    /// Only in the parent.
    Delete,
}

/// One changed row. Values are in the order of [`TableInfo::columns`].
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Insert, update or delete.
    pub op: Op,
    /// Key values (the first `key.len()` columns).
    pub key: Vec<Value>,
    /// Indexes into [`TableInfo::columns`] of columns whose value changed (updates only).
    pub changed: Vec<usize>,
    /// The parent's row (updates and deletes).
    pub before: Option<Vec<Value>>,
    /// The child's row (inserts and updates).
    pub after: Option<Vec<Value>>,
}

/// Row counts of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Rows only in the child.
    pub inserted: u64,
    /// Rows with the same key and other values.
    pub updated: u64,
    /// Rows only in the parent.
    pub deleted: u64,
}

impl Counts {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0
    }

    /// Adds one change.
    pub fn add(&mut self, op: Op) {
        match op {
            Op::Insert => self.inserted += 1,
            Op::Update => self.updated += 1,
            Op::Delete => self.deleted += 1,
        }
    }
}

/// What was read from one side for one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SideStats {
    /// Rows whose values were read.
    pub rows: u64,
    /// COPY bytes received (including the identity pass).
    pub bytes: u64,
    /// Tuples found unchanged by identity (ctid, xmin) without reading their values.
    pub identity_checked: u64,
}

/// Data the branch destroyed (see [`crate::loss`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DataLoss {
    /// What was lost.
    pub kind: crate::loss::LossKind,
    /// Schema.
    pub schema: String,
    /// Table (or materialized view, sequence), when the loss is within one.
    pub table: Option<String>,
    /// Column, for dropped columns and values lost in place.
    pub column: Option<String>,
    /// Rows or values lost (a dropped sequence: its last value).
    pub count: u64,
    /// Bytes the dropped table held in the parent.
    pub bytes: Option<u64>,
    /// Key values of a few rows concerned (values lost in place), in the table's key order.
    pub examples: Vec<Vec<Value>>,
    /// Accepted as intended (`--accept`): still reported, not failing the gate.
    pub accepted: bool,
}

/// Puts data-loss entries in report order, whatever order parallel tables
/// finished in: dropped objects first (as found), then per table in report
/// order its deleted rows and its columns' losses.
pub fn sort_losses(losses: &mut [DataLoss], tables: &[TableInfo]) {
    let position = |l: &DataLoss| {
        if l.kind.is_dropped_object() {
            return (0, 0, l.kind, None);
        }
        let t = tables.iter().position(|t| t.schema == l.schema && Some(&t.name) == l.table.as_ref());
        (1, t.unwrap_or(usize::MAX), l.kind, l.column.clone())
    };
    losses.sort_by_cached_key(position);
}

impl DataLoss {
    /// `schema[.table[.column]]`.
    pub fn object(&self) -> String {
        let mut o = self.schema.clone();
        for part in [&self.table, &self.column].into_iter().flatten() {
            o.push('.');
            o.push_str(part);
        }
        o
    }
}

/// How a table's rows were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadStrategy {
    /// Every row of both sides, in key order.
    #[default]
    Stream,
    /// Tuple identity first; only suspect rows read.
    Identity,
    /// Blocks of rows hashed in PostgreSQL; only differing blocks read.
    Hash,
}

/// Bytes received from each side's server, counted at the socket (TLS
/// included): what the diff cost on the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BytesReceived {
    /// From the parent's server.
    pub parent: u64,
    /// From the child's server.
    pub child: u64,
}

/// How the hash strategy cut a table's rows into blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockCut {
    /// By a hash of the key (of the whole row without a key): any key type and collation.
    #[default]
    KeyHash,
    /// By ranges of an integer leading key column, read back as index ranges.
    KeyRange,
}

impl BlockCut {
    /// The name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockCut::KeyHash => "key_hash",
            BlockCut::KeyRange => "key_range",
        }
    }
}

/// The hash strategy's blocks of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockStats {
    /// How rows were cut into blocks.
    pub by: BlockCut,
    /// Blocks the table was cut into.
    pub count: u64,
    /// Blocks whose digests differed: only their rows were read.
    pub differing: u64,
    /// Connections per side that hashed the blocks (`--jobs` splits a large table).
    pub parts: u64,
    /// Sub-ranges each differing block was cut into when hashed again (0: not hashed again).
    pub refined_parts: u64,
    /// Sub-ranges whose digests differed: then only their rows were read.
    pub refined_differing: u64,
}

/// Result of one table once it is done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableSummary {
    /// Exact counts.
    pub counts: Counts,
    /// Parent reads.
    pub parent: SideStats,
    /// Child reads.
    pub child: SideStats,
    /// Wall time for the table.
    pub millis: u64,
    /// How rows were read.
    pub strategy: ReadStrategy,
    /// Why the strategy asked for was not used (the table was streamed instead).
    pub fallback: Option<String>,
    /// Why the table was read the way it was (`strategy`), in a few words.
    pub reason: String,
    /// Hash strategy: the table's blocks.
    pub blocks: Option<BlockStats>,
    /// Values lost in place, per column and kind, found while merging.
    pub losses: Vec<DataLoss>,
}

/// A compared table, as announced before its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Index used by [`Event::Row`] and friends.
    pub id: usize,
    /// Schema (child side).
    pub schema: String,
    /// Name (child side).
    pub name: String,
    /// `schema.name` in the parent, when it differs (renamed table).
    pub parent_name: Option<String>,
    /// Key column names.
    pub key: Vec<String>,
    /// Where the key comes from.
    pub key_source: KeySource,
    /// Compared columns (key first), child names.
    pub columns: Vec<String>,
    /// The same columns with their types and how they are written (for typed
    /// outputs such as Arrow, the SQL patch and redaction).
    pub column_info: Vec<ColumnInfo>,
    /// The table in the parent, for outputs that write to it (`--reverse` patches).
    pub parent_side: TableSide,
    /// The table in the child, for outputs that write to it (forward patches).
    pub child_side: TableSide,
}

/// What an output that writes rows to one side needs of the table there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSide {
    /// Schema on that side.
    pub schema: String,
    /// Name on that side.
    pub name: String,
    /// Partitioned: rows live in partitions (`ONLY` would see none).
    pub partitioned: bool,
    /// Foreign keys on that side (referenced tables by that side's names).
    pub foreign_keys: Vec<crate::catalog::ForeignKey>,
}

impl TableSide {
    pub(crate) fn new(t: &crate::catalog::Table) -> TableSide {
        TableSide {
            schema: t.schema.clone(),
            name: t.name.clone(),
            partitioned: t.kind == 'p',
            foreign_keys: t.foreign_keys.clone(),
        }
    }
}

/// A compared column: names, types and write rules on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Name in the child.
    pub name: String,
    /// Name in the parent (differs after a rename).
    pub parent_name: String,
    /// Child type as `format_type` prints it (`numeric(12,2)`, `text[]`).
    pub type_name: String,
    /// Parent type.
    pub parent_type: String,
    /// Child type OID after resolving domains.
    pub base_type_oid: u32,
    /// Type modifier of the child's base type, -1 for none.
    pub typmod: i32,
    /// How the child's type reads, deeply (element types of arrays, enums…).
    pub reading: crate::reading::Reading,
    /// NOT NULL (validated) in the child.
    pub not_null: bool,
    /// Generated (stored or virtual) in the child: never written.
    pub generated: bool,
    /// Generated in the parent.
    pub parent_generated: bool,
    /// Identity column in the child: `a` ALWAYS, `d` BY DEFAULT.
    pub identity: Option<char>,
    /// Identity column in the parent.
    pub parent_identity: Option<char>,
    /// PostgreSQL Anonymizer masking rule on the column (either side).
    pub masking: Option<String>,
    /// Values of this column are redacted in every output (set by
    /// redaction before any sink sees the table; values arrive as
    /// [`crate::Value::Redacted`]).
    pub redacted: bool,
    /// After a type change, the parent's values are converted to the new
    /// type before comparing (numbers, times: a value the conversion rounded
    /// is then no row update); false: compared as they are (strings, and
    /// types without a modelled conversion), so a value the change cut is a
    /// row update too.
    pub compared_in_new_type: bool,
}

impl ColumnInfo {
    /// A plain `text` column of this name on both sides (for hand-built plans and reports).
    pub fn text(name: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.to_string(),
            parent_name: name.to_string(),
            type_name: "text".into(),
            parent_type: "text".into(),
            base_type_oid: 25,
            typmod: -1,
            reading: crate::reading::Reading::Builtin(25),
            not_null: false,
            generated: false,
            parent_generated: false,
            identity: None,
            parent_identity: None,
            masking: None,
            redacted: false,
            compared_in_new_type: false,
        }
    }

    pub(crate) fn new(p: &crate::catalog::Column, c: &crate::catalog::Column) -> ColumnInfo {
        ColumnInfo {
            name: c.name.clone(),
            parent_name: p.name.clone(),
            type_name: c.type_name.clone(),
            parent_type: p.type_name.clone(),
            base_type_oid: c.base_type_oid,
            typmod: c.typmod,
            reading: c.reading.clone(),
            not_null: c.not_null,
            generated: !c.generated.is_empty(),
            parent_generated: !p.generated.is_empty(),
            identity: c.identity.chars().next(),
            parent_identity: p.identity.chars().next(),
            masking: c.masking.clone().or_else(|| p.masking.clone()),
            redacted: false,
            compared_in_new_type: false,
        }
    }
}

impl TableInfo {
    /// Columns whose type changed, as (name, parent type, child type, whether
    /// they are compared in the new type; see [`ColumnInfo::compared_in_new_type`]).
    /// Every format says which.
    pub fn converted(&self) -> Vec<(&str, &str, &str, bool)> {
        self.column_info
            .iter()
            .filter(|c| c.parent_type != c.type_name)
            .map(|c| (c.name.as_str(), c.parent_type.as_str(), c.type_name.as_str(), c.compared_in_new_type))
            .collect()
    }

    /// The sentences every report prints for [`TableInfo::converted`], if any column was converted.
    pub fn converted_note(&self) -> Option<String> {
        let cols = self.converted();
        let list = |new: bool| -> String {
            let l: Vec<String> =
                cols.iter().filter(|c| c.3 == new).map(|(n, f, t, _)| format!("{n} {f} → {t}")).collect();
            l.join(", ")
        };
        let mut parts = Vec::new();
        let (converted, as_is) = (list(true), list(false));
        if !converted.is_empty() {
            parts.push(format!(
                "values of columns whose type changed ({converted}) are compared in the new type: what the \
                 conversion rounded or cut is under data loss, not row updates"
            ));
        }
        if !as_is.is_empty() {
            parts.push(format!(
                "values of columns whose type changed ({as_is}) are compared as they are: what the change \
                 altered is a row update, and under data loss too when a value was lost"
            ));
        }
        (!parts.is_empty()).then(|| format!("{}: {}", self.qualified(), parts.join("; ")))
    }

    pub(crate) fn from_plan(p: &TablePlan) -> TableInfo {
        let qualified = p.qualified();
        TableInfo {
            id: p.id,
            schema: p.schema.clone(),
            name: p.name.clone(),
            parent_name: (p.parent_qualified != qualified).then(|| p.parent_qualified.clone()),
            key: p.key_names(),
            key_source: p.key_source.clone(),
            columns: p.columns.iter().map(|c| c.name.clone()).collect(),
            column_info: p.columns.iter().map(|c| c.info.clone()).collect(),
            parent_side: p.parent_side.clone(),
            child_side: p.child_side.clone(),
        }
    }

    /// `schema.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// One database of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    /// `user@host:port/dbname` (no password).
    pub endpoint: String,
    /// `server_version_num`.
    pub server_version: i32,
}

/// Kind of a schema change.
pub use crate::schema::{ChangeOp, Danger, SchemaChange};

/// Something the diff found or did, in the order it happened. New kinds of
/// events may be added: match with a catch-all arm.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// First event: what is compared.
    Started {
        /// Parent database.
        parent: Endpoint,
        /// Child database.
        child: Endpoint,
        /// Tables that will be compared.
        tables: Vec<TableInfo>,
        /// Whether rows are compared (false with `--schema-only`).
        rows: bool,
        /// Whether the schema is compared (false with `--data-only`).
        schema: bool,
        /// Whether table or schema filters narrowed what is compared.
        filtered: bool,
    },
    /// A catalog change.
    Schema(SchemaChange),
    /// A changed row.
    Row {
        /// Table id.
        table: usize,
        /// The change.
        change: RowChange,
    },
    /// Rows compared so far in a table (sent every 65,536 rows).
    Progress {
        /// Table id.
        table: usize,
        /// Rows read from the parent so far.
        rows: u64,
    },
    /// Data the branch destroyed: after the schema changes for dropped
    /// objects, and before its `TableDone` for a table's rows and values.
    DataLoss(DataLoss),
    /// A table is finished.
    TableDone {
        /// Table id.
        table: usize,
        /// Counts and statistics.
        summary: TableSummary,
    },
}

/// A table's part of the report.
#[derive(Debug, Clone)]
pub struct TableReport {
    /// What was compared.
    pub info: TableInfo,
    /// Counts and read statistics.
    pub summary: TableSummary,
    /// Changed rows, in key order (at most `max_rows_per_table`).
    pub rows: Vec<RowChange>,
    /// Changed rows counted but not kept.
    pub omitted: u64,
}

/// The complete diff.
#[derive(Debug, Clone)]
pub struct Report {
    /// Parent database.
    pub parent: Endpoint,
    /// Child database.
    pub child: Endpoint,
    /// Every compared table, changed or not, in (schema, name) order.
    pub tables: Vec<TableReport>,
    /// Catalog changes.
    pub schema_changes: Vec<SchemaChange>,
    /// Data lost, in the order found.
    pub data_loss: Vec<DataLoss>,
    /// Wall time of the whole diff.
    pub millis: u64,
    /// Bytes received from each side, when the diff was run through [`crate::run`] or a sink's end said.
    pub received: Option<BytesReceived>,
    /// Whether rows were compared (false with `--schema-only`).
    pub rows_compared: bool,
    /// Whether the schema was compared (false with `--data-only`).
    pub schema_compared: bool,
    /// Whether table or schema filters narrowed what was compared.
    pub filtered: bool,
}

/// The report's numbers, computed once for every renderer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tables compared row by row.
    pub tables_compared: usize,
    /// Tables with at least one changed row.
    pub tables_changed: usize,
    /// Row counts over all tables.
    pub rows: Counts,
    /// Schema changes that are not the consequence of another.
    pub schema_changes: usize,
    /// Schema changes that are consequences of those (a dropped table's columns…).
    pub consequences: usize,
    /// Root schema changes with a danger label.
    pub dangerous_schema_changes: usize,
}

impl Report {
    /// Counts for headers and footers, so that every renderer says the same.
    ///
    /// ```
    /// # fn f(report: &diff_core::Report) {
    /// let s = report.summary();
    /// println!("{} rows inserted, {} schema changes", s.rows.inserted, s.schema_changes);
    /// # }
    /// ```
    pub fn summary(&self) -> Summary {
        let roots = self.schema_changes.iter().filter(|c| c.cause.is_none());
        Summary {
            tables_compared: self.tables.len(),
            tables_changed: self.tables.iter().filter(|t| t.summary.counts.any()).count(),
            rows: self.totals(),
            schema_changes: roots.clone().count(),
            consequences: self.schema_changes.iter().filter(|c| c.cause.is_some()).count(),
            dangerous_schema_changes: roots.filter(|c| c.is_dangerous()).count(),
        }
    }

    /// Whether the databases differ in any compared way.
    pub fn has_differences(&self) -> bool {
        !self.schema_changes.is_empty() || self.tables.iter().any(|t| t.summary.counts.any())
    }

    /// Sum over tables.
    pub fn totals(&self) -> Counts {
        let mut c = Counts::default();
        for t in &self.tables {
            c.inserted += t.summary.counts.inserted;
            c.updated += t.summary.counts.updated;
            c.deleted += t.summary.counts.deleted;
        }
        c
    }
}

/// Folds events into a [`Report`].
pub struct ReportBuilder {
    report: Option<Report>,
    max_rows: Option<usize>,
    started: std::time::Instant,
}

impl ReportBuilder {
    /// Keeps at most `max_rows` changed rows per table.
    pub fn new(max_rows: Option<usize>) -> ReportBuilder {
        ReportBuilder { report: None, max_rows, started: std::time::Instant::now() }
    }

    /// Adds one event.
    pub fn push(&mut self, event: Event) {
        match event {
            Event::Started { parent, child, tables, rows, schema, filtered } => {
                let tables = tables
                    .into_iter()
                    .map(|info| TableReport { info, summary: TableSummary::default(), rows: vec![], omitted: 0 })
                    .collect();
                self.report = Some(Report {
                    parent,
                    child,
                    tables,
                    schema_changes: vec![],
                    data_loss: vec![],
                    millis: 0,
                    received: None,
                    rows_compared: rows,
                    schema_compared: schema,
                    filtered,
                });
            }
            Event::Schema(change) => {
                if let Some(r) = &mut self.report {
                    r.schema_changes.push(change);
                }
            }
            Event::Row { table, change } => {
                if let Some(t) = self.report.as_mut().and_then(|r| r.tables.get_mut(table)) {
                    if self.max_rows.is_none_or(|m| t.rows.len() < m) {
                        t.rows.push(change);
                    } else {
                        t.omitted += 1;
                    }
                }
            }
            Event::Progress { .. } => {}
            Event::DataLoss(loss) => {
                if let Some(r) = &mut self.report {
                    r.data_loss.push(loss);
                }
            }
            Event::TableDone { table, summary } => {
                if let Some(t) = self.report.as_mut().and_then(|r| r.tables.get_mut(table)) {
                    t.summary = summary;
                }
            }
        }
    }

    /// The report (`None` if no `Started` event was seen).
    pub fn finish(self) -> Option<Report> {
        let millis = self.started.elapsed().as_millis() as u64;
        self.report.map(|mut r| {
            r.millis = millis;
            let infos: Vec<TableInfo> = r.tables.iter().map(|t| t.info.clone()).collect();
            sort_losses(&mut r.data_loss, &infos);
            r
        })
    }
}
