//! Restoring `--snapshot FILE` into a database of a throwaway cluster: plain
//! SQL through psql (fed on standard input, so the server's user never needs
//! to read the file; stops at the first error), pg_dump's custom and directory
//! formats through `pg_restore -j <cores>`, tar through pg_restore without
//! `-j` (the format does not allow it). Ownership and privileges name roles the
//! throwaway cluster does not have: pg_restore leaves them out, and for plain
//! SQL the roles named by `OWNER TO`, `GRANT` and `REVOKE` are created first.

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use super::cluster::Throwaway;
use super::pgbin::PgBin;

/// A snapshot's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SQL text, as `pg_dump` writes by default.
    Plain,
    /// `pg_dump -Fc`.
    Custom,
    /// `pg_dump -Fd`: a directory with `toc.dat`.
    Directory,
    /// `pg_dump -Ft`.
    Tar,
}

impl Format {
    /// Looks at the file: a directory with `toc.dat`, the `PGDMP` magic of the
    /// custom format, a ustar header, else SQL text.
    pub fn detect(path: &Path) -> Result<Format> {
        let meta = std::fs::metadata(path).with_context(|| format!("--snapshot {}", path.display()))?;
        if meta.is_dir() {
            if path.join("toc.dat").is_file() {
                return Ok(Format::Directory);
            }
            bail!("--snapshot {}: a directory without toc.dat is not a pg_dump directory", path.display());
        }
        let mut head = Vec::with_capacity(512);
        std::fs::File::open(path)
            .with_context(|| format!("--snapshot {}", path.display()))?
            .take(512)
            .read_to_end(&mut head)?;
        Ok(if head.starts_with(b"PGDMP") {
            Format::Custom
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Format::Tar
        } else if head.starts_with(&[0x1f, 0x8b]) {
            bail!("--snapshot {}: gzip-compressed SQL; decompress it first (gunzip)", path.display())
        } else {
            Format::Plain
        })
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain SQL",
            Format::Custom => "custom",
            Format::Directory => "directory",
            Format::Tar => "tar",
        }
    }
}

/// Restores `path` into the (existing, empty) database `db` of `cluster`.
pub async fn restore(bin: &PgBin, cluster: &Throwaway, db: &str, path: &Path, format: Format) -> Result<()> {
    let host = cluster.dir().to_str().context("temporary directory is not UTF-8")?;
    let conn = ["-h", host, "-p", "5432", "-U", "postgres", "-d", db];
    let mut cmd = match format {
        Format::Plain => {
            create_owner_roles(cluster, path).await?;
            let mut c = tokio::process::Command::new(bin.client_tool("psql")?);
            c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]).args(conn);
            let file = std::fs::File::open(path).with_context(|| format!("--snapshot {}", path.display()))?;
            c.stdin(file).stdout(Stdio::null());
            c
        }
        Format::Custom | Format::Directory | Format::Tar => {
            let mut c = tokio::process::Command::new(bin.client_tool("pg_restore")?);
            c.args(["--no-owner", "--no-privileges", "--exit-on-error"]).args(conn);
            if format != Format::Tar {
                let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
                c.arg("-j").arg(jobs.to_string());
            }
            c.arg(path).stdin(Stdio::null()).stdout(Stdio::null());
            c
        }
    };
    // Our own socket: nothing inherited may point the tool elsewhere.
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGREQUIRESSL",
        "PGTARGETSESSIONATTRS",
    ] {
        cmd.env_remove(var);
    }
    // Cancelling the check stops the restore.
    let out = cmd.kill_on_drop(true).stderr(Stdio::piped()).output().await.context("cannot run the restore")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("restoring {} ({} format) failed: {}", path.display(), format.name(), first_error(&err));
    }
    Ok(())
}

/// Whether a plain dump creates its own database (`pg_dump --create`): it then
/// runs `CREATE DATABASE` and `\connect`s to it, so it is restored from the
/// `postgres` database and the database it created is the source.
pub fn creates_database(path: &Path) -> Result<bool> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).with_context(|| format!("--snapshot {}", path.display()))?;
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("--snapshot {}", path.display()))?;
        if line.starts_with(b"CREATE DATABASE ") {
            return Ok(true);
        }
        // pg_dump writes the database's creation before any table.
        if line.starts_with(b"CREATE TABLE ") || line.starts_with(b"COPY ") {
            return Ok(false);
        }
    }
    Ok(false)
}

/// The line that says what went wrong: the first ERROR or FATAL, else the first line.
fn first_error(stderr: &str) -> String {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines().find(|l| l.contains("ERROR") || l.contains("FATAL")).or_else(|| lines().next());
    line.unwrap_or("no message").to_string()
}

