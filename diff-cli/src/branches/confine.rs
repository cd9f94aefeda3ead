//! A login role of the branch's own, for an agent. A branch copied on the
//! source's server (TEMPLATE), or in a local cluster (a snapshot), would
//! otherwise be reached with the operator's role, which can reach the source
//! too: `DROP DATABASE`, `ALTER SYSTEM` or `COPY … TO PROGRAM` for a
//! superuser, writes to the source for its owner. So every object of the
//! branch is handed to a new role (`NOSUPERUSER NOCREATEDB NOCREATEROLE
//! NOREPLICATION NOBYPASSRLS`, a random password stored as a SCRAM verifier),
//! and the agent's URL and `run_sql` use that role. The diff reads with the
//! operator's role and does not count the hand-over as a change
//! ([`diff_core::schema::stand_in`]).
//!
//! What the role could still write outside its branch comes from grants to
//! PUBLIC: before a branch is handed out, the source is checked for them
//! (CONNECT with CREATE on a schema, or INSERT/UPDATE/DELETE/TRUNCATE on a
//! table, or USAGE/UPDATE on a sequence), and a branch whose role could write
//! the source is refused, naming the grant.

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
    let verifier = postgres_protocol::password::scram_sha_256(role.password.as_bytes());
    let q = ident(&role.name);
    client
        .batch_execute(&format!(
            "CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}",
            literal(&verifier)
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

/// Gives the branch database and every object in it to `role` (again, after a reset).
pub async fn hand_over(branch: &ConnConfig, role: &str) -> Result<()> {
    let (mut client, conn) = branch.connect().await?;
    let tx = client.transaction().await?;
    let mut statements = vec![format!("ALTER DATABASE {} OWNER TO {}", ident(branch.dbname()), ident(role))];
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
/// extensions. Indexes, identity and serial sequences follow their tables, multiranges and
/// array types their types; objects owned by `pg_database_owner` follow the database.
const OWNED_OBJECTS: &str = r#"
WITH ns AS (
  SELECT oid, nspname, nspowner FROM pg_namespace
   WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
     AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
), ext AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
)
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $1::text) FROM ns n
 WHERE pg_get_userbyid(n.nspowner) <> 'pg_database_owner'
   AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_namespace'::regclass AND objid = n.oid)
UNION ALL
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
              CASE c.relkind WHEN 'c' THEN c.reltype::regtype::text ELSE c.oid::regclass::text END, $1::text)
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
   AND pg_get_userbyid(c.relowner) <> 'pg_database_owner'
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

/// Refuses when `role` could write to the source database (grants to PUBLIC, or to the role).
pub async fn check_source(source: &ConnConfig, role: &str) -> Result<()> {
    let (client, conn) = source.connect().await?;
    client.batch_execute("START TRANSACTION READ ONLY").await?;
    let row = client.query_one(EXPOSURE, &[&role]).await?;
    let (connect, writable): (bool, Vec<String>) = (row.get(0), row.get(1));
    let _ = client.batch_execute("ROLLBACK").await;
    drop(client);
    let _ = conn.await;
    if connect && !writable.is_empty() {
        let more = if writable.len() > 3 { format!(" and {} more", writable.len() - 3) } else { String::new() };
        let shown: Vec<&str> = writable.iter().take(3).map(String::as_str).collect();
        bail!(
            "{}: the branch's role could write to the source through grants to PUBLIC ({}{more}); revoke them \
             (e.g. REVOKE CREATE ON SCHEMA public FROM PUBLIC, as PostgreSQL 15 does) or REVOKE CONNECT ON DATABASE {} \
             FROM PUBLIC, or use --snapshot",
            source.endpoint(),
            shown.join(", "),
            ident(source.dbname())
        );
    }
    Ok(())
}

/// Whether role `$1::text` may connect to the current database, and what it could write there.
const EXPOSURE: &str = r#"
SELECT has_database_privilege($1::text, current_database(), 'CONNECT'),
       ARRAY(
         SELECT 'CREATE on schema ' || quote_ident(n.nspname) FROM pg_namespace n
          WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
            AND has_schema_privilege($1::text, n.oid, 'CREATE')
         UNION ALL
         SELECT * FROM (
           SELECT 'writes to ' || c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
              AND ((c.relkind IN ('r', 'p', 'v', 'f') AND (has_table_privilege($1::text, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                                                           OR has_any_column_privilege($1::text, c.oid, 'INSERT, UPDATE')))
                   OR (c.relkind = 'S' AND has_sequence_privilege($1::text, c.oid, 'USAGE, UPDATE')))
            ORDER BY 1) t)
"#;

/// Drops the branch's role on `server` (after its database: it owns nothing else).
pub async fn drop_role(server: &ConnConfig, role: &str) -> Result<()> {
    let (client, conn) = server.with_dbname(SideName::Parent, "postgres").connect().await?;
    client
        .batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(role)))
        .await
        .with_context(|| format!("{}: cannot drop the branch's role \"{role}\"", server.endpoint()))?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// A string as an SQL literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
