//! The object kinds beyond tables, views, routines and types: rules, extended
//! statistics, foreign tables and servers, publications, event triggers,
//! default privileges, operators and their classes and families, collations,
//! text search objects, conversions, casts, aggregates, range types, access
//! methods, languages, subscriptions and the database's own settings.
//!
//! Every query here returns rows of one shape — kind, OID, schema, the table
//! the name lives under, own name, the table it belongs to (for filters),
//! attributes as a `text[]` of key/value pairs, dependencies — so one function
//! turns them all into [`Object`]s. The queries are grouped in three
//! `UNION ALL`s, sent at once on the side's first connection with the others
//! (pipelined), and use catalog columns present in PostgreSQL 13–18 (newer
//! ones are guarded by the server version).

use tokio_postgres::{Client, Row};

use super::read::{not_ext, obj, put, ObjKind, Object};
use crate::catalog::SYSTEM_SCHEMA_FILTER as F;

/// A `regproc`-like column as `schema.f(args)`, or NULL when unset (OID 0).
fn proc(col: &str) -> String {
    format!("NULLIF({col}::oid, 0)::regprocedure::text")
}

fn owner(col: &str) -> String {
    format!("pg_get_userbyid({col})::text")
}

fn comment(oid: &str, catalog: &str) -> String {
    format!("obj_description({oid}, '{catalog}')")
}

