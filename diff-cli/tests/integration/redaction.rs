//! `--redact` and PostgreSQL Anonymizer masking rules: a redacted value never
//! reaches any output, while changes and shared values stay visible.

use serde_json::Value;

use crate::harness::{branch, cli, conn, Pair};

/// Plaintexts that must never appear in an output once redacted.
const SECRETS: &[&str] =
    &["alice@secret.example", "bob@secret.example", "555-0101", "555-0199", "carol@secret.example"];

fn fixture() -> Pair {
    // phone carries an anon masking rule. SECURITY LABEL needs the extension's
    // provider loaded, so the test writes the catalog row the command would.
    branch(
        "redact",
        "CREATE SCHEMA app;
         CREATE TABLE app.users (email text PRIMARY KEY, phone text, name text, old_email text);
         INSERT INTO app.users VALUES ('alice@secret.example', '555-0101', 'Alice', 'alice@secret.example'),
                                      ('bob@secret.example', '555-0101', 'Bob', NULL),
                                      ('dave@x.example', '555-0202', 'Dave', NULL);
         CREATE TABLE app.notes (id int PRIMARY KEY, author_email text, body text);
         INSERT INTO app.notes VALUES (1, 'alice@secret.example', 'hi');
         SET allow_system_table_mods = on;
         INSERT INTO pg_seclabel SELECT 'app.users'::regclass, 'pg_class'::regclass, attnum, 'anon',
                'MASKED WITH VALUE NULL' FROM pg_attribute WHERE attrelid = 'app.users'::regclass AND attname = 'phone';",
        "UPDATE app.users SET phone = '555-0199' WHERE email = 'alice@secret.example';
         DELETE FROM app.users WHERE email = 'bob@secret.example';
         INSERT INTO app.users VALUES ('carol@secret.example', '555-0101', 'Carol', NULL);
         UPDATE app.users SET name = 'David' WHERE email = 'dave@x.example';
         ALTER TABLE app.users DROP COLUMN old_email;
         ALTER TABLE app.notes ALTER COLUMN author_email SET DEFAULT 'carol@secret.example';
         UPDATE app.notes SET author_email = 'bob@secret.example';",
    )
}

fn run(pair: &Pair, format: &str, extra: &[&str]) -> String {
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let mut args = vec!["--format", format, "--quiet", "--redact", "*.*email", &p, &c];
    args.extend_from_slice(extra);
    let run = cli(&args, &[("PGBRANCHDIFF_REDACT_KEY", "test secret")]);
    assert_eq!(run.code, 1, "{format}: {}", run.stderr);
    for s in SECRETS {
        assert!(!run.stderr.contains(s), "{format} stderr shows {s}");
    }
    run.stdout
}

#[test]
fn no_redacted_value_reaches_any_format() {
    let pair = fixture();
    for format in ["text", "json", "ndjson", "markdown"] {
        let out = run(&pair, format, &["--max-rows", "100"]);
        for s in SECRETS {
            assert!(!out.contains(s), "--format {format} shows {s}:\n{out}");
        }
        assert!(out.contains("redacted:"), "--format {format} shows no redacted value:\n{out}");
        // Unredacted columns stay readable.
        assert!(out.contains("David"), "--format {format}");
    }
    // Arrow: every byte of every file in the report directory.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run = cli(
        &["--format", "arrow", "--quiet", "--redact", "*.*email", "-o", report.to_str().unwrap(), &p, &c],
        &[("PGBRANCHDIFF_REDACT_KEY", "test secret")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&report).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    for s in SECRETS {
        assert!(!contains(s.as_bytes()), "--format arrow shows {s}");
    }
    assert!(contains(b"redacted:") && contains(b"David"), "the Arrow files hold the rows");
}

