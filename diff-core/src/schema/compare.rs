//! Pairs the objects of both sides and turns the differences into changes.
//!
//! Pairing, in order: by qualified name; then, on one lineage (a TEMPLATE
//! copy or clone: same system identifier), by catalog identity (OID, and
//! attnum for columns), which is exact and makes renames renames; then, where
//! identity is unknown, by a conservative inference (a table with exactly the
//! same columns, a column with the same type at the same position), which the
//! change says it inferred. The row diff uses the same pairs
//! ([`Pairs::table`], [`Pairs::column`]), so a renamed table or column is
//! still compared under its new name. Attributes are compared by what they
//! mean across server versions ([`super::portable`]); each change is labelled
//! by the rules in [`super::classify`].

use std::collections::{BTreeMap, HashMap, HashSet};

use super::classify::{self, Subject};
use super::portable::{self, Names};
use super::read::{ObjKind, Object};
use super::{ChangeOp, SchemaChange};

/// Renames found, for the row diff.
#[derive(Debug, Default, Clone)]
pub struct Pairs {
    /// Child `schema.table` → parent `schema.table`, for renamed tables.
    pub tables: HashMap<String, String>,
    /// (child `schema.table`, child column) → parent column, for renamed columns.
    pub columns: HashMap<(String, String), String>,
    /// Renames inferred without lineage: guesses the data must confirm.
    pub inferred: Vec<Inferred>,
}

/// A rename inferred from the catalog alone (no shared lineage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// Qualified name on the parent side.
    pub parent: String,
    /// Qualified name on the child side.
    pub child: String,
    /// `schema.table` on the parent side (the table itself, or the column's table).
    pub parent_table: String,
    /// `schema.table` on the child side.
    pub child_table: String,
    /// For a column: (parent column, child column).
    pub column: Option<(String, String)>,
}

impl Pairs {
    /// The parent name of a child table.
    pub fn table<'a>(&'a self, child: &'a str) -> &'a str {
        self.tables.get(child).map(String::as_str).unwrap_or(child)
    }

    /// A renamed table's name on the other side (`schema.table`, either direction).
    pub fn other_name(&self, qualified: &str) -> Option<&str> {
        if let Some(p) = self.tables.get(qualified) {
            return Some(p);
        }
        self.tables.iter().find(|(_, p)| p.as_str() == qualified).map(|(c, _)| c.as_str())
    }

    /// The parent name of a child column.
    pub fn column<'a>(&'a self, child_table: &str, child_col: &'a str) -> &'a str {
        self.columns.get(&(child_table.to_string(), child_col.to_string())).map(String::as_str).unwrap_or(child_col)
    }
}

use crate::reading::FIRST_NORMAL_OID;

/// Whether two databases of one cluster share lineage: a TEMPLATE copy keeps
/// its source's OIDs, so user objects appear on both sides with the same OID
/// and kind; a dump restored into another database of the cluster gets fresh
/// OIDs from the cluster's counter and shares none. Only then is an OID an
/// identity across the two sides.
pub fn shares_objects(parent: &[Object], child: &[Object]) -> bool {
    let user = |o: &Object| o.identity.filter(|id| id.0 >= FIRST_NORMAL_OID && id.1 == 0).map(|id| (o.kind, id.0));
    let parent_ids: HashSet<(ObjKind, u32)> = parent.iter().filter_map(user).collect();
    child.iter().filter_map(user).any(|id| parent_ids.contains(&id))
}

/// Attributes that are read but not compared as such.
const HIDDEN: &[&str] = &["relfilenode", "type_oid", "position"];

struct Matched<'a> {
    parent: &'a Object,
    child: &'a Object,
    inferred: Option<&'static str>,
}

