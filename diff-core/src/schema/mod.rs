//! Catalog changes. Each change names its object, what happened to it, the
//! attributes that differ, and danger labels a CI gate can act on.
//! `read` turns each side's catalog into objects, `compare` pairs and diffs them,
//! `classify` holds the danger rules, and `portable` compares what one server
//! version prints with what another prints.

pub mod classify;
pub mod compare;
mod large_objects;
pub mod portable;
pub mod read;
mod read_more;
pub mod stand_in;

pub use compare::{compare, shares_objects, Inferred, Pairs};
pub use read::{ObjKind, Object};

use std::collections::BTreeMap;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// Only in the child.
    Added,
    /// Only in the parent.
    Dropped,
    /// In both, with different attributes.
    Altered,
    /// Same object (same OID or attnum), new name.
    Renamed,
}

impl ChangeOp {
    /// The word reports use (as in JSON).
    pub fn label(self) -> &'static str {
        match self {
            ChangeOp::Added => "added",
            ChangeOp::Dropped => "dropped",
            ChangeOp::Altered => "altered",
            ChangeOp::Renamed => "renamed",
        }
    }
}

/// Why a change deserves attention before it reaches production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Danger {
    /// Data disappears with the object (table, column, schema, materialized view, sequence).
    DropsData,
    /// The column's type changed: the table is rewritten or values converted.
    TypeChange,
    /// The new type can hold less than the old one (values may be truncated or rounded).
    MayNarrow,
    /// NOT NULL added: writers that omit the column fail (and existing NULLs, unless NOT VALID).
    NotNullAdded,
    /// A unique index or constraint added: duplicate writes now fail.
    UniqueAdded,
    /// A foreign key, check or NOT NULL added as validated, or validated later (a full scan under lock).
    ValidatedConstraintAdded,
    /// A default changed or dropped.
    DefaultChanged,
    /// NOT NULL dropped.
    NotNullDropped,
    /// A foreign key dropped: integrity no longer enforced.
    ForeignKeyDropped,
    /// Clients using the old name or signature break (renames, dropped views and functions).
    BreaksClients,
    /// Row-level security, policies, privileges or security definer changed.
    Security,
    /// The table was rewritten (new relfilenode), or recreated as another kind
    /// (regular ↔ partitioned, logged ↔ unlogged): every row is written again.
    TableRewritten,
    /// What queries return or what writes do changed without a column or
    /// constraint changing: a rule added, dropped or altered (`DO INSTEAD`
    /// rewrites the statement), a table's inheritance parents changed (a
    /// `SELECT` on the parent returns other rows).
    ResultsChanged,
    /// What logical replication sends changed: a publication added, dropped
    /// or altered (its tables, schemas, operations, row filters, column lists).
    ReplicationChanged,
}

impl Danger {
    /// Every label, in report order.
    pub const ALL: [Danger; 14] = [
        Danger::DropsData,
        Danger::TypeChange,
        Danger::MayNarrow,
        Danger::NotNullAdded,
        Danger::UniqueAdded,
        Danger::ValidatedConstraintAdded,
        Danger::DefaultChanged,
        Danger::NotNullDropped,
        Danger::ForeignKeyDropped,
        Danger::BreaksClients,
        Danger::Security,
        Danger::TableRewritten,
        Danger::ResultsChanged,
        Danger::ReplicationChanged,
    ];

    /// The label as written in reports (`drops_data`, …).
    pub fn label(self) -> &'static str {
        match self {
            Danger::DropsData => "drops_data",
            Danger::TypeChange => "type_change",
            Danger::MayNarrow => "may_narrow",
            Danger::NotNullAdded => "not_null_added",
            Danger::UniqueAdded => "unique_added",
            Danger::ValidatedConstraintAdded => "validated_constraint_added",
            Danger::DefaultChanged => "default_changed",
            Danger::NotNullDropped => "not_null_dropped",
            Danger::ForeignKeyDropped => "foreign_key_dropped",
            Danger::BreaksClients => "breaks_clients",
            Danger::Security => "security",
            Danger::TableRewritten => "table_rewritten",
            Danger::ResultsChanged => "results_changed",
            Danger::ReplicationChanged => "replication_changed",
        }
    }
}

