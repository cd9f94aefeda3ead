//! What dropped objects held, counted in the parent's snapshot: the rows (and
//! bytes) of a dropped table, materialized view or schema, the non-NULL values
//! of a dropped column, a dropped sequence's last value. Only root changes are
//! counted (a table dropped with its schema is part of the schema's entry), and
//! only what held something.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::loss::LossKind;
use crate::plan::quote_ident;
use crate::report::DataLoss;
use crate::schema::{ChangeOp, SchemaChange};
use crate::snapshot::Side;

/// A loss to count, and the queries that count it (summed).
pub(crate) struct Probe {
    loss: DataLoss,
    /// `SELECT count(…) FROM …` queries; a materialized view's only if it is populated.
    queries: Vec<String>,
    /// For a materialized view: `schema.name`, checked for `relispopulated` first.
    matview: Option<String>,
    /// For an attribute dropped from a composite type: which columns hold it is found when counting.
    attribute: Option<AttributeProbe>,
}

/// An attribute dropped from a composite type, and every table column of the parent
/// (`FROM` clause, column, declared type) that may hold the type.
pub(crate) struct AttributeProbe {
    schema: String,
    name: String,
    attr: String,
    columns: Vec<(String, String, u32)>,
}

/// The losses the dropped root changes imply.
pub(crate) fn probes(changes: &[SchemaChange], parent: &Catalog) -> Vec<Probe> {
    let mut out = vec![];
    let root = |c: &&SchemaChange| c.cause.is_none();
    let dropped_or_type =
        |c: &&SchemaChange| c.op == ChangeOp::Dropped || matches!(c.kind.as_str(), "composite_type" | "large_object");
    for ch in changes.iter().filter(root).filter(dropped_or_type) {
        let loss = |kind, schema: &str, table: Option<&str>, column: Option<&str>| DataLoss {
            kind,
            schema: schema.to_string(),
            table: table.map(str::to_string),
            column: column.map(str::to_string),
            count: 0,
            bytes: None,
            examples: vec![],
            accepted: false,
        };
        let from = |s: &str, t: &str| {
            let only = parent.table(s, t).is_some_and(|x| x.kind == 'p');
            format!("{}{}.{}", if only { "" } else { "ONLY " }, quote_ident(s), quote_ident(t))
        };
        match (ch.kind.as_str(), &ch.table) {
            // A partition's rows are its root's: counted with a dropped root, or as the root's
            // deleted rows when only the partition went.
            ("table", Some((s, t))) if parent.table(s, t).is_some_and(|x| x.partition) => {}
            ("table", Some((s, t))) => {
                let mut l = loss(LossKind::DroppedTable, s, Some(t), None);
                l.bytes = parent.table(s, t).map(|x| x.bytes.max(0) as u64);
                out.push(Probe {
                    loss: l,
                    queries: vec![format!("SELECT count(*) FROM {}", from(s, t))],
                    matview: None,
                    attribute: None,
                });
            }
            ("materialized_view", Some((s, t))) => out.push(Probe {
                loss: loss(LossKind::DroppedMaterializedView, s, Some(t), None),
                queries: vec![format!("SELECT count(*) FROM {}.{}", quote_ident(s), quote_ident(t))],
                matview: Some(format!("{}.{}", quote_ident(s), quote_ident(t))),
                attribute: None,
            }),
            ("column", Some((s, t))) => {
                let Some(col) = ch.object.strip_prefix(&format!("{s}.{t}.")) else { continue };
                out.push(Probe {
                    loss: loss(LossKind::DroppedColumn, s, Some(t), Some(col)),
                    queries: vec![format!("SELECT count({}) FROM {}", quote_ident(col), from(s, t))],
                    matview: None,
                    attribute: None,
                });
            }
            ("schema", _) => {
                let tables: Vec<_> = parent.tables.iter().filter(|t| t.schema == ch.object && !t.partition).collect();
                let mut l = loss(LossKind::DroppedSchema, &ch.object, None, None);
                l.bytes = Some(tables.iter().map(|t| t.bytes.max(0) as u64).sum());
                let queries =
                    tables.iter().map(|t| format!("SELECT count(*) FROM {}", from(&t.schema, &t.name))).collect();
                out.push(Probe { loss: l, queries, matview: None, attribute: None });
            }
            // An attribute dropped from a composite type: its values in every column holding the type.
            ("composite_type", _) => {
                let (before, after) = (ch.before.get("attributes"), ch.after.get("attributes"));
                let (s, name) = ch.object.split_once('.').unwrap_or(("", &ch.object));
                let columns: Vec<(String, String, u32)> = parent
                    .tables
                    .iter()
                    .filter(|t| !t.partition)
                    .flat_map(|t| t.columns.iter().map(move |c| (from(&t.schema, &t.name), c.name.clone(), c.type_oid)))
                    .collect();
                for attr in crate::schema::dropped_attributes(before.map_or("", |v| v), after.map_or("", |v| v)) {
                    out.push(Probe {
                        loss: loss(LossKind::DroppedAttribute, s, Some(name), Some(&attr)),
                        queries: vec![],
                        matview: None,
                        attribute: Some(AttributeProbe {
                            schema: s.to_string(),
                            name: name.to_string(),
                            attr,
                            columns: columns.clone(),
                        }),
                    });
                }
            }
            // A large object removed or overwritten: one object, its (old) bytes.
            ("large_object", _) if ch.op == ChangeOp::Dropped || ch.before.contains_key("content") => {
                let kind = if ch.op == ChangeOp::Dropped {
                    LossKind::DroppedLargeObject
                } else {
                    LossKind::OverwrittenLargeObject
                };
                if ch.op == ChangeOp::Altered && !ch.after.contains_key("content") {
                    continue;
                }
                let mut l = loss(kind, "pg_largeobject", Some(&ch.object), None);
                l.count = 1;
                // "N bytes, sha256 …"
                l.bytes = ch.before.get("content").and_then(|v| v.split(' ').next()?.parse().ok());
                out.push(Probe { loss: l, queries: vec![], matview: None, attribute: None });
            }
            // A sequence never called handed out nothing.
            ("sequence", _) if ch.before.get("is_called").is_some_and(|v| v == "false") => {}
            ("sequence", _) => {
                let Some(last) = ch.before.get("last_value").and_then(|v| v.parse::<i64>().ok()) else { continue };
                let (s, name) = ch.object.split_once('.').unwrap_or(("", &ch.object));
                let mut l = loss(LossKind::DroppedSequence, s, Some(name), None);
                l.count = last.max(0) as u64;
                out.push(Probe { loss: l, queries: vec![], matview: None, attribute: None });
            }
            _ => {}
        }
    }
    out
}

