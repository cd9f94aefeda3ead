//! Schema diff: every object kind, each op (added, dropped, altered, renamed),
//! renames by identity, causes of consequences, danger labels, --ignore.
//! Expected changes are written by hand from each migration.

use serde_json::{json, Value};

use crate::harness::{branch, cli, conn, Pair};

fn changes(pair: &Pair, extra: &[&str]) -> Vec<Value> {
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let mut args = vec!["--format", "json", "--quiet", "--schema-only", p.as_str(), c.as_str()];
    args.extend_from_slice(extra);
    let run = cli(&args, &[]);
    assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
    run.json()["schema_changes"].as_array().unwrap().clone()
}

/// The change to `object` with `op`; panics with the full list when missing.
fn find<'a>(all: &'a [Value], op: &str, object: &str) -> &'a Value {
    all.iter().find(|c| c["op"] == op && c["object"] == object).unwrap_or_else(|| {
        panic!(
            "no {op} {object} in {:#?}",
            all.iter().map(|c| format!("{} {} {}", c["op"], c["kind"], c["object"])).collect::<Vec<_>>()
        )
    })
}

fn has_danger(c: &Value, label: &str) -> bool {
    c["danger"].as_array().unwrap().iter().any(|d| d == label)
}

fn role(tag: &str) -> String {
    let name = format!("pgbd_{tag}_{}", std::process::id());
    crate::harness::exec(
        "postgres",
        &format!("DO $$ BEGIN CREATE ROLE {name}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"),
    );
    name
}

