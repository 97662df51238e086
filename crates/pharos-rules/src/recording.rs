//! Recording rules: an expression's result renamed and relabelled, to be written as series
//! (Prometheus 2.42 `rules/recording.go`).

use pharos_promql::{Labels, METRIC_NAME, Point, Sample};

use crate::file::Rule;

/// The series a recording rule writes for one evaluation at `ts` of its expression, which
/// returned `results`. Fails, as Prometheus does, when two results end with the same labels or
/// when there are more than `limit` (0 for no limit).
pub fn record(
    rule: &Rule,
    results: &[Sample],
    ts: i64,
    limit: usize,
) -> Result<Vec<(Labels, Point)>, String> {
    let mut recorded: Vec<(Labels, Point)> = results
        .iter()
        .map(|sample| {
            let mut labels = sample.labels.with(METRIC_NAME, &rule.name);
            for (name, value) in &rule.labels {
                labels = labels.with(name, value);
            }
            (labels, Point::new(ts, sample.v))
        })
        .collect();
    recorded.sort_by(|a, b| a.0.cmp(&b.0));
    if recorded.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(
            "vector contains metrics with the same labelset after applying rule labels".to_owned(),
        );
    }
    if limit > 0 && recorded.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            recorded.len()
        ));
    }
    Ok(recorded)
}
