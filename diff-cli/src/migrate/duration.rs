//! Durations as people write them on a command line.

use std::time::Duration;

use anyhow::{bail, Result};

/// Parses `120s`, `2m`, `500ms`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = match num.parse() {
        Ok(v) if num.chars().next().is_some_and(|c| c.is_ascii_digit()) => v,
        _ => bail!("duration \"{s}\": expected a number with a unit, like 120s, 2m, 500ms or 1h"),
    };
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" | "hour" | "hours" => value * 3600.0,
        other => bail!("duration \"{s}\": unknown unit \"{other}\" (use ms, s, m or h)"),
    };
    if !secs.is_finite() || secs > 1e9 {
        bail!("duration \"{s}\" is too long");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("120s").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        for bad in ["", "s", "-1s", "2 weeks", "1d", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
