//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`) with `by` and `without`, step by step, with
//! the arithmetic of Prometheus 2.42 (its running mean, its NaN rules, its heap for `topk`).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::eval::{Evaluated, Output, StepSeries, by_step};
use crate::functions::quantile;
use crate::plan::{Aggregate, AggregateOp, Grouping};
use crate::types::{Labels, METRIC_NAME, format_float};

/// The running state of one group at one step.
#[derive(Debug, Clone)]
struct Group {
    value: f64,
    mean: f64,
    count: f64,
    /// The members of `topk`/`bottomk` (series index, value), or the values of `quantile`.
    heap: Vec<(usize, f64)>,
}

impl Group {
    /// A group's state after its first member at a step, series `index` with `v`.
    fn first(op: AggregateOp, index: usize, v: f64) -> Self {
        Self {
            value: match op {
                AggregateOp::Stddev | AggregateOp::Stdvar => 0.0,
                AggregateOp::Group => 1.0,
                _ => v,
            },
            mean: v,
            count: 1.0,
            heap: match op {
                AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile => {
                    vec![(index, v)]
                }
                _ => Vec::new(),
            },
        }
    }

    /// Takes in one more member at the same step (`k`: the size of `topk`/`bottomk`).
    fn add(&mut self, op: AggregateOp, index: usize, v: f64, k: usize) {
        match op {
            AggregateOp::Sum => self.value += v,
            AggregateOp::Avg => {
                self.count += 1.0;
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                self.mean += v / self.count - self.mean / self.count;
            }
            AggregateOp::Group => {}
            AggregateOp::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggregateOp::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            AggregateOp::Count | AggregateOp::CountValues => self.count += 1.0,
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            AggregateOp::Topk => {
                let top = self.heap.first().map_or(f64::NAN, |e| e.1);
                if self.heap.len() < k || top < v || top.is_nan() {
                    if self.heap.len() == k {
                        go_heap::pop(&mut self.heap, topk_less);
                    }
                    go_heap::push(&mut self.heap, (index, v), topk_less);
                }
            }
            AggregateOp::Bottomk => {
                let top = self.heap.first().map_or(f64::NAN, |e| e.1);
                if self.heap.len() < k || top > v || top.is_nan() {
                    if self.heap.len() == k {
                        go_heap::pop(&mut self.heap, bottomk_less);
                    }
                    go_heap::push(&mut self.heap, (index, v), bottomk_less);
                }
            }
            AggregateOp::Quantile => self.heap.push((index, v)),
        }
    }

    /// The group's value at its step, for every operator but `topk` and `bottomk` (whose
    /// members are the answer); `param` is `quantile`'s.
    fn value(&self, op: AggregateOp, param: f64) -> f64 {
        match op {
            AggregateOp::Avg => self.mean,
            AggregateOp::Count | AggregateOp::CountValues => self.count,
            AggregateOp::Stdvar => self.value / self.count,
            AggregateOp::Stddev => (self.value / self.count).sqrt(),
            AggregateOp::Quantile => {
                let mut values: Vec<f64> = self.heap.iter().map(|e| e.1).collect();
                quantile(param, &mut values)
            }
            AggregateOp::Sum
            | AggregateOp::Min
            | AggregateOp::Max
            | AggregateOp::Group
            | AggregateOp::Topk
            | AggregateOp::Bottomk => self.value,
        }
    }
}

/// Whether `op` folds each group's members one at a time, in series order, into a value per
/// step: such groups can be filled series by series, as the members come at each step in the
/// same order either way.
fn folds_in_series_order(op: AggregateOp) -> bool {
    matches!(
        op,
        AggregateOp::Sum
            | AggregateOp::Avg
            | AggregateOp::Min
            | AggregateOp::Max
            | AggregateOp::Count
            | AggregateOp::Group
            | AggregateOp::Stddev
            | AggregateOp::Stdvar
    )
}

pub(crate) fn evaluate(
    aggregate: &Aggregate,
    input: Vec<StepSeries>,
    param: Option<Evaluated>,
    steps: usize,
) -> Result<Vec<StepSeries>> {
    evaluate_with(aggregate, input, param, steps, Walk::SeriesWhereCheaper)
}

/// How an aggregation walks its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Series by series into a state per group and step, where the operator allows and there
    /// are no more states than input points; else step by step.
    SeriesWhereCheaper,
    /// Step by step, over lists of each step's points (every operator can).
    #[cfg(test)]
    StepByStep,
}

