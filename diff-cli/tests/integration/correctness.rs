//! One test per class of wrong answer found against an independent oracle:
//! tuple identity when the catalog changed what an untouched tuple reads as,
//! lineage between unrelated databases of one cluster, keys that are keys on
//! one side only, unsigned keys, generated SQL and column names, row-level
//! security, filters on renamed tables, one equality rule at every depth,
//! column-level privileges and non-UTF-8 databases. Expected values are worked
//! out by hand from each fixture.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;

use crate::harness::{branch, cli, cluster, conn, counts, diff_json, exec, table, Pair};

/// The strategy each table was read with and why the one asked for was not used.
fn stats<'a>(doc: &'a serde_json::Value, t: &str) -> &'a serde_json::Value {
    &table(doc, t)["stats"]
}

fn schema_changes(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["schema_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["op"].as_str().unwrap().to_string(), c["object"].as_str().unwrap().to_string()))
        .collect()
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Two databases of the test cluster built from SQL, without TEMPLATE: what
/// `pg_dump | psql` into another database of the same cluster gives.
fn restored(tag: &str, parent_sql: &str, child_sql: &str) -> Pair {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let parent = format!("r_{tag}_{}_{n}", std::process::id());
    let child = format!("{parent}_b");
    for (db, sql) in [(&parent, parent_sql), (&child, child_sql)] {
        exec("postgres", &format!("CREATE DATABASE {db}"));
        exec(db, sql);
    }
    Pair { parent, child }
}

/// A connection string for `db` as another role.
fn conn_as(role: &str, db: &str) -> String {
    conn(db).replace("user=postgres", &format!("user={role}"))
}

// 1. Tuple identity must not trust untouched tuples whose reading changed.

#[test]
fn identity_and_renamed_enum_labels() {
    // 1000 rows; i % 3 = 0 holds for 333 of them: those read 'b', and read 'bee' after the rename.
    let pair = branch(
        "enumlabel",
        "CREATE TYPE st AS ENUM ('a', 'b');
         CREATE TABLE t (id int PRIMARY KEY, s st, arr st[]);
         INSERT INTO t SELECT i, (CASE WHEN i % 3 = 0 THEN 'b' ELSE 'a' END)::st, '{a}' FROM generate_series(1, 1000) i;",
        "ALTER TYPE st RENAME VALUE 'b' TO 'bee'; ALTER TYPE st ADD VALUE 'c';",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 333, 0));
    assert_eq!(stats(&doc, "public.t")["strategy"], "stream");
    assert!(stats(&doc, "public.t")["fallback"].as_str().unwrap().contains("column s"), "{doc:#}");

    // Only a label added: every stored value still reads the same, identity stays.
    let pair = branch(
        "enumadd",
        "CREATE TYPE st AS ENUM ('a', 'b'); CREATE TABLE t (id int PRIMARY KEY, s st);
         INSERT INTO t SELECT i, 'a' FROM generate_series(1, 100) i;",
        "ALTER TYPE st ADD VALUE 'c';",
    );
    // A new label is usable only after the transaction that added it.
    exec(&pair.child, "UPDATE t SET s = 'c' WHERE id <= 7;");
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 7, 0));
    assert_eq!(stats(&doc, "public.t")["strategy"], "identity");
}

#[test]
fn identity_and_composite_attributes() {
    // Ten rows print '(i)' before and '(i,)' after the attribute is added.
    let pair = branch(
        "composite",
        "CREATE TYPE pt AS (x int); CREATE TABLE t (id int PRIMARY KEY, p pt);
         INSERT INTO t SELECT i, ROW(i)::pt FROM generate_series(1, 10) i; INSERT INTO t VALUES (11, NULL);",
        "ALTER TYPE pt ADD ATTRIBUTE y int;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 10, 0));
    assert_eq!(table(&doc, "public.t")["rows"][0]["after"]["p"], json!("(1,)"));
}

#[test]
fn identity_and_rewrite_free_type_change() {
    // timestamp → timestamptz under TimeZone UTC does not rewrite: the stored
    // microseconds now mean instants, which is what the cast gives. One row really changed.
    let pair = branch(
        "tstz",
        "CREATE TABLE t (id int PRIMARY KEY, at timestamp);
         INSERT INTO t SELECT i, '2024-01-01'::timestamp + i * interval '1 hour' FROM generate_series(1, 50) i;",
        "SET TimeZone = 'UTC'; ALTER TABLE t ALTER at TYPE timestamptz; UPDATE t SET at = at + interval '1 second' WHERE id = 7;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 1, 0));
    let row = &table(&doc, "public.t")["rows"][0];
    assert_eq!(row["before"]["at"], json!("2024-01-01 07:00:00"));
    assert_eq!(row["after"]["at"], json!("2024-01-01 07:00:01+00"));
}

#[test]
fn identity_and_regclass_names() {
    // Five values name `target`; renaming it changes how they print.
    let pair = branch(
        "regclass",
        "CREATE TABLE target (id int PRIMARY KEY);
         CREATE TABLE r (id int PRIMARY KEY, c regclass);
         INSERT INTO r SELECT i, 'public.target'::regclass FROM generate_series(1, 5) i;
         INSERT INTO r VALUES (6, 'pg_catalog.pg_class'::regclass);",
        "ALTER TABLE target RENAME TO target2;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.r"), (0, 5, 0));
    assert_eq!(table(&doc, "public.r")["rows"][0]["after"]["c"], json!("public.target2"));
}

#[test]
fn identity_and_missing_values() {
    // The same column added after branching on both sides, with different defaults: the 100
    // untouched tuples read 1 on the parent and 2 on the child.
    let pair = branch(
        "missing",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);",
        "ALTER TABLE t ADD COLUMN x int DEFAULT 2;",
    );
    exec(&pair.parent, "ALTER TABLE t ADD COLUMN x int DEFAULT 1;");
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 100, 0));
}

