//! What the row diff needs to know about each side's tables: columns with their
//! types (domains resolved to their base type), keys, and a size for
//! scheduling. Queries use only catalog columns present in PostgreSQL 13–18.

use std::collections::HashMap;

use crate::error::Result;
use crate::reading::{Reading, TypeRow, Types};
use crate::snapshot::Side;

/// A user table (regular or partitioned, partitions included).
#[derive(Debug, Clone)]
pub struct Table {
    /// pg_class OID: stable across a TEMPLATE copy, so it identifies renames.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// `r` regular, `p` partitioned.
    pub kind: char,
    /// A partition of another table: its rows are compared through the root,
    /// unless it is a table of its own on the other side (detached, or attached).
    pub partition: bool,
    /// Bytes on disk including partitions and TOAST, for scheduling large tables first.
    pub bytes: i64,
    /// Estimated rows (`reltuples`, partitions summed; 0 when never analyzed), for sizing hash blocks.
    pub rows: i64,
    /// pg_class.relfilenode: the physical file. Kept by a TEMPLATE copy; changed by
    /// anything that moves rows (VACUUM FULL, CLUSTER, TRUNCATE, rewrites).
    pub relfilenode: u32,
    /// Columns in attnum order.
    pub columns: Vec<Column>,
    /// Valid unique indexes without predicate or expressions (primary key
    /// first), by their key columns only: INCLUDE columns make nothing unique.
    pub unique_keys: Vec<UniqueKey>,
    /// The role may `SELECT` the whole table (system columns such as `ctid`
    /// need it; column grants alone do not reach them).
    pub can_select: bool,
    /// Foreign keys declared on the table (a partitioned table's once, at the root).
    pub foreign_keys: Vec<ForeignKey>,
}

/// A foreign key, as outputs that write rows need it (the SQL patch orders
/// statements by them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// Referencing columns, in constraint order.
    pub columns: Vec<String>,
    /// Schema of the referenced table.
    pub ref_schema: String,
    /// Referenced table.
    pub ref_table: String,
    /// Referenced columns, matching `columns` one by one.
    pub ref_columns: Vec<String>,
    /// `DEFERRABLE`: `SET CONSTRAINTS ALL DEFERRED` moves its check to COMMIT.
    pub deferrable: bool,
}

/// A unique index usable as row identity when its columns are NOT NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// Index name.
    pub name: String,
    /// It backs the primary key.
    pub primary: bool,
    /// Key columns (not INCLUDE columns), in index order.
    pub columns: Vec<String>,
}

impl Table {
    /// `schema.name` as written by a user (no quoting).
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The primary key, if any.
    pub fn primary_key(&self) -> Option<&UniqueKey> {
        self.unique_keys.iter().find(|k| k.primary)
    }

    /// Whether `columns` identify a row here: every one NOT NULL by a valid
    /// constraint, and some valid unique index covers a subset of them.
    pub fn is_key(&self, columns: &[String]) -> bool {
        columns.iter().all(|n| self.column(n).is_some_and(|c| c.not_null))
            && self.unique_keys.iter().any(|k| k.columns.iter().all(|c| columns.contains(c)))
    }
}

/// A table column.
#[derive(Debug, Clone)]
pub struct Column {
    /// attnum: stable across a TEMPLATE copy, so it identifies renames.
    pub attnum: i16,
    /// Column name.
    pub name: String,
    /// Declared type OID.
    pub type_oid: u32,
    /// Type OID after resolving domains to their base type.
    pub base_type_oid: u32,
    /// Type modifier of the base type (the column's, else its domain's), -1 for none.
    pub typmod: i32,
    /// `format_type` text, e.g. `numeric(12,2)`.
    pub type_name: String,
    /// NOT NULL, enforced by a validated constraint (PostgreSQL 18 sets
    /// `attnotnull` for `NOT NULL … NOT VALID` too; that does not count).
    pub not_null: bool,
    /// `s` stored / `v` virtual generated, empty otherwise.
    pub generated: String,
    /// The expression of a generated column (a virtual one is computed at read time).
    pub generation: Option<String>,
    /// `attmissingval`: what tuples older than an `ADD COLUMN … DEFAULT` read as.
    pub missing: Option<String>,
    /// How stored values of the column's type read (see [`crate::reading`]).
    pub reading: Reading,
    /// The role may read the column.
    pub can_select: bool,
    /// `attidentity`: `a` GENERATED ALWAYS, `d` BY DEFAULT, empty otherwise.
    pub identity: String,
    /// The PostgreSQL Anonymizer masking rule (`SECURITY LABEL FOR anon`), if any.
    pub masking: Option<String>,
}

