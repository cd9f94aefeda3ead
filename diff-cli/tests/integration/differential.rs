//! Generated differential test: random parent databases, random branches of them, random row and
//! catalog changes; the CLI (default strategy, `--strategy stream`, `--strategy hash`) is checked
//! against a small reference written here, which reads every row of both sides as text.
//!
//! Case `i` uses seed `PGBRANCHDIFF_DIFF_SEED + i` (default seed 1) and there are
//! `PGBRANCHDIFF_DIFF_CASES` of them (default 70, about a minute on two cores). A case is fully
//! determined by its seed and the server version: `PGBRANCHDIFF_DIFF_SEED=7
//! PGBRANCHDIFF_DIFF_CASES=1` reruns case 7 alone; `PGBRANCHDIFF_DIFF_VERBOSE=1` prints a line per
//! case. Every failing case is reported with its seed, the strategy, the table, expected and actual
//! counts and changed columns, and every SQL statement that built it (a psql script: `\connect`
//! lines name the database and cluster each statement ran on). Databases of passing cases are
//! dropped; those of failing cases are kept (with `PGBRANCHDIFF_TEST_SERVER` they outlive the run).
//!
//! Per case: 1–4 tables in 1–2 schemas with columns of every type family (integers, numeric,
//! floats with -0/NaN/±Infinity, character types with padding, quotes, backslashes, newlines and
//! non-ASCII, bytea, bool, date/time types, uuid, jsonb and json, an enum, a domain, a composite,
//! arrays, ranges, multiranges from PostgreSQL 14, oid, regclass), keyed by a primary key of a random
//! type (sometimes with INCLUDE, sometimes partitioned by range), a unique index with a nullable
//! INCLUDE column, a unique index over nullable columns (not a key) or nothing at all (duplicates
//! present). The branch is a `CREATE DATABASE … TEMPLATE` copy, a "restore" (the same setup SQL in
//! a new database on the same cluster: same data, new OIDs) or the same setup SQL on a second
//! cluster; from PostgreSQL 15 on, the child of a restore or of a second cluster is often a
//! database whose default collation provider is ICU, the parent's libc ([`child_locale`]). Then
//! random row changes on the branch (and sometimes on the parent) and catalog changes (column
//! type changes with and without rewrite, enum labels renamed and added, a composite
//! attribute added, a table renamed, a column added with different defaults on the two sides, the
//! key dropped and a duplicate inserted, VACUUM FULL, CLUSTER, columns added and dropped, tables
//! added and dropped on one side).
//!
//! # The equality rule (the reference's)
//!
//! Every value is read as text with the session pinned (`TimeZone=UTC`, `DateStyle='ISO, YMD'`,
//! `IntervalStyle=postgres`, `extra_float_digits=3`, `bytea_output=hex`, `search_path=''`). Two
//! values are equal when PostgreSQL prints them identically under those settings, except that
//! char(n) compares without trailing spaces (it is read as `col::text`). So numeric `1.0` vs `1.00`
//! IS a change, float `-0` vs `0` IS a change, jsonb `{"x": 1.0}` vs `{"x": 1.00}` IS a change, jsonb
//! key order is NOT a change (jsonb prints keys sorted), timestamptz compares as printed in UTC and
//! every NaN equals every NaN. When a column's type differs between the sides, the parent's value
//! is first cast to the child's type: `(col)::<child's format_type>::text` on the parent.
//!
//! Row identity: the primary key when the same columns are a primary key or a unique index over
//! NOT NULL columns (key columns only; INCLUDE columns are not part of a key) on BOTH sides;
//! otherwise (no key, a unique index over nullable columns, the key dropped on one side) the whole
//! row, as a multiset (two identical rows with one deleted is one deletion). Only columns present
//! on both sides (by name) are compared. A table renamed on a TEMPLATE branch is paired by OID and
//! expected under its new name; on a restore or another cluster a renamed table is not checked.
//! Tables present on one side only are not expected in `tables[]`. Per strategy and table, the
//! counts and the multiset of updates' changed-column lists must match; an exit status other than
//! 0 or 1 fails the case, and so does 0 while rows differ.
//!
//! # The schema cross-check (pg_dump as the reference)
//!
//! Per case, `pg_dump --schema-only` of both sides must differ exactly when the default run
//! reports at least one schema change. Ignored on both sides, as documented: in the dumps,
//! comment lines (`--`, including the TOC lines naming owners), blank lines, the `\restrict`
//! keys, and the order of the entries (a restore may order objects differently); in the report,
//! what a schema dump does not hold: sequence state (`last_value`, `is_called`) and a table
//! rewritten or replaced with nothing else changed (a new relfilenode: VACUUM FULL, CLUSTER's
//! rewrite — its `CLUSTER ON` mark is in both). Skipped when no pg_dump as new as the server
//! exists ([`harness::pg_dump`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use serde_json::Value;

use crate::harness::{self, Cluster};

// ---------------------------------------------------------------------------------------------
// A tiny PRNG (splitmix64): reproducible from the seed, no dependency.

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// lo..=hi.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn pick_str<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// SQL text helpers.

