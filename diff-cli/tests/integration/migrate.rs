//! `diff_cli::migrate::apply` against real branches: statements applied in
//! order, failures explained with the rows behind them, the budget, locks and
//! rewrites, `--run`. Expected values come from the fixtures' arithmetic
//! (comments say how) or from independent queries on the branch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use diff_cli::migrate::{apply, FailureKind, MigrateOptions, Migration, MigrationReport};
use diff_core::{ConnConfig, SideName};

use crate::harness::{branch, conn, connect};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn cfg(db: &str) -> ConnConfig {
    ConnConfig::parse(SideName::Child, &conn(db)).unwrap()
}

/// A branch of a database built from `setup`.
fn fixture(tag: &str, setup: &str) -> String {
    branch(tag, setup, "").child
}

/// Writes `files` into a fresh directory and applies the directory to `db`.
fn migrate_files(db: &str, files: &[(&str, &str)], opts: &MigrateOptions) -> (MigrationReport, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let migration = Migration::Files(vec![dir.path().to_path_buf()]);
    let report = rt().block_on(apply(&cfg(db), &migration, opts)).unwrap_or_else(|e| panic!("trouble: {e:#}"));
    (report, dir)
}

fn migrate(db: &str, sql: &str) -> MigrationReport {
    migrate_files(db, &[("m.sql", sql)], &MigrateOptions::default()).0
}

fn query_i64(db: &str, sql: &str) -> i64 {
    connect(db).query_one(sql, &[]).unwrap().get(0)
}

/// The explanation's rows as strings (NULL as "NULL").
fn rows(report: &MigrationReport) -> Vec<Vec<String>> {
    let e = report
        .failure
        .as_ref()
        .and_then(|f| f.explanation.as_ref())
        .unwrap_or_else(|| panic!("no explanation: {report:#?}"));
    e.rows.iter().map(|r| r.iter().map(|v| v.clone().unwrap_or_else(|| "NULL".into())).collect()).collect()
}

#[test]
fn statements_apply_in_file_order_with_their_locations() {
    let db = fixture("mig_ok", "CREATE TABLE t (id int PRIMARY KEY, v int);");
    let (report, dir) = migrate_files(
        &db,
        &[
            ("0002_second.sql", "BEGIN;\nUPDATE t SET v = v * 10;\nCOMMIT;\n"),
            ("0001_first.sql", "-- fill it\nINSERT INTO t SELECT i, i FROM generate_series(1, 5) i;\n\\echo filled\nCOPY t (id, v) FROM stdin;\n6\t6\n\\.\n"),
        ],
        &MigrateOptions::default(),
    );
    assert!(report.succeeded(), "{}", report.text());
    let at: Vec<String> =
        report.statements.iter().map(|s| s.location.replace(&format!("{}/", dir.path().display()), "")).collect();
    assert_eq!(
        at,
        ["0001_first.sql:2", "0001_first.sql:4", "0002_second.sql:1", "0002_second.sql:2", "0002_second.sql:3"]
    );
    // 1..6 each times 10: 210.
    assert_eq!(query_i64(&db, "SELECT sum(v)::int8 FROM t"), 210);
    assert!(report.text().starts_with("Migration applied: 5 statements"), "{}", report.text());
    assert_eq!(report.json()["statements"].as_array().unwrap().len(), 5);
}

#[test]
fn trouble_is_an_error_not_a_failure() {
    let db = fixture("mig_trouble", "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.sql");
    std::fs::write(&file, "SELECT 1;\n\\connect other\n").unwrap();
    let e = rt().block_on(apply(&cfg(&db), &Migration::Files(vec![file]), &MigrateOptions::default())).unwrap_err();
    assert!(e.to_string().contains("bad.sql:2: \\connect"), "{e}");
    let missing = Migration::Files(vec![PathBuf::from("/nonexistent/0001.sql")]);
    let e = rt().block_on(apply(&cfg(&db), &missing, &MigrateOptions::default())).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/0001.sql"), "{e}");
}

