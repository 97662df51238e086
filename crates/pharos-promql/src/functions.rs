//! The numeric function library, computed as Prometheus 2.42 computes it (`promql/functions.go`
//! and `promql/quantile.go` of that release): the functions over the points of a range vector's
//! window ([`RangeFunction`]: `rate`, `deriv`, the `*_over_time` family, `holt_winters`, ...), the
//! functions of one value ([`MathFunction`], [`round`]), the date functions ([`DateFunction`]),
//! the φ-quantile of a set of values ([`quantile`]) and `histogram_quantile` over classic buckets
//! ([`bucket_quantile`]).
//!
//! Everything here is pure arithmetic over floats and millisecond timestamps: the evaluator picks
//! the points, checks the argument types and turns invalid arguments into errors. The order of
//! the floating point operations follows Prometheus', so that results agree to the last bit
//! wherever Go's and Rust's elementary functions do.

use std::cmp::Ordering;
use std::f64::consts::{FRAC_PI_2, LN_2, LOG2_E, LOG10_E, PI};

use crate::types::Point;

/// Functions over the points of a range vector at one evaluation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFunction {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    PresentOverTime,
    HoltWinters,
}

/// The points a range function sees at one step, and where the window lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    /// Points in the window, oldest first, never empty, staleness markers already removed.
    pub points: &'a [Point],
    /// Start of the window in ms (end - range), included as in 2.42.
    pub range_start: i64,
    /// End of the window in ms (evaluation time - offset), included.
    pub range_end: i64,
    /// The step's evaluation time in ms (predict_linear's intercept time is this).
    pub eval_time: i64,
    /// For rate and increase, when the caller found them over the whole series beforehand: the
    /// value before each decrease within `points`, in order ([`CounterResets`]). `None`: found
    /// here, from `points`.
    pub values_before_resets: Option<&'a [f64]>,
}

impl RangeFunction {
    /// Whether the function adds the value before each decrease (a counter reset) of its
    /// window, which [`CounterResets`] can find once per series instead of once per window.
    pub(crate) fn corrects_counter_resets(self) -> bool {
        matches!(self, Self::Rate | Self::Increase)
    }
}

/// The decreases of one series (counter resets), found once: windows moving over the series
/// step by step take theirs with two cursors instead of comparing every pair of points at
/// every step. The values are those before each decrease, added in the same order as a
/// window's own pass would add them, so the answer is the same to the bit.
#[derive(Debug, Default)]
pub(crate) struct CounterResets {
    /// The index of the point after each decrease, ascending.
    after: Vec<usize>,
    /// The value before each decrease.
    values_before: Vec<f64>,
}

impl CounterResets {
    pub fn of(points: &[Point]) -> Self {
        let mut resets = Self::default();
        // Decreases are rare: each run of points is checked without a branch per pair, and
        // only a run holding one is walked pair by pair.
        const RUN: usize = 16;
        let mut start = 0;
        while start + 1 < points.len() {
            let end = points.len().min(start + RUN + 1);
            let run = &points[start..end];
            let decreases = run
                .windows(2)
                .fold(false, |any, pair| any | (pair[1].v < pair[0].v));
            if decreases {
                for (index, pair) in run.windows(2).enumerate() {
                    if pair[1].v < pair[0].v {
                        resets.after.push(start + index + 1);
                        resets.values_before.push(pair[0].v);
                    }
                }
            }
            start = end - 1;
        }
        resets
    }

    /// The values before the decreases within the points `first..last` (a decrease counts when
    /// both of its points are inside). `cursor` is where the previous window's were: windows
    /// given with one cursor must never move back (start a new cursor at `(0, 0)` then).
    #[inline]
    pub fn within(&self, first: usize, last: usize, cursor: &mut (usize, usize)) -> &[f64] {
        if self.after.is_empty() {
            return &[];
        }
        let low = advance(&self.after, cursor.0, |&after| after <= first);
        let high = advance(&self.after, cursor.1.max(low), |&after| after < last);
        *cursor = (low, high);
        &self.values_before[low..high]
    }
}

/// [`advance`], trying `from + moved` first (two comparisons): the bounds of windows sliding at
/// a fixed step over a regularly scraped series mostly move as far as they moved the last time.
#[inline]
pub(crate) fn advance_by<T>(
    items: &[T],
    from: usize,
    moved: usize,
    before: impl Fn(&T) -> bool,
) -> usize {
    let guess = from.saturating_add(moved);
    if guess <= items.len()
        && (guess == from || before(&items[guess - 1]))
        && (guess == items.len() || !before(&items[guess]))
    {
        return guess;
    }
    advance(items, from, before)
}

/// The index of the first item at or after `from` for which `before` is false, `before` holding
/// for a prefix of `items[from..]`. Bounds moving with the steps mostly advance by a few items,
/// so the next few are looked at one by one before a binary search over the rest.
pub(crate) fn advance<T>(items: &[T], from: usize, before: impl Fn(&T) -> bool) -> usize {
    const LOOKED_AT_FIRST: usize = 8;
    let mut index = from.min(items.len());
    let near = items.len().min(index + LOOKED_AT_FIRST);
    while index < near {
        if !before(&items[index]) {
            return index;
        }
        index += 1;
    }
    index + items[index..].partition_point(before)
}

impl RangeFunction {
    /// By PromQL name ("rate", "avg_over_time", ...); None for other names.
    pub(crate) fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => Self::Rate,
            "increase" => Self::Increase,
            "delta" => Self::Delta,
            "irate" => Self::Irate,
            "idelta" => Self::Idelta,
            "deriv" => Self::Deriv,
            "predict_linear" => Self::PredictLinear,
            "resets" => Self::Resets,
            "changes" => Self::Changes,
            "avg_over_time" => Self::AvgOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "sum_over_time" => Self::SumOverTime,
            "count_over_time" => Self::CountOverTime,
            "last_over_time" => Self::LastOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "present_over_time" => Self::PresentOverTime,
            "holt_winters" => Self::HoltWinters,
            _ => return None,
        })
    }

    /// Evaluates at one step. `params` are the function's scalar arguments at this step in call
    /// order without the range vector: quantile_over_time(q, v) -> [q]; predict_linear(v, t) ->
    /// [t]; holt_winters(v, sf, tf) -> [sf, tf]; others -> []. None means "no output element for
    /// this series at this step": rate, increase, delta, irate, idelta, deriv, predict_linear and
    /// holt_winters with fewer than 2 points, irate and idelta when their last two points have
    /// the same time, holt_winters with factors outside (0, 1) (see
    /// [`holt_winters_params_valid`]), and any function given no points or missing a parameter.
    pub(crate) fn evaluate(self, window: &Window<'_>, params: &[f64]) -> Option<f64> {
        let points = window.points;
        let (first, last) = (points.first()?, points.last()?);
        match self {
            Self::Rate => extrapolated_rate(window, true, true),
            Self::Increase => extrapolated_rate(window, true, false),
            Self::Delta => extrapolated_rate(window, false, false),
            Self::Irate => instant_value(points, true),
            Self::Idelta => instant_value(points, false),
            Self::Deriv => {
                if points.len() < 2 {
                    return None;
                }
                // The intercept is taken at the first point's time, near the values in use, to
                // avoid losing precision to large x (prometheus/prometheus#2674).
                let (slope, _) = linear_regression(points, first.t);
                Some(slope)
            }
            Self::PredictLinear => {
                let duration = *params.first()?;
                if points.len() < 2 {
                    return None;
                }
                let (slope, intercept) = linear_regression(points, window.eval_time);
                Some(slope * duration + intercept)
            }
            Self::Resets => Some(
                points
                    .windows(2)
                    .filter(|pair| pair[1].v < pair[0].v)
                    .count() as f64,
            ),
            Self::Changes => Some(
                points
                    .windows(2)
                    .filter(|pair| {
                        let (prev, current) = (pair[0].v, pair[1].v);
                        current != prev && !(current.is_nan() && prev.is_nan())
                    })
                    .count() as f64,
            ),
            Self::AvgOverTime => Some(avg_over_time(points)),
            Self::MinOverTime => {
                // A NaN so far is replaced by whatever comes next; a later NaN never wins.
                let mut min = first.v;
                for point in points {
                    if point.v < min || min.is_nan() {
                        min = point.v;
                    }
                }
                Some(min)
            }
            Self::MaxOverTime => {
                let mut max = first.v;
                for point in points {
                    if point.v > max || max.is_nan() {
                        max = point.v;
                    }
                }
                Some(max)
            }
            Self::SumOverTime => {
                let (mut sum, mut compensation) = (0.0, 0.0);
                for point in points {
                    (sum, compensation) = kahan_sum_inc(point.v, sum, compensation);
                }
                if sum.is_infinite() {
                    Some(sum)
                } else {
                    Some(sum + compensation)
                }
            }
            Self::CountOverTime => Some(points.len() as f64),
            Self::LastOverTime => Some(last.v),
            Self::QuantileOverTime => {
                let q = *params.first()?;
                let mut values: Vec<f64> = points.iter().map(|point| point.v).collect();
                Some(quantile(q, &mut values))
            }
            Self::StddevOverTime => Some(variance_over_time(points).sqrt()),
            Self::StdvarOverTime => Some(variance_over_time(points)),
            Self::PresentOverTime => Some(1.0),
            Self::HoltWinters => {
                let (sf, tf) = (*params.first()?, *params.get(1)?);
                if !holt_winters_params_valid(sf, tf) {
                    return None;
                }
                holt_winters(points, sf, tf)
            }
        }
    }
}

/// Whether holt_winters' smoothing factor `sf` and trend factor `tf` pass Prometheus' check
/// (`sf <= 0 || sf >= 1` and the same for `tf` are errors). As in Go, a NaN factor passes the
/// check (every comparison with NaN is false) and makes the result NaN.
pub(crate) fn holt_winters_params_valid(sf: f64, tf: f64) -> bool {
    let out_of_range = |factor: f64| factor <= 0.0 || factor >= 1.0;
    !out_of_range(sf) && !out_of_range(tf)
}

/// rate, increase and delta (2.42's extrapolatedRate): the difference between the last and the
/// first point (plus, for counters, the value before each decrease), extrapolated towards the
/// window's ends, and for rate divided by the range in seconds.
fn extrapolated_rate(window: &Window<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let points = window.points;
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter {
        match window.values_before_resets {
            Some(values) => {
                for value in values {
                    result += value;
                }
            }
            None => {
                for pair in points.windows(2) {
                    if pair[1].v < pair[0].v {
                        // A counter reset: the counter went back to zero and counted up again.
                        result += pair[0].v;
                    }
                }
            }
        }
    }
    let shape = WindowShape {
        to_start_ms: first.t - window.range_start,
        to_end_ms: window.range_end - last.t,
        sampled_ms: last.t - first.t,
        points: points.len(),
        range_ms: window.range_end - window.range_start,
        is_rate,
    };
    // A counter cannot go below zero: if extrapolating the slope backwards reaches zero before
    // the window's start, the series is taken to start there. In 2.42 this comes before the
    // threshold test (later releases swapped the two).
    if is_counter
        && result > 0.0
        && first.v >= 0.0
        && let Some(duration_to_zero) = zero_within_window(first.v, result, &shape)
    {
        return Some(result * shape.factor(duration_to_zero));
    }
    Some(result * memoized_factor(&shape))
}

/// What the extrapolation of a window depends on besides its values: where its first and last
/// points fall (milliseconds), how many there are, its range, and whether it is a rate. Windows
/// sliding over a regularly scraped series mostly have the shape of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowShape {
    to_start_ms: i64,
    to_end_ms: i64,
    sampled_ms: i64,
    points: usize,
    range_ms: i64,
    is_rate: bool,
}

