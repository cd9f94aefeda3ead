//! Values lost in place, by any conversion: type changes with and without
//! `USING`, rounding `UPDATE`s, inside arrays, domains and composites. The
//! expected count of every column comes from PostgreSQL itself, on the
//! parent: the same conversion applied there and converted back to the old
//! type (the rule: a value is lost when the new value no longer gives back
//! the old one), never from the tool.

use std::collections::BTreeMap;

use crate::data_loss::losses;
use crate::harness::{branch, connect, diff_json};

const SETUP: &str = "
    SET TimeZone = 'UTC';
    CREATE TYPE pair AS (a numeric, b text);
    CREATE DOMAIN money4 AS numeric(12,4);
    CREATE TABLE m (
        id int PRIMARY KEY,
        f float8, f2 float8, nf numeric, big int8,
        ts timestamp(6), tm time(6), tsd timestamp, tzd timestamptz, iv interval,
        tr numeric(12,4), w float8, amt numeric(12,4), dm money4,
        arr numeric[], farr float8[], comp pair, comps pair[],
        keep int, vc varchar(10), ts2 timestamp, n2 numeric(10,2), s text);
    INSERT INTO m SELECT i,
        i / 7.0, CASE WHEN i % 4 = 0 THEN i * 0.5 ELSE i / 3.0 END, round(i::numeric / 7, 20),
        CASE WHEN i % 5 = 0 THEN (2::int8 ^ 53)::int8 + i ELSE i END,
        '2024-01-01'::timestamp + i * interval '1.25 second', '10:00'::time + i * interval '0.5 second',
        '2024-01-01'::timestamp + i * interval '6 hours', '2024-01-01'::timestamptz + i * interval '6 hours',
        i * interval '0.3 second',
        i / 8.0, i / 9.0, i / 3.0, i / 16.0,
        ARRAY[i / 4.0, i], ARRAY[i / 3.0, 1.5], ROW(i / 4.0, 'x')::pair, ARRAY[ROW(i / 8.0, 'y')::pair],
        i, 'v' || i, '2024-01-01'::timestamp + i * interval '1 minute', i / 4.0, repeat('s', i % 12)
    FROM generate_series(1, 400) i;
    UPDATE m SET f = NULL, ts = NULL, arr = ARRAY[NULL, 1] WHERE id % 50 = 0;";

const MIGRATION: &str = "
    SET TimeZone = 'UTC';
    ALTER TABLE m ALTER f TYPE int, ALTER f2 TYPE real, ALTER nf TYPE float8, ALTER big TYPE float8,
        ALTER ts TYPE timestamp(0), ALTER tm TYPE time(0), ALTER tsd TYPE date, ALTER tzd TYPE date,
        ALTER iv TYPE interval(0), ALTER tr TYPE numeric(12,2) USING trunc(tr, 2),
        ALTER arr TYPE numeric(10,1)[], ALTER farr TYPE int[],
        ALTER keep TYPE bigint, ALTER vc TYPE text, ALTER ts2 TYPE timestamptz, ALTER n2 TYPE float8;
    UPDATE m SET w = round(w::numeric, 2), amt = round(amt, 1), dm = trunc(dm, 2),
                 comp.a = round((comp).a, 1), comps = ARRAY[ROW(round((comps[1]).a, 2), 'y')::pair],
                 s = left(s, 5);";

/// (column, kind, predicate on the parent that is true where the value is lost).
const ORACLE: &[(&str, &str, &str)] = &[
    ("f", "rounded", "f::int::float8 <> f"),
    ("f2", "rounded", "f2::real::float8 <> f2"),
    ("nf", "rounded", "nf::float8::numeric <> nf"),
    ("big", "rounded", "big::float8::int8 <> big"),
    ("ts", "precision_dropped", "ts::timestamp(0) <> ts"),
    ("tm", "precision_dropped", "tm::time(0) <> tm"),
    ("tsd", "time_of_day_dropped", "tsd::date::timestamp <> tsd"),
    ("tzd", "time_of_day_dropped", "tzd::date::timestamptz <> tzd"),
    ("iv", "precision_dropped", "iv::interval(0) <> iv"),
    ("tr", "rounded", "trunc(tr, 2) <> tr"),
    ("w", "rounded", "round(w::numeric, 2)::float8 <> w"),
    ("amt", "rounded", "round(amt, 1) <> amt"),
    ("dm", "rounded", "trunc(dm, 2) <> dm"),
    ("arr", "rounded", "arr::numeric(10,1)[] <> arr"),
    ("farr", "rounded", "farr::int[]::float8[] <> farr"),
    ("comp", "rounded", "round((comp).a, 1) <> (comp).a"),
    ("comps", "rounded", "round((comps[1]).a, 2) <> (comps[1]).a"),
    ("n2", "rounded", "n2::float8::numeric <> n2"),
    ("s", "truncated", "left(s, 5) <> s"),
    // Conversions that lose nothing: the oracle finds no row.
    ("keep", "rounded", "keep::bigint::int <> keep"),
    ("vc", "truncated", "vc::text::varchar(10) <> vc"),
    ("ts2", "precision_dropped", "ts2::timestamptz::timestamp <> ts2"),
];

