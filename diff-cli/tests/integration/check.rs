//! `pgbranchdiff check` through the binary: snapshot formats restored into a
//! throwaway cluster, branches on an existing server, `--branch`, `--run`,
//! exit codes, `--keep`, and cleanup after success, failure and SIGTERM (no
//! leftover processes, directories or databases). Expected counts follow from
//! the fixtures' arithmetic (comments say how).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{self, branch, cli, cluster, conn, connect, counts, Run};

/// customers: ids 1..=50; email `u<i % 40>@x`, so ids 41..=50 repeat the emails of ids
/// 1..=10 (10 values held by 2 rows each); country NULL for ids divisible by 4 (12 rows).
/// orders: ids 1..=20, customer 1 + i % 50.
const SETUP: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, country text);
    INSERT INTO customers SELECT i, 'u' || (i % 40) || '@x', CASE WHEN i % 4 <> 0 THEN 'DE' END
      FROM generate_series(1, 50) i;
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, note text);
    INSERT INTO orders SELECT i, 1 + i % 50, NULL FROM generate_series(1, 20) i;";

/// Succeeds and loses data: 12 customers without a country deleted (their orders first: customer
/// 1 + i % 50 for i in 1..=20 is 2..=21, of which 4, 8, 12, 16, 20 are divisible by 4: orders 3, 7,
/// 11, 15, 19), and the note column dropped.
const LOSES_DATA: &str = "DELETE FROM orders WHERE customer_id % 4 = 0;
    DELETE FROM customers WHERE country IS NULL;
    ALTER TABLE orders DROP COLUMN note;";

/// Fails on the duplicated emails.
const FAILS_ON_DUPLICATES: &str = "CREATE TABLE audit (id int);
    CREATE UNIQUE INDEX customers_email ON customers (email);";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pgbranchdiff")
}

/// A directory the server's user can traverse, for snapshots, migrations and TMPDIR.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pgbd-check-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A parent database built from `setup` (the harness's pair; its child is a plain copy).
fn parent(tag: &str, setup: &str) -> harness::Pair {
    branch(tag, setup, "")
}

