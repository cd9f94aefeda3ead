//! Orchestration: open both sides (one snapshot each), read and pair the
//! catalogs, then diff tables in parallel — `jobs` connections per side, the
//! largest tables first — and stream events to the caller.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{pin_mut, StreamExt};
use tokio::sync::mpsc;

use crate::block_hash;
use crate::catalog;
use crate::confirm;
use crate::conn::ConnConfig;
use crate::dropped;
use crate::error::{Error, Result};
use crate::identity;
use crate::loss::LossKind;
use crate::merge::{self, SideLabel};
use crate::options::{Options, Shard, Strategy};
use crate::plan::{self, TablePlan};
use crate::report::{
    BlockCut, BlockStats, BytesReceived, DataLoss, Endpoint, Event, ReadStrategy, Report, ReportBuilder, TableInfo,
    TableSummary,
};
use crate::schema;
use crate::snapshot::Side;

/// Rows per batch handed from the network to the merge thread: large enough
/// to amortise channel hand-offs, small enough to keep memory flat.
const BATCH_ROWS: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight per side and table.
const CHANNEL_DEPTH: usize = 4;
/// Suspect rows (tuple identity) per batch: they are few, and copied once,
/// so small batches keep what is in flight small whatever the size of the diff.
const SUSPECT_BATCH_ROWS: usize = 256;

/// A running diff: events arrive in the order they are found. Dropping it
/// stops the diff.
pub struct ChangeStream {
    rx: mpsc::Receiver<Result<Event>>,
    task: Option<tokio::task::JoinHandle<()>>,
    received: (crate::socket::Received, crate::socket::Received),
}

impl ChangeStream {
    /// The next event; `None` once the diff is complete. After an error no more events follow.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        self.rx.recv().await
    }

    /// Bytes received so far from each side's server, counted at the socket.
    pub fn received(&self) -> BytesReceived {
        BytesReceived { parent: self.received.0.get(), child: self.received.1.get() }
    }

    /// Stops the diff and waits (a few seconds at most) until its queries are
    /// cancelled and its connections closed: for a program about to exit (an
    /// interrupt), so the servers log no connection lost mid-transaction.
    pub async fn close(&mut self) {
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}

/// Starts a diff. Connection, catalog and option errors are returned here,
/// before any event; errors while reading rows arrive through the stream.
///
/// Events come in this order: `Started` first, every `Schema` change, the
/// `DataLoss` of dropped objects, then per table its rows in key order, its
/// `DataLoss` entries and its `TableDone` (tables run in parallel and interleave).
///
/// ```no_run
/// # async fn demo() -> diff_core::Result<()> {
/// use diff_core::{ConnConfig, Event, Options, SideName};
/// let parent = ConnConfig::parse(SideName::Parent, "shop")?;
/// let child = ConnConfig::parse(SideName::Child, "shop_branch")?;
/// let mut stream = diff_core::start(&parent, &child, &Options::default()).await?;
/// while let Some(event) = stream.next().await {
///     if let Event::Row { table, change } = event? {
///         println!("table {table}: {:?} {:?}", change.op, change.key);
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn start(parent: &ConnConfig, child: &ConnConfig, opts: &Options) -> Result<ChangeStream> {
    let jobs = opts.jobs.max(1);
    // Both sides connect at once; when both fail, the parent's error is the one reported.
    let (p, c) = match tokio::join!(Side::open(parent, jobs), Side::open(child, jobs)) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), other) => {
            if let Ok(c) = other {
                c.close().await;
            }
            return Err(e);
        }
        (Ok(p), Err(e)) => {
            p.close().await;
            return Err(e);
        }
    };
    let (plan, changes, probes) = match prepare(&p, &c, opts).await {
        Ok(prepared) => prepared,
        Err(e) => {
            tokio::join!(p.close(), c.close());
            return Err(e);
        }
    };
    let (tx, rx) = mpsc::channel(1024);
    let received = (p.received.clone(), c.received.clone());
    let opts = opts.clone();
    let task = tokio::spawn(async move {
        let tx2 = tx.clone();
        let (p, c) = (Arc::new(p), Arc::new(c));
        let result = drive(p.clone(), c.clone(), (plan, changes, probes), opts, tx).await;
        // The workers are done and gone: the sides are ours alone again. Close them before the
        // consumer hears the end, so a program that exits right after leaves no open transaction.
        let cancel = matches!(result, Err(Error::Cancelled));
        if let (Ok(p), Ok(c)) = (Arc::try_unwrap(p), Arc::try_unwrap(c)) {
            if cancel {
                tokio::join!(p.cancel(), c.cancel());
            }
            tokio::join!(p.close(), c.close());
        }
        if let Err(e) = result {
            let _ = tx2.send(Err(e)).await;
        }
    });
    Ok(ChangeStream { rx, task: Some(task), received })
}

