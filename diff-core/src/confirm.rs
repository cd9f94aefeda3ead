//! Renames inferred without lineage (databases that share no OIDs: a restore,
//! another cluster) are only guesses from the catalog: a dropped column and an
//! added one of the same type at the same position look exactly like a rename.
//! The data decides. In each side's snapshot, read-only, a fingerprint (row
//! count and the sum of 64-bit hashes) is taken of what must be the same if the
//! guess is right: for a column, its values by key; for a table, its key
//! values (its whole rows when it has no key). A rename is kept only when the
//! fingerprints agree; otherwise it is reported as the drop and the add it may
//! well be, with the drop's danger.

use crate::catalog::{Catalog, Table};
use crate::error::Result;
use crate::plan::{quote_ident, ALIAS};
use crate::schema::Inferred;
use crate::snapshot::Side;

/// Whether the data agrees with each guess, in order.
pub async fn check(p: &Side, c: &Side, pcat: &Catalog, ccat: &Catalog, guesses: &[Inferred]) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(guesses.len());
    for g in guesses {
        let (Some(pt), Some(ct)) = (find(pcat, &g.parent_table), find(ccat, &g.child_table)) else {
            out.push(false);
            continue;
        };
        let key = pt.primary_key().map(|k| k.columns.clone()).unwrap_or_default();
        // The child's names for the parent's key columns: the same (a renamed key column would not
        // be part of a table rename inferred from equal columns, and a column guess keeps the key).
        let (pq, cq) = match &g.column {
            Some((pcol, ccol)) => (fingerprint_sql(pt, &key, Some(pcol)), fingerprint_sql(ct, &key, Some(ccol))),
            None => (fingerprint_sql(pt, &key, None), fingerprint_sql(ct, &key, None)),
        };
        let (Some(pq), Some(cq)) = (pq, cq) else {
            out.push(false);
            continue;
        };
        let context = format!("checking an inferred rename of {}", g.parent_table);
        let (a, b) = tokio::try_join!(
            async { p.client(0).query_one(&pq, &[]).await.map_err(|e| p.query_error(&context, &e)) },
            async { c.client(0).query_one(&cq, &[]).await.map_err(|e| c.query_error(&context, &e)) },
        )?;
        let fp = |r: &tokio_postgres::Row| (r.get::<_, i64>(0), r.get::<_, String>(1));
        out.push(fp(&a) == fp(&b));
    }
    Ok(out)
}

fn find<'a>(cat: &'a Catalog, qualified: &str) -> Option<&'a Table> {
    cat.tables.iter().find(|t| t.qualified() == qualified)
}

/// `count(*)` and the sum of the hashes of what must agree, or `None` when a
/// named column is missing.
fn fingerprint_sql(t: &Table, key: &[String], column: Option<&String>) -> Option<String> {
    let col = |n: &String| t.column(n).map(|_| format!("{ALIAS}.{}", quote_ident(n)));
    let mut parts: Vec<String> = key.iter().map(col).collect::<Option<_>>()?;
    match column {
        Some(c) => parts.push(col(c)?),
        None if key.is_empty() => parts = t.columns.iter().map(|c| col(&c.name)).collect::<Option<_>>()?,
        None => {}
    }
    // ROW(…)::text tells NULL from '' and quotes separators, so different rows print differently.
    parts.push("NULL".into());
    let expr = format!("ROW({})::text", parts.join(", "));
    let only = if t.kind == 'p' { "" } else { "ONLY " };
    Some(format!(
        "SELECT count(*), coalesce(sum(hashtextextended({expr}, 0)::numeric), 0)::text FROM {only}{}.{} AS {ALIAS}",
        quote_ident(&t.schema),
        quote_ident(&t.name)
    ))
}
