//! Every built-in type: a changed value is found and shown right, and a value
//! rewritten in another spelling that PostgreSQL prints the same is not a
//! change. Expected values are written by hand from the fixture.

use serde_json::{json, Value};

use crate::harness::{branch, counts, diff_json, table};

struct Case {
    ty: &'static str,
    before: &'static str,
    after: &'static str,
    /// A different spelling of `before` that prints the same (not a change).
    same: Option<&'static str>,
    before_json: Value,
    after_json: Value,
}

fn case(
    ty: &'static str,
    before: &'static str,
    after: &'static str,
    same: Option<&'static str>,
    bj: Value,
    aj: Value,
) -> Case {
    Case { ty, before, after, same, before_json: bj, after_json: aj }
}

/// The cases the server supports (numeric ±Infinity exist from PostgreSQL 14 on).
fn cases() -> Vec<Case> {
    let mut all = all_cases();
    if crate::harness::cluster().version_num < 140000 {
        all.retain(|c| !(c.ty == "numeric" && (c.before.contains("Infinity") || c.after.contains("Infinity"))));
    }
    all
}

fn all_cases() -> Vec<Case> {
    vec![
        case("boolean", "true", "false", None, json!(true), json!(false)),
        case("smallint", "-32768", "32767", None, json!(-32768), json!(32767)),
        case("integer", "7", "8", None, json!(7), json!(8)),
        case(
            "bigint",
            "9007199254740993",
            "9007199254740991",
            None,
            json!("9007199254740993"),
            json!(9007199254740991i64),
        ),
        case("numeric", "1.50", "1.51", Some("round(1.4999, 2)"), json!("1.50"), json!("1.51")),
        case("numeric", "'NaN'", "'Infinity'", Some("'NaN'::numeric"), json!("NaN"), json!("Infinity")),
        case("numeric", "'-Infinity'", "-0.5", None, json!("-Infinity"), json!("-0.5")),
        case("real", "1.5", "2.25", None, json!(1.5), json!(2.25)),
        case("double precision", "0", "'NaN'", Some("'0.0e5'"), json!(0.0), json!("NaN")),
        case("double precision", "'Infinity'", "'-Infinity'", None, json!("Infinity"), json!("-Infinity")),
        case("double precision", "'NaN'", "1e300", Some("'NaN'"), json!("NaN"), json!(1e300)),
        case("money", "12.34", "12.35", None, json!("$12.34"), json!("$12.35")),
        case("text", "'ab'", "'a''b'", None, json!("ab"), json!("a'b")),
        case("varchar(10)", "'x'", "'y'", None, json!("x"), json!("y")),
        case("char(5)", "'ab'", "'abc'", Some("'ab   '"), json!("ab   "), json!("abc  ")),
        case("\"char\"", "'a'", "'b'", None, json!("a"), json!("b")),
        case("name", "'n1'", "'n2'", None, json!("n1"), json!("n2")),
        case("bytea", "'\\x0102'", "'\\x0103'", None, json!("\\x0102"), json!("\\x0103")),
        case("date", "'2024-02-29'", "'infinity'", None, json!("2024-02-29"), json!("infinity")),
        case("date", "'0044-03-15 BC'", "'-infinity'", None, json!("0044-03-15 BC"), json!("-infinity")),
        case("time", "'12:34:56.789'", "'23:59:59.999999'", None, json!("12:34:56.789"), json!("23:59:59.999999")),
        case("timetz", "'12:00+02'", "'12:00+03'", None, json!("12:00:00+02"), json!("12:00:00+03")),
        case(
            "timestamp",
            "'2024-01-01 00:00:00'",
            "'2024-01-01 00:00:00.000001'",
            None,
            json!("2024-01-01 00:00:00"),
            json!("2024-01-01 00:00:00.000001"),
        ),
        case(
            "timestamptz",
            "'2024-06-01 12:00:00+00'",
            "'infinity'",
            Some("'2024-06-01 14:00:00+02'"),
            json!("2024-06-01 12:00:00+00"),
            json!("infinity"),
        ),
        case("interval", "'1 day'", "'25 hours'", None, json!("1 day"), json!("25:00:00")),
        case(
            "uuid",
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'",
            None,
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"),
        ),
        case(
            "json",
            "'{\"b\":1, \"a\":2}'",
            "'{\"a\":2, \"b\":1}'",
            None,
            json!({"b": 1, "a": 2}),
            json!({"a": 2, "b": 1}),
        ),
        case(
            "jsonb",
            "'{\"a\": 2.0, \"b\": [1, \"x\"]}'",
            "'{\"a\": 2.5, \"b\": [1, \"x\"]}'",
            Some("'{\"b\": [1,   \"x\"], \"a\": 2.0}'"),
            json!({"a": 2.0, "b": [1, "x"]}),
            json!({"a": 2.5, "b": [1, "x"]}),
        ),
        case("xml", "'<a>1</a>'", "'<a>2</a>'", None, json!("<a>1</a>"), json!("<a>2</a>")),
        case("inet", "'10.0.0.1/8'", "'10.0.0.2/8'", None, json!("10.0.0.1/8"), json!("10.0.0.2/8")),
        case("cidr", "'10.0.0.0/8'", "'10.0.0.0/16'", None, json!("10.0.0.0/8"), json!("10.0.0.0/16")),
        case(
            "macaddr",
            "'08:00:2b:01:02:03'",
            "'08:00:2b:01:02:04'",
            None,
            json!("08:00:2b:01:02:03"),
            json!("08:00:2b:01:02:04"),
        ),
        case("bit(4)", "B'1010'", "B'1011'", None, json!("1010"), json!("1011")),
        case("varbit", "B'1'", "B'10'", None, json!("1"), json!("10")),
        case("int[]", "'{{1,2},{3,NULL}}'", "'{{1,2},{3,4}}'", None, json!("{{1,2},{3,NULL}}"), json!("{{1,2},{3,4}}")),
        case("int[]", "'[0:1]={1,2}'", "'{1,2}'", None, json!("[0:1]={1,2}"), json!("{1,2}")),
        case("text[]", "ARRAY['a b', NULL]", "ARRAY['a b', 'c']", None, json!("{\"a b\",NULL}"), json!("{\"a b\",c}")),
        case("int4range", "'[1,5)'", "'[1,6)'", Some("'[1,4]'"), json!("[1,5)"), json!("[1,6)")),
        case(
            "tstzrange",
            "'[2024-01-01 00:00+00,2024-01-02 00:00+00)'",
            "'empty'",
            None,
            json!("[\"2024-01-01 00:00:00+00\",\"2024-01-02 00:00:00+00\")"),
            json!("empty"),
        ),
        case("point", "'(1,2)'", "'(1,3)'", None, json!("(1,2)"), json!("(1,3)")),
        case("line", "'{1,2,3}'", "'{1,2,4}'", None, json!("{1,2,3}"), json!("{1,2,4}")),
        case("lseg", "'[(0,0),(1,1)]'", "'[(0,0),(1,2)]'", None, json!("[(0,0),(1,1)]"), json!("[(0,0),(1,2)]")),
        case("box", "'(1,1),(0,0)'", "'(2,2),(0,0)'", None, json!("(1,1),(0,0)"), json!("(2,2),(0,0)")),
        case("path", "'[(0,0),(1,1)]'", "'((0,0),(1,1))'", None, json!("[(0,0),(1,1)]"), json!("((0,0),(1,1))")),
        case(
            "polygon",
            "'((0,0),(1,1),(1,0))'",
            "'((0,0),(2,2),(1,0))'",
            None,
            json!("((0,0),(1,1),(1,0))"),
            json!("((0,0),(2,2),(1,0))"),
        ),
        case("circle", "'<(0,0),1>'", "'<(0,0),2>'", None, json!("<(0,0),1>"), json!("<(0,0),2>")),
        case("tsvector", "'a fat cat'", "'a fat rat'", None, json!("'a' 'cat' 'fat'"), json!("'a' 'fat' 'rat'")),
        case("tsquery", "'fat & rat'", "'fat | rat'", None, json!("'fat' & 'rat'"), json!("'fat' | 'rat'")),
        case("oid", "4000000000", "12", None, json!(4000000000u64), json!(12)),
        case("pg_lsn", "'16/B374D848'", "'16/B374D849'", None, json!("16/B374D848"), json!("16/B374D849")),
        case(
            "aclitem",
            "'postgres=r/postgres'",
            "'postgres=rw/postgres'",
            None,
            json!("postgres=r/postgres"),
            json!("postgres=rw/postgres"),
        ),
        case("mood", "'sad'", "'happy'", None, json!("sad"), json!("happy")),
        case("mood[]", "'{sad,ok}'", "'{sad,happy}'", None, json!("{sad,ok}"), json!("{sad,happy}")),
        case("posint", "5", "6", None, json!(5), json!(6)),
        case("email", "'a@x'", "'b@x'", None, json!("a@x"), json!("b@x")),
        case("pair", "ROW(1, 'x')", "ROW(1, 'y')", None, json!("(1,x)"), json!("(1,y)")),
        case(
            "pair[]",
            "ARRAY[ROW(1, 'x')::pair]",
            "ARRAY[ROW(2, 'x')::pair]",
            None,
            json!("{\"(1,x)\"}"),
            json!("{\"(2,x)\"}"),
        ),
        case("numrange", "'[1.0,2.0)'", "'[1.0,2.5)'", None, json!("[1.0,2.0)"), json!("[1.0,2.5)")),
    ]
}