#[test]
fn changes_and_shared_values_stay_visible() {
    let pair = fixture();
    let doc: Value = serde_json::from_str(&run(&pair, "json", &[])).unwrap();
    let users = doc["tables"].as_array().unwrap().iter().find(|t| t["name"] == "users").unwrap();
    // Counts are those of the plaintext comparison: alice and dave updated, bob deleted, carol inserted.
    assert_eq!(users["counts"], serde_json::json!({"inserted": 1, "updated": 2, "deleted": 1}));
    let rows = users["rows"].as_array().unwrap();
    let alice = rows.iter().find(|r| r["changed"] == serde_json::json!(["phone"])).expect("phone change shown");
    let (before, after) = (&alice["before"]["phone"], &alice["after"]["phone"]);
    assert!(before.as_str().unwrap().starts_with("redacted:") && before != after, "{alice}");
    // alice (before) and bob (deleted) shared 555-0101, and so does carol (inserted): one hash.
    let bob = rows.iter().find(|r| r["op"] == "delete").unwrap();
    let carol = rows.iter().find(|r| r["op"] == "insert").unwrap();
    assert_eq!(&bob["before"]["phone"], before);
    assert_eq!(&carol["after"]["phone"], before);
    // Keys are redacted as their column is, and differ between rows.
    assert!(bob["key"]["email"].as_str().unwrap().starts_with("redacted:"));
    assert_ne!(bob["key"]["email"], carol["key"]["email"]);
    // The same secret gives the same hashes in another run; another secret does not.
    let rows_of = |d: &Value| d["tables"].as_array().unwrap().iter().map(|t| t["rows"].clone()).collect::<Vec<_>>();
    let again: Value = serde_json::from_str(&run(&pair, "json", &[])).unwrap();
    assert_eq!(rows_of(&again), rows_of(&doc));
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let other = cli(&["--format", "json", "--quiet", "--redact", "*.*email", "--redact-key", "other", &p, &c], &[]);
    assert_ne!(rows_of(&other.json()), rows_of(&doc));
}

#[test]
fn masking_rules_redact_by_default_and_show_masked_turns_that_off() {
    let pair = fixture();
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let plain = cli(&["--format", "json", "--quiet", &p, &c], &[]);
    assert!(!plain.stdout.contains("555-0101"), "masked column shown by default");
    assert!(plain.stdout.contains("alice@secret.example"), "only masked columns are redacted without --redact");
    let shown = cli(&["--format", "json", "--quiet", "--show-masked", &p, &c], &[]);
    assert!(shown.stdout.contains("555-0101"));
}

/// A patch cannot carry hashes in place of values: it is refused, and the
/// refusal shows no value either.
#[test]
fn the_sql_patch_refuses_redacted_values() {
    let pair = fixture();
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("patch.sql");
    let run = cli(&["--format", "sql", "--quiet", "--redact", "*.*email", "-o", file.to_str().unwrap(), &p, &c], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is redacted"), "{}", run.stderr);
    assert!(!file.exists(), "a refused patch leaves no file");
    for s in SECRETS {
        assert!(!run.stderr.contains(s) && !run.stdout.contains(s), "shows {s}");
    }
    // Without redaction (and with the masked column shown) the patch is written.
    let run = cli(&["--format", "sql", "--quiet", "--show-masked", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("555-0199"));
}

/// Found by a new user: a column renamed on the branch is redacted (and left
/// out) by its old name too; a pattern that selects nothing is an error, not
/// a silent plaintext report.
#[test]
fn renamed_columns_match_by_either_name_and_typos_are_errors() {
    let pair = branch(
        "redact_rename",
        "CREATE TABLE u (id int PRIMARY KEY, email text DEFAULT 'PLAINdef', keep text);
         INSERT INTO u VALUES (1, 'PLAINx1', 'k'), (2, 'PLAINx2', 'k');
         CREATE TABLE nocols (); INSERT INTO nocols DEFAULT VALUES; INSERT INTO nocols DEFAULT VALUES;",
        "ALTER TABLE u RENAME COLUMN email TO contact; UPDATE u SET contact = 'PLAINy1' WHERE id = 1;
         DELETE FROM u WHERE id = 2; DELETE FROM nocols WHERE ctid = (SELECT min(ctid) FROM nocols);",
    );
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    for pattern in ["u.email", "public.u.email", "*.email"] {
        let run = cli(&["--format", "json", "--quiet", "--redact", pattern, &p, &c], &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stdout.contains("PLAIN"), "--redact {pattern} leaves plaintext:\n{}", run.stdout);
    }
    let run = cli(&["--format", "json", "--quiet", "--exclude-columns", "u.email", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let u = run.json()["tables"].as_array().unwrap().iter().find(|t| t["name"] == "u").unwrap().clone();
    assert_eq!(u["columns"], serde_json::json!(["id", "keep"]), "excluded by its parent name");

    for (pattern, says) in [("*.emial", "matches no compared column"), ("", "redaction pattern")] {
        let run = cli(&["--format", "json", "--quiet", "--redact", pattern, &p, &c], &[]);
        assert_eq!(run.code, 2, "--redact {pattern:?}: {}", run.stderr);
        assert!(run.stderr.contains(says) && run.stdout.is_empty(), "{}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }

    // A table with no column at all still has rows, in Arrow too.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let run = cli(&["--format", "arrow", "--quiet", "--table", "nocols", "-o", out.to_str().unwrap(), &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(out.join("public.nocols.arrow").exists());
}
