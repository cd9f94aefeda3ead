//! Pairs the two catalogs: which tables are compared, under which key, which
//! columns (matched by name, or by attnum across a rename), in which common
//! order, and the COPY query each side runs.

use crate::catalog::{Catalog, Column, Table};
use crate::error::{Error, Result};
use crate::filter::{column_matches, table_matches};
use crate::options::Options;
use crate::schema::Pairs;
use crate::value::{classify, common_kind, Kind};

/// Where a table's row identity comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "source", content = "name")]
pub enum KeySource {
    /// The primary key.
    PrimaryKey,
    /// A unique index over NOT NULL columns (its name).
    UniqueIndex(String),
    /// `--key` given by the user.
    Override,
    /// No key: every column; rows are a multiset.
    WholeRow,
}

/// One compared column.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// Name on the child side (the current name).
    pub name: String,
    /// Name on the parent side (differs after a rename).
    pub parent_name: String,
    /// How values are compared.
    pub kind: Kind,
    /// Selected as text although the type is not character data.
    pub literal: bool,
    /// Parent type (`format_type`).
    pub parent_type: String,
    /// Child type.
    pub child_type: String,
}

/// One table compared on both sides.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// Index in [`Plan::tables`].
    pub id: usize,
    /// Schema on the child side.
    pub schema: String,
    /// Name on the child side.
    pub name: String,
    /// `schema.name` on the parent side (differs after a rename).
    pub parent_qualified: String,
    /// Where the key comes from.
    pub key_source: KeySource,
    /// Key columns come first in `columns`; this many of them.
    pub nkey: usize,
    /// Compared columns in the order both COPY queries produce them.
    pub columns: Vec<ColumnPlan>,
    /// What the parent side selects.
    pub parent_query: Query,
    /// What the child side selects.
    pub child_query: Query,
    /// Size on disk of the larger side, for scheduling.
    pub bytes: i64,
    /// Both sides are the same plain table in the same physical file (same OID and
    /// relfilenode, not partitioned): tuple identity (`ctid`, `xmin`) can tell
    /// unchanged rows apart without reading them.
    pub same_relation: bool,
}

/// The parts of one side's row query.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Select list, in the plan's column order.
    pub select: String,
    /// `ONLY "schema"."table"` (or without ONLY for a partitioned table).
    pub from: String,
    /// Key order, empty when there are no columns.
    pub order_by: String,
}

impl Query {
    /// `COPY (SELECT … FROM … [WHERE filter] ORDER BY …) TO STDOUT (FORMAT binary)`.
    pub fn copy(&self, filter: Option<&str>) -> String {
        format!("COPY ({}) TO STDOUT (FORMAT binary)", self.select_sql(filter))
    }

    /// `SELECT … FROM … [WHERE filter] ORDER BY …`.
    pub fn select_sql(&self, filter: Option<&str>) -> String {
        let mut sql = format!("SELECT {} FROM {}", self.select, self.from);
        if let Some(f) = filter {
            sql.push_str(" WHERE ");
            sql.push_str(f);
        }
        if !self.order_by.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&self.order_by);
        }
        sql
    }
}

impl TablePlan {
    /// `schema.name` (child side).
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Key column names.
    pub fn key_names(&self) -> Vec<String> {
        self.columns[..self.nkey].iter().map(|c| c.name.clone()).collect()
    }
}

/// What will be compared.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Tables on both sides, in report order (schema, name).
    pub tables: Vec<TablePlan>,
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Builds the plan. Tables and columns pair by name, or through the renames
/// the schema comparison found (`pairs`), so a renamed table or column is
/// compared under its new name.
pub fn build(parent: &Catalog, child: &Catalog, opts: &Options, pairs: &Pairs) -> Result<Plan> {
    check_filters(parent, child, opts)?;
    let mut plan = Plan::default();
    for c in &child.tables {
        let parent_name = pairs.table(&c.qualified()).to_string();
        let Some(p) = parent.tables.iter().find(|p| p.qualified() == parent_name) else { continue };
        if !(selected(opts, p) || selected(opts, c)) {
            continue;
        }
        let id = plan.tables.len();
        plan.tables.push(table_plan(id, p, c, opts, pairs)?);
    }
    Ok(plan)
}

pub(crate) fn selected(opts: &Options, t: &Table) -> bool {
    table_selected(opts, &t.schema, &t.name)
}

