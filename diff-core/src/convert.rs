//! A column whose type differs between the sides is compared in the child's
//! type: the parent's value is converted the way the migration's cast would
//! have converted it (`numeric(12,4)` → `numeric(12,2)` rounds, `timestamp` →
//! `timestamptz` reads the wall clock in UTC, `numeric` → `float8` parses,
//! `char(n)` → `text` drops the padding), then printed values are compared as
//! for any column. The conversions are done here, on the received bytes, so a
//! value that would not convert (out of range) is a change, never an error, and
//! the parent's own value is still what the report shows.
//!
//! Pairs not handled here are compared by their text forms.

use std::cmp::Ordering;

use crate::value::{dscale, float, float_cmp, int, trim_spaces, uint, Kind};

const USECS_PER_DAY: i64 = 86_400_000_000;

/// How a parent value of one kind reads in the child's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    /// The parent's kind.
    pub from: Kind,
    /// The child's kind.
    pub to: Kind,
    /// The child's type modifier (numeric scale, time precision), -1 for none.
    pub typmod: i32,
}

/// A value in the domain where both sides of a conversion compare.
#[derive(Debug, Clone)]
enum Canon<'a> {
    Int(i64),
    Dec(Dec),
    Float(f64),
    Bytes(&'a [u8]),
    /// The cast would have failed: equal to nothing.
    Invalid,
}

impl Conversion {
    /// The conversion from `from` to `to`, or `None` when the pair is compared
    /// as text (both sides selected `::text`).
    pub fn new(from: Kind, to: Kind, typmod: i32) -> Option<Conversion> {
        use Kind::*;
        let ok = match to {
            Int4 | Int8 if from == Oid => true,
            Oid => from.is_int(),
            Int2 | Int4 | Int8 => from.is_int() || matches!(from, Numeric | Float4 | Float8),
            Numeric | Float4 | Float8 => from.is_int() || matches!(from, Numeric | Float4 | Float8),
            Timestamp | Timestamptz => matches!(from, Timestamp | Timestamptz | Date),
            Date => matches!(from, Timestamp | Timestamptz | Date),
            Time => from == Time,
            Text | BpChar => matches!(from, Text | BpChar),
            _ => false,
        };
        ok.then_some(Conversion { from, to, typmod })
    }

    /// Whether values need converting at all (else they compare as they are).
    pub fn needed(&self) -> bool {
        self.from != self.to
            || match self.to {
                Kind::Numeric => self.typmod >= 0,
                Kind::Time | Kind::Timestamp | Kind::Timestamptz => (0..6).contains(&self.typmod),
                _ => false,
            }
    }

    /// Whether it can convert keys: total and order-preserving, so the parent's
    /// key order stays an order of the converted keys (oid ↔ int4 wraps negative values).
    pub fn for_keys(&self) -> bool {
        use Kind::*;
        !matches!((self.from, self.to), (Float4 | Float8, Int2 | Int4 | Int8) | (Int8, Oid))
    }

    /// Whether distinct parent values stay distinct (no rounding, no lost
    /// precision). A key column whose conversion is not injective can only be
    /// the last of the key: ties it creates must not reorder the columns after it.
    pub fn injective(&self) -> bool {
        use Kind::*;
        match (self.from, self.to) {
            (a, b) if a.is_int() && b.is_int() => true,
            (Oid, Int8 | Int4) | (Int2 | Int4, Oid) | (Float4, Float8) => true,
            (Timestamp | Timestamptz | Date, Timestamp | Timestamptz) => !(0..6).contains(&self.typmod),
            (BpChar, Text | BpChar) => true,
            (Text, Text) => true,
            _ => false,
        }
    }

    /// Whether the parent's value equals the child's.
    pub fn equal(&self, parent: &[u8], child: &[u8]) -> bool {
        match (self.parent(parent), self.child(child)) {
            (Canon::Invalid, _) | (_, Canon::Invalid) => false,
            (a, b) => cmp(&a, &b) == Ordering::Equal,
        }
    }

