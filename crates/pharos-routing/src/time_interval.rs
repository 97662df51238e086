//! Alertmanager 0.25's time intervals (`timeinterval/timeinterval.go`): times of day, weekdays,
//! days of the month (negative ones count from the month's end), months, years and a time zone
//! (an IANA name, `UTC` or `Local`). [`TimeInterval::contains`] answers as `ContainsTime` does,
//! including its way of counting a month's days across a daylight-saving change (a March with
//! a lost hour counts 30 days in zones that spring forward then).

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike, Utc};

use crate::error::{ConfigError, Result};

/// A named list of time intervals, from `time_intervals` or `mute_time_intervals`.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The intervals; an instant is in the named interval when it is in any of them.
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether the instant is in any of the intervals (never, when there are none).
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.time_intervals
            .iter()
            .any(|interval| interval.contains(instant))
    }
}

/// One interval: every field that is set must hold. A field set to an empty list never holds,
/// as in Alertmanager; a field that is absent always holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeInterval {
    /// Times of day (`start_time` inclusive, `end_time` exclusive).
    pub times: Option<Vec<TimeRange>>,
    /// Weekdays, 0 = Sunday to 6 = Saturday.
    pub weekdays: Option<Vec<InclusiveRange>>,
    /// Days of the month, 1 to 31, or -1 (the last day) to -31.
    pub days_of_month: Option<Vec<InclusiveRange>>,
    /// Months, 1 = January.
    pub months: Option<Vec<InclusiveRange>>,
    /// Years.
    pub years: Option<Vec<InclusiveRange>>,
    /// The zone the fields are read in; UTC when absent.
    pub location: Option<Location>,
}

/// A range of minutes of the day, `[start_minute, end_minute)`, within 0..=1440.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// The first minute in the range.
    pub start_minute: u32,
    /// The first minute after the range.
    pub end_minute: u32,
}

/// An inclusive range of numbers (weekdays, days, months or years).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InclusiveRange {
    /// The first value.
    pub begin: i64,
    /// The last value.
    pub end: i64,
}

/// The time zone of an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// `UTC` or the empty string.
    Utc,
    /// `Local`: the zone of the machine the process runs on.
    Local,
    /// An IANA zone such as `Europe/Berlin`.
    Zone(chrono_tz::Tz),
}

impl TimeInterval {
    /// Whether the instant is in the interval, read in the interval's zone (UTC by default).
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        match self.location {
            None | Some(Location::Utc) => self.contains_in(&instant),
            Some(Location::Local) => self.contains_in(&instant.with_timezone(&chrono::Local)),
            Some(Location::Zone(zone)) => self.contains_in(&instant.with_timezone(&zone)),
        }
    }

    fn contains_in<Z: TimeZone>(&self, t: &DateTime<Z>) -> bool {
        if let Some(times) = &self.times {
            let minute = t.hour() * 60 + t.minute();
            if !times
                .iter()
                .any(|range| minute >= range.start_minute && minute < range.end_minute)
            {
                return false;
            }
        }
        if let Some(days) = &self.days_of_month {
            let month_days = go_days_in_month(t);
            let day = i64::from(t.day());
            let in_range = days.iter().any(|range| {
                let begin = if range.begin < 0 {
                    month_days + range.begin + 1
                } else {
                    range.begin
                };
                let end = if range.end < 0 {
                    month_days + range.end + 1
                } else {
                    range.end
                };
                // A range that starts after the month's end does not apply to this month.
                if begin > month_days {
                    return false;
                }
                let begin = begin.clamp(-month_days, month_days);
                let end = end.clamp(-month_days, month_days);
                day >= begin && day <= end
            });
            if !in_range {
                return false;
            }
        }
        if !in_any(&self.months, i64::from(t.month())) {
            return false;
        }
        if !in_any(
            &self.weekdays,
            i64::from(t.weekday().num_days_from_sunday()),
        ) {
            return false;
        }
        in_any(&self.years, i64::from(t.year()))
    }
}

/// Whether `value` is in one of the ranges; true when the field is absent.
fn in_any(ranges: &Option<Vec<InclusiveRange>>, value: i64) -> bool {
    match ranges {
        None => true,
        Some(ranges) => ranges
            .iter()
            .any(|range| value >= range.begin && value <= range.end),
    }
}

