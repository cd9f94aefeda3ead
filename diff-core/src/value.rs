//! How values are read, compared and shown.
//!
//! The hot types travel in PostgreSQL's binary format and are compared on their
//! bytes after a canonicalisation that follows SQL equality (see
//! `docs/architecture.md`, "What counts as a change"). Every other type is
//! selected as `::text` with pinned session settings, which avoids binary
//! formats that carry database-specific type OIDs (arrays, composites, ranges
//! of user types) or have no send function (aclitem).

use std::cmp::Ordering;
use std::fmt::Write as _;

/// How a column's bytes are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// bool
    Bool,
    /// int2
    Int2,
    /// int4
    Int4,
    /// int8
    Int8,
    /// oid
    Oid,
    /// float4: `-0` differs from 0 (it prints differently), every NaN equals every NaN.
    Float4,
    /// float8: `-0` differs from 0 (it prints differently), every NaN equals every NaN.
    Float8,
    /// numeric: compared by value and display scale (`1.0` and `1.00` print differently).
    Numeric,
    /// text, varchar, name, and every type selected as text.
    Text,
    /// char(n): trailing spaces are insignificant.
    BpChar,
    /// bytea
    Bytea,
    /// uuid
    Uuid,
    /// date
    Date,
    /// time without time zone
    Time,
    /// timestamp without time zone
    Timestamp,
    /// timestamptz (an instant: the same instant written in another zone is equal)
    Timestamptz,
    /// json: text kept and compared exactly.
    Json,
    /// jsonb: its canonical text (key order is not a change, a number's scale is).
    Jsonb,
}

/// Built-in type OIDs are fixed across databases and versions.
pub fn classify(base_type_oid: u32) -> Option<Kind> {
    Some(match base_type_oid {
        16 => Kind::Bool,
        17 => Kind::Bytea,
        19 | 25 | 1043 => Kind::Text,
        20 => Kind::Int8,
        21 => Kind::Int2,
        23 => Kind::Int4,
        26 => Kind::Oid,
        114 => Kind::Json,
        700 => Kind::Float4,
        701 => Kind::Float8,
        1042 => Kind::BpChar,
        1082 => Kind::Date,
        1083 => Kind::Time,
        1114 => Kind::Timestamp,
        1184 => Kind::Timestamptz,
        1700 => Kind::Numeric,
        2950 => Kind::Uuid,
        3802 => Kind::Jsonb,
        _ => return None,
    })
}

impl Kind {
    /// Whether Rust can order this kind the way `ORDER BY` does on the server.
    pub fn orderable(self) -> bool {
        !matches!(self, Kind::Json | Kind::Jsonb)
    }

    /// Whether the server must sort under the "C" collation so that byte order applies.
    pub fn needs_c_collation(self) -> bool {
        matches!(self, Kind::Text | Kind::BpChar)
    }

    pub(crate) fn is_int(self) -> bool {
        matches!(self, Kind::Int2 | Kind::Int4 | Kind::Int8)
    }
}

/// Equality of two non-null values of the same kind: the rule of
/// `docs/architecture.md` ("What counts as a change"): equal when PostgreSQL
/// prints them identically under the pinned session settings. So numeric
/// `1.0` ≠ `1.00`, float `-0` ≠ `0`, every NaN equals every NaN, and char(n)
/// ignores trailing spaces (the type pads them; the text form of a changed
/// length pads differently but means the same).
pub fn equal(kind: Kind, a: &[u8], b: &[u8]) -> bool {
    match kind {
        Kind::Numeric => numeric_cmp(a, b) == Ordering::Equal && dscale(a) == dscale(b),
        Kind::Float4 | Kind::Float8 => {
            let (x, y) = (float(kind, a), float(kind, b));
            (x.is_nan() && y.is_nan()) || (x == y && x.is_sign_negative() == y.is_sign_negative())
        }
        Kind::BpChar => trim_spaces(a) == trim_spaces(b),
        _ => a == b,
    }
}

/// Equality with NULLs (NULL equals NULL: "IS NOT DISTINCT FROM").
pub fn equal_opt(kind: Kind, a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => equal(kind, a, b),
        _ => false,
    }
}

/// Server `ORDER BY … ASC NULLS LAST` order, for kinds where [`Kind::orderable`].
pub fn compare_opt(kind: Kind, a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => compare(kind, a, b),
    }
}