#[test]
fn duplicates_are_listed_with_their_counts() {
    // Emails u{i % 90}: ids 91..100 repeat the values of ids 1..10 (10 values, 2 rows each);
    // 'same@x' is added three times more. Stopping at the first error: the CREATE never runs.
    let db = fixture(
        "mig_unique",
        "CREATE TABLE users (id int PRIMARY KEY, email text);
         INSERT INTO users SELECT i, 'u' || (i % 90) || '@x' FROM generate_series(1, 100) i;
         INSERT INTO users VALUES (101, 'same@x'), (102, 'same@x'), (103, 'same@x'), (104, NULL), (105, NULL);",
    );
    let report = migrate(&db, "ALTER TABLE users ADD COLUMN n int;\n\nCREATE UNIQUE INDEX users_email ON users (email);\nCREATE TABLE never (id int);");
    let f = report.failure.as_ref().unwrap();
    assert_eq!((f.kind, f.sqlstate.as_deref()), (FailureKind::Error, Some("23505")));
    assert!(f.location.as_deref().unwrap().ends_with("m.sql:3"), "{f:?}");
    assert_eq!(report.statements.len(), 2, "stops at the first error");
    assert!(!report.statements[1].ok);
    let e = f.explanation.as_ref().unwrap();
    assert_eq!(e.columns, ["email", "rows"]);
    // The independent GROUP BY on the branch.
    let mut client = connect(&db);
    let want: BTreeMap<String, String> = client
        .query(
            "SELECT email, count(*)::text FROM users WHERE email IS NOT NULL GROUP BY email HAVING count(*) > 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(want.len(), 11);
    assert_eq!(e.total, Some(11));
    let got = rows(&report);
    assert_eq!(got.len(), 10, "a sample of ten");
    assert_eq!(got[0], ["same@x", "3"], "most repeated first");
    for row in &got {
        assert_eq!(want.get(&row[0]), Some(&row[1]), "{row:?}");
    }
    assert!(e.summary.contains("11 values of (email)") && e.summary.contains("in 23 rows"), "{}", e.summary);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM pg_class WHERE relname IN ('never', 'users_email')"), 0);
    let text = report.text();
    assert!(text.contains("same@x") && text.contains("FAILED"), "{text}");
    assert!(report.markdown().contains("| same@x | 3 |"), "{}", report.markdown());

    // Inside a transaction block: the failure rolls it back (column m never appears), and the
    // explanation is not held up by the block's locks.
    let started = std::time::Instant::now();
    let report =
        migrate(&db, "BEGIN;\nALTER TABLE users ADD COLUMN m int;\nCREATE UNIQUE INDEX u2 ON users (email);\nCOMMIT;");
    assert!(started.elapsed() < Duration::from_secs(30));
    let f = report.failure.as_ref().unwrap();
    assert!(f.location.as_deref().unwrap().ends_with("m.sql:3"));
    assert_eq!(f.explanation.as_ref().unwrap().total, Some(11));
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'm'"),
        0
    );
}

#[test]
fn set_not_null_counts_the_nulls_and_shows_keys() {
    // country is NULL for multiples of 7 in 1..100: 14 rows, the first ten are 7, 14, …, 70.
    let db = fixture(
        "mig_notnull",
        "CREATE TABLE customers (id int PRIMARY KEY, country text);
         INSERT INTO customers SELECT i, CASE WHEN i % 7 <> 0 THEN 'DE' END FROM generate_series(1, 100) i;",
    );
    let report = migrate(&db, "ALTER TABLE customers ALTER COLUMN country SET NOT NULL;");
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.sqlstate.as_deref(), Some("23502"));
    let e = f.explanation.as_ref().unwrap();
    assert_eq!(e.total, Some(14));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM customers WHERE country IS NULL"), 14);
    assert_eq!(e.columns, ["id"]);
    let want: Vec<Vec<String>> = (1..=10).map(|k| vec![(k * 7).to_string()]).collect();
    assert_eq!(rows(&report), want);

    // A new NOT NULL column without a default would be NULL in all 100 rows.
    let report = migrate(&db, "ALTER TABLE customers ADD COLUMN region text NOT NULL;");
    let e = report.failure.as_ref().unwrap().explanation.as_ref().unwrap();
    assert_eq!(e.total, Some(100), "{}", e.summary);
    assert!(e.summary.contains("new column region"), "{}", e.summary);
    assert_eq!(rows(&report), (1..=10).map(|k| vec![k.to_string()]).collect::<Vec<_>>());
}