#[test]
fn identity_and_virtual_generated_columns() {
    if cluster().version_num < 180000 {
        return; // virtual generated columns exist from PostgreSQL 18 on
    }
    let pair = branch(
        "virtual",
        "CREATE TABLE t (id int PRIMARY KEY, g int GENERATED ALWAYS AS (id * 2) VIRTUAL);
         INSERT INTO t (id) SELECT generate_series(1, 20);",
        "ALTER TABLE t ALTER g SET EXPRESSION AS (id * 3);",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 20, 0));
}

// 2. Lineage is per object.

#[test]
fn restore_on_the_same_cluster_is_not_a_branch() {
    let sql =
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT i, 'v' || i FROM generate_series(1, 30) i;
               CREATE TABLE b (id int PRIMARY KEY, n int); INSERT INTO b SELECT i, i FROM generate_series(1, 5) i;
               CREATE VIEW va AS SELECT id FROM a;";
    let pair = restored("restore", sql, sql);
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(schema_changes(&doc), Vec::<(String, String)>::new(), "{doc:#}");
    assert_eq!(code, 0);
    assert_eq!(counts(&doc, "public.a"), (0, 0, 0));

    // A renamed table is inferred (same columns), not dropped and added.
    let renamed = sql.replace("TABLE b ", "TABLE b2 ").replace("INTO b ", "INTO b2 ");
    let pair = restored("restore_rn", sql, &renamed);
    let (_, doc) = diff_json(&pair, &[]);
    let changes = schema_changes(&doc);
    assert!(changes.contains(&("renamed".to_string(), "public.b2".to_string())), "{doc:#}");
    assert!(!changes.iter().any(|(_, o)| o == "public.b" || o == "public.a"), "{doc:#}");
    assert_eq!(counts(&doc, "public.b2"), (0, 0, 0));
}

// 3. Keys.

