//! Data loss: what the branch destroyed, with exact counts. Dropped objects
//! are counted in the parent's snapshot; values lost in place are classified
//! while rows are merged, from the two values the merge already holds, so no
//! unchanged row is read again.
//!
//! The rules are data ([`RULES`]): each kind has a stable id, what it means,
//! and, for values lost in place, a pure function of the parent's and the
//! child's value.

mod in_place;
mod text_form;

pub use in_place::{lost, Shape};

/// What was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// A table dropped with its rows.
    DroppedTable,
    /// A materialized view dropped with its rows.
    DroppedMaterializedView,
    /// A schema dropped with its tables.
    DroppedSchema,
    /// A sequence dropped (its last value).
    DroppedSequence,
    /// A large object removed (`lo_unlink`): its bytes.
    DroppedLargeObject,
    /// A large object's content replaced or changed: its old bytes.
    OverwrittenLargeObject,
    /// Every row of a table deleted, the table kept.
    EmptiedTable,
    /// A column dropped with its non-NULL values.
    DroppedColumn,
    /// An attribute dropped from a composite type: its non-NULL values in every column holding the type.
    DroppedAttribute,
    /// Rows deleted from a table present on both sides.
    DeletedRows,
    /// A non-NULL value set to NULL.
    Nulled,
    /// A string or bytea cut short: the new value is a proper prefix of the old.
    Truncated,
    /// A number that lost precision: the new value is the old one rounded.
    Rounded,
    /// A time, timestamp or interval rounded or cut to a coarser unit (fractions of a second, seconds, …).
    PrecisionDropped,
    /// A timestamp cut to its date: the time of day is gone.
    TimeOfDayDropped,
    /// Array elements or jsonb keys removed, the rest kept.
    Shrunk,
    /// Rows whose enum label no longer exists in the branch's type.
    EnumLabelRemoved,
}

/// One rule of the classifier.
pub struct Rule {
    /// The kind it finds.
    pub kind: LossKind,
    /// Stable id, as in JSON.
    pub id: &'static str,
    /// When it applies.
    pub when: &'static str,
}

/// Every kind of data loss, in report order.
pub const RULES: &[Rule] = &[
    Rule { kind: LossKind::DroppedTable, id: "dropped_table", when: "a table was dropped: its rows and bytes" },
    Rule {
        kind: LossKind::DroppedMaterializedView,
        id: "dropped_materialized_view",
        when: "a materialized view was dropped: its rows",
    },
    Rule { kind: LossKind::DroppedSchema, id: "dropped_schema", when: "a schema was dropped: its tables' rows" },
    Rule { kind: LossKind::DroppedSequence, id: "dropped_sequence", when: "a sequence was dropped: its last value" },
    Rule {
        kind: LossKind::DroppedLargeObject,
        id: "dropped_large_object",
        when: "a large object was removed (lo_unlink): its bytes",
    },
    Rule {
        kind: LossKind::OverwrittenLargeObject,
        id: "overwritten_large_object",
        when: "a large object's content was changed (lo_put, lo_truncate): its old bytes",
    },
    Rule { kind: LossKind::EmptiedTable, id: "emptied_table", when: "every row of a table was deleted" },
    Rule { kind: LossKind::DroppedColumn, id: "dropped_column", when: "a column was dropped: its non-NULL values" },
    Rule {
        kind: LossKind::DroppedAttribute,
        id: "dropped_attribute",
        when: "an attribute was dropped from a composite type: its non-NULL values in every column, array and composite holding the type",
    },
    Rule { kind: LossKind::DeletedRows, id: "deleted_rows", when: "rows deleted from a table kept on the branch" },
    Rule { kind: LossKind::Nulled, id: "nulled", when: "a non-NULL value became NULL" },
    Rule { kind: LossKind::Truncated, id: "truncated", when: "a string or bytea became a proper prefix of itself" },
    Rule {
        kind: LossKind::Rounded,
        id: "rounded",
        when: "a number no longer gives back the old one: rounded or cut to fewer digits (by an UPDATE, a type change or its USING)",
    },
    Rule {
        kind: LossKind::PrecisionDropped,
        id: "precision_dropped",
        when: "a time, timestamp or interval became itself rounded or cut to a coarser unit",
    },
    Rule {
        kind: LossKind::TimeOfDayDropped,
        id: "time_of_day_dropped",
        when: "a timestamp became its date (or midnight of it): the time of day is gone",
    },
    Rule { kind: LossKind::Shrunk, id: "shrunk", when: "array elements or jsonb keys were removed, the rest kept" },
    Rule {
        kind: LossKind::EnumLabelRemoved,
        id: "enum_label_removed",
        when: "a row used an enum label that the branch's type no longer has",
    },
];

