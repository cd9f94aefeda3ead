//! Finding the PostgreSQL binaries on this machine: the server's (`initdb`,
//! `pg_ctl`) for a throwaway cluster, and the clients (`psql`, `pg_restore`)
//! for restoring a snapshot.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Where the binaries were found.
#[derive(Debug, Clone)]
pub struct PgBin {
    /// The directory holding `initdb` and `pg_ctl`.
    pub server: PathBuf,
}

impl PgBin {
    /// The first of: `PGBRANCHDIFF_PG_BIN`, `initdb` on `PATH`, `pg_config --bindir`,
    /// the highest `/usr/lib/postgresql/*/bin`, `/usr/local/pgsql/bin`.
    pub fn find() -> Result<PgBin> {
        if let Some(dir) = std::env::var_os("PGBRANCHDIFF_PG_BIN").filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            if !has_server(&dir) {
                bail!("PGBRANCHDIFF_PG_BIN={}: no initdb and pg_ctl there", dir.display());
            }
            return Ok(PgBin { server: dir });
        }
        let found = on_path("initdb")
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|d| has_server(d))
            .or_else(pg_config_bindir)
            .or_else(debian_highest)
            .or_else(|| Some(PathBuf::from("/usr/local/pgsql/bin")).filter(|d| has_server(d)));
        match found {
            Some(server) => Ok(PgBin { server }),
            None => bail!(
                "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH, via pg_config, in \
                 /usr/lib/postgresql/*/bin or /usr/local/pgsql/bin: install PostgreSQL or set PGBRANCHDIFF_PG_BIN"
            ),
        }
    }

    /// A server binary (`initdb`, `pg_ctl`).
    pub fn server_tool(&self, name: &str) -> PathBuf {
        self.server.join(name)
    }

    /// A client tool: beside the server binaries when it is there (same
    /// version), else from `PATH` (some server-only packages ship no clients).
    pub fn client_tool(&self, name: &str) -> Result<PathBuf> {
        let beside = self.server.join(name);
        if is_executable(&beside) {
            return Ok(beside);
        }
        on_path(name)
            .ok_or_else(|| anyhow::anyhow!("{name} not found (neither in {} nor on PATH)", self.server.display()))
    }
}

fn has_server(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = std::process::Command::new(on_path("pg_config")?).arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    has_server(&dir).then_some(dir)
}

/// Debian and Ubuntu install each major version under /usr/lib/postgresql/N.
fn debian_highest() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, d)| has_server(d))
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_initdb_is_not_a_server() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_server(dir.path()));
        std::fs::write(dir.path().join("initdb"), "").unwrap();
        std::fs::write(dir.path().join("pg_ctl"), "").unwrap();
        // Present but not executable.
        assert!(!has_server(dir.path()));
        for f in ["initdb", "pg_ctl"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert!(has_server(dir.path()));
    }
}