#[test]
fn foreign_key_lists_orphans() {
    // Orders 1..60 reference user id = order id; users are 1..50, so orders 51..60 are orphans.
    // Order 61 has no user (NULL): not an orphan.
    let db = fixture(
        "mig_fk",
        "CREATE TABLE users (id int PRIMARY KEY);
         INSERT INTO users SELECT generate_series(1, 50);
         CREATE TABLE orders (id int PRIMARY KEY, user_id int);
         INSERT INTO orders SELECT i, i FROM generate_series(1, 60) i;
         INSERT INTO orders VALUES (61, NULL);",
    );
    let report =
        migrate(&db, "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);");
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.sqlstate.as_deref(), Some("23503"));
    let e = f.explanation.as_ref().unwrap();
    assert_eq!(e.total, Some(10), "{}", e.summary);
    assert!(e.summary.contains("missing from public.users"), "{}", e.summary);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM orders o WHERE user_id IS NOT NULL AND NOT EXISTS (SELECT FROM users u WHERE u.id = o.user_id)"),
        10
    );
    assert_eq!(e.columns, ["id", "user_id"]);
    let want: Vec<Vec<String>> = (51..=60).map(|k: i32| vec![k.to_string(), k.to_string()]).collect();
    assert_eq!(rows(&report), want);

    // NOT VALID, then VALIDATE: the key is read from the catalog; the same ten orphans.
    let report = migrate(
        &db,
        "ALTER TABLE orders ADD CONSTRAINT later_fk FOREIGN KEY (user_id) REFERENCES users NOT VALID;\n\
         ALTER TABLE orders VALIDATE CONSTRAINT later_fk;",
    );
    assert_eq!(report.failure.as_ref().unwrap().sqlstate.as_deref(), Some("23503"));
    assert_eq!(rows(&report), want);
}

#[test]
fn check_constraint_lists_violating_rows() {
    // price = id - 5 for ids 1..30: ids 1..5 have price <= 0. Id 31 has a NULL price, which passes.
    let db = fixture(
        "mig_check",
        "CREATE TABLE products (id int PRIMARY KEY, name text, price int);
         INSERT INTO products SELECT i, 'p' || i, i - 5 FROM generate_series(1, 30) i;
         INSERT INTO products VALUES (31, 'free', NULL);",
    );
    let report = migrate(&db, "ALTER TABLE products ADD CONSTRAINT price_positive CHECK (price > 0);");
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.sqlstate.as_deref(), Some("23514"));
    let e = f.explanation.as_ref().unwrap();
    assert_eq!(e.total, Some(5));
    assert_eq!(e.columns, ["id", "price"]);
    let want: Vec<Vec<String>> = (1..=5).map(|k: i32| vec![k.to_string(), (k - 5).to_string()]).collect();
    assert_eq!(rows(&report), want);

    // NOT VALID, then VALIDATE: the check is read from the catalog. name is 'p' || id: ids 1..9
    // have two characters, plus 'free' has four; length(name) > 2 fails for ids 10..31: 22 rows.
    let report = migrate(
        &db,
        "ALTER TABLE products ADD CONSTRAINT short_name CHECK (length(name) <= 2) NOT VALID;\n\
         ALTER TABLE products VALIDATE CONSTRAINT short_name;",
    );
    let e = report.failure.as_ref().unwrap().explanation.as_ref().unwrap();
    assert!(report.failure.as_ref().unwrap().location.as_deref().unwrap().ends_with("m.sql:2"));
    assert_eq!(e.total, Some(22), "{}", e.summary);
    assert_eq!(e.columns, ["id", "name"]);
    assert_eq!(rows(&report)[0], ["10", "p10"]);
}

