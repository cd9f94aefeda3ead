//! The SQL patch (`--format sql`, documented in `docs/output-format.md`): a
//! script that makes the parent's rows equal the branch's (or, `--reverse`,
//! the branch's equal the parent's), in one transaction.
//!
//! Statements are rendered as rows arrive and kept per table and phase in
//! small buffers that move to one shared temporary file, so memory stays flat
//! however large the diff. At the end they are written in an order foreign
//! keys accept: DELETEs (referencing tables first) from every table no row
//! that stays points into, then per table, referenced tables first, UPDATEs
//! and INSERTs, then the other DELETEs with referencing tables first. Between the phases the target holds
//! the old rows and the new ones together, so every reference an inserted or
//! updated row makes already resolves, and a row is deleted only once nothing
//! that stays points at it. Deferrable keys are deferred to COMMIT; rows of a
//! table that references itself through a non-deferrable key are ordered by
//! following the key; a cycle that no order satisfies falls back to
//! `session_replication_role = replica` (see [`SqlSink`]).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use super::sink::{End, Sink};
use super::sql_order::{self, RowLinks, SelfKey};
use crate::plan::{quote_ident, KeySource};
use crate::reading::Reading;
use crate::report::{Endpoint, Event, Op, RowChange, TableInfo};
use crate::schema::SchemaChange;
use crate::value::Value;

/// Statements buffered in memory per table and phase before they move to the
/// temporary file.
const SPILL_AT: usize = 16 << 10;

/// Longest attribute value quoted in a schema-change comment.
const COMMENT_VALUE_MAX: usize = 120;

/// Settings the patch pins for its transaction (`SET LOCAL`), whatever the
/// target's defaults: how its literals are read (`standard_conforming_strings`,
/// the date, interval and money styles, `TimeZone`, `array_nulls`, `xmloption`,
/// `search_path` for every name and operator), and how its exact row predicates
/// print values (`extra_float_digits`, `bytea_output`): the same as the diff's own
/// sessions, so a printed-form match is the diff's own equality. `search_path` is
/// `pg_catalog` with `pg_temp` last, so neither a user's nor a temporary object
/// can stand in for a name the patch writes (CVE-2018-1058). `row_security = off`
/// makes a row-level security policy that would hide rows from the applying
/// role fail the patch instead of leaving rows silently unchanged.
const PINNED: &[(&str, &str)] = &[
    ("client_encoding", "'UTF8'"),
    ("standard_conforming_strings", "on"),
    ("search_path", "pg_catalog, pg_temp"),
    ("DateStyle", "'ISO, YMD'"),
    ("IntervalStyle", "'postgres'"),
    ("TimeZone", "'UTC'"),
    ("extra_float_digits", "3"),
    ("bytea_output", "'hex'"),
    ("lc_monetary", "'C'"),
    ("array_nulls", "on"),
    ("xmloption", "content"),
    ("row_security", "off"),
];

/// Equality written in full: pg_catalog's operator for the operand types (or
/// its polymorphic one, for enums, arrays, ranges, composites), never a user's.
const EQ: &str = "OPERATOR(pg_catalog.=)";

/// Built-in types (by OID, domains resolved) whose `=` holds exactly when the
/// diff finds two values equal: bool, bytea, "char", int8, int2, int4, oid,
/// date, time, timestamp, timestamptz, uuid.
const IDENTITY_EQ: &[u32] = &[16, 17, 18, 20, 21, 23, 26, 1082, 1083, 1114, 1184, 2950];

/// Character types (name, text, char(n), varchar): `=` under the "C" collation
/// compares bytes (char(n) without its padding, as the diff does).
const CHARACTER: &[u32] = &[19, 25, 1042, 1043];

/// The SQL patch as a [`Sink`].
///
/// - Forward (default): applied to the parent, makes its rows equal the
///   branch's. Names, types, generated and identity columns and foreign keys
///   are the branch's: the target is assumed to have the branch's schema.
/// - Reverse: applied to the branch, makes its rows equal the parent's, with
///   the parent's names, types and foreign keys.
///
/// A value of a redacted column cannot be written: the patch is refused with
/// an error naming the column, and nothing is written.
pub struct SqlSink<W: Write> {
    out: W,
    reverse: bool,
    endpoints: Option<(Endpoint, Endpoint)>,
    tables: Vec<TableInfo>,
    buffers: Vec<TableStatements>,
    schema: Vec<SchemaChange>,
    store: Store,
}

