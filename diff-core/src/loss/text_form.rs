//! PostgreSQL's text forms, read back into parts: array and record literals
//! (so that values lost inside arrays and composites are found element by
//! element), and the date/time and interval outputs of the pinned session
//! settings (DateStyle ISO, IntervalStyle postgres, TimeZone UTC).

/// Microseconds in a day.
pub(crate) const DAY: i64 = 86_400_000_000;

/// The elements of an array literal, flattened, with its shape (the length
/// of every sub-array, outermost first): `{{1,2},{3,NULL}}` → `[1, 2, 3, NULL]`.
pub(crate) struct ArrayParts {
    pub elements: Vec<Option<String>>,
    pub shape: Vec<usize>,
}

/// Reads `{a,"b c",NULL,{…}}`, with or without a `[1:2]=` bounds prefix.
pub(crate) fn array(s: &str) -> Option<ArrayParts> {
    let body = match s.find('=') {
        Some(i) if s.starts_with('[') => &s[i + 1..],
        _ => s,
    };
    let mut parts = ArrayParts { elements: vec![], shape: vec![] };
    let mut chars = body.chars().peekable();
    if chars.next() != Some('{') {
        return None;
    }
    read_level(&mut chars, &mut parts)?;
    Some(parts)
}

/// Reads one level after its `{`; the shape records the length of each sub-array in order.
fn read_level(chars: &mut std::iter::Peekable<std::str::Chars>, parts: &mut ArrayParts) -> Option<()> {
    let mut count = 0;
    loop {
        match chars.peek()? {
            '}' => {
                chars.next();
                parts.shape.push(count);
                return Some(());
            }
            '{' => {
                chars.next();
                read_level(chars, parts)?;
            }
            _ => parts.elements.push(element(chars)?),
        }
        count += 1;
        match chars.next()? {
            ',' => {}
            '}' => {
                parts.shape.push(count);
                return Some(());
            }
            _ => return None,
        }
    }
}

/// One element up to (not including) its `,` or `}`; unquoted `NULL` is NULL.
fn element(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<Option<String>> {
    let mut out = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        loop {
            match chars.next()? {
                '\\' => out.push(chars.next()?),
                '"' => return Some(Some(out)),
                c => out.push(c),
            }
        }
    }
    while let Some(&c) = chars.peek() {
        if c == ',' || c == '}' {
            break;
        }
        out.push(c);
        chars.next();
    }
    Some(if out == "NULL" { None } else { Some(out) })
}

/// The fields of a record literal `(1,"a b",,)`: an empty unquoted field is NULL.
pub(crate) fn record(s: &str) -> Option<Vec<Option<String>>> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    let mut fields = vec![];
    let (mut cur, mut quoted_any, mut in_quotes) = (String::new(), false, false);
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                in_quotes = !in_quotes;
                quoted_any = true;
            }
            '\\' if in_quotes => cur.push(chars.next()?),
            ',' if !in_quotes => {
                fields.push((quoted_any || !cur.is_empty()).then(|| std::mem::take(&mut cur)));
                quoted_any = false;
            }
            c => cur.push(c),
        }
    }
    fields.push((quoted_any || !cur.is_empty()).then_some(cur));
    Some(fields)
}

/// Days since 2000-01-01 of a proleptic Gregorian date (PostgreSQL's epoch).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - 10_957
}

/// `2024-01-31` (ISO, ` BC` for years before 1): days since 2000-01-01.
pub(crate) fn date(s: &str) -> Option<i64> {
    match s {
        "infinity" => return Some(i64::MAX / DAY),
        "-infinity" => return Some(i64::MIN / DAY),
        _ => {}
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    Some(days_from_civil(if bc { 1 - y } else { y }, m, d))
}

/// `10:11:12.5` → microseconds since midnight.
pub(crate) fn time(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, ':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec = it.next().unwrap_or("0");
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let whole: i64 = whole.parse().ok()?;
    let mut usecs: i64 = 0;
    for (i, c) in frac.chars().take(6).enumerate() {
        usecs += c.to_digit(10)? as i64 * 10i64.pow(5 - i as u32);
    }
    Some(((h * 60 + m) * 60 + whole) * 1_000_000 + usecs)
}

/// A timestamp (`2024-01-31 10:11:12.5`, with `+00` for timestamptz in UTC):
/// microseconds since 2000-01-01; infinities are the extreme values.
pub(crate) fn timestamp(s: &str) -> Option<i64> {
    match s {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, " BC"),
        None => (s, ""),
    };
    let (d, t) = s.split_once(' ').unwrap_or((s, "00:00:00"));
    // The zone offset of timestamptz output: UTC is pinned, so it is +00.
    let t = t.split(['+', '-']).next().unwrap_or(t);
    Some(date(&format!("{d}{bc}"))? * DAY + time(t)?)
}

/// An interval in IntervalStyle `postgres`: `1 year 2 mons -3 days +04:05:06.5`
/// → (months, days, microseconds).
pub(crate) fn interval(s: &str) -> Option<(i64, i64, i64)> {
    let (mut months, mut days, mut usecs) = (0i64, 0i64, 0i64);
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        if w.contains(':') {
            let (neg, t) = match w.strip_prefix('-') {
                Some(t) => (true, t),
                None => (false, w.strip_prefix('+').unwrap_or(w)),
            };
            let v = time(t)?;
            usecs += if neg { -v } else { v };
            continue;
        }
        let n: i64 = w.parse().ok()?;
        match words.next()?.trim_end_matches('s') {
            "year" => months += 12 * n,
            "mon" => months += n,
            "day" => days += n,
            _ => return None,
        }
    }
    Some((months, days, usecs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays() {
        let a = array(r#"{1,"b c",NULL,"NULL","x\"y"}"#).unwrap();
        assert_eq!(
            a.elements,
            vec![Some("1".into()), Some("b c".into()), None, Some("NULL".into()), Some("x\"y".into())]
        );
        assert_eq!(a.shape, vec![5]);
        let b = array("[0:1]={{1,2},{3,4}}").unwrap();
        assert_eq!(b.elements.len(), 4);
        assert_eq!(b.shape, vec![2, 2, 2]);
        assert_eq!(array("{}").unwrap().elements.len(), 0);
        assert!(array("(1,2)").is_none());
    }

    #[test]
    fn records() {
        assert_eq!(
            record(r#"(1,"a ""b""",,"")"#).unwrap(),
            vec![Some("1".into()), Some("a \"b\"".into()), None, Some(String::new())]
        );
        assert_eq!(record("()").unwrap(), vec![None]);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date("2000-01-01"), Some(0));
        assert_eq!(date("2000-03-01"), Some(60));
        assert_eq!(date("1999-12-31"), Some(-1));
        assert_eq!(date("0001-01-01 BC"), Some(days_from_civil(0, 1, 1)));
        assert_eq!(time("10:00:00.5"), Some(36_000_500_000));
        assert_eq!(timestamp("2000-01-02 00:00:01+00"), Some(DAY + 1_000_000));
        assert_eq!(timestamp("1999-12-31 23:59:59.999999"), Some(-1));
        assert_eq!(interval("1 year 2 mons -3 days +04:05:06.5"), Some((14, -3, 14_706_500_000)));
        assert_eq!(interval("-00:00:01"), Some((0, 0, -1_000_000)));
        assert_eq!(interval("00:00:00"), Some((0, 0, 0)));
    }
}