    /// Order of two parent values once converted: the order the parent's rows
    /// arrive in when it sorts by [`Conversion::order_cast`] or the conversion keeps order.
    pub fn compare_parents(&self, a: &[u8], b: &[u8]) -> Ordering {
        cmp(&self.parent(a), &self.parent(b))
    }

    /// A cast the parent's query sorts a key column by, when the conversion
    /// does not keep the stored order (int4 → oid wraps negative values); the
    /// casts named here never fail.
    pub fn order_cast(&self) -> Option<&'static str> {
        use Kind::*;
        match (self.from, self.to) {
            (Int2 | Int4, Oid) => Some("int4::oid"),
            (Oid, Int4) => Some("int4"),
            _ => None,
        }
    }

    /// Order of the parent's converted value against the child's (never Invalid for key conversions).
    pub fn compare(&self, parent: &[u8], child: &[u8]) -> Ordering {
        cmp(&self.parent(parent), &self.child(child))
    }

    fn parent<'a>(&self, b: &'a [u8]) -> Canon<'a> {
        use Kind::*;
        let (from, to) = (self.from, self.to);
        match to {
            Oid if from == Int8 => match int(b) {
                v @ 0..=0xFFFF_FFFF => Canon::Int(v),
                v if v >= i32::MIN as i64 => Canon::Int(v as i32 as u32 as i64),
                _ => Canon::Invalid,
            },
            // int4 → oid is binary coercible: negative values wrap.
            Oid => Canon::Int(int(b) as i32 as u32 as i64),
            Int4 if from == Oid => Canon::Int(uint(b) as i32 as i64),
            Int8 if from == Oid => Canon::Int(uint(b) as i64),
            Int2 | Int4 | Int8 if from.is_int() => Canon::Int(int(b)),
            Int2 | Int4 | Int8 if from == Numeric => Canon::Dec(Dec::from_numeric(b).round(0)),
            Int2 | Int4 | Int8 => {
                let f = float(from, b).round_ties_even();
                if f.is_finite() && f.abs() < 9.2e18 {
                    Canon::Int(f as i64)
                } else {
                    Canon::Invalid
                }
            }
            Numeric => {
                let d = match from {
                    Numeric => Dec::from_numeric(b),
                    Float4 => Dec::from_float(float(from, b), 6),
                    Float8 => Dec::from_float(float(from, b), 15),
                    _ => Dec::from_int(int(b)),
                };
                Canon::Dec(match numeric_scale(self.typmod) {
                    Some(s) => d.round(s),
                    None => d,
                })
            }
            Float4 | Float8 => {
                let f = match from {
                    Numeric => Dec::from_numeric(b).to_f64(),
                    Float4 | Float8 => float(from, b),
                    _ => int(b) as f64,
                };
                Canon::Float(if to == Float4 { f as f32 as f64 } else { f })
            }
            Timestamp | Timestamptz => {
                let t = if from == Date { date_to_timestamp(int(b)) } else { int(b) };
                Canon::Int(round_time(t, self.typmod))
            }
            Date if from == Date => Canon::Int(int(b)),
            Date => Canon::Int(timestamp_to_date(int(b))),
            Time => Canon::Int(round_time(int(b), self.typmod)),
            _ if from == BpChar || to == BpChar => Canon::Bytes(trim_spaces(b)),
            _ => Canon::Bytes(b),
        }
    }

    fn child<'a>(&self, b: &'a [u8]) -> Canon<'a> {
        use Kind::*;
        match self.to {
            Int2 | Int4 | Int8 if self.from == Numeric => Canon::Dec(Dec::from_int(int(b))),
            Oid => Canon::Int(uint(b) as i64),
            Int2 | Int4 | Int8 | Timestamp | Timestamptz | Date | Time => Canon::Int(int(b)),
            Numeric => Canon::Dec(Dec::from_numeric(b)),
            Float4 | Float8 => Canon::Float(float(self.to, b)),
            BpChar => Canon::Bytes(trim_spaces(b)),
            _ => Canon::Bytes(b),
        }
    }
}

