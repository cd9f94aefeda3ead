//! Failures explained with the rows that cause them. After a statement fails
//! on the data, a fresh connection opens a READ ONLY transaction on the branch
//! and asks for the rows behind the error: duplicate keys of a unique index
//! (with how many rows share each), the rows that are NULL for SET NOT NULL,
//! orphans of a foreign key, rows violating a CHECK, values a type change
//! cannot convert. What to look for comes from the error's fields (SQLSTATE,
//! schema, table, column, constraint, DETAIL) and, for objects the failure
//! left uncreated, from the failed statement's own text.

mod constraints;
mod convert;
mod statement;

use anyhow::{anyhow, Result};
use diff_core::ConnConfig;
use tokio_postgres::error::DbError;
use tokio_postgres::Client;

use super::report::{Explanation, StatementReport};
use super::split::{tokens, Tok};
use constraints::{check, foreign_key, not_null, unique};
use convert::conversion;

/// Rows shown per explanation.
const SAMPLE: i64 = 10;

pub(super) async fn explain(
    branch: &ConnConfig,
    sql: &str,
    err: &DbError,
    statement: Option<&StatementReport>,
) -> Option<Explanation> {
    let code = err.code().code();
    if code == "55P03" {
        return statement.and_then(lock_wait);
    }
    // 42804: no automatic cast; the rows that would fail the explicit one PostgreSQL's hint suggests.
    if !matches!(code, "23505" | "23502" | "23503" | "23514" | "42804") && !code.starts_with("22") {
        return None;
    }
    let (client, _conn) = branch.connect().await.ok()?;
    let opened = client
        .batch_execute(
            "SET application_name = 'pgbranchdiff explain'; SET statement_timeout = '60s';
             START TRANSACTION READ ONLY",
        )
        .await;
    if opened.is_err() {
        return None;
    }
    let found = match code {
        "23505" => unique(&client, sql, err).await,
        "23502" => not_null(&client, sql, err).await,
        "23503" => foreign_key(&client, sql, err).await,
        "23514" => check(&client, sql, err).await,
        _ => conversion(&client, sql).await,
    };
    let _ = client.batch_execute("ROLLBACK").await;
    match found {
        Ok(e) => e,
        Err(e) => Some(Explanation {
            summary: format!("The rows behind this failure could not be listed: {e}"),
            table: None,
            columns: Vec::new(),
            rows: Vec::new(),
            total: None,
        }),
    }
}

