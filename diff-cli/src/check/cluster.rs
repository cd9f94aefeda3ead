//! A throwaway PostgreSQL cluster: initdb in a private temporary directory,
//! started on a unix socket in that directory only, tuned for data nobody
//! keeps (no fsync). As root the server runs as the `postgres` user (it
//! refuses root). Dropping the value stops the server (`-m immediate`) and
//! removes the directory, so every way out of `check` cleans up; [`Throwaway::keep`]
//! leaves it running instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use diff_core::{ConnConfig, SideName};

use super::pgbin::PgBin;

/// The socket's port number: only names the socket file, the directory is private.
const PORT: u16 = 5432;

/// A running throwaway cluster (see the module docs).
pub struct Throwaway {
    dir: PathBuf,
    pg_ctl: PathBuf,
    /// Server version, e.g. 150018.
    version_num: u32,
    /// Cleared by [`Throwaway::keep`]: `Drop` then leaves everything in place.
    armed: bool,
    /// The process group of the initdb or pg_ctl running now (killed by `Drop`:
    /// as root the direct child is runuser, and killing it alone leaves its child running).
    running: Option<u32>,
}

impl Throwaway {
    /// Creates and starts a cluster with the server binaries of `bin`.
    /// Cancelling the future (dropping it) stops whatever was started.
    pub async fn start(bin: &PgBin) -> Result<Throwaway> {
        let dir = private_dir()?;
        // From here on, Drop removes the directory and stops a started server.
        let mut cluster =
            Throwaway { dir, pg_ctl: bin.server_tool("pg_ctl"), version_num: 0, armed: true, running: None };
        let data = cluster.data_dir();
        let data = data.to_str().context("temporary directory is not UTF-8")?;
        let initdb = bin.server_tool("initdb");
        let base = ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"];
        // C.UTF-8 sorts like C but knows every character; systems without it get plain C.
        if as_server(&initdb, &[&base[..], &["--locale=C.UTF-8"]].concat(), &mut cluster.running).await.is_err() {
            let _ = std::fs::remove_dir_all(cluster.data_dir());
            as_server(&initdb, &[&base[..], &["--no-locale"]].concat(), &mut cluster.running)
                .await
                .map_err(|e| anyhow::anyhow!("initdb failed in {}: {}", cluster.dir.display(), first_line(&e)))?;
        }
        let sock = cluster.dir.to_str().context("temporary directory is not UTF-8")?.to_string();
        let opts = format!(
            "-p {PORT} -k {sock} -c listen_addresses='' -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=4GB \
             -c checkpoint_timeout=30min"
        );
        let log = cluster.dir.join("log");
        let log_s = log.to_str().context("temporary directory is not UTF-8")?;
        let args = ["-D", data, "-l", log_s, "-w", "-t", "120", "-o", opts.as_str(), "start"];
        let started = as_server(&cluster.pg_ctl, &args, &mut cluster.running).await;
        if let Err(e) = started {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let last = tail.lines().rev().find(|l| l.contains("FATAL") || l.contains("ERROR")).unwrap_or("");
            bail!("the throwaway cluster did not start: {} {last}", first_line(&e));
        }
        cluster.version_num = cluster.query_version().await?;
        Ok(cluster)
    }

    /// The private directory: data directory `data/`, the socket, the server log `log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Server version number (`server_version_num`, e.g. 180004).
    pub fn version_num(&self) -> u32 {
        self.version_num
    }

    /// A libpq `key=value` connection string for database `db`.
    pub fn conninfo(&self, db: &str) -> String {
        format!("host={} port={PORT} user=postgres dbname={db}", self.dir.display())
    }

    /// Connection settings for database `db` as one side of a diff.
    pub fn config(&self, side: SideName, db: &str) -> Result<ConnConfig> {
        // Our own socket: nothing in the environment (PGHOSTADDR…) may point elsewhere.
        Ok(ConnConfig::parse_exact(side, &self.conninfo(db))?)
    }

    /// The `pg_ctl` that started it (to stop a kept cluster later, [`stop_kept`]).
    pub fn pg_ctl(&self) -> &Path {
        &self.pg_ctl
    }

