//! Binary operators: arithmetic, comparisons (filtering, or `bool`) and the set operators
//! `and`, `or`, `unless`, between scalars and vectors, with vector matching (`on`, `ignoring`,
//! `group_left`, `group_right`) and the errors Prometheus gives when matching is ambiguous.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::eval::{Evaluated, Output, StepSeries, by_step, merge_same_labels};
use crate::plan::{Binary, BinaryOp, Cardinality, VectorMatching};
use crate::types::Labels;

pub(crate) fn evaluate(
    binary: &Binary,
    lhs: Evaluated,
    rhs: Evaluated,
    steps: usize,
) -> Result<Evaluated> {
    let op = binary.op;
    match (lhs, rhs) {
        (Evaluated::Scalar(left), Evaluated::Scalar(right)) => Ok(Evaluated::Scalar(
            left.iter()
                .zip(&right)
                .map(|(l, r)| {
                    let (value, keep) = element(op, *l, *r);
                    if op.is_comparison() {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        value
                    }
                })
                .collect(),
        )),
        (Evaluated::Vector(left), Evaluated::Scalar(right)) => {
            vector_scalar(op, binary.return_bool, left, &right, false)
        }
        (Evaluated::Scalar(left), Evaluated::Vector(right)) => {
            vector_scalar(op, binary.return_bool, right, &left, true)
        }
        (Evaluated::Vector(left), Evaluated::Vector(right)) => {
            let matching = binary.matching.clone().unwrap_or(VectorMatching {
                on: false,
                labels: Vec::new(),
                cardinality: if op.is_set() {
                    Cardinality::ManyToMany
                } else {
                    Cardinality::OneToOne
                },
                include: Vec::new(),
            });
            match op {
                BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => {
                    set_operation(op, &matching, left, right, steps)
                }
                _ => vector_vector(op, binary.return_bool, &matching, left, right, steps),
            }
        }
        _ => Err(Error::Execution(
            "binary operators are not defined on strings".to_owned(),
        )),
    }
}

/// Whether the operator drops the metric name from its result (2.42 keeps it for `atan2`).
fn drops_metric_name(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Mod
            | BinaryOp::Pow
    )
}

