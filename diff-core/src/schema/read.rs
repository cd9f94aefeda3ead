//! Reads every catalog object the schema diff covers into one generic shape.
//! Queries are valid on PostgreSQL 13–18; newer catalog columns are guarded by
//! the server version. `search_path` is empty in our sessions, so every name
//! printed by `format_type`, `pg_get_*def` and `regclass` is schema-qualified
//! the same way on both sides. Privileges equal to the owner's defaults read as
//! none (NULL), however they are stored, as a restore stores them.

use crate::plan::quote_ident;
use std::collections::BTreeMap;

use crate::catalog::SYSTEM_SCHEMA_FILTER;
use crate::error::Result;
use crate::snapshot::Side;

/// Object kinds, in the order dangerous changes are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjKind {
    /// Schema.
    Schema,
    /// Table (regular, partitioned, unlogged, partition).
    Table,
    /// Table column.
    Column,
    /// Constraint (primary key, unique, foreign key, check, exclusion).
    Constraint,
    /// Index not backing a constraint.
    Index,
    /// View.
    View,
    /// Materialized view.
    MaterializedView,
    /// Sequence.
    Sequence,
    /// Function (by signature).
    Function,
    /// Procedure (by signature).
    Procedure,
    /// Trigger.
    Trigger,
    /// Enum type.
    Enum,
    /// Domain.
    Domain,
    /// Composite type.
    CompositeType,
    /// Extension.
    Extension,
    /// Row-level security policy.
    Policy,
    /// Rewrite rule of a table (`CREATE RULE`).
    Rule,
    /// Extended statistics object (`CREATE STATISTICS`).
    Statistics,
    /// Foreign table: its server, options and columns.
    ForeignTable,
    /// Foreign data wrapper.
    ForeignDataWrapper,
    /// Foreign server: its wrapper and options.
    ForeignServer,
    /// User mapping for a foreign server (password options hidden).
    UserMapping,
    /// Publication: its tables, schemas and operations.
    Publication,
    /// Subscription of this database.
    Subscription,
    /// Event trigger, with its enabled state.
    EventTrigger,
    /// Default privileges (`ALTER DEFAULT PRIVILEGES`).
    DefaultPrivileges,
    /// Cast between two types.
    Cast,
    /// Operator (by its argument types).
    Operator,
    /// Operator class (by its access method).
    OperatorClass,
    /// Operator family (by its access method), with its members.
    OperatorFamily,
    /// Collation.
    Collation,
    /// Text search configuration, with its mappings.
    TextSearchConfiguration,
    /// Text search dictionary.
    TextSearchDictionary,
    /// Text search parser.
    TextSearchParser,
    /// Text search template.
    TextSearchTemplate,
    /// Encoding conversion.
    Conversion,
    /// Aggregate function (by signature).
    Aggregate,
    /// Range type.
    RangeType,
    /// Access method (`CREATE ACCESS METHOD`).
    AccessMethod,
    /// Procedural language.
    Language,
    /// The database itself: its settings and those of roles in it.
    Database,
    /// Large object (by OID).
    LargeObject,
}