#[test]
fn include_columns_are_not_key_columns() {
    let pair = branch(
        "include",
        "CREATE TABLE t (id int, v int, PRIMARY KEY (id) INCLUDE (v));
         INSERT INTO t SELECT i, i FROM generate_series(1, 10) i;
         CREATE TABLE u (a int NOT NULL, b int); CREATE UNIQUE INDEX u_a ON u (a) INCLUDE (b);
         INSERT INTO u SELECT i, NULL FROM generate_series(1, 10) i;",
        "UPDATE t SET v = 0 WHERE id = 3; UPDATE u SET b = 1 WHERE a = 4;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 1, 0));
    assert_eq!(table(&doc, "public.t")["key"], json!(["id"]));
    assert_eq!(counts(&doc, "public.u"), (0, 1, 0));
    assert_eq!(table(&doc, "public.u")["key_source"], json!({"source": "unique_index", "name": "u_a"}));
}

#[test]
fn a_key_on_one_side_only_is_no_key() {
    // The branch drops the primary key, duplicates row 1 and changes row 2: as a multiset of
    // whole rows that is (1,'one') and (2,'x') inserted, (2,'two') deleted.
    let pair = branch(
        "onesided",
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');",
        "ALTER TABLE t DROP CONSTRAINT t_pkey; INSERT INTO t VALUES (1, 'one'); UPDATE t SET v = 'x' WHERE id = 2;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(table(&doc, "public.t")["key_source"], json!({"source": "whole_row"}));
    assert_eq!(counts(&doc, "public.t"), (2, 0, 1));
}

#[test]
fn not_valid_not_null_is_not_a_guarantee() {
    if cluster().version_num < 180000 {
        return; // NOT NULL … NOT VALID exists from PostgreSQL 18 on
    }
    // attnotnull is set although a NULL remains, so the unique index on `a` is no key: the
    // changed row is a deletion and an insertion of whole rows, not an update under key `a`.
    let pair = branch(
        "nnnotvalid",
        "CREATE TABLE n (a int, v int); INSERT INTO n VALUES (NULL, 1), (1, 2), (2, 3);
         ALTER TABLE n ADD CONSTRAINT a_nn NOT NULL a NOT VALID; CREATE UNIQUE INDEX n_a ON n (a);",
        "UPDATE n SET v = 10 WHERE a = 1;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(table(&doc, "public.n")["key_source"], json!({"source": "whole_row"}));
    assert_eq!(counts(&doc, "public.n"), (1, 0, 1));
}

#[test]
fn a_key_given_over_duplicates_is_an_error() {
    let pair = branch(
        "dupkey",
        "CREATE TABLE d (k int, v int); INSERT INTO d VALUES (1, 1), (2, 2), (2, 3), (3, 4);",
        "UPDATE d SET v = 5 WHERE k = 3;",
    );
    for strategy in ["auto", "stream", "hash"] {
        let run = cli(
            &[
                "--key",
                "public.d=k",
                "--strategy",
                strategy,
                "--format",
                "json",
                &conn(&pair.parent),
                &conn(&pair.child),
            ],
            &[],
        );
        assert_eq!(run.code, 2, "{strategy}: {}", run.stdout);
        assert!(run.stdout.is_empty());
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("public.d") && run.stderr.contains("k=2"), "{}", run.stderr);
    }
}

// 4. Unsigned keys.

#[test]
fn oid_keys_beyond_two_to_the_31() {
    let pair = branch(
        "oidkey",
        "CREATE TABLE o (k oid PRIMARY KEY, v int);
         INSERT INTO o VALUES (1, 1), (2147483647, 2), (2147483648, 3), (3000000000, 4), (4294967295, 5);",
        "UPDATE o SET v = 40 WHERE k = 3000000000; DELETE FROM o WHERE k = 4294967295; INSERT INTO o VALUES (4000000000, 6);",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.o"), (1, 1, 1));
    let keys: Vec<&serde_json::Value> =
        table(&doc, "public.o")["rows"].as_array().unwrap().iter().map(|r| &r["key"]["k"]).collect();
    assert_eq!(keys, [&json!(3000000000u64), &json!(4000000000u64), &json!(4294967295u64)]);
}

// 5. Generated SQL qualifies every identifier.

#[test]
fn hash_strategy_and_column_names_it_uses_itself() {
    let pair = branch(
        "hashnames",
        "CREATE TABLE h (i int PRIMARY KEY, lo int, hi int, w text, pgbd_r int);
         INSERT INTO h SELECT g, g, g, 'w' || g, g FROM generate_series(1, 3000) g;",
        "UPDATE h SET w = 'x' WHERE i IN (10, 2000); DELETE FROM h WHERE i = 1500;",
    );
    let (_, doc) = diff_json(&pair, &["--strategy", "hash"]);
    assert_eq!(counts(&doc, "public.h"), (0, 2, 1));
    assert_eq!(stats(&doc, "public.h")["strategy"], "hash");
    diff_json(&pair, &[]);
}

// 6. Row-level security.

#[test]
fn row_level_security_is_an_error_not_a_filter() {
    let role = format!("rls_{}", std::process::id());
    exec("postgres", &format!("CREATE ROLE {role} LOGIN"));
    let setup = format!(
        "CREATE TABLE secret (id int PRIMARY KEY, owner text);
         INSERT INTO secret SELECT i, CASE WHEN i <= 3 THEN '{role}' ELSE 'other' END FROM generate_series(1, 10) i;
         ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON secret USING (owner = current_user);
         GRANT SELECT ON secret TO {role};"
    );
    let pair = branch("rls", &setup, "DELETE FROM secret WHERE id = 8;");
    let run = cli(&["--format", "json", &conn_as(&role, &pair.parent), &conn_as(&role, &pair.child)], &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.is_empty());
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("public.secret") && run.stderr.contains("BYPASSRLS"), "{}", run.stderr);
    // The owner sees every row: the one deletion.
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.secret"), (0, 0, 1));
}

// 7. Filters match a renamed table by either name.

#[test]
fn filters_and_renamed_tables() {
    let pair = branch(
        "filterrename",
        "CREATE TABLE old_t (id int PRIMARY KEY, v int); INSERT INTO old_t SELECT i, i FROM generate_series(1, 5) i;
         CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other VALUES (1);",
        "ALTER TABLE old_t RENAME TO new_t; UPDATE new_t SET v = 0 WHERE id = 1; DELETE FROM other;",
    );
    let tables = |doc: &serde_json::Value| -> Vec<String> {
        doc["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    for excluded in ["public.new_t", "public.old_t"] {
        let (_, doc) = diff_json(&pair, &["-T", excluded]);
        assert_eq!(tables(&doc), ["other"], "-T {excluded}");
        assert!(schema_changes(&doc).is_empty(), "-T {excluded}: {doc:#}");
    }
    for included in ["public.new_t", "public.old_t"] {
        let (_, doc) = diff_json(&pair, &["-t", included]);
        assert_eq!(tables(&doc), ["new_t"], "-t {included}");
        assert_eq!(counts(&doc, "public.new_t"), (0, 1, 0));
        assert_eq!(schema_changes(&doc), [("renamed".to_string(), "public.new_t".to_string())], "-t {included}");
    }
}

// 8. One rule for equality: values are equal when PostgreSQL prints them the same.

#[test]
fn equality_is_the_same_at_every_depth_in_keys_and_values() {
    let setup = "CREATE TYPE nc AS (n numeric, f float8);
        CREATE TABLE k (id int PRIMARY KEY, n numeric, f float8, na numeric[], fa float8[], c nc, r numrange, j jsonb);
        CREATE TABLE w (n numeric, f float8, na numeric[], fa float8[], c nc, r numrange, j jsonb);
        INSERT INTO k VALUES (1, 1.0, 0, '{1.0}', '{0}', '(1.0,0)', '[1.0,2.0)', '{\"x\": 1.0, \"y\": 2}');
        INSERT INTO k SELECT 2, n, f, na, fa, c, r, j FROM k;
        INSERT INTO w SELECT n, f, na, fa, c, r, j FROM k;";
    // Row 1: every column printed differently (scale, -0, inside arrays, composites, ranges,
    // jsonb). Row 2: rewritten to values printed the same (jsonb key order is not kept).
    let change = "UPDATE k SET n = 1.00, f = '-0', na = '{1.00}', fa = '{-0}', c = '(1.00,-0)', r = '[1.00,2.0)',
                      j = '{\"x\": 1.00, \"y\": 2}' WHERE id = 1;
                  UPDATE k SET n = 1.0, f = 0, na = '{1.0}', fa = '{0}', j = '{\"y\": 2, \"x\": 1.0}' WHERE id = 2;
                  DELETE FROM w; INSERT INTO w SELECT n, f, na, fa, c, r, j FROM k;";
    let pair = branch("equality", setup, change);
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.k"), (0, 1, 0));
    assert_eq!(table(&doc, "public.k")["rows"][0]["changed"], json!(["n", "f", "na", "fa", "c", "r", "j"]));
    // Keyless: the whole row is the key, so the changed row is one deletion and one insertion.
    assert_eq!(counts(&doc, "public.w"), (1, 0, 1));

    // Keys follow the same rule.
    let pair = branch(
        "eqkeys",
        "CREATE TABLE nk (k numeric PRIMARY KEY, v int); INSERT INTO nk VALUES (1.0, 1), (2.5, 2);
         CREATE TABLE fk (k float8 PRIMARY KEY, v int); INSERT INTO fk VALUES (0, 1), (1.5, 2);",
        "UPDATE nk SET k = 1.00 WHERE k = 1.0; UPDATE fk SET k = '-0' WHERE k = 0; UPDATE nk SET v = 3 WHERE k = 2.5;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.nk"), (1, 1, 1));
    assert_eq!(counts(&doc, "public.fk"), (1, 0, 1));
}

#[test]
fn changed_key_types_compare_in_the_new_type() {
    // numeric → float8 and timestamp → timestamptz keys: the parent's values cast the way the
    // migration cast them equal the child's, so only the one real change shows.
    let pair = branch(
        "keytypes_changed",
        "CREATE TABLE a (k numeric PRIMARY KEY, v int); INSERT INTO a SELECT i / 4.0, i FROM generate_series(1, 40) i;
         CREATE TABLE b (k timestamp PRIMARY KEY, v int);
         INSERT INTO b SELECT '2024-01-01'::timestamp + i * interval '1 minute', i FROM generate_series(1, 40) i;",
        "SET TimeZone = 'UTC'; ALTER TABLE a ALTER k TYPE float8; ALTER TABLE b ALTER k TYPE timestamptz;
         UPDATE a SET v = 0 WHERE v = 5; UPDATE b SET v = 0 WHERE v = 5;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.a"), (0, 1, 0));
    assert_eq!(counts(&doc, "public.b"), (0, 1, 0));
}

// 9. Column-level privileges.

#[test]
fn column_grants_stream_the_permitted_columns() {
    let role = format!("cols_{}", std::process::id());
    exec("postgres", &format!("CREATE ROLE {role} LOGIN"));
    let pair = branch(
        "colgrants",
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v int, secret text);
             INSERT INTO t SELECT i, i, 's' FROM generate_series(1, 20) i;
             GRANT SELECT (id, v) ON t TO {role};"
        ),
        "UPDATE t SET v = 0 WHERE id IN (1, 2); UPDATE t SET secret = 'x' WHERE id = 3;",
    );
    let (p, c) = (conn_as(&role, &pair.parent), conn_as(&role, &pair.child));
    let run = cli(&["--format", "json", &p, &c], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("public.t.secret") && run.stderr.contains("--exclude-columns"), "{}", run.stderr);
    let run = cli(&["--format", "json", "--exclude-columns", "t.secret", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(counts(&doc, "public.t"), (0, 2, 0));
    assert!(stats(&doc, "public.t")["fallback"].as_str().unwrap().contains("privilege"), "{doc:#}");
}

// 10. Databases that are not UTF-8.

#[test]
fn win1252_text_keys() {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let parent = format!("w1252_{}_{n}", std::process::id());
    let child = format!("{parent}_b");
    exec(
        "postgres",
        &format!("CREATE DATABASE {parent} ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"),
    );
    // In WIN1252, € (0x80) sorts before é (0xE9); in UTF-8, é (C3 A9) before € (E2 82 AC).
    exec(
        &parent,
        "CREATE TABLE w (k text PRIMARY KEY, v int);
         INSERT INTO w VALUES ('a', 1), ('z', 2), ('€', 3), ('é', 4), ('€uro', 5), ('éa', 6), ('Ü', 7);",
    );
    exec("postgres", &format!("CREATE DATABASE {child} TEMPLATE {parent}"));
    exec(&child, "UPDATE w SET v = 30 WHERE k = '€'; DELETE FROM w WHERE k = 'éa'; INSERT INTO w VALUES ('ß', 8);");
    let pair = Pair { parent, child };
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.w"), (1, 1, 1));
    let keys: Vec<&serde_json::Value> =
        table(&doc, "public.w")["rows"].as_array().unwrap().iter().map(|r| &r["key"]["k"]).collect();
    // UTF-8 byte order: ß (C3 9F) < éa (C3 A9 61) < € (E2 82 AC).
    assert_eq!(keys, [&json!("ß"), &json!("éa"), &json!("€")]);
}

#[test]
fn rounding_ties_in_a_keyless_table_keep_their_order() {
    // numeric(12,4) → numeric(12,2): -0.0001 and 0.0000 both become 0.00, so in whole-row order
    // the text column decides between them. Nothing changed beyond the cast.
    let pair = branch(
        "roundties",
        "CREATE TABLE t (n int, v numeric(12,4), u text);
         INSERT INTO t VALUES (1, -0.0001, 'b'), (1, 0.0000, 'a'), (2, 1.005, 'c');",
        "ALTER TABLE t ALTER v TYPE numeric(12,2);",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 0, 0));
}

#[test]
fn extreme_integers_and_oid_type_changes() {
    // The smallest bigint is beyond 2^53: a string in JSON. int4 → oid wraps negative values the
    // way the binary-coercible cast does: -75989 reads 4294891307, which is no change.
    let pair = branch(
        "extremes",
        "CREATE TABLE t (id int PRIMARY KEY, b bigint, o int4);
         INSERT INTO t VALUES (1, 0, -75989), (2, 0, 5), (3, 0, 7);",
        "UPDATE t SET b = -9223372036854775808 WHERE id = 1; ALTER TABLE t ALTER o TYPE oid; UPDATE t SET o = 8 WHERE id = 3;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.t"), (0, 2, 0));
    let rows = table(&doc, "public.t")["rows"].as_array().unwrap();
    assert_eq!(rows[0]["after"]["b"], json!("-9223372036854775808"));
    assert_eq!(rows[0]["changed"], json!(["b"]));
    assert_eq!(rows[1]["changed"], json!(["o"]));
}