/// Whether the table filters select `schema.table`.
pub fn table_selected(opts: &Options, schema: &str, table: &str) -> bool {
    (opts.schemas.is_empty() || opts.schemas.iter().any(|s| s == schema))
        && (opts.tables.is_empty() || opts.tables.iter().any(|g| table_matches(g, schema, table)))
        && !opts.exclude_tables.iter().any(|g| table_matches(g, schema, table))
}

/// A filter that selects nothing is almost always a typo: refuse it.
fn check_filters(parent: &Catalog, child: &Catalog, opts: &Options) -> Result<()> {
    let all = || parent.tables.iter().chain(child.tables.iter());
    for s in &opts.schemas {
        if !all().any(|t| &t.schema == s) {
            return Err(Error::Options(format!("--schema {s}: no table in schema \"{s}\" on either side")));
        }
    }
    for (flag, globs) in [("--table", &opts.tables), ("--exclude-table", &opts.exclude_tables)] {
        for g in globs {
            if !all().any(|t| table_matches(g, &t.schema, &t.name)) {
                return Err(Error::Options(format!("{flag} {g}: matches no table on either side")));
            }
        }
    }
    for g in &opts.exclude_columns {
        let hit = all().any(|t| t.columns.iter().any(|c| column_matches(g, &t.schema, &t.name, &c.name)));
        if !hit {
            return Err(Error::Options(format!("--exclude-columns {g}: matches no column on either side")));
        }
    }
    for k in &opts.keys {
        if !all().any(|t| table_matches(&k.table, &t.schema, &t.name)) {
            return Err(Error::Options(format!("--key {}: matches no table on either side", k.table)));
        }
    }
    Ok(())
}

/// Pairs columns by name, through renames.
fn pair_columns<'a>(p: &'a Table, c: &'a Table, pairs: &Pairs) -> Vec<(&'a Column, &'a Column)> {
    let table = c.qualified();
    c.columns.iter().filter_map(|cc| p.column(pairs.column(&table, &cc.name)).map(|pc| (pc, cc))).collect()
}

fn table_plan(id: usize, p: &Table, c: &Table, opts: &Options, pairs: &Pairs) -> Result<TablePlan> {
    let qualified = c.qualified();
    let pairs = pair_columns(p, c, pairs);
    let excluded = |col: &Column| excluded_name(opts, c, &col.name);
    let (key_source, key_names) = choose_key(p, c, &pairs, opts)?;
    let mut columns = vec![];
    for name in &key_names {
        let (pc, cc) = pairs.iter().find(|(_, cc)| &cc.name == name).expect("key column is paired");
        if excluded(cc) && key_source != KeySource::WholeRow {
            return Err(Error::Options(format!("--exclude-columns: {qualified}.{name} is part of the key")));
        }
        columns.push(column_plan(pc, cc, true));
    }
    for (pc, cc) in &pairs {
        if !key_names.contains(&cc.name) && !excluded(cc) {
            columns.push(column_plan(pc, cc, key_source == KeySource::WholeRow));
        }
    }
    if key_source == KeySource::WholeRow {
        columns.retain(|col| !excluded_name(opts, c, &col.name));
    }
    let nkey = if key_source == KeySource::WholeRow { columns.len() } else { key_names.len() };
    Ok(TablePlan {
        id,
        schema: c.schema.clone(),
        name: c.name.clone(),
        parent_qualified: p.qualified(),
        key_source,
        nkey,
        parent_query: side_query(p, &columns, nkey, true),
        child_query: side_query(c, &columns, nkey, false),
        bytes: p.bytes.max(c.bytes),
        same_relation: p.oid == c.oid && p.kind == 'r' && c.kind == 'r' && p.relfilenode == c.relfilenode,
        columns,
    })
}

fn excluded_name(opts: &Options, t: &Table, col: &str) -> bool {
    opts.exclude_columns.iter().any(|g| column_matches(g, &t.schema, &t.name, col))
}

