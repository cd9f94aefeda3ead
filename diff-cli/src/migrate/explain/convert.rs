//! Type changes that fail on existing values: the rows whose value does not
//! convert (searched in savepoints, halving failing chunks), or for a shortened
//! `varchar(n)`/`char(n)` the values that are too long.

use std::time::{Duration, Instant};

use super::statement::{char_length, statement_type_changes, TypeChange};
use super::*;

/// Time the search for unconvertible values may take.
const CONVERT_BUDGET: Duration = Duration::from_secs(15);

/// Values a type change cannot convert: rows are read through a cursor and
/// tested in chunks (each in a savepoint), failing chunks halved until single
/// rows remain. Counted exactly within [`CONVERT_BUDGET`], else "at least".
pub(super) async fn conversion(client: &Client, sql: &str) -> Result<Option<Explanation>> {
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
