//! Danger labels: every rule in one table ([`RULES`]), each a pure function
//! of one change. A label says what a change *does*, however it was spelled:
//! a constraint or index altered to mean something else is labelled as if it
//! were added fresh, a table recreated as another kind as rewritten.

use std::collections::BTreeSet;

use super::read::{ObjKind, Object};
use super::{ChangeOp, Danger};

/// One change as the rules see it.
#[derive(Debug)]
pub struct Subject<'a> {
    /// Added, dropped, altered or renamed.
    pub op: ChangeOp,
    /// The object's kind.
    pub kind: ObjKind,
    /// The parent's object (dropped, altered, renamed).
    pub before: Option<&'a Object>,
    /// The child's object (added, altered, renamed).
    pub after: Option<&'a Object>,
    /// Attributes that differ (altered only).
    pub changed: BTreeSet<String>,
    /// The table has a new relfilenode on one lineage: it was rewritten.
    pub rewritten: bool,
    /// An altered constraint or index means something else now: its
    /// definition changed beyond the renames of what it names.
    pub redefined: bool,
}

impl Subject<'_> {
    fn attr(&self, after: bool, key: &str) -> Option<&str> {
        let o = if after { self.after } else { self.before };
        o.and_then(|o| o.attrs.get(key)).map(String::as_str)
    }

    fn old_attr(&self, key: &str) -> Option<&str> {
        self.attr(false, key)
    }

    fn new_attr(&self, key: &str) -> Option<&str> {
        self.attr(true, key)
    }

    fn altered(&self, key: &str) -> bool {
        self.op == ChangeOp::Altered && self.changed.contains(key)
    }

    fn is(&self, op: ChangeOp, kinds: &[ObjKind]) -> bool {
        self.op == op && kinds.contains(&self.kind)
    }

    /// The constraint type (`unique`, `check`, …) on the side that exists now.
    fn constraint_type(&self) -> &str {
        let side = self.op != ChangeOp::Dropped;
        if self.kind == ObjKind::Constraint {
            self.attr(side, "type").unwrap_or("")
        } else {
            ""
        }
    }

    fn enforces_uniqueness(&self) -> bool {
        match self.kind {
            ObjKind::Constraint => matches!(self.constraint_type(), "unique" | "primary key" | "exclusion"),
            ObjKind::Index => self.new_attr("definition").is_some_and(|d| d.starts_with("CREATE UNIQUE")),
            _ => false,
        }
    }

    fn validated_check_or_key(&self) -> bool {
        matches!(self.constraint_type(), "foreign key" | "check") && self.new_attr("validated") == Some("true")
    }
}

/// One labelling rule.
pub struct Rule {
    /// Stable name of the rule.
    pub id: &'static str,
    /// The label it gives.
    pub danger: Danger,
    /// When it applies, in words (what the documentation's table says).
    pub when: &'static str,
    /// Whether it applies to a change.
    pub applies: fn(&Subject) -> bool,
}

use ChangeOp::{Added, Altered, Dropped, Renamed};
use ObjKind::*;

