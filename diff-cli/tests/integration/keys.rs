//! Row identity: primary keys of many types, composite keys, unique indexes,
//! `--key`, keyless tables as multisets, and text keys whose collation order
//! disagrees with byte order.

use serde_json::json;

use crate::harness::{branch, cli, conn, counts, diff_json, table};

fn ops(doc: &serde_json::Value, t: &str) -> Vec<(String, serde_json::Value)> {
    table(doc, t)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["op"].as_str().unwrap().to_string(), r["key"].clone()))
        .collect()
}

#[test]
fn text_key_under_icu_collation() {
    // Under ICU 'und', order is a < ä < B < é < z; byte order is B < a < z < ä < é.
    let pair = branch(
        "icu",
        "CREATE COLLATION und (provider = icu, locale = 'und');
         CREATE TABLE words (w text COLLATE und PRIMARY KEY, n int);
         INSERT INTO words VALUES ('a', 1), ('ä', 2), ('B', 3), ('é', 4), ('z', 5), ('Zz', 6);",
        "DELETE FROM words WHERE w = 'é'; INSERT INTO words VALUES ('b', 7), ('á', 8);
         UPDATE words SET n = 30 WHERE w = 'B'; UPDATE words SET n = 60 WHERE w = 'Zz';",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.words"), (2, 2, 1));
    // Rows come in byte order of the key (the diff's own order), whatever the collation.
    assert_eq!(
        ops(&doc, "public.words"),
        [
            ("update".into(), json!({"w": "B"})),
            ("update".into(), json!({"w": "Zz"})),
            ("insert".into(), json!({"w": "b"})),
            ("insert".into(), json!({"w": "á"})),
            ("delete".into(), json!({"w": "é"})),
        ]
    );
}

#[test]
fn keys_of_many_types() {
    // numeric Infinity exists from PostgreSQL 14 on; 1e10 sorts in the same place among these keys.
    let infinity = if crate::harness::cluster().version_num >= 140000 { "'Infinity'" } else { "1e10" };
    let setup = "CREATE TABLE k_num (k numeric PRIMARY KEY, v int);
         INSERT INTO k_num VALUES (-1.5, 1), (0, 2), (2.25, 3), ('NaN', 4), (INFINITY, 5), (10, 6);
         CREATE TABLE k_uuid (k uuid PRIMARY KEY, v int);
         INSERT INTO k_uuid SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(i * 4097), 12, '0'))::uuid, i FROM generate_series(1, 100) i;
         CREATE TABLE k_ts (k timestamptz PRIMARY KEY, v int);
         INSERT INTO k_ts SELECT '2024-01-01 00:00+00'::timestamptz + i * interval '1 hour', i FROM generate_series(-50, 50) i;
         INSERT INTO k_ts VALUES ('-infinity', 0), ('infinity', 0);
         CREATE TABLE k_comp (a int, b text, c date, v int, PRIMARY KEY (a, b, c));
         INSERT INTO k_comp SELECT i % 3, 'x' || (i % 7), date '2024-01-01' + i, i FROM generate_series(1, 60) i;
         CREATE TABLE k_float (k float8 PRIMARY KEY, v int);
         INSERT INTO k_float VALUES (-1e300, 1), (-0.5, 2), (0, 3), (1e-300, 4), ('Infinity', 5), ('NaN', 6);
         CREATE TABLE k_small (k smallint PRIMARY KEY, v int);
         INSERT INTO k_small SELECT i, i FROM generate_series(-300, 300) i;"
        .replace("INFINITY", infinity);
    let pair = branch(
        "keytypes",
        &setup,
        "DELETE FROM k_num WHERE k = 2.25; UPDATE k_num SET v = 40 WHERE k = 'NaN'; INSERT INTO k_num VALUES (3, 7);
         DELETE FROM k_uuid WHERE v IN (10, 90); UPDATE k_uuid SET v = -v WHERE v = 50;
         INSERT INTO k_uuid VALUES ('ffffffff-0000-0000-0000-000000000000', 0);
         DELETE FROM k_ts WHERE k = 'infinity'; UPDATE k_ts SET v = 99 WHERE v = -50;
         UPDATE k_comp SET v = -1 WHERE a = 1 AND b = 'x3'; DELETE FROM k_comp WHERE a = 2 AND b = 'x0';
         UPDATE k_float SET v = 0 WHERE k = 'NaN'; DELETE FROM k_float WHERE k = -0.5;
         DELETE FROM k_small WHERE k < -290; UPDATE k_small SET v = 0 WHERE k = 255;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.k_num"), (1, 1, 1));
    assert_eq!(table(&doc, "public.k_num")["rows"][1]["key"], json!({"k": "3"}));
    assert_eq!(counts(&doc, "public.k_uuid"), (1, 1, 2));
    assert_eq!(counts(&doc, "public.k_ts"), (0, 1, 1));
    // a = 1 and b = 'x3': i ≡ 1 (mod 3) and i ≡ 3 (mod 7), i in 1..60 → i = 10, 31, 52.
    // a = 2 and b = 'x0': i ≡ 2 (mod 3) and i ≡ 0 (mod 7), i in 1..60 → i = 14, 35, 56.
    assert_eq!(counts(&doc, "public.k_comp"), (0, 3, 3));
    assert_eq!(counts(&doc, "public.k_float"), (0, 1, 1));
    assert_eq!(counts(&doc, "public.k_small"), (0, 1, 10));
    assert_eq!(table(&doc, "public.k_comp")["key"], json!(["a", "b", "c"]));
}

