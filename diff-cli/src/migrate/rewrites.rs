//! Table rewrites: a table whose `pg_class.relfilenode` changed got new
//! storage (ALTER … TYPE, VACUUM FULL, CLUSTER, TRUNCATE, a volatile default).

use std::collections::BTreeMap;

use anyhow::Result;
use tokio_postgres::Client;

use super::report::Rewrite;

/// oid → (`schema.name`, relfilenode) of every user table and materialized view.
pub(super) type Files = BTreeMap<u32, (String, u32)>;

pub(super) async fn snapshot(client: &Client) -> Result<Files> {
    let rows = client
        .query(
            "SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relfilenode
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%'",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, u32>(0), (r.get(1), r.get::<_, u32>(2)))).collect())
}

/// Tables present before and after whose storage changed.
pub(super) fn compare(before: &Files, after: &Files) -> Vec<Rewrite> {
    let mut out: Vec<Rewrite> = after
        .iter()
        .filter_map(|(oid, (name, file))| {
            let (_, old) = before.get(oid)?;
            (old != file).then(|| Rewrite { table: name.clone(), relfilenode_before: *old, relfilenode_after: *file })
        })
        .collect();
    out.sort_by(|a, b| a.table.cmp(&b.table));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_files_of_surviving_tables() {
        let before: Files =
            [(1, ("public.a".into(), 10)), (2, ("public.b".into(), 20)), (3, ("public.c".into(), 30))].into();
        let after: Files =
            [(1, ("public.a".into(), 11)), (2, ("public.b2".into(), 20)), (4, ("public.d".into(), 40))].into();
        assert_eq!(
            compare(&before, &after),
            vec![Rewrite { table: "public.a".into(), relfilenode_before: 10, relfilenode_after: 11 }]
        );
    }
}
