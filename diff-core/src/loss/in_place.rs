//! Values lost in place: one rule for every type, at every depth.
//!
//! A value is lost when the branch's value no longer gives back the parent's:
//!
//! - after a type change, the new value converted back to the old type (the
//!   cast PostgreSQL would apply) differs from the old value, and the new value
//!   is what the cast made of the old one, or a coarsening of it (`USING
//!   trunc(n, 2)`). `1.7` → `int` `2` is lost (`2::float8` ≠ `1.7`); `int` →
//!   `bigint`, `varchar(10)` → `text`, `timestamp` → `timestamptz` never are;
//! - in the same type (an `UPDATE`), the new value is a coarsening of the old:
//!   a number rounded or cut to fewer decimal digits, a time rounded or cut to
//!   a coarser unit, a string or bytea cut to a proper prefix, a non-NULL value
//!   set to NULL, array elements removed.
//!
//! Arrays and composites are compared element by element and attribute by
//! attribute, domains as their base type, so the rule is the same at every
//! depth. The kinds a loss is reported as: `rounded` (numbers), `truncated`
//! (strings, bytea), `precision_dropped` (fractions of a second, seconds,
//! minutes or hours of a time, timestamp or interval), `time_of_day_dropped`
//! (a timestamp cut to its date), `nulled`, `shrunk`.

use super::text_form::{self, DAY};
use super::LossKind;
use crate::convert::Dec;
use crate::reading::Reading;
use crate::value::{float, int, trim_spaces, Kind};

/// A scalar type as the rule sees it: the family and what its typmod keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaf {
    Int,
    /// numeric, with the scale its typmod rounds to.
    Numeric(Option<i32>),
    Float4,
    Float8,
    /// timestamp or timestamptz (read in UTC), with its fractional precision.
    Timestamp(i32),
    Date,
    /// time, with its fractional precision.
    Time(i32),
    /// interval, with its typmod.
    Interval(i32),
    /// text, varchar, name, char(n).
    Text,
    Bytea,
}

impl Leaf {
    fn of(oid: u32, typmod: i32) -> Option<Leaf> {
        Some(match oid {
            20 | 21 | 23 => Leaf::Int,
            1700 => Leaf::Numeric((typmod >= 4).then(|| (((typmod - 4) & 0x7ff) ^ 1024) - 1024)),
            700 => Leaf::Float4,
            701 => Leaf::Float8,
            1114 | 1184 => Leaf::Timestamp(if (0..6).contains(&typmod) { typmod } else { 6 }),
            1082 => Leaf::Date,
            1083 => Leaf::Time(if (0..6).contains(&typmod) { typmod } else { 6 }),
            1186 => Leaf::Interval(typmod),
            19 | 25 | 1042 | 1043 => Leaf::Text,
            17 => Leaf::Bytea,
            _ => return None,
        })
    }

    fn family(self) -> u8 {
        match self {
            Leaf::Int | Leaf::Numeric(_) | Leaf::Float4 | Leaf::Float8 => 0,
            Leaf::Timestamp(_) | Leaf::Date | Leaf::Time(_) => 1,
            Leaf::Interval(_) => 2,
            Leaf::Text => 3,
            Leaf::Bytea => 4,
        }
    }
}

/// A scalar value, exact.
#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Dec(Dec),
    F4(f32),
    F8(f64),
    /// Microseconds since 2000-01-01 (a date at midnight) or since midnight (time).
    Usecs(i64),
    Interval(i64, i64, i64),
    Bytes(Vec<u8>),
}

impl Val {
    /// From PostgreSQL's text output under the pinned settings.
    fn parse(leaf: Leaf, s: &str) -> Option<Val> {
        Some(match leaf {
            Leaf::Int => Val::Int(s.parse().ok()?),
            Leaf::Numeric(_) => Val::Dec(Dec::parse(s)?),
            Leaf::Float4 => Val::F4(parse_float(s)? as f32),
            Leaf::Float8 => Val::F8(parse_float(s)?),
            Leaf::Timestamp(_) => Val::Usecs(text_form::timestamp(s)?),
            Leaf::Date => Val::Usecs(text_form::date(s)?.saturating_mul(DAY)),
            Leaf::Time(_) => Val::Usecs(text_form::time(s)?),
            Leaf::Interval(_) => {
                let (m, d, u) = text_form::interval(s)?;
                Val::Interval(m, d, u)
            }
            Leaf::Text => Val::Bytes(s.as_bytes().to_vec()),
            Leaf::Bytea => Val::Bytes(s.strip_prefix("\\x").unwrap_or(s).as_bytes().to_vec()),
        })
    }