/// Reads and pairs both catalogs: the schema changes and the row plan.
async fn prepare(p: &Side, c: &Side, opts: &Options) -> Result<Prepared> {
    let (pcat, ccat, pobj, cobj) =
        tokio::try_join!(catalog::read(p), catalog::read(c), schema::read::read(p), schema::read::read(c))?;
    let same_lineage = p.system_identifier.is_some()
        && p.system_identifier == c.system_identifier
        && schema::shares_objects(&pobj, &cobj);
    let ignore = opts.ignored()?;
    let (pobj, mut cobj) = (ignore.apply(pobj), ignore.apply(cobj));
    if let Some(role) = &opts.stand_in_role {
        schema::stand_in::apply(&pobj, &mut cobj, role);
    }
    // Renames guessed from the catalog alone stand only if the data agrees; a refuted guess is
    // compared again without it (which may leave another guess to check).
    let mut rejected: Vec<(String, String)> = vec![];
    let mut confirmed: Vec<schema::Inferred> = vec![];
    let (mut changes, mut pairs) = schema::compare(&pobj, &cobj, same_lineage, &rejected);
    loop {
        let open: Vec<schema::Inferred> = pairs.inferred.iter().filter(|g| !confirmed.contains(g)).cloned().collect();
        if open.is_empty() {
            break;
        }
        let verdicts = confirm::check(p, c, &pcat, &ccat, &open).await?;
        let before = rejected.len();
        for (g, ok) in open.into_iter().zip(verdicts) {
            if ok {
                confirmed.push(g);
            } else {
                rejected.push((g.parent, g.child));
            }
        }
        if rejected.len() == before {
            break;
        }
        (changes, pairs) = schema::compare(&pobj, &cobj, same_lineage, &rejected);
    }
    changes.retain(|ch| change_selected(opts, ch, &pairs));
    let plan = plan::build(&pcat, &ccat, opts, &pairs)?;
    let probes = dropped::probes(&changes, &pcat);
    Ok((plan, changes, probes))
}

/// The row plan, the schema changes, and what the dropped objects held (to count).
type Prepared = (plan::Plan, Vec<schema::SchemaChange>, Vec<dropped::Probe>);

/// Runs a whole diff and returns the report. Rows beyond
/// `opts.max_rows_per_table` are counted but not kept.
///
/// ```no_run
/// # async fn demo() -> diff_core::Result<()> {
/// use diff_core::{ConnConfig, Options, SideName};
/// let parent = ConnConfig::parse(SideName::Parent, "postgresql://app@prod/shop")?;
/// let child = ConnConfig::parse(SideName::Child, "postgresql://app@branch/shop")?;
/// let opts = Options { tables: vec!["public.orders".into()], max_rows_per_table: Some(100), ..Options::default() };
/// let report = diff_core::run(&parent, &child, &opts).await?;
/// for t in &report.tables {
///     println!("{}: {:?}", t.info.qualified(), t.summary.counts);
/// }
/// # Ok(()) }
/// ```
pub async fn run(parent: &ConnConfig, child: &ConnConfig, opts: &Options) -> Result<Report> {
    let mut stream = start(parent, child, opts).await?;
    let mut builder = ReportBuilder::new(opts.max_rows_per_table);
    while let Some(event) = stream.next().await {
        builder.push(event?);
    }
    let mut report = builder.finish().ok_or(Error::Cancelled)?;
    report.received = Some(stream.received());
    Ok(report)
}

async fn send(tx: &mpsc::Sender<Result<Event>>, e: Event) -> Result<()> {
    tx.send(Ok(e)).await.map_err(|_| Error::Cancelled)
}

