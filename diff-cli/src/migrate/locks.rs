//! The lock sampler: a second connection polls `pg_locks` (joined to
//! `pg_class`) for the migration's backends every few milliseconds, records
//! the locks they hold and wait for (with the sessions blocking them), and
//! attributes each observation to the statement running at the time. Locks
//! held for less than one interval can go unseen; a statement inside an
//! explicit transaction is also checked right after it ends (its locks are
//! still held then), which makes those observations certain.
//!
//! If the migration is abandoned (its future dropped), the sampler cancels
//! the watched backends' running statements before it exits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use diff_core::ConnConfig;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::report::{Blocker, LockHeld, LockSummary, LockWait};

/// How often `pg_locks` is read.
pub(super) const INTERVAL: Duration = Duration::from_millis(15);

/// No statement is running.
pub(super) const BETWEEN: usize = usize::MAX;

/// Which backends are the migration.
#[derive(Debug, Clone)]
pub(super) enum Watch {
    /// The one connection running the statements.
    Backend(i32),
    /// Every backend connected to the branch database except the sampler and these.
    Database { exclude: Vec<i32> },
}

/// One lock seen at one time.
#[derive(Debug, Clone)]
pub(super) struct Obs {
    pub at: Duration,
    pub stmt: usize,
    pub locktype: String,
    pub relation: Option<String>,
    pub relkind: String,
    pub mode: String,
    pub granted: bool,
    pub blockers: Vec<i32>,
}

#[derive(Default)]
struct Shared {
    obs: Vec<Obs>,
    blockers: HashMap<i32, Blocker>,
}

enum Cmd {
    Cancel,
    Stop,
}

pub(super) struct Sampler {
    cmd: mpsc::UnboundedSender<Cmd>,
    task: tokio::task::JoinHandle<()>,
    current: Arc<AtomicUsize>,
    shared: Arc<Mutex<Shared>>,
    started: Instant,
}

const LOCKS: &str = "
SELECT l.locktype, l.mode, l.granted,
       CASE WHEN c.oid IS NOT NULL THEN quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
       coalesce(c.relkind::text, ''),
       CASE WHEN l.granted THEN '{}'::int[] ELSE pg_blocking_pids(l.pid) END
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ";

const USER_RELATIONS: &str =
    " AND (NOT l.granted OR (c.oid IS NOT NULL AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\\_toast%'))";

fn sample_query(watch: &Watch) -> String {
    let who = match watch {
        Watch::Backend(_) => "l.pid = ANY($1::int[])",
        Watch::Database { .. } => {
            "l.pid IN (SELECT a.pid FROM pg_stat_activity a WHERE a.datname = current_database()
                       AND a.pid <> pg_backend_pid() AND a.pid <> ALL($1::int[]))"
        }
    };
    format!("{LOCKS}{who}{USER_RELATIONS}")
}

fn watch_param(watch: &Watch) -> Vec<i32> {
    match watch {
        Watch::Backend(pid) => vec![*pid],
        Watch::Database { exclude } => exclude.clone(),
    }
}

fn cancel_query(watch: &Watch) -> &'static str {
    match watch {
        Watch::Backend(_) => "SELECT pg_cancel_backend(p) FROM unnest($1::int[]) p",
        Watch::Database { .. } => {
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database()
             AND pid <> pg_backend_pid() AND pid <> ALL($1::int[])"
        }
    }
}

fn observe(rows: &[tokio_postgres::Row], at: Duration, stmt: usize) -> Vec<Obs> {
    rows.iter()
        .map(|r| Obs {
            at,
            stmt,
            locktype: r.get(0),
            mode: r.get(1),
            granted: r.get(2),
            relation: r.get(3),
            relkind: relkind_label(r.get::<_, String>(4).as_str()).to_string(),
            blockers: r.get(5),
        })
        .collect()
}

fn relkind_label(k: &str) -> &'static str {
    match k {
        "r" => "table",
        "i" => "index",
        "S" => "sequence",
        "v" => "view",
        "m" => "materialized view",
        "p" => "partitioned table",
        "I" => "partitioned index",
        "t" => "TOAST table",
        "f" => "foreign table",
        "c" => "composite type",
        _ => "",
    }
}

