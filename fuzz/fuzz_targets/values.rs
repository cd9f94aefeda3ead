//! `diff_core::value` on arbitrary field bytes: `decode` (both as the kind's
//! binary form and as a text literal), `Value::to_text`, `equal` and `compare`
//! must never panic, whatever the bytes.
//!
//! `compare` is documented as an order ("Order of two non-null values as the
//! server sorts them, refined so that it is `Equal` exactly when [`equal`]
//! holds"), so the target also checks, on every input, that it is
//! antisymmetric, and, on inputs that are well-formed binary values of the kind
//! (what a server can send; see `well_formed`), that `compare(a, b) == Equal`
//! exactly when `equal(a, b)`, and that both are reflexive.
//!
//! Input layout (what `make_corpus.sh` writes for real field values):
//!
//! | bytes | meaning |
//! |---|---|
//! | 1 | kind: index into `KINDS` (modulo its length) |
//! | 2 | length of `a`, u16 big-endian (clamped to what is left) |
//! | n | `a` |
//! | rest | `b` |
#![no_main]

use std::cmp::Ordering;

use diff_core::value::{compare, decode, equal, Kind, Value};
use libfuzzer_sys::fuzz_target;

/// Every variant, in declaration order (`make_corpus.sh` uses the same order).
const KINDS: [Kind; 18] = [
    Kind::Bool,
    Kind::Int2,
    Kind::Int4,
    Kind::Int8,
    Kind::Oid,
    Kind::Float4,
    Kind::Float8,
    Kind::Numeric,
    Kind::Text,
    Kind::BpChar,
    Kind::Bytea,
    Kind::Uuid,
    Kind::Date,
    Kind::Time,
    Kind::Timestamp,
    Kind::Timestamptz,
    Kind::Json,
    Kind::Jsonb,
];

/// Fails to compile when `Kind` gains a variant: add it to `KINDS` (at the end,
/// so the corpus keeps its meaning) and to `well_formed`.
#[allow(dead_code)]
fn all_kinds_listed(k: Kind) {
    match k {
        Kind::Bool
        | Kind::Int2
        | Kind::Int4
        | Kind::Int8
        | Kind::Oid
        | Kind::Float4
        | Kind::Float8
        | Kind::Numeric
        | Kind::Text
        | Kind::BpChar
        | Kind::Bytea
        | Kind::Uuid
        | Kind::Date
        | Kind::Time
        | Kind::Timestamp
        | Kind::Timestamptz
        | Kind::Json
        | Kind::Jsonb => {}
    }
}

/// Whether `b` is a value PostgreSQL's binary send function can produce for `kind`.
fn well_formed(kind: Kind, b: &[u8]) -> bool {
    match kind {
        Kind::Bool => b == [0] || b == [1],
        Kind::Int2 => b.len() == 2,
        Kind::Int4 | Kind::Oid | Kind::Float4 | Kind::Date => b.len() == 4,
        Kind::Int8 | Kind::Float8 | Kind::Time | Kind::Timestamp | Kind::Timestamptz => b.len() == 8,
        Kind::Uuid => b.len() == 16,
        Kind::Numeric => numeric_well_formed(b),
        Kind::Text | Kind::BpChar | Kind::Bytea | Kind::Json | Kind::Jsonb => true,
    }
}

/// `numeric_send`: ndigits, weight, sign, dscale, then ndigits base-10000
/// digits, stripped of leading and trailing zeros; special values have none.
fn numeric_well_formed(b: &[u8]) -> bool {
    if b.len() < 8 {
        return false;
    }
    let be = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let (ndigits, weight, sign, dscale) = (be(0) as usize, be(2) as i16, be(4), be(6));
    if b.len() != 8 + 2 * ndigits || dscale > 0x3FFF {
        return false;
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| be(8 + 2 * i)).collect();
    if digits.iter().any(|&d| d >= 10_000) || digits.first() == Some(&0) || digits.last() == Some(&0) {
        return false;
    }
    match sign {
        0x0000 | 0x4000 if ndigits == 0 => sign == 0 && weight == 0,
        0x0000 | 0x4000 => true,
        0xC000 | 0xD000 | 0xF000 => ndigits == 0 && weight == 0 && dscale == 0,
        _ => false,
    }
}

fn exercise_decode(kind: Kind, b: &[u8]) {
    for literal in [false, true] {
        let v = decode(kind, literal, Some(b));
        assert_ne!(v, Value::Null, "{kind:?} decoded a non-null field as NULL");
        std::hint::black_box(v.to_text());
        assert_eq!(decode(kind, literal, None), Value::Null);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let kind = KINDS[k as usize % KINDS.len()];
    let n = match rest {
        [x, y, ..] => u16::from_be_bytes([*x, *y]) as usize,
        _ => 0,
    };
    let rest = rest.get(2..).unwrap_or_default();
    let (a, b) = rest.split_at(n.min(rest.len()));

    exercise_decode(kind, a);
    exercise_decode(kind, b);

    let ab = compare(kind, a, b);
    let ba = compare(kind, b, a);
    assert_eq!(ab, ba.reverse(), "{kind:?}: compare is not antisymmetric on a={a:02x?} b={b:02x?}");
    let eq = equal(kind, a, b);
    assert_eq!(eq, equal(kind, b, a), "{kind:?}: equal is not symmetric on a={a:02x?} b={b:02x?}");

    if well_formed(kind, a) && well_formed(kind, b) {
        for v in [a, b] {
            assert!(equal(kind, v, v), "{kind:?}: equal is not reflexive on {v:02x?}");
            assert_eq!(compare(kind, v, v), Ordering::Equal, "{kind:?}: compare(v, v) != Equal on {v:02x?}");
        }
        assert_eq!(eq, ab == Ordering::Equal, "{kind:?}: equal = {eq} but compare = {ab:?} on a={a:02x?} b={b:02x?}");
    }
});