/// Table filters apply to table-scoped objects — by the table's name on
/// either side, so a renamed table is in or out whichever name a filter uses;
/// with `--table`, objects outside tables are left out — and `--schema` to
/// everything in a schema.
fn change_selected(opts: &Options, ch: &schema::SchemaChange, pairs: &schema::Pairs) -> bool {
    match &ch.table {
        Some((s, t)) => {
            let qualified = format!("{s}.{t}");
            let other = pairs.other_name(&qualified).and_then(|o| o.split_once('.'));
            let mut names = vec![(s.as_str(), t.as_str())];
            names.extend(other);
            plan::table_selected(opts, &names)
        }
        // `--table` asks about tables: objects outside any table (enums, functions, sequences…)
        // are not reported then; `--schema` keeps what is in the schemas named.
        None => {
            opts.tables.is_empty()
                && (opts.schemas.is_empty()
                    || opts.schemas.iter().any(|s| ch.object == *s || ch.object.starts_with(&format!("{s}."))))
        }
    }
}

async fn drive(
    p: Arc<Side>,
    c: Arc<Side>,
    (plan, mut changes, probes): Prepared,
    opts: Options,
    tx: mpsc::Sender<Result<Event>>,
) -> Result<()> {
    let endpoint = |s: &Side| Endpoint { endpoint: s.endpoint.clone(), server_version: s.server_version };
    let tables = if opts.data { plan.tables.iter().map(TableInfo::from_plan).collect() } else { vec![] };
    send(
        &tx,
        Event::Started {
            parent: endpoint(&p),
            child: endpoint(&c),
            tables,
            rows: opts.data,
            schema: opts.schema,
            filtered: opts.filtered(),
        },
    )
    .await?;
    let moved = Arc::new(dropped::detached(&p, &mut changes).await?);
    // Parts of a sharded run after the first report rows only: the union of all parts is the whole report.
    if opts.schema && Shard::first(opts.shard) {
        for change in changes {
            send(&tx, Event::Schema(change)).await?;
        }
        for loss in dropped::count(&p, probes).await? {
            send(&tx, Event::DataLoss(loss)).await?;
        }
    }
    if !opts.data {
        return Ok(());
    }
    let all_rows: i64 = plan.tables.iter().map(|t| t.rows.max(1)).sum();
    let mut queue: Vec<TablePlan> = plan.tables;
    queue.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    let queue = Arc::new(Mutex::new(VecDeque::from(queue)));
    let use_identity = p.same_instance(&c);
    let (strategy, shard, split) = (opts.strategy, opts.shard, opts.split_tables);
    let workers = (0..p.connections()).map(|w| {
        let (p, c, queue, tx, moved) = (p.clone(), c.clone(), queue.clone(), tx.clone(), moved.clone());
        async move {
            loop {
                let Some(table) = queue.lock().expect("queue lock").pop_front() else { return Ok(()) };
                let parts = if split { hash_parts(table.rows, all_rows, p.connections()) } else { 1 };
                let mut summary = diff_table(
                    Arc::new(table.clone()),
                    &p,
                    &c,
                    (w, parts),
                    tx.clone(),
                    (strategy, shard),
                    use_identity,
                )
                .await?;
                let moved_out = moved.get(&table.parent_qualified).copied().unwrap_or(0);
                for loss in row_losses(&table, &mut summary, moved_out, &c, w).await? {
                    send(&tx, Event::DataLoss(loss)).await?;
                }
                send(&tx, Event::TableDone { table: table.id, summary }).await?;
            }
        }
    });
    futures_util::future::try_join_all(workers).await?;
    Ok(())
}

/// Connections a table's blocks are hashed on: as many as its share of all
/// tables' rows is of the `jobs` connections, rounded up. Workers already hash
/// that many tables at once, so cutting a table that is no larger than its
/// share would only add scans (each part is a range or filtered scan of its
/// own) and contention; a table holding most of the rows gets most connections.
fn hash_parts(rows: i64, all_rows: i64, jobs: usize) -> usize {
    let jobs = jobs.max(1) as i64;
    let (num, den) = (rows.max(1) as i128 * jobs as i128, all_rows.max(1) as i128);
    let share = (num + den - 1) / den;
    share.clamp(1, jobs as i128) as usize
}

