//! Human durations: `10ms`, `250us`, `1s`, `1.5ms`, `off` / `0`.
//!
//! Everything is kept in whole microseconds, the unit of the kernel's
//! `watchdog_us` sysctl. Errors are sentences for the user.

use std::time::Duration;

/// Shortest non-zero `dev.em.N.tunnel.watchdog_us` the agent accepts
/// (netmap_tun(4)).
pub const WATCHDOG_MIN_US: u64 = 1_000;
/// Longest `watchdog_us` the agent accepts (netmap_tun(4)).
pub const WATCHDOG_MAX_US: u64 = 10_000_000;

/// A watchdog period as the kernel stores it, in microseconds: 0 is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    /// The period in microseconds; 0 is off.
    pub us: u64,
}

/// Parses a duration. `Ok(None)` means "off" (`off` or a bare `0`).
///
/// # Errors
/// A message naming the problem: no unit, unknown unit, not a number, too
/// large, finer than a microsecond.
pub fn parse(text: &str) -> Result<Option<Duration>, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.eq_ignore_ascii_case("off") || s == "0" {
        return Ok(None);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("`{s}` has no unit; write e.g. `10ms`, `250us` or `1s` (or `off`)")
        })?;
    let (num, unit) = s.split_at(split);
    let unit_us: u64 = match unit {
        "us" | "µs" | "usec" => 1,
        "ms" | "msec" => 1_000,
        "s" | "sec" => 1_000_000,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}`; use us, ms or s (e.g. `10ms`)"
            ))
        }
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(format!("`{s}` is not a number followed by a unit"));
    }
    let bad = || format!("`{s}` is too large");
    let int_v: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut us = int_v.checked_mul(unit_us).ok_or_else(bad)?;
    if !frac.is_empty() {
        if frac.len() > 6 {
            return Err(format!("`{s}` is finer than a microsecond"));
        }
        let frac_v: u64 = frac.parse().map_err(|_| bad())?;
        // frac_v / 10^len units, in microseconds.
        let scaled = frac_v.checked_mul(unit_us).ok_or_else(bad)?;
        let denom = 10u64.pow(frac.len() as u32);
        if scaled % denom != 0 {
            return Err(format!("`{s}` is finer than a microsecond"));
        }
        us = us.checked_add(scaled / denom).ok_or_else(bad)?;
    }
    if us == 0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_micros(us)))
}

/// A watchdog period: `off`/`0`, or 1ms ..= 10s. A bare number is
/// microseconds, like the `watchdog_us` sysctl (`20000` = `20ms`).
///
/// # Errors
/// As [`parse`], and outside the agent's range.
pub fn parse_watchdog(text: &str) -> Result<Watchdog, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let us: u64 = t
            .parse()
            .map_err(|_| format!("watchdog `{t}` is too large"))?;
        check_watchdog_us(us)?;
        return Ok(Watchdog { us });
    }
    match parse(t)? {
        None => Ok(Watchdog { us: 0 }),
        Some(d) => {
            let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            check_watchdog_us(us)?;
            Ok(Watchdog { us })
        }
    }
}

/// Range check shared by the parser and by `run` (which reads the kernel value).
///
/// # Errors
/// When `us` is neither 0 nor within `WATCHDOG_MIN_US..=WATCHDOG_MAX_US`.
pub fn check_watchdog_us(us: u64) -> Result<(), String> {
    if us != 0 && us < WATCHDOG_MIN_US {
        return Err(format!(
            "watchdog {} is below the kernel minimum of {} (or use `off`)",
            format_us(us),
            format_us(WATCHDOG_MIN_US)
        ));
    }
    if us > WATCHDOG_MAX_US {
        return Err(format!(
            "watchdog {} is above the kernel maximum of {}",
            format_us(us),
            format_us(WATCHDOG_MAX_US)
        ));
    }
    Ok(())
}

/// A positive interval (for `watch --interval` and `--poll interval:D`);
/// `off` is refused.
///
/// # Errors
/// As [`parse`], and for zero or `off`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    match parse(text)? {
        None => Err(format!("interval `{}` must be positive", text.trim())),
        Some(d) => Ok(d),
    }
}

/// `0` -> "0", `250` -> "250us", `1500` -> "1.5ms", `2000000` -> "2s".
pub fn format_us(us: u64) -> String {
    fn trim(whole: u64, frac: u64, width: usize, unit: &str) -> String {
        if frac == 0 {
            return format!("{whole}{unit}");
        }
        let f = format!("{frac:0width$}");
        format!("{whole}.{}{unit}", f.trim_end_matches('0'))
    }
    match us {
        0 => "0".into(),
        1..=999 => format!("{us}us"),
        1_000..=999_999 => trim(us / 1_000, us % 1_000, 3, "ms"),
        _ => trim(us / 1_000_000, us % 1_000_000, 6, "s"),
    }
}

/// The watchdog as shown to users: 0 is "off".
pub fn format_watchdog(us: u64) -> String {
    if us == 0 {
        "off".into()
    } else {
        format_us(us)
    }
}

/// A `Duration` in the same notation.
pub fn format_duration(d: Duration) -> String {
    format_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> Option<u64> {
        parse(s).unwrap().map(|d| d.as_micros() as u64)
    }

    #[test]
    fn parses_units() {
        assert_eq!(us("10ms"), Some(10_000));
        assert_eq!(us("250us"), Some(250));
        assert_eq!(us("250µs"), Some(250));
        assert_eq!(us("1s"), Some(1_000_000));
        assert_eq!(us("1.5ms"), Some(1_500));
        assert_eq!(us("0.25s"), Some(250_000));
        assert_eq!(us(".5ms"), Some(500));
        assert_eq!(us(" 10ms "), Some(10_000));
    }

    #[test]
    fn off_and_zero() {
        assert_eq!(us("off"), None);
        assert_eq!(us("OFF"), None);
        assert_eq!(us("0"), None);
        assert_eq!(us("0ms"), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "10",
            "ms",
            "10m",
            "10 ms",
            "1.2.3ms",
            "-1ms",
            "1.0000001s",
            "0.5us",
            "10h",
            "x",
            "99999999999999999999s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(parse("10h").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn watchdog_range() {
        assert_eq!(parse_watchdog("10ms").unwrap().us, 10_000);
        assert_eq!(parse_watchdog("off").unwrap().us, 0);
        assert_eq!(parse_watchdog("1ms").unwrap().us, 1_000);
        assert_eq!(parse_watchdog("10s").unwrap().us, 10_000_000);
        let e = parse_watchdog("250us").unwrap_err();
        assert!(e.contains("below the kernel minimum of 1ms"), "{e}");
        // Bare numbers are microseconds, as in the sysctl.
        assert_eq!(parse_watchdog("20000").unwrap().us, 20_000);
        assert_eq!(parse_watchdog("0").unwrap().us, 0);
        assert!(parse_watchdog("999")
            .unwrap_err()
            .contains("below the kernel minimum"));
        assert!(parse_watchdog("99999999999999999999999").is_err());
        let e = parse_watchdog("11s").unwrap_err();
        assert!(e.contains("above the kernel maximum of 10s"), "{e}");
    }

    #[test]
    fn interval_must_be_positive() {
        assert_eq!(parse_interval("1s").unwrap(), Duration::from_secs(1));
        assert!(parse_interval("off").is_err());
        assert!(parse_interval("0").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_us(0), "0");
        assert_eq!(format_us(250), "250us");
        assert_eq!(format_us(1_000), "1ms");
        assert_eq!(format_us(1_500), "1.5ms");
        assert_eq!(format_us(10_000), "10ms");
        assert_eq!(format_us(1_000_000), "1s");
        assert_eq!(format_us(2_500_000), "2.5s");
        assert_eq!(format_us(1_000_001), "1.000001s");
        assert_eq!(format_watchdog(0), "off");
        assert_eq!(format_watchdog(10_000), "10ms");
        // round trip
        for v in [
            1u64, 999, 1_000, 1_234, 10_000, 999_999, 1_000_000, 7_654_321,
        ] {
            assert_eq!(us(&format_us(v)), Some(v));
        }
    }
}