/// Databases on the test server whose name starts with `prefix`.
fn databases_like(prefix: &str) -> Vec<String> {
    connect("postgres")
        .query("SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", &[&prefix])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `pgbranchdiff check …` with TMPDIR set to `tmp` (where a throwaway cluster lives).
fn check(args: &[&str], tmp: &Path) -> Run {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    cli(&all, &[("TMPDIR", tmp.to_str().unwrap())])
}

/// Nothing left in `tmp` and no process whose command line names it.
fn assert_no_leftovers(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let ps = Command::new("pgrep").arg("-af").arg(tmp.to_str().unwrap()).output().unwrap();
    let procs = String::from_utf8_lossy(&ps.stdout);
    assert!(procs.trim().is_empty(), "processes still running: {procs}");
}

fn pg_dump(db: &str, format: &str, out: &Path) -> bool {
    let dump = [harness::bindir().join("pg_dump"), PathBuf::from("pg_dump")]
        .into_iter()
        .find(|p| p.components().count() == 1 || p.exists())
        .unwrap();
    let o = Command::new(dump)
        .arg(format!("--format={format}"))
        .arg("-f")
        .arg(out)
        .arg("-d")
        .arg(conn(db))
        .output()
        .unwrap();
    if !o.status.success() {
        // PostgreSQL 18 from npm ships no pg_dump, and an older one refuses a newer server.
        eprintln!("skipped: pg_dump failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    o.status.success()
}

#[test]
fn snapshot_formats_plain_custom_directory_tar() {
    // Roles the throwaway cluster does not have: pg_restore leaves ownership and privileges out,
    // a plain dump gets them created.
    let roles = "DO $$BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chk_owner') THEN CREATE ROLE chk_owner; END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chk_reader') THEN CREATE ROLE chk_reader; END IF;
        END$$;
        ALTER TABLE orders OWNER TO chk_owner; GRANT SELECT ON customers TO chk_reader;";
    let pair = parent("chk_fmt", &format!("{SETUP}{roles}"));
    let work = workdir();
    let migration = write(work.path(), "0001.sql", LOSES_DATA);
    let formats = [
        ("plain", "shop.sql", "plain SQL"),
        ("custom", "shop.dump", "custom"),
        ("directory", "shop.dir", "directory"),
        ("tar", "shop.tar", "tar"),
    ];
    for (format, file, name) in formats {
        let snap = work.path().join(file);
        if !pg_dump(&pair.parent, format, &snap) {
            return;
        }
        let tmp = workdir();
        let run = check(
            &["--snapshot", snap.to_str().unwrap(), "--migration", migration.to_str().unwrap(), "--format", "json"],
            tmp.path(),
        );
        // Differences alone do not fail a check.
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        let doc = run.json();
        assert_eq!(doc["check"]["source"]["format"], name, "{format}");
        assert_eq!(doc["check"]["branch"]["created"], true);
        assert!(doc["check"]["branch"]["millis"].is_u64());
        assert_eq!(counts(&doc, "public.customers"), (0, 0, 12), "{format}");
        assert_eq!(counts(&doc, "public.orders"), (0, 0, 5), "{format}");
        assert_no_leftovers(tmp.path());
    }
}

#[test]
fn database_is_branched_and_the_branch_dropped() {
    let pair = parent("chk_db", SETUP);
    let work = workdir();
    let migration = write(work.path(), "m.sql", LOSES_DATA);
    let run = check(
        &["--database", &conn(&pair.parent), "--migration", migration.to_str().unwrap(), "--format", "json"],
        work.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    let name = doc["check"]["branch"]["database"].as_str().unwrap().to_string();
    assert!(name.starts_with(&format!("{}_check_", pair.parent)), "{name}");
    assert_eq!(counts(&doc, "public.customers"), (0, 0, 12));
    assert!(run.stderr.contains("branched"), "{}", run.stderr);
    let schema: serde_json::Value = serde_json::from_str(include_str!("../../../docs/output-schema.json")).unwrap();
    let mut errors = vec![];
    crate::schema_doc::validate(&schema, &schema, &doc, "$", &mut errors);
    let migration_schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/migration-schema.json")).unwrap();
    crate::schema_doc::validate(
        &migration_schema,
        &migration_schema,
        &doc["check"]["migration"],
        "$.check.migration",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(databases_like(&format!("{}_check_", pair.parent)), Vec::<String>::new());
    // The parent is untouched.
    let n: i64 = connect(&pair.parent).query_one("SELECT count(*) FROM customers", &[]).unwrap().get(0);
    assert_eq!(n, 50);

    // --keep: the branch stays, migrated, and stderr says how to connect to it.
    let run = check(
        &["--database", &conn(&pair.parent), "--migration", migration.to_str().unwrap(), "--format", "json", "--keep"],
        work.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let name = run.json()["check"]["branch"]["database"].as_str().unwrap().to_string();
    assert_eq!(databases_like(&format!("{}_check_", pair.parent)), vec![name.clone()]);
    assert!(run.stderr.contains(&format!("dbname={name}")), "{}", run.stderr);
    let n: i64 = connect(&name).query_one("SELECT count(*) FROM customers", &[]).unwrap().get(0);
    assert_eq!(n, 38);
    harness::exec("postgres", &format!("DROP DATABASE {name}"));

    // NDJSON: the check is a line of its own ahead of `begin`, valid against `line_check`.
    let run = check(
        &["--database", &conn(&pair.parent), "--migration", migration.to_str().unwrap(), "--format", "ndjson"],
        work.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["type"], "check");
    assert_eq!(lines[1]["type"], "begin");
    assert_eq!(lines.last().unwrap()["type"], "summary");
    let mut errors = vec![];
    crate::schema_doc::validate(&schema, &schema["$defs"]["line_check"], &lines[0], "check line", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    // SQL: what was checked heads the patch as comments; the patch itself starts after.
    let run = check(
        &["--database", &conn(&pair.parent), "--migration", migration.to_str().unwrap(), "--format", "sql"],
        work.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before_begin = &run.stdout[..run.stdout.find("\nBEGIN;").expect("a transaction")];
    assert!(
        before_begin
            .lines()
            .all(|l| l.is_empty() || l.starts_with("--") || l.starts_with("SET ") || l.starts_with("\\")),
        "{before_begin}"
    );
    assert!(run.stdout.contains("DELETE FROM"), "{}", run.stdout);
    // Arrow: the check beside the files, as check.json.
    let report = work.path().join("arrow-report");
    let run = check(
        &[
            "--database",
            &conn(&pair.parent),
            "--migration",
            migration.to_str().unwrap(),
            "--format",
            "arrow",
            "-o",
            report.to_str().unwrap(),
        ],
        work.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let check_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("check.json")).unwrap()).unwrap();
    assert!(check_json["migration"].is_object(), "{check_json}");
    assert!(report.join("tables.arrow").exists() && report.join("public.customers.arrow").exists());
}

#[test]
fn gate_and_failing_migration_exit_1_and_clean_up() {
    let pair = parent("chk_exit", SETUP);
    let work = workdir();
    let loses = write(work.path(), "loses.sql", LOSES_DATA);
    let fails = write(work.path(), "fails.sql", FAILS_ON_DUPLICATES);
    let db = conn(&pair.parent);
    let prefix = format!("{}_check_", pair.parent);

    let gate =
        check(&["--database", &db, "--migration", loses.to_str().unwrap(), "--fail-on", "data-loss"], work.path());
    assert_eq!(gate.code, 1, "{}", gate.stderr);
    let passed = check(
        &[
            "--database",
            &db,
            "--migration",
            loses.to_str().unwrap(),
            "--fail-on",
            "schema",
            "--accept",
            "public.*",
            "--format",
            "json",
        ],
        work.path(),
    );
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    assert_eq!(passed.json()["gate"]["passed"], true);

    let failed = check(&["--database", &db, "--migration", fails.to_str().unwrap(), "--format", "json"], work.path());
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    // A gate that an empty diff would pass is not shown as passed beside a failed migration.
    for format in ["text", "markdown", "json"] {
        let args =
            ["--database", &db, "--migration", fails.to_str().unwrap(), "--fail-on", "data-loss", "--format", format];
        let run = check(&args, work.path());
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stdout.contains("gate passed"), "{format}: {}", run.stdout);
        if format == "json" {
            let v = &run.json()["check"]["verdict"];
            assert_eq!((v["passed"].as_bool(), v["gate_evaluated"].as_bool()), (Some(false), Some(false)), "{v}");
            assert!(run.json()["gate"].is_null(), "{}", run.stdout);
        } else {
            assert!(run.stdout.contains("Check FAILED: the migration failed at "), "{format}: {}", run.stdout);
            assert!(run.stdout.contains("The gate (--fail-on data-loss) was not evaluated."), "{}", run.stdout);
        }
    }
    let doc = failed.json();
    let failure = &doc["check"]["migration"]["failure"];
    assert_eq!(failure["sqlstate"], "23505", "{failure:#}");
    // Every duplicated email with its number of rows, as an independent GROUP BY on the parent
    // (unchanged by the migration) counts them: u1@x … u10@x, 2 rows each.
    let dups: Vec<(String, i64)> = connect(&pair.parent)
        .query("SELECT email, count(*) FROM customers GROUP BY email HAVING count(*) > 1 ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(dups.len(), 10);
    let rows = failure["explanation"]["rows"].as_array().unwrap_or_else(|| panic!("no explanation: {failure:#}"));
    for (email, n) in &dups {
        let row = rows
            .iter()
            .find(|r| r.as_array().unwrap().iter().any(|c| c.as_str() == Some(email)))
            .unwrap_or_else(|| panic!("{email} not listed: {failure:#}"));
        assert!(row.as_array().unwrap().iter().any(|c| c.as_str() == Some(&n.to_string())), "{row} lacks {n}");
    }
    assert_eq!(databases_like(&prefix), Vec::<String>::new());

    // Over budget: a one-second statement against 300 ms.
    let slow = write(work.path(), "slow.sql", "SELECT pg_sleep(1);");
    let over = check(
        &["--database", &db, "--migration", slow.to_str().unwrap(), "--max-duration", "300ms", "--format", "json"],
        work.path(),
    );
    assert_eq!(over.code, 1, "{}", over.stderr);
    assert_eq!(over.json()["check"]["migration"]["over_budget"], true);
    let within =
        check(&["--database", &db, "--migration", slow.to_str().unwrap(), "--max-duration", "30s"], work.path());
    assert_eq!(within.code, 0, "{}", within.stderr);

    // Trouble: a migration file that does not exist, a snapshot that does not restore.
    let missing = check(&["--database", &db, "--migration", "/nonexistent/m.sql"], work.path());
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("/nonexistent/m.sql"), "{}", missing.stderr);
    let bad = write(work.path(), "bad.sql", "CREATE TABLE t (id int);\nINSERT INTO nosuch VALUES (1);\n");
    let tmp = workdir();
    let run = check(&["--snapshot", bad.to_str().unwrap(), "--migration", loses.to_str().unwrap()], tmp.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("relation \"nosuch\" does not exist"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_no_leftovers(tmp.path());
    assert_eq!(databases_like(&prefix), Vec::<String>::new());
}

#[test]
fn failing_migration_on_a_snapshot_leaves_nothing() {
    let work = workdir();
    let snap = write(work.path(), "snap.sql", SETUP);
    let fails = write(work.path(), "fails.sql", FAILS_ON_DUPLICATES);
    let tmp = workdir();
    let run = check(&["--snapshot", snap.to_str().unwrap(), "--migration", fails.to_str().unwrap()], tmp.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The text report names the failing statement; then the diff follows.
    assert!(run.stdout.contains("CREATE UNIQUE INDEX customers_email"), "{}", run.stdout);
    assert!(run.stdout.contains("parent: "), "{}", run.stdout);
    assert_no_leftovers(tmp.path());
}

#[test]
fn existing_branch_is_used_and_left_in_place() {
    let pair = parent("chk_given", SETUP);
    let work = workdir();
    let migration = write(work.path(), "m.sql", LOSES_DATA);
    let run = check(
        &[
            "--database",
            &conn(&pair.parent),
            "--branch",
            &conn(&pair.child),
            "--migration",
            migration.to_str().unwrap(),
            "--format",
            "json",
        ],
        work.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["check"]["branch"]["created"], false);
    assert_eq!(doc["check"]["branch"]["database"], pair.child.as_str());
    assert_eq!(counts(&doc, "public.customers"), (0, 0, 12));
    // Still there, migrated: 50 - 12 customers.
    let n: i64 = connect(&pair.child).query_one("SELECT count(*) FROM customers", &[]).unwrap().get(0);
    assert_eq!(n, 38);
    assert_eq!(databases_like(&format!("{}_check_", pair.parent)), Vec::<String>::new());
}

#[test]
fn run_command_applies_sql_through_the_environment() {
    let pair = parent("chk_run", SETUP);
    let work = workdir();
    let psql = [harness::bindir().join("psql"), PathBuf::from("psql")]
        .into_iter()
        .find(|p| p.components().count() == 1 || p.exists())
        .unwrap();
    // Only the environment says where the branch is.
    let cmd = format!("{} -X -q -v ON_ERROR_STOP=1 -c 'DELETE FROM orders WHERE id <= 4'", psql.display());
    let run = check(&["--database", &conn(&pair.parent), "--run", &cmd, "--format", "json"], work.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counts(&run.json(), "public.orders"), (0, 0, 4));
    let failing = check(&["--database", &conn(&pair.parent), "--run", "exit 3"], work.path());
    assert_eq!(failing.code, 1, "{}", failing.stderr);
    assert_eq!(databases_like(&format!("{}_check_", pair.parent)), Vec::<String>::new());
}

#[test]
fn other_sessions_on_the_source_are_named() {
    let pair = parent("chk_busy", SETUP);
    let work = workdir();
    let migration = write(work.path(), "m.sql", LOSES_DATA);
    let _held =
        postgres::Client::connect(&format!("{} application_name=busy_worker", conn(&pair.parent)), postgres::NoTls)
            .unwrap();
    let run = check(&["--database", &conn(&pair.parent), "--migration", migration.to_str().unwrap()], work.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("other sessions are connected") && run.stderr.contains("busy_worker"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

#[test]
fn keep_leaves_a_working_branch_and_says_how_to_connect() {
    let work = workdir();
    let snap = write(work.path(), "keep.sql", SETUP);
    let migration = write(work.path(), "m.sql", LOSES_DATA);
    let tmp = workdir();
    let run = check(
        &["--snapshot", snap.to_str().unwrap(), "--migration", migration.to_str().unwrap(), "--keep"],
        tmp.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let conninfo =
        run.stderr.lines().find_map(|l| l.split_once("psql \"").map(|(_, c)| c.trim_end_matches('"').to_string()));
    let conninfo = conninfo.unwrap_or_else(|| panic!("no psql line: {}", run.stderr));
    let n: i64 = postgres::Client::connect(&conninfo, postgres::NoTls)
        .unwrap()
        .query_one("SELECT count(*) FROM customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 38);
    let stop = run.stderr.lines().find_map(|l| l.split_once("stop it with: ").map(|(_, c)| c.to_string())).unwrap();
    let out = Command::new("sh").arg("-c").arg(&stop).output().unwrap();
    assert!(out.status.success(), "{stop}: {}", String::from_utf8_lossy(&out.stderr));
    assert_no_leftovers(tmp.path());
}

/// Starts a check, waits until it has branched, sends SIGTERM, returns the exit code.
fn terminate_while_migrating(args: &[&str], tmp: &Path) -> i32 {
    let mut child = Command::new(bin())
        .arg("check")
        .args(args)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| panic!("check never branched ({e}); stderr: {seen:#?}; {:?}", child.try_wait()));
        if line.contains("branched") {
            break;
        }
        seen.push(line);
    }
    // Let the migration start.
    std::thread::sleep(Duration::from_millis(700));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "check did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_cleans_up_cluster_and_branch() {
    let work = workdir();
    let snap = write(work.path(), "term.sql", SETUP);
    let slow = write(work.path(), "slow.sql", "SELECT pg_sleep(60);");
    let tmp = workdir();
    let code = terminate_while_migrating(
        &["--snapshot", snap.to_str().unwrap(), "--migration", slow.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(code, 130);
    assert_no_leftovers(tmp.path());

    let pair = parent("chk_term", SETUP);
    let code = terminate_while_migrating(&["--database", &conn(&pair.parent), "--run", "sleep 60"], work.path());
    assert_eq!(code, 130);
    assert_eq!(databases_like(&format!("{}_check_", pair.parent)), Vec::<String>::new());
    let _ = cluster();
}

/// The example in testdata/check: what its migrations' comments promise, worked out from
/// testdata/shop.sql (the snapshot is a pg_dump of it).
#[test]
fn testdata_snapshot_and_migrations_do_what_they_say() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/check");
    let snap = root.join("shop.sql");
    let tmp = workdir();
    let loses = root.join("migrations/0041_drop_country.sql");
    let run = check(
        &[
            "--snapshot",
            snap.to_str().unwrap(),
            "--migration",
            loses.to_str().unwrap(),
            "--fail-on",
            "data-loss",
            "--format",
            "json",
        ],
        tmp.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["check"]["migration"]["failure"], serde_json::Value::Null);
    let losses: Vec<(String, String, u64)> =
        crate::data_loss::losses(&doc).into_iter().map(|((kind, object), n)| (kind, object, n)).collect();
    // 50 customers with a country, 2 coupons, 2 'boot' entries.
    let want = [
        ("deleted_rows", "public.audit_log", 2),
        ("dropped_column", "public.customers.country", 50),
        ("dropped_table", "public.legacy_coupons", 2),
    ];
    assert_eq!(losses, want.map(|(k, o, n)| (k.to_string(), o.to_string(), n)).to_vec());

    let fails = root.join("migrations/0042_one_order_per_status.sql");
    let run = check(
        &["--snapshot", snap.to_str().unwrap(), "--migration", fails.to_str().unwrap(), "--format", "json"],
        tmp.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let e = &run.json()["check"]["migration"]["failure"]["explanation"];
    // Orders i and i + 150 (i in 1..=50) share customer 1 + i % 50 and status i % 3: 50 pairs.
    assert_eq!(e["total"], 50, "{e:#}");
    assert_eq!(e["columns"], serde_json::json!(["customer_id", "status", "rows"]));
    assert_no_leftovers(tmp.path());
}

/// SIGTERM at random moments of a whole check (initdb, start, restore, branch, migration, diff,
/// cleanup): whatever was started is stopped and removed, no process and no directory is left
/// (a check that finished first exits 1, its migration failing). 100 moments on the default
/// server, 20 on others (`PGBRANCHDIFF_INTERRUPTS` sets the number).
#[test]
fn sigterm_at_any_moment_leaves_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/check");
    let tmp = workdir();
    let run = |tmp: &Path| {
        Command::new(bin())
            .args(["check", "--quiet", "--snapshot"])
            .arg(root.join("shop.sql"))
            .arg("--migration")
            .arg(root.join("migrations"))
            .env("TMPDIR", tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // The shorter of two whole runs: on a loaded machine one slow run would put most moments after the end.
    let mut span = usize::MAX;
    for _ in 0..2 {
        let t0 = Instant::now();
        let whole = run(tmp.path()).wait_with_output().unwrap();
        assert_eq!(whole.status.code(), Some(1));
        span = span.min(t0.elapsed().as_millis() as usize);
        assert_no_leftovers(tmp.path());
    }
    let default_server = std::env::var_os("PGBRANCHDIFF_PG_BIN").is_none();
    let n: usize = std::env::var("PGBRANCHDIFF_INTERRUPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if default_server { 100 } else { 20 });
    let mut rng = crate::differential::Rng::new(20261203);
    let mut interrupted = 0;
    for k in 0..n {
        // Up to 10 % past the measured run: also after it, when it may be cleaning up.
        let delay = rng.below(span + span / 10 + 1);
        let mut child = run(tmp.path());
        std::thread::sleep(Duration::from_millis(delay as u64));
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let code = status.code();
        // Killed by the signal itself: it came before the handler was installed, when nothing ran yet.
        use std::os::unix::process::ExitStatusExt;
        let early = status.signal() == Some(libc::SIGTERM);
        assert!(early || matches!(code, Some(130) | Some(1)), "moment {k}, after {delay} ms of {span}: {status:?}");
        interrupted += usize::from(code == Some(130));
        assert_no_leftovers(tmp.path());
    }
    // The moments fell inside the run, not all after it.
    assert!(interrupted * 2 >= n, "only {interrupted} of {n} runs were interrupted");
}

/// Found by a new user: `--branch` naming the source itself is refused (the
/// migration would run on it); a `pg_dump --create` plain dump branches the
/// database it creates; PGHOSTADDR in the environment does not redirect the
/// throwaway cluster's connections; a file that leaves a transaction open is
/// a failed migration, not an applied one.
#[test]
fn mistakes_a_new_user_makes_are_caught() {
    let pair = parent("chk_mistakes", SETUP);
    let work = workdir();
    let ok = write(work.path(), "ok.sql", "ALTER TABLE customers ADD COLUMN note text;");
    let same = check(
        &["--database", &conn(&pair.parent), "--branch", &conn(&pair.parent), "--migration", ok.to_str().unwrap()],
        work.path(),
    );
    assert_eq!(same.code, 2, "{}", same.stderr);
    assert!(same.stderr.contains("is the database given with --database itself"), "{}", same.stderr);
    let cols: i64 = connect(&pair.parent)
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'note'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(cols, 0, "the source was migrated");

    let open = write(work.path(), "open.sql", "BEGIN;\nDELETE FROM orders;\n");
    let run = check(
        &["--database", &conn(&pair.parent), "--migration", open.to_str().unwrap(), "--format", "json"],
        work.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["check"]["migration"]["failure"]["kind"], "open_transaction");
    assert_eq!(counts(&run.json(), "public.orders"), (0, 0, 0), "the open transaction was rolled back");

    let dump = work.path().join("created.sql");
    let tmp = workdir();
    if pg_dump_create(&pair.parent, &dump) {
        let run = cli(
            &["check", "--snapshot", dump.to_str().unwrap(), "--migration", ok.to_str().unwrap(), "--format", "json"],
            &[("TMPDIR", tmp.path().to_str().unwrap()), ("PGHOSTADDR", "192.0.2.1")],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains(&format!("branched \"{}\"", pair.parent)), "{}", run.stderr);
        assert_eq!(run.json()["check"]["migration"]["statements"].as_array().unwrap().len(), 1);
        assert_no_leftovers(tmp.path());
    }
}

fn pg_dump_create(db: &str, out: &Path) -> bool {
    let o = Command::new(harness::bindir().join("pg_dump"))
        .args(["--create", "--format=plain", "-f"])
        .arg(out)
        .arg("-d")
        .arg(conn(db))
        .output();
    match o {
        Ok(o) if o.status.success() => true,
        // PostgreSQL 18 from npm ships no pg_dump, and an older one refuses a newer server.
        r => {
            eprintln!("skipped the --create dump: {r:?}");
            false
        }
    }
}

/// A Python with alembic (SQLAlchemy 2.1 uses psycopg 3 for `postgresql://`), psycopg2 and
/// dj-database-url from PyPI: a venv made once (and reused)
/// under the target directory.
fn migration_tools_python() -> &'static Path {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        crate::harness::python_venv(
            "migration-tools-venv",
            &["alembic", "psycopg[binary]", "psycopg2-binary", "dj-database-url"],
            "alembic, psycopg, psycopg2, dj_database_url",
        )
    })
}

/// node's pg-connection-string from npm, installed once under the target directory.
fn pg_connection_string() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pg-connection-string");
        if !dir.join("node_modules/pg-connection-string").exists() {
            let out = Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg("pg-connection-string")
                .output()
                .expect("this test needs npm");
            assert!(out.status.success(), "npm install pg-connection-string: {}", String::from_utf8_lossy(&out.stderr));
        }
        dir
    })
}

/// `--run` with alembic's standard env.py pattern (configparser interpolation of the URL), Django's
/// way of connecting from `dj-database-url`, and node's `pg-connection-string`, against a
/// throwaway cluster (`--snapshot`, a socket directory) and a server (`--database`).
#[test]
fn run_gives_a_url_every_common_tool_accepts() {
    let py = migration_tools_python();
    let node_dir = pg_connection_string();
    let pair = parent("chk_tools", SETUP);
    let work = workdir();
    let project = work.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let bin_dir = py.parent().unwrap();
    let out = Command::new(bin_dir.join("alembic")).args(["init", "alembic"]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "alembic init: {}", String::from_utf8_lossy(&out.stderr));
    let env_py = project.join("alembic/env.py");
    let text = std::fs::read_to_string(&env_py).unwrap();
    let text = text.replacen(
        "config = context.config\n",
        "config = context.config\nimport os\nconfig.set_main_option(\"sqlalchemy.url\", os.environ[\"DATABASE_URL\"])\n",
        1,
    );
    assert!(text.contains("os.environ[\"DATABASE_URL\"]"));
    std::fs::write(&env_py, text).unwrap();
    write(
        &project.join("alembic/versions"),
        "0001_delete.py",
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\nfrom alembic import op\n\n\
         def upgrade():\n    op.execute('DELETE FROM orders WHERE id <= 4')\n\n\ndef downgrade():\n    pass\n",
    );
    // Django's postgresql backend: OPTIONS first, then HOST and PORT when set.
    write(
        &project,
        "django_connect.py",
        "import os, dj_database_url, psycopg2\n\
         c = dj_database_url.parse(os.environ['DATABASE_URL'])\n\
         p = dict(c.get('OPTIONS') or {})\n\
         p.update(dbname=c['NAME'], user=c['USER'])\n\
         if c.get('HOST'): p['host'] = c['HOST']\n\
         if c.get('PORT'): p['port'] = c['PORT']\n\
         psycopg2.connect(**p).cursor().execute('SELECT 1')\n",
    );
    write(
        &project,
        "pcs.js",
        "const p = require('pg-connection-string').parse(process.env.DATABASE_URL);\n\
         const e = process.env;\n\
         if (p.host !== e.PGHOST || String(p.port) !== e.PGPORT || p.database !== e.PGDATABASE || p.user !== e.PGUSER) {\n\
           console.error('pg-connection-string read', JSON.stringify(p)); process.exit(5);\n\
         }\n",
    );
    let cmd = format!(
        "cd {} && {} upgrade head && {} django_connect.py && NODE_PATH={} node pcs.js",
        project.display(),
        bin_dir.join("alembic").display(),
        py.display(),
        node_dir.join("node_modules").display()
    );
    let snap = write(work.path(), "snap.sql", SETUP);
    let tmp = workdir();
    for source in [["--snapshot", snap.to_str().unwrap()], ["--database", &conn(&pair.parent)]] {
        let mut args = source.to_vec();
        args.extend(["--run", &cmd, "--format", "json"]);
        let run = check(&args, tmp.path());
        assert_eq!(run.code, 0, "{source:?}: {}", run.stderr);
        assert_eq!(counts(&run.json(), "public.orders"), (0, 0, 4), "{source:?}");
        // FILE_COPY on the throwaway cluster forces a checkpoint; the default on a server under 64 MB does
        // not, from PostgreSQL 15 on (before 15 every CREATE DATABASE copies files and checkpoints).
        let b = &run.json()["check"]["branch"];
        let forced = source[0] == "--snapshot" || crate::harness::cluster().version_num < 150000;
        assert_eq!(b["checkpoint"], serde_json::json!(forced), "{b}");
    }
    assert_no_leftovers(tmp.path());
}

/// `--redact` covers the failure too: PostgreSQL's DETAIL, the duplicate values, CHECK violators and
/// a failing cast's input, in every format. Every email of SETUP is `u<n>@x`.
#[test]
fn redaction_covers_the_failure_in_every_format() {
    let pair = parent("chk_redact", SETUP);
    let work = workdir();
    let db = conn(&pair.parent);
    let migrations = [
        write(work.path(), "dup.sql", "CREATE UNIQUE INDEX customers_email ON customers (email);"),
        write(work.path(), "check.sql", "ALTER TABLE customers ADD CONSTRAINT at_z CHECK (email LIKE 'z%');"),
        write(work.path(), "cast.sql", "ALTER TABLE customers ALTER COLUMN email TYPE int USING email::int;"),
        // PostgreSQL's "Failing row contains (5, u5@x, FR)", from an UPDATE on another column (a new user's case).
        write(
            work.path(),
            "row.sql",
            "ALTER TABLE customers ADD CONSTRAINT not_fr CHECK (country <> 'FR');\n\
             UPDATE customers SET country = 'FR' WHERE id = 5;",
        ),
    ];
    for m in &migrations {
        // Without --redact the values are there: the test can see them.
        let plain = check(&["--database", &db, "--migration", m.to_str().unwrap()], work.path());
        assert_eq!(plain.code, 1, "{}", plain.stderr);
        assert!(plain.stdout.contains("@x"), "{}", plain.stdout);
        for format in ["text", "markdown", "json"] {
            let args =
                ["--database", &db, "--migration", m.to_str().unwrap(), "--redact", "*.email", "--format", format];
            let run = check(&args, work.path());
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(
                !run.stdout.contains("@x") && !run.stderr.contains("@x"),
                "{m:?} {format}:\n{}\n{}",
                run.stdout,
                run.stderr
            );
            assert!(run.stdout.contains("redacted"), "{m:?} {format}: {}", run.stdout);
        }
    }
    // A tool's own output (`--run`): psql prints the DETAIL with the duplicated email.
    let psql = [harness::bindir().join("psql"), PathBuf::from("psql")]
        .into_iter()
        .find(|p| p.components().count() == 1 || p.exists())
        .unwrap();
    let cmd = format!(
        "{} -X -q -v ON_ERROR_STOP=1 -c 'CREATE UNIQUE INDEX customers_email ON customers (lower(email))'",
        psql.display()
    );
    let plain = check(&["--database", &db, "--run", &cmd, "--format", "json"], work.path());
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    let tail = plain.json()["check"]["migration"]["failure"]["stderr_tail"].to_string();
    assert!(tail.contains("@x"), "{tail}");
    assert!(plain.stderr.lines().last().is_some_and(|l| l.contains("the check took")), "{}", plain.stderr);
    for format in ["text", "markdown", "json"] {
        let run = check(&["--database", &db, "--run", &cmd, "--redact", "*.email", "--format", format], work.path());
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stdout.contains("@x") && !run.stderr.contains("@x"), "{format}:\n{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("=(redacted)"), "{format}: {}", run.stdout);
    }
}

/// A failed `--run` on a throwaway cluster: the command's stderr tail and the failing statement with
/// its error from the server's log, in every format; the gate is not shown as passed.
#[test]
fn a_failed_command_shows_its_stderr_and_the_servers_error() {
    let work = workdir();
    let snap = write(work.path(), "snap.sql", SETUP);
    let psql = [harness::bindir().join("psql"), PathBuf::from("psql")]
        .into_iter()
        .find(|p| p.components().count() == 1 || p.exists())
        .unwrap();
    let cmd = format!("{} -X -q -v ON_ERROR_STOP=1 -c 'ALTER TABLE orders ADD COLUMN x nosuchtype'", psql.display());
    for format in ["text", "markdown", "json"] {
        let tmp = workdir();
        let args = ["--snapshot", snap.to_str().unwrap(), "--run", &cmd, "--fail-on", "data-loss", "--format", format];
        let run = check(&args, tmp.path());
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stdout.contains("gate passed"), "{}", run.stdout);
        if format == "json" {
            let f = &run.json()["check"]["migration"]["failure"];
            let log: Vec<&str> = f["server_log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
            // "ALTER TABLE orders ADD COLUMN x " is 32 characters: the type starts at character 33.
            assert_eq!(
                log,
                [
                    "ERROR:  type \"nosuchtype\" does not exist at character 33",
                    "STATEMENT:  ALTER TABLE orders ADD COLUMN x nosuchtype"
                ],
                "{f:#}"
            );
            let tail = f["stderr_tail"].as_array().unwrap();
            assert!(tail.iter().any(|l| l.as_str().unwrap().contains("type \"nosuchtype\" does not exist")), "{f:#}");
        } else {
            assert!(run.stdout.contains("The server's log:"), "{}", run.stdout);
            assert!(run.stdout.contains("STATEMENT:  ALTER TABLE orders ADD COLUMN x nosuchtype"), "{}", run.stdout);
            assert!(run.stdout.contains("The command's last lines on stderr:"), "{}", run.stdout);
        }
        assert_no_leftovers(tmp.path());
    }
}