/// The number of days in `t`'s month as Alertmanager counts them: the hours between the
/// month's first local midnight and the next month's, divided by 24 and truncated.
fn go_days_in_month<Z: TimeZone>(t: &DateTime<Z>) -> i64 {
    let zone = t.timezone();
    let (year, month) = (t.year(), t.month());
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let start = local_midnight(&zone, year, month);
    let end = local_midnight(&zone, next_year, next_month);
    match (start, end) {
        (Some(start), Some(end)) => (end - start).num_seconds().div_euclid(86_400),
        _ => calendar_days_in_month(year, month),
    }
}

/// The instant of local midnight starting the first day of a month; the earlier one when the
/// local time is ambiguous, and the one the previous day's offset gives when it is skipped.
fn local_midnight<Z: TimeZone>(zone: &Z, year: i32, month: u32) -> Option<DateTime<Utc>> {
    let naive = NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?;
    if let Some(found) = zone.from_local_datetime(&naive).earliest() {
        return Some(found.with_timezone(&Utc));
    }
    let day_before = naive - chrono::Duration::days(1);
    let offset = zone.offset_from_utc_datetime(&day_before).fix();
    Some(Utc.from_utc_datetime(&(naive - offset)))
}

fn calendar_days_in_month(year: i32, month: u32) -> i64 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (
        NaiveDate::from_ymd_opt(year, month, 1),
        NaiveDate::from_ymd_opt(next_year, next_month, 1),
    ) {
        (Some(start), Some(end)) => (end - start).num_days(),
        _ => 31,
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Go's `strconv.Atoi`, with its error words.
fn atoi(text: &str) -> Result<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::invalid(format!(
            "strconv.Atoi: parsing {text:?}: invalid syntax"
        )));
    }
    text.parse::<i64>().map_err(|_| {
        ConfigError::invalid(format!(
            "strconv.Atoi: parsing {text:?}: value out of range"
        ))
    })
}

/// Splits `a:b` (or a single member) after lower-casing, as `stringableRangeFromString` does.
fn parse_range(text: &str, member: impl Fn(&str) -> Result<i64>) -> Result<InclusiveRange> {
    let lower = text.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(ConfigError::invalid(format!(
                "couldn't parse range {lower}, invalid format"
            )));
        }
        let begin = member(parts[0])?;
        let end = member(parts[1])?;
        return Ok(InclusiveRange { begin, end });
    }
    let value = member(&lower)?;
    Ok(InclusiveRange {
        begin: value,
        end: value,
    })
}

/// Reads a weekday range such as `monday:friday` or `saturday`.
pub fn parse_weekday_range(text: &str) -> Result<InclusiveRange> {
    let range = parse_range(text, |name| {
        WEEKDAYS
            .iter()
            .position(|day| *day == name)
            .map(|index| index as i64)
            .ok_or_else(|| ConfigError::invalid(format!("{name} is not a valid weekday")))
    })?;
    if range.begin > range.end {
        return Err(ConfigError::invalid("start day cannot be before end day"));
    }
    Ok(range)
}

/// Reads a day-of-month range such as `1:15`, `-1` or `25:-1`.
pub fn parse_day_of_month_range(text: &str) -> Result<InclusiveRange> {
    let range = parse_range(text, atoi)?;
    for day in [range.begin, range.end] {
        if day == 0 || !(-31..=31).contains(&day) {
            return Err(ConfigError::invalid(format!(
                "{day} is not a valid day of the month: out of range"
            )));
        }
    }
    if range.begin < 0 && range.end > 0 {
        return Err(ConfigError::invalid(
            "end day must be negative if start day is negative",
        ));
    }
    // Months have at least 28 days: refuse ranges that are empty in every month.
    let check_begin = if range.begin < 0 {
        28 + range.begin
    } else {
        range.begin
    };
    let check_end = if range.end < 0 {
        28 + range.end
    } else {
        range.end
    };
    if check_begin > check_end {
        return Err(ConfigError::invalid(format!(
            "end day {} is always before start day {}",
            range.end, range.begin
        )));
    }
    Ok(range)
}

/// Reads a month range such as `january:march`, `12` or `6:8`.
pub fn parse_month_range(text: &str) -> Result<InclusiveRange> {
    let range = parse_range(text, |name| match MONTHS.iter().position(|m| *m == name) {
        Some(index) => Ok(index as i64 + 1),
        None => {
            atoi(name).map_err(|_| ConfigError::invalid(format!("{name} is not a valid month")))
        }
    })?;
    if range.begin > range.end {
        let name = |n: i64| {
            usize::try_from(n - 1)
                .ok()
                .and_then(|i| MONTHS.get(i))
                .copied()
                .unwrap_or("")
        };
        return Err(ConfigError::invalid(format!(
            "end month {} is before start month {}",
            name(range.end),
            name(range.begin)
        )));
    }
    Ok(range)
}

