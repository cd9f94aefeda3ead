//! Coverage of the schema diff, proven rather than listed: one rich parent, and for every row of
//! [`CHANGES`] a fresh TEMPLATE branch of it with that one change applied. The JSON report must
//! contain the expected change (kind, op, object, written by hand from the SQL), and — the oracle —
//! `pg_dump --schema-only --create` of the branch must differ from the parent's, so no row is a
//! no-op the tool could pass by reporting nothing. The rows cover every entry type
//! `pg_dump --schema-only` writes for a database on PostgreSQL 13–18 (and large objects, which it
//! counts as data, so their rows skip the dump oracle), except security labels (they need a label provider), transforms and base types (they need C
//! functions) and tablespaces (they need a directory), which the tool does not read.
//!
//! The oracle needs a `pg_dump` at least as new as the server ([`harness::pg_dump`]); without
//! one the dumps are not compared (the test says so) and the reports still are.

use std::time::Instant;

use serde_json::Value;

use crate::harness::{self, cli, conn, exec};

/// A role the fixture and the changes grant to.
const ROLE: &str = "pgbd_cov";

const FIXTURE: &str = "
CREATE SCHEMA app; CREATE SCHEMA empty_s;
CREATE EXTENSION hstore;
CREATE TYPE app.mood AS ENUM ('sad', 'ok');
CREATE DOMAIN app.pos AS integer CHECK (VALUE > 0);
CREATE TYPE app.addr AS (street text, zip text);
CREATE TYPE app.frange AS RANGE (subtype = float8);
CREATE TABLE app.t (id int PRIMARY KEY, v text, n numeric, m app.mood, d app.pos);
CREATE TABLE app.u (id int PRIMARY KEY, t_id int REFERENCES app.t, note text CHECK (note <> ''));
CREATE INDEX t_v_idx ON app.t (v);
CREATE TABLE app.base (id int, v text);
CREATE TABLE app.kid (extra int) INHERITS (app.base);
CREATE TABLE app.other_base (id int, v text);
CREATE TABLE app.typed_t OF app.addr;
CREATE TABLE app.parted (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE app.p2024 PARTITION OF app.parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE VIEW app.tv AS SELECT id, v FROM app.t;
CREATE MATERIALIZED VIEW app.tm AS SELECT id FROM app.t;
CREATE SEQUENCE app.s;
CREATE FUNCTION app.f(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1';
CREATE PROCEDURE app.pr(x int) LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION app.trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER t_trg BEFORE INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION app.trg();
CREATE FUNCTION app.evt() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
CREATE EVENT TRIGGER cov_evt ON sql_drop EXECUTE FUNCTION app.evt();
CREATE RULE u_rule AS ON UPDATE TO app.u DO ALSO NOTIFY u_changed;
ALTER TABLE app.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY t_pol ON app.t USING (id > 0);
CREATE STATISTICS app.t_stats (dependencies) ON id, v FROM app.t;
CREATE PUBLICATION cov_pub FOR TABLE app.t;
CREATE FOREIGN DATA WRAPPER cov_fdw;
CREATE SERVER cov_srv FOREIGN DATA WRAPPER cov_fdw OPTIONS (host 'a');
CREATE USER MAPPING FOR postgres SERVER cov_srv OPTIONS (user 'x');
CREATE FOREIGN TABLE app.ft (a int, b text) SERVER cov_srv OPTIONS (table_name 'remote');
CREATE CAST (app.mood AS integer) WITH INOUT AS ASSIGNMENT;
CREATE FUNCTION app.int_eq(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
CREATE OPERATOR app.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = app.int_eq);
CREATE OPERATOR FAMILY app.cov_fam USING btree;
CREATE OPERATOR CLASS app.cov_ops FOR TYPE int USING btree FAMILY app.cov_fam AS
  OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 btint4cmp(int, int);
CREATE COLLATION app.coll (provider = libc, locale = 'C');
CREATE TEXT SEARCH CONFIGURATION app.cfg (COPY = pg_catalog.simple);
CREATE TEXT SEARCH DICTIONARY app.dict (TEMPLATE = pg_catalog.simple);
CREATE TEXT SEARCH TEMPLATE app.tmpl (INIT = dsimple_init, LEXIZE = dsimple_lexize);
CREATE TEXT SEARCH PARSER app.prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype);
CREATE CONVERSION app.conv FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;
CREATE AGGREGATE app.agg(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
CREATE LANGUAGE cov_lang HANDLER plpgsql_call_handler;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO pgbd_cov;
SELECT lo_from_bytea(424242, 'large object');
";

/// One single change: the SQL applied to the branch (`{db}` is the branch's name), the change
/// expected in the report, and the oldest server version the SQL runs on.
struct Case {
    sql: &'static str,
    kind: &'static str,
    op: &'static str,
    object: &'static str,
    since: i32,
    /// `pg_dump --schema-only` shows the change (large objects are data to it: their
    /// independent check is `dropped_values::large_objects_removed_overwritten_and_added`).
    in_schema_dump: bool,
}

const fn c(sql: &'static str, kind: &'static str, op: &'static str, object: &'static str) -> Case {
    Case { sql, kind, op, object, since: 0, in_schema_dump: true }
}

const fn data(case: Case) -> Case {
    Case { in_schema_dump: false, ..case }
}

const fn since(v: i32, case: Case) -> Case {
    Case { since: v, ..case }
}

const CHANGES: &[Case] = &[
    // Large objects (the fixture's is OID 424242).
    data(c("SELECT lo_unlink(424242)", "large_object", "dropped", "424242")),
    data(c("SELECT lo_put(424242, 0, 'LO')", "large_object", "altered", "424242")),
    data(c("SELECT lo_from_bytea(424243, 'x')", "large_object", "added", "424243")),
    data(c("COMMENT ON LARGE OBJECT 424242 IS 'c'", "large_object", "altered", "424242")),
    // Schemas.
    c("CREATE SCHEMA s2", "schema", "added", "s2"),
    c("DROP SCHEMA empty_s", "schema", "dropped", "empty_s"),
    c("ALTER SCHEMA empty_s RENAME TO es2", "schema", "renamed", "es2"),
    c("COMMENT ON SCHEMA app IS 'c'", "schema", "altered", "app"),
    c("ALTER SCHEMA empty_s OWNER TO pgbd_cov", "schema", "altered", "empty_s"),
    c("GRANT USAGE ON SCHEMA app TO pgbd_cov", "schema", "altered", "app"),
    // Tables.
    c("CREATE TABLE app.n (id int)", "table", "added", "app.n"),
    c("DROP TABLE app.other_base", "table", "dropped", "app.other_base"),
    c("ALTER TABLE app.other_base RENAME TO ob2", "table", "renamed", "app.ob2"),
    c("ALTER TABLE app.other_base SET SCHEMA empty_s", "table", "renamed", "empty_s.other_base"),
    c("ALTER TABLE app.kid NO INHERIT app.base", "table", "altered", "app.kid"),
    c("ALTER TABLE app.other_base INHERIT app.base", "table", "altered", "app.other_base"),
    c("ALTER TABLE app.t CLUSTER ON t_v_idx", "table", "altered", "app.t"),
    since(150000, c("ALTER TABLE app.other_base SET ACCESS METHOD heap2", "table", "altered", "app.other_base")),
    c("CREATE TABLE app.h (id int) USING heap2", "table", "added", "app.h"),
    c("ALTER TABLE app.other_base SET UNLOGGED", "table", "altered", "app.other_base"),
    c("ALTER TABLE app.other_base SET (fillfactor = 50)", "table", "altered", "app.other_base"),
    c("ALTER TABLE app.other_base OWNER TO pgbd_cov", "table", "altered", "app.other_base"),
    c("GRANT SELECT ON app.other_base TO pgbd_cov", "table", "altered", "app.other_base"),
    c("COMMENT ON TABLE app.other_base IS 'c'", "table", "altered", "app.other_base"),
    c("ALTER TABLE app.other_base REPLICA IDENTITY FULL", "table", "altered", "app.other_base"),
    c("ALTER TABLE app.other_base ENABLE ROW LEVEL SECURITY", "table", "altered", "app.other_base"),
    c("ALTER TABLE app.t FORCE ROW LEVEL SECURITY", "table", "altered", "app.t"),
    c("ALTER TABLE app.parted DETACH PARTITION app.p2024", "table", "altered", "app.p2024"),
    c(
        "CREATE TABLE app.p2025 PARTITION OF app.parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        "table",
        "added",
        "app.p2025",
    ),
    c("CREATE TABLE app.typed OF app.addr", "table", "added", "app.typed"),
    c("ALTER TABLE app.typed_t NOT OF", "table", "altered", "app.typed_t"),
    // Columns.
    c("ALTER TABLE app.t ADD COLUMN w int", "column", "added", "app.t.w"),
    c("ALTER TABLE app.t DROP COLUMN n", "column", "dropped", "app.t.n"),
    c("ALTER TABLE app.t RENAME COLUMN v TO v2", "column", "renamed", "app.t.v2"),
    c("ALTER TABLE app.t ALTER COLUMN n TYPE int", "column", "altered", "app.t.n"),
    c("ALTER TABLE app.t ALTER COLUMN v SET NOT NULL", "column", "altered", "app.t.v"),
    c("ALTER TABLE app.t ALTER COLUMN v SET DEFAULT 'x'", "column", "altered", "app.t.v"),
    c("ALTER TABLE app.t ALTER COLUMN v SET STORAGE EXTERNAL", "column", "altered", "app.t.v"),
    since(140000, c("ALTER TABLE app.t ALTER COLUMN v SET COMPRESSION pglz", "column", "altered", "app.t.v")),
    c("ALTER TABLE app.t ALTER COLUMN v SET STATISTICS 500", "column", "altered", "app.t.v"),
    c("ALTER TABLE app.t ALTER COLUMN v SET (n_distinct = 100)", "column", "altered", "app.t.v"),
    c("ALTER TABLE app.u ALTER COLUMN note TYPE text COLLATE \"C\"", "column", "altered", "app.u.note"),
    c("COMMENT ON COLUMN app.t.v IS 'c'", "column", "altered", "app.t.v"),
    c("GRANT SELECT (v) ON app.t TO pgbd_cov", "column", "altered", "app.t.v"),
    c(
        "ALTER TABLE app.other_base ADD COLUMN g int GENERATED ALWAYS AS (id * 2) STORED",
        "column",
        "added",
        "app.other_base.g",
    ),
    c("ALTER TABLE app.u ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY", "column", "altered", "app.u.id"),
    // Constraints.
    c(
        "ALTER TABLE app.other_base ADD CONSTRAINT ob_pk PRIMARY KEY (id)",
        "constraint",
        "added",
        "app.other_base.ob_pk",
    ),
    c("ALTER TABLE app.u DROP CONSTRAINT u_t_id_fkey", "constraint", "dropped", "app.u.u_t_id_fkey"),
    c(
        "ALTER TABLE app.u ADD CONSTRAINT u_note_len CHECK (length(note) < 100) NOT VALID",
        "constraint",
        "added",
        "app.u.u_note_len",
    ),
    c("ALTER TABLE app.u RENAME CONSTRAINT u_note_check TO u_note_ok", "constraint", "renamed", "app.u.u_note_ok"),
    c("COMMENT ON CONSTRAINT u_note_check ON app.u IS 'c'", "constraint", "altered", "app.u.u_note_check"),
    c("ALTER TABLE app.u ADD CONSTRAINT u_excl EXCLUDE USING btree (id WITH =)", "constraint", "added", "app.u.u_excl"),
    c("ALTER TABLE app.u ALTER CONSTRAINT u_t_id_fkey DEFERRABLE", "constraint", "altered", "app.u.u_t_id_fkey"),
    // Indexes.
    c("CREATE INDEX u_note_idx ON app.u (note)", "index", "added", "app.u_note_idx"),
    c("DROP INDEX app.t_v_idx", "index", "dropped", "app.t_v_idx"),
    c("ALTER INDEX app.t_v_idx RENAME TO t_v_idx2", "index", "renamed", "app.t_v_idx2"),
    c("ALTER INDEX app.t_v_idx SET (fillfactor = 50)", "index", "altered", "app.t_v_idx"),
    c("COMMENT ON INDEX app.t_v_idx IS 'c'", "index", "altered", "app.t_v_idx"),
    // Views and materialized views.
    c("CREATE VIEW app.v2 AS SELECT 1 AS one", "view", "added", "app.v2"),
    c("DROP VIEW app.tv", "view", "dropped", "app.tv"),
    c("CREATE OR REPLACE VIEW app.tv AS SELECT id, v FROM app.t WHERE id > 0", "view", "altered", "app.tv"),
    c("ALTER VIEW app.tv SET (security_barrier = true)", "view", "altered", "app.tv"),
    c("COMMENT ON COLUMN app.tv.v IS 'c'", "view", "altered", "app.tv"),
    c("ALTER VIEW app.tv RENAME TO tv2", "view", "renamed", "app.tv2"),
    c("GRANT SELECT ON app.tv TO pgbd_cov", "view", "altered", "app.tv"),
    c("CREATE MATERIALIZED VIEW app.m2 AS SELECT 1 AS one", "materialized_view", "added", "app.m2"),
    c("DROP MATERIALIZED VIEW app.tm", "materialized_view", "dropped", "app.tm"),
    since(
        150000,
        c("ALTER MATERIALIZED VIEW app.tm SET ACCESS METHOD heap2", "materialized_view", "altered", "app.tm"),
    ),
    c("COMMENT ON MATERIALIZED VIEW app.tm IS 'c'", "materialized_view", "altered", "app.tm"),
    // Sequences.
    c("CREATE SEQUENCE app.s2", "sequence", "added", "app.s2"),
    c("DROP SEQUENCE app.s", "sequence", "dropped", "app.s"),
    c("ALTER SEQUENCE app.s INCREMENT BY 5", "sequence", "altered", "app.s"),
    c("ALTER SEQUENCE app.s OWNED BY app.t.id", "sequence", "altered", "app.s"),
    c("ALTER SEQUENCE app.s RENAME TO s3", "sequence", "renamed", "app.s3"),
    // Functions, procedures, aggregates.
    c("CREATE FUNCTION app.g() RETURNS int LANGUAGE sql AS 'SELECT 1'", "function", "added", "app.g()"),
    c("DROP FUNCTION app.f(int)", "function", "dropped", "app.f(x integer)"),
    c(
        "CREATE OR REPLACE FUNCTION app.f(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 2'",
        "function",
        "altered",
        "app.f(x integer)",
    ),
    c("ALTER FUNCTION app.f(int) SECURITY DEFINER", "function", "altered", "app.f(x integer)"),
    c("ALTER FUNCTION app.f(int) STABLE", "function", "altered", "app.f(x integer)"),
    c("REVOKE EXECUTE ON FUNCTION app.f(int) FROM PUBLIC", "function", "altered", "app.f(x integer)"),
    c("ALTER FUNCTION app.f(int) RENAME TO f2", "function", "renamed", "app.f2(x integer)"),
    c("COMMENT ON FUNCTION app.f(int) IS 'c'", "function", "altered", "app.f(x integer)"),
    c("ALTER FUNCTION app.f(int) SET work_mem = '8MB'", "function", "altered", "app.f(x integer)"),
    c("CREATE PROCEDURE app.pr2() LANGUAGE sql AS 'SELECT 1'", "procedure", "added", "app.pr2()"),
    c("DROP PROCEDURE app.pr(int)", "procedure", "dropped", "app.pr(x integer)"),
    c("CREATE AGGREGATE app.agg2(int) (SFUNC = int4pl, STYPE = int)", "aggregate", "added", "app.agg2(integer)"),
    c("DROP AGGREGATE app.agg(int)", "aggregate", "dropped", "app.agg(integer)"),
    c("COMMENT ON AGGREGATE app.agg(int) IS 'c'", "aggregate", "altered", "app.agg(integer)"),
    c("ALTER AGGREGATE app.agg(int) OWNER TO pgbd_cov", "aggregate", "altered", "app.agg(integer)"),
    // Triggers, rules, policies, extended statistics.
    c(
        "CREATE TRIGGER t_trg2 AFTER UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION app.trg()",
        "trigger",
        "added",
        "app.t.t_trg2",
    ),
    c("DROP TRIGGER t_trg ON app.t", "trigger", "dropped", "app.t.t_trg"),
    c("ALTER TABLE app.t DISABLE TRIGGER t_trg", "trigger", "altered", "app.t.t_trg"),
    c("COMMENT ON TRIGGER t_trg ON app.t IS 'c'", "trigger", "altered", "app.t.t_trg"),
    c("CREATE RULE t_nothing AS ON DELETE TO app.t DO INSTEAD NOTHING", "rule", "added", "app.t.t_nothing"),
    c("DROP RULE u_rule ON app.u", "rule", "dropped", "app.u.u_rule"),
    c("CREATE OR REPLACE RULE u_rule AS ON UPDATE TO app.u DO INSTEAD NOTHING", "rule", "altered", "app.u.u_rule"),
    c("ALTER TABLE app.u DISABLE RULE u_rule", "rule", "altered", "app.u.u_rule"),
    c("COMMENT ON RULE u_rule ON app.u IS 'c'", "rule", "altered", "app.u.u_rule"),
    c("ALTER RULE u_rule ON app.u RENAME TO u_rule2", "rule", "renamed", "app.u.u_rule2"),
    c("CREATE POLICY t_pol2 ON app.t FOR SELECT USING (true)", "policy", "added", "app.t.t_pol2"),
    c("DROP POLICY t_pol ON app.t", "policy", "dropped", "app.t.t_pol"),
    c("ALTER POLICY t_pol ON app.t USING (id > 1)", "policy", "altered", "app.t.t_pol"),
    c("COMMENT ON POLICY t_pol ON app.t IS 'c'", "policy", "altered", "app.t.t_pol"),
    c("CREATE STATISTICS app.u_stats ON id, note FROM app.u", "statistics", "added", "app.u_stats"),
    c("DROP STATISTICS app.t_stats", "statistics", "dropped", "app.t_stats"),
    c("ALTER STATISTICS app.t_stats SET STATISTICS 500", "statistics", "altered", "app.t_stats"),
    c("COMMENT ON STATISTICS app.t_stats IS 'c'", "statistics", "altered", "app.t_stats"),
    // Types.
    c("ALTER TYPE app.mood ADD VALUE 'happy'", "enum", "altered", "app.mood"),
    c("CREATE TYPE app.color AS ENUM ('red')", "enum", "added", "app.color"),
    c("ALTER TYPE app.mood RENAME VALUE 'ok' TO 'fine'", "enum", "altered", "app.mood"),
    c("GRANT USAGE ON TYPE app.mood TO pgbd_cov", "enum", "altered", "app.mood"),
    c("ALTER DOMAIN app.pos SET DEFAULT 1", "domain", "altered", "app.pos"),
    c("ALTER DOMAIN app.pos ADD CONSTRAINT pos_small CHECK (VALUE < 1000)", "domain", "altered", "app.pos"),
    c("GRANT USAGE ON DOMAIN app.pos TO pgbd_cov", "domain", "altered", "app.pos"),
    c("ALTER DOMAIN app.pos SET NOT NULL", "domain", "altered", "app.pos"),
    c("ALTER TYPE app.addr ADD ATTRIBUTE city text CASCADE", "composite_type", "altered", "app.addr"),
    c("CREATE TYPE app.irange AS RANGE (subtype = int8)", "range_type", "added", "app.irange"),
    c("DROP TYPE app.frange", "range_type", "dropped", "app.frange"),
    c("COMMENT ON TYPE app.frange IS 'c'", "range_type", "altered", "app.frange"),
    c("GRANT USAGE ON TYPE app.frange TO pgbd_cov", "range_type", "altered", "app.frange"),
    // Collations, conversions, operators.
    c("CREATE COLLATION app.coll2 (locale = 'C')", "collation", "added", "app.coll2"),
    c("DROP COLLATION app.coll", "collation", "dropped", "app.coll"),
    c("COMMENT ON COLLATION app.coll IS 'c'", "collation", "altered", "app.coll"),
    c("CREATE CONVERSION app.conv2 FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8", "conversion", "added", "app.conv2"),
    c("DROP CONVERSION app.conv", "conversion", "dropped", "app.conv"),
    c("ALTER CONVERSION app.conv OWNER TO pgbd_cov", "conversion", "altered", "app.conv"),
    c(
        "CREATE OPERATOR app.!== (LEFTARG = int, RIGHTARG = int, FUNCTION = app.int_eq)",
        "operator",
        "added",
        "app.!==(integer, integer)",
    ),
    c("DROP OPERATOR app.=== (int, int)", "operator", "dropped", "app.===(integer, integer)"),
    c("ALTER OPERATOR app.=== (int, int) SET (RESTRICT = eqsel)", "operator", "altered", "app.===(integer, integer)"),
    c("COMMENT ON OPERATOR app.=== (int, int) IS 'c'", "operator", "altered", "app.===(integer, integer)"),
    c("CREATE OPERATOR FAMILY app.fam2 USING hash", "operator_family", "added", "app.fam2 USING hash"),
    c(
        "ALTER OPERATOR FAMILY app.cov_fam USING btree ADD FUNCTION 2 (int, int) btint4sortsupport(internal)",
        "operator_family",
        "altered",
        "app.cov_fam USING btree",
    ),
    c("DROP OPERATOR FAMILY app.cov_fam USING btree", "operator_family", "dropped", "app.cov_fam USING btree"),
    c(
        "CREATE OPERATOR CLASS app.cov_ops2 FOR TYPE int USING hash AS OPERATOR 1 =, FUNCTION 1 hashint4(int)",
        "operator_class",
        "added",
        "app.cov_ops2 USING hash",
    ),
    c("DROP OPERATOR CLASS app.cov_ops USING btree", "operator_class", "dropped", "app.cov_ops USING btree"),
    c(
        "COMMENT ON OPERATOR CLASS app.cov_ops USING btree IS 'c'",
        "operator_class",
        "altered",
        "app.cov_ops USING btree",
    ),
    // Text search.
    c(
        "CREATE TEXT SEARCH CONFIGURATION app.cfg2 (COPY = pg_catalog.english)",
        "text_search_configuration",
        "added",
        "app.cfg2",
    ),
    c(
        "ALTER TEXT SEARCH CONFIGURATION app.cfg ALTER MAPPING FOR asciiword WITH english_stem",
        "text_search_configuration",
        "altered",
        "app.cfg",
    ),
    c("DROP TEXT SEARCH CONFIGURATION app.cfg", "text_search_configuration", "dropped", "app.cfg"),
    c("ALTER TEXT SEARCH DICTIONARY app.dict (Accept = false)", "text_search_dictionary", "altered", "app.dict"),
    c(
        "CREATE TEXT SEARCH DICTIONARY app.dict2 (TEMPLATE = pg_catalog.simple)",
        "text_search_dictionary",
        "added",
        "app.dict2",
    ),
    c("COMMENT ON TEXT SEARCH DICTIONARY app.dict IS 'c'", "text_search_dictionary", "altered", "app.dict"),
    c(
        "CREATE TEXT SEARCH PARSER app.prs2 (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, \
         LEXTYPES = prsd_lextype, HEADLINE = prsd_headline)",
        "text_search_parser",
        "added",
        "app.prs2",
    ),
    c("COMMENT ON TEXT SEARCH PARSER app.prs IS 'c'", "text_search_parser", "altered", "app.prs"),
    c("CREATE TEXT SEARCH TEMPLATE app.tmpl2 (LEXIZE = dsimple_lexize)", "text_search_template", "added", "app.tmpl2"),
    c("DROP TEXT SEARCH TEMPLATE app.tmpl", "text_search_template", "dropped", "app.tmpl"),
    // Casts.
    c("CREATE CAST (app.mood AS text) WITH INOUT", "cast", "added", "(app.mood AS text)"),
    c("DROP CAST (app.mood AS integer)", "cast", "dropped", "(app.mood AS integer)"),
    c("COMMENT ON CAST (app.mood AS integer) IS 'c'", "cast", "altered", "(app.mood AS integer)"),
    // Foreign data.
    c("CREATE FOREIGN DATA WRAPPER fdw2", "foreign_data_wrapper", "added", "fdw2"),
    c("ALTER FOREIGN DATA WRAPPER cov_fdw OPTIONS (ADD debug 'true')", "foreign_data_wrapper", "altered", "cov_fdw"),
    c("CREATE SERVER srv2 FOREIGN DATA WRAPPER cov_fdw", "foreign_server", "added", "srv2"),
    c("ALTER SERVER cov_srv OPTIONS (SET host 'b')", "foreign_server", "altered", "cov_srv"),
    c("ALTER SERVER cov_srv VERSION '2'", "foreign_server", "altered", "cov_srv"),
    c("DROP SERVER cov_srv CASCADE", "foreign_server", "dropped", "cov_srv"),
    c("CREATE USER MAPPING FOR pgbd_cov SERVER cov_srv", "user_mapping", "added", "pgbd_cov on cov_srv"),
    c(
        "ALTER USER MAPPING FOR postgres SERVER cov_srv OPTIONS (SET user 'y')",
        "user_mapping",
        "altered",
        "postgres on cov_srv",
    ),
    c("DROP USER MAPPING FOR postgres SERVER cov_srv", "user_mapping", "dropped", "postgres on cov_srv"),
    c("CREATE FOREIGN TABLE app.ft2 (a int) SERVER cov_srv", "foreign_table", "added", "app.ft2"),
    c("ALTER FOREIGN TABLE app.ft OPTIONS (SET table_name 'other')", "foreign_table", "altered", "app.ft"),
    c("ALTER FOREIGN TABLE app.ft ALTER COLUMN a OPTIONS (column_name 'aa')", "foreign_table", "altered", "app.ft"),
    c("ALTER FOREIGN TABLE app.ft ADD COLUMN c int", "foreign_table", "altered", "app.ft"),
    c("DROP FOREIGN TABLE app.ft", "foreign_table", "dropped", "app.ft"),
    // Publications and subscriptions.
    c("CREATE PUBLICATION pub2 FOR ALL TABLES", "publication", "added", "pub2"),
    c("DROP PUBLICATION cov_pub", "publication", "dropped", "cov_pub"),
    c("ALTER PUBLICATION cov_pub ADD TABLE app.u", "publication", "altered", "cov_pub"),
    c("ALTER PUBLICATION cov_pub DROP TABLE app.t", "publication", "altered", "cov_pub"),
    c("ALTER PUBLICATION cov_pub SET (publish = 'insert')", "publication", "altered", "cov_pub"),
    since(150000, c("ALTER PUBLICATION cov_pub SET TABLE app.t WHERE (id > 10)", "publication", "altered", "cov_pub")),
    since(150000, c("ALTER PUBLICATION cov_pub SET TABLE app.t (id, v)", "publication", "altered", "cov_pub")),
    since(150000, c("ALTER PUBLICATION cov_pub ADD TABLES IN SCHEMA empty_s", "publication", "altered", "cov_pub")),
    c("COMMENT ON PUBLICATION cov_pub IS 'c'", "publication", "altered", "cov_pub"),
    c(
        "CREATE SUBSCRIPTION sub2 CONNECTION 'dbname=nowhere' PUBLICATION p WITH (connect = false, slot_name = NONE)",
        "subscription",
        "added",
        "sub2",
    ),
    // Event triggers.
    c("CREATE EVENT TRIGGER evt2 ON ddl_command_end EXECUTE FUNCTION app.evt()", "event_trigger", "added", "evt2"),
    c("DROP EVENT TRIGGER cov_evt", "event_trigger", "dropped", "cov_evt"),
    c("ALTER EVENT TRIGGER cov_evt DISABLE", "event_trigger", "altered", "cov_evt"),
    c("ALTER EVENT TRIGGER cov_evt ENABLE ALWAYS", "event_trigger", "altered", "cov_evt"),
    c("COMMENT ON EVENT TRIGGER cov_evt IS 'c'", "event_trigger", "altered", "cov_evt"),
    // Default privileges.
    c(
        "ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO pgbd_cov",
        "default_privileges",
        "added",
        "for postgres on types",
    ),
    c(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE SELECT ON TABLES FROM pgbd_cov",
        "default_privileges",
        "dropped",
        "for postgres in app on tables",
    ),
    c(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT INSERT ON TABLES TO pgbd_cov",
        "default_privileges",
        "altered",
        "for postgres in app on tables",
    ),
    // Access methods, languages, extensions.
    c("CREATE ACCESS METHOD heap3 TYPE TABLE HANDLER heap_tableam_handler", "access_method", "added", "heap3"),
    c("COMMENT ON ACCESS METHOD heap2 IS 'c'", "access_method", "altered", "heap2"),
    c("CREATE LANGUAGE lang2 HANDLER plpgsql_call_handler", "language", "added", "lang2"),
    c("DROP LANGUAGE cov_lang", "language", "dropped", "cov_lang"),
    c("COMMENT ON LANGUAGE cov_lang IS 'c'", "language", "altered", "cov_lang"),
    c("CREATE EXTENSION cube", "extension", "added", "cube"),
    c("DROP EXTENSION hstore", "extension", "dropped", "hstore"),
    c("COMMENT ON EXTENSION hstore IS 'c'", "extension", "altered", "hstore"),
    c("ALTER EXTENSION hstore SET SCHEMA app", "extension", "altered", "hstore"),
    // The database's settings.
    c("ALTER DATABASE {db} SET work_mem = '8MB'", "database", "altered", "database"),
    c("ALTER ROLE pgbd_cov IN DATABASE {db} SET work_mem = '8MB'", "database", "altered", "database"),
];

/// `pg_dump --schema-only --create` of `db`, with the database's name replaced and the
/// per-run `\restrict` keys removed; None without a suitable pg_dump.
fn dump(db: &str) -> Option<String> {
    let text = harness::schema_dump(&conn(db), &["--create"])?;
    Some(text.replace(db, "DB"))
}

fn summary(all: &[Value]) -> String {
    let list: Vec<String> =
        all.iter().map(|c| format!("{} {} {}", c["op"].as_str().unwrap_or(""), c["kind"], c["object"])).collect();
    list.join("; ")
}

#[test]
fn every_single_schema_change_is_reported() {
    let version = harness::cluster().version_num;
    exec("postgres", &format!("DO $$ BEGIN CREATE ROLE {ROLE}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"));
    let parent = format!("t_cov_{}", std::process::id());
    exec("postgres", &format!("DROP DATABASE IF EXISTS {parent}"));
    exec("postgres", &format!("CREATE DATABASE {parent}"));
    exec(&parent, FIXTURE);
    let parent_dump = dump(&parent);
    if parent_dump.is_none() {
        eprintln!("schema_coverage: no pg_dump for PostgreSQL {version}: the dumps are not compared");
    }
    let started = Instant::now();
    let (mut failures, mut ran) = (vec![], 0);
    let kinds: std::collections::BTreeSet<&str> = CHANGES.iter().map(|c| c.kind).collect();
    for (i, case) in CHANGES.iter().enumerate() {
        if version < case.since {
            continue;
        }
        ran += 1;
        let child = format!("{parent}_c{i}");
        exec("postgres", &format!("CREATE DATABASE {child} TEMPLATE {parent}"));
        exec(&child, &case.sql.replace("{db}", &child));
        let (p, ch) = (conn(&parent), conn(&child));
        let run = cli(&["--format", "json", "--quiet", "--schema-only", &p, &ch], &[]);
        let all = if run.code == 0 || run.code == 1 {
            run.json()["schema_changes"].as_array().cloned().unwrap_or_default()
        } else {
            failures.push(format!("{}: exit {}: {}", case.sql, run.code, run.stderr.trim()));
            vec![]
        };
        let found = all.iter().any(|c| c["kind"] == case.kind && c["op"] == case.op && c["object"] == case.object);
        if !found && run.code <= 1 {
            failures.push(format!(
                "{}: expected {} {} {}, got [{}]",
                case.sql,
                case.op,
                case.kind,
                case.object,
                summary(&all)
            ));
        }
        if let Some(before) = parent_dump.as_ref().filter(|_| case.in_schema_dump) {
            if dump(&child).as_ref() == Some(before) {
                failures.push(format!("{}: pg_dump --schema-only sees no change (a no-op row)", case.sql));
            }
        }
        if case.sql.contains("SUBSCRIPTION") {
            exec(&child, "DROP SUBSCRIPTION sub2");
        }
        exec("postgres", &format!("DROP DATABASE {child}"));
    }
    exec("postgres", &format!("DROP DATABASE {parent}"));
    eprintln!(
        "schema_coverage: {ran} single changes over {} kinds on PostgreSQL {version}, {} failed ({:.1}s)",
        kinds.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(ran >= 100, "only {ran} changes ran");
    assert!(failures.is_empty(), "{} of {ran} single changes:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_object_kind_has_a_coverage_row() {
    let covered: std::collections::BTreeSet<&str> = CHANGES.iter().map(|c| c.kind).collect();
    let kinds: Vec<&str> = diff_core::schema::ObjKind::ALL.iter().map(|k| k.label()).collect();
    let missing: Vec<&&str> = kinds.iter().filter(|k| !covered.contains(**k)).collect();
    assert!(missing.is_empty(), "object kinds without a single-change row: {missing:?}");
}

#[test]
fn rules_inheritance_and_publications_are_labelled_in_json_and_text() {
    let pair = harness::branch(
        "cov_labels",
        "CREATE TABLE base (id int); CREATE TABLE kid () INHERITS (base); CREATE TABLE t (id int PRIMARY KEY);
         CREATE PUBLICATION lab_pub FOR TABLE t; CREATE RULE keep AS ON UPDATE TO t DO ALSO NOTIFY t_changed;",
        "ALTER TABLE kid NO INHERIT base; CREATE RULE no_delete AS ON DELETE TO t DO INSTEAD NOTHING;
         DROP RULE keep ON t; ALTER PUBLICATION lab_pub DROP TABLE t; CREATE COLLATION lab_coll (locale = 'C');",
    );
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run = cli(&["--format", "json", "--quiet", "--schema-only", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let all = run.json()["schema_changes"].as_array().unwrap().clone();
    let get = |op: &str, object: &str| -> Value {
        all.iter()
            .find(|c| c["op"] == op && c["object"] == object)
            .cloned()
            .unwrap_or_else(|| panic!("no {op} {object} in [{}]", summary(&all)))
    };
    let kid = get("altered", "public.kid");
    assert_eq!((kid["before"]["inherits"].as_str(), kid["after"].get("inherits")), (Some("public.base"), None));
    assert_eq!(kid["danger"], serde_json::json!(["results_changed"]));
    let added = get("added", "public.t.no_delete");
    assert_eq!(added["kind"], "rule");
    assert_eq!(added["after"]["definition"], "CREATE RULE no_delete AS\n    ON DELETE TO public.t DO INSTEAD NOTHING;");
    assert_eq!(added["danger"], serde_json::json!(["results_changed"]));
    assert_eq!(get("dropped", "public.t.keep")["danger"], serde_json::json!(["results_changed"]));
    let publication = get("altered", "lab_pub");
    assert_eq!(publication["kind"], "publication");
    assert_eq!(publication["before"]["tables"], "public.t");
    assert_eq!(publication["danger"], serde_json::json!(["replication_changed"]));
    let collation = get("added", "public.lab_coll");
    assert_eq!(
        (collation["kind"].as_str(), collation["danger"].as_array().map(Vec::len)),
        (Some("collation"), Some(0))
    );
    // The text report names the new kinds and their labels too.
    let text = cli(&["--quiet", "--schema-only", &p, &c], &[]);
    for needle in ["public.t.no_delete", "lab_pub", "public.lab_coll", "results_changed", "replication_changed"] {
        assert!(text.stdout.contains(needle), "{needle} not in the text report:\n{}", text.stdout);
    }
    // --ignore takes the new kinds away like the others.
    let ignored =
        cli(&["--format", "json", "--quiet", "--schema-only", "--ignore", "rules,publications,collation", &p, &c], &[]);
    let left = ignored.json()["schema_changes"].as_array().unwrap().clone();
    assert!(left.iter().all(|c| !["rule", "publication", "collation"].contains(&c["kind"].as_str().unwrap())));
    assert!(left.iter().any(|c| c["object"] == "public.kid"));
}
