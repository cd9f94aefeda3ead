//! Pairs the two catalogs: which tables are compared, under which key, which
//! columns (matched by name, or by attnum across a rename), in which common
//! order, and the COPY query each side runs.

use crate::catalog::{Catalog, Column, Table};
use crate::convert::Conversion;
use crate::error::{Error, Result};
use crate::filter::{column_matches, table_matches};
use crate::options::Options;
use crate::schema::Pairs;
use crate::value::{classify, Kind};

/// Alias of the table in every generated query: column references are
/// qualified with it, so no user column name can clash with ours.
pub const ALIAS: &str = "pgbd_t";

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
    /// How the child's values are read and compared.
    pub kind: Kind,
    /// How the parent's values are read (differs from `kind` after a type change).
    pub parent_kind: Kind,
    /// When the type changed: how a parent value reads in the child's type.
    pub conversion: Option<Conversion>,
    /// Selected as text although the type is not character data.
    pub literal: bool,
    /// Enum labels of the parent's type that the child's type no longer has.
    pub removed_labels: Vec<String>,
    /// Parent type (`format_type`).
    pub parent_type: String,
    /// Child type.
    pub child_type: String,
    /// The parent's and the child's type OIDs (a domain's own, not its base type's).
    pub type_oids: (u32, u32),
    /// What renderers need to know of the column on both sides.
    pub info: crate::report::ColumnInfo,
    /// The parent's and the child's types as the values-lost rule reads them.
    pub loss_shapes: (crate::loss::Shape, crate::loss::Shape),
    /// The type differs between the sides (deeply or by typmod): values can be
    /// lost in rows the new type reads as unchanged.
    pub type_changed: bool,
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
    /// Estimated rows of the larger side (at least one per 128 bytes on disk, when statistics are missing).
    pub rows: i64,
    /// Why tuple identity (`ctid`, `xmin`) cannot tell unchanged rows apart
    /// here, or `None` when it can (on one instance): see [`identity_blocker`].
    pub identity_blocker: Option<String>,
    /// Why the hash strategy cannot compare this table's rows by hashes, if it cannot.
    pub hash_blocker: Option<String>,
    /// The table in the parent (names, kind, foreign keys), for outputs that write rows.
    pub parent_side: crate::report::TableSide,
    /// The table in the child.
    pub child_side: crate::report::TableSide,
}

/// The parts of one side's row query.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Select list, in the plan's column order.
    pub select: String,
    /// `ONLY "schema"."table" AS pgbd_t` (without ONLY for a partitioned table).
    pub from: String,
    /// Key order, empty when there are no columns.
    pub order_by: String,
    /// Both sides' text is UTF-8 (or SQL_ASCII, passed through as is): its
    /// bytes are what the client receives, so block hashes hash them as
    /// stored; otherwise both sides convert to UTF-8 first, so that equal
    /// text still hashes equal.
    pub utf8: bool,
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
    postgres_protocol::escape::escape_identifier(s)
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
        // A partition on both sides is compared through its root; one that is a table of its own
        // on one side (detached on the branch, or attached) is compared as a table.
        if p.partition && c.partition {
            continue;
        }
        let names = [(p.schema.as_str(), p.name.as_str()), (c.schema.as_str(), c.name.as_str())];
        if !table_selected(opts, &names) {
            continue;
        }
        let id = plan.tables.len();
        plan.tables.push(table_plan(id, p, c, opts, pairs, (&parent.encoding, &child.encoding))?);
    }
    Ok(plan)
}

/// Whether the table filters select a table known by these `(schema, name)`s
/// (its names on both sides, when it was renamed): an include filter matching
/// either name includes it, an exclude filter matching either name excludes it.
pub fn table_selected(opts: &Options, names: &[(&str, &str)]) -> bool {
    let any = |globs: &[String]| names.iter().any(|(s, t)| globs.iter().any(|g| table_matches(g, s, t)));
    (opts.schemas.is_empty() || names.iter().any(|(s, _)| opts.schemas.iter().any(|x| x == s)))
        && (opts.tables.is_empty() || any(&opts.tables))
        && !any(&opts.exclude_tables)
}

