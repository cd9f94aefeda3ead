//! Pairs the objects of both sides and turns the differences into changes.
//!
//! Pairing, in order: by qualified name; then, on one lineage (a TEMPLATE
//! copy or clone: same system identifier), by catalog identity (OID, and
//! attnum for columns), which is exact and makes renames renames; then, where
//! identity is unknown, by a conservative inference (a table with exactly the
//! same columns, a column with the same type at the same position), which the
//! change says it inferred. The row diff uses the same pairs
//! ([`Pairs::table`], [`Pairs::column`]), so a renamed table or column is
//! still compared under its new name.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::read::{ObjKind, Object};
use super::{ChangeOp, Danger, SchemaChange};

/// Renames found, for the row diff.
#[derive(Debug, Default, Clone)]
pub struct Pairs {
    /// Child `schema.table` → parent `schema.table`, for renamed tables.
    pub tables: HashMap<String, String>,
    /// (child `schema.table`, child column) → parent column, for renamed columns.
    pub columns: HashMap<(String, String), String>,
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

/// Objects created by initdb have OIDs below this, the same in every database.
const FIRST_NORMAL_OID: u32 = 16384;

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
pub fn compare(parent: &[Object], child: &[Object], lineage: bool) -> (Vec<SchemaChange>, Pairs) {
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
        infer_renames(parent, child, &mut matched, &mut used_p, &mut used_c);
    }

