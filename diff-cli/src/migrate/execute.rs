//! SQL steps executed one by one on one connection, like
//! `psql -v ON_ERROR_STOP=1`: transaction statements run as written, the first
//! error stops the migration. Each statement is timed, watched by the lock
//! sampler and followed by a check of table files (rewrites).

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use diff_core::ConnConfig;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::locks::{Sampler, Samples, Watch, BETWEEN, INTERVAL};
use super::report::{Failure, FailureKind, LockHeld, LockWait, MigrationReport, StatementReport};
use super::rewrites;
use super::source::{Step, StepKind};
use super::{explain, MigrateOptions};

/// A statement that ran: what happened to it.
enum Outcome {
    Done,
    Failed(tokio_postgres::error::DbError),
    /// Stopped at the budget; the error the cancelled statement returned, if any.
    Budget(Option<tokio_postgres::error::DbError>),
}

/// The one-line form of a statement, for reports.
pub(super) fn shorten(sql: &str, max: usize) -> String {
    let body: String =
        super::split::tokens(sql).first().map(|(_, r)| sql[r.start..].to_string()).unwrap_or_else(|| sql.to_string());
    let one = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        return one;
    }
    let cut: String = one.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub(super) async fn run(branch: &ConnConfig, steps: Vec<Step>, opts: &MigrateOptions) -> Result<MigrationReport> {
    let (client, _conn) = branch.connect().await?;
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    configure(&client, opts).await.with_context(|| format!("cannot configure the session on {}", branch.endpoint()))?;
    let files = rewrites::snapshot(&client).await?;
    let started = Instant::now();
    let sampler = Sampler::start(branch, Watch::Backend(pid), started).await?;
    let mut run = Run {
        client: &client,
        pid,
        sampler: &sampler,
        budget: opts.max_duration,
        spent: Duration::ZERO,
        files,
        in_block: false,
        blocks: Vec::new(),
        block_seq: 0,
    };
    let mut statements = Vec::new();
    let mut failure = None;
    let mut failed_sql = None;
    for step in &steps {
        let sql = match &step.kind {
            StepKind::Echo(text) => {
                eprintln!("{text}");
                continue;
            }
            StepKind::Sql(sql) | StepKind::Copy { sql, .. } => sql,
        };
        let (report, outcome) = run.statement(statements.len(), step, sql).await?;
        statements.push(report);
        match outcome {
            Outcome::Done => {}
            Outcome::Failed(e) => {
                failure = Some(failure_of(&e, &step.location, FailureKind::Error));
                failed_sql = Some((sql.clone(), e));
                break;
            }
            Outcome::Budget(e) => {
                failure = Some(budget_failure(e.as_ref(), &step.location, opts.max_duration.unwrap_or_default()));
                break;
            }
        }
    }
    // The statements' own time: the tracing between them is not the migration's.
    let (total, blocks, in_block) = (run.spent, std::mem::take(&mut run.blocks), run.in_block);
    drop(run);
    if in_block {
        // A block left open by the failure: its locks go now, before the explanation reads the tables.
        let _ = client.batch_execute("ROLLBACK").await;
        if failure.is_none() {
            // psql would end the same way, silently: a check must not call it applied.
            failure = Some(Failure {
                kind: FailureKind::OpenTransaction,
                location: statements.last().map(|s: &StatementReport| s.location.clone()),
                sqlstate: None,
                message: "the migration ended inside a transaction block (BEGIN without COMMIT): \
                          everything since BEGIN was rolled back"
                    .into(),
                detail: None,
                hint: Some("end the file with COMMIT".into()),
                exit_code: None,
                explanation: None,
            });
        }
    }
    let samples = sampler.finish().await;
    drop(client);
    fill_locks(&mut statements, &samples);
    if let (Some(f), Some((sql, e))) = (failure.as_mut(), failed_sql) {
        f.explanation = explain::explain(branch, &sql, &e, statements.last()).await;
    }
    let mut locks = samples.summary(&statements.iter().map(|s| s.location.clone()).collect::<Vec<_>>());
    for l in &mut locks {
        l.access_exclusive_millis = access_exclusive_millis(&statements, &blocks, &l.relation);
    }
    Ok(MigrationReport {
        kind: "files",
        command: None,
        locks,
        statements,
        over_budget: failure.as_ref().is_some_and(|f| f.kind == FailureKind::Budget)
            || opts.max_duration.is_some_and(|b| total > b),
        failure,
        total_millis: millis(total),
        budget_millis: opts.max_duration.map(millis),
        sample_interval_millis: millis(INTERVAL),
    })
}

