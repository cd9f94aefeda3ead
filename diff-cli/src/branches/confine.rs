//! A login role of the branch's own, for an agent. A branch copied on the
//! source's server (TEMPLATE), or in a local cluster (a snapshot), would
//! otherwise be reached with the operator's role, which can reach the source
//! too: `DROP DATABASE`, `ALTER SYSTEM` or `COPY … TO PROGRAM` for a
//! superuser, writes to the source for its owner. So every object of the
//! branch is handed to a new role (`NOSUPERUSER NOCREATEDB NOCREATEROLE
//! NOREPLICATION NOBYPASSRLS`, a random password stored as a SCRAM verifier),
//! and the agent's URL and `run_sql` use that role. The branch database
//! itself stays the operator's (its owner could make it a template, which
//! cannot be dropped, or set parameters that break the diff's sessions); the
//! role gets CONNECT, CREATE and TEMPORARY on it, and PUBLIC loses them, so
//! no other branch's role gets in. The diff does not count the hand-over as a
//! change ([`diff_core::schema::stand_in`]).
//!
//! A role that can connect to the source could write to it through whatever
//! PUBLIC may do there: create in a schema, write a table, call a SECURITY
//! DEFINER function, create a large object. Rather than chase each of those,
//! a branch is refused unless the role cannot connect to the source at all
//! (the operator revokes CONNECT from PUBLIC there). Deleting the branch
//! first takes the role's LOGIN away, then drops what it made in other
//! databases of the server (`DROP OWNED`), then the role.
use anyhow::{bail, Context, Result};
use diff_core::{ConnConfig, SideName};
use serde::{Deserialize, Serialize};

use crate::check::branch::ident;

/// The branch's own role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BranchRole {
    /// The role's name (the branch's name).
    pub name: String,
    /// Its password (the registry file is private).
    pub password: String,
}

impl BranchRole {
    /// A new role named after the branch, with a random password.
    pub fn new(branch: &str) -> BranchRole {
        BranchRole { name: branch.to_string(), password: crate::mcp::random_key() }
    }

    /// How the agent connects to the branch: `branch` (the operator's connection) as this role.
    pub fn config(&self, branch: &ConnConfig) -> ConnConfig {
        branch.with_role(&self.name, Some(&self.password))
    }
}

/// Creates `role` on the branch's server (the caller then hands it the branch: [`hand_over`]).
pub async fn create_role(branch: &ConnConfig, role: &BranchRole) -> Result<()> {
    let (client, conn) = branch.connect().await?;
    let attrs = client
        .query_one(
            "SELECT r.rolsuper, r.rolcreaterole, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)
               FROM pg_roles r WHERE r.rolname = current_user",
            &[&role.name],
        )
        .await?;
    let (superuser, createrole, exists): (bool, bool, bool) = (attrs.get(0), attrs.get(1), attrs.get(2));
    if !superuser && !createrole {
        bail!(
            "{}: an agent's branch gets a role of its own, so that its URL reaches nothing but the branch, and role \"{}\" \
             cannot create roles (it needs CREATEROLE, and to own the source's objects); give the source a role that \
             can, or use --snapshot or --branch-command",
            branch.endpoint(),
            branch.param("user").unwrap_or("")
        );
    }
    if exists {
        bail!(
            "{}: a role named \"{}\" already exists; pgbranchdiff gives a branch a role it made itself, never one it did not",
            branch.endpoint(),
            role.name
        );
    }
    let q = ident(&role.name);
    client
        .batch_execute(&format!(
            "CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}",
            verifier(&role.password)
        ))
        .await
        .with_context(|| format!("{}: cannot create the branch's role \"{}\"", branch.endpoint(), role.name))?;
    if !superuser {
        // ALTER … OWNER TO needs membership in the new owner.
        client.batch_execute(&format!("GRANT {q} TO CURRENT_USER")).await?;
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Gives every object of the branch database to `role` and lets it (and no one else but the
/// operator) connect there (again, after a reset).
pub async fn hand_over(branch: &ConnConfig, role: &str) -> Result<()> {
    let (mut client, conn) = branch.connect().await?;
    let tx = client.transaction().await?;
    let (db, r) = (ident(branch.dbname()), ident(role));
    let mut statements = vec![
        format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
        format!("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {db} TO {r}"),
    ];
    for row in tx.query(OWNED_OBJECTS, &[&role]).await? {
        statements.push(row.get(0));
    }
    let fail = |s: &str| format!("{}: cannot give the branch to its role: {s}", branch.endpoint());
    for s in &statements {
        tx.batch_execute(s).await.with_context(|| fail(s))?;
    }
    // A multirange follows its range's owner on some releases only (PostgreSQL 14+).
    for row in tx.query(LEFT_MULTIRANGES, &[&role]).await? {
        let s: String = row.get(0);
        tx.batch_execute(&s).await.with_context(|| fail(&s))?;
    }
    tx.commit().await?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// `ALTER … OWNER TO $1::text` for every object of the database outside the system schemas and
/// extensions, `pg_database_owner`'s too (the database stays the operator's). Indexes, identity
/// and serial sequences follow their tables, multiranges and array types their types.
const OWNED_OBJECTS: &str = r#"
WITH ns AS (
  SELECT oid, nspname, nspowner FROM pg_namespace
   WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
     AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
), ext AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
)
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $1::text) FROM ns n
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_namespace'::regclass AND objid = n.oid)
UNION ALL
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
              CASE c.relkind WHEN 'c' THEN c.reltype::regtype::text ELSE c.oid::regclass::text END, $1::text)
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
   AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_class'::regclass AND objid = c.oid)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE c.relkind = 'S' AND d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, $1::text)
  FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'r')
   AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_type'::regclass AND objid = t.oid)
