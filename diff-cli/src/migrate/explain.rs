//! Failures explained with the rows that cause them. After a statement fails
//! on the data, a fresh connection opens a READ ONLY transaction on the branch
//! and asks for the rows behind the error: duplicate keys of a unique index
//! (with how many rows share each), the rows that are NULL for SET NOT NULL,
//! orphans of a foreign key, rows violating a CHECK, values a type change
//! cannot convert. What to look for comes from the error's fields (SQLSTATE,
//! schema, table, column, constraint, DETAIL) and, for objects the failure
//! left uncreated, from the failed statement's own text.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use diff_core::ConnConfig;
use tokio_postgres::error::DbError;
use tokio_postgres::Client;

use super::report::{Explanation, StatementReport};
use super::split::{tokens, Tok};

/// Rows shown per explanation.
const SAMPLE: i64 = 10;

/// Time the search for unconvertible values may take.
const CONVERT_BUDGET: Duration = Duration::from_secs(15);

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
        "23502" => not_null(&client, err).await,
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

/// `Key (a, lower(b))=(…)` of a DETAIL: the key's expressions.
fn detail_key(detail: &str) -> Option<Vec<String>> {
    let start = detail.find("Key (")? + 5;
    let end = start + detail[start..].find(")=(")?;
    Some(split_top(&detail[start..end]))
}