/// A filter that selects nothing is almost always a typo: refuse it, alone or
/// together with the others (`-t 'public.*' -T 'public.*'` would pass a CI gate).
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
    if opts.filtered() && !all().any(|t| table_selected(opts, &[(&t.schema, &t.name)])) {
        return Err(Error::Options(
            "the table filters (--table, --exclude-table, --schema) together select no table on either side".into(),
        ));
    }
    Ok(())
}

/// Pairs columns by name, through renames. A parent column that a rename
/// pairs with one child column is not also paired by name with another.
fn pair_columns<'a>(p: &'a Table, c: &'a Table, pairs: &Pairs) -> Vec<(&'a Column, &'a Column)> {
    let table = c.qualified();
    let parent_of = |cc: &'a Column| pairs.column(&table, &cc.name).to_string();
    c.columns
        .iter()
        .filter_map(|cc| {
            let name = parent_of(cc);
            // Another child column, renamed from the parent column of this name, has it already.
            let taken = name == cc.name && c.columns.iter().any(|o| o.name != cc.name && parent_of(o) == name);
            if taken {
                return None;
            }
            p.column(&name).map(|pc| (pc, cc))
        })
        .collect()
}

fn table_plan(
    id: usize,
    p: &Table,
    c: &Table,
    opts: &Options,
    pairs: &Pairs,
    encodings: (&str, &str),
) -> Result<TablePlan> {
    let qualified = c.qualified();
    let pairs = pair_columns(p, c, pairs);
    // A renamed column (or table) is left out by either of its names.
    let excluded = |pc: &Column, cc: &Column| excluded_name(opts, c, &cc.name) || excluded_name(opts, p, &pc.name);
    let (key_source, key_names) = choose_key(p, c, &pairs, opts)?;
    let whole_row = key_source == KeySource::WholeRow;
    let mut columns = vec![];
    for name in &key_names {
        let (pc, cc) = pairs.iter().find(|(_, cc)| &cc.name == name).expect("key column is paired");
        if excluded(pc, cc) && !whole_row {
            return Err(Error::Options(format!("--exclude-columns: {qualified}.{name} is part of the key")));
        }
        columns.push(column_plan(pc, cc, true));
    }
    let mut columns = order_key(columns);
    for (pc, cc) in &pairs {
        if !key_names.contains(&cc.name) && !excluded(pc, cc) {
            columns.push(column_plan(pc, cc, whole_row));
        }
    }
    if whole_row {
        columns.retain(|col| !excluded_name(opts, c, &col.name) && !excluded_name(opts, p, &col.parent_name));
    }
    check_privileges(p, c, &columns)?;
    let nkey = if whole_row { columns.len() } else { key_names.len() };
    // Rows with equal keys in SQL but printed differently must still come in one order.
    let tie_break = matches!(key_source, KeySource::WholeRow | KeySource::Override);
    let utf8 = [encodings.0, encodings.1].iter().all(|e| matches!(*e, "UTF8" | "SQL_ASCII"));
    Ok(TablePlan {
        id,
        schema: c.schema.clone(),
        name: c.name.clone(),
        parent_qualified: p.qualified(),
        identity_blocker: identity_blocker(p, c, &columns, &key_source),
        hash_blocker: hash_blocker(&key_source),
        parent_query: Query { utf8, ..side_query(p, &columns, nkey, true, tie_break, encodings.0) },
        child_query: Query { utf8, ..side_query(c, &columns, nkey, false, tie_break, encodings.1) },
        key_source,
        nkey,
        bytes: p.bytes.max(c.bytes),
        rows: p.rows.max(c.rows).max(p.bytes.max(c.bytes) / 128),
        columns,
        parent_side: crate::report::TableSide::new(p),
        child_side: crate::report::TableSide::new(c),
    })
}