/// Reads a year range such as `2024:2026`.
pub fn parse_year_range(text: &str) -> Result<InclusiveRange> {
    let range = parse_range(text, atoi)?;
    if range.begin > range.end {
        return Err(ConfigError::invalid(format!(
            "end year {} is before start year {}",
            range.end, range.begin
        )));
    }
    Ok(range)
}

/// Reads a `start_time`/`end_time` pair such as `09:00` and `17:30` (`24:00` allowed as end).
pub fn parse_time_range(start: &str, end: &str) -> Result<TimeRange> {
    if start.is_empty() || end.is_empty() {
        return Err(ConfigError::invalid(
            "both start and end times must be provided",
        ));
    }
    let start_minute = parse_clock_time(start)?;
    let end_minute = parse_clock_time(end)?;
    if start_minute >= end_minute {
        return Err(ConfigError::invalid(
            "start time cannot be equal or greater than end time",
        ));
    }
    Ok(TimeRange {
        start_minute,
        end_minute,
    })
}

/// `HH:MM` (00:00 to 23:59, or 24:00) to minutes since midnight.
fn parse_clock_time(text: &str) -> Result<u32> {
    let invalid =
        || ConfigError::invalid(format!("couldn't parse timestamp {text}, invalid format"));
    if text == "24:00" {
        return Ok(24 * 60);
    }
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return Err(invalid());
    }
    let digit = |i: usize| -> Result<u32> {
        let b = bytes[i];
        if b.is_ascii_digit() {
            Ok(u32::from(b - b'0'))
        } else {
            Err(invalid())
        }
    };
    let hours = digit(0)? * 10 + digit(1)?;
    let minutes_tens = digit(3)?;
    let minutes = minutes_tens * 10 + digit(4)?;
    if hours > 23 || minutes_tens > 5 {
        return Err(invalid());
    }
    Ok(hours * 60 + minutes)
}

