//! What dropped objects held, counted in the parent's snapshot: the rows (and
//! bytes) of a dropped table, materialized view or schema, the non-NULL values
//! of a dropped column, a dropped sequence's last value. Only root changes are
//! counted (a table dropped with its schema is part of the schema's entry), and
//! only what held something.

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
}

/// The losses the dropped root changes imply.
pub(crate) fn probes(changes: &[SchemaChange], parent: &Catalog) -> Vec<Probe> {
    let mut out = vec![];
    for ch in changes.iter().filter(|c| c.op == ChangeOp::Dropped && c.cause.is_none()) {
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
                });
            }
            ("materialized_view", Some((s, t))) => out.push(Probe {
                loss: loss(LossKind::DroppedMaterializedView, s, Some(t), None),
                queries: vec![format!("SELECT count(*) FROM {}.{}", quote_ident(s), quote_ident(t))],
                matview: Some(format!("{}.{}", quote_ident(s), quote_ident(t))),
            }),
            ("column", Some((s, t))) => {
                let Some(col) = ch.object.strip_prefix(&format!("{s}.{t}.")) else { continue };
                out.push(Probe {
                    loss: loss(LossKind::DroppedColumn, s, Some(t), Some(col)),
                    queries: vec![format!("SELECT count({}) FROM {}", quote_ident(col), from(s, t))],
                    matview: None,
                });
            }
            ("schema", _) => {
                let tables: Vec<_> = parent.tables.iter().filter(|t| t.schema == ch.object && !t.partition).collect();
                let mut l = loss(LossKind::DroppedSchema, &ch.object, None, None);
                l.bytes = Some(tables.iter().map(|t| t.bytes.max(0) as u64).sum());
                let queries =
                    tables.iter().map(|t| format!("SELECT count(*) FROM {}", from(&t.schema, &t.name))).collect();
                out.push(Probe { loss: l, queries, matview: None });
            }
            // A sequence never called handed out nothing.
            ("sequence", _) if ch.before.get("is_called").is_some_and(|v| v == "false") => {}
            ("sequence", _) => {
                let Some(last) = ch.before.get("last_value").and_then(|v| v.parse::<i64>().ok()) else { continue };
                let (s, name) = ch.object.split_once('.').unwrap_or(("", &ch.object));
                let mut l = loss(LossKind::DroppedSequence, s, Some(name), None);
                l.count = last.max(0) as u64;
                out.push(Probe { loss: l, queries: vec![], matview: None });
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