impl WindowShape {
    /// The factor 2.42 multiplies the window's increase by, the series taken to start
    /// `duration_to_start` seconds after the window does (its first point, unless a counter
    /// reaches zero later than the window's start).
    fn factor(&self, duration_to_start: f64) -> f64 {
        let duration_to_end = self.to_end_ms as f64 / 1000.0;
        let sampled_interval = self.sampled_ms as f64 / 1000.0;
        let average_duration_between_samples = sampled_interval / (self.points - 1) as f64;
        // Extrapolate to an end if the points come close enough to it (up to 110 % of the
        // average interval); otherwise the series is taken to start or stop half an interval
        // beyond its first or last point.
        let extrapolation_threshold = average_duration_between_samples * 1.1;
        let mut extrapolate_to_interval = sampled_interval;
        if duration_to_start < extrapolation_threshold {
            extrapolate_to_interval += duration_to_start;
        } else {
            extrapolate_to_interval += average_duration_between_samples / 2.0;
        }
        if duration_to_end < extrapolation_threshold {
            extrapolate_to_interval += duration_to_end;
        } else {
            extrapolate_to_interval += average_duration_between_samples / 2.0;
        }
        let mut factor = extrapolate_to_interval / sampled_interval;
        if self.is_rate {
            factor /= duration_seconds(self.range_ms);
        }
        factor
    }
}

/// The factor of a window without a counter reaching zero inside it: the same as the last
/// window's on this thread when the shape is the same (four dependent divisions saved, most of
/// the cost of a rate), computed otherwise. Same inputs, same operations: the same bits.
fn memoized_factor(shape: &WindowShape) -> f64 {
    thread_local! {
        static LAST: std::cell::Cell<Option<(WindowShape, f64)>> =
            const { std::cell::Cell::new(None) };
    }
    LAST.with(|last| {
        if let Some((seen, factor)) = last.get()
            && seen == *shape
        {
            return factor;
        }
        let factor = shape.factor(shape.to_start_ms as f64 / 1000.0);
        last.set(Some((*shape, factor)));
        factor
    })
}

/// For a counter whose window rose by `increase` (> 0) from `first_value` (>= 0): the seconds
/// from its first point back to where its slope reaches zero, when that is after the window's
/// start (2.42's clamp). Mostly it is far before: that is told with two multiplications (the
/// slope reaches zero after the start only if `first_value / increase` is below
/// `to_start / sampled`, and a margin of 1e-9 dwarfs the few roundings of the exact test);
/// otherwise it is computed as Prometheus computes it.
fn zero_within_window(first_value: f64, increase: f64, shape: &WindowShape) -> Option<f64> {
    let reached = first_value * shape.sampled_ms as f64;
    let start = increase * shape.to_start_ms as f64;
    // A normal `reached` keeps the roundings relative (a subnormal one could be far off).
    if reached.is_normal() && start.is_finite() && reached > start * (1.0 + 1e-9) {
        return None;
    }
    let sampled_interval = shape.sampled_ms as f64 / 1000.0;
    let duration_to_zero = sampled_interval * (first_value / increase);
    (duration_to_zero < shape.to_start_ms as f64 / 1000.0).then_some(duration_to_zero)
}

/// A range of `millis` milliseconds in seconds, as Go's `time.Duration.Seconds` computes it
/// (whole seconds plus the remainder in nanoseconds divided by 1e9).
fn duration_seconds(millis: i64) -> f64 {
    let whole = millis / 1000;
    let nanos = (millis % 1000) * 1_000_000;
    whole as f64 + nanos as f64 / 1e9
}

/// irate and idelta (2.42's instantValue): from the last two points; irate takes a decrease for
/// a counter reset (the increase is then the last value) and divides by the seconds between the
/// points.
fn instant_value(points: &[Point], is_rate: bool) -> Option<f64> {
    let [.., previous, last] = points else {
        return None;
    };
    let mut result = if is_rate && last.v < previous.v {
        last.v
    } else {
        last.v - previous.v
    };
    let sampled_interval = last.t - previous.t;
    if sampled_interval == 0 {
        return None;
    }
    if is_rate {
        result /= sampled_interval as f64 / 1000.0;
    }
    Some(result)
}

/// The least-squares line through `points` (x in seconds relative to `intercept_time`), as
/// (slope, value at `intercept_time`), with Kahan sums. Constant values give a slope of 0 (NaN
/// for both when the constant is infinite).
fn linear_regression(points: &[Point], intercept_time: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = points.first().map_or(f64::NAN, |point| point.v);
    let mut const_y = true;
    for (index, point) in points.iter().enumerate() {
        if const_y && index > 0 && point.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (point.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(point.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * point.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;

    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// avg_over_time: an incremental mean with Kahan compensation, which keeps an infinite mean
/// once reached unless an infinity of the other sign or a NaN comes.
fn avg_over_time(points: &[Point]) -> f64 {
    let (mut mean, mut compensation, mut count) = (0.0_f64, 0.0, 0.0);
    for point in points {
        count += 1.0;
        if mean.is_infinite() {
            if point.v.is_infinite() && (mean > 0.0) == (point.v > 0.0) {
                // An infinity of the same sign: the mean is already right (and Inf - Inf would
                // make it NaN).
                continue;
            }
            if !point.v.is_infinite() && !point.v.is_nan() {
                // A finite value leaves an infinite mean infinite.
                continue;
            }
        }
        (mean, compensation) = kahan_sum_inc(point.v / count - mean / count, mean, compensation);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + compensation
    }
}

/// The population variance of the points' values (stdvar_over_time; stddev_over_time is its
/// square root), by Welford's incremental method with Kahan-compensated mean and sum of squares.
fn variance_over_time(points: &[Point]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for point in points {
        count += 1.0;
        let delta = point.v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (point.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// holt_winters: double exponential smoothing of the points' values with smoothing factor `sf`
/// and trend factor `tf`; the initial level is the first value and the initial trend the
/// difference between the first two. None with fewer than 2 points.
fn holt_winters(points: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    // Level before the last step, current level, current trend.
    let mut previous_level = 0.0;
    let mut level = points[0].v;
    let mut trend = points[1].v - points[0].v;
    for (index, point) in points.iter().enumerate().skip(1) {
        let scaled_value = sf * point.v;
        if index > 1 {
            trend = tf * (level - previous_level) + (1.0 - tf) * trend;
        }
        let scaled_forecast = (1.0 - sf) * (level + trend);
        previous_level = level;
        level = scaled_value + scaled_forecast;
    }
    Some(level)
}

/// One step of Kahan summation with Neumaier's improvement, as Prometheus' `kahanSumInc`:
/// adds `inc` to `sum`, accumulating the rounding error in the compensation `c`, and returns
/// the new (sum, c). The caller adds `c` to the sum at the end. In 2.42 it serves
/// sum_over_time, avg_over_time, stddev/stdvar_over_time and the linear regression of deriv and
/// predict_linear, not the aggregation operators (whose `sum` and `avg` add plainly).
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    // Neumaier: the compensation takes the low-order part of whichever term is smaller.
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Functions of one value: abs ceil floor exp ln log2 log10 sqrt sgn acos acosh asin asinh atan
/// atanh cos cosh sin sinh tan tanh deg rad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathFunction {
    Abs,
    Ceil,
    Floor,
    Exp,
    Ln,
    Log2,
    Log10,
    Sqrt,
    Sgn,
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    Cos,
    Cosh,
    Sin,
    Sinh,
    Tan,
    Tanh,
    Deg,
    Rad,
}

impl MathFunction {
    /// By PromQL name ("abs", "ln", ...); None for other names.
    pub(crate) fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "abs" => Self::Abs,
            "ceil" => Self::Ceil,
            "floor" => Self::Floor,
            "exp" => Self::Exp,
            "ln" => Self::Ln,
            "log2" => Self::Log2,
            "log10" => Self::Log10,
            "sqrt" => Self::Sqrt,
            "sgn" => Self::Sgn,
            "acos" => Self::Acos,
            "acosh" => Self::Acosh,
            "asin" => Self::Asin,
            "asinh" => Self::Asinh,
            "atan" => Self::Atan,
            "atanh" => Self::Atanh,
            "cos" => Self::Cos,
            "cosh" => Self::Cosh,
            "sin" => Self::Sin,
            "sinh" => Self::Sinh,
            "tan" => Self::Tan,
            "tanh" => Self::Tanh,
            "deg" => Self::Deg,
            "rad" => Self::Rad,
            _ => return None,
        })
    }

    /// The function of `v` as Go's `math` package computes it on amd64, with its results for
    /// NaN, the infinities and -0. Where Go composes a function from others in a way that shows
    /// in the result, the same composition is used: log10 is ln(v)·(1/ln 10), log2 is exact for
    /// powers of two, acos is π/2 - asin, sinh and cosh are e^|v|/2 beyond |v| = 21 (so they
    /// overflow to ±Inf from |v| ≈ 709.8), asinh and acosh stay finite up to the largest float,
    /// and ln (and so log10) of a subnormal is what Go's amd64 assembly gives (see [`go_ln`]).
    /// The elementary functions themselves are Rust's (the C library's), which can differ from
    /// Go's in the last bits.
    pub(crate) fn apply(self, v: f64) -> f64 {
        match self {
            Self::Abs => v.abs(),
            Self::Ceil => v.ceil(),
            Self::Floor => v.floor(),
            Self::Exp => v.exp(),
            Self::Ln => go_ln(v),
            Self::Log2 => go_log2(v),
            Self::Log10 => go_ln(v) * LOG10_E,
            Self::Sqrt => v.sqrt(),
            Self::Sgn => {
                if v < 0.0 {
                    -1.0
                } else if v > 0.0 {
                    1.0
                } else {
                    // ±0 and NaN are their own sign.
                    v
                }
            }
            Self::Acos => FRAC_PI_2 - v.asin(),
            Self::Acosh => go_acosh(v),
            Self::Asin => v.asin(),
            Self::Asinh => go_asinh(v),
            Self::Atan => v.atan(),
            Self::Atanh => go_atanh(v),
            Self::Cos => v.cos(),
            Self::Cosh => {
                if v.abs() > 21.0 {
                    v.abs().exp() * 0.5
                } else {
                    v.cosh()
                }
            }
            Self::Sin => v.sin(),
            Self::Sinh => {
                if v.abs() > 21.0 {
                    let half_exp = v.abs().exp() * 0.5;
                    if v < 0.0 { -half_exp } else { half_exp }
                } else {
                    v.sinh()
                }
            }
            Self::Tan => v.tan(),
            Self::Tanh => v.tanh(),
            Self::Deg => v * 180.0 / PI,
            Self::Rad => v * PI / 180.0,
        }
    }
}

/// 2^28: beyond it asinh and acosh are ln(2x), below its inverse asinh and atanh are x.
const HYPERBOLIC_LARGE: f64 = (1u64 << 28) as f64;

/// `v` split as Go's `math.Frexp` does: a fraction in [0.5, 1) (with the sign of `v`) and a
/// power of two; ±0, ±Inf and NaN come back unchanged with exponent 0.
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return (v, 0);
    }
    let (mut v, mut exponent) = (v, 0);
    if v.abs() < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        v *= (1u64 << 52) as f64;
        exponent = -52;
    }
    const EXPONENT_MASK: u64 = 0x7ff << 52;
    let bits = v.to_bits();
    exponent += ((bits & EXPONENT_MASK) >> 52) as i32 - 1022;
    let fraction = f64::from_bits((bits & !EXPONENT_MASK) | (1022 << 52));
    (fraction, exponent)
}

/// The natural logarithm as Go's `math.Log` gives it on amd64, whose assembly reads the bits of
/// a subnormal as those of a normal number with the exponent -1023: for a subnormal `v` with
/// mantissa bits m the result is ln((1 + m/2^52)·2^-1023) (-709.0895657128241 for 5e-324,
/// where the true value is -744.44).
fn go_ln(v: f64) -> f64 {
    if v > 0.0 && v < f64::MIN_POSITIVE {
        const MANTISSA_MASK: u64 = (1 << 52) - 1;
        let mantissa = (v.to_bits() & MANTISSA_MASK) as f64 / (1u64 << 52) as f64;
        return (1.0 + mantissa).ln() - 1023.0 * LN_2;
    }
    v.ln()
}

