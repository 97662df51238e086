//! Item validation against the documented limits, and the conversion of a valid metric point to
//! its series identity (canonical label set) and stored time. A bad item becomes a [`Rejection`]
//! naming the field and a stable reason; it never fails the rest of its batch.

use pharos_proto::ingest::v1 as pb;
use pharos_store::signals::metrics::{NewSeries, SeriesKey};

use crate::settings::LimitSettings;

/// Why one item was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: u32,
    pub field: String,
    /// Stable UPPER_SNAKE reason, also the `reason` label of the rejection counter.
    pub reason: &'static str,
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(
        index: u32,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            index,
            field: field.into(),
            reason,
            message: message.into(),
        }
    }
}

impl From<Rejection> for pb::Rejection {
    fn from(rejection: Rejection) -> Self {
        pb::Rejection {
            index: rejection.index,
            field: rejection.field,
            reason: rejection.reason.to_owned(),
            message: rejection.message,
        }
    }
}

/// A metric point that passed validation.
#[derive(Debug, Clone)]
pub struct ValidPoint {
    pub series: NewSeries,
    /// Microseconds since the Unix epoch.
    pub time_us: i64,
    pub value: f64,
}

/// Checks items against [`LimitSettings`].
#[derive(Debug, Clone)]
pub struct Validator {
    limits: LimitSettings,
}

impl Validator {
    pub fn new(limits: LimitSettings) -> Self {
        Self { limits }
    }

    pub fn limits(&self) -> &LimitSettings {
        &self.limits
    }

    /// Validates point `index` received at `now_us`.
    pub fn metric_point(
        &self,
        index: u32,
        point: pb::MetricPoint,
        now_us: i64,
    ) -> Result<ValidPoint, Rejection> {
        let limits = &self.limits;
        if let Err(problem) = check_name(&point.name, limits.max_name_bytes, true) {
            return Err(Rejection::new(
                index,
                "name",
                "METRIC_NAME_INVALID",
                format!("metric name {problem}"),
            ));
        }
        if point.labels.len() > limits.max_labels {
            return Err(Rejection::new(
                index,
                "labels",
                "TOO_MANY_LABELS",
                format!(
                    "{} labels; at most {} are allowed",
                    point.labels.len(),
                    limits.max_labels
                ),
            ));
        }
        let mut labels: Vec<(String, String)> = Vec::with_capacity(point.labels.len());
        for (position, label) in point.labels.into_iter().enumerate() {
            let field = |part: &str| format!("labels[{position}].{part}");
            if let Err(problem) = check_name(&label.name, limits.max_name_bytes, false) {
                return Err(Rejection::new(
                    index,
                    field("name"),
                    "LABEL_NAME_INVALID",
                    format!("label name {problem}"),
                ));
            }
            if label.name.starts_with("__") {
                return Err(Rejection::new(
                    index,
                    field("name"),
                    "LABEL_NAME_RESERVED",
                    format!(
                        "label name {:?} starts with \"__\", which is reserved",
                        label.name
                    ),
                ));
            }
            if label.value.len() > limits.max_label_value_bytes {
                return Err(Rejection::new(
                    index,
                    field("value"),
                    "LABEL_VALUE_TOO_LONG",
                    format!(
                        "{} bytes; at most {} are allowed",
                        label.value.len(),
                        limits.max_label_value_bytes
                    ),
                ));
            }
            if label.value.contains('\0') {
                return Err(Rejection::new(
                    index,
                    field("value"),
                    "TEXT_HAS_NUL",
                    "label values must not hold NUL characters",
                ));
            }
            // As in Prometheus, an empty value is the same as no label.
            if !label.value.is_empty() {
                labels.push((label.name, label.value));
            }
        }
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = labels.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(Rejection::new(
                index,
                "labels",
                "LABEL_NAME_DUPLICATE",
                format!("label {:?} appears more than once", pair[0].0),
            ));
        }
        let time_us = if point.time_unix_nano == 0 {
            now_us
        } else {
            point.time_unix_nano.div_euclid(1_000)
        };
        self.check_window(index, "time_unix_nano", time_us, now_us)?;
        let series = NewSeries {
            key: SeriesKey {
                name: point.name,
                labels_key: labels_key(&labels),
            },
            labels,
        };
        Ok(ValidPoint {
            series,
            time_us,
            value: point.value,
        })
    }
}

impl Validator {
    /// A time (microseconds) inside the accepted window: no older than `max_age`, no further
    /// than `max_future` ahead of `now_us`. Every signal's times go through here.
    pub(crate) fn check_window(
        &self,
        index: u32,
        field: &str,
        time_us: i64,
        now_us: i64,
    ) -> Result<(), Rejection> {
        let limits = &self.limits;
        if time_us < now_us.saturating_sub(micros(limits.max_age)) {
            return Err(Rejection::new(
                index,
                field,
                "TIME_TOO_OLD",
                format!(
                    "older than the accepted age of {}",
                    humantime_duration(limits.max_age)
                ),
            ));
        }
        if time_us > now_us.saturating_add(micros(limits.max_future)) {
            return Err(Rejection::new(
                index,
                field,
                "TIME_TOO_FAR_IN_FUTURE",
                format!(
                    "more than {} ahead of the server's clock",
                    humantime_duration(limits.max_future)
                ),
            ));
        }
        Ok(())
    }
}