impl<W: Write> SqlSink<W> {
    /// A forward patch (`reverse` false) or one that takes the branch back to the parent.
    pub fn new(reverse: bool, out: W) -> SqlSink<W> {
        SqlSink {
            out,
            reverse,
            endpoints: None,
            tables: vec![],
            buffers: vec![],
            schema: vec![],
            store: Store::default(),
        }
    }

    fn started(&mut self, tables: &[TableInfo]) {
        self.tables = tables.to_vec();
        self.buffers =
            tables.iter().map(|t| TableStatements::new(&Target { info: t, reverse: self.reverse })).collect();
    }

    fn row(&mut self, table: usize, change: &RowChange) -> io::Result<()> {
        let (Some(info), Some(buf)) = (self.tables.get(table), self.buffers.get_mut(table)) else {
            return Ok(());
        };
        let t = Target { info, reverse: self.reverse };
        let (before, after) = (change.before.as_deref(), change.after.as_deref());
        // In reverse, the branch is the target: its rows are deleted, the parent's inserted.
        let (old, new) = if self.reverse { (after, before) } else { (before, after) };
        let missing = || io::Error::other(format!("{}: a changed row without its values", t.qualified()));
        match (change.op, self.reverse) {
            (Op::Insert, false) | (Op::Delete, true) => {
                let row = new.ok_or_else(missing)?;
                let sql = t.insert(row)?;
                buf.push(Phase::Insert, &mut self.store, sql, row)
            }
            (Op::Delete, false) | (Op::Insert, true) => {
                let row = old.ok_or_else(missing)?;
                let sql = t.delete(&change.key)?;
                buf.push(Phase::Delete, &mut self.store, sql, row)
            }
            (Op::Update, _) => {
                let row = new.ok_or_else(missing)?;
                buf.note_moved_references(&t, &change.changed);
                match t.update(&change.key, &change.changed, row)? {
                    Some(sql) => buf.push(Phase::Update, &mut self.store, sql, row),
                    None => Ok(()),
                }
            }
        }
    }
}

impl<W: Write> Sink for SqlSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started { parent, child, tables, .. } => {
                self.endpoints = Some((parent.clone(), child.clone()));
                self.started(tables);
            }
            Event::Schema(c) => self.schema.push(c.clone()),
            Event::Row { table, change } => self.row(*table, change)?,
            _ => {}
        }
        Ok(())
    }

    fn finish(self: Box<Self>, _end: &End) -> io::Result<()> {
        let SqlSink { mut out, reverse, endpoints, tables, mut buffers, schema, mut store } = *self;
        store.seal()?;
        let plan = Plan::new(&tables, &mut buffers, reverse);
        header(&mut out, reverse, endpoints.as_ref(), &schema, &plan, &buffers)?;
        let names: Vec<String> = tables.iter().map(|info| Target { info, reverse }.qualified()).collect();
        // Deleting first frees unique values (an email moved to a new row) before anything is
        // inserted; referencing tables first, so nothing points at a row when it goes.
        for &i in plan.order.iter().rev().filter(|&&i| !plan.late_deletes[i]) {
            buffers[i].write(Phase::Delete, &names[i], &mut store, &mut out)?;
        }
        // Per table, referenced tables first: UPDATEs before INSERTs, so a unique value an
        // updated row gives up is free before a new row takes it; every reference either
        // makes resolves, as their tables came before. A table whose UPDATEs may point at
        // its own new rows (a moved non-deferrable self-reference) inserts first.
        for &i in &plan.order {
            let phases = if buffers[i].self_references_moved {
                [Phase::Insert, Phase::Update]
            } else {
                [Phase::Update, Phase::Insert]
            };
            for phase in phases {
                buffers[i].write(phase, &names[i], &mut store, &mut out)?;
            }
        }
        for &i in plan.order.iter().rev().filter(|&&i| plan.late_deletes[i]) {
            buffers[i].write(Phase::Delete, &names[i], &mut store, &mut out)?;
        }
        out.write_all(b"\nCOMMIT;\n")?;
        out.flush()
    }
}

/// The order tables are written in, and whether foreign-key checks must be
/// switched off because no order satisfies them.
struct Plan {
    /// Tables, referenced ones first (INSERTs in this order, DELETEs reversed).
    order: Vec<usize>,
    /// Tables whose non-deferrable foreign keys form a cycle that rows cross.
    cycle: Vec<String>,
    /// Per table: its DELETEs wait until after the UPDATEs, because a row that
    /// stays may still point at a deleted row until its UPDATE moves it away.
    late_deletes: Vec<bool>,
}