/// Pairs and compares. `lineage`: both sides come from one cluster's copy.
/// `rejected`: inferred renames (parent name, child name) the data refuted
/// (see `crate::confirm`), not to be inferred again.
pub fn compare(
    parent: &[Object],
    child: &[Object],
    lineage: bool,
    rejected: &[(String, String)],
) -> (Vec<SchemaChange>, Pairs) {
    let mut matched: Vec<Matched> = vec![];
    let mut used_p: HashSet<usize> = HashSet::new();
    let mut used_c: HashSet<usize> = HashSet::new();
    let by_name: HashMap<(ObjKind, &str), usize> =
        parent.iter().enumerate().map(|(i, o)| ((o.kind, o.name.as_str()), i)).collect();
    let by_identity: HashMap<(ObjKind, (u32, i16)), usize> =
        parent.iter().enumerate().filter_map(|(i, o)| o.identity.map(|id| ((o.kind, id), i))).collect();
    // Identity first on one lineage: an object renamed and another created under its old name stay apart.
    if lineage {
        for (ci, c) in child.iter().enumerate() {
            if let Some(&pi) = c.identity.and_then(|id| by_identity.get(&(c.kind, id))) {
                if !used_p.contains(&pi) {
                    used_p.insert(pi);
                    used_c.insert(ci);
                    matched.push(Matched { parent: &parent[pi], child: c, inferred: None });
                }
            }
        }
    }
    for (ci, c) in child.iter().enumerate() {
        if used_c.contains(&ci) {
            continue;
        }
        if let Some(&pi) = by_name.get(&(c.kind, c.name.as_str())) {
            if !used_p.contains(&pi) {
                used_p.insert(pi);
                used_c.insert(ci);
                matched.push(Matched { parent: &parent[pi], child: c, inferred: None });
            }
        }
    }
    // On one lineage identity is the truth: what it did not pair was dropped or added.
    if !lineage {
        infer_renames(parent, child, rejected, &mut matched, &mut used_p, &mut used_c);
    }

    let mut pairs = Pairs::default();
    let names = (Names::of(parent), Names::of(child));
    let renames = Renames::of(&matched);
    // Objects whose parent object was renamed keep their own name: not a rename of theirs.
    let mut changes = vec![];
    for m in &matched {
        let (p, c) = (m.parent, m.child);
        if m.inferred.is_some() {
            let column = (p.kind == ObjKind::Column).then(|| (p.leaf.clone(), c.leaf.clone()));
            let table =
                |o: &Object| if column.is_some() { o.parent.clone().unwrap_or_default() } else { o.name.clone() };
            pairs.inferred.push(Inferred {
                parent: p.name.clone(),
                child: c.name.clone(),
                parent_table: table(p),
                child_table: table(c),
                column,
            });
        }
        if p.kind == ObjKind::Table && p.name != c.name {
            pairs.tables.insert(c.name.clone(), p.name.clone());
        }
        if p.kind == ObjKind::Column && p.leaf != c.leaf {
            if let Some(t) = &c.parent {
                pairs.columns.insert((t.clone(), c.leaf.clone()), p.leaf.clone());
            }
        }
        if p.leaf != c.leaf
            || (p.parent != c.parent
                && !matches!(
                    p.kind,
                    ObjKind::Column | ObjKind::Constraint | ObjKind::Trigger | ObjKind::Policy | ObjKind::Rule
                ))
        {
            let mut ch = change(c, ChangeOp::Renamed);
            ch.before.insert("name".into(), p.name.clone());
            ch.after.insert("name".into(), c.name.clone());
            if let Some(how) = m.inferred {
                ch.note = Some(format!("rename inferred: {how}, confirmed by the data"));
            }
            ch.danger = classify::labels(&subject(ChangeOp::Renamed, Some(p), Some(c)));
            changes.push(ch);
        }
        if let Some(ch) = altered(p, c, lineage, (&names.0, &names.1), &renames) {
            changes.push(ch);
        }
    }
    let dropped: Vec<&Object> =
        parent.iter().enumerate().filter(|(i, _)| !used_p.contains(i)).map(|(_, o)| o).collect();
    let added: Vec<&Object> = child.iter().enumerate().filter(|(i, _)| !used_c.contains(i)).map(|(_, o)| o).collect();
    let dropped_names: HashMap<&str, &Object> = dropped.iter().map(|o| (o.name.as_str(), *o)).collect();
    for o in &dropped {
        let mut ch = change(o, ChangeOp::Dropped);
        ch.before = visible(&o.attrs);
        ch.danger = classify::labels(&subject(ChangeOp::Dropped, Some(o), None));
        ch.cause = root_cause(o, &dropped_names);
        changes.push(ch);
    }
    let added_names: HashMap<&str, &Object> = added.iter().map(|o| (o.name.as_str(), *o)).collect();
    for o in &added {
        let mut ch = change(o, ChangeOp::Added);
        ch.after = visible(&o.attrs);
        ch.cause = root_cause(o, &added_names);
        // Parts of a new object (a new table's NOT NULL columns, its key) break nothing that exists.
        if ch.cause.is_none() {
            ch.danger = classify::labels(&subject(ChangeOp::Added, None, Some(o)));
        }
        changes.push(ch);
    }
    changes.sort_by(|a, b| {
        (a.cause.is_some(), !a.is_dangerous(), &a.object, a.kind.as_str()).cmp(&(
            b.cause.is_some(),
            !b.is_dangerous(),
            &b.object,
            b.kind.as_str(),
        ))
    });
    (changes, pairs)
}

