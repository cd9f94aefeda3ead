//! `--format ndjson`: one object a line, in the order found, each line valid
//! against its schema (`$defs/line_<type>` in docs/output-schema.json).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{branch, cli, conn};
use crate::schema_doc::validate;

const SETUP: &str = "CREATE TABLE a (id int PRIMARY KEY, v text, gone int);
     INSERT INTO a SELECT i, 'x' || i, i FROM generate_series(1, 10) i;
     CREATE TABLE k (v int); INSERT INTO k VALUES (1), (1), (2);
     CREATE TABLE same (id int PRIMARY KEY); INSERT INTO same VALUES (1);";
const CHANGE: &str = "UPDATE a SET v = 'y' WHERE id IN (1, 2); DELETE FROM a WHERE id = 3;
     INSERT INTO a VALUES (11, NULL, 0); ALTER TABLE a DROP COLUMN gone;
     DELETE FROM k WHERE ctid = (SELECT min(ctid) FROM k WHERE v = 1); INSERT INTO k VALUES (3);";

fn lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn lines_come_in_order_and_validate_against_their_schemas() {
    let schema: Value = serde_json::from_str(include_str!("../../../docs/output-schema.json")).unwrap();
    let pair = branch("ndjson", SETUP, CHANGE);
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let run = cli(&["--format", "ndjson", "--quiet", "--fail-on", "data-loss", &p, &c], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = lines(&run.stdout);
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();

    let mut errors = vec![];
    for (i, l) in lines.iter().enumerate() {
        let def = &schema["$defs"][format!("line_{}", kinds[i])];
        assert!(def.is_object(), "no schema for line type {}", kinds[i]);
        validate(&schema, def, l, &format!("line {}", i + 1), &mut errors);
    }
    assert!(errors.is_empty(), "{errors:#?}");

    // Order: begin first, summary last, every schema change before any row,
    // each table's rows before its table line.
    assert_eq!(kinds.first(), Some(&"begin"));
    assert_eq!(kinds.last(), Some(&"summary"));
    assert_eq!(kinds.iter().filter(|k| **k == "begin" || **k == "summary").count(), 2);
    let first_row = kinds.iter().position(|k| *k == "row").unwrap();
    let last_schema = kinds.iter().rposition(|k| *k == "schema_change").unwrap();
    assert!(last_schema < first_row, "{kinds:?}");
    for (i, l) in lines.iter().enumerate().filter(|(_, l)| l["type"] == "row") {
        let done = lines.iter().position(|t| t["type"] == "table" && t["data"]["table"] == l["data"]["table"]).unwrap();
        assert!(i < done, "row after its table line: {l}");
    }

    // Counts worked out from the fixture: a: 2 updated, 1 deleted, 1 inserted;
    // k (keyless): one of two (1) rows deleted, (3) inserted; same: nothing.
    let rows_of = |t: &str, op: &str| {
        lines.iter().filter(|l| l["type"] == "row" && l["data"]["table"] == t && l["data"]["op"] == op).count()
    };
    assert_eq!(
        (rows_of("public.a", "insert"), rows_of("public.a", "update"), rows_of("public.a", "delete")),
        (1, 2, 1)
    );
    assert_eq!((rows_of("public.k", "insert"), rows_of("public.k", "delete")), (1, 1));
    let table = |t: &str| lines.iter().find(|l| l["type"] == "table" && l["data"]["table"] == t).unwrap();
    assert_eq!(table("public.a")["data"]["counts"], serde_json::json!({"inserted": 1, "updated": 2, "deleted": 1}));
    assert_eq!(table("public.same")["data"]["counts"], serde_json::json!({"inserted": 0, "updated": 0, "deleted": 0}));
    let updated: Vec<&Value> = lines.iter().filter(|l| l["data"]["op"] == "update").collect();
    assert!(updated.iter().all(|l| l["data"]["changed"] == serde_json::json!(["v"])), "{updated:?}");

    // The dropped column held 10 non-NULL values: data loss, and the gate failed on it.
    let loss = lines.iter().find(|l| l["type"] == "data_loss" && l["data"]["kind"] == "dropped_column").unwrap();
    assert_eq!(loss["data"]["column"], "gone");
    assert_eq!(loss["data"]["count"], 10);
    let summary = &lines.last().unwrap()["data"];
    assert_eq!(summary["summary"]["inserted"], 2);
    assert_eq!(summary["summary"]["updated"], 2);
    assert_eq!(summary["summary"]["deleted"], 2);
    assert_eq!(summary["identical"], false);
    assert_eq!(summary["gate"]["passed"], false);

    // The validator notices a line of the wrong shape.
    let mut bad = lines[first_row].clone();
    bad["data"]["extra"] = Value::Bool(true);
    let mut errors = vec![];
    validate(&schema, &schema["$defs"]["line_row"], &bad, "bad", &mut errors);
    assert_eq!(errors.len(), 1, "{errors:?}");
}

/// A consumer may stop reading after any line: the diff stops quietly (no
/// error message) instead of computing the rest.
#[test]
fn a_reader_may_stop_after_the_first_line() {
    let setup = "CREATE TABLE big (id int PRIMARY KEY, v int);
                 INSERT INTO big SELECT i, i FROM generate_series(1, 300000) i;";
    let pair = branch("ndjson_stop", setup, "UPDATE big SET v = v + 1;");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgbranchdiff"))
        .args(["--format", "ndjson", "--quiet", &conn(&pair.parent), &conn(&pair.child)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with(r#"{"type":"begin""#), "{first}");
    drop(out);
    let status = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(matches!(status.status.code(), Some(0 | 1)), "{:?}", status.status);
}