/// Key columns in merge order. A conversion that rounds (numeric scale, a
/// float's precision) turns distinct parent keys into ties, and ties in one
/// column would leave the parent's rows out of order in the next: such a
/// column goes last, and only one of them keeps its conversion (the others are
/// compared as text). Any column order is a valid key order, as long as both
/// sides sort by it.
fn order_key(columns: Vec<ColumnPlan>) -> Vec<ColumnPlan> {
    let (mut exact, mut lossy): (Vec<_>, Vec<_>) =
        columns.into_iter().partition(|c| c.conversion.is_none_or(|cv| cv.injective()));
    let last = lossy.pop();
    exact.extend(lossy.into_iter().map(|c| ColumnPlan {
        kind: Kind::Text,
        parent_kind: Kind::Text,
        conversion: None,
        literal: true,
        ..c
    }));
    exact.extend(last);
    exact
}

/// Why tuple identity cannot be trusted for this table, if it cannot. Equal
/// (`ctid`, `xmin`) proves the tuple untouched; it reads the same only if the
/// catalog reads it the same: same physical file, same columns at the same
/// attnums with the same types, modifiers, `attmissingval`, virtual generated
/// expressions, and types whose labels, attributes and names read the same
/// (see [`crate::reading`]).
pub fn identity_blocker(p: &Table, c: &Table, columns: &[ColumnPlan], key: &KeySource) -> Option<String> {
    let why = |s: &str| Some(s.to_string());
    if p.oid != c.oid {
        return why("not the same table (another OID)");
    }
    if p.kind != 'r' || c.kind != 'r' {
        return why("partitioned table");
    }
    if p.relfilenode != c.relfilenode {
        return why("the table was rewritten (another relfilenode)");
    }
    if !p.can_select || !c.can_select {
        return why("no table-level SELECT privilege (needed for ctid and xmin)");
    }
    if *key == KeySource::Override {
        return why("--key is verified by reading every row");
    }
    for col in columns {
        let (pc, cc) = (p.column(&col.parent_name), c.column(&col.name));
        let (Some(pc), Some(cc)) = (pc, cc) else { return why("column missing") };
        let reason = if pc.attnum != cc.attnum {
            "is another column (attnum)"
        } else if pc.type_oid != cc.type_oid || pc.type_name != cc.type_name {
            "changed type"
        } else if !pc.reading.reads_same(&cc.reading) {
            "has a type whose stored values read differently (enum labels, composite attributes, reg* names)"
        } else if pc.missing != cc.missing {
            "has another value for rows older than the column (attmissingval)"
        } else if pc.generated == "v" && (cc.generated != "v" || pc.generation != cc.generation) {
            "is virtual generated with another expression"
        } else if pc.generated != cc.generated {
            "changed how it is generated"
        } else {
            continue;
        };
        return Some(format!("column {} {reason}", col.name));
    }
    None
}

/// Block hashes pair rows by key and hash every value by the equality rule,
/// whatever the types: only a user-chosen key, which nothing guarantees
/// unique, must be read whole (the merge verifies it row by row).
fn hash_blocker(key: &KeySource) -> Option<String> {
    (*key == KeySource::Override).then(|| "--key is verified by reading every row".into())
}

/// A column the role may not read would fail the whole diff mid-way: say so
/// before anything is read, with the way out.
fn check_privileges(p: &Table, c: &Table, columns: &[ColumnPlan]) -> Result<()> {
    for col in columns {
        for (side, t, name) in [("parent", p, &col.parent_name), ("child", c, &col.name)] {
            if t.column(name).is_some_and(|tc| !tc.can_select) {
                return Err(Error::Options(format!(
                    "{side}: no SELECT privilege on column {}.{name}; grant it, or leave it out with \
                     --exclude-columns '{}.{name}'",
                    t.qualified(),
                    c.qualified()
                )));
            }
        }
    }
    Ok(())
}

fn excluded_name(opts: &Options, t: &Table, col: &str) -> bool {
    opts.exclude_columns.iter().any(|g| column_matches(g, &t.schema, &t.name, col))
}