impl Plan {
    fn new(tables: &[TableInfo], buffers: &mut [TableStatements], reverse: bool) -> Plan {
        let targets: Vec<Target> = tables.iter().map(|info| Target { info, reverse }).collect();
        let position = |schema: &str, name: &str| targets.iter().position(|t| t.ident() == (schema, name));
        // (from, to, deferrable, moved): `from` references `to`; `moved`: an UPDATE changes
        // the referencing columns.
        let mut edges = vec![];
        for (i, t) in targets.iter().enumerate() {
            for (k, fk) in t.foreign_keys().iter().enumerate() {
                if let Some(j) = position(&fk.ref_schema, &fk.ref_table) {
                    edges.push((i, j, fk.deferrable, buffers[i].moved_references.get(k).copied().unwrap_or(true)));
                }
            }
        }
        let pairs: Vec<(usize, usize)> = edges.iter().map(|&(a, b, _, _)| (a, b)).collect();
        let components = sql_order::components(tables.len(), &pairs);
        let mut cycle = vec![];
        for comp in &components {
            let rigid = edges.iter().any(|&(a, b, d, _)| !d && a != b && comp.contains(&a) && comp.contains(&b));
            if comp.len() > 1 && rigid && comp.iter().any(|&i| buffers[i].moves_rows()) {
                cycle.extend(comp.iter().map(|&i| targets[i].qualified()));
            }
        }
        for (i, b) in buffers.iter_mut().enumerate() {
            if !b.order_rows() {
                cycle.push(targets[i].qualified());
            }
        }
        cycle.sort();
        cycle.dedup();
        let late_deletes = late_deletes(tables.len(), &edges);
        Plan { order: components.into_iter().flatten().collect(), cycle, late_deletes }
    }
}

/// Which tables delete after the UPDATEs. A row can be deleted early (before any
/// INSERT, which frees its unique values for the rows that take them) unless a row
/// that stays points at it: the branch has no row pointing at a deleted one, so such
/// a row is one whose UPDATE changes the referencing columns of a non-deferrable key.
/// Its table deletes late, and so does every table it references (their rows may be
/// pointed at by its late-deleted rows). Deferrable keys are checked at COMMIT.
fn late_deletes(n: usize, edges: &[(usize, usize, bool, bool)]) -> Vec<bool> {
    let mut late = vec![false; n];
    for &(_, to, deferrable, moved) in edges {
        if !deferrable && moved {
            late[to] = true;
        }
    }
    let mut changed = true;
    while changed {
        changed = false;
        for &(from, to, deferrable, _) in edges {
            if !deferrable && late[from] && !late[to] {
                late[to] = true;
                changed = true;
            }
        }
    }
    late
}

fn header(
    out: &mut impl Write,
    reverse: bool,
    endpoints: Option<&(Endpoint, Endpoint)>,
    schema: &[SchemaChange],
    plan: &Plan,
    buffers: &[TableStatements],
) -> io::Result<()> {
    let (parent, child) = endpoints.map_or(("?", "?"), |(p, c)| (p.endpoint.as_str(), c.endpoint.as_str()));
    let (target, source, shape) = if reverse {
        (child, parent, "the parent's schema (--reverse)")
    } else {
        (parent, child, "the branch's schema")
    };
    let statements: u64 = buffers.iter().map(|b| b.count()).sum();
    writeln!(out, "-- pgbranchdiff SQL patch{}", if reverse { " (--reverse)" } else { "" })?;
    writeln!(out, "-- Makes the rows of {} equal those of {}.", comment(target), comment(source))?;
    writeln!(out, "-- Apply with: psql -X -v ON_ERROR_STOP=1 -f THIS_FILE TARGET. One transaction: all or nothing.")?;
    writeln!(out, "-- Assumes the target already has {shape}: schema changes are listed, not replayed.")?;
    writeln!(out, "-- Generated columns are not written; columns left out of the diff keep their values on UPDATE")?;
    writeln!(out, "-- and take their defaults on INSERT. Triggers fire; sequences are not advanced.")?;
    writeln!(out, "-- {statements} row{} to write.", if statements == 1 { "" } else { "s" })?;
    schema_comments(out, schema)?;
    out.write_all(b"\nBEGIN;\n")?;
    for (name, value) in PINNED {
        writeln!(out, "SET LOCAL {name} = {value};")?;
    }
    out.write_all(b"SET CONSTRAINTS ALL DEFERRED;\n")?;
    if !plan.cycle.is_empty() {
        writeln!(
            out,
            "-- Non-deferrable foreign keys that no statement order satisfies ({}): this transaction\n\
             -- skips foreign-key checks and ordinary triggers. Needs a superuser (or, PostgreSQL 15+,\n\
             -- SET privilege on session_replication_role).\n\
             SET LOCAL session_replication_role = replica;",
            comment(&plan.cycle.join(", "))
        )?;
    }
    Ok(())
}