#[test]
fn type_change_lists_values_that_do_not_convert() {
    // ' 4' converts (integer input skips spaces); 'x3', 'five' and '' do not: ids 3, 5, 6.
    let db = fixture(
        "mig_type",
        "CREATE TABLE legacy (id int PRIMARY KEY, code text, n int);
         INSERT INTO legacy VALUES (1, '10', 1), (2, '20', 40000), (3, 'x3', 3), (4, ' 4', 70000), (5, 'five', 5), (6, '', 6);",
    );
    let report = migrate(&db, "ALTER TABLE legacy ALTER COLUMN code TYPE integer USING code::integer;");
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.sqlstate.as_deref(), Some("22P02"));
    let e = f.explanation.as_ref().unwrap();
    assert_eq!(e.total, Some(3), "{}", e.summary);
    assert_eq!(e.columns, ["id", "code", "error"]);
    let got = rows(&report);
    let keys: Vec<(&str, &str)> = got.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(keys, [("3", "x3"), ("5", "five"), ("6", "")]);
    assert!(got[0][2].contains("invalid input syntax for type integer"), "{got:?}");

    // No automatic cast from text: PostgreSQL hints at USING code::integer, and the rows that would
    // fail it are the same three.
    let report = migrate(&db, "ALTER TABLE legacy ALTER COLUMN code TYPE integer;");
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.sqlstate.as_deref(), Some("42804"));
    assert!(f.hint.as_deref().unwrap_or("").contains("USING"), "{f:?}");
    let keys: Vec<String> = rows(&report).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(keys, ["3", "5", "6"]);

    // Without USING: smallint holds up to 32767, so 40000 (id 2) and 70000 (id 4) are out of range.
    let report = migrate(&db, "ALTER TABLE legacy ALTER n TYPE smallint;");
    assert_eq!(report.failure.as_ref().unwrap().sqlstate.as_deref(), Some("22003"));
    let got: Vec<(String, String)> = rows(&report).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(got, [("2".to_string(), "40000".to_string()), ("4".to_string(), "70000".to_string())]);

    // Shortening a varchar: 'toolong' (7) and 'sixsix' (6) do not fit 5; 'five  ' (6) fits once its
    // trailing spaces are cut, as PostgreSQL does (checked below by storing it); NULL fits.
    let db = fixture(
        "mig_type_len",
        "CREATE TABLE s (id int PRIMARY KEY, name varchar(20));
         INSERT INTO s VALUES (1, 'ok'), (2, 'toolong'), (3, 'five  '), (4, NULL), (5, 'sixsix');",
    );
    let report = migrate(&db, "ALTER TABLE s ALTER COLUMN name TYPE varchar(5);");
    assert_eq!(report.failure.as_ref().unwrap().sqlstate.as_deref(), Some("22001"));
    assert_eq!(report.failure.as_ref().unwrap().explanation.as_ref().unwrap().total, Some(2));
    assert_eq!(rows(&report), [["2", "toolong", "7"], ["5", "sixsix", "6"]]);
    connect(&db).batch_execute("CREATE TEMP TABLE fits (v varchar(5)); INSERT INTO fits VALUES ('five  ')").unwrap();

    // Many rows, read in several chunks: every 100th of 5000 is bad, 50 in all; ten are shown.
    let db = fixture(
        "mig_type_many",
        "CREATE TABLE m (id int PRIMARY KEY, code text);
         INSERT INTO m SELECT i, CASE WHEN i % 100 = 0 THEN 'bad' || i ELSE i::text END FROM generate_series(1, 5000) i;",
    );
    let report = migrate(&db, "ALTER TABLE m ALTER code TYPE int USING code::int;");
    let e = report.failure.as_ref().unwrap().explanation.as_ref().unwrap();
    assert_eq!(e.total, Some(50), "{}", e.summary);
    assert!(e.summary.starts_with("50 rows of public.m"), "{}", e.summary);
    let keys: Vec<String> = rows(&report).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(keys, (1..=10).map(|k| (k * 100).to_string()).collect::<Vec<_>>());
}