/// Rules, extended statistics and foreign tables: objects of one table.
fn q_table_scoped() -> String {
    // -1 (PostgreSQL 13–16) and NULL (17+) both mean the default.
    let stat_target = "NULLIF(s.stxstattarget::int, -1)::text";
    format!(
        "SELECT 'rule', r.oid, n.nspname::text, c.relname::text, r.rulename::text, n.nspname::text, c.relname::text,
                ARRAY['definition', pg_get_ruledef(r.oid),
                      'enabled', CASE r.ev_enabled WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' ELSE 'always' END,
                      'comment', {rule_comment}],
                ARRAY[n.nspname || '.' || c.relname]
         FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE r.rulename <> '_RETURN' AND {F} AND {c_not_ext}
         UNION ALL
         SELECT 'statistics', s.oid, n.nspname::text, NULL, s.stxname::text, tn.nspname::text, tc.relname::text,
                ARRAY['definition', pg_get_statisticsobjdef(s.oid), 'statistics', {stat_target},
                      'owner', {stx_owner}, 'comment', {stx_comment}],
                ARRAY[n.nspname::text, tn.nspname || '.' || tc.relname]
         FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
              JOIN pg_class tc ON tc.oid = s.stxrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
         WHERE {F} AND {s_not_ext}
         UNION ALL
         SELECT 'foreign_table', c.oid, n.nspname::text, NULL, c.relname::text, n.nspname::text, c.relname::text,
                ARRAY['server', srv.srvname::text, 'options', array_to_string(ft.ftoptions, ','),
                      'columns', (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                      || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                                      || COALESCE(' OPTIONS (' || array_to_string(a.attfdwoptions, ',') || ')', '')
                                      || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
                                  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                      'owner', {rel_owner}, 'privileges', NULLIF(c.relacl, acldefault('r', c.relowner))::text,
                      'comment', {rel_comment}],
                ARRAY[n.nspname::text, srv.srvname::text]
         FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_foreign_server srv ON srv.oid = ft.ftserver
         WHERE {F} AND {c_not_ext}",
        rule_comment = comment("r.oid", "pg_rewrite"),
        c_not_ext = not_ext("c.oid"),
        s_not_ext = not_ext("s.oid"),
        stx_owner = owner("s.stxowner"),
        stx_comment = comment("s.oid", "pg_statistic_ext"),
        rel_owner = owner("c.relowner"),
        rel_comment = comment("c.oid", "pg_class"),
    )
}

/// Objects in a schema: collations, conversions, operators, operator classes
/// and families, text search objects, aggregates, range types.
fn q_schema_scoped(version: i32) -> String {
    let icu_locale = match version {
        v if v >= 170000 => "co.colllocale",
        v if v >= 150000 => "co.colliculocale",
        _ => "NULL::text",
    };
    let multirange = if version >= 140000 { "format_type(rg.rngmultitypid, NULL)" } else { "NULL::text" };
    let one = |kind: &str, alias: &str, oid: &str, nsp: &str, name: &str, from: &str, attrs: &str| {
        format!(
            "SELECT '{kind}', {oid}, n.nspname::text, NULL, ({name})::text, NULL, NULL, ARRAY[{attrs}], ARRAY[n.nspname::text]
             FROM {from} JOIN pg_namespace n ON n.oid = {alias}.{nsp} WHERE {F} AND {}",
            not_ext(oid)
        )
    };
    [
        one(
            "collation",
            "co",
            "co.oid",
            "collnamespace",
            "co.collname",
            "pg_collation co",
            &format!(
                "'provider', CASE co.collprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'default' END,
                 'collate', co.collcollate::text, 'ctype', co.collctype::text, 'locale', {icu_locale}::text,
                 'deterministic', co.collisdeterministic::text, 'encoding', NULLIF(pg_encoding_to_char(co.collencoding)::text, ''),
                 'owner', {}, 'comment', {}",
                owner("co.collowner"),
                comment("co.oid", "pg_collation")
            ),
        ),
        one(
            "conversion",
            "cv",
            "cv.oid",
            "connamespace",
            "cv.conname",
            "pg_conversion cv",
            &format!(
                "'from', pg_encoding_to_char(cv.conforencoding)::text, 'to', pg_encoding_to_char(cv.contoencoding)::text,
                 'function', {}, 'default', cv.condefault::text, 'owner', {}, 'comment', {}",
                proc("cv.conproc"),
                owner("cv.conowner"),
                comment("cv.oid", "pg_conversion")
            ),
        ),
        one(
            "operator",
            "o",
            "o.oid",
            "oprnamespace",
            "o.oprname || '(' || CASE WHEN o.oprleft = 0 THEN 'NONE' ELSE format_type(o.oprleft, NULL) END || ', '
                || CASE WHEN o.oprright = 0 THEN 'NONE' ELSE format_type(o.oprright, NULL) END || ')'",
            "pg_operator o",
            &format!(
                "'function', {}, 'result', format_type(o.oprresult, NULL), 'commutator', NULLIF(o.oprcom, 0)::regoperator::text,
                 'negator', NULLIF(o.oprnegate, 0)::regoperator::text, 'restrict', {}, 'join', {},
                 'hashes', o.oprcanhash::text, 'merges', o.oprcanmerge::text, 'owner', {}, 'comment', {}",
                proc("o.oprcode"),
                proc("o.oprrest"),
                proc("o.oprjoin"),
                owner("o.oprowner"),
                comment("o.oid", "pg_operator")
            ),
        ),
        one(
            "operator_family",
            "f",
            "f.oid",
            "opfnamespace",
            "f.opfname || ' USING ' || (SELECT am.amname FROM pg_am am WHERE am.oid = f.opfmethod)",
            "pg_opfamily f",
            &format!(
                "'operators', (SELECT string_agg(ao.amopstrategy || ' ' || ao.amopopr::regoperator::text
                                   || CASE WHEN ao.amoppurpose = 'o' THEN ' FOR ORDER BY ' || (SELECT sf.opfname FROM pg_opfamily sf WHERE sf.oid = ao.amopsortfamily) ELSE '' END,
                                   ', ' ORDER BY ao.amopstrategy, ao.amoplefttype, ao.amoprighttype)
                               FROM pg_amop ao WHERE ao.amopfamily = f.oid),
                 'functions', (SELECT string_agg(ap.amprocnum || ' (' || format_type(ap.amproclefttype, NULL) || ', '
                                   || format_type(ap.amprocrighttype, NULL) || ') ' || ap.amproc::oid::regprocedure::text,
                                   ', ' ORDER BY ap.amprocnum, ap.amproclefttype, ap.amprocrighttype)
                               FROM pg_amproc ap WHERE ap.amprocfamily = f.oid),
                 'owner', {}, 'comment', {}",
                owner("f.opfowner"),
                comment("f.oid", "pg_opfamily")
            ),
        ),
        one(
            "operator_class",
            "oc",
            "oc.oid",
            "opcnamespace",
            "oc.opcname || ' USING ' || (SELECT am.amname FROM pg_am am WHERE am.oid = oc.opcmethod)",
            "pg_opclass oc",
            &format!(
                "'type', format_type(oc.opcintype, NULL),
                 'family', (SELECT fn.nspname || '.' || f.opfname FROM pg_opfamily f JOIN pg_namespace fn ON fn.oid = f.opfnamespace
                             WHERE f.oid = oc.opcfamily),
                 'default', oc.opcdefault::text, 'storage', CASE WHEN oc.opckeytype <> 0 THEN format_type(oc.opckeytype, NULL) END,
                 'owner', {}, 'comment', {}",
                owner("oc.opcowner"),
                comment("oc.oid", "pg_opclass")
            ),
        ),
        one(
            "text_search_configuration",
            "cf",
            "cf.oid",
            "cfgnamespace",
            "cf.cfgname",
            "pg_ts_config cf",
            &format!(
                "'parser', (SELECT pn.nspname || '.' || p.prsname FROM pg_ts_parser p JOIN pg_namespace pn ON pn.oid = p.prsnamespace
                             WHERE p.oid = cf.cfgparser),
                 'mappings', (SELECT string_agg(tt.alias || ': ' || m.dicts, ', ' ORDER BY m.maptokentype)
                              FROM (SELECT maptokentype, string_agg(mapdict::regdictionary::text, ' ' ORDER BY mapseqno) AS dicts
                                    FROM pg_ts_config_map WHERE mapcfg = cf.oid GROUP BY maptokentype) m
                              JOIN ts_token_type(cf.cfgparser) tt ON tt.tokid = m.maptokentype),
                 'owner', {}, 'comment', {}",
                owner("cf.cfgowner"),
                comment("cf.oid", "pg_ts_config")
            ),
        ),
        one(
            "text_search_dictionary",
            "dc",
            "dc.oid",
            "dictnamespace",
            "dc.dictname",
            "pg_ts_dict dc",
            &format!(
                "'template', (SELECT tn.nspname || '.' || t.tmplname FROM pg_ts_template t JOIN pg_namespace tn ON tn.oid = t.tmplnamespace
                               WHERE t.oid = dc.dicttemplate),
                 'options', dc.dictinitoption, 'owner', {}, 'comment', {}",
                owner("dc.dictowner"),
                comment("dc.oid", "pg_ts_dict")
            ),
        ),
        one(
            "text_search_parser",
            "ps",
            "ps.oid",
            "prsnamespace",
            "ps.prsname",
            "pg_ts_parser ps",
            &format!(
                "'start', {}, 'gettoken', {}, 'end', {}, 'lextypes', {}, 'headline', {}, 'comment', {}",
                proc("ps.prsstart"),
                proc("ps.prstoken"),
                proc("ps.prsend"),
                proc("ps.prslextype"),
                proc("ps.prsheadline"),
                comment("ps.oid", "pg_ts_parser")
            ),
        ),
        one(
            "text_search_template",
            "tp",
            "tp.oid",
            "tmplnamespace",
            "tp.tmplname",
            "pg_ts_template tp",
            &format!(
                "'init', {}, 'lexize', {}, 'comment', {}",
                proc("tp.tmplinit"),
                proc("tp.tmpllexize"),
                comment("tp.oid", "pg_ts_template")
            ),
        ),
        one(
            "aggregate",
            "p",
            "p.oid",
            "pronamespace",
            "p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'",
            "pg_proc p JOIN pg_aggregate ag ON ag.aggfnoid = p.oid",
            &format!(
                "'transition', {}, 'state_type', format_type(ag.aggtranstype, NULL), 'final', {}, 'combine', {},
                 'initial', ag.agginitval, 'kind', CASE ag.aggkind WHEN 'n' THEN 'normal' WHEN 'o' THEN 'ordered-set' ELSE 'hypothetical' END,
                 'sort_operator', NULLIF(ag.aggsortop, 0)::regoperator::text, 'parallel', p.proparallel::text,
                 'owner', {}, 'privileges', NULLIF(p.proacl, acldefault('f', p.proowner))::text, 'comment', {}",
                proc("ag.aggtransfn"),
                proc("ag.aggfinalfn"),
                proc("ag.aggcombinefn"),
                owner("p.proowner"),
                comment("p.oid", "pg_proc")
            ),
        ),
        one(
            "range_type",
            "t",
            "t.oid",
            "typnamespace",
            "t.typname",
            "pg_type t JOIN pg_range rg ON rg.rngtypid = t.oid",
            &format!(
                "'subtype', format_type(rg.rngsubtype, NULL),
                 'collation', (SELECT co.collname::text FROM pg_collation co WHERE co.oid = rg.rngcollation),
                 'subtype_opclass', (SELECT oc.opcname::text FROM pg_opclass oc WHERE oc.oid = rg.rngsubopc),
                 'canonical', {}, 'subtype_diff', {}, 'multirange', {multirange},
                 'owner', {}, 'privileges', NULLIF(t.typacl, acldefault('T', t.typowner))::text, 'comment', {}",
                proc("rg.rngcanonical"),
                proc("rg.rngsubdiff"),
                owner("t.typowner"),
                comment("t.oid", "pg_type")
            ),
        ),
    ]
    .join("\nUNION ALL\n")
}