fn schema_comments(out: &mut impl Write, schema: &[SchemaChange]) -> io::Result<()> {
    let roots: Vec<&SchemaChange> = schema.iter().filter(|c| c.cause.is_none()).collect();
    if roots.is_empty() {
        return Ok(());
    }
    writeln!(out, "--\n-- Schema changes from parent to branch ({}), not replayed:", roots.len())?;
    for c in roots {
        let mut line = format!("--   {} {} {}", c.op.label(), c.kind, comment(&c.object));
        if let (crate::schema::ChangeOp::Renamed, Some(from)) = (c.op, c.before.get("name")) {
            line.push_str(&format!(" (from {})", comment(from)));
        }
        if c.op == crate::schema::ChangeOp::Altered {
            let attrs: Vec<String> = c
                .before
                .keys()
                .chain(c.after.keys().filter(|k| !c.before.contains_key(*k)))
                .map(|k| {
                    let side = |m: &std::collections::BTreeMap<String, String>| {
                        m.get(k).map_or("(none)".to_string(), |v| comment(v))
                    };
                    format!("{k} {} → {}", side(&c.before), side(&c.after))
                })
                .collect();
            line.push_str(&format!(": {}", attrs.join("; ")));
        }
        if !c.danger.is_empty() {
            let labels: Vec<&str> = c.danger.iter().map(|d| d.label()).collect();
            line.push_str(&format!(" [{}]", labels.join(", ")));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Text safe inside a `--` comment: control characters escaped (a newline
/// would end the comment and turn the rest into SQL), long values cut.
fn comment(s: &str) -> String {
    let mut out = String::new();
    for (n, ch) in s.chars().enumerate() {
        if n == COMMENT_VALUE_MAX {
            out.push('…');
            break;
        }
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A string as an SQL literal, exact under `standard_conforming_strings = on`:
/// `'…'` with quotes doubled and backslashes as they are; a string with ASCII
/// control characters as an escape string `E'…'` (`\n`, `\t`, `\x01`, `\\`), so
/// the script stays one line per statement and survives editors and transports.
pub fn quote_literal(s: &str) -> String {
    let controls = s.bytes().any(|b| b < 0x20 || b == 0x7f);
    let mut out = String::with_capacity(s.len() + 3);
    if !controls {
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
        return out;
    }
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // At most two hex digits follow \x, so what comes next cannot be taken into it.
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A non-NULL value as a literal cast to `type_name` (`'9.90'::numeric(12,2)`,
/// `'\x01'::bytea`, `'NaN'::double precision`); NULL as `NULL`.
pub fn value_literal(v: &Value, type_name: &str) -> String {
    typed_literal(v, type_name, false)
}

/// As [`value_literal`]; `real` prints a float as the shortest text that reads
/// back as the same `real` (a float4 held as f64 would print 17 digits).
fn typed_literal(v: &Value, type_name: &str, real: bool) -> String {
    let text = match v {
        // Shortest round-trip text, in exponent form when long (`1e-30`, not 31 zeros).
        Value::Float(f) if f.is_finite() && real => Some(format!("{:?}", *f as f32)),
        Value::Float(f) if f.is_finite() => Some(format!("{f:?}")),
        other => other.to_text(),
    };
    match text {
        None => "NULL".into(),
        Some(text) => format!("{}::{type_name}", quote_literal(&text)),
    }
}

/// How a key value is matched (see [`Target::key_predicate`]).
#[derive(Clone, Copy)]
enum Match {
    /// `col = lit`, with pg_catalog's operator.
    Equal,
    /// `col COLLATE "C" = lit`: the same bytes.
    Bytes,
    /// `format('%s', col) COLLATE "C" = format('%s', lit)`: the same printed form.
    Printed,
}

/// Whether pg_catalog has the `=` of a type that reads this way (enums,
/// arrays, ranges and composites through its polymorphic operators), so that
/// `OPERATOR(pg_catalog.=)` finds it. A `reg*` type or a table's row type is
/// not assumed to; an extension's base type has its own.
fn catalog_equality(reading: &Reading) -> bool {
    match reading {
        Reading::Builtin(_) | Reading::Enum(_) => true,
        Reading::Domain { base, .. } => catalog_equality(base),
        Reading::Array(e) | Reading::Range(e) | Reading::Multirange(e) => catalog_equality(e),
        Reading::Composite(fields) => fields.iter().all(|(_, _, r)| catalog_equality(r)),
        Reading::Unstable(_) | Reading::Base { .. } => false,
    }
}

/// Whether a value may be a composite, for which `IS NULL` is also true of
/// `ROW(NULL, NULL)` (a table's row type reads as [`Reading::Unstable`]).
fn may_be_row(reading: &Reading) -> bool {
    match reading {
        Reading::Domain { base, .. } => may_be_row(base),
        Reading::Composite(_) | Reading::Unstable(_) => true,
        _ => false,
    }
}

/// The statements of one phase of one table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Insert,
    Update,
    Delete,
}

impl Phase {
    fn word(self) -> &'static str {
        match self {
            Phase::Insert => "INSERT",
            Phase::Update => "UPDATE",
            Phase::Delete => "DELETE",
        }
    }
}

/// One table as the patch writes to it: the target side's names, types and rules.
struct Target<'a> {
    info: &'a TableInfo,
    reverse: bool,
}

impl Target<'_> {
    /// (schema, name) on the target side.
    fn ident(&self) -> (&str, &str) {
        let side = if self.reverse { &self.info.parent_side } else { &self.info.child_side };
        if !side.name.is_empty() {
            return (&side.schema, &side.name);
        }
        // A hand-built TableInfo without sides: the names it has.
        match (&self.info.parent_name, self.reverse) {
            (Some(p), true) => p.split_once('.').unwrap_or(("", p)),
            _ => (&self.info.schema, &self.info.name),
        }
    }

    fn qualified(&self) -> String {
        let (s, n) = self.ident();
        format!("{s}.{n}")
    }

    fn table(&self) -> String {
        let (s, n) = self.ident();
        format!("{}.{}", quote_ident(s), quote_ident(n))
    }

    fn side(&self) -> &crate::report::TableSide {
        if self.reverse {
            &self.info.parent_side
        } else {
            &self.info.child_side
        }
    }

    fn foreign_keys(&self) -> &[crate::catalog::ForeignKey] {
        &self.side().foreign_keys
    }

    /// `ONLY` keeps inheritance children out; a partitioned table's rows are in its partitions.
    fn only(&self) -> &'static str {
        if self.side().partitioned {
            ""
        } else {
            "ONLY "
        }
    }

    fn names(&self) -> Vec<&str> {
        let c = &self.info.column_info;
        if self.reverse {
            c.iter().map(|c| c.parent_name.as_str()).collect()
        } else {
            c.iter().map(|c| c.name.as_str()).collect()
        }
    }

    fn column(&self, i: usize) -> String {
        let c = &self.info.column_info[i];
        quote_ident(if self.reverse { &c.parent_name } else { &c.name })
    }

    fn generated(&self, i: usize) -> bool {
        let c = &self.info.column_info[i];
        if self.reverse {
            c.parent_generated
        } else {
            c.generated
        }
    }

    fn identity_always(&self, i: usize) -> bool {
        let c = &self.info.column_info[i];
        (if self.reverse { c.parent_identity } else { c.identity }) == Some('a')
    }

    /// The value of column `i` as a typed literal; a redacted one is refused.
    fn literal(&self, i: usize, v: &Value) -> io::Result<String> {
        let c = &self.info.column_info[i];
        if c.redacted || matches!(v, Value::Redacted(_)) {
            let name = if self.reverse { &c.parent_name } else { &c.name };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "--format sql: column {}.{name} is redacted, and a patch cannot write redacted values \
                     (leave the column out with --exclude-columns, or do not redact it: --redact, --show-masked)",
                    self.qualified()
                ),
            ));
        }
        let type_name = if self.reverse { &c.parent_type } else { &c.type_name };
        let real = c.base_type_oid == 700 && type_name == &c.type_name;
        Ok(typed_literal(v, type_name, real))
    }

    /// Whether the target's type of column `i` is the one `base_type_oid` and
    /// `reading` describe (the branch's; with `--reverse`, the parent's only if unchanged).
    fn known_type(&self, i: usize) -> bool {
        let c = &self.info.column_info[i];
        !self.reverse || c.parent_type == c.type_name
    }

    /// How a non-NULL value of key column `i` is matched.
    fn matching(&self, i: usize) -> Match {
        let c = &self.info.column_info[i];
        let by_index = matches!(self.info.key_source, KeySource::PrimaryKey | KeySource::UniqueIndex(_));
        if !self.known_type(i) {
            Match::Printed
        } else if (by_index && catalog_equality(&c.reading)) || IDENTITY_EQ.contains(&c.base_type_oid) {
            // A unique index's own equality finds the row the diff saw; identity types have no other.
            Match::Equal
        } else if CHARACTER.contains(&c.base_type_oid) {
            Match::Bytes
        } else {
            Match::Printed
        }
    }

    /// Matches the row by its key, with pg_catalog's operators only.
    ///
    /// A primary key or unique index is matched with its type's `=` (the index
    /// serves the lookup, and the key is unique under that equality, so the one
    /// row it finds is the row the diff saw), unless that `=` is not
    /// pg_catalog's (an extension's type). A `--key` or whole-row key can match
    /// several rows, so each value is matched exactly by the diff's own rule:
    /// `=` where that is identity (integers, bool, uuid, bytea, dates and
    /// times), bytes for character types (`COLLATE "C"`, whatever the column's
    /// collation), and otherwise the printed form under the pinned settings
    /// (`format('%s', col) = format('%s', lit)`: `1.0` ≠ `1.00`, `-0` ≠ `0`,
    /// every float by its shortest exact text; also for types without `=`,
    /// such as json or point). NULL is `IS NULL`, except for a composite
    /// (`num_nulls(col) = 1`), where `IS NULL` also holds for `ROW(NULL, NULL)`.
    fn key_predicate(&self, key: &[Value]) -> io::Result<String> {
        let mut parts = vec![];
        for (i, v) in key.iter().enumerate() {
            let col = self.column(i);
            let lit = self.literal(i, v)?;
            let row_typed = !self.known_type(i) || may_be_row(&self.info.column_info[i].reading);
            parts.push(match (v, self.matching(i)) {
                (Value::Null, _) if row_typed => format!("pg_catalog.num_nulls({col}) {EQ} 1"),
                (Value::Null, _) => format!("{col} IS NULL"),
                (_, Match::Equal) => format!("{col} {EQ} {lit}"),
                (_, Match::Bytes) => format!("{col} COLLATE pg_catalog.\"C\" {EQ} {lit}"),
                (_, Match::Printed) => {
                    format!(
                        "pg_catalog.format('%s', {col}) COLLATE pg_catalog.\"C\" {EQ} pg_catalog.format('%s', {lit})"
                    )
                }
            });
        }
        Ok(if parts.is_empty() { "true".into() } else { parts.join(" AND ") })
    }

    fn insert(&self, row: &[Value]) -> io::Result<String> {
        let written: Vec<usize> = (0..row.len()).filter(|&i| !self.generated(i)).collect();
        if written.is_empty() {
            return Ok(format!("INSERT INTO {} DEFAULT VALUES;\n", self.table()));
        }
        let cols: Vec<String> = written.iter().map(|&i| self.column(i)).collect();
        let vals = written.iter().map(|&i| self.literal(i, &row[i])).collect::<io::Result<Vec<_>>>()?;
        let overriding = if written.iter().any(|&i| self.identity_always(i)) { " OVERRIDING SYSTEM VALUE" } else { "" };
        Ok(format!("INSERT INTO {} ({}){overriding} VALUES ({});\n", self.table(), cols.join(", "), vals.join(", ")))
    }

    /// Deletes one row. Without a key, rows are a multiset: exactly one of the
    /// matching rows goes, found by its ctid (and tableoid, which tells
    /// partitions apart).
    fn delete(&self, key: &[Value]) -> io::Result<String> {
        let (table, only, pred) = (self.table(), self.only(), self.key_predicate(key)?);
        Ok(match (&self.info.key_source, self.side().partitioned) {
            (KeySource::WholeRow, false) => {
                format!(
                    "DELETE FROM ONLY {table} WHERE ctid {EQ} (SELECT ctid FROM ONLY {table} WHERE {pred} LIMIT 1);\n"
                )
            }
            (KeySource::WholeRow, true) => format!(
                "DELETE FROM {table} WHERE (tableoid, ctid) {EQ} \
                 (SELECT tableoid, ctid FROM {table} WHERE {pred} LIMIT 1);\n"
            ),
            _ => format!("DELETE FROM {only}{table} WHERE {pred};\n"),
        })
    }

    /// Sets the changed columns that may be written; `None` when only generated
    /// ones changed. A GENERATED ALWAYS identity column cannot be updated to a
    /// value: such a row is deleted and inserted again.
    fn update(&self, key: &[Value], changed: &[usize], row: &[Value]) -> io::Result<Option<String>> {
        let written: Vec<usize> = changed.iter().copied().filter(|&i| !self.generated(i)).collect();
        if written.is_empty() {
            return Ok(None);
        }
        if written.iter().any(|&i| self.identity_always(i)) {
            return Ok(Some(format!("{}{}", self.delete(key)?, self.insert(row)?)));
        }
        let sets = written
            .iter()
            .map(|&i| Ok(format!("{} = {}", self.column(i), self.literal(i, &row[i])?)))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Some(format!(
            "UPDATE {}{} SET {} WHERE {};\n",
            self.only(),
            self.table(),
            sets.join(", "),
            self.key_predicate(key)?
        )))
    }
}

