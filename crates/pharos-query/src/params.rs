//! Request parameters as the Prometheus HTTP API reads them: from the URL and a form body
//! (body values first), times as Unix seconds with up to millisecond precision or RFC 3339,
//! durations as seconds or Prometheus durations (`1m`, `1h30m`, `2d`).

use axum::http::{HeaderMap, header};

use crate::error::QueryError;

/// The parameters of one request, in order: body values, then URL values.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(url_query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(query) = url_query {
            pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Self { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, which must be there and not be empty.
    pub fn required(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| QueryError::invalid(name, "no value given"))
    }

    /// Every value of `name` (`match[]` repeats).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// A time parameter in milliseconds: Unix seconds (`1435781451.781`) or RFC 3339
/// (`2015-07-01T20:10:51.781Z`, `2015-07-01T22:10:51+02:00`).
pub fn parse_time(parameter: &str, text: &str) -> Result<i64, QueryError> {
    let invalid = || {
        QueryError::invalid(
            parameter,
            format!("cannot parse {text:?} to a valid timestamp"),
        )
    };
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() || seconds.abs() > 9.2e15 {
            return Err(invalid());
        }
        let whole = seconds.trunc();
        let fraction = ((seconds - whole) * 1000.0).round();
        return Ok(whole as i64 * 1000 + fraction as i64);
    }
    parse_rfc3339(text).ok_or_else(invalid)
}

/// A duration parameter in milliseconds: seconds (`15`, `0.5`) or a Prometheus duration.
pub fn parse_duration(parameter: &str, text: &str) -> Result<i64, QueryError> {
    let invalid = || {
        QueryError::invalid(
            parameter,
            format!("cannot parse {text:?} to a valid duration"),
        )
    };
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = seconds * 1000.0;
        if !ms.is_finite() || ms.abs() >= 9.2e18 / 1000.0 {
            return Err(QueryError::invalid(
                parameter,
                format!("cannot parse {text:?} to a valid duration. It overflows int64"),
            ));
        }
        return Ok(ms.round() as i64);
    }
    pharos_promql::parse_duration(text).ok_or_else(invalid)
}

/// RFC 3339 with an optional fraction and a `Z` or `±hh:mm` offset, to milliseconds.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_prometheus_parses_them() {
        assert_eq!(
            parse_time("time", "1435781451.781").ok(),
            Some(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("time", "1435781451").ok(),
            Some(1_435_781_451_000)
        );
        assert_eq!(
            parse_time("time", "2015-07-01T20:10:51.781Z").ok(),
            Some(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("time", "2015-07-01T22:10:51.781+02:00").ok(),
            Some(1_435_781_451_781)
        );
        let error = parse_time("start", "yesterday").expect_err("not a time");
        assert_eq!(
            error.to_string(),
            "invalid parameter \"start\": cannot parse \"yesterday\" to a valid timestamp"
        );
    }

    #[test]
    fn durations_parse_as_seconds_or_prometheus_durations() {
        assert_eq!(parse_duration("step", "15").ok(), Some(15_000));
        assert_eq!(parse_duration("step", "0.5").ok(), Some(500));
        assert_eq!(parse_duration("step", "1m").ok(), Some(60_000));
        assert_eq!(parse_duration("step", "1h30m").ok(), Some(5_400_000));
        assert_eq!(parse_duration("step", "250ms").ok(), Some(250));
        assert!(parse_duration("step", "30m1h").is_err());
        assert!(parse_duration("step", "").is_err());
        assert!(parse_duration("step", "5x").is_err());
    }
}
