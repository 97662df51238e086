//! Durations in settings, as people write them: read with humantime (`30s`, `1h30m`, `7days`,
//! `365d`) and written back in whole days, hours, minutes, seconds and sub-seconds (`365d`,
//! `1h30m`, `200ms`), never in humantime's months and years of fractional days (`365d` would
//! print as `11months 30days 3h 50m 24s`). Use as `#[serde(with = "pharos_clock::duration")]`,
//! or [`Readable`] inside collections.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const UNITS: [(u128, &str); 7] = [
    (86_400_000_000_000, "d"),
    (3_600_000_000_000, "h"),
    (60_000_000_000, "m"),
    (1_000_000_000, "s"),
    (1_000_000, "ms"),
    (1_000, "us"),
    (1, "ns"),
];

/// `duration` as settings print it: `0s`, `200ms`, `1h30m`, `365d`.
pub fn format(duration: Duration) -> String {
    let mut left = duration.as_nanos();
    if left == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    for (size, unit) in UNITS {
        let count = left / size;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push_str(unit);
            left -= count * size;
        }
    }
    text
}

/// Reads a duration as people write it (`30s`, `1h30m`, `7days`, `365d`).
pub fn parse(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(|error| {
        serde::de::Error::custom(format_args!(
            "{text:?} is not a duration ({error}); write it like 30s, 10m, 1h30m or 7d"
        ))
    })
}

/// A duration that (de)serializes in the readable form, for maps and lists of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Readable(pub Duration);

impl Serialize for Readable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Readable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Readable)
    }
}

impl fmt::Display for Readable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl From<Duration> for Readable {
    fn from(duration: Duration) -> Self {
        Readable(duration)
    }
}

impl From<Readable> for Duration {
    fn from(readable: Readable) -> Self {
        readable.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_whole_units_and_reads_them_back() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_secs(5_400), "1h30m"),
            (Duration::from_secs(7 * 86_400), "7d"),
            (Duration::from_secs(365 * 86_400), "365d"),
            (Duration::from_micros(1_500), "1ms500us"),
        ];
        for (duration, text) in cases {
            assert_eq!(format(duration), text);
            assert_eq!(parse(text).expect("parses"), duration);
        }
        assert_eq!(
            parse("7days").expect("humantime form"),
            Duration::from_secs(604_800)
        );
    }

    #[test]
    fn serde_round_trip_and_clear_errors() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Example {
            #[serde(with = "super")]
            retention: Duration,
            periods: Vec<Readable>,
        }
        let example = Example {
            retention: Duration::from_secs(365 * 86_400),
            periods: vec![Readable(Duration::from_secs(120))],
        };
        let json = serde_json::to_string(&example).expect("serializes");
        assert_eq!(json, r#"{"retention":"365d","periods":["2m"]}"#);
        assert_eq!(
            serde_json::from_str::<Example>(&json).expect("reads"),
            example
        );
        let error = serde_json::from_str::<Example>(r#"{"retention":"soon","periods":[]}"#)
            .expect_err("not a duration");
        assert!(error.to_string().contains("write it like 30s"), "{error}");
    }
}
