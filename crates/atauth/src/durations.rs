//! Durations on the command line: a number with a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `14d`);
//! a bare number means seconds.

use std::time::Duration;

/// Parses `90`, `90s`, `15m`, `2h`, `14d`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration like 90s, 15m, 2h or 14d"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?} in {s:?} (use s, m, h or d)")),
    };
    let secs = n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too long"))?;
    if secs == 0 {
        return Err("a duration must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Like [`parse_duration`], but `0` (with or without a unit) is allowed and means "off".
pub(crate) fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim().trim_end_matches(['s', 'm', 'h', 'd']) {
        "0" => Ok(Duration::ZERO),
        _ => parse_duration(s),
    }
}

/// Parses a rate limit `BURST/REFILL`, e.g. `10/1m`: a bucket of 10, one attempt earned back per
/// minute.
pub(crate) fn parse_rate(s: &str) -> Result<atauth_server::RateLimit, String> {
    let (burst, refill) =
        s.split_once('/').ok_or_else(|| format!("{s:?} is not BURST/DURATION, e.g. 10/1m"))?;
    let burst: u32 = burst.trim().parse().map_err(|_| format!("{burst:?} is not a number"))?;
    if burst == 0 {
        return Err("the burst must be at least 1".into());
    }
    Ok(atauth_server::RateLimit { burst, refill_every: parse_duration(refill)? })
}

/// `90s` → "1m30s"-style short text for messages.
pub(crate) fn display(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("0").is_err(), "lifetimes stay positive");
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(display(Duration::from_secs(300)), "5m");
        assert_eq!(display(Duration::from_secs(90)), "90s");
        let r = parse_rate("10/1m").unwrap();
        assert_eq!((r.burst, r.refill_every), (10, Duration::from_secs(60)));
        assert!(parse_rate("0/1m").is_err());
        assert!(parse_rate("10").is_err());
    }
}