/// The key: `--key`, else the first candidate (the parent's primary key, the
/// child's, then either side's unique indexes) that is a key on *both* sides —
/// NOT NULL by valid constraints and unique by a valid index — else the whole row.
fn choose_key(p: &Table, c: &Table, pairs: &[(&Column, &Column)], opts: &Options) -> Result<(KeySource, Vec<String>)> {
    // Keys are named in child terms; a parent key is translated through the pairing.
    let to_child = |names: &[String]| -> Option<Vec<String>> {
        names.iter().map(|n| pairs.iter().find(|(pc, _)| &pc.name == n).map(|(_, cc)| cc.name.clone())).collect()
    };
    let to_parent = |names: &[String]| -> Option<Vec<String>> {
        names.iter().map(|n| pairs.iter().find(|(_, cc)| &cc.name == n).map(|(pc, _)| pc.name.clone())).collect()
    };
    if let Some(k) = opts.keys.iter().rev().find(|k| table_matches(&k.table, &c.schema, &c.name)) {
        return match to_parent(&k.columns) {
            Some(_) if !k.columns.is_empty() => Ok((KeySource::Override, k.columns.clone())),
            _ => Err(Error::Options(format!(
                "--key {}={}: every key column must exist in {} on both sides",
                k.table,
                k.columns.join(","),
                c.qualified()
            ))),
        };
    }
    let candidates = p
        .unique_keys
        .iter()
        .filter(|k| k.primary)
        .filter_map(|k| Some((k, to_child(&k.columns)?)))
        .chain(c.unique_keys.iter().filter(|k| k.primary).map(|k| (k, k.columns.clone())))
        .chain(p.unique_keys.iter().filter(|k| !k.primary).filter_map(|k| Some((k, to_child(&k.columns)?))))
        .chain(c.unique_keys.iter().filter(|k| !k.primary).map(|k| (k, k.columns.clone())));
    for (k, cols) in candidates {
        let on_both = to_parent(&cols).is_some_and(|pcols| p.is_key(&pcols)) && c.is_key(&cols);
        if on_both {
            let source = if k.primary { KeySource::PrimaryKey } else { KeySource::UniqueIndex(k.name.clone()) };
            return Ok((source, cols));
        }
    }
    Ok((KeySource::WholeRow, pairs.iter().map(|(_, cc)| cc.name.clone()).collect()))
}

/// How a column is selected and compared. Types the diff reads in binary
/// (see [`classify`]) are compared on their bytes; a changed type is compared
/// through a [`Conversion`] where one exists; everything else as text.
fn column_plan(pc: &Column, cc: &Column, is_key: bool) -> ColumnPlan {
    let (pk, ck) = (classify(pc.base_type_oid), classify(cc.base_type_oid));
    let plan = |parent_kind, kind, conversion, literal| ColumnPlan {
        name: cc.name.clone(),
        parent_name: pc.name.clone(),
        kind,
        parent_kind,
        conversion,
        literal,
        removed_labels: removed_labels(&pc.reading, &cc.reading),
        parent_type: pc.type_name.clone(),
        child_type: cc.type_name.clone(),
        type_oids: (pc.type_oid, cc.type_oid),
        info: crate::report::ColumnInfo {
            compared_in_new_type: conversion.is_some(),
            ..crate::report::ColumnInfo::new(pc, cc)
        },
        loss_shapes: (
            crate::loss::Shape::new(pc.reading.clone(), pc.typmod, parent_kind, literal),
            crate::loss::Shape::new(cc.reading.clone(), cc.typmod, kind, literal),
        ),
        type_changed: pc.type_name != cc.type_name || pc.reading != cc.reading,
    };
    let text = || plan(Kind::Text, Kind::Text, None, true);
    let (Some(pk), Some(ck)) = (pk, ck) else { return text() };
    // Keys must be ordered identically by the server and by us.
    if is_key && !ck.orderable() {
        return text();
    }
    if pk == ck && pc.type_name == cc.type_name {
        return plan(pk, ck, None, false);
    }
    match Conversion::new(pk, ck, cc.typmod) {
        Some(cv) if !cv.needed() => plan(pk, ck, None, false),
        Some(cv) if !is_key || cv.for_keys() => plan(pk, ck, Some(cv), false),
        _ => text(),
    }
}

