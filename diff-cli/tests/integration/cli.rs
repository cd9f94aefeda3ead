//! The command line: filters, formats, exit codes, errors, connection forms.

use serde_json::json;

use crate::harness::{branch, cli, cluster, conn, counts, diff_json, table, Pair};

fn shop() -> Pair {
    branch(
        "shop",
        "CREATE SCHEMA billing;
         CREATE TABLE public.orders (id int PRIMARY KEY, status text, updated_at timestamptz DEFAULT '2024-01-01');
         CREATE TABLE public.users (id int PRIMARY KEY, email text);
         CREATE TABLE billing.invoices (id int PRIMARY KEY, total int);
         CREATE TABLE billing.refunds (id int PRIMARY KEY, total int);
         INSERT INTO orders (id, status) SELECT i, 'new' FROM generate_series(1, 30) i;
         INSERT INTO users SELECT i, 'u' || i FROM generate_series(1, 5) i;
         INSERT INTO billing.invoices SELECT i, i FROM generate_series(1, 5) i;
         INSERT INTO billing.refunds VALUES (1, 1);",
        "UPDATE orders SET updated_at = now() WHERE id <= 20; UPDATE orders SET status = 'paid' WHERE id IN (1, 2);
         DELETE FROM users WHERE id = 5; UPDATE billing.invoices SET total = 0 WHERE id = 1;
         INSERT INTO billing.refunds VALUES (2, 2);",
    )
}

