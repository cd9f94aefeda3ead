//! PostgreSQL's text forms, as the snapshot's pinned session prints them
//! (DateStyle ISO, IntervalStyle postgres, TimeZone UTC), read back into the
//! numbers Arrow stores. Every function returns `None` for a text it cannot
//! represent exactly (`infinity`, a date beyond the type's range, a numeric
//! with other digits than the column's scale): the caller keeps that text.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant); year 0 is 1 BC.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits_u64(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// `YYYY-MM-DD` (a year of 4 or more digits) → days since 1970-01-01, with `bc`.
fn ymd(s: &str, bc: bool) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let (y, m, d) = (digits_u64(y)? as i64, digits_u64(m)? as u32, digits_u64(d)? as u32);
    if !(1..=12).contains(&m) || d == 0 || y == 0 {
        return None;
    }
    let y = if bc { 1 - y } else { y };
    (d <= days_in_month(y, m)).then(|| days_from_civil(y, m, d))
}

fn strip_bc(s: &str) -> (&str, bool) {
    match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

/// A `date` → days since the Unix epoch (Arrow Date32).
pub fn date(s: &str) -> Option<i32> {
    let (s, bc) = strip_bc(s);
    i32::try_from(ymd(s, bc)?).ok()
}

/// `HH:MM:SS[.ffffff]` → microseconds; hours may exceed 24 (intervals).
fn clock(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, ':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    if frac.len() > 6 || (!frac.is_empty() && digits_u64(frac).is_none()) {
        return None;
    }
    let (h, m, whole) = (digits_u64(h)? as i64, digits_u64(m)? as i64, digits_u64(whole)? as i64);
    if m > 59 || whole > 60 {
        return None;
    }
    let micros = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse::<i64>().ok()? };
    h.checked_mul(3_600_000_000)?.checked_add(m * 60_000_000 + whole * 1_000_000 + micros)
}

/// A `time` → microseconds since midnight (Arrow Time64(µs) holds less than 24 hours).
pub fn time(s: &str) -> Option<i64> {
    clock(s).filter(|&us| us < 86_400_000_000)
}

/// A `timestamp` (or `timestamptz` with `tz`, whose offset is applied) →
/// microseconds since the Unix epoch.
pub fn timestamp(s: &str, tz: bool) -> Option<i64> {
    let (s, bc) = strip_bc(s);
    let (day, rest) = s.split_once(' ')?;
    let days = ymd(day, bc)?;
    let (clock_text, offset) = if tz {
        let at = rest.rfind(['+', '-'])?;
        (&rest[..at], offset_seconds(&rest[at..])?)
    } else {
        (rest, 0)
    };
    let t = clock(clock_text).filter(|&us| us < 86_400_000_000)?;
    days.checked_mul(86_400_000_000)?.checked_add(t)?.checked_sub(offset.checked_mul(1_000_000)?)
}

/// `+HH[:MM[:SS]]` → seconds east of UTC.
fn offset_seconds(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let mut total = 0;
    for (i, part) in rest.split(':').enumerate() {
        if i > 2 || part.len() != 2 {
            return None;
        }
        total += digits_u64(part)? as i64 * [3600, 60, 1][i];
    }
    Some(sign * total)
}

/// An `interval` in IntervalStyle postgres (`1 year 2 mons -3 days +04:05:06.5`)
/// → (months, days, nanoseconds).
pub fn interval(s: &str) -> Option<(i32, i32, i64)> {
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    let mut words = s.split(' ').peekable();
    while let Some(w) = words.next() {
        if w.contains(':') {
            let (neg, t) = match w.as_bytes().first()? {
                b'-' => (true, &w[1..]),
                b'+' => (false, &w[1..]),
                _ => (false, w),
            };
            let us = clock(t)?;
            micros = micros.checked_add(if neg { -us } else { us })?;
            continue;
        }
        let n: i64 = w.parse().ok()?;
        let unit = words.next()?;
        match unit.trim_end_matches('s') {
            "year" => months = months.checked_add(n.checked_mul(12)?)?,
            "mon" => months = months.checked_add(n)?,
            "day" => days = days.checked_add(n)?,
            _ => return None,
        }
    }
    Some((i32::try_from(months).ok()?, i32::try_from(days).ok()?, micros.checked_mul(1000)?))
}

/// A `uuid` in its canonical text form → its 16 bytes.
pub fn uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 || s.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// `\x0102` (bytea_output hex) → bytes.
pub fn bytea(s: &str) -> Option<Vec<u8>> {
    let hex = s.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// A `numeric` → the unscaled integer of a `Decimal128(precision, scale)`, only
/// when the text has exactly `scale` fractional digits (a negative scale: that
/// many trailing zeros) and at most `precision` digits: anything else would
/// print differently.
pub fn decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = if scale >= 0 {
        if frac.len() != scale as usize {
            return None;
        }
        format!("{int}{frac}")
    } else {
        let cut = (-scale) as usize;
        if !frac.is_empty() || int.len() < cut || !int[int.len() - cut..].bytes().all(|b| b == b'0') {
            return if int == "0" && frac.is_empty() { Some(0) } else { None };
        }
        int[..int.len() - cut].to_string()
    };
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > precision as usize {
        return None;
    }
    let v: i128 = if trimmed.is_empty() { 0 } else { trimmed.parse().ok()? };
    Some(if neg { -v } else { v })
}