fn subject<'a>(op: ChangeOp, before: Option<&'a Object>, after: Option<&'a Object>) -> Subject<'a> {
    let kind = before.or(after).map(|o| o.kind).unwrap_or(ObjKind::Schema);
    Subject { op, kind, before, after, changed: Default::default(), rewritten: false, redefined: false }
}

fn change(o: &Object, op: ChangeOp) -> SchemaChange {
    let mut c = SchemaChange::new(o.kind.label(), op, o.name.clone());
    c.table = o.table.clone();
    c
}

fn visible(attrs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    attrs.iter().filter(|(k, _)| !HIDDEN.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Follows dependencies to the outermost object dropped (or added) in the same change.
fn root_cause(o: &Object, same_op: &HashMap<&str, &Object>) -> Option<String> {
    let mut cause: Option<&Object> = None;
    let mut cur = o;
    let mut seen = HashSet::new();
    while let Some(next) = cur.depends_on.iter().filter_map(|d| same_op.get(d.as_str())).find(|n| n.name != cur.name) {
        if !seen.insert(next.name.clone()) {
            break;
        }
        cause = Some(next);
        cur = next;
    }
    cause.map(|c| c.name.clone())
}

/// Conservative renames where identity is unknown.
fn infer_renames<'a>(
    parent: &'a [Object],
    child: &'a [Object],
    rejected: &[(String, String)],
    matched: &mut Vec<Matched<'a>>,
    used_p: &mut HashSet<usize>,
    used_c: &mut HashSet<usize>,
) {
    let columns_of = |objs: &'a [Object], table: &str| -> Vec<(String, String)> {
        objs.iter()
            .filter(|o| o.kind == ObjKind::Column && o.parent.as_deref() == Some(table))
            .map(|o| (o.leaf.clone(), o.attrs.get("type").cloned().unwrap_or_default()))
            .collect()
    };
    // Tables: in the same schema, exactly the same columns (names and types, in order).
    let free_p: Vec<usize> =
        (0..parent.len()).filter(|i| !used_p.contains(i) && parent[*i].kind == ObjKind::Table).collect();
    let free_c: Vec<usize> =
        (0..child.len()).filter(|i| !used_c.contains(i) && child[*i].kind == ObjKind::Table).collect();
    for ci in free_c {
        let c = &child[ci];
        let cols = columns_of(child, &c.name);
        let candidates: Vec<usize> = free_p
            .iter()
            .copied()
            .filter(|pi| !used_p.contains(pi))
            .filter(|pi| {
                parent[*pi].parent == c.parent && !cols.is_empty() && columns_of(parent, &parent[*pi].name) == cols
            })
            .filter(|pi| !rejected.iter().any(|(rp, rc)| *rp == parent[*pi].name && *rc == c.name))
            .collect();
        if let [pi] = candidates[..] {
            used_p.insert(pi);
            used_c.insert(ci);
            matched.push(Matched { parent: &parent[pi], child: c, inferred: Some("same columns and types") });
            pair_children(parent, child, &parent[pi].name, &c.name, matched, used_p, used_c);
        }
    }
    // Columns: in a paired table, one dropped and one added column of the same type at the same position.
    let table_pairs: Vec<(String, String)> = matched
        .iter()
        .filter(|m| m.parent.kind == ObjKind::Table)
        .map(|m| (m.parent.name.clone(), m.child.name.clone()))
        .collect();
    for (pt, ct) in table_pairs {
        let free = |objs: &'a [Object], used: &HashSet<usize>, t: &str| -> Vec<usize> {
            (0..objs.len())
                .filter(|i| {
                    !used.contains(i) && objs[*i].kind == ObjKind::Column && objs[*i].parent.as_deref() == Some(t)
                })
                .collect()
        };
        let (fp, fc) = (free(parent, used_p, &pt), free(child, used_c, &ct));
        if let ([pi], [ci]) = (&fp[..], &fc[..]) {
            let (p, c) = (&parent[*pi], &child[*ci]);
            let ordinal = |objs: &[Object], o: &Object| {
                objs.iter().filter(|x| x.kind == ObjKind::Column && x.parent == o.parent).position(|x| x.name == o.name)
            };
            let refuted = rejected.iter().any(|(rp, rc)| *rp == p.name && *rc == c.name);
            if p.attrs.get("type") == c.attrs.get("type") && ordinal(parent, p) == ordinal(child, c) && !refuted {
                used_p.insert(*pi);
                used_c.insert(*ci);
                matched.push(Matched { parent: p, child: c, inferred: Some("same type and position") });
            }
        }
    }
}