fn choose_key(p: &Table, c: &Table, pairs: &[(&Column, &Column)], opts: &Options) -> Result<(KeySource, Vec<String>)> {
    // Keys are named in child terms; a parent key is translated through the pairing.
    let to_child = |names: &[String]| -> Option<Vec<String>> {
        names.iter().map(|n| pairs.iter().find(|(pc, _)| &pc.name == n).map(|(_, cc)| cc.name.clone())).collect()
    };
    let in_child = |names: &[String]| -> Option<Vec<String>> {
        names.iter().all(|n| pairs.iter().any(|(_, cc)| &cc.name == n)).then(|| names.to_vec())
    };
    if let Some(k) = opts.keys.iter().rev().find(|k| table_matches(&k.table, &c.schema, &c.name)) {
        return match in_child(&k.columns) {
            Some(cols) if !cols.is_empty() => Ok((KeySource::Override, cols)),
            _ => Err(Error::Options(format!(
                "--key {}={}: every key column must exist in {} on both sides",
                k.table,
                k.columns.join(","),
                c.qualified()
            ))),
        };
    }
    if let Some(cols) = p.primary_key.as_deref().and_then(to_child) {
        return Ok((KeySource::PrimaryKey, cols));
    }
    if let Some(cols) = c.primary_key.as_deref().and_then(in_child) {
        return Ok((KeySource::PrimaryKey, cols));
    }
    for (name, cols) in &p.unique_not_null {
        if let Some(cols) = to_child(cols) {
            return Ok((KeySource::UniqueIndex(name.clone()), cols));
        }
    }
    for (name, cols) in &c.unique_not_null {
        if let Some(cols) = in_child(cols) {
            return Ok((KeySource::UniqueIndex(name.clone()), cols));
        }
    }
    Ok((KeySource::WholeRow, pairs.iter().map(|(_, cc)| cc.name.clone()).collect()))
}

fn column_plan(pc: &Column, cc: &Column, is_key: bool) -> ColumnPlan {
    let (pk, ck) = (classify(pc.base_type_oid), classify(cc.base_type_oid));
    let (mut kind, mut literal) = match (pk, ck) {
        (Some(a), Some(b)) => match common_kind(a, b) {
            Some((k, _)) => (k, false),
            None if matches!((a, b), (Kind::Text | Kind::BpChar, Kind::Text | Kind::BpChar)) => (Kind::Text, false),
            None => (Kind::Text, true),
        },
        _ => (Kind::Text, true),
    };
    // Keys must be ordered identically by the server and by us.
    if is_key && !kind.orderable() {
        kind = Kind::Text;
        literal = true;
    }
    ColumnPlan {
        name: cc.name.clone(),
        parent_name: pc.name.clone(),
        kind,
        literal,
        parent_type: pc.type_name.clone(),
        child_type: cc.type_name.clone(),
    }
}

/// The select expression of a column on one side.
fn select_expr(col: &ColumnPlan, table_col: &Column) -> String {
    let ident = quote_ident(&table_col.name);
    let own = classify(table_col.base_type_oid);
    let cast = match (col.kind, own) {
        (_, _) if col.literal => Some("text"),
        (Kind::Text, Some(Kind::BpChar)) => Some("text"),
        (Kind::Text, Some(Kind::Jsonb | Kind::Json)) => Some("text"),
        (k, Some(o)) if k == o => None,
        (Kind::Int8, _) => Some("int8"),
        (Kind::Numeric, _) => Some("numeric"),
        (Kind::Float8, _) => Some("float8"),
        _ => None,
    };
    match cast {
        Some(t) => format!("{ident}::{t}"),
        None => ident,
    }
}

fn side_query(t: &Table, columns: &[ColumnPlan], nkey: usize, parent: bool) -> Query {
    let exprs: Vec<String> = columns
        .iter()
        .map(|col| {
            let name = if parent { &col.parent_name } else { &col.name };
            let tc = t.column(name).expect("planned column exists");
            select_expr(col, tc)
        })
        .collect();
    let order: Vec<String> = columns[..nkey]
        .iter()
        .zip(&exprs)
        .map(|(col, e)| if col.kind.needs_c_collation() { format!("({e}) COLLATE \"C\"") } else { e.clone() })
        .collect();
    // ONLY: rows of inheritance children belong to those children, which are diffed on their own.
    let only = if t.kind == 'p' { "" } else { "ONLY " };
    Query {
        select: if exprs.is_empty() { "NULL".to_string() } else { exprs.join(", ") },
        from: format!("{only}{}.{}", quote_ident(&t.schema), quote_ident(&t.name)),
        order_by: order.join(", "),
    }
}
