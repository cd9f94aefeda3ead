//! A real PostgreSQL cluster for the tests: initdb + pg_ctl from the system's
//! binaries (or `PGBRANCHDIFF_PG_BIN`) in a temporary directory, a unix socket
//! and a TLS-enabled loopback port; run as the `postgres` user when we are
//! root. `PGBRANCHDIFF_TEST_SERVER="host=… port=… user=…"` points the tests at
//! an existing server instead (a superuser; TLS tests then need it to offer TLS).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub struct Cluster {
    /// `host=… port=… user=…` without dbname.
    pub base: String,
    /// Loopback TCP port with TLS, when the harness started the server.
    pub tls: Option<Tls>,
    pub version_num: i32,
    stop: Option<(PathBuf, PathBuf)>,
}

pub struct Tls {
    pub port: u16,
    pub root_cert: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static SECOND: OnceLock<Cluster> = OnceLock::new();

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let c = match std::env::var("PGBRANCHDIFF_TEST_SERVER") {
            Ok(base) if !base.is_empty() => Cluster { base, tls: None, version_num: 0, stop: None },
            _ => start(),
        };
        with_version(c)
    })
}

/// A second, unrelated cluster (another system identifier), for what a
/// logical restore elsewhere looks like. `PGBRANCHDIFF_TEST_SERVER2` names an
/// existing one instead.
pub fn second_cluster() -> &'static Cluster {
    SECOND.get_or_init(|| {
        let c = match std::env::var("PGBRANCHDIFF_TEST_SERVER2") {
            Ok(base) if !base.is_empty() => Cluster { base, tls: None, version_num: 0, stop: None },
            _ => start(),
        };
        with_version(c)
    })
}

fn with_version(c: Cluster) -> Cluster {
    Cluster { version_num: version_num(&c.base), ..c }
}

/// `server_version_num` of the server at `base`.
fn version_num(base: &str) -> i32 {
    let mut client = postgres::Client::connect(&format!("{base} dbname=postgres"), postgres::NoTls)
        .unwrap_or_else(|e| panic!("test server not reachable ({base}): {e}"));
    let v: String = client.query_one("SHOW server_version_num", &[]).unwrap().get(0);
    v.parse().unwrap()
}