/// Splits an expression list at its top-level commas.
fn split_top(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0usize, 0usize);
    for (t, r) in tokens(list) {
        match t {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Punct(b',') if depth == 0 => {
                out.push(list[from..r.start].trim().to_string());
                from = r.end;
            }
            _ => {}
        }
    }
    out.push(list[from..].trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

async fn unique(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
    let Some((table, shown)) = table_of(err) else { return Ok(None) };
    let Some(key) = err.detail().and_then(detail_key) else { return Ok(None) };
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
    let dup = format!(
        "SELECT {}, count(*) AS n FROM {table} WHERE {} GROUP BY {groups} HAVING count(*) > 1",
        inner.join(", "),
        filter.join(" AND ")
    );
    let names = names.join(", ");
    let rows =
        rows_text(client, &format!("SELECT {names}, n::text FROM ({dup}) d ORDER BY n DESC, {names} LIMIT {SAMPLE}"))
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

/// The WHERE of a `CREATE UNIQUE INDEX … WHERE …`.
fn index_predicate(sql: &str) -> Option<String> {
    let toks = tokens(sql);
    let words: Vec<&str> =
        toks.iter().filter_map(|(t, _)| if let Tok::Word(w) = t { Some(w.as_str()) } else { None }).collect();
    if words.first() != Some(&"create") || !words.contains(&"index") {
        return None;
    }
    let mut depth = 0usize;
    for (t, r) in &toks {
        match t {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Word(w) if w == "where" && depth == 0 => return Some(sql[r.end..].trim().to_string()),
            _ => {}
        }
    }
    None
}

async fn not_null(client: &Client, err: &DbError) -> Result<Option<Explanation>> {
    let (Some((table, shown)), Some(column)) = (table_of(err), err.column()) else { return Ok(None) };
    let key = key_columns(client, &table).await?;
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
    let n = count(client, &format!("SELECT count(*) FROM {table} WHERE {filter}")).await?;
    if n == 0 {
        return Ok(Some(summary_only(
            &shown,
            format!("No committed row of {shown} {what}: the NULL comes from the migration's own statements."),
        )));
    }
    let rows = rows_text(client, &sample_query(&table, &key, &key, &filter)).await?;
    Ok(Some(Explanation {
        summary: format!("{n} row{} of {shown} {what}; {}:", plural(n as i64), some(n, rows.len())),
        table: Some(shown),
        columns: key.iter().map(|k| header(k)).collect(),
        rows,
        total: Some(n),
    }))
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

/// A foreign key: referencing columns, referenced table and its columns (all quoted).
struct ForeignKey {
    columns: Vec<String>,
    parent: String,
    parent_columns: Vec<String>,
}

async fn foreign_key(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
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
    shown_cols.extend(fk.columns.iter().filter(|c| !key.contains(c)).cloned());
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

/// Source text of the tokens in `toks`.
fn text_of(sql: &str, toks: &[(Tok, std::ops::Range<usize>)]) -> String {
    match (toks.first(), toks.last()) {
        (Some(a), Some(b)) => sql[a.1.start..b.1.end].to_string(),
        _ => String::new(),
    }
}

/// The index of the `)` closing the `(` at `open`.
fn closing(toks: &[(Tok, std::ops::Range<usize>)], open: usize) -> Option<usize> {
    if toks.get(open)?.0 != Tok::Punct(b'(') {
        return None;
    }
    let mut depth = 0usize;
    for (i, (t, _)) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_word(t: &Tok, w: &str) -> bool {
    matches!(t, Tok::Word(x) if x == w)
}

/// The name given by `CONSTRAINT name` right before token `at`, if any.
fn named_before(toks: &[(Tok, std::ops::Range<usize>)], at: usize) -> Option<String> {
    if at < 2 || !is_word(&toks[at - 2].0, "constraint") {
        return None;
    }
    match &toks[at - 1].0 {
        Tok::Word(w) => Some(w.clone()),
        Tok::Ident(i) => Some(i.clone()),
        _ => None,
    }
}

/// A parenthesised identifier list at `open`, quoted: the list and the index after it.
fn ident_list(sql: &str, toks: &[(Tok, std::ops::Range<usize>)], open: usize) -> Option<(Vec<String>, usize)> {
    let close = closing(toks, open)?;
    let inner = text_of(sql, &toks[open + 1..close]);
    let cols = split_top(&inner).iter().map(|c| quote_name(c)).collect();
    Some((cols, close + 1))
}

/// An identifier as written (`Email`, `"Email"`) in quoted form: unquoted names fold to lower case.
fn quote_name(s: &str) -> String {
    let s = s.trim();
    if s.starts_with('"') {
        s.to_string()
    } else {
        qi(&s.to_lowercase())
    }
}

/// `FOREIGN KEY (cols) REFERENCES parent [(cols)]` in the failed statement.
fn statement_foreign_key(sql: &str, constraint: &str) -> Option<ForeignKey> {
    let toks = tokens(sql);
    let mut found = Vec::new();
    for i in 0..toks.len().saturating_sub(2) {
        if !(is_word(&toks[i].0, "foreign") && is_word(&toks[i + 1].0, "key")) {
            continue;
        }
        let (columns, next) = ident_list(sql, &toks, i + 2)?;
        if !toks.get(next).is_some_and(|t| is_word(&t.0, "references")) {
            continue;
        }
        let mut j = next + 1;
        while j < toks.len() && matches!(toks[j].0, Tok::Word(_) | Tok::Ident(_) | Tok::Punct(b'.')) {
            if let Tok::Word(w) = &toks[j].0 {
                if ["match", "on", "deferrable", "not", "initially"].contains(&w.as_str()) {
                    break;
                }
            }
            j += 1;
        }
        let parent = text_of(sql, &toks[next + 1..j]);
        let parent_columns = if toks.get(j).is_some_and(|t| t.0 == Tok::Punct(b'(')) {
            ident_list(sql, &toks, j)?.0
        } else {
            Vec::new()
        };
        let named = named_before(&toks, i).is_some_and(|n| n == constraint);
        found.push((named, ForeignKey { columns, parent, parent_columns }));
    }
    let pick = found.iter().position(|(named, _)| *named).unwrap_or(0);
    (!found.is_empty()).then(|| found.swap_remove(pick).1)
}

async fn check(client: &Client, sql: &str, err: &DbError) -> Result<Option<Explanation>> {
    let Some((table, shown)) = table_of(err) else { return Ok(None) };
    let constraint = err.constraint().unwrap_or("");
    let def: Option<String> = client
        .query_opt(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = $1::text::regclass AND conname = $2 AND contype = 'c'",
            &[&table, &constraint],
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
    let filter = format!("NOT ({expr})");
    let n = count(client, &format!("SELECT count(*) FROM {table} WHERE {filter}")).await?;
    if n == 0 {
        return Ok(Some(summary_only(
            &shown,
            format!("No committed row of {shown} violates CHECK {expr}: the violating rows come from the migration's own statements."),
        )));
    }
    let key = key_columns(client, &table).await?;
    let mut cols = key.clone();
    cols.extend(columns_in(client, &table, &expr).await?.into_iter().filter(|c| !key.contains(c)));
    let rows = rows_text(client, &sample_query(&table, &cols, &key, &filter)).await?;
    Ok(Some(Explanation {
        summary: format!("{n} row{} of {shown} violate CHECK {expr}; {}:", plural(n as i64), some(n, rows.len())),
        table: Some(shown),
        columns: cols.iter().map(|c| header(c)).collect(),
        rows,
        total: Some(n),
    }))
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

/// `CHECK (expr)` in the failed statement: the one named `constraint`, else the first.
fn statement_check(sql: &str, constraint: &str) -> Option<String> {
    let toks = tokens(sql);
    let mut found = Vec::new();
    for i in 0..toks.len().saturating_sub(1) {
        if is_word(&toks[i].0, "check") && toks[i + 1].0 == Tok::Punct(b'(') {
            let close = closing(&toks, i + 1)?;
            let expr = text_of(sql, &toks[i + 2..close]);
            found.push((named_before(&toks, i).is_some_and(|n| n == constraint), expr));
        }
    }
    let pick = found.iter().position(|(named, _)| *named).unwrap_or(0);
    (!found.is_empty()).then(|| found.swap_remove(pick).1)
}

/// One `ALTER [COLUMN] col [SET DATA] TYPE type [COLLATE …] [USING expr]` clause.
#[derive(Debug, PartialEq, Eq)]
struct TypeChange {
    column: String,
    new_type: String,
    using: Option<String>,
}

/// `ALTER TABLE [IF EXISTS] [ONLY] name` and its type-changing clauses.
fn statement_type_changes(sql: &str) -> Option<(String, Vec<TypeChange>)> {
    let toks = tokens(sql);
    if !(toks.len() > 3 && is_word(&toks[0].0, "alter") && is_word(&toks[1].0, "table")) {
        return None;
    }
    let mut i = 2;
    while toks.get(i).is_some_and(|t| is_word(&t.0, "if") || is_word(&t.0, "exists") || is_word(&t.0, "only")) {
        i += 1;
    }
    let start = i;
    while toks.get(i + 1).is_some_and(|t| t.0 == Tok::Punct(b'.')) {
        i += 2;
    }
    let table = text_of(sql, &toks[start..=i.min(toks.len() - 1)]);
    let rest_start = toks.get(i + 1)?.1.start;
    let changes = split_top(&sql[rest_start..]).iter().filter_map(|c| type_change(c)).collect::<Vec<_>>();
    (!changes.is_empty()).then_some((table, changes))
}

fn type_change(clause: &str) -> Option<TypeChange> {
    let toks = tokens(clause);
    let mut i = 0;
    let next_is = |i: usize, w: &str| toks.get(i).is_some_and(|t| is_word(&t.0, w));
    if !next_is(i, "alter") {
        return None;
    }
    i += 1;
    if next_is(i, "column") {
        i += 1;
    }
    toks.get(i)?;
    let column = quote_name(&text_of(clause, &toks[i..=i]));
    i += 1;
    if next_is(i, "set") && next_is(i + 1, "data") {
        i += 2;
    }
    if !next_is(i, "type") {
        return None;
    }
    let type_start = i + 1;
    let mut j = type_start;
    let mut depth = 0usize;
    while j < toks.len() {
        match &toks[j].0 {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Word(w) if depth == 0 && (w == "using" || w == "collate") => break,
            _ => {}
        }
        j += 1;
    }
    let new_type = text_of(clause, &toks[type_start..j]);
    let using =
        (j..toks.len()).find(|&k| is_word(&toks[k].0, "using")).map(|k| clause[toks[k].1.end..].trim().to_string());
    Some(TypeChange { column, new_type, using })
}

/// Values a type change cannot convert: rows are read through a cursor and
/// tested in chunks (each in a savepoint), failing chunks halved until single
/// rows remain. Counted exactly within [`CONVERT_BUDGET`], else "at least".
async fn conversion(client: &Client, sql: &str) -> Result<Option<Explanation>> {
    let Some((written, changes)) = statement_type_changes(sql) else { return Ok(None) };
    let (table, shown) = resolve(client, &written).await?;
    let started = Instant::now();
    for change in changes {
        if change.using.is_none() {
            if let Some(n) = char_length(&change.new_type) {
                match too_long(client, (&table, &shown), &change, n).await? {
                    Some(e) => return Ok(Some(e)),
                    None => continue,
                }
            }
        }
        let conv = match &change.using {
            Some(u) => format!("({u})::{}", change.new_type),
            None => format!("({})::{}", change.column, change.new_type),
        };
        if try_convert(client, &table, &conv, None).await?.is_none() {
            continue;
        }
        client
            .batch_execute(&format!("DECLARE pgbd_rows NO SCROLL CURSOR FOR SELECT ctid::text FROM {table}"))
            .await
            .map_err(db_err)?;
        let mut bad = Bad::default();
        let mut complete = true;
        loop {
            let chunk: Vec<String> = client
                .query("FETCH 1024 FROM pgbd_rows", &[])
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if chunk.is_empty() {
                break;
            }
            if !find_bad(client, &table, &conv, &chunk, &mut bad, started).await? {
                complete = false;
                break;
            }
        }
        client.batch_execute("CLOSE pgbd_rows").await.map_err(db_err)?;
        return Ok(Some(convert_explanation(client, (&table, &shown), &change, bad, complete).await?));
    }
    Ok(None)
}

/// The length limit of a `varchar(n)` or `char(n)` type.
fn char_length(new_type: &str) -> Option<u64> {
    let t = new_type.to_ascii_lowercase();
    let (name, rest) = t.split_once('(')?;
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if !["varchar", "character varying", "char", "character", "bpchar"].contains(&name.as_str()) {
        return None;
    }
    rest.trim().strip_suffix(')')?.trim().parse().ok()
}

/// A shortened `varchar(n)`/`char(n)`: an explicit cast would cut values
/// silently where the column's conversion fails, so the lengths are compared
/// (trailing spaces may be cut, as PostgreSQL does).
async fn too_long(
    client: &Client,
    (table, shown): (&str, &str),
    change: &TypeChange,
    n: u64,
) -> Result<Option<Explanation>> {
    let col = &change.column;
    let filter = format!("length(rtrim(({col})::text)) > {n}");
    let total = count(client, &format!("SELECT count(*) FROM {table} WHERE {filter}")).await?;
    if total == 0 {
        return Ok(None);
    }
    let key = key_columns(client, table).await?;
    let mut cols = key.clone();
    if !key.contains(col) {
        cols.push(col.clone());
    }
    let at = cols.iter().position(|c| c == col).unwrap_or(0);
    let mut rows = rows_text(client, &sample_query(table, &cols, &key, &filter)).await?;
    for row in &mut rows {
        let len = row[at].as_deref().map_or(0, |v| v.trim_end_matches(' ').chars().count());
        row.push(Some(len.to_string()));
    }
    let mut columns: Vec<String> = cols.iter().map(|c| header(c)).collect();
    columns.push("length".into());
    Ok(Some(Explanation {
        summary: format!(
            "{total} row{} of {shown} have {} values longer than {} allows; {}:",
            plural(total as i64),
            header(col),
            change.new_type,
            some(total, rows.len())
        ),
        table: Some(shown.to_string()),
        columns,
        rows,
        total: Some(total),
    }))
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

/// Rows whose value does not convert: how many, and the first few with their errors.
#[derive(Default)]
struct Bad {
    count: u64,
    first: Vec<(String, String)>,
}

/// The conversion's error on these rows (all rows when `ctids` is None), or None when it succeeds.
async fn try_convert(client: &Client, table: &str, conv: &str, ctids: Option<&[String]>) -> Result<Option<String>> {
    client.batch_execute("SAVEPOINT pgbd_convert").await.map_err(db_err)?;
    let filter = if ctids.is_some() { "WHERE ctid = ANY($1::text[]::tid[])" } else { "WHERE $1::text[] IS NOT NULL" };
    let all: Vec<String> = ctids.map(<[String]>::to_vec).unwrap_or_default();
    let q = format!("SELECT count({conv}) FROM {table} {filter}");
    match client.query_one(&q, &[&all]).await {
        Ok(_) => {
            client.batch_execute("RELEASE SAVEPOINT pgbd_convert").await.map_err(db_err)?;
            Ok(None)
        }
        Err(e) => {
            client.batch_execute("ROLLBACK TO SAVEPOINT pgbd_convert").await.map_err(db_err)?;
            match e.as_db_error() {
                Some(d) if d.code().code().starts_with("22") => Ok(Some(d.message().to_string())),
                _ => Err(db_err(e)),
            }
        }
    }
}

/// Adds the chunk's unconvertible rows to `bad`; false when time ran out first.
async fn find_bad(
    client: &Client,
    table: &str,
    conv: &str,
    chunk: &[String],
    bad: &mut Bad,
    started: Instant,
) -> Result<bool> {
    let mut stack = vec![chunk];
    while let Some(part) = stack.pop() {
        if started.elapsed() > CONVERT_BUDGET {
            return Ok(false);
        }
        let Some(message) = try_convert(client, table, conv, Some(part)).await? else { continue };
        if part.len() == 1 {
            bad.count += 1;
            if bad.first.len() < SAMPLE as usize {
                bad.first.push((part[0].clone(), message));
            }
        } else {
            let (a, b) = part.split_at(part.len() / 2);
            stack.push(b);
            stack.push(a);
        }
    }
    Ok(true)
}

async fn convert_explanation(
    client: &Client,
    (table, shown): (&str, &str),
    change: &TypeChange,
    bad: Bad,
    complete: bool,
) -> Result<Explanation> {
    let key = key_columns(client, table).await?;
    let mut cols = key.clone();
    if !key.contains(&change.column) {
        cols.push(change.column.clone());
    }
    let mut rows = Vec::new();
    for (ctid, message) in &bad.first {
        let q = format!("SELECT {} FROM {table} WHERE ctid = $1::text::tid", text_list(&cols));
        let r = client.query_one(&q, &[ctid]).await.map_err(db_err)?;
        let mut row: Vec<Option<String>> = (0..r.len()).map(|i| r.get(i)).collect();
        row.push(Some(message.clone()));
        rows.push(row);
    }
    let mut columns: Vec<String> = cols.iter().map(|c| header(c)).collect();
    columns.push("error".into());
    let n = bad.count;
    let how_many = if complete { format!("{n}") } else { format!("At least {n}") };
    Ok(Explanation {
        summary: format!(
            "{how_many} row{} of {shown} have {} values that do not convert to {}:",
            plural(n as i64),
            header(&change.column),
            change.new_type
        ),
        table: Some(shown.to_string()),
        columns,
        rows,
        total: complete.then_some(n),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Random statements made of the pieces the parsers look for never make them panic.
    #[test]
    fn parsers_never_panic() {
        const PIECES: &[&str] = &[
            "alter ",
            "table ",
            "column ",
            "type ",
            "using ",
            "set data ",
            "foreign key ",
            "references ",
            "check ",
            "constraint ",
            "(",
            ")",
            ",",
            "\"",
            "'",
            "é",
            "x ",
            ".",
            "where ",
            "create unique index ",
            "Key (",
            ")=(",
        ];
        let mut seed: u64 = 42;
        for _ in 0..20_000 {
            let mut sql = String::new();
            for _ in 0..(seed % 16) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                sql.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let _ = (statement_type_changes(&sql), statement_foreign_key(&sql, "x"), statement_check(&sql, "x"));
            let _ = (index_predicate(&sql), detail_key(&sql), char_length(&sql));
        }
    }

    #[test]
    fn character_limits() {
        assert_eq!(char_length("varchar(5)"), Some(5));
        assert_eq!(char_length("character  varying ( 12 )"), Some(12));
        assert_eq!(char_length("char(3)"), Some(3));
        assert_eq!(char_length("numeric(10, 2)"), None);
        assert_eq!(char_length("text"), None);
    }

    #[test]
    fn key_of_a_detail() {
        assert_eq!(detail_key("Key (email)=(a@x) is duplicated."), Some(vec!["email".to_string()]));
        assert_eq!(
            detail_key("Key (lower(email), tenant)=(a, 1) is duplicated."),
            Some(vec!["lower(email)".to_string(), "tenant".to_string()])
        );
    }

    #[test]
    fn partial_index_predicates() {
        assert_eq!(index_predicate("CREATE UNIQUE INDEX i ON t (a) WHERE (b > 0)"), Some("(b > 0)".into()));
        assert_eq!(index_predicate("CREATE UNIQUE INDEX i ON t (a)"), None);
    }

    #[test]
    fn foreign_keys_in_statements() {
        let fk = statement_foreign_key(
            "ALTER TABLE orders ADD CONSTRAINT a CHECK (x > 0), ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id, \"Tenant\") REFERENCES app.users (id, tenant) ON DELETE CASCADE",
            "orders_user_fk",
        )
        .unwrap();
        assert_eq!(fk.columns, ["\"user_id\"", "\"Tenant\""]);
        assert_eq!(fk.parent, "app.users");
        assert_eq!(fk.parent_columns, ["\"id\"", "\"tenant\""]);
        let fk = statement_foreign_key("ALTER TABLE o ADD FOREIGN KEY (u) REFERENCES users", "o_u_fkey").unwrap();
        assert_eq!((fk.parent.as_str(), fk.parent_columns.len()), ("users", 0));
    }

    #[test]
    fn checks_in_statements() {
        let sql = "ALTER TABLE t ADD CONSTRAINT a CHECK (x > 0), ADD CONSTRAINT b CHECK (length(y) < 5)";
        assert_eq!(statement_check(sql, "b").as_deref(), Some("length(y) < 5"));
        assert_eq!(statement_check(sql, "zzz").as_deref(), Some("x > 0"));
    }

    #[test]
    fn type_changes_in_statements() {
        let (table, changes) = statement_type_changes(
            "ALTER TABLE ONLY public.t ALTER COLUMN a TYPE integer USING trim(a)::integer, ALTER b SET DATA TYPE numeric(10, 2), ADD c int",
        )
        .unwrap();
        assert_eq!(table, "public.t");
        assert_eq!(
            changes,
            vec![
                TypeChange {
                    column: "\"a\"".into(),
                    new_type: "integer".into(),
                    using: Some("trim(a)::integer".into())
                },
                TypeChange { column: "\"b\"".into(), new_type: "numeric(10, 2)".into(), using: None },
            ]
        );
        assert!(statement_type_changes("ALTER TABLE t ADD c int").is_none());
        assert!(statement_type_changes("ALTER TABLE t ALTER").is_none());
        assert!(statement_foreign_key("ALTER TABLE t ADD FOREIGN KEY ) REFERENCES", "x").is_none());
    }
}
