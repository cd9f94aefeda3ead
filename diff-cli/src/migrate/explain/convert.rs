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
        // A ctid names a row within one table: a partitioned table is searched partition by partition.
        let leaves = leaves(client, &table).await?;
        let mut bad = Bad::default();
        let mut complete = true;
        for leaf in leaves.as_deref().unwrap_or(std::slice::from_ref(&table)) {
            if !complete || try_convert(client, leaf, &conv, None).await?.is_none() {
                continue;
            }
            client
                .batch_execute(&format!("DECLARE pgbd_rows NO SCROLL CURSOR FOR SELECT ctid::text FROM {leaf}"))
                .await
                .map_err(db_err)?;
            bad.table = leaf.clone();
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
                if !find_bad(client, leaf, &conv, &chunk, &mut bad, started).await? {
                    complete = false;
                    break;
                }
            }
            client.batch_execute("CLOSE pgbd_rows").await.map_err(db_err)?;
        }
        let partitioned = leaves.is_some();
        return Ok(Some(convert_explanation(client, (&table, &shown), partitioned, &change, bad, complete).await?));
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
    /// The table being searched (a partition of a partitioned table).
    table: String,
    /// Table, ctid, error.
    first: Vec<(String, String, String)>,
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
                bad.first.push((bad.table.clone(), part[0].clone(), message));
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
    partitioned: bool,
    change: &TypeChange,
    bad: Bad,
    complete: bool,
) -> Result<Explanation> {
    let key = key_columns(client, table).await?;
    let mut cols = key.clone();
    if !key.contains(&change.column) {
        cols.push(change.column.clone());
    }
    let cols: Vec<String> = cols.into_iter().filter(|c| !(partitioned && c == "ctid")).collect();
    let mut rows = Vec::new();
    for (leaf, ctid, message) in &bad.first {
        let mut exprs = cols.clone();
        if partitioned {
            exprs.insert(0, "tableoid::regclass".into());
        }
        let q = format!("SELECT {} FROM {leaf} WHERE ctid = $1::text::tid", text_list(&exprs));
        let r = client.query_one(&q, &[ctid]).await.map_err(db_err)?;
        let mut row: Vec<Option<String>> = (0..r.len()).map(|i| r.get(i)).collect();
        row.push(Some(message.clone()));
        rows.push(row);
    }
    let mut columns: Vec<String> = if partitioned { vec!["partition".into()] } else { Vec::new() };
    columns.extend(cols.iter().map(|c| header(c)));
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

/// The leaf partitions of `table` (quoted), or None when it is not partitioned.
async fn leaves(client: &Client, table: &str) -> Result<Option<Vec<String>>> {
    let rows = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             FROM pg_partition_tree($1::text::regclass) p JOIN pg_class c ON c.oid = p.relid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE p.isleaf AND (SELECT relkind FROM pg_class WHERE oid = $1::text::regclass) = 'p'
             ORDER BY c.relname",
            &[&table],
        )
        .await
        .map_err(db_err)?;
    let partitioned: bool = client
        .query_one("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::text::regclass", &[&table])
        .await
        .map_err(db_err)?
        .get(0);
    Ok(partitioned.then(|| rows.iter().map(|r| r.get(0)).collect()))
}

/// A type change whose new values collide in a unique index (`key`, from the
/// error's DETAIL): the migration wrote no rows, the conversion maps several
/// original values to one. Lists those values with how many rows hold each.
pub(super) async fn collisions(client: &Client, sql: &str, key: &[String]) -> Result<Option<Explanation>> {
    let Some((written, changes)) = statement_type_changes(sql) else { return Ok(None) };
    let Some(change) = changes.into_iter().find(|c| key.iter().any(|k| header(k) == header(&c.column))) else {
        return Ok(None);
    };
    let (table, shown) = resolve(client, &written).await?;
    let col = &change.column;
    let conv = match &change.using {
        Some(u) => format!("({u})::{}", change.new_type),
        None => format!("({col})::{}", change.new_type),
    };
    // The other columns of the key keep their values.
    let others: Vec<String> = key.iter().filter(|k| header(k) != header(col)).map(|k| format!("({k})::text")).collect();
    let other_cols = others.iter().enumerate().map(|(i, o)| format!(", {o} AS o{i}")).collect::<String>();
    let other_names = (0..others.len()).map(|i| format!(", o{i}")).collect::<String>();
    let mapped = format!(
        "SELECT ({conv})::text AS new{other_cols}, ({col})::text AS old FROM {table} WHERE ({col}) IS NOT NULL"
    );
    let groups = format!(
        "SELECT new{other_names}, count(*) AS n FROM ({mapped}) m GROUP BY new{other_names} HAVING count(DISTINCT old) > 1"
    );
    let total = count(client, &format!("SELECT count(*) FROM ({groups}) g")).await?;
    if total == 0 {
        return Ok(None);
    }
    let rows = rows_text(
        client,
        &format!(
            "SELECT m.new{}, m.old, count(*)::text FROM ({mapped}) m
             JOIN (SELECT * FROM ({groups}) g ORDER BY g.n DESC, g.new LIMIT {SAMPLE}) g ON g.new = m.new{}
             GROUP BY m.new{}, m.old, g.n ORDER BY g.n DESC, m.new{}, count(*) DESC, m.old",
            (0..others.len()).map(|i| format!(", m.o{i}")).collect::<String>(),
            (0..others.len()).map(|i| format!(" AND g.o{i} IS NOT DISTINCT FROM m.o{i}")).collect::<String>(),
            (0..others.len()).map(|i| format!(", m.o{i}")).collect::<String>(),
            (0..others.len()).map(|i| format!(", m.o{i}")).collect::<String>(),
        ),
    )
    .await?;
    let name = header(col);
    let mut columns = vec![format!("{name} after")];
    columns.extend(key.iter().filter(|k| header(k) != name).map(|k| header(k)));
    columns.push(format!("{name} before"));
    columns.push("rows".into());
    Ok(Some(Explanation {
        summary: format!(
            "The conversion of {name} to {} maps different values of {shown} to one: {total} new value{} would occur more than once (the migration wrote no rows; the old values are unique):",
            change.new_type,
            plural(total as i64),
        ),
        table: Some(shown),
        columns,
        rows,
        total: Some(total),
    }))
}