async fn configure(client: &Client, opts: &MigrateOptions) -> Result<()> {
    let mut sql = String::from("SET application_name = 'pgbranchdiff migration';");
    if let Some(t) = opts.lock_timeout {
        sql += &format!("SET lock_timeout = '{}ms';", t.as_millis().max(1));
    }
    if let Some(t) = opts.statement_timeout {
        sql += &format!("SET statement_timeout = '{}ms';", t.as_millis().max(1));
    }
    client.batch_execute(&sql).await?;
    Ok(())
}

/// The migration's session while it runs.
struct Run<'a> {
    client: &'a Client,
    pid: i32,
    sampler: &'a Sampler,
    /// `--max-duration`, spent by the statements' own time.
    budget: Option<Duration>,
    spent: Duration,
    /// Table files after the last statement.
    files: rewrites::Files,
    /// Inside a transaction block the migration opened.
    in_block: bool,
    /// Per statement: the transaction block it ran in (numbered), if any.
    blocks: Vec<Option<usize>>,
    block_seq: usize,
}

impl Run<'_> {
    /// Runs statement `i`. Outside a transaction block, a single statement runs
    /// in one of its own (as autocommit would) so that its locks, still held
    /// after it, are read for certain before COMMIT; one that cannot run in a
    /// transaction block (CREATE INDEX CONCURRENTLY, VACUUM…) runs again bare.
    async fn statement(&mut self, i: usize, step: &Step, sql: &str) -> Result<(StatementReport, Outcome)> {
        let traced = !is_dml(sql);
        let mut wrap = traced && !self.in_block && wrappable(sql);
        if wrap {
            self.client.batch_execute("BEGIN").await.context("BEGIN")?;
        }
        self.sampler.set_statement(i);
        let t0 = Instant::now();
        let deadline = self.budget.map(|b| tokio::time::Instant::now() + b.saturating_sub(self.spent));
        let mut outcome = run_step(self.client, step, deadline, self.sampler).await?;
        let mut took = t0.elapsed();
        if wrap && matches!(&outcome, Outcome::Failed(e) if e.code().code() == "25001") {
            self.client.batch_execute("ROLLBACK").await.context("ROLLBACK")?;
            wrap = false;
            let t0 = Instant::now();
            outcome = run_step(self.client, step, deadline, self.sampler).await?;
            took = t0.elapsed();
        }
        let mut report = StatementReport {
            location: step.location.clone(),
            text: shorten(sql, 120),
            millis: 0,
            ok: false,
            locks: Vec::new(),
            waits: Vec::new(),
            rewrites: Vec::new(),
        };
        if matches!(outcome, Outcome::Done) {
            if traced && (wrap || checks_after(sql)) {
                self.sampler.record_held(self.client, self.pid, i).await.context("reading the migration's locks")?;
                let now = rewrites::snapshot(self.client).await.context("reading table files")?;
                report.rewrites = rewrites::compare(&self.files, &now);
                self.files = now;
            }
            if wrap {
                let t1 = Instant::now();
                if let Err(e) = self.client.batch_execute("COMMIT").await {
                    let db =
                        e.as_db_error().cloned().ok_or_else(|| anyhow!("{}: COMMIT failed: {e}", step.location))?;
                    outcome = Outcome::Failed(db);
                }
                took += t1.elapsed();
            }
        } else if wrap {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        self.sampler.set_statement(BETWEEN);
        report.millis = millis(took);
        self.spent += took;
        report.ok = matches!(outcome, Outcome::Done);
        let before = self.in_block;
        if report.ok {
            self.in_block = in_block_after(sql, self.in_block);
        }
        if !before && self.in_block {
            self.block_seq += 1;
        }
        self.blocks.push((before || self.in_block).then_some(self.block_seq));
        Ok((report, outcome))
    }
}

