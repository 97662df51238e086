//! Prometheus' duration notation (`model.Duration`): `1h30m`, `5m`, `250ms`, `2d`, `1w`, `1y`,
//! parsed to milliseconds and written back as Prometheus writes it.

/// The units from largest to smallest, with their length in milliseconds.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// `1h30m` to milliseconds: units from largest to smallest, each at most once; `0` alone is
/// zero. `None` for anything else, or on overflow.
pub fn parse_duration(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: i64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let index = UNITS.iter().position(|(name, _)| *name == unit)?;
        if last_unit.is_some_and(|last| index <= last) {
            return None;
        }
        last_unit = Some(index);
        total = total.checked_add(number.checked_mul(UNITS[index].1)?)?;
    }
    Some(total)
}

/// Milliseconds as Prometheus writes a duration: `0s`, `90s` as `1m30s`, `1d`, `1w2d`.
pub fn format_duration(millis: i64) -> String {
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if millis < 0 {
        out.push('-');
    }
    let mut rest = millis.unsigned_abs();
    for (unit, length) in UNITS {
        let length = length.unsigned_abs();
        if rest >= length {
            out.push_str(&(rest / length).to_string());
            out.push_str(unit);
            rest %= length;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{format_duration, parse_duration};

    #[test]
    fn durations_parse_and_print_as_prometheus_does() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1w1d"), Some(8 * 86_400_000));
        assert_eq!(
            parse_duration("30m1h"),
            None,
            "units go from largest to smallest"
        );
        assert_eq!(parse_duration("1.5h"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(86_400_000), "1d");
        assert_eq!(format_duration(9 * 86_400_000), "1w2d");
        assert_eq!(format_duration(1_500), "1s500ms");
    }
}
