//! What the row diff needs to know about each side's tables: columns with their
//! types (domains resolved to their base type), keys, and a size for
//! scheduling. Queries use only catalog columns present in PostgreSQL 13–18.

use std::collections::HashMap;

use crate::error::Result;
use crate::snapshot::Side;

/// A user table (regular or partitioned; partitions are read through their root).
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
    /// Bytes on disk including partitions and TOAST, for scheduling large tables first.
    pub bytes: i64,
    /// pg_class.relfilenode: the physical file. Kept by a TEMPLATE copy; changed by
    /// anything that moves rows (VACUUM FULL, CLUSTER, TRUNCATE, rewrites).
    pub relfilenode: u32,
    /// Columns in attnum order.
    pub columns: Vec<Column>,
    /// Primary key column names, in key order.
    pub primary_key: Option<Vec<String>>,
    /// Unique indexes without predicate or expressions whose columns are all NOT NULL.
    pub unique_not_null: Vec<(String, Vec<String>)>,
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
    /// `format_type` text, e.g. `numeric(12,2)`.
    pub type_name: String,
    /// NOT NULL.
    pub not_null: bool,
    /// `s` stored / `v` virtual generated, empty otherwise.
    pub generated: String,
}

/// The tables of one side.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// User tables, sorted by schema and name.
    pub tables: Vec<Table>,
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
                ELSE pg_total_relation_size(c.oid) END, c.relfilenode
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY 2, 3"
    );
    let columns_sql = format!(
        "SELECT a.attrelid, a.attnum, a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod),
                a.attnotnull, a.attgenerated::text
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY a.attrelid, a.attnum"
    );
    let keys_sql = format!(
        "SELECT i.indrelid, i.indisprimary, ic.relname::text, i.indkey::int2[]
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND {SYSTEM_SCHEMA_FILTER}
         ORDER BY i.indisprimary DESC, i.indnatts, ic.relname"
    );
    let (trows, crows, krows, drows) = tokio::try_join!(
        c.query(&tables_sql, &[]),
        c.query(&columns_sql, &[]),
        c.query(&keys_sql, &[]),
        c.query("SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd'", &[]),
    )
    .map_err(err)?;

    let domains: HashMap<u32, u32> = drows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let base = |mut t: u32| {
        while let Some(&b) = domains.get(&t) {
            t = b;
        }
        t
    };
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in &crows {
        let type_oid: u32 = r.get(3);
        columns.entry(r.get(0)).or_default().push(Column {
            attnum: r.get(1),
            name: r.get(2),
            type_oid,
            base_type_oid: base(type_oid),
            type_name: r.get(4),
            not_null: r.get(5),
            generated: r.get(6),
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
                bytes: r.get(4),
                relfilenode: r.get(5),
                columns: columns.remove(&oid).unwrap_or_default(),
                primary_key: None,
                unique_not_null: vec![],
            }
        })
        .collect();
    let by_oid: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    for r in &krows {
        let Some(&ti) = by_oid.get(&r.get::<_, u32>(0)) else { continue };
        let t = &mut tables[ti];
        let attnums: Vec<i16> = r.get(3);
        let cols: Option<Vec<&Column>> = attnums.iter().map(|n| t.columns.iter().find(|c| c.attnum == *n)).collect();
        let Some(cols) = cols else { continue };
        let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        if r.get::<_, bool>(1) {
            t.primary_key = Some(names);
        } else if cols.iter().all(|c| c.not_null) {
            t.unique_not_null.push((r.get(2), names));
        }
    }
    Ok(Catalog { tables })
}
