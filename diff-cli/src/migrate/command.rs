//! `--run COMMAND`: any migration tool, run with `sh -c` and an environment
//! pointing at the branch (`DATABASE_URL`, `PGHOST`, `PGPORT`, `PGDATABASE`,
//! `PGUSER`, `PGPASSWORD` when there is one, `PGOPTIONS` carrying the
//! timeouts), timed as a whole. Its output goes to stderr, so stdout stays the
//! report's. The lock sampler watches every backend that connects to the
//! branch while it runs.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use diff_core::ConnConfig;

use super::execute::fill_locks;
use super::locks::{Sampler, Watch, INTERVAL};
use super::report::{Failure, FailureKind, MigrationReport, StatementReport};
use super::{rewrites, MigrateOptions};

/// Kills the command's whole process group unless disarmed: whatever the
/// shell started goes too when the migration is abandoned or over budget.
struct Group(Option<i32>);

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Percent-encodes a URL component (a socket directory, a password).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path for a URL's query: `/` kept, anything outside the unreserved set encoded.
fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// libpq variables that would send a migration tool somewhere other than the branch.
const REDIRECTING: &[&str] = &[
    "PGHOSTADDR",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGPASSWORD",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLROOTCERT",
    "PGTARGETSESSIONATTRS",
    "PGOPTIONS",
];

/// The environment that points a migration tool at the branch.
pub(super) fn environment(branch: &ConnConfig, opts: &MigrateOptions) -> Vec<(String, String)> {
    let host = branch.param("host").or(branch.param("hostaddr")).unwrap_or("localhost").to_string();
    let port = branch.param("port").unwrap_or("5432").to_string();
    let user = branch.param("user").unwrap_or("postgres").to_string();
    let db = branch.dbname().to_string();
    let password = branch.param("password").filter(|p| !p.is_empty());
    let url = database_url(branch, password);
    let mut env = vec![
        ("DATABASE_URL".to_string(), url),
        ("PGHOST".into(), host),
        ("PGPORT".into(), port),
        ("PGDATABASE".into(), db),
        ("PGUSER".into(), user),
    ];
    if let Some(p) = password {
        env.push(("PGPASSWORD".into(), p.to_string()));
    }
    for (param, var) in [("hostaddr", "PGHOSTADDR"), ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT")] {
        if let Some(v) = branch.param(param) {
            env.push((var.into(), v.to_string()));
        }
    }
    let mut options: Vec<String> = std::env::var("PGOPTIONS").ok().into_iter().filter(|o| !o.is_empty()).collect();
    if let Some(t) = opts.lock_timeout {
        options.push(format!("-c lock_timeout={}ms", t.as_millis().max(1)));
    }
    if let Some(t) = opts.statement_timeout {
        options.push(format!("-c statement_timeout={}ms", t.as_millis().max(1)));
    }
    if !options.is_empty() {
        env.push(("PGOPTIONS".into(), options.join(" ")));
    }
    env
}

/// A `postgresql://` URL for `branch`, with `password` when given (for a
/// tool's environment; printed URLs leave it out).
pub(crate) fn database_url(branch: &ConnConfig, password: Option<&str>) -> String {
    let host = branch.param("host").or(branch.param("hostaddr")).unwrap_or("localhost").to_string();
    let port = branch.param("port").unwrap_or("5432").to_string();
    let user = branch.param("user").unwrap_or("postgres").to_string();
    let db = branch.dbname().to_string();
    let auth = match password {
        Some(p) => format!("{}:{}", encode(&user), encode(p)),
        None => encode(&user),
    };
    // A socket directory goes in libpq's `?host=` form, kept readable (`/` unencoded): a
    // percent-encoded host (`%2Ftmp%2F…`) breaks tools that pass the URL through configparser
    // interpolation (alembic's standard env.py), while libpq, SQLAlchemy, Django
    // (dj-database-url) and node-postgres (pg-connection-string) all read `?host=`.
    let mut query = Vec::new();
    let url_host = if host.starts_with('/') {
        query.push(format!("host={}", encode_path(&host)));
        query.push(format!("port={port}"));
        String::new()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if let Some(mode) = branch.param("sslmode") {
        query.push(format!("sslmode={}", encode(mode)));
    }
    let mut url = format!("postgresql://{auth}@{url_host}/{}", encode(&db));
    if !query.is_empty() {
        url += &format!("?{}", query.join("&"));
    }
    url
}

pub(super) async fn run(branch: &ConnConfig, command: &str, opts: &MigrateOptions) -> Result<MigrationReport> {
    let (client, _conn) = branch.connect().await?;
    // Sessions already on the branch are not the command's.
    let exclude: Vec<i32> = client
        .query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let before = rewrites::snapshot(&client).await?;
    let existing = super::execute::existing_relations(&client).await?;
    let started = Instant::now();
    let sampler = Sampler::start(branch, Watch::Database { exclude }, started).await?;
    sampler.set_statement(0);
    let mut cmd = tokio::process::Command::new("sh");
    // Inherited settings that could point the tool elsewhere go; the branch's own are set below.
    for var in REDIRECTING {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .arg("-c")
        .arg(command)
        .envs(environment(branch, opts))
        .stdin(Stdio::null())
        .stdout(if opts.redact_output { Stdio::piped() } else { std::io::stderr().into() })
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .context("cannot start sh to run the migration command")?;
    let mut group = Group(child.id().map(|p| p as i32));
    let tail = Arc::new(Mutex::new(Tail::default()));
    let scrub = opts.redact_output;
    let copier = child.stderr.take().map(|e| tokio::spawn(echo(e, Some(tail.clone()), scrub)));
    let out_copier = child.stdout.take().map(|o| tokio::spawn(echo(o, None, scrub)));
    let waited = match opts.max_duration {
        Some(budget) => tokio::time::timeout(budget, child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    let status = match waited {
        Some(status) => Some(status.context("waiting for the migration command")?),
        None => {
            sampler.cancel();
            group.kill();
            child.wait().await.context("waiting for the stopped migration command")?;
            None
        }
    };
    let total = started.elapsed();
    group.0 = None;
    // What is left in the pipes; a background process still holding one open is not waited for.
    for c in [copier, out_copier].into_iter().flatten() {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), c).await;
    }
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).lines();
    let samples = sampler.finish().await;
    let after = rewrites::snapshot(&client).await?;
    let mut statements = vec![StatementReport {
        location: "command".into(),
        text: command.to_string(),
        millis: total.as_millis() as u64,
        ok: status.is_some_and(|s| s.success()),
        applied: status.is_some_and(|s| s.success()),
        locks: Vec::new(),
        waits: Vec::new(),
        rewrites: rewrites::compare(&before, &after),
    }];
    fill_locks(&mut statements, &samples, &[None], &existing, false);
    let failure = match status {
        None => Some(failure(
            FailureKind::Budget,
            format!(
                "stopped after exceeding the budget of {}",
                super::render::duration(opts.max_duration.unwrap_or_default())
            ),
            None,
        )),
        Some(s) if s.success() => None,
        Some(s) => Some(match s.code() {
            Some(code) => {
                failure(FailureKind::CommandFailed, format!("the command exited with status {code}"), Some(code))
            }
            None => failure(FailureKind::CommandFailed, format!("the command was killed ({s})"), None),
        }),
    };
    let failure = failure.map(|f| Failure { stderr_tail: tail, ..f });
    Ok(MigrationReport {
        kind: "command",
        command: Some(command.to_string()),
        files_not_run: Vec::new(),
        locks: samples.sampled_summary("command", &existing),
        statements,
        over_budget: opts.max_duration.is_some_and(|b| total > b),
        failure,
        total_millis: total.as_millis() as u64,
        budget_millis: opts.max_duration.map(|d| d.as_millis() as u64),
        sample_interval_millis: INTERVAL.as_millis() as u64,
    })
}

/// Lines of a failed command's stderr shown in the report.
const TAIL_LINES: usize = 20;

/// The last [`TAIL_LINES`] lines seen.
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).trim_end_matches('\r').to_string();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > TAIL_LINES {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < 4096 {
                self.partial.push(b);
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lines.iter().cloned().collect();
        if !self.partial.is_empty() {
            out.push(String::from_utf8_lossy(&self.partial).to_string());
        }
        let skip = out.len().saturating_sub(TAIL_LINES);
        out.split_off(skip)
    }
}