async fn diff_table(
    plan: Arc<TablePlan>,
    p: &Side,
    c: &Side,
    (conn, parts): (usize, usize),
    tx: mpsc::Sender<Result<Event>>,
    (strategy, shard): (Strategy, Option<Shard>),
    use_identity: bool,
) -> Result<TableSummary> {
    let started = std::time::Instant::now();
    let label = |s: &Side| SideLabel { name: s.name, endpoint: s.endpoint.clone() };
    let context = format!("reading table {}", plan.qualified());
    let Choice { way, reason, mut fallback } = choose(&plan, strategy, shard, use_identity);
    let suspects = match way {
        Way::Identity => {
            let s = identity_pass(&plan, p, c, conn, &context).await?;
            if s.is_none() {
                fallback = Some("identity: too many changed tuples, or rows not in physical order".to_string());
            }
            s
        }
        _ => None,
    };
    let blocks = match way {
        Way::Hash => {
            let cut = block_hash::cut(&plan, (p, c), conn).await?;
            let jobs = p.connections();
            let conns: Vec<usize> = (0..parts).map(|k| (conn + k) % jobs).collect();
            let blocks = block_hash::compare(&plan, (p, c), &conns, cut, shard).await?;
            Some(block_hash::refine(&plan, (p, c), conn, blocks, shard).await?)
        }
        _ => None,
    };
    let whole = blocks.as_ref().is_some_and(|b| b.mostly_differ());
    let (pfilter, cfilter) = match (&blocks, shard) {
        (Some(_), None) if whole => (None, None),
        (Some(_), Some(s)) if whole => {
            (Some(block_hash::shard_filter(&plan, true, s)), Some(block_hash::shard_filter(&plan, false, s)))
        }
        (Some(b), _) => {
            (Some(block_hash::filter(&plan, b, true, shard)), Some(block_hash::filter(&plan, b, false, shard)))
        }
        (None, Some(s)) => {
            (Some(block_hash::shard_filter(&plan, true, s)), Some(block_hash::shard_filter(&plan, false, s)))
        }
        (None, None) => (None, None),
    };
    let (ptx, prx) = mpsc::channel(CHANNEL_DEPTH);
    let (ctx, crx) = mpsc::channel(CHANNEL_DEPTH);
    let (pl, cl) = (label(p), label(c));
    let mplan = plan.clone();
    let merger = tokio::task::spawn_blocking(move || {
        merge::run(&mplan, (prx, pl), (crx, cl), |e| tx.blocking_send(Ok(e)).map_err(|_| Error::Cancelled))
    });
    match &suspects {
        Some(s) => {
            let (psql, csql) = (identity::suspects_sql(&plan, true), identity::suspects_sql(&plan, false));
            tokio::join!(
                pump_rows(p, conn, &psql, &s.parent, &context, ptx),
                pump_rows(c, conn, &csql, &s.child, &context, ctx)
            );
        }
        None => {
            let (psql, csql) = (plan.parent_query.copy(pfilter.as_deref()), plan.child_query.copy(cfilter.as_deref()));
            tokio::join!(pump(p, conn, &psql, &context, ptx), pump(c, conn, &csql, &context, ctx));
        }
    }
    let mut summary = merger.await.map_err(|e| internal(&plan, e))??;
    if let Some(s) = suspects {
        summary.strategy = ReadStrategy::Identity;
        summary.parent.identity_checked = s.parent_scanned.0;
        summary.parent.bytes += s.parent_scanned.1;
        summary.child.identity_checked = s.child_scanned.0;
        summary.child.bytes += s.child_scanned.1;
    }
    let refined = blocks
        .as_ref()
        .and_then(|b| b.refined.as_ref().map(|r| (b.differing.len(), r.ranges.parts, r.differing.len(), r.scanned)));
    if let Some(b) = blocks {
        summary.strategy = ReadStrategy::Hash;
        summary.parent.bytes += b.bytes.0;
        summary.child.bytes += b.bytes.1;
        let by = match b.cut {
            block_hash::Cut::KeyHash(_) => BlockCut::KeyHash,
            block_hash::Cut::KeyRange(_) => BlockCut::KeyRange,
        };
        let (count, differing) = (b.cut.count() as u64, b.differing.len() as u64);
        let (refined_parts, refined_differing) =
            b.refined.as_ref().map_or((0, 0), |r| (r.ranges.parts as u64, r.differing.len() as u64));
        summary.blocks = Some(BlockStats { by, count, differing, parts: b.parts, refined_parts, refined_differing });
    }
    summary.reason = match (whole, refined) {
        (true, _) => format!("{reason}; most blocks differed: the whole table streamed"),
        (false, Some((blocks, parts, differing, scanned))) => {
            let how = if scanned { "one scan" } else { "index ranges" };
            format!(
                "{reason}; {blocks} differing blocks hashed again ({how}) in {parts} parts each: {differing} parts differed"
            )
        }
        (false, None) => reason,
    };
    summary.fallback = fallback;
    summary.millis = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// Tables at least this large on disk are hashed in blocks across servers
/// under `auto`: below it, the digests and the second query cost about what
/// streaming the whole table does.
const AUTO_HASH_MIN_BYTES: i64 = 8 << 20;

/// How a table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Identity,
    Hash,
    Stream,
}