/// One table's statements, per phase.
struct TableStatements {
    inserts: Statements,
    updates: Statements,
    deletes: Statements,
    /// Non-deferrable self-references: inserted and deleted rows must be ordered by them.
    self_keys: Vec<SelfKey>,
    /// A non-deferrable self-reference over a column the diff left out: rows cannot be ordered.
    unresolved_self_key: bool,
    /// Rows of a self-referencing table: links and where the statement is stored.
    linked_inserts: Vec<(RowLinks, Span)>,
    linked_deletes: Vec<(RowLinks, Span)>,
    /// The order found for them (`None` until computed, or when rows loop).
    insert_order: Option<Vec<usize>>,
    delete_order: Option<Vec<usize>>,
    /// Per foreign key of the target side: some UPDATE changes its referencing columns.
    moved_references: Vec<bool>,
    /// Some UPDATE changes the columns of a non-deferrable self-reference.
    self_references_moved: bool,
}

impl TableStatements {
    fn new(t: &Target) -> TableStatements {
        let (own_schema, own_name) = t.ident();
        let names = t.names();
        let mut self_keys = vec![];
        let mut unresolved = false;
        for fk in t.foreign_keys() {
            if fk.deferrable || (fk.ref_schema.as_str(), fk.ref_table.as_str()) != (own_schema, own_name) {
                continue;
            }
            match SelfKey::resolve(fk, &names) {
                Some(k) => self_keys.push(k),
                None => unresolved = true,
            }
        }
        TableStatements {
            inserts: Statements::default(),
            updates: Statements::default(),
            deletes: Statements::default(),
            self_keys,
            unresolved_self_key: unresolved,
            linked_inserts: vec![],
            linked_deletes: vec![],
            insert_order: None,
            delete_order: None,
            moved_references: vec![false; t.foreign_keys().len()],
            self_references_moved: false,
        }
    }