pub fn bindir() -> PathBuf {
    if let Ok(d) = std::env::var("PGBRANCHDIFF_PG_BIN") {
        return PathBuf::from(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if d.join("initdb").exists() {
            return d;
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop().expect("no PostgreSQL server binaries: install postgresql or set PGBRANCHDIFF_PG_BIN")
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Runs a server binary, as `postgres` when we are root; the error is its output.
pub fn try_pg(bin: &Path, args: &[&str]) -> Result<Output, String> {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd.args(args).output().map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        return Ok(out);
    }
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Err(format!("{} {:?}: {o}{e}", bin.display(), args))
}

/// Runs a server binary, as `postgres` when we are root.
fn run_pg(bin: &Path, args: &[&str]) -> Output {
    try_pg(bin, args).unwrap_or_else(|e| panic!("{e}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

extern "C" fn stop_at_exit() {
    for cell in [&CLUSTER, &SECOND] {
        stop(cell.get());
    }
}

fn stop(c: Option<&Cluster>) {
    if let Some(Cluster { stop: Some((bin, dir)), .. }) = c {
        let _ = Command::new(if is_root() { "runuser" } else { "sh" })
            .args(if is_root() { vec!["-u", "postgres", "--"] } else { vec!["-c", "exec \"$0\" \"$@\""] })
            .arg(bin.join("pg_ctl"))
            .args(["-D", dir.join("data").to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn start() -> Cluster {
    let bin = bindir();
    // /tmp, not the build directory: the postgres user must reach it, and socket paths are short.
    let dir = tempfile::Builder::new().prefix("pgbd-test-").tempdir_in("/tmp").unwrap().keep();
    let chown = |p: &Path| {
        if is_root() {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(p).status().unwrap();
        }
    };
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    chown(&dir);
    let data = dir.join("data");
    run_pg(
        &bin.join("initdb"),
        &["-D", data.to_str().unwrap(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
    );
    let tls = make_cert(&dir);
    chown(&dir);
    let port = free_port();
    let sock = dir.to_str().unwrap();
    let opts = |tls: bool| {
        format!(
            "-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off -c max_prepared_transactions=20 -c max_connections=200 -c shared_buffers=256MB {}",
            if tls {
                format!("-c ssl=on -c ssl_cert_file={sock}/server.crt -c ssl_key_file={sock}/server.key")
            } else {
                String::new()
            }
        )
    };
    let log = dir.join("log");
    let start = |tls: bool| {
        let o = opts(tls);
        let args = ["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-o", o.as_str(), "start"];
        try_pg(&bin.join("pg_ctl"), &args)
    };
    // A server built without SSL refuses ssl=on: then it runs without TLS (the TLS test says it skips).
    let tls = tls && start(true).is_ok();
    if !tls {
        start(false).unwrap_or_else(|e| panic!("cannot start the test server: {e}"));
    }
    let cluster = Cluster {
        base: format!("host={sock} port={port} user=postgres"),
        tls: tls.then(|| Tls { port, root_cert: dir.join("server.crt") }),
        version_num: 0,
        stop: Some((bin, dir)),
    };
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| unsafe {
        libc::atexit(stop_at_exit);
    });
    cluster
}

/// A self-signed certificate for `localhost`, when the openssl command exists.
fn make_cert(dir: &Path) -> bool {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(dir.join("server.crt"))
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        std::fs::set_permissions(dir.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.join("server.crt"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    ok
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A parent database and a TEMPLATE branch of it.
pub struct Pair {
    pub parent: String,
    pub child: String,
}

pub fn conn(db: &str) -> String {
    format!("{} dbname={db}", cluster().base)
}

pub fn connect(db: &str) -> postgres::Client {
    postgres::Client::connect(&conn(db), postgres::NoTls).unwrap_or_else(|e| panic!("connect {db}: {e}"))
}

pub fn exec(db: &str, sql: &str) {
    connect(db).batch_execute(sql).unwrap_or_else(|e| {
        let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
        panic!("on {db}: {msg}\n{sql}")
    });
}

fn fresh_name(tag: &str) -> String {
    let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("t_{}_{}_{}", tag.to_lowercase(), std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst))
}

/// Builds a parent from `setup`, branches it with `CREATE DATABASE … TEMPLATE`,
/// then applies `change` to the branch.
pub fn branch(tag: &str, setup: &str, change: &str) -> Pair {
    let parent = fresh_name(tag);
    let child = format!("{parent}_b");
    exec("postgres", &format!("CREATE DATABASE {parent}"));
    if !setup.is_empty() {
        exec(&parent, setup);
    }
    // The template must have no other connections: the client above is gone.
    exec("postgres", &format!("CREATE DATABASE {child} TEMPLATE {parent}"));
    if !change.is_empty() {
        exec(&child, change);
    }
    Pair { parent, child }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

pub fn cli(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgbranchdiff"));
    cmd.args(args).env("NO_COLOR", "1");
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "PGPASSFILE"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `pgbranchdiff --format json PARENT CHILD extra…`, expecting exit 0 or 1.
/// Runs the default strategy, `--strategy stream` and `--strategy hash`, and
/// requires the same answer from all (they read rows in different ways).
pub fn diff_json(pair: &Pair, extra: &[&str]) -> (i32, serde_json::Value) {
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run_with = |more: &[&str]| {
        let mut args = vec!["--format", "json", "--quiet", p.as_str(), c.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(more);
        let run = cli(&args, &[]);
        assert!(run.code == 0 || run.code == 1, "exit {} ({more:?}): {}", run.code, run.stderr);
        (run.code, run.json())
    };
    let (code, doc) = run_with(&[]);
    if extra.contains(&"--strategy") {
        return (code, doc);
    }
    for strategy in ["stream", "hash"] {
        let (scode, sdoc) = run_with(&["--strategy", strategy]);
        let (a, b) = (without_stats(&doc), without_stats(&sdoc));
        for (x, y) in a["tables"].as_array().unwrap().iter().zip(b["tables"].as_array().unwrap()) {
            assert_eq!(x, y, "the default and the {strategy} strategy disagree on {}", x["name"]);
        }
        assert_eq!(a, b, "the default and the {strategy} strategy disagree");
        assert_eq!(code, scode, "exit code differs between the default and {strategy}");
    }
    (code, doc)
}

fn without_stats(doc: &serde_json::Value) -> serde_json::Value {
    let mut d = doc.clone();
    d.as_object_mut().unwrap().remove("stats");
    for t in d["tables"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("stats");
    }
    d
}

/// The JSON table entry `schema.name`.
pub fn table<'a>(doc: &'a serde_json::Value, qualified: &str) -> &'a serde_json::Value {
    doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| format!("{}.{}", t["schema"].as_str().unwrap(), t["name"].as_str().unwrap()) == qualified)
        .unwrap_or_else(|| panic!("no table {qualified} in {doc:#}"))
}

/// (inserted, updated, deleted) of a table.
pub fn counts(doc: &serde_json::Value, qualified: &str) -> (u64, u64, u64) {
    let c = &table(doc, qualified)["counts"];
    (c["inserted"].as_u64().unwrap(), c["updated"].as_u64().unwrap(), c["deleted"].as_u64().unwrap())
}

/// The test cluster's server log, when the harness started the server itself.
pub fn server_log() -> Option<String> {
    let (_, dir) = cluster().stop.as_ref()?;
    std::fs::read_to_string(dir.join("log")).ok()
}

/// A `pg_dump` at least as new as the test server (pg_dump refuses newer servers): from
/// `PGBRANCHDIFF_PG_DUMP`, the server's bin directory, `pg_config`, or `/usr/lib/postgresql/*/bin`.
/// The npm server packages ship no pg_dump: a suite on such a server without a newer system
/// pg_dump gets None.
pub fn pg_dump() -> Option<&'static Path> {
    static PG_DUMP: OnceLock<Option<PathBuf>> = OnceLock::new();
    PG_DUMP
        .get_or_init(|| {
            let want = cluster().version_num / 10000;
            let mut candidates: Vec<PathBuf> =
                std::env::var("PGBRANCHDIFF_PG_DUMP").map(PathBuf::from).into_iter().collect();
            candidates.push(bindir().join("pg_dump"));
            if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
                candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("pg_dump"));
            }
            if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
                candidates.extend(rd.flatten().map(|e| e.path().join("bin").join("pg_dump")));
            }
            candidates.into_iter().filter(|p| p.exists()).find(|p| {
                let out = Command::new(p).arg("--version").output().ok();
                let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
                // "pg_dump (PostgreSQL) 15.18 (Debian …)"
                let major = text
                    .split(") ")
                    .nth(1)
                    .and_then(|v| v.split('.').next())
                    .and_then(|v| v.trim().parse::<i32>().ok());
                major.is_some_and(|m| m >= want)
            })
        })
        .as_deref()
}

/// `pg_dump --schema-only extra… conninfo`, without the `\restrict` lines (a random key per
/// run); None when there is no suitable pg_dump ([`pg_dump`]).
pub fn schema_dump(conninfo: &str, extra: &[&str]) -> Option<String> {
    let bin = pg_dump()?;
    let out = Command::new(bin).arg("--schema-only").args(extra).arg("-d").arg(conninfo).output().unwrap();
    assert!(out.status.success(), "pg_dump {conninfo}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect(),
    )
}

/// The python of a virtual environment `name` under the target directory with
/// `packages` from PyPI: made when `import {imports}` fails there, else reused.
/// Callers keep the path in a `OnceLock`, so a test run makes it once.
pub fn python_venv(name: &str, packages: &[&str], imports: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let py = venv.join("bin/python");
    let ready = |py: &Path| {
        Command::new(py).args(["-c", &format!("import {imports}")]).output().is_ok_and(|o| o.status.success())
    };
    if ready(&py) {
        return py;
    }
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap_or_else(|e| panic!("this test needs {what}: cannot run it: {e}"));
        assert!(
            out.status.success(),
            "this test needs {what}, which failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "a Python virtual environment (python3 -m venv)");
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"]).args(packages);
    run(&mut pip, &format!("{} from PyPI (pip install)", packages.join(", ")));
    assert!(ready(&py), "{packages:?} were installed into {} but cannot be imported", venv.display());
    py
}

/// A cluster of one test's own, stopped and removed when dropped.
pub struct Owned(pub Cluster);

impl Drop for Owned {
    fn drop(&mut self) {
        stop(Some(&self.0));
    }
}

/// A new cluster set up by `setup` (which gets its conninfo base), and a
/// physical clone of it, like a hosted branch: the cluster is stopped, its
/// data directory copied, and both started, each on its own port. The clone
/// keeps the system identifier, OIDs, pages and transaction counter, so from
/// the fork on both servers hand out the same transaction ids. Autovacuum is
/// off on both, so that only the test's own statements take transaction ids.
pub fn cluster_and_physical_clone(setup: impl FnOnce(&str)) -> (Owned, Owned) {
    let mut origin = Owned(start());
    let mut c = postgres::Client::connect(&format!("{} dbname=postgres", origin.0.base), postgres::NoTls).unwrap();
    c.batch_execute("ALTER SYSTEM SET autovacuum = off").unwrap();
    drop(c);
    setup(&origin.0.base);
    let (bin, dir) = origin.0.stop.clone().expect("started here");
    run_pg(&bin.join("pg_ctl"), &["-D", dir.join("data").to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    let copy = tempfile::Builder::new().prefix("pgbd-clone-").tempdir_in("/tmp").unwrap().keep();
    let mut clone =
        Owned(Cluster { base: String::new(), tls: None, version_num: 0, stop: Some((bin.clone(), copy.clone())) });
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let status = Command::new("cp").arg("-a").arg(dir.join("data")).arg(copy.join("data")).status().unwrap();
    assert!(status.success(), "copying {}", dir.display());
    if is_root() {
        Command::new("chown").args(["-R", "postgres:postgres"]).arg(&copy).status().unwrap();
    }
    // Unix sockets only (the origin restarts without TLS).
    let serve = |dir: &Path, port: u16| {
        let o = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            dir.display()
        );
        let (data, log) = (dir.join("data"), dir.join("log"));
        run_pg(
            &bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-o", &o, "start"],
        );
        format!("host={} port={port} user=postgres", dir.display())
    };
    let port = origin.0.base.split_whitespace().find_map(|w| w.strip_prefix("port=")).unwrap().parse().unwrap();
    origin.0.base = serve(&dir, port);
    origin.0.tls = None;
    clone.0.base = serve(&copy, free_port());
    for c in [&mut origin, &mut clone] {
        c.0.version_num = version_num(&c.0.base);
    }
    (origin, clone)
}