const TYPES_SETUP: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN posint AS int CHECK (VALUE > 0);
    CREATE DOMAIN email AS text;
    CREATE TYPE pair AS (a int, b text);";

#[test]
fn every_type_changed_and_unchanged() {
    let cases = cases();
    let mut setup = TYPES_SETUP.to_string();
    let mut change = String::new();
    for (i, c) in cases.iter().enumerate() {
        setup.push_str(&format!(
            "CREATE TABLE ty_{i} (id int PRIMARY KEY, v {ty});
             INSERT INTO ty_{i} VALUES (1, {b}), (2, {b}), (3, {b}), (4, NULL);\n",
            ty = c.ty,
            b = c.before
        ));
        change.push_str(&format!("UPDATE ty_{i} SET v = {} WHERE id = 2;\n", c.after));
        if let Some(same) = c.same {
            change.push_str(&format!("UPDATE ty_{i} SET v = {same} WHERE id = 3;\n"));
        }
    }
    let pair = branch("types", &setup, &change);
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    for (i, c) in cases.iter().enumerate() {
        let name = format!("public.ty_{i}");
        assert_eq!(counts(&doc, &name), (0, 1, 0), "{} ({} → {}): {:#}", c.ty, c.before, c.after, table(&doc, &name));
        let row = &table(&doc, &name)["rows"][0];
        assert_eq!(row["op"], "update");
        assert_eq!(row["key"], json!({"id": 2}), "{}", c.ty);
        assert_eq!(row["changed"], json!(["v"]), "{}", c.ty);
        assert_eq!(row["before"]["v"], c.before_json, "before of {}", c.ty);
        assert_eq!(row["after"]["v"], c.after_json, "after of {}", c.ty);
    }
    assert!(doc["schema_changes"].as_array().unwrap().is_empty(), "{:#}", doc["schema_changes"]);
}