/// The operator on two values: the result and, for comparisons, whether the comparison holds
/// (arithmetic always keeps).
fn element(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (go_mod(l, r), true),
        BinaryOp::Pow => (go_pow(l, r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eq => (l, l == r),
        BinaryOp::Ne => (l, l != r),
        BinaryOp::Gt => (l, l > r),
        BinaryOp::Lt => (l, l < r),
        BinaryOp::Ge => (l, l >= r),
        BinaryOp::Le => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (l, true),
    }
}

/// Go's `math.Mod`: the sign of the dividend, NaN for a zero or infinite divisor's special cases.
fn go_mod(x: f64, y: f64) -> f64 {
    if y == 0.0 || x.is_infinite() || x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    x % y
}

/// Go's `math.Pow`, whose special cases differ from C's in one place: `(-1)^±Inf` is 1.
fn go_pow(x: f64, y: f64) -> f64 {
    if x == -1.0 && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

fn vector_scalar(
    op: BinaryOp,
    return_bool: bool,
    vector: Vec<StepSeries>,
    scalar: &[f64],
    scalar_on_left: bool,
) -> Result<Evaluated> {
    let drop_name = drops_metric_name(op) || return_bool;
    let out = vector
        .into_iter()
        .map(|one| {
            let points = one
                .points
                .into_iter()
                .filter_map(|point| {
                    let s = scalar[point.step];
                    let (l, r) = if scalar_on_left {
                        (s, point.v)
                    } else {
                        (point.v, s)
                    };
                    let (mut value, keep) = element(op, l, r);
                    if op.is_comparison() && scalar_on_left {
                        value = point.v;
                    }
                    if return_bool {
                        value = if keep { 1.0 } else { 0.0 };
                    } else if !keep {
                        return None;
                    }
                    Some(crate::eval::StepPoint {
                        step: point.step,
                        v: value,
                    })
                })
                .collect();
            StepSeries {
                labels: if drop_name {
                    one.labels.without_metric_name()
                } else {
                    one.labels
                },
                points,
            }
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(out)?))
}

/// The labels two series are matched on.
fn signature(labels: &Labels, matching: &VectorMatching) -> Labels {
    let matched = matched_labels(labels, matching);
    if matching.on {
        matched
    } else {
        matched.without_metric_name()
    }
}

/// The labels `on(...)` keeps, or those `ignoring(...)` leaves.
fn matched_labels(labels: &Labels, matching: &VectorMatching) -> Labels {
    labels.filtered(|label| matching.labels.contains(&label.name) == matching.on)
}

/// Numbers the signatures of both sides, so that each step compares integers.
fn signature_ids(
    left: &[StepSeries],
    right: &[StepSeries],
    matching: &VectorMatching,
) -> (Vec<usize>, Vec<usize>, Vec<Labels>) {
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    let mut signatures: Vec<Labels> = Vec::new();
    let mut id_of = |series: &StepSeries| {
        let signature = signature(&series.labels, matching);
        *ids.entry(signature.clone()).or_insert_with(|| {
            signatures.push(signature);
            signatures.len() - 1
        })
    };
    let left_ids = left.iter().map(&mut id_of).collect();
    let right_ids = right.iter().map(&mut id_of).collect();
    (left_ids, right_ids, signatures)
}

fn set_operation(
    op: BinaryOp,
    matching: &VectorMatching,
    left: Vec<StepSeries>,
    right: Vec<StepSeries>,
    steps: usize,
) -> Result<Evaluated> {
    let (left_ids, right_ids, _) = signature_ids(&left, &right, matching);
    let left_steps = by_step(&left, steps);
    let right_steps = by_step(&right, steps);
    let mut output = Output::default();
    let left_out: Vec<usize> = left.iter().map(|s| output.series_for(&s.labels)).collect();
    let right_out: Vec<usize> = match op {
        BinaryOp::Or => right.iter().map(|s| output.series_for(&s.labels)).collect(),
        _ => Vec::new(),
    };
    let mut signatures: HashSet<usize> = HashSet::new();
    for step in 0..steps {
        signatures.clear();
        match op {
            BinaryOp::And => {
                signatures.extend(right_steps[step].iter().map(|(i, _)| right_ids[*i]));
                for (i, v) in &left_steps[step] {
                    if signatures.contains(&left_ids[*i]) {
                        output.push(left_out[*i], step, *v)?;
                    }
                }
            }
            BinaryOp::Unless => {
                signatures.extend(right_steps[step].iter().map(|(i, _)| right_ids[*i]));
                for (i, v) in &left_steps[step] {
                    if !signatures.contains(&left_ids[*i]) {
                        output.push(left_out[*i], step, *v)?;
                    }
                }
            }
            _ => {
                for (i, v) in &left_steps[step] {
                    signatures.insert(left_ids[*i]);
                    output.push(left_out[*i], step, *v)?;
                }
                for (i, v) in &right_steps[step] {
                    if !signatures.contains(&right_ids[*i]) {
                        output.push(right_out[*i], step, *v)?;
                    }
                }
            }
        }
    }
    Ok(Evaluated::Vector(output.finish()))
}

fn vector_vector(
    op: BinaryOp,
    return_bool: bool,
    matching: &VectorMatching,
    left: Vec<StepSeries>,
    right: Vec<StepSeries>,
    steps: usize,
) -> Result<Evaluated> {
    if matching.cardinality == Cardinality::ManyToMany {
        return Err(Error::Execution(
            "many-to-many only allowed for set operators".to_owned(),
        ));
    }
    // The "many" side is iterated, the "one" side looked up: swap for group_right.
    let swapped = matching.cardinality == Cardinality::OneToMany;
    let (many, one) = if swapped {
        (right, left)
    } else {
        (left, right)
    };
    let (many_ids, one_ids, _) = signature_ids(&many, &one, matching);
    let many_steps = by_step(&many, steps);
    let one_steps = by_step(&one, steps);
    let mut output = Output::default();
    let mut result_labels: HashMap<(usize, usize), usize> = HashMap::new();
    let mut one_by_signature: HashMap<usize, (usize, f64)> = HashMap::new();
    let mut matched: HashMap<usize, Option<HashSet<usize>>> = HashMap::new();
    for step in 0..steps {
        one_by_signature.clear();
        matched.clear();
        for &(index, v) in &one_steps[step] {
            let signature = one_ids[index];
            if let Some(&(previous, _)) = one_by_signature.get(&signature) {
                let side = if swapped { "left" } else { "right" };
                let group = signature_text(&one[index].labels, matching);
                return Err(Error::Execution(format!(
                    "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    one[index].labels, one[previous].labels
                )));
            }
            one_by_signature.insert(signature, (index, v));
        }
        for &(index, v) in &many_steps[step] {
            let signature = many_ids[index];
            let Some(&(one_index, one_v)) = one_by_signature.get(&signature) else {
                continue;
            };
            let (l, r) = if swapped { (one_v, v) } else { (v, one_v) };
            let (mut value, keep) = element(op, l, r);
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let out_index = match result_labels.get(&(index, one_index)) {
                Some(out) => *out,
                None => {
                    let labels = result_metric(
                        &many[index].labels,
                        &one[one_index].labels,
                        op,
                        matching,
                        return_bool,
                    );
                    let out = output.series_for(&labels);
                    result_labels.insert((index, one_index), out);
                    out
                }
            };
            match matched.get_mut(&signature) {
                None => {
                    let inserted = (matching.cardinality != Cardinality::OneToOne)
                        .then(|| HashSet::from([out_index]));
                    matched.insert(signature, inserted);
                }
                Some(None) => {
                    return Err(Error::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".to_owned(),
                    ));
                }
                Some(Some(inserted)) => {
                    if !inserted.insert(out_index) {
                        return Err(Error::Execution(
                            "multiple matches for labels: grouping labels must ensure unique matches"
                                .to_owned(),
                        ));
                    }
                }
            }
            output.push(out_index, step, value)?;
        }
    }
    Ok(Evaluated::Vector(output.finish()))
}

/// The labels of a result element, as Prometheus' `resultMetric` builds them.
fn result_metric(
    many: &Labels,
    one: &Labels,
    op: BinaryOp,
    matching: &VectorMatching,
    return_bool: bool,
) -> Labels {
    let mut labels = many.clone();
    if drops_metric_name(op) || return_bool {
        labels = labels.without_metric_name();
    }
    if matching.cardinality == Cardinality::OneToOne {
        labels = matched_labels(&labels, matching);
    }
    for name in &matching.include {
        labels = labels.with(name, one.get(name).unwrap_or(""));
    }
    labels
}

/// The matched labels of a series, printed as Prometheus prints them in matching errors.
fn signature_text(labels: &Labels, matching: &VectorMatching) -> String {
    matched_labels(labels, matching).to_string()
}