    /// Notes the foreign keys whose referencing columns an UPDATE changes.
    fn note_moved_references(&mut self, t: &Target, changed: &[usize]) {
        let names = t.names();
        for (k, fk) in t.foreign_keys().iter().enumerate() {
            let hit = changed.iter().any(|&i| names.get(i).is_some_and(|n| fk.columns.iter().any(|c| c == n)));
            if hit {
                self.moved_references[k] = true;
                let own = (fk.ref_schema.as_str(), fk.ref_table.as_str()) == t.ident();
                self.self_references_moved |= own && !fk.deferrable;
            }
        }
    }

    fn push(&mut self, phase: Phase, store: &mut Store, sql: String, row: &[Value]) -> io::Result<()> {
        let linked = !self.self_keys.is_empty() && phase != Phase::Update;
        if linked {
            let links = links(&self.self_keys, row);
            let span = store.append(sql.as_bytes())?;
            let list = if phase == Phase::Insert { &mut self.linked_inserts } else { &mut self.linked_deletes };
            list.push((links, span));
            return Ok(());
        }
        let s = match phase {
            Phase::Insert => &mut self.inserts,
            Phase::Update => &mut self.updates,
            Phase::Delete => &mut self.deletes,
        };
        s.push(store, sql.as_bytes())
    }