    /// From the binary send format of a column read as `kind`.
    fn binary(kind: Kind, b: &[u8]) -> Option<Val> {
        Some(match kind {
            Kind::Int2 | Kind::Int4 | Kind::Int8 => Val::Int(int(b)),
            Kind::Numeric => Val::Dec(Dec::from_numeric(b)),
            Kind::Float4 => Val::F4(float(kind, b) as f32),
            Kind::Float8 => Val::F8(float(kind, b)),
            Kind::Timestamp | Kind::Timestamptz | Kind::Time => Val::Usecs(int(b)),
            Kind::Date => Val::Usecs(match int(b) {
                d if d == i32::MAX as i64 => i64::MAX,
                d if d == i32::MIN as i64 => i64::MIN,
                d => d * DAY,
            }),
            Kind::Text | Kind::Bytea => Val::Bytes(b.to_vec()),
            Kind::BpChar => Val::Bytes(trim_spaces(b).to_vec()),
            _ => return None,
        })
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// A number as an exact decimal: floats by their shortest print (what PostgreSQL shows).
fn decimal(v: &Val) -> Option<Dec> {
    Some(match v {
        Val::Int(i) => Dec::from_int(*i),
        Val::Dec(d) => d.clone(),
        Val::F4(f) => Dec::shortest(*f as f64, true),
        Val::F8(f) => Dec::shortest(*f, false),
        _ => return None,
    })
}

/// A number cast to a numeric type as PostgreSQL casts it.
fn cast_number(v: &Val, to: Leaf) -> Option<Val> {
    let f = |v: &Val| match v {
        Val::Int(i) => *i as f64,
        Val::Dec(d) => d.to_f64(),
        Val::F4(x) => *x as f64,
        Val::F8(x) => *x,
        _ => f64::NAN,
    };
    Some(match to {
        Leaf::Int => match v {
            Val::Int(i) => Val::Int(*i),
            Val::Dec(d) => Val::Dec(d.clone().round(0)),
            _ => Val::Int(f(v).round_ties_even() as i64),
        },
        Leaf::Numeric(scale) => {
            let d = match v {
                Val::F4(x) => Dec::from_float(*x as f64, 6),
                Val::F8(x) => Dec::from_float(*x, 15),
                other => decimal(other)?,
            };
            Val::Dec(scale.map_or(d.clone(), |s| d.round(s)))
        }
        // numeric → float4 reads the numeric's text with strtof: one rounding.
        Leaf::Float4 => match v {
            Val::Dec(d) => Val::F4(d.to_f32()),
            _ => Val::F4(f(v) as f32),
        },
        Leaf::Float8 => Val::F8(f(v)),
        _ => return None,
    })
}

/// Equal as numbers (display scale, `-0` and NaN payloads are no loss).
fn same_number(a: &Val, b: &Val) -> bool {
    let as_f = |v: &Val| match v {
        Val::F4(x) => Some(*x as f64),
        Val::F8(x) => Some(*x),
        _ => None,
    };
    match (as_f(a), as_f(b)) {
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Some(x), None) => decimal(b).is_some_and(|d| d.to_f64() == x && d.same_value(&Dec::shortest(x, false))),
        (None, Some(_)) => same_number(b, a),
        (None, None) => match (decimal(a), decimal(b)) {
            (Some(x), Some(y)) => x.same_value(&y),
            _ => false,
        },
    }
}

/// `c` is `p` rounded or cut to fewer decimal places (never to tens: that is an edit).
fn coarser_number(p: &Dec, c: &Dec) -> bool {
    let Some(pe) = p.last_digit() else { return false };
    if pe >= 0 || p.same_value(c) {
        return false;
    }
    let from = c.last_digit().map_or(0, |e| (-e).max(0));
    (from..-pe).any(|s| p.clone().round(s).same_value(c) || p.clone().trunc(s).same_value(c))
}

fn round_to(t: i64, unit: i64) -> i64 {
    if t == i64::MAX || t == i64::MIN {
        return t;
    }
    let half = unit / 2;
    if t >= 0 {
        (t + half) / unit * unit
    } else {
        -((-t + half) / unit * unit)
    }
}

/// A time value cast to a date/time type.
fn cast_time(t: i64, to: Leaf) -> i64 {
    match to {
        Leaf::Date if t != i64::MAX && t != i64::MIN => t.div_euclid(DAY) * DAY,
        Leaf::Timestamp(p) | Leaf::Time(p) => round_to(t, 10i64.pow(6 - p as u32)),
        _ => t,
    }
}

/// Units a time can be coarsened to, finest first.
const TIME_UNITS: [i64; 9] = [10, 100, 1_000, 10_000, 100_000, 1_000_000, 60_000_000, 3_600_000_000, DAY];

/// The unit `c` is `p` rounded or cut to, if any.
fn coarsened_time(p: i64, c: i64) -> Option<i64> {
    if p == c || p == i64::MAX || p == i64::MIN {
        return None;
    }
    TIME_UNITS.into_iter().find(|&u| c == round_to(p, u) || c == p.div_euclid(u) * u || c == p / u * u)
}

/// An interval cast to an interval typmod (`AdjustIntervalForTypmod`): fields
/// below the range dropped, seconds rounded to the precision.
fn cast_interval((m, d, u): (i64, i64, i64), typmod: i32) -> (i64, i64, i64) {
    if typmod < 0 {
        return (m, d, u);
    }
    let (range, precision) = ((typmod >> 16) & 0x7fff, typmod & 0xffff);
    const YEAR: i32 = 1 << 2;
    const MONTH: i32 = 1 << 1;
    const DAYF: i32 = 1 << 3;
    const HOUR: i32 = 1 << 10;
    const MINUTE: i32 = 1 << 11;
    let (m, d, u) = match range {
        r if r == YEAR => (m / 12 * 12, 0, 0),
        r if r == MONTH || r == YEAR | MONTH => (m, 0, 0),
        r if r == DAYF => (m, d, 0),
        r if r == HOUR || r == DAYF | HOUR => (m, d, u / 3_600_000_000 * 3_600_000_000),
        r if r == MINUTE || r == HOUR | MINUTE || r == DAYF | HOUR | MINUTE => (m, d, u / 60_000_000 * 60_000_000),
        _ => (m, d, u),
    };
    let u = if (0..6).contains(&precision) { round_to(u, 10i64.pow(6 - precision as u32)) } else { u };
    (m, d, u)
}

/// How the parent's leaf value `p` (of `pl`) was lost in the child's `c` (of `cl`), if it was.
fn leaf_lost(pl: Leaf, p: &Val, cl: Leaf, c: &Val) -> Option<LossKind> {
    if pl.family() != cl.family() {
        return None;
    }
    let changed_type = pl != cl;
    match (p, c) {
        (Val::Usecs(pt), Val::Usecs(ct)) => {
            if cast_time(*ct, pl) == *pt {
                return None;
            }
            let by_cast = changed_type && cast_time(*pt, cl) == *ct;
            let unit = coarsened_time(*pt, *ct).or(by_cast.then_some(1))?;
            Some(if unit == DAY || cl == Leaf::Date { LossKind::TimeOfDayDropped } else { LossKind::PrecisionDropped })
        }
        (Val::Interval(a, b, x), Val::Interval(d, e, y)) => {
            let (p, c) = ((*a, *b, *x), (*d, *e, *y));
            let pm = if let Leaf::Interval(t) = pl { t } else { -1 };
            let cm = if let Leaf::Interval(t) = cl { t } else { -1 };
            if cast_interval(c, pm) == p {
                return None;
            }
            let coarser = (changed_type && cast_interval(p, cm) == c)
                || ((p.0, p.1) == (c.0, c.1) && coarsened_time(p.2, c.2).is_some())
                || (p.0 == c.0 && c.1 == 0 && c.2 == 0 && (p.1, p.2) != (0, 0));
            coarser.then_some(LossKind::PrecisionDropped)
        }
        (Val::Bytes(a), Val::Bytes(b)) => (b.len() < a.len() && a.starts_with(b)).then_some(LossKind::Truncated),
        _ => {
            if same_number(&cast_number(c, pl)?, p) {
                return None;
            }
            let by_cast = changed_type && cast_number(p, cl).is_some_and(|f| same_number(&f, c));
            (by_cast || coarser_number(&decimal(p)?, &decimal(c)?)).then_some(LossKind::Rounded)
        }
    }
}

/// One side of a column as the rule reads it: its type deeply, and whether
/// its values arrive as text.
#[derive(Debug, Clone)]
pub struct Shape {
    reading: Reading,
    typmod: i32,
    kind: Kind,
    literal: bool,
}

impl Shape {
    /// A column's side: its reading, the typmod of its (base) type, and how it is selected.
    pub fn new(reading: Reading, typmod: i32, kind: Kind, literal: bool) -> Shape {
        Shape { reading, typmod, kind, literal }
    }

