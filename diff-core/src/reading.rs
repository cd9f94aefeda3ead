//! How a stored value reads: the part of the catalog that turns a tuple's
//! bytes into the value a query returns. Tuple identity (`ctid`, `xmin`) only
//! proves that a tuple was not touched; the value it reads as can still change
//! when the catalog does — an enum label renamed, an attribute added to a
//! composite type, a `reg*` name whose object was renamed, a rewrite-free type
//! change. Identity is used for a table only when every compared column reads
//! the same on both sides, decided here from the catalog, deeply through
//! domains, arrays, ranges, multiranges and composites.

use std::collections::{BTreeMap, HashMap};

/// Highest OID of objects created by initdb: built-in types below it are the
/// same on every server and in every database.
pub(crate) const FIRST_NORMAL_OID: u32 = 16384;

/// Types whose text form is looked up in other catalogs at read time
/// (`regclass` prints a relation's current name): the same stored OID can read
/// differently after an unrelated `ALTER … RENAME`.
const LOOKUP_TYPES: &[u32] = &[24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191];

/// The reading of one type on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// A built-in type: reads the same everywhere.
    Builtin(u32),
    /// Reads through other catalogs (`reg*` types, a table's row type): never assumed stable.
    Unstable(u32),
    /// A user-defined base type (an extension's): its I/O functions decide.
    Base {
        /// Type OID.
        oid: u32,
        /// Output function OID.
        output: u32,
        /// Binary send function OID.
        send: u32,
    },
    /// A domain: reads as its base type with the domain's typmod.
    Domain {
        /// The domain's typmod.
        typmod: i32,
        /// The base type.
        base: Box<Reading>,
    },
    /// An array of an element type.
    Array(Box<Reading>),
    /// A range of a subtype.
    Range(Box<Reading>),
    /// A multirange of a range type.
    Multirange(Box<Reading>),
    /// A composite type: its live attributes (attnum, typmod, reading), in order.
    Composite(Vec<(i16, i32, Reading)>),
    /// An enum: label by OID (stored values are label OIDs).
    Enum(BTreeMap<u32, String>),
}

impl Reading {
    /// Whether a value stored under `self` (the parent) reads the same under
    /// `child`. Enum labels may be added on the child, never renamed.
    pub fn reads_same(&self, child: &Reading) -> bool {
        match (self, child) {
            (Reading::Unstable(_), _) | (_, Reading::Unstable(_)) => false,
            (Reading::Enum(p), Reading::Enum(c)) => p.iter().all(|(oid, label)| c.get(oid) == Some(label)),
            (Reading::Domain { typmod: a, base: x }, Reading::Domain { typmod: b, base: y }) => {
                a == b && x.reads_same(y)
            }
            (Reading::Array(x), Reading::Array(y))
            | (Reading::Range(x), Reading::Range(y))
            | (Reading::Multirange(x), Reading::Multirange(y)) => x.reads_same(y),
            (Reading::Composite(a), Reading::Composite(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|((n1, m1, r1), (n2, m2, r2))| n1 == n2 && m1 == m2 && r1.reads_same(r2))
            }
            (a, b) => a == b,
        }
    }
}

/// One row of `pg_type`, as far as reading values goes.
#[derive(Debug, Clone)]
pub(crate) struct TypeRow {
    pub typtype: char,
    pub typcategory: char,
    pub basetype: u32,
    pub typmod: i32,
    pub elem: u32,
    pub relid: u32,
    pub relkind: char,
    pub output: u32,
    pub send: u32,
}

/// The type catalog of one side, enough to derive any type's [`Reading`].
#[derive(Debug, Default)]
pub(crate) struct Types {
    pub types: HashMap<u32, TypeRow>,
    /// Enum type → (label OID → label).
    pub enums: HashMap<u32, BTreeMap<u32, String>>,
    /// Range type → subtype; multirange type → range type.
    pub ranges: HashMap<u32, u32>,
    pub multiranges: HashMap<u32, u32>,
    /// Composite relation → live attributes (attnum, type, typmod).
    pub attributes: HashMap<u32, Vec<(i16, u32, i32)>>,
}

impl Types {
    /// The reading of a type; unknown or too deeply nested types are unstable.
    pub fn reading(&self, oid: u32) -> Reading {
        self.reading_at(oid, 0)
    }

    fn reading_at(&self, oid: u32, depth: usize) -> Reading {
        if depth > 32 || LOOKUP_TYPES.contains(&oid) {
            return Reading::Unstable(oid);
        }
        let Some(t) = self.types.get(&oid) else { return Reading::Unstable(oid) };
        let next = |o: u32| Box::new(self.reading_at(o, depth + 1));
        match t.typtype {
            'd' => Reading::Domain { typmod: t.typmod, base: next(t.basetype) },
            'e' => Reading::Enum(self.enums.get(&oid).cloned().unwrap_or_default()),
            'r' => match self.ranges.get(&oid) {
                Some(&sub) => Reading::Range(next(sub)),
                None => Reading::Unstable(oid),
            },
            'm' => match self.multiranges.get(&oid) {
                Some(&range) => Reading::Multirange(next(range)),
                None => Reading::Unstable(oid),
            },
            // A table's row type changes with the table: not worth tracking.
            'c' if t.relkind != 'c' => Reading::Unstable(oid),
            'c' => Reading::Composite(
                self.attributes
                    .get(&t.relid)
                    .map(|attrs| attrs.iter().map(|&(n, ty, m)| (n, m, self.reading_at(ty, depth + 1))).collect())
                    .unwrap_or_default(),
            ),
            'b' if t.typcategory == 'A' && t.elem != 0 => Reading::Array(next(t.elem)),
            'b' if oid < FIRST_NORMAL_OID => Reading::Builtin(oid),
            'b' => Reading::Base { oid, output: t.output, send: t.send },
            _ if oid < FIRST_NORMAL_OID => Reading::Builtin(oid),
            _ => Reading::Unstable(oid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_may_gain_labels_but_not_rename_them() {
        let p = Reading::Enum(BTreeMap::from([(1, "a".into()), (2, "b".into())]));
        let added = Reading::Enum(BTreeMap::from([(1, "a".into()), (2, "b".into()), (3, "c".into())]));
        let renamed = Reading::Enum(BTreeMap::from([(1, "a".into()), (2, "bee".into())]));
        assert!(p.reads_same(&added));
        assert!(!p.reads_same(&renamed));
        assert!(!Reading::Array(Box::new(p.clone())).reads_same(&Reading::Array(Box::new(renamed))));
        assert!(!Reading::Unstable(2205).reads_same(&Reading::Unstable(2205)));
    }

    #[test]
    fn composites_compare_attributes() {
        let a = Reading::Composite(vec![(1, -1, Reading::Builtin(23))]);
        let b = Reading::Composite(vec![(1, -1, Reading::Builtin(23)), (2, -1, Reading::Builtin(25))]);
        assert!(a.reads_same(&a.clone()));
        assert!(!a.reads_same(&b));
    }
}