#[test]
fn a_slow_statement_is_stopped_at_the_budget() {
    let db = fixture("mig_budget", "");
    let opts = MigrateOptions { max_duration: Some(Duration::from_millis(500)), ..Default::default() };
    let started = std::time::Instant::now();
    let (report, _dir) = migrate_files(
        &db,
        &[("slow.sql", "SELECT 1;\nSELECT pg_sleep(20);\nCREATE TABLE after_sleep (id int);")],
        &opts,
    );
    assert!(started.elapsed() < Duration::from_secs(10), "stopped long before the sleep ends");
    assert!(report.over_budget() && !report.succeeded(), "{report:#?}");
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.kind, FailureKind::Budget);
    assert!(f.location.as_deref().unwrap().ends_with("slow.sql:2"));
    assert!(report.total_millis >= 500 && report.total_millis < 10_000, "{}", report.total_millis);
    assert_eq!(report.budget_millis, Some(500));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM pg_class WHERE relname = 'after_sleep'"), 0);
    // Nothing of the migration is left running.
    assert_eq!(
        query_i64(&db, &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()")),
        0
    );
    // statement_timeout stops a statement on the server's side.
    let opts = MigrateOptions { statement_timeout: Some(Duration::from_millis(200)), ..Default::default() };
    let (report, _dir) = migrate_files(&db, &[("slow.sql", "SELECT pg_sleep(20);")], &opts);
    let f = report.failure.as_ref().unwrap();
    assert_eq!((f.kind, f.sqlstate.as_deref()), (FailureKind::StatementTimeout, Some("57014")));
    assert!(!report.over_budget());
    // Within the budget: the same statements succeed.
    let opts = MigrateOptions { max_duration: Some(Duration::from_secs(60)), ..Default::default() };
    let (report, _dir) = migrate_files(&db, &[("fast.sql", "SELECT pg_sleep(0.1);")], &opts);
    assert!(report.succeeded() && !report.over_budget());
}

fn relfilenode(db: &str, table: &str) -> u32 {
    connect(db).query_one("SELECT relfilenode FROM pg_class WHERE oid = $1::text::regclass", &[&table]).unwrap().get(0)
}