#[test]
fn schemas_and_tables() {
    let owner = role("owner");
    let pair = branch(
        "k_tables",
        "CREATE SCHEMA gone; CREATE TABLE gone.t (id int PRIMARY KEY);
         CREATE SCHEMA oldname; CREATE SCHEMA keep;
         CREATE TABLE keep.plain (id int PRIMARY KEY, v text);
         CREATE TABLE keep.renamed_me (id int);
         CREATE TABLE keep.logged (id int);
         CREATE TABLE keep.parts (id int, at date) PARTITION BY RANGE (at);
         CREATE TABLE keep.p2024 PARTITION OF keep.parts FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE keep.loose (id int, at date);",
        &format!(
            "DROP SCHEMA gone CASCADE; ALTER SCHEMA oldname RENAME TO newname; CREATE SCHEMA fresh;
             COMMENT ON SCHEMA keep IS 'the kept schema';
             ALTER TABLE keep.renamed_me RENAME TO renamed_you;
             ALTER TABLE keep.logged SET UNLOGGED;
             ALTER TABLE keep.plain ENABLE ROW LEVEL SECURITY; ALTER TABLE keep.plain FORCE ROW LEVEL SECURITY;
             ALTER TABLE keep.plain OWNER TO {owner}; GRANT SELECT ON keep.plain TO {owner};
             ALTER TABLE keep.plain SET (fillfactor = 70); COMMENT ON TABLE keep.plain IS 'hello';
             ALTER TABLE keep.parts ATTACH PARTITION keep.loose FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             ALTER TABLE keep.parts DETACH PARTITION keep.p2024;
             CREATE TABLE keep.brand_new (id int NOT NULL);"
        ),
    );
    let all = changes(&pair, &[]);
    assert!(has_danger(find(&all, "dropped", "gone"), "drops_data"));
    assert_eq!(find(&all, "dropped", "gone.t")["cause"], json!("gone"));
    assert_eq!(find(&all, "dropped", "gone.t.id")["cause"], json!("gone"));
    let r = find(&all, "renamed", "newname");
    assert_eq!((r["before"]["name"].clone(), r["after"]["name"].clone()), (json!("oldname"), json!("newname")));
    find(&all, "added", "fresh");
    assert_eq!(find(&all, "altered", "keep")["after"]["comment"], json!("the kept schema"));
    let r = find(&all, "renamed", "keep.renamed_you");
    assert_eq!(r["kind"], json!("table"));
    assert!(has_danger(r, "breaks_clients"));
    assert_eq!(find(&all, "altered", "keep.logged")["after"]["kind"], json!("unlogged"));
    let plain = find(&all, "altered", "keep.plain");
    assert_eq!(plain["after"]["row_security"], json!("true"));
    assert_eq!(plain["after"]["force_row_security"], json!("true"));
    assert_eq!(plain["after"]["owner"], json!(owner));
    assert_eq!(plain["after"]["options"], json!("fillfactor=70"));
    assert_eq!(plain["after"]["comment"], json!("hello"));
    // Granting the owner what it already holds leaves the owner's default privileges: no change.
    assert!(plain["after"].get("privileges").is_none() && plain["before"].get("privileges").is_none(), "{plain:#}");
    assert!(has_danger(plain, "security"));
    let loose = find(&all, "altered", "keep.loose");
    assert_eq!(loose["after"]["partition_of"], json!("keep.parts"));
    assert_eq!(loose["after"]["partition_bound"], json!("FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"));
    let p2024 = find(&all, "altered", "keep.p2024");
    assert_eq!(p2024["before"]["partition_of"], json!("keep.parts"));
    assert!(p2024["after"].get("partition_of").is_none());
    find(&all, "added", "keep.brand_new");
    let col = find(&all, "added", "keep.brand_new.id");
    assert_eq!(col["cause"], json!("keep.brand_new"));
    assert!(col["danger"].as_array().unwrap().is_empty(), "parts of a new table are not dangerous");
    // --ignore hides what a user does not care about.
    let quiet = changes(&pair, &["--ignore", "privileges,ownership,comments"]);
    let plain = find(&quiet, "altered", "keep.plain");
    assert!(plain["after"].get("owner").is_none() && plain["after"].get("privileges").is_none());
    assert!(quiet.iter().all(|c| c["object"] != "keep"), "schema comment ignored");
    let run = cli(&["--ignore", "nonsense", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--ignore nonsense"), "{}", run.stderr);
}

#[test]
fn columns() {
    let grantee = role("colgrant");
    let pair = branch(
        "k_columns",
        "CREATE TABLE t (id int PRIMARY KEY, name varchar(30), note text, qty int NOT NULL, price numeric(12,4),
                         n int DEFAULT 1, d int, code text COLLATE \"C\", gone int, old_name int, total int GENERATED ALWAYS AS (qty * 2) STORED);",
        &format!(
            "ALTER TABLE t ALTER name TYPE varchar(10), ALTER price TYPE numeric(12,2);
             ALTER TABLE t ALTER note SET NOT NULL, ALTER qty DROP NOT NULL;
             ALTER TABLE t ALTER n SET DEFAULT 2, ALTER d SET DEFAULT 5;
             ALTER TABLE t ALTER code TYPE text COLLATE \"POSIX\";
             ALTER TABLE t DROP COLUMN gone; ALTER TABLE t RENAME old_name TO new_name;
             ALTER TABLE t ADD COLUMN added_nn int NOT NULL DEFAULT 0, ADD COLUMN ident bigint GENERATED ALWAYS AS IDENTITY;
             COMMENT ON COLUMN t.id IS 'the key'; GRANT SELECT (note) ON t TO {grantee};
             ALTER TABLE t ADD COLUMN g2 int GENERATED ALWAYS AS (qty + 1) STORED;"
        ),
    );
    let all = changes(&pair, &[]);
    let c = find(&all, "altered", "public.t.name");
    assert_eq!(
        (c["before"]["type"].clone(), c["after"]["type"].clone()),
        (json!("character varying(30)"), json!("character varying(10)"))
    );
    assert!(has_danger(c, "type_change") && has_danger(c, "may_narrow"));
    assert!(has_danger(find(&all, "altered", "public.t.price"), "may_narrow"));
    assert!(has_danger(find(&all, "altered", "public.t.note"), "not_null_added"));
    assert!(has_danger(find(&all, "altered", "public.t.qty"), "not_null_dropped"));
    let n = find(&all, "altered", "public.t.n");
    assert_eq!((n["before"]["default"].clone(), n["after"]["default"].clone()), (json!("1"), json!("2")));
    assert!(has_danger(n, "default_changed"));
    assert_eq!(find(&all, "altered", "public.t.d")["after"]["default"], json!("5"));
    assert_eq!(find(&all, "altered", "public.t.code")["after"]["collation"], json!("POSIX"));
    assert!(has_danger(find(&all, "dropped", "public.t.gone"), "drops_data"));
    let r = find(&all, "renamed", "public.t.new_name");
    assert_eq!(r["before"]["name"], json!("public.t.old_name"));
    let added = find(&all, "added", "public.t.added_nn");
    assert_eq!(added["after"]["not_null"], json!("true"));
    assert_eq!(find(&all, "added", "public.t.ident")["after"]["identity"], json!("always"));
    assert_eq!(find(&all, "altered", "public.t.id")["after"]["comment"], json!("the key"));
    assert!(has_danger(find(&all, "altered", "public.t.note"), "security"), "column privileges");
    let g2 = find(&all, "added", "public.t.g2");
    assert_eq!(g2["after"]["generated"], json!("stored: (qty + 1)"));
    assert!(g2["after"].get("default").is_none(), "a generation expression is not a default");
    // The identity column brings its sequence, tied to the column.
    let seq = all.iter().find(|c| c["kind"] == "sequence" && c["op"] == "added").expect("identity sequence");
    assert_eq!(seq["cause"], json!("public.t.ident"));
}

#[test]
fn constraints_and_indexes() {
    let pair = branch(
        "k_cons",
        "CREATE TABLE p (id int PRIMARY KEY, email text, r tstzrange);
         CREATE TABLE c (id int PRIMARY KEY, p_id int CONSTRAINT c_p_fk REFERENCES p(id), v int, w int);
         CREATE TABLE nokey (id int, v int);
         CREATE INDEX c_v_idx ON c (v); CREATE INDEX c_w_idx ON c (w); CREATE INDEX to_rename ON c (v, w);
         CREATE TABLE later (id int PRIMARY KEY, p_id int);",
        "ALTER TABLE c DROP CONSTRAINT c_p_fk;
         ALTER TABLE nokey ADD PRIMARY KEY (id);
         ALTER TABLE p ADD CONSTRAINT p_email_key UNIQUE (email);
         ALTER TABLE c ADD CONSTRAINT c_v_check CHECK (v > 0);
         ALTER TABLE later ADD CONSTRAINT later_fk FOREIGN KEY (p_id) REFERENCES p(id) NOT VALID;
         ALTER TABLE p ADD CONSTRAINT p_no_overlap EXCLUDE USING gist (r WITH &&);
         DROP INDEX c_v_idx; DROP INDEX c_w_idx; CREATE INDEX c_w_idx ON c (w) WHERE w > 0;
         CREATE UNIQUE INDEX c_vw_uniq ON c (v, w) INCLUDE (id);
         ALTER INDEX to_rename RENAME TO renamed_idx;",
    );
    let all = changes(&pair, &[]);
    assert!(has_danger(find(&all, "dropped", "public.c.c_p_fk"), "foreign_key_dropped"));
    let pk = find(&all, "added", "public.nokey.nokey_pkey");
    assert_eq!(pk["after"]["type"], json!("primary key"));
    assert!(has_danger(pk, "unique_added"));
    assert!(has_danger(find(&all, "added", "public.p.p_email_key"), "unique_added"));
    let chk = find(&all, "added", "public.c.c_v_check");
    assert_eq!(chk["after"]["definition"], json!("CHECK ((v > 0))"));
    assert!(has_danger(chk, "validated_constraint_added"));
    let fk = find(&all, "added", "public.later.later_fk");
    assert_eq!(fk["after"]["validated"], json!("false"));
    assert!(!has_danger(fk, "validated_constraint_added"), "NOT VALID is not a validated add");
    assert_eq!(find(&all, "added", "public.p.p_no_overlap")["after"]["type"], json!("exclusion"));
    find(&all, "dropped", "public.c_v_idx");
    let w = find(&all, "altered", "public.c_w_idx");
    assert_eq!(w["after"]["definition"], json!("CREATE INDEX c_w_idx ON public.c USING btree (w) WHERE (w > 0)"));
    let u = find(&all, "added", "public.c_vw_uniq");
    assert!(has_danger(u, "unique_added"));
    assert!(u["after"]["definition"].as_str().unwrap().contains("INCLUDE (id)"));
    find(&all, "renamed", "public.renamed_idx");
}

#[test]
fn validating_a_constraint_is_an_alteration() {
    let pair = branch(
        "k_validate",
        "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (id int, p_id int);
         ALTER TABLE c ADD CONSTRAINT c_fk FOREIGN KEY (p_id) REFERENCES p(id) NOT VALID;",
        "ALTER TABLE c VALIDATE CONSTRAINT c_fk;",
    );
    let all = changes(&pair, &[]);
    let v = find(&all, "altered", "public.c.c_fk");
    assert_eq!((v["before"]["validated"].clone(), v["after"]["validated"].clone()), (json!("false"), json!("true")));
    assert!(has_danger(v, "validated_constraint_added"));
}

#[test]
fn views_and_a_destructive_migration() {
    let pair = branch(
        "k_views",
        "CREATE TABLE customers (id int PRIMARY KEY, email text, phone text);
         CREATE VIEW contact AS SELECT id, email FROM customers;
         CREATE VIEW phones AS SELECT id, phone FROM customers;
         CREATE VIEW to_rename AS SELECT 1 AS one;
         CREATE MATERIALIZED VIEW stats AS SELECT count(*) AS n FROM customers;
         CREATE MATERIALIZED VIEW old_stats AS SELECT 1 AS x;",
        "ALTER TABLE customers DROP COLUMN phone CASCADE;
         CREATE OR REPLACE VIEW contact AS SELECT id, email, upper(email) AS shout FROM customers;
         ALTER VIEW to_rename RENAME TO renamed_view;
         DROP MATERIALIZED VIEW old_stats; CREATE VIEW fresh AS SELECT 2 AS two;
         ALTER MATERIALIZED VIEW stats SET (fillfactor = 50);",
    );
    let all = changes(&pair, &[]);
    let col = find(&all, "dropped", "public.customers.phone");
    assert!(has_danger(col, "drops_data"));
    assert!(col.get("cause").is_none());
    // The view went because the column it used went: tied to it, not counted on its own.
    let v = find(&all, "dropped", "public.phones");
    assert_eq!(v["kind"], json!("view"));
    assert_eq!(v["cause"], json!("public.customers.phone"));
    let contact = find(&all, "altered", "public.contact");
    // PostgreSQL 16+ prints columns of a one-table view unqualified: match either spelling.
    assert!(contact["after"]["definition"].as_str().unwrap().contains("AS shout"), "{contact:#}");
    assert!(!contact["before"]["definition"].as_str().unwrap().contains("shout"), "{contact:#}");
    find(&all, "renamed", "public.renamed_view");
    let mv = find(&all, "dropped", "public.old_stats");
    assert_eq!(mv["kind"], json!("materialized_view"));
    assert!(has_danger(mv, "drops_data"));
    assert_eq!(find(&all, "altered", "public.stats")["after"]["options"], json!("fillfactor=50"));
    find(&all, "added", "public.fresh");
}

#[test]
fn sequences() {
    let pair = branch(
        "k_seq",
        "CREATE SEQUENCE s1; CREATE SEQUENCE s2; CREATE TABLE t (id serial PRIMARY KEY, v int);",
        "ALTER SEQUENCE s1 INCREMENT BY 5 MAXVALUE 1000 CYCLE; DROP SEQUENCE s2; CREATE SEQUENCE s3 START 10;
         ALTER TABLE t DROP COLUMN id;",
    );
    let all = changes(&pair, &[]);
    let s1 = find(&all, "altered", "public.s1");
    assert_eq!(s1["after"]["increment"], json!("5"));
    assert_eq!(s1["after"]["max"], json!("1000"));
    assert_eq!(s1["after"]["cycle"], json!("true"));
    assert!(has_danger(find(&all, "dropped", "public.s2"), "drops_data"));
    assert_eq!(find(&all, "added", "public.s3")["after"]["start"], json!("10"));
    // The serial's sequence was dropped with its owning column.
    let owned = find(&all, "dropped", "public.t_id_seq");
    assert_eq!(owned["before"]["owned_by"], json!("public.t.id"));
    assert_eq!(owned["cause"], json!("public.t.id"));
}

#[test]
fn overloaded_functions_procedures_and_triggers() {
    let pair = branch(
        "k_funcs",
        "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'SELECT a + 1';
         CREATE FUNCTION f(a text) RETURNS text LANGUAGE sql AS 'SELECT a || ''!''';
         CREATE FUNCTION g() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
         CREATE FUNCTION old_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1';
         CREATE TABLE t (id int, v int);
         CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
         CREATE TRIGGER t_ins BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg();
         CREATE TRIGGER t_upd BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg();
         CREATE TRIGGER t_gone AFTER DELETE ON t FOR EACH ROW EXECUTE FUNCTION trg();",
        "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'SELECT a + 2';
         CREATE FUNCTION f(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
         ALTER FUNCTION g() VOLATILE; ALTER FUNCTION g() SECURITY DEFINER;
         ALTER FUNCTION old_fn() RENAME TO new_fn;
         DROP PROCEDURE p(); CREATE PROCEDURE q(x int) LANGUAGE sql AS 'SELECT 1';
         ALTER TABLE t DISABLE TRIGGER t_ins;
         DROP TRIGGER t_upd ON t; CREATE TRIGGER t_upd BEFORE UPDATE ON t FOR EACH ROW WHEN (NEW.v > 0) EXECUTE FUNCTION trg();
         DROP TRIGGER t_gone ON t; CREATE TRIGGER t_new AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION trg();",
    );
    let all = changes(&pair, &[]);
    let f = find(&all, "altered", "public.f(a integer)");
    assert!(f["after"]["definition"].as_str().unwrap().contains("a + 2"));
    assert!(all.iter().all(|c| c["object"] != "public.f(a text)"), "the other overload is untouched");
    find(&all, "added", "public.f(a integer, b integer)");
    let g = find(&all, "altered", "public.g()");
    assert_eq!(
        (g["before"]["volatility"].clone(), g["after"]["volatility"].clone()),
        (json!("immutable"), json!("volatile"))
    );
    assert!(has_danger(g, "security"));
    find(&all, "renamed", "public.new_fn()");
    assert_eq!(find(&all, "dropped", "public.p()")["kind"], json!("procedure"));
    // PostgreSQL 14+ spells procedure arguments with their mode (`IN x integer`), 13 without.
    assert!(all.iter().any(|c| c["op"] == "added"
        && c["kind"] == "procedure"
        && (c["object"] == "public.q(IN x integer)" || c["object"] == "public.q(x integer)")));
    assert_eq!(find(&all, "altered", "public.t.t_ins")["after"]["enabled"], json!("disabled"));
    assert!(find(&all, "altered", "public.t.t_upd")["after"]["definition"]
        .as_str()
        .unwrap()
        .contains("WHEN ((new.v > 0))"));
    find(&all, "dropped", "public.t.t_gone");
    find(&all, "added", "public.t.t_new");
}

#[test]
fn types_extensions_and_policies() {
    let reader = role("reader");
    let pair = branch(
        "k_types",
        "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TYPE color AS ENUM ('red', 'blue');
         CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE DOMAIN gone_dom AS text;
         CREATE TYPE pair AS (a int, b text);
         CREATE TABLE docs (id int, owner text);
         CREATE POLICY own ON docs USING (owner = current_user);
         CREATE POLICY old_pol ON docs FOR SELECT USING (true);",
        &format!(
            "ALTER TYPE mood ADD VALUE 'happy'; ALTER TYPE color RENAME VALUE 'blue' TO 'navy';
             ALTER DOMAIN posint ADD CONSTRAINT small CHECK (VALUE < 1000); ALTER DOMAIN posint SET DEFAULT 1;
             DROP DOMAIN gone_dom; ALTER TYPE pair ADD ATTRIBUTE c date;
             DO $x$ BEGIN IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN CREATE EXTENSION pg_trgm; END IF; END $x$;
             ALTER POLICY own ON docs USING (owner = session_user); DROP POLICY old_pol ON docs;
             CREATE POLICY readers ON docs FOR SELECT TO {reader} USING (true);"
        ),
    );
    let all = changes(&pair, &[]);
    let mood = find(&all, "altered", "public.mood");
    assert_eq!(mood["after"]["labels"], json!("'sad', 'ok', 'happy'"));
    assert!(!has_danger(mood, "breaks_clients"), "appending a label breaks nobody");
    assert!(has_danger(find(&all, "altered", "public.color"), "breaks_clients"));
    let d = find(&all, "altered", "public.posint");
    assert_eq!(d["after"]["constraints"], json!("posint_check CHECK ((VALUE > 0)); small CHECK ((VALUE < 1000))"));
    assert!(has_danger(d, "default_changed"));
    assert_eq!(find(&all, "dropped", "public.gone_dom")["kind"], json!("domain"));
    assert_eq!(find(&all, "altered", "public.pair")["after"]["attributes"], json!("a integer, b text, c date"));
    let available: bool = crate::harness::connect(&pair.child)
        .query_one("SELECT count(*) > 0 FROM pg_extension WHERE extname = 'pg_trgm'", &[])
        .unwrap()
        .get(0);
    if available {
        let e = find(&all, "added", "pg_trgm");
        assert_eq!(e["kind"], json!("extension"));
        assert!(
            all.iter().all(|c| !c["object"].as_str().unwrap().contains("similarity")),
            "extension members are not listed"
        );
    }
    let own = find(&all, "altered", "public.docs.own");
    assert!(own["after"]["using"].as_str().unwrap().contains("SESSION_USER"), "{own:#}");
    assert!(has_danger(own, "security"));
    assert!(has_danger(find(&all, "dropped", "public.docs.old_pol"), "security"));
    assert_eq!(find(&all, "added", "public.docs.readers")["after"]["roles"], json!(reader));
}

#[test]
fn renames_without_identity_are_inferred() {
    // A logical restore on another cluster: no shared OIDs, so renames are inferred
    // conservatively, confirmed by the data, said so, and the rows are still compared under the
    // new names. A guess the data refutes is reported as the drop and the add it is.
    let setup = "CREATE TABLE orders (id int PRIMARY KEY, total numeric, note text);
                 CREATE TABLE items (id int PRIMARY KEY, qty int, note text);
                 INSERT INTO orders SELECT i, i, 'n' FROM generate_series(1, 10) i;
                 INSERT INTO items SELECT i, i, 'n' || i FROM generate_series(1, 10) i;
                 CREATE TABLE ordered (id int PRIMARY KEY, a int, b text);
                 CREATE TABLE prices (id int PRIMARY KEY, price numeric);
                 INSERT INTO prices SELECT i, i * 1.5 FROM generate_series(1, 10) i;
                 CREATE TABLE old_log (id int PRIMARY KEY, msg text);
                 INSERT INTO old_log SELECT i, 'm' FROM generate_series(1, 5) i;";
    let pair = branch("k_infer", setup, "");
    let other = crate::harness::second_cluster();
    let db = format!("{}_restored", pair.parent);
    let base = &other.base;
    let exec2 = |db: &str, sql: &str| {
        postgres::Client::connect(&format!("{base} dbname={db}"), postgres::NoTls).unwrap().batch_execute(sql).unwrap()
    };
    exec2("postgres", &format!("CREATE DATABASE {db}"));
    exec2(&db, setup);
    exec2(
        &db,
        "DROP TABLE ordered; CREATE TABLE ordered (id int PRIMARY KEY, b text, a int);
         ALTER TABLE orders RENAME TO purchases; ALTER TABLE items RENAME note TO remark;
         UPDATE purchases SET total = 0 WHERE id = 3; UPDATE items SET qty = 0 WHERE id = 4;
         ALTER TABLE prices DROP COLUMN price; ALTER TABLE prices ADD COLUMN discount numeric;
         DROP TABLE old_log; CREATE TABLE new_log (id int PRIMARY KEY, msg text);
         INSERT INTO new_log SELECT i, 'm' FROM generate_series(100, 102) i;",
    );
    let run = cli(&["--format", "json", "--quiet", &conn(&pair.parent), &format!("{base} dbname={db}")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    let all = doc["schema_changes"].as_array().unwrap().clone();
    let t = find(&all, "renamed", "public.purchases");
    assert_eq!(t["note"], json!("rename inferred: same columns and types, confirmed by the data"));
    let c = find(&all, "renamed", "public.items.remark");
    assert_eq!(c["note"], json!("rename inferred: same type and position, confirmed by the data"));
    assert_eq!(crate::harness::counts(&doc, "public.purchases"), (0, 1, 0));
    let items = crate::harness::table(&doc, "public.items");
    assert_eq!(items["rows"][0]["changed"], json!(["qty"]));
    // price held 10 values, discount holds NULLs: not a rename, a dropped column and an added one.
    assert!(has_danger(find(&all, "dropped", "public.prices.price"), "drops_data"));
    find(&all, "added", "public.prices.discount");
    assert_eq!(crate::harness::table(&doc, "public.prices")["columns"], json!(["id"]));
    // old_log held keys 1..5, new_log holds 100..102: a dropped table and a new one.
    assert!(has_danger(find(&all, "dropped", "public.old_log"), "drops_data"));
    find(&all, "added", "public.new_log");
    // Restored with another column order: positions are reported.
    let a = find(&all, "altered", "public.ordered.a");
    assert_eq!((a["before"]["position"].clone(), a["after"]["position"].clone()), (json!("2"), json!("3")));
    // No lineage here: the table was not rewritten, whatever its relfilenode.
    assert!(all.iter().all(|c| !has_danger(c, "table_rewritten")));
}

#[test]
fn generation_expression_changed() {
    // ALTER COLUMN … SET EXPRESSION exists from PostgreSQL 17 on.
    if crate::harness::cluster().version_num < 170000 {
        return;
    }
    let pair = branch(
        "k_genexpr",
        "CREATE TABLE t (id int PRIMARY KEY, qty int, total int GENERATED ALWAYS AS (qty * 2) STORED);",
        "ALTER TABLE t ALTER total SET EXPRESSION AS (qty * 3);",
    );
    let all = changes(&pair, &[]);
    let g = find(&all, "altered", "public.t.total");
    assert_eq!(
        (g["before"]["generated"].clone(), g["after"]["generated"].clone()),
        (json!("stored: (qty * 2)"), json!("stored: (qty * 3)"))
    );
}

/// A table without an ACL has its owner's default privileges, and the text report says so
/// rather than "(none)" when a GRANT gives it one.
#[test]
fn privileges_first_granted_read_from_the_defaults() {
    let pair = branch("privdefault", "CREATE TABLE t (id int);", "GRANT SELECT ON t TO PUBLIC;");
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run = cli(&["--schema-only", "--color", "never", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("privileges (defaults) → {"), "{}", run.stdout);
    assert!(!run.stdout.contains("(none)"), "{}", run.stdout);
}
