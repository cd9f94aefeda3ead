//! Branching a database on its own server: `CREATE DATABASE <unique name>
//! TEMPLATE <source>`, timed, and dropping it again. A template must have no
//! other connections while it is copied, so the sessions connected to the
//! source are named in the error rather than left to PostgreSQL's
//! "source database is being accessed by other users".

use std::time::Instant;

use anyhow::{bail, Context, Result};
use diff_core::{ConnConfig, SideName};

/// How the copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// On a server others use: [`Strategy::FileCopy`] for a source of
    /// [`FILE_COPY_FROM`] bytes or more on PostgreSQL 15+, where copying the
    /// files beats writing every page to WAL (790 MB: 1.5 s against 3.4 s,
    /// docs/benchmarks.md) and the two checkpoints it forces are worth it;
    /// else the default.
    Auto,
    /// The server's default (`WAL_LOG` on PostgreSQL 15 and later): no
    /// checkpoint is forced on a server others use.
    Default,
    /// `STRATEGY FILE_COPY`: copies files after a checkpoint, which costs
    /// nothing on a throwaway cluster without fsync.
    FileCopy,
    /// `FILE_COPY` with `file_copy_method = clone` (PostgreSQL 18): the file
    /// system clones or copies in the kernel.
    Clone,
}

/// Source size from which [`Strategy::Auto`] copies files.
pub const FILE_COPY_FROM: i64 = 64 << 20;

impl Strategy {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Default => "default strategy",
            Strategy::FileCopy => "STRATEGY FILE_COPY",
            Strategy::Clone => "STRATEGY FILE_COPY, file_copy_method = clone",
        }
    }

    /// Whether making the copy forced a checkpoint on the server (FILE_COPY does).
    pub fn checkpoints(self) -> bool {
        matches!(self, Strategy::FileCopy | Strategy::Clone)
    }
}

/// A branch made by `check`.
#[derive(Debug, Clone)]
pub struct Branch {
    /// Where the branch database is (the source's server, the branch's name).
    pub config: ConnConfig,
    /// The branch database's name.
    pub name: String,
    /// The source database's name.
    pub source: String,
    /// Wall time of the `CREATE DATABASE`.
    pub millis: u64,
    /// How it was copied.
    pub strategy: Strategy,
    /// The copy forced a checkpoint: FILE_COPY does, and before PostgreSQL 15
    /// every `CREATE DATABASE` copies files (there is no other strategy).
    pub checkpoint: bool,
}

/// Creates the branch `name` of `source` (see [`unique_name`]).
pub async fn create(source: &ConnConfig, name: &str, strategy: Strategy) -> Result<Branch> {
    let src = source.dbname().to_string();
    let name = name.to_string();
    let (client, conn) = maintenance(source).await?;
    // A session that just disconnected stays in pg_stat_activity until its
    // backend has exited: wait for that as CREATE DATABASE itself would (5 s).
    let mut others = other_sessions(&client, &src).await?;
    for _ in 0..50 {
        if others.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        others = other_sessions(&client, &src).await?;
    }
    if !others.is_empty() {
        bail!(
            "cannot branch database \"{src}\" on {}: other sessions are connected to it ({}); \
             a template must have no other connections while it is copied",
            source.endpoint(),
            others
        );
    }
    let mut strategy = match strategy {
        Strategy::Auto => auto(&client, &src).await,
        s => s,
    };
    let version: u32 = client.query_one("SHOW server_version_num", &[]).await?.get::<_, String>(0).parse()?;
    let started = Instant::now();
    let result = copy(&client, &src, &name, strategy).await;
    let result = match result {
        // A file system or build that cannot clone: the plain file copy.
        Err(e) if strategy == Strategy::Clone && !is_in_use(&e) => {
            strategy = Strategy::FileCopy;
            let _ = e;
            copy(&client, &src, &name, strategy).await
        }
        r => r,
    };
    let millis = started.elapsed().as_millis() as u64;
    if let Err(e) = result {
        let message = if is_in_use(&e) {
            // Someone connected between the check above and the copy.
            let others = other_sessions(&client, &src).await.unwrap_or_default();
            format!("other sessions are connected to it ({others})")
        } else {
            super::pg_message(&e)
        };
        bail!("cannot branch database \"{src}\" on {}: {message}", source.endpoint());
    }
    drop(client);
    let _ = conn.await;
    let checkpoint = strategy.checkpoints() || version < 150000;
    Ok(Branch { config: source.with_dbname(SideName::Child, &name), name, source: src, millis, strategy, checkpoint })
}

