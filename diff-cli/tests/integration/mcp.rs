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

use crate::harness::{self, conn, connect, exec};

/// A branch's role must not reach the source: an operator who hands branches to agents revokes
/// PUBLIC's CONNECT on it (and on PostgreSQL 13 and 14 PUBLIC's CREATE in `public`, as 15 does).
const CLOSED: &str = "REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    DO $c$ BEGIN EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database()); END $c$;";

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
    let pair = harness::branch("mcp", &format!("{CLOSED}{SETUP}"), "");
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
    // Handing the branch to its own role is not a change of the branch.
    assert_eq!(result(11)["schema_changes"], json!([]), "{}", result(11));
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

/// Objects of every kind an owner can hold, owned by a role that is not a superuser, with grants
/// to another role (on the table, a column and the schema) and a large object.
const OWNED: &str = "
    DO $$ BEGIN CREATE ROLE mcp_app_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    DO $$ BEGIN CREATE ROLE mcp_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    CREATE SCHEMA app AUTHORIZATION mcp_app_owner;
    SET ROLE mcp_app_owner;
    CREATE TYPE app.mood AS ENUM ('sad', 'ok');
    CREATE DOMAIN app.pos AS int CHECK (VALUE > 0);
    CREATE TYPE app.pair AS (a int, b text);
    CREATE TYPE app.span AS RANGE (subtype = float8);
    CREATE TABLE app.t (id serial PRIMARY KEY, n app.pos, m app.mood, g int GENERATED ALWAYS AS IDENTITY, note text);
    INSERT INTO app.t (n, m, note) SELECT i, 'ok', 'row ' || i FROM generate_series(1, 20) i;
    CREATE TABLE app.pairs (id int PRIMARY KEY, v app.pair);
    INSERT INTO app.pairs VALUES (1, ROW(1, 'a'));
    CREATE TABLE app.p (id int, k int) PARTITION BY RANGE (id);
    CREATE TABLE app.p1 PARTITION OF app.p FOR VALUES FROM (0) TO (100);
    CREATE SEQUENCE app.s;
    CREATE VIEW app.v AS SELECT id, note FROM app.t;
    CREATE MATERIALIZED VIEW app.mv AS SELECT count(*) AS c FROM app.t;
    CREATE FUNCTION app.f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
    CREATE PROCEDURE app.pr() LANGUAGE sql AS 'SELECT 1';
    CREATE AGGREGATE app.total(int) (sfunc = int4pl, stype = int);
    CREATE FUNCTION app.eq(app.pair, app.pair) RETURNS bool LANGUAGE sql AS 'SELECT $1.a = $2.a';
    CREATE OPERATOR app.=== (leftarg = app.pair, rightarg = app.pair, function = app.eq);
    CREATE COLLATION app.c2 FROM \"C\";
    CREATE TEXT SEARCH CONFIGURATION app.ts (COPY = pg_catalog.simple);
    CREATE STATISTICS app.st ON n, id FROM app.t;
    SELECT lo_from_bytea(0, 'hello');
    GRANT USAGE ON SCHEMA app TO mcp_reader;
    GRANT SELECT ON app.t TO mcp_reader;
    GRANT UPDATE (note) ON app.t TO mcp_reader;
    RESET ROLE;";