/// Every rule, in the order labels are reported.
pub const RULES: &[Rule] = &[
    Rule {
        id: "dropped_with_data",
        danger: Danger::DropsData,
        when: "a table, column, schema (even an empty one), materialized view, sequence or large object dropped",
        applies: |s| s.is(Dropped, &[Table, Column, Schema, MaterializedView, Sequence, LargeObject]),
    },
    Rule {
        id: "large_object_overwritten",
        danger: Danger::DropsData,
        when: "a large object's content changed (`lo_put`, `lo_truncate`, a new `lo_from_bytea` under its OID)",
        applies: |s| s.kind == LargeObject && s.altered("content"),
    },
    Rule {
        id: "composite_attribute_dropped",
        danger: Danger::DropsData,
        when: "an attribute dropped from a composite type (its values go from every column, array and composite holding the type)",
        applies: |s| {
            s.kind == CompositeType
                && s.altered("attributes")
                && !super::dropped_attributes(s.old_attr("attributes").unwrap_or(""), s.new_attr("attributes").unwrap_or(""))
                    .is_empty()
        },
    },
    Rule {
        id: "type_changed",
        danger: Danger::TypeChange,
        when: "a column's type changed",
        applies: |s| s.kind == Column && s.altered("type"),
    },
    Rule {
        id: "stored_expression_changed",
        danger: Danger::TypeChange,
        when: "a stored generated column's expression changed (every value is computed and written again)",
        applies: |s| {
            s.kind == Column
                && s.altered("generated")
                && s.new_attr("generated").is_some_and(|g| g.starts_with("stored"))
        },
    },
    Rule {
        id: "type_narrowed",
        danger: Danger::MayNarrow,
        when: "a column's type changed to one that holds less",
        applies: |s| {
            s.kind == Column
                && s.altered("type")
                && narrows(s.old_attr("type").unwrap_or(""), s.new_attr("type").unwrap_or(""))
        },
    },
    Rule {
        id: "not_null_set",
        danger: Danger::NotNullAdded,
        when: "NOT NULL set on a column (also NOT VALID) or a domain",
        applies: |s| {
            matches!(s.kind, Column | Domain) && s.altered("not_null") && s.new_attr("not_null") == Some("true")
        },
    },
    Rule {
        id: "not_null_column_added",
        danger: Danger::NotNullAdded,
        when: "a NOT NULL column added without a default, identity or generation expression",
        applies: |s| {
            s.is(Added, &[Column])
                && s.new_attr("not_null") == Some("true")
                && ["default", "identity", "generated"].iter().all(|k| s.new_attr(k).is_none())
        },
    },
    Rule {
        id: "unique_added",
        danger: Danger::UniqueAdded,
        when: "a unique, primary key or exclusion constraint or a unique index added",
        applies: |s| s.op == Added && s.enforces_uniqueness(),
    },
    Rule {
        id: "unique_redefined",
        danger: Danger::UniqueAdded,
        when: "… or altered to cover other columns or expressions (an index made unique, a key moved)",
        applies: |s| s.op == Altered && s.redefined && s.enforces_uniqueness(),
    },
    Rule {
        id: "validated_constraint_added",
        danger: Danger::ValidatedConstraintAdded,
        when: "a foreign key or check added as validated",
        applies: |s| s.op == Added && s.validated_check_or_key(),
    },
    Rule {
        id: "validated_constraint_redefined",
        danger: Danger::ValidatedConstraintAdded,
        when: "… or altered (another expression, other columns, another referenced table) and validated",
        applies: |s| s.op == Altered && s.redefined && s.validated_check_or_key(),
    },
    Rule {
        id: "constraint_validated",
        danger: Danger::ValidatedConstraintAdded,
        when: "a NOT VALID foreign key, check or NOT NULL validated later",
        applies: |s| {
            (s.kind == Constraint && s.altered("validated") && s.new_attr("validated") == Some("true"))
                || (s.kind == Column
                    && s.altered("not_null_validated")
                    && s.new_attr("not_null_validated").is_none()
                    && s.new_attr("not_null") == Some("true"))
        },
    },
    Rule {
        id: "default_changed",
        danger: Danger::DefaultChanged,
        when: "a column's or domain's default changed or dropped",
        applies: |s| matches!(s.kind, Column | Domain) && s.altered("default"),
    },
    Rule {
        id: "not_null_dropped",
        danger: Danger::NotNullDropped,
        when: "NOT NULL dropped from a column or domain",
        applies: |s| {
            matches!(s.kind, Column | Domain) && s.altered("not_null") && s.new_attr("not_null") != Some("true")
        },
    },
    Rule {
        id: "foreign_key_dropped",
        danger: Danger::ForeignKeyDropped,
        when: "a foreign key dropped",
        applies: |s| s.op == Dropped && s.constraint_type() == "foreign key",
    },
    Rule {
        id: "renamed",
        danger: Danger::BreaksClients,
        when: "a table, column, view, materialized view, function, procedure or schema renamed",
        applies: |s| s.is(Renamed, &[Table, Column, View, MaterializedView, Schema, Function, Procedure]),
    },
    Rule {
        id: "callable_dropped",
        danger: Danger::BreaksClients,
        when: "a view, function or procedure dropped",
        applies: |s| s.is(Dropped, &[View, Function, Procedure]),
    },
    Rule {
        id: "enum_label_removed",
        danger: Danger::BreaksClients,
        when: "an enum label renamed, removed or reordered (appending one breaks nobody)",
        applies: |s| {
            s.kind == Enum
                && s.altered("labels")
                && !s.new_attr("labels").unwrap_or("").starts_with(s.old_attr("labels").unwrap_or(""))
        },
    },
    Rule {
        id: "policy_changed",
        danger: Danger::Security,
        when: "a row-level security policy added, dropped or altered",
        applies: |s| s.kind == Policy && s.op != Renamed,
    },
    Rule {
        id: "row_security_changed",
        danger: Danger::Security,
        when: "row-level security enabled, disabled, forced or not",
        applies: |s| s.kind == Table && (s.altered("row_security") || s.altered("force_row_security")),
    },
    Rule {
        id: "privileges_changed",
        danger: Danger::Security,
        when: "privileges changed",
        applies: |s| s.altered("privileges"),
    },
    Rule {
        id: "security_definer_changed",
        danger: Danger::Security,
        when: "a function or procedure made SECURITY DEFINER or INVOKER",
        applies: |s| matches!(s.kind, Function | Procedure) && s.altered("security_definer"),
    },
    Rule {
        id: "relfilenode_changed",
        danger: Danger::TableRewritten,
        when: "the table's relfilenode differs (rewrite, VACUUM FULL, TRUNCATE; on one lineage only)",
        applies: |s| s.kind == Table && s.rewritten,
    },
    Rule {
        id: "table_recreated",
        danger: Danger::TableRewritten,
        when: "a table converted between regular and partitioned, or logged and unlogged",
        applies: |s| s.kind == Table && s.altered("kind"),
    },
    Rule {
        id: "rule_changed",
        danger: Danger::ResultsChanged,
        when: "a rule added, dropped or altered (DO INSTEAD, DO INSTEAD NOTHING, DO ALSO, enabled or disabled)",
        applies: |s| s.kind == ObjKind::Rule && s.op != Renamed,
    },
    Rule {
        id: "inheritance_changed",
        danger: Danger::ResultsChanged,
        when: "a table's inheritance parents changed (INHERIT, NO INHERIT): a SELECT on the parent returns other rows",
        applies: |s| s.kind == Table && s.altered("inherits"),
    },
    Rule {
        id: "publication_changed",
        danger: Danger::ReplicationChanged,
        when: "a publication added, dropped or altered (its tables, schemas, operations, row filters, column lists)",
        applies: |s| s.kind == Publication && s.op != Renamed,
    },
];