fn names(doc: &serde_json::Value) -> Vec<String> {
    doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}.{}", t["schema"].as_str().unwrap(), t["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn filters() {
    let pair = shop();
    let (_, doc) = diff_json(&pair, &["--table", "public.orders", "--table", "billing.*"]);
    assert_eq!(names(&doc), ["billing.invoices", "billing.refunds", "public.orders"]);
    assert_eq!(counts(&doc, "public.orders"), (0, 20, 0));
    let (_, doc) = diff_json(&pair, &["--exclude-columns", "orders.updated_at"]);
    assert_eq!(counts(&doc, "public.orders"), (0, 2, 0));
    assert_eq!(table(&doc, "public.orders")["columns"], json!(["id", "status"]));
    let (_, doc) = diff_json(&pair, &["--schema", "billing", "--exclude-table", "refunds"]);
    assert_eq!(names(&doc), ["billing.invoices"]);
    let (_, doc) = diff_json(&pair, &["--table", "users"]);
    assert_eq!(names(&doc), ["public.users"]);
    assert_eq!(
        doc["summary"],
        json!({"tables_compared": 1, "tables_changed": 1, "inserted": 0, "updated": 0, "deleted": 1, "schema_changes": 0, "dangerous_schema_changes": 0})
    );
    for args in
        [["--table", "nope*"], ["--schema", "nope"], ["--exclude-table", "x.y"], ["--exclude-columns", "orders.nope"]]
    {
        let run = cli(&[args[0], args[1], &conn(&pair.parent), &conn(&pair.child)], &[]);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains(args[1]) && run.stderr.lines().count() == 1, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn max_rows_and_text_output() {
    let pair = shop();
    let (_, doc) = diff_json(&pair, &["--max-rows", "3"]);
    assert_eq!(table(&doc, "public.orders")["rows"].as_array().unwrap().len(), 3);
    assert_eq!(table(&doc, "public.orders")["rows_omitted"], json!(17));
    assert_eq!(counts(&doc, "public.orders"), (0, 20, 0));
    let run = cli(&["--quiet", "--max-rows", "2", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("… 18 more changed rows"), "{}", run.stdout);
    assert!(run.stdout.contains("status: 'new' → 'paid'"), "{}", run.stdout);
    assert!(run.stdout.contains("- id=5  email='u5'"), "{}", run.stdout);
    assert!(run.stdout.contains("│ public.users"), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'), "NO_COLOR respected");
    let colored = cli(&["--quiet", "--color", "always", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert!(colored.stdout.contains("\x1b[32m"));
}

#[test]
fn output_file_and_modes() {
    let pair = shop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let run = cli(&["--format", "json", "-o", file.to_str().unwrap(), &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(counts(&doc, "billing.refunds"), (1, 0, 0));
    // A failing run writes no file.
    let never = dir.path().join("never.json");
    let run = cli(&["-o", never.to_str().unwrap(), &conn(&pair.parent), &conn("no_such_db")], &[]);
    assert_eq!(run.code, 2);
    assert!(!never.exists());
    let (_, doc) = diff_json(&pair, &["--schema-only"]);
    assert!(doc["tables"].as_array().unwrap().is_empty());
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let c = cluster();
    let port = c.base.split_whitespace().find_map(|kv| kv.strip_prefix("port=")).unwrap_or("5432").to_string();
    // Nothing listens on port 1.
    let run = cli(&["--quiet", "postgresql://app:hunter2@127.0.0.1:1/shop", "postgresql://app@127.0.0.1:1/shop"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("127.0.0.1:1/shop") && run.stderr.contains("parent"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("is the server running and accepting TCP connections"), "{}", run.stderr);
    // No socket in the directory: the same question, for a unix socket.
    let run = cli(&["--quiet", "host=/nonexistent port=5999 dbname=x", "host=/nonexistent port=5999 dbname=y"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent:5999/x") && run.stderr.contains("no server socket there"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // A database that does not exist is named.
    let missing = format!("{} dbname=no_such_db password=hunter2", c.base);
    let run = cli(&["--quiet", &conn("postgres"), &missing], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("child") && run.stderr.contains("no_such_db") && run.stderr.contains(&port),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    for bad in ["postgresql://h:notaport/db", "sslmode=sometimes dbname=x", "host='unterminated"] {
        let run = cli(&[bad, &conn("postgres")], &[]);
        assert_eq!(run.code, 2, "{bad}");
        assert!(
            run.stderr.starts_with("pgbranchdiff: error: invalid connection string for parent"),
            "{bad}: {}",
            run.stderr
        );
    }
    // Usage errors: clap's message, on one line in the same style, missing arguments named.
    let run = cli(&["only-one-arg"], &[]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("pgbranchdiff: error: ") && run.stderr.contains("<CHILD>"), "{}", run.stderr);
    let run = cli(&["--jobs", "0", "a", "b"], &[]);
    assert_eq!((run.code, run.stderr.lines().count()), (2, 1), "{}", run.stderr);
    assert!(run.stderr.contains("'--jobs <N>'"), "{}", run.stderr);
}

#[test]
fn environment_and_pgpass() {
    let pair = shop();
    let c = cluster();
    let get = |k: &str| c.base.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().to_string();
    let env = [("PGHOST", get("host")), ("PGPORT", get("port")), ("PGUSER", get("user"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = cli(&["--quiet", "--format", "json", &pair.parent, &pair.child], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(counts(&run.json(), "public.users"), (0, 0, 1));
    // The password file is read (trust auth ignores it; a malformed one must not break anything).
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, "localhost:*:*:*:secret\n").unwrap();
    let mut env2 = env.clone();
    let p = pgpass.to_str().unwrap().to_string();
    env2.push(("PGPASSFILE", &p));
    let run = cli(&["--quiet", &pair.parent, &pair.child], &env2);
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn tls_modes() {
    let c = cluster();
    let Some(tls) = &c.tls else {
        eprintln!("skipping: the test server was not started by the harness with TLS");
        return;
    };
    let pair = shop();
    let url = |db: &str, mode: &str| format!("postgresql://postgres@localhost:{}/{db}?sslmode={mode}", tls.port);
    for mode in ["require", "prefer"] {
        let run = cli(&["--quiet", "--format", "json", &url(&pair.parent, mode), &url(&pair.child, mode)], &[]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
    }
    let root = tls.root_cert.to_str().unwrap();
    let full = |db: &str| format!("{}&sslrootcert={root}", url(db, "verify-full"));
    let run = cli(&["--quiet", &full(&pair.parent), &full(&pair.child)], &[]);
    assert_eq!(run.code, 1, "verify-full: {}", run.stderr);
    // Without the root certificate the self-signed server cannot be verified.
    let home = tempfile::tempdir().unwrap();
    let run = cli(
        &["--quiet", &url(&pair.parent, "verify-full"), &url(&pair.child, "verify-full")],
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot connect to parent"), "{}", run.stderr);
}