impl ObjKind {
    /// The name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            ObjKind::Schema => "schema",
            ObjKind::Table => "table",
            ObjKind::Column => "column",
            ObjKind::Constraint => "constraint",
            ObjKind::Index => "index",
            ObjKind::View => "view",
            ObjKind::MaterializedView => "materialized_view",
            ObjKind::Sequence => "sequence",
            ObjKind::Function => "function",
            ObjKind::Procedure => "procedure",
            ObjKind::Trigger => "trigger",
            ObjKind::Enum => "enum",
            ObjKind::Domain => "domain",
            ObjKind::CompositeType => "composite_type",
            ObjKind::Extension => "extension",
            ObjKind::Policy => "policy",
            ObjKind::Rule => "rule",
            ObjKind::Statistics => "statistics",
            ObjKind::ForeignTable => "foreign_table",
            ObjKind::ForeignDataWrapper => "foreign_data_wrapper",
            ObjKind::ForeignServer => "foreign_server",
            ObjKind::UserMapping => "user_mapping",
            ObjKind::Publication => "publication",
            ObjKind::Subscription => "subscription",
            ObjKind::EventTrigger => "event_trigger",
            ObjKind::DefaultPrivileges => "default_privileges",
            ObjKind::Cast => "cast",
            ObjKind::Operator => "operator",
            ObjKind::OperatorClass => "operator_class",
            ObjKind::OperatorFamily => "operator_family",
            ObjKind::Collation => "collation",
            ObjKind::TextSearchConfiguration => "text_search_configuration",
            ObjKind::TextSearchDictionary => "text_search_dictionary",
            ObjKind::TextSearchParser => "text_search_parser",
            ObjKind::TextSearchTemplate => "text_search_template",
            ObjKind::Conversion => "conversion",
            ObjKind::Aggregate => "aggregate",
            ObjKind::RangeType => "range_type",
            ObjKind::AccessMethod => "access_method",
            ObjKind::Language => "language",
            ObjKind::Database => "database",
            ObjKind::LargeObject => "large_object",
        }
    }

    /// All kinds.
    pub const ALL: [ObjKind; 42] = [
        ObjKind::Schema,
        ObjKind::Table,
        ObjKind::Column,
        ObjKind::Constraint,
        ObjKind::Index,
        ObjKind::View,
        ObjKind::MaterializedView,
        ObjKind::Sequence,
        ObjKind::Function,
        ObjKind::Procedure,
        ObjKind::Trigger,
        ObjKind::Enum,
        ObjKind::Domain,
        ObjKind::CompositeType,
        ObjKind::Extension,
        ObjKind::Policy,
        ObjKind::Rule,
        ObjKind::Statistics,
        ObjKind::ForeignTable,
        ObjKind::ForeignDataWrapper,
        ObjKind::ForeignServer,
        ObjKind::UserMapping,
        ObjKind::Publication,
        ObjKind::Subscription,
        ObjKind::EventTrigger,
        ObjKind::DefaultPrivileges,
        ObjKind::Cast,
        ObjKind::Operator,
        ObjKind::OperatorClass,
        ObjKind::OperatorFamily,
        ObjKind::Collation,
        ObjKind::TextSearchConfiguration,
        ObjKind::TextSearchDictionary,
        ObjKind::TextSearchParser,
        ObjKind::TextSearchTemplate,
        ObjKind::Conversion,
        ObjKind::Aggregate,
        ObjKind::RangeType,
        ObjKind::AccessMethod,
        ObjKind::Language,
        ObjKind::Database,
        ObjKind::LargeObject,
    ];
}

/// One catalog object of one side.
#[derive(Debug, Clone)]
pub struct Object {
    /// Kind.
    pub kind: ObjKind,
    /// Qualified name: `schema.table.column`, `schema.f(integer, text)`, …
    pub name: String,
    /// Its own name (last component; a function's name with its arguments).
    pub leaf: String,
    /// The object it belongs to (`schema.table` for a column), if any.
    pub parent: Option<String>,
    /// `(schema, table)` for table-scoped objects, so table filters apply.
    pub table: Option<(String, String)>,
    /// Catalog identity (OID, and attnum for columns): kept by a TEMPLATE copy.
    pub identity: Option<(u32, i16)>,
    /// Attributes compared between sides.
    pub attrs: BTreeMap<String, String>,
    /// Names of objects (same side) this one depends on.
    pub depends_on: Vec<String>,
    /// `server_version_num` of the server it was read from: what a definition
    /// means can be printed differently by another major version.
    pub server_version: i32,
}

pub(crate) fn obj(kind: ObjKind, schema: &str, rest: &[&str], identity: Option<(u32, i16)>) -> Object {
    let mut name = schema.to_string();
    for r in rest {
        name.push('.');
        name.push_str(r);
    }
    let leaf = rest.last().copied().unwrap_or(schema).to_string();
    let parent = (!rest.is_empty()).then(|| {
        let mut p = schema.to_string();
        for r in &rest[..rest.len() - 1] {
            p.push('.');
            p.push_str(r);
        }
        p
    });
    Object {
        kind,
        name,
        leaf,
        parent,
        table: None,
        identity,
        attrs: BTreeMap::new(),
        depends_on: vec![],
        server_version: 0,
    }
}

pub(crate) fn put(o: &mut Object, key: &str, v: Option<String>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        o.attrs.insert(key.to_string(), v);
    }
}

