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

    // A composite key sharing a column with the primary key: each column named once.
    connect(&db)
        .batch_execute(
            "CREATE TABLE stores (store_id int, manager_staff_id int, PRIMARY KEY (store_id, manager_staff_id));
             INSERT INTO stores VALUES (1, 1);
             CREATE TABLE staff (store_id int, staff_id int, manager_staff_id int, PRIMARY KEY (store_id, staff_id));
             INSERT INTO staff VALUES (1, 1, 1), (1, 2, 7), (2, 3, 1);",
        )
        .unwrap();
    let report = migrate(
        &db,
        "ALTER TABLE staff ADD FOREIGN KEY (store_id, manager_staff_id) REFERENCES stores (store_id, manager_staff_id);",
    );
    let e = report.failure.as_ref().and_then(|f| f.explanation.as_ref()).unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(e.columns, ["store_id", "staff_id", "manager_staff_id"]);
    // Staff (1, 2) points at store (1, 7) and staff (2, 3) at (2, 1): neither exists.
    assert_eq!(rows(&report), [["1", "2", "7"], ["2", "3", "1"]]);
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
    assert!(summary.reads_and_writes_blocked_millis >= 200, "{summary:#?}");
    assert!(summary.reads_and_writes_blocked_millis <= report.total_millis, "{summary:#?}");
    assert!(report.text().contains("rewrote public.t"), "{}", report.text());

    // Without BEGIN the statement runs in a transaction of its own, and its locks are read before COMMIT:
    // certain however short the statement.
    let report = migrate(&db, "ALTER TABLE t ALTER COLUMN v TYPE int;");
    let alter = &report.statements[0];
    assert!(alter.locks.iter().any(|l| l.relation == "public.t" && l.mode == "AccessExclusiveLock"), "{alter:#?}");
    assert!(
        report.locks.iter().any(|l| l.relation == "public.t" && l.reads_and_writes_blocked_millis > 0),
        "{report:#?}"
    );
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
    assert!(summary.reads_and_writes_blocked_millis <= s.millis - w.millis + 20, "{summary:#?} {s:#?}");
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
    // psql's lock-timeout error is expected: it reaches the test's terminal labelled as such.
    let alter = "t=$(mktemp); psql -X -q -v ON_ERROR_STOP=1 -c 'ALTER TABLE t ADD COLUMN w int' 2>\"$t\"; rc=$?; \
                 sed 's/^/(expected, from a test) /' \"$t\" >&2; rm -f \"$t\"; exit $rc";
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

    // A failed command: the tail of its stderr (the last 20 lines), in every format.
    // Its output reaches the test's terminal: every line says it is expected.
    let noisy = "echo 'expected on stdout'; for i in $(seq 1 30); do echo \"expected err $i\" >&2; done; \
                 printf 'expected, no newline' >&2; exit 3";
    let report =
        rt().block_on(apply(&cfg(&db), &Migration::Command(noisy.into()), &MigrateOptions::default())).unwrap();
    let f = report.failure.as_ref().unwrap();
    let want: Vec<String> =
        (12..=30).map(|i| format!("expected err {i}")).chain(["expected, no newline".to_string()]).collect();
    assert_eq!(f.stderr_tail, want);
    assert_eq!(report.json()["failure"]["stderr_tail"], serde_json::json!(want));
    let text = report.text();
    assert!(text.contains("  expected err 30\n") && !text.contains("expected err 11\n"), "{text}");
    assert!(report.markdown().contains("expected err 30"), "{}", report.markdown());

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