/// The way chosen, why, and why the way asked for could not be used.
struct Choice {
    way: Way,
    reason: String,
    fallback: Option<String>,
}

/// Picks how to read a table: what `--strategy` asks, and under `auto` tuple
/// identity on one instance (never across servers: transaction ids repeat
/// there), block hashes across servers for tables large enough that digests
/// move fewer bytes than the rows, streaming otherwise. A shard (`--shard`)
/// hashes every table it can, and streams its part of the others.
fn choose(plan: &TablePlan, strategy: Strategy, shard: Option<Shard>, one_instance: bool) -> Choice {
    let choice = |way, reason: String, fallback: Option<String>| Choice { way, reason, fallback };
    let size = human_bytes(plan.bytes);
    if let (Some(s), false) = (shard, strategy == Strategy::Stream) {
        let part = format!("--shard {}/{}", s.index, s.count);
        return match &plan.hash_blocker {
            None => choice(Way::Hash, format!("{part}: block hashes"), None),
            Some(why) => choice(Way::Stream, format!("{part}, but {why}"), Some(format!("hash: {why}"))),
        };
    }
    match strategy {
        Strategy::Stream => choice(Way::Stream, "--strategy stream".into(), None),
        Strategy::Hash => match &plan.hash_blocker {
            None => choice(Way::Hash, "--strategy hash".into(), None),
            Some(why) => choice(Way::Stream, format!("--strategy hash, but {why}"), Some(format!("hash: {why}"))),
        },
        Strategy::Auto if one_instance => match &plan.identity_blocker {
            None => choice(Way::Identity, "one running instance: tuple identity".into(), None),
            Some(why) => {
                choice(Way::Stream, format!("one running instance, but {why}"), Some(format!("identity: {why}")))
            }
        },
        Strategy::Auto => match &plan.hash_blocker {
            Some(why) => choice(Way::Stream, format!("across servers, {why}"), None),
            None if plan.bytes >= AUTO_HASH_MIN_BYTES => choice(
                Way::Hash,
                format!("across servers, {size} on disk: block digests move fewer bytes than the rows"),
                None,
            ),
            None => choice(Way::Stream, format!("across servers, small table ({size}): streamed whole"), None),
        },
    }
}

/// `12 kB`, `3.4 MB`, `1.2 GB` (powers of 1024, like `pg_size_pretty`).
fn human_bytes(b: i64) -> String {
    let b = b.max(0) as f64;
    match b {
        b if b >= (1u64 << 30) as f64 => format!("{:.1} GB", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.1} MB", b / (1u64 << 20) as f64),
        b => format!("{} kB", (b / 1024.0).ceil() as u64),
    }
}

fn internal(plan: &TablePlan, e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("while comparing {}: {e}", plan.qualified()))
}

/// The table's rows lost: deletions (or the whole table emptied, when the
/// child holds no row any more), less the rows that left with a detached
/// partition (`moved_out`, still held there), then the values the merge found
/// lost in place.
async fn row_losses(
    plan: &TablePlan,
    summary: &mut TableSummary,
    moved_out: u64,
    c: &Side,
    conn: usize,
) -> Result<Vec<DataLoss>> {
    let mut out = vec![];
    let deleted = summary.counts.deleted.saturating_sub(moved_out);
    if deleted > 0 {
        let mut kind = LossKind::DeletedRows;
        if summary.counts.inserted == 0 {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", plan.child_query.from);
            let row = c
                .client(conn)
                .query_one(&sql, &[])
                .await
                .map_err(|e| c.query_error(&format!("counting rows of {}", plan.qualified()), &e))?;
            if !row.get::<_, bool>(0) {
                kind = LossKind::EmptiedTable;
            }
        }
        out.push(DataLoss {
            kind,
            schema: plan.schema.clone(),
            table: Some(plan.name.clone()),
            column: None,
            count: deleted,
            bytes: None,
            examples: vec![],
            accepted: false,
        });
    }
    out.append(&mut summary.losses);
    Ok(out)
}