fn micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn humantime_duration(duration: std::time::Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Prometheus naming: `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, without `:` for labels.
fn check_name(name: &str, max_bytes: usize, colons: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.len() > max_bytes {
        return Err(format!(
            "is {} bytes; at most {max_bytes} are allowed",
            name.len()
        ));
    }
    let allowed = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colons && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| allowed(c, true)) && chars.all(|c| allowed(c, false));
    if !valid {
        let pattern = if colons {
            "[a-zA-Z_:][a-zA-Z0-9_:]*"
        } else {
            "[a-zA-Z_][a-zA-Z0-9_]*"
        };
        return Err(format!("{name:?} does not match {pattern}"));
    }
    Ok(())
}

/// `a="1",b="x\"y"`: sorted pairs with Prometheus string escaping.
fn labels_key(labels: &[(String, String)]) -> String {
    let mut key = String::new();
    for (position, (name, value)) in labels.iter().enumerate() {
        if position > 0 {
            key.push(',');
        }
        key.push_str(name);
        key.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => key.push_str("\\\\"),
                '"' => key.push_str("\\\""),
                '\n' => key.push_str("\\n"),
                other => key.push(other),
            }
        }
        key.push('"');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, labels: &[(&str, &str)], time_unix_nano: i64) -> pb::MetricPoint {
        pb::MetricPoint {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(name, value)| pb::Label {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            time_unix_nano,
            value: 1.0,
        }
    }

    const NOW_US: i64 = 1_800_000_000_000_000;

    fn reason(result: Result<ValidPoint, Rejection>) -> &'static str {
        result.err().map_or("OK", |rejection| rejection.reason)
    }

    #[test]
    fn canonical_label_sets_ignore_order_and_empty_values() {
        let validator = Validator::new(LimitSettings::default());
        let a = validator.metric_point(
            0,
            point("up", &[("job", "api"), ("az", "x\"y"), ("empty", "")], 0),
            NOW_US,
        );
        let b =
            validator.metric_point(1, point("up", &[("az", "x\"y"), ("job", "api")], 0), NOW_US);
        let (a, b) = (a.expect("valid"), b.expect("valid"));
        assert_eq!(a.series.key, b.series.key);
        assert_eq!(a.series.key.labels_key, r#"az="x\"y",job="api""#);
        assert_eq!(a.series.labels_json(), r#"{"az":"x\"y","job":"api"}"#);
        assert_eq!(a.time_us, NOW_US);
    }

    #[test]
    fn every_rule_has_its_reason() {
        let limits = LimitSettings {
            max_labels: 2,
            max_label_value_bytes: 4,
            ..LimitSettings::default()
        };
        let validator = Validator::new(limits);
        let check = |p| reason(validator.metric_point(0, p, NOW_US));
        assert_eq!(check(point("", &[], 0)), "METRIC_NAME_INVALID");
        assert_eq!(check(point("9lives", &[], 0)), "METRIC_NAME_INVALID");
        assert_eq!(check(point("a-b", &[], 0)), "METRIC_NAME_INVALID");
        assert_eq!(
            check(point(&"x".repeat(201), &[], 0)),
            "METRIC_NAME_INVALID"
        );
        assert_eq!(check(point("ns:metric_total", &[], 0)), "OK");
        assert_eq!(
            check(point("m", &[("a", "1"), ("b", "2"), ("c", "3")], 0)),
            "TOO_MANY_LABELS"
        );
        assert_eq!(check(point("m", &[("a:b", "1")], 0)), "LABEL_NAME_INVALID");
        assert_eq!(
            check(point("m", &[("__name__", "1")], 0)),
            "LABEL_NAME_RESERVED"
        );
        assert_eq!(
            check(point("m", &[("a", "12345")], 0)),
            "LABEL_VALUE_TOO_LONG"
        );
        assert_eq!(check(point("m", &[("a", "\0")], 0)), "TEXT_HAS_NUL");
        assert_eq!(
            check(point("m", &[("a", "1"), ("a", "2")], 0)),
            "LABEL_NAME_DUPLICATE"
        );
        let eight_days_ago = (NOW_US - 8 * 86_400_000_000) * 1_000;
        assert_eq!(check(point("m", &[], eight_days_ago)), "TIME_TOO_OLD");
        let in_an_hour = (NOW_US + 3_600_000_000) * 1_000;
        assert_eq!(check(point("m", &[], in_an_hour)), "TIME_TOO_FAR_IN_FUTURE");
        let a_minute_ago = (NOW_US - 60_000_000) * 1_000;
        let valid = validator
            .metric_point(0, point("m", &[], a_minute_ago), NOW_US)
            .expect("valid");
        assert_eq!(valid.time_us, NOW_US - 60_000_000);
    }
}
