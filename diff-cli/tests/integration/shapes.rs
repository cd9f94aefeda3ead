//! Shapes of databases: odd identifiers, wide tables, generated and identity
//! columns, partitions, TOAST, empty and one-sided tables, identical databases.

use serde_json::json;

use crate::harness::{branch, cli, conn, counts, diff_json, table};

#[test]
fn weird_identifiers() {
    let pair = branch(
        "idents",
        r#"CREATE SCHEMA "My Schema";
           CREATE TABLE "My Schema"."select" ("from" int PRIMARY KEY, "we;ird ""col""" text, "naïve ü" text);
           INSERT INTO "My Schema"."select" VALUES (1, 'a', 'b'), (2, 'c', 'd');
           CREATE SCHEMA "semi;colon";
           CREATE TABLE "semi;colon"."DROP TABLE x; --" (id int PRIMARY KEY, v text);
           INSERT INTO "semi;colon"."DROP TABLE x; --" VALUES (1, 'q');"#,
        r#"UPDATE "My Schema"."select" SET "we;ird ""col""" = 'z' WHERE "from" = 2;
           UPDATE "semi;colon"."DROP TABLE x; --" SET v = 'r';"#,
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "My Schema.select"), (0, 1, 0));
    let row = &table(&doc, "My Schema.select")["rows"][0];
    assert_eq!(row["key"], json!({"from": 2}));
    assert_eq!(row["changed"], json!(["we;ird \"col\""]));
    assert_eq!(row["after"]["naïve ü"], json!("d"));
    assert_eq!(counts(&doc, "semi;colon.DROP TABLE x; --"), (0, 1, 0));
}

#[test]
fn three_hundred_columns() {
    let cols: Vec<String> = (1..=300).map(|i| format!("c{i} int DEFAULT {i}")).collect();
    let setup = format!(
        "CREATE TABLE wide (id int PRIMARY KEY, {}); INSERT INTO wide (id) SELECT generate_series(1, 50);",
        cols.join(", ")
    );
    let pair = branch("wide", &setup, "UPDATE wide SET c250 = 0, c7 = NULL WHERE id = 42;");
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.wide"), (0, 1, 0));
    let row = &table(&doc, "public.wide")["rows"][0];
    assert_eq!(row["changed"], json!(["c7", "c250"]));
    assert_eq!(row["before"]["c250"], json!(250));
    assert_eq!(row["after"]["c7"], json!(null));
}

#[test]
fn generated_and_identity_columns() {
    let pair = branch(
        "generated",
        "CREATE TABLE line (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty int, price numeric(8,2),
                            total numeric GENERATED ALWAYS AS (qty * price) STORED);
         INSERT INTO line (qty, price) VALUES (1, 2.50), (2, 3.00), (3, 1.00);",
        "UPDATE line SET qty = 4 WHERE id = 2; INSERT INTO line (qty, price) VALUES (9, 1.00);",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.line"), (1, 1, 0));
    let rows = &table(&doc, "public.line")["rows"];
    assert_eq!(rows[0]["changed"], json!(["qty", "total"]));
    assert_eq!(rows[0]["after"]["total"], json!("12.00"));
    assert_eq!(rows[1]["key"], json!({"id": 4}));
}