/// The tables of one side.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// User tables, sorted by schema and name.
    pub tables: Vec<Table>,
    /// `server_encoding` (text arrives as UTF-8 whatever it is).
    pub encoding: String,
}

impl Catalog {
    /// Table by schema and name.
    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.schema == schema && t.name == name)
    }
}

/// Schemas that are never user data.
pub(crate) const SYSTEM_SCHEMA_FILTER: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'";

/// Reads the catalog on the side's first connection (inside its snapshot).
pub async fn read(side: &Side) -> Result<Catalog> {
    let c = side.client(0);
    let err = |e: tokio_postgres::Error| side.query_error("reading the catalog", &e);
    let tables_sql = format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
                CASE WHEN c.relkind = 'p' THEN
                     (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint FROM pg_partition_tree(c.oid) t)
                ELSE pg_total_relation_size(c.oid) END, c.relfilenode, has_table_privilege(c.oid, 'SELECT'),
                c.relispartition,
                (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)::int8 FROM pg_class p
                 WHERE p.oid = c.oid OR (c.relkind = 'p' AND p.oid IN (SELECT relid FROM pg_partition_tree(c.oid))))
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY 2, 3"
    );
    // A NOT NULL constraint that is NOT VALID (PostgreSQL 18) leaves attnotnull set; it is not a guarantee.
    let columns_sql = format!(
        "SELECT a.attrelid, a.attnum, a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod),
                a.attnotnull AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid
                    AND k.contype = 'n' AND k.conkey[1] = a.attnum AND NOT k.convalidated),
                a.attgenerated::text, a.atttypmod,
                CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                CASE WHEN a.atthasmissing THEN a.attmissingval::text END,
                has_column_privilege(a.attrelid, a.attnum, 'SELECT'), a.attidentity::text,
                (SELECT s.label FROM pg_seclabel s WHERE s.provider = 'anon' AND s.objoid = a.attrelid
                    AND s.classoid = 'pg_class'::regclass AND s.objsubid = a.attnum)
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY a.attrelid, a.attnum"
    );
    let keys_sql = format!(
        "SELECT i.indrelid, i.indisprimary, ic.relname::text, (i.indkey::int2[])[0:i.indnkeyatts - 1]
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE i.indisunique AND i.indisvalid AND i.indislive AND i.indpred IS NULL AND i.indexprs IS NULL
           AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY i.indisprimary DESC, i.indnkeyatts, ic.relname"
    );
    let (trows, crows, krows, types, enc, frows) = tokio::try_join!(
        c.query(&tables_sql, &[]),
        c.query(&columns_sql, &[]),
        c.query(&keys_sql, &[]),
        read_types(side),
        c.query_one("SELECT current_setting('server_encoding')", &[]),
        c.query(FOREIGN_KEYS_SQL.as_str(), &[]),
    )
    .map_err(err)?;
    let mut foreign_keys = foreign_keys(&frows);

    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in &crows {
        let type_oid: u32 = r.get(3);
        let (base_type_oid, typmod) = base_type(&types, type_oid, r.get(7));
        columns.entry(r.get(0)).or_default().push(Column {
            attnum: r.get(1),
            name: r.get(2),
            type_oid,
            base_type_oid,
            typmod,
            type_name: r.get(4),
            not_null: r.get(5),
            generated: r.get(6),
            generation: r.get(8),
            missing: r.get(9),
            reading: types.reading(type_oid),
            can_select: r.get(10),
            identity: r.get(11),
            masking: r.get(12),
        });
    }
    let mut tables: Vec<Table> = trows
        .iter()
        .map(|r| {
            let oid: u32 = r.get(0);
            let kind: String = r.get(3);
            Table {
                oid,
                schema: r.get(1),
                name: r.get(2),
                kind: kind.chars().next().unwrap_or('r'),
                partition: r.get(7),
                bytes: r.get(4),
                rows: r.get(8),
                relfilenode: r.get(5),
                columns: columns.remove(&oid).unwrap_or_default(),
                unique_keys: vec![],
                can_select: r.get(6),
                foreign_keys: foreign_keys.remove(&oid).unwrap_or_default(),
            }
        })
        .collect();
    let by_oid: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    for r in &krows {
        let Some(&ti) = by_oid.get(&r.get::<_, u32>(0)) else { continue };
        let t = &mut tables[ti];
        let attnums: Vec<i16> = r.get(3);
        let names: Option<Vec<String>> =
            attnums.iter().map(|n| t.columns.iter().find(|c| c.attnum == *n).map(|c| c.name.clone())).collect();
        let Some(columns) = names else { continue };
        t.unique_keys.push(UniqueKey { name: r.get(2), primary: r.get(1), columns });
    }
    Ok(Catalog { tables, encoding: enc.get(0) })
}

