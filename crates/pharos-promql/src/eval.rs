//! The evaluator: a planned query over loaded data, evaluated step by step as Prometheus 2.42's
//! range evaluation does. Every node is evaluated over a [`Grid`] of evaluation times (the
//! query's, or a subquery's) into a scalar per step or a set of [`StepSeries`]; range vectors
//! (selectors and subqueries) stay raw [`Series`] until a function slices them per step.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::aggregate;
use crate::binary;
use crate::engine::{Abort, EngineSettings, Loaded, Range, too_many_samples};
use crate::error::{Error, Result};
use crate::functions::{
    Bucket, CounterResets, RangeFunction, Window, advance, advance_by, bucket_quantile, round,
};
use crate::plan::{Function, Node, Plan, Selector, SelectorId, Subquery, ValueType, value_type};
use crate::types::{
    Labels, METRIC_NAME, Point, Sample, Series, Value, is_stale_nan, without_stale_markers,
};

/// Evaluation times: `start..=end` every `step` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.step + 1) as usize
        }
    }

    pub fn time(&self, step: usize) -> i64 {
        self.start + step as i64 * self.step
    }
}

/// One value of a series at one step of a grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepPoint {
    pub step: usize,
    pub v: f64,
}

/// A series of an instant-vector result over a grid: its points at the steps where it has a
/// value, in step order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub points: Vec<StepPoint>,
}

/// A series of a range vector: a selector's own (borrowed, unless staleness markers had to be
/// dropped from it) or a subquery's.
struct RangeSeries<'a> {
    labels: Cow<'a, Labels>,
    points: Cow<'a, [Point]>,
}

/// The value of a node over a grid.
#[derive(Debug)]
pub(crate) enum Evaluated {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<StepSeries>),
}

/// For each step, the `(series index, value)` of every series with a point at that step.
pub(crate) fn by_step(series: &[StepSeries], steps: usize) -> Vec<Vec<(usize, f64)>> {
    // Counted first, so that each step's list is allocated once, at its size.
    let mut counts = vec![0_usize; steps];
    for point in series.iter().flat_map(|one| &one.points) {
        counts[point.step] += 1;
    }
    let mut out: Vec<Vec<(usize, f64)>> = counts.into_iter().map(Vec::with_capacity).collect();
    for (index, one) in series.iter().enumerate() {
        for point in &one.points {
            out[point.step].push((index, point.v));
        }
    }
    out
}

/// Collects output points per label set; two points of one label set at one step are an error,
/// as Prometheus refuses a vector with the same label set twice.
#[derive(Debug, Default)]
pub(crate) struct Output {
    index: HashMap<Labels, usize>,
    series: Vec<StepSeries>,
}

impl Output {
    /// The index of the output series with `labels`, created when new.
    pub fn series_for(&mut self, labels: &Labels) -> usize {
        if let Some(index) = self.index.get(labels) {
            return *index;
        }
        self.series.push(StepSeries {
            labels: labels.clone(),
            points: Vec::new(),
        });
        self.index.insert(labels.clone(), self.series.len() - 1);
        self.series.len() - 1
    }

    /// Adds a point to output series `index`; points arrive in step order.
    pub fn push(&mut self, index: usize, step: usize, v: f64) -> Result<()> {
        let points = &mut self.series[index].points;
        if points.last().is_some_and(|last| last.step == step) {
            return Err(duplicate_labelset());
        }
        points.push(StepPoint { step, v });
        Ok(())
    }

    pub fn finish(self) -> Vec<StepSeries> {
        self.series
            .into_iter()
            .filter(|series| !series.points.is_empty())
            .collect()
    }
}

pub(crate) fn duplicate_labelset() -> Error {
    Error::Execution("vector cannot contain metrics with the same labelset".to_owned())
}

/// Merges series that came to have the same labels (after dropping the metric name, say); an
/// error when two of them have a point at the same step.
pub(crate) fn merge_same_labels(series: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    for one in series {
        if one.points.is_empty() {
            continue;
        }
        match index.get(&one.labels) {
            None => {
                index.insert(one.labels.clone(), out.len());
                out.push(one);
            }
            Some(&at) => {
                let merged = &mut out[at].points;
                merged.extend(one.points);
                merged.sort_by_key(|point| point.step);
                if merged.windows(2).any(|pair| pair[0].step == pair[1].step) {
                    return Err(duplicate_labelset());
                }
            }
        }
    }
    Ok(out)
}

