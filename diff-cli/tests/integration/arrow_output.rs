//! `--format arrow`: pyarrow (installed from PyPI into a virtual environment
//! under the target directory) reads the files, `arrow_canon.py` prints them
//! in the JSON report's terms, and they must equal the JSON report of the same
//! diff. The Arrow types are checked against the mapping, written out by hand.
//! DuckDB and polars (same venv) open every file too (`arrow_readers.py`), and
//! what each reads of the type matrix equals what PostgreSQL itself returns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value as J};

use crate::harness::{branch, cli, conn, Pair};

/// A python with the readers docs/output-format.md names (pyarrow, DuckDB, polars), from
/// PyPI in a venv made once (and reused) under the target directory.
fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        crate::harness::python_venv("arrow-readers-venv", &["pyarrow", "duckdb", "polars"], "pyarrow, duckdb, polars")
    })
}

/// The Arrow report in `dir`, as `arrow_canon.py` prints it.
fn canon(dir: &Path) -> J {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/arrow_canon.py");
    let out = Command::new(python()).arg(&script).arg(dir).output().unwrap();
    assert!(out.status.success(), "arrow_canon.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Numbers compared as numbers, whichever way each side spells them (`1e+20`, `1.0e20`).
fn numbers(v: &J) -> J {
    match v {
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), ..) => json!(i),
            (_, Some(u), _) => json!(u),
            (.., Some(f)) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            _ => v.clone(),
        },
        J::Array(a) => J::Array(a.iter().map(numbers).collect()),
        J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), numbers(v))).collect()),
        other => other.clone(),
    }
}

/// A fresh directory (removed when the guard drops) and the report path in it.
fn tmp(tag: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix(&format!("arrow-{tag}-")).tempdir().unwrap();
    let out = dir.path().join("report");
    (dir, out)
}

/// Runs the JSON and the Arrow report of `pair`; returns (JSON document, canonical Arrow).
fn both(pair: &Pair, tag: &str) -> (J, J) {
    both_with(pair, tag, &[])
}