/// log2 as Go computes it: exact for powers of two, otherwise ln(fraction)/ln 2 + exponent
/// (the fraction is normal, so subnormals come out right here).
fn go_log2(v: f64) -> f64 {
    let (fraction, exponent) = frexp(v);
    if fraction == 0.5 {
        return f64::from(exponent - 1);
    }
    fraction.ln() * LOG2_E + f64::from(exponent)
}

/// acosh with Go's special cases (NaN below 1, 0 at 1) and without overflow for large values.
fn go_acosh(v: f64) -> f64 {
    if v < 1.0 || v.is_nan() {
        f64::NAN
    } else if v == 1.0 {
        0.0
    } else if v >= HYPERBOLIC_LARGE {
        // acosh(x) = ln(2x) to double precision; also +Inf for +Inf.
        v.ln() + LN_2
    } else if v > 2.0 {
        (2.0 * v - 1.0 / (v + (v * v - 1.0).sqrt())).ln()
    } else {
        let t = v - 1.0;
        (t + (2.0 * t + t * t).sqrt()).ln_1p()
    }
}

/// asinh with Go's special cases (NaN, ±Inf and ±0 are their own result) and without overflow
/// for large magnitudes.
fn go_asinh(v: f64) -> f64 {
    if v.is_nan() || v.is_infinite() {
        return v;
    }
    // Negated only when below zero, so that -0 stays -0.
    let (x, negative) = if v < 0.0 { (-v, true) } else { (v, false) };
    let result = if x > HYPERBOLIC_LARGE {
        x.ln() + LN_2
    } else if x > 2.0 {
        (2.0 * x + 1.0 / ((x * x + 1.0).sqrt() + x)).ln()
    } else if x < 1.0 / HYPERBOLIC_LARGE {
        x
    } else {
        (x + x * x / (1.0 + (1.0 + x * x).sqrt())).ln_1p()
    };
    if negative { -result } else { result }
}

/// atanh with Go's special cases: NaN outside [-1, 1], ±Inf at ±1, ±0 kept.
fn go_atanh(v: f64) -> f64 {
    // Outside [-1, 1], NaN included.
    if !(-1.0..=1.0).contains(&v) {
        return f64::NAN;
    }
    if v == 1.0 {
        return f64::INFINITY;
    }
    if v == -1.0 {
        return f64::NEG_INFINITY;
    }
    let (x, negative) = if v < 0.0 { (-v, true) } else { (v, false) };
    let result = if x < 1.0 / HYPERBOLIC_LARGE {
        x
    } else if x < 0.5 {
        let doubled = x + x;
        0.5 * (doubled + doubled * x / (1.0 - x)).ln_1p()
    } else {
        0.5 * ((x + x) / (1.0 - x)).ln_1p()
    };
    if negative { -result } else { result }
}

/// round(v, to_nearest): Prometheus' `math.Floor(v*inverse+0.5)/inverse` with
/// `inverse = 1/to_nearest` (ties go up; a `to_nearest` of 0 gives NaN).
pub(crate) fn round(v: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// The date functions; each takes a Unix time in seconds (float) and returns the UTC field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateFunction {
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    DaysInMonth,
    Hour,
    Minute,
    Month,
    Year,
}

impl DateFunction {
    /// By PromQL name ("day_of_month", "year", ...); None for other names.
    pub(crate) fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "day_of_month" => Self::DayOfMonth,
            "day_of_week" => Self::DayOfWeek,
            "day_of_year" => Self::DayOfYear,
            "days_in_month" => Self::DaysInMonth,
            "hour" => Self::Hour,
            "minute" => Self::Minute,
            "month" => Self::Month,
            "year" => Self::Year,
            _ => return None,
        })
    }

    /// The field of the UTC date and time at `seconds` after the Unix epoch, as Go's
    /// `time.Unix(int64(seconds), 0).UTC()` gives it: the seconds are truncated towards zero
    /// (-0.5 is 1970-01-01), the calendar is the proleptic Gregorian one (negative times are
    /// before 1970), day_of_week counts from Sunday = 0, month from January = 1. NaN and values
    /// beyond ±2^63 convert as on amd64 (to -2^63), and dates beyond Go's time range wrap around
    /// as Go's arithmetic does.
    pub(crate) fn apply(self, seconds: f64) -> f64 {
        let civil = CivilTime::from_unix(go_float_to_i64(seconds));
        match self {
            Self::DayOfMonth => f64::from(civil.day),
            Self::DayOfWeek => f64::from(civil.weekday),
            Self::DayOfYear => f64::from(
                (1..civil.month)
                    .map(|month| days_in_month(civil.year, month))
                    .sum::<u32>()
                    + civil.day,
            ),
            Self::DaysInMonth => f64::from(days_in_month(civil.year, civil.month)),
            Self::Hour => f64::from(civil.hour),
            Self::Minute => f64::from(civil.minute),
            Self::Month => f64::from(civil.month),
            Self::Year => civil.year as f64,
        }
    }
}

/// Go's `int64(v)` on amd64: truncation towards zero, and -2^63 for NaN and for values outside
/// the range of i64 (where Rust's `as` would saturate instead).
fn go_float_to_i64(v: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

/// Seconds in a day (UTC has no leap seconds in Unix time).
const SECONDS_PER_DAY: u64 = 86_400;
/// Days in a 400-year Gregorian cycle: 97 of its years are leap years.
const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
/// Days in a century that does not end in a year divisible by 400 (24 leap years).
const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
/// Days in four years that end in a leap year.
const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;

/// The year at which Go's time package starts counting ("absolute" time): a year that begins a
/// 400-year Gregorian cycle, early enough for every i64 of seconds.
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;

/// Seconds from 1 January of [`ABSOLUTE_ZERO_YEAR`] to the Unix epoch: whole 400-year cycles up
/// to 1 January of year 1, then the 719,162 days from year 1 to 1970.
const UNIX_TO_ABSOLUTE: u64 =
    ((1 - ABSOLUTE_ZERO_YEAR) as u64 / 400 * DAYS_PER_400_YEARS + 719_162) * SECONDS_PER_DAY;

/// The UTC calendar fields of a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CivilTime {
    year: i64,
    /// 1 to 12.
    month: u32,
    /// 1 to 31.
    day: u32,
    hour: u32,
    minute: u32,
    /// Sunday = 0.
    weekday: u32,
}

impl CivilTime {
    /// The fields at `unix_seconds`, counted as Go counts them: in unsigned seconds since
    /// 1 January of [`ABSOLUTE_ZERO_YEAR`], with wrapping arithmetic.
    fn from_unix(unix_seconds: i64) -> Self {
        let absolute = (unix_seconds as u64).wrapping_add(UNIX_TO_ABSOLUTE);
        let second_of_day = absolute % SECONDS_PER_DAY;
        // 1 January of the absolute zero year was a Monday (weekday 1), as was 1 January 2001.
        let weekday =
            absolute.wrapping_add(SECONDS_PER_DAY) % (7 * SECONDS_PER_DAY) / SECONDS_PER_DAY;

        // Whole 400-year cycles, then 100-year, 4-year and 1-year periods; the last day of a
        // cycle's last period (a leap day) would count as a fifth period, hence the min(3).
        let mut days = absolute / SECONDS_PER_DAY;
        let cycles_400 = days / DAYS_PER_400_YEARS;
        days -= cycles_400 * DAYS_PER_400_YEARS;
        let centuries = (days / DAYS_PER_100_YEARS).min(3);
        days -= centuries * DAYS_PER_100_YEARS;
        let cycles_4 = days / DAYS_PER_4_YEARS;
        days -= cycles_4 * DAYS_PER_4_YEARS;
        let years = (days / 365).min(3);
        days -= years * 365;
        let year_offset = 400 * cycles_400 + 100 * centuries + 4 * cycles_4 + years;
        let year = (year_offset as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);

        // `days` is now the day of the year, 0-based.
        let mut day_of_year = days as u32;
        let mut month = 1;
        while month < 12 {
            let length = days_in_month(year, month);
            if day_of_year < length {
                break;
            }
            day_of_year -= length;
            month += 1;
        }
        Self {
            year,
            month,
            day: day_of_year + 1,
            hour: (second_of_day / 3600) as u32,
            minute: (second_of_day % 3600 / 60) as u32,
            weekday: weekday as u32,
        }
    }
}