/// Roles a plain dump hands objects or privileges to (`OWNER TO`, `GRANT … TO`,
/// `REVOKE … FROM`), created NOLOGIN in the throwaway cluster so that those
/// statements succeed.
async fn create_owner_roles(cluster: &Throwaway, path: &Path) -> Result<()> {
    let roles = owner_roles(path)?;
    if roles.is_empty() {
        return Ok(());
    }
    let (client, conn) = cluster.config(diff_core::SideName::Parent, "postgres")?.connect().await?;
    for role in roles {
        let quoted = format!("\"{}\"", role.replace('"', "\"\""));
        let sql = format!(
            "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN CREATE ROLE {quoted} NOLOGIN; END IF; END$$",
            literal(&role)
        );
        client.batch_execute(&sql).await.with_context(|| format!("cannot create role {quoted}"))?;
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn owner_roles(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("--snapshot {}", path.display()))?;
    let mut roles = std::collections::BTreeSet::new();
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        roles.extend(roles_named(&line));
    }
    Ok(roles.into_iter().collect())
}

/// The roles a line of pg_dump output names: `ALTER … OWNER TO r;`,
/// `GRANT … TO r[, r2] [WITH GRANT OPTION];`, `REVOKE … FROM r;` (not PUBLIC).
fn roles_named(line: &str) -> Vec<String> {
    let line = line.trim_end().trim_end_matches(';');
    let default_privileges = line.starts_with("ALTER DEFAULT PRIVILEGES") && line.contains(" GRANT ");
    let list = if line.starts_with("ALTER ") && !default_privileges {
        line.rsplit_once(" OWNER TO ").map(|(_, r)| r)
    } else if line.starts_with("GRANT ") || default_privileges {
        line.rsplit_once(" TO ").map(|(_, r)| r.trim_end_matches(" WITH GRANT OPTION"))
    } else if line.starts_with("REVOKE ") {
        line.rsplit_once(" FROM ").map(|(_, r)| r)
    } else {
        None
    };
    let Some(list) = list else { return vec![] };
    list.split(", ")
        .map(str::trim)
        // An unquoted name is one word: anything else is not a role list.
        .filter(|r| r.starts_with('"') || !(r.is_empty() || r.contains(' ') || r.eq_ignore_ascii_case("public")))
        .map(unquote)
        .collect()
}

fn unquote(ident: &str) -> String {
    match ident.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => ident.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        assert_eq!(Format::detect(&write("a.sql", b"-- dump\nCREATE TABLE t ();\n")).unwrap(), Format::Plain);
        assert_eq!(Format::detect(&write("a.dump", b"PGDMP\x01\x0e\x00")).unwrap(), Format::Custom);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(Format::detect(&write("a.tar", &tar)).unwrap(), Format::Tar);
        assert!(Format::detect(&write("a.sql.gz", &[0x1f, 0x8b, 8, 0])).unwrap_err().to_string().contains("gunzip"));
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        assert!(Format::detect(&d).is_err());
        std::fs::write(d.join("toc.dat"), b"PGDMP").unwrap();
        assert_eq!(Format::detect(&d).unwrap(), Format::Directory);
    }

    #[test]
    fn roles_are_read_from_grants_and_revokes() {
        assert_eq!(roles_named("GRANT SELECT ON TABLE public.t TO reader;"), ["reader"]);
        assert_eq!(roles_named("GRANT ALL ON SCHEMA s TO a, \"B c\" WITH GRANT OPTION;"), ["a", "B c"]);
        assert_eq!(roles_named("GRANT USAGE ON SCHEMA public TO PUBLIC;"), Vec::<String>::new());
        assert_eq!(roles_named("REVOKE ALL ON TABLE public.t FROM app;"), ["app"]);
        assert_eq!(
            roles_named("ALTER DEFAULT PRIVILEGES FOR ROLE o IN SCHEMA s GRANT SELECT ON TABLES TO viewer;"),
            ["viewer"]
        );
        assert_eq!(roles_named("INSERT INTO t VALUES ('GRANT x TO y');"), Vec::<String>::new());
    }

    #[test]
    fn owner_roles_are_read_from_alter_statements() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.sql");
        std::fs::write(
            &p,
            "ALTER TABLE public.t OWNER TO app;\nALTER SCHEMA s OWNER TO \"Odd \"\"One\";\n-- ALTER x OWNER TO nobody;\n",
        )
        .unwrap();
        assert_eq!(owner_roles(&p).unwrap(), vec!["Odd \"One".to_string(), "app".to_string()]);
    }

    #[test]
    fn the_first_error_line_is_chosen() {
        let e = "pg_restore: connecting\npg_restore: error: could not execute query: ERROR:  boom\nmore";
        assert_eq!(first_error(e), "pg_restore: error: could not execute query: ERROR:  boom");
        assert_eq!(first_error("\n  just this\n"), "just this");
    }
}
