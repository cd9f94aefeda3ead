//! `pgbranchdiff branch create|list|diff|reset|delete` through the binary, by
//! each method: a TEMPLATE copy on the test server, a snapshot restored into a
//! local cluster that outlives the command, and a provider's commands (here
//! psql playing the provider). Whether a branch exists is asked of the
//! servers with SQL (pg_database), never of the tool.

use std::path::Path;

use crate::harness::{self, cli, cluster, conn, connect, Run};

/// items: ids 1..=10, qty = id.
const SETUP: &str = "CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL);
    INSERT INTO items SELECT i, i FROM generate_series(1, 10) i;";

/// Deletes 3 rows (ids 1..=3), updates 2 (ids 9, 10): 0 inserted, 2 updated, 3 deleted.
const CHANGE: &str = "DELETE FROM items WHERE id <= 3; UPDATE items SET qty = 0 WHERE id >= 9;";

fn state() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("pgbd-branch-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

fn branch_cmd(state: &Path, args: &[&str]) -> Run {
    let mut all = vec!["branch"];
    all.extend_from_slice(args);
    // The registry's own directory is private (0700); snapshot clusters go beside it (TMPDIR),
    // where the server's user can reach them.
    let registry = state.join("registry");
    cli(&all, &[("PGBRANCHDIFF_STATE_DIR", registry.to_str().unwrap()), ("TMPDIR", state.to_str().unwrap())])
}

fn database_exists(name: &str) -> bool {
    connect("postgres").query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).unwrap().is_some()
}

/// (inserted, updated, deleted) of `items` in `branch diff NAME --format json`.
fn diff_counts(state: &Path, name: &str) -> (i32, (u64, u64, u64)) {
    let run = branch_cmd(state, &["diff", name, "--format", "json", "--quiet"]);
    assert!(run.code == 0 || run.code == 1, "branch diff: {}", run.stderr);
    (run.code, harness::counts(&run.json(), "public.items"))
}

/// The `key=value` connection of a printed URL `postgresql://user@/db?host=DIR&port=P` or `…@host:port/db`.
fn url_conn(url: &str) -> String {
    let rest = url.trim().strip_prefix("postgresql://").unwrap_or_else(|| panic!("not a URL: {url}"));
    let (user, rest) = rest.split_once('@').unwrap();
    let (hostport, rest) = rest.split_once('/').unwrap();
    let (db, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut parts = vec![format!("user={user}"), format!("dbname={db}")];
    if let Some((h, p)) = hostport.split_once(':') {
        parts.push(format!("host={h} port={p}"));
    }
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        parts.push(kv.to_string());
    }
    parts.join(" ")
}