/// Drops the branch, disconnecting whoever is still connected to it.
pub async fn drop_branch(branch: &Branch) -> Result<()> {
    let (client, conn) = maintenance(&branch.config).await?;
    let q = ident(&branch.name);
    stop_copy(&client, &q).await?;
    // WITH (FORCE) exists from PostgreSQL 13; before, terminate the sessions first.
    let sql = if client.query_one("SHOW server_version_num", &[]).await?.get::<_, String>(0).parse::<u32>()? >= 130000 {
        format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)")
    } else {
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&branch.name],
            )
            .await?;
        format!("DROP DATABASE IF EXISTS {q}")
    };
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| anyhow::anyhow!("cannot drop the branch database {q}: {}", super::pg_message(&e)))?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// A copy interrupted on this side still runs on the server (its backend learns of the closed
/// connection only when it next writes to it), and would make the database after the drop:
/// cancel it and wait until it has ended.
async fn stop_copy(client: &tokio_postgres::Client, quoted: &str) -> Result<()> {
    let running = format!("CREATE DATABASE {quoted} TEMPLATE %");
    let sql = "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
                WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1";
    for _ in 0..300 {
        let n: i64 = client.query_one(sql, &[&running]).await?.get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn copy(
    client: &tokio_postgres::Client,
    src: &str,
    name: &str,
    strategy: Strategy,
) -> Result<(), tokio_postgres::Error> {
    let create = format!("CREATE DATABASE {} TEMPLATE {}", ident(name), ident(src));
    match strategy {
        Strategy::Default | Strategy::Auto => client.batch_execute(&create).await,
        Strategy::FileCopy => client.batch_execute(&format!("{create} STRATEGY FILE_COPY")).await,
        Strategy::Clone => {
            client.batch_execute("SET file_copy_method = clone").await?;
            let r = client.batch_execute(&format!("{create} STRATEGY FILE_COPY")).await;
            let _ = client.batch_execute("RESET file_copy_method").await;
            r
        }
    }
}

/// [`Strategy::Auto`] resolved; a size the role may not read means the default.
async fn auto(client: &tokio_postgres::Client, src: &str) -> Strategy {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, (SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1)",
            &[&src],
        )
        .await;
    match row.as_ref().map(|r| (r.get::<_, i32>(0), r.get::<_, Option<i64>>(1))) {
        Ok((version, Some(size))) if version >= 150000 && size >= FILE_COPY_FROM => Strategy::FileCopy,
        _ => Strategy::Default,
    }
}

fn is_in_use(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE)
}

/// A connection to the source's server but not to the source (a template
/// must have no connections): the `postgres` database, else `template1`.
async fn maintenance(source: &ConnConfig) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let first = source.with_dbname(SideName::Parent, "postgres").connect().await;
    match first {
        Ok(c) => Ok(c),
        Err(e) => source
            .with_dbname(SideName::Parent, "template1")
            .connect()
            .await
            .map_err(|_| e)
            .context("cannot connect to the server's postgres or template1 database to create the branch"),
    }
}

/// Refuses a branch name taken by a database on the server: a branch is only ever a database
/// this tool made, so it must not take over (and later drop) one that exists.
pub async fn absent(source: &ConnConfig, name: &str) -> Result<()> {
    let (client, conn) = maintenance(source).await?;
    let taken: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", &[&name]).await?.get(0);
    drop(client);
    let _ = conn.await;
    if taken {
        bail!(
            "{}: a database named \"{name}\" already exists; choose another branch name",
            source.with_dbname(SideName::Parent, name).endpoint()
        );
    }
    Ok(())
}

/// "2 × psql (app), 1 × (unnamed) (postgres)", or empty.
async fn other_sessions(client: &tokio_postgres::Client, db: &str) -> Result<String> {
    let rows = client
        .query(
            "SELECT coalesce(nullif(application_name, ''), '(unnamed)'), coalesce(usename::text, '?'), count(*)
               FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
              GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
            &[&db],
        )
        .await?;
    let parts: Vec<String> = rows
        .iter()
        .map(|r| {
            let n: i64 = r.get(2);
            format!("{n} × application \"{}\" as user {}", r.get::<_, String>(0), r.get::<_, String>(1))
        })
        .collect();
    Ok(parts.join(", "))
}

/// `<source>_check_<pid>_<n>`, cut to PostgreSQL's 63-byte names.
pub fn unique_name(source: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let suffix = format!("_check_{}_{}", std::process::id(), nanos % 100_000);
    let mut base: String = source.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    base.truncate(63 - suffix.len());
    format!("{}{suffix}", base.to_lowercase())
}

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_fit_and_are_plain() {
        let n = unique_name(&"Ünïcode \"shop\"".repeat(10));
        assert!(n.len() <= 63, "{n}");
        assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{n}");
        assert!(unique_name("shop").starts_with("shop_check_"));
    }
}