fn evaluate_with(
    aggregate: &Aggregate,
    input: Vec<StepSeries>,
    param: Option<Evaluated>,
    steps: usize,
    walk: Walk,
) -> Result<Vec<StepSeries>> {
    let op = aggregate.op;
    let scalar_param: Option<Vec<f64>> = match &param {
        Some(Evaluated::Scalar(values)) => Some(values.clone()),
        _ => None,
    };
    let count_values_label: Option<String> = match &param {
        Some(Evaluated::String(label)) => Some(label.clone()),
        _ => None,
    };
    let mut grouping = aggregate.grouping.clone();
    if let (Some(label), false) = (&count_values_label, grouping.without) {
        grouping.labels.push(label.clone());
    }

    // Groups by series, computed once (count_values groups by value, per step).
    let mut group_index: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let series_group: Vec<usize> = input
        .iter()
        .map(|one| {
            let labels = group_of(&one.labels, &grouping);
            *group_index.entry(labels.clone()).or_insert_with(|| {
                group_labels.push(labels);
                group_labels.len() - 1
            })
        })
        .collect();

    let mut output = Output::default();
    let group_out: Vec<usize> = match op {
        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::CountValues => Vec::new(),
        _ => group_labels.iter().map(|l| output.series_for(l)).collect(),
    };
    let series_out: Vec<usize> = match op {
        AggregateOp::Topk | AggregateOp::Bottomk => {
            input.iter().map(|s| output.series_for(&s.labels)).collect()
        }
        _ => Vec::new(),
    };

    // A state per group and step, filled series by series, when there are no more of them than
    // input points (so memory stays within a small multiple of what lists of each step's points
    // would take, however sparse the series).
    let points: usize = input.iter().map(|one| one.points.len()).sum();
    if walk == Walk::SeriesWhereCheaper
        && folds_in_series_order(op)
        && group_labels.len().saturating_mul(steps) <= points
    {
        let mut states: Vec<Option<Group>> = vec![None; group_labels.len() * steps];
        for (index, one) in input.iter().enumerate() {
            let states = &mut states[series_group[index] * steps..][..steps];
            for point in &one.points {
                match &mut states[point.step] {
                    Some(state) => state.add(op, index, point.v, 0),
                    empty => *empty = Some(Group::first(op, index, point.v)),
                }
            }
        }
        for (group, states) in states.chunks(steps.max(1)).enumerate() {
            for (step, state) in states.iter().enumerate() {
                if let Some(state) = state {
                    output.push(group_out[group], step, state.value(op, f64::NAN))?;
                }
            }
        }
        return Ok(output.finish());
    }

    let mut groups: Vec<Option<Group>> = vec![None; group_labels.len()];
    let mut order: Vec<usize> = Vec::new();
    let mut value_groups: HashMap<Labels, (f64, usize)> = HashMap::new();
    for (step, samples) in by_step(&input, steps).into_iter().enumerate() {
        if samples.is_empty() {
            continue;
        }
        let param = scalar_param
            .as_ref()
            .map_or(f64::NAN, |values| values[step]);
        if let Some(label) = &count_values_label {
            value_groups.clear();
            let mut value_order: Vec<Labels> = Vec::new();
            for (index, v) in &samples {
                let labels = input[*index].labels.with(label, &format_float(*v));
                let labels = group_of(&labels, &grouping);
                match value_groups.get_mut(&labels) {
                    Some(entry) => entry.0 += 1.0,
                    None => {
                        value_order.push(labels.clone());
                        value_groups.insert(labels, (1.0, 0));
                    }
                }
            }
            for labels in value_order {
                let count = value_groups.get(&labels).map_or(0.0, |entry| entry.0);
                let out = output.series_for(&labels);
                output.push(out, step, count)?;
            }
            continue;
        }
        let k = match op {
            AggregateOp::Topk | AggregateOp::Bottomk => {
                if !(param >= i64::MIN as f64 && param <= i64::MAX as f64) {
                    return Err(Error::Execution(format!(
                        "Scalar value {} overflows int64",
                        format_float(param)
                    )));
                }
                let k = param as i64;
                if k < 1 {
                    continue;
                }
                k as usize
            }
            _ => 0,
        };
        order.clear();
        for slot in groups.iter_mut() {
            *slot = None;
        }
        for &(index, v) in &samples {
            let group = series_group[index];
            match &mut groups[group] {
                Some(state) => state.add(op, index, v, k),
                empty => {
                    order.push(group);
                    *empty = Some(Group::first(op, index, v));
                }
            }
        }
        for &group in &order {
            let Some(state) = &groups[group] else {
                continue;
            };
            if let AggregateOp::Topk | AggregateOp::Bottomk = op {
                for &(index, v) in &state.heap {
                    output.push(series_out[index], step, v)?;
                }
                continue;
            }
            output.push(group_out[group], step, state.value(op, param))?;
        }
    }
    Ok(output.finish())
}