fn cmp(a: &Canon, b: &Canon) -> Ordering {
    match (a, b) {
        (Canon::Int(x), Canon::Int(y)) => x.cmp(y),
        (Canon::Dec(x), Canon::Dec(y)) => x.cmp(y),
        (Canon::Float(x), Canon::Float(y)) => float_cmp(*x, *y),
        (Canon::Bytes(x), Canon::Bytes(y)) => x.cmp(y),
        (Canon::Invalid, Canon::Invalid) => Ordering::Equal,
        (Canon::Invalid, _) => Ordering::Greater,
        _ => Ordering::Less,
    }
}

/// The scale a `numeric(p,s)` typmod rounds to (negative scales from PostgreSQL 15 on).
fn numeric_scale(typmod: i32) -> Option<i32> {
    (typmod >= 4).then(|| (((typmod - 4) & 0x7ff) ^ 1024) - 1024)
}

fn date_to_timestamp(days: i64) -> i64 {
    match days as i32 {
        i32::MAX => i64::MAX,
        i32::MIN => i64::MIN,
        d => d as i64 * USECS_PER_DAY,
    }
}

fn timestamp_to_date(usecs: i64) -> i64 {
    match usecs {
        i64::MAX => i32::MAX as i64,
        i64::MIN => i32::MIN as i64,
        t => t.div_euclid(USECS_PER_DAY),
    }
}

/// `AdjustTimestampForTypmod`: round to `precision` fractional digits, half away from zero.
fn round_time(t: i64, precision: i32) -> i64 {
    if !(0..6).contains(&precision) || t == i64::MAX || t == i64::MIN {
        return t;
    }
    let scale = 10i64.pow(6 - precision as u32);
    let half = scale / 2;
    if t >= 0 {
        (t + half) / scale * scale
    } else {
        -((-t + half) / scale * scale)
    }
}

/// An exact decimal with PostgreSQL's display scale: `digits × 10^exp`,
/// digits without leading or trailing zeros (empty for zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dec {
    /// 0 -Infinity, 1 negative, 2 zero, 3 positive, 4 +Infinity, 5 NaN: numeric's order of classes.
    class: u8,
    digits: Vec<u8>,
    exp: i32,
    dscale: i32,
}

impl Dec {
    fn special(class: u8) -> Dec {
        Dec { class, digits: vec![], exp: 0, dscale: 0 }
    }

    fn finite(neg: bool, digits: Vec<u8>, exp: i32, dscale: i32) -> Dec {
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else { return Dec { class: 2, digits: vec![], exp: 0, dscale } };
        let last = digits.iter().rposition(|&d| d != 0).unwrap_or(first);
        let exp = exp + (digits.len() - 1 - last) as i32;
        Dec { class: if neg { 1 } else { 3 }, digits: digits[first..=last].to_vec(), exp, dscale }
    }

    /// From numeric's binary send format.
    pub(crate) fn from_numeric(b: &[u8]) -> Dec {
        if b.len() < 8 {
            return Dec::special(5);
        }
        let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
        match u16::from_be_bytes([b[4], b[5]]) {
            0xC000 => return Dec::special(5),
            0xD000 => return Dec::special(4),
            0xF000 => return Dec::special(0),
            _ => {}
        }
        let neg = u16::from_be_bytes([b[4], b[5]]) == 0x4000;
        let groups: Vec<u16> = b[8..].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        let mut digits = Vec::with_capacity(groups.len() * 4);
        for g in &groups {
            digits.extend([(g / 1000) as u8, (g / 100 % 10) as u8, (g / 10 % 10) as u8, (g % 10) as u8]);
        }
        // The last group's units digit is worth 10000^(weight - n + 1).
        let exp = (weight - groups.len() as i32 + 1) * 4;
        Dec::finite(neg, digits, exp, dscale(b) as i32)
    }