/// One catalog change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// Object kind: `table`, `column`, `index`, …
    pub kind: String,
    /// Added, dropped, altered or renamed.
    pub op: ChangeOp,
    /// Qualified name, e.g. `app.customers.email` (the child's name for renames).
    pub object: String,
    /// Attributes on the parent side that differ (all of them, for a drop).
    pub before: BTreeMap<String, String>,
    /// Attributes on the child side that differ (all of them, for an add).
    pub after: BTreeMap<String, String>,
    /// Danger labels.
    pub danger: Vec<Danger>,
    /// The change this one is a consequence of (its `object`), if any.
    pub cause: Option<String>,
    /// How a rename was inferred, or other context.
    pub note: Option<String>,
    /// `(schema, table)` for table-scoped objects.
    pub table: Option<(String, String)>,
}

impl SchemaChange {
    pub(crate) fn new(kind: &str, op: ChangeOp, object: String) -> SchemaChange {
        SchemaChange {
            kind: kind.into(),
            op,
            object,
            before: BTreeMap::new(),
            after: BTreeMap::new(),
            danger: vec![],
            cause: None,
            note: None,
            table: None,
        }
    }

    /// Whether any danger label is set.
    pub fn is_dangerous(&self) -> bool {
        !self.danger.is_empty()
    }
}

/// The attributes of a composite type (as its `attributes` attribute lists them:
/// `a numeric, "b c" text`) that are gone on the branch. An attribute renamed in
/// place (another name, the same type, at the same position) is not gone.
pub fn dropped_attributes(before: &str, after: &str) -> Vec<String> {
    let (b, a) = (attribute_list(before), attribute_list(after));
    b.iter()
        .enumerate()
        .filter(|(i, (name, ty))| {
            let kept = a.iter().any(|(n, _)| n == name);
            let renamed =
                a.len() == b.len() && a.get(*i).is_some_and(|(n, t)| t == ty && !b.iter().any(|(bn, _)| bn == n));
            !kept && !renamed
        })
        .map(|(_, (name, _))| name.clone())
        .collect()
}

/// `a numeric, "b c" text` → [(a, numeric), (b c, text)]: names unquoted.
fn attribute_list(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = match rest.strip_prefix('"') {
            Some(q) => {
                let mut name = String::new();
                let mut chars = q.char_indices().peekable();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    if c == '"' {
                        if chars.peek().is_some_and(|(_, n)| *n == '"') {
                            chars.next();
                            name.push('"');
                            continue;
                        }
                        end = i + 1;
                        break;
                    }
                    name.push(c);
                }
                (name, &q[end..])
            }
            None => {
                let end = rest.find(' ').unwrap_or(rest.len());
                (rest[..end].to_string(), &rest[end..])
            }
        };
        // The type runs to the next ", " outside parentheses.
        let (mut depth, mut end) = (0, after.len());
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        out.push((name, after[..end].trim().to_string()));
        rest = after[end..].trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod attribute_tests {
    use super::dropped_attributes;

    #[test]
    fn attributes_gone() {
        assert_eq!(dropped_attributes("a numeric, b text", "a numeric"), ["b"]);
        assert_eq!(dropped_attributes("a numeric, \"b, c\" text", "a numeric"), ["b, c"]);
        assert!(dropped_attributes("a numeric, b text", "a numeric, c text").is_empty(), "renamed");
        assert_eq!(dropped_attributes("a numeric(10,2), b text", "b text, c int"), ["a"]);
        assert!(dropped_attributes("a int", "a int, b int").is_empty());
    }
}