#[test]
fn a_rewriting_alter_holds_access_exclusive_and_changes_the_file() {
    let db = fixture(
        "mig_rewrite",
        "CREATE TABLE t (id int PRIMARY KEY, v int, s varchar(20));
         INSERT INTO t SELECT i, i, 'x' FROM generate_series(1, 20000) i;",
    );
    let before = relfilenode(&db, "t");
    // Inside a transaction the lock is still held after the statement: seen for certain.
    let report = migrate(&db, "BEGIN;\nALTER TABLE t ALTER COLUMN v TYPE bigint;\nSELECT pg_sleep(0.2);\nCOMMIT;\n");
    assert!(report.succeeded(), "{}", report.text());
    let after = relfilenode(&db, "t");
    assert_ne!(before, after);
    let alter = &report.statements[1];
    assert_eq!(alter.rewrites.len(), 1, "{alter:#?}");
    assert_eq!(alter.rewrites[0].table, "public.t");
    assert_eq!((alter.rewrites[0].relfilenode_before, alter.rewrites[0].relfilenode_after), (before, after));
    assert!(alter.locks.iter().any(|l| l.relation == "public.t" && l.mode == "AccessExclusiveLock"), "{alter:#?}");
    let summary = report.locks.iter().find(|l| l.relation == "public.t").unwrap();
    assert!(summary.modes.contains(&"AccessExclusiveLock".to_string()));
    // Held through the 200 ms sleep until COMMIT, and never longer than the migration.
    assert!(summary.access_exclusive_millis >= 200, "{summary:#?}");
    assert!(summary.access_exclusive_millis <= report.total_millis, "{summary:#?}");
    assert!(report.text().contains("rewrote public.t"), "{}", report.text());

    // Without BEGIN the statement runs in a transaction of its own, and its locks are read before COMMIT:
    // certain however short the statement.
    let report = migrate(&db, "ALTER TABLE t ALTER COLUMN v TYPE int;");
    let alter = &report.statements[0];
    assert!(alter.locks.iter().any(|l| l.relation == "public.t" && l.mode == "AccessExclusiveLock"), "{alter:#?}");
    assert!(report.locks.iter().any(|l| l.relation == "public.t" && l.access_exclusive_millis > 0), "{report:#?}");
    let again = relfilenode(&db, "t");
    assert_eq!(
        alter.rewrites.iter().map(|r| (r.relfilenode_before, r.relfilenode_after)).collect::<Vec<_>>(),
        [(after, again)]
    );

    // Widening a varchar and adding a nullable column rewrite nothing; CREATE INDEX CONCURRENTLY,
    // refused in a transaction block, runs bare.
    let report = migrate(
        &db,
        "ALTER TABLE t ALTER COLUMN s TYPE varchar(50);\nALTER TABLE t ADD COLUMN note text;\nCREATE INDEX CONCURRENTLY t_s ON t (s);",
    );
    assert!(report.succeeded(), "{}", report.text());
    assert!(report.statements.iter().all(|s| s.rewrites.is_empty()), "{report:#?}");
    let add = &report.statements[1];
    assert!(add.locks.iter().any(|l| l.relation == "public.t" && l.mode == "AccessExclusiveLock"), "{add:#?}");
    assert_eq!(relfilenode(&db, "t"), again);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM pg_index WHERE indexrelid = 'public.t_s'::regclass AND indisvalid"),
        1
    );
}

#[test]
fn a_lock_wait_ends_in_lock_timeout_naming_the_blocker() {
    let db = fixture("mig_wait", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let mut holder = connect(&db);
    holder.batch_execute("SET application_name = 'holder'; BEGIN; SELECT * FROM t;").unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let opts = MigrateOptions { lock_timeout: Some(Duration::from_millis(600)), ..Default::default() };
    let (report, _dir) = migrate_files(&db, &[("m.sql", "ALTER TABLE t ADD COLUMN x int;")], &opts);
    holder.batch_execute("ROLLBACK").unwrap();
    let f = report.failure.as_ref().unwrap();
    assert_eq!((f.kind, f.sqlstate.as_deref()), (FailureKind::LockTimeout, Some("55P03")));
    let waits = &report.statements[0].waits;
    let w = waits.iter().find(|w| w.relation.as_deref() == Some("public.t")).unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(w.mode, "AccessExclusiveLock");
    assert!(w.millis >= 300, "{w:?}");
    assert_eq!(w.blocked_by.iter().map(|b| b.pid).collect::<Vec<_>>(), [holder_pid]);
    assert_eq!(w.blocked_by[0].application, "holder");
    let e = f.explanation.as_ref().unwrap();
    assert_eq!(e.rows[0][0].as_deref(), Some(holder_pid.to_string().as_str()));
    assert!(report.text().contains("waited"), "{}", report.text());

    // Without lock_timeout the statement waits until the holder is done (400 ms), then succeeds.
    holder.batch_execute("BEGIN; SELECT * FROM t;").unwrap();
    let watcher = db.clone();
    let release = std::thread::spawn(move || {
        // Release 400 ms after the migration is seen waiting.
        let waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'public.t'::regclass AND NOT granted";
        while query_i64(&watcher, waiting) == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(400));
        holder.batch_execute("ROLLBACK").unwrap();
    });
    let report = migrate(&db, "ALTER TABLE t ADD COLUMN x int;");
    release.join().unwrap();
    assert!(report.succeeded(), "{}", report.text());
    let s = &report.statements[0];
    let w = s.waits.iter().find(|w| w.relation.as_deref() == Some("public.t")).unwrap_or_else(|| panic!("{s:#?}"));
    assert!(w.millis >= 300 && w.millis <= s.millis, "{w:?} in {} ms", s.millis);
    assert_eq!(w.blocked_by.iter().map(|b| b.pid).collect::<Vec<_>>(), [holder_pid]);
    let summary = report.locks.iter().find(|l| l.relation == "public.t").unwrap();
    assert!(summary.statements.iter().any(|l| l.ends_with("m.sql:1")), "{summary:#?}");
    // Waiting is not holding: the hold is what is left of the statement's time.
    assert!(summary.access_exclusive_millis <= s.millis - w.millis + 20, "{summary:#?} {s:#?}");
}