    /// A built-in type read in binary as `kind`, without a typmod (for plans built by hand).
    pub fn builtin(kind: Kind) -> Shape {
        let oid = match kind {
            Kind::Bool => 16,
            Kind::Bytea => 17,
            Kind::Int8 => 20,
            Kind::Int2 => 21,
            Kind::Int4 => 23,
            Kind::Oid => 26,
            Kind::Json => 114,
            Kind::Float4 => 700,
            Kind::Float8 => 701,
            Kind::BpChar => 1042,
            Kind::Date => 1082,
            Kind::Time => 1083,
            Kind::Timestamp => 1114,
            Kind::Timestamptz => 1184,
            Kind::Numeric => 1700,
            Kind::Uuid => 2950,
            Kind::Jsonb => 3802,
            Kind::Text => 25,
        };
        Shape::new(Reading::Builtin(oid), -1, kind, false)
    }

    /// Whether the type is json or jsonb (through domains).
    pub fn is_json(&self) -> bool {
        fn json(r: &Reading) -> bool {
            match r {
                Reading::Builtin(oid) => matches!(oid, 114 | 3802),
                Reading::Domain { base, .. } => json(base),
                _ => false,
            }
        }
        json(&self.reading)
    }

    /// The leaf type of a reading with `typmod`, looking through domains.
    fn leaf(reading: &Reading, typmod: i32) -> Option<Leaf> {
        match reading {
            Reading::Builtin(oid) => Leaf::of(*oid, typmod),
            Reading::Domain { typmod: t, base } => Shape::leaf(base, if *t >= 0 { *t } else { typmod }),
            _ => None,
        }
    }
}

/// How the parent's value `p` was lost in the child's `c` (both non-NULL), by
/// the rule above; `None` when nothing was lost or the types are not judged.
pub fn lost(ps: &Shape, p: &[u8], cs: &Shape, c: &[u8]) -> Option<LossKind> {
    if !ps.literal && !cs.literal {
        let (pl, cl) = (Shape::leaf(&ps.reading, ps.typmod)?, Shape::leaf(&cs.reading, cs.typmod)?);
        return leaf_lost(pl, &Val::binary(ps.kind, p)?, cl, &Val::binary(cs.kind, c)?);
    }
    let (p, c) = (std::str::from_utf8(p).ok()?, std::str::from_utf8(c).ok()?);
    deep(&ps.reading, ps.typmod, p, &cs.reading, cs.typmod, c)
}

/// The rule on text forms, through domains, arrays and composites.
fn deep(pr: &Reading, pm: i32, p: &str, cr: &Reading, cm: i32, c: &str) -> Option<LossKind> {
    match (pr, cr) {
        (Reading::Domain { typmod, base }, _) => deep(base, if *typmod >= 0 { *typmod } else { pm }, p, cr, cm, c),
        (_, Reading::Domain { typmod, base }) => deep(pr, pm, p, base, if *typmod >= 0 { *typmod } else { cm }, c),
        (Reading::Array(pe), Reading::Array(ce)) => {
            let (pa, ca) = (text_form::array(p)?, text_form::array(c)?);
            if pa.shape != ca.shape {
                let shrunk = pa.shape.len() == 1 && ca.shape.len() == 1 && super::shrunk_array(p, c);
                return shrunk.then_some(LossKind::Shrunk);
            }
            pairs(pa.elements.iter().zip(&ca.elements), |a, b| deep(pe, pm, a, ce, cm, b))
        }
        (Reading::Composite(pa), Reading::Composite(ca)) => {
            let (pf, cf) = (text_form::record(p)?, text_form::record(c)?);
            // Attributes are paired by attnum; one dropped from the type is counted as dropped.
            let matched = pa.iter().zip(&pf).filter_map(|((n, pm, pr), pv)| {
                let at = ca.iter().position(|(m, _, _)| m == n)?;
                Some(((pm, pr, pv), (ca[at].1, &ca[at].2, cf.get(at)?)))
            });
            let mut found = None;
            for ((pm, pr, pv), (cm, cr, cv)) in matched {
                let kind = match (pv, cv) {
                    (Some(_), None) => Some(LossKind::Nulled),
                    (Some(a), Some(b)) => deep(pr, *pm, a, cr, cm, b),
                    _ => None,
                };
                found = found.or(kind);
            }
            found
        }
        _ => {
            let (pl, cl) = (Shape::leaf(pr, pm)?, Shape::leaf(cr, cm)?);
            let bpchar = |r: &Reading| matches!(r, Reading::Builtin(1042));
            let trim =
                |r: &Reading, s: &'_ str| if bpchar(r) { s.trim_end_matches(' ').to_string() } else { s.to_string() };
            leaf_lost(pl, &Val::parse(pl, &trim(pr, p))?, cl, &Val::parse(cl, &trim(cr, c))?)
        }
    }
}

/// The first loss among paired elements: a non-NULL element set to NULL is `nulled`.
fn pairs<'a>(
    it: impl Iterator<Item = (&'a Option<String>, &'a Option<String>)>,
    f: impl Fn(&str, &str) -> Option<LossKind>,
) -> Option<LossKind> {
    let mut found = None;
    for (a, b) in it {
        let kind = match (a, b) {
            (Some(_), None) => Some(LossKind::Nulled),
            (Some(a), Some(b)) => f(a, b),
            _ => None,
        };
        found = found.or(kind);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(oid: u32, typmod: i32) -> Shape {
        Shape::new(Reading::Builtin(oid), typmod, Kind::Text, true)
    }

    fn lost_text(p: (u32, i32, &str), c: (u32, i32, &str)) -> Option<LossKind> {
        lost(&text(p.0, p.1), p.2.as_bytes(), &text(c.0, c.1), c.2.as_bytes())
    }

    const NUMERIC_12_4: i32 = (12 << 16 | 4) + 4;
    const NUMERIC_12_2: i32 = (12 << 16 | 2) + 4;

    #[test]
    fn numbers() {
        use LossKind::Rounded;
        // float8 → int: 1.7 → 2 and 2.5 → 2 are lost; 2.0 → 2 is not.
        assert_eq!(lost_text((701, -1, "1.7"), (23, -1, "2")), Some(Rounded));
        assert_eq!(lost_text((701, -1, "2.5"), (23, -1, "2")), Some(Rounded));
        assert_eq!(lost_text((701, -1, "2"), (23, -1, "2")), None);
        // float8 → real: 0.5 is exact, 1.23456789 is not.
        assert_eq!(lost_text((701, -1, "0.5"), (700, -1, "0.5")), None);
        assert_eq!(lost_text((701, -1, "1.23456789"), (700, -1, "1.2345679")), Some(Rounded));
        // numeric → float8: digits past what float8_numeric gives back.
        assert_eq!(lost_text((1700, -1, "0.1"), (701, -1, "0.1")), None);
        assert_eq!(lost_text((1700, -1, "1.2345678901234567891"), (701, -1, "1.2345678901234568")), Some(Rounded));
        // numeric(12,4) → numeric(12,2), and UPDATE round(amount, 1) in place.
        assert_eq!(lost_text((1700, NUMERIC_12_4, "0.3333"), (1700, NUMERIC_12_2, "0.33")), Some(Rounded));
        assert_eq!(lost_text((1700, NUMERIC_12_4, "0.3300"), (1700, NUMERIC_12_2, "0.33")), None);
        assert_eq!(lost_text((1700, NUMERIC_12_4, "0.3333"), (1700, NUMERIC_12_4, "0.3000")), Some(Rounded));
        // USING trunc(n, 2): the cast would round up, trunc cut; both are lost.
        assert_eq!(lost_text((1700, NUMERIC_12_4, "0.1250"), (1700, NUMERIC_12_2, "0.12")), Some(Rounded));
        // Edits are not losses: another number, or a rounding to tens.
        assert_eq!(lost_text((1700, -1, "0.3333"), (1700, -1, "0.5")), None);
        assert_eq!(lost_text((23, -1, "1234"), (23, -1, "1200")), None);
        assert_eq!(lost_text((23, -1, "7"), (20, -1, "7")), None);
        assert_eq!(lost_text((20, -1, "9007199254740993"), (701, -1, "9007199254740992")), Some(Rounded));
    }

    #[test]
    fn times_and_intervals() {
        use LossKind::{PrecisionDropped, TimeOfDayDropped};
        let ts = |s: &'static str| (1114, -1, s);
        assert_eq!(lost_text(ts("2024-01-01 10:00:00.5"), (1114, 0, "2024-01-01 10:00:01")), Some(PrecisionDropped));
        assert_eq!(lost_text(ts("2024-01-01 10:00:01"), (1114, 0, "2024-01-01 10:00:01")), None);
        assert_eq!(lost_text(ts("2024-01-01 10:00:00"), (1082, -1, "2024-01-01")), Some(TimeOfDayDropped));
        assert_eq!(lost_text(ts("2024-01-01 00:00:00"), (1082, -1, "2024-01-01")), None);
        assert_eq!(lost_text(ts("2024-01-01 10:00:00"), (1184, -1, "2024-01-01 10:00:00+00")), None);
        assert_eq!(lost_text(ts("2024-01-01 10:20:30"), ts("2024-01-01 10:00:00")), Some(PrecisionDropped));
        assert_eq!(lost_text(ts("2024-01-01 10:20:30"), ts("2024-01-01 00:00:00")), Some(TimeOfDayDropped));
        assert_eq!(lost_text(ts("2024-01-01 10:20:30"), ts("2024-01-02 10:20:30")), None);
        assert_eq!(lost_text((1083, -1, "10:00:00.5"), (1083, 0, "10:00:01")), Some(PrecisionDropped));
        assert_eq!(lost_text((1186, -1, "1 day 00:00:00.3"), (1186, 0x7fff << 16, "1 day")), Some(PrecisionDropped));
        assert_eq!(lost_text((1186, -1, "1 day 00:00:01"), (1186, 0x7fff << 16, "1 day 00:00:01")), None);
    }

    #[test]
    fn strings() {
        assert_eq!(lost_text((25, -1, "abcdef"), (1043, 7, "abc")), Some(LossKind::Truncated));
        assert_eq!(lost_text((1042, 9, "ab   "), (25, -1, "ab")), None);
        assert_eq!(lost_text((25, -1, "abc"), (25, -1, "abd")), None);
    }

    #[test]
    fn the_same_rule_inside_arrays_domains_and_composites() {
        let arr = |typmod| Shape::new(Reading::Array(Box::new(Reading::Builtin(1700))), typmod, Kind::Text, true);
        let one = (10 << 16 | 1) + 4;
        assert_eq!(lost(&arr(-1), b"{0.25,1}", &arr(one), b"{0.3,1.0}"), Some(LossKind::Rounded));
        assert_eq!(lost(&arr(-1), b"{0.5,1}", &arr(one), b"{0.5,1.0}"), None);
        assert_eq!(lost(&arr(-1), b"{0.5,1}", &arr(-1), b"{0.5,NULL}"), Some(LossKind::Nulled));
        let comp = |typmod| {
            let r = Reading::Composite(vec![(1, typmod, Reading::Builtin(1700)), (2, -1, Reading::Builtin(25))]);
            Shape::new(Reading::Array(Box::new(r)), -1, Kind::Text, true)
        };
        assert_eq!(lost(&comp(-1), br#"{"(0.125,y)"}"#, &comp(-1), br#"{"(0.13,y)"}"#), Some(LossKind::Rounded));
        assert_eq!(lost(&comp(-1), br#"{"(0.125,y)"}"#, &comp(-1), br#"{"(0.125,z)"}"#), None);
        let dom = Shape::new(
            Reading::Domain { typmod: NUMERIC_12_4, base: Box::new(Reading::Builtin(1700)) },
            NUMERIC_12_4,
            Kind::Numeric,
            true,
        );
        assert_eq!(lost(&dom, b"0.0625", &dom, b"0.06"), Some(LossKind::Rounded));
    }
}