/// After an inferred table rename, its columns, constraints, indexes… pair by their own names.
fn pair_children<'a>(
    parent: &'a [Object],
    child: &'a [Object],
    pt: &str,
    ct: &str,
    matched: &mut Vec<Matched<'a>>,
    used_p: &mut HashSet<usize>,
    used_c: &mut HashSet<usize>,
) {
    for (ci, c) in child.iter().enumerate() {
        if used_c.contains(&ci) || c.parent.as_deref() != Some(ct) {
            continue;
        }
        let found = parent.iter().enumerate().find(|(pi, p)| {
            !used_p.contains(pi) && p.kind == c.kind && p.parent.as_deref() == Some(pt) && p.leaf == c.leaf
        });
        if let Some((pi, p)) = found {
            used_p.insert(pi);
            used_c.insert(ci);
            matched.push(Matched { parent: p, child: c, inferred: None });
        }
    }
}

fn altered(p: &Object, c: &Object, lineage: bool, names: (&Names, &Names), renames: &Renames) -> Option<SchemaChange> {
    let mut ch = change(c, ChangeOp::Altered);
    let keys: std::collections::BTreeSet<&String> = p.attrs.keys().chain(c.attrs.keys()).collect();
    let mut changed = std::collections::BTreeSet::new();
    for k in keys {
        // On one lineage a column cannot move without being dropped and added again, and
        // the ordinal positions after a drop would only repeat that change.
        let compared_position = k == "position" && !lineage && p.kind == ObjKind::Column;
        if HIDDEN.contains(&k.as_str()) && !compared_position {
            continue;
        }
        if !portable::same_attr(k, p, c, names) {
            changed.insert(k.clone());
            if let Some(a) = p.attrs.get(k) {
                ch.before.insert(k.clone(), a.clone());
            }
            if let Some(b) = c.attrs.get(k) {
                ch.after.insert(k.clone(), b.clone());
            }
        }
    }
    // relfilenode is only comparable on one lineage: a new one means the table was rewritten. A
    // table paired by name although its OID differs was dropped and created again (replaced).
    let table = lineage && p.kind == ObjKind::Table;
    let replaced = table && p.identity.map(|i| i.0) != c.identity.map(|i| i.0);
    let rewritten = table && (replaced || p.attrs.get("relfilenode") != c.attrs.get("relfilenode"));
    if changed.is_empty() && !rewritten {
        return None;
    }
    let redefined = (changed.contains("definition") || changed.contains("type"))
        && matches!(p.kind, ObjKind::Constraint | ObjKind::Index)
        && renames.redefined(p, c);
    let s = Subject { changed, rewritten, redefined, ..subject(ChangeOp::Altered, Some(p), Some(c)) };
    ch.danger = classify::labels(&s);
    if replaced {
        ch.note = Some(
            "replaced: the table was dropped and created again under this name (a new object); \
             its rows are compared by name"
                .into(),
        );
    } else if rewritten {
        ch.note = Some("the table was rewritten: new relfilenode".into());
    } else if s.changed.contains("kind") && p.kind == ObjKind::Table {
        ch.note = Some(
            "the table was recreated as another kind (regular ↔ partitioned): every row it still holds was written \
             again; rows the new table does not hold are counted under data loss for this table"
                .into(),
        );
    }
    Some(ch)
}