/// Objects outside schemas: publications, subscriptions, event triggers,
/// default privileges, foreign data wrappers, servers and user mappings,
/// casts, access methods, languages, and the database's settings.
fn q_global(version: i32) -> String {
    let (pub_columns, pub_schemas) = if version >= 150000 {
        (
            "|| COALESCE(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                                  WHERE a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs::int2[])) || ')', '')
             || COALESCE(' WHERE (' || pg_get_expr(pr.prqual, pr.prrelid) || ')', '')",
            "(SELECT string_agg(quote_ident(ns.nspname), ', ' ORDER BY ns.nspname) FROM pg_publication_namespace pn
               JOIN pg_namespace ns ON ns.oid = pn.pnnspid WHERE pn.pnpubid = p.oid)",
        )
    } else {
        ("", "NULL::text")
    };
    // Only the columns granted to everyone: pg_subscription.oid is among them from PostgreSQL 15
    // on (checked on 15 and 18); before, a subscription pairs by name and its comment is not read.
    let (sub_oid, sub_comment) = if version >= 150000 {
        ("s.oid", "shobj_description(s.oid, 'pg_subscription')")
    } else {
        ("NULL::oid", "NULL::text")
    };
    let pub_gencols = if version >= 180000 { "p.pubgencols::text" } else { "NULL::text" };
    let global = |kind: &str, oid: &str, name: &str, from: &str, attrs: &str, deps: &str| {
        format!("SELECT '{kind}', {oid}, NULL, NULL, ({name})::text, NULL, NULL, ARRAY[{attrs}], ARRAY[{deps}]::text[] FROM {from}")
    };
    let enabled = |col: &str| {
        format!("CASE {col} WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' ELSE 'always' END")
    };
    let this_db = "(SELECT oid FROM pg_database WHERE datname = current_database())";
    [
        global(
            "publication",
            "p.oid",
            "p.pubname",
            "pg_publication p",
            &format!(
                "'all_tables', p.puballtables::text,
                 'operations', concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                                         CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END),
                 'via_root', p.pubviaroot::text, 'generated_columns', {pub_gencols},
                 'tables', (SELECT string_agg(t, ', ' ORDER BY t) FROM (SELECT pr.prrelid::regclass::text {pub_columns} AS t
                            FROM pg_publication_rel pr WHERE pr.prpubid = p.oid) pt),
                 'schemas', {pub_schemas}, 'owner', {}, 'comment', {}",
                owner("p.pubowner"),
                comment("p.oid", "pg_publication")
            ),
            "",
        ),
        global(
            "subscription",
            sub_oid,
            "s.subname",
            &format!("pg_subscription s WHERE s.subdbid = {this_db}"),
            &format!(
                "'enabled', s.subenabled::text, 'publications', array_to_string(s.subpublications, ', '),
                 'owner', {}, 'comment', {sub_comment}",
                owner("s.subowner")
            ),
            "",
        ),
        global(
            "event_trigger",
            "et.oid",
            "et.evtname",
            &format!("pg_event_trigger et WHERE {}", not_ext("et.oid")),
            &format!(
                "'event', et.evtevent::text, 'function', {}, 'tags', array_to_string(et.evttags, ', '), 'enabled', {},
                 'owner', {}, 'comment', {}",
                proc("et.evtfoid"),
                enabled("et.evtenabled"),
                owner("et.evtowner"),
                comment("et.oid", "pg_event_trigger")
            ),
            "",
        ),
        global(
            "default_privileges",
            "d.oid",
            "'for ' || pg_get_userbyid(d.defaclrole) || COALESCE(' in ' || n.nspname, '') || ' on '
                || CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                   WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' ELSE 'large objects' END",
            "pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace",
            "'privileges', d.defaclacl::text",
            "n.nspname",
        ),
        global(
            "foreign_data_wrapper",
            "w.oid",
            "w.fdwname",
            &format!("pg_foreign_data_wrapper w WHERE {}", not_ext("w.oid")),
            &format!(
                "'handler', {}, 'validator', {}, 'options', array_to_string(w.fdwoptions, ','), 'owner', {},
                 'privileges', NULLIF(w.fdwacl, acldefault('F', w.fdwowner))::text, 'comment', {}",
                proc("w.fdwhandler"),
                proc("w.fdwvalidator"),
                owner("w.fdwowner"),
                comment("w.oid", "pg_foreign_data_wrapper")
            ),
            "",
        ),
        global(
            "foreign_server",
            "s.oid",
            "s.srvname",
            &format!(
                "pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw WHERE {}",
                not_ext("s.oid")
            ),
            &format!(
                "'wrapper', w.fdwname::text, 'type', s.srvtype, 'version', s.srvversion,
                 'options', array_to_string(s.srvoptions, ','), 'owner', {},
                 'privileges', NULLIF(s.srvacl, acldefault('S', s.srvowner))::text, 'comment', {}",
                owner("s.srvowner"),
                comment("s.oid", "pg_foreign_server")
            ),
            "w.fdwname",
        ),
        // Password options are not shown (nor compared): a report is no place for them.
        global(
            "user_mapping",
            "u.umid",
            "u.usename || ' on ' || u.srvname",
            "pg_user_mappings u",
            "'options', (SELECT string_agg(CASE WHEN o LIKE 'password=%' THEN 'password=(hidden)' ELSE o END, ',' ORDER BY o)
                          FROM unnest(u.umoptions) o)",
            "u.srvname",
        ),
        global(
            "cast",
            "c.oid",
            "'(' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')'",
            &format!("pg_cast c WHERE c.oid >= 16384 AND {}", not_ext("c.oid")),
            &format!(
                "'function', {}, 'context', CASE c.castcontext WHEN 'e' THEN 'explicit' WHEN 'a' THEN 'assignment' ELSE 'implicit' END,
                 'method', CASE c.castmethod WHEN 'f' THEN 'function' WHEN 'b' THEN 'binary' ELSE 'inout' END, 'comment', {}",
                proc("c.castfunc"),
                comment("c.oid", "pg_cast")
            ),
            "",
        ),
        global(
            "access_method",
            "a.oid",
            "a.amname",
            &format!("pg_am a WHERE a.oid >= 16384 AND {}", not_ext("a.oid")),
            &format!(
                "'type', CASE a.amtype WHEN 't' THEN 'table' ELSE 'index' END, 'handler', {}, 'comment', {}",
                proc("a.amhandler"),
                comment("a.oid", "pg_am")
            ),
            "",
        ),
        global(
            "language",
            "l.oid",
            "l.lanname",
            &format!("pg_language l WHERE l.oid >= 16384 AND {}", not_ext("l.oid")),
            &format!(
                "'trusted', l.lanpltrusted::text, 'handler', {}, 'inline', {}, 'validator', {}, 'owner', {},
                 'privileges', NULLIF(l.lanacl, acldefault('l', l.lanowner))::text, 'comment', {}",
                proc("l.lanplcallfoid"),
                proc("l.laninline"),
                proc("l.lanvalidator"),
                owner("l.lanowner"),
                comment("l.oid", "pg_language")
            ),
            "",
        ),
        // One object on every side: settings of this database (ALTER DATABASE … SET) and of
        // roles in it (ALTER ROLE … IN DATABASE … SET).
        global(
            "database",
            "NULL::oid",
            "'database'",
            "pg_database d WHERE d.datname = current_database()",
            "'settings', (SELECT array_to_string(s.setconfig, ', ') FROM pg_db_role_setting s
                          WHERE s.setdatabase = d.oid AND s.setrole = 0),
             'role_settings', (SELECT string_agg(pg_get_userbyid(s.setrole) || ': ' || array_to_string(s.setconfig, ', '), '; '
                                                 ORDER BY pg_get_userbyid(s.setrole))
                               FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole <> 0)",
            "",
        ),
    ]
    .join("\nUNION ALL\n")
}