#[test]
fn multirange_when_supported() {
    // Multiranges exist from PostgreSQL 14 on.
    if crate::harness::cluster().version_num < 140000 {
        return;
    }
    let pair = branch(
        "multirange",
        "CREATE TABLE m (id int PRIMARY KEY, v int4multirange);
         INSERT INTO m VALUES (1, '{[1,3),[5,7)}'), (2, '{[1,3)}');",
        "UPDATE m SET v = '{[1,3),[5,8)}' WHERE id = 1; UPDATE m SET v = '{[1,2],[3,3)}' WHERE id = 2;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(counts(&doc, "public.m"), (0, 1, 0));
    assert_eq!(table(&doc, "public.m")["rows"][0]["after"]["v"], json!("{[1,3),[5,8)}"));
}

#[test]
fn changed_column_types_compare_in_the_new_type() {
    let pair = branch(
        "retype",
        "CREATE TABLE p (id int PRIMARY KEY, amount numeric(12,4), qty int4, code varchar(30), f real, c char(4));
         INSERT INTO p VALUES (1, 24.6900, 5, 'short', 1.5, 'ab'), (2, 2.4690, 6, 'a rather long code', 0.1, 'cd'),
                              (3, 3.3333, 7, 'x', 2.5, 'ef');",
        "ALTER TABLE p ALTER amount TYPE numeric(12,2), ALTER qty TYPE bigint, ALTER f TYPE float8, ALTER c TYPE text;
         ALTER TABLE p ALTER code TYPE varchar(10) USING left(code, 10);
         UPDATE p SET amount = 3.30 WHERE id = 3;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    // The parent's values cast to the new types are what ALTER TYPE stored: 24.6900 → 24.69 and
    // 2.4690 → 2.47 (rounded to 2 places), 5 → 5, float4 widened exactly, 'ab  ' → 'ab'.
    // Left: row 2's code, cut by USING left(…) (not what the cast gives), and row 3's amount,
    // 3.3333 cast is 3.33, but the branch holds 3.30.
    assert_eq!(counts(&doc, "public.p"), (0, 2, 0));
    let row = &table(&doc, "public.p")["rows"][0];
    assert_eq!(row["key"], json!({"id": 2}));
    assert_eq!(row["changed"], json!(["code"]));
    assert_eq!(row["before"]["amount"], json!("2.4690"));
    assert_eq!(row["after"]["amount"], json!("2.47"));
    assert_eq!(row["after"]["code"], json!("a rather l"));
    let row = &table(&doc, "public.p")["rows"][1];
    assert_eq!(row["changed"], json!(["amount"]));
    assert_eq!(row["after"]["amount"], json!("3.30"));
    let altered: Vec<&str> =
        doc["schema_changes"].as_array().unwrap().iter().map(|c| c["object"].as_str().unwrap()).collect();
    // ALTER TYPE rewrote the table; narrowing type changes are labelled as such.
    assert_eq!(altered, ["public.p", "public.p.amount", "public.p.c", "public.p.code", "public.p.f", "public.p.qty"]);
    let danger = |o: &str| {
        doc["schema_changes"].as_array().unwrap().iter().find(|c| c["object"] == o).unwrap()["danger"].clone()
    };
    assert_eq!(danger("public.p"), json!(["table_rewritten"]));
    assert_eq!(danger("public.p.amount"), json!(["type_change", "may_narrow"]));
    assert_eq!(danger("public.p.code"), json!(["type_change", "may_narrow"]));
    assert_eq!(danger("public.p.qty"), json!(["type_change"]));
}