/// Order of two non-null values as the server sorts them, refined so that it
/// is `Equal` exactly when [`equal`] holds: values equal in SQL but printed
/// differently (numeric scale, `-0`) are ordered by their print, as the
/// queries' tie-breaking sort keys order them (see `plan`).
pub fn compare(kind: Kind, a: &[u8], b: &[u8]) -> Ordering {
    match kind {
        Kind::Int2 | Kind::Int4 | Kind::Int8 | Kind::Date | Kind::Time | Kind::Timestamp | Kind::Timestamptz => {
            int(a).cmp(&int(b))
        }
        Kind::Oid => uint(a).cmp(&uint(b)),
        Kind::Float4 | Kind::Float8 => float_cmp(float(kind, a), float(kind, b)),
        Kind::Numeric => numeric_cmp(a, b).then_with(|| dscale(a).cmp(&dscale(b))),
        Kind::BpChar => trim_spaces(a).cmp(trim_spaces(b)),
        _ => a.cmp(b),
    }
}

/// PostgreSQL's float order (NaN above +Infinity, all NaNs equal), then `-0` before `0`.
pub(crate) fn float_cmp(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal).then_with(|| y.is_sign_negative().cmp(&x.is_sign_negative())),
    }
}

/// Display scale of a binary numeric.
pub(crate) fn dscale(b: &[u8]) -> u16 {
    if b.len() < 8 {
        return 0;
    }
    u16::from_be_bytes([b[6], b[7]])
}

/// oid: a big-endian unsigned 32-bit integer (3000000000 sorts after 2147483647).
pub(crate) fn uint(b: &[u8]) -> u32 {
    b.try_into().map(u32::from_be_bytes).unwrap_or(0)
}

/// Big-endian signed integer of 2, 4 or 8 bytes.
pub(crate) fn int(b: &[u8]) -> i64 {
    match b.len() {
        2 => i16::from_be_bytes([b[0], b[1]]) as i64,
        4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64,
        8 => i64::from_be_bytes(b.try_into().unwrap()),
        _ => 0,
    }
}

pub(crate) fn float(kind: Kind, b: &[u8]) -> f64 {
    match (kind, b.len()) {
        (Kind::Float4, 4) => f32::from_be_bytes(b.try_into().unwrap()) as f64,
        (_, 8) => f64::from_be_bytes(b.try_into().unwrap()),
        _ => f64::NAN,
    }
}

pub(crate) fn trim_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
    &b[..end]
}

fn strip_jsonb_version(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[1u8]).unwrap_or(b)
}

struct Num<'a> {
    weight: i16,
    sign: u16,
    digits: &'a [u8],
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

fn num(b: &[u8]) -> Num<'_> {
    if b.len() < 8 {
        return Num { weight: 0, sign: NUMERIC_NAN, digits: &[] };
    }
    Num { weight: i16::from_be_bytes([b[2], b[3]]), sign: u16::from_be_bytes([b[4], b[5]]), digits: &b[8..] }
}

pub(crate) fn numeric_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (x, y) = (num(a), num(b));
    // NaN sorts above +Infinity in PostgreSQL.
    let class = |n: &Num| match n.sign {
        NUMERIC_NINF => 0,
        NUMERIC_NEG => 1,
        _ if n.digits.is_empty() && n.sign == 0 => 2,
        0 => 3,
        NUMERIC_PINF => 4,
        _ => 5,
    };
    let (cx, cy) = (class(&x), class(&y));
    if cx != cy || !(cx == 1 || cx == 3) {
        return cx.cmp(&cy);
    }
    let magnitude = x.weight.cmp(&y.weight).then_with(|| x.digits.cmp(y.digits));
    if cx == 1 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// A decoded value, for reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// bool.
    Bool(bool),
    /// Integers and oid.
    Int(i64),
    /// float4 / float8.
    Float(f64),
    /// numeric, exactly as PostgreSQL prints it.
    Numeric(String),
    /// Character data.
    Text(String),
    /// bytea.
    Bytes(Vec<u8>),
    /// json / jsonb text.
    Json(String),
    /// Other types, in PostgreSQL's text form (dates, uuids, intervals, arrays…).
    Literal(String),
    /// A redacted value (`--redact`): the keyed hash of the value, in hex.
    /// Equal values of a column under the same key have the same hash.
    /// Only redaction produces it, after the comparison.
    Redacted(String),
}