/// Reads a zone name as Go's `time.LoadLocation` does: empty or `UTC` is UTC, `Local` the
/// machine's zone, otherwise an IANA name (case-sensitive).
pub fn parse_location(name: &str) -> Result<Location> {
    match name {
        "" | "UTC" => Ok(Location::Utc),
        "Local" => Ok(Location::Local),
        _ => name
            .parse::<chrono_tz::Tz>()
            .map(Location::Zone)
            .map_err(|_| ConfigError::invalid(format!("unknown time zone {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ranges(parse: fn(&str) -> Result<InclusiveRange>, texts: &[&str]) -> Vec<InclusiveRange> {
        texts
            .iter()
            .map(|t| parse(t).unwrap_or_else(|e| panic!("{t}: {e}")))
            .collect()
    }

    fn business_hours() -> TimeInterval {
        TimeInterval {
            times: Some(vec![parse_time_range("09:00", "17:00").unwrap_or(
                TimeRange {
                    start_minute: 0,
                    end_minute: 0,
                },
            )]),
            weekdays: Some(ranges(parse_weekday_range, &["monday:friday"])),
            ..TimeInterval::default()
        }
    }

    #[test]
    fn times_and_weekdays() {
        let interval = business_hours();
        // 2024-03-04 is a Monday.
        assert!(interval.contains(at("2024-03-04T09:00:00Z")));
        assert!(interval.contains(at("2024-03-04T16:59:59Z")));
        assert!(!interval.contains(at("2024-03-04T17:00:00Z")));
        assert!(!interval.contains(at("2024-03-04T08:59:59Z")));
        assert!(!interval.contains(at("2024-03-03T12:00:00Z")));
        assert!(interval.contains(at("2024-03-08T12:00:00Z")));
        assert!(!interval.contains(at("2024-03-09T12:00:00Z")));
    }

    #[test]
    fn location_moves_the_clock() {
        let mut interval = business_hours();
        interval.location = parse_location("America/New_York").ok();
        // 13:30 UTC is 08:30 in New York in winter (UTC-5).
        assert!(!interval.contains(at("2024-01-08T13:30:00Z")));
        assert!(interval.contains(at("2024-01-08T14:30:00Z")));
        // In summer (UTC-4) 13:30 UTC is 09:30.
        assert!(interval.contains(at("2024-07-08T13:30:00Z")));
    }

    #[test]
    fn negative_days_count_from_the_month_end() {
        let interval = TimeInterval {
            days_of_month: Some(ranges(parse_day_of_month_range, &["-3:-1"])),
            ..TimeInterval::default()
        };
        assert!(interval.contains(at("2024-02-27T00:00:00Z")));
        assert!(interval.contains(at("2024-02-29T23:00:00Z")));
        assert!(!interval.contains(at("2024-02-26T23:00:00Z")));
        assert!(interval.contains(at("2023-04-28T00:00:00Z")));
        assert!(!interval.contains(at("2023-04-27T00:00:00Z")));
        let mixed = TimeInterval {
            days_of_month: Some(ranges(parse_day_of_month_range, &["25:-1"])),
            ..TimeInterval::default()
        };
        assert!(mixed.contains(at("2023-02-28T00:00:00Z")));
        assert!(!mixed.contains(at("2023-02-24T00:00:00Z")));
    }

    #[test]
    fn days_past_the_month_end_do_not_apply() {
        let interval = TimeInterval {
            days_of_month: Some(ranges(parse_day_of_month_range, &["30:31"])),
            ..TimeInterval::default()
        };
        assert!(!interval.contains(at("2023-02-28T00:00:00Z")));
        assert!(interval.contains(at("2023-03-31T00:00:00Z")));
    }

    #[test]
    fn months_and_years() {
        let interval = TimeInterval {
            months: Some(ranges(parse_month_range, &["january:march", "12"])),
            years: Some(ranges(parse_year_range, &["2024:2025"])),
            ..TimeInterval::default()
        };
        assert!(interval.contains(at("2024-02-10T00:00:00Z")));
        assert!(interval.contains(at("2025-12-10T00:00:00Z")));
        assert!(!interval.contains(at("2024-04-10T00:00:00Z")));
        assert!(!interval.contains(at("2026-01-10T00:00:00Z")));
    }

    #[test]
    fn empty_lists_never_hold_and_absent_fields_always_do() {
        assert!(TimeInterval::default().contains(at("2024-01-01T00:00:00Z")));
        let never = TimeInterval {
            times: Some(Vec::new()),
            ..TimeInterval::default()
        };
        assert!(!never.contains(at("2024-01-01T00:00:00Z")));
        let named = NamedTimeInterval {
            name: "none".into(),
            time_intervals: Vec::new(),
        };
        assert!(!named.contains(at("2024-01-01T00:00:00Z")));
    }

    #[test]
    fn march_counts_thirty_days_where_clocks_spring_forward() {
        // Alertmanager divides the hours of the month by 24 and truncates: Berlin's March
        // 2024 has 743 hours, hence 30 days, and -1 is March 30th there.
        let interval = TimeInterval {
            days_of_month: Some(ranges(parse_day_of_month_range, &["-1"])),
            location: parse_location("Europe/Berlin").ok(),
            ..TimeInterval::default()
        };
        assert!(interval.contains(at("2024-03-30T12:00:00Z")));
        assert!(!interval.contains(at("2024-03-31T12:00:00Z")));
        let utc = TimeInterval {
            location: None,
            ..interval
        };
        assert!(utc.contains(at("2024-03-31T12:00:00Z")));
    }

    #[test]
    fn parsing_refuses_what_alertmanager_refuses() {
        assert!(parse_weekday_range("friday:monday").is_err());
        assert!(parse_weekday_range("1").is_err());
        assert!(parse_weekday_range("monday:tuesday:wednesday").is_err());
        assert_eq!(parse_weekday_range("Monday").ok().map(|r| r.begin), Some(1));
        for bad in ["0", "32", "-32", "-1:5", "-1:-5", "28:-3", "26:-3", " 1"] {
            assert!(parse_day_of_month_range(bad).is_err(), "{bad}");
        }
        for good in ["5:-1", "+1", "1", "-3:-1"] {
            assert!(parse_day_of_month_range(good).is_ok(), "{good}");
        }
        assert!(parse_month_range("mar").is_err());
        assert!(parse_month_range("march:january").is_err());
        assert!(parse_month_range("13").is_ok());
        assert!(parse_year_range("2030:2020").is_err());
        assert!(parse_time_range("17:00", "09:00").is_err());
        assert!(parse_time_range("9:00", "17:00").is_err());
        assert!(parse_time_range("00:00", "24:01").is_err());
        assert!(parse_time_range("00:00", "").is_err());
        assert!(parse_time_range("00:00", "24:00").is_ok());
        assert!(parse_location("utc").is_err());
        assert!(parse_location("Nowhere/Foo").is_err());
        assert_eq!(parse_location("").ok(), Some(Location::Utc));
        assert!(parse_location("EST").is_ok());
    }
}
