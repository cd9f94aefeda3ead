//! SQL steps executed one by one on one connection, like
//! `psql -v ON_ERROR_STOP=1`: transaction statements run as written, the first
//! error stops the migration. Each statement is timed, watched by the lock
//! sampler and followed by a check of table files (rewrites).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use diff_core::ConnConfig;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::locks::{marker, Sampler, Samples, Watch, BETWEEN, INTERVAL};
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
    let existing = existing_relations(&client).await?;
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
    let mut stopped_at = None;
    for (k, step) in steps.iter().enumerate() {
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
            // A file that ends inside a transaction block fails there: the next file's
            // COMMIT must not commit it (psql would end each file's session, rolling it back).
            Outcome::Done if run.in_block && last_of_file(&steps, k) => {
                failure = Some(open_transaction(&step.location));
                stopped_at = Some(k);
                break;
            }
            Outcome::Done => {}
            Outcome::Failed(e) => {
                failure = Some(failure_of(&e, &step.location, FailureKind::Error));
                failed_sql = Some((sql.clone(), e));
                stopped_at = Some(k);
                break;
            }
            Outcome::Budget(e) => {
                failure = Some(budget_failure(e.as_ref(), &step.location, opts.max_duration.unwrap_or_default()));
                stopped_at = Some(k);
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
            let at = statements.last().map(|s: &StatementReport| s.location.clone()).unwrap_or_default();
            failure = Some(open_transaction(&at));
        }
    }
    let samples = sampler.finish().await;
    drop(client);
    fill_locks(&mut statements, &samples, &blocks, &existing, true);
    mark_applied(&mut statements, &blocks, in_block);
    if let (Some(f), Some((sql, e))) = (failure.as_mut(), failed_sql) {
        f.explanation = explain::explain(branch, &sql, &e, statements.last()).await;
    }
    let locks = super::locks::summary(&statements, &blocks);
    Ok(MigrationReport {
        kind: "files",
        command: None,
        files_not_run: stopped_at.map(|k| files_after(&steps, k)).unwrap_or_default(),
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

/// Sets `applied`: a statement that succeeded outside a transaction block was
/// committed; inside one, only if its block ended with a statement that
/// succeeded and was not ROLLBACK (a failure, or the end of the files, inside
/// the block rolls it back). `open_at_end`: the files ended inside a block.
fn mark_applied(statements: &mut [StatementReport], blocks: &[Option<usize>], open_at_end: bool) {
    let n = statements.len();
    let committed = |b: usize| {
        let Some(last) = (0..n).rev().find(|&j| blocks.get(j).copied().flatten() == Some(b)) else { return false };
        let first = statements[last].text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        statements[last].ok && !(open_at_end && last == n - 1) && !matches!(first.as_str(), "rollback" | "abort")
    };
    let applied: Vec<bool> =
        (0..n).map(|i| statements[i].ok && blocks.get(i).copied().flatten().is_none_or(committed)).collect();
    for (s, a) in statements.iter_mut().zip(applied) {
        s.applied = a;
    }
}

/// The files of the steps after step `k` that never ran (not `k`'s own file).
fn files_after(steps: &[Step], k: usize) -> Vec<String> {
    let file = |s: &Step| s.location.rsplit_once(':').map_or(s.location.clone(), |(f, _)| f.to_string());
    let stopped = steps.get(k).map(file);
    let mut out: Vec<String> = Vec::new();
    for f in steps.iter().skip(k + 1).map(file) {
        if Some(&f) != stopped.as_ref() && !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// The relations there are before the migration: a lock on any other blocks nobody.
pub(super) async fn existing_relations(client: &Client) -> Result<BTreeSet<u32>> {
    Ok(client.query("SELECT oid FROM pg_class", &[]).await?.iter().map(|r| r.get(0)).collect())
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
        let mut outcome = run_step(self.client, step, i, deadline, self.sampler).await?;
        let mut took = t0.elapsed();
        if wrap && matches!(&outcome, Outcome::Failed(e) if e.code().code() == "25001") {
            self.client.batch_execute("ROLLBACK").await.context("ROLLBACK")?;
            wrap = false;
            let t0 = Instant::now();
            outcome = run_step(self.client, step, i, deadline, self.sampler).await?;
            took = t0.elapsed();
        }
        let mut report = StatementReport {
            location: step.location.clone(),
            text: shorten(sql, 120),
            millis: 0,
            ok: false,
            applied: false,
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

/// Whether `sql` has a `COPY … TO STDOUT`.
fn copies_out(sql: &str) -> bool {
    copies(sql, "to", "stdout")
}

/// Whether `sql` has a `COPY … FROM STDIN` (one with its rows after it is a step of its own).
fn copies_in(sql: &str) -> bool {
    copies(sql, "from", "stdin")
}

fn copies(sql: &str, direction: &str, stream: &str) -> bool {
    sub_statements(sql)
        .iter()
        .any(|w| w.first().is_some_and(|f| f == "copy") && w.windows(2).any(|p| p[0] == direction && p[1] == stream))
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
    i: usize,
    deadline: Option<tokio::time::Instant>,
    sampler: &Sampler,
) -> Result<Outcome> {
    if let StepKind::Sql(sql) = &step.kind {
        // The server would stream rows the connection has no reader for, or wait for rows it is
        // never sent, and the session breaks.
        if copies_out(sql) {
            bail!(
                "{}: COPY … TO STDOUT is not run here (its rows have nowhere to go); SELECT them instead",
                step.location
            );
        }
        if copies_in(sql) {
            bail!(
                "{}: COPY … FROM STDIN needs its rows on the lines after the statement, ended by \\. (as psql reads them)",
                step.location
            );
        }
    }
    let mark = marker(i);
    let work = send(client, &step.kind, &mark);
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

/// Sends a statement with its `mark` in front (it names the statement in `pg_stat_activity`).
async fn send(client: &Client, kind: &StepKind, mark: &str) -> Result<(), tokio_postgres::Error> {
    match kind {
        StepKind::Sql(sql) => client.batch_execute(&format!("{mark}{sql}")).await,
        StepKind::Copy { sql, data } => {
            let sink = client.copy_in::<_, std::io::Cursor<Vec<u8>>>(format!("{mark}{sql}").as_str()).await?;
            futures_util::pin_mut!(sink);
            sink.send(std::io::Cursor::new(data.clone().into_bytes())).await?;
            sink.finish().await.map(drop)
        }
        StepKind::Echo(_) => Ok(()),
    }
}

/// Whether step `k` is the last SQL statement of its file.
fn last_of_file(steps: &[Step], k: usize) -> bool {
    let file = |s: &Step| s.location.rsplit_once(':').map_or(s.location.clone(), |(f, _)| f.to_string());
    let here = file(&steps[k]);
    steps[k + 1..].iter().find(|s| !matches!(s.kind, StepKind::Echo(_))).is_none_or(|next| file(next) != here)
}

/// A file (or the migration) ended inside a transaction block.
fn open_transaction(location: &str) -> Failure {
    let file = location.rsplit_once(':').map_or(location, |(f, _)| f);
    Failure {
        kind: FailureKind::OpenTransaction,
        location: Some(location.to_string()),
        sqlstate: None,
        message: format!(
            "{file} ended inside a transaction block (BEGIN without COMMIT): everything since BEGIN was rolled back"
        ),
        detail: None,
        hint: Some("end the file with COMMIT".into()),
        exit_code: None,
        stderr_tail: Vec::new(),
        server_log: Vec::new(),
        explanation: None,
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
        stderr_tail: Vec::new(),
        server_log: Vec::new(),
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
        stderr_tail: Vec::new(),
        server_log: Vec::new(),
        explanation: None,
    }
}

/// Puts what the sampler saw on each statement. Inside a transaction block,
/// a lock an earlier statement of the block took is still held: it is that
/// statement's, not a later one's. With `exact`, a lock is held from the
/// statement's start (less its wait on the relation) to its end, or inside a
/// block to the block's end (locks are kept to the end of the transaction);
/// otherwise (a command) for the time it was seen. `existing`: relation oids from before the migration.
pub(super) fn fill_locks(
    statements: &mut [StatementReport],
    samples: &Samples,
    blocks: &[Option<usize>],
    existing: &BTreeSet<u32>,
    exact: bool,
) {
    // Inside a block a lock is held to the block's end: this statement's time and every later one's in it.
    let until_block_end: Vec<u64> = (0..statements.len())
        .map(|i| match blocks.get(i).copied().flatten() {
            None => statements[i].millis,
            Some(b) => (i..statements.len())
                .take_while(|&j| blocks.get(j).copied().flatten() == Some(b))
                .map(|j| statements[j].millis)
                .sum(),
        })
        .collect();
    let mut inherited: BTreeSet<(String, String)> = BTreeSet::new();
    let mut previous = None;
    for (i, s) in statements.iter_mut().enumerate() {
        let block = blocks.get(i).copied().flatten();
        if block.is_none() || block != previous {
            inherited.clear();
        }
        previous = block;
        s.waits = samples.waits(i).into_iter().map(|w| LockWait { millis: w.millis.min(s.millis), ..w }).collect();
        let mut locks = Vec::new();
        for h in samples.held(i) {
            let key = (h.lock.relation.clone(), h.lock.mode.clone());
            if inherited.contains(&key) {
                continue;
            }
            if block.is_some() {
                inherited.insert(key);
            }
            let waited: u64 =
                s.waits.iter().filter(|w| w.relation.as_deref() == Some(&h.lock.relation)).map(|w| w.millis).sum();
            let millis = if exact { until_block_end[i].saturating_sub(waited) } else { h.lock.millis.min(s.millis) };
            let created = !h.oid.is_some_and(|o| existing.contains(&o));
            locks.push(LockHeld { millis, created, ..h.lock });
        }
        s.locks = locks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_to_stdout_is_told_from_other_copies() {
        assert!(copies_out("COPY t TO STDOUT"));
        assert!(copies_out("copy (select 1) to stdout with (format csv)"));
        assert!(copies_out("SELECT 1 \\; COPY t TO STDOUT"));
        assert!(!copies_out("COPY t FROM STDIN"));
        assert!(copies_in("COPY t FROM STDIN") && copies_in("select 1 \\; copy t (a) from stdin with csv"));
        assert!(!copies_in("COPY t FROM '/tmp/x'"));
        assert!(!copies_out("COPY t TO '/tmp/x'"));
        assert!(!copies_out("SELECT 'copy t to stdout'"));
    }

    #[test]
    fn statements_shortened_to_one_line_without_leading_comments() {
        assert_eq!(shorten("-- why\n  ALTER TABLE t\n    ADD x int", 100), "ALTER TABLE t ADD x int");
        assert_eq!(shorten("SELECT 123456789", 10), "SELECT 12…");
    }

    fn stmt(location: &str, millis: u64, mode: Option<&str>) -> StatementReport {
        let locks = mode
            .map(|m| {
                vec![LockHeld {
                    relation: "public.t".into(),
                    relkind: "table".into(),
                    mode: m.into(),
                    millis,
                    created: false,
                }]
            })
            .unwrap_or_default();
        StatementReport {
            location: location.into(),
            text: String::new(),
            millis,
            ok: true,
            applied: true,
            locks,
            waits: Vec::new(),
            rewrites: Vec::new(),
        }
    }

    #[test]
    fn a_lock_lasts_to_the_end_of_its_block() {
        let ael = Some("AccessExclusiveLock");
        // BEGIN (1) · ALTER (10, takes it) · UPDATE (100) · COMMIT (5) · SELECT (1000, autocommit).
        let statements =
            [stmt("b", 1, None), stmt("a", 10, ael), stmt("u", 100, None), stmt("c", 5, None), stmt("s", 1000, None)];
        let blocks = [Some(1), Some(1), Some(1), Some(1), None];
        let s = super::super::locks::summary(&statements, &blocks);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].reads_and_writes_blocked_millis, s[0].writes_blocked_millis), (115, 115));
        assert_eq!(s[0].held_by.iter().map(|h| h.location.as_str()).collect::<Vec<_>>(), ["a"]);
        // Autocommit: only while the statements that took it ran; SHARE blocks writes only,
        // SHARE UPDATE EXCLUSIVE neither; a 0 ms hold is still named.
        let statements = [
            stmt("a", 10, ael),
            stmt("i", 100, Some("ShareLock")),
            stmt("v", 50, Some("ShareUpdateExclusiveLock")),
            stmt("z", 0, ael),
        ];
        let s = super::super::locks::summary(&statements, &[None, None, None, None]);
        assert_eq!((s[0].reads_and_writes_blocked_millis, s[0].writes_blocked_millis), (10, 110));
        let held: Vec<_> = s[0].held_by.iter().map(|h| (h.location.as_str(), h.mode.as_str())).collect();
        assert_eq!(held, [("a", "AccessExclusiveLock"), ("z", "AccessExclusiveLock"), ("i", "ShareLock")]);
        assert_eq!(s[0].statements, ["a", "i", "v", "z"]);
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