/// Runs the counts on the parent's first connection, in its snapshot.
pub(crate) async fn count(p: &Side, probes: Vec<Probe>) -> Result<Vec<DataLoss>> {
    let client = p.client(0);
    let mut out = Vec::with_capacity(probes.len());
    for mut probe in probes {
        let context = format!("counting what dropped {} held", probe.loss.object());
        let err = |e: tokio_postgres::Error| p.query_error(&context, &e);
        if let Some(mv) = &probe.matview {
            let sql = format!(
                "SELECT relispopulated FROM pg_class WHERE oid = {}::regclass",
                postgres_protocol::escape::escape_literal(mv)
            );
            if !client.query_one(&sql, &[]).await.map_err(err)?.get::<_, bool>(0) {
                probe.queries.clear();
            }
        }
        if let Some(attribute) = &probe.attribute {
            probe.queries = attribute_counts(p, attribute).await?;
        }
        for q in &probe.queries {
            probe.loss.count += client.query_one(q, &[]).await.map_err(err)?.get::<_, i64>(0).max(0) as u64;
        }
        // An empty table or column dropped lost nothing (the schema change still says drops_data).
        if probe.loss.count > 0 {
            out.push(probe.loss);
        }
    }
    Ok(out)
}

/// One user type of the parent, as far as finding a composite inside it goes.
struct TypeNode {
    /// `c` composite, `d` domain, else other.
    typtype: String,
    /// Element type of an array type, 0 otherwise.
    elem: u32,
    /// Base type of a domain, 0 otherwise.
    base: u32,
    /// A composite's live attributes: (name, type).
    attrs: Vec<(String, u32)>,
}