/// Copies the command's output to our stderr as it comes, keeping the tail of
/// its stderr. With `scrub`, whole lines are echoed with their values hidden.
async fn echo<R: tokio::io::AsyncRead + Unpin>(mut from: R, tail: Option<Arc<Mutex<Tail>>>, scrub: bool) {
    use std::io::Write;
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 8192];
    let mut line = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(t) = &tail {
            t.lock().unwrap_or_else(|e| e.into_inner()).push(&buf[..n]);
        }
        if !scrub {
            let _ = std::io::stderr().write_all(&buf[..n]);
            continue;
        }
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' {
                let _ = std::io::stderr()
                    .write_all(super::report::scrub_free_text(&String::from_utf8_lossy(&line)).as_bytes());
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        let _ = std::io::stderr().write_all(super::report::scrub_free_text(&String::from_utf8_lossy(&line)).as_bytes());
    }
}

fn failure(kind: FailureKind, message: String, exit_code: Option<i32>) -> Failure {
    Failure {
        kind,
        location: Some("command".into()),
        sqlstate: None,
        message,
        detail: None,
        hint: None,
        exit_code,
        stderr_tail: Vec::new(),
        server_log: Vec::new(),
        explanation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diff_core::SideName;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let mut t = Tail::default();
        for i in 0..30 {
            t.push(format!("line {i}\n").as_bytes());
        }
        t.push(b"last, no newline");
        let lines = t.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.first().map(String::as_str), Some("line 11"));
        assert_eq!(lines.last().map(String::as_str), Some("last, no newline"));
    }

    #[test]
    fn socket_hosts_and_passwords_are_percent_encoded() {
        let c = ConnConfig::parse(SideName::Child, "host='/tmp/pg dir' port=5433 user=app password=p@ss/w dbname=b_1")
            .unwrap();
        let env: std::collections::HashMap<_, _> = environment(&c, &MigrateOptions::default()).into_iter().collect();
        assert_eq!(env["DATABASE_URL"], "postgresql://app:p%40ss%2Fw@/b_1?host=/tmp/pg%20dir&port=5433");
        assert_eq!(env["PGHOST"], "/tmp/pg dir");
        assert_eq!(env["PGPASSWORD"], "p@ss/w");
        let c = ConnConfig::parse(SideName::Child, "host=/tmp/pgbd.x1 port=5432 user=postgres dbname=db").unwrap();
        let env: std::collections::HashMap<_, _> = environment(&c, &MigrateOptions::default()).into_iter().collect();
        // Nothing for configparser to interpolate.
        assert_eq!(env["DATABASE_URL"], "postgresql://postgres@/db?host=/tmp/pgbd.x1&port=5432");
        let c =
            ConnConfig::parse(SideName::Child, "host=db.example port=6432 user=u dbname=d sslmode=require").unwrap();
        let env: std::collections::HashMap<_, _> = environment(&c, &MigrateOptions::default()).into_iter().collect();
        assert_eq!(env["DATABASE_URL"], "postgresql://u@db.example:6432/d?sslmode=require");
    }
}
