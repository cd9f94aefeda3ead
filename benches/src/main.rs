//! `shopbench`: the "shop" benchmark of docs/benchmarks.md.
//!
//! - `generate --scale N`: builds `shop_sN` (users N×200k, orders N×1M, events N×200k without a
//!   key), branches it as `shop_sN_branch` with `CREATE DATABASE … TEMPLATE`, and applies the
//!   change set. Deterministic: the same N gives the same data.
//! - `run --scale N`: times, interleaved, `pgbranchdiff` on the whole database (JSON report with
//!   every row), the floor (binary COPY of every table of both sides at once, in key order, to
//!   nowhere), and pg_comparator / reladiff on `orders` when they are installed; prints medians,
//!   ratios and peak memory, and checks the counts.
//!
//! `--server "host=… port=… user=…"` names the server (a superuser).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use futures_util::StreamExt;

#[derive(Parser)]
struct Args {
    /// libpq key=value string of the server, without dbname.
    #[arg(long, default_value = "host=/tmp port=5432 user=postgres")]
    server: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the parent and branch databases for a scale.
    Generate {
        #[arg(long, default_value_t = 1)]
        scale: u32,
    },
    /// Time the diff against the floor and the peers.
    Run {
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Timed rounds (each round runs every contender once).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// pgbranchdiff binary.
        #[arg(long, default_value = "target/release/pgbranchdiff")]
        bin: String,
        /// Extra arguments for pgbranchdiff.
        #[arg(long, allow_hyphen_values = true)]
        extra: Vec<String>,
        /// Skip pg_comparator and reladiff even when installed.
        #[arg(long)]
        no_peers: bool,
        /// Another pgbranchdiff binary (e.g. the previous commit's) timed in the same rounds
        /// on the same whole-database diff, for a before/after comparison.
        #[arg(long)]
        baseline: Option<String>,
    },
}

fn db(scale: u32) -> (String, String) {
    (format!("shop_s{scale}"), format!("shop_s{scale}_branch"))
}

async fn client(server: &str, dbname: &str) -> Result<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(&format!("{server} dbname={dbname}"), tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connect to {dbname}"))?;
    tokio::spawn(conn);
    Ok(c)
}

const SCHEMA: &str = "
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL, country char(2),
                    created_at timestamptz NOT NULL, balance numeric(10,2) NOT NULL, prefs jsonb NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), status text NOT NULL,
                     amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, note text);
CREATE TABLE events (user_id bigint NOT NULL, kind text NOT NULL, at timestamptz NOT NULL, amount int);";

fn data_sql(scale: u32) -> String {
    let users = scale as i64 * 200_000;
    let orders = scale as i64 * 1_000_000;
    let events = scale as i64 * 200_000;
    format!(
        "INSERT INTO users SELECT i, 'user' || i || '@example.com', 'User ' || i,
                (ARRAY['DE','FR','US','JP',NULL])[1 + i % 5], '2020-01-01'::timestamptz + i * interval '1 minute',
                (i % 100000) / 100.0, jsonb_build_object('lang', (ARRAY['en','de','fr'])[1 + i % 3], 'n', i % 7)
         FROM generate_series(1::bigint, {users}) i;
         INSERT INTO orders SELECT i, 1 + (i * 7919) % {users}, (ARRAY['new','paid','shipped','returned'])[1 + i % 4],
                (i % 100000) / 100.0, '2021-01-01'::timestamptz + i * interval '1 second',
                CASE WHEN i % 3 = 0 THEN NULL ELSE repeat('note ', (i % 17)::int) END
         FROM generate_series(1::bigint, {orders}) i;
         INSERT INTO events SELECT 1 + i % {users}, (ARRAY['view','click','buy'])[1 + i % 3],
                '2022-01-01'::timestamptz + (i / 2) * interval '1 second', (i % 1000)::int
         FROM generate_series(1::bigint, {events}) i;"
    )
}

/// 0.1 % of orders updated, 0.05 % deleted, 0.05 % inserted, spread evenly; 0.1 % of users change
/// email, 0.0667 % country; 0.5 % of events (one time slice) deleted.
fn change_sql(scale: u32) -> String {
    let orders = scale as i64 * 1_000_000;
    let users = scale as i64 * 200_000;
    format!(
        "UPDATE orders SET status = 'cancelled' WHERE id % 1000 = 7;
         DELETE FROM orders WHERE id % 2000 = 13;
         INSERT INTO orders SELECT {orders} + i, 1 + i % {users}, 'new', 1.00, '2025-01-01', 'branch' FROM generate_series(1, {scale} * 500) i;
         UPDATE users SET email = 'changed' || id || '@example.org' WHERE id % 1000 = 3;
         UPDATE users SET country = 'XX' WHERE id % 1500 = 5;
         DELETE FROM events WHERE at >= '2022-01-01 01:00:00+00' AND at < '2022-01-01 01:00:00+00'::timestamptz + ({scale} * 500) * interval '1 second';"
    )
}