/// A one-dimensional array's text form (`{1,NULL,"a b"}`) → its elements
/// (`None` for NULL). `None` for anything else: a multi-dimensional array, one
/// with explicit bounds (`[0:1]={…}`), or malformed text.
pub fn array(s: &str) -> Option<Vec<Option<String>>> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Some(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut elem = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => elem.push(chars.next()?),
                    c => elem.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '{' | '}' | '"' => return None,
                    '\\' => {
                        chars.next();
                        elem.push(chars.next()?);
                    }
                    _ => {
                        elem.push(c);
                        chars.next();
                    }
                }
            }
        }
        let null = !quoted && elem.eq_ignore_ascii_case("NULL");
        out.push((!null).then_some(elem));
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-01"), Some(0));
        assert_eq!(date("2000-01-01"), Some(10_957));
        assert_eq!(date("1969-12-31"), Some(-1));
        // 1 BC is year 0, a leap year: 0000-12-31 is the day before 0001-01-01 (-719162).
        assert_eq!(date("0001-12-31 BC"), Some(-719_163));
        assert_eq!(date("infinity"), None);
        assert_eq!(date("2023-02-29"), None);
        // PostgreSQL's last date is Julian day 2147483493; the Unix epoch is Julian day 2440588.
        assert_eq!(date("5874897-12-31"), Some(2_147_483_493 - 2_440_588));
    }

    #[test]
    fn times_and_timestamps() {
        assert_eq!(time("00:00:00"), Some(0));
        assert_eq!(time("23:59:59.999999"), Some(86_399_999_999));
        assert_eq!(time("12:00:00.5"), Some(43_200_500_000));
        assert_eq!(time("24:00:00"), None);
        assert_eq!(timestamp("1970-01-02 00:00:01", false), Some(86_401_000_000));
        assert_eq!(timestamp("1970-01-01 01:00:00+01", true), Some(0));
        assert_eq!(timestamp("1970-01-01 00:00:00-05:30", true), Some(19_800_000_000));
        assert_eq!(timestamp("2024-06-01 12:00:00+00", true), Some(1_717_243_200_000_000));
        assert_eq!(timestamp("infinity", false), None);
        // Beyond ±292,277 years from 1970, microseconds overflow 64 bits.
        assert_eq!(timestamp("294276-12-31 23:59:59", false), None);
        assert_eq!(timestamp("0044-03-15 12:00:00 BC", false), Some(-63_517_780_800_000_000));
    }

    #[test]
    fn intervals() {
        let day = 86_400_000_000_000i64;
        assert_eq!(interval("00:00:00"), Some((0, 0, 0)));
        assert_eq!(interval("1 year 2 mons 3 days 04:05:06.5"), Some((14, 3, 14_706_500_000_000)));
        assert_eq!(interval("-1 years -2 mons +3 days -00:00:01"), Some((-14, 3, -1_000_000_000)));
        assert_eq!(interval("1 mon -1 days"), Some((1, -1, 0)));
        assert_eq!(interval("100 days"), Some((0, 100, 0)));
        assert_eq!(interval("48:00:00"), Some((0, 0, 2 * day)));
        assert_eq!(interval("infinity"), None);
        // 2562047788 hours fit PostgreSQL's microseconds, not Arrow's nanoseconds.
        assert_eq!(interval("2562047788:00:00"), None);
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal("9.90", 12, 2), Some(990));
        assert_eq!(decimal("-0.05", 12, 2), Some(-5));
        assert_eq!(decimal("9.9", 12, 2), None);
        assert_eq!(decimal("9.900", 12, 2), None);
        assert_eq!(decimal("NaN", 12, 2), None);
        assert_eq!(decimal("123", 3, 0), Some(123));
        assert_eq!(decimal("1234", 3, 0), None);
        assert_eq!(decimal("12300", 3, -2), Some(123));
        assert_eq!(decimal("12345", 5, -2), None);
        assert_eq!(decimal("99999999999999999999999999999999999999", 38, 0), Some(10i128.pow(38) - 1));
    }

    #[test]
    fn arrays() {
        let s = |v: &[Option<&str>]| v.iter().map(|e| e.map(String::from)).collect::<Vec<_>>();
        assert_eq!(array("{}"), Some(vec![]));
        assert_eq!(array("{1,NULL,3}"), Some(s(&[Some("1"), None, Some("3")])));
        assert_eq!(
            array(r#"{"a b","NULL","q\"t","\\x01",""}"#),
            Some(s(&[Some("a b"), Some("NULL"), Some("q\"t"), Some("\\x01"), Some("")]))
        );
        assert_eq!(array("{{1,2},{3,4}}"), None);
        assert_eq!(array("[0:1]={1,2}"), None);
    }

    #[test]
    fn uuids_and_bytes() {
        let u = uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(u[0], 0xa0);
        assert_eq!(u[15], 0x11);
        assert_eq!(uuid("a0eebc999c0b4ef8bb6d6bb9bd380a11"), None);
        assert_eq!(bytea("\\x00ff"), Some(vec![0, 255]));
        assert_eq!(bytea("\\x0"), None);
    }
}
