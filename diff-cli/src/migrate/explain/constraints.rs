//! Constraints that fail on existing rows: unique keys (duplicates with their
//! counts), NOT NULL (the NULL rows), foreign keys (orphans), CHECK (violating rows).

use super::statement::{detail_key, index_predicate, statement_check, statement_foreign_key, ForeignKey};
use super::*;
use super::{key_of, target, with_partition, Target};

pub(super) async fn unique(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
    let Some(key) = err.detail().and_then(detail_key) else { return Ok(None) };
    // A type change whose new values collide: the old index is still valid, the conversion is to blame.
    if let Some(e) = super::convert::collisions(client, sql, &key).await? {
        return Ok(Some(e));
    }
    // A unique key of a partitioned table includes its partition key: duplicates are counted across all partitions.
    let Some(t) = target(client, sql, err).await? else { return Ok(None) };
    let (table, shown) = (t.table.clone(), t.shown.clone());
    // An index that exists and is valid was violated by the migration's own rows.
    let exists = match (err.schema(), err.constraint()) {
        (Some(s), Some(c)) => client
            .query_one(
                "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false)",
                &[&format!("{}.{}", qi(s), qi(c))],
            )
            .await
            .map_err(db_err)?
            .get::<_, bool>(0),
        _ => false,
    };
    let cols = key.join(", ");
    if exists {
        return Ok(Some(summary_only(
            &shown,
            format!("The migration's own rows collide with ({cols}) values already in {shown}."),
        )));
    }
    let mut filter: Vec<String> = key.iter().map(|k| format!("({k}) IS NOT NULL")).collect();
    if let Some(pred) = index_predicate(sql) {
        filter.push(format!("({pred})"));
    }
    let names: Vec<String> = (1..=key.len()).map(|i| format!("k{i}")).collect();
    let inner: Vec<String> = key.iter().zip(&names).map(|(k, n)| format!("({k})::text AS {n}")).collect();
    let groups = (1..=key.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    // On a partitioned table each value's rows can lie in several partitions: name them.
    let parts = if t.partitioned {
        ", string_agg(DISTINCT tableoid::regclass::text, ', ' ORDER BY tableoid::regclass::text) AS parts"
    } else {
        ""
    };
    let dup = format!(
        "SELECT {}, count(*) AS n{parts} FROM {table} WHERE {} GROUP BY {groups} HAVING count(*) > 1",
        inner.join(", "),
        filter.join(" AND ")
    );
    let names = names.join(", ");
    let parts_col = if t.partitioned { ", d.parts" } else { "" };
    // By count, most repeated first (d.n: the number, not the text the select list makes of it).
    let rows = rows_text(
        client,
        &format!("SELECT {names}, d.n::text{parts_col} FROM ({dup}) d ORDER BY d.n DESC, {names} LIMIT {SAMPLE}"),
    )
    .await?;
    let totals = client
        .query_one(&format!("SELECT count(*), coalesce(sum(n), 0)::int8 FROM ({dup}) d"), &[])
        .await
        .map_err(db_err)?;
    let (values, in_rows): (i64, i64) = (totals.get(0), totals.get(1));
    if values == 0 {
        return Ok(Some(summary_only(
            &shown,
            format!("No committed rows of {shown} share a ({cols}) value: the duplicates come from the migration's own earlier statements in the same transaction."),
        )));
    }
    let mut columns: Vec<String> = key.iter().map(|k| header(k)).collect();
    columns.push("rows".into());
    if t.partitioned {
        columns.push("partitions".into());
    }
    Ok(Some(Explanation {
        summary: format!(
            "{values} value{} of ({cols}) occur{} more than once in {shown}, in {in_rows} rows:",
            plural(values),
            if values == 1 { "s" } else { "" }
        ),
        table: Some(shown),
        columns,
        rows,
        total: Some(values as u64),
    }))
}

pub(super) async fn not_null(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
    let Some(column) = err.column() else { return Ok(None) };
    let Some(t) = target(client, sql, err).await? else { return Ok(None) };
    let (table, shown) = (t.table.clone(), t.shown.clone());
    let key = key_of(client, &t).await?;
    let exists = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::text::regclass AND attname = $2
                            AND attnum > 0 AND NOT attisdropped)",
            &[&table, &column],
        )
        .await
        .map_err(db_err)?
        .get::<_, bool>(0);
    let (filter, what) = if exists {
        (format!("{} IS NULL", qi(column)), format!("have NULL in {column}"))
    } else {
        ("true".to_string(), format!("would have NULL in the new column {column} (it has no default)"))
    };
    let (n, parts) = count_in_partitions(client, &table, &filter).await?;
    if n == 0 {
        return Ok(Some(summary_only(
            &shown,
            format!(
                "No committed row of {shown} {}: the NULL comes from the migration's own statements.",
                what.replacen("have NULL", "has NULL", 1)
            ),
        )));
    }
    let (exprs, columns) = with_partition(&t, key.clone());
    let rows = rows_text(client, &sample_query(&table, &exprs, &key, &filter)).await?;
    Ok(Some(Explanation {
        summary: format!(
            "{n} row{} of {shown}{} {what}; {}:",
            plural(n as i64),
            in_partitions(&t, parts),
            some(n, rows.len())
        ),
        table: Some(shown),
        columns,
        rows,
        total: Some(n),
    }))
}