    /// Leaves the cluster running and its directory in place; returns how to stop it.
    pub fn keep(mut self) -> String {
        self.armed = false;
        let runuser = if is_root() { "runuser -u postgres -- " } else { "" };
        format!(
            "{runuser}{} -D {} -m immediate stop && rm -rf {}",
            self.pg_ctl.display(),
            self.data_dir().display(),
            self.dir.display()
        )
    }

    async fn query_version(&self) -> Result<u32> {
        let (client, conn) = self.config(SideName::Parent, "postgres")?.connect().await?;
        let v: String = client.query_one("SHOW server_version_num", &[]).await?.get(0);
        drop(client);
        let _ = conn.await;
        v.parse().context("server_version_num is not a number")
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(group) = self.running.take() {
            // SAFETY: kill has no memory effects; a group that is gone gives ESRCH.
            unsafe { libc::kill(-(group as i32), libc::SIGKILL) };
        }
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = server_std(&self.pg_ctl)
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Whatever `pg_ctl stop` could not reach: a postmaster cancelled during
        // `pg_ctl start` (it runs in a session of its own, so killing pg_ctl's
        // group spares it, and its pid file may not be written yet), or one
        // whose pid file was half written. The directory goes only after every
        // process naming it has exited, or a server outlives its files.
        stop_processes_naming(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops every process whose command line names `dir` (the postmaster is
/// started with `-D <dir>/data`; pg_ctl, the shell it forks and restore tools
/// name it too): SIGQUIT (PostgreSQL's immediate shutdown), SIGKILL after 5 s,
/// until none is left or 15 s have passed.
fn stop_processes_naming(dir: &Path) {
    let start = std::time::Instant::now();
    let mut quit_sent = std::collections::BTreeSet::new();
    loop {
        let pids = processes_naming(dir);
        if pids.is_empty() || start.elapsed() > std::time::Duration::from_secs(15) {
            return;
        }
        let late = start.elapsed() > std::time::Duration::from_secs(5);
        for pid in pids {
            let sig = if late { libc::SIGKILL } else { libc::SIGQUIT };
            if late || quit_sent.insert(pid) {
                // SAFETY: kill has no memory effects; a process that is gone gives ESRCH.
                unsafe { libc::kill(pid, sig) };
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Live processes (not zombies) whose command line contains `dir`.
fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id() as i32;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 3, after the parenthesised name: Z is a zombie, already dead.
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            state.is_some_and(|c| c != 'Z' && c != 'X') && cmd.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// Stops a cluster left running by [`Throwaway::keep`] (in an earlier run)
/// and removes its directory. A server already stopped is not an error.
pub fn stop_kept(dir: &Path, pg_ctl: &Path) -> Result<()> {
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        let out = server_std(pg_ctl)
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .with_context(|| format!("cannot run {}", pg_ctl.display()))?;
        if !out.status.success() && data.join("postmaster.pid").exists() {
            bail!(
                "cannot stop the cluster in {}: {}",
                dir.display(),
                first_line(&String::from_utf8_lossy(&out.stderr))
            );
        }
    }
    stop_processes_naming(dir);
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// A new directory only we (and, as root, the `postgres` user) can enter:
/// under `TMPDIR` unless that would make the socket path too long for unix sockets.
fn private_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let base = if base.as_os_str().len() > 60 { PathBuf::from("/tmp") } else { base };
    let dir = tempfile::Builder::new()
        .prefix("pgbranchdiff-check-")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a temporary directory in {}", base.display()))?
        .keep();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    if is_root() {
        let ok =
            std::process::Command::new("chown").arg("postgres:postgres").arg(&dir).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            bail!("running as root, but cannot hand {} to the postgres user (does it exist?)", dir.display());
        }
    }
    Ok(dir)
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A server binary's command: as `postgres` when we are root.
fn server_std(bin: &Path) -> std::process::Command {
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.stdin(Stdio::null());
    cmd
}

fn server_command(bin: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(server_std(bin));
    // A cancelled check must not leave initdb or pg_ctl running.
    cmd.kill_on_drop(true);
    cmd
}

/// Runs a server binary in a process group of its own, noted in `running`
/// while it runs; the error is its output.
async fn as_server(bin: &Path, args: &[&str], running: &mut Option<u32>) -> std::result::Result<(), String> {
    let child = server_command(bin)
        .args(args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    *running = child.id();
    let out = child.wait_with_output().await;
    *running = None;
    let out = out.map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    Err(text.trim().to_string())
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}