impl Value {
    /// PostgreSQL's text form of the value (`None` for NULL).
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => (if *b { "t" } else { "f" }).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Numeric(s) | Value::Text(s) | Value::Json(s) | Value::Literal(s) => s.clone(),
            Value::Redacted(h) => format!("redacted:{h}"),
            Value::Bytes(b) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for byte in b {
                    let _ = write!(s, "{byte:02x}");
                }
                s
            }
        })
    }
}

/// PostgreSQL's spelling of special floats.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        (if f > 0.0 { "Infinity" } else { "-Infinity" }).into()
    } else {
        format!("{f}")
    }
}

/// Decodes one field. `literal` marks text-selected values of non-text types.
pub fn decode(kind: Kind, literal: bool, bytes: Option<&[u8]>) -> Value {
    let Some(b) = bytes else { return Value::Null };
    let text = || String::from_utf8_lossy(b).into_owned();
    match kind {
        Kind::Bool => Value::Bool(b.first() == Some(&1)),
        Kind::Int2 | Kind::Int4 | Kind::Int8 => Value::Int(int(b)),
        Kind::Oid => Value::Int(u32::from_be_bytes(b.try_into().unwrap_or([0; 4])) as i64),
        // A real prints as PostgreSQL prints it (the shortest float4 that reads back), not as its float64 expansion.
        Kind::Float4 => {
            let f = float(kind, b) as f32;
            Value::Float(if f.is_finite() { format!("{f}").parse().unwrap_or(f as f64) } else { f as f64 })
        }
        Kind::Float8 => Value::Float(float(kind, b)),
        Kind::Numeric => Value::Numeric(numeric_text(b)),
        Kind::Text | Kind::BpChar if literal => Value::Literal(text()),
        Kind::Text | Kind::BpChar => Value::Text(text()),
        Kind::Bytea => Value::Bytes(b.to_vec()),
        Kind::Uuid => Value::Literal(uuid_text(b)),
        Kind::Date => Value::Literal(date_text(int(b) as i32)),
        Kind::Time => Value::Literal(time_text(int(b))),
        Kind::Timestamp => Value::Literal(timestamp_text(int(b), false)),
        Kind::Timestamptz => Value::Literal(timestamp_text(int(b), true)),
        Kind::Json => Value::Json(text()),
        Kind::Jsonb => Value::Json(String::from_utf8_lossy(strip_jsonb_version(b)).into_owned()),
    }
}