/// Labels an enum column's type lost between the sides: neither kept (same
/// label OID: a renamed label still labels its rows) nor present by name (a
/// type created again keeps the labels it repeats).
fn removed_labels(p: &crate::reading::Reading, c: &crate::reading::Reading) -> Vec<String> {
    use crate::reading::Reading;
    let (Reading::Enum(p), Reading::Enum(c)) = (p, c) else { return vec![] };
    let names: Vec<&String> = c.values().collect();
    p.iter().filter(|(oid, l)| !c.contains_key(oid) && !names.contains(l)).map(|(_, l)| l.clone()).collect()
}

/// The select expression of a column on one side, qualified with [`ALIAS`].
fn select_expr(col: &ColumnPlan, table_col: &Column) -> String {
    let ident = format!("{ALIAS}.{}", quote_ident(&table_col.name));
    if col.literal {
        return as_text(&ident, table_col.type_oid);
    }
    ident
}

/// `e` of type `type_oid` as text by the type's output function. `::text` would call a cast to
/// text if one exists, and whoever owns a type (an enum, a composite, a range, their arrays and
/// domains) may create one: a branch could run its own function with the reader's rights. So
/// the database's own types are printed with `format('%s', …)`, which calls the output function
/// and no cast; built-in types, whose casts only a superuser could add, keep `::text` (some of
/// their casts are not their output: `inet::text` shows the mask).
pub fn as_text(e: &str, type_oid: u32) -> String {
    if type_oid >= crate::reading::FIRST_NORMAL_OID {
        format!("CASE WHEN pg_catalog.num_nulls({e}) = 0 THEN pg_catalog.format('%s', {e}) END")
    } else {
        format!("({e})::text")
    }
}

/// The sort key of a key column: the server's order must be the one
/// [`crate::value::compare`] computes. Character data sorts as bytes (the "C"
/// collation; in a database that is not UTF-8, as its UTF-8 bytes, which is
/// what arrives); `tie_break` adds the print order of values equal in SQL but
/// printed differently (numeric scale, `-0`), which only non-unique keys can hold.
fn order_expr(kind: Kind, e: &str, tie_break: bool, encoding: &str) -> String {
    match kind {
        Kind::Text | Kind::BpChar if !matches!(encoding, "UTF8" | "SQL_ASCII") => {
            format!("convert_to(({e})::text, 'UTF8')")
        }
        Kind::Text | Kind::BpChar => format!("({e}) COLLATE \"C\""),
        Kind::Numeric if tie_break => format!("{e}, scale({e})"),
        Kind::Float4 | Kind::Float8 if tie_break => {
            format!("{e}, (CASE WHEN {e} = 0 THEN ({e})::text END) COLLATE \"C\"")
        }
        _ => e.to_string(),
    }
}

fn side_query(t: &Table, columns: &[ColumnPlan], nkey: usize, parent: bool, tie_break: bool, enc: &str) -> Query {
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
        .map(|(col, e)| match (parent, col.conversion.and_then(|cv| cv.order_cast())) {
            // The parent sorts in the child's terms where its stored order would differ.
            (true, Some(cast)) => format!("({e})::{cast}"),
            (true, None) => order_expr(col.parent_kind, e, tie_break, enc),
            (false, _) => order_expr(col.kind, e, tie_break, enc),
        })
        .collect();
    // ONLY: rows of inheritance children belong to those children, which are diffed on their own.
    let only = if t.kind == 'p' { "" } else { "ONLY " };
    Query {
        select: if exprs.is_empty() { "NULL".to_string() } else { exprs.join(", ") },
        from: format!("{only}{}.{} AS {ALIAS}", quote_ident(&t.schema), quote_ident(&t.name)),
        order_by: order.join(", "),
        utf8: false,
    }
}