/// [`both`] with more arguments for both runs.
fn both_with(pair: &Pair, tag: &str, extra: &[&str]) -> (J, J) {
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run = cli(&[&["--format", "json", "--quiet", &p, &c], extra].concat(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let (_dir, out) = tmp(tag);
    let args = [&["--format", "arrow", "--quiet", "--output", out.to_str().unwrap(), &p, &c], extra].concat();
    let arrow = cli(&args, &[]);
    assert_eq!(arrow.code, 1, "{}", arrow.stderr);
    assert!(arrow.stdout.is_empty(), "nothing on stdout: {}", arrow.stdout);
    (run.json(), canon(&out))
}

/// A canonical Arrow row without its `unrepresentable` list (returned apart).
fn split_refused(row: &J) -> (J, Vec<String>) {
    let mut r = row.clone();
    let refused = r.as_object_mut().unwrap().remove("unrepresentable");
    let refused = refused.map(|v| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect());
    (r, refused.unwrap_or_default())
}

/// Every table's rows, counts and file agree with the JSON report; returns the
/// `unrepresentable` columns per (table, op, key).
fn assert_same(doc: &J, arrow: &J) -> BTreeMap<(String, String, String), Vec<String>> {
    let mut refused = BTreeMap::new();
    let tables = doc["tables"].as_array().unwrap();
    let arrow_tables = arrow["tables"].as_array().unwrap();
    assert_eq!(tables.len(), arrow_tables.len());
    for (t, a) in tables.iter().zip(arrow_tables) {
        let name = format!("{}.{}", t["schema"].as_str().unwrap(), t["name"].as_str().unwrap());
        assert_eq!((&t["schema"], &t["name"]), (&a["schema"], &a["name"]));
        for k in ["inserted", "updated", "deleted"] {
            assert_eq!(t["counts"][k], a[k], "{name} {k}");
        }
        assert_eq!(t["key"], a["key"], "{name}");
        assert_eq!(t["columns"], a["columns"], "{name}");
        assert_eq!(t["key_source"]["source"], a["key_source"], "{name}");
        assert_eq!(t["stats"]["strategy"], a["strategy"], "{name}");
        assert_eq!(t["stats"]["reason"], a["reason"], "{name}");
        for side in ["parent", "child"] {
            assert_eq!(t["stats"][side]["bytes"], a[format!("{side}_bytes")], "{name}");
        }
        for k in ["by", "count", "differing", "parts", "refined_parts", "refined_differing"] {
            let json = t["stats"].get("blocks").map_or(J::Null, |b| b[k].clone());
            assert_eq!(json, a[format!("blocks_{k}")], "{name} blocks.{k}");
        }
        let rows = t["rows"].as_array().unwrap();
        assert_eq!(rows.is_empty(), a["file"].is_null(), "{name}: a file exactly when rows changed");
        if rows.is_empty() {
            continue;
        }
        let arrow_rows = a["rows"].as_array().unwrap();
        assert_eq!(rows.len(), arrow_rows.len(), "{name}");
        for (r, ar) in rows.iter().zip(arrow_rows) {
            let (ar, cols) = split_refused(ar);
            assert_eq!(numbers(r), numbers(&ar), "{name}: a row differs between JSON (left) and Arrow (right)");
            if !cols.is_empty() {
                refused.insert((name.clone(), r["op"].as_str().unwrap().to_string(), r["key"].to_string()), cols);
            }
        }
    }
    refused
}

const MATRIX_SETUP: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN dnum AS numeric(8,3);
CREATE TYPE pair AS (n int, s text);
CREATE TABLE matrix (
  id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, o oid, f4 real, f8 float8, b bool,
  n numeric(12,2), nbig numeric(38,4), nu numeric, d date, ts timestamp, tstz timestamptz, tm time,
  iv interval, u uuid, by bytea, tx text, vc varchar(10), ch char(5), en mood, js json, jb jsonb,
  x xml, ip inet, m money, dom posint, dn dnum, rg int4range, cp pair,
  a_i4 int4[], a_tx text[], a_n numeric(6,2)[], a_d date[], a_tstz timestamptz[], a_b bool[],
  a_f8 float8[], a_u uuid[], a_by bytea[], a_js jsonb[], a_en mood[], a_bx box[], a_iv interval[]
);
-- Ordinary values (3, 5), and all NULL (4).
INSERT INTO matrix VALUES
 (2, 1, 2, 3, 4, 1.5, 2.5, true, 9.90, 1.0000, 1.5, '2024-06-01', '2024-06-01 12:00:00', '2024-06-01 12:00:00+00',
  '12:00:00', '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x01', 'two', 'v', 'ab', 'ok', '{"a": 1}', '{"a": 1}',
  '<a/>', '10.0.0.1', 1, 1, 1, '[1,2)', ROW(1, 'x'), '{1,2}', '{a}', '{1.00}', '{2024-01-01}',
  '{"2024-01-01 00:00:00+00"}', '{t}', '{1}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{"\\x01"}',
  ARRAY['{"k": 1}'::jsonb], '{ok}', '{(1,1),(0,0)}', '{"1 day"}'),
 (3, -32768, 2147483647, 9007199254740993, 3000000000, 'NaN', '-Infinity', false, -0.05,
  12345678901234567890123456789012.3456, 'Infinity', '0044-03-15 BC', '2000-02-29 12:34:56.789',
  '2024-06-01 14:00:00+02', '23:59:59.999999', '1 year 2 mons -3 days 04:05:06.5',
  '00000000-0000-0000-0000-000000000000', '', 'héllo "quoted", {braces}', '', 'abcde', 'happy',
  '{"a": [1, 2.50]}', '{"b": {"c": null}}', '<a>1</a>', '192.168.0.1/24', 12.34, 7, 1.5, 'empty',
  ROW(NULL, 'y z'), '{1,NULL,3}', '{"a b","NULL",NULL,"q\"t","back\\slash",""}', '{1.50,NULL}',
  '{2024-01-01,NULL}', '{"2024-06-01 12:00:00+00"}', '{t,f,NULL}', '{1.5,-2.25,NaN,Infinity}',
  '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{"\\x0102",NULL}', ARRAY['{"k": [1, "x"]}'::jsonb, NULL],
  '{happy,sad}', '{(1,1),(0,0);(2,2),(1,1)}', '{"1 day",-00:00:01}'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (5, 5, 5, 5, 5, 5, 5, true, 5, 5, 5, '2005-05-05', '2005-05-05 05:05:05', '2005-05-05 05:05:05+00', '05:05:05',
  '5 days', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15', '\x05', 'five', 'five', 'five', 'sad', '5', '5', '<five/>',
  '5.5.5.5', 5, 5, 5, '[5,6)', ROW(5, 'five'), '{5}', '{five}', '{5}', '{2005-05-05}', NULL, '{f}', '{5}', NULL,
  NULL, NULL, '{sad}', NULL, NULL);
INSERT INTO matrix (id) VALUES (1);
"#;

/// The matrix for this server: numeric ±Infinity exists from PostgreSQL 14 on
/// (before, the unconstrained numeric holds NaN there, also unrepresentable).
fn matrix_setup() -> String {
    if crate::harness::cluster().version_num >= 140000 {
        return MATRIX_SETUP.to_string();
    }
    let with = "12345678901234567890123456789012.3456, 'Infinity',";
    assert!(MATRIX_SETUP.contains(with));
    MATRIX_SETUP.replace(with, "12345678901234567890123456789012.3456, 'NaN',")
}

/// Row 1 (all NULL) gets ordinary values, row 2 values no Arrow type holds,
/// rows 3 and 4 are deleted, 6 (values that don't fit) and 7 (all NULL) inserted.
const MATRIX_CHANGE: &str = r#"
UPDATE matrix m SET (i2, i4, i8, o, f4, f8, b, n, nbig, nu, d, ts, tstz, tm, iv, u, by, tx, vc, ch, en, js, jb, x, ip,
  m, dom, dn, rg, cp, a_i4, a_tx, a_n, a_d, a_tstz, a_b, a_f8, a_u, a_by, a_js, a_en, a_bx, a_iv) =
  (SELECT i2, i4, i8, o, f4, f8, b, n, nbig, nu, d, ts, tstz, tm, iv, u, by, tx, vc, ch, en, js, jb, x, ip, m, dom,
   dn, rg, cp, a_i4, a_tx, a_n, a_d, a_tstz, a_b, a_f8, a_u, a_by, a_js, a_en, a_bx, a_iv FROM matrix WHERE id = 3)
  WHERE m.id = 1;
UPDATE matrix SET f4 = '-0', f8 = 1e300, n = 'NaN', nu = 'NaN', d = 'infinity', ts = '294276-12-31 23:59:59',
  tstz = 'infinity', tm = '24:00:00', iv = '-1 days +02:03:00', a_i4 = '{{1,2},{3,4}}',
  a_d = '{2024-01-01,infinity}', i2 = 2 WHERE id = 2;
DELETE FROM matrix WHERE id IN (3, 4);
INSERT INTO matrix (id, d, ts, tstz, a_i4, n, a_n) VALUES
  (6, '-infinity', '-infinity', '-infinity', '[0:1]={7,8}', 'NaN', '{NaN}');
INSERT INTO matrix (id) VALUES (7);
"#;

const KEYS_SETUP: &str = r#"
CREATE TABLE composite (a int, b text, v text, PRIMARY KEY (a, b));
INSERT INTO composite VALUES (1, 'x', 'one'), (1, 'y', 'two'), (2, 'x', 'three');
CREATE TABLE keyless (x int, y text);
INSERT INTO keyless VALUES (1, 'a'), (1, 'a'), (2, 'b');
CREATE TABLE textkey (k text PRIMARY KEY, v int);
INSERT INTO textkey VALUES ('a', 1), ('B', 2), ('with space', 3), ('ü', 4);
CREATE TABLE "we.ird/na me" (id int PRIMARY KEY, v text);
INSERT INTO "we.ird/na me" VALUES (1, 'a');
CREATE TABLE quiet (id int PRIMARY KEY);
INSERT INTO quiet VALUES (1);
CREATE TABLE big (id int PRIMARY KEY, v text, b bytea);
INSERT INTO big VALUES (1, repeat('x', 3000000), convert_to(repeat('y', 3000000), 'UTF8'));
"#;

const KEYS_CHANGE: &str = r#"
UPDATE composite SET v = 'uno' WHERE a = 1 AND b = 'x';
DELETE FROM composite WHERE a = 2;
INSERT INTO composite VALUES (3, 'z', NULL);
DELETE FROM keyless WHERE ctid = (SELECT min(ctid) FROM keyless WHERE x = 1);
INSERT INTO keyless VALUES (3, NULL);
UPDATE textkey SET v = 20 WHERE k = 'B';
DELETE FROM textkey WHERE k = 'with space';
INSERT INTO textkey VALUES ('new "one"', 5);
UPDATE "we.ird/na me" SET v = 'b';
UPDATE big SET v = v || 'z', b = b || '\x00'::bytea;
"#;

/// Hand-picked from the fixture: the values of row 2's update and row 6's insert that
/// the mapping cannot hold, and nothing else anywhere: (id, op, columns).
const UNREPRESENTABLE: [(i32, &str, &[&str]); 2] = [
    (2, "update", &["after.a_d", "after.a_i4", "after.d", "after.n", "after.tm", "after.ts", "after.tstz"]),
    (6, "insert", &["after.a_i4", "after.a_n", "after.d", "after.n", "after.ts", "after.tstz"]),
];

#[test]
fn values_equal_the_json_report() {
    let pair =
        branch("arrow_matrix", &format!("{}{KEYS_SETUP}", matrix_setup()), &format!("{MATRIX_CHANGE}{KEYS_CHANGE}"));
    let (doc, arrow) = both(&pair, "matrix");
    let refused = assert_same(&doc, &arrow);
    let want: BTreeMap<(String, String, String), Vec<String>> = UNREPRESENTABLE
        .iter()
        .map(|(id, op, cols)| {
            let key = ("public.matrix".into(), op.to_string(), format!(r#"{{"id":{id}}}"#));
            (key, cols.iter().map(|c| c.to_string()).collect())
        })
        .collect();
    assert_eq!(refused, want);
    // The counts, by hand: matrix 2 updated (1, 2), 2 inserted (6, 7), 2 deleted (3, 4).
    let matrix = arrow["tables"].as_array().unwrap().iter().find(|t| t["name"] == "matrix").unwrap();
    assert_eq!((&matrix["inserted"], &matrix["updated"], &matrix["deleted"]), (&json!(2), &json!(2), &json!(2)));
    // Files: one per changed table, escaped names; `quiet` has none.
    let files: Vec<&str> = arrow["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "data_loss.arrow",
            "public.big.arrow",
            "public.composite.arrow",
            "public.keyless.arrow",
            "public.matrix.arrow",
            "public.textkey.arrow",
            "public.we%2Eird%2Fna%20me.arrow",
            "schema_changes.arrow",
            "tables.arrow"
        ]
    );
    // Data loss (deleted rows, nulled values) as in the JSON report.
    let strip_nulls = |v: &J| -> J {
        J::Array(
            v.as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let mut o = o.as_object().unwrap().clone();
                    o.retain(|_, v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
                    J::Object(o)
                })
                .collect(),
        )
    };
    assert!(!doc["data_loss"].as_array().unwrap().is_empty());
    assert_eq!(numbers(&strip_nulls(&doc["data_loss"])), numbers(&strip_nulls(&arrow["data_loss"])));
    let meta = &arrow["metadata"];
    assert_eq!(meta["pgbranchdiff:parent"], doc["parent"]["endpoint"]);
}

#[test]
fn hash_blocks_equal_the_json_report() {
    let pair = branch(
        "arrow_blocks",
        "CREATE TABLE n (id int PRIMARY KEY, v int); INSERT INTO n SELECT g, g FROM generate_series(1, 3000) g;
         CREATE TABLE w (k text PRIMARY KEY, v int); INSERT INTO w SELECT 'k' || g, g FROM generate_series(1, 3000) g;
         ANALYZE;",
        "UPDATE n SET v = 0 WHERE id BETWEEN 10 AND 20; UPDATE w SET v = 0 WHERE k = 'k7';",
    );
    let (doc, arrow) = both_with(&pair, "blocks", &["--strategy", "hash"]);
    assert_same(&doc, &arrow);
    let row = |name: &str| arrow["tables"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap().clone();
    // Counted from the fixture: an integer key is cut by ranges, a text key by hashes.
    assert_eq!((row("n")["blocks_by"].clone(), row("n")["updated"].clone()), (json!("key_range"), json!(11)));
    assert_eq!((row("w")["blocks_by"].clone(), row("w")["updated"].clone()), (json!("key_hash"), json!(1)));
    assert_eq!(row("n")["reason"], "--strategy hash");
}

#[test]
fn schema_changes_equal_the_json_report() {
    let pair = branch(
        "arrow_schema",
        "CREATE TABLE t (id int PRIMARY KEY, a text, b int); INSERT INTO t VALUES (1, 'x', 1);",
        "ALTER TABLE t DROP COLUMN a; ALTER TABLE t ALTER b TYPE bigint; CREATE INDEX ON t (b);",
    );
    let (doc, arrow) = both(&pair, "schema");
    let strip = |v: &J| -> J {
        J::Array(
            v.as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let mut o = o.as_object().unwrap().clone();
                    o.retain(|_, v| !v.is_null());
                    J::Object(o)
                })
                .collect(),
        )
    };
    // The dropped column, the type change, the index, and the table rewritten by the type change.
    assert_eq!(doc["schema_changes"].as_array().unwrap().len(), 4, "{:#}", doc["schema_changes"]);
    assert_eq!(strip(&doc["schema_changes"]), strip(&arrow["schema_changes"]));
    assert_same(&doc, &arrow);
}

#[test]
fn arrow_types_follow_the_mapping() {
    let pair = branch("arrow_types", &matrix_setup(), MATRIX_CHANGE);
    let (_, arrow) = both(&pair, "types");
    let types = &arrow["types"]["public.matrix"];
    // The mapping of docs/output-format.md, column by column.
    let scalar = [
        ("id", "int32", None),
        ("i2", "int16", None),
        ("i4", "int32", None),
        ("i8", "int64", None),
        ("o", "uint32", None),
        ("f4", "float", None),
        ("f8", "double", None),
        ("b", "bool", None),
        ("n", "decimal128(12, 2)", None),
        ("nbig", "decimal128(38, 4)", None),
        ("nu", "string", None),
        ("d", "date32[day]", None),
        ("ts", "timestamp[us]", None),
        ("tstz", "timestamp[us, tz=UTC]", None),
        ("tm", "time64[us]", None),
        ("iv", "month_day_nano_interval", None),
        ("u", "fixed_size_binary[16]", Some("arrow.uuid")),
        ("by", "binary", None),
        ("tx", "string", None),
        ("vc", "string", None),
        ("ch", "string", None),
        ("en", "string", None),
        ("js", "string", Some("arrow.json")),
        ("jb", "string", Some("arrow.json")),
        ("x", "string", None),
        ("ip", "string", None),
        ("m", "string", None),
        ("dom", "int32", None),
        ("dn", "decimal128(8, 3)", None),
        ("rg", "string", None),
        ("cp", "string", None),
        ("a_bx", "string", None),
    ];
    let lists = [
        ("a_i4", "int32", None),
        ("a_tx", "string", None),
        ("a_n", "decimal128(6, 2)", None),
        ("a_d", "date32[day]", None),
        ("a_tstz", "timestamp[us, tz=UTC]", None),
        ("a_b", "bool", None),
        ("a_f8", "double", None),
        ("a_u", "fixed_size_binary[16]", Some("arrow.uuid")),
        ("a_by", "binary", None),
        ("a_js", "string", Some("arrow.json")),
        ("a_en", "string", None),
        ("a_iv", "month_day_nano_interval", None),
    ];
    let mut want = serde_json::Map::new();
    let t = |ty: &str, ext: Option<&str>| json!({ "type": ty, "extension": ext });
    want.insert("op".into(), t("string", None));
    want.insert("key".into(), t("struct<id: int32>", None));
    want.insert("key.id".into(), t("int32", None));
    for side in ["before", "after"] {
        for (c, ty, ext) in scalar {
            want.insert(format!("{side}.{c}"), t(ty, ext));
        }
        for (c, ty, ext) in lists {
            want.insert(format!("{side}.{c}"), t("list", None));
            want.insert(format!("{side}.{c}[]"), t(ty, ext));
        }
    }
    want.insert("changed".into(), t("list", None));
    want.insert("changed[]".into(), t("string", None));
    want.insert("unrepresentable".into(), t("list", None));
    want.insert("unrepresentable[]".into(), t("struct<column: string not null, value: string not null>", None));
    let mut got = types.as_object().unwrap().clone();
    // Struct columns are walked into; their own entry is not listed.
    want.remove("key");
    got.remove("before");
    got.remove("after");
    assert_eq!(J::Object(got), J::Object(want));
}

#[test]
fn arrow_needs_an_output_directory() {
    let pair = branch("arrow_noout", "CREATE TABLE t (id int PRIMARY KEY);", "INSERT INTO t VALUES (1);");
    let run = cli(&["--format", "arrow", &conn(&pair.parent), &conn(&pair.child)], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("--format arrow") && run.stderr.contains("--output"), "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

#[test]
fn a_failed_run_leaves_nothing_and_user_files_are_kept() {
    let pair = branch("arrow_stage", "CREATE TABLE t (id int PRIMARY KEY);", "INSERT INTO t VALUES (1);");
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let (_dir, out) = tmp("stage");
    let parent_dir = out.parent().unwrap().to_path_buf();
    let listing = || {
        let mut v: Vec<String> =
            std::fs::read_dir(&parent_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    // The child database does not exist: the run fails after the output was staged.
    let bad = format!("{} dbname={}_missing", crate::harness::cluster().base, pair.child);
    let run = cli(&["--format", "arrow", "--output", out.to_str().unwrap(), &p, &bad], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(listing().is_empty(), "a failed run left {:?}", listing());
    // A good run writes the report; a second one replaces it.
    for _ in 0..2 {
        let run = cli(&["--format", "arrow", "--quiet", "--output", out.to_str().unwrap(), &p, &c], &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(listing(), ["report"]);
        assert!(out.join("tables.arrow").exists() && out.join("public.t.arrow").exists());
    }
    // A failed run keeps the previous report as it was.
    let run = cli(&["--format", "arrow", "--output", out.to_str().unwrap(), &p, &bad], &[]);
    assert_eq!(run.code, 2);
    assert_eq!(listing(), ["report"]);
    assert!(out.join("tables.arrow").exists());
    // A directory holding anything else is refused and left alone.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let run = cli(&["--format", "arrow", "--output", out.to_str().unwrap(), &p, &c], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not an Arrow report"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    assert_eq!(listing(), ["report"]);
    // So is a file.
    let file = parent_dir.join("file");
    std::fs::write(&file, "mine").unwrap();
    let run = cli(&["--format", "arrow", "--output", file.to_str().unwrap(), &p, &c], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
}

/// How `arrow_readers.py` prints each matrix column, as a kind of [`pg_canon`].
const READ_AS: &[(&str, &str)] = &[
    ("i2", "num"),
    ("i4", "num"),
    ("i8", "num"),
    ("o", "oid"),
    ("f4", "text"),
    ("f8", "text"),
    ("b", "num"),
    ("n", "text"),
    ("nbig", "text"),
    ("nu", "text"),
    ("d", "days"),
    ("ts", "us"),
    ("tstz", "us"),
    ("tm", "time"),
    ("iv", "iv"),
    ("u", "text"),
    ("by", "hex"),
    ("tx", "text"),
    ("vc", "text"),
    ("ch", "text"),
    ("en", "text"),
    ("js", "json"),
    ("jb", "json"),
    ("x", "text"),
    ("ip", "cast"),
    ("m", "text"),
    ("dom", "num"),
    ("dn", "text"),
    ("rg", "text"),
    ("cp", "text"),
    ("a_i4", "[num]"),
    ("a_tx", "[text]"),
    ("a_n", "[text]"),
    ("a_d", "[days]"),
    ("a_tstz", "[us]"),
    ("a_b", "[num]"),
    ("a_f8", "[text]"),
    ("a_u", "[text]"),
    ("a_by", "[hex]"),
    ("a_js", "[text]"),
    ("a_en", "[text]"),
    ("a_bx", "text"),
    ("a_iv", "[iv]"),
];

/// `x` in `arrow_readers.py`'s terms, computed by PostgreSQL: dates as days since
/// 1970-01-01, timestamps (`us`) and times (`time`) as microseconds, intervals as [months, days,
/// microseconds], bytea as hex, JSON parsed, numbers as JSON numbers, the rest as text
/// (PostgreSQL's output function, `format('%s', x)`).
fn pg_canon(x: &str, kind: &str) -> String {
    if let Some(elem) = kind.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
        let e = pg_canon("e", elem);
        return format!(
            "CASE WHEN {x} IS NULL THEN NULL ELSE coalesce((SELECT json_agg({e} ORDER BY o) \
             FROM unnest({x}) WITH ORDINALITY u(e, o)), '[]') END"
        );
    }
    let us = |part: &str| format!("extract({part} FROM {x})::bigint");
    match kind {
        "num" => format!("to_json({x})"),
        "json" => format!("to_json({x})"),
        // to_json prints an oid as a string.
        "oid" => format!("to_json({x}::bigint)"),
        // inet is read as its cast to text prints it: with the mask (10.0.0.1/32).
        "cast" => format!("to_json({x}::text)"),
        "text" => format!("to_json(CASE WHEN {x} IS NULL THEN NULL ELSE format('%s', {x}) END)"),
        "hex" => format!("to_json(encode({x}, 'hex'))"),
        // ±infinity has no number (the reader holds null: unrepresentable).
        "days" => format!("to_json(CASE WHEN isfinite({x}) THEN {x} - date '1970-01-01' END)"),
        "us" => format!("to_json(CASE WHEN isfinite({x}) THEN round(extract(epoch FROM {x})::numeric * 1000000) END)"),
        "time" => format!("to_json(round(extract(epoch FROM {x})::numeric * 1000000))"),
        "iv" => format!(
            "CASE WHEN {x} IS NULL THEN NULL ELSE json_build_array({} * 12 + {}, {}, {} * 3600000000 + {} * 60000000 + {}) END",
            us("year"),
            us("month"),
            us("day"),
            us("hour"),
            us("minute"),
            us("microseconds")
        ),
        other => panic!("no kind {other}"),
    }
}

/// The matrix rows of `db` as PostgreSQL computes them: id → {column: value}.
fn pg_rows(db: &str) -> BTreeMap<i64, J> {
    let fields: Vec<String> = READ_AS.iter().map(|(c, k)| format!("'{c}', {}", pg_canon(c, k))).collect();
    let sql = format!("SELECT id, json_build_object('id', id, {})::text FROM matrix", fields.join(", "));
    let rows = crate::harness::connect(db).query(&sql, &[]).unwrap();
    rows.iter().map(|r| (i64::from(r.get::<_, i32>(0)), serde_json::from_str(r.get(1)).unwrap())).collect()
}

/// Every file of the type matrix's report opens in pyarrow, DuckDB and polars, all three
/// read the same values, and those of the matrix equal what PostgreSQL returns for each
/// row (null where the value is listed as unrepresentable). polars cannot import Arrow
/// intervals: the file with them goes through docs/output-format.md's fallback.
#[test]
fn every_reader_reads_every_file() {
    let pair =
        branch("arrow_readers", &format!("{}{KEYS_SETUP}", matrix_setup()), &format!("{MATRIX_CHANGE}{KEYS_CHANGE}"));
    let (_dir, out) = tmp("readers");
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let arrow = cli(&["--format", "arrow", "--quiet", "--output", out.to_str().unwrap(), &p, &c], &[]);
    assert_eq!(arrow.code, 1, "{}", arrow.stderr);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/arrow_readers.py");
    let read = Command::new(python()).arg(&script).arg(&out).output().unwrap();
    assert!(read.status.success(), "arrow_readers.py failed: {}", String::from_utf8_lossy(&read.stderr));
    let doc: J = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(doc.as_object().unwrap().len(), 9, "every file: {:?}", doc.as_object().unwrap().keys());
    for (file, readers) in doc.as_object().unwrap() {
        for reader in ["duckdb", "polars"] {
            assert_eq!(numbers(&readers[reader]), numbers(&readers["pyarrow"]), "{file}: {reader} (left) and pyarrow");
        }
        // Only the matrix has intervals: only it needs polars' fallback.
        assert_eq!(readers["polars_fallback"], json!(file == "public.matrix.arrow"), "{file}");
    }
    let (before, after) = (pg_rows(&pair.parent), pg_rows(&pair.child));
    let matrix = &doc["public.matrix.arrow"];
    for reader in ["pyarrow", "duckdb", "polars"] {
        let rows = matrix[reader].as_array().unwrap();
        assert_eq!(rows.len(), 6, "{reader}: 2 updates, 2 inserts, 2 deletes");
        for row in rows {
            let (id, op) = (row["key.id"].as_i64().unwrap(), row["op"].as_str().unwrap());
            let refused =
                UNREPRESENTABLE.iter().find(|(i, o, _)| i64::from(*i) == id && *o == op).map_or(&[][..], |r| r.2);
            for (side, pg) in [("before", &before), ("after", &after)] {
                let absent = (side == "before" && op == "insert") || (side == "after" && op == "delete");
                assert_eq!(row[format!("{side}?")], json!(absent), "{reader} row {id}: {side} null");
                if absent {
                    continue;
                }
                for (col, want) in pg[&id].as_object().unwrap() {
                    let name = format!("{side}.{col}");
                    let want = if refused.contains(&name.as_str()) { &J::Null } else { want };
                    assert_eq!(numbers(&row[&name]), numbers(want), "{reader} row {id} {name} (left), PostgreSQL");
                }
            }
        }
    }
}
