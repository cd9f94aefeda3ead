//! Catalog changes. Each change names its object, what happened to it, the
//! attributes that differ, and danger labels a CI gate can act on.

use std::collections::BTreeMap;

use crate::catalog::Column;
use crate::plan::Unmatched;

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

/// Why a change deserves attention before it reaches production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Danger {
    /// Data disappears with the object (table, column, schema, sequence…).
    DropsData,
    /// The column's type changed: the table is rewritten or values may be narrowed.
    TypeChange,
    /// Clients using the old name break.
    BreaksClients,
}

impl Danger {
    /// The label as written in reports (`drops_data`, …).
    pub fn label(self) -> &'static str {
        match self {
            Danger::DropsData => "drops_data",
            Danger::TypeChange => "type_change",
            Danger::BreaksClients => "breaks_clients",
        }
    }
}

/// One catalog change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// Object kind: `table`, `column`, …
    pub kind: String,
    /// Added, dropped, altered or renamed.
    pub op: ChangeOp,
    /// Qualified name, e.g. `app.customers.email` (the child's name for renames).
    pub object: String,
    /// Attributes on the parent side that differ (or all, for a drop).
    pub before: BTreeMap<String, String>,
    /// Attributes on the child side that differ (or all, for an add).
    pub after: BTreeMap<String, String>,
    /// Danger labels, most severe first.
    pub danger: Vec<Danger>,
    /// The change this one is a consequence of (its `object`), if any.
    pub cause: Option<String>,
}

impl SchemaChange {
    fn new(kind: &str, op: ChangeOp, object: String) -> SchemaChange {
        SchemaChange {
            kind: kind.into(),
            op,
            object,
            before: BTreeMap::new(),
            after: BTreeMap::new(),
            danger: vec![],
            cause: None,
        }
    }

    /// Whether any danger label is set.
    pub fn is_dangerous(&self) -> bool {
        !self.danger.is_empty()
    }
}

fn column_attrs(c: &Column) -> BTreeMap<String, String> {
    let mut m =
        BTreeMap::from([("type".to_string(), c.type_name.clone()), ("not_null".to_string(), c.not_null.to_string())]);
    if !c.generated.is_empty() {
        m.insert("generated".into(), c.generated.clone());
    }
    m
}

/// Table and column changes seen while pairing the catalogs. Columns of a
/// dropped or added table are not reported again: they are part of the table change.
pub fn from_unmatched(unmatched: &[Unmatched]) -> Vec<SchemaChange> {
    let mut out = vec![];
    for u in unmatched {
        out.push(match u {
            Unmatched::TableDropped(t) => {
                let mut c = SchemaChange::new("table", ChangeOp::Dropped, t.qualified());
                c.before.insert("columns".into(), t.columns.len().to_string());
                c.danger.push(Danger::DropsData);
                c
            }
            Unmatched::TableAdded(t) => {
                let mut c = SchemaChange::new("table", ChangeOp::Added, t.qualified());
                c.after.insert("columns".into(), t.columns.len().to_string());
                c
            }
            Unmatched::TableRenamed { parent, child } => {
                let mut c = SchemaChange::new("table", ChangeOp::Renamed, child.qualified());
                c.before.insert("name".into(), parent.qualified());
                c.after.insert("name".into(), child.qualified());
                c.danger.push(Danger::BreaksClients);
                c
            }
            Unmatched::ColumnDropped { table, column } => {
                let mut c = SchemaChange::new("column", ChangeOp::Dropped, format!("{table}.{}", column.name));
                c.before = column_attrs(column);
                c.danger.push(Danger::DropsData);
                c
            }
            Unmatched::ColumnAdded { table, column } => {
                let mut c = SchemaChange::new("column", ChangeOp::Added, format!("{table}.{}", column.name));
                c.after = column_attrs(column);
                c
            }
            Unmatched::ColumnRenamed { table, parent, child } => {
                let mut c = SchemaChange::new("column", ChangeOp::Renamed, format!("{table}.{}", child.name));
                c.before.insert("name".into(), parent.name.clone());
                c.after.insert("name".into(), child.name.clone());
                c.danger.push(Danger::BreaksClients);
                c
            }
            Unmatched::ColumnRetyped { table, parent, child } => {
                let mut c = SchemaChange::new("column", ChangeOp::Altered, format!("{table}.{}", child.name));
                c.before.insert("type".into(), parent.type_name.clone());
                c.after.insert("type".into(), child.type_name.clone());
                c.danger.push(Danger::TypeChange);
                c
            }
        });
    }
    out.sort_by(|a, b| b.is_dangerous().cmp(&a.is_dangerous()).then_with(|| a.object.cmp(&b.object)));
    out
}
