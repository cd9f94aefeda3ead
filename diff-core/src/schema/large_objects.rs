//! Large objects (`lo_create`, `lo_put`, `lo_unlink`): one object per OID with
//! its owner, size, content hash, privileges and comment. The content is
//! hashed inside PostgreSQL (`sha256(lo_get(oid))`, read-only; the `content` attribute is its size and hash), so only 32
//! bytes per object cross the network; objects this role may not read keep
//! their size and hash unknown (and unjudged). Large objects keep their OIDs
//! through `pg_dump` and restore, so they pair by OID on any lineage, and carry
//! no catalog identity (they prove no common copy).

use super::read::{ObjKind, Object};
use crate::error::Result;
use crate::snapshot::Side;

/// Reads every large object of one side.
pub(crate) async fn read(side: &Side) -> Result<Vec<Object>> {
    // Readable: superuser, a member of the owner, or granted SELECT (as lo_get checks).
    let sql = "SELECT m.oid::text, pg_get_userbyid(m.lomowner)::text, m.lomacl::text,
                      obj_description(m.oid, 'pg_largeobject'), r.readable,
                      CASE WHEN r.readable THEN octet_length(lo_get(m.oid)) END,
                      CASE WHEN r.readable THEN encode(sha256(lo_get(m.oid)), 'hex') END
               FROM pg_largeobject_metadata m,
                    LATERAL (SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                                    OR pg_has_role(m.lomowner, 'USAGE')
                                    OR EXISTS (SELECT 1 FROM aclexplode(m.lomacl) a
                                                WHERE a.privilege_type = 'SELECT'
                                                  AND (a.grantee = 0 OR pg_has_role(a.grantee, 'USAGE'))) AS readable) r
               ORDER BY m.oid";
    let rows = side.client(0).query(sql, &[]).await.map_err(|e| side.query_error("reading large objects", &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let oid: String = r.get(0);
            let mut o = Object {
                kind: ObjKind::LargeObject,
                name: oid.clone(),
                leaf: oid,
                parent: None,
                table: None,
                identity: None,
                attrs: Default::default(),
                depends_on: vec![],
                server_version: side.server_version,
            };
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    o.attrs.insert(k.to_string(), v);
                }
            };
            put("owner", r.get(1));
            put("privileges", r.get(2));
            put("comment", r.get(3));
            let (size, hash): (Option<i32>, Option<String>) = (r.get(5), r.get(6));
            put("content", size.zip(hash).map(|(s, h)| format!("{s} bytes, sha256 {h}")));
            o
        })
        .collect())
}
