//! `pgbranchdiff check`: test a migration on a throwaway branch in one
//! command. The source is a snapshot restored into a throwaway local cluster
//! (`--snapshot`) or an existing database (`--database`); the branch is a
//! `CREATE DATABASE … TEMPLATE` copy of it (or one made elsewhere, `--branch`);
//! the migration runs on the branch ([`crate::migrate`]); then the diff, parent
//! against branch, with the migration's section in the same report. Whatever
//! the command created is removed on every way out — success, failure,
//! trouble, Ctrl-C, SIGTERM — unless `--keep`.

pub mod branch;
pub mod cluster;
pub mod pgbin;
pub mod restore;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::{ArgGroup, Args};
use diff_core::{ConnConfig, SideName};
use serde_json::json;

use crate::args::ReportArgs;
use crate::migrate::{self, MigrateOptions, Migration, MigrationReport};
use crate::preamble::Preamble;
use crate::signal::{self, Interrupted};
use branch::{Branch, Strategy};
use cluster::Throwaway;
use pgbin::PgBin;

/// `pgbranchdiff check` arguments.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("source").required(true).args(["snapshot", "database"])))]
#[command(group(ArgGroup::new("change").required(true).args(["migration", "run"])))]
pub struct CheckArgs {
    /// A pg_dump snapshot (plain SQL, custom, directory or tar format), restored into a throwaway
    /// local cluster started from the PostgreSQL binaries on this machine.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// An existing database (URL, key=value string or name) on a server where the role may create
    /// databases: the branch is a TEMPLATE copy of it there, dropped afterwards.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// A branch made elsewhere (Neon, Supabase, DBLab, a restored snapshot) of --database: migrated
    /// and compared as it is, and left in place.
    #[arg(long, value_name = "URL", requires = "database")]
    pub branch: Option<String>,
    /// SQL migration: a file, several, or a directory (its *.sql files in name order); applied
    /// statement by statement, stopping at the first error.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub migration: Vec<PathBuf>,
    /// A migration command (any tool), run with `sh -c` and DATABASE_URL, PGHOST, PGPORT,
    /// PGDATABASE, PGUSER pointing at the branch.
    #[arg(long, value_name = "COMMAND")]
    pub run: Option<String>,
    /// lock_timeout for the migration's statements (e.g. 5s, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub lock_timeout: Option<Duration>,
    /// statement_timeout for the migration's statements (e.g. 2m).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub statement_timeout: Option<Duration>,
    /// Fail the check (exit 1) when the migration takes longer (e.g. 120s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub max_duration: Option<Duration>,
    /// Keep the branch (and a throwaway cluster) afterwards, and print how to connect.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

fn duration(s: &str) -> std::result::Result<Duration, String> {
    migrate::parse_duration(s).map_err(|e| e.to_string())
}

/// Runs the check; returns whether it failed (exit status 1): the migration
/// failed or exceeded `--max-duration`, or the `--fail-on` gate failed.
/// Differences alone do not fail a check. Err is trouble, or [`Interrupted`].
pub async fn run(args: &CheckArgs) -> Result<bool> {
    // Mistakes in the arguments are found before anything is started.
    let migration = migration(args)?;
    crate::diff::options(&args.report)?;
    crate::diff::gate(&args.report)?;
    let started = std::time::Instant::now();
    let mut held = Held::default();
    let result = tokio::select! {
        // The handlers are installed by the interrupt's first poll: it must come before
        // `work` starts anything, or a signal in between kills us with initdb running.
        biased;
        _ = signal::interrupt() => Err(Interrupted.into()),
        r = work(args, &migration, &mut held) => r,
    };
    // Cleanup runs on every way out; its own trouble is reported after the run's.
    let cleanup = std::time::Instant::now();
    let released = held.release(args.keep, args.report.quiet).await;
    let failed = result?;
    released?;
    if !args.report.quiet {
        let (all, cleanup) = (started.elapsed(), cleanup.elapsed());
        eprintln!(
            "pgbranchdiff: the check took {} in all, cleanup included ({})",
            seconds(all.as_millis() as u64),
            seconds(cleanup.as_millis() as u64)
        );
    }
    Ok(failed)
}

fn migration(args: &CheckArgs) -> Result<Migration> {
    if let Some(cmd) = &args.run {
        return Ok(Migration::Command(cmd.clone()));
    }
    for p in &args.migration {
        if !p.exists() {
            bail!("--migration {}: no such file or directory", p.display());
        }
    }
    Ok(Migration::Files(args.migration.clone()))
}

/// What the check created, for cleanup.
#[derive(Default)]
struct Held {
    cluster: Option<Throwaway>,
    /// A branch on a server we do not own (`--database`): dropped by name.
    server_branch: Option<Branch>,
    /// How to connect to the branch, for `--keep`.
    branch_conninfo: Option<String>,
}

impl Held {
    async fn release(self, keep: bool, quiet: bool) -> Result<()> {
        if keep {
            if let Some(c) = &self.branch_conninfo {
                eprintln!("pgbranchdiff: kept the branch: psql \"{c}\"");
            }
            if let Some(cluster) = self.cluster {
                let stop = cluster.keep();
                eprintln!("pgbranchdiff: the throwaway cluster keeps running; stop it with: {stop}");
            }
            return Ok(());
        }
        let dropped = match &self.server_branch {
            Some(b) => branch::drop_branch(b).await.map(|()| Some(&b.name)),
            None => Ok(None),
        };
        // Stops the server and removes its directory (Drop).
        drop(self.cluster);
        if let (Ok(Some(name)), false) = (&dropped, quiet) {
            eprintln!("pgbranchdiff: dropped the branch database \"{name}\"");
        }
        dropped.map(|_| ())
    }
}

/// Marks a name in a line: text and Markdown quote differently.
type Quote<'a> = &'a dyn Fn(&str) -> String;

/// Where the parent came from, for the report.
struct Source {
    /// What it is, with the file or endpoint quoted.
    describe: Box<dyn Fn(Quote) -> String + Send>,
    json: serde_json::Value,
}

async fn work(args: &CheckArgs, migration: &Migration, held: &mut Held) -> Result<bool> {
    let say = |m: String| {
        if !args.report.quiet {
            eprintln!("pgbranchdiff: {m}");
        }
    };
    let (parent, source) = match (&args.snapshot, &args.database) {
        (Some(path), _) => from_snapshot(path, held, &say).await?,
        (None, Some(url)) => {
            let parent = ConnConfig::parse(SideName::Parent, url)?;
            let endpoint = parent.endpoint();
            let source = Source {
                json: json!({ "database": endpoint }),
                describe: Box::new(move |quote| format!("database {}", quote(&endpoint))),
            };
            (parent, source)
        }
        (None, None) => bail!("check needs --snapshot FILE or --database URL"),
    };
    let (child, made) = match &args.branch {
        Some(url) => {
            let child = ConnConfig::parse(SideName::Child, url)?;
            refuse_same_database(&parent, &child).await?;
            (child, None)
        }
        None => {
            let b = make_branch(&parent, held).await?;
            say(format!(
                "branched \"{}\" as \"{}\" in {} ({})",
                b.source,
                b.name,
                seconds(b.millis),
                b.strategy.name()
            ));
            (b.config.clone(), Some(b))
        }
    };
    held.branch_conninfo = Some(conninfo(&child));
    // A command's own output can quote redacted values too.
    let redact_output = matches!(migration, Migration::Command(_))
        && (!args.report.redact.is_empty()
            || !args.report.show_masked && !masked_columns(&[&parent]).await?.is_empty());
    let opts = MigrateOptions {
        lock_timeout: args.lock_timeout,
        statement_timeout: args.statement_timeout,
        max_duration: args.max_duration,
        redact_output,
    };
    // A command on a throwaway cluster: its failing statement can be read from the server's log.
    let log =
        held.cluster.as_ref().filter(|_| matches!(migration, Migration::Command(_))).map(|c| c.dir().join("log")).map(
            |p| {
                let from = std::fs::metadata(&p).map_or(0, |m| m.len());
                (p, from)
            },
        );
    let mut report = migrate::apply(&child, migration, &opts).await?;
    if let (Some((path, from)), Some(f)) = (log, report.failure.as_mut()) {
        f.server_log = last_error(&path, from);
    }
    // `--redact` promises every output: the failure's values too.
    let masked = if report.failure.is_some() && !args.report.show_masked {
        masked_columns(&[&parent, &child]).await?
    } else {
        Vec::new()
    };
    report.redact(&crate::diff::redactor(&args.report)?, &masked);
    // A failed migration fails the check: the gate, made for a migration that applied, is not evaluated.
    let mut report_args = args.report.clone();
    let gate = report_args.fail_on.clone();
    if !report.succeeded() {
        report_args.fail_on = None;
    }
    let preamble = preamble(&source, &child, made.as_ref(), &report, gate.as_deref());
    let outcome = crate::diff::run_with(&parent, &child, &report_args, Some(&preamble)).await?;
    let gate_failed = outcome.verdict.as_ref().is_some_and(|v| !v.passed);
    Ok(!report.succeeded() || report.over_budget() || gate_failed)
}

/// `schema.table.column` of every column with a PostgreSQL Anonymizer masking
/// rule on either side (the migration may have added or dropped one).
pub(crate) async fn masked_columns(sides: &[&ConnConfig]) -> Result<Vec<String>> {
    const Q: &str = "SELECT DISTINCT n.nspname || '.' || c.relname || '.' || a.attname
        FROM pg_seclabel s JOIN pg_class c ON c.oid = s.objoid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = s.objsubid
        WHERE s.provider = 'anon' AND s.classoid = 'pg_class'::regclass AND s.objsubid > 0";
    let mut out = std::collections::BTreeSet::new();
    for side in sides {
        let (client, conn) = side.connect().await?;
        let rows = client.query(Q, &[]).await.map_err(|e| anyhow::anyhow!("reading masking rules: {e}"))?;
        out.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        drop(client);
        let _ = conn.await;
    }
    Ok(out.into_iter().collect())
}

/// `--branch` must not be the source itself: the migration would run on it.
/// Same server (postmaster start time and port) and same database OID is the
/// same database, whatever the two URLs look like.
async fn refuse_same_database(parent: &ConnConfig, child: &ConnConfig) -> Result<()> {
    const IDENTITY: &str = "SELECT pg_postmaster_start_time()::text || ' ' || current_setting('port') || ' ' || \
                            (SELECT oid FROM pg_database WHERE datname = current_database())::text";
    let identity = |c: &ConnConfig| {
        let c = c.clone();
        async move {
            let (client, conn) = c.connect().await?;
            let id: String = client.query_one(IDENTITY, &[]).await?.get(0);
            drop(client);
            let _ = conn.await;
            anyhow::Ok(id)
        }
    };
    if identity(parent).await? == identity(child).await? {
        bail!(
            "--branch {} is the database given with --database itself: the migration would run on it; \
             give a branch (a copy) or leave --branch out to make one",
            child.endpoint()
        );
    }
    Ok(())
}

/// The databases of a server, templates aside.
async fn databases(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    let rows = client.query("SELECT datname::text FROM pg_database WHERE NOT datistemplate", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Restores the snapshot into a new throwaway cluster, as database `<file stem>`.
async fn from_snapshot(path: &Path, held: &mut Held, say: &impl Fn(String)) -> Result<(ConnConfig, Source)> {
    let format = restore::Format::detect(path)?;
    let bin = PgBin::find()?;
    let started = Instant::now();
    let cluster = held.cluster.insert(Throwaway::start(&bin).await?);
    let db = restore_snapshot(&bin, cluster, path, format).await?;
    let millis = started.elapsed().as_millis() as u64;
    let version = version_text(cluster.version_num());
    say(format!(
        "restored {} ({} format) into a throwaway PostgreSQL {version} cluster in {}",
        path.display(),
        format.name(),
        seconds(millis)
    ));
    let file = path.display().to_string();
    let source = Source {
        json: json!({ "snapshot": file, "format": format.name(), "restore_millis": millis, "server_version": version }),
        describe: Box::new(move |quote| {
            format!(
                "snapshot {} ({} format), restored in {} on PostgreSQL {version}",
                quote(&file),
                format.name(),
                seconds(millis)
            )
        }),
    };
    Ok((cluster.config(SideName::Parent, &db)?, source))
}

/// Restores the dump at `path` into `cluster`; returns the database it is in:
/// the one a `pg_dump --create` dump makes, else one named after the file.
pub(crate) async fn restore_snapshot(
    bin: &PgBin,
    cluster: &Throwaway,
    path: &Path,
    format: restore::Format,
) -> Result<String> {
    let creates = format == restore::Format::Plain && restore::creates_database(path)?;
    let (client, conn) = cluster.config(SideName::Parent, "postgres")?.connect().await?;
    let db = if creates {
        // `pg_dump --create`: the dump makes its database; we find out which.
        let before = databases(&client).await?;
        restore::restore(bin, cluster, "postgres", path, format).await?;
        let made: Vec<String> = databases(&client).await?.into_iter().filter(|d| !before.contains(d)).collect();
        match made.as_slice() {
            [db] => db.clone(),
            _ => bail!(
                "--snapshot {}: the dump created {} databases ({}); expected exactly one to branch",
                path.display(),
                made.len(),
                made.join(", ")
            ),
        }
    } else {
        let db = snapshot_db_name(path);
        client.batch_execute(&format!("CREATE DATABASE {}", branch::ident(&db))).await?;
        restore::restore(bin, cluster, &db, path, format).await?;
        db
    };
    drop(client);
    let _ = conn.await;
    Ok(db)
}

/// The branch: on a throwaway cluster the fastest copy the version has; on
/// someone's server, a file copy only for a large source (see [`Strategy::Auto`]).
async fn make_branch(parent: &ConnConfig, held: &mut Held) -> Result<Branch> {
    let (strategy, name) = match &held.cluster {
        Some(c) if c.version_num() >= 180000 => (Strategy::Clone, format!("{}_branch", parent.dbname())),
        Some(c) if c.version_num() >= 150000 => (Strategy::FileCopy, format!("{}_branch", parent.dbname())),
        Some(_) => (Strategy::Default, format!("{}_branch", parent.dbname())),
        None => (Strategy::Auto, branch::unique_name(parent.dbname())),
    };
    if held.cluster.is_none() {
        // Registered before it exists: a check stopped during the copy drops it too.
        let planned = Branch {
            config: parent.with_dbname(SideName::Child, &name),
            name: name.clone(),
            source: parent.dbname().to_string(),
            millis: 0,
            strategy,
            checkpoint: false,
        };
        held.server_branch = Some(planned);
    }
    let made = branch::create(parent, &name, strategy).await;
    if made.is_err() {
        // Never drop a database this run did not create (the name may have been taken).
        held.server_branch = None;
    }
    made
}

/// The last `ERROR:` of a server log written after byte `from`, with the
/// `DETAIL:`, `HINT:` and `STATEMENT:` lines (and their continuations) after it.
fn last_error(path: &Path, from: u64) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else { return Vec::new() };
    let text = String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    let body = |l: &str| {
        ["ERROR:", "DETAIL:", "HINT:", "STATEMENT:"].iter().find_map(|k| l.find(k).map(|i| l[i..].to_string()))
    };
    let Some(start) = lines.iter().rposition(|l| l.contains("ERROR:")) else { return Vec::new() };
    let mut out = Vec::new();
    for (i, l) in lines[start..].iter().enumerate() {
        match body(l) {
            Some(b) if i == 0 || !b.starts_with("ERROR:") => out.push(b),
            None if l.starts_with('\t') && !out.is_empty() => out.push(l.trim().to_string()),
            _ => break,
        }
    }
    out.truncate(12);
    out
}

/// The check's verdict when the migration did not apply: why it failed, and that the gate was not evaluated.
fn failed_verdict(report: &MigrationReport, gate: Option<&str>) -> Option<String> {
    let f = report.failure.as_ref();
    if report.succeeded() {
        return None;
    }
    let at = f.and_then(|f| f.location.as_deref()).map(|l| format!(" at {l}")).unwrap_or_default();
    let why = match f {
        Some(f) => format!("the migration failed{at}: {}", f.message),
        None => "the migration exceeded its budget".to_string(),
    };
    let gate = gate.map(|g| format!(" The gate (--fail-on {g}) was not evaluated.")).unwrap_or_default();
    Some(format!("Check FAILED: {why}.{gate}"))
}

fn preamble(
    source: &Source,
    child: &ConnConfig,
    made: Option<&Branch>,
    report: &MigrationReport,
    gate: Option<&str>,
) -> Preamble {
    let verdict = failed_verdict(report, gate);
    // `quote` marks names: plain quotes in text, code spans in Markdown (no escaping needed there).
    let branch_line = |quote: Quote| match made {
        Some(b) => format!(
            "{}, made in {} ({}{})",
            quote(&b.name),
            seconds(b.millis),
            b.strategy.name(),
            if b.checkpoint { ", which forced a checkpoint" } else { "" }
        ),
        None => format!("{} (given with --branch, left in place)", quote(&child.endpoint())),
    };
    let branch_json = match made {
        Some(b) => {
            json!({ "database": b.name, "endpoint": child.endpoint(), "created": true, "millis": b.millis, "strategy": b.strategy.name(), "checkpoint": b.checkpoint })
        }
        None => json!({ "database": child.dbname(), "endpoint": child.endpoint(), "created": false }),
    };
    let text_quote = |s: &str| format!("\"{s}\"");
    let md_quote = |s: &str| format!("`{}`", s.replace('`', "'"));
    let text_verdict = verdict.as_ref().map(|v| format!("{v}\n\n")).unwrap_or_default();
    let md_verdict = verdict.as_ref().map(|v| format!("**❌ {v}**\n\n")).unwrap_or_default();
    let mut json = json!({ "source": source.json, "branch": branch_json, "migration": report.json() });
    if let Some(v) = &verdict {
        json["verdict"] = json!({ "passed": false, "reason": v, "gate_evaluated": false });
    }
    Preamble {
        text: format!(
            "{text_verdict}Check: {}\n       branch {}\n\n{}\n\n",
            (source.describe)(&|s: &str| s.to_string()),
            branch_line(&text_quote),
            report.text().trim_end()
        ),
        markdown: format!(
            "### pgbranchdiff check\n\n{md_verdict}- Source: {}\n- Branch: {}\n\n{}\n\n",
            (source.describe)(&md_quote),
            branch_line(&md_quote),
            report.markdown().trim_end()
        ),
        json,
    }
}

/// The parent database's name in the throwaway cluster: the snapshot's file name without extensions.
pub(crate) fn snapshot_db_name(path: &Path) -> String {
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("snapshot");
    let stem = stem.split('.').next().unwrap_or(stem);
    let name: String = stem.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
    if name.is_empty() || name == "postgres" || name.starts_with("template") {
        "snapshot".into()
    } else {
        name.to_lowercase()
    }
}

/// `host=… port=… user=… dbname=…` for psql (never the password).
fn conninfo(c: &ConnConfig) -> String {
    let mut parts = Vec::new();
    for key in ["host", "port", "user", "dbname", "sslmode"] {
        if let Some(v) = c.param(key) {
            parts.push(format!("{key}={v}"));
        }
    }
    parts.join(" ")
}

fn version_text(num: u32) -> String {
    format!("{}.{}", num / 10000, num % 10000)
}

fn seconds(millis: u64) -> String {
    format!("{:.2} s", millis as f64 / 1000.0)
}

/// A server error's message and detail on one line.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
    .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_from_snapshot_files() {
        assert_eq!(snapshot_db_name(Path::new("dumps/prod_sanitized.dump")), "prod_sanitized");
        assert_eq!(snapshot_db_name(Path::new("Shop.sql.gz")), "shop");
        assert_eq!(snapshot_db_name(Path::new("postgres.sql")), "snapshot");
        assert_eq!(snapshot_db_name(Path::new("template1.dump")), "snapshot");
        assert_eq!(snapshot_db_name(Path::new("…")), "snapshot");
    }

    #[test]
    fn versions_print_as_major_minor() {
        assert_eq!(version_text(150018), "15.18");
        assert_eq!(version_text(180004), "18.4");
    }
}