/// A quoted identifier.
fn qi(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The error's table, quoted for SQL and plain for people.
fn table_of(err: &DbError) -> Option<(String, String)> {
    let (schema, table) = (err.schema()?, err.table()?);
    Some((format!("{}.{}", qi(schema), qi(table)), format!("{schema}.{table}")))
}

fn db_err(e: tokio_postgres::Error) -> anyhow::Error {
    anyhow!("{}", e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
}

async fn rows_text(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let rows = client.query(sql, &[]).await.map_err(db_err)?;
    Ok(rows.iter().map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect()).collect())
}

async fn count(client: &Client, sql: &str) -> Result<u64> {
    let row = client.query_one(sql, &[]).await.map_err(db_err)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The row identity to show: the primary key's columns (quoted), else `ctid`.
async fn key_columns(client: &Client, table: &str) -> Result<Vec<String>> {
    let row = client
        .query_one(
            "SELECT coalesce(array_agg(quote_ident(a.attname) ORDER BY k.ord), '{}')
             FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
            &[&table],
        )
        .await
        .map_err(db_err)?;
    let cols: Vec<String> = row.get(0);
    Ok(if cols.is_empty() { vec!["ctid".into()] } else { cols })
}

/// Column headers from SQL expressions: plain names without their quotes.
fn header(expr: &str) -> String {
    let e = expr.trim();
    match e.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner.to_string(),
        _ => e.to_string(),
    }
}

fn text_list(exprs: &[String]) -> String {
    exprs.iter().map(|e| format!("({e})::text")).collect::<Vec<_>>().join(", ")
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn summary_only(table: &str, summary: String) -> Explanation {
    Explanation { summary, table: Some(table.to_string()), columns: Vec::new(), rows: Vec::new(), total: None }
}

/// The first rows matching `filter`, in key order. Columns are qualified:
/// ORDER BY a bare name would sort by the selected text instead.
fn sample_query(table: &str, cols: &[String], key: &[String], filter: &str) -> String {
    let exprs: Vec<String> = cols.iter().map(|c| format!("t.{c}")).collect();
    let order = key.iter().map(|k| format!("t.{k}")).collect::<Vec<_>>().join(", ");
    format!("SELECT {} FROM {table} t WHERE {filter} ORDER BY {order} LIMIT {SAMPLE}", text_list(&exprs))
}

fn some(total: u64, shown: usize) -> String {
    if total as usize > shown {
        format!("the first {shown}")
    } else {
        "they are".to_string()
    }
}

/// The table's columns an expression mentions, quoted, in table order.
async fn columns_in(client: &Client, table: &str, expr: &str) -> Result<Vec<String>> {
    let names: Vec<String> = tokens(expr)
        .into_iter()
        .filter_map(|(t, _)| match t {
            Tok::Word(w) => Some(w),
            Tok::Ident(i) => Some(i),
            _ => None,
        })
        .collect();
    let rows = client
        .query(
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0
             AND NOT attisdropped AND attname = ANY($2) ORDER BY attnum",
            &[&table, &names],
        )
        .await
        .map_err(db_err)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A table name as a statement wrote it: schema-qualified, quoted and plain.
async fn resolve(client: &Client, written: &str) -> Result<(String, String)> {
    let row = client
        .query_one(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = $1::text::regclass",
            &[&written],
        )
        .await
        .map_err(db_err)?;
    let (schema, name): (String, String) = (row.get(0), row.get(1));
    Ok((format!("{}.{}", qi(&schema), qi(&name)), format!("{schema}.{name}")))
}

/// Where to look for the rows: the error's table, or the partitioned table the
/// statement names when the error names one of its partitions (PostgreSQL
/// reports the first partition that fails; the others may fail too).
pub(super) struct Target {
    /// Quoted, for SQL.
    pub table: String,
    /// For people.
    pub shown: String,
    /// Rows then name their partition (`tableoid`), and `ctid` alone is no identity.
    pub partitioned: bool,
}

async fn target(client: &Client, sql: &str, err: &DbError) -> Result<Option<Target>> {
    let Some((table, shown)) = table_of(err) else { return Ok(None) };
    if let Some(written) = statement::statement_table(sql) {
        if let Ok((root, root_shown)) = resolve(client, &written).await {
            let row = client
                .query_one(
                    "SELECT c.relkind = 'p' AND c.oid IN (SELECT relid FROM pg_partition_ancestors($2::text::regclass))
                     FROM pg_class c WHERE c.oid = $1::text::regclass",
                    &[&root, &table],
                )
                .await
                .map_err(db_err)?;
            if row.get::<_, bool>(0) {
                return Ok(Some(Target { table: root, shown: root_shown, partitioned: true }));
            }
        }
    }
    let partitioned = client
        .query_one("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::text::regclass", &[&table])
        .await
        .map_err(db_err)?
        .get(0);
    Ok(Some(Target { table, shown, partitioned }))
}

/// The row identity of a target: its key, else `tableoid` and `ctid` together
/// (a `ctid` repeats across partitions).
async fn key_of(client: &Client, t: &Target) -> Result<Vec<String>> {
    let key = key_columns(client, &t.table).await?;
    Ok(if t.partitioned && key == ["ctid"] { vec!["tableoid".into(), "ctid".into()] } else { key })
}

/// Columns and headers of a sample of rows: the partition first when the table is partitioned.
fn with_partition(t: &Target, cols: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut exprs = Vec::new();
    let mut headers = Vec::new();
    if t.partitioned {
        exprs.push("tableoid::regclass".to_string());
        headers.push("partition".to_string());
    }
    for c in cols.into_iter().filter(|c| !(t.partitioned && c == "tableoid")) {
        headers.push(header(&c));
        exprs.push(c);
    }
    (exprs, headers)
}

/// A lock timeout: what the statement waited for and who held it.
fn lock_wait(s: &StatementReport) -> Option<Explanation> {
    let w = s.waits.iter().max_by_key(|w| w.millis)?;
    let on = w.relation.clone().unwrap_or_else(|| w.locktype.clone());
    Some(Explanation {
        summary: format!("{} waited {} ms for {} on {on}, held by:", s.location, w.millis, w.mode),
        table: w.relation.clone(),
        columns: ["pid", "application", "user", "state", "query"].map(String::from).to_vec(),
        rows: w
            .blocked_by
            .iter()
            .map(|b| {
                vec![
                    Some(b.pid.to_string()),
                    Some(b.application.clone()),
                    Some(b.user.clone()),
                    Some(b.state.clone()),
                    Some(b.query.clone()),
                ]
            })
            .collect(),
        total: Some(w.blocked_by.len() as u64),
    })
}