UNION ALL
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
  FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_proc'::regclass AND objid = p.oid)
UNION ALL
SELECT format('ALTER OPERATOR %s OWNER TO %I', o.oid::regoperator, $1::text)
  FROM pg_operator o JOIN ns n ON n.oid = o.oprnamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_operator'::regclass AND objid = o.oid)
UNION ALL
SELECT format('ALTER COLLATION %I.%I OWNER TO %I', n.nspname, co.collname, $1::text)
  FROM pg_collation co JOIN ns n ON n.oid = co.collnamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_collation'::regclass AND objid = co.oid)
UNION ALL
SELECT format('ALTER CONVERSION %I.%I OWNER TO %I', n.nspname, cv.conname, $1::text)
  FROM pg_conversion cv JOIN ns n ON n.oid = cv.connamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_conversion'::regclass AND objid = cv.oid)
UNION ALL
SELECT format('ALTER STATISTICS %I.%I OWNER TO %I', n.nspname, s.stxname, $1::text)
  FROM pg_statistic_ext s JOIN ns n ON n.oid = s.stxnamespace
UNION ALL
SELECT format('ALTER TEXT SEARCH CONFIGURATION %I.%I OWNER TO %I', n.nspname, ts.cfgname, $1::text)
  FROM pg_ts_config ts JOIN ns n ON n.oid = ts.cfgnamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_ts_config'::regclass AND objid = ts.oid)
UNION ALL
SELECT format('ALTER TEXT SEARCH DICTIONARY %I.%I OWNER TO %I', n.nspname, td.dictname, $1::text)
  FROM pg_ts_dict td JOIN ns n ON n.oid = td.dictnamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_ts_dict'::regclass AND objid = td.oid)
UNION ALL
SELECT format('ALTER LARGE OBJECT %s OWNER TO %I', m.oid, $1::text) FROM pg_largeobject_metadata m
"#;

/// Multirange types still not owned by `$1` after their ranges were handed over.
const LEFT_MULTIRANGES: &str = "
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $1::text)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype = 'm' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $1::text)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')";

/// Refuses when `role` could connect to the source database: from there, whatever PUBLIC may
/// do (create in a schema, call a SECURITY DEFINER function, make a large object) writes to it.
pub async fn check_source(source: &ConnConfig, role: &str) -> Result<()> {
    let (client, conn) = source.connect().await?;
    client.batch_execute("START TRANSACTION READ ONLY").await?;
    let row =
        client.query_one("SELECT has_database_privilege($1::text, current_database(), 'CONNECT')", &[&role]).await?;
    let connect: bool = row.get(0);
    let _ = client.batch_execute("ROLLBACK").await;
    drop(client);
    let _ = conn.await;
    if connect {
        let db = ident(source.dbname());
        bail!(
            "{}: the branch's role could connect to the source database {db} (CONNECT is granted to PUBLIC) and \
             write there through what PUBLIC may do; run REVOKE CONNECT ON DATABASE {db} FROM PUBLIC (granting \
             CONNECT to the roles that need it), or use --snapshot, or --shared-role",
            source.endpoint()
        );
    }
    Ok(())
}