#[test]
fn partitioned_table_once() {
    let pair = branch(
        "parts",
        "CREATE TABLE ev (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu');
         CREATE TABLE ev_us PARTITION OF ev FOR VALUES IN ('us');
         INSERT INTO ev SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, i FROM generate_series(1, 100) i;",
        "UPDATE ev SET v = 0 WHERE id IN (2, 3); DELETE FROM ev WHERE id = 4; INSERT INTO ev VALUES (101, 'us', 1);
         UPDATE ev SET region = 'eu' WHERE id = 5;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    let names: Vec<String> =
        doc["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["ev"]);
    // id 5 moved partitions: its key (id, region) changed, so it is a delete and an insert.
    assert_eq!(counts(&doc, "public.ev"), (2, 2, 2));
}

#[test]
fn toasted_values() {
    let pair = branch(
        "toast",
        "CREATE TABLE doc (id int PRIMARY KEY, body text, bin bytea);
         ALTER TABLE doc ALTER body SET STORAGE EXTERNAL;
         INSERT INTO doc SELECT i, repeat(md5(i::text), 160000), decode(repeat('ab', 3000000), 'hex') FROM generate_series(1, 3) i;",
        "UPDATE doc SET body = overlay(body placing 'X' from 2500001 for 1) WHERE id = 2;
         UPDATE doc SET bin = overlay(bin placing '\\x00'::bytea from 10 for 1) WHERE id = 3;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.doc"), (0, 2, 0));
    let rows = &table(&doc, "public.doc")["rows"];
    assert_eq!(rows[0]["changed"], json!(["body"]));
    assert_eq!(rows[0]["after"]["body"].as_str().unwrap().len(), 5_120_000);
    assert_eq!(rows[1]["changed"], json!(["bin"]));
    // The text report shows a one-byte change in a 5 MB value in a few lines.
    let run = cli(&["--quiet", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.len() < 4000, "text report is {} bytes", run.stdout.len());
    assert!(run.stdout.contains("{+X+}"), "{}", run.stdout);
}

#[test]
fn empty_one_sided_and_renamed_tables() {
    let pair = branch(
        "onesided",
        "CREATE TABLE empty_both (id int PRIMARY KEY);
         CREATE TABLE gets_rows (id int PRIMARY KEY);
         CREATE TABLE dropped (id int PRIMARY KEY); INSERT INTO dropped VALUES (1);
         CREATE TABLE old_name (id int PRIMARY KEY, v text); INSERT INTO old_name VALUES (1, 'a'), (2, 'b');
         CREATE TABLE cols (id int PRIMARY KEY, gone text, kept text, old_col int);
         INSERT INTO cols VALUES (1, 'g', 'k', 5);",
        "INSERT INTO gets_rows VALUES (1), (2);
         DROP TABLE dropped; CREATE TABLE added (id int);
         ALTER TABLE old_name RENAME TO new_name; UPDATE new_name SET v = 'B' WHERE id = 2;
         ALTER TABLE cols DROP COLUMN gone; ALTER TABLE cols ADD COLUMN fresh int DEFAULT 1;
         ALTER TABLE cols RENAME COLUMN old_col TO new_col; UPDATE cols SET new_col = 6;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.empty_both"), (0, 0, 0));
    assert_eq!(counts(&doc, "public.gets_rows"), (2, 0, 0));
    // The renamed table is compared under its new name.
    assert_eq!(counts(&doc, "public.new_name"), (0, 1, 0));
    assert_eq!(table(&doc, "public.new_name")["renamed_from"], json!("public.old_name"));
    // Added and dropped columns are schema changes, not row updates; the renamed column is compared.
    assert_eq!(counts(&doc, "public.cols"), (0, 1, 0));
    assert_eq!(table(&doc, "public.cols")["rows"][0]["changed"], json!(["new_col"]));
    // Consequences (the dropped table's key and column) carry their cause and are not counted again.
    let all = doc["schema_changes"].as_array().unwrap();
    let pkey = all.iter().find(|c| c["object"] == "public.dropped.dropped_pkey").expect("pkey drop reported");
    assert_eq!(pkey["cause"], json!("public.dropped"));
    let changes: Vec<(String, String, String)> = all
        .iter()
        .filter(|c| c.get("cause").is_none())
        .map(|c| {
            (c["kind"].as_str().unwrap().into(), c["op"].as_str().unwrap().into(), c["object"].as_str().unwrap().into())
        })
        .collect();
    let has = |k: &str, op: &str, o: &str| changes.contains(&(k.into(), op.into(), o.into()));
    assert!(has("table", "dropped", "public.dropped"), "{changes:?}");
    assert!(has("table", "added", "public.added"), "{changes:?}");
    assert!(has("table", "renamed", "public.new_name"), "{changes:?}");
    assert!(has("column", "dropped", "public.cols.gone"), "{changes:?}");
    assert!(has("column", "added", "public.cols.fresh"), "{changes:?}");
    assert!(has("column", "renamed", "public.cols.new_col"), "{changes:?}");
    assert_eq!(changes.len(), 6, "{changes:?}");
    assert_eq!(doc["summary"]["schema_changes"], json!(6));
}

#[test]
fn identical_databases_exit_zero() {
    let pair = branch(
        "identical",
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 1000) i;
         CREATE TABLE b (x int); INSERT INTO b VALUES (1), (1);",
        "UPDATE a SET v = v WHERE id < 10;",
    );
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 0);
    assert_eq!(doc["identical"], json!(true));
    let run = cli(&["--quiet", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("(identical)"), "{}", run.stdout);
}

#[test]
fn inheritance_children_are_not_counted_twice() {
    let pair = branch(
        "inherit",
        "CREATE TABLE base (id int PRIMARY KEY, v int); CREATE TABLE sub (extra int) INHERITS (base);
         INSERT INTO base VALUES (1, 1); INSERT INTO sub VALUES (2, 2, 2);",
        "UPDATE sub SET v = 20;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.base"), (0, 0, 0));
    // sub has no primary key of its own (keys are not inherited): whole-row identity.
    assert_eq!(counts(&doc, "public.sub"), (1, 0, 1));
}

#[test]
fn rewritten_table_is_labelled_and_rows_still_match() {
    let pair = branch(
        "rewrite",
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 1000) i;",
        "UPDATE a SET v = v WHERE id < 10;",
    );
    // VACUUM FULL moves every row and keeps its xmin: identity must not be trusted here.
    crate::harness::exec(&pair.child, "VACUUM FULL a");
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    assert_eq!(counts(&doc, "public.a"), (0, 0, 0));
    let changes = doc["schema_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["object"], json!("public.a"));
    assert_eq!(changes[0]["danger"], json!(["table_rewritten"]));
}