#[test]
fn run_applies_sql_through_the_environment() {
    let db = fixture(
        "mig_run",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i FROM generate_series(1, 1000) i;",
    );
    let before = relfilenode(&db, "t");
    let cmd = "psql -X -q -v ON_ERROR_STOP=1 -c 'ALTER TABLE t ALTER COLUMN v TYPE bigint' \
               && psql -X -q -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c \"CREATE TABLE made_by_run AS SELECT '$PGDATABASE'::text AS db\"";
    let report = rt().block_on(apply(&cfg(&db), &Migration::Command(cmd.into()), &MigrateOptions::default())).unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let made: String = connect(&db).query_one("SELECT db FROM made_by_run", &[]).unwrap().get(0);
    assert_eq!(made, db);
    let s = &report.statements[0];
    assert_eq!(s.location, "command");
    assert_eq!(s.rewrites.len(), 1);
    assert_eq!((s.rewrites[0].relfilenode_before, s.rewrites[0].relfilenode_after), (before, relfilenode(&db, "t")));

    // lock_timeout reaches the tool through PGOPTIONS; the sampler sees every backend the command opens.
    let mut holder = connect(&db);
    holder.batch_execute("SET application_name = 'holder'; BEGIN; SELECT * FROM t LIMIT 1;").unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let opts = MigrateOptions { lock_timeout: Some(Duration::from_millis(500)), ..Default::default() };
    let alter = "psql -X -q -v ON_ERROR_STOP=1 -c 'ALTER TABLE t ADD COLUMN w int'";
    let report = rt().block_on(apply(&cfg(&db), &Migration::Command(alter.into()), &opts)).unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    let f = report.failure.as_ref().unwrap();
    assert_eq!((f.kind, f.exit_code), (FailureKind::CommandFailed, Some(1)));
    let w = report.statements[0].waits.iter().find(|w| w.relation.as_deref() == Some("public.t"));
    let w = w.unwrap_or_else(|| panic!("{report:#?}"));
    assert!(w.millis >= 300, "{w:?}");
    assert_eq!(w.blocked_by.iter().map(|b| b.pid).collect::<Vec<_>>(), [holder_pid]);

    let report =
        rt().block_on(apply(&cfg(&db), &Migration::Command("exit 3".into()), &MigrateOptions::default())).unwrap();
    let f = report.failure.as_ref().unwrap();
    assert_eq!((f.kind, f.exit_code), (FailureKind::CommandFailed, Some(3)));

    let opts = MigrateOptions { max_duration: Some(Duration::from_millis(300)), ..Default::default() };
    let started = std::time::Instant::now();
    let report = rt().block_on(apply(&cfg(&db), &Migration::Command("sleep 30; echo late".into()), &opts)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(report.over_budget());
    assert_eq!(report.failure.as_ref().unwrap().kind, FailureKind::Budget);
}

#[test]
fn dropping_the_future_cancels_the_running_statement() {
    let db = fixture("mig_drop", "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.sql");
    std::fs::write(&file, "SELECT pg_sleep(30);").unwrap();
    let sleeping = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active'
         AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()"
    );
    let count = |q: String| {
        let db = db.clone();
        async move { tokio::task::spawn_blocking(move || query_i64(&db, &q)).await.unwrap() }
    };
    rt().block_on(async {
        let (cfg, migration, opts) = (cfg(&db), Migration::Files(vec![file]), MigrateOptions::default());
        let run = apply(&cfg, &migration, &opts);
        // Dropped once the statement is seen running (the select drops the losing future).
        let seen = async {
            while count(sleeping.clone()).await == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            r = run => panic!("the migration ended: {:?}", r.map(|r| r.text())),
            _ = tokio::time::timeout(Duration::from_secs(20), seen) => {}
        }
        for _ in 0..50 {
            if count(sleeping.clone()).await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the statement is still running after its future was dropped");
    });
}

/// Keys of `v` that the schema does not document (`additionalProperties: false`).
fn undocumented(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    path: &str,
) -> Vec<String> {
    let s = match schema.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => &root["$defs"][r.trim_start_matches("#/$defs/")],
        None => schema,
    };
    let mut out = Vec::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            match s.get("properties").and_then(|p| p.get(k)) {
                Some(ps) => out.extend(undocumented(root, ps, val, &format!("{path}.{k}"))),
                None => out.push(format!("{path}.{k}")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            out.extend(undocumented(root, items, x, &format!("{path}[{i}]")));
        }
    }
    out
}