/// Takes LOGIN and the password away from the branch's role, then [`end_sessions`] (before its
/// branch is dropped, so nothing it runs outlives the branch).
pub async fn disable_role(server: &ConnConfig, role: &str) -> Result<()> {
    let (client, conn) = admin(server, "postgres").await?;
    let exists: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)", &[&role]).await?.get(0);
    if exists {
        client
            .batch_execute(&format!("ALTER ROLE {} NOLOGIN PASSWORD NULL", ident(role)))
            .await
            .with_context(|| format!("{}: cannot disable the branch's role \"{role}\"", server.endpoint()))?;
    }
    drop(client);
    let _ = conn.await;
    end_sessions(server, role).await
}

/// Ends what the role runs on the server: its sessions, and its prepared transactions in every
/// database (they outlive sessions and restarts, hold locks on the branch and keep an old xid).
pub async fn end_sessions(server: &ConnConfig, role: &str) -> Result<()> {
    let (client, conn) = admin(server, "postgres").await?;
    client.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1::text", &[&role]).await?;
    let prepared: Vec<(String, String)> = client
        .query("SELECT gid, database::text FROM pg_prepared_xacts WHERE owner = $1::text ORDER BY 2, 1", &[&role])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    drop(client);
    let _ = conn.await;
    for (gid, db) in prepared {
        // ROLLBACK PREPARED runs in the transaction's own database, by a superuser or the role that
        // prepared it (the operator is a member of the branch's role).
        let (other, other_conn) = admin(server, &db).await?;
        // Two messages: in one, ROLLBACK PREPARED would be inside the implicit transaction block.
        other.batch_execute(&format!("SET ROLE {}", ident(role))).await?;
        other.batch_execute(&format!("ROLLBACK PREPARED {}", literal(&gid))).await.with_context(|| {
            format!(
                "{}: cannot roll back the branch role's prepared transaction {gid:?} in {}",
                server.endpoint(),
                ident(&db)
            )
        })?;
        drop(other);
        let _ = other_conn.await;
    }
    Ok(())
}

/// Clears what the agent may have set on its role (per-role and per-database defaults, its
/// password): they would apply to the diff's sessions, which log in as the role.
pub async fn restore_role(server: &ConnConfig, role: &BranchRole) -> Result<()> {
    let (client, conn) = admin(server, "postgres").await?;
    let q = ident(&role.name);
    let mut statements = vec![format!("ALTER ROLE {q} PASSWORD {}", verifier(&role.password))];
    for row in client
        .query(
            "SELECT d.datname FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
              WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1::text)",
            &[&role.name],
        )
        .await?
    {
        statements.push(match row.get::<_, Option<String>>(0) {
            Some(db) => format!("ALTER ROLE {q} IN DATABASE {} RESET ALL", ident(&db)),
            None => format!("ALTER ROLE {q} RESET ALL"),
        });
    }
    for st in &statements {
        client
            .batch_execute(st)
            .await
            .with_context(|| format!("{}: cannot restore the branch's role \"{}\"", server.endpoint(), role.name))?;
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// The operator's session on database `db` of the server, never waiting long for a lock the
/// agent's sessions might hold.
async fn admin(server: &ConnConfig, db: &str) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let (client, conn) = server.with_dbname(SideName::Parent, db).connect().await?;
    client.batch_execute("SET lock_timeout = '30s'").await?;
    Ok((client, conn))
}

/// Drops the branch's role on `server` (after its database), and first what it made in other
/// databases it could reach: `DROP OWNED` there (its objects, large objects, grants to it).
pub async fn drop_role(server: &ConnConfig, role: &str) -> Result<()> {
    let (client, conn) = admin(server, "postgres").await?;
    let elsewhere: Vec<(String, bool)> = client
        .query(
            "SELECT DISTINCT d.datname, d.datallowconn FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
              WHERE s.refclassid = 'pg_authid'::regclass
                AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1::text) ORDER BY 1",
            &[&role],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let fail = || format!("{}: cannot drop the branch's role \"{role}\"", server.endpoint());
    for (db, allowed) in &elsewhere {
        if !allowed {
            bail!("{}: it still owns objects in database {} (which allows no connections)", fail(), ident(db));
        }
        let (other, other_conn) = admin(server, db).await?;
        other
            .batch_execute(&format!("DROP OWNED BY {}", ident(role)))
            .await
            .with_context(|| format!("{}: DROP OWNED in database {}", fail(), ident(db)))?;
        drop(other);
        let _ = other_conn.await;
    }
    client.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(role))).await.with_context(fail)?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// `password` as a SCRAM verifier in an SQL literal (the server stores it as given, so the
/// password itself never reaches the server or its log).
pub fn verifier(password: &str) -> String {
    literal(&postgres_protocol::password::scram_sha_256(password.as_bytes()))
}

/// A string as an SQL literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