    fn count(&self) -> u64 {
        self.inserts.count
            + self.updates.count
            + self.deletes.count
            + (self.linked_inserts.len() + self.linked_deletes.len()) as u64
    }

    /// Whether rows appear or disappear (what foreign-key order is about).
    fn moves_rows(&self) -> bool {
        self.inserts.count + self.deletes.count > 0
            || !self.linked_inserts.is_empty()
            || !self.linked_deletes.is_empty()
    }

    /// Orders the rows of a self-referencing table; false when no order can
    /// satisfy its keys (rows in a loop, or a key over a column left out).
    fn order_rows(&mut self) -> bool {
        if self.unresolved_self_key && self.moves_rows() {
            return false;
        }
        let inserts: Vec<&RowLinks> = self.linked_inserts.iter().map(|(l, _)| l).collect();
        let deletes: Vec<&RowLinks> = self.linked_deletes.iter().map(|(l, _)| l).collect();
        self.insert_order = sql_order::parents_first(&inserts);
        self.delete_order = sql_order::parents_first(&deletes).map(|mut o| {
            o.reverse();
            o
        });
        self.insert_order.is_some() && self.delete_order.is_some()
    }

    fn write(&self, phase: Phase, table: &str, store: &mut Store, out: &mut impl Write) -> io::Result<()> {
        let (plain, linked, order) = match phase {
            Phase::Insert => (&self.inserts, &self.linked_inserts, &self.insert_order),
            Phase::Update => (&self.updates, &vec![], &None),
            Phase::Delete => (&self.deletes, &self.linked_deletes, &self.delete_order),
        };
        let n = plain.count + linked.len() as u64;
        if n == 0 {
            return Ok(());
        }
        writeln!(out, "\n-- {} {}: {n} row{}", phase.word(), comment(table), if n == 1 { "" } else { "s" })?;
        plain.write(store, out)?;
        // Rows that loop are written as they came: the transaction runs without key checks then.
        let arrival: Vec<usize> = (0..linked.len()).collect();
        for &i in order.as_ref().unwrap_or(&arrival) {
            store.copy(linked[i].1, out)?;
        }
        Ok(())
    }
}