/// How long ACCESS EXCLUSIVE on `relation` was held, from the statements'
/// times: a statement seen holding it held it while it ran (less what it spent
/// waiting for it); inside a transaction block the lock stays until the block
/// ends, so every later statement of the block, COMMIT included, counts too.
fn access_exclusive_millis(statements: &[StatementReport], blocks: &[Option<usize>], relation: &str) -> u64 {
    let mut total = 0;
    let mut held_in: Option<usize> = None;
    for (i, s) in statements.iter().enumerate() {
        let block = blocks.get(i).copied().flatten();
        if held_in.is_some() && held_in != block {
            held_in = None;
        }
        let seen = s.locks.iter().any(|l| l.relation == relation && l.mode == "AccessExclusiveLock");
        if held_in.is_some() {
            total += s.millis;
        } else if seen {
            let waited: u64 =
                s.waits.iter().filter(|w| w.relation.as_deref() == Some(relation)).map(|w| w.millis).sum();
            total += s.millis.saturating_sub(waited);
            held_in = block;
        }
    }
    total
}

/// Row writes: they take no locks beyond ROW EXCLUSIVE and rewrite nothing,
/// so they are neither wrapped nor checked after (a seed file of thousands of
/// INSERTs runs at full speed); the sampler still sees long ones. SELECT is
/// traced: it can call functions that change the schema.
fn is_dml(sql: &str) -> bool {
    let subs = sub_statements(sql);
    !subs.is_empty()
        && subs
            .iter()
            .all(|w| matches!(w.first().map(String::as_str), Some("insert" | "update" | "delete" | "merge" | "copy")))
}

