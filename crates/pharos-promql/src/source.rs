//! Where the engine's data comes from: [`SeriesSource`], asked once per selector of a query for
//! the series that match its label matchers with their points over a time range. The query
//! service implements it on the store, the alert service and the tests over memory
//! ([`MemorySource`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use regex::Regex;

use crate::types::{Labels, Point, Series};

/// How a label matcher compares.
#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// A regular expression, fully anchored as Prometheus anchors them.
    Regex(AnchoredRegex),
    NotRegex(AnchoredRegex),
}

/// A regular expression matched against a whole label value (`^(?:re)$`).
#[derive(Debug, Clone)]
pub struct AnchoredRegex {
    source: String,
    regex: Regex,
}

impl AnchoredRegex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            source: source.to_owned(),
            regex: Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// From an expression already compiled with the anchors (as `promql-parser` compiles them).
    pub(crate) fn from_anchored(source: &str, regex: Regex) -> Self {
        Self {
            source: source.to_owned(),
            regex,
        }
    }

    /// The expression as written, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    /// When the expression only matches a fixed list of non-empty values, those values: a
    /// source can then select with equality instead of scanning. That is alternatives of
    /// literal text (`a|b|c`), maybe in one group (`(a|b)`), with punctuation escaped (`10\.0`):
    /// what Grafana sends for a variable of one or several values.
    pub fn literal_alternatives(&self) -> Option<Vec<String>> {
        const SPECIAL: &str = "\\.+*?()|[]{}^$";
        let source = self.source.as_str();
        let inner = source
            .strip_prefix('(')
            .and_then(|rest| rest.strip_suffix(')'))
            .filter(|inner| !inner.starts_with('?'))
            .unwrap_or(source);
        let mut values = Vec::new();
        let mut value = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '|' => values.push(std::mem::take(&mut value)),
                '\\' => match chars.next() {
                    // `\<` and `\>` are word boundaries to the regex engine.
                    Some(escaped) if escaped.is_ascii_punctuation() && !"<>".contains(escaped) => {
                        value.push(escaped)
                    }
                    _ => return None,
                },
                c if SPECIAL.contains(c) || c.is_control() => return None,
                c => value.push(c),
            }
        }
        values.push(value);
        (!values.iter().any(String::is_empty)).then_some(values)
    }
}

/// One label matcher of a selector: `name="v"`, `name!="v"`, `name=~"re"` or `name!~"re"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    /// Whether a series whose label `name` has `value` (`""` when it has no such label) matches.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal(expected) => value == expected,
            MatchOp::NotEqual(expected) => value != expected,
            MatchOp::Regex(regex) => regex.is_match(value),
            MatchOp::NotRegex(regex) => !regex.is_match(value),
        }
    }

    /// Whether the series with `labels` matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether this matcher also matches series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            MatchOp::Equal(value) => write!(f, "{}={:?}", self.name, value),
            MatchOp::NotEqual(value) => write!(f, "{}!={:?}", self.name, value),
            MatchOp::Regex(regex) => write!(f, "{}=~{:?}", self.name, regex.as_str()),
            MatchOp::NotRegex(regex) => write!(f, "{}!~{:?}", self.name, regex.as_str()),
        }
    }
}

/// What one selector asks of the source: the series matching every matcher, with their points
/// in `start..=end` (milliseconds, both ends included).
#[derive(Debug, Clone)]
pub struct Selection {
    pub matchers: Vec<Matcher>,
    pub start: i64,
    pub end: i64,
    /// Only the latest point of each series in the range is used (an instant-vector selector
    /// evaluated at one instant): a source may return just that point, and a store can read
    /// it with one index probe per series instead of the whole lookback window. Returning
    /// more is still correct.
    pub latest_only: bool,
}

impl Selection {
    /// Whether a series with `labels` is selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|matcher| matcher.matches_labels(labels))
    }

    /// The metric name the selection requires, when one equality matcher gives it.
    pub fn metric_name(&self) -> Option<&str> {
        self.matchers.iter().find_map(|matcher| match &matcher.op {
            MatchOp::Equal(name) if matcher.name == crate::types::METRIC_NAME => {
                Some(name.as_str())
            }
            _ => None,
        })
    }
}

/// Why a source could not answer. The engine passes the message on; the source decides how
/// much of its own error it shows.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    /// Whether trying again later may succeed (the store was unreachable or overloaded).
    pub transient: bool,
}

