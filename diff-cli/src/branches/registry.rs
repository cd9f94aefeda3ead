//! The record of branches this tool made, kept across runs in a state file
//! (`branches.json` in the state directory), so that `branch list`, `branch
//! delete` and an MCP server's cleanup find them later. Only what is recorded
//! here is ever deleted. The file is private (mode 0600): a provider's branch
//! URL may carry its password. Writers take an exclusive `flock` on
//! `branches.lock`, so runs at the same time do not lose each other's records.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// How a branch was made, and what deleting it takes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Made {
    /// `CREATE DATABASE … TEMPLATE` on the source's server.
    Template,
    /// A dump restored into a local cluster kept running for the branch.
    Snapshot {
        /// The cluster's directory (data directory `data/`, socket, log).
        dir: PathBuf,
        /// The `pg_ctl` that stops it.
        pg_ctl: PathBuf,
        /// The restored source database in that cluster: the diff's parent and
        /// the template of a reset.
        restored: String,
        /// The cluster superuser's password, once an agent's branch closed the cluster to
        /// password-less connections (the file is private).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// A provider's command made it; another command deletes it.
    Command {
        /// The command that made it (run again by a reset).
        create: String,
        /// The command that deletes it, if one was given.
        delete: Option<String>,
        /// The provider's id of the branch, when its output named one.
        id: Option<String>,
    },
}

/// One branch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Its name, unique in the registry.
    pub name: String,
    /// What it was made from: a connection (without password) or a dump file.
    pub from: String,
    /// The diff's parent: `key=value` connection string without password.
    pub parent: String,
    /// The branch: a `key=value` string without password, or a provider's URL as given.
    pub branch: String,
    /// Seconds since 1970 (UTC) when it was made or last reset.
    pub created: u64,
    /// How it was made.
    pub made: Made,
    /// Who made it: `cli`, or `mcp:<pid>` for an MCP server (which deletes its own on exit).
    pub owner: String,
    /// The branch's own login role, when its objects were handed to one (an agent's branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<super::confine::BranchRole>,
}

impl Record {
    /// The method's name, for listings.
    pub fn method(&self) -> &'static str {
        match self.made {
            Made::Template => "template",
            Made::Snapshot { .. } => "snapshot",
            Made::Command { .. } => "command",
        }
    }
}

/// The state directory: `--state-dir`, else `$XDG_STATE_HOME/pgbranchdiff`,
/// else `~/.local/state/pgbranchdiff`.
pub fn state_dir(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(x) = env("XDG_STATE_HOME") {
        return Ok(x.join("pgbranchdiff"));
    }
    let home = env("HOME").context("no state directory: set --state-dir, XDG_STATE_HOME or HOME")?;
    Ok(home.join(".local/state/pgbranchdiff"))
}

/// The registry in one state directory.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// The registry in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Registry {
        Registry { dir }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self) -> PathBuf {
        self.dir.join("branches.json")
    }

    /// Every record, in the order made.
    pub fn list(&self) -> Result<Vec<Record>> {
        let path = self.file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("{} is not a branch registry", path.display()))
    }

    /// The record named `name`, or an error saying which names exist.
    pub fn get(&self, name: &str) -> Result<Record> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == name) {
            return Ok(r.clone());
        }
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        let known = if names.is_empty() { "none are recorded".to_string() } else { names.join(", ") };
        anyhow::bail!("no branch named \"{name}\" was made by pgbranchdiff here ({known})")
    }

    /// Changes the records under the lock: `change` gets them all and may edit them.
    pub fn update<T>(&self, change: impl FnOnce(&mut Vec<Record>) -> Result<T>) -> Result<T> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        let lock = lock(&self.dir.join("branches.lock"))?;
        let mut records = self.list()?;
        let out = change(&mut records)?;
        self.write(&records)?;
        drop(lock);
        Ok(out)
    }

    /// Adds a record; a name already recorded is refused.
    pub fn add(&self, record: Record) -> Result<()> {
        self.update(|all| {
            if all.iter().any(|r| r.name == record.name) {
                anyhow::bail!("a branch named \"{}\" is already recorded", record.name);
            }
            all.push(record);
            Ok(())
        })
    }

    /// Replaces the record of the same name.
    pub fn replace(&self, record: Record) -> Result<()> {
        self.update(|all| {
            all.retain(|r| r.name != record.name);
            all.push(record);
            Ok(())
        })
    }

    /// Removes the record named `name`.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.update(|all| {
            all.retain(|r| r.name != name);
            Ok(())
        })
    }

    fn write(&self, records: &[Record]) -> Result<()> {
        let path = self.file();
        let staged = self.dir.join(".branches.json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)
            .with_context(|| format!("cannot write {}", staged.display()))?;
        f.write_all(serde_json::to_string_pretty(records)?.as_bytes())?;
        f.sync_all()?;
        // A rename: a reader sees the old registry or the new one, never half of one.
        std::fs::rename(&staged, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// An exclusive lock on `path`, held until the file is closed.
fn lock(path: &Path) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; it is released when the file closes.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        anyhow::bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(f)
}

/// Seconds since 1970, now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-12-03 12:35:00 UTC` for `secs` since 1970.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> Record {
        Record {
            name: name.into(),
            from: "host=/tmp port=5432 user=u dbname=shop".into(),
            parent: "host=/tmp port=5432 user=u dbname=shop".into(),
            branch: format!("host=/tmp port=5432 user=u dbname={name}"),
            created: 0,
            made: Made::Template,
            owner: "cli".into(),
            role: None,
        }
    }

    #[test]
    fn records_survive_a_new_registry_value_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("state"));
        assert!(reg.list().unwrap().is_empty());
        reg.add(record("a")).unwrap();
        reg.add(record("b")).unwrap();
        assert!(reg.add(record("a")).unwrap_err().to_string().contains("already recorded"));
        let again = Registry::new(dir.path().join("state"));
        assert_eq!(again.list().unwrap(), vec![record("a"), record("b")]);
        again.remove("a").unwrap();
        assert_eq!(reg.get("b").unwrap(), record("b"));
        assert!(reg
            .get("a")
            .unwrap_err()
            .to_string()
            .contains("no branch named \"a\" was made by pgbranchdiff here (b)"));
        let mode = std::fs::metadata(dir.path().join("state/branches.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_301_300), "2026-12-03 12:35:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
