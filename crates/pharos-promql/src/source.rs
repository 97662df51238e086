//! Where the engine's data comes from: [`SeriesSource`], asked once per selector of a query for
//! the series that match its label matchers with their points over a time range. The query
//! service implements it on the store, the alert service and the tests over memory
//! ([`MemorySource`]).

use std::fmt;

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

    /// When the expression only matches a fixed list of values (`a|b|c` of plain literals),
    /// those values: a source can then select with equality instead of scanning.
    pub fn literal_alternatives(&self) -> Option<Vec<String>> {
        let plain = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/'))
        };
        let parts: Vec<&str> = self.source.split('|').collect();
        parts
            .iter()
            .all(|part| plain(part))
            .then(|| parts.iter().map(|part| (*part).to_owned()).collect())
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

/// A source of series for the engine.
#[async_trait]
pub trait SeriesSource: Send + Sync {
    /// The series that match `selection.matchers`, each with its points in
    /// `selection.start..=selection.end`, oldest first, staleness markers included. A series
    /// without points in the range may be left out.
    async fn select(&self, selection: &Selection) -> Result<Vec<Series>, SourceError>;
}

/// Series held in memory: the source of the alert service's rule tests and of unit tests.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: Vec<Series>,
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
}

#[async_trait]
impl SeriesSource for MemorySource {
    async fn select(&self, selection: &Selection) -> Result<Vec<Series>, SourceError> {
        Ok(self
            .series
            .iter()
            .filter(|series| selection.matches(&series.labels))
            .filter_map(|series| {
                let first = series.points.partition_point(|p| p.t < selection.start);
                let last = series.points.partition_point(|p| p.t <= selection.end);
                (first < last).then(|| Series {
                    labels: series.labels.clone(),
                    points: series.points[first..last].to_vec(),
                })
            })
            .collect())
    }
}