/// What a row is and points at through the table's self-references.
fn links(keys: &[SelfKey], row: &[Value]) -> RowLinks {
    let text = |cols: &[usize]| cols.iter().map(|&i| row.get(i).and_then(Value::to_text)).collect::<Vec<_>>();
    RowLinks {
        own: keys.iter().map(|k| text(&k.ref_columns)).collect(),
        // MATCH SIMPLE: a NULL among the referencing columns references nothing.
        refs: keys
            .iter()
            .map(|k| {
                let v = text(&k.columns);
                v.iter().all(Option::is_some).then_some(v)
            })
            .collect(),
    }
}

/// Where a statement lies in the [`Store`].
type Span = (u64, u64);

/// Statements of one phase of one table: a small buffer, then spans of the store.
#[derive(Default)]
struct Statements {
    memory: Vec<u8>,
    spilled: Vec<Span>,
    count: u64,
}

impl Statements {
    fn push(&mut self, store: &mut Store, sql: &[u8]) -> io::Result<()> {
        self.count += 1;
        self.memory.extend_from_slice(sql);
        if self.memory.len() >= SPILL_AT {
            self.spilled.push(store.append(&self.memory)?);
            self.memory = Vec::new();
        }
        Ok(())
    }

    fn write(&self, store: &mut Store, out: &mut impl Write) -> io::Result<()> {
        for &span in &self.spilled {
            store.copy(span, out)?;
        }
        out.write_all(&self.memory)
    }
}

/// One anonymous temporary file for every table's spilled statements (one
/// file descriptor however many tables), created when first needed.
#[derive(Default)]
struct Store {
    writer: Option<BufWriter<File>>,
    reader: Option<File>,
    len: u64,
}

impl Store {
    fn append(&mut self, bytes: &[u8]) -> io::Result<Span> {
        if self.writer.is_none() {
            self.writer = Some(BufWriter::new(tempfile::tempfile()?));
        }
        if let Some(w) = &mut self.writer {
            w.write_all(bytes)?;
        }
        let span = (self.len, bytes.len() as u64);
        self.len += bytes.len() as u64;
        Ok(span)
    }

    /// Ends writing; spans can be copied out from now on.
    fn seal(&mut self) -> io::Result<()> {
        if let Some(w) = self.writer.take() {
            self.reader = Some(w.into_inner().map_err(|e| e.into_error())?);
        }
        Ok(())
    }

    fn copy(&mut self, (at, len): Span, out: &mut impl Write) -> io::Result<()> {
        let f = self.reader.as_mut().ok_or_else(|| io::Error::other("SQL patch: spilled statements not sealed"))?;
        f.seek(SeekFrom::Start(at))?;
        let copied = io::copy(&mut Read::by_ref(f).take(len), out)?;
        if copied != len {
            return Err(io::Error::other("SQL patch: the temporary file was cut short"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
