//! Values that leave with an object: an attribute dropped from a composite
//! type (in every column, array, domain and composite holding it), a column
//! dropped from a partitioned table (counted once, at the root), rows that
//! leave a partitioned table with a detached partition (not lost while the
//! detached table holds them). Expected counts come from independent queries
//! on the parent.

use crate::data_loss::losses;
use crate::harness::{branch, cli, conn, connect, diff_json};

const SETUP: &str = "
    CREATE TYPE addr AS (street text, zip text);
    CREATE TYPE person AS (name text, home addr, homes addr[]);
    CREATE DOMAIN addr_d AS addr;
    CREATE TABLE c (id int PRIMARY KEY, a addr, aa addr[], p person, d addr_d);
    INSERT INTO c SELECT i, ROW('s' || i, CASE WHEN i % 2 = 0 THEN 'z' || i END)::addr,
        ARRAY[ROW('x', 'z')::addr, ROW('y', NULL)::addr, NULL],
        ROW('n', ROW('s', CASE WHEN i % 3 = 0 THEN 'zz' END)::addr, ARRAY[ROW('s', 'zz')::addr, ROW('t', 'zz')::addr])::person,
        CASE WHEN i % 4 = 0 THEN ROW('q', 'w')::addr END
    FROM generate_series(1, 40) i;
    CREATE TABLE pt (id int, region text, note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE pt_a PARTITION OF pt FOR VALUES IN ('a'); CREATE TABLE pt_b PARTITION OF pt FOR VALUES IN ('b');
    INSERT INTO pt SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, CASE WHEN i % 5 <> 0 THEN 'n' || i END
    FROM generate_series(1, 30) i;
    CREATE TABLE dt (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE dt_a PARTITION OF dt FOR VALUES IN ('a'); CREATE TABLE dt_b PARTITION OF dt FOR VALUES IN ('b');
    INSERT INTO dt SELECT i, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, 30) i;";

#[test]
fn dropped_attribute_partition_column_and_detached_rows() {
    let pair = branch(
        "dropvals",
        SETUP,
        "ALTER TYPE addr DROP ATTRIBUTE zip CASCADE; ALTER TABLE pt DROP COLUMN note;
         ALTER TABLE dt DETACH PARTITION dt_b; DELETE FROM dt_b WHERE id <= 4;",
    );
    let mut parent = connect(&pair.parent);
    let q = |c: &mut postgres::Client, sql: &str| -> u64 { c.query_one(sql, &[]).unwrap().get::<_, i64>(0) as u64 };
    // Every zip still in the parent, read through unnest and field selection (not the tool's paths).
    let zips = q(
        &mut parent,
        "SELECT (count((a).zip) + sum((SELECT count(x.zip) FROM unnest(aa) x)) + count(((p).home).zip)
                 + sum((SELECT count(x.zip) FROM unnest((p).homes) x)) + count((d).zip))::int8 FROM c",
    );
    let notes = q(&mut parent, "SELECT count(note) FROM pt");
    // Rows of dt_b deleted after the detach: ids 1, 2, 4 are in dt_b (id % 3 <> 0), 3 is not.
    let deleted_from_detached = q(&mut parent, "SELECT count(*) FROM dt_b WHERE id <= 4");
    assert_eq!((notes, deleted_from_detached), (24, 3), "fixture");
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    let got = losses(&doc);
    let want = [
        (("dropped_attribute".to_string(), "public.addr.zip".to_string()), zips),
        (("dropped_column".into(), "public.pt.note".into()), notes),
        (("deleted_rows".into(), "public.dt_b".into()), deleted_from_detached),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want, "{:#}", doc["data_loss"]);
    let change = |object: &str| {
        doc["schema_changes"].as_array().unwrap().iter().find(|c| c["object"] == object).cloned().unwrap_or_default()
    };
    assert!(change("public.addr")["danger"].as_array().unwrap().iter().any(|d| d == "drops_data"));
    assert_eq!(change("public.pt_a.note")["cause"], "public.pt.note");
    let detach_note = change("public.dt_b")["note"].as_str().unwrap_or_default().to_string();
    assert!(detach_note.contains("detached from public.dt: its 20 rows"), "{detach_note}");
    // Accepting the partitioned table accepts its column's values, and only those.
    let (p, c) = (conn(&pair.parent), conn(&pair.child));
    let accepted = |extra: &[&str]| {
        let mut args = vec!["--format", "json", "--quiet", "--fail-on", "dropped-objects"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&p, &c]);
        cli(&args, &[]).code
    };
    assert_eq!(accepted(&["--accept", "public.pt", "--accept", "public.addr"]), 0);
    assert_eq!(accepted(&["--accept", "public.pt"]), 1, "the attribute is not accepted by the table");
}

#[test]
fn large_objects_removed_overwritten_and_added() {
    let pair = branch(
        "largeobj",
        "SELECT lo_from_bytea(0, 'hello world'), lo_from_bytea(0, convert_to(repeat('x', 5000), 'UTF8')),
                lo_from_bytea(0, 'kept');
         CREATE TABLE refs (id int PRIMARY KEY, lo oid);
         INSERT INTO refs SELECT row_number() OVER (ORDER BY oid), oid FROM pg_largeobject_metadata;",
        "SELECT lo_unlink(lo) FROM refs WHERE id = 1;
         SELECT lo_put(lo, 10, 'yy') FROM refs WHERE id = 2;
         SELECT lo_from_bytea(0, 'new');",
    );
    let mut parent = connect(&pair.parent);
    let oid = |c: &mut postgres::Client, id: i32| -> (String, i64) {
        let r = c.query_one("SELECT lo::text, length(lo_get(lo))::int8 FROM refs WHERE id = $1", &[&id]).unwrap();
        (r.get(0), r.get(1))
    };
    let ((removed, removed_bytes), (overwritten, overwritten_bytes)) = (oid(&mut parent, 1), oid(&mut parent, 2));
    assert_eq!((removed_bytes, overwritten_bytes), (11, 5000), "fixture");
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    let entries = doc["data_loss"].as_array().unwrap();
    let entry =
        |kind: &str| entries.iter().find(|l| l["kind"] == kind).unwrap_or_else(|| panic!("no {kind}: {entries:#?}"));
    assert_eq!(entry("dropped_large_object")["table"], removed.as_str());
    assert_eq!(entry("dropped_large_object")["bytes"], removed_bytes);
    assert_eq!(entry("overwritten_large_object")["table"], overwritten.as_str());
    assert_eq!(entry("overwritten_large_object")["bytes"], overwritten_bytes);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let ops: Vec<(String, String)> = doc["schema_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "large_object")
        .map(|c| (c["op"].as_str().unwrap().to_string(), c["object"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(ops.contains(&("dropped".into(), removed.clone())) && ops.contains(&("altered".into(), overwritten)));
    assert!(ops.iter().any(|(op, o)| op == "added" && *o != removed));
    // --ignore large_object takes them out of the schema diff and the loss section.
    let (_, ignored) = diff_json(&pair, &["--ignore", "large_object"]);
    assert!(ignored["data_loss"].as_array().unwrap().is_empty(), "{:#}", ignored["data_loss"]);
}