pub(crate) fn numeric_text(b: &[u8]) -> String {
    if b.len() < 8 {
        return "NaN".into();
    }
    let n = num(b);
    let dscale = u16::from_be_bytes([b[6], b[7]]) as i32;
    match n.sign {
        NUMERIC_NAN => return "NaN".into(),
        NUMERIC_PINF => return "Infinity".into(),
        NUMERIC_NINF => return "-Infinity".into(),
        _ => {}
    }
    let digits: Vec<u16> = n.digits.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    let weight = n.weight as i32;
    let mut s = String::new();
    if n.sign == NUMERIC_NEG {
        s.push('-');
    }
    if weight < 0 || digits.is_empty() {
        s.push('0');
    } else {
        for i in 0..=weight {
            let d = digits.get(i as usize).copied().unwrap_or(0);
            if i == 0 {
                let _ = write!(s, "{d}");
            } else {
                let _ = write!(s, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while (frac.len() as i32) < dscale {
            let d = if i < 0 { 0 } else { digits.get(i as usize).copied().unwrap_or(0) };
            let _ = write!(frac, "{d:04}");
            i += 1;
        }
        frac.truncate(dscale as usize);
        s.push_str(&frac);
    }
    s
}

fn uuid_text(b: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

const PG_EPOCH_DAYS: i64 = 10_957;
const USECS_PER_DAY: i64 = 86_400_000_000;

fn ymd(days_since_2000: i64) -> String {
    let (y, m, d) = civil(days_since_2000 + PG_EPOCH_DAYS);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

fn date_text(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => ymd(d as i64),
    }
}

fn time_text(usecs: i64) -> String {
    let (secs, frac) = (usecs.div_euclid(1_000_000), usecs.rem_euclid(1_000_000));
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac > 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

fn timestamp_text(usecs: i64, tz: bool) -> String {
    match usecs {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let days = usecs.div_euclid(USECS_PER_DAY);
    let time = time_text(usecs.rem_euclid(USECS_PER_DAY));
    let date = ymd(days);
    let (date, bc) = match date.strip_suffix(" BC") {
        Some(d) => (d.to_string(), " BC"),
        None => (date, ""),
    };
    format!("{date} {time}{}{bc}", if tz { "+00" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = vec![];
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_scale_is_a_change() {
        // 24.6900 (dscale 4) vs 24.69 (dscale 2): digits [24, 6900], weight 0. Printed differently.
        let a = numeric_bytes(0, 0, 4, &[24, 6900]);
        let b = numeric_bytes(0, 0, 2, &[24, 6900]);
        assert!(!equal(Kind::Numeric, &a, &b));
        assert_eq!(compare(Kind::Numeric, &b, &a), Ordering::Less);
        assert!(equal(Kind::Numeric, &a, &a.clone()));
        assert_eq!(numeric_text(&a), "24.6900");
        assert_eq!(numeric_text(&b), "24.69");
        let c = numeric_bytes(0, 0, 2, &[2, 4700]);
        assert!(!equal(Kind::Numeric, &a, &c));
        assert_eq!(numeric_text(&c), "2.47");
        assert_eq!(numeric_text(&numeric_bytes(-1, NUMERIC_NEG, 3, &[50])), "-0.005");
        assert_eq!(numeric_text(&numeric_bytes(1, 0, 0, &[12, 3456])), "123456");
        assert_eq!(numeric_text(&numeric_bytes(0, 0, 0, &[])), "0");
    }

    #[test]
    fn numeric_order() {
        let v = [
            numeric_bytes(0, 0, 0, &[]).to_vec(),
            numeric_bytes(0, NUMERIC_NINF, 0, &[]),
            numeric_bytes(0, 0, 0, &[5]),
            numeric_bytes(1, 0, 0, &[1]),
            numeric_bytes(0, NUMERIC_NEG, 0, &[5]),
            numeric_bytes(0, NUMERIC_NAN, 0, &[]),
            numeric_bytes(0, NUMERIC_PINF, 0, &[]),
            numeric_bytes(0, 0, 1, &[5, 1000]),
            numeric_bytes(0, 0, 2, &[5]),
        ];
        let mut sorted = v.to_vec();
        sorted.sort_by(|a, b| compare(Kind::Numeric, a, b));
        let text: Vec<String> = sorted.iter().map(|b| numeric_text(b)).collect();
        assert_eq!(text, ["-Infinity", "-5", "0", "5", "5.00", "5.1", "10000", "Infinity", "NaN"]);
    }

    #[test]
    fn floats_by_print() {
        let z = 0f64.to_be_bytes();
        let nz = (-0f64).to_be_bytes();
        assert!(!equal(Kind::Float8, &z, &nz));
        assert_eq!(compare(Kind::Float8, &nz, &z), Ordering::Less);
        let n1 = f64::NAN.to_be_bytes();
        let n2 = f64::from_bits(0x7ff8_0000_0000_0001).to_be_bytes();
        assert!(equal(Kind::Float8, &n1, &n2));
        assert_eq!(compare(Kind::Float8, &n1, &n2), Ordering::Equal);
        assert_eq!(compare(Kind::Float8, &n1, &f64::INFINITY.to_be_bytes()), Ordering::Greater);
    }

    #[test]
    fn oids_are_unsigned() {
        let big = 3_000_000_000u32.to_be_bytes();
        let small = 2_147_483_647u32.to_be_bytes();
        assert_eq!(compare(Kind::Oid, &small, &big), Ordering::Less);
        assert_eq!(decode(Kind::Oid, false, Some(&big)), Value::Int(3_000_000_000));
    }

    #[test]
    fn bpchar_padding() {
        assert!(equal(Kind::BpChar, b"ab  ", b"ab"));
        assert!(!equal(Kind::BpChar, b" ab", b"ab"));
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date_text(0), "2000-01-01");
        assert_eq!(date_text(-1), "1999-12-31");
        assert_eq!(date_text(9190), "2025-02-28");
        assert_eq!(timestamp_text(1_500_000, true), "2000-01-01 00:00:01.5+00");
        // 2000 years = 2000 × 365 + 485 leap days before 2000-01-01 is 0000-01-01, i.e. 1 BC.
        assert_eq!(timestamp_text(-USECS_PER_DAY * 730_485, false), "0001-01-01 00:00:00 BC");
        assert_eq!(time_text(86_399_999_999), "23:59:59.999999");
    }
}
