//! The lock sampler: a second connection polls `pg_locks` (joined to
//! `pg_class`) for the migration's backends every few milliseconds, records
//! the table locks (`locktype = 'relation'`) they hold and every lock they
//! wait for (with the sessions blocking them, never the sampler itself), and
//! attributes each observation to the statement the backend was running all
//! through the read: each statement is sent with a leading comment carrying
//! its number (see [`marker`]), and `pg_stat_activity` is read just before and
//! just after `pg_locks` (see [`bracketed`]). Locks held for less than one
//! interval can go unseen; a statement is also checked right after it ends,
//! inside its transaction (its locks are still held then), which makes those
//! observations certain.
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

use super::report::{Blocker, LockHeld, LockHolder, LockSummary, LockWait, StatementReport};

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

/// The comment a statement is sent with: `pg_stat_activity.query` then says
/// which statement the backend is running (it is kept to the first 1 kB, which
/// always holds this prefix).
pub(super) fn marker(i: usize) -> String {
    format!("/* pgbranchdiff statement {i} */ ")
}

/// One lock seen at one time.
#[derive(Debug, Clone)]
pub(super) struct Obs {
    pub at: Duration,
    pub stmt: usize,
    pub locktype: String,
    /// `pg_locks.relation`.
    pub oid: Option<u32>,
    pub relation: Option<String>,
    pub relkind: String,
    pub mode: String,
    pub granted: bool,
    pub blockers: Vec<i32>,
    /// A wait's length so far, in ms, as the server measured it (PostgreSQL 14+).
    pub waited: Option<u64>,
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

/// Columns: lock type, mode, granted, relation name, relkind, blockers (the
/// sampler left out), whether the sampler was the only blocker, relation oid,
/// and how long a wait has lasted so far (`waitstart`, PostgreSQL 14 and
/// later; read through `to_jsonb` so that the query runs on 13 too).
const LOCKS: &str = "
SELECT l.locktype, l.mode, l.granted,
       CASE WHEN c.oid IS NOT NULL THEN quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
       coalesce(c.relkind::text, ''),
       array_remove(bp.pids, pg_backend_pid()),
       bp.pids = ARRAY[pg_backend_pid()],
       l.relation,
       (extract(epoch FROM clock_timestamp() - (to_jsonb(l) ->> 'waitstart')::timestamptz) * 1000)::int8
FROM pg_locks l
CROSS JOIN LATERAL (SELECT CASE WHEN l.granted THEN '{}'::int[] ELSE pg_blocking_pids(l.pid) END AS pids) bp
LEFT JOIN pg_class c ON c.oid = l.relation
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ";

/// Held locks: table locks on user relations only (an `extend` lock in
/// ExclusiveLock mode is relation extension, not a table lock). Waits: all.
const USER_RELATIONS: &str = " AND (NOT l.granted OR (l.locktype = 'relation' AND c.oid IS NOT NULL
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'))";

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

/// The rows of one sample, charged to statement `stmt` (or [`BETWEEN`]).
fn observe(rows: &[tokio_postgres::Row], at: Duration, stmt: usize) -> Vec<Obs> {
    rows.iter()
        // A wait on nothing but the sampler's own query is the sampler's doing, not the migration's.
        .filter(|r| !r.get::<_, Option<bool>>(6).unwrap_or(false))
        .map(|r| Obs {
            at,
            stmt,
            oid: r.get(7),
            locktype: r.get(0),
            mode: r.get(1),
            granted: r.get(2),
            relation: r.get(3),
            relkind: relkind_label(r.get::<_, String>(4).as_str()).to_string(),
            blockers: r.get(5),
            waited: r.get::<_, Option<i64>>(8).map(|m| m.max(0) as u64),
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
    let activity = match watch {
        Watch::Backend(_) => match client.prepare(ACTIVITY).await {
            Ok(s) => Some(s),
            Err(_) => return,
        },
        Watch::Database { .. } => None,
    };
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
                let (rows, who) = if let Some(activity) = &activity {
                    let Ok(Some(rows)) = bracketed(&client, activity, &stmt, &param).await else { continue };
                    rows
                } else {
                    let Ok(rows) = client.query(&stmt, &[&param]).await else { continue };
                    (rows, i)
                };
                let obs = observe(&rows, started.elapsed(), who);
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

/// The watched backend's running statement number and its start, as text.
const ACTIVITY: &str = "
SELECT CASE WHEN state = 'active'
            THEN (regexp_match(query, '^/\\* pgbranchdiff statement ([0-9]+) \\*/'))[1]::int END,
       query_start::text
FROM pg_stat_activity WHERE pid = ANY($1::int[])";

/// One sample of `pg_locks`, attributed to the statement that was running
/// all through it. `pg_locks` and `pg_stat_activity` are separate snapshots
/// even inside one query, so the lock rows can predate the activity row (a
/// lock the previous statement held until its COMMIT then looks like the next
/// statement's). Reading the activity before and after, in transactions of
/// their own, and keeping the sample only when both name the same running
/// statement with the same start, proves the locks were read while it ran.
/// `None`: the backend moved on meanwhile; the sample is dropped (statements
/// are also read exactly at their end, see [`Sampler::record_held`]).
async fn bracketed(
    client: &Client,
    activity: &tokio_postgres::Statement,
    locks: &tokio_postgres::Statement,
    param: &Vec<i32>,
) -> Result<Option<(Vec<tokio_postgres::Row>, usize)>> {
    let running = |rows: Vec<tokio_postgres::Row>| -> Option<(i32, String)> {
        let r = rows.first()?;
        Some((r.get::<_, Option<i32>>(0)?, r.get::<_, Option<String>>(1)?))
    };
    let before = running(client.query(activity, &[param]).await?);
    let rows = client.query(locks, &[param]).await?;
    let after = running(client.query(activity, &[param]).await?);
    Ok(match (before, after) {
        (Some(b), Some(a)) if a == b => Some((rows, b.0 as usize)),
        // Nothing of ours ran all through: waits and locks then belong to nobody.
        (None, None) => Some((rows, BETWEEN)),
        _ => None,
    })
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

/// Whether a mode blocks writes to the relation (SHARE and stronger, except
/// SHARE UPDATE EXCLUSIVE, which blocks neither reads nor writes).
pub(super) fn blocks_writes(mode: &str) -> bool {
    matches!(mode, "ShareLock" | "ShareRowExclusiveLock" | "ExclusiveLock" | "AccessExclusiveLock")
}

/// Whether a mode blocks reads too.
pub(super) fn blocks_reads(mode: &str) -> bool {
    mode == "AccessExclusiveLock"
}

/// A relation lock a statement held, with the relation's oid.
pub(super) struct Held {
    pub oid: Option<u32>,
    pub lock: LockHeld,
}

impl Samples {
    /// Table locks held by statement `i`, strongest first, then by relation;
    /// `millis` is the time they were seen (sampling resolution).
    pub fn held(&self, i: usize) -> Vec<Held> {
        // (relation, mode) → (oid, relkind, times seen)
        type Seen = (Option<u32>, String, Vec<Duration>);
        let mut by: BTreeMap<(String, String), Seen> = BTreeMap::new();
        for o in self.obs.iter().filter(|o| o.stmt == i && o.granted && o.locktype == "relation") {
            let Some(rel) = &o.relation else { continue };
            let e = by.entry((rel.clone(), o.mode.clone())).or_insert_with(|| (o.oid, o.relkind.clone(), Vec::new()));
            e.2.push(o.at);
        }
        let mut out: Vec<Held> = by
            .into_iter()
            .map(|((relation, mode), (oid, relkind, mut t))| Held {
                oid,
                lock: LockHeld { relation, relkind, mode, millis: held_millis(&mut t), created: false },
            })
            .collect();
        out.sort_by(|a, b| {
            strength(&b.lock.mode).cmp(&strength(&a.lock.mode)).then(a.lock.relation.cmp(&b.lock.relation))
        });
        out
    }

    /// Locks statement `i` waited for.
    pub fn waits(&self, i: usize) -> Vec<LockWait> {
        let mut by: BTreeMap<WaitKey, (Vec<Duration>, BTreeSet<i32>, u64)> = BTreeMap::new();
        for o in self.obs.iter().filter(|o| o.stmt == i && !o.granted) {
            let e = by.entry((o.locktype.clone(), o.relation.clone(), o.mode.clone())).or_default();
            e.0.push(o.at);
            e.1.extend(o.blockers.iter().copied());
            e.2 = e.2.max(o.waited.unwrap_or(0));
        }
        by.into_iter()
            .map(|((locktype, relation, mode), (mut t, pids, measured))| LockWait {
                locktype,
                relation,
                mode,
                // The server's own clock, when it has one, is not fooled by a sampler that started late.
                millis: held_millis(&mut t).max(measured),
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

    /// Per existing relation, from the samples alone (a command: one
    /// statement, `location`, whose locks are only known by sampling).
    pub fn sampled_summary(&self, location: &str, existing: &BTreeSet<u32>) -> Vec<LockSummary> {
        #[derive(Default)]
        struct Acc {
            relkind: String,
            modes: BTreeSet<(usize, String)>,
            reads: Vec<Duration>,
            writes: Vec<Duration>,
        }
        let mut by: BTreeMap<String, Acc> = BTreeMap::new();
        for o in self.obs.iter().filter(|o| o.granted && o.locktype == "relation") {
            let (Some(rel), Some(oid)) = (&o.relation, o.oid) else { continue };
            if !existing.contains(&oid) {
                continue;
            }
            let a = by.entry(rel.clone()).or_default();
            a.relkind = o.relkind.clone();
            a.modes.insert((strength(&o.mode), o.mode.clone()));
            if blocks_reads(&o.mode) {
                a.reads.push(o.at);
            }
            if blocks_writes(&o.mode) {
                a.writes.push(o.at);
            }
        }
        by.into_iter()
            .map(|(relation, mut a)| LockSummary {
                relation,
                relkind: a.relkind,
                reads_and_writes_blocked_millis: held_millis(&mut a.reads),
                writes_blocked_millis: held_millis(&mut a.writes),
                held_by: a
                    .modes
                    .iter()
                    .filter(|(_, m)| blocks_writes(m))
                    .rev()
                    .map(|(_, m)| LockHolder { location: location.to_string(), mode: m.clone() })
                    .collect(),
                modes: a.modes.into_iter().map(|(_, m)| m).collect(),
                statements: vec![location.to_string()],
            })
            .collect()
    }
}

/// Per existing relation over a run of statements, from the locks each
/// statement took (`StatementReport::locks`, relations the migration created
/// marked and left out): a lock is held from the start of the statement that
/// took it (less that statement's wait on the relation) to its end, and inside
/// a transaction block to the end of the block, so every later statement of
/// the block counts whole. `blocks[i]` numbers statement `i`'s block.
pub(super) fn summary(statements: &[StatementReport], blocks: &[Option<usize>]) -> Vec<LockSummary> {
    #[derive(Default)]
    struct Acc {
        relkind: String,
        modes: BTreeSet<(usize, String)>,
        reads: u64,
        writes: u64,
        held_by: Vec<(usize, LockHolder)>,
        statements: BTreeSet<usize>,
        /// Strongest mode held since an earlier statement of the open block.
        carried: Option<(usize, usize)>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for s in statements {
        for l in s.locks.iter().filter(|l| !l.created) {
            let a = by.entry(l.relation.clone()).or_default();
            a.relkind = l.relkind.clone();
        }
    }
    for (i, s) in statements.iter().enumerate() {
        let block = blocks.get(i).copied().flatten();
        for (rel, a) in by.iter_mut() {
            let carried = match a.carried {
                Some((b, m)) if Some(b) == block => Some(m),
                _ => None,
            };
            let taken: Vec<&LockHeld> = s.locks.iter().filter(|l| &l.relation == rel && !l.created).collect();
            let waited: u64 = s.waits.iter().filter(|w| w.relation.as_deref() == Some(rel)).map(|w| w.millis).sum();
            let own = s.millis.saturating_sub(waited);
            let strongest_taken = taken.iter().map(|l| strength(&l.mode)).max();
            let mode_at = |k: usize| MODES.get(k).copied().unwrap_or("");
            let time = |pred: fn(&str) -> bool| {
                if carried.is_some_and(|m| pred(mode_at(m))) {
                    s.millis
                } else if strongest_taken.is_some_and(|m| pred(mode_at(m))) {
                    own
                } else {
                    0
                }
            };
            a.reads += time(blocks_reads);
            a.writes += time(blocks_writes);
            for l in &taken {
                a.modes.insert((strength(&l.mode), l.mode.clone()));
                if blocks_writes(&l.mode) {
                    a.held_by
                        .push((strength(&l.mode), LockHolder { location: s.location.clone(), mode: l.mode.clone() }));
                }
            }
            if !taken.is_empty() || s.waits.iter().any(|w| w.relation.as_deref() == Some(rel)) {
                a.statements.insert(i);
            }
            a.carried = match (block, carried.max(strongest_taken)) {
                (Some(b), Some(m)) => Some((b, m)),
                _ => None,
            };
        }
    }
    by.into_iter()
        .map(|(relation, mut a)| {
            // Strongest first, then in statement order.
            a.held_by.sort_by_key(|h| std::cmp::Reverse(h.0));
            LockSummary {
                relation,
                relkind: a.relkind,
                modes: a.modes.into_iter().map(|(_, m)| m).collect(),
                reads_and_writes_blocked_millis: a.reads,
                writes_blocked_millis: a.writes,
                held_by: a.held_by.into_iter().map(|(_, h)| h).collect(),
                statements: a
                    .statements
                    .into_iter()
                    .filter_map(|i| statements.get(i).map(|s| s.location.clone()))
                    .collect(),
            }
        })
        .collect()
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