#[test]
fn unique_index_and_key_override() {
    let pair = branch(
        "uniq",
        "CREATE TABLE u (id int, code text NOT NULL, v int);
         CREATE UNIQUE INDEX u_code ON u (code);
         INSERT INTO u SELECT i, 'c' || i, i FROM generate_series(1, 10) i;
         CREATE TABLE o (a int, b int, v text);
         INSERT INTO o SELECT i, i * 2, 'v' || i FROM generate_series(1, 10) i;",
        "UPDATE u SET v = 0 WHERE code = 'c3'; UPDATE o SET v = 'changed' WHERE a = 4; DELETE FROM o WHERE a = 5;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(table(&doc, "public.u")["key"], json!(["code"]));
    assert_eq!(table(&doc, "public.u")["key_source"], json!({"source": "unique_index", "name": "u_code"}));
    assert_eq!(counts(&doc, "public.u"), (0, 1, 0));
    // No key: the whole row is the identity, so an update is a delete plus an insert.
    assert_eq!(counts(&doc, "public.o"), (1, 0, 2));
    let (_, doc) = diff_json(&pair, &["--key", "public.o=a"]);
    assert_eq!(table(&doc, "public.o")["key_source"], json!({"source": "override"}));
    assert_eq!(counts(&doc, "public.o"), (0, 1, 1));
    let bad = cli(&["--key", "o=nope", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("public.o") && bad.stderr.contains("nope"), "{}", bad.stderr);
}

#[test]
fn keyless_table_is_a_multiset() {
    let pair = branch(
        "multiset",
        "CREATE TABLE log (a int, b text, j json, p point);
         INSERT INTO log VALUES (1, 'x', '{}', '(1,1)'), (1, 'x', '{}', '(1,1)'), (1, 'x', '{}', '(1,1)'),
                                (2, NULL, NULL, NULL), (2, NULL, NULL, NULL), (3, 'y', '[1]', '(0,0)');",
        "DELETE FROM log WHERE ctid = (SELECT min(ctid) FROM log WHERE a = 1);
         INSERT INTO log VALUES (2, NULL, NULL, NULL), (3, 'y', '[1]', '(0,0)'), (4, 'z', '{\"k\": 1}', '(5,5)');",
    );
    let (_, doc) = diff_json(&pair, &[]);
    // 3 × row1 → 2: one delete. 2 × row2 → 3 and 1 × row3 → 2: two inserts; plus the new row.
    assert_eq!(counts(&doc, "public.log"), (3, 0, 1));
    assert_eq!(table(&doc, "public.log")["key_source"], json!({"source": "whole_row"}));
}

#[test]
fn hash_strategy_reads_only_differing_blocks() {
    let pair = branch(
        "hashranges",
        "CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric);
         INSERT INTO big SELECT i, md5(i::text), i / 100.0 FROM generate_series(1, 200000) i;",
        "UPDATE big SET v = 'x' WHERE id BETWEEN 1000 AND 1019; DELETE FROM big WHERE id BETWEEN 150000 AND 150004;
         INSERT INTO big VALUES (300000, 'new', 1); UPDATE big SET n = n + 0 WHERE id < 500;",
    );
    let (_, doc) = diff_json(&pair, &["--strategy", "hash"]);
    assert_eq!(counts(&doc, "public.big"), (1, 20, 5));
    let t = table(&doc, "public.big");
    assert_eq!(t["stats"]["strategy"], "hash");
    // 26 changed rows: at most 26 blocks differ (the scale-keeping `n + 0` is no change).
    let differing = t["stats"]["blocks"]["differing"].as_u64().unwrap();
    assert!((1..=26).contains(&differing), "{}", t["stats"]);
    let (_, full) = diff_json(&pair, &["--strategy", "stream"]);
    let full_bytes = table(&full, "public.big")["stats"]["parent"]["bytes"].as_u64().unwrap();
    for side in ["parent", "child"] {
        let bytes = t["stats"][side]["bytes"].as_u64().unwrap();
        assert!(bytes * 20 <= full_bytes, "{side}: {bytes} bytes of {full_bytes} is more than 5 %");
    }
}