pub(crate) struct Evaluator<'a> {
    plan: &'a Plan,
    data: Vec<Loaded>,
    range: Range,
    settings: &'a EngineSettings,
    abort: &'a Abort,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        plan: &'a Plan,
        mut data: Vec<Loaded>,
        range: Range,
        settings: &'a EngineSettings,
        abort: &'a Abort,
    ) -> Self {
        for loaded in &mut data {
            match loaded {
                Loaded::Points(series) => series.sort_by(|a, b| a.labels.cmp(&b.labels)),
                Loaded::Hourly(series) => series.sort_by(|a, b| a.labels.cmp(&b.labels)),
                // Sorted as the batches were gathered.
                Loaded::RangeEvaluated(_) => {}
            }
        }
        Self {
            plan,
            data,
            range,
            settings,
            abort,
        }
    }

    /// Evaluates the query into the value the API returns.
    pub fn run(self, is_range: bool) -> Result<Value> {
        let grid = Grid {
            start: self.range.start,
            end: self.range.end,
            step: self.range.step,
        };
        let root = &self.plan.root;
        if !is_range {
            match value_type(root) {
                ValueType::Matrix => {
                    let series = self.range_vector(root, grid)?;
                    let t = grid.start;
                    let window = self.matrix_window(root, t);
                    let mut out: Vec<Series> = series
                        .into_iter()
                        .filter_map(|one| {
                            let points = slice(&one.points, window.0, window.1).to_vec();
                            (!points.is_empty()).then(|| Series {
                                labels: one.labels.into_owned(),
                                points,
                            })
                        })
                        .collect();
                    out.sort_by(|a, b| a.labels.cmp(&b.labels));
                    return Ok(Value::Matrix(out));
                }
                ValueType::String => {
                    if let Node::String(s) = root {
                        return Ok(Value::String {
                            t: grid.start,
                            s: s.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        let evaluated = self.eval(root, grid)?;
        Ok(match (evaluated, is_range) {
            (Evaluated::Scalar(values), false) => Value::Scalar {
                t: grid.start,
                v: values.first().copied().unwrap_or(f64::NAN),
            },
            (Evaluated::Scalar(values), true) => Value::Matrix(vec![Series {
                labels: Labels::empty(),
                points: values
                    .iter()
                    .enumerate()
                    .map(|(step, v)| Point::new(grid.time(step), *v))
                    .collect(),
            }]),
            (Evaluated::String(s), _) => Value::String { t: grid.start, s },
            (Evaluated::Vector(series), false) => {
                let mut samples: Vec<Sample> = series
                    .into_iter()
                    .filter_map(|one| {
                        one.points.first().map(|point| Sample {
                            labels: one.labels,
                            t: grid.start,
                            v: point.v,
                        })
                    })
                    .collect();
                match top_level_sort(root) {
                    Some(descending) => sort_samples(&mut samples, descending),
                    None => samples.sort_by(|a, b| a.labels.cmp(&b.labels)),
                }
                Value::Vector(samples)
            }
            (Evaluated::Vector(series), true) => {
                let mut out: Vec<Series> = series
                    .into_iter()
                    .map(|one| Series {
                        labels: one.labels,
                        points: one
                            .points
                            .iter()
                            .map(|point| Point::new(grid.time(point.step), point.v))
                            .collect(),
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        })
    }

    fn check_abort(&self) -> Result<()> {
        if self.abort.is_aborted() {
            return Err(Error::Timeout("query evaluation"));
        }
        Ok(())
    }

    /// A selector and the points it loaded (none when it loaded hourly rollups instead).
    fn selector(&self, id: SelectorId) -> (&Selector, &[Series]) {
        let points: &[Series] = match &self.data[id.0] {
            Loaded::Points(series) => series,
            Loaded::Hourly(_) | Loaded::RangeEvaluated(_) => &[],
        };
        (&self.plan.selectors()[id.0], points)
    }

    pub(crate) fn eval(&self, node: &Node, grid: Grid) -> Result<Evaluated> {
        self.check_abort()?;
        let steps = grid.len();
        let evaluated = match node {
            Node::Number(v) => Evaluated::Scalar(vec![*v; steps]),
            Node::String(s) => Evaluated::String(s.clone()),
            Node::VectorSelector(id) => Evaluated::Vector(self.vector_selector(*id, grid)),
            Node::MatrixSelector(_) | Node::Subquery(_) => {
                return Err(Error::Execution(
                    "a range vector cannot be evaluated as an instant vector here".to_owned(),
                ));
            }
            Node::Negate(inner) => match self.eval(inner, grid)? {
                Evaluated::Scalar(values) => {
                    Evaluated::Scalar(values.into_iter().map(|v| -v).collect())
                }
                Evaluated::Vector(series) => {
                    let negated = series
                        .into_iter()
                        .map(|one| StepSeries {
                            labels: one.labels.without_metric_name(),
                            points: one
                                .points
                                .into_iter()
                                .map(|p| StepPoint {
                                    step: p.step,
                                    v: -p.v,
                                })
                                .collect(),
                        })
                        .collect();
                    Evaluated::Vector(merge_same_labels(negated)?)
                }
                Evaluated::String(_) => {
                    return Err(Error::Execution(
                        "unary minus is not defined on strings".to_owned(),
                    ));
                }
            },
            Node::Binary(op) => {
                let lhs = self.eval(&op.lhs, grid)?;
                let rhs = self.eval(&op.rhs, grid)?;
                binary::evaluate(op, lhs, rhs, steps)?
            }
            Node::Aggregate(aggregation) => {
                let param = match &aggregation.param {
                    Some(param) => Some(self.eval(param, grid)?),
                    None => None,
                };
                let Evaluated::Vector(input) = self.eval(&aggregation.expr, grid)? else {
                    return Err(Error::Execution(
                        "aggregations take an instant vector".to_owned(),
                    ));
                };
                Evaluated::Vector(aggregate::evaluate(aggregation, input, param, steps)?)
            }
            Node::Call { function, args } => self.call(function, args, grid)?,
            Node::RangeCall {
                function,
                range,
                params,
            } => {
                let params = params
                    .iter()
                    .map(|param| match self.eval(param, grid)? {
                        Evaluated::Scalar(values) => Ok(values),
                        _ => Err(Error::Execution("expected a scalar parameter".to_owned())),
                    })
                    .collect::<Result<Vec<Vec<f64>>>>()?;
                self.range_call(*function, range, &params, grid)?
            }
            Node::AbsentOverTime { range, labels } => {
                let series = self.range_vector(range, grid)?;
                let mut points = Vec::new();
                for step in 0..steps {
                    let (from, to) = self.matrix_window(range, grid.time(step));
                    let present = series
                        .iter()
                        .any(|one| !slice(&one.points, from, to).is_empty());
                    if !present {
                        points.push(StepPoint { step, v: 1.0 });
                    }
                }
                Evaluated::Vector(if points.is_empty() {
                    Vec::new()
                } else {
                    vec![StepSeries {
                        labels: labels.clone(),
                        points,
                    }]
                })
            }
        };
        if let Evaluated::Vector(series) = &evaluated {
            let points: usize = series.iter().map(|one| one.points.len()).sum();
            if points > self.settings.max_samples {
                return Err(too_many_samples());
            }
        }
        Ok(evaluated)
    }

    /// An instant-vector selector at every step: each series' latest sample within the
    /// lookback window, unless that sample is a staleness marker.
    fn vector_selector(&self, id: SelectorId, grid: Grid) -> Vec<StepSeries> {
        self.selected_samples(id, grid, |sample| sample.v, Labels::clone)
    }

    /// What an instant selector selects at every step, each sample turned into a value by
    /// `value` and each series' labels by `labels`.
    fn selected_samples(
        &self,
        id: SelectorId,
        grid: Grid,
        value: impl Fn(Point) -> f64,
        labels: impl Fn(&Labels) -> Labels,
    ) -> Vec<StepSeries> {
        let (selector, data) = self.selector(id);
        let lookback = self.settings.lookback_delta.as_millis() as i64;
        let mut out = Vec::with_capacity(data.len());
        for series in data {
            let mut points = Vec::new();
            // The reference time moves forward with the steps (or stays, with `@`).
            let (mut index, mut previous) = (0, i64::MIN);
            for step in 0..grid.len() {
                let reference = selector.reference_time(grid.time(step));
                if reference < previous {
                    index = 0;
                }
                previous = reference;
                index = advance(&series.points, index, |p| p.t <= reference);
                if index == 0 {
                    continue;
                }
                let sample = series.points[index - 1];
                if sample.t < reference - lookback || is_stale_nan(sample.v) {
                    continue;
                }
                points.push(StepPoint {
                    step,
                    v: value(sample),
                });
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: labels(&series.labels),
                    points,
                });
            }
        }
        out
    }

    /// The window `(from, to)` (both included) a range vector covers when evaluated at `t`.
    fn matrix_window(&self, node: &Node, t: i64) -> (i64, i64) {
        match node {
            Node::MatrixSelector(id) => self.plan.selectors()[id.0].window_at(t),
            Node::Subquery(subquery) => {
                let end = subquery.reference_time(t);
                (end - subquery.range, end)
            }
            _ => (t, t),
        }
    }

    /// The raw series of a range vector over everything the grid needs: a selector's data
    /// without staleness markers, or a subquery evaluated over its own grid.
    fn range_vector(&self, node: &Node, grid: Grid) -> Result<Vec<RangeSeries<'_>>> {
        match node {
            Node::MatrixSelector(id) => {
                let (_, data) = self.selector(*id);
                Ok(data
                    .iter()
                    .map(|series| RangeSeries {
                        labels: Cow::Borrowed(&series.labels),
                        // Borrowed unless the series holds staleness markers to drop.
                        points: without_stale_markers(&series.points),
                    })
                    .collect())
            }
            Node::Subquery(subquery) => Ok(self
                .subquery(subquery, grid)?
                .into_iter()
                .map(|series| RangeSeries {
                    labels: Cow::Owned(series.labels),
                    points: Cow::Owned(series.points),
                })
                .collect()),
            _ => Err(Error::Execution("expected a range vector".to_owned())),
        }
    }

    /// A subquery: its expression evaluated at every multiple of its step within the range
    /// the outer grid needs, as series of timed points.
    fn subquery(&self, subquery: &Subquery, grid: Grid) -> Result<Vec<Series>> {
        let (first, last) = match subquery.at {
            Some(_) => (
                subquery.reference_time(grid.start),
                subquery.reference_time(grid.start),
            ),
            None => (grid.start - subquery.offset, grid.end - subquery.offset),
        };
        let lowest = first - subquery.range;
        let mut start = subquery.step * (lowest / subquery.step);
        if start < lowest {
            start += subquery.step;
        }
        let inner = Grid {
            start,
            end: last,
            step: subquery.step,
        };
        if inner.len() == 0 {
            return Ok(Vec::new());
        }
        if (inner.end - inner.start) / inner.step >= i64::from(u32::MAX) {
            return Err(too_many_samples());
        }
        Ok(match self.eval(&subquery.expr, inner)? {
            Evaluated::Scalar(values) => vec![Series {
                labels: Labels::empty(),
                points: values
                    .iter()
                    .enumerate()
                    .map(|(step, v)| Point::new(inner.time(step), *v))
                    .collect(),
            }],
            Evaluated::Vector(series) => series
                .into_iter()
                .map(|one| Series {
                    labels: one.labels,
                    points: one
                        .points
                        .iter()
                        .map(|p| Point::new(inner.time(p.step), p.v))
                        .collect(),
                })
                .collect(),
            Evaluated::String(_) => Vec::new(),
        })
    }

    fn range_call(
        &self,
        function: RangeFunction,
        range: &Node,
        params: &[Vec<f64>],
        grid: Grid,
    ) -> Result<Evaluated> {
        if let Node::MatrixSelector(id) = range
            && let Loaded::Hourly(hourly) = &self.data[id.0]
        {
            let selector = &self.plan.selectors()[id.0];
            return Ok(Evaluated::Vector(hourly_range_call(
                function, selector, hourly, grid,
            )?));
        }
        if let Node::MatrixSelector(id) = range
            && let Loaded::RangeEvaluated(evaluated) = &self.data[id.0]
        {
            // Evaluated batch by batch as the source read the series (see `stream`); the
            // planner streams only a call evaluated once, on the query's own grid.
            let evaluated = evaluated
                .lock()
                .map_err(|_| Error::Execution("a streamed range function was poisoned".into()))?
                .take()
                .ok_or_else(|| {
                    Error::Execution("a streamed range function was evaluated twice".into())
                })?;
            return Ok(Evaluated::Vector(merge_same_labels(evaluated)?));
        }
        let series = self.range_vector(range, grid)?;
        let keep_name = function == RangeFunction::LastOverTime;
        let points: usize = series.iter().map(|one| one.points.len()).sum();
        let out = in_parallel(&series, points, self.settings.evaluation_threads, |one| {
            self.check_abort()?;
            let points = range_function_of_series(
                function,
                &one.points,
                |t| self.matrix_window(range, t),
                params,
                grid,
            )?;
            Ok((!points.is_empty()).then(|| StepSeries {
                labels: if keep_name {
                    one.labels.clone().into_owned()
                } else {
                    one.labels.without_metric_name()
                },
                points,
            }))
        })?;
        Ok(Evaluated::Vector(merge_same_labels(out)?))
    }

    fn call(&self, function: &Function, args: &[Node], grid: Grid) -> Result<Evaluated> {
        let steps = grid.len();
        // timestamp() of a selector is the time of each sample, not the evaluation time.
        if let (Function::Timestamp, Some(Node::VectorSelector(id))) = (function, args.first()) {
            return self.timestamp_of_selector(*id, grid);
        }
        let mut vector: Option<Vec<StepSeries>> = None;
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for arg in args {
            match self.eval(arg, grid)? {
                Evaluated::Vector(series) if vector.is_none() => vector = Some(series),
                Evaluated::Vector(_) => {
                    return Err(Error::Execution(
                        "a function took two instant vectors".to_owned(),
                    ));
                }
                Evaluated::Scalar(values) => scalars.push(values),
                Evaluated::String(_) => {}
            }
        }
        let input = vector.unwrap_or_default();
        let scalar = |index: usize, step: usize, default: f64| {
            scalars.get(index).map_or(default, |values| values[step])
        };
        Ok(match function {
            Function::Pi => Evaluated::Scalar(vec![std::f64::consts::PI; steps]),
            Function::Time => Evaluated::Scalar(
                (0..steps)
                    .map(|step| grid.time(step) as f64 / 1000.0)
                    .collect(),
            ),
            Function::Vector => Evaluated::Vector(vec![StepSeries {
                labels: Labels::empty(),
                points: (0..steps)
                    .map(|step| StepPoint {
                        step,
                        v: scalar(0, step, f64::NAN),
                    })
                    .collect(),
            }]),
            Function::Scalar => {
                let mut values = vec![f64::NAN; steps];
                for (step, samples) in by_step(&input, steps).into_iter().enumerate() {
                    if let [(_, v)] = samples.as_slice() {
                        values[step] = *v;
                    }
                }
                Evaluated::Scalar(values)
            }
            Function::Math(math) => {
                let math = *math;
                map_values(input, true, |_, v| Some(math.apply(v)))?
            }
            Function::Date(date) => {
                let date = *date;
                if args.is_empty() {
                    Evaluated::Vector(vec![StepSeries {
                        labels: Labels::empty(),
                        points: (0..steps)
                            .map(|step| StepPoint {
                                step,
                                v: date.apply(grid.time(step) as f64 / 1000.0),
                            })
                            .collect(),
                    }])
                } else {
                    map_values(input, true, |_, v| Some(date.apply(v)))?
                }
            }
            Function::Round => {
                map_values(input, true, |step, v| Some(round(v, scalar(0, step, 1.0))))?
            }
            Function::Clamp => map_values(input, true, |step, v| {
                let (min, max) = (scalar(0, step, f64::NAN), scalar(1, step, f64::NAN));
                if max < min {
                    None
                } else {
                    Some(go_max(min, go_min(max, v)))
                }
            })?,
            Function::ClampMin => map_values(input, true, |step, v| {
                Some(go_max(v, scalar(0, step, f64::NAN)))
            })?,
            Function::ClampMax => map_values(input, true, |step, v| {
                Some(go_min(v, scalar(0, step, f64::NAN)))
            })?,
            Function::Timestamp => {
                map_values(input, true, |step, _| Some(grid.time(step) as f64 / 1000.0))?
            }
            Function::Sort | Function::SortDesc => Evaluated::Vector(input),
            Function::LabelReplace {
                destination,
                replacement,
                source,
                regex,
            } => {
                let relabeled = input
                    .into_iter()
                    .map(|one| {
                        let value = one.labels.get(source).unwrap_or("");
                        let labels = match regex.captures(value) {
                            Some(captures) => {
                                let mut expanded = String::new();
                                captures.expand(replacement, &mut expanded);
                                one.labels.with(destination, &expanded)
                            }
                            None => one.labels.clone(),
                        };
                        StepSeries {
                            labels,
                            points: one.points,
                        }
                    })
                    .collect();
                Evaluated::Vector(merge_same_labels(relabeled)?)
            }
            Function::LabelJoin {
                destination,
                separator,
                sources,
            } => {
                let relabeled = input
                    .into_iter()
                    .map(|one| {
                        let joined = sources
                            .iter()
                            .map(|source| one.labels.get(source).unwrap_or(""))
                            .collect::<Vec<&str>>()
                            .join(separator);
                        StepSeries {
                            labels: one.labels.with(destination, &joined),
                            points: one.points,
                        }
                    })
                    .collect();
                Evaluated::Vector(merge_same_labels(relabeled)?)
            }
            Function::Absent(labels) => {
                let present = by_step(&input, steps);
                let points: Vec<StepPoint> = present
                    .iter()
                    .enumerate()
                    .filter(|(_, samples)| samples.is_empty())
                    .map(|(step, _)| StepPoint { step, v: 1.0 })
                    .collect();
                Evaluated::Vector(if points.is_empty() {
                    Vec::new()
                } else {
                    vec![StepSeries {
                        labels: labels.clone(),
                        points,
                    }]
                })
            }
            Function::HistogramQuantile => histogram_quantile(&input, &scalars, steps)?,
        })
    }

    /// `timestamp()` of a selector: the time of each selected sample, not the evaluation time.
    fn timestamp_of_selector(&self, id: SelectorId, grid: Grid) -> Result<Evaluated> {
        let selected = self.selected_samples(
            id,
            grid,
            |sample| sample.t as f64 / 1000.0,
            Labels::without_metric_name,
        );
        Ok(Evaluated::Vector(merge_same_labels(selected)?))
    }
}

/// A sum, count, min, max or avg `_over_time` over whole hours from hourly rollups: the window
/// `[T - range, T]` of each step is the hours in `[T - range, T)` plus the point at exactly `T`
/// (2.42's windows include both ends), combined as the function would combine the points.
fn hourly_range_call(
    function: RangeFunction,
    selector: &Selector,
    series: &[crate::source::HourlySeries],
    grid: Grid,
) -> Result<Vec<StepSeries>> {
    let range = selector.range.unwrap_or(0);
    let mut out = Vec::with_capacity(series.len());
    for one in series {
        let mut points = Vec::new();
        for step in 0..grid.len() {
            let end = selector.reference_time(grid.time(step));
            let start = end - range;
            let first = one.buckets.partition_point(|b| b.start < start);
            let last = one.buckets.partition_point(|b| b.start < end);
            let buckets = &one.buckets[first..last.max(first)];
            let at_end = one
                .instant_points
                .binary_search_by_key(&end, |point| point.t)
                .ok()
                .map(|index| one.instant_points[index].v);
            let numbers: u64 = buckets.iter().map(|b| b.count).sum::<u64>()
                + u64::from(at_end.is_some_and(|v| !v.is_nan()));
            let nans: u64 = buckets.iter().map(|b| b.nan_count).sum::<u64>()
                + u64::from(at_end.is_some_and(f64::is_nan));
            if numbers + nans == 0 {
                continue;
            }
            let sum = || {
                buckets
                    .iter()
                    .filter(|b| b.count > 0)
                    .map(|b| b.sum)
                    .sum::<f64>()
                    + at_end.filter(|v| !v.is_nan()).unwrap_or(0.0)
            };
            let extreme = |pick: fn(f64, f64) -> f64, of: fn(&crate::source::HourBucket) -> f64| {
                buckets
                    .iter()
                    .filter(|b| b.count > 0)
                    .map(of)
                    .chain(at_end.filter(|v| !v.is_nan()))
                    .reduce(pick)
                    .unwrap_or(f64::NAN)
            };
            let v = match function {
                RangeFunction::CountOverTime => (numbers + nans) as f64,
                RangeFunction::SumOverTime if nans > 0 => f64::NAN,
                RangeFunction::SumOverTime => sum(),
                RangeFunction::AvgOverTime if nans > 0 => f64::NAN,
                RangeFunction::AvgOverTime => sum() / numbers as f64,
                RangeFunction::MinOverTime => extreme(f64::min, |b| b.min),
                RangeFunction::MaxOverTime => extreme(f64::max, |b| b.max),
                _ => {
                    return Err(Error::Execution(
                        "only sum, count, min, max and avg over time read hourly rollups"
                            .to_owned(),
                    ));
                }
            };
            points.push(StepPoint { step, v });
        }
        if !points.is_empty() {
            out.push(StepSeries {
                labels: one.labels.without_metric_name(),
                points,
            });
        }
    }
    merge_same_labels(out)
}

/// Refuses `holt_winters` factors outside (0, 1), as Prometheus does when the function runs.
fn check_holt_winters(params: &[f64]) -> Result<()> {
    let (sf, tf) = (
        params.first().copied().unwrap_or(f64::NAN),
        params.get(1).copied().unwrap_or(f64::NAN),
    );
    if crate::functions::holt_winters_params_valid(sf, tf) {
        return Ok(());
    }
    let (name, letter, value) = if sf <= 0.0 || sf >= 1.0 {
        ("smoothing", "sf", sf)
    } else {
        ("trend", "tf", tf)
    };
    Err(Error::Execution(format!(
        "invalid {name} factor. Expected: 0 < {letter} < 1, got: {value:.6}"
    )))
}

/// `histogram_quantile(q, buckets)` at every step: the buckets grouped by their labels without
/// `le` and the metric name.
fn histogram_quantile(
    input: &[StepSeries],
    scalars: &[Vec<f64>],
    steps: usize,
) -> Result<Evaluated> {
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut series_group: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for one in input {
        let Some(upper_bound) = one.labels.get("le").and_then(parse_go_float) else {
            series_group.push(None);
            continue;
        };
        let labels = one
            .labels
            .filtered(|label| label.name != "le" && label.name != METRIC_NAME);
        let group = *groups.entry(labels.clone()).or_insert_with(|| {
            group_labels.push(labels);
            group_labels.len() - 1
        });
        series_group.push(Some((group, upper_bound)));
    }
    let mut output: Vec<StepSeries> = group_labels
        .into_iter()
        .map(|labels| StepSeries {
            labels,
            points: Vec::new(),
        })
        .collect();
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); output.len()];
    for (step, samples) in by_step(input, steps).into_iter().enumerate() {
        let q = scalars.first().map_or(f64::NAN, |values| values[step]);
        for bucket in &mut buckets {
            bucket.clear();
        }
        for (index, count) in samples {
            if let Some((group, upper_bound)) = series_group[index] {
                buckets[group].push(Bucket { upper_bound, count });
            }
        }
        for (group, group_buckets) in buckets.iter_mut().enumerate() {
            if !group_buckets.is_empty() {
                let v = bucket_quantile(q, group_buckets);
                output[group].points.push(StepPoint { step, v });
            }
        }
    }
    Ok(Evaluated::Vector(
        output
            .into_iter()
            .filter(|one| !one.points.is_empty())
            .collect(),
    ))
}

/// Parses a float as Go's `strconv.ParseFloat` accepts the `le` label (`+Inf`, `1e3`, ...).
pub(crate) fn parse_go_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// Applies `f(step, value)` to every point, dropping the metric name when `drop_name`; a `None`
/// leaves the point out.
fn map_values(
    input: Vec<StepSeries>,
    drop_name: bool,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> Result<Evaluated> {
    let mapped = input
        .into_iter()
        .map(|one| StepSeries {
            labels: if drop_name {
                one.labels.without_metric_name()
            } else {
                one.labels
            },
            points: one
                .points
                .into_iter()
                .filter_map(|p| f(p.step, p.v).map(|v| StepPoint { step: p.step, v }))
                .collect(),
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(mapped)?))
}

/// The points of `points` (sorted by time) within `from..=to`.
pub(crate) fn slice(points: &[Point], from: i64, to: i64) -> &[Point] {
    let first = points.partition_point(|p| p.t < from);
    let last = points.partition_point(|p| p.t <= to);
    if first >= last {
        &[]
    } else {
        &points[first..last]
    }
}

/// Go's `math.Max`: NaN if either is NaN, +0 over -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN if either is NaN, -0 over +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// `Some(descending)` when the outermost function is `sort` or `sort_desc`.
fn top_level_sort(node: &Node) -> Option<bool> {
    match node {
        Node::Call {
            function: Function::Sort,
            ..
        } => Some(false),
        Node::Call {
            function: Function::SortDesc,
            ..
        } => Some(true),
        _ => None,
    }
}

/// Sorts by value as `sort` and `sort_desc` do, NaN last.
fn sort_samples(samples: &mut [Sample], descending: bool) {
    samples.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => {
            let order = a.v.total_cmp(&b.v);
            if descending { order.reverse() } else { order }
        }
    });
}

/// `function` of one series' `points` (staleness markers dropped, oldest first) at each step
/// of `grid` whose window (`window_at(t)`, both ends included) holds any: windows move forward
/// with the steps, so cursors find each one's points and counter resets (back to the start
/// should a window ever move back). `params` holds each scalar argument's value per step.
pub(crate) fn range_function_of_series(
    function: RangeFunction,
    points: &[Point],
    window_at: impl Fn(i64) -> (i64, i64),
    params: &[Vec<f64>],
    grid: Grid,
) -> Result<Vec<StepPoint>> {
    let mut out = Vec::with_capacity(grid.len());
    let mut step_params: Vec<f64> = Vec::with_capacity(params.len());
    let resets = function
        .corrects_counter_resets()
        .then(|| CounterResets::of(points));
    let (mut first, mut last, mut previous) = (0, 0, (i64::MIN, i64::MIN));
    // How far each bound moved at the last step: mostly how far it moves at this one.
    let (mut first_moved, mut last_moved) = (0, 0);
    let mut resets_cursor = (0, 0);
    for step in 0..grid.len() {
        let t = grid.time(step);
        let (from, to) = window_at(t);
        if from < previous.0 || to < previous.1 {
            (first, last, resets_cursor) = (0, 0, (0, 0));
        }
        previous = (from, to);
        let next_first = advance_by(points, first, first_moved, |p| p.t < from);
        let last_from = last.max(next_first);
        let next_last = advance_by(points, last_from, last_moved, |p| p.t <= to);
        (first_moved, last_moved) = (next_first - first, next_last - last_from);
        (first, last) = (next_first, next_last);
        let window_points = &points[first..last];
        if window_points.is_empty() {
            continue;
        }
        step_params.clear();
        step_params.extend(params.iter().map(|values| values[step]));
        if function == RangeFunction::HoltWinters {
            check_holt_winters(&step_params)?;
        }
        let window = Window {
            points: window_points,
            range_start: from,
            range_end: to,
            eval_time: t,
            values_before_resets: resets
                .as_ref()
                .map(|resets| resets.within(first, last, &mut resets_cursor)),
        };
        if let Some(v) = function.evaluate(&window, &step_params) {
            out.push(StepPoint { step, v });
        }
    }
    Ok(out)
}

/// Points a thread of [`in_parallel`] takes at the least: below it, starting a thread costs
/// more than it saves.
const POINTS_PER_THREAD: usize = 65_536;

/// `work`'s answers for each of `items` (holding `points` points in all) that has one, in the
/// items' order. With `threads` over 1 and enough points, the items are split into runs, one
/// per thread (this one takes the first), so that a query over many series uses the cores;
/// the first error, in the items' order, is the answer's.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    points: usize,
    threads: usize,
    work: impl Fn(&T) -> Result<Option<R>> + Sync,
) -> Result<Vec<R>> {
    let run = |items: &[T]| -> Result<Vec<R>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.extend(work(item)?);
        }
        Ok(out)
    };
    let parts = threads.min(items.len()).min(points / POINTS_PER_THREAD);
    if parts <= 1 {
        return run(items);
    }
    let per_part = items.len().div_ceil(parts);
    let run = &run;
    std::thread::scope(|scope| {
        let mut runs = items.chunks(per_part);
        let first = runs.next().unwrap_or_default();
        let others: Vec<_> = runs.map(|items| scope.spawn(move || run(items))).collect();
        // Every thread is joined before the first error, in the runs' order, is returned.
        let answers: Vec<Result<Vec<R>>> = std::iter::once(run(first))
            .chain(others.into_iter().map(|other| {
                other.join().unwrap_or_else(|_| {
                    Err(Error::Execution(
                        "a thread evaluating part of the query stopped".to_owned(),
                    ))
                })
            }))
            .collect();
        let runs = answers.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(runs.into_iter().flatten().collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_in_parallel_keeps_the_items_order_and_the_first_error() {
        let items: Vec<usize> = (0..1_000).collect();
        let points = 4 * POINTS_PER_THREAD;
        let even_doubled = |&item: &usize| Ok((item % 2 == 0).then_some(item * 2));
        let expected: Vec<usize> = (0..1_000).filter(|i| i % 2 == 0).map(|i| i * 2).collect();
        for threads in [1, 2, 3, 4, 64] {
            assert_eq!(
                in_parallel(&items, points, threads, even_doubled).expect("no error"),
                expected,
                "{threads} threads"
            );
        }
        // Items in several runs fail: the first item's error is the answer.
        let failing = |&item: &usize| {
            if item == 100 || item == 900 {
                Err(Error::Execution(format!("item {item}")))
            } else {
                Ok(Some(item))
            }
        };
        for threads in [1, 4] {
            match in_parallel(&items, points, threads, failing) {
                Err(Error::Execution(message)) => assert_eq!(message, "item 100"),
                other => panic!("{threads} threads: {other:?}"),
            }
        }
        // Too few points for a thread each: evaluated here, the same answer.
        assert_eq!(
            in_parallel(&items, POINTS_PER_THREAD, 4, even_doubled).expect("no error"),
            expected
        );
    }
}
