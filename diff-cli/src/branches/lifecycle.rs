//! Making, resetting and deleting a branch by the method the operator chose:
//! a TEMPLATE copy on the source's server, a snapshot restored into a local
//! cluster that keeps running until the branch is deleted, or a provider's
//! commands. The source is only read (pg_dump, or as a template). Every
//! branch made is recorded ([`super::registry`]) before this returns it, and
//! only recorded branches are deleted.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use diff_core::{ConnConfig, SideName};

use super::confine::{self, BranchRole};
use super::provider;
use super::registry::{now, Made, Record, Registry};
use crate::check::branch::{self as template, ident, Strategy};
use crate::check::cluster::{self, Throwaway};
use crate::check::pgbin::PgBin;
use crate::check::restore;

/// How branches are made (fixed by the operator).
#[derive(Debug, Clone)]
pub enum Method {
    /// `CREATE DATABASE … TEMPLATE <source>` on the source's server.
    Template,
    /// A dump restored into a local cluster: of `dump` if given, else `pg_dump` of the source.
    Snapshot { dump: Option<PathBuf> },
    /// A provider's commands.
    Command { create: String, delete: Option<String> },
}

/// What a branch is made from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The live source, if there is one (not with a dump file alone).
    pub config: Option<ConnConfig>,
    pub method: Method,
}

impl Source {
    /// A short description: the endpoint or the dump file (never a password).
    pub fn describe(&self) -> String {
        match (&self.method, &self.config) {
            (Method::Snapshot { dump: Some(p) }, _) => format!("dump {}", p.display()),
            (_, Some(c)) => c.endpoint(),
            (_, None) => "(no source)".into(),
        }
    }

    fn live(&self) -> Result<&ConnConfig> {
        self.config.as_ref().context("this branch method needs the source database (--from URL)")
    }
}

/// A name for a new branch of `source`: `<source db>_branch_<pid>_<n>`, within 63 bytes.
pub fn new_name(source: &Source) -> String {
    let base = match (&source.method, &source.config) {
        (Method::Snapshot { dump: Some(p) }, _) => crate::check::snapshot_db_name(p),
        (_, Some(c)) => c.dbname().to_string(),
        _ => "branch".into(),
    };
    template::unique_name(&base).replacen("_check_", "_branch_", 1)
}

/// A branch name must be a plain identifier: it becomes a database name and an environment value.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        bail!("--name {name:?}: a branch name is 1 to 63 of a-z, 0-9 and _, not starting with a digit");
    }
    Ok(())
}

/// Makes branch `name` of `source` and records it (owner `owner`). With `confine`, a TEMPLATE or
/// snapshot branch is handed to a login role of its own ([`super::confine`]).
pub async fn create(registry: &Registry, source: &Source, name: &str, owner: &str, confine: bool) -> Result<Record> {
    check_name(name)?;
    if registry.list()?.iter().any(|r| r.name == name) {
        bail!("a branch named \"{name}\" is already recorded (branch list shows it)");
    }
    let mut record = Record {
        name: name.to_string(),
        from: source.describe(),
        parent: String::new(),
        branch: String::new(),
        created: now(),
        made: Made::Template,
        owner: owner.to_string(),
        role: None,
    };
    match &source.method {
        Method::Template => {
            let src = source.live()?;
            record.parent = keywords(src);
            record.branch = keywords(&src.with_dbname(SideName::Child, name));
            return template_branch(registry, src, record, confine).await;
        }
        Method::Snapshot { dump } => {
            (record.parent, record.branch, record.made) = snapshot(source, dump.as_deref(), name).await?;
        }
        Method::Command { create, delete } => {
            let m = provider::create(create, name).await?;
            record.parent = source.config.as_ref().map(keywords).unwrap_or_default();
            record.branch = m.url;
            record.made = Made::Command { create: create.clone(), delete: delete.clone(), id: m.id };
        }
    }
    if let Err(e) = registry.add(record.clone()) {
        // Unrecorded, it could never be deleted by this tool: undo it now.
        let _ = remove(&record, source.config.as_ref()).await;
        return Err(e);
    }
    if confine && matches!(record.made, Made::Snapshot { .. }) {
        // The role lives and dies with the snapshot's cluster.
        let role = BranchRole::new(name);
        record.role = Some(role.clone());
        if let Err(e) = confine_snapshot(registry, &mut record, &role).await {
            return Err(undo(registry, &record, None, e).await);
        }
    }
    Ok(record)
}