/// A quoted identifier.
fn qi(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal (E'…' when it holds a newline or a tab, to keep the script readable).
fn lit(s: &str) -> String {
    if s.contains(['\n', '\t']) {
        let mut out = String::from("E'");
        for ch in s.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

// ---------------------------------------------------------------------------------------------
// Types and values.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int2,
    Int4,
    Int8,
    Num,
    Num4,
    Num2,
    F4,
    F8,
    Text,
    Vc10,
    Vc20,
    Ch6,
    Bytea,
    Bool,
    Date,
    Ts,
    Tstz,
    Interval,
    Uuid,
    Jsonb,
    Json,
    Enum,
    Domain,
    Composite,
    IntArr,
    NumArr,
    TextArr,
    I4Range,
    NumRange,
    I4Multi,
    Oid,
    Regclass,
}

/// The types value columns are drawn from (numeric(12,2) only appears through a type change).
const GEN_TYPES: [Ty; 31] = [
    Ty::Int2,
    Ty::Int4,
    Ty::Int8,
    Ty::Num,
    Ty::Num4,
    Ty::F4,
    Ty::F8,
    Ty::Text,
    Ty::Vc10,
    Ty::Vc20,
    Ty::Ch6,
    Ty::Bytea,
    Ty::Bool,
    Ty::Date,
    Ty::Ts,
    Ty::Tstz,
    Ty::Interval,
    Ty::Uuid,
    Ty::Jsonb,
    Ty::Json,
    Ty::Enum,
    Ty::Domain,
    Ty::Composite,
    Ty::IntArr,
    Ty::NumArr,
    Ty::TextArr,
    Ty::I4Range,
    Ty::NumRange,
    Ty::I4Multi,
    Ty::Oid,
    Ty::Regclass,
];

const TEXTS: &[&str] = &[
    "",
    "a",
    "ab",
    "ab  ",
    "trailing  ",
    "it's",
    "back\\slash",
    "line\nbreak",
    "Ünïcödé ✓",
    "日本語",
    "tab\there",
    " lead",
    "say \"hi\"",
    "NULL",
    "a,b",
    "{x}",
    "Z",
    "zz top",
];

const JSONS: &[&str] = &[
    "{\"x\": 1.0}",
    "{\"x\": 1.00}",
    "{\"x\": 1}",
    "{\"a\": 2, \"b\": [1, \"x\"]}",
    "{\"b\": [1, \"x\"], \"a\": 2.0}",
    "[]",
    "\"str\"",
    "null",
    "{\"nested\": {\"k\": [1.50, true, null]}}",
    "{\"uni\": \"é\\u00e9\"}",
    "  {\"sp\" :  1}  ",
    "-0.0",
];

/// What the value generator needs to know about one side's database.
#[derive(Clone)]
struct Types {
    /// Schema of the enum, domain and composite (quoted).
    schema: String,
    enum_labels: Vec<String>,
    composite_attrs: usize,
    domain_int: bool,
    version: i32,
    /// Qualified, quoted names of the generated tables (regclass values).
    tables: Vec<String>,
}

impl Types {
    fn sql(&self, ty: Ty) -> String {
        match ty {
            Ty::Int2 => "int2".into(),
            Ty::Int4 => "int4".into(),
            Ty::Int8 => "int8".into(),
            Ty::Num => "numeric".into(),
            Ty::Num4 => "numeric(12,4)".into(),
            Ty::Num2 => "numeric(12,2)".into(),
            Ty::F4 => "float4".into(),
            Ty::F8 => "float8".into(),
            Ty::Text => "text".into(),
            Ty::Vc10 => "varchar(10)".into(),
            Ty::Vc20 => "varchar(20)".into(),
            Ty::Ch6 => "char(6)".into(),
            Ty::Bytea => "bytea".into(),
            Ty::Bool => "bool".into(),
            Ty::Date => "date".into(),
            Ty::Ts => "timestamp".into(),
            Ty::Tstz => "timestamptz".into(),
            Ty::Interval => "interval".into(),
            Ty::Uuid => "uuid".into(),
            Ty::Jsonb => "jsonb".into(),
            Ty::Json => "json".into(),
            Ty::Enum => format!("{}.\"mood\"", self.schema),
            Ty::Domain => format!("{}.\"dom\"", self.schema),
            Ty::Composite => format!("{}.\"pair\"", self.schema),
            Ty::IntArr => "int4[]".into(),
            Ty::NumArr => "numeric[]".into(),
            Ty::TextArr => "text[]".into(),
            Ty::I4Range => "int4range".into(),
            Ty::NumRange => "numrange".into(),
            Ty::I4Multi => "int4multirange".into(),
            Ty::Oid => "oid".into(),
            Ty::Regclass => "regclass".into(),
        }
    }

    /// A value of `ty` computed from `g` (bulk rows).
    fn bulk(&self, ty: Ty) -> String {
        match ty {
            Ty::Int2 => "(g % 300)::int2".into(),
            Ty::Int4 => "g * 7".into(),
            Ty::Int8 => "g::int8 * 1000003".into(),
            Ty::Num => "(g / 7.0)::numeric".into(),
            Ty::Num4 | Ty::Num2 => "round(g / 3.0, 2)".into(),
            Ty::F4 => "(g / 3.0)::float4".into(),
            Ty::F8 => "(g / 7.0)::float8".into(),
            Ty::Text | Ty::Vc20 => "'row ' || g".into(),
            Ty::Vc10 | Ty::Ch6 => "left(g::text, 6)".into(),
            Ty::Bytea => "decode(lpad(to_hex(g), 8, '0'), 'hex')".into(),
            Ty::Bool => "g % 2 = 0".into(),
            Ty::Date => "date '2000-01-01' + g".into(),
            Ty::Ts => "timestamp '2000-01-01' + g * interval '1 hour'".into(),
            Ty::Tstz => "timestamptz '2000-01-01 00:00+00' + g * interval '1 minute'".into(),
            Ty::Interval => "g * interval '1 second'".into(),
            Ty::Uuid => "md5(g::text)::uuid".into(),
            Ty::Jsonb => "jsonb_build_object('g', g, 'h', g / 4.0)".into(),
            Ty::Json => "json_build_object('g', g)".into(),
            Ty::Enum => format!("(enum_range(NULL::{}))[1 + g % 3]", self.sql(Ty::Enum)),
            Ty::Domain if self.domain_int => "1 + g % 100".into(),
            Ty::Domain => "'d' || g".into(),
            Ty::Composite => format!("ROW(g, 'x' || g)::{}", self.sql(Ty::Composite)),
            Ty::IntArr => "ARRAY[g, g + 1]".into(),
            Ty::NumArr => "ARRAY[g / 2.0]".into(),
            Ty::TextArr => "ARRAY['a' || g]".into(),
            Ty::I4Range => "int4range(g, g + 10)".into(),
            Ty::NumRange => "numrange(g, g + 0.5)".into(),
            Ty::I4Multi => "int4multirange(int4range(g, g + 1))".into(),
            Ty::Oid => "(3000000000 + g)::oid".into(),
            Ty::Regclass => "'pg_class'::regclass".into(),
        }
    }

    /// A value of `ty` (or NULL) as an SQL expression.
    fn value(&self, rng: &mut Rng, ty: Ty) -> String {
        if rng.percent(10) {
            return "NULL".into();
        }
        let modern = self.version >= 140000;
        match ty {
            Ty::Int2 => {
                if rng.percent(30) {
                    rng.pick(&["0", "-32768", "32767", "1"]).to_string()
                } else {
                    rng.range(-300, 300).to_string()
                }
            }
            Ty::Int4 => {
                if rng.percent(30) {
                    rng.pick(&["0", "-2147483648", "2147483647", "7"]).to_string()
                } else {
                    rng.range(-100_000, 100_000).to_string()
                }
            }
            Ty::Int8 => {
                if rng.percent(30) {
                    rng.pick(&["9007199254740993", "-9223372036854775808", "9223372036854775807", "0"]).to_string()
                } else {
                    rng.range(-(1 << 50), 1 << 50).to_string()
                }
            }
            Ty::Num => {
                let mut pool = vec![
                    "1.0",
                    "1.00",
                    "1",
                    "0",
                    "0.000",
                    "-0.005",
                    "24.6900",
                    "2.4690",
                    "123456789012345678901234567890.123",
                    "NaN",
                    "1e-20",
                ];
                if modern {
                    pool.extend(["Infinity", "-Infinity"]);
                }
                if rng.percent(60) {
                    lit(rng.pick_str(&pool))
                } else {
                    lit(&format!(
                        "{}.{}",
                        rng.range(-1000, 1000),
                        "0".repeat(rng.below(3)) + &rng.below(100).to_string()
                    ))
                }
            }
            Ty::Num4 | Ty::Num2 => {
                if rng.percent(40) {
                    lit(rng.pick_str(&[
                        "1.5",
                        "24.69",
                        "2.4690",
                        "-0.00005",
                        "NaN",
                        "0",
                        "99999999.9999",
                        "0.0001",
                        "-0.004",
                        "0.005",
                    ]))
                } else {
                    let frac = if ty == Ty::Num4 { rng.below(10_000) } else { rng.below(100) };
                    lit(&format!("{}.{frac}", rng.range(-99_999, 99_999)))
                }
            }
            Ty::F4 => {
                if rng.percent(50) {
                    lit(rng.pick_str(&[
                        "0",
                        "-0",
                        "NaN",
                        "Infinity",
                        "-Infinity",
                        "0.1",
                        "1.5",
                        "3.4028235e38",
                        "1e-45",
                    ]))
                } else {
                    lit(&format!("{}.{}", rng.range(-1000, 1000), rng.below(1000)))
                }
            }
            Ty::F8 => {
                if rng.percent(50) {
                    lit(rng.pick_str(&["0", "-0", "NaN", "Infinity", "-Infinity", "0.1", "1e300", "-2.5", "5e-324"]))
                } else {
                    lit(&format!("{}.{}e{}", rng.range(-1000, 1000), rng.below(1000), rng.range(-20, 20)))
                }
            }
            Ty::Text => lit(&text(rng, None)),
            Ty::Vc10 => lit(&text(rng, Some(10))),
            Ty::Vc20 => lit(&text(rng, Some(20))),
            Ty::Ch6 => {
                let mut s = text(rng, Some(6));
                if rng.percent(30) {
                    while s.chars().count() < 6 {
                        s.push(' ');
                    }
                }
                lit(&s)
            }
            Ty::Bytea => {
                if rng.percent(40) {
                    lit(rng.pick_str(&["\\x", "\\x00", "\\x0102ff", "\\xdeadbeef"]))
                } else {
                    let n = rng.below(8);
                    let hex: String = (0..n).map(|_| format!("{:02x}", rng.below(256))).collect();
                    lit(&format!("\\x{hex}"))
                }
            }
            Ty::Bool => rng.pick(&["true", "false"]).to_string(),
            Ty::Date => {
                if rng.percent(40) {
                    lit(rng.pick_str(&["2024-02-29", "infinity", "-infinity", "0044-03-15 BC", "1999-12-31"]))
                } else {
                    lit(&format!("{}-{:02}-{:02}", rng.range(1900, 2100), rng.range(1, 12), rng.range(1, 28)))
                }
            }
            Ty::Ts => {
                if rng.percent(40) {
                    lit(rng.pick_str(&[
                        "2024-01-01 00:00:00",
                        "2024-01-01 00:00:00.000001",
                        "infinity",
                        "1970-01-01 00:00:00",
                        "2024-03-31 02:30:00",
                    ]))
                } else {
                    lit(&format!(
                        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
                        rng.range(1970, 2040),
                        rng.range(1, 12),
                        rng.range(1, 28),
                        rng.range(0, 23),
                        rng.range(0, 59),
                        rng.range(0, 59)
                    ))
                }
            }
            Ty::Tstz => {
                if rng.percent(40) {
                    lit(rng.pick_str(&[
                        "2024-06-01 12:00:00+00",
                        "2024-06-01 14:00:00+02",
                        "2024-03-31 01:30:00-05:30",
                        "infinity",
                        "2000-01-01 00:00:00.5+00",
                    ]))
                } else {
                    lit(&format!(
                        "{}-{:02}-{:02} {:02}:{:02}:00{}",
                        rng.range(1970, 2040),
                        rng.range(1, 12),
                        rng.range(1, 28),
                        rng.range(0, 23),
                        rng.range(0, 59),
                        rng.pick(&["+00", "+02", "-07", "+05:30"])
                    ))
                }
            }
            Ty::Interval => lit(rng.pick_str(&[
                "1 day",
                "24 hours",
                "1 mon",
                "30 days",
                "-1 day +02:03:04.5",
                "0",
                "1 year 2 mons 3 days 04:05:06.789",
                "36 hours",
            ])),
            Ty::Uuid => {
                let (a, b) = (rng.next(), rng.next());
                lit(&uuid(a, b))
            }
            Ty::Jsonb | Ty::Json => lit(rng.pick_str(JSONS)),
            Ty::Enum => lit(rng.pick::<String>(&self.enum_labels)),
            Ty::Domain => {
                if self.domain_int {
                    rng.range(1, 1000).to_string()
                } else {
                    lit(&text(rng, None))
                }
            }
            Ty::Composite => {
                let mut fields = vec![
                    if rng.percent(15) { "NULL".to_string() } else { rng.range(-5, 50).to_string() },
                    if rng.percent(15) { "NULL".to_string() } else { lit(&text(rng, None)) },
                ];
                for _ in 2..self.composite_attrs {
                    fields.push(if rng.percent(30) { "NULL".into() } else { rng.range(0, 9).to_string() });
                }
                format!("ROW({})::{}", fields.join(", "), self.sql(Ty::Composite))
            }
            Ty::IntArr => {
                if rng.percent(50) {
                    lit(rng.pick_str(&["{1,2,NULL}", "{}", "{{1,2},{3,4}}", "[0:1]={1,2}", "{-2147483648}"]))
                } else {
                    let n = rng.below(5);
                    let xs: Vec<String> = (0..n).map(|_| rng.range(-50, 50).to_string()).collect();
                    lit(&format!("{{{}}}", xs.join(",")))
                }
            }
            Ty::NumArr => lit(rng.pick_str(&["{1.0,1.00,NaN}", "{}", "{-0.5}", "{1.0}", "{1.00}", "{NULL,2}"])),
            Ty::TextArr => rng
                .pick(&[
                    "ARRAY['a b', NULL]::text[]",
                    "'{}'::text[]",
                    "ARRAY['q\"uote', 'back\\slash', 'x,y']",
                    "ARRAY['ab  ', 'Ünï']",
                    "ARRAY[E'new\\nline']",
                ])
                .to_string(),
            Ty::I4Range => lit(rng.pick_str(&["[1,5)", "[1,4]", "empty", "(,3)", "[7,)", "(2,9]"])),
            Ty::NumRange => lit(rng.pick_str(&["[1.0,2.0)", "[1.00,2)", "empty", "(,0.5]", "[-1.5,1.5]"])),
            Ty::I4Multi => lit(rng.pick_str(&["{[1,3),[5,7)}", "{}", "{[1,2],[3,3)}", "{[1,5)}", "{(,0)}"])),
            Ty::Oid => lit(rng.pick_str(&["3000000000", "12", "0", "4294967295", "2147483648", "2147483647"])),
            Ty::Regclass => {
                if rng.percent(25) || self.tables.is_empty() {
                    format!("{}::regclass", lit(rng.pick_str(&["pg_class", "pg_catalog.pg_type"])))
                } else {
                    format!("{}::regclass", lit(rng.pick::<String>(&self.tables)))
                }
            }
        }
    }
}

/// A string for a character column (at most `max` characters).
fn text(rng: &mut Rng, max: Option<usize>) -> String {
    let s = if rng.percent(60) {
        rng.pick(TEXTS).to_string()
    } else {
        let n = rng.range(1, 12) as usize;
        (0..n).map(|_| (b'a' + rng.below(26) as u8) as char).collect()
    };
    match max {
        Some(m) => s.chars().take(m).collect(),
        None => s,
    }
}

fn uuid(a: u64, b: u64) -> String {
    let h = format!("{a:016x}{b:016x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

// ---------------------------------------------------------------------------------------------
// Tables.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyTy {
    Int,
    BigInt,
    Text,
    Numeric,
    Uuid,
    Oid,
    /// (int4, text)
    IntText,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Pk,
    PkInclude,
    /// A unique index over NOT NULL key columns with a nullable INCLUDE column.
    UniqueInclude,
    /// A unique index over nullable columns: not a key.
    UniqueNullable,
    /// No key; a column `n` (duplicates) to aim changes at.
    Keyless,
}

#[derive(Clone, Debug)]
struct Col {
    name: String,
    ty: Ty,
}

#[derive(Clone, Debug)]
struct Table {
    schema: String,
    /// The current name on this side.
    name: String,
    /// The name at creation (constraint and index names derive from it).
    orig: String,
    key: KeyTy,
    shape: Shape,
    partitioned: bool,
    /// SQL types of the key columns (a key column may change type).
    key_sql: Vec<String>,
    cols: Vec<Col>,
    /// Keyed: ids of the rows present; keyless: values of `n` (with repeats).
    rows: Vec<u64>,
    key_dropped: bool,
    include: Option<String>,
    dropped: bool,
    has_default_col: bool,
    has_only_child: bool,
}

impl Table {
    fn q(&self) -> String {
        format!("{}.{}", qi(&self.schema), qi(&self.name))
    }

    fn keyless(&self) -> bool {
        self.shape == Shape::Keyless
    }

    fn key_names(&self) -> Vec<&'static str> {
        match (self.shape, self.key) {
            (Shape::Keyless, _) => vec!["n"],
            (_, KeyTy::IntText) => vec!["id", "id2"],
            _ => vec!["id"],
        }
    }

    /// The values of the key columns for row `id` (keyless: the `n` value).
    fn key_lits(&self, id: u64) -> Vec<String> {
        // Numbers are quoted once their column became text (a key changed type).
        let raw = self.key_lits_unquoted(id);
        raw.into_iter()
            .zip(&self.key_sql)
            .map(|(v, ty)| if ty == "text" && !v.starts_with('\'') { lit(&v) } else { v })
            .collect()
    }

    fn key_lits_unquoted(&self, id: u64) -> Vec<String> {
        if self.keyless() {
            return vec![id.to_string()];
        }
        match self.key {
            KeyTy::Int => vec![(id as i64 * 3 - 100).to_string()],
            KeyTy::BigInt => vec![(id as i64 * 1_000_000_007 - 50_000_000_000).to_string()],
            KeyTy::Text => {
                let prefix = ["k", "K", "ä", "a b", "z", "Z "][(id % 6) as usize];
                vec![lit(&format!("{prefix}{id}"))]
            }
            KeyTy::Numeric => vec![lit(&format!("{}.{:02}", id, (id * 37) % 100))],
            KeyTy::Uuid => {
                let mut r = Rng::new(id);
                vec![lit(&uuid(r.next(), r.next()))]
            }
            KeyTy::Oid => {
                vec![lit(&if id.is_multiple_of(3) { (id * 10).to_string() } else { (3_000_000_000 + id).to_string() })]
            }
            KeyTy::IntText => vec![(id / 2).to_string(), lit(&format!("b{}", id % 2))],
        }
    }

    /// The key columns of row `g` as SQL expressions of `g` (what `key_lits` gives for `g`; not for uuid keys).
    fn key_exprs(&self) -> Vec<String> {
        if self.keyless() {
            return vec!["g % 21".into()];
        }
        match self.key {
            KeyTy::Int => vec!["g * 3 - 100".into()],
            KeyTy::BigInt => vec!["g::int8 * 1000000007 - 50000000000".into()],
            KeyTy::Text => vec!["(ARRAY['k', 'K', 'ä', 'a b', 'z', 'Z '])[1 + g % 6] || g".into()],
            KeyTy::Numeric => vec!["(g || '.' || lpad(((g * 37) % 100)::text, 2, '0'))::numeric".into()],
            KeyTy::Uuid => unreachable!("no bulk rows for uuid keys"),
            KeyTy::Oid => vec!["(CASE WHEN g % 3 = 0 THEN g::int8 * 10 ELSE 3000000000 + g END)::oid".into()],
            KeyTy::IntText => vec!["g / 2".into(), "'b' || g % 2".into()],
        }
    }

    /// A predicate choosing row `id` (keyless: one row whose `n` is `id`).
    fn pred(&self, id: u64) -> String {
        if self.keyless() {
            return format!("ctid = (SELECT ctid FROM {} WHERE \"n\" = {} LIMIT 1)", self.q(), self.key_lits(id)[0]);
        }
        let parts: Vec<String> =
            self.key_names().iter().zip(self.key_lits(id)).map(|(k, v)| format!("{} = {v}", qi(k))).collect();
        parts.join(" AND ")
    }

    fn insert_cols(&self) -> String {
        let mut names: Vec<String> = self.key_names().iter().map(|k| qi(k)).collect();
        names.extend(self.cols.iter().map(|c| qi(&c.name)));
        names.join(", ")
    }

    fn row_values(&self, rng: &mut Rng, types: &Types, id: u64) -> String {
        let mut vals = self.key_lits(id);
        vals.extend(self.cols.iter().map(|c| types.value(rng, c.ty)));
        format!("({})", vals.join(", "))
    }

    /// The name of the index that makes the key (for CLUSTER and DROP).
    fn key_index(&self) -> Option<String> {
        match self.shape {
            Shape::Pk | Shape::PkInclude => Some(format!("{}_pk", self.orig)),
            Shape::UniqueInclude | Shape::UniqueNullable => Some(format!("{}_uk", self.orig)),
            Shape::Keyless => None,
        }
    }
}

/// One side's database, as the generator knows it.
#[derive(Clone)]
struct State {
    types: Types,
    tables: Vec<Table>,
}

/// What a case built before branching.
struct Model {
    setup: Vec<String>,
    state: State,
    notes: Vec<String>,
}

fn generate(rng: &mut Rng, version: i32, next_id: &mut u64) -> Model {
    let mut setup = Vec::new();
    let mut notes = Vec::new();
    let first = rng.pick(&["public", "app"]).to_string();
    let mut schemas = vec![first.clone()];
    if rng.percent(50) {
        schemas.push(rng.pick(&["Sales", "s2"]).to_string());
    }
    for s in &schemas {
        if s != "public" {
            setup.push(format!("CREATE SCHEMA {}", qi(s)));
        }
    }
    let domain_int = rng.percent(50);
    let mut types = Types {
        schema: qi(&first),
        enum_labels: vec!["sad".into(), "ok".into(), "happy".into()],
        composite_attrs: 2,
        domain_int,
        version,
        tables: Vec::new(),
    };
    setup.push(format!("CREATE TYPE {} AS ENUM ('sad', 'ok', 'happy')", types.sql(Ty::Enum)));
    setup.push(if domain_int {
        format!("CREATE DOMAIN {} AS int4 CHECK (VALUE > 0)", types.sql(Ty::Domain))
    } else {
        format!("CREATE DOMAIN {} AS text", types.sql(Ty::Domain))
    });
    setup.push(format!("CREATE TYPE {} AS (a int4, b text)", types.sql(Ty::Composite)));

    let ntables = rng.range(1, 4) as usize;
    let mut tables = Vec::new();
    for i in 0..ntables {
        let schema = rng.pick(&schemas).clone();
        let name = format!("{}{i}", rng.pick(&["t", "orders", "Items", "line item"]));
        let shape = *rng.pick(&[
            Shape::Pk,
            Shape::Pk,
            Shape::PkInclude,
            Shape::UniqueInclude,
            Shape::UniqueNullable,
            Shape::Keyless,
            Shape::Keyless,
        ]);
        let key = *rng.pick(&[
            KeyTy::Int,
            KeyTy::BigInt,
            KeyTy::Text,
            KeyTy::Numeric,
            KeyTy::Uuid,
            KeyTy::Oid,
            KeyTy::IntText,
        ]);
        let partitioned = matches!(shape, Shape::Pk | Shape::PkInclude | Shape::UniqueInclude)
            && matches!(key, KeyTy::Int | KeyTy::BigInt | KeyTy::IntText)
            && rng.percent(35);
        let key_sql: Vec<String> = if shape == Shape::Keyless {
            vec!["int4".into()]
        } else {
            match key {
                KeyTy::Int => vec!["int4".into()],
                KeyTy::BigInt => vec!["int8".into()],
                KeyTy::Text => vec!["text".into()],
                KeyTy::Numeric => vec!["numeric".into()],
                KeyTy::Uuid => vec!["uuid".into()],
                KeyTy::Oid => vec!["oid".into()],
                KeyTy::IntText => vec!["int4".into(), "text".into()],
            }
        };
        let ncols = rng.range(2, 7) as usize;
        let mut cols = Vec::new();
        for j in 0..ncols {
            let ty = loop {
                let t = *rng.pick(&GEN_TYPES);
                if t != Ty::I4Multi || version >= 140000 {
                    break t;
                }
            };
            let base = format!("{ty:?}").to_lowercase();
            let name = if rng.percent(15) { format!("C{j}_{base}") } else { format!("c{j}_{base}") };
            cols.push(Col { name, ty });
        }
        let include = matches!(shape, Shape::PkInclude | Shape::UniqueInclude).then(|| cols[0].name.clone());
        let t = Table {
            schema,
            name: name.clone(),
            orig: name,
            key,
            shape,
            partitioned,
            key_sql,
            cols,
            rows: Vec::new(),
            key_dropped: false,
            include,
            dropped: false,
            has_default_col: false,
            has_only_child: false,
        };
        notes.push(format!(
            "{}: {:?}{} key {:?}{}, {} columns",
            t.q(),
            t.shape,
            t.include.as_ref().map(|c| format!(" INCLUDE {c}")).unwrap_or_default(),
            t.key,
            if t.partitioned { ", partitioned" } else { "" },
            t.cols.len()
        ));
        setup.extend(create_table(&t, &types));
        types.tables.push(t.q());
        tables.push(t);
    }
    // Rows, once every table exists (regclass values may name any of them).
    for t in &mut tables {
        let n = if rng.percent(15) { rng.below(4) } else { rng.below(301) };
        let mut values: Vec<String> = Vec::new();
        for _ in 0..n {
            if t.keyless() && !values.is_empty() && rng.percent(15) {
                // An exact duplicate of an earlier row.
                let k = rng.below(values.len());
                let dup = values[k].clone();
                let dup_n = t.rows[k];
                values.push(dup);
                t.rows.push(dup_n);
                continue;
            }
            let id = if t.keyless() {
                rng.range(0, 20) as u64
            } else {
                *next_id += 1;
                *next_id
            };
            values.push(t.row_values(rng, &types, id));
            t.rows.push(id);
        }
        // At most 100 rows a statement, to keep the script readable.
        for chunk in values.chunks(100) {
            setup.push(format!("INSERT INTO {} ({}) VALUES\n  {}", t.q(), t.insert_cols(), chunk.join(",\n  ")));
        }
        // Sometimes a bulk of generated rows too: enough for the hash strategy to split key ranges.
        if t.key != KeyTy::Uuid && rng.percent(15) {
            let count = rng.range(600, 3000) as u64;
            let (from, to) = (*next_id + 1, *next_id + count);
            *next_id = to;
            let mut exprs = t.key_exprs();
            exprs
                .extend(t.cols.iter().map(|c| format!("CASE WHEN g % 11 = 0 THEN NULL ELSE {} END", types.bulk(c.ty))));
            setup.push(format!(
                "INSERT INTO {} ({}) SELECT {} FROM generate_series({from}, {to}) g",
                t.q(),
                t.insert_cols(),
                exprs.join(", ")
            ));
            if t.keyless() {
                t.rows.extend((from..=to).map(|g| g % 21));
            } else {
                t.rows.extend(from..=to);
            }
            notes.push(format!("{}: {count} bulk rows", t.q()));
        }
    }
    Model { setup, state: State { types, tables }, notes }
}

fn create_table(t: &Table, types: &Types) -> Vec<String> {
    let mut out = Vec::new();
    let not_null = if t.shape == Shape::UniqueNullable { "" } else { " NOT NULL" };
    let mut defs: Vec<String> =
        t.key_names().iter().zip(&t.key_sql).map(|(k, ty)| format!("{} {ty}{not_null}", qi(k))).collect();
    defs.extend(t.cols.iter().map(|c| format!("{} {}", qi(&c.name), types.sql(c.ty))));
    let keys: Vec<String> = t.key_names().iter().map(|k| qi(k)).collect();
    let keys = keys.join(", ");
    let include = t.include.as_ref().map(|c| format!(" INCLUDE ({})", qi(c))).unwrap_or_default();
    if matches!(t.shape, Shape::Pk | Shape::PkInclude) {
        defs.push(format!("CONSTRAINT {} PRIMARY KEY ({keys}){include}", qi(&format!("{}_pk", t.orig))));
    }
    let partition = if t.partitioned { " PARTITION BY RANGE (\"id\")" } else { "" };
    out.push(format!("CREATE TABLE {} (\n  {}\n){partition}", t.q(), defs.join(",\n  ")));
    if t.partitioned {
        let split = match t.key {
            KeyTy::BigInt => "0",
            KeyTy::IntText => "60",
            _ => "200",
        };
        let part = |suffix: &str| format!("{}.{}", qi(&t.schema), qi(&format!("{}_{suffix}", t.orig)));
        out.push(format!("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (MINVALUE) TO ({split})", part("p0"), t.q()));
        out.push(format!("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({split}) TO (MAXVALUE)", part("p1"), t.q()));
    }
    if matches!(t.shape, Shape::UniqueInclude | Shape::UniqueNullable) {
        out.push(format!("CREATE UNIQUE INDEX {} ON {} ({keys}){include}", qi(&format!("{}_uk", t.orig)), t.q()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Changes.

/// Where the statements go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Parent,
    Child,
}

/// A value-preserving or print-changing rewrite of a column: (SET expression, extra WHERE).
fn subtle(rng: &mut Rng, ty: Ty, c: &str) -> Option<(String, Option<String>)> {
    let s = |x: &str| x.replace("{c}", c);
    Some(match ty {
        Ty::Num => (s(rng.pick_str(&["{c} + 0.000", "trim_scale({c})", "{c} + 0.0"])), None),
        Ty::Num4 | Ty::Num2 => (s("{c} + 0.00"), None),
        Ty::F4 | Ty::F8 => match rng.below(3) {
            0 => (s("CASE WHEN {c} = 0 THEN -{c} ELSE {c} END"), None),
            1 => ("'-0'".into(), Some(s("{c} = 0"))),
            _ => (s("{c} * 1"), None),
        },
        Ty::Ch6 => (s(rng.pick_str(&["rtrim({c})", "{c} || ' '"])), None),
        Ty::Text | Ty::Vc10 | Ty::Vc20 => (s(rng.pick_str(&["{c} || ' '", "rtrim({c})", "upper({c})"])), None),
        Ty::Jsonb => match rng.below(3) {
            0 => ("'{\"x\": 1.00}'".into(), Some(s("{c} = '{\"x\": 1}'"))),
            1 => ("'{\"b\": [1, \"x\"], \"a\": 2}'".into(), Some(s("{c} = '{\"a\": 2, \"b\": [1, \"x\"]}'"))),
            _ => (s("({c}::text)::jsonb"), None),
        },
        Ty::Json => (s("{c}::jsonb::json"), None),
        Ty::Tstz => (s("({c} AT TIME ZONE 'Asia/Kolkata') AT TIME ZONE 'Asia/Kolkata'"), None),
        Ty::Ts => (s("{c} + interval '0'"), None),
        Ty::Interval => (s("justify_hours({c})"), None),
        Ty::Int2 | Ty::Int4 | Ty::Int8 => (s("{c} + 0"), None),
        Ty::Date => (s("{c} + 0"), None),
        Ty::Bytea => (s("{c} || '\\x'::bytea"), None),
        Ty::IntArr => (s("{c} || '{}'::int4[]"), None),
        _ => return None,
    })
}

/// `n` random row changes on one side.
fn row_changes(rng: &mut Rng, st: &mut State, next_id: &mut u64, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let live: Vec<usize> =
            (0..st.tables.len()).filter(|&i| !st.tables[i].dropped && !st.tables[i].key_dropped).collect();
        if live.is_empty() {
            break;
        }
        let ti = *rng.pick(&live);
        let types = st.types.clone();
        let t = &mut st.tables[ti];
        let op = rng.below(8);
        if t.rows.is_empty() || op == 0 {
            // Insert: fresh keys, or a duplicate of a row of a keyless table.
            if t.keyless() && !t.rows.is_empty() && rng.percent(40) {
                let k = *rng.pick(&t.rows);
                let cols = t.insert_cols();
                out.push(format!("INSERT INTO {q} ({cols}) SELECT {cols} FROM {q} WHERE {}", t.pred(k), q = t.q()));
                t.rows.push(k);
                continue;
            }
            let mut values = Vec::new();
            for _ in 0..rng.range(1, 5) {
                let id = if t.keyless() {
                    rng.range(0, 25) as u64
                } else {
                    *next_id += 1;
                    *next_id
                };
                values.push(t.row_values(rng, &types, id));
                t.rows.push(id);
            }
            out.push(format!("INSERT INTO {} ({}) VALUES {}", t.q(), t.insert_cols(), values.join(", ")));
            continue;
        }
        match op {
            1 | 2 => {
                // Update 1–4 rows, 1–3 columns each.
                for _ in 0..rng.range(1, 4) {
                    let id = *rng.pick(&t.rows);
                    let mut sets = Vec::new();
                    for _ in 0..rng.range(1, 3) {
                        let c = rng.pick(&t.cols).clone();
                        let set = format!("{} = {}", qi(&c.name), types.value(rng, c.ty));
                        if !sets.iter().any(|s: &String| s.starts_with(&format!("{} =", qi(&c.name)))) {
                            sets.push(set);
                        }
                    }
                    out.push(format!("UPDATE {} SET {} WHERE {}", t.q(), sets.join(", "), t.pred(id)));
                }
            }
            3 => {
                // Delete 1–4 rows.
                for _ in 0..rng.range(1, 4) {
                    if t.rows.is_empty() {
                        break;
                    }
                    let k = rng.below(t.rows.len());
                    let id = t.rows.swap_remove(k);
                    out.push(format!("DELETE FROM {} WHERE {}", t.q(), t.pred(id)));
                }
            }
            6 => {
                // Touch rows without changing them (new tuple versions, same values).
                let c = qi(&rng.pick(&t.cols).name);
                let wh = if rng.percent(30) { String::new() } else { format!(" WHERE {}", t.pred(*rng.pick(&t.rows))) };
                out.push(format!("UPDATE {} SET {c} = {c}{wh}", t.q()));
            }
            7 => {
                // Delete a row and insert it again, unchanged.
                let q = t.q();
                let p = t.pred(*rng.pick(&t.rows));
                out.push(format!("WITH d AS (DELETE FROM {q} WHERE {p} RETURNING *) INSERT INTO {q} SELECT * FROM d"));
            }
            4 if !t.keyless() => {
                // A new key for one row.
                let k = rng.below(t.rows.len());
                let old = t.rows[k];
                *next_id += 1;
                let new = *next_id;
                let sets: Vec<String> =
                    t.key_names().iter().zip(t.key_lits(new)).map(|(c, v)| format!("{} = {v}", qi(c))).collect();
                out.push(format!("UPDATE {} SET {} WHERE {}", t.q(), sets.join(", "), t.pred(old)));
                t.rows[k] = new;
            }
            _ => {
                // A subtle rewrite of one column: every row, or a few rows by key.
                let cands: Vec<Col> =
                    t.cols.iter().filter(|c| subtle(&mut Rng::new(0), c.ty, "x").is_some()).cloned().collect();
                if cands.is_empty() {
                    continue;
                }
                let c = rng.pick(&cands).clone();
                let (set, extra) = subtle(rng, c.ty, &qi(&c.name)).unwrap();
                let mut conds: Vec<String> = extra.into_iter().collect();
                if !t.keyless() && rng.percent(50) {
                    let ids: Vec<String> =
                        (0..rng.range(1, 5)).map(|_| format!("({})", t.pred(*rng.pick(&t.rows)))).collect();
                    conds.push(format!("({})", ids.join(" OR ")));
                }
                let wh = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
                out.push(format!("UPDATE {} SET {} = {set}{wh}", t.q(), qi(&c.name)));
            }
        }
    }
    out
}

/// A retyping of a value column: (from, to, needs `SET TimeZone = 'UTC'` first).
fn retype_target(rng: &mut Rng, ty: Ty) -> Option<(Ty, bool)> {
    Some(match ty {
        // int4 → oid and numeric(12,4) → numeric are binary coercible: no rewrite.
        Ty::Int4 => (*rng.pick(&[Ty::Int8, Ty::Text, Ty::Oid]), false),
        Ty::Int2 => (Ty::Int4, false),
        Ty::Int8 => (Ty::Text, false),
        Ty::Vc10 => (*rng.pick(&[Ty::Vc20, Ty::Text]), false),
        Ty::Vc20 => (Ty::Text, false),
        Ty::Num4 => (*rng.pick(&[Ty::Num2, Ty::Num]), false),
        // Between timestamp and timestamptz with TimeZone UTC: no rewrite.
        Ty::Ts => (Ty::Tstz, true),
        Ty::Tstz => (Ty::Ts, true),
        Ty::Ch6 => (Ty::Text, false),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Template,
    Restore,
    SecondCluster,
}

/// A table renamed on the child: (schema, old name, new name).
type Rename = (String, String, String);

/// The statements of the catalog-change phase, each with its side.
struct CatalogChanges {
    stmts: Vec<(Target, String)>,
    renames: Vec<Rename>,
    notes: Vec<String>,
}

fn catalog_changes(rng: &mut Rng, parent: &mut State, child: &mut State, method: Method) -> CatalogChanges {
    let mut ch = CatalogChanges { stmts: Vec::new(), renames: Vec::new(), notes: Vec::new() };
    let has_regclass = child.tables.iter().any(|t| t.cols.iter().any(|c| c.ty == Ty::Regclass));
    let n = rng.range(1, 5);
    for _ in 0..n {
        let live: Vec<usize> = (0..child.tables.len()).filter(|&i| !child.tables[i].dropped).collect();
        if live.is_empty() {
            break;
        }
        let ti = *rng.pick(&live);
        let ct = child.tables[ti].clone();
        let q = ct.q();
        let mut stmts: Vec<(Target, String)> = Vec::new();
        let mut push = |side: Target, s: String| stmts.push((side, s));
        match rng.below(14) {
            0 | 1 => {
                // ALTER COLUMN TYPE of a value column (or int4 → int8 of an int key).
                let cands: Vec<usize> =
                    (0..ct.cols.len()).filter(|&j| retype_target(&mut Rng::new(0), ct.cols[j].ty).is_some()).collect();
                // A key column (or a keyless table's first column) changing type; int4 → text changes
                // the order rows sort in.
                let key_retype = match (ct.partitioned || ct.key_dropped, ct.shape, ct.key, ct.key_sql[0].as_str()) {
                    (true, ..) => None,
                    (_, Shape::Keyless, _, "int4") => Some(("n", "text")),
                    (_, _, KeyTy::Int, "int4") => Some(("id", *rng.pick(&["int8", "text"]))),
                    (_, _, KeyTy::Numeric, "numeric") => Some(("id", "numeric(20,1)")),
                    _ => None,
                };
                if let Some((col, to)) = key_retype.filter(|_| rng.percent(35)) {
                    push(Target::Child, format!("ALTER TABLE {q} ALTER COLUMN {} TYPE {to}", qi(col)));
                    child.tables[ti].key_sql[0] = to.into();
                    ch.notes.push(format!("{q}: key column {col} {} → {to}", ct.key_sql[0]));
                    ch.stmts.extend(stmts);
                    continue;
                }
                if cands.is_empty() {
                    continue;
                }
                let j = *rng.pick(&cands);
                let c = ct.cols[j].clone();
                let (to, utc) = retype_target(rng, c.ty).unwrap();
                if utc {
                    push(Target::Child, "SET TimeZone = 'UTC'".into());
                }
                let sql_to = child.types.sql(to);
                push(Target::Child, format!("ALTER TABLE {q} ALTER COLUMN {} TYPE {sql_to}", qi(&c.name)));
                child.tables[ti].cols[j].ty = to;
                ch.notes.push(format!("{q}.{}: {:?} → {:?}", c.name, c.ty, to));
            }
            2 => {
                let k = rng.below(child.types.enum_labels.len());
                let old = child.types.enum_labels[k].clone();
                let new = format!("{old}_r");
                if child.types.enum_labels.contains(&new) {
                    continue;
                }
                push(
                    Target::Child,
                    format!("ALTER TYPE {} RENAME VALUE {} TO {}", child.types.sql(Ty::Enum), lit(&old), lit(&new)),
                );
                child.types.enum_labels[k] = new.clone();
                ch.notes.push(format!("enum label {old} renamed to {new}"));
            }
            3 => {
                let new = format!("new{}", child.types.enum_labels.len());
                let before = if rng.percent(50) { " BEFORE 'sad'" } else { "" };
                let before = if child.types.enum_labels.iter().any(|l| l == "sad") { before } else { "" };
                push(
                    Target::Child,
                    format!("ALTER TYPE {} ADD VALUE {}{before}", child.types.sql(Ty::Enum), lit(&new)),
                );
                child.types.enum_labels.push(new.clone());
                ch.notes.push(format!("enum label {new} added{before}"));
            }
            4 => {
                if child.types.composite_attrs > 2 {
                    continue;
                }
                push(Target::Child, format!("ALTER TYPE {} ADD ATTRIBUTE \"c\" int4", child.types.sql(Ty::Composite)));
                child.types.composite_attrs += 1;
                ch.notes.push("composite attribute added".into());
            }
            5 => {
                // Rename a table: any on a TEMPLATE branch; elsewhere only to move a regclass target.
                if ct.name != ct.orig || (method != Method::Template && !has_regclass) {
                    continue;
                }
                let new = format!("{}_ren", ct.name);
                push(Target::Child, format!("ALTER TABLE {q} RENAME TO {}", qi(&new)));
                ch.renames.push((ct.schema.clone(), ct.name.clone(), new.clone()));
                child.tables[ti].name = new;
                let renamed = child.tables[ti].q();
                child.types.tables.retain(|t| *t != q);
                child.types.tables.push(renamed);
                ch.notes.push(format!("{q} renamed"));
            }
            6 => {
                // The same column added on both sides, with different defaults. Not together with
                // another column added on one side only: columns added independently on both sides
                // after the branch share attnums, which a TEMPLATE branch takes as identity (the
                // tool would call the child's column a rename of the parent's).
                if ct.has_default_col || ct.has_only_child {
                    continue;
                }
                let (a, b) = (rng.range(0, 9), rng.range(10, 19));
                let pq = parent.tables[ti].q();
                push(Target::Parent, format!("ALTER TABLE {pq} ADD COLUMN \"x_def\" int4 DEFAULT {a}"));
                push(Target::Child, format!("ALTER TABLE {q} ADD COLUMN \"x_def\" int4 DEFAULT {b}"));
                for t in [&mut parent.tables[ti], &mut child.tables[ti]] {
                    t.cols.push(Col { name: "x_def".into(), ty: Ty::Int4 });
                    t.has_default_col = true;
                }
                ch.notes.push(format!("{q}: x_def added, default {a} on the parent, {b} on the child"));
            }
            7 => {
                // Drop the key, then insert a duplicate (same row, or same key with other values).
                if !matches!(ct.shape, Shape::Pk | Shape::PkInclude | Shape::UniqueInclude) || ct.key_dropped {
                    continue;
                }
                let idx = ct.key_index().unwrap();
                if ct.shape == Shape::UniqueInclude {
                    push(Target::Child, format!("DROP INDEX {}.{}", qi(&ct.schema), qi(&idx)));
                } else {
                    push(Target::Child, format!("ALTER TABLE {q} DROP CONSTRAINT {}", qi(&idx)));
                }
                if let Some(&id) = ct.rows.first() {
                    if rng.percent(50) {
                        let cols = ct.insert_cols();
                        push(
                            Target::Child,
                            format!("INSERT INTO {q} ({cols}) SELECT {cols} FROM {q} WHERE {}", ct.pred(id)),
                        );
                    } else {
                        let types = child.types.clone();
                        let values = ct.row_values(rng, &types, id);
                        push(Target::Child, format!("INSERT INTO {q} ({}) VALUES {values}", ct.insert_cols()));
                    }
                }
                child.tables[ti].key_dropped = true;
                ch.notes.push(format!("{q}: key dropped, duplicate inserted"));
            }
            8 => {
                push(Target::Child, format!("VACUUM FULL {q}"));
                ch.notes.push(format!("{q}: VACUUM FULL"));
            }
            9 => {
                // CLUSTER (not on partitioned tables: PostgreSQL < 15 refuses).
                match ct.key_index() {
                    Some(idx) if !ct.partitioned && !ct.key_dropped => {
                        push(Target::Child, format!("CLUSTER {q} USING {}", qi(&idx)));
                        ch.notes.push(format!("{q}: CLUSTER"));
                    }
                    _ => {
                        push(Target::Child, format!("VACUUM FULL {q}"));
                        ch.notes.push(format!("{q}: VACUUM FULL"));
                    }
                }
            }
            10 => {
                if ct.has_only_child || ct.has_default_col {
                    continue;
                }
                push(Target::Child, format!("ALTER TABLE {q} ADD COLUMN \"only_child\" text DEFAULT 'x'"));
                child.tables[ti].has_only_child = true;
                ch.notes.push(format!("{q}: column only_child added"));
            }
            11 => {
                // Drop a value column (not an INCLUDE column: that would drop the key with it).
                let cands: Vec<usize> = (0..ct.cols.len())
                    .filter(|&j| Some(&ct.cols[j].name) != ct.include.as_ref() && ct.cols[j].name != "x_def")
                    .collect();
                if cands.len() < 2 {
                    continue;
                }
                let j = *rng.pick(&cands);
                let name = ct.cols[j].name.clone();
                push(Target::Child, format!("ALTER TABLE {q} DROP COLUMN {}", qi(&name)));
                child.tables[ti].cols.remove(j);
                ch.notes.push(format!("{q}.{name} dropped"));
            }
            12 => {
                let s = qi(&ct.schema);
                if ch.stmts.iter().any(|(_, x)| x.contains("\"only_child_table\"")) {
                    continue;
                }
                push(Target::Child, format!("CREATE TABLE {s}.\"only_child_table\" (a int4 PRIMARY KEY)"));
                push(Target::Child, format!("INSERT INTO {s}.\"only_child_table\" VALUES (1)"));
                ch.notes.push("a table only on the child".into());
            }
            _ => {
                if ct.name != ct.orig || live.len() < 2 || rng.percent(50) {
                    continue;
                }
                push(Target::Child, format!("DROP TABLE {q}"));
                child.tables[ti].dropped = true;
                child.types.tables.retain(|t| *t != q);
                ch.notes.push(format!("{q} dropped on the child"));
            }
        }
        ch.stmts.extend(stmts);
    }
    ch
}

// ---------------------------------------------------------------------------------------------
// Running SQL, with a log that is a psql script.

struct Exec {
    log: String,
    clients: HashMap<String, postgres::Client>,
    last: String,
}

impl Exec {
    fn new() -> Exec {
        Exec { log: String::new(), clients: HashMap::new(), last: String::new() }
    }

    fn run(&mut self, conninfo: &str, sql: &str) -> Result<(), String> {
        if self.last != conninfo {
            let _ = writeln!(self.log, "\\connect '{conninfo}'");
            self.last = conninfo.to_string();
        }
        let _ = writeln!(self.log, "{sql};");
        if !self.clients.contains_key(conninfo) {
            let c =
                postgres::Client::connect(conninfo, postgres::NoTls).map_err(|e| format!("connect {conninfo}: {e}"))?;
            self.clients.insert(conninfo.to_string(), c);
        }
        let client = self.clients.get_mut(conninfo).unwrap();
        client.batch_execute(sql).map_err(|e| {
            let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            format!("{msg}\n  in: {sql}")
        })
    }

    fn close(&mut self, conninfo: &str) {
        self.clients.remove(conninfo);
        if self.last == conninfo {
            self.last.clear();
        }
    }

    fn close_all(&mut self) {
        self.clients.clear();
        self.last.clear();
    }
}

fn conninfo(cluster: &Cluster, db: &str) -> String {
    format!("{} dbname={db}", cluster.base)
}

// ---------------------------------------------------------------------------------------------
// The reference.

const PIN: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
                   SET extra_float_digits = 3; SET bytea_output = 'hex'; SET search_path = ''";

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Counts {
    inserted: u64,
    updated: u64,
    deleted: u64,
    /// Sorted changed-column lists of the updates, sorted.
    changed: Vec<Vec<String>>,
}

impl Counts {
    fn short(&self) -> String {
        format!("+{} ~{} -{}", self.inserted, self.updated, self.deleted)
    }
}

struct ColInfo {
    name: String,
    ty: String,
}

fn ref_connect(conninfo: &str) -> Result<postgres::Client, String> {
    let mut c = postgres::Client::connect(conninfo, postgres::NoTls).map_err(|e| format!("reference: {e}"))?;
    c.batch_execute(PIN).map_err(|e| format!("reference: {e}"))?;
    Ok(c)
}

fn user_tables(c: &mut postgres::Client) -> Result<Vec<(String, String)>, String> {
    let rows = c
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'",
            &[],
        )
        .map_err(|e| format!("reference: {e}"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn columns(c: &mut postgres::Client, q: &str) -> Result<Vec<ColInfo>, String> {
    let rows = c
        .query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&q],
        )
        .map_err(|e| format!("reference columns of {q}: {e}"))?;
    Ok(rows.iter().map(|r| ColInfo { name: r.get(0), ty: r.get(1) }).collect())
}

/// A table's keys, as sorted column names.
struct Keys {
    /// The primary key.
    pk: Option<Vec<String>>,
    /// Every usable key: the primary key and unique indexes over NOT NULL key columns.
    usable: Vec<Vec<String>>,
}

/// The keys of table `q`.
fn keys(c: &mut postgres::Client, q: &str) -> Result<Keys, String> {
    let rows = c
        .query(
            "SELECT i.indisprimary,
                    (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
                     FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                     WHERE k.o <= i.indnkeyatts),
                    (SELECT bool_and(a.attnotnull)
                     FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                     WHERE k.o <= i.indnkeyatts)
             FROM pg_catalog.pg_index i
             WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisunique
               AND i.indpred IS NULL AND i.indexprs IS NULL",
            &[&q],
        )
        .map_err(|e| format!("reference keys of {q}: {e}"))?;
    let mut pk = None;
    let mut usable = Vec::new();
    for r in rows {
        let primary: bool = r.get(0);
        let cols: Vec<String> = r.get(1);
        let not_null: bool = r.get(2);
        if primary {
            pk = Some(cols.clone());
        }
        if primary || not_null {
            usable.push(cols);
        }
    }
    usable.sort();
    Ok(Keys { pk, usable })
}

type Row = Vec<Option<String>>;

fn read_rows(c: &mut postgres::Client, q: &str, exprs: &[String]) -> Result<Vec<Row>, String> {
    let sql = format!("SELECT {} FROM {q}", if exprs.is_empty() { "1".to_string() } else { exprs.join(", ") });
    let rows = c.query(sql.as_str(), &[]).map_err(|e| format!("reference: {e}\n  in: {sql}"))?;
    Ok(rows.iter().map(|r| (0..exprs.len()).map(|i| r.get::<_, Option<String>>(i)).collect()).collect())
}

/// The expected diff of one table pair.
fn expect_table(pc: &mut postgres::Client, cc: &mut postgres::Client, pq: &str, cq: &str) -> Result<Counts, String> {
    let pcols = columns(pc, pq)?;
    let ccols = columns(cc, cq)?;
    // Columns on both sides, by name; the parent's value cast to the child's type when they differ.
    let (mut names, mut pex, mut cex) = (Vec::new(), Vec::new(), Vec::new());
    for c in &ccols {
        let Some(p) = pcols.iter().find(|p| p.name == c.name) else { continue };
        let col = qi(&c.name);
        names.push(c.name.clone());
        pex.push(if p.ty == c.ty { format!("({col})::text") } else { format!("({col})::{}::text", c.ty) });
        cex.push(format!("({col})::text"));
    }
    // The key: the same columns usable as a key on both sides.
    let Keys { pk: ppk, usable: pusable } = keys(pc, pq)?;
    let Keys { pk: cpk, usable: cusable } = keys(cc, cq)?;
    let usable_both =
        |k: &Vec<String>| pusable.contains(k) && cusable.contains(k) && k.iter().all(|c| names.contains(c));
    let key = [ppk, cpk]
        .into_iter()
        .flatten()
        .find(|k| usable_both(k))
        .or_else(|| pusable.iter().find(|k| usable_both(k)).cloned());
    let prows = read_rows(pc, pq, &pex)?;
    let crows = read_rows(cc, cq, &cex)?;
    let mut out = Counts::default();
    match key {
        Some(key) => {
            let kidx: Vec<usize> = key.iter().map(|k| names.iter().position(|n| n == k).unwrap()).collect();
            let keyed = |rows: Vec<Row>| -> Result<HashMap<Row, Row>, String> {
                let mut m = HashMap::new();
                for r in rows {
                    let k: Row = kidx.iter().map(|&i| r[i].clone()).collect();
                    if m.insert(k.clone(), r).is_some() {
                        return Err(format!("reference: duplicate key {k:?} in {pq} / {cq}"));
                    }
                }
                Ok(m)
            };
            let (pm, cm) = (keyed(prows)?, keyed(crows)?);
            for (k, prow) in &pm {
                match cm.get(k) {
                    None => out.deleted += 1,
                    Some(crow) => {
                        let mut changed: Vec<String> =
                            (0..names.len()).filter(|&i| prow[i] != crow[i]).map(|i| names[i].clone()).collect();
                        if !changed.is_empty() {
                            changed.sort();
                            out.updated += 1;
                            out.changed.push(changed);
                        }
                    }
                }
            }
            out.inserted = cm.keys().filter(|k| !pm.contains_key(*k)).count() as u64;
        }
        None => {
            let mut bag: HashMap<Row, i64> = HashMap::new();
            for r in prows {
                *bag.entry(r).or_default() += 1;
            }
            for r in crows {
                *bag.entry(r).or_default() -= 1;
            }
            for n in bag.values() {
                if *n > 0 {
                    out.deleted += *n as u64;
                } else {
                    out.inserted += (-*n) as u64;
                }
            }
        }
    }
    out.changed.sort();
    Ok(out)
}

/// Expected tables (child schema, child name) → counts.
type Expected = BTreeMap<(String, String), Counts>;

fn reference(
    parent: &str,
    child: &str,
    renames: &[Rename],
    skip: &HashSet<(String, String)>,
) -> Result<Expected, String> {
    let mut pc = ref_connect(parent)?;
    let mut cc = ref_connect(child)?;
    let ptables = user_tables(&mut pc)?;
    let ctables: HashSet<(String, String)> = user_tables(&mut cc)?.into_iter().collect();
    let mut out = BTreeMap::new();
    for (s, n) in ptables {
        if skip.contains(&(s.clone(), n.clone())) {
            continue;
        }
        let cname = renames.iter().find(|(rs, old, _)| *rs == s && *old == n).map(|r| r.2.clone()).unwrap_or(n.clone());
        if !ctables.contains(&(s.clone(), cname.clone())) || skip.contains(&(s.clone(), cname.clone())) {
            continue;
        }
        let (pq, cq) = (format!("{}.{}", qi(&s), qi(&n)), format!("{}.{}", qi(&s), qi(&cname)));
        let counts = expect_table(&mut pc, &mut cc, &pq, &cq)?;
        out.insert((s, cname), counts);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The tool's answer.

struct Got {
    counts: Counts,
    strategy: String,
    key: String,
}

fn parse_doc(doc: &Value) -> Result<BTreeMap<(String, String), Got>, String> {
    let tables = doc["tables"].as_array().ok_or("no tables[] in the JSON")?;
    let mut out = BTreeMap::new();
    for t in tables {
        let s = t["schema"].as_str().unwrap_or_default().to_string();
        let n = t["name"].as_str().unwrap_or_default().to_string();
        let c = &t["counts"];
        let mut changed: Vec<Vec<String>> = t["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["op"] == "update")
                    .map(|r| {
                        let mut v: Vec<String> = r["changed"]
                            .as_array()
                            .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
                            .unwrap_or_default();
                        v.sort();
                        v
                    })
                    .collect()
            })
            .unwrap_or_default();
        changed.sort();
        let counts = Counts {
            inserted: c["inserted"].as_u64().unwrap_or(u64::MAX),
            updated: c["updated"].as_u64().unwrap_or(u64::MAX),
            deleted: c["deleted"].as_u64().unwrap_or(u64::MAX),
            changed,
        };
        let mut strategy = t["stats"]["strategy"].as_str().unwrap_or("?").to_string();
        // How differing blocks were hashed again, if they were (the summary shows the paths taken).
        let reason = t["stats"]["reason"].as_str().unwrap_or_default();
        for (said, tag) in [("(one scan)", "+scan"), ("(index ranges)", "+ranges")] {
            if reason.contains(said) {
                strategy.push_str(tag);
            }
        }
        let key = format!(
            "{} {}",
            t["key_source"]["source"].as_str().unwrap_or("?"),
            t["key"]
                .as_array()
                .map(|k| k.iter().map(|x| x.as_str().unwrap_or("?")).collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        );
        out.insert((s, n), Got { counts, strategy, key });
    }
    Ok(out)
}

/// The lists in `a` that are not in `b` (multisets), grouped with counts.
fn multiset_minus(a: &[Vec<String>], b: &[Vec<String>]) -> String {
    let mut left: HashMap<&Vec<String>, i64> = HashMap::new();
    for x in b {
        *left.entry(x).or_default() += 1;
    }
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for x in a {
        let n = left.entry(x).or_default();
        if *n > 0 {
            *n -= 1;
        } else {
            *out.entry(format!("{x:?}")).or_default() += 1;
        }
    }
    let parts: Vec<String> = out.iter().map(|(k, n)| if *n > 1 { format!("{k}×{n}") } else { k.clone() }).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// One case.

struct Outcome {
    seed: u64,
    method: Method,
    notes: Vec<String>,
    /// Disagreements, one line each.
    problems: Vec<String>,
    sql: String,
    /// Expected totals and how the tool read the tables, for `PGBRANCHDIFF_DIFF_VERBOSE`.
    summary: String,
}

/// How the child database of a restore or a second cluster is created: from PostgreSQL 15 on, in
/// two cases of three on a second cluster and one in three on a restore, with ICU as its default
/// collation provider (the parent's is libc), so text sorts differently on the two sides (`_`,
/// `a`, `B` under ICU; `B`, `_`, `a` under C). Chosen by the seed, not the generator, so the rest
/// of a case does not depend on it.
fn child_locale(method: Method, seed: u64, version: i32) -> &'static str {
    let icu = match method {
        Method::Template => false,
        Method::Restore => seed.is_multiple_of(3),
        Method::SecondCluster => !seed.is_multiple_of(3),
    };
    if icu && version >= 150000 {
        " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'"
    } else {
        ""
    }
}

fn run_case(seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    let a = harness::cluster();
    let version = a.version_num;
    let mut next_id = 0u64;
    let model = generate(&mut rng, version, &mut next_id);
    let method = *rng.pick(&[Method::Template, Method::Restore, Method::SecondCluster]);
    let b = if method == Method::SecondCluster { harness::second_cluster() } else { a };
    let tag = format!("pbd_diff_{}_{seed}", std::process::id());
    let (pdb, cdb) = (format!("{tag}_parent"), format!("{tag}_child"));
    let (pconn, cconn) = (conninfo(a, &pdb), conninfo(b, &cdb));
    let mut notes = vec![format!("{method:?}")];
    if !child_locale(method, seed, version).is_empty() {
        notes.push("the child database collates by ICU".into());
    }
    notes.extend(model.notes.iter().cloned());
    let mut ex = Exec::new();
    let mut outcome = Outcome { seed, method, notes, problems: Vec::new(), sql: String::new(), summary: String::new() };

    let result = (|| -> Result<Vec<Rename>, String> {
        for (c, db) in [(a, &pdb), (b, &cdb)] {
            let admin = conninfo(c, "postgres");
            ex.run(&admin, &format!("DROP DATABASE IF EXISTS {db}"))?;
        }
        let admin_a = conninfo(a, "postgres");
        ex.run(&admin_a, &format!("CREATE DATABASE {pdb}"))?;
        for s in &model.setup {
            ex.run(&pconn, s)?;
        }
        ex.close(&pconn);
        match method {
            Method::Template => ex.run(&admin_a, &format!("CREATE DATABASE {cdb} TEMPLATE {pdb}"))?,
            Method::Restore | Method::SecondCluster => {
                ex.run(
                    &conninfo(b, "postgres"),
                    &format!("CREATE DATABASE {cdb}{}", child_locale(method, seed, version)),
                )?;
                for s in &model.setup {
                    ex.run(&cconn, s)?;
                }
            }
        }
        let mut parent = model.state.clone();
        let mut child = model.state.clone();
        let n = rng.range(2, 12) as usize;
        for s in row_changes(&mut rng, &mut child, &mut next_id, n) {
            ex.run(&cconn, &s)?;
        }
        let parent_changes = rng.percent(40);
        if parent_changes {
            let n = rng.range(1, 6) as usize;
            for s in row_changes(&mut rng, &mut parent, &mut next_id, n) {
                ex.run(&pconn, &s)?;
            }
        }
        let cat = catalog_changes(&mut rng, &mut parent, &mut child, method);
        outcome.notes.extend(cat.notes.iter().cloned());
        if parent_changes {
            outcome.notes.push("row changes on the parent too".into());
        }
        for (side, s) in &cat.stmts {
            ex.run(if *side == Target::Parent { &pconn } else { &cconn }, s)?;
        }
        let n = rng.range(0, 6) as usize;
        for s in row_changes(&mut rng, &mut child, &mut next_id, n) {
            ex.run(&cconn, &s)?;
        }
        Ok(cat.renames)
    })();
    ex.close_all();
    let renames = match result {
        Ok(r) => r,
        Err(e) => {
            outcome.problems.push(format!("SQL error (a generator bug, not the tool's): {e}"));
            outcome.sql = ex.log;
            return outcome;
        }
    };
    // On a restore or another cluster a renamed table cannot be paired: leave it unchecked.
    let mut skip = HashSet::new();
    if method != Method::Template {
        for (s, old, new) in &renames {
            skip.insert((s.clone(), old.clone()));
            skip.insert((s.clone(), new.clone()));
        }
    }
    let expected = match reference(&pconn, &cconn, &renames, &skip) {
        Ok(e) => e,
        Err(e) => {
            outcome.problems.push(format!("reference failed: {e}"));
            outcome.sql = ex.log;
            return outcome;
        }
    };
    let any_row_change = expected.values().any(|c| c.inserted + c.updated + c.deleted > 0);
    let total = |f: fn(&Counts) -> u64| expected.values().map(f).sum::<u64>();
    outcome.summary = format!(
        "{} tables compared, expected +{} ~{} -{}; read by",
        expected.len(),
        total(|c| c.inserted),
        total(|c| c.updated),
        total(|c| c.deleted)
    );
    let mut default_doc = None;
    for strategy in ["default", "stream", "hash"] {
        let mut args = vec!["--format", "json", "--quiet", pconn.as_str(), cconn.as_str()];
        if strategy != "default" {
            args.extend(["--strategy", strategy]);
        }
        // On even seeds, every differing key-range block is hashed again in finer ranges
        // (a table must otherwise be large for that to pay).
        // by index ranges on every fourth seed, by one scan (PostgreSQL 14 on) on the others.
        let refine = if strategy == "hash" && seed.is_multiple_of(2) { "0" } else { "" };
        let by = if refine.is_empty() {
            ""
        } else if seed.is_multiple_of(4) {
            "index"
        } else {
            "scan"
        };
        let env = [("RUST_BACKTRACE", "1"), ("PGBRANCHDIFF_REFINE_MIN_BYTES", refine), ("PGBRANCHDIFF_REFINE_BY", by)];
        let run = harness::cli(&args, &env);
        if run.code != 0 && run.code != 1 {
            outcome.problems.push(format!("[{strategy}] exit {}: {}", run.code, condense(&run.stderr)));
            continue;
        }
        let doc: Value = match serde_json::from_str(&run.stdout) {
            Ok(d) => d,
            Err(e) => {
                outcome.problems.push(format!("[{strategy}] not JSON ({e}); stderr: {}", run.stderr.trim()));
                continue;
            }
        };
        if run.code == 0 && any_row_change {
            outcome.problems.push(format!("[{strategy}] exit 0 although rows differ"));
        }
        if strategy == "default" {
            default_doc = Some(doc.clone());
        }
        let got = match parse_doc(&doc) {
            Ok(g) => g,
            Err(e) => {
                outcome.problems.push(format!("[{strategy}] {e}"));
                continue;
            }
        };
        let used: Vec<&str> = got.values().map(|g| g.strategy.as_str()).collect();
        let _ = write!(outcome.summary, " [{strategy}: {}]", used.join(","));
        for (k, want) in &expected {
            let name = format!("{}.{}", qi(&k.0), qi(&k.1));
            let Some(g) = got.get(k) else {
                outcome
                    .problems
                    .push(format!("[{strategy}] {name}: missing from tables[] (expected {})", want.short()));
                continue;
            };
            if g.counts != *want {
                outcome.problems.push(format!(
                    "[{strategy}] {name}: expected {} got {} (tool read it by {}, key {}); \
                     changed lists expected but not got: {}; got but not expected: {}",
                    want.short(),
                    g.counts.short(),
                    g.strategy,
                    g.key,
                    multiset_minus(&want.changed, &g.counts.changed),
                    multiset_minus(&g.counts.changed, &want.changed),
                ));
            }
        }
        for k in got.keys() {
            if !expected.contains_key(k) && !skip.contains(k) {
                outcome.problems.push(format!("[{strategy}] {}.{}: in tables[] but not expected", qi(&k.0), qi(&k.1)));
            }
        }
    }
    match default_doc.and_then(|doc| schema_cross_check(&pconn, &cconn, &doc)) {
        Some(Ok(differ)) => outcome.summary.push_str(if differ { "; pg_dump: differ" } else { "; pg_dump: same" }),
        Some(Err(problem)) => outcome.problems.push(problem),
        None => {}
    }
    if outcome.problems.is_empty() {
        for (c, db) in [(a, &pdb), (b, &cdb)] {
            let _ = ex.run(&conninfo(c, "postgres"), &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
        ex.close_all();
    }
    outcome.sql = ex.log;
    outcome
}

/// A schema dump without comments, blank lines and entry order: its entries (split where
/// pg_dump names the next one), each without comment lines, sorted.
fn dump_entries(dump: &str) -> Vec<String> {
    let mut entries = vec![String::new()];
    for line in dump.lines() {
        if line.starts_with("-- Name: ") {
            entries.push(String::new());
        }
        if line.starts_with("--") || line.trim().is_empty() {
            continue;
        }
        let last = entries.last_mut().unwrap();
        last.push_str(line);
        last.push('\n');
    }
    entries.retain(|e| !e.is_empty());
    entries.sort();
    entries
}

/// Whether a reported schema change is one a schema dump can show (see the module doc).
fn visible_in_dump(change: &Value) -> bool {
    let keys = |side: &str| -> Vec<String> {
        change[side].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    };
    let (before, after) = (keys("before"), keys("after"));
    let state_only = before.iter().chain(&after).all(|k| k == "last_value" || k == "is_called");
    !(change["op"] == "altered" && state_only)
}

/// pg_dump sees a schema difference iff the tool reports a schema change: whether the dumps
/// differ when they agree, the disagreement otherwise; None without a pg_dump to ask.
fn schema_cross_check(pconn: &str, cconn: &str, doc: &Value) -> Option<Result<bool, String>> {
    let (pd, cd) = (harness::schema_dump(pconn, &[])?, harness::schema_dump(cconn, &[])?);
    let (pe, ce) = (dump_entries(&pd), dump_entries(&cd));
    let differ = pe != ce;
    let reported: Vec<String> = doc["schema_changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| visible_in_dump(c))
                .map(|c| format!("{} {} {}", c["op"], c["kind"], c["object"]))
                .collect()
        })
        .unwrap_or_default();
    match (differ, reported.is_empty()) {
        (true, true) => {
            let only =
                |a: &[String], b: &[String]| a.iter().filter(|e| !b.contains(e)).cloned().collect::<Vec<_>>().join("");
            Some(Err(format!(
                "[schema] pg_dump --schema-only differs but no schema change is reported; parent only:\n{}child only:\n{}",
                only(&pe, &ce),
                only(&ce, &pe)
            )))
        }
        (false, false) => Some(Err(format!(
            "[schema] pg_dump --schema-only is the same on both sides but schema changes are reported: {}",
            reported.join("; ")
        ))),
        _ => Some(Ok(differ)),
    }
}

/// stderr in one line: the error, or a panic's message and the first frame in our crates.
fn condense(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).collect();
    let Some(p) = lines.iter().position(|l| l.contains("panicked at")) else {
        return lines.iter().take(3).copied().collect::<Vec<_>>().join(" | ");
    };
    let mut out = format!("panic: {}", lines.get(p + 1).copied().unwrap_or(""));
    if let Some(f) = lines.iter().position(|l| l.contains("diff_core::") || l.contains("pgbranchdiff::")) {
        let at = lines.get(f + 1).copied().unwrap_or("");
        let _ = write!(out, " in {} {}", lines[f].split(": ").last().unwrap_or(""), at);
    }
    out
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        _ => default,
    }
}

#[test]
fn generated_branches_match_the_reference() {
    let cases = env_u64("PGBRANCHDIFF_DIFF_CASES", 70);
    let base = env_u64("PGBRANCHDIFF_DIFF_SEED", 1);
    let started = Instant::now();
    let version = harness::cluster().version_num;
    let mut failed = Vec::new();
    let verbose = std::env::var("PGBRANCHDIFF_DIFF_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "0");
    let (mut dumps_differ, mut dumps_same) = (0, 0);
    for i in 0..cases {
        let o = run_case(base + i);
        dumps_differ += o.summary.contains("; pg_dump: differ") as u32;
        dumps_same += o.summary.contains("; pg_dump: same") as u32;
        if verbose {
            let verdict = if o.problems.is_empty() { "ok" } else { "FAILED" };
            eprintln!("seed {} {:?}: {verdict}: {}; {}", o.seed, o.method, o.summary, o.notes[1..].join("; "));
        }
        if !o.problems.is_empty() {
            failed.push(o);
        }
    }
    eprintln!(
        "differential: {cases} cases, seeds {base}..={}, PostgreSQL {version}: {} failed ({:.1}s); \
         schema cross-check: pg_dump differed in {dumps_differ} passing cases, was the same in {dumps_same}",
        base + cases.saturating_sub(1),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        return;
    }
    let mut msg = String::new();
    for o in &failed {
        let _ = writeln!(msg, "\n======== seed {} ({:?}, PostgreSQL {version}) ========", o.seed, o.method);
        let _ = writeln!(msg, "case: {}", o.notes.join("; "));
        for p in &o.problems {
            let _ = writeln!(msg, "  {p}");
        }
        let _ = writeln!(msg, "-- SQL of seed {} (psql script):\n{}", o.seed, o.sql);
    }
    let _ = writeln!(msg, "\n======== summary ========");
    for o in &failed {
        let _ = writeln!(
            msg,
            "seed {} ({:?}): {} disagreement(s); first: {}",
            o.seed,
            o.method,
            o.problems.len(),
            o.problems[0]
        );
    }
    panic!(
        "{} of {cases} generated cases disagree with the reference (seeds {base}..={}; rerun one with \
         PGBRANCHDIFF_DIFF_SEED=N PGBRANCHDIFF_DIFF_CASES=1){msg}",
        failed.len(),
        base + cases - 1
    );
}