    pub(crate) fn from_int(i: i64) -> Dec {
        let digits = i.unsigned_abs().to_string().bytes().map(|c| c - b'0').collect();
        Dec::finite(i < 0, digits, 0, 0)
    }

    /// `float8_numeric` / `float4_numeric`: the value printed with `sig`
    /// significant digits (`%.*g`), read back as numeric.
    pub(crate) fn from_float(f: f64, sig: usize) -> Dec {
        if f.is_nan() {
            return Dec::special(5);
        }
        if f.is_infinite() {
            return Dec::special(if f > 0.0 { 4 } else { 0 });
        }
        let s = format!("{:.*e}", sig - 1, f.abs());
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|c| c - b'0').collect();
        let exp = e - (digits.len() as i32 - 1);
        let d = Dec::finite(f < 0.0, digits, exp, 0);
        let dscale = (-d.exp).max(0);
        Dec { dscale, ..d }
    }

    /// `round(x, scale)` as numeric rounds: half away from zero; the result shows `scale` digits.
    pub(crate) fn round(self, scale: i32) -> Dec {
        if !matches!(self.class, 1..=3) {
            return self;
        }
        let dscale = scale.max(0);
        if self.exp >= -scale {
            return Dec { dscale, ..self };
        }
        // Keep the digits worth at least 10^-scale.
        let drop = (-scale - self.exp) as usize;
        let neg = self.class == 1;
        if drop > self.digits.len() {
            return Dec::finite(neg, vec![], 0, dscale);
        }
        let keep = self.digits.len() - drop;
        let mut kept = self.digits[..keep].to_vec();
        if self.digits[keep] >= 5 {
            let mut i = kept.len();
            loop {
                if i == 0 {
                    kept.insert(0, 1);
                    break;
                }
                i -= 1;
                if kept[i] == 9 {
                    kept[i] = 0;
                } else {
                    kept[i] += 1;
                    break;
                }
            }
        }
        Dec::finite(neg, kept, -scale, dscale)
    }

    /// The value as text a float parser reads with one rounding: `-1234e-2`, `NaN`, `inf`.
    fn float_text(&self) -> String {
        match self.class {
            0 => "-inf".into(),
            2 => "0".into(),
            4 => "inf".into(),
            5 => "NaN".into(),
            c => {
                let digits: String = self.digits.iter().map(|d| (b'0' + d) as char).collect();
                format!("{}{digits}e{}", if c == 1 { "-" } else { "" }, self.exp)
            }
        }
    }

    pub(crate) fn to_f64(&self) -> f64 {
        self.float_text().parse().unwrap_or(f64::NAN)
    }

    /// `trunc(x, scale)`: the digits worth less than 10^-scale dropped (toward zero).
    pub(crate) fn trunc(self, scale: i32) -> Dec {
        if !matches!(self.class, 1..=3) || self.exp >= -scale {
            return self;
        }
        let drop = (-scale - self.exp) as usize;
        let keep = self.digits.len().saturating_sub(drop);
        Dec::finite(self.class == 1, self.digits[..keep].to_vec(), -scale, scale.max(0))
    }

    /// A number in PostgreSQL's text form (`-12.50`, `1.5e-07`, `NaN`, `Infinity`).
    pub(crate) fn parse(s: &str) -> Option<Dec> {
        let s = s.trim();
        match s {
            "NaN" => return Some(Dec::special(5)),
            "Infinity" | "+Infinity" => return Some(Dec::special(4)),
            "-Infinity" => return Some(Dec::special(0)),
            _ => {}
        }
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (mantissa, e) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac.is_empty() {
            return None;
        }
        let digits: Vec<u8> = int_part.bytes().chain(frac.bytes()).map(|c| c.wrapping_sub(b'0')).collect();
        if digits.iter().any(|&d| d > 9) {
            return None;
        }
        let exp = e - frac.len() as i32;
        Some(Dec::finite(neg, digits, exp, (-exp).max(0)))
    }

    /// The shortest decimal that reads back as `f` (what PostgreSQL prints
    /// with `extra_float_digits` > 0); `single` for a float4.
    pub(crate) fn shortest(f: f64, single: bool) -> Dec {
        let text = if single { format!("{:e}", f as f32) } else { format!("{f:e}") };
        match f {
            f if f.is_nan() => Dec::special(5),
            f if f.is_infinite() => Dec::special(if f > 0.0 { 4 } else { 0 }),
            _ => Dec::parse(&text).unwrap_or(Dec::special(5)),
        }
    }

    /// Exponent of the last significant digit (`1.25` → -2, `1200` → 2); `None` for zero and specials.
    pub(crate) fn last_digit(&self) -> Option<i32> {
        matches!(self.class, 1 | 3).then_some(self.exp)
    }

    /// As `float4`: the decimal read with one rounding (numeric → float4 parses its text).
    pub(crate) fn to_f32(&self) -> f32 {
        self.float_text().parse().unwrap_or(f32::NAN)
    }

    /// Equal as numbers, whatever their display scales.
    pub(crate) fn same_value(&self, other: &Dec) -> bool {
        self.class == other.class && self.digits == other.digits && (self.digits.is_empty() || self.exp == other.exp)
    }

    /// Magnitude order of two finite non-zero values.
    fn magnitude(&self, other: &Dec) -> Ordering {
        let top = |d: &Dec| d.exp + d.digits.len() as i32;
        top(self).cmp(&top(other)).then_with(|| self.digits.cmp(&other.digits))
    }
}

