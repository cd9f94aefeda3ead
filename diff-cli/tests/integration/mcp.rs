//! `pgbranchdiff mcp` driven over stdio by the Python MCP SDK (`mcp`, from
//! PyPI into a virtual environment under the target directory), through an
//! agent's whole loop: branch, a migration that fails on the data, reset, a
//! corrected one that drops a column, diff, verdict, delete; with schema
//! validation, tool errors, two branches at once, cleanup on exit, a failing
//! provider command, and the source checked unchanged by SQL. Expected values
//! come from SQL on the source, not from the tool.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value as J};

use crate::harness::{self, conn, connect};

/// customers 1..=10: email `u<i % 8>@x` (ids 9 and 10 repeat the emails of 1 and 2), phone
/// `555-01NN` under an Anonymizer masking rule, legacy_code set for even ids.
const SETUP: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, phone text, legacy_code text);
    INSERT INTO customers SELECT i, 'u' || (i % 8) || '@x', '555-01' || lpad(i::text, 2, '0'),
           CASE WHEN i % 2 = 0 THEN 'L' || i END FROM generate_series(1, 10) i;
    SET allow_system_table_mods = on;
    INSERT INTO pg_seclabel SELECT 'customers'::regclass, 'pg_class'::regclass, attnum, 'anon',
           'MASKED WITH VALUE NULL' FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'phone';";

const FAILS: &str = "ALTER TABLE customers DROP COLUMN legacy_code;
    CREATE UNIQUE INDEX customers_email ON customers (email);";

const CORRECTED: &str = "DELETE FROM customers a USING customers b WHERE a.email = b.email AND a.id > b.id;
    ALTER TABLE customers DROP COLUMN legacy_code;
    CREATE UNIQUE INDEX customers_email ON customers (email);";

/// A python with the MCP SDK and jsonschema: a venv made once (and reused) under the target directory.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-venv");
        let py = venv.join("bin/python");
        let ready = |py: &Path| {
            Command::new(py).args(["-c", "import mcp, jsonschema"]).output().is_ok_and(|o| o.status.success())
        };
        if ready(&py) {
            return py;
        }
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| panic!("the MCP test needs {what}: cannot run it: {e}"));
            let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "the MCP test needs {what}, which failed: {o}{e}");
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "a Python virtual environment (python3 -m venv)");
        let pip = venv.join("bin/pip");
        // Pinned: the driver uses the 2.x API (snake_case result fields).
        let args = ["install", "--quiet", "--disable-pip-version-check", "mcp==2.3.0", "jsonschema==4.26.0"];
        run(Command::new(pip).args(args), "the MCP SDK from PyPI (pip install mcp jsonschema)");
        assert!(ready(&py), "mcp was installed into {} but cannot be imported", venv.display());
        py
    })
}

/// Runs `mcp_agent.py` with `plan` against `pgbranchdiff mcp server_args…`; returns its transcript.
fn drive(plan: &J, server_args: &[&str]) -> J {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/mcp_agent.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(plan.to_string()).arg(env!("CARGO_BIN_EXE_pgbranchdiff")).arg("mcp").args(server_args);
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "PGPASSFILE"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mcp_agent.py failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// A checksum of the source's rows and of its catalog (tables, columns, indexes, labels), by SQL.
fn checksum(db: &str) -> String {
    let sql = "SELECT md5((SELECT string_agg(c::text, ';' ORDER BY id) FROM customers c)
        || (SELECT string_agg(format('%s.%s:%s:%s:%s', k.relname, a.attname, a.atttypid, a.attnotnull, a.attisdropped),
                              ';' ORDER BY k.relname, a.attnum)
              FROM pg_class k JOIN pg_attribute a ON a.attrelid = k.oid
             WHERE k.relnamespace = 'public'::regnamespace AND a.attnum > 0)
        || (SELECT string_agg(k.relname || '/' || k.relfilenode, ';' ORDER BY k.relname)
              FROM pg_class k WHERE k.relnamespace = 'public'::regnamespace)
        || (SELECT count(*) FROM pg_seclabel)::text)";
    connect(db).query_one(sql, &[]).unwrap().get(0)
}