impl SourceError {
    pub fn new(message: impl Into<String>, transient: bool) -> Self {
        Self {
            message: message.into(),
            transient,
        }
    }
}

/// The aggregates of one series over one hour, as a source that keeps rollups has them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourBucket {
    /// Start of the hour, milliseconds (a multiple of 3,600,000).
    pub start: i64,
    /// Points that are numbers; `sum`, `min` and `max` are theirs (meaningless when 0).
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Ordinary NaN points (staleness markers are not counted anywhere).
    pub nan_count: u64,
}

/// A series' hourly aggregates over a range, and its points at given instants.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlySeries {
    pub labels: Labels,
    /// Oldest first.
    pub buckets: Vec<HourBucket>,
    /// The points at exactly the instants of [`HourlySelection::instants`] (a window that ends
    /// on the hour includes the point at its end, which the next hour's bucket holds), oldest
    /// first, staleness markers left out.
    pub instant_points: Vec<Point>,
}

/// What a `*_over_time` over whole hours asks of a source that keeps hourly rollups.
#[derive(Debug, Clone)]
pub struct HourlySelection {
    pub matchers: Vec<Matcher>,
    /// The hours starting in `start..end` (milliseconds, hour-aligned).
    pub start: i64,
    pub end: i64,
    /// Instants (milliseconds) whose points are wanted too.
    pub instants: Vec<i64>,
}

/// What the engine does with each batch of a selection's series as a source reads them: it
/// evaluates the function the series feed and keeps only its answer, so that evaluating
/// overlaps reading and the points are not all held at once. Cheap to call from any thread;
/// a source may hand it batches from several threads at once.
pub trait SeriesBatches: Send + Sync {
    /// Takes one batch: whole series (a series is never split over two batches), as
    /// [`SeriesSource::select`] would return them, in any order. `false` asks the source to
    /// stop reading: the engine has given up on the query (and knows why).
    fn take(&self, batch: Vec<Series>) -> bool;
}

/// A source of series for the engine.
#[async_trait]
pub trait SeriesSource: Send + Sync {
    /// The series that match `selection.matchers`, each with its points in
    /// `selection.start..=selection.end`, oldest first, staleness markers included. A series
    /// without points in the range may be left out.
    async fn select(&self, selection: &Selection) -> Result<Vec<Series>, SourceError>;

    /// The series [`SeriesSource::select`] answers, handed to `batches` as they are read. The
    /// default hands over the whole answer at once; a source that reads in parts hands each
    /// over as it arrives (and stops reading when `take` says so).
    async fn select_into(
        &self,
        selection: &Selection,
        batches: Arc<dyn SeriesBatches>,
    ) -> Result<(), SourceError> {
        batches.take(self.select(selection).await?);
        Ok(())
    }

    /// The hourly aggregates of the matching series, for sources that keep rollups; `None`
    /// (the default) makes the engine read the points instead.
    async fn select_hourly(
        &self,
        _selection: &HourlySelection,
    ) -> Result<Option<Vec<HourlySeries>>, SourceError> {
        Ok(None)
    }
}

/// Hourly buckets of `points` (staleness markers left out) for the hours in `start..end`.
fn hourly_buckets(points: &[Point], start: i64, end: i64) -> Vec<HourBucket> {
    const HOUR: i64 = 3_600_000;
    let mut buckets: Vec<HourBucket> = Vec::new();
    for point in points {
        if point.t < start || point.t >= end || crate::types::is_stale_nan(point.v) {
            continue;
        }
        let hour = point.t.div_euclid(HOUR) * HOUR;
        if buckets.last().is_none_or(|bucket| bucket.start != hour) {
            buckets.push(HourBucket {
                start: hour,
                count: 0,
                sum: 0.0,
                min: f64::NAN,
                max: f64::NAN,
                nan_count: 0,
            });
        }
        let Some(bucket) = buckets.last_mut() else {
            continue;
        };
        if point.v.is_nan() {
            bucket.nan_count += 1;
        } else {
            bucket.count += 1;
            bucket.sum += point.v;
            bucket.min = if bucket.min.is_nan() {
                point.v
            } else {
                bucket.min.min(point.v)
            };
            bucket.max = if bucket.max.is_nan() {
                point.v
            } else {
                bucket.max.max(point.v)
            };
        }
    }
    buckets
}

