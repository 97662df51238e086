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

pub(crate) fn evaluate(
    aggregate: &Aggregate,
    input: Vec<StepSeries>,
    param: Option<Evaluated>,
    steps: usize,
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
            let Some(state) = &mut groups[group] else {
                order.push(group);
                groups[group] = Some(Group {
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
                });
                continue;
            };
            match op {
                AggregateOp::Sum => state.value += v,
                AggregateOp::Avg => {
                    state.count += 1.0;
                    if state.mean.is_infinite() {
                        if v.is_infinite() && (state.mean > 0.0) == (v > 0.0) {
                            continue;
                        }
                        if !v.is_infinite() && !v.is_nan() {
                            continue;
                        }
                    }
                    state.mean += v / state.count - state.mean / state.count;
                }
                AggregateOp::Group => {}
                AggregateOp::Max => {
                    if state.value < v || state.value.is_nan() {
                        state.value = v;
                    }
                }
                AggregateOp::Min => {
                    if state.value > v || state.value.is_nan() {
                        state.value = v;
                    }
                }
                AggregateOp::Count | AggregateOp::CountValues => state.count += 1.0,
                AggregateOp::Stddev | AggregateOp::Stdvar => {
                    state.count += 1.0;
                    let delta = v - state.mean;
                    state.mean += delta / state.count;
                    state.value += delta * (v - state.mean);
                }
                AggregateOp::Topk => {
                    let top = state.heap.first().map_or(f64::NAN, |e| e.1);
                    if state.heap.len() < k || top < v || top.is_nan() {
                        if state.heap.len() == k {
                            go_heap::pop(&mut state.heap, topk_less);
                        }
                        go_heap::push(&mut state.heap, (index, v), topk_less);
                    }
                }
                AggregateOp::Bottomk => {
                    let top = state.heap.first().map_or(f64::NAN, |e| e.1);
                    if state.heap.len() < k || top > v || top.is_nan() {
                        if state.heap.len() == k {
                            go_heap::pop(&mut state.heap, bottomk_less);
                        }
                        go_heap::push(&mut state.heap, (index, v), bottomk_less);
                    }
                }
                AggregateOp::Quantile => state.heap.push((index, v)),
            }
        }
        for &group in &order {
            let Some(state) = &mut groups[group] else {
                continue;
            };
            let value = match op {
                AggregateOp::Avg => state.mean,
                AggregateOp::Count | AggregateOp::CountValues => state.count,
                AggregateOp::Stdvar => state.value / state.count,
                AggregateOp::Stddev => (state.value / state.count).sqrt(),
                AggregateOp::Quantile => {
                    let mut values: Vec<f64> = state.heap.iter().map(|e| e.1).collect();
                    quantile(param, &mut values)
                }
                AggregateOp::Topk | AggregateOp::Bottomk => {
                    for &(index, v) in &state.heap {
                        output.push(series_out[index], step, v)?;
                    }
                    continue;
                }
                AggregateOp::Sum | AggregateOp::Min | AggregateOp::Max | AggregateOp::Group => {
                    state.value
                }
            };
            output.push(group_out[group], step, value)?;
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