pub(super) async fn foreign_key(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
    let Some((table, shown)) = table_of(err) else { return Ok(None) };
    let constraint = err.constraint().unwrap_or("");
    let in_catalog = catalog_foreign_key(client, &table, constraint).await?;
    let validated = in_catalog.as_ref().is_some_and(|(_, v)| *v);
    let fk = match in_catalog {
        Some((fk, _)) => fk,
        None => match statement_foreign_key(sql, constraint) {
            Some(mut fk) => {
                if fk.parent_columns.is_empty() {
                    fk.parent_columns = key_columns(client, &fk.parent).await?;
                }
                fk
            }
            None => return Ok(None),
        },
    };
    let join = fk
        .columns
        .iter()
        .zip(&fk.parent_columns)
        .map(|(c, p)| format!("p.{p} = c.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let not_null = fk.columns.iter().map(|c| format!("c.{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND ");
    let (parent, parent_shown) = resolve(client, &fk.parent).await?;
    let from = format!("FROM {table} c WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {join})");
    let n = count(client, &format!("SELECT count(*) {from}")).await?;
    if n == 0 {
        let why = if validated {
            "the migration's own rows reference missing keys"
        } else {
            "the orphans come from the migration's own statements"
        };
        return Ok(Some(summary_only(
            &shown,
            format!("No committed row of {shown} is an orphan of {parent_shown}: {why}."),
        )));
    }
    let key = key_columns(client, &table).await?;
    let mut shown_cols: Vec<String> = key.clone();
    // `store_id` and `"store_id"` are one column.
    let names: Vec<String> = key.iter().map(|k| header(k)).collect();
    shown_cols.extend(fk.columns.iter().filter(|c| !names.contains(&header(c))).cloned());
    let exprs: Vec<String> = shown_cols.iter().map(|c| format!("c.{c}")).collect();
    let order = key.iter().map(|k| format!("c.{k}")).collect::<Vec<_>>().join(", ");
    let rows =
        rows_text(client, &format!("SELECT {} {from} ORDER BY {order} LIMIT {SAMPLE}", text_list(&exprs))).await?;
    let cols = fk.columns.iter().map(|c| header(c)).collect::<Vec<_>>().join(", ");
    Ok(Some(Explanation {
        summary: format!(
            "{n} row{} of {shown} reference ({cols}) values missing from {parent_shown}; {}:",
            plural(n as i64),
            some(n, rows.len())
        ),
        table: Some(shown),
        columns: shown_cols.iter().map(|c| header(c)).collect(),
        rows,
        total: Some(n),
    }))
}

async fn catalog_foreign_key(client: &Client, table: &str, name: &str) -> Result<Option<(ForeignKey, bool)>> {
    let rows = client
        .query(
            "SELECT (SELECT array_agg(quote_ident(a.attname) ORDER BY k.o) FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
                    c.confrelid::regclass::text,
                    (SELECT array_agg(quote_ident(a.attname) ORDER BY k.o) FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n),
                    c.convalidated
             FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.conname = $2 AND c.contype = 'f'",
            &[&table, &name],
        )
        .await
        .map_err(db_err)?;
    Ok(rows.first().map(|r| (ForeignKey { columns: r.get(0), parent: r.get(1), parent_columns: r.get(2) }, r.get(3))))
}

pub(super) async fn check(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
    let Some((failed_on, _)) = table_of(err) else { return Ok(None) };
    let Some(t) = target(client, sql, err).await? else { return Ok(None) };
    let constraint = err.constraint().unwrap_or("");
    let def: Option<String> = client
        .query_opt(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = $1::text::regclass AND conname = $2 AND contype = 'c'",
            &[&failed_on, &constraint],
        )
        .await
        .map_err(db_err)?
        .map(|r| r.get(0));
    let expr = match def {
        Some(d) => d.trim_start_matches("CHECK ").trim_end_matches(" NOT VALID").to_string(),
        None => match statement_check(sql, constraint) {
            Some(e) => e,
            None => return Ok(None),
        },
    };
    let (table, shown) = (&t.table, &t.shown);
    let filter = format!("NOT ({expr})");
    let (n, parts) = count_in_partitions(client, table, &filter).await?;
    if n == 0 {
        return Ok(Some(summary_only(
            shown,
            format!("No committed row of {shown} violates CHECK {expr}: the violating rows come from the migration's own statements."),
        )));
    }
    let key = key_of(client, &t).await?;
    let mut cols = key.clone();
    cols.extend(columns_in(client, table, &expr).await?.into_iter().filter(|c| !key.contains(c)));
    let (exprs, columns) = with_partition(&t, cols);
    let rows = rows_text(client, &sample_query(table, &exprs, &key, &filter)).await?;
    Ok(Some(Explanation {
        summary: format!(
            "{n} row{} of {shown}{} violate CHECK {expr}; {}:",
            plural(n as i64),
            in_partitions(&t, parts),
            some(n, rows.len())
        ),
        table: Some(shown.clone()),
        columns,
        rows,
        total: Some(n),
    }))
}

/// How many rows match `filter`, and in how many partitions (tables).
async fn count_in_partitions(client: &Client, table: &str, filter: &str) -> Result<(u64, u64)> {
    let row = client
        .query_one(&format!("SELECT count(*), count(DISTINCT tableoid) FROM {table} WHERE {filter}"), &[])
        .await
        .map_err(db_err)?;
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}

/// ` (in 7 partitions)` for a partitioned table.
fn in_partitions(t: &Target, parts: u64) -> String {
    if t.partitioned {
        format!(" (in {parts} partition{})", plural(parts as i64))
    } else {
        String::new()
    }
}