/// Not part of an extension (extensions are reported as one object).
const NOT_EXTENSION_MEMBER: &str =
    "NOT EXISTS (SELECT 1 FROM pg_depend ext_dep WHERE ext_dep.objid = {oid} AND ext_dep.deptype = 'e')";

pub(crate) fn not_ext(oid: &str) -> String {
    NOT_EXTENSION_MEMBER.replace("{oid}", oid)
}

/// Sequences whose state is read with one query each batch (a UNION ALL).
const SEQUENCE_STATE_BATCH: usize = 200;

/// Reads all objects of one side (on its first connection, inside its snapshot).
pub async fn read(side: &Side) -> Result<Vec<Object>> {
    let c = side.client(0);
    let err = |e: tokio_postgres::Error| side.query_error("reading the schema catalog", &e);
    let f = SYSTEM_SCHEMA_FILTER;
    let q_schemas = format!(
        "SELECT n.oid, n.nspname::text, pg_get_userbyid(n.nspowner)::text, obj_description(n.oid, 'pg_namespace'),
                NULLIF(n.nspacl, acldefault('n', n.nspowner))::text
         FROM pg_namespace n WHERE {f} AND {}",
        not_ext("n.oid")
    );
    let q_rels = format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text,
                (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition),
                pg_get_expr(c.relpartbound, c.oid), CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)::text,
                obj_description(c.oid, 'pg_class'), NULLIF(c.relacl, acldefault('r', c.relowner))::text, c.relfilenode::bigint,
                array_to_string(c.reloptions, ','), CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                c.relreplident::text,
                (SELECT ri.relname::text FROM pg_index i JOIN pg_class ri ON ri.oid = i.indexrelid
                  WHERE i.indrelid = c.oid AND i.indisreplident LIMIT 1),
                (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) FROM pg_inherits i
                  WHERE i.inhrelid = c.oid AND NOT c.relispartition),
                (SELECT am.amname::text FROM pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap'),
                (SELECT ci.relname::text FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
                  WHERE i.indrelid = c.oid AND i.indisclustered LIMIT 1),
                CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END,
                (SELECT string_agg(quote_ident(a.attname) || ': ' || d.description, '; ' ORDER BY a.attnum)
                   FROM pg_description d JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
                  WHERE c.relkind IN ('v', 'm') AND d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid > 0)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm') AND {f} AND {}",
        not_ext("c.oid")
    );
    let q_cols = format!(
        "SELECT c.oid, a.attnum, n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
                CASE WHEN a.attcollation <> t.typcollation THEN (SELECT co.collname::text FROM pg_collation co WHERE co.oid = a.attcollation) END,
                col_description(c.oid, a.attnum), a.attacl::text, a.atttypid,
                row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                nn.conname::text, nn.convalidated, nn.connoinherit,
                CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END, {compression},
                NULLIF(a.attstattarget::int, -1)::text, array_to_string(a.attoptions, ','),
                -- A partition's column is its root's: dropped with it, counted there.
                (SELECT pn.nspname || '.' || pc.relname || '.' || a.attname FROM pg_inherits ih
                   JOIN pg_class pc ON pc.oid = ih.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                  WHERE ih.inhrelid = c.oid AND c.relispartition)
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_type t ON t.oid = a.atttypid
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              LEFT JOIN pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey = ARRAY[a.attnum]
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND {f} AND {}
         ORDER BY c.oid, a.attnum",
        not_ext("c.oid"),
        // attcompression exists from PostgreSQL 14 on.
        compression = if side.server_version >= 140000 { "NULLIF(a.attcompression::text, '')" } else { "NULL::text" }
    );
    let q_cons = format!(
        "SELECT k.oid, n.nspname::text, c.relname::text, k.conname::text, k.contype::text, pg_get_constraintdef(k.oid),
                k.convalidated, obj_description(k.oid, 'pg_constraint'), k.conkey::int2[], k.conislocal,
                CASE WHEN k.contype IN ('p', 'u', 'x') THEN (SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = k.conindid) END,
                -- The parent table's constraint an inherited one copies: a partition's (conparentid), else by name.
                CASE WHEN NOT k.conislocal THEN COALESCE(
                    (SELECT pn.nspname || '.' || pc.relname || '.' || pk.conname FROM pg_constraint pk
                       JOIN pg_class pc ON pc.oid = pk.conrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                      WHERE pk.oid = k.conparentid AND pk.conrelid <> k.conrelid),
                    (SELECT pn.nspname || '.' || pc.relname || '.' || pk.conname FROM pg_inherits ih
                       JOIN pg_constraint pk ON pk.conrelid = ih.inhparent AND pk.conname = k.conname AND pk.contype = k.contype
                       JOIN pg_class pc ON pc.oid = pk.conrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                      WHERE ih.inhrelid = k.conrelid LIMIT 1)) END
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND {f}
           AND NOT EXISTS (SELECT 1 FROM pg_constraint pk WHERE pk.oid = k.conparentid AND pk.conrelid = k.conrelid)"
    );
    let q_idx = format!(
        "SELECT i.indexrelid, n.nspname::text, ic.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid),
                i.indisvalid, obj_description(i.indexrelid, 'pg_class'), i.indkey::int2[],
                (SELECT pn.nspname || '.' || pc.relname FROM pg_inherits ih JOIN pg_class pc ON pc.oid = ih.inhparent
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE ih.inhrelid = i.indexrelid)
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
              JOIN pg_namespace n ON n.oid = ic.relnamespace
         WHERE {f} AND c.relkind IN ('r', 'p', 'm') AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
           AND {}",
        not_ext("c.oid")
    );
    let q_seq = format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
                s.seqmax, s.seqcache, s.seqcycle, pg_get_userbyid(c.relowner)::text, obj_description(c.oid, 'pg_class'),
                NULLIF(c.relacl, acldefault('s', c.relowner))::text,
                (SELECT dn.nspname || '.' || dc.relname || '.' || a.attname FROM pg_depend d
                   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                   JOIN pg_class dc ON dc.oid = d.refobjid JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                  WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')),
                has_sequence_privilege(c.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE')
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {f} AND {}",
        not_ext("c.oid")
    );
    let q_proc = format!(
        "SELECT p.oid, n.nspname::text, p.proname::text,
                -- PostgreSQL 14+ spells a procedure's IN arguments with their mode, 13 without: one name for both.
                CASE WHEN p.prokind = 'p' THEN regexp_replace(pg_get_function_identity_arguments(p.oid), '(^|, )IN ', '\\1', 'g')
                     ELSE pg_get_function_identity_arguments(p.oid) END,
                p.prokind::text,
                regexp_replace(pg_get_functiondef(p.oid), '^[^\\n]*\\n', ''), pg_get_userbyid(p.proowner)::text,
                obj_description(p.oid, 'pg_proc'), NULLIF(p.proacl, acldefault('f', p.proowner))::text, p.provolatile::text, p.prosecdef, l.lanname::text
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
         WHERE p.prokind IN ('f', 'p') AND {f} AND {}",
        not_ext("p.oid")
    );
    let q_trig = format!(
        "SELECT t.oid, n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text,
                obj_description(t.oid, 'pg_trigger')
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND {f}"
    );
    let q_types = format!(
        "SELECT t.oid, n.nspname::text, t.typname::text, t.typtype::text,
                (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
                CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, t.typnotnull, t.typdefault,
                (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), '; ' ORDER BY k.conname) FROM pg_constraint k WHERE k.contypid = t.oid),
                (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                   FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
                pg_get_userbyid(t.typowner)::text, obj_description(t.oid, 'pg_type'),
                NULLIF(t.typacl, acldefault('T', t.typowner))::text
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
           AND {f} AND {}",
        not_ext("t.oid")
    );
    let q_ext = "SELECT e.oid, e.extname::text, e.extversion, n.nspname::text, obj_description(e.oid, 'pg_extension') FROM pg_extension e
         JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'";
    let q_pol = format!(
        "SELECT p.oid, n.nspname::text, c.relname::text, p.polname::text, p.polcmd::text, p.polpermissive,
                (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END, ', ' ORDER BY 1) FROM unnest(p.polroles) r),
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
                obj_description(p.oid, 'pg_policy')
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {f}"
    );
    let q_viewdeps = format!(
        "SELECT DISTINCT v.oid, d.refobjid, d.refobjsubid
         FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace n ON n.oid = v.relnamespace
              JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
         WHERE v.relkind IN ('v', 'm') AND d.refobjid <> v.oid AND {f}"
    );
    let (schemas, rels, cols, cons, idx, seqs, procs, trigs, types, exts, pols, vdeps, more) = tokio::try_join!(
        c.query(&q_schemas, &[]),
        c.query(&q_rels, &[]),
        c.query(&q_cols, &[]),
        c.query(&q_cons, &[]),
        c.query(&q_idx, &[]),
        c.query(&q_seq, &[]),
        c.query(&q_proc, &[]),
        c.query(&q_trig, &[]),
        c.query(&q_types, &[]),
        c.query(q_ext, &[]),
        c.query(&q_pol, &[]),
        c.query(&q_viewdeps, &[]),
        super::read_more::query(c, side.server_version),
    )
    .map_err(err)?;

    let mut out = vec![];
    for r in &schemas {
        let name: String = r.get(1);
        let mut o = obj(ObjKind::Schema, &name, &[], Some((r.get(0), 0)));
        put(&mut o, "owner", r.get(2));
        put(&mut o, "comment", r.get(3));
        put(&mut o, "privileges", r.get(4));
        out.push(o);
    }
    // Relation names by OID, for dependencies.
    let mut rel_names: BTreeMap<u32, String> = BTreeMap::new();
    for r in &rels {
        let (schema, rel, kind): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let okind = match kind.as_str() {
            "v" => ObjKind::View,
            "m" => ObjKind::MaterializedView,
            _ => ObjKind::Table,
        };
        let mut o = obj(okind, &schema, &[&rel], Some((r.get(0), 0)));
        rel_names.insert(r.get(0), o.name.clone());
        o.table = Some((schema.clone(), rel.clone()));
        o.depends_on.push(schema.clone());
        if okind == ObjKind::Table {
            let persistence: String = r.get(4);
            let kind_text = match (kind.as_str(), persistence.as_str()) {
                ("p", _) => "partitioned",
                (_, "u") => "unlogged",
                _ => "regular",
            };
            put(&mut o, "kind", Some(kind_text.into()));
            put(&mut o, "partition_of", r.get(5));
            put(&mut o, "partition_bound", r.get(6));
            put(&mut o, "partition_key", r.get(7));
            put(&mut o, "row_security", Some(r.get::<_, bool>(8).to_string()));
            put(&mut o, "force_row_security", Some(r.get::<_, bool>(9).to_string()));
            // Not compared as such: tells a rewrite apart (see compare).
            put(&mut o, "relfilenode", Some(r.get::<_, i64>(13).to_string()));
            let ident: String = r.get(16);
            let ident = match ident.as_str() {
                "n" => "nothing".to_string(),
                "f" => "full".to_string(),
                "i" => match r.get::<_, Option<String>>(17) {
                    Some(index) => format!("using index {index}"),
                    None => "using index".to_string(),
                },
                _ => "default".to_string(),
            };
            put(&mut o, "replica_identity", Some(ident));
            put(&mut o, "inherits", r.get(18));
            put(&mut o, "cluster_on", r.get(20));
            put(&mut o, "of_type", r.get(21));
        } else {
            put(&mut o, "definition", r.get(15));
            put(&mut o, "column_comments", r.get(22));
        }
        put(&mut o, "access_method", r.get(19));
        put(&mut o, "owner", r.get(10));
        put(&mut o, "comment", r.get(11));
        put(&mut o, "privileges", r.get(12));
        put(&mut o, "options", r.get(14));
        out.push(o);
    }
    let mut col_names: BTreeMap<(u32, i16), String> = BTreeMap::new();
    for r in &cols {
        let (schema, rel, col): (String, String, String) = (r.get(2), r.get(3), r.get(4));
        let mut o = obj(ObjKind::Column, &schema, &[&rel, &col], Some((r.get(0), r.get(1))));
        col_names.insert((r.get(0), r.get(1)), o.name.clone());
        o.table = Some((schema, rel));
        o.depends_on.push(o.parent.clone().unwrap_or_default());
        o.depends_on.extend(r.get::<_, Option<String>>(22));
        put(&mut o, "type", r.get(5));
        put(&mut o, "not_null", Some(r.get::<_, bool>(6).to_string()));
        // PostgreSQL 18 catalogs NOT NULL as a named constraint, possibly NOT VALID or NO INHERIT.
        put(&mut o, "not_null_name", r.get(15));
        if r.get::<_, Option<bool>>(16) == Some(false) {
            put(&mut o, "not_null_validated", Some("false".into()));
        }
        if r.get::<_, Option<bool>>(17) == Some(true) {
            put(&mut o, "not_null_no_inherit", Some("true".into()));
        }
        // A generated column keeps its expression where defaults live.
        let generated: String = r.get::<_, Option<String>>(9).unwrap_or_default();
        let expr: Option<String> = r.get(7);
        match generated.as_str() {
            "s" => put(&mut o, "generated", expr.map(|e| format!("stored: {e}"))),
            "v" => put(&mut o, "generated", expr.map(|e| format!("virtual: {e}"))),
            _ => put(&mut o, "default", expr),
        }
        let identity: Option<String> = r.get(8);
        put(
            &mut o,
            "identity",
            identity.map(|i| match i.as_str() {
                "a" => "always".into(),
                "d" => "by default".into(),
                _ => String::new(),
            }),
        );
        put(&mut o, "collation", r.get(10));
        put(&mut o, "comment", r.get(11));
        put(&mut o, "privileges", r.get(12));
        put(&mut o, "position", Some(r.get::<_, i64>(14).to_string()));
        put(&mut o, "type_oid", Some(r.get::<_, u32>(13).to_string()));
        put(
            &mut o,
            "storage",
            r.get::<_, Option<String>>(18).map(|s| {
                match s.as_str() {
                    "p" => "plain",
                    "e" => "external",
                    "m" => "main",
                    _ => "extended",
                }
                .to_string()
            }),
        );
        put(
            &mut o,
            "compression",
            r.get::<_, Option<String>>(19).map(|c| {
                if c == "p" {
                    "pglz".into()
                } else if c == "l" {
                    "lz4".into()
                } else {
                    c
                }
            }),
        );
        put(&mut o, "statistics", r.get(20));
        put(&mut o, "attribute_options", r.get(21));
        out.push(o);
    }
    let col_deps = |rel: &str, keys: Option<Vec<i16>>, rel_oid: Option<u32>| -> Vec<String> {
        let mut d = vec![rel.to_string()];
        if let (Some(keys), Some(oid)) = (keys, rel_oid) {
            d.extend(keys.iter().filter_map(|k| col_names.get(&(oid, *k)).cloned()));
        }
        d
    };
    let rel_oid = |name: &str| rel_names.iter().find(|(_, n)| n.as_str() == name).map(|(o, _)| *o);
    for r in &cons {
        let (schema, rel, name): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let mut o = obj(ObjKind::Constraint, &schema, &[&rel, &name], Some((r.get(0), 0)));
        let table = format!("{schema}.{rel}");
        o.depends_on = col_deps(&table, r.get(8), rel_oid(&table));
        o.table = Some((schema, rel));
        let ty: String = r.get(4);
        let ty = match ty.as_str() {
            "p" => "primary key",
            "u" => "unique",
            "f" => "foreign key",
            "c" => "check",
            _ => "exclusion",
        };
        put(&mut o, "type", Some(ty.into()));
        put(&mut o, "definition", r.get(5));
        put(&mut o, "validated", Some(r.get::<_, bool>(6).to_string()));
        put(&mut o, "comment", r.get(7));
        // Inherited from a parent table (a partition's copy of its parent's key, …).
        if !r.get::<_, bool>(9) {
            put(&mut o, "inherited", Some("true".into()));
        }
        put(&mut o, "index_valid", r.get::<_, Option<bool>>(10).map(|v| v.to_string()));
        // Added or dropped with the parent's constraint: a consequence of it.
        o.depends_on.extend(r.get::<_, Option<String>>(11));
        out.push(o);
    }
    for r in &idx {
        let (schema, name, rel): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let mut o = obj(ObjKind::Index, &schema, &[&name], Some((r.get(0), 0)));
        let table = format!("{schema}.{rel}");
        o.depends_on = col_deps(&table, r.get(7), rel_oid(&table));
        o.table = Some((schema, rel));
        put(&mut o, "definition", r.get(4));
        put(&mut o, "valid", Some(r.get::<_, bool>(5).to_string()));
        put(&mut o, "comment", r.get(6));
        // A partition's index attached to a partitioned table's index: created and dropped with it.
        o.depends_on.extend(r.get::<_, Option<String>>(8));
        out.push(o);
    }
    // Sequences whose state (last_value, is_called) this role may read.
    let mut readable_seqs: Vec<(u32, String)> = vec![];
    for r in &seqs {
        let (schema, name): (String, String) = (r.get(1), r.get(2));
        let mut o = obj(ObjKind::Sequence, &schema, &[&name], Some((r.get(0), 0)));
        o.depends_on.push(schema.clone());
        put(&mut o, "type", r.get(3));
        for (i, k) in ["start", "increment", "min", "max", "cache"].iter().enumerate() {
            put(&mut o, k, Some(r.get::<_, i64>(4 + i).to_string()));
        }
        put(&mut o, "cycle", Some(r.get::<_, bool>(9).to_string()));
        put(&mut o, "owner", r.get(10));
        put(&mut o, "comment", r.get(11));
        put(&mut o, "privileges", r.get(12));
        let owned: Option<String> = r.get(13);
        if let Some(col) = &owned {
            o.depends_on.push(col.clone());
        }
        put(&mut o, "owned_by", owned);
        if r.get::<_, bool>(14) {
            readable_seqs.push((r.get::<_, u32>(0), format!("{}.{}", quote_ident(&schema), quote_ident(&name))));
        }
        out.push(o);
    }
    read_sequence_state(side, &readable_seqs, &mut out).await?;
    for r in &procs {
        let (schema, name, args, kind): (String, String, String, String) = (r.get(1), r.get(2), r.get(3), r.get(4));
        let leaf = format!("{name}({args})");
        let okind = if kind == "p" { ObjKind::Procedure } else { ObjKind::Function };
        let mut o = obj(okind, &schema, &[&leaf], Some((r.get(0), 0)));
        o.depends_on.push(schema.clone());
        put(&mut o, "definition", r.get(5));
        put(&mut o, "owner", r.get(6));
        put(&mut o, "comment", r.get(7));
        put(&mut o, "privileges", r.get(8));
        let vol: String = r.get(9);
        put(
            &mut o,
            "volatility",
            Some(
                match vol.as_str() {
                    "i" => "immutable",
                    "s" => "stable",
                    _ => "volatile",
                }
                .into(),
            ),
        );
        put(&mut o, "security_definer", Some(r.get::<_, bool>(10).to_string()));
        put(&mut o, "language", r.get(11));
        out.push(o);
    }
    for r in &trigs {
        let (schema, rel, name): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let mut o = obj(ObjKind::Trigger, &schema, &[&rel, &name], Some((r.get(0), 0)));
        o.depends_on.push(format!("{schema}.{rel}"));
        o.table = Some((schema, rel));
        put(&mut o, "definition", r.get(4));
        let en: String = r.get(5);
        put(
            &mut o,
            "enabled",
            Some(
                match en.as_str() {
                    "O" => "origin",
                    "D" => "disabled",
                    "R" => "replica",
                    "A" => "always",
                    x => x,
                }
                .into(),
            ),
        );
        put(&mut o, "comment", r.get(6));
        out.push(o);
    }
    for r in &types {
        let (schema, name, tt): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let kind = match tt.as_str() {
            "e" => ObjKind::Enum,
            "d" => ObjKind::Domain,
            _ => ObjKind::CompositeType,
        };
        let mut o = obj(kind, &schema, &[&name], Some((r.get(0), 0)));
        o.depends_on.push(schema.clone());
        put(&mut o, "labels", r.get(4));
        put(&mut o, "base_type", r.get(5));
        if kind == ObjKind::Domain {
            put(&mut o, "not_null", Some(r.get::<_, bool>(6).to_string()));
        }
        put(&mut o, "default", r.get(7));
        put(&mut o, "constraints", r.get(8));
        if kind == ObjKind::CompositeType {
            put(&mut o, "attributes", r.get(9));
        }
        put(&mut o, "owner", r.get(10));
        put(&mut o, "comment", r.get(11));
        put(&mut o, "privileges", r.get(12));
        out.push(o);
    }
    for r in &exts {
        let name: String = r.get(1);
        let mut o = obj(ObjKind::Extension, &name, &[], Some((r.get(0), 0)));
        put(&mut o, "version", r.get(2));
        put(&mut o, "schema", r.get(3));
        put(&mut o, "comment", r.get(4));
        out.push(o);
    }
    for r in &pols {
        let (schema, rel, name): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let mut o = obj(ObjKind::Policy, &schema, &[&rel, &name], Some((r.get(0), 0)));
        o.depends_on.push(format!("{schema}.{rel}"));
        o.table = Some((schema, rel));
        let cmd: String = r.get(4);
        put(
            &mut o,
            "command",
            Some(
                match cmd.as_str() {
                    "r" => "select",
                    "a" => "insert",
                    "w" => "update",
                    "d" => "delete",
                    _ => "all",
                }
                .into(),
            ),
        );
        put(&mut o, "permissive", Some(r.get::<_, bool>(5).to_string()));
        put(&mut o, "roles", r.get(6));
        put(&mut o, "using", r.get(7));
        put(&mut o, "with_check", r.get(8));
        put(&mut o, "comment", r.get(9));
        out.push(o);
    }
    for r in &vdeps {
        let (view, rel, sub): (u32, u32, i32) = (r.get(0), r.get(1), r.get(2));
        let target = if sub > 0 { col_names.get(&(rel, sub as i16)).cloned() } else { rel_names.get(&rel).cloned() };
        if let (Some(vname), Some(t)) = (rel_names.get(&view).cloned(), target) {
            if let Some(o) =
                out.iter_mut().find(|o| o.name == vname && matches!(o.kind, ObjKind::View | ObjKind::MaterializedView))
            {
                o.depends_on.push(t);
            }
        }
    }
    out.extend(super::read_more::objects(&more));
    out.extend(super::large_objects::read(side).await?);
    for o in &mut out {
        o.server_version = side.server_version;
    }
    Ok(out)
}