impl Sampler {
    /// Connects the sampler and starts polling.
    pub async fn start(branch: &ConnConfig, watch: Watch, started: Instant) -> Result<Sampler> {
        let (client, _conn) = branch.connect().await?;
        client.batch_execute("SET application_name = 'pgbranchdiff lock sampler'; SET statement_timeout = 0").await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let current = Arc::new(AtomicUsize::new(BETWEEN));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let task = tokio::spawn(poll(client, watch, rx, current.clone(), shared.clone(), started));
        Ok(Sampler { cmd: tx, task, current, shared, started })
    }

    /// Attributes what is seen from now on to statement `i` (or [`BETWEEN`]).
    pub fn set_statement(&self, i: usize) {
        self.current.store(i, Ordering::SeqCst);
    }

    /// Cancels the watched backends' running statements (the budget ran out).
    pub fn cancel(&self) {
        let _ = self.cmd.send(Cmd::Cancel);
    }

    /// Adds locks the migration's own connection saw itself holding after statement `i`.
    pub async fn record_held(&self, client: &Client, pid: i32, i: usize) -> Result<()> {
        let q = format!("{LOCKS}l.pid = ANY($1::int[]) AND l.granted{USER_RELATIONS}");
        let rows = client.query(&q, &[&vec![pid]]).await?;
        let obs = observe(&rows, self.started.elapsed(), i);
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).obs.extend(obs);
        Ok(())
    }

    /// Stops polling and hands over what was seen.
    pub async fn finish(self) -> Samples {
        let _ = self.cmd.send(Cmd::Stop);
        let _ = self.task.await;
        let shared = std::mem::take(&mut *self.shared.lock().unwrap_or_else(|e| e.into_inner()));
        Samples { obs: shared.obs, blockers: shared.blockers }
    }
}

async fn poll(
    client: Client,
    watch: Watch,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    current: Arc<AtomicUsize>,
    shared: Arc<Mutex<Shared>>,
    started: Instant,
) {
    let Ok(stmt) = client.prepare(&sample_query(&watch)).await else { return };
    let param = watch_param(&watch);
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Cancel) => drop(client.query(cancel_query(&watch), &[&param]).await),
                Some(Cmd::Stop) => return,
                // Abandoned: whoever ran the migration is gone; stop what it started.
                None => {
                    let _ = client.query(cancel_query(&watch), &[&param]).await;
                    return;
                }
            },
            _ = tick.tick() => {
                let i = current.load(Ordering::SeqCst);
                let Ok(rows) = client.query(&stmt, &[&param]).await else { continue };
                let obs = observe(&rows, started.elapsed(), i);
                let wanted: BTreeSet<i32> = obs.iter().flat_map(|o| o.blockers.iter().copied()).collect();
                let unknown: Vec<i32> = {
                    let s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    wanted.into_iter().filter(|p| !s.blockers.contains_key(p)).collect()
                };
                let blockers = if unknown.is_empty() { Vec::new() } else { blockers(&client, &unknown).await };
                let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                s.obs.extend(obs);
                s.blockers.extend(blockers.into_iter().map(|b| (b.pid, b)));
            }
        }
    }
}

async fn blockers(client: &Client, pids: &[i32]) -> Vec<Blocker> {
    let q = "SELECT pid, coalesce(application_name, ''), coalesce(usename::text, ''), coalesce(state, ''),
                    left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 200)
             FROM pg_stat_activity WHERE pid = ANY($1::int[])";
    let Ok(rows) = client.query(q, &[&pids]).await else { return Vec::new() };
    rows.iter()
        .map(|r| Blocker { pid: r.get(0), application: r.get(1), user: r.get(2), state: r.get(3), query: r.get(4) })
        .collect()
}

/// Everything the sampler saw.
pub(super) struct Samples {
    pub obs: Vec<Obs>,
    pub blockers: HashMap<i32, Blocker>,
}

/// A wait: lock type, relation, mode.
type WaitKey = (String, Option<String>, String);

