//! Golden tests of the SQL patch from hand-built events: no cluster. The
//! expected scripts are written out by hand from PostgreSQL's literal rules.

use super::*;
use crate::catalog::ForeignKey;
use crate::report::{ColumnInfo, TableSide};
use crate::schema::{ChangeOp, Danger};

fn column(name: &str, type_name: &str, oid: u32) -> ColumnInfo {
    ColumnInfo {
        type_name: type_name.into(),
        parent_type: type_name.into(),
        base_type_oid: oid,
        ..ColumnInfo::text(name)
    }
}

fn table(id: usize, name: &str, key_source: KeySource, columns: Vec<ColumnInfo>, nkey: usize) -> TableInfo {
    let side =
        |schema: &str, name: &str| TableSide { schema: schema.into(), name: name.into(), ..TableSide::default() };
    TableInfo {
        id,
        schema: "app".into(),
        name: name.into(),
        parent_name: None,
        key: columns[..nkey].iter().map(|c| c.name.clone()).collect(),
        key_source,
        columns: columns.iter().map(|c| c.name.clone()).collect(),
        column_info: columns,
        parent_side: side("app", name),
        child_side: side("app", name),
    }
}

fn fk(columns: &[&str], ref_table: &str, ref_columns: &[&str], deferrable: bool) -> ForeignKey {
    ForeignKey {
        name: format!("{ref_table}_fk"),
        columns: columns.iter().map(|s| s.to_string()).collect(),
        ref_schema: "app".into(),
        ref_table: ref_table.into(),
        ref_columns: ref_columns.iter().map(|s| s.to_string()).collect(),
        deferrable,
    }
}

fn started(tables: Vec<TableInfo>) -> Event {
    let endpoint = |db: &str| Endpoint { endpoint: format!("app@db:5432/{db}"), server_version: 150000 };
    Event::Started {
        parent: endpoint("shop"),
        child: endpoint("shop_branch"),
        tables,
        rows: true,
        schema: true,
        filtered: false,
    }
}