#[test]
fn json_reports_match_the_published_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/migration-schema.json")).expect("schema is JSON");
    let db = fixture(
        "mig_schema",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, i % 3 FROM generate_series(1, 100) i;",
    );
    let mut holder = connect(&db);
    holder.batch_execute("BEGIN; SELECT * FROM t LIMIT 1;").unwrap();
    let opts = MigrateOptions {
        lock_timeout: Some(Duration::from_millis(300)),
        max_duration: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let (waited, _d) = migrate_files(&db, &[("m.sql", "ALTER TABLE t ADD COLUMN w int;")], &opts);
    holder.batch_execute("ROLLBACK").unwrap();
    let reports = [
        migrate(&db, "BEGIN;\nALTER TABLE t ALTER v TYPE bigint;\nCOMMIT;\nCREATE UNIQUE INDEX ON t (v);"),
        waited,
        rt().block_on(apply(&cfg(&db), &Migration::Command("exit 4".into()), &MigrateOptions::default())).unwrap(),
    ];
    assert!(reports[0].statements[1].locks.iter().any(|l| l.mode == "AccessExclusiveLock"));
    assert!(reports[0].failure.as_ref().unwrap().explanation.is_some());
    assert!(!reports[1].statements[0].waits.is_empty());
    for r in &reports {
        let doc = r.json();
        let mut errors = vec![];
        crate::schema_doc::validate(&schema, &schema, &doc, "$", &mut errors);
        errors.extend(undocumented(&schema, &schema, &doc, "$"));
        assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    }
    // The key check itself catches an undocumented field.
    let mut extra = reports[0].json();
    extra["statements"][0]["surprise"] = 1.into();
    assert_eq!(undocumented(&schema, &schema, &extra, "$"), ["$.statements[0].surprise"]);
}

#[test]
fn dropping_a_running_command_kills_all_its_processes() {
    let db = fixture("mig_dropcmd", "");
    // sh runs sleep as a child (more follows it), so killing only sh would leave sleep behind.
    let marker = format!("sleep 37.{}", std::process::id());
    let migration = Migration::Command(format!("{marker}; echo never"));
    let running = || std::process::Command::new("pgrep").args(["-f", &marker]).output().unwrap().status.success();
    rt().block_on(async {
        let (cfg, opts) = (cfg(&db), MigrateOptions::default());
        let run = apply(&cfg, &migration, &opts);
        let seen = async {
            while !running() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            r = run => panic!("the command ended: {:?}", r.map(|r| r.text())),
            _ = tokio::time::timeout(Duration::from_secs(20), seen) => {}
        }
    });
    for _ in 0..30 {
        if !running() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{marker} still runs after the migration was dropped");
}