/// The labels of one change, in report order, each once.
pub fn labels(s: &Subject) -> Vec<Danger> {
    let mut out: Vec<Danger> = RULES.iter().filter(|r| (r.applies)(s)).map(|r| r.danger).collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a type change can lose information: shorter varchar/char/bit, less
/// numeric precision or scale, a smaller integer or float, or to another family.
pub fn narrows(from: &str, to: &str) -> bool {
    let (fb, fm) = split_mods(from);
    let (tb, tm) = split_mods(to);
    let rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        "numeric" => Some(4),
        _ => None,
    };
    if fb == tb {
        return match (fm.as_slice(), tm.as_slice()) {
            (_, []) => false,
            ([], _) => true,
            (f, t) => {
                f.iter().zip(t).any(|(a, b)| b < a) || (f.len() == 2 && t.len() == 2 && (t[0] - t[1]) < (f[0] - f[1]))
            }
        };
    }
    match (rank(fb), rank(tb)) {
        (Some(a), Some(b)) => b < a || (b == 4 && !tm.is_empty()),
        _ => !matches!((fb, tb), ("character varying" | "character", "text") | ("real", "double precision")),
    }
}

fn split_mods(t: &str) -> (&str, Vec<i64>) {
    match t.split_once('(') {
        Some((base, rest)) => {
            (base, rest.trim_end_matches(')').split(',').filter_map(|x| x.trim().parse().ok()).collect())
        }
        None => (t, vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing() {
        assert!(narrows("character varying(30)", "character varying(10)"));
        assert!(!narrows("character varying(10)", "character varying(30)"));
        assert!(!narrows("character varying(10)", "text"));
        assert!(narrows("numeric(12,4)", "numeric(12,2)"));
        assert!(!narrows("integer", "bigint"));
        assert!(narrows("bigint", "integer"));
        assert!(narrows("text", "integer"));
        assert!(!narrows("numeric(10,2)", "numeric(12,2)"));
        assert!(narrows("numeric(12,2)", "numeric(11,2)"));
    }

    /// The labels in docs/output-format.md's danger table, in its order.
    fn documented_labels() -> Vec<String> {
        let doc = include_str!("../../../docs/output-format.md");
        let table = doc.split("### Danger labels").nth(1).expect("a danger label section");
        let mut labels = vec![];
        for line in table.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).skip(2) {
            let first = line.split('|').nth(1).unwrap_or("");
            labels.extend(first.split('`').skip(1).step_by(2).map(str::to_string));
        }
        labels
    }

    #[test]
    fn the_documentation_lists_exactly_the_labels_that_exist() {
        let mut documented = documented_labels();
        documented.sort();
        let mut existing: Vec<String> = Danger::ALL.iter().map(|d| d.label().to_string()).collect();
        existing.sort();
        assert_eq!(documented, existing);
    }

    #[test]
    fn rules_inheritance_and_publications_are_labelled() {
        let mut parent = crate::schema::read::Object {
            kind: Table,
            name: "s.t".into(),
            leaf: "t".into(),
            parent: Some("s".into()),
            table: None,
            identity: None,
            attrs: Default::default(),
            depends_on: vec![],
            server_version: 0,
        };
        parent.attrs.insert("inherits".into(), "s.base".into());
        let child = crate::schema::read::Object { attrs: Default::default(), ..parent.clone() };
        let altered = Subject {
            op: Altered,
            kind: Table,
            before: Some(&parent),
            after: Some(&child),
            changed: ["inherits".to_string()].into(),
            rewritten: false,
            redefined: false,
        };
        assert_eq!(labels(&altered), vec![Danger::ResultsChanged]);
        let rule = crate::schema::read::Object { kind: ObjKind::Rule, ..parent.clone() };
        let added = Subject {
            op: Added,
            kind: ObjKind::Rule,
            before: None,
            after: Some(&rule),
            changed: Default::default(),
            ..altered
        };
        assert_eq!(labels(&added), vec![Danger::ResultsChanged]);
        let publication = crate::schema::read::Object { kind: Publication, ..parent.clone() };
        let dropped = Subject { op: Dropped, kind: Publication, before: Some(&publication), after: None, ..added };
        assert_eq!(labels(&dropped), vec![Danger::ReplicationChanged]);
    }

    #[test]
    fn every_label_has_a_rule_and_rule_ids_are_unique() {
        for d in Danger::ALL {
            assert!(RULES.iter().any(|r| r.danger == d), "no rule gives {}", d.label());
        }
        let ids: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
    }
}