/// A cast from the composite to text that, when it runs
/// as a superuser, creates file SPY (from the server's process).
const PLANT: &str = "UPDATE app.pairs SET v = ROW(2, 'b');
    CREATE FUNCTION app.spy(app.pair) RETURNS text LANGUAGE plpgsql AS $f$
    BEGIN
      IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch SPY; cat >/dev/null''';
      END IF;
      RETURN ($1).b;
    END $f$;
    CREATE CAST (app.pair AS text) WITH FUNCTION app.spy(app.pair);";

/// Objects of database `db` whose owner is `role` (`=`) or not (`<>`), as PostgreSQL records
/// ownership for every kind of object: pg_shdepend.
fn owned(db: &str, op: &str, role: &str) -> i64 {
    count(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_shdepend WHERE deptype = 'o' AND refobjid {op} (SELECT oid FROM pg_roles WHERE rolname = '{role}')
               AND dbid = (SELECT oid FROM pg_database WHERE datname = '{db}')"
        ),
    )
}

/// Why the agent's role cannot connect to database `db` ("" if it can).
fn connect_error(url: &str, db: &str) -> String {
    let mut config: postgres::Config = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
    config.dbname(db);
    refusal(&config)
}

/// Why a connection with `config` is refused ("" if it is not): the server's message.
fn refusal(config: &postgres::Config) -> String {
    match config.connect(postgres::NoTls) {
        Ok(_) => String::new(),
        Err(e) => e.as_db_error().map(|d| d.message().to_string()).unwrap_or(e.to_string()),
    }
}

/// What a connection as the agent's role may do: the error, or None if it succeeded.
fn as_agent(url: &str, db: Option<&str>, sql: &str) -> Option<String> {
    let mut config: postgres::Config = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
    if let Some(db) = db {
        config.dbname(db);
    }
    let mut client = config.connect(postgres::NoTls).unwrap_or_else(|e| panic!("connect as the agent: {e}"));
    client.batch_execute(sql).err().map(|e| e.as_db_error().map(|d| d.message().to_string()).unwrap_or(e.to_string()))
}

#[test]
fn an_agents_branch_role_reaches_its_branch_and_nothing_else() {
    let pair = harness::branch("mcprole", &format!("{CLOSED}{OWNED}"), "");
    let db = pair.parent.as_str();
    let rows_before = strings(db, "SELECT string_agg(t::text, ';' ORDER BY id) FROM app.t");
    let spy = std::env::temp_dir().join(format!("pgbd_spy_{}", std::process::id()));
    let _ = std::fs::remove_file(&spy);
    let owned_in_source = owned(db, "=", "mcp_app_owner");
    assert!(owned_in_source >= 16, "the fixture's objects are recorded as owned: {owned_in_source}");

    let plan = json!([
        { "tool": "create_branch", "as": "b" },
        step("diff", json!({ "branch": "$b" })),
        step("run_sql", json!({ "branch": "$b", "sql": "ALTER TABLE app.t ADD COLUMN z int;
            ALTER TYPE app.mood ADD VALUE 'great'; UPDATE app.t SET note = 'changed' WHERE id = 1;
            SELECT app.f(1); CALL app.pr(); REFRESH MATERIALIZED VIEW app.mv;" })),
        step("run_sql", json!({ "branch": "$b", "sql": format!("DROP DATABASE {db}") })),
        step("run_sql", json!({ "branch": "$b", "sql": "ALTER SYSTEM SET work_mem = '1MB'" })),
        step("run_sql", json!({ "branch": "$b", "sql": "COPY (SELECT 1) TO '/tmp/pgbd_agent_escape'" })),
        step("diff", json!({ "branch": "$b" })),
        // A cast the diff's `::text` of a composite would call: as a superuser, it runs a program.
        step("run_sql", json!({ "branch": "$b", "sql": PLANT.replace("SPY", &spy.to_string_lossy()) })),
        step("diff", json!({ "branch": "$b" })),
        // The server's budget holds whatever the session sets.
        step("run_sql", json!({ "branch": "$b", "sql": "SET statement_timeout = 0; SELECT pg_sleep(120)" })),
    ]);
    let state = state_dir();
    let state_arg = state.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let out = drive(&plan, &["--source", &conn(db), "--state-dir", state_arg, "--keep", "--max-duration", "3s"]);
    assert!(started.elapsed().as_secs() < 100, "the budget did not stop pg_sleep(120)");
    let calls = out["calls"].as_array().unwrap();
    let result = |i: usize| &calls[i]["result"];
    assert!(calls.iter().all(|c| c["error"] == false), "{calls:?}");
    let name = result(0)["name"].as_str().unwrap().to_string();
    let url = result(0)["url"].as_str().unwrap().to_string();

    // The branch as made: nothing changed, the hand-over included.
    assert_eq!(result(1)["schema_changes"], json!([]), "{}", result(1));
    assert_eq!(result(1)["summary"]["updated"], 0);
    // The agent's role owns every object of its branch: PostgreSQL's own record of ownership.
    let others = strings(
        &name,
        &format!(
            "SELECT pg_describe_object(classid, objid, objsubid) || ' of ' || pg_get_userbyid(refobjid) FROM pg_shdepend
              WHERE deptype = 'o' AND refobjid <> '{name}'::regrole
                AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
    );
    assert_eq!(others, Vec::<String>::new(), "objects of the branch not owned by its role");
    assert!(owned(&name, "=", &name) >= owned_in_source, "the role owns at least what mcp_app_owner did");
    // It changes its branch freely, and reaches nothing outside it.
    assert_eq!(result(2)["applied"], true, "{}", result(2)["text"]);
    for i in [3, 4, 5] {
        assert_eq!(result(i)["applied"], false, "{}", result(i)["text"]);
        let text = result(i)["text"].as_str().unwrap();
        assert!(text.contains("must be") || text.contains("permission denied"), "{text}");
    }
    assert!(!Path::new("/tmp/pgbd_agent_escape").exists());
    let changes = result(6)["schema_changes"].to_string();
    assert!(changes.contains("app.t.z") && changes.contains("app.mood"), "{changes}");
    assert!(!changes.contains("owner"), "{changes}");
    assert_eq!(result(6)["summary"]["updated"], 1, "{}", result(6));

    // The planted cast is live (a superuser's `::text` runs it), yet no diff calls it: the MCP
    // diff reads as the agent's role, and any diff prints the database's own types by their
    // output function, not by a cast.
    assert_eq!(result(7)["applied"], true, "{}", result(7)["text"]);
    assert!(calls[8]["error"] == false && result(8)["summary"]["updated"] == 2, "{}", calls[8]);
    assert!(!spy.exists(), "the agent's cast ran as the operator during the MCP diff");
    let plain = harness::cli(&[&conn(db), &conn(&name), "--format", "json"], &[]);
    assert_eq!(plain.json()["summary"]["updated"], 2, "{}", plain.stderr);
    assert!(!spy.exists(), "the agent's cast ran during a superuser's diff");
    for strategy in ["stream", "hash"] {
        let run = harness::cli(&[&conn(db), &conn(&name), "--format", "json", "--strategy", strategy], &[]);
        assert_eq!(run.json()["summary"]["updated"], 2, "{strategy}: {}", run.stderr);
        assert!(!spy.exists(), "the agent's cast ran during a superuser's diff ({strategy})");
    }
    exec(&name, "SELECT v::text FROM app.pairs");
    assert!(spy.exists(), "the premise: the planted cast runs a program as a superuser");
    let _ = std::fs::remove_file(&spy);
    assert_eq!(result(9)["applied"], false, "{}", result(9));
    assert!(result(9)["text"].as_str().unwrap().contains("budget of 3"), "{}", result(9)["text"]);

    // With the URL the agent was given: its own role, no superuser, no way into the source.
    assert!(url.contains(&format!("//{name}:")), "{url}");
    let me = strings(&name, &format!("SELECT rolsuper::text FROM pg_roles WHERE rolname = '{name}'"));
    assert_eq!(me, ["false"]);
    assert_eq!(as_agent(&url, None, "CREATE TABLE app.mine (a int); DROP TABLE app.t CASCADE"), None);
    let e = connect_error(&url, db);
    assert!(e.contains("permission denied for database"), "the agent's role connected to the source: {e}");
    // The branch database stays the operator's: the role cannot make it a template (undroppable)
    // or set its parameters, and PUBLIC (another branch's role) cannot connect to it.
    for sql in [format!("ALTER DATABASE {name} IS_TEMPLATE true"), format!("ALTER DATABASE {name} SET search_path = x")]
    {
        let e = as_agent(&url, None, &sql);
        assert!(e.as_deref().is_some_and(|m| m.contains("must be owner")), "{sql}: {e:?}");
    }
    let public = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}' AND has_database_privilege('public', oid, 'CONNECT')");
    assert_eq!(count("postgres", &public), 0);
    // What it makes elsewhere on the server (a large object in `postgres`) goes with it.
    let objects_in_postgres = count("postgres", "SELECT count(*) FROM pg_largeobject_metadata");
    assert_eq!(as_agent(&url, Some("postgres"), "SELECT lo_create(0)"), None);
    let left = format!("SELECT count(*) FROM pg_largeobject_metadata WHERE lomowner::regrole::text = '{name}'");
    assert_eq!(count("postgres", &left), 1);

    // Defaults the agent sets on its own role would apply to the diff's sessions (it reads as the
    // role): `branch diff` clears them first, and says what it said before they were set.
    let branch_diff = || harness::cli(&["branch", "diff", &name, "--state-dir", state_arg, "--format", "json"], &[]);
    let before = branch_diff();
    assert_eq!(before.code, 1, "{}", before.stderr);
    let settings = format!(
        "ALTER ROLE CURRENT_USER SET quote_all_identifiers = on;
         ALTER ROLE CURRENT_USER IN DATABASE {name} SET idle_in_transaction_session_timeout = '5ms';
         ALTER ROLE CURRENT_USER PASSWORD 'mine'"
    );
    assert_eq!(as_agent(&url, None, &settings), None);
    let after = branch_diff();
    assert_eq!(after.code, 1, "{}", after.stderr);
    assert_eq!(after.json()["summary"], before.json()["summary"], "{}", after.stdout);
    assert_eq!(as_agent(&url, None, "SELECT 1"), None, "the recorded password is the role's again");
    // Prepared transactions outlive the role's sessions: one holding a lock in the branch, one in
    // `postgres`. Deleting rolls them back (servers that allow them).
    let prepared = "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'agent_px%'";
    if strings("postgres", "SHOW max_prepared_transactions") != ["0"] {
        let px = "BEGIN; LOCK TABLE app.mine; PREPARE TRANSACTION 'agent_px1'";
        assert_eq!(as_agent(&url, None, px), None);
        let px = "BEGIN; SELECT lo_create(0); PREPARE TRANSACTION 'agent_px2'";
        assert_eq!(as_agent(&url, Some("postgres"), px), None);
        assert_eq!(count("postgres", prepared), 2);
    }

    // Deleting the kept branch from the CLI removes its role too.
    let run = harness::cli(&["branch", "delete", &name, "--state-dir", state_arg], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count("postgres", &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'")), 0);
    assert_eq!(count("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")), 0);
    assert_eq!(count("postgres", "SELECT count(*) FROM pg_largeobject_metadata"), objects_in_postgres);
    assert_eq!(count("postgres", prepared), 0);
    assert_eq!(strings(db, "SELECT string_agg(t::text, ';' ORDER BY id) FROM app.t"), rows_before);
    assert_eq!(owned(db, "=", "mcp_app_owner"), owned_in_source, "the source's owners");
}

#[test]
fn a_source_the_branch_role_could_write_is_refused() {
    let pair =
        harness::branch("mcpopen", "GRANT CREATE ON SCHEMA public TO PUBLIC; CREATE TABLE t (id int PRIMARY KEY);", "");
    let db = pair.parent.as_str();
    let state = state_dir();
    let state_arg = state.path().to_str().unwrap();
    let plan = json!([{ "tool": "create_branch" }, step("list_branches", json!({}))]);
    let out = drive(&plan, &["--source", &conn(db), "--state-dir", state_arg]);
    assert_eq!(out["calls"][0]["error"], true);
    let text = out["calls"][0]["text"].as_str().unwrap();
    assert!(text.contains("could connect to the source database") && text.contains("REVOKE CONNECT"), "{text}");
    assert_eq!(out["calls"][1]["result"]["branches"], json!([]));
    let like = format!("{db}_branch%");
    assert_eq!(count("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{like}'")), 0);
    assert_eq!(count("postgres", &format!("SELECT count(*) FROM pg_roles WHERE rolname LIKE '{like}'")), 0);

    // --shared-role: the operator's choice to hand over its own role.
    let out = drive(
        &json!([{ "tool": "create_branch" }]),
        &["--source", &conn(db), "--state-dir", state_arg, "--shared-role"],
    );
    let url = out["calls"][0]["result"]["url"].as_str().unwrap_or_else(|| panic!("{out}"));
    let user = strings("postgres", "SELECT current_user::text").remove(0);
    assert!(url.contains(&format!("//{user}@")), "{url}");
}

#[test]
fn a_snapshot_branch_gets_its_own_role_and_cannot_reach_the_restored_copy() {
    let pair = harness::branch("mcpsnap", &format!("{CLOSED}{OWNED}"), "");
    let db = pair.parent.as_str();
    let state = state_dir();
    let state_arg = state.path().to_str().unwrap();
    let plan = json!([
        { "tool": "create_branch", "as": "b" },
        step("diff", json!({ "branch": "$b" })),
        step("run_sql", json!({ "branch": "$b", "sql": "ALTER TABLE app.t DROP COLUMN note CASCADE" })),
        step("run_sql", json!({ "branch": "$b", "sql": "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pgbd_agent_program'" })),
        step("diff", json!({ "branch": "$b" })),
    ]);
    // A live snapshot needs a pg_dump at least as new as the server (npm server packages ship
    // none): without one, the same fixture as a dump file.
    let dump = state.path().join("setup.sql");
    std::fs::write(&dump, format!("{CLOSED}{OWNED}")).unwrap();
    let source = conn(db);
    let how: Vec<&str> = match harness::pg_dump() {
        Some(_) => vec!["--source", &source, "--snapshot"],
        None => vec!["--dump", dump.to_str().unwrap()],
    };
    let out = drive(&plan, &[&how[..], &["--state-dir", state_arg, "--keep"]].concat());
    let calls = out["calls"].as_array().unwrap();
    let result = |i: usize| &calls[i]["result"];
    assert!(calls.iter().all(|c| c["error"] == false), "{calls:?}");
    let (name, url) = (result(0)["name"].as_str().unwrap(), result(0)["url"].as_str().unwrap());
    assert!(url.contains(&format!("//{name}:")), "{url}");
    assert_eq!(result(1)["schema_changes"], json!([]), "{}", result(1));
    assert_eq!(result(2)["applied"], true, "{}", result(2)["text"]);
    assert_eq!(result(3)["applied"], false, "{}", result(3)["text"]);
    assert!(!Path::new("/tmp/pgbd_agent_program").exists());
    let dropped = result(4)["data_loss"].as_array().unwrap().iter().find(|l| l["kind"] == "dropped_column").cloned();
    assert_eq!(dropped.map(|d| d["count"].clone()), Some(json!(20)), "{}", result(4));
    // The restored copy (the diff's parent) is closed to the agent's role.
    let listed = harness::cli(&["branch", "list", "--json", "--state-dir", state_arg], &[]).json();
    let parent_db = listed[0]["from"].as_str().map(|_| ()).and(
        std::fs::read_to_string(state.path().join("branches.json")).ok().and_then(|t| {
            let j: J = serde_json::from_str(&t).ok()?;
            j.as_array().or(j["branches"].as_array())?.first()?["made"]["restored"].as_str().map(String::from)
        }),
    );
    let parent_db = parent_db.unwrap_or_else(|| panic!("no restored copy recorded: {listed}"));
    let e = connect_error(url, &parent_db);
    assert!(e.contains("permission denied"), "the agent's role connected to the restored copy: {e}");
    // The cluster's superuser, which the agent's OS user could reach on the socket, needs a password.
    let mut superuser: postgres::Config = url.parse().unwrap();
    superuser.user("postgres").password("").dbname(&parent_db);
    let e = refusal(&superuser);
    assert!(e.contains("password"), "the snapshot's cluster let its superuser in without a password: {e}");
    let run = harness::cli(&["branch", "delete", name, "--state-dir", state_arg], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_line_that_is_not_json_gets_a_parse_error_and_the_server_goes_on() {
    use std::io::{BufRead, Write};
    let pair = harness::branch("mcpraw", "CREATE TABLE t (id int PRIMARY KEY);", "");
    let state = state_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgbranchdiff"))
        .args(["mcp", "--source", &conn(&pair.parent), "--state-dir", state.path().to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        "{init}\nthis is not json\n{{\"foo\": 1}}\n{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}}"
    )
    .unwrap();
    // A tool without arguments refuses any given, and takes none given at all.
    let call = |id: i64, args: Option<J>| {
        let mut params = json!({"name": "list_branches"});
        if let Some(a) = args {
            params["arguments"] = a;
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
    };
    writeln!(stdin, "{}\n{}", call(3, Some(json!({"name": "mine"}))), call(4, None)).unwrap();
    // Bytes that are not UTF-8, then a request over the SDK's 16 MiB limit: errors, and the
    // server goes on to answer request 6.
    stdin.write_all(b"{\"x\": \"\xff\xfe\"}\n").unwrap();
    let mut big = call(5, Some(json!({})));
    big["params"]["padding"] = J::String("x".repeat(17 << 20));
    writeln!(stdin, "{big}\n{}", call(6, None)).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<J> = out.stdout.lines().map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    let error =
        |code: i64| answers.iter().find(|a| a["error"]["code"] == code).unwrap_or_else(|| panic!("{answers:?}"));
    let parse_errors = answers.iter().filter(|a| a["error"]["code"] == -32700 && a["id"] == J::Null).count();
    assert_eq!(parse_errors, 2, "not JSON, and not UTF-8: {answers:?}");
    assert_eq!(error(-32600)["id"], J::Null);
    let too_big = answers.iter().find(|a| a["id"] == 5).unwrap_or_else(|| panic!("no answer to the 17 MiB request"));
    assert_eq!(too_big["error"]["code"], -32600, "{too_big}");
    assert!(too_big["error"]["message"].as_str().unwrap().contains("16 MiB"), "{too_big}");
    let listed = answers.iter().find(|a| a["id"] == 2).unwrap();
    assert!(listed["result"]["tools"].as_array().is_some_and(|t| t.len() == 7), "{listed}");
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("{answers:?}"));
    assert_eq!(by_id(3)["result"]["isError"], true, "{}", by_id(3));
    assert!(by_id(3)["result"]["content"][0]["text"].as_str().unwrap().contains("unknown field `name`"));
    assert_eq!(by_id(4)["result"]["structuredContent"], json!({"branches": []}));
    assert_eq!(by_id(6)["result"]["structuredContent"], json!({"branches": []}));

    // Report options that shape a file or a terminal are refused, not ignored.
    for opt in [&["--format", "json"][..], &["--output", "/tmp/x.json"], &["--fail-on", "any"]] {
        let run = harness::cli(&[&["mcp", "--source", &conn(&pair.parent)][..], opt].concat(), &[]);
        assert_eq!(run.code, 2, "{opt:?}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("{}: not an option of `pgbranchdiff mcp`", opt[0])), "{}", run.stderr);
    }
}

/// The operator need not be a superuser: a role with CREATEDB and CREATEROLE that owns the source
/// makes and confines branches, and deleting one rolls back what the agent prepared (which only a
/// superuser or the preparing role may do).
#[test]
fn a_non_superuser_operator_cleans_up_what_the_agent_prepared() {
    let pair = harness::branch("mcpop", "SELECT 1", "");
    let db = pair.parent.as_str();
    let op = format!("{db}_op");
    exec(
        db,
        &format!(
            "CREATE ROLE {op} LOGIN CREATEDB CREATEROLE; ALTER DATABASE {db} OWNER TO {op};
             ALTER SCHEMA public OWNER TO {op}; REVOKE CREATE ON SCHEMA public FROM PUBLIC;
             REVOKE CONNECT ON DATABASE {db} FROM PUBLIC;
             SET ROLE {op}; CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 5);"
        ),
    );
    let state = state_dir();
    let state_arg = state.path().to_str().unwrap();
    let source = format!("{} user={op}", conn(db));
    let out = drive(&json!([{ "tool": "create_branch" }]), &["--source", &source, "--state-dir", state_arg, "--keep"]);
    let made = &out["calls"][0];
    assert_eq!(made["error"], false, "{made}");
    let (name, url) = (made["result"]["name"].as_str().unwrap(), made["result"]["url"].as_str().unwrap());
    let prepared = "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'op_px'";
    if strings("postgres", "SHOW max_prepared_transactions") != ["0"] {
        assert_eq!(as_agent(url, None, "BEGIN; LOCK TABLE t; PREPARE TRANSACTION 'op_px'"), None);
        assert_eq!(count("postgres", prepared), 1);
    }
    let run = harness::cli(&["branch", "delete", name, "--state-dir", state_arg], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count("postgres", prepared), 0);
    assert_eq!(count("postgres", &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'")), 0);
    assert_eq!(count("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")), 0);
}
