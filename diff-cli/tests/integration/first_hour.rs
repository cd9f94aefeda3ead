//! What a new user meets first: messages that say what is wrong with the
//! input, text that no value can forge, counts that agree, and a server log
//! left clean.

use crate::harness::{branch, cli, conn, diff_json, server_log, table};

#[test]
fn filters_that_together_select_nothing_are_an_error() {
    let pair = branch("emptysel", "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);", "");
    let run = cli(&["-T", "public.*", "-t", "public.*", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("select no table"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn connection_string_mistakes_are_named() {
    for (arg, says) in [
        ("postgresq://app@localhost/db", "unknown scheme \"postgresq://\""),
        ("postgresql://app@localhost:5561:99/db", "invalid port"),
        ("postgresql://app@localhost:99999/db", "invalid port \"99999\""),
    ] {
        let run = cli(&[arg, arg], &[]);
        assert_eq!(run.code, 2, "{arg}");
        assert_eq!(run.stderr.lines().count(), 1, "{arg}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{arg}: {}", run.stderr);
    }
}

#[test]
fn hash_strategy_says_which_tables_it_read_in_full() {
    let pair = branch(
        "hashnote",
        "CREATE TABLE t (k text PRIMARY KEY, v int); INSERT INTO t VALUES ('a', 1), ('b', 2);
         CREATE TABLE n (id int PRIMARY KEY); INSERT INTO n VALUES (1);",
        "UPDATE t SET v = 3 WHERE k = 'b';",
    );
    // Every table is hashed in blocks (a text key too, on every version), except under --key.
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run = cli(&["--strategy", "hash", "--key", "public.t=k", "--format", "json", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let notes: Vec<&str> = run.stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "{}", run.stderr);
    let doc = run.json();
    assert!(
        notes[0].contains("read 1 table in full: public.t (--key is verified by reading every row)"),
        "{}",
        notes[0]
    );
    assert_eq!(table(&doc, "public.t")["stats"]["fallback"], "hash: --key is verified by reading every row");
    assert_eq!(table(&doc, "public.t")["stats"]["strategy"], "stream");
    assert!(table(&doc, "public.n")["stats"].get("fallback").is_none());
    assert_eq!(table(&doc, "public.n")["stats"]["strategy"], "hash");
    let run = cli(&["--strategy", "hash", "--format", "json", &p, &c], &[]);
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    assert_eq!(table(&run.json(), "public.t")["stats"]["strategy"], "hash");
}

#[test]
fn text_report_counts_agree_and_schema_only_says_rows_were_not_compared() {
    // Dropping a table with two columns: one root change and three consequences (its columns and key).
    let pair = branch(
        "counts",
        "CREATE TABLE gone (id int PRIMARY KEY, v text); CREATE TABLE kept (id int PRIMARY KEY);",
        "DROP TABLE gone;",
    );
    let run = cli(&[&conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1);
    // Consequences of the drop: columns id and v, and the primary key constraint.
    let header = run.stdout.lines().find(|l| l.starts_with("Schema changes")).unwrap();
    assert_eq!(header, "Schema changes: 1 (+3 consequences)", "{}", run.stdout);
    let footer = run.stdout.lines().last().unwrap();
    assert!(footer.ends_with("; 1 schema change (+3 consequences)"), "{}", run.stdout);
    let run = cli(&["--schema-only", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert!(run.stdout.lines().last().unwrap().starts_with("rows not compared (--schema-only)"), "{}", run.stdout);
}

#[test]
fn values_cannot_forge_lines_or_steer_the_terminal() {
    let pair = branch(
        "escapes",
        "CREATE TABLE t (id int PRIMARY KEY, v text, b bytea);
         INSERT INTO t VALUES (1, 'plain', NULL), (2, 'x', decode(repeat('07', 1000000), 'hex'));",
        "UPDATE t SET v = E'evil\\n  ~ id=99\\n      v: ''a'' → ''b''\\x1b[2J' WHERE id = 1;
         UPDATE t SET b = overlay(b placing '\\x08'::bytea from 500001 for 1) WHERE id = 2;",
    );
    let run = cli(&["--color", "always", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The only escape sequences are the renderer's colours, which always start "\x1b[" and a digit
    // and end in "m"; the value's "\x1b[2J" is shown as text.
    assert!(!run.stdout.contains("\x1b[2J"), "{}", run.stdout);
    assert!(run.stdout.contains("\\u{1b}[2J"), "{}", run.stdout);
    assert!(!run.stdout.lines().any(|l| l.contains("id=99") && !l.contains("evil")), "{}", run.stdout);
    // bytea: one byte changed at offset 500,000 of 1,000,000; 12 bytes of context on each side.
    assert!(run.stdout.contains("…(499988 bytes same)…"), "{}", run.stdout);
    assert!(run.stdout.contains("…(499987 bytes same)…"), "{}", run.stdout);
}

#[test]
fn runs_leave_no_open_transaction_in_the_server_log() {
    let pair = branch("logclean", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);", "DELETE FROM t;");
    let Some(before) = server_log() else { return };
    diff_json(&pair, &[]);
    let run = cli(&["--table", "nope", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 2);
    let log = server_log().unwrap();
    let new = &log[before.len().min(log.len())..];
    assert!(!new.contains("unexpected EOF"), "{new}");
}

#[test]
fn detached_partition_rows_are_compared_as_a_table() {
    // m holds ids 0..199 in two partitions; the branch detaches m2 (ids 100..199) and changes one
    // of its rows. m lost 100 rows; m2, now a table of its own, is compared with the parent's m2.
    let pair = branch(
        "detach",
        "CREATE TABLE m (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
         CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
         CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (100) TO (200);
         INSERT INTO m SELECT i, i FROM generate_series(0, 199) i;",
        "ALTER TABLE m DETACH PARTITION m2; UPDATE m2 SET v = 0 WHERE id = 150;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(crate::harness::counts(&doc, "public.m"), (0, 0, 100));
    assert_eq!(crate::harness::counts(&doc, "public.m2"), (0, 1, 0));
    let names: Vec<&str> = doc["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["m", "m2"]);
}

#[test]
fn a_table_replaced_on_the_branch_is_said_so_and_its_rows_compared() {
    // The create-copy-swap rebuild: a new table under the old name, holding ids 1..8 of 1..10.
    // (Lineage shows in the objects the branch kept: the table `other`.)
    let pair = branch(
        "replaced",
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10) i;
         CREATE TABLE other (id int PRIMARY KEY);",
        "CREATE TABLE t_new (LIKE t INCLUDING ALL); INSERT INTO t_new SELECT * FROM t WHERE id <= 8;
         DROP TABLE t; ALTER TABLE t_new RENAME TO t;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    let change = doc["schema_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == "public.t" && c["kind"] == "table")
        .unwrap_or_else(|| panic!("{doc:#}"))
        .clone();
    assert_eq!(change["op"], "altered");
    assert!(change["note"].as_str().unwrap().starts_with("replaced:"), "{change:#}");
    assert_eq!(crate::harness::counts(&doc, "public.t"), (0, 0, 2));
}

#[test]
fn sequence_state_can_be_ignored() {
    let pair = branch(
        "seqignore",
        "CREATE TABLE t (id serial PRIMARY KEY); INSERT INTO t DEFAULT VALUES;",
        "INSERT INTO t DEFAULT VALUES; DELETE FROM t WHERE id = 2;",
    );
    let (code, doc) = diff_json(&pair, &["--ignore", "sequence-state"]);
    assert_eq!(code, 0, "{doc:#}");
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    let seq = &doc["schema_changes"][0];
    assert_eq!((seq["object"].as_str(), seq["after"]["last_value"].as_str()), (Some("public.t_id_seq"), Some("2")));
}

#[test]
fn an_interrupt_closes_the_connections_cleanly() {
    let pair = branch(
        "interrupt",
        "CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big SELECT i, repeat('x', 200) FROM generate_series(1, 400000) i;",
        "UPDATE big SET v = 'y' WHERE id % 1000 = 0;",
    );
    let Some(before) = server_log() else { return };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pgbranchdiff"))
        .args(["--quiet", "--strategy", "stream", "--format", "json", &conn(&pair.parent), &conn(&pair.child)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "pgbranchdiff: interrupted");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = server_log().unwrap();
    let new = &log[before.len().min(log.len())..];
    for bad in ["unexpected EOF", "Broken pipe", "connection to client lost"] {
        assert!(!new.contains(bad), "{new}");
    }
}

#[test]
fn table_filters_leave_out_objects_outside_tables_and_data_only_says_so() {
    let pair = branch(
        "scoped",
        "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other VALUES (1);",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'; CREATE SEQUENCE seq1;",
    );
    let (code, doc) = diff_json(&pair, &["-t", "other"]);
    assert_eq!(code, 0, "{:#}", doc["schema_changes"]);
    let (code, _) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    let run = cli(&["--data-only", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 0);
    let last = run.stdout.lines().last().unwrap();
    assert!(last.ends_with("; schema not compared (--data-only)"), "{last}");
    let run = cli(&["--data-only", "--format", "json", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.json()["compared"], serde_json::json!({"rows": true, "schema": false, "filtered": false}));
}

#[test]
fn text_report_reads_at_a_glance() {
    let pair = branch(
        "glance",
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE gone (id int PRIMARY KEY);
         CREATE VIEW recent AS SELECT id, v FROM t WHERE id > 1 ORDER BY id;",
        "CREATE OR REPLACE VIEW recent AS SELECT id, v FROM t WHERE id > 2 ORDER BY id; DROP TABLE gone;",
    );
    let run = cli(&[&conn(&pair.parent), &conn(&pair.child)], &[]);
    let out = &run.stdout;
    let dropped = out.lines().find(|l| l.contains("dropped table") && l.contains("public.gone")).unwrap();
    assert!(!dropped.contains("row_security") && !dropped.contains("kind regular"), "{dropped}");
    // The changed definition as a unified diff under its line: the WHERE clause, old and new.
    let lines: Vec<&str> = out.lines().collect();
    let at = lines.iter().position(|l| l.contains("altered view") && l.contains("definition changed")).unwrap();
    let diff: Vec<&str> = lines[at + 1..].iter().take_while(|l| l.starts_with("      ")).map(|l| l.trim()).collect();
    // (PostgreSQL 16+ prints `id`, earlier versions `t.id`.)
    assert!(diff.iter().any(|l| l.starts_with('-') && l.contains("WHERE (") && l.contains("id > 1)")), "{out}");
    assert!(diff.iter().any(|l| l.starts_with('+') && l.contains("WHERE (") && l.contains("id > 2)")), "{out}");
    // An empty table dropped loses no data (its drop is still a schema change labelled drops_data).
    assert!(out.contains("\nNo data lost.\n"), "{out}");
}