impl Ord for Dec {
    /// numeric's order, then display scale (as [`crate::value::compare`] orders numerics).
    fn cmp(&self, other: &Dec) -> Ordering {
        let by_value = match (self.class, other.class) {
            (a, b) if a != b => a.cmp(&b),
            (3, 3) => self.magnitude(other),
            (1, 1) => other.magnitude(self),
            _ => Ordering::Equal,
        };
        by_value.then_with(|| self.dscale.cmp(&other.dscale))
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Dec) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(s: &str) -> Vec<u8> {
        // Build the binary form from text: sign, digits, scale.
        let neg = s.starts_with('-');
        let s = s.trim_start_matches('-');
        let (int_part, frac) = s.split_once('.').unwrap_or((s, ""));
        let dscale = frac.len() as u16;
        // Pad to whole base-10000 groups around the decimal point.
        let ipad = (4 - int_part.len() % 4) % 4;
        let fpad = (4 - frac.len() % 4) % 4;
        let all = format!("{}{int_part}{frac}{}", "0".repeat(ipad), "0".repeat(fpad));
        let mut groups: Vec<u16> =
            all.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap().parse().unwrap()).collect();
        let mut weight = ((int_part.len() + ipad) / 4) as i16 - 1;
        // PostgreSQL sends no leading or trailing zero groups (zero has none at all).
        while groups.first() == Some(&0) {
            groups.remove(0);
            weight -= 1;
        }
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        let mut v = vec![];
        v.extend((groups.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend((if neg { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for g in groups {
            v.extend(g.to_be_bytes());
        }
        v
    }

    fn conv(from: Kind, to: Kind, typmod: i32) -> Conversion {
        Conversion::new(from, to, typmod).unwrap()
    }

    #[test]
    fn numeric_typmod_rounds_like_the_cast() {
        // numeric(12,2): typmod = (12 << 16 | 2) + 4.
        let c = conv(Kind::Numeric, Kind::Numeric, (12 << 16 | 2) + 4);
        assert!(c.equal(&numeric("24.6900"), &numeric("24.69")));
        assert!(c.equal(&numeric("2.4650"), &numeric("2.47")));
        assert!(c.equal(&numeric("-2.4650"), &numeric("-2.47")));
        assert!(c.equal(&numeric("9.9990"), &numeric("10.00")));
        assert!(!c.equal(&numeric("2.4690"), &numeric("2.46")));
        assert!(!c.equal(&numeric("24.69"), &numeric("24.6900")));
        assert!(c.equal(&numeric("0.0040"), &numeric("0.00")));
        assert_eq!(Dec::from_numeric(&numeric("0.0050")).round(2), Dec::finite(false, vec![1], -2, 2));
    }

    #[test]
    fn numbers_across_types() {
        let to_float = conv(Kind::Numeric, Kind::Float8, -1);
        assert!(to_float.equal(&numeric("1.10"), &1.1f64.to_be_bytes()));
        assert!(!to_float.equal(&numeric("1.10"), &1.2f64.to_be_bytes()));
        let from_float = conv(Kind::Float8, Kind::Numeric, -1);
        assert!(from_float.equal(&0.1f64.to_be_bytes(), &numeric("0.1")));
        assert!(!from_float.equal(&0.1f64.to_be_bytes(), &numeric("0.10")));
        let int_to_num = conv(Kind::Int4, Kind::Numeric, (10 << 16 | 2) + 4);
        assert!(int_to_num.equal(&42i32.to_be_bytes(), &numeric("42.00")));
        let num_to_int = conv(Kind::Numeric, Kind::Int8, -1);
        assert!(num_to_int.equal(&numeric("2.5"), &3i64.to_be_bytes()));
        assert!(num_to_int.equal(&numeric("-2.5"), &(-3i64).to_be_bytes()));
        let float_to_int = conv(Kind::Float8, Kind::Int4, -1);
        assert!(float_to_int.equal(&2.5f64.to_be_bytes(), &2i32.to_be_bytes()));
        assert!(!float_to_int.equal(&1e30f64.to_be_bytes(), &i32::MAX.to_be_bytes()));
        let widen = conv(Kind::Int4, Kind::Int8, -1);
        assert_eq!(widen.compare(&5i32.to_be_bytes(), &7i64.to_be_bytes()), Ordering::Less);
    }

    #[test]
    fn times_and_text() {
        let ts = conv(Kind::Timestamp, Kind::Timestamptz, -1);
        assert!(ts.equal(&1_000i64.to_be_bytes(), &1_000i64.to_be_bytes()));
        let secs = conv(Kind::Timestamp, Kind::Timestamp, 0);
        assert!(secs.equal(&1_500_000i64.to_be_bytes(), &2_000_000i64.to_be_bytes()));
        let date = conv(Kind::Date, Kind::Timestamp, -1);
        assert!(date.equal(&1i32.to_be_bytes(), &USECS_PER_DAY.to_be_bytes()));
        let to_oid = conv(Kind::Int4, Kind::Oid, -1);
        assert!(to_oid.equal(&(-75989i32).to_be_bytes(), &4294891307u32.to_be_bytes()));
        let from_oid = conv(Kind::Oid, Kind::Int8, -1);
        assert!(from_oid.equal(&3_000_000_000u32.to_be_bytes(), &3_000_000_000i64.to_be_bytes()));
        let unpad = conv(Kind::BpChar, Kind::Text, -1);
        assert!(unpad.equal(b"ab  ", b"ab"));
        assert!(!unpad.equal(b"ab  ", b"ab "));
        assert!(Conversion::new(Kind::Uuid, Kind::Text, -1).is_none());
    }

    mod properties {
        use super::super::*;
        use crate::value::{compare, equal};
        use proptest::prelude::*;

        /// A numeric's binary form from an integer mantissa and a scale: mantissa × 10^-scale.
        fn numeric_of(mantissa: i64, scale: u32) -> Vec<u8> {
            let digits = mantissa.unsigned_abs().to_string();
            let s = scale as usize;
            let padded = format!("{}{digits}", "0".repeat((s + 1).saturating_sub(digits.len())));
            let (int_part, frac) = padded.split_at(padded.len() - s);
            let text =
                format!("{}{int_part}{}{frac}", if mantissa < 0 { "-" } else { "" }, if s > 0 { "." } else { "" });
            super::numeric(&text)
        }

        /// round(m × 10^-from, to) by integer arithmetic, half away from zero, as a mantissa at scale `to`.
        fn round_ref(m: i64, from: u32, to: u32) -> i128 {
            if to >= from {
                return m as i128 * 10i128.pow(to - from);
            }
            let div = 10i128.pow(from - to);
            let (q, r) = ((m as i128) / div, (m as i128) % div);
            if r.abs() * 2 >= div {
                q + r.signum()
            } else {
                q
            }
        }

        proptest! {
            #[test]
            fn numeric_order_agrees_with_its_equality(a in any::<i64>(), sa in 0u32..8, b in any::<i64>(), sb in 0u32..8) {
                let (x, y) = (numeric_of(a, sa), numeric_of(b, sb));
                let ord = compare(Kind::Numeric, &x, &y);
                prop_assert_eq!(ord == Ordering::Equal, equal(Kind::Numeric, &x, &y));
                prop_assert_eq!(ord, compare(Kind::Numeric, &y, &x).reverse());
                // Two implementations of numeric order: value.rs on base-10000 digits, Dec on decimal digits.
                prop_assert_eq!(ord, Dec::from_numeric(&x).cmp(&Dec::from_numeric(&y)));
                // By value: a × 10^-sa against b × 10^-sb, then by scale.
                let scale = sa.max(sb);
                let (va, vb) = (a as i128 * 10i128.pow(scale - sa), b as i128 * 10i128.pow(scale - sb));
                prop_assert_eq!(ord, va.cmp(&vb).then(sa.cmp(&sb)));
            }

            #[test]
            fn numeric_typmod_conversion_is_the_cast(m in any::<i32>(), from in 0u32..7, to in 0u32..5) {
                let cv = Conversion::new(Kind::Numeric, Kind::Numeric, ((38 << 16) | to as i32) + 4).unwrap();
                let parent = numeric_of(m as i64, from);
                let rounded = round_ref(m as i64, from, to);
                let child = numeric_of(rounded as i64, to);
                prop_assert!(cv.equal(&parent, &child));
                let other = numeric_of(rounded as i64 + 1, to);
                prop_assert!(!cv.equal(&parent, &other));
                prop_assert_eq!(cv.compare(&parent, &other), Ordering::Less);
            }

            #[test]
            fn float_order_agrees_with_its_equality(a in any::<f64>(), b in any::<f64>(), pick in 0usize..6) {
                let specials = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, a];
                let (x, y) = (specials[pick].to_be_bytes(), b.to_be_bytes());
                let ord = compare(Kind::Float8, &x, &y);
                prop_assert_eq!(ord == Ordering::Equal, equal(Kind::Float8, &x, &y));
                prop_assert_eq!(ord, compare(Kind::Float8, &y, &x).reverse());
                // Printed the same ⇔ equal (Rust prints -0 as "-0" and every NaN as "NaN", like PostgreSQL).
                let (fx, fy) = (specials[pick], b);
                prop_assert_eq!(format!("{fx:?}") == format!("{fy:?}"), equal(Kind::Float8, &x, &y));
            }

            #[test]
            fn numbers_to_floats_parse_like_strtod(m in any::<i64>(), s in 0u32..10) {
                let cv = Conversion::new(Kind::Numeric, Kind::Float8, -1).unwrap();
                let text = {
                    let d = numeric_of(m, s);
                    crate::value::numeric_text(&d)
                };
                let f: f64 = text.parse().unwrap();
                prop_assert!(cv.equal(&numeric_of(m, s), &f.to_be_bytes()));
            }
        }
    }
}