fn strings(db: &str, sql: &str) -> Vec<String> {
    connect(db).query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

fn count(db: &str, sql: &str) -> i64 {
    connect(db).query_one(sql, &[]).unwrap().get(0)
}

fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pgbd-mcp-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

fn step(tool: &str, args: J) -> J {
    json!({ "tool": tool, "args": args })
}

#[test]
fn an_agent_branches_migrates_verifies_and_cleans_up() {
    let pair = harness::branch("mcp", SETUP, "");
    let db = pair.parent.as_str();
    let before = checksum(db);
    // Expected values, from the source.
    let duplicates = strings(db, "SELECT email FROM customers GROUP BY email HAVING count(*) > 1 ORDER BY 1");
    let deleted = count(db, "SELECT count(*) FROM customers a WHERE EXISTS (SELECT FROM customers b WHERE b.email = a.email AND b.id < a.id)");
    let legacy_values = count(db, "SELECT count(legacy_code) FROM customers");
    let phones = strings(db, "SELECT phone FROM customers");
    assert_eq!((duplicates.len(), deleted, legacy_values), (2, 2, 5), "the fixture");

    let plan = json!([
        { "tool": "create_branch", "as": "b1" },
        step("run_sql", json!({ "branch": "$b1", "sql": FAILS })),
        step("reset_branch", json!({ "branch": "$b1" })),
        step("run_sql", json!({ "branch": "$b1", "sql": CORRECTED })),
        step("diff", json!({ "branch": "$b1" })),
        step("verdict", json!({ "branch": "$b1", "fail_on": ["data-loss"] })),
        step("verdict", json!({ "branch": "$b1", "fail_on": ["data-loss"], "accept": ["public.customers"] })),
        step("run_sql", json!({ "branch": "nope", "sql": "SELECT 1" })),
        step("verdict", json!({ "branch": "$b1", "fail_on": ["nonsense"] })),
        { "tool": "create_branch", "as": "b2" },
        step("run_sql", json!({ "branch": "$b2", "sql": "UPDATE customers SET email = 'z@x' WHERE id = 3" })),
        step("diff", json!({ "branch": "$b2", "tables": ["customers"] })),
        step("delete_branch", json!({ "branch": "$b1" })),
        step("list_branches", json!({})),
        step("diff", json!({ "branch": "$b1" })),
        // An argument the tool does not take is refused, not ignored (an agent would believe it took effect).
        step("diff", json!({ "branch": "$b2", "url": "postgresql://elsewhere/db" })),
    ]);
    let state = state_dir();
    let out = drive(&plan, &["--source", &conn(db), "--state-dir", state.path().to_str().unwrap()]);
    let calls = out["calls"].as_array().unwrap();
    let result = |i: usize| &calls[i]["result"];
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(c["error"], [7, 8, 14, 15].contains(&i), "call {i} {}: {}", c["tool"], c["text"]);
    }
    assert!(calls[15]["text"].as_str().unwrap().contains("unknown field `url`"), "{}", calls[15]);

    let tools: Vec<&str> = out["tools"].as_object().unwrap().keys().map(String::as_str).collect();
    for t in ["create_branch", "run_sql", "diff", "verdict", "reset_branch", "delete_branch", "list_branches"] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
        assert!(out["tools"][t]["output"].is_object(), "{t} has no output schema");
    }
    assert_eq!(out["tools"]["run_sql"]["input"]["required"], json!(["branch", "sql"]));

    // The failing migration: explained with the duplicated emails.
    let failed = result(1);
    assert_eq!(failed["applied"], false);
    let text = failed["text"].as_str().unwrap();
    for email in &duplicates {
        assert!(text.contains(email.as_str()), "the explanation names {email}: {text}");
    }
    // The corrected one applied on the reset branch.
    assert_eq!(result(3)["applied"], true, "{}", result(3)["text"]);

    // The diff: the deleted rows and the dropped column's values.
    let diff = result(4);
    assert_eq!(diff["summary"]["deleted"], deleted);
    assert_eq!(diff["rows"].as_array().unwrap().len() as i64, deleted);
    let ids: Vec<&J> = diff["rows"].as_array().unwrap().iter().map(|r| &r["key"]["id"]).collect();
    assert_eq!(ids, [&json!(9), &json!(10)]);
    let dropped = diff["data_loss"].as_array().unwrap().iter().find(|l| l["kind"] == "dropped_column").unwrap();
    assert_eq!((&dropped["column"], &dropped["count"]), (&json!("legacy_code"), &json!(legacy_values)));
    assert!(diff["data_loss"].as_array().unwrap().iter().any(|l| l["kind"] == "deleted_rows" && l["count"] == deleted));

    assert_eq!(result(5)["passed"], false);
    assert!(result(5)["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("legacy_code")));
    assert_eq!(result(6)["passed"], true, "{}", result(6));

    // Tool errors, with the CLI's one-line messages.
    assert!(calls[7]["text"].as_str().unwrap().contains("no branch \"nope\" made by this server"), "{}", calls[7]);
    assert!(
        calls[8]["text"].as_str().unwrap().starts_with("--fail-on nonsense: expected one or more of"),
        "{}",
        calls[8]
    );

    // Two branches at once: the second sees only its own change.
    assert_ne!(result(0)["name"], result(9)["name"]);
    assert_eq!(result(11)["summary"]["updated"], 1);
    assert_eq!(result(11)["summary"]["deleted"], 0);
    let listed: Vec<&J> = result(13)["branches"].as_array().unwrap().iter().map(|b| &b["name"]).collect();
    assert_eq!(listed, [&result(9)["name"]]);

    // No masked value reached the agent.
    let transcript = out.to_string();
    for p in &phones {
        assert!(!transcript.contains(p.as_str()), "{p} is masked but was shown");
    }
    // The server removed its branches on exit, and the source is as it was.
    let left =
        strings("postgres", &format!("SELECT datname FROM pg_database WHERE starts_with(datname, '{db}_branch')"));
    assert!(left.is_empty(), "branches left: {left:?}");
    assert_eq!(checksum(db), before, "the source changed");
}

#[test]
fn a_failing_provider_command_is_a_clear_tool_error() {
    let pair = harness::branch("mcpprov", "CREATE TABLE t (id int PRIMARY KEY);", "");
    let state = state_dir();
    let plan = json!([{ "tool": "create_branch" }, step("list_branches", json!({}))]);
    let args = [
        "--source",
        &conn(&pair.parent),
        "--state-dir",
        state.path().to_str().unwrap(),
        "--branch-command",
        "echo 'no such project' >&2; exit 4",
    ];
    let out = drive(&plan, &args);
    assert_eq!(out["calls"][0]["error"], true);
    assert_eq!(out["calls"][0]["text"], "--branch-command exited 4: no such project");
    assert_eq!(out["calls"][1]["result"]["branches"], json!([]));
}