/// Runs the three queries at once on `c` (inside the side's snapshot).
pub(crate) async fn query(c: &Client, version: i32) -> Result<Vec<Row>, tokio_postgres::Error> {
    let (a, b, g) = (q_table_scoped(), q_schema_scoped(version), q_global(version));
    let (a, b, g) = tokio::try_join!(c.query(&a, &[]), c.query(&b, &[]), c.query(&g, &[]))?;
    Ok(a.into_iter().chain(b).chain(g).collect())
}

fn kind_of(label: &str) -> Option<ObjKind> {
    ObjKind::ALL.iter().copied().find(|k| k.label() == label)
}

/// Turns the rows of [`query`] into objects.
pub(crate) fn objects(rows: &[Row]) -> Vec<Object> {
    let mut out = vec![];
    for r in rows {
        let Some(kind) = kind_of(r.get::<_, &str>(0)) else { continue };
        let oid: Option<u32> = r.get(1);
        let (schema, under, name): (Option<String>, Option<String>, String) = (r.get(2), r.get(3), r.get(4));
        let mut o = match (&schema, &under) {
            (Some(s), Some(t)) => obj(kind, s, &[t, &name], oid.map(|o| (o, 0))),
            (Some(s), None) => obj(kind, s, &[&name], oid.map(|o| (o, 0))),
            _ => obj(kind, &name, &[], oid.map(|o| (o, 0))),
        };
        if let (Some(s), Some(t)) = (r.get::<_, Option<String>>(5), r.get::<_, Option<String>>(6)) {
            o.table = Some((s, t));
        }
        let attrs: Vec<Option<String>> = r.get(7);
        for pair in attrs.chunks(2) {
            if let [Some(k), v] = pair {
                put(&mut o, k, v.clone());
            }
        }
        let deps: Vec<Option<String>> = r.get(8);
        o.depends_on.extend(deps.into_iter().flatten());
        out.push(o);
    }
    out
}