/// Lock modes from weakest to strongest.
const MODES: &[&str] = &[
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

fn strength(mode: &str) -> usize {
    MODES.iter().position(|m| *m == mode).unwrap_or(MODES.len())
}

/// Time covered by sorted observation times: runs closer than a few intervals
/// count as one continuous hold, each run one interval longer than its span.
fn held_millis(times: &mut [Duration]) -> u64 {
    times.sort();
    let gap = INTERVAL * 3;
    let mut total = Duration::ZERO;
    let mut run: Option<(Duration, Duration)> = None;
    for &t in times.iter() {
        run = match run {
            Some((a, b)) if t <= b + gap => Some((a, t)),
            Some((a, b)) => {
                total += b - a + INTERVAL;
                Some((t, t))
            }
            None => Some((t, t)),
        };
    }
    if let Some((a, b)) = run {
        total += b - a + INTERVAL;
    }
    total.as_millis() as u64
}

impl Samples {
    /// Locks held by statement `i`, strongest first, then by relation.
    pub fn held(&self, i: usize) -> Vec<LockHeld> {
        let mut by: BTreeMap<(String, String), (String, Vec<Duration>)> = BTreeMap::new();
        for o in self.obs.iter().filter(|o| o.stmt == i && o.granted) {
            let Some(rel) = &o.relation else { continue };
            let e = by.entry((rel.clone(), o.mode.clone())).or_insert_with(|| (o.relkind.clone(), Vec::new()));
            e.1.push(o.at);
        }
        let mut out: Vec<LockHeld> = by
            .into_iter()
            .map(|((relation, mode), (relkind, mut t))| LockHeld {
                relation,
                relkind,
                mode,
                millis: held_millis(&mut t),
            })
            .collect();
        out.sort_by(|a, b| strength(&b.mode).cmp(&strength(&a.mode)).then(a.relation.cmp(&b.relation)));
        out
    }

    /// Locks statement `i` waited for.
    pub fn waits(&self, i: usize) -> Vec<LockWait> {
        let mut by: BTreeMap<WaitKey, (Vec<Duration>, BTreeSet<i32>)> = BTreeMap::new();
        for o in self.obs.iter().filter(|o| o.stmt == i && !o.granted) {
            let e = by.entry((o.locktype.clone(), o.relation.clone(), o.mode.clone())).or_default();
            e.0.push(o.at);
            e.1.extend(o.blockers.iter().copied());
        }
        by.into_iter()
            .map(|((locktype, relation, mode), (mut t, pids))| LockWait {
                locktype,
                relation,
                mode,
                millis: held_millis(&mut t),
                blocked_by: pids
                    .into_iter()
                    .map(|p| {
                        self.blockers.get(&p).cloned().unwrap_or(Blocker {
                            pid: p,
                            application: String::new(),
                            user: String::new(),
                            state: String::new(),
                            query: String::new(),
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// Per relation over the whole migration; `locations` names statements by index.
    pub fn summary(&self, locations: &[String]) -> Vec<LockSummary> {
        #[derive(Default)]
        struct Acc {
            relkind: String,
            modes: BTreeSet<(usize, String)>,
            ael: Vec<Duration>,
            stmts: BTreeSet<usize>,
        }
        let mut by: BTreeMap<String, Acc> = BTreeMap::new();
        for o in &self.obs {
            let Some(rel) = &o.relation else { continue };
            let a = by.entry(rel.clone()).or_default();
            a.relkind = o.relkind.clone();
            if o.stmt != BETWEEN {
                a.stmts.insert(o.stmt);
            }
            if o.granted {
                a.modes.insert((strength(&o.mode), o.mode.clone()));
                if o.mode == "AccessExclusiveLock" {
                    a.ael.push(o.at);
                }
            }
        }
        by.into_iter()
            .map(|(relation, mut a)| LockSummary {
                relation,
                relkind: a.relkind,
                modes: a.modes.into_iter().map(|(_, m)| m).collect(),
                access_exclusive_millis: if a.ael.is_empty() { 0 } else { held_millis(&mut a.ael) },
                statements: a.stmts.into_iter().filter_map(|i| locations.get(i).cloned()).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_observations_are_one_hold() {
        let ms = Duration::from_millis;
        assert_eq!(held_millis(&mut [ms(0), ms(15), ms(30)]), 45);
        // Two holds 1 s apart: each one interval long.
        assert_eq!(held_millis(&mut [ms(1000), ms(0)]), 30);
        assert_eq!(held_millis(&mut []), 0);
    }

    #[test]
    fn modes_by_strength() {
        assert!(strength("AccessExclusiveLock") > strength("ShareLock"));
        assert!(strength("RowExclusiveLock") > strength("AccessShareLock"));
    }
}