#[test]
fn template_branches_are_made_listed_compared_reset_and_deleted() {
    let pair = harness::branch("brtpl", SETUP, "");
    // The source is closed to PUBLIC and open to one role: so is the branch (a TEMPLATE copy
    // alone would start with PUBLIC's default CONNECT).
    let acl = |db: &str| {
        let sql = format!(
            "SELECT has_database_privilege('public', oid, 'CONNECT')::text || ' ' || has_database_privilege('brtpl_reader', oid, 'CONNECT')::text
               FROM pg_database WHERE datname = '{db}'"
        );
        connect("postgres").query_one(&sql, &[]).unwrap().get::<_, String>(0)
    };
    harness::exec(
        &pair.parent,
        &format!(
            "DO $r$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'brtpl_reader') THEN CREATE ROLE brtpl_reader; END IF; END $r$;
             REVOKE CONNECT ON DATABASE {0} FROM PUBLIC; GRANT CONNECT ON DATABASE {0} TO brtpl_reader;",
            pair.parent
        ),
    );
    assert_eq!(acl(&pair.parent), "false true");
    let state = state();
    let name = format!("{}_work", pair.parent);
    let made = branch_cmd(state.path(), &["create", "--from", &conn(&pair.parent), "--name", &name]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(database_exists(&name));
    assert_eq!(acl(&name), "false true", "the branch's database privileges are the source's");
    assert!(made.stdout.trim().ends_with(&format!("/{name}?host={}&port={}", sock(), port())), "{}", made.stdout);

    let list = branch_cmd(state.path(), &["list", "--json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let items = list.json();
    assert_eq!(items[0]["name"], name.as_str());
    assert_eq!(items[0]["method"], "template");
    assert_eq!(items[0]["from"], format!("postgres@{}:{}/{}", sock(), port(), pair.parent));

    harness::exec(&name, CHANGE);
    assert_eq!(diff_counts(state.path(), &name), (1, (0, 2, 3)));
    let reset = branch_cmd(state.path(), &["reset", &name]);
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    let rows: i64 = connect(&name).query_one("SELECT sum(qty) FROM items", &[]).unwrap().get(0);
    assert_eq!(rows, 55, "the reset branch holds the source's rows again");
    assert_eq!(diff_counts(state.path(), &name), (0, (0, 0, 0)));
    assert_eq!(acl(&name), "false true", "a reset keeps the source's database privileges");

    let deleted = branch_cmd(state.path(), &["delete", &name]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(!database_exists(&name));
    assert_eq!(branch_cmd(state.path(), &["list", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn only_recorded_branches_are_deleted_and_bad_input_is_one_line() {
    let pair = harness::branch("brrefuse", SETUP, "");
    let state = state();
    // The harness's own copy of the parent was not made by the tool: refused, left in place.
    let refused = branch_cmd(state.path(), &["delete", &pair.child]);
    assert_eq!(refused.code, 2);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("no branch named \"{}\" was made by pgbranchdiff", pair.child)));
    assert!(database_exists(&pair.child));
    // An existing database's name is not taken over.
    let taken = branch_cmd(state.path(), &["create", "--from", &conn(&pair.parent), "--name", &pair.child]);
    assert_eq!(taken.code, 2, "{}", taken.stderr);
    assert!(taken.stderr.contains("already exists"), "{}", taken.stderr);
    assert!(database_exists(&pair.child));
    assert_eq!(branch_cmd(state.path(), &["list", "--json"]).json(), serde_json::json!([]));
    let bad = branch_cmd(state.path(), &["create", "--from", &conn(&pair.parent), "--name", "Bad-Name"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("a branch name is 1 to 63 of a-z"), "{}", bad.stderr);
    let pw = branch_cmd(state.path(), &["create", "--from", "postgresql://u:hunter2@127.0.0.1:1/x"]);
    assert_eq!(pw.code, 2);
    assert!(!pw.stderr.contains("hunter2"), "{}", pw.stderr);
}

#[test]
fn snapshot_branches_keep_their_cluster_until_deleted() {
    let pair = harness::branch("brsnap", SETUP, "");
    let state = state();
    // A live snapshot needs a pg_dump at least as new as the server (npm server packages ship none):
    // without one, the same fixture as a dump file.
    let dump = state.path().join("setup.sql");
    std::fs::write(&dump, SETUP).unwrap();
    let from = conn(&pair.parent);
    let how: Vec<&str> = match harness::pg_dump() {
        Some(_) => vec!["--from", &from, "--snapshot"],
        None => vec!["--dump", dump.to_str().unwrap()],
    };
    let made = branch_cmd(state.path(), &[&["create", "--name", "snap_one"][..], &how].concat());
    assert_eq!(made.code, 0, "{}", made.stderr);
    let url = made.stdout.trim();
    let branch = url_conn(url);
    let dir = url.split("host=").nth(1).unwrap().split('&').next().unwrap().to_string();
    assert!(Path::new(&dir).join("data/PG_VERSION").exists(), "{url}");
    // The branch lives on its own cluster: change it there, compare with the restored source.
    let mut client = postgres::Client::connect(&branch, postgres::NoTls).unwrap();
    client.batch_execute(CHANGE).unwrap();
    drop(client);
    assert_eq!(diff_counts(state.path(), "snap_one"), (1, (0, 2, 3)));
    let reset = branch_cmd(state.path(), &["reset", "snap_one"]);
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    assert_eq!(diff_counts(state.path(), "snap_one"), (0, (0, 0, 0)));
    let deleted = branch_cmd(state.path(), &["delete", "snap_one"]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(!Path::new(&dir).exists(), "the cluster's directory is removed");
}

#[test]
fn provider_commands_make_and_delete_branches() {
    let pair = harness::branch("brcmd", SETUP, "");
    let state = state();
    // The "provider" is pgbranchdiff itself, keeping its own registry: any tool that prints a URL would do.
    let bin = env!("CARGO_BIN_EXE_pgbranchdiff");
    let provider_state = state.path().join("provider");
    let (from, ps) = (conn(&pair.parent), provider_state.display());
    let create = format!(
        "url=$(\"{bin}\" branch create --state-dir {ps} --from '{from}' --name \"$PGBRANCHDIFF_BRANCH_NAME\" 2>/dev/null) && \
         printf '{{\"branch\": {{\"id\": \"br-%s\"}}, \"uri\": \"%s\"}}' \"$PGBRANCHDIFF_BRANCH_NAME\" \"$url\""
    );
    let delete = format!(
        "test \"$PGBRANCHDIFF_BRANCH_ID\" = \"br-$PGBRANCHDIFF_BRANCH_NAME\" && \
         \"{bin}\" branch delete --state-dir {ps} \"$PGBRANCHDIFF_BRANCH_NAME\""
    );
    let name = format!("{}_prov", pair.parent);
    let args = ["create", "--from", &from, "--name", &name, "--branch-command", &create, "--delete-command", &delete];
    let made = branch_cmd(state.path(), &args);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(database_exists(&name));
    harness::exec(&name, CHANGE);
    assert_eq!(diff_counts(state.path(), &name), (1, (0, 2, 3)));
    let deleted = branch_cmd(state.path(), &["delete", &name]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(!database_exists(&name));

    let failing = "echo 'quota exceeded for postgresql://u:s3cret@h/d' >&2; exit 3";
    let failed = branch_cmd(state.path(), &["create", "--from", &from, "--branch-command", failing]);
    assert_eq!(failed.code, 2);
    assert_eq!(
        failed.stderr.trim(),
        "pgbranchdiff: error: --branch-command exited 3: quota exceeded for postgresql://u:***@h/d"
    );
    let silent = branch_cmd(state.path(), &["create", "--from", &from, "--branch-command", "echo done"]);
    assert_eq!(silent.code, 2);
    assert!(silent.stderr.contains("--branch-command printed no connection URL (got: done)"), "{}", silent.stderr);
}

fn sock() -> String {
    param("host")
}

fn port() -> String {
    param("port")
}

fn param(key: &str) -> String {
    cluster()
        .base
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {}", cluster().base))
        .to_string()
}

/// SIGTERM at moments spread over a TEMPLATE `branch create` (measured first): each run either
/// made the branch (exit 0, recorded) or left nothing — no database of that name, no record.
#[test]
fn an_interrupted_create_leaves_a_branch_or_nothing() {
    use std::process::{Command, Stdio};
    let pair = harness::branch("brint", SETUP, "");
    let state = state();
    let registry = state.path().join("registry");
    let start = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_pgbranchdiff"))
            .args(["branch", "create", "--from", &conn(&pair.parent), "--name", name])
            .env("PGBRANCHDIFF_STATE_DIR", &registry)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let began = std::time::Instant::now();
    let whole = start("brint_measure").wait_with_output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let span = began.elapsed().as_millis() as u64 + 20;
    assert_eq!(branch_cmd(state.path(), &["delete", "brint_measure"]).code, 0);
    let (mut made, mut stopped) = (0, 0);
    for i in 0..12u64 {
        let name = format!("brint_{i}");
        let child = start(&name);
        std::thread::sleep(std::time::Duration::from_millis(span * i / 11));
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        let recorded = branch_cmd(state.path(), &["list"]).stdout.lines().any(|l| l.starts_with(&format!("{name}\t")));
        match out.status.code() {
            Some(0) => {
                made += 1;
                assert!(database_exists(&name) && recorded, "{name}: made but not whole");
                assert_eq!(branch_cmd(state.path(), &["delete", &name]).code, 0);
            }
            code => {
                stopped += 1;
                assert!(!database_exists(&name), "{name}: interrupted ({code:?}) but its database is left");
                assert!(!recorded, "{name}: interrupted ({code:?}) but still recorded");
            }
        }
    }
    assert!(stopped > 0, "no run was interrupted (made {made})");
}