/// Foreign keys of user tables. Partitions' clones of their root's key
/// (`conparentid` set) are left out: rows are written through the root.
static FOREIGN_KEYS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let names = |key: &str, rel: &str| {
        format!(
            "ARRAY(SELECT a.attname::text FROM unnest(k.{key}) WITH ORDINALITY x(attnum, n)
                   JOIN pg_attribute a ON a.attrelid = k.{rel} AND a.attnum = x.attnum ORDER BY x.n)"
        )
    };
    format!(
        "SELECT k.conrelid, k.conname::text, {}, rn.nspname::text, rc.relname::text, {}, k.condeferrable
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
         WHERE k.contype = 'f' AND k.conparentid = 0 AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY k.conrelid, k.conname",
        names("conkey", "conrelid"),
        names("confkey", "confrelid")
    )
});

fn foreign_keys(rows: &[tokio_postgres::Row]) -> HashMap<u32, Vec<ForeignKey>> {
    let mut keys: HashMap<u32, Vec<ForeignKey>> = HashMap::new();
    for r in rows {
        keys.entry(r.get(0)).or_default().push(ForeignKey {
            name: r.get(1),
            columns: r.get(2),
            ref_schema: r.get(3),
            ref_table: r.get(4),
            ref_columns: r.get(5),
            deferrable: r.get(6),
        });
    }
    keys
}

/// The base type of a (domain) type, and the typmod that applies to it: the
/// column's own, else the nearest domain's.
fn base_type(types: &Types, mut oid: u32, mut typmod: i32) -> (u32, i32) {
    for _ in 0..32 {
        match types.types.get(&oid) {
            Some(t) if t.typtype == 'd' => {
                if typmod < 0 {
                    typmod = t.typmod;
                }
                oid = t.basetype;
            }
            _ => break,
        }
    }
    (oid, typmod)
}

/// Every type, enum label, range and composite attribute of the database:
/// small catalogs, read once, so that any column's reading can be derived.
async fn read_types(side: &Side) -> Result<Types, tokio_postgres::Error> {
    let c = side.client(0);
    let multirange = if side.server_version >= 140000 { "rngmultitypid" } else { "0::oid" };
    let ranges_sql = format!("SELECT rngtypid, rngsubtype, {multirange} FROM pg_range");
    let (trows, erows, rrows, arows) = tokio::try_join!(
        c.query(
            "SELECT t.oid, t.typtype::text, t.typcategory::text, t.typbasetype, t.typtypmod, t.typelem, t.typrelid,
                    coalesce(r.relkind, ' ')::text, t.typoutput::oid, t.typsend::oid
             FROM pg_type t LEFT JOIN pg_class r ON r.oid = t.typrelid",
            &[]
        ),
        c.query("SELECT enumtypid, oid, enumlabel::text FROM pg_enum", &[]),
        c.query(&ranges_sql, &[]),
        c.query(
            "SELECT a.attrelid, a.attnum, a.atttypid, a.atttypmod FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
             WHERE r.relkind = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
            &[]
        ),
    )?;
    let ch = |s: String| s.chars().next().unwrap_or(' ');
    let mut t = Types::default();
    for r in &trows {
        t.types.insert(
            r.get(0),
            TypeRow {
                typtype: ch(r.get(1)),
                typcategory: ch(r.get(2)),
                basetype: r.get(3),
                typmod: r.get(4),
                elem: r.get(5),
                relid: r.get(6),
                relkind: ch(r.get(7)),
                output: r.get(8),
                send: r.get(9),
            },
        );
    }
    for r in &erows {
        t.enums.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    for r in &rrows {
        t.ranges.insert(r.get(0), r.get(1));
        let multi: u32 = r.get(2);
        if multi != 0 {
            t.multiranges.insert(multi, r.get(0));
        }
    }
    for r in &arows {
        t.attributes.entry(r.get(0)).or_default().push((r.get(1), r.get(2), r.get(3)));
    }
    Ok(t)
}
