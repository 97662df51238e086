//! The values PromQL works with: label sets, points, series, and the four value types a query can
//! return (scalar, string, instant vector, range vector). Times are milliseconds since the Unix
//! epoch, as in Prometheus.

use std::fmt;
use std::sync::Arc;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// Prometheus' staleness marker: a NaN with this exact bit pattern marks the end of a series.
/// Any other NaN is an ordinary value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `value` is the staleness marker (and not an ordinary NaN).
pub fn is_stale_nan(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// `points` without their staleness markers, as a range vector holds them: borrowed when there
/// are none (nearly always), which is checked eight points at a time without a branch each.
pub(crate) fn without_stale_markers(points: &[Point]) -> std::borrow::Cow<'_, [Point]> {
    let any_stale = points.chunks(8).any(|eight| {
        eight
            .iter()
            .fold(false, |stale, point| stale | is_stale_nan(point.v))
    });
    if !any_stale {
        return std::borrow::Cow::Borrowed(points);
    }
    std::borrow::Cow::Owned(
        points
            .iter()
            .filter(|point| !is_stale_nan(point.v))
            .copied()
            .collect(),
    )
}

/// One label: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A set of labels sorted by name, each name once. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A label set from pairs in any order; a later pair with the same name replaces an earlier
    /// one, and labels with an empty value are left out (an empty value means no label).
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut labels: Vec<Label> = Vec::new();
        for (name, value) in pairs {
            let (name, value) = (name.into(), value.into());
            labels.retain(|label| label.name != name);
            if !value.is_empty() {
                labels.push(Label { name, value });
            }
        }
        labels.sort();
        Self(labels.into())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`, if the set has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|label| label.name.as_str().cmp(name))
            .ok()
            .map(|index| self.0[index].value.as_str())
    }

    /// The metric name, if the set has one.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The same set without the metric name.
    pub fn without_metric_name(&self) -> Self {
        if self.get(METRIC_NAME).is_none() {
            return self.clone();
        }
        self.filtered(|label| label.name != METRIC_NAME)
    }

    /// The labels for which `keep` holds.
    pub fn filtered(&self, mut keep: impl FnMut(&Label) -> bool) -> Self {
        Self(self.0.iter().filter(|label| keep(label)).cloned().collect())
    }

    /// The same set with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Self {
        let mut labels: Vec<Label> = self
            .0
            .iter()
            .filter(|label| label.name != name)
            .cloned()
            .collect();
        if !value.is_empty() {
            labels.push(Label {
                name: name.to_owned(),
                value: value.to_owned(),
            });
            labels.sort();
        }
        Self(labels.into())
    }
}

impl fmt::Display for Labels {
    /// `{a="1", b="2"}`, with the metric name in front when there is one, as Prometheus prints
    /// series in its error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for label in self.iter().filter(|label| label.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", label.name, label.value)?;
        }
        f.write_str("}")
    }
}

/// One sample: a time (milliseconds) and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

impl Point {
    pub fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }
}

/// A series: its labels and its points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// An element of an instant vector: a series' labels and its value at the evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// The evaluation time, milliseconds.
    pub t: i64,
    pub v: f64,
}

/// What a query returns. An instant query returns any of the four types; a range query always
/// returns a [`Value::Matrix`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// The type's name in the Prometheus HTTP API (`resultType`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Formats a float the way Go's `strconv.FormatFloat(v, 'f', -1, 64)` does, which is how
/// Prometheus writes sample values in JSON and in `count_values` labels: the shortest decimal
/// that reads back to the same float, never in exponent form, and `NaN`, `+Inf`, `-Inf`.
pub fn format_float(value: f64) -> String {
    let mut text = String::new();
    write_float(&mut text, value);
    text
}

/// Appends [`format_float`]'s text of `value` to `out`, without a string of its own: what a
/// writer of many values (a JSON answer) calls.
pub fn write_float(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    // Below 2^53 every whole float is an integer exactly; -0 keeps its sign (Go writes "-0").
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if value.fract() == 0.0
        && value.abs() < EXACT_INTEGERS
        && !(value == 0.0 && value.is_sign_negative())
    {
        // Whole values (counters, counts) are most samples: integer formatting is the same
        // text as the float's, several times faster.
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        // Rust's Display is the shortest round-trip representation without an exponent.
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_markers_are_dropped_wherever_they_are_and_nothing_else_is() {
        for length in [0_usize, 1, 7, 8, 9, 17] {
            let clean: Vec<Point> = (0..length)
                .map(|i| Point::new(i as i64, if i == 2 { f64::NAN } else { i as f64 }))
                .collect();
            assert!(matches!(
                without_stale_markers(&clean),
                std::borrow::Cow::Borrowed(_)
            ));
            for at in 0..length {
                let mut points = clean.clone();
                points[at].v = stale_nan();
                let kept = without_stale_markers(&points);
                assert_eq!(kept.len(), length - 1, "a marker at {at} of {length}");
                assert!(kept.iter().all(|point| point.t != at as i64));
            }
        }
    }

    #[test]
    fn floats_are_written_as_go_writes_them_whole_or_not() {
        let cases: [(f64, &str); 14] = [
            (0.0, "0"),
            (-0.0, "-0"),
            (5.0, "5"),
            (-42.0, "-42"),
            (0.1, "0.1"),
            (1.5e-7, "0.00000015"),
            (123_456_789_012.0, "123456789012"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (1e21, "1000000000000000000000"),
            (f64::NAN, "NaN"),
            (stale_nan(), "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_float(value), expected, "{value:?}");
        }
        // The integer path writes what the float's shortest form writes.
        for value in [
            1.0,
            2.0f64.powi(52),
            -(2.0f64.powi(53) - 1.0),
            1e15,
            86_400.0,
        ] {
            let mut written = String::from("x");
            write_float(&mut written, value);
            assert_eq!(written, format!("x{value}"));
        }
    }
}