/// The lock report against PostgreSQL's documented lock table ("Table-Level Locks"):
/// CREATE INDEX takes SHARE, ALTER TABLE … ADD COLUMN and ADD CONSTRAINT … CHECK take
/// ACCESS EXCLUSIVE, VALIDATE CONSTRAINT and CREATE INDEX CONCURRENTLY take SHARE UPDATE
/// EXCLUSIVE, ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE on both tables, LOCK … IN SHARE ROW
/// EXCLUSIVE MODE takes that mode, UPDATE takes ROW EXCLUSIVE (its `extend` locks are not table
/// locks). Instant statements sit between long ones; each is charged exactly its own locks, over
/// 20 runs. Relations the migration creates block nobody; the sampler is never a blocker.
#[test]
fn the_lock_report_names_each_statement_with_its_own_modes() {
    let db = fixture(
        "mig_locks",
        "CREATE TABLE u (id int PRIMARY KEY);
         INSERT INTO u SELECT i FROM generate_series(1, 100) i;
         CREATE TABLE v (id int);
         CREATE TABLE t (id int PRIMARY KEY, a int, b int, uid int);
         INSERT INTO t SELECT i, i % 1000, i % 777, 1 + i % 100 FROM generate_series(1, 200000) i;
         ANALYZE t;",
    );
    let sql = "CREATE INDEX t_a ON t (a);
ALTER TABLE u ADD COLUMN z int;
ALTER TABLE t ADD CONSTRAINT t_a_nonneg CHECK (a >= 0) NOT VALID;
ALTER TABLE t VALIDATE CONSTRAINT t_a_nonneg;
BEGIN;
LOCK TABLE v IN SHARE ROW EXCLUSIVE MODE;
COMMIT;
CREATE INDEX CONCURRENTLY t_b ON t (b);
ALTER TABLE t ADD CONSTRAINT t_uid_fk FOREIGN KEY (uid) REFERENCES u NOT VALID;
UPDATE t SET b = b + 1 WHERE id <= 50000;
CREATE TABLE n (x int);
CREATE INDEX n_x ON n (x);
";
    let (sue, share, sre, ael) =
        ("ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "AccessExclusiveLock");
    // Per statement: (relation, mode) of the locks SHARE UPDATE EXCLUSIVE and stronger on relations
    // that existed before. CREATE INDEX CONCURRENTLY holds no lock after it ends: only sampled.
    let expected: Vec<Vec<(&str, &str)>> = vec![
        vec![("public.t", share)],
        vec![("public.u", ael)],
        vec![("public.t", ael)],
        vec![("public.t", sue)],
        vec![],
        vec![("public.v", sre)],
        vec![],
        vec![("public.t", sue)],
        vec![("public.t", sre), ("public.u", sre)],
        vec![],
        vec![],
        vec![],
    ];
    let strong = ["ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", ael];
    let mut cic_seen = 0;
    for run in 0..20 {
        let report = migrate(&db, sql);
        assert!(report.succeeded(), "run {run}: {}", report.text());
        assert_eq!(report.statements.len(), expected.len());
        for (i, (s, want)) in report.statements.iter().zip(&expected).enumerate() {
            let mut got: Vec<(&str, &str)> = s
                .locks
                .iter()
                .filter(|l| !l.created && strong.contains(&l.mode.as_str()))
                .map(|l| (l.relation.as_str(), l.mode.as_str()))
                .collect();
            got.sort();
            if i == 7 {
                assert!(got.is_empty() || got == *want, "run {run}, statement {i}: {got:?}\n{}", report.text());
                cic_seen += usize::from(!got.is_empty());
            } else {
                assert_eq!(got, *want, "run {run}, statement {i}\n{}", report.text());
            }
            // Locks on what the migration created are marked, and extension locks are not table locks.
            for l in &s.locks {
                assert_eq!(
                    l.created,
                    ["public.t_a", "public.t_b", "public.n", "public.n_x"].contains(&l.relation.as_str())
                );
                assert_ne!(l.mode, "ExclusiveLock", "run {run}, statement {i}: {l:?}");
            }
            for w in &s.waits {
                assert!(w.blocked_by.iter().all(|b| b.application != "pgbranchdiff lock sampler"), "run {run}: {w:?}");
            }
        }
        let st = &report.statements;
        let waited = |i: usize, rel: &str| -> u64 {
            st[i].waits.iter().filter(|w| w.relation.as_deref() == Some(rel)).map(|w| w.millis).sum()
        };
        let own = |i: usize, rel: &str| st[i].millis - waited(i, rel);
        // Relations with only weak locks (t_pkey under the UPDATE) block no writes.
        let summary: BTreeMap<&str, _> =
            report.locks.iter().filter(|l| !l.held_by.is_empty()).map(|l| (l.relation.as_str(), l)).collect();
        assert_eq!(summary.keys().copied().collect::<Vec<_>>(), ["public.t", "public.u", "public.v"], "{report:#?}");
        assert!(report.locks.iter().all(|l| !l.held_by.is_empty() || l.writes_blocked_millis == 0), "{report:#?}");
        let held = |rel: &str| -> Vec<(String, String)> {
            summary[rel].held_by.iter().map(|h| (h.location.clone(), h.mode.clone())).collect()
        };
        let loc = |i: usize| st[i].location.clone();
        assert_eq!(held("public.t"), [(loc(2), ael.into()), (loc(8), sre.into()), (loc(0), share.into())]);
        assert_eq!(held("public.u"), [(loc(1), ael.into()), (loc(8), sre.into())]);
        assert_eq!(held("public.v"), [(loc(5), sre.into())]);
        let t = summary["public.t"];
        assert_eq!(t.reads_and_writes_blocked_millis, own(2, "public.t"));
        assert_eq!(t.writes_blocked_millis, own(0, "public.t") + own(2, "public.t") + own(8, "public.t"));
        let u = summary["public.u"];
        assert_eq!(
            (u.reads_and_writes_blocked_millis, u.writes_blocked_millis),
            (own(1, "public.u"), own(1, "public.u") + own(8, "public.u"))
        );
        // LOCK inside BEGIN … COMMIT: held through the COMMIT.
        let v = summary["public.v"];
        assert_eq!(
            (v.reads_and_writes_blocked_millis, v.writes_blocked_millis),
            (0, own(5, "public.v") + st[6].millis)
        );
        // The text names only ACCESS EXCLUSIVE holders for reads, and the statements that blocked writes.
        let text = report.text();
        assert!(
            text.contains(&format!(
                "reads and writes: {} — ACCESS EXCLUSIVE {}\n",
                ms_text(t.reads_and_writes_blocked_millis),
                loc(2)
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "— ACCESS EXCLUSIVE {}, SHARE ROW EXCLUSIVE {}, SHARE {}\n",
                loc(2),
                loc(8),
                loc(0)
            )),
            "{text}"
        );
        exec_cleanup(&db);
    }
    eprintln!("CREATE INDEX CONCURRENTLY seen in {cic_seen} of 20 runs");
}

fn ms_text(m: u64) -> String {
    if m < 1000 {
        format!("{m} ms")
    } else {
        format!("{:.2} s", m as f64 / 1000.0)
    }
}

/// Undoes the lock test's migration (not traced).
fn exec_cleanup(db: &str) {
    crate::harness::exec(
        db,
        "DROP TABLE n; DROP INDEX t_a, t_b; ALTER TABLE t DROP CONSTRAINT t_a_nonneg, DROP CONSTRAINT t_uid_fk;
         ALTER TABLE u DROP COLUMN z;",
    );
}

/// The explanation's rows with their headers, for comparison with an independent query.
fn explained(report: &MigrationReport) -> (String, Vec<String>, Vec<Vec<String>>, Option<u64>) {
    let e = report.failure.as_ref().and_then(|f| f.explanation.as_ref()).unwrap_or_else(|| panic!("{report:#?}"));
    (e.summary.clone(), e.columns.clone(), rows(report), e.total)
}

fn query_rows(db: &str, sql: &str) -> Vec<Vec<String>> {
    connect(db)
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i).unwrap_or_else(|| "NULL".into())).collect())
        .collect()
}