    let mut pairs = Pairs::default();
    // Objects whose parent object was renamed keep their own name: not a rename of theirs.
    let mut changes = vec![];
    for m in &matched {
        let (p, c) = (m.parent, m.child);
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
                && !matches!(p.kind, ObjKind::Column | ObjKind::Constraint | ObjKind::Trigger | ObjKind::Policy))
        {
            let mut ch = change(c, ChangeOp::Renamed);
            ch.before.insert("name".into(), p.name.clone());
            ch.after.insert("name".into(), c.name.clone());
            if let Some(how) = m.inferred {
                ch.note = Some(format!("rename inferred: {how}"));
            }
            label_rename(&mut ch);
            changes.push(ch);
        }
        if let Some(ch) = altered(p, c, lineage) {
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
        label_dropped(&mut ch, o);
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
            label_added(&mut ch, o);
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
            if p.attrs.get("type") == c.attrs.get("type") && ordinal(parent, p) == ordinal(child, c) {
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

fn altered(p: &Object, c: &Object, lineage: bool) -> Option<SchemaChange> {
    let mut ch = change(c, ChangeOp::Altered);
    let keys: std::collections::BTreeSet<&String> = p.attrs.keys().chain(c.attrs.keys()).collect();
    for k in keys {
        // On one lineage a column cannot move without being dropped and added again, and
        // the ordinal positions after a drop would only repeat that change.
        let compared_position = k == "position" && !lineage && p.kind == ObjKind::Column;
        if HIDDEN.contains(&k.as_str()) && !compared_position {
            continue;
        }
        let (a, b) = (p.attrs.get(k), c.attrs.get(k));
        if a != b {
            if let Some(a) = a {
                ch.before.insert(k.clone(), a.clone());
            }
            if let Some(b) = b {
                ch.after.insert(k.clone(), b.clone());
            }
        }
    }
    // relfilenode is only comparable on one lineage: a new one means the table was rewritten.
    let rewritten = lineage && p.kind == ObjKind::Table && p.attrs.get("relfilenode") != c.attrs.get("relfilenode");
    if ch.before.is_empty() && ch.after.is_empty() && !rewritten {
        return None;
    }
    label_altered(&mut ch, p, c);
    if rewritten {
        ch.danger.push(Danger::TableRewritten);
        ch.note.get_or_insert_with(|| "the table was rewritten (new relfilenode)".into());
    }
    ch.danger.sort();
    ch.danger.dedup();
    Some(ch)
}

fn label_rename(ch: &mut SchemaChange) {
    if matches!(
        ch.kind.as_str(),
        "table" | "column" | "view" | "materialized_view" | "schema" | "function" | "procedure"
    ) {
        ch.danger.push(Danger::BreaksClients);
    }
}

fn label_dropped(ch: &mut SchemaChange, o: &Object) {
    match o.kind {
        ObjKind::Table | ObjKind::Column | ObjKind::Schema | ObjKind::MaterializedView | ObjKind::Sequence => {
            ch.danger.push(Danger::DropsData)
        }
        ObjKind::View | ObjKind::Function | ObjKind::Procedure => ch.danger.push(Danger::BreaksClients),
        ObjKind::Constraint if o.attrs.get("type").map(String::as_str) == Some("foreign key") => {
            ch.danger.push(Danger::ForeignKeyDropped)
        }
        ObjKind::Policy => ch.danger.push(Danger::Security),
        _ => {}
    }
}

fn label_added(ch: &mut SchemaChange, o: &Object) {
    match o.kind {
        ObjKind::Constraint => {
            let ty = o.attrs.get("type").map(String::as_str).unwrap_or("");
            if matches!(ty, "unique" | "primary key" | "exclusion") {
                ch.danger.push(Danger::UniqueAdded);
            }
            if matches!(ty, "foreign key" | "check") && o.attrs.get("validated").map(String::as_str) == Some("true") {
                ch.danger.push(Danger::ValidatedConstraintAdded);
            }
        }
        ObjKind::Index if o.attrs.get("definition").is_some_and(|d| d.starts_with("CREATE UNIQUE")) => {
            ch.danger.push(Danger::UniqueAdded)
        }
        ObjKind::Column
            if o.attrs.get("not_null").map(String::as_str) == Some("true") && !o.attrs.contains_key("default") =>
        {
            ch.danger.push(Danger::NotNullAdded)
        }
        ObjKind::Policy => ch.danger.push(Danger::Security),
        _ => {}
    }
}

fn label_altered(ch: &mut SchemaChange, p: &Object, c: &Object) {
    let get = |o: &Object, k: &str| o.attrs.get(k).cloned().unwrap_or_default();
    for k in ch.before.keys().chain(ch.after.keys()).cloned().collect::<std::collections::BTreeSet<_>>() {
        let (a, b) = (get(p, &k), get(c, &k));
        match (p.kind, k.as_str()) {
            (ObjKind::Column, "type") => {
                ch.danger.push(Danger::TypeChange);
                if narrows(&a, &b) {
                    ch.danger.push(Danger::MayNarrow);
                }
            }
            (ObjKind::Column | ObjKind::Domain, "not_null") if b == "true" => ch.danger.push(Danger::NotNullAdded),
            (ObjKind::Column | ObjKind::Domain, "not_null") => ch.danger.push(Danger::NotNullDropped),
            (ObjKind::Column | ObjKind::Domain, "default") => ch.danger.push(Danger::DefaultChanged),
            // A new generation expression rewrites every value of the column.
            (ObjKind::Column, "generated") => ch.danger.push(Danger::TypeChange),
            (ObjKind::Constraint, "validated") if b == "true" => ch.danger.push(Danger::ValidatedConstraintAdded),
            (ObjKind::Table, "row_security" | "force_row_security") => ch.danger.push(Danger::Security),
            (ObjKind::Policy, _) => ch.danger.push(Danger::Security),
            (_, "privileges") => ch.danger.push(Danger::Security),
            (ObjKind::Function | ObjKind::Procedure, "security_definer") => ch.danger.push(Danger::Security),
            (ObjKind::Enum, "labels") if !b.starts_with(&a) => ch.danger.push(Danger::BreaksClients),
            _ => {}
        }
    }
}

/// Whether a type change can lose information: shorter varchar/char/bit, less
/// numeric precision or scale, a smaller integer or float, or to another family.
fn narrows(from: &str, to: &str) -> bool {
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
    use super::narrows;

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
}