/// What a source holding `series` in memory (points oldest first) answers to `selection`: the
/// matching series with their points in the range, those without any left out.
pub fn select_in_memory<'a>(
    series: impl Iterator<Item = (&'a Labels, &'a [Point])>,
    selection: &Selection,
) -> Vec<Series> {
    series
        .filter(|(labels, _)| selection.matches(labels))
        .filter_map(|(labels, points)| {
            let last = points.partition_point(|p| p.t <= selection.end);
            let first = if selection.latest_only {
                last.saturating_sub(1)
            } else {
                0
            }
            .max(points.partition_point(|p| p.t < selection.start));
            (first < last).then(|| Series {
                labels: labels.clone(),
                points: points[first..last].to_vec(),
            })
        })
        .collect()
}

/// Series held in memory: the source of the alert service's rule tests and of unit tests.
/// With [`MemorySource::with_hourly_rollups`] it also answers hourly selections, computed from
/// its points, as a store with rollups would.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: Vec<Series>,
    hourly_rollups: bool,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a series (points oldest first). A series with the same labels is extended.
    pub fn add(&mut self, labels: Labels, points: impl IntoIterator<Item = Point>) {
        let points = points.into_iter();
        if let Some(series) = self.series.iter_mut().find(|s| s.labels == labels) {
            series.points.extend(points);
            series.points.sort_by_key(|point| point.t);
        } else {
            let mut points: Vec<Point> = points.collect();
            points.sort_by_key(|point| point.t);
            self.series.push(Series { labels, points });
        }
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// The same source, answering hourly selections too.
    pub fn with_hourly_rollups(mut self) -> Self {
        self.hourly_rollups = true;
        self
    }
}

#[async_trait]
impl SeriesSource for MemorySource {
    async fn select(&self, selection: &Selection) -> Result<Vec<Series>, SourceError> {
        Ok(select_in_memory(
            self.series
                .iter()
                .map(|series| (&series.labels, series.points.as_slice())),
            selection,
        ))
    }

    async fn select_hourly(
        &self,
        selection: &HourlySelection,
    ) -> Result<Option<Vec<HourlySeries>>, SourceError> {
        if !self.hourly_rollups {
            return Ok(None);
        }
        let matching = self.series.iter().filter(|series| {
            selection
                .matchers
                .iter()
                .all(|matcher| matcher.matches_labels(&series.labels))
        });
        Ok(Some(
            matching
                .map(|series| HourlySeries {
                    labels: series.labels.clone(),
                    buckets: hourly_buckets(&series.points, selection.start, selection.end),
                    instant_points: series
                        .points
                        .iter()
                        .filter(|point| {
                            selection.instants.binary_search(&point.t).is_ok()
                                && !crate::types::is_stale_nan(point.v)
                        })
                        .copied()
                        .collect(),
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::AnchoredRegex;

    fn alternatives(source: &str) -> Option<Vec<String>> {
        let regex = AnchoredRegex::new(source).expect("a valid test pattern");
        let values = regex.literal_alternatives();
        for value in values.iter().flatten() {
            assert!(regex.is_match(value), "{source} matches {value}");
            assert!(
                !regex.is_match(&format!("{value}x")),
                "{source} is anchored"
            );
        }
        values
    }

    #[test]
    fn literal_alternatives_are_the_values_the_regex_matches() {
        let some = |values: &[&str]| Some(values.iter().map(|v| (*v).to_owned()).collect());
        assert_eq!(alternatives("api"), some(&["api"]));
        assert_eq!(
            alternatives("api|web-1|a:b/c"),
            some(&["api", "web-1", "a:b/c"])
        );
        // Grafana's multi-value variable: a group, punctuation escaped.
        assert_eq!(
            alternatives(r"(10\.0\.0\.1:9100|db\(primary\)|it\'s)"),
            some(&["10.0.0.1:9100", "db(primary)", "it's"])
        );
        assert_eq!(alternatives("a b|é"), some(&["a b", "é"]));
        for pattern in [
            "", "a|", "|a", "(a|)", "a.*", "a+", "[ab]", "(a)|(b)", "(?i)a", "(?:a|b)", r"\d",
            r"\<a", "^a$", "a{2}",
        ] {
            assert_eq!(alternatives(pattern), None, "{pattern}");
        }
    }
}