/// Queries counting the non-NULL values of attribute `attr` of type
/// `schema.name` in every table column that holds the type: directly, in an
/// array, through a domain or inside another composite, at any depth.
async fn attribute_counts(p: &Side, a: &AttributeProbe) -> Result<Vec<String>> {
    let (schema, name, attr) = (&a.schema, &a.name, &a.attr);
    let context = format!("counting the values of {schema}.{name}.{attr}");
    let err = |e: tokio_postgres::Error| p.query_error(&context, &e);
    let sql =
        "SELECT t.oid, t.typtype::text, CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0::oid END, t.typbasetype,
                      coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '{}'),
                      coalesce((SELECT array_agg(a.atttypid ORDER BY a.attnum) FROM pg_attribute a
                                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '{}'),
                      n.nspname::text = $1 AND t.typname::text = $2
               FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid >= 16384";
    let rows = p.client(0).query(sql, &[&schema, &name]).await.map_err(err)?;
    let mut types = std::collections::HashMap::new();
    let mut target = None;
    for r in &rows {
        let (names, oids): (Vec<String>, Vec<u32>) = (r.get(4), r.get(5));
        types.insert(
            r.get::<_, u32>(0),
            TypeNode {
                typtype: r.get(1),
                elem: r.get(2),
                base: r.get(3),
                attrs: names.into_iter().zip(oids).collect(),
            },
        );
        if r.get::<_, bool>(6) {
            target = Some(r.get::<_, u32>(0));
        }
    }
    let Some(target) = target else { return Ok(vec![]) };
    let mut by_table: Vec<(&str, Vec<String>)> = vec![];
    for (from, col, ty) in &a.columns {
        let Some(e) = count_expr(&types, target, attr, *ty, &format!("pgbd_t.{}", quote_ident(col)), 0) else {
            continue;
        };
        match by_table.last_mut() {
            Some((f, exprs)) if f == from => exprs.push(e),
            _ => by_table.push((from, vec![e])),
        }
    }
    Ok(by_table
        .into_iter()
        .map(|(from, exprs)| format!("SELECT coalesce(sum({}), 0)::bigint FROM {from} pgbd_t", exprs.join(" + ")))
        .collect())
}

/// A per-row count of the non-NULL values of `attr` of type `target` inside
/// `v` (of type `ty`), or `None` when the type cannot hold it.
fn count_expr(
    types: &std::collections::HashMap<u32, TypeNode>,
    target: u32,
    attr: &str,
    ty: u32,
    v: &str,
    depth: usize,
) -> Option<String> {
    if ty == target {
        return Some(format!("num_nonnulls(({v}).{})", quote_ident(attr)));
    }
    // Types nest finitely, but a bound keeps a malformed catalog from recursing forever.
    let node = types.get(&ty).filter(|_| depth < 16)?;
    if node.elem != 0 {
        let i = format!("pgbd_i{depth}");
        let inner = count_expr(types, target, attr, node.elem, &format!("({v})[{i}]"), depth + 1)?;
        return Some(format!("coalesce((SELECT sum({inner}) FROM generate_subscripts({v}, 1) {i}), 0)"));
    }
    if node.typtype == "d" {
        return count_expr(types, target, attr, node.base, v, depth + 1);
    }
    if node.typtype != "c" {
        return None;
    }
    let parts: Vec<String> = node
        .attrs
        .iter()
        .filter_map(|(a, t)| count_expr(types, target, attr, *t, &format!("({v}).{}", quote_ident(a)), depth + 1))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" + "))
}

/// Partitions detached on the branch: rows that left their partitioned table
/// but are still held by the detached table are not lost. Counts each detached
/// partition's rows in the parent's snapshot, says where they went in the
/// change's note, and returns the rows moved out per root (`schema.table`, the
/// parent's name), to take from the root's deleted rows.
pub(crate) async fn detached(p: &Side, changes: &mut [SchemaChange]) -> Result<HashMap<String, u64>> {
    let mut moved: HashMap<String, u64> = HashMap::new();
    for ch in changes.iter_mut().filter(|c| c.kind == "table" && c.op == ChangeOp::Altered) {
        let (Some(_), None) = (ch.before.get("partition_of"), ch.after.get("partition_of")) else { continue };
        let Some((s, t)) = ch.table.clone() else { continue };
        let part = format!("{}.{}", quote_ident(&s), quote_ident(&t));
        let sql = format!(
            "SELECT (SELECT count(*) FROM {part}), n.nspname::text, r.relname::text
             FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
             WHERE r.oid = pg_partition_root({}::regclass)",
            postgres_protocol::escape::escape_literal(&part)
        );
        let context = format!("counting the rows of detached partition {s}.{t}");
        let row = p.client(0).query_one(&sql, &[]).await.map_err(|e| p.query_error(&context, &e))?;
        let (rows, root) =
            (row.get::<_, i64>(0).max(0) as u64, format!("{}.{}", row.get::<_, String>(1), row.get::<_, String>(2)));
        ch.note = Some(format!(
            "detached from {root}: its {rows} rows left {root} and are kept in {s}.{t} (not lost; the rows of {root} \
             show them as deleted)"
        ));
        *moved.entry(root).or_default() += rows;
    }
    Ok(moved)
}