/// Renamed columns of one table: (parent table leaf, child `schema.table`) and
/// its (old, new) column names.
type ColumnRenames = ((String, String), Vec<(String, String)>);

/// Renames among the paired objects, to tell a definition that only prints
/// new names from one that means something else.
struct Renames {
    /// Parent leaf → child leaf of renamed schemas and tables.
    relations: HashMap<String, String>,
    /// Renamed columns per table: (parent table leaf, child table name) → [(old, new)].
    columns: Vec<ColumnRenames>,
}

impl Renames {
    fn of(matched: &[Matched]) -> Renames {
        let mut relations = HashMap::new();
        let mut columns: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        for m in matched {
            let (p, c) = (m.parent, m.child);
            if p.leaf == c.leaf {
                continue;
            }
            match p.kind {
                ObjKind::Schema | ObjKind::Table => {
                    relations.insert(p.leaf.clone(), c.leaf.clone());
                }
                ObjKind::Column => {
                    let table_leaf = |o: &Object| o.table.as_ref().map(|t| t.1.clone()).unwrap_or_default();
                    let key = (table_leaf(p), c.parent.clone().unwrap_or_default());
                    columns.entry(key).or_default().push((p.leaf.clone(), c.leaf.clone()));
                }
                _ => {}
            }
        }
        Renames { relations, columns: columns.into_iter().collect() }
    }

    /// Whether an altered constraint or index means something else: its
    /// parent definition, with the renames applied, differs from the child's.
    /// Storage parameters and INCLUDE columns do not change what it enforces.
    fn redefined(&self, p: &Object, c: &Object) -> bool {
        let def = |o: &Object| {
            let mut d = o.attrs.get("type").cloned().unwrap_or_default();
            d.push(' ');
            d.push_str(o.attrs.get("definition").map(String::as_str).unwrap_or(""));
            meaning(&d)
        };
        let (before, after) = (def(p), def(c));
        let mentions = |leaf: &str| before.iter().any(|t| *t == portable::Tok::Name(leaf.to_string(), false));
        let own_table = c.table.as_ref().map(|(s, t)| format!("{s}.{t}")).unwrap_or_default();
        let mut map: HashMap<&str, &str> = HashMap::new();
        for ((parent_leaf, child_table), cols) in &self.columns {
            if *child_table == own_table || mentions(parent_leaf) {
                for (old, new) in cols {
                    map.insert(old, new);
                }
            }
        }
        for (old, new) in &self.relations {
            map.insert(old, new);
        }
        let renamed: Vec<portable::Tok> = before
            .into_iter()
            .map(|t| match &t {
                portable::Tok::Name(n, q) => match map.get(n.as_str()) {
                    Some(new) => portable::Tok::Name(new.to_string(), *q),
                    None => t,
                },
                _ => t,
            })
            .collect();
        renamed != after
    }
}

/// A constraint or index definition as tokens, without an index's own name,
/// storage parameters (`WITH (…)`) and INCLUDE columns.
fn meaning(definition: &str) -> Vec<portable::Tok> {
    use portable::Tok;
    let toks = portable::tokenize(definition);
    let mut out = vec![];
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let skip_group = matches!(t, Tok::Name(w, false) if w == "with" || w == "include")
            && toks.get(i + 1) == Some(&Tok::Punct('('));
        if skip_group {
            let mut depth = 0;
            i += 1;
            while i < toks.len() {
                match toks[i] {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => depth -= 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
            continue;
        }
        out.push(t.clone());
        if matches!(t, Tok::Name(w, false) if w == "index") && matches!(toks.get(i + 1), Some(Tok::Name(..))) {
            // CREATE INDEX name ON …: the name is not what it enforces.
            i += 1;
        }
        i += 1;
    }
    out
}