async fn generate(server: &str, scale: u32) -> Result<()> {
    let (parent, branch) = db(scale);
    let admin = client(server, "postgres").await?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {branch}")).await?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {parent}")).await?;
    admin.batch_execute(&format!("CREATE DATABASE {parent}")).await?;
    let t = Instant::now();
    {
        let p = client(server, &parent).await?;
        p.batch_execute(SCHEMA).await?;
        p.batch_execute(&data_sql(scale)).await?;
        p.batch_execute("VACUUM ANALYZE").await?;
    }
    eprintln!("generated {parent} in {:.1}s", t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    admin.batch_execute(&format!("CREATE DATABASE {branch} TEMPLATE {parent}")).await?;
    eprintln!("branched {branch} in {:.1}s", t.elapsed().as_secs_f64());
    let b = client(server, &branch).await?;
    b.batch_execute(&change_sql(scale)).await?;
    b.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// Binary COPY of every table of both sides at once, in key order, discarded.
async fn floor(server: &str, scale: u32) -> Result<u64> {
    let (parent, branch) = db(scale);
    let queries = [
        "COPY (SELECT * FROM users ORDER BY id) TO STDOUT (FORMAT binary)",
        "COPY (SELECT * FROM orders ORDER BY id) TO STDOUT (FORMAT binary)",
        "COPY (SELECT * FROM events) TO STDOUT (FORMAT binary)",
    ];
    let mut tasks = vec![];
    for dbname in [parent, branch] {
        for q in queries {
            let c = client(server, &dbname).await?;
            tasks.push(tokio::spawn(async move {
                let s = c.copy_out(q).await?;
                futures_util::pin_mut!(s);
                let mut bytes = 0u64;
                while let Some(b) = s.next().await {
                    bytes += b?.len() as u64;
                }
                Ok::<u64, tokio_postgres::Error>(bytes)
            }));
        }
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}

#[derive(serde::Deserialize)]
struct Doc {
    tables: Vec<DocTable>,
}

#[derive(serde::Deserialize)]
struct DocTable {
    name: String,
    counts: DocCounts,
}

#[derive(serde::Deserialize)]
struct DocCounts {
    inserted: u64,
    updated: u64,
    deleted: u64,
}

struct Timed {
    secs: f64,
    max_rss_mb: f64,
    ok: bool,
}

/// Runs a command and measures wall time and peak resident memory (wait4's ru_maxrss).
/// Its standard output is discarded.
fn timed(cmd: &mut Command) -> Result<Timed> {
    let t = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().context("spawn")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } < 0 {
        bail!("wait4 failed");
    }
    let secs = t.elapsed().as_secs_f64();
    let code = libc::WEXITSTATUS(status);
    Ok(Timed { secs, max_rss_mb: usage.ru_maxrss as f64 / 1024.0, ok: libc::WIFEXITED(status) && code <= 1 })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn have(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().is_ok_and(|o| o.status.success())
}

fn param<'a>(server: &'a str, key: &str) -> Option<&'a str> {
    server.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

async fn run(
    server: &str,
    scale: u32,
    rounds: usize,
    bin: &str,
    extra: &[String],
    no_peers: bool,
    baseline: Option<&str>,
) -> Result<()> {
    let (parent, branch) = db(scale);
    let conn = |d: &str| format!("{server} dbname={d}");
    let mut ours = vec![];
    let mut floors = vec![];
    let mut cmp_times = vec![];
    let mut rel_times = vec![];
    let mut rss = 0f64;
    let (mut cmp_rss, mut rel_rss) = (0f64, 0f64);
    let host = param(server, "host").unwrap_or("localhost");
    let port = param(server, "port").unwrap_or("5432");
    let user = param(server, "user").unwrap_or("postgres");
    let pg_comparator = !no_peers && have("pg_comparator");
    let reladiff = !no_peers && have("reladiff");
    let mut ours_orders = vec![];
    let mut ours_stream = vec![];
    let mut base_times = vec![];
    if pg_comparator {
        // pg_comparator needs its helper extension on both sides (benchmark databases only).
        for d in [&parent, &branch] {
            client(server, d).await?.batch_execute("CREATE EXTENSION IF NOT EXISTS pgcmp").await?;
        }
    }
    for round in 0..rounds {
        let t = Instant::now();
        let bytes = floor(server, scale).await?;
        floors.push(t.elapsed().as_secs_f64());
        // The report goes to a file and only names and counts are parsed, so this
        // process stays small: a forked child inherits its high-water RSS on Linux.
        let report = std::env::temp_dir().join(format!("shopbench-{}.json", std::process::id()));
        let mut cmd = Command::new(bin);
        cmd.args(["--format", "json", "--quiet", "-o"]).arg(&report).args(extra).arg(conn(&parent)).arg(conn(&branch));
        let r = timed(&mut cmd)?;
        if !r.ok {
            bail!("pgbranchdiff failed");
        }
        ours.push(r.secs);
        rss = rss.max(r.max_rss_mb);
        let doc: Doc = serde_json::from_reader(std::io::BufReader::new(std::fs::File::open(&report)?))?;
        let _ = std::fs::remove_file(&report);
        let counts = |t: &str| {
            let t = doc.tables.iter().find(|x| x.name == t).expect("table in report");
            (t.counts.inserted, t.counts.updated, t.counts.deleted)
        };
        let want = (scale as u64 * 500, scale as u64 * 1000, scale as u64 * 500);
        if counts("orders") != want {
            bail!("orders counts {:?}, expected {:?}", counts("orders"), want);
        }
        eprintln!(
            "round {round}: floor {:.2}s ({} MB), pgbranchdiff {:.2}s ({:.0} MB peak); orders {:?} users {:?} events {:?}",
            floors.last().unwrap(),
            bytes / 1_000_000,
            r.secs,
            r.max_rss_mb,
            counts("orders"),
            counts("users"),
            counts("events")
        );
        if let Some(base) = baseline {
            let mut cmd = Command::new(base);
            cmd.args(["--format", "json", "--quiet", "-o", "/dev/null"])
                .args(extra)
                .arg(conn(&parent))
                .arg(conn(&branch));
            let r = timed(&mut cmd)?;
            base_times.push(r.secs);
            eprintln!("round {round}: baseline {base} {:.2}s ({:.0} MB peak)", r.secs, r.max_rss_mb);
        }
        // The same diff reading every row (no tuple identity), and orders alone, for the peers.
        let mut cmd = Command::new(bin);
        cmd.args(["--format", "json", "--quiet", "-o", "/dev/null", "--strategy", "stream"])
            .args(extra)
            .arg(conn(&parent))
            .arg(conn(&branch));
        let r = timed(&mut cmd)?;
        ours_stream.push(r.secs);
        rss = rss.max(r.max_rss_mb);
        let mut cmd = Command::new(bin);
        cmd.args(["--format", "json", "--quiet", "-o", "/dev/null", "--table", "orders"])
            .args(extra)
            .arg(conn(&parent))
            .arg(conn(&branch));
        let r = timed(&mut cmd)?;
        ours_orders.push(r.secs);
        eprintln!(
            "round {round}: pgbranchdiff --strategy stream {:.2}s, pgbranchdiff orders {:.2}s",
            ours_stream.last().unwrap(),
            r.secs
        );
        if pg_comparator {
            let cols = "user_id,status,amount,created_at,note";
            let url = |d: &str| {
                format!(
                    "pgsql://{user}@{}:{port}/{d}/orders?id:{cols}",
                    if host.starts_with('/') { "localhost" } else { host }
                )
            };
            let r = timed(Command::new("pg_comparator").args(["--no-lock", &url(&parent), &url(&branch)]))?;
            cmp_times.push(r.secs);
            cmp_rss = cmp_rss.max(r.max_rss_mb);
            eprintln!("round {round}: pg_comparator {:.2}s ({:.0} MB)", r.secs, r.max_rss_mb);
        }
        if reladiff {
            let url = |d: &str| format!("postgresql://{user}@127.0.0.1:{port}/{d}");
            let r = timed(Command::new("reladiff").args([
                &url(&parent),
                "orders",
                &url(&branch),
                "orders",
                "-k",
                "id",
                "-c",
                "%",
                "-j",
                "2",
                "--stats",
            ]))?;
            rel_times.push(r.secs);
            rel_rss = rel_rss.max(r.max_rss_mb);
            eprintln!("round {round}: reladiff {:.2}s ({:.0} MB)", r.secs, r.max_rss_mb);
        }
    }
    let (o, f) = (median(&mut ours), median(&mut floors));
    let (st, oo) = (median(&mut ours_stream), median(&mut ours_orders));
    println!("scale {scale}, {rounds} rounds (medians)");
    println!("  floor (binary COPY, all tables, both sides)  {f:.2}s");
    println!("  pgbranchdiff whole database, JSON            {o:.2}s  = {:.2} x floor", o / f);
    if !base_times.is_empty() {
        let b = median(&mut base_times);
        println!("  baseline whole database, JSON                {b:.2}s  = {:.2} x floor", b / f);
    }
    println!("  pgbranchdiff --strategy stream, JSON         {st:.2}s  = {:.2} x floor", st / f);
    println!("  pgbranchdiff peak memory (any run)           {rss:.0} MB");
    println!("  pgbranchdiff orders only                     {oo:.2}s");
    if !cmp_times.is_empty() {
        let c = median(&mut cmp_times);
        println!(
            "  pg_comparator orders                         {c:.2}s  (peak {cmp_rss:.0} MB) = {:.1} x pgbranchdiff",
            c / oo
        );
    }
    if !rel_times.is_empty() {
        let r = median(&mut rel_times);
        println!(
            "  reladiff orders                              {r:.2}s  (peak {rel_rss:.0} MB) = {:.1} x pgbranchdiff",
            r / oo
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.cmd {
        Cmd::Generate { scale } => generate(&args.server, scale).await,
        Cmd::Run { scale, rounds, bin, extra, no_peers, baseline } => {
            run(&args.server, scale, rounds, &bin, &extra, no_peers, baseline.as_deref()).await
        }
    }
}