/// A TEMPLATE branch, recorded before it exists: an interrupted run leaves a record that
/// `branch delete` clears. Only what this run made is undone on an error.
async fn template_branch(registry: &Registry, src: &ConnConfig, mut record: Record, confine: bool) -> Result<Record> {
    template::absent(src, &record.name).await?;
    registry.add(record.clone())?;
    if let Err(e) = template::create(src, &record.name, Strategy::Auto).await {
        let _ = registry.remove(&record.name);
        return Err(e);
    }
    if !confine {
        if let Err(e) = carry_database_acl(src, &record.name).await {
            return Err(undo(registry, &record, Some(src), e).await);
        }
        return Ok(record);
    }
    let branch = src.with_dbname(SideName::Child, &record.name);
    let role = BranchRole::new(&record.name);
    if let Err(e) = confine::create_role(&branch, &role).await {
        return Err(undo(registry, &record, Some(src), e).await);
    }
    record.role = Some(role.clone());
    let confined = async {
        registry.replace(record.clone())?;
        confine::hand_over(&branch, &role.name).await?;
        confine::check_source(src, &role.name).await
    };
    match confined.await {
        Ok(()) => Ok(record),
        Err(e) => Err(undo(registry, &record, Some(src), e).await),
    }
}

/// Gives branch `name` the source database's own privileges (a TEMPLATE copy starts with the
/// defaults, CONNECT and TEMPORARY for PUBLIC, whatever the source revoked).
async fn carry_database_acl(src: &ConnConfig, name: &str) -> Result<()> {
    let (client, conn) = src.connect().await?;
    let acl = client
        .query(
            "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
               FROM pg_database d, aclexplode(d.datacl) a
              WHERE d.datname = current_database() AND a.grantee <> d.datdba",
            &[],
        )
        .await?;
    let explicit: bool = client
        .query_one("SELECT datacl IS NOT NULL FROM pg_database WHERE datname = current_database()", &[])
        .await?
        .get(0);
    if explicit {
        let q = ident(name);
        let mut sql = format!("REVOKE ALL ON DATABASE {q} FROM PUBLIC;");
        for row in &acl {
            let (privilege, grantee): (String, String) = (row.get(0), row.get(1));
            sql += &format!("GRANT {privilege} ON DATABASE {q} TO {grantee};");
        }
        client
            .batch_execute(&sql)
            .await
            .with_context(|| format!("{}: cannot give branch {q} the source's database privileges", src.endpoint()))?;
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Removes a branch that failed half-way and its record; returns the error that stopped it.
async fn undo(registry: &Registry, record: &Record, source: Option<&ConnConfig>, e: anyhow::Error) -> anyhow::Error {
    match remove(record, source).await {
        Ok(()) => {
            let _ = registry.remove(&record.name);
        }
        // The record stays: it is what lets `branch delete` finish the job later.
        Err(cleanup) => eprintln!(
            "pgbranchdiff: could not remove the half-made branch \"{}\" (still recorded; branch delete removes it): {cleanup:#}",
            record.name
        ),
    }
    e
}

/// Hands a snapshot branch to its role; every other database of the cluster, the restored copy
/// (the diff's parent) first, is closed to it.
async fn confine_snapshot(registry: &Registry, record: &mut Record, role: &BranchRole) -> Result<()> {
    registry.replace(record.clone())?;
    let branch = branch_config(record)?;
    confine::create_role(&branch, role).await?;
    confine::hand_over(&branch, &role.name).await?;
    let parent = parent_config(record, None)?;
    let (client, conn) = branch.connect().await?;
    let others = format!("{}, postgres, template1", ident(parent.dbname()));
    client.batch_execute(&format!("REVOKE CONNECT ON DATABASE {others} FROM PUBLIC")).await?;
    drop(client);
    let _ = conn.await;
    confine::check_source(&parent, &role.name).await?;
    lock_cluster(registry, record).await
}

/// Closes a snapshot's cluster to connections without a password. It was made with `trust` on a
/// socket in a private directory, but the agent runs as the operator's user and could reach that
/// socket: as the cluster's superuser it could rewrite the restored copy the diff compares with.
async fn lock_cluster(registry: &Registry, record: &mut Record) -> Result<()> {
    let Made::Snapshot { dir, password, .. } = &mut record.made else { return Ok(()) };
    let secret = crate::mcp::random_key();
    let config = ConnConfig::parse_exact(SideName::Child, &record.branch)?;
    let (client, conn) = config.connect().await?;
    client.batch_execute(&format!("ALTER ROLE CURRENT_USER PASSWORD {}", confine::verifier(&secret))).await?;
    let hba = dir.join("data").join("pg_hba.conf");
    std::fs::write(
        &hba,
        "# pgbranchdiff: an agent's branch; every connection gives a password\nlocal all all scram-sha-256\n",
    )
    .with_context(|| format!("cannot write {}", hba.display()))?;
    *password = Some(secret);
    // Recorded before the server asks for it: a run that stops here can still use the cluster.
    registry.replace(record.clone())?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Restores the snapshot into a new cluster, branches it there, and leaves the cluster running.
async fn snapshot(source: &Source, dump: Option<&std::path::Path>, name: &str) -> Result<(String, String, Made)> {
    let bin = PgBin::find()?;
    let cluster = Throwaway::start(&bin).await?;
    // Until `keep` below, dropping `cluster` (an error) stops it and removes its directory.
    let dumped;
    let path = match dump {
        Some(p) => p,
        None => {
            dumped = cluster.dir().join("source.dump");
            pg_dump(&bin, source.live()?, &dumped).await?;
            dumped.as_path()
        }
    };
    let format = restore::Format::detect(path)?;
    let restored = crate::check::restore_snapshot(&bin, &cluster, path, format).await?;
    if dump.is_none() {
        let _ = std::fs::remove_file(path);
    }
    let parent = cluster.config(SideName::Parent, &restored)?;
    template::create(&parent, name, cluster_strategy(cluster.version_num())).await?;
    let branch = cluster.conninfo(name);
    let made = Made::Snapshot {
        dir: cluster.dir().to_path_buf(),
        pg_ctl: cluster.pg_ctl().to_path_buf(),
        restored,
        password: None,
    };
    let parent = cluster.conninfo(parent.dbname());
    cluster.keep();
    Ok((parent, branch, made))
}

/// The fastest copy a cluster of this version makes (nobody else uses it).
fn cluster_strategy(version: u32) -> Strategy {
    match version {
        v if v >= 180000 => Strategy::Clone,
        v if v >= 150000 => Strategy::FileCopy,
        _ => Strategy::Default,
    }
}

/// `pg_dump -Fc` of the live source into `out` (reads only, in one snapshot).
async fn pg_dump(bin: &PgBin, source: &ConnConfig, out: &std::path::Path) -> Result<()> {
    let mut cmd = tokio::process::Command::new(bin.client_tool("pg_dump")?);
    cmd.args(["-Fc", "--no-owner", "--no-privileges", "-f"]).arg(out).arg("-d").arg(keywords(source));
    if let Some(p) = source.param("password") {
        // In the environment, never on the command line (other users see that).
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.kill_on_drop(true).stdin(std::process::Stdio::null()).output().await.context("cannot run pg_dump")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        bail!("pg_dump of {} failed: {line}", source.endpoint());
    }
    Ok(())
}

/// Deletes a recorded branch and its record (`source`: the live source's connection, whose
/// password the operator's sessions on a TEMPLATE branch's server reuse).
pub async fn delete(registry: &Registry, record: &Record, source: Option<&ConnConfig>) -> Result<()> {
    remove(record, source).await?;
    registry.remove(&record.name)
}

/// Removes the branch itself (not its record).
async fn remove(record: &Record, source: Option<&ConnConfig>) -> Result<()> {
    match &record.made {
        Made::Template => {
            let server = operator_config(record, source)?;
            if let Some(role) = &record.role {
                confine::disable_role(&server, &role.name).await?;
            }
            template::drop_branch(&as_branch(record, source)?).await?;
            match &record.role {
                Some(role) => confine::drop_role(&server, &role.name).await,
                None => Ok(()),
            }
        }
        // The role goes with the cluster.
        Made::Snapshot { dir, pg_ctl, .. } => {
            let (dir, pg_ctl) = (dir.clone(), pg_ctl.clone());
            tokio::task::spawn_blocking(move || cluster::stop_kept(&dir, &pg_ctl)).await?
        }
        Made::Command { delete: Some(cmd), id, .. } => {
            provider::delete(cmd, &record.name, &record.branch, id.as_deref()).await
        }
        Made::Command { delete: None, .. } => bail!(
            "branch \"{}\" was made by a provider command and no --delete-command was given: delete it with the provider",
            record.name
        ),
    }
}

/// Makes the branch again from its source (the next attempt starts clean); returns the new record.
pub async fn reset(registry: &Registry, record: &Record, source: Option<&ConnConfig>) -> Result<Record> {
    let mut next = record.clone();
    match &record.made {
        Made::Template => {
            let server = operator_config(record, source)?;
            if let Some(role) = &record.role {
                confine::end_sessions(&server, &role.name).await?;
            }
            template::drop_branch(&as_branch(record, source)?).await?;
            let src = match source {
                Some(s) => s.clone(),
                None => ConnConfig::parse(SideName::Parent, &record.parent)?,
            };
            template::create(&src, &record.name, Strategy::Auto).await.with_context(|| dropped(record))?;
            if record.role.is_none() {
                carry_database_acl(&src, &record.name).await.with_context(|| dropped(record))?;
            }
            if let Some(role) = &record.role {
                confine::hand_over(&server, &role.name).await.with_context(|| dropped(record))?;
                confine::restore_role(&server, role).await?;
            }
        }
        Made::Snapshot { restored, .. } => {
            let b = as_branch(record, None)?;
            if let Some(role) = &record.role {
                confine::end_sessions(&b.config, &role.name).await?;
            }
            template::drop_branch(&b).await?;
            let parent = b.config.with_dbname(SideName::Parent, restored);
            let version = server_version(&parent).await?;
            template::create(&parent, &record.name, cluster_strategy(version))
                .await
                .with_context(|| dropped(record))?;
            if let Some(role) = &record.role {
                confine::hand_over(&b.config, &role.name).await.with_context(|| dropped(record))?;
                confine::restore_role(&b.config, role).await?;
            }
        }
        Made::Command { create, delete, .. } => {
            if delete.is_none() {
                bail!("branch \"{}\" cannot be reset: no --delete-command was given to remove it first", record.name);
            }
            remove(record, source).await?;
            let m = provider::create(create, &record.name).await?;
            next.branch = m.url;
            next.made = Made::Command { create: create.clone(), delete: delete.clone(), id: m.id };
        }
    }
    next.created = now();
    registry.replace(next.clone())?;
    Ok(next)
}

/// A reset that dropped the branch and could not make it again: what is left, and what to do.
fn dropped(record: &Record) -> String {
    format!(
        "branch \"{0}\" was dropped to be made again and is not there now (reset it again, or delete it)",
        record.name
    )
}

async fn server_version(c: &ConnConfig) -> Result<u32> {
    let (client, conn) = c.with_dbname(SideName::Parent, "postgres").connect().await?;
    let v: String = client.query_one("SHOW server_version_num", &[]).await?.get(0);
    drop(client);
    let _ = conn.await;
    Ok(v.parse()?)
}

/// The record as the TEMPLATE module's branch (to drop it by name on its server).
fn as_branch(record: &Record, source: Option<&ConnConfig>) -> Result<template::Branch> {
    let config = operator_config(record, source)?;
    Ok(template::Branch {
        name: config.dbname().to_string(),
        source: String::new(),
        millis: 0,
        strategy: Strategy::Default,
        checkpoint: false,
        config,
    })
}

/// The operator's connection to the branch: the source's, password included, on a TEMPLATE
/// branch's server when the source is at hand; else [`branch_config`].
fn operator_config(record: &Record, source: Option<&ConnConfig>) -> Result<ConnConfig> {
    match (&record.made, source) {
        (Made::Template, Some(src)) => Ok(src.with_dbname(SideName::Child, &record.name)),
        _ => branch_config(record),
    }
}

/// How the diff and `run_sql` reach an agent's branch: as its role ([`agent_config`]), once what
/// the agent set on that role (defaults that would apply to their sessions, its password) is cleared.
pub async fn read_as_agent(record: &Record, source: Option<&ConnConfig>) -> Result<ConnConfig> {
    if let (Some(role), Made::Template | Made::Snapshot { .. }) = (&record.role, &record.made) {
        confine::restore_role(&operator_config(record, source)?, role).await?;
    }
    agent_config(record)
}

/// How to connect to the branch (passwords from the environment or ~/.pgpass, except a provider's URL).
pub fn branch_config(record: &Record) -> Result<ConnConfig> {
    Ok(match &record.made {
        Made::Snapshot { password, .. } => {
            with_password(ConnConfig::parse_exact(SideName::Child, &record.branch)?, password.as_deref())
        }
        _ => ConnConfig::parse(SideName::Child, &record.branch)?,
    })
}

/// `c` with the snapshot cluster's superuser password, if it has one.
fn with_password(c: ConnConfig, password: Option<&str>) -> ConnConfig {
    match password {
        Some(p) => {
            let user = c.param("user").unwrap_or("postgres").to_string();
            c.with_role(&user, Some(p))
        }
        None => c,
    }
}

/// How to connect to the diff's parent: the restored copy for a snapshot, else the source.
pub fn parent_config(record: &Record, source: Option<&ConnConfig>) -> Result<ConnConfig> {
    if let (Made::Template | Made::Command { .. }, Some(s)) = (&record.made, source) {
        return Ok(s.clone());
    }
    if record.parent.is_empty() {
        bail!("branch \"{}\" has no recorded source to compare with (give --from URL)", record.name);
    }
    Ok(match &record.made {
        Made::Snapshot { password, .. } => {
            with_password(ConnConfig::parse_exact(SideName::Parent, &record.parent)?, password.as_deref())
        }
        _ => ConnConfig::parse(SideName::Parent, &record.parent)?,
    })
}

/// How the agent connects to the branch: as its own role if it has one.
pub fn agent_config(record: &Record) -> Result<ConnConfig> {
    let branch = branch_config(record)?;
    Ok(match &record.role {
        Some(role) => role.config(&branch),
        None => branch,
    })
}

/// The URL an agent gets: its branch role's, password included (a credential for the branch
/// alone, made for the agent); else the branch's URL without a password.
pub fn agent_url(record: &Record) -> Result<String> {
    Ok(match &record.role {
        Some(role) => crate::migrate::database_url(&agent_config(record)?, Some(&role.password)),
        None => url(record)?,
    })
}

/// A URL to print for the branch: never with a password.
pub fn url(record: &Record) -> Result<String> {
    let c = branch_config(record)?;
    Ok(crate::migrate::database_url(&c, None))
}

/// `key=value` connection string of `c` without its password (for the registry).
pub fn keywords(c: &ConnConfig) -> String {
    let mut parts = Vec::new();
    for key in ["host", "hostaddr", "port", "user", "dbname", "sslmode", "sslrootcert", "connect_timeout"] {
        if let Some(v) = c.param(key) {
            let v = if v.is_empty() || v.contains([' ', '\'', '\\']) {
                format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
            } else {
                v.to_string()
            };
            parts.push(format!("{key}={v}"));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        for good in ["b", "shop_branch_1", "a_9"] {
            check_name(good).unwrap();
        }
        for bad in ["", "Shop", "a-b", "1a", "a b", "x\"y"] {
            assert!(check_name(bad).unwrap_err().to_string().contains("a branch name is"), "{bad}");
        }
    }

    #[test]
    fn keywords_leave_the_password_out_and_quote() {
        let c = ConnConfig::parse(SideName::Parent, "host='/tmp/a dir' port=5433 user=app password=s3cret dbname=shop")
            .unwrap();
        let k = keywords(&c);
        assert!(!k.contains("s3cret"), "{k}");
        assert!(k.contains("host='/tmp/a dir'") && k.contains("dbname=shop"), "{k}");
        let back = ConnConfig::parse_exact(SideName::Parent, &k).unwrap();
        assert_eq!(back.param("host"), Some("/tmp/a dir"));
    }
}