impl LossKind {
    /// The stable id.
    pub fn id(self) -> &'static str {
        RULES.iter().find(|r| r.kind == self).map_or("", |r| r.id)
    }

    /// Whether the loss is a deletion of rows from a table that is kept.
    pub fn is_deleted_rows(self) -> bool {
        matches!(self, LossKind::DeletedRows | LossKind::EmptiedTable)
    }

    /// Whether the loss is a dropped object.
    pub fn is_dropped_object(self) -> bool {
        matches!(
            self,
            LossKind::DroppedTable
                | LossKind::DroppedMaterializedView
                | LossKind::DroppedSchema
                | LossKind::DroppedSequence
                | LossKind::DroppedLargeObject
                | LossKind::DroppedColumn
                | LossKind::DroppedAttribute
        )
    }
}

/// jsonb or json: an object lost keys and kept the others' values, or an
/// array lost elements and kept the others in order — at any depth.
pub fn shrunk_json(parent: &str, child: &str) -> bool {
    match (serde_json::from_str(parent), serde_json::from_str(child)) {
        (Ok(p), Ok(c)) => json_shrunk(&p, &c),
        _ => false,
    }
}

/// `c` is `p` with something removed (and nothing else changed).
fn json_shrunk(p: &serde_json::Value, c: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    let kept_or_shrunk = |a: &J, b: &J| a == b || json_shrunk(a, b);
    match (p, c) {
        (J::Object(p), J::Object(c)) => {
            c.iter().all(|(k, v)| p.get(k).is_some_and(|pv| kept_or_shrunk(pv, v)))
                && (c.len() < p.len() || c.iter().any(|(k, v)| p.get(k) != Some(v)))
        }
        (J::Array(p), J::Array(c)) => c.len() < p.len() && subsequence(c, p),
        _ => false,
    }
}

/// A one-dimensional array in PostgreSQL's text form lost elements, the rest kept in order.
pub fn shrunk_array(parent: &str, child: &str) -> bool {
    match (array_elements(parent), array_elements(child)) {
        (Some(p), Some(c)) => c.len() < p.len() && subsequence(&c, &p),
        _ => false,
    }
}

fn subsequence<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    let mut it = long.iter();
    short.iter().all(|x| it.any(|y| y == x))
}

/// The elements of `{a,"b c",NULL}` (one dimension, default bounds); `None` otherwise.
fn array_elements(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    if inner.starts_with('{') {
        return None;
    }
    let (mut out, mut cur, mut quoted, mut escaped, mut was_quoted) = (vec![], String::new(), false, false, false);
    for ch in inner.chars() {
        match ch {
            _ if escaped => {
                cur.push(ch);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                out.push(if was_quoted { format!("\"{cur}") } else { cur.clone() });
                cur.clear();
                was_quoted = false;
            }
            _ => cur.push(ch),
        }
    }
    if !inner.is_empty() {
        out.push(if was_quoted { format!("\"{cur}") } else { cur });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_rule_and_the_docs_list_them() {
        let kinds = [
            LossKind::DroppedTable,
            LossKind::DroppedMaterializedView,
            LossKind::DroppedSchema,
            LossKind::DroppedSequence,
            LossKind::DroppedLargeObject,
            LossKind::OverwrittenLargeObject,
            LossKind::EmptiedTable,
            LossKind::DroppedColumn,
            LossKind::DroppedAttribute,
            LossKind::DeletedRows,
            LossKind::Nulled,
            LossKind::Truncated,
            LossKind::Rounded,
            LossKind::PrecisionDropped,
            LossKind::TimeOfDayDropped,
            LossKind::Shrunk,
            LossKind::EnumLabelRemoved,
        ];
        assert_eq!(kinds.len(), RULES.len());
        let docs = include_str!("../../../docs/output-format.md");
        for k in kinds {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json.as_str(), Some(k.id()));
            assert!(docs.contains(&format!("`{}`", k.id())), "docs/output-format.md does not list {}", k.id());
        }
    }

    #[test]
    fn shrinking() {
        assert!(shrunk_json(r#"{"a": 1, "b": 2}"#, r#"{"a": 1}"#));
        assert!(!shrunk_json(r#"{"a": 1, "b": 2}"#, r#"{"a": 3}"#));
        assert!(shrunk_json("[1, 2, 3]", "[1, 3]"));
        assert!(shrunk_json(r#"{"b": {"c": 1, "d": 2}}"#, r#"{"b": {"c": 1}}"#));
        assert!(!shrunk_json(r#"{"b": {"c": 1, "d": 2}}"#, r#"{"b": {"c": 2}}"#));
        assert!(!shrunk_json(r#"{"a": 1}"#, r#"{"a": 1}"#));
        assert!(!shrunk_json("[1, 2, 3]", "[3, 1]"));
        assert!(shrunk_array("{a,\"b c\",NULL}", "{a,NULL}"));
        assert!(!shrunk_array("{a,b}", "{a,c}"));
        assert!(!shrunk_array("{a,NULL}", "{a,\"NULL\"}"));
        assert!(!shrunk_array("{{1,2},{3,4}}", "{{1,2}}"));
    }
}