/// A table partitioned by region into 8 partitions, 400 rows (id 1…400, region = id % 8).
const PARTITIONED: &str = "
CREATE TABLE m (id int, region int, v int, w int, code int, sku text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
DO $$ BEGIN FOR r IN 0..7 LOOP EXECUTE format('CREATE TABLE m_%s PARTITION OF m FOR VALUES IN (%s)', r, r); END LOOP; END $$;
INSERT INTO m SELECT i, i % 8, i, CASE WHEN i % 50 = 0 THEN NULL ELSE i END,
       CASE WHEN i <= 80 THEN 7 WHEN i <= 152 THEN 8 ELSE i END,
       CASE WHEN i % 37 = 0 THEN 'n' || i ELSE i::text END
FROM generate_series(1, 400) i;
CREATE TABLE products (id int PRIMARY KEY, sku text UNIQUE);
INSERT INTO products VALUES (1, 'ABCDEFGHIJKLMNOP-1'), (2, 'ABCDEFGHIJKLMNOP-2'), (3, 'ABCDEFGHIJKLMNOP-3'),
                            (4, 'QRSTUVWXYZ012345-a'), (5, 'QRSTUVWXYZ012345-b'), (6, 'short');
";

#[test]
fn failures_on_a_partitioned_table_are_explained_across_its_partitions() {
    let db = fixture("mig_parts", PARTITIONED);

    // CHECK: every violating row of every partition, each named with its partition.
    let report = migrate(&db, "ALTER TABLE m ADD CONSTRAINT v_small CHECK (v < 377);");
    let (summary, columns, got, total) = explained(&report);
    let facts = query_rows(&db, "SELECT count(*)::text, count(DISTINCT tableoid)::text FROM m WHERE NOT (v < 377)");
    assert_eq!(facts, [["24", "8"]]);
    assert_eq!(total, Some(24));
    assert!(summary.starts_with("24 rows of public.m (in 8 partitions) violate CHECK"), "{summary}");
    assert_eq!(columns, ["partition", "id", "region", "v"]);
    let want = query_rows(
        &db,
        "SELECT tableoid::regclass::text, id::text, region::text, v::text FROM m WHERE NOT (v < 377) ORDER BY m.id, m.region LIMIT 10",
    );
    assert_eq!(got, want);

    // NOT NULL: the NULLs of all partitions.
    let report = migrate(&db, "ALTER TABLE m ALTER COLUMN w SET NOT NULL;");
    let (summary, columns, got, total) = explained(&report);
    let facts = query_rows(&db, "SELECT count(*)::text, count(DISTINCT tableoid)::text FROM m WHERE w IS NULL");
    assert_eq!(facts, [["8", "4"]]);
    assert_eq!(total, Some(8));
    assert!(summary.starts_with("8 rows of public.m (in 4 partitions) have NULL in w"), "{summary}");
    assert_eq!(columns, ["partition", "id", "region"]);
    let want = query_rows(
        &db,
        "SELECT tableoid::regclass::text, id::text, region::text FROM m WHERE w IS NULL ORDER BY m.id, m.region",
    );
    assert_eq!(got, want);

    // Unique: duplicates of all partitions, most repeated first by count (10 before 9, not as text).
    let report = migrate(&db, "CREATE UNIQUE INDEX m_code ON m (code, region);");
    let (summary, columns, got, total) = explained(&report);
    assert_eq!(columns, ["code", "region", "rows", "partitions"]);
    let want = query_rows(
        &db,
        "SELECT code::text, region::text, count(*)::text, min(c.relname)
         FROM m JOIN pg_class c ON c.oid = m.tableoid GROUP BY code, region HAVING count(*) > 1
         ORDER BY count(*) DESC, code::text, region::text LIMIT 10",
    );
    assert_eq!(want[0][2], "10");
    assert_eq!(want[9][2], "9");
    assert_eq!(got, want);
    assert_eq!(total, Some(16), "{summary}");

    // A type change: the values that do not convert, in every partition (a ctid repeats across them).
    let report = migrate(&db, "ALTER TABLE m ALTER COLUMN sku TYPE int USING sku::int;");
    let (summary, columns, mut got, total) = explained(&report);
    assert!(!summary.contains("could not be listed"), "{summary}");
    assert_eq!(columns, ["partition", "id", "region", "sku", "error"]);
    let want = query_rows(
        &db,
        "SELECT tableoid::regclass::text, id::text, region::text, sku FROM m WHERE sku !~ '^[0-9]+$' ORDER BY 1, 2",
    );
    assert_eq!(want.len(), 10);
    assert_eq!(total, Some(10));
    got.sort();
    let got_values: Vec<Vec<String>> = got.iter().map(|r| r[..4].to_vec()).collect();
    assert_eq!(got_values, want);
    assert!(got.iter().all(|r| r[4].contains("invalid input syntax for type integer")), "{got:?}");

    // A type change whose new values collide: the conversion maps several old values to one.
    let report = migrate(&db, "ALTER TABLE products ALTER COLUMN sku TYPE varchar(16) USING left(sku, 16);");
    let (summary, columns, got, total) = explained(&report);
    assert!(!summary.contains("own rows"), "{summary}");
    assert_eq!(columns, ["sku after", "sku before", "rows"]);
    let want = query_rows(
        &db,
        "SELECT left(sku, 16), sku, count(*)::text FROM products
         WHERE left(sku, 16) IN (SELECT left(sku, 16) FROM products GROUP BY 1 HAVING count(*) > 1)
         GROUP BY 1, 2 ORDER BY count(*) OVER (PARTITION BY left(sku, 16)) DESC, 1, 2",
    );
    assert_eq!(want.len(), 5);
    assert_eq!(got, want);
    assert_eq!(total, Some(2));
}

#[test]
fn a_failed_file_names_the_files_that_never_ran() {
    let db = fixture("mig_notrun", "CREATE TABLE t (id int PRIMARY KEY);");
    let (report, dir) = migrate_files(
        &db,
        &[
            ("0001_a.sql", "ALTER TABLE t ADD COLUMN a int;"),
            ("0002_b.sql", "ALTER TABLE t ADD COLUMN b nosuchtype;\nALTER TABLE t ADD COLUMN c int;"),
            ("0003_c.sql", "ALTER TABLE t ADD COLUMN d int;"),
            ("0004_d.sql", "ALTER TABLE t ADD COLUMN e int;"),
        ],
        &MigrateOptions::default(),
    );
    assert!(!report.succeeded());
    let names: Vec<String> =
        report.files_not_run.iter().map(|f| PathBuf::from(f).file_name().unwrap().to_string_lossy().into()).collect();
    assert_eq!(names, ["0003_c.sql", "0004_d.sql"]);
    assert!(report.files_not_run.iter().all(|f| f.starts_with(&*dir.path().to_string_lossy())));
    assert!(report.text().contains("Never ran: "), "{}", report.text());
    assert!(report.markdown().contains("Never ran: "), "{}", report.markdown());
    assert_eq!(report.statements.iter().map(|s| s.applied).collect::<Vec<_>>(), [true, false]);
    assert!(
        report.text().contains("Stayed applied (committed before the failure), 1 of 2 statements"),
        "{}",
        report.text()
    );

    // A failure inside a block rolls the block back; what was committed before it stays.
    let report = migrate(
        &db,
        "ALTER TABLE t ADD COLUMN x int;\nBEGIN;\nALTER TABLE t ADD COLUMN y int;\nALTER TABLE t ADD COLUMN y int;\nCOMMIT;",
    );
    let has = |c: &str| {
        query_i64(&db, &format!("SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = '{c}'"))
    };
    assert_eq!((has("x"), has("y")), (1, 0));
    assert_eq!(report.statements.iter().map(|s| s.applied).collect::<Vec<_>>(), [true, false, false, false]);
    // Everything in one block: nothing applied, and the report says why the diff is empty.
    let report = migrate(&db, "BEGIN;\nALTER TABLE t ADD COLUMN z int;\nALTER TABLE t ADD COLUMN z int;\nCOMMIT;");
    assert_eq!(has("z"), 0);
    assert!(report.statements.iter().all(|s| !s.applied));
    assert!(report.text().contains("Nothing was applied"), "{}", report.text());
}

/// Found by a new user: a file that ends inside `BEGIN` fails there; the next file's COMMIT does not
/// commit it (psql runs each file in a session of its own), and later files never run.
#[test]
fn a_file_left_inside_a_transaction_fails_at_its_end() {
    let db = fixture("mig_openfile", "CREATE TABLE t (id int PRIMARY KEY);");
    let (report, _dir) = migrate_files(
        &db,
        &[
            ("0001_a.sql", "ALTER TABLE t ADD COLUMN a int;"),
            ("0002_open.sql", "BEGIN;\nCREATE TABLE t_new (i int);"),
            ("0003_commits.sql", "BEGIN;\nSELECT 1;\nCOMMIT;"),
        ],
        &MigrateOptions::default(),
    );
    let f = report.failure.as_ref().unwrap_or_else(|| panic!("{}", report.text()));
    assert_eq!(f.kind, FailureKind::OpenTransaction, "{}", report.text());
    assert!(f.location.as_deref().is_some_and(|l| l.ends_with("0002_open.sql:2")), "{f:?}");
    assert_eq!(report.files_not_run.len(), 1, "{:?}", report.files_not_run);
    assert!(report.files_not_run[0].ends_with("0003_commits.sql"));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM pg_class WHERE relname = 't_new'"), 0);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'a'"), 1);
    assert_eq!(report.statements.iter().map(|s| s.applied).collect::<Vec<_>>(), [true, false, false]);
}

/// Found by a new user: inside `BEGIN … COMMIT` a statement's lock is held to the COMMIT, so its line
/// says so (here at least the 300 ms of the sleep after it), and agrees with the summary.
#[test]
fn a_lock_taken_in_a_block_is_held_to_its_commit() {
    let db = fixture("mig_blockhold", "CREATE TABLE t (id int PRIMARY KEY);");
    let report = migrate(&db, "BEGIN;\nALTER TABLE t ADD COLUMN z int;\nSELECT pg_sleep(0.3);\nCOMMIT;\n");
    assert!(report.succeeded(), "{}", report.text());
    let alter = &report.statements[1];
    let l = alter.locks.iter().find(|l| l.mode == "AccessExclusiveLock").unwrap_or_else(|| panic!("{alter:#?}"));
    assert!(l.millis >= 300, "{l:?}\n{}", report.text());
    let summary = report.locks.iter().find(|s| s.relation == "public.t").unwrap();
    assert!(summary.reads_and_writes_blocked_millis >= 300, "{summary:#?}");
    assert!(l.millis <= summary.reads_and_writes_blocked_millis + 1, "{l:?} {summary:#?}");
}
