//! What a caller can ask of a diff.

use crate::error::{Error, Result};
use crate::schema::{ObjKind, Object};

/// `--key 'schema.table=col1,col2'`: a user-chosen row identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOverride {
    /// Table pattern (`schema.table` or `table`, globs allowed).
    pub table: String,
    /// Key columns, in order.
    pub columns: Vec<String>,
}

impl std::str::FromStr for KeyOverride {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (table, cols) =
            s.split_once('=').ok_or_else(|| Error::Options(format!("--key {s}: expected TABLE=COLUMN[,COLUMN…]")))?;
        let columns: Vec<String> = cols.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
        if table.trim().is_empty() || columns.is_empty() {
            return Err(Error::Options(format!("--key {s}: expected TABLE=COLUMN[,COLUMN…]")));
        }
        Ok(KeyOverride { table: table.trim().to_string(), columns })
    }
}

/// How rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Pick per table: tuple identity when both sides are on one instance; across servers,
    /// block hashes for large tables and streaming for small ones.
    #[default]
    Auto,
    /// Read every row of both sides in key order.
    Stream,
    /// Hash blocks of rows inside PostgreSQL (one scan per side) and read only the rows of
    /// blocks whose digests differ.
    Hash,
}

impl std::str::FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Strategy::Auto),
            "stream" => Ok(Strategy::Stream),
            "hash" => Ok(Strategy::Hash),
            _ => Err(Error::Options(format!("--strategy {s}: expected auto, stream or hash"))),
        }
    }
}

/// `--shard I/N`: this run compares part `index` (from 0) of `count`. Every
/// table's rows are split by a hash of their key (of the whole row without a
/// key), the same in every run whatever the statistics, so the N runs' rows
/// never overlap and together are all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This part, `0..count`.
    pub index: u32,
    /// Number of parts.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Options(format!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/3"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether this run reports what is not split into parts (schema changes,
    /// dropped objects, tables read whole): the first part does.
    pub fn first(shard: Option<Shard>) -> bool {
        shard.is_none_or(|s| s.index == 0)
    }
}

/// Options of a diff run. `Default` compares everything.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only tables matching one of these globs (`schema.table` or `table`).
    pub tables: Vec<String>,
    /// Never tables matching these globs.
    pub exclude_tables: Vec<String>,
    /// Only these schemas.
    pub schemas: Vec<String>,
    /// Columns left out of the comparison (`table.col`, `schema.table.col`, `col`; globs).
    pub exclude_columns: Vec<String>,
    /// Key overrides.
    pub keys: Vec<KeyOverride>,
    /// Connections per side (tables are diffed this many at a time).
    pub jobs: usize,
    /// Also cut a large table's block hashing across connections, by its share of
    /// all tables' rows: for servers with at least `jobs` idle cores each. Each
    /// part is a scan of its own, so on a server without spare cores cutting only
    /// adds work (measured in `docs/benchmarks.md`); tables are hashed `jobs` at a time either way.
    pub split_tables: bool,
    /// Compare rows.
    pub data: bool,
    /// Compare the schema.
    pub schema: bool,
    /// How many changed rows per table a collected [`crate::Report`] keeps (counts stay exact).
    pub max_rows_per_table: Option<usize>,
    /// How rows are read.
    pub strategy: Strategy,
    /// Compare only this part of every table's rows (block hashes; see [`Shard`]).
    pub shard: Option<Shard>,
    /// Schema aspects not reported: object kinds (`index`, `trigger`, …) and
    /// `privileges`, `ownership`, `comments`, `sequence-state`.
    pub ignore: Vec<String>,
    /// A role that stands in for the parent's owners on the child: a branch
    /// whose objects were handed to a login role of its own (an agent's
    /// branch) reports no ownership or privilege change for that hand-over.
    /// See [`crate::schema::stand_in`].
    pub stand_in_role: Option<String>,
}

/// What `--ignore` takes away from the schema diff.
#[derive(Debug, Default)]
pub struct Ignore {
    kinds: Vec<ObjKind>,
    attrs: Vec<&'static str>,
}

impl Ignore {
    /// Drops ignored kinds and attributes from one side's objects.
    pub fn apply(&self, objects: Vec<Object>) -> Vec<Object> {
        objects
            .into_iter()
            .filter(|o| !self.kinds.contains(&o.kind))
            .map(|mut o| {
                for a in &self.attrs {
                    o.attrs.remove(*a);
                }
                o
            })
            .collect()
    }
}

impl Options {
    /// Whether table or schema filters narrow what is compared.
    pub fn filtered(&self) -> bool {
        !(self.tables.is_empty() && self.exclude_tables.is_empty() && self.schemas.is_empty())
    }

    /// Parses `ignore`; an unknown word is an error naming the words allowed.
    pub fn ignored(&self) -> Result<Ignore> {
        let mut ig = Ignore::default();
        for word in self.ignore.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
            match word {
                "privileges" => ig.attrs.push("privileges"),
                "ownership" => ig.attrs.push("owner"),
                "comments" => ig.attrs.push("comment"),
                // Sequences advance with every insert, even one rolled back or deleted again.
                "sequence-state" => ig.attrs.extend(["last_value", "is_called"]),
                w => match ObjKind::ALL.iter().find(|k| k.label() == w || format!("{}s", k.label()) == w) {
                    Some(k) => ig.kinds.push(*k),
                    None => {
                        let kinds: Vec<&str> = ObjKind::ALL.iter().map(|k| k.label()).collect();
                        return Err(Error::Options(format!(
                            "--ignore {w}: expected privileges, ownership, comments, sequence-state or an object kind ({})",
                            kinds.join(", ")
                        )));
                    }
                },
            }
        }
        Ok(ig)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tables: vec![],
            exclude_tables: vec![],
            schemas: vec![],
            exclude_columns: vec![],
            keys: vec![],
            jobs: 2,
            split_tables: false,
            data: true,
            schema: true,
            max_rows_per_table: None,
            strategy: Strategy::Auto,
            shard: None,
            ignore: vec![],
            stand_in_role: None,
        }
    }
}