/// The labels of the group a series with `labels` falls in.
fn group_of(labels: &Labels, grouping: &Grouping) -> Labels {
    if grouping.without {
        labels.filtered(|label| label.name != METRIC_NAME && !grouping.labels.contains(&label.name))
    } else {
        labels.filtered(|label| grouping.labels.contains(&label.name))
    }
}

/// `topk` keeps the smallest value on top of its heap; NaN counts as smallest.
fn topk_less(a: &(usize, f64), b: &(usize, f64)) -> bool {
    a.1.is_nan() || a.1 < b.1
}

/// `bottomk` keeps the largest value on top of its heap; NaN counts as largest.
fn bottomk_less(a: &(usize, f64), b: &(usize, f64)) -> bool {
    a.1.is_nan() || a.1 > b.1
}

/// Go's `container/heap` push and pop, step for step, so that ties leave the heap with the same
/// members as in Prometheus.
mod go_heap {
    pub fn push<T>(heap: &mut Vec<T>, item: T, less: fn(&T, &T) -> bool) {
        heap.push(item);
        let mut j = heap.len() - 1;
        while j > 0 {
            let i = (j - 1) / 2;
            if i == j || !less(&heap[j], &heap[i]) {
                break;
            }
            heap.swap(i, j);
            j = i;
        }
    }

    pub fn pop<T>(heap: &mut Vec<T>, less: fn(&T, &T) -> bool) -> Option<T> {
        if heap.is_empty() {
            return None;
        }
        let n = heap.len() - 1;
        heap.swap(0, n);
        down(heap, 0, n, less);
        heap.pop()
    }

    fn down<T>(heap: &mut [T], mut i: usize, n: usize, less: fn(&T, &T) -> bool) {
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let mut j = left;
            let right = left + 1;
            if right < n && less(&heap[right], &heap[left]) {
                j = right;
            }
            if !less(&heap[j], &heap[i]) {
                break;
            }
            heap.swap(i, j);
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::StepPoint;
    use crate::plan::Node;

    fn aggregate(op: AggregateOp, by: &[&str]) -> Aggregate {
        Aggregate {
            op,
            expr: Node::Number(0.0),
            param: None,
            grouping: Grouping {
                without: false,
                labels: by.iter().map(|label| (*label).to_owned()).collect(),
            },
        }
    }

    fn bits(series: &[StepSeries]) -> Vec<(Labels, Vec<(usize, u64)>)> {
        series
            .iter()
            .map(|one| {
                let points = one.points.iter().map(|p| (p.step, p.v.to_bits())).collect();
                (one.labels.clone(), points)
            })
            .collect()
    }

    #[test]
    fn folding_series_by_series_answers_as_step_by_step_to_the_bit() {
        let steps = 50;
        // Twelve series in three jobs, with gaps, NaN, infinities and values far apart, so
        // that the order of additions shows in the last bits.
        let input: Vec<StepSeries> = (0..12)
            .map(|series: usize| StepSeries {
                labels: Labels::from_pairs([
                    ("job".to_owned(), format!("job-{}", series % 3)),
                    ("instance".to_owned(), format!("host-{series}")),
                ]),
                points: (0..steps)
                    .filter(|step| !(step + series).is_multiple_of(7))
                    .map(|step| StepPoint {
                        step,
                        v: match (step * 31 + series * 17) % 23 {
                            0 => f64::NAN,
                            1 if series == 4 => f64::INFINITY,
                            2 if series == 5 => f64::NEG_INFINITY,
                            n => (n as f64 * 0.1 + series as f64).powi(7),
                        },
                    })
                    .collect(),
            })
            .collect();
        for op in [
            AggregateOp::Sum,
            AggregateOp::Avg,
            AggregateOp::Min,
            AggregateOp::Max,
            AggregateOp::Count,
            AggregateOp::Group,
            AggregateOp::Stddev,
            AggregateOp::Stdvar,
        ] {
            for by in [&["job"][..], &[]] {
                let aggregate = aggregate(op, by);
                let by_series = evaluate_with(
                    &aggregate,
                    input.clone(),
                    None,
                    steps,
                    Walk::SeriesWhereCheaper,
                )
                .expect("series by series");
                let by_step =
                    evaluate_with(&aggregate, input.clone(), None, steps, Walk::StepByStep)
                        .expect("step by step");
                assert_eq!(bits(&by_series), bits(&by_step), "{op:?} by {by:?}");
                assert_eq!(by_series.len(), by.len() * 2 + 1, "{op:?} by {by:?}");
            }
        }
    }
}