/// The top-level statements of a text (more than one when joined with `\;`), as their words.
fn sub_statements(sql: &str) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for (t, _) in super::split::tokens(sql) {
        match t {
            super::split::Tok::Punct(b';') => out.push(Vec::new()),
            super::split::Tok::Word(w) => out.last_mut().map(|v| v.push(w)).unwrap_or(()),
            _ => {}
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Whether a transaction block is open after `sql` succeeded.
fn in_block_after(sql: &str, mut in_block: bool) -> bool {
    for words in sub_statements(sql) {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let chain = w.contains(&"chain") && !w.contains(&"no");
        in_block = match w.as_slice() {
            ["begin", ..] | ["start", "transaction", ..] => true,
            ["rollback" | "abort", rest @ ..] if rest.iter().take(2).any(|x| *x == "to") => in_block,
            ["commit" | "rollback", "prepared", ..] => in_block,
            ["commit" | "end" | "rollback" | "abort", ..] => chain,
            ["prepare", "transaction", ..] => false,
            _ => in_block,
        };
    }
    in_block
}

/// A single statement that may run inside a transaction block of its own.
/// Not transaction control or session settings, not CALL or DO, whose code
/// may COMMIT, and not LOCK or DECLARE, which psql would refuse outside a block.
fn wrappable(sql: &str) -> bool {
    let subs = sub_statements(sql);
    let [words] = subs.as_slice() else { return false };
    !matches!(
        words.first().map(String::as_str),
        None | Some(
            "begin"
                | "start"
                | "commit"
                | "end"
                | "rollback"
                | "abort"
                | "prepare"
                | "savepoint"
                | "release"
                | "set"
                | "reset"
                | "show"
                | "call"
                | "do"
                | "vacuum"
                | "discard"
                | "checkpoint"
                | "lock"
                | "declare"
        )
    )
}

/// Statements after which the session's locks and table files are read on the
/// migration's own connection. Not after those that open a transaction or
/// configure it: `SET TRANSACTION` must come before any query.
fn checks_after(sql: &str) -> bool {
    let words = super::split::words(sql);
    !matches!(
        words.first().map(String::as_str),
        Some(
            "begin"
                | "start"
                | "set"
                | "savepoint"
                | "release"
                | "commit"
                | "end"
                | "rollback"
                | "abort"
                | "reset"
                | "show"
        )
    )
}

/// Runs one statement, within the budget when there is one.
async fn run_step(
    client: &Client,
    step: &Step,
    deadline: Option<tokio::time::Instant>,
    sampler: &Sampler,
) -> Result<Outcome> {
    let work = send(client, &step.kind);
    tokio::pin!(work);
    let result = match deadline {
        None => work.await,
        Some(at) => match tokio::time::timeout_at(at, &mut work).await {
            Ok(r) => r,
            Err(_) => {
                sampler.cancel();
                let r = tokio::time::timeout(Duration::from_secs(30), &mut work)
                    .await
                    .map_err(|_| anyhow!("{}: the statement did not stop when cancelled", step.location))?;
                return Ok(Outcome::Budget(r.err().and_then(|e| e.as_db_error().cloned())));
            }
        },
    };
    match result {
        Ok(()) => Ok(Outcome::Done),
        Err(e) => match e.as_db_error() {
            Some(db) => Ok(Outcome::Failed(db.clone())),
            None => Err(anyhow!("{}: lost the connection to the branch: {e}", step.location)),
        },
    }
}

async fn send(client: &Client, kind: &StepKind) -> Result<(), tokio_postgres::Error> {
    match kind {
        StepKind::Sql(sql) => client.batch_execute(sql).await,
        StepKind::Copy { sql, data } => {
            let sink = client.copy_in::<_, std::io::Cursor<Vec<u8>>>(sql.as_str()).await?;
            futures_util::pin_mut!(sink);
            sink.send(std::io::Cursor::new(data.clone().into_bytes())).await?;
            sink.finish().await.map(drop)
        }
        StepKind::Echo(_) => Ok(()),
    }
}

/// The failure a server error stands for.
pub(super) fn failure_of(e: &tokio_postgres::error::DbError, location: &str, default: FailureKind) -> Failure {
    let code = e.code().code();
    let kind = match code {
        "55P03" => FailureKind::LockTimeout,
        "57014" if e.message().contains("statement timeout") => FailureKind::StatementTimeout,
        _ => default,
    };
    Failure {
        kind,
        location: Some(location.to_string()),
        sqlstate: Some(code.to_string()),
        message: e.message().to_string(),
        detail: e.detail().map(str::to_string),
        hint: e.hint().map(str::to_string),
        exit_code: None,
        explanation: None,
    }
}

/// The migration stopped at its budget; `e` is what the cancelled statement returned.
fn budget_failure(e: Option<&tokio_postgres::error::DbError>, location: &str, budget: Duration) -> Failure {
    let message = format!("stopped after exceeding the budget of {}", super::render::duration(budget));
    Failure {
        kind: FailureKind::Budget,
        location: Some(location.to_string()),
        sqlstate: e.map(|e| e.code().code().to_string()),
        message,
        detail: None,
        hint: None,
        exit_code: None,
        explanation: None,
    }
}

/// Puts what the sampler saw on each statement.
pub(super) fn fill_locks(statements: &mut [StatementReport], samples: &Samples) {
    for (i, s) in statements.iter_mut().enumerate() {
        // A hold counts one sampling interval past its last sighting: never longer than the statement.
        s.locks = samples.held(i).into_iter().map(|l| LockHeld { millis: l.millis.min(s.millis), ..l }).collect();
        s.waits = samples.waits(i).into_iter().map(|w| LockWait { millis: w.millis.min(s.millis), ..w }).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_shortened_to_one_line_without_leading_comments() {
        assert_eq!(shorten("-- why\n  ALTER TABLE t\n    ADD x int", 100), "ALTER TABLE t ADD x int");
        assert_eq!(shorten("SELECT 123456789", 10), "SELECT 12…");
    }

    fn stmt(millis: u64, ael: bool) -> StatementReport {
        let locks = if ael {
            vec![LockHeld {
                relation: "public.t".into(),
                relkind: "table".into(),
                mode: "AccessExclusiveLock".into(),
                millis,
            }]
        } else {
            Vec::new()
        };
        StatementReport {
            location: String::new(),
            text: String::new(),
            millis,
            ok: true,
            locks,
            waits: Vec::new(),
            rewrites: Vec::new(),
        }
    }

    #[test]
    fn access_exclusive_lasts_to_the_end_of_its_block() {
        // BEGIN (1) · ALTER (10, takes it) · UPDATE (100, not seen) · COMMIT (5) · SELECT (1000, autocommit).
        let statements = [stmt(1, false), stmt(10, true), stmt(100, false), stmt(5, false), stmt(1000, false)];
        let blocks = [Some(1), Some(1), Some(1), Some(1), None];
        assert_eq!(access_exclusive_millis(&statements, &blocks, "public.t"), 115);
        assert_eq!(access_exclusive_millis(&statements, &blocks, "public.other"), 0);
        // Autocommit: only while the statements that took it ran.
        let statements = [stmt(10, true), stmt(100, false), stmt(7, true)];
        assert_eq!(access_exclusive_millis(&statements, &[None, None, None], "public.t"), 17);
    }

    #[test]
    fn row_statements_are_not_traced() {
        assert!(is_dml("INSERT INTO t VALUES (1)"));
        assert!(!is_dml("SELECT create_hypertable('t', 'at')"));
        assert!(is_dml("COPY t FROM stdin"));
        assert!(!is_dml("ALTER TABLE t ADD x int"));
        assert!(!is_dml("INSERT INTO t VALUES (1) ; ALTER TABLE t ADD x int"));
    }

    #[test]
    fn transaction_blocks_are_tracked() {
        assert!(in_block_after("BEGIN", false));
        assert!(in_block_after("start transaction isolation level serializable", false));
        assert!(in_block_after("ROLLBACK TO SAVEPOINT a", true));
        assert!(in_block_after("rollback work to a", true));
        assert!(!in_block_after("COMMIT", true));
        assert!(in_block_after("COMMIT AND CHAIN", true));
        assert!(!in_block_after("commit and no chain", true));
        assert!(!in_block_after("END", true));
        assert!(!in_block_after("PREPARE TRANSACTION 'x'", true));
        assert!(in_block_after("BEGIN ; UPDATE t SET a = 1", false));
        assert!(!in_block_after("BEGIN ; UPDATE t SET a = 1 ; COMMIT", false));
        assert!(!in_block_after("UPDATE t SET a = 1", false));
    }

    #[test]
    fn single_statements_are_wrapped_but_not_transaction_control() {
        assert!(wrappable("ALTER TABLE t ADD x int"));
        assert!(wrappable("CREATE INDEX CONCURRENTLY i ON t (x)"), "retried bare when refused");
        for no in [
            "BEGIN",
            "COMMIT",
            "SET lock_timeout = 1",
            "CALL p()",
            "DO $$ BEGIN COMMIT; END $$",
            "VACUUM t",
            "SELECT 1 ; SELECT 2",
        ] {
            assert!(!wrappable(no), "{no}");
        }
    }

    #[test]
    fn no_checks_inside_transaction_setup() {
        assert!(!checks_after("BEGIN"));
        assert!(!checks_after("set transaction isolation level serializable"));
        assert!(checks_after("ALTER TABLE t ADD x int"));
    }
}