/// Reads (ctid, xmin) of both sides; `None` when the table must be read whole.
async fn identity_pass(
    plan: &Arc<TablePlan>,
    p: &Side,
    c: &Side,
    conn: usize,
    context: &str,
) -> Result<Option<identity::Suspects>> {
    let label = |s: &Side| SideLabel { name: s.name, endpoint: s.endpoint.clone() };
    let (ptx, prx) = identity::channel();
    let (ctx, crx) = identity::channel();
    let (pl, cl, table) = (label(p), label(c), plan.qualified());
    let merger = tokio::task::spawn_blocking(move || identity::merge(table, (prx, pl), (crx, cl)));
    let (psql, csql) = (identity::identity_sql(plan, true), identity::identity_sql(plan, false));
    tokio::join!(pump(p, conn, &psql, context, ptx), pump(c, conn, &csql, context, ctx));
    merger.await.map_err(|e| internal(plan, e))?
}

/// Streams the rows at the given ctids, re-framed as COPY tuples, into batches.
async fn pump_rows(
    side: &Side,
    conn: usize,
    sql: &str,
    tids: &identity::TidList,
    context: &str,
    tx: mpsc::Sender<Result<Vec<Bytes>>>,
) {
    match side.client(conn).query_raw(sql, [tids as &(dyn tokio_postgres::types::ToSql + Sync)]).await {
        Ok(rows) => {
            let tuples = rows.map(|r| r.map(|row| identity::row_as_tuple(&row)));
            let frame = (Some(identity::copy_header()), Some(identity::copy_trailer()));
            forward(side, context, tuples, SUSPECT_BATCH_ROWS, frame, tx).await
        }
        Err(e) => {
            let _ = tx.send(Err(side.query_error(context, &e))).await;
        }
    }
}

/// Streams one COPY into batches. Errors go to the merge, which reports them.
async fn pump(side: &Side, conn: usize, sql: &str, context: &str, tx: mpsc::Sender<Result<Vec<Bytes>>>) {
    match side.client(conn).copy_out(sql).await {
        Ok(stream) => forward(side, context, stream, BATCH_ROWS, (None, None), tx).await,
        Err(e) => {
            let _ = tx.send(Err(side.query_error(context, &e))).await;
        }
    }
}

/// Hands messages to the merge in batches of `max_rows` (or `BATCH_BYTES`),
/// framed by the optional first and last messages; stops when the merge is gone.
async fn forward<S>(
    side: &Side,
    context: &str,
    stream: S,
    max_rows: usize,
    (first, last): (Option<Bytes>, Option<Bytes>),
    tx: mpsc::Sender<Result<Vec<Bytes>>>,
) where
    S: futures_util::Stream<Item = Result<Bytes, tokio_postgres::Error>>,
{
    pin_mut!(stream);
    let mut batch = Vec::with_capacity(max_rows);
    batch.extend(first);
    let mut bytes = 0usize;
    while let Some(item) = stream.next().await {
        match item {
            Ok(msg) => {
                bytes += msg.len();
                batch.push(msg);
                if batch.len() >= max_rows || bytes >= BATCH_BYTES {
                    bytes = 0;
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(max_rows));
                    if tx.send(Ok(full)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(side.query_error(context, &e))).await;
                return;
            }
        }
    }
    batch.extend(last);
    if !batch.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::hash_parts;

    #[test]
    fn a_table_gets_connections_by_its_share_of_the_rows() {
        // The benchmark's shop: orders 5 M, users and events 1 M each, four connections.
        assert_eq!(hash_parts(5_000_000, 7_000_000, 4), 3);
        assert_eq!(hash_parts(1_000_000, 7_000_000, 4), 1);
        // One table alone gets them all; an empty one among others still gets one.
        assert_eq!(hash_parts(40_000, 40_000, 4), 4);
        assert_eq!(hash_parts(0, 1_000_000, 4), 1);
        assert_eq!(hash_parts(i64::MAX, i64::MAX, 64), 64);
    }
}