#[test]
fn every_conversion_family_is_counted_as_postgresql_converts() {
    let pair = branch("valueloss", SETUP, MIGRATION);
    let mut parent = connect(&pair.parent);
    parent.batch_execute("SET TimeZone = 'UTC'").unwrap();
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (col, kind, lost) in ORACLE {
        let n: i64 = parent.query_one(&format!("SELECT count(*) FROM m WHERE {lost}"), &[]).unwrap().get(0);
        if n > 0 {
            want.insert((kind.to_string(), format!("public.m.{col}")), n as u64);
        }
    }
    // The fixture exercises every family: each lossy column lost something, and only those.
    for col in ["f", "f2", "nf", "big", "ts", "tm", "tsd", "tzd", "iv", "tr", "w", "amt", "dm", "arr", "farr", "comp"] {
        assert!(want.keys().any(|(_, o)| o == &format!("public.m.{col}")), "fixture loses nothing in {col}");
    }
    for col in ["keep", "vc", "ts2"] {
        assert!(!want.keys().any(|(_, o)| o == &format!("public.m.{col}")), "oracle finds a loss in {col}");
    }
    let (code, doc) = diff_json(&pair, &[]);
    assert_eq!(code, 1);
    let got = losses(&doc);
    assert_eq!(got, want, "{:#}", doc["data_loss"]);
}

/// Found by a new user: the report said cut strings were "under data loss, not row updates" while it
/// counted them as updates. Each converted column now says how it is compared, and the counts agree
/// with that: a numeric rounded by its new typmod is no update, a varchar cut by `USING left()` is one.
/// Expected counts from PostgreSQL on the parent.
#[test]
fn the_converted_note_says_how_each_column_is_compared() {
    let setup = "CREATE TABLE v (id int PRIMARY KEY, code varchar(20), w numeric(6,2));
        INSERT INTO v SELECT i, CASE WHEN i % 3 = 0 THEN 'LONGCODE-' || i ELSE 'C' || i END, i / 7.0
        FROM generate_series(1, 300) i;";
    let change = "ALTER TABLE v ALTER code TYPE varchar(8) USING left(code, 8), ALTER w TYPE numeric(5,1);";
    let pair = branch("loss_note", setup, change);
    let cut = connect(&pair.parent)
        .query_one("SELECT count(*) FROM v WHERE left(code, 8) <> code", &[])
        .unwrap()
        .get::<_, i64>(0) as u64;
    let rounded = connect(&pair.parent)
        .query_one("SELECT count(*) FROM v WHERE w::numeric(5,1) <> w", &[])
        .unwrap()
        .get::<_, i64>(0) as u64;
    assert!(cut > 0 && rounded > 0);
    let (_, doc) = diff_json(&pair, &[]);
    assert_eq!(crate::harness::counts(&doc, "public.v"), (0, cut, 0));
    let conv = &crate::harness::table(&doc, "public.v")["converted"];
    let how: Vec<(&str, &str)> = conv
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["column"].as_str().unwrap(), c["compared"].as_str().unwrap()))
        .collect();
    assert_eq!(how, [("code", "as_is"), ("w", "new_type")]);
    let l = losses(&doc);
    assert_eq!(l.get(&("truncated".to_string(), "public.v.code".to_string())), Some(&cut), "{l:?}");
    assert_eq!(l.get(&("rounded".to_string(), "public.v.w".to_string())), Some(&rounded), "{l:?}");
    let text =
        crate::harness::cli(&["--quiet", &crate::harness::conn(&pair.parent), &crate::harness::conn(&pair.child)], &[]);
    assert!(
        text.stdout.contains("(code character varying(20) → character varying(8)) are compared as they are"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("(w numeric(6,2) → numeric(5,1)) are compared in the new type"), "{}", text.stdout);
}