/// Whether `year` is a leap year of the Gregorian calendar.
fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days of `month` (1 to 12) in `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Orders floats ascending with NaN before everything (as Prometheus' `vectorByValueHeap`
/// sorts), ±0 equal.
fn nan_first_ascending(a: &f64, b: &f64) -> Ordering {
    a.partial_cmp(b)
        .unwrap_or_else(|| b.is_nan().cmp(&a.is_nan()))
}

/// The φ-quantile of `values` (sorted in place, NaN first), as Prometheus' `quantile` (the
/// aggregation and quantile_over_time): NaN for no values or NaN q, -Inf for q<0, +Inf for q>1,
/// otherwise linear interpolation between the values around rank q*(n-1).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first_ascending);

    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower_index = rank.floor().max(0.0);
    let upper_index = (lower_index + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower_index as usize] * (1.0 - weight) + values[upper_index as usize] * weight
}

/// One classic histogram bucket: its `le` upper bound and its cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    /// The bucket's `le` label as a float.
    pub upper_bound: f64,
    /// Observations less than or equal to `upper_bound`.
    pub count: f64,
}

/// histogram_quantile over classic buckets exactly as 2.42's bucketQuantile: NaN for NaN q,
/// -Inf for q<0, +Inf for q>1; otherwise the buckets are sorted by bound, NaN if the highest
/// bound is not +Inf, equal bounds coalesced (their counts added), counts made monotonic (each
/// at least the one before), NaN for fewer than 2 buckets or 0 observations. A quantile in the
/// +Inf bucket is the second highest bound; one in a first bucket whose bound is <= 0 is that
/// bound; otherwise it is interpolated linearly in its bucket, the first bucket starting at 0.
/// No buckets at all give NaN (Prometheus never asks). A NaN bound sorts last, so it makes the
/// result NaN.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or_else(|| a.upper_bound.is_nan().cmp(&b.upper_bound.is_nan()))
    });
    match buckets.last() {
        Some(highest) if highest.upper_bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }

    coalesce_buckets(buckets);
    ensure_monotonic(buckets);

    let len = buckets.len();
    if len < 2 {
        return f64::NAN;
    }
    let observations = buckets[len - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = search(len - 1, |index| buckets[index].count >= rank);

    if b == len - 1 {
        return buckets[len - 2].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Merges adjacent buckets (sorted by bound) with equal bounds, adding their counts.
fn coalesce_buckets(buckets: &mut Vec<Bucket>) {
    if buckets.is_empty() {
        return;
    }
    let mut kept = 0;
    for index in 1..buckets.len() {
        if buckets[index].upper_bound == buckets[kept].upper_bound {
            buckets[kept].count += buckets[index].count;
        } else {
            kept += 1;
            buckets[kept] = buckets[index];
        }
    }
    buckets.truncate(kept + 1);
}

/// Raises every count that is below an earlier one to the highest count so far (the "envelope"
/// Prometheus takes, as buckets scraped or federated non-atomically can decrease).
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let Some(first) = buckets.first() else {
        return;
    };
    let mut max = first.count;
    for bucket in buckets.iter_mut().skip(1) {
        if bucket.count > max {
            max = bucket.count;
        } else if bucket.count < max {
            bucket.count = max;
        }
    }
}

/// The smallest index in `0..n` for which `predicate` holds, `n` if none, by the same bisection
/// as Go's `sort.Search` (which matters when NaN counts make the predicate non-monotonic).
fn search(n: usize, predicate: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, n);
    while low < high {
        let middle = low + (high - low) / 2;
        if predicate(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points from (seconds, value) pairs.
    fn points(samples: &[(f64, f64)]) -> Vec<Point> {
        samples
            .iter()
            .map(|&(seconds, v)| Point::new((seconds * 1000.0) as i64, v))
            .collect()
    }

    /// A window over `points` from `start` to `end` seconds, evaluated at `end`.
    fn window(points: &[Point], start: f64, end: f64) -> Window<'_> {
        Window {
            points,
            range_start: (start * 1000.0) as i64,
            range_end: (end * 1000.0) as i64,
            eval_time: (end * 1000.0) as i64,
            values_before_resets: None,
        }
    }

    /// Evaluates `function` over `samples` in the window [start, end] seconds.
    fn eval(
        function: RangeFunction,
        samples: &[(f64, f64)],
        start: f64,
        end: f64,
        params: &[f64],
    ) -> Option<f64> {
        let points = points(samples);
        function.evaluate(&window(&points, start, end), params)
    }

    /// Asserts `actual` is within a relative 1e-12 of `expected` (exactly equal for
    /// infinities, both NaN for NaN).
    #[track_caller]
    fn assert_close(actual: f64, expected: f64) {
        if expected.is_nan() {
            assert!(actual.is_nan(), "expected NaN, got {actual}");
        } else if expected.is_infinite() || expected == 0.0 {
            assert_eq!(actual, expected);
        } else {
            let error = ((actual - expected) / expected).abs();
            assert!(error < 1e-12, "expected {expected}, got {actual}");
        }
    }

    /// Asserts `actual` is Some and close to `expected`.
    #[track_caller]
    fn assert_some_close(actual: Option<f64>, expected: f64) {
        match actual {
            Some(actual) => assert_close(actual, expected),
            None => panic!("expected {expected}, got None"),
        }
    }

    /// Asserts `v` is -0.0 (zero with the sign bit set).
    #[track_caller]
    fn assert_negative_zero(v: f64) {
        assert!(v == 0.0 && v.is_sign_negative(), "expected -0, got {v}");
    }

    #[test]
    fn names_resolve_and_others_do_not() {
        assert_eq!(RangeFunction::by_name("rate"), Some(RangeFunction::Rate));
        assert_eq!(
            RangeFunction::by_name("quantile_over_time"),
            Some(RangeFunction::QuantileOverTime)
        );
        assert_eq!(
            RangeFunction::by_name("holt_winters"),
            Some(RangeFunction::HoltWinters)
        );
        assert_eq!(
            RangeFunction::by_name("present_over_time"),
            Some(RangeFunction::PresentOverTime)
        );
        assert_eq!(RangeFunction::by_name("absent_over_time"), None);
        assert_eq!(RangeFunction::by_name("Rate"), None);
        assert_eq!(MathFunction::by_name("ln"), Some(MathFunction::Ln));
        assert_eq!(MathFunction::by_name("rad"), Some(MathFunction::Rad));
        assert_eq!(MathFunction::by_name("log"), None);
        assert_eq!(MathFunction::by_name("round"), None);
        assert_eq!(
            DateFunction::by_name("days_in_month"),
            Some(DateFunction::DaysInMonth)
        );
        // Debian's Prometheus 2.42 evaluates day_of_year (checked against the real binary).
        assert_eq!(
            DateFunction::by_name("day_of_year"),
            Some(DateFunction::DayOfYear)
        );
    }

    #[test]
    fn rate_extrapolates_to_both_ends_of_an_evenly_sampled_window() {
        // Counter 100, 110, ..., 150 at 5 s, 15 s, ..., 55 s in [0 s, 60 s]:
        // increase 50 over 50 s sampled; 5 s to each end, under the threshold 1.1 × 10 s;
        // zero point 50 × 100/50 = 100 s back, beyond the start. Extrapolated over 60 s:
        // increase = 50 × 60/50 = 60, rate = 60 / 60 s = 1.
        let samples: Vec<(f64, f64)> = (0..6)
            .map(|i| (5.0 + 10.0 * f64::from(i), 100.0 + 10.0 * f64::from(i)))
            .collect();
        assert_some_close(
            eval(RangeFunction::Increase, &samples, 0.0, 60.0, &[]),
            60.0,
        );
        assert_some_close(eval(RangeFunction::Rate, &samples, 0.0, 60.0, &[]), 1.0);
        assert_some_close(eval(RangeFunction::Delta, &samples, 0.0, 60.0, &[]), 60.0);
    }

    #[test]
    fn resets_found_once_per_series_give_every_window_its_own_answer_to_the_bit() {
        // A counter with resets (to 0 and part way), a NaN and repeated values, at uneven times.
        let values = [
            5.0,
            9.0,
            9.0,
            2.0,
            7.0,
            0.0,
            3.5,
            3.0,
            8.0,
            f64::NAN,
            4.0,
            1.0,
            6.0,
            6.0,
            0.5,
            11.0,
        ];
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| Point::new(i as i64 * 10_000 + (i as i64 % 3) * 700, v))
            .collect();
        let resets = CounterResets::of(&points);
        for size in 2..=points.len() {
            // Windows of `size` points sliding forward, one cursor for all of them.
            let mut cursor = (0, 0);
            for first in 0..=points.len() - size {
                let last = first + size;
                let own = Window {
                    points: &points[first..last],
                    range_start: points[first].t - 3_000,
                    range_end: points[last - 1].t + 2_000,
                    eval_time: points[last - 1].t + 2_000,
                    values_before_resets: None,
                };
                let found = Window {
                    values_before_resets: Some(resets.within(first, last, &mut cursor)),
                    ..own
                };
                for function in [RangeFunction::Rate, RangeFunction::Increase] {
                    let (expected, actual) =
                        (function.evaluate(&own, &[]), function.evaluate(&found, &[]));
                    assert_eq!(
                        expected.map(f64::to_bits),
                        actual.map(f64::to_bits),
                        "{function:?} over points {first}..{last}: {expected:?} != {actual:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn counter_resets_are_found_across_the_runs_checked_at_once() {
        // Decreases at every offset around the runs' bounds (16 pairs a run), NaN among them.
        for length in [0, 1, 2, 16, 17, 18, 33, 50] {
            for decrease_at in 0..length {
                let points: Vec<Point> = (0..length)
                    .map(|i| {
                        let v = match i {
                            _ if i == decrease_at => 0.5,
                            _ if i == decrease_at + 3 => f64::NAN,
                            _ => i as f64,
                        };
                        Point::new(i as i64 * 1_000, v)
                    })
                    .collect();
                let resets = CounterResets::of(&points);
                let expected: Vec<(usize, f64)> = points
                    .windows(2)
                    .enumerate()
                    .filter(|(_, pair)| pair[1].v < pair[0].v)
                    .map(|(index, pair)| (index + 1, pair[0].v))
                    .collect();
                let found: Vec<(usize, f64)> = resets
                    .after
                    .iter()
                    .copied()
                    .zip(resets.values_before.iter().copied())
                    .collect();
                assert_eq!(
                    found, expected,
                    "{length} points, decrease at {decrease_at}"
                );
            }
        }
    }

    #[test]
    fn advance_finds_the_end_of_the_prefix_near_and_far() {
        let items: Vec<i64> = (0..100).collect();
        for from in [0, 3, 50, 99, 100] {
            for bound in [-1, 0, 2, 9, 10, 60, 99, 100, 200] {
                let expected = items.partition_point(|&x| x < bound).max(from);
                assert_eq!(
                    advance(&items, from, |&x| x < bound),
                    expected,
                    "from {from} to {bound}"
                );
            }
        }
        assert_eq!(advance(&items, 500, |&x| x < 10), 100);
    }

    #[test]
    fn advance_by_a_guess_finds_what_advance_finds() {
        let items: Vec<i64> = (0..100).map(|x| x * 2).collect();
        for from in [0, 3, 50, 98, 99, 100] {
            for bound in [-1, 0, 2, 9, 10, 60, 197, 198, 199, 200, 400] {
                for moved in [0, 1, 3, 4, 5, 50, 200, usize::MAX] {
                    assert_eq!(
                        advance_by(&items, from, moved, |&x| x < bound),
                        advance(&items, from, |&x| x < bound),
                        "from {from} to {bound}, guessed {moved} on"
                    );
                }
            }
        }
    }

    #[test]
    fn rate_adds_the_value_before_a_counter_reset() {
        // 10, 20, 5, 15 at 0, 10, 20, 30 s in [0 s, 30 s]: 15 - 10 = 5, plus 20 for the reset
        // = 25; the points span the window exactly (zero point 30 × 10/25 = 12 s back is
        // beyond the start, which is 0 s away), so increase = 25, rate = 25/30.
        let samples = [(0.0, 10.0), (10.0, 20.0), (20.0, 5.0), (30.0, 15.0)];
        assert_some_close(
            eval(RangeFunction::Increase, &samples, 0.0, 30.0, &[]),
            25.0,
        );
        assert_some_close(
            eval(RangeFunction::Rate, &samples, 0.0, 30.0, &[]),
            25.0 / 30.0,
        );
        // delta is not a counter function: 15 - 10 = 5, no reset correction.
        assert_some_close(eval(RangeFunction::Delta, &samples, 0.0, 30.0, &[]), 5.0);
    }

    #[test]
    fn rate_extrapolates_a_counter_back_to_zero_at_most() {
        // 1, 11, 21 at 20, 30, 40 s in [0 s, 40 s]: increase 20 over 20 s; the start is 20 s
        // away, but the counter reaches zero 20 × 1/20 = 1 s before its first point, under the
        // threshold 11 s: extrapolated over 20 + 1 + 0 = 21 s, increase = 20 × 21/20 = 21.
        let samples = [(20.0, 1.0), (30.0, 11.0), (40.0, 21.0)];
        assert_some_close(
            eval(RangeFunction::Increase, &samples, 0.0, 40.0, &[]),
            21.0,
        );
        assert_some_close(
            eval(RangeFunction::Rate, &samples, 0.0, 40.0, &[]),
            21.0 / 40.0,
        );
        // delta has no zero point: 20 s ≥ 11 s, so half an interval (5 s): 20 × 25/20 = 25.
        assert_some_close(eval(RangeFunction::Delta, &samples, 0.0, 40.0, &[]), 25.0);
    }

    #[test]
    fn rate_applies_the_zero_point_before_the_threshold_as_2_42_does() {
        // 8, 18, 28 at 20, 30, 40 s in [0 s, 40 s]: the start is 20 s away (≥ 11 s), the zero
        // point 20 × 8/20 = 8 s back. 2.42 first shortens the start to 8 s, which is under the
        // threshold, so extrapolates 8 s: 20 × 28/20 = 28. (From 2.51 on the start would first
        // become 5 s, giving 25.)
        let samples = [(20.0, 8.0), (30.0, 18.0), (40.0, 28.0)];
        assert_some_close(
            eval(RangeFunction::Increase, &samples, 0.0, 40.0, &[]),
            28.0,
        );
    }

    #[test]
    fn rate_extrapolates_half_an_interval_towards_a_far_end() {
        // 0, 10, 20 at 0, 10, 20 s in [0 s, 60 s]: the end is 40 s away (≥ 11 s): the series
        // is taken to stop 5 s after its last point: 20 × 25/20 = 25, rate 25/60.
        let samples = [(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)];
        assert_some_close(eval(RangeFunction::Delta, &samples, 0.0, 60.0, &[]), 25.0);
        assert_some_close(
            eval(RangeFunction::Increase, &samples, 0.0, 60.0, &[]),
            25.0,
        );
        assert_some_close(
            eval(RangeFunction::Rate, &samples, 0.0, 60.0, &[]),
            25.0 / 60.0,
        );
    }

    #[test]
    fn rate_does_not_use_the_zero_point_of_a_negative_or_falling_counter() {
        // -5, 5 at 10, 20 s in [0 s, 20 s]: increase 10, first value negative: no zero point,
        // the start (10 s) is under 11 s: 10 × 20/10 = 20.
        let samples = [(10.0, -5.0), (20.0, 5.0)];
        assert_some_close(
            eval(RangeFunction::Increase, &samples, 0.0, 20.0, &[]),
            20.0,
        );
        // delta of a falling gauge: 5 - 15 = -10, extrapolated the same way to -20.
        let samples = [(10.0, 15.0), (20.0, 5.0)];
        assert_some_close(eval(RangeFunction::Delta, &samples, 0.0, 20.0, &[]), -20.0);
    }

    #[test]
    fn rate_divides_by_the_range_including_fractions_of_a_second() {
        // 0 and 3 at 0 and 1.5 s in [0 s, 1.5 s]: increase 3, rate 3 / 1.5 s = 2.
        let samples = [(0.0, 0.0), (1.5, 3.0)];
        assert_some_close(eval(RangeFunction::Rate, &samples, 0.0, 1.5, &[]), 2.0);
        assert_eq!(duration_seconds(1_500), 1.5);
        assert_eq!(duration_seconds(300_000), 300.0);
    }

    /// 2.42's extrapolatedRate as written, division by division, without the shortcuts.
    fn extrapolated_rate_as_written(
        points: &[Point],
        (range_start, range_end): (i64, i64),
        is_counter: bool,
        is_rate: bool,
    ) -> Option<f64> {
        if points.len() < 2 {
            return None;
        }
        let (first, last) = (points[0], points[points.len() - 1]);
        let mut result = last.v - first.v;
        if is_counter {
            for pair in points.windows(2) {
                if pair[1].v < pair[0].v {
                    result += pair[0].v;
                }
            }
        }
        let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
        let duration_to_end = (range_end - last.t) as f64 / 1000.0;
        let sampled_interval = (last.t - first.t) as f64 / 1000.0;
        let average = sampled_interval / (points.len() - 1) as f64;
        if is_counter && result > 0.0 && first.v >= 0.0 {
            let duration_to_zero = sampled_interval * (first.v / result);
            if duration_to_zero < duration_to_start {
                duration_to_start = duration_to_zero;
            }
        }
        let threshold = average * 1.1;
        let mut interval = sampled_interval;
        interval += if duration_to_start < threshold {
            duration_to_start
        } else {
            average / 2.0
        };
        interval += if duration_to_end < threshold {
            duration_to_end
        } else {
            average / 2.0
        };
        let mut factor = interval / sampled_interval;
        if is_rate {
            factor /= duration_seconds(range_end - range_start);
        }
        Some(result * factor)
    }

    #[test]
    fn rates_with_the_shortcuts_are_the_rates_as_written_to_the_bit() {
        // Windows of jittered scrapes over counters that start near zero (the clamp's edge),
        // far from it, at zero, or hold NaN and infinities; shapes repeat and alternate, as
        // windows sliding over series do.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |below: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % below.max(1)
        };
        let mut compared = 0;
        for case in 0..20_000 {
            let count = 2 + next(30) as usize;
            let range_start = next(1_000) as i64 * 1_000;
            let offset = match next(3) {
                0 => 0,
                _ => next(20_000) as i64,
            };
            let mut t = range_start + offset;
            let start_value = match next(6) {
                0 => 0.0,
                1 => next(10) as f64 * 1e-3,
                2 => 1e15 + next(1_000) as f64,
                3 => f64::from_bits(next(1 << 20)),
                _ => next(100_000) as f64,
            };
            let mut v = start_value;
            let mut points = Vec::with_capacity(count);
            for _ in 0..count {
                points.push(Point::new(t, v));
                t += 15_000 + next(3) as i64 * 500 - 500;
                v += match next(40) {
                    0 => -v,
                    1 => f64::NAN,
                    2 => f64::INFINITY,
                    _ => next(50) as f64 * 0.25,
                };
                if v.is_nan() && next(2) == 0 {
                    v = 1.0;
                }
            }
            let range_end = t - 15_000 + next(20_000) as i64;
            for (is_counter, is_rate) in [(true, true), (true, false), (false, false)] {
                let window = Window {
                    points: &points,
                    range_start,
                    range_end,
                    eval_time: range_end,
                    values_before_resets: None,
                };
                let expected = extrapolated_rate_as_written(
                    &points,
                    (range_start, range_end),
                    is_counter,
                    is_rate,
                );
                let actual = extrapolated_rate(&window, is_counter, is_rate);
                assert_eq!(
                    actual.map(f64::to_bits),
                    expected.map(f64::to_bits),
                    "case {case}: {actual:?} != {expected:?} over {points:?} in \
                     {range_start}..={range_end}"
                );
                compared += 1;
            }
        }
        assert_eq!(compared, 60_000);
    }

    #[test]
    fn rate_needs_two_points() {
        let samples = [(10.0, 5.0)];
        for function in [
            RangeFunction::Rate,
            RangeFunction::Increase,
            RangeFunction::Delta,
            RangeFunction::Irate,
            RangeFunction::Idelta,
            RangeFunction::Deriv,
        ] {
            assert_eq!(
                eval(function, &samples, 0.0, 60.0, &[]),
                None,
                "{function:?}"
            );
        }
        assert_eq!(
            eval(RangeFunction::PredictLinear, &samples, 0.0, 60.0, &[60.0]),
            None
        );
        assert_eq!(
            eval(RangeFunction::HoltWinters, &samples, 0.0, 60.0, &[0.5, 0.5]),
            None
        );
    }

    #[test]
    fn no_points_give_no_element() {
        let empty: [Point; 0] = [];
        let window = window(&empty, 0.0, 60.0);
        assert_eq!(RangeFunction::CountOverTime.evaluate(&window, &[]), None);
        assert_eq!(RangeFunction::PresentOverTime.evaluate(&window, &[]), None);
        assert_eq!(RangeFunction::Changes.evaluate(&window, &[]), None);
    }

    #[test]
    fn irate_and_idelta_use_the_last_two_points() {
        // Last two: 20 at 10 s and 30 at 15 s: irate = 10 / 5 s = 2, idelta = 10.
        let samples = [(0.0, 10.0), (10.0, 20.0), (15.0, 30.0)];
        assert_some_close(eval(RangeFunction::Irate, &samples, 0.0, 60.0, &[]), 2.0);
        assert_some_close(eval(RangeFunction::Idelta, &samples, 0.0, 60.0, &[]), 10.0);
        // A counter reset between them: irate takes the last value as the increase,
        // 5 / 5 s = 1; idelta is the plain difference 5 - 20 = -15.
        let samples = [(0.0, 10.0), (10.0, 20.0), (15.0, 5.0)];
        assert_some_close(eval(RangeFunction::Irate, &samples, 0.0, 60.0, &[]), 1.0);
        assert_some_close(eval(RangeFunction::Idelta, &samples, 0.0, 60.0, &[]), -15.0);
        // Interval in milliseconds: 1 more over 250 ms is 4 per second.
        let points = [Point::new(1_000, 1.0), Point::new(1_250, 2.0)];
        let window = window(&points, 0.0, 2.0);
        assert_some_close(RangeFunction::Irate.evaluate(&window, &[]), 4.0);
    }

    #[test]
    fn irate_and_idelta_give_nothing_for_points_at_the_same_time() {
        let points = [Point::new(1_000, 1.0), Point::new(1_000, 2.0)];
        let window = window(&points, 0.0, 2.0);
        assert_eq!(RangeFunction::Irate.evaluate(&window, &[]), None);
        assert_eq!(RangeFunction::Idelta.evaluate(&window, &[]), None);
    }

    #[test]
    fn deriv_is_the_least_squares_slope() {
        // 1, 3, 5 at 0, 10, 20 s: x = 0, 10, 20 (from the first point); Σx = 30, Σy = 9,
        // Σxy = 130, Σx² = 500; cov = 130 - 30·9/3 = 40, var = 500 - 900/3 = 200: 0.2 per s.
        let samples = [(0.0, 1.0), (10.0, 3.0), (20.0, 5.0)];
        assert_some_close(eval(RangeFunction::Deriv, &samples, 0.0, 20.0, &[]), 0.2);
        // Scattered: (0, 0), (10, 2), (20, 1): Σx = 30, Σy = 3, Σxy = 40, Σx² = 500;
        // cov = 40 - 30 = 10, var = 200: 0.05.
        let samples = [(0.0, 0.0), (10.0, 2.0), (20.0, 1.0)];
        assert_some_close(eval(RangeFunction::Deriv, &samples, 0.0, 20.0, &[]), 0.05);
    }

    #[test]
    fn deriv_of_constant_values_is_zero_or_nan_for_infinities() {
        let samples = [(0.0, 7.0), (10.0, 7.0), (20.0, 7.0)];
        assert_eq!(
            eval(RangeFunction::Deriv, &samples, 0.0, 20.0, &[]),
            Some(0.0)
        );
        let samples = [(0.0, f64::INFINITY), (10.0, f64::INFINITY)];
        assert_close(
            eval(RangeFunction::Deriv, &samples, 0.0, 20.0, &[]).unwrap_or(0.0),
            f64::NAN,
        );
        // predict_linear of constant values is the constant.
        let samples = [(0.0, 7.0), (10.0, 7.0)];
        assert_eq!(
            eval(RangeFunction::PredictLinear, &samples, 0.0, 20.0, &[3600.0]),
            Some(7.0)
        );
    }

    #[test]
    fn predict_linear_intercepts_at_the_evaluation_time() {
        // 1, 3, 5 at 0, 10, 20 s, evaluated at 20 s: x = -20, -10, 0; Σx = -30, Σy = 9,
        // Σxy = -50, Σx² = 500; slope = (-50 + 90) / (500 - 300) = 0.2, intercept =
        // 9/3 - 0.2·(-30)/3 = 5 (the line's value at 20 s). In 10 s: 0.2·10 + 5 = 7.
        let samples = [(0.0, 1.0), (10.0, 3.0), (20.0, 5.0)];
        assert_some_close(
            eval(RangeFunction::PredictLinear, &samples, 0.0, 20.0, &[10.0]),
            7.0,
        );
        // With an offset the window ends at 20 s but the evaluation is at 30 s: the line is
        // at 7 then, and 0.2·10 + 7 = 9 ten seconds later.
        let points = points(&samples);
        let window = Window {
            points: &points,
            range_start: 0,
            range_end: 20_000,
            eval_time: 30_000,
            values_before_resets: None,
        };
        assert_some_close(RangeFunction::PredictLinear.evaluate(&window, &[10.0]), 9.0);
        // A negative duration looks back: 0.2·(-20) + 5 = 1.
        assert_some_close(
            eval(RangeFunction::PredictLinear, &samples, 0.0, 20.0, &[-20.0]),
            1.0,
        );
    }

    #[test]
    fn resets_counts_decreases() {
        // 5→3 and 10→1 decrease; comparisons with NaN are false.
        let samples = [
            (0.0, 5.0),
            (1.0, 3.0),
            (2.0, 3.0),
            (3.0, 10.0),
            (4.0, 1.0),
            (5.0, f64::NAN),
            (6.0, 2.0),
        ];
        assert_eq!(
            eval(RangeFunction::Resets, &samples, 0.0, 6.0, &[]),
            Some(2.0)
        );
        assert_eq!(
            eval(RangeFunction::Resets, &[(0.0, 1.0)], 0.0, 6.0, &[]),
            Some(0.0)
        );
    }

    #[test]
    fn changes_counts_changes_but_not_nan_to_nan() {
        // 1→2, 2→NaN, NaN→2 change; 1→1, NaN→NaN, 2→2 do not.
        let samples = [
            (0.0, 1.0),
            (1.0, 1.0),
            (2.0, 2.0),
            (3.0, f64::NAN),
            (4.0, f64::NAN),
            (5.0, 2.0),
            (6.0, 2.0),
        ];
        assert_eq!(
            eval(RangeFunction::Changes, &samples, 0.0, 6.0, &[]),
            Some(3.0)
        );
        assert_eq!(
            eval(RangeFunction::Changes, &[(0.0, 1.0)], 0.0, 6.0, &[]),
            Some(0.0)
        );
    }

    /// Samples at one-second intervals from `values`.
    fn series(values: &[f64]) -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64, v))
            .collect()
    }

    /// Evaluates `function` over `values` at one-second intervals.
    fn over_time(function: RangeFunction, values: &[f64], params: &[f64]) -> Option<f64> {
        eval(function, &series(values), 0.0, 60.0, params)
    }

    #[test]
    fn avg_over_time_is_the_mean_and_handles_infinities() {
        assert_some_close(
            over_time(RangeFunction::AvgOverTime, &[1.0, 2.0, 3.0, 4.0], &[]),
            2.5,
        );
        // An infinite mean stays infinite through finite values and same-sign infinities...
        assert_eq!(
            over_time(
                RangeFunction::AvgOverTime,
                &[1.0, f64::INFINITY, 3.0, f64::INFINITY],
                &[]
            ),
            Some(f64::INFINITY)
        );
        assert_eq!(
            over_time(RangeFunction::AvgOverTime, &[f64::NEG_INFINITY, 1.0], &[]),
            Some(f64::NEG_INFINITY)
        );
        // ...but infinities of both signs, or a NaN, make it NaN.
        assert_close(
            over_time(
                RangeFunction::AvgOverTime,
                &[f64::INFINITY, f64::NEG_INFINITY],
                &[],
            )
            .unwrap_or(0.0),
            f64::NAN,
        );
        assert_close(
            over_time(RangeFunction::AvgOverTime, &[1.0, f64::NAN, 3.0], &[]).unwrap_or(0.0),
            f64::NAN,
        );
        // Large values do not overflow: the mean is incremental, 1e308 and 1e308 average to
        // 1e308 (a plain sum would be +Inf).
        assert_some_close(
            over_time(RangeFunction::AvgOverTime, &[1e308, 1e308], &[]),
            1e308,
        );
    }

    #[test]
    fn sum_over_time_uses_kahan_summation() {
        // Plain summation of 1, 1e100, 1, -1e100 loses both ones; with Neumaier's
        // compensation: c = 1 after 1e100, 2 after the second 1, and the last step adds
        // (1e100 - 0) - 1e100 = 0: the sum is 0 + 2 = 2.
        assert_eq!(
            over_time(RangeFunction::SumOverTime, &[1.0, 1e100, 1.0, -1e100], &[]),
            Some(2.0)
        );
        assert_eq!(
            over_time(RangeFunction::SumOverTime, &[1.5, 2.5, -1.0], &[]),
            Some(3.0)
        );
        // An infinite sum is returned without its (NaN) compensation.
        assert_eq!(
            over_time(RangeFunction::SumOverTime, &[1.0, f64::INFINITY, 2.0], &[]),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn kahan_sum_inc_keeps_the_lost_low_order_part() {
        // 1e16 + 1 rounds to 1e16 (ties to even); the lost 1 goes into the compensation.
        assert_eq!(kahan_sum_inc(1.0, 1e16, 0.0), (1e16, 1.0));
        // The larger term being the increment: (1e16 - 1e16) + 1 = 1.
        assert_eq!(kahan_sum_inc(1e16, 1.0, 0.0), (1e16, 1.0));
        assert_eq!(kahan_sum_inc(2.0, 3.0, 0.5), (5.0, 0.5));
    }

    #[test]
    fn min_and_max_over_time_skip_nan_unless_all_are_nan() {
        let values = [f64::NAN, 3.0, 1.0, 2.0];
        assert_eq!(
            over_time(RangeFunction::MinOverTime, &values, &[]),
            Some(1.0)
        );
        assert_eq!(
            over_time(RangeFunction::MaxOverTime, &values, &[]),
            Some(3.0)
        );
        // A NaN after a number never replaces it.
        let values = [3.0, f64::NAN, 1.0];
        assert_eq!(
            over_time(RangeFunction::MinOverTime, &values, &[]),
            Some(1.0)
        );
        assert_eq!(
            over_time(RangeFunction::MaxOverTime, &values, &[]),
            Some(3.0)
        );
        let values = [2.0, f64::NAN];
        assert_eq!(
            over_time(RangeFunction::MinOverTime, &values, &[]),
            Some(2.0)
        );
        assert_eq!(
            over_time(RangeFunction::MaxOverTime, &values, &[]),
            Some(2.0)
        );
        let values = [f64::NAN, f64::NAN];
        assert_close(
            over_time(RangeFunction::MinOverTime, &values, &[]).unwrap_or(0.0),
            f64::NAN,
        );
        assert_close(
            over_time(RangeFunction::MaxOverTime, &values, &[]).unwrap_or(0.0),
            f64::NAN,
        );
        let values = [f64::NEG_INFINITY, 0.0, f64::INFINITY];
        assert_eq!(
            over_time(RangeFunction::MinOverTime, &values, &[]),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(
            over_time(RangeFunction::MaxOverTime, &values, &[]),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn count_last_and_present_over_time() {
        let values = [4.0, f64::NAN, 6.0];
        assert_eq!(
            over_time(RangeFunction::CountOverTime, &values, &[]),
            Some(3.0)
        );
        assert_eq!(
            over_time(RangeFunction::LastOverTime, &values, &[]),
            Some(6.0)
        );
        assert_eq!(
            over_time(RangeFunction::PresentOverTime, &values, &[]),
            Some(1.0)
        );
        // The last value is taken as it is, NaN included.
        assert_close(
            over_time(RangeFunction::LastOverTime, &[1.0, f64::NAN], &[]).unwrap_or(0.0),
            f64::NAN,
        );
        assert_eq!(
            over_time(RangeFunction::PresentOverTime, &[f64::NAN], &[]),
            Some(1.0)
        );
    }

    #[test]
    fn stddev_and_stdvar_over_time_are_of_the_population() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32,
        // variance 32/8 = 4, standard deviation 2.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_some_close(over_time(RangeFunction::StdvarOverTime, &values, &[]), 4.0);
        assert_some_close(over_time(RangeFunction::StddevOverTime, &values, &[]), 2.0);
        // One value, or equal values: 0 exactly.
        assert_eq!(
            over_time(RangeFunction::StdvarOverTime, &[3.0], &[]),
            Some(0.0)
        );
        let values = [1.5990505637277868; 3];
        assert_eq!(
            over_time(RangeFunction::StdvarOverTime, &values, &[]),
            Some(0.0)
        );
        assert_eq!(
            over_time(RangeFunction::StddevOverTime, &values, &[]),
            Some(0.0)
        );
        // 1 and 3: mean 2, variance (1 + 1)/2 = 1.
        assert_some_close(
            over_time(RangeFunction::StdvarOverTime, &[1.0, 3.0], &[]),
            1.0,
        );
    }

    #[test]
    fn quantile_over_time_interpolates_between_ranks() {
        // 4, 1, 3, 2 sorted 1, 2, 3, 4; q = 0.5: rank 1.5, 2·0.5 + 3·0.5 = 2.5.
        let values = [4.0, 1.0, 3.0, 2.0];
        assert_some_close(
            over_time(RangeFunction::QuantileOverTime, &values, &[0.5]),
            2.5,
        );
        // q = 0.9: rank 2.7, 3·0.3 + 4·0.7 = 3.7.
        assert_some_close(
            over_time(RangeFunction::QuantileOverTime, &values, &[0.9]),
            3.7,
        );
        assert_eq!(
            over_time(RangeFunction::QuantileOverTime, &values, &[0.0]),
            Some(1.0)
        );
        assert_eq!(
            over_time(RangeFunction::QuantileOverTime, &values, &[1.0]),
            Some(4.0)
        );
        assert_eq!(
            over_time(RangeFunction::QuantileOverTime, &values, &[-0.5]),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(
            over_time(RangeFunction::QuantileOverTime, &values, &[1.5]),
            Some(f64::INFINITY)
        );
        assert_close(
            over_time(RangeFunction::QuantileOverTime, &values, &[f64::NAN]).unwrap_or(0.0),
            f64::NAN,
        );
        // Without its parameter there is nothing to compute.
        assert_eq!(
            over_time(RangeFunction::QuantileOverTime, &values, &[]),
            None
        );
    }

    #[test]
    fn quantile_sorts_nan_first_and_interpolates() {
        let mut values = [3.0, 1.0, 2.0];
        // rank 0.25·2 = 0.5: 1·0.5 + 2·0.5 = 1.5.
        assert_close(quantile(0.25, &mut values), 1.5);
        assert_eq!(values, [1.0, 2.0, 3.0]);
        // NaN sorts first: [NaN, 1, 2]; q = 0.75: rank 1.5, 1·0.5 + 2·0.5 = 1.5; q = 1: 2;
        // q = 0: NaN·1 + 1·0 = NaN.
        let mut values = [2.0, f64::NAN, 1.0];
        assert_close(quantile(0.75, &mut values), 1.5);
        assert!(values[0].is_nan());
        assert_eq!(quantile(1.0, &mut values), 2.0);
        assert_close(quantile(0.0, &mut values), f64::NAN);
        // An infinite value poisons even with weight 0: q = 0 is 1·1 + Inf·0 = NaN, q = 1 is
        // Inf·1 + Inf·0 = NaN (the upper index is capped at the last value), q = 0.5 is
        // 1·0.5 + Inf·0.5 = Inf.
        let mut values = [1.0, f64::INFINITY];
        assert_close(quantile(0.0, &mut values), f64::NAN);
        assert_close(quantile(1.0, &mut values), f64::NAN);
        assert_eq!(quantile(0.5, &mut values), f64::INFINITY);
        // One value is every quantile of itself.
        assert_eq!(quantile(0.3, &mut [42.0]), 42.0);
        assert_close(quantile(0.5, &mut []), f64::NAN);
        assert_eq!(quantile(-0.1, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(1.1, &mut [1.0]), f64::INFINITY);
        // No values give NaN even for q out of range.
        assert_close(quantile(-1.0, &mut []), f64::NAN);
    }

    #[test]
    fn holt_winters_smooths_level_and_trend() {
        // 1, 2, 4 with sf = tf = 0.5: level 1, trend 2 - 1 = 1.
        // Point 2: level = 0.5·2 + 0.5·(1 + 1) = 2 (trend kept at 1 on the first step).
        // Point 4: trend = 0.5·(2 - 1) + 0.5·1 = 1; level = 0.5·4 + 0.5·(2 + 1) = 3.5.
        let values = [1.0, 2.0, 4.0];
        assert_some_close(
            over_time(RangeFunction::HoltWinters, &values, &[0.5, 0.5]),
            3.5,
        );
        // sf = 0.8, tf = 0.3 over 10, 12, 13, 17: level 10, trend 2.
        // 12: level = 9.6 + 0.2·12 = 12.
        // 13: trend = 0.3·2 + 0.7·2 = 2; level = 10.4 + 0.2·14 = 13.2.
        // 17: trend = 0.3·1.2 + 0.7·2 = 1.76; level = 13.6 + 0.2·14.96 = 16.592.
        let values = [10.0, 12.0, 13.0, 17.0];
        assert_some_close(
            over_time(RangeFunction::HoltWinters, &values, &[0.8, 0.3]),
            16.592,
        );
    }

    #[test]
    fn holt_winters_rejects_factors_outside_the_open_unit_interval() {
        assert!(holt_winters_params_valid(0.5, 0.5));
        assert!(holt_winters_params_valid(0.01, 0.99));
        assert!(!holt_winters_params_valid(0.0, 0.5));
        assert!(!holt_winters_params_valid(1.0, 0.5));
        assert!(!holt_winters_params_valid(0.5, 0.0));
        assert!(!holt_winters_params_valid(0.5, 1.5));
        assert!(!holt_winters_params_valid(-0.5, 0.5));
        // Go's check is `sf <= 0 || sf >= 1`, which NaN passes: the result is then NaN.
        assert!(holt_winters_params_valid(f64::NAN, 0.5));
        let values = [1.0, 2.0, 4.0];
        assert_eq!(
            over_time(RangeFunction::HoltWinters, &values, &[1.0, 0.5]),
            None
        );
        assert_eq!(
            over_time(RangeFunction::HoltWinters, &values, &[0.5, 0.0]),
            None
        );
        assert_eq!(over_time(RangeFunction::HoltWinters, &values, &[0.5]), None);
        assert_close(
            over_time(RangeFunction::HoltWinters, &values, &[f64::NAN, 0.5]).unwrap_or(0.0),
            f64::NAN,
        );
    }

    #[test]
    fn math_functions_follow_go_for_special_values() {
        use MathFunction as M;
        assert_eq!(M::Abs.apply(-2.5), 2.5);
        assert!(M::Abs.apply(-0.0).is_sign_positive());
        assert_eq!(M::Ceil.apply(1.2), 2.0);
        assert_negative_zero(M::Ceil.apply(-0.5));
        assert_eq!(M::Floor.apply(-1.2), -2.0);
        assert_eq!(M::Floor.apply(f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(M::Exp.apply(0.0), 1.0);
        assert_eq!(M::Exp.apply(710.0), f64::INFINITY);
        assert_eq!(M::Exp.apply(f64::NEG_INFINITY), 0.0);
        assert_close(M::Exp.apply(1.0), std::f64::consts::E);
        assert_eq!(M::Ln.apply(1.0), 0.0);
        assert_eq!(M::Ln.apply(0.0), f64::NEG_INFINITY);
        assert_eq!(M::Ln.apply(-0.0), f64::NEG_INFINITY);
        assert_close(M::Ln.apply(-1.0), f64::NAN);
        assert_eq!(M::Ln.apply(f64::INFINITY), f64::INFINITY);
        assert_eq!(M::Sqrt.apply(16.0), 4.0);
        assert_close(M::Sqrt.apply(-1.0), f64::NAN);
        assert_negative_zero(M::Sqrt.apply(-0.0));
        assert_eq!(M::Sgn.apply(-3.0), -1.0);
        assert_eq!(M::Sgn.apply(0.1), 1.0);
        assert_eq!(M::Sgn.apply(f64::INFINITY), 1.0);
        assert_negative_zero(M::Sgn.apply(-0.0));
        assert_close(M::Sgn.apply(f64::NAN), f64::NAN);
        for function in [M::Abs, M::Exp, M::Ln, M::Sin, M::Cosh, M::Atanh, M::Deg] {
            assert_close(function.apply(f64::NAN), f64::NAN);
        }
    }

    #[test]
    fn logarithms_compose_as_go_does() {
        use MathFunction as M;
        // Go's Log10 is Log(x)·(1/Ln10); for powers of ten it comes out exact.
        assert_eq!(M::Log10.apply(1000.0), 3.0);
        assert_eq!(M::Log10.apply(100.0), 2.0);
        assert_eq!(M::Log10.apply(10.0), 1.0);
        // Go's amd64 Log reads a subnormal's bits as a normal number's with exponent -1023:
        // ln(5e-324) is -1023·ln 2 = -709.0895657128241 (not -744.44), and log10 follows.
        assert_eq!(M::Ln.apply(5e-324), -709.0895657128241);
        assert_eq!(M::Ln.apply(1e-310), -709.0850815488945);
        assert_eq!(M::Log10.apply(5e-324), -709.0895657128241 * LOG10_E);
        assert_close(M::Ln.apply(f64::MIN_POSITIVE), -708.3964185322641);
        assert_eq!(M::Log10.apply(0.0), f64::NEG_INFINITY);
        assert_close(M::Log10.apply(-10.0), f64::NAN);
        // Log2 is exact for powers of two, through Frexp: 8 = 0.5·2^4 gives 4 - 1 = 3.
        assert_eq!(M::Log2.apply(8.0), 3.0);
        assert_eq!(M::Log2.apply(0.25), -2.0);
        assert_eq!(M::Log2.apply(f64::MIN_POSITIVE), -1022.0);
        assert_eq!(M::Log2.apply(5e-324), -1074.0);
        assert_close(M::Log2.apply(10.0), 10f64.log2());
        assert_eq!(M::Log2.apply(0.0), f64::NEG_INFINITY);
        assert_eq!(M::Log2.apply(f64::INFINITY), f64::INFINITY);
        assert_close(M::Log2.apply(-8.0), f64::NAN);
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(5e-324), (0.5, -1073));
        assert_eq!(frexp(0.0), (0.0, 0));
    }

    #[test]
    fn trigonometric_functions_follow_go_for_special_values() {
        use MathFunction as M;
        assert_eq!(M::Sin.apply(0.0), 0.0);
        assert_negative_zero(M::Sin.apply(-0.0));
        assert_close(M::Sin.apply(f64::INFINITY), f64::NAN);
        assert_close(M::Sin.apply(FRAC_PI_2), 1.0);
        assert_eq!(M::Cos.apply(0.0), 1.0);
        assert_close(M::Cos.apply(f64::NEG_INFINITY), f64::NAN);
        assert_close(M::Cos.apply(PI), -1.0);
        assert_negative_zero(M::Tan.apply(-0.0));
        assert_close(M::Tan.apply(f64::INFINITY), f64::NAN);
        assert_close(M::Tan.apply(PI / 4.0), 1.0);
        assert_eq!(M::Asin.apply(1.0), FRAC_PI_2);
        assert_negative_zero(M::Asin.apply(-0.0));
        assert_close(M::Asin.apply(1.5), f64::NAN);
        // acos is π/2 - asin in Go: exactly 0 at 1, π at -1, π/2 at 0.
        assert_eq!(M::Acos.apply(1.0), 0.0);
        assert_eq!(M::Acos.apply(-1.0), PI);
        assert_eq!(M::Acos.apply(0.0), FRAC_PI_2);
        // π/2 - asin(0.5), one unit in the last place below the float nearest π/3, as in Go.
        assert_eq!(M::Acos.apply(0.5), 1.0471975511965976);
        assert_close(M::Acos.apply(-1.5), f64::NAN);
        assert_eq!(M::Atan.apply(f64::INFINITY), FRAC_PI_2);
        assert_eq!(M::Atan.apply(f64::NEG_INFINITY), -FRAC_PI_2);
        assert_negative_zero(M::Atan.apply(-0.0));
        assert_close(M::Atan.apply(1.0), PI / 4.0);
        // deg is v·180/π, rad v·π/180.
        assert_eq!(M::Deg.apply(PI), 180.0);
        assert_eq!(M::Rad.apply(180.0), PI);
        assert_eq!(M::Deg.apply(f64::INFINITY), f64::INFINITY);
        assert_negative_zero(M::Rad.apply(-0.0));
    }

    #[test]
    fn hyperbolic_functions_follow_go_for_special_and_large_values() {
        use MathFunction as M;
        // Go's Sinh and Cosh are e^|x|/2 beyond 21, which overflows before the true value does
        // (sinh(710) ≈ 1.117e308 is a finite float, Go gives +Inf).
        assert_eq!(M::Sinh.apply(710.0), f64::INFINITY);
        assert_eq!(M::Sinh.apply(-710.0), f64::NEG_INFINITY);
        assert_eq!(M::Cosh.apply(-710.0), f64::INFINITY);
        assert_close(M::Sinh.apply(30.0), 30f64.exp() / 2.0);
        assert_close(M::Cosh.apply(-30.0), 30f64.exp() / 2.0);
        assert_close(M::Sinh.apply(1.0), (1f64.exp() - (-1f64).exp()) / 2.0);
        assert_close(M::Cosh.apply(1.0), (1f64.exp() + (-1f64).exp()) / 2.0);
        assert_negative_zero(M::Sinh.apply(-0.0));
        assert_eq!(M::Cosh.apply(0.0), 1.0);
        assert_eq!(M::Tanh.apply(f64::INFINITY), 1.0);
        assert_eq!(M::Tanh.apply(f64::NEG_INFINITY), -1.0);
        assert_negative_zero(M::Tanh.apply(-0.0));
        assert_close(M::Tanh.apply(0.5), 0.46211715726000974);
        // asinh and acosh are ln(2|x|) for large values, finite up to the largest float:
        // ln(1.7976931348623157e308) + ln 2 = 709.782712893384 + 0.693147180559945.
        assert_close(M::Asinh.apply(f64::MAX), 710.4758600739439);
        assert_close(M::Asinh.apply(-f64::MAX), -710.4758600739439);
        assert_close(M::Acosh.apply(f64::MAX), 710.4758600739439);
        assert_eq!(M::Asinh.apply(f64::INFINITY), f64::INFINITY);
        assert_eq!(M::Asinh.apply(f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_negative_zero(M::Asinh.apply(-0.0));
        // asinh(1) = ln(1 + √2), acosh(2) = ln(2 + √3), atanh(0.5) = ln(3)/2.
        assert_close(M::Asinh.apply(1.0), (1.0 + 2f64.sqrt()).ln());
        assert_close(M::Asinh.apply(-3.0), -(3.0 + 10f64.sqrt()).ln());
        assert_close(M::Acosh.apply(2.0), (2.0 + 3f64.sqrt()).ln());
        assert_close(M::Acosh.apply(1.5), (1.5 + 1.25f64.sqrt()).ln());
        assert_close(M::Acosh.apply(10.0), (10.0 + 99f64.sqrt()).ln());
        assert_eq!(M::Acosh.apply(1.0), 0.0);
        assert_eq!(M::Acosh.apply(f64::INFINITY), f64::INFINITY);
        assert_close(M::Acosh.apply(0.5), f64::NAN);
        assert_close(M::Atanh.apply(0.5), 3f64.ln() / 2.0);
        assert_close(M::Atanh.apply(-0.25), -(5f64 / 3.0).ln() / 2.0);
        assert_close(M::Atanh.apply(0.9), 19f64.ln() / 2.0);
        assert_eq!(M::Atanh.apply(1.0), f64::INFINITY);
        assert_eq!(M::Atanh.apply(-1.0), f64::NEG_INFINITY);
        assert_negative_zero(M::Atanh.apply(-0.0));
        assert_close(M::Atanh.apply(1.5), f64::NAN);
        assert_close(M::Atanh.apply(-2.0), f64::NAN);
    }

    #[test]
    fn round_rounds_half_up_to_the_nearest_multiple() {
        assert_eq!(round(2.5, 1.0), 3.0);
        // Ties go up, not away from zero: -2.5 + 0.5 = -2.
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(-2.6, 1.0), -3.0);
        // 0.123·100 + 0.5 = 12.8, floor 12, /100 = 0.12.
        assert_eq!(round(0.123, 0.01), 0.12);
        // inverse 1/5 = 0.2: 7·0.2 + 0.5 = 1.9, floor 1, 1/0.2 = 5.
        assert_eq!(round(7.0, 5.0), 5.0);
        assert_eq!(round(8.0, 5.0), 10.0);
        assert_close(round(f64::NAN, 1.0), f64::NAN);
        // A multiple of 0 makes the inverse infinite: NaN.
        assert_close(round(1.0, 0.0), f64::NAN);
        assert_eq!(round(f64::INFINITY, 1.0), f64::INFINITY);
    }

    /// All date fields at `seconds`: (year, month, day, hour, minute, day of week, days in
    /// month).
    fn date(seconds: f64) -> [f64; 7] {
        [
            DateFunction::Year,
            DateFunction::Month,
            DateFunction::DayOfMonth,
            DateFunction::Hour,
            DateFunction::Minute,
            DateFunction::DayOfWeek,
            DateFunction::DaysInMonth,
        ]
        .map(|function| function.apply(seconds))
    }

    #[test]
    fn date_functions_at_the_epoch_and_in_a_leap_february() {
        // 1970-01-01 00:00:00 was a Thursday.
        assert_eq!(date(0.0), [1970.0, 1.0, 1.0, 0.0, 0.0, 4.0, 31.0]);
        // 2000-01-01 is 10,957 days after the epoch (30 years with 7 leap days):
        // 946,684,800 s; plus 59 days to 29 February: 951,782,400 s, plus 13:45.
        // 2000 is a leap year (divisible by 400); 29 February 2000 was a Tuesday.
        let seconds = 951_782_400.0 + 13.0 * 3600.0 + 45.0 * 60.0 + 59.0;
        assert_eq!(date(seconds), [2000.0, 2.0, 29.0, 13.0, 45.0, 2.0, 29.0]);
        // The next day is 1 March.
        assert_eq!(date(951_782_400.0 + 86_400.0)[..3], [2000.0, 3.0, 1.0]);
        // 2024-01-01 is 1,704,067,200 s; 40 days later is 10 February 2024, a Saturday, in a
        // leap February.
        assert_eq!(
            date(1_704_067_200.0 + 40.0 * 86_400.0),
            [2024.0, 2.0, 10.0, 0.0, 0.0, 6.0, 29.0]
        );
        // 31 December 2024 23:59:59 is day 366 of the year.
        assert_eq!(
            date(1_735_689_599.0),
            [2024.0, 12.0, 31.0, 23.0, 59.0, 2.0, 31.0]
        );
    }

    #[test]
    fn date_functions_at_century_years() {
        // 2100-01-01 is 4,102,444,800 s; 45 days later is 15 February 2100 (a Monday): 2100 is
        // divisible by 100 but not 400, so February has 28 days.
        assert_eq!(
            date(4_102_444_800.0 + 45.0 * 86_400.0),
            [2100.0, 2.0, 15.0, 0.0, 0.0, 1.0, 28.0]
        );
        // 9999-12-31 23:59:59, a Friday.
        assert_eq!(
            date(253_402_300_799.0),
            [9999.0, 12.0, 31.0, 23.0, 59.0, 5.0, 31.0]
        );
    }

    #[test]
    fn date_functions_before_the_epoch() {
        // One second before the epoch: 1969-12-31 23:59:59, a Wednesday.
        assert_eq!(date(-1.0), [1969.0, 12.0, 31.0, 23.0, 59.0, 3.0, 31.0]);
        // 1900-01-01 (a Monday) is -2,208,988,800 s; 31 days later is 1 February 1900, a
        // Thursday, in a February of 28 days (1900 is not a leap year).
        assert_eq!(
            date(-2_208_988_800.0 + 31.0 * 86_400.0),
            [1900.0, 2.0, 1.0, 0.0, 0.0, 4.0, 28.0]
        );
        // 1600 is a leap year: 1600-02-29 is 1600-01-01 (-11,676,096,000 s) + 59 days.
        assert_eq!(
            date(-11_676_096_000.0 + 59.0 * 86_400.0)[..3],
            [1600.0, 2.0, 29.0]
        );
        // 0001-01-01 00:00:00, a Monday: -62,135,596,800 s.
        assert_eq!(
            date(-62_135_596_800.0),
            [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 31.0]
        );
        // The day before it is 31 December of year 0, a leap year of the proleptic calendar.
        assert_eq!(date(-62_135_596_800.0 - 86_400.0)[..3], [0.0, 12.0, 31.0]);
        assert_eq!(
            DateFunction::DaysInMonth.apply(-62_135_596_800.0 - 320.0 * 86_400.0),
            29.0
        );
    }

    #[test]
    fn date_functions_truncate_fractions_towards_zero() {
        // int64(-0.5) is 0: still 1970-01-01 00:00, not 1969.
        assert_eq!(date(-0.5), [1970.0, 1.0, 1.0, 0.0, 0.0, 4.0, 31.0]);
        // 59.9 s is 00:00:59: minute 0.
        assert_eq!(DateFunction::Minute.apply(59.9), 0.0);
        // -1.9 is -1: 23:59:59 the day before.
        assert_eq!(DateFunction::Hour.apply(-1.9), 23.0);
    }

    #[test]
    fn date_functions_convert_nan_and_huge_values_as_go_on_amd64() {
        assert_eq!(go_float_to_i64(f64::NAN), i64::MIN);
        assert_eq!(go_float_to_i64(f64::INFINITY), i64::MIN);
        assert_eq!(go_float_to_i64(1e19), i64::MIN);
        assert_eq!(go_float_to_i64(-1e19), i64::MIN);
        assert_eq!(go_float_to_i64(-9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(go_float_to_i64(-2.7), -2);
        // -2^63 s lies before Go's absolute zero year, so its unsigned arithmetic wraps around
        // to the far end of the range: Go gives Sunday 292277026596-12-04 15:30 for NaN, ±Inf
        // and ±1e19.
        let far_end = [292_277_026_596.0, 12.0, 4.0, 15.0, 30.0, 0.0, 31.0];
        assert_eq!(date(f64::NAN), far_end);
        assert_eq!(date(f64::INFINITY), far_end);
        assert_eq!(date(f64::NEG_INFINITY), far_end);
        assert_eq!(date(-1e19), far_end);
    }

    #[test]
    fn the_absolute_epoch_offset_is_go_s() {
        // Go's unixToInternal + internalToAbsolute.
        assert_eq!(UNIX_TO_ABSOLUTE, 62_135_596_800 + 9_223_371_966_579_724_800);
        // Every day of 1970 to 2030 agrees with a day-by-day count.
        let (mut year, mut month, mut day, mut weekday) = (1970_i64, 1_u32, 1_u32, 4_u32);
        for days in 0..(61 * 366) {
            let civil = CivilTime::from_unix(days * 86_400 + 43_210);
            assert_eq!(
                (civil.year, civil.month, civil.day, civil.weekday),
                (year, month, day, weekday),
                "day {days}"
            );
            assert_eq!((civil.hour, civil.minute), (12, 0));
            weekday = (weekday + 1) % 7;
            day += 1;
            if day > days_in_month(year, month) {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    /// Buckets from (upper bound, cumulative count) pairs.
    fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(upper_bound, count)| Bucket { upper_bound, count })
            .collect()
    }

    /// histogram_quantile of `q` over `pairs`.
    fn hq(q: f64, pairs: &[(f64, f64)]) -> f64 {
        bucket_quantile(q, &mut buckets(pairs))
    }

    /// The bound of the +Inf bucket.
    const INF: f64 = f64::INFINITY;

    #[test]
    fn bucket_quantile_interpolates_within_the_bucket() {
        // le=1: 10, le=2: 20, le=4: 30, +Inf: 40 observations.
        let pairs = [(1.0, 10.0), (2.0, 20.0), (4.0, 30.0), (INF, 40.0)];
        // q = 0.5: rank 20, first bucket with ≥ 20 is le=2; 1 + (2 - 1)·(10/10) = 2.
        assert_close(hq(0.5, &pairs), 2.0);
        // q = 0.6: rank 24 in le=4: 2 + 2·((24 - 20)/10) = 2.8.
        assert_close(hq(0.6, &pairs), 2.8);
        // q = 0.25: rank 10 in the first bucket, which starts at 0: 0 + 1·(10/10) = 1.
        assert_close(hq(0.25, &pairs), 1.0);
        // q = 0.1: rank 4: 0 + 1·(4/10) = 0.4.
        assert_close(hq(0.1, &pairs), 0.4);
        assert_eq!(hq(0.0, &pairs), 0.0);
        // q = 0.9: rank 36 falls in +Inf: the second highest bound, 4. Likewise q = 1.
        assert_eq!(hq(0.9, &pairs), 4.0);
        assert_eq!(hq(1.0, &pairs), 4.0);
    }

    #[test]
    fn bucket_quantile_sorts_buckets_given_out_of_order() {
        let pairs = [(INF, 40.0), (2.0, 20.0), (4.0, 30.0), (1.0, 10.0)];
        assert_close(hq(0.5, &pairs), 2.0);
        assert_close(hq(0.6, &pairs), 2.8);
        let mut sorted = buckets(&pairs);
        bucket_quantile(0.5, &mut sorted);
        assert_eq!(
            sorted
                .iter()
                .map(|bucket| bucket.upper_bound)
                .collect::<Vec<_>>(),
            [1.0, 2.0, 4.0, INF]
        );
    }

    #[test]
    fn bucket_quantile_needs_the_inf_bucket() {
        assert_close(hq(0.5, &[(1.0, 10.0), (2.0, 20.0), (4.0, 30.0)]), f64::NAN);
        // A -Inf bound is not the +Inf bucket either.
        assert_close(hq(0.5, &[(f64::NEG_INFINITY, 1.0), (1.0, 10.0)]), f64::NAN);
        // A NaN bound sorts last, where +Inf should be.
        assert_close(
            hq(0.5, &[(1.0, 10.0), (INF, 20.0), (f64::NAN, 20.0)]),
            f64::NAN,
        );
    }

    #[test]
    fn bucket_quantile_checks_q_before_the_buckets() {
        let pairs = [(1.0, 10.0), (INF, 20.0)];
        assert_eq!(hq(-0.1, &pairs), f64::NEG_INFINITY);
        assert_eq!(hq(1.1, &pairs), f64::INFINITY);
        assert_close(hq(f64::NAN, &pairs), f64::NAN);
        // Even for buckets that would give NaN.
        assert_eq!(hq(-1.0, &[(1.0, 10.0)]), f64::NEG_INFINITY);
        assert_eq!(hq(2.0, &[]), f64::INFINITY);
        assert_close(hq(0.5, &[]), f64::NAN);
    }

    #[test]
    fn bucket_quantile_needs_two_buckets_and_observations() {
        // Only the +Inf bucket.
        assert_close(hq(0.5, &[(INF, 10.0)]), f64::NAN);
        // Two +Inf buckets coalesce into one.
        assert_close(hq(0.5, &[(INF, 10.0), (INF, 5.0)]), f64::NAN);
        // No observations.
        assert_close(hq(0.5, &[(1.0, 0.0), (2.0, 0.0), (INF, 0.0)]), f64::NAN);
        // All observations above the highest finite bound: that bound.
        assert_eq!(hq(0.5, &[(1.0, 0.0), (INF, 10.0)]), 1.0);
    }

    #[test]
    fn bucket_quantile_coalesces_equal_bounds() {
        // le="1" and le="1.0" parse to the same bound: 5 + 5 = 10 at 1, 20 in all.
        // q = 0.25: rank 5 in the first bucket: 0 + 1·(5/10) = 0.5.
        let pairs = [(1.0, 5.0), (INF, 20.0), (1.0, 5.0)];
        assert_close(hq(0.25, &pairs), 0.5);
        let mut coalesced = buckets(&pairs);
        bucket_quantile(0.25, &mut coalesced);
        assert_eq!(coalesced, buckets(&[(1.0, 10.0), (INF, 20.0)]));
    }

    #[test]
    fn bucket_quantile_makes_counts_monotonic() {
        // le=2 has 8 < 10: raised to 10. q = 0.5: rank 20 in le=4 (30):
        // 2 + 2·((20 - 10)/(30 - 10)) = 3.
        let pairs = [(1.0, 10.0), (2.0, 8.0), (4.0, 30.0), (INF, 40.0)];
        assert_close(hq(0.5, &pairs), 3.0);
        // The +Inf bucket is raised too (15 → 20 observations): q = 0.5, rank 10 in le=1:
        // 0 + 1·(10/10) = 1.
        let pairs = [(1.0, 10.0), (2.0, 20.0), (INF, 15.0)];
        assert_close(hq(0.5, &pairs), 1.0);
        let mut fixed = buckets(&pairs);
        bucket_quantile(0.5, &mut fixed);
        assert_eq!(fixed, buckets(&[(1.0, 10.0), (2.0, 20.0), (INF, 20.0)]));
    }

    #[test]
    fn bucket_quantile_with_negative_and_zero_bounds() {
        // le=-1: 10, le=0: 20, le=1: 30, +Inf: 40.
        let pairs = [(-1.0, 10.0), (0.0, 20.0), (1.0, 30.0), (INF, 40.0)];
        // q = 0.1: rank 4 in the first bucket, whose bound is ≤ 0: the bound, -1.
        assert_eq!(hq(0.1, &pairs), -1.0);
        // q = 0.375: rank 15 in le=0: -1 + 1·((15 - 10)/10) = -0.5.
        assert_close(hq(0.375, &pairs), -0.5);
        // q = 0.5: rank 20: -1 + 1·(10/10) = 0.
        assert_close(hq(0.5, &pairs), 0.0);
        // A first bucket at exactly 0 is returned as 0.
        assert_eq!(hq(0.25, &[(0.0, 10.0), (1.0, 20.0), (INF, 20.0)]), 0.0);
        // A first bucket with a positive bound interpolates from 0: 0 + 0.5·(5/10) = 0.25.
        assert_close(hq(0.25, &[(0.5, 10.0), (1.0, 20.0), (INF, 20.0)]), 0.25);
    }

    #[test]
    fn search_bisects_as_go_does() {
        assert_eq!(search(5, |i| i >= 3), 3);
        assert_eq!(search(5, |_| false), 5);
        assert_eq!(search(5, |_| true), 0);
        assert_eq!(search(0, |_| true), 0);
    }
}