/// Reads `last_value` and `is_called` of the sequences given (OID, quoted
/// name): selecting from a sequence needs SELECT on it, so sequences this role
/// may not read keep no state attributes (and their state is not compared).
async fn read_sequence_state(side: &Side, seqs: &[(u32, String)], out: &mut [Object]) -> Result<()> {
    let mut state: BTreeMap<u32, (i64, bool)> = BTreeMap::new();
    for batch in seqs.chunks(SEQUENCE_STATE_BATCH) {
        let q = batch
            .iter()
            .map(|(oid, name)| format!("SELECT {oid}::oid, last_value, is_called FROM {name}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = side.client(0).query(&q, &[]).await.map_err(|e| side.query_error("reading sequence state", &e))?;
        for r in rows {
            state.insert(r.get(0), (r.get(1), r.get(2)));
        }
    }
    for o in out.iter_mut().filter(|o| o.kind == ObjKind::Sequence) {
        if let Some((last, called)) = o.identity.and_then(|id| state.get(&id.0)) {
            put(o, "last_value", Some(last.to_string()));
            put(o, "is_called", Some(called.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ObjKind;

    /// The kinds in docs/output-format.md's "Schema kinds" table, in its order.
    fn documented_kinds() -> Vec<String> {
        let doc = include_str!("../../../docs/output-format.md");
        let table = doc.split("### Schema kinds").nth(1).expect("a schema kinds section");
        let rows = table.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).skip(2);
        rows.filter_map(|l| l.split('`').nth(1).map(str::to_string)).collect()
    }

    #[test]
    fn the_documentation_lists_exactly_the_kinds_that_exist() {
        let mut documented = documented_kinds();
        documented.sort();
        let mut existing: Vec<String> = ObjKind::ALL.iter().map(|k| k.label().to_string()).collect();
        existing.sort();
        assert_eq!(documented, existing);
    }

    #[test]
    fn the_json_schema_lists_exactly_the_kinds_that_exist() {
        let schema: serde_json::Value = serde_json::from_str(include_str!("../../../docs/output-schema.json")).unwrap();
        let kinds = &schema["$defs"]["schema_change"]["properties"]["kind"]["enum"];
        let mut listed: Vec<String> =
            kinds.as_array().expect("a kind enum").iter().map(|k| k.as_str().unwrap().to_string()).collect();
        listed.sort();
        let mut existing: Vec<String> = ObjKind::ALL.iter().map(|k| k.label().to_string()).collect();
        existing.sort();
        assert_eq!(listed, existing);
    }
}