fn row(table: usize, op: Op, nkey: usize, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> Event {
    let key = after.as_ref().or(before.as_ref()).unwrap()[..nkey].to_vec();
    let changed = match (&before, &after) {
        (Some(b), Some(a)) => (0..a.len()).filter(|&i| a[i] != b[i]).collect(),
        _ => vec![],
    };
    Event::Row { table, change: RowChange { op, key, changed, before, after } }
}

fn render(reverse: bool, events: &[Event]) -> io::Result<String> {
    let mut out = vec![];
    let mut sink = Box::new(SqlSink::new(reverse, &mut out));
    for e in events {
        sink.event(e)?;
    }
    sink.finish(&End::default())?;
    Ok(String::from_utf8(out).unwrap())
}

/// The body of a script: from `BEGIN;` on.
fn body(script: &str) -> &str {
    &script[script.find("BEGIN;").unwrap()..]
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn string_literals() {
    assert_eq!(quote_literal("plain"), "'plain'");
    assert_eq!(quote_literal("it's"), "'it''s'");
    // standard_conforming_strings = on: a backslash is itself.
    assert_eq!(quote_literal(r"back\slash \x41"), r"'back\slash \x41'");
    assert_eq!(quote_literal("日本 🎉 ü"), "'日本 🎉 ü'");
    assert_eq!(quote_literal(""), "''");
    // Control characters: an escape string, where backslashes and quotes are escaped too.
    assert_eq!(quote_literal("a\nb\r\tc'\\"), r"E'a\nb\r\tc''\\'");
    // \x takes at most two hex digits: the 'f' after it stays an 'f'.
    assert_eq!(quote_literal("\u{1}f\u{7f}"), r"E'\x01f\x7f'");
    assert_eq!(comment("two\nlines\u{0}"), r"two\nlines\u{0}");
}

#[test]
fn value_literals() {
    assert_eq!(value_literal(&Value::Null, "integer"), "NULL");
    assert_eq!(value_literal(&Value::Int(3_000_000_000), "oid"), "'3000000000'::oid");
    assert_eq!(value_literal(&Value::Numeric("9.90".into()), "numeric(12,2)"), "'9.90'::numeric(12,2)");
    assert_eq!(value_literal(&Value::Float(f64::NAN), "double precision"), "'NaN'::double precision");
    assert_eq!(value_literal(&Value::Float(f64::NEG_INFINITY), "real"), "'-Infinity'::real");
    assert_eq!(value_literal(&Value::Float(-0.0), "double precision"), "'-0.0'::double precision");
    assert_eq!(value_literal(&Value::Float(1e-30), "double precision"), "'1e-30'::double precision");
    // A real's value held as f64 prints as the real it is.
    assert_eq!(typed_literal(&Value::Float(0.1f32 as f64), "real", true), "'0.1'::real");
    assert_eq!(value_literal(&Value::Bytes(vec![0, 0xff, b'\\', b'\'']), "bytea"), r"'\x00ff5c27'::bytea");
    assert_eq!(value_literal(&Value::Bool(true), "boolean"), "'t'::boolean");
    assert_eq!(value_literal(&Value::Json(r#"{"a": "it's"}"#.into()), "jsonb"), r#"'{"a": "it''s"}'::jsonb"#);
    assert_eq!(value_literal(&Value::Literal("{1,NULL}".into()), "integer[]"), "'{1,NULL}'::integer[]");
}

fn orders() -> TableInfo {
    let mut gen = column("total", "numeric(12,2)", 1700);
    gen.generated = true;
    let mut id = column("id", "integer", 23);
    id.identity = Some('a');
    let columns = vec![id, column("note", "text", 25), column("amount", "numeric(12,2)", 1700), gen];
    table(0, "orders", KeySource::PrimaryKey, columns, 1)
}

fn orders_events() -> Vec<Event> {
    let r = |id: i64, note: &str, amount: &str| {
        Some(vec![Value::Int(id), text(note), Value::Numeric(amount.into()), Value::Numeric(amount.into())])
    };
    let mut change = crate::schema::SchemaChange::new("column", ChangeOp::Altered, "app.orders.note".into());
    change.before.insert("type".into(), "character varying(10)".into());
    change.after.insert("type".into(), "text".into());
    change.danger.push(Danger::TypeChange);
    vec![
        started(vec![orders()]),
        Event::Schema(change),
        row(0, Op::Update, 1, r(1, "old", "1.00"), r(1, "it's\nnew", "2.50")),
        row(0, Op::Delete, 1, r(2, "gone", "3.00"), None),
        row(0, Op::Insert, 1, None, r(3, r"C:\path", "4.00")),
    ]
}

#[test]
fn a_whole_forward_patch() {
    let script = render(false, &orders_events()).unwrap();
    let want = r#"-- pgbranchdiff SQL patch
-- Makes the rows of app@db:5432/shop equal those of app@db:5432/shop_branch.
-- Apply with: psql -X -v ON_ERROR_STOP=1 -f THIS_FILE TARGET. One transaction: all or nothing.
-- Assumes the target already has the branch's schema: schema changes are listed, not replayed.
-- Generated columns are not written; columns left out of the diff keep their values on UPDATE
-- and take their defaults on INSERT. Triggers fire; sequences are not advanced.
-- 3 rows to write.
--
-- Schema changes from parent to branch (1), not replayed:
--   altered column app.orders.note: type character varying(10) → text [type_change]

BEGIN;
SET LOCAL client_encoding = 'UTF8';
SET LOCAL standard_conforming_strings = on;
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL TimeZone = 'UTC';
SET LOCAL extra_float_digits = 3;
SET LOCAL bytea_output = 'hex';
SET LOCAL lc_monetary = 'C';
SET LOCAL array_nulls = on;
SET LOCAL xmloption = content;
SET LOCAL row_security = off;
SET CONSTRAINTS ALL DEFERRED;

-- DELETE app.orders: 1 row
DELETE FROM ONLY "app"."orders" WHERE "id" OPERATOR(pg_catalog.=) '2'::integer;

-- UPDATE app.orders: 1 row
UPDATE ONLY "app"."orders" SET "note" = E'it''s\nnew'::text, "amount" = '2.50'::numeric(12,2) WHERE "id" OPERATOR(pg_catalog.=) '1'::integer;

-- INSERT app.orders: 1 row
INSERT INTO "app"."orders" ("id", "note", "amount") OVERRIDING SYSTEM VALUE VALUES ('3'::integer, 'C:\path'::text, '4.00'::numeric(12,2));

COMMIT;
"#;
    assert_eq!(script, want);
}

#[test]
fn reverse_swaps_sides_and_uses_parent_names_and_types() {
    let mut info = orders();
    info.parent_side.name = "old orders".into();
    info.column_info[1].parent_name = "remark".into();
    info.column_info[1].parent_type = "character varying(10)".into();
    // In the parent, the generated column was an ordinary one and id was not an identity.
    info.column_info[3].parent_generated = false;
    info.column_info[0].identity = Some('a');
    let mut events = orders_events();
    events[0] = started(vec![info]);
    let script = render(true, &events).unwrap();
    assert!(script.contains("Makes the rows of app@db:5432/shop_branch equal those of app@db:5432/shop."));
    assert!(script.contains("has the parent's schema (--reverse)"));
    let want = r#"BEGIN;
SET LOCAL client_encoding = 'UTF8';
SET LOCAL standard_conforming_strings = on;
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL TimeZone = 'UTC';
SET LOCAL extra_float_digits = 3;
SET LOCAL bytea_output = 'hex';
SET LOCAL lc_monetary = 'C';
SET LOCAL array_nulls = on;
SET LOCAL xmloption = content;
SET LOCAL row_security = off;
SET CONSTRAINTS ALL DEFERRED;

-- DELETE app.old orders: 1 row
DELETE FROM ONLY "app"."old orders" WHERE "id" OPERATOR(pg_catalog.=) '3'::integer;

-- UPDATE app.old orders: 1 row
UPDATE ONLY "app"."old orders" SET "remark" = 'old'::character varying(10), "amount" = '1.00'::numeric(12,2), "total" = '1.00'::numeric(12,2) WHERE "id" OPERATOR(pg_catalog.=) '1'::integer;

-- INSERT app.old orders: 1 row
INSERT INTO "app"."old orders" ("id", "remark", "amount", "total") VALUES ('2'::integer, 'gone'::character varying(10), '3.00'::numeric(12,2), '3.00'::numeric(12,2));

COMMIT;
"#;
    assert_eq!(body(&script), want);
}

#[test]
fn keyless_rows_are_matched_exactly_one_at_a_time() {
    let columns = vec![column("a", "integer", 23), column("f", "double precision", 701), column("b", "text", 25)];
    let mut log = table(0, "log", KeySource::WholeRow, columns, 3);
    let r = || Some(vec![Value::Int(1), Value::Float(-0.0), Value::Null]);
    let script = render(false, &[started(vec![log.clone()]), row(0, Op::Delete, 3, r(), None)]).unwrap();
    let want = "DELETE FROM ONLY \"app\".\"log\" WHERE ctid OPERATOR(pg_catalog.=) (SELECT ctid FROM ONLY \"app\".\"log\" WHERE \
                \"a\" OPERATOR(pg_catalog.=) '1'::integer AND pg_catalog.format('%s', \"f\") COLLATE pg_catalog.\"C\" \
                OPERATOR(pg_catalog.=) pg_catalog.format('%s', '-0.0'::double precision) AND \"b\" IS NULL LIMIT 1);\n";
    assert!(script.contains(want), "{script}");
    // Partitioned: ctid alone names no row; tableoid tells the partitions apart.
    log.child_side.partitioned = true;
    let script = render(false, &[started(vec![log]), row(0, Op::Delete, 3, r(), None)]).unwrap();
    assert!(script.contains(
        "DELETE FROM \"app\".\"log\" WHERE (tableoid, ctid) OPERATOR(pg_catalog.=) (SELECT tableoid, ctid FROM \"app\".\"log\" WHERE"
    ));
}

#[test]
fn an_identity_always_column_that_changed_is_written_by_delete_and_insert() {
    let mut seq = column("seq", "integer", 23);
    seq.identity = Some('a');
    let info = table(0, "tickets", KeySource::PrimaryKey, vec![column("code", "text", 25), seq], 1);
    let (b, a) = (vec![text("x"), Value::Int(1)], vec![text("x"), Value::Int(3)]);
    let script = render(false, &[started(vec![info]), row(0, Op::Update, 1, Some(b), Some(a))]).unwrap();
    let want = "-- UPDATE app.tickets: 1 row\nDELETE FROM ONLY \"app\".\"tickets\" WHERE \"code\" OPERATOR(pg_catalog.=) 'x'::text;\n\
                INSERT INTO \"app\".\"tickets\" (\"code\", \"seq\") OVERRIDING SYSTEM VALUE VALUES ('x'::text, '3'::integer);\n";
    assert!(script.contains(want), "{script}");
}

#[test]
fn only_generated_changes_write_nothing() {
    let info = orders();
    let (b, a) = (
        vec![Value::Int(1), text("n"), Value::Numeric("1".into()), Value::Numeric("1".into())],
        vec![Value::Int(1), text("n"), Value::Numeric("1".into()), Value::Numeric("2".into())],
    );
    let script = render(false, &[started(vec![info]), row(0, Op::Update, 1, Some(b), Some(a))]).unwrap();
    assert!(!script.contains("UPDATE ONLY"), "{script}");
    assert!(script.contains("-- 0 rows to write."));
}

#[test]
fn a_redacted_column_refuses_the_patch() {
    let mut info = orders();
    info.column_info[1].redacted = true;
    let redacted = Some(vec![Value::Int(3), Value::Redacted("ab12".into()), Value::Null, Value::Null]);
    let err = render(false, &[started(vec![info.clone()]), row(0, Op::Insert, 1, None, redacted.clone())]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("column app.orders.note is redacted"), "{err}");
    // A delete by key does not need the redacted value.
    let script = render(false, &[started(vec![info]), row(0, Op::Delete, 1, redacted, None)]).unwrap();
    assert!(script.contains("DELETE FROM ONLY \"app\".\"orders\" WHERE \"id\" OPERATOR(pg_catalog.=) '3'::integer;"));
}

/// Parents before children for INSERTs, children first for DELETEs (before
/// everything, unless an UPDATE moves a reference: then the referenced tables'
/// DELETEs come last), rows of a self-referencing table by their links.
#[test]
fn foreign_keys_order_tables_and_rows() {
    let ints = |names: &[&str]| names.iter().map(|n| column(n, "integer", 23)).collect::<Vec<_>>();
    // "a_item" references "b_node"; "b_node" references itself.
    let mut item = table(0, "a_item", KeySource::PrimaryKey, ints(&["id", "node"]), 1);
    item.child_side.foreign_keys = vec![fk(&["node"], "b_node", &["id"], false)];
    let mut node = table(1, "b_node", KeySource::PrimaryKey, ints(&["id", "parent"]), 1);
    node.child_side.foreign_keys = vec![fk(&["parent"], "b_node", &["id"], false)];
    let r = |id: i64, to: Option<i64>| Some(vec![Value::Int(id), to.map_or(Value::Null, Value::Int)]);
    let events = vec![
        started(vec![item, node]),
        row(0, Op::Insert, 1, None, r(1, Some(20))),
        row(0, Op::Delete, 1, r(2, Some(30)), None),
        // Key order 10, 20; 10 hangs under 20.
        row(1, Op::Insert, 1, None, r(10, Some(20))),
        row(1, Op::Insert, 1, None, r(20, None)),
        // Key order 30, 40; 40 hangs under 30.
        row(1, Op::Delete, 1, r(30, None), None),
        row(1, Op::Delete, 1, r(40, Some(30)), None),
    ];
    let ids = |script: &str| -> Vec<String> {
        script
            .lines()
            .filter(|l| l.starts_with("INSERT") || l.starts_with("DELETE"))
            .map(|l| l.split("VALUES ('").nth(1).or_else(|| l.split("\"id\" OPERATOR(pg_catalog.=) '").nth(1)).unwrap())
            .map(|l| l[..l.find('\'').unwrap()].to_string())
            .collect()
    };
    // No row that stays points at a deleted one: every DELETE first, a_item's before b_node's.
    let script = render(false, &events).unwrap();
    assert_eq!(ids(&script), ["2", "40", "30", "20", "10", "1"], "{script}");
    assert!(!script.contains("session_replication_role"));
    // An a_item row moves from node 30 to node 20: b_node's DELETEs wait for that UPDATE.
    let mut events = events;
    events.push(row(0, Op::Update, 1, r(3, Some(30)), r(3, Some(20))));
    let script = render(false, &events).unwrap();
    assert_eq!(ids(&script), ["2", "20", "10", "1", "40", "30"], "{script}");
    let (update, delete) = (script.find("UPDATE ONLY").unwrap(), script.find("'40'").unwrap());
    assert!(update < delete, "{script}");
}

#[test]
fn a_cycle_of_non_deferrable_keys_switches_checks_off() {
    let ints = |names: &[&str]| names.iter().map(|n| column(n, "integer", 23)).collect::<Vec<_>>();
    let mut a = table(0, "a", KeySource::PrimaryKey, ints(&["id", "b"]), 1);
    let mut b = table(1, "b", KeySource::PrimaryKey, ints(&["id", "a"]), 1);
    a.child_side.foreign_keys = vec![fk(&["b"], "b", &["id"], false)];
    b.child_side.foreign_keys = vec![fk(&["a"], "a", &["id"], true)];
    let insert = row(0, Op::Insert, 1, None, Some(vec![Value::Int(1), Value::Int(1)]));
    let script = render(false, &[started(vec![a.clone(), b.clone()]), insert.clone()]).unwrap();
    assert!(script.contains("(app.a, app.b)") && script.contains("SET LOCAL session_replication_role = replica;"));
    // Deferrable both ways: deferring them is enough.
    a.child_side.foreign_keys[0].deferrable = true;
    let script = render(false, &[started(vec![a, b]), insert]).unwrap();
    assert!(!script.contains("session_replication_role"), "{script}");
}

/// Each key value matched by pg_catalog's operators only, exactly by the diff's
/// rule where the key need not be unique; written out by hand from that rule.
#[test]
fn key_predicates_by_type_and_key_kind() {
    use crate::reading::Reading;
    let mut pair = column("p", "public.pair", 16_400);
    pair.reading = Reading::Composite(vec![(1, -1, Reading::Builtin(23)), (2, -1, Reading::Builtin(25))]);
    let mut ext = column("e", "public.citext", 16_500);
    ext.reading = Reading::Base { oid: 16_500, output: 16_501, send: 16_502 };
    let columns = vec![
        column("w", "text", 25),
        column("n", "numeric", 1700),
        pair.clone(),
        column("u", "uuid", 2950),
        column("j", "json", 114),
        ext.clone(),
    ];
    let delete = |source: KeySource, columns: Vec<ColumnInfo>, key: Vec<Value>| {
        let n = key.len();
        let info = table(0, "t", source, columns, n);
        let script = render(false, &[started(vec![info]), row(0, Op::Delete, n, Some(key), None)]).unwrap();
        script.lines().find(|l| l.starts_with("DELETE")).unwrap().to_string()
    };
    let printed = |col: &str, lit: &str| {
        format!("pg_catalog.format('%s', \"{col}\") COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) pg_catalog.format('%s', {lit})")
    };
    let key = vec![
        text("ABC"),
        Value::Numeric("1.0".into()),
        Value::Null,
        Value::Literal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
        Value::Json("{}".into()),
        text("x"),
    ];
    let want = [
        "\"w\" COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) 'ABC'::text".to_string(),
        printed("n", "'1.0'::numeric"),
        // IS NULL would also hold for ROW(NULL, NULL).
        "pg_catalog.num_nulls(\"p\") OPERATOR(pg_catalog.=) 1".into(),
        "\"u\" OPERATOR(pg_catalog.=) 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid".into(),
        printed("j", "'{}'::json"),
        printed("e", "'x'::public.citext"),
    ]
    .join(" AND ");
    let line = delete(KeySource::Override, columns, key);
    assert_eq!(line, format!("DELETE FROM ONLY \"app\".\"t\" WHERE {want};"));
    // A primary key is unique under its own `=`, which its index serves; an
    // extension's type has no `=` in pg_catalog and is matched by print.
    let line = delete(
        KeySource::PrimaryKey,
        vec![column("n", "numeric", 1700), ext],
        vec![Value::Numeric("1.0".into()), text("x")],
    );
    let want = format!("\"n\" OPERATOR(pg_catalog.=) '1.0'::numeric AND {}", printed("e", "'x'::public.citext"));
    assert_eq!(line, format!("DELETE FROM ONLY \"app\".\"t\" WHERE {want};"));
    // A composite value, not NULL, under a primary key: record equality of pg_catalog.
    let line = delete(KeySource::PrimaryKey, vec![pair], vec![Value::Literal("(,)".into())]);
    assert_eq!(line, "DELETE FROM ONLY \"app\".\"t\" WHERE \"p\" OPERATOR(pg_catalog.=) '(,)'::public.pair;");
}

#[test]
fn a_reverse_patch_matches_a_changed_type_by_print() {
    let mut n = column("n", "integer", 23);
    n.parent_type = "numeric(6,2)".into();
    let info = table(0, "t", KeySource::WholeRow, vec![n], 1);
    let script = render(true, &[started(vec![info]), row(0, Op::Insert, 1, None, Some(vec![Value::Int(3)]))]).unwrap();
    assert!(
        script.contains(
            "WHERE pg_catalog.format('%s', \"n\") COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) \
             pg_catalog.format('%s', '3'::numeric(6,2)) LIMIT 1);"
        ),
        "{script}"
    );
}
