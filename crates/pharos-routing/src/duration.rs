//! Durations as Prometheus writes them (`model.ParseDuration` of prometheus/common, which
//! Alertmanager 0.25 uses): `30s`, `5m`, `4h`, `1d`, `1w`, `1y`, `100ms`, combinations in
//! decreasing unit order (`1h30m`), and `0`. No fractions, no negative values.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::error::{ConfigError, Result};

static DURATION_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        "^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$",
    )
    .ok()
});

/// Milliseconds in each unit, in the order of the capture groups above.
const UNITS_MS: [(usize, u128); 7] = [
    (2, 365 * 24 * 3_600_000),
    (4, 7 * 24 * 3_600_000),
    (6, 24 * 3_600_000),
    (8, 3_600_000),
    (10, 60_000),
    (12, 1_000),
    (14, 1),
];

/// The largest duration Go's `time.Duration` holds, in milliseconds.
const MAX_MS: u128 = (i64::MAX as u128) / 1_000_000;

/// Parses a Prometheus duration, with prometheus/common's error words.
pub fn parse_duration(text: &str) -> Result<Duration> {
    match text {
        "0" => return Ok(Duration::ZERO),
        "" => return Err(ConfigError::invalid("empty duration string")),
        _ => {}
    }
    let invalid = || ConfigError::invalid(format!("not a valid duration string: {text:?}"));
    let grammar = DURATION_RE.as_ref().ok_or_else(invalid)?;
    let captures = grammar.captures(text).ok_or_else(invalid)?;
    let mut total_ms: u128 = 0;
    for (group, unit_ms) in UNITS_MS {
        if let Some(digits) = captures.get(group) {
            let count: u128 = digits
                .as_str()
                .parse()
                .map_err(|_| ConfigError::invalid("duration out of range"))?;
            total_ms = count
                .checked_mul(unit_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .filter(|ms| *ms <= MAX_MS)
                .ok_or_else(|| ConfigError::invalid("duration out of range"))?;
        }
    }
    let millis =
        u64::try_from(total_ms).map_err(|_| ConfigError::invalid("duration out of range"))?;
    Ok(Duration::from_millis(millis))
}

/// Formats a duration as `model.Duration.String()` does: `5m`, `4h`, `1d`, `1h30m`, `0s`
/// (years and weeks only when exact).
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let units: [(&str, u128, bool); 7] = [
        ("y", 365 * 24 * 3_600_000, true),
        ("w", 7 * 24 * 3_600_000, true),
        ("d", 24 * 3_600_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1_000, false),
        ("ms", 1, false),
    ];
    for (unit, unit_ms, exact) in units {
        if exact && !ms.is_multiple_of(unit_ms) {
            continue;
        }
        let count = ms / unit_ms;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            ms -= count * unit_ms;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<Duration> {
        parse_duration(text).ok()
    }

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parsed("0"), Some(Duration::ZERO));
        assert_eq!(parsed("0s"), Some(Duration::ZERO));
        assert_eq!(parsed("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parsed("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parsed("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parsed("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parsed("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parsed("1w"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parsed("1y"), Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(parsed("01m"), Some(Duration::from_secs(60)));
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for text in ["", "1.5m", "-1m", "1m1h", "5", "1 m", "1M", "300y"] {
            assert!(parse_duration(text).is_err(), "{text} should be refused");
        }
        assert_eq!(
            parse_duration("1.5m")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("not a valid duration string: \"1.5m\"")
        );
    }

    #[test]
    fn formats_like_model_duration() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(4 * 3600)), "4h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86_400)), "2w");
    }
}
