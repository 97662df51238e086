//! Between the query service's values and the `pharos.query.v1` messages.

use std::collections::HashMap;

use pharos_promql::{Labels, Value};
use pharos_proto::query::v1 as pb;

use crate::service::{QueryAnswer, TimeRange};

pub(crate) fn labels(labels: &Labels) -> HashMap<String, String> {
    labels
        .iter()
        .map(|label| (label.name.clone(), label.value.clone()))
        .collect()
}

pub(crate) fn stats(answer: &QueryAnswer) -> pb::QueryStats {
    pb::QueryStats {
        series_loaded: answer.stats.series_loaded as u64,
        samples_loaded: answer.stats.samples_loaded as u64,
        hourly_buckets_loaded: answer.stats.hourly_buckets_loaded as u64,
    }
}

pub(crate) fn matrix(series: &[pharos_promql::Series]) -> pb::Matrix {
    pb::Matrix {
        series: series
            .iter()
            .map(|one| pb::Series {
                labels: labels(&one.labels),
                samples: one
                    .points
                    .iter()
                    .map(|point| pb::Sample {
                        time_ms: point.t,
                        value: point.v,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn instant_response(answer: QueryAnswer) -> pb::QueryInstantResponse {
    let stats = stats(&answer);
    let result = match &answer.value {
        Value::Scalar { t, v } => pb::query_instant_response::Result::Scalar(pb::Scalar {
            time_ms: *t,
            value: *v,
        }),
        Value::String { t, s } => pb::query_instant_response::Result::String(pb::StringValue {
            time_ms: *t,
            value: s.clone(),
        }),
        Value::Vector(samples) => pb::query_instant_response::Result::Vector(pb::Vector {
            samples: samples
                .iter()
                .map(|sample| pb::VectorSample {
                    labels: labels(&sample.labels),
                    time_ms: sample.t,
                    value: sample.v,
                })
                .collect(),
        }),
        Value::Matrix(series) => pb::query_instant_response::Result::Matrix(matrix(series)),
    };
    pb::QueryInstantResponse {
        result: Some(result),
        warnings: answer.warnings,
        stats: Some(stats),
    }
}

pub(crate) fn range_response(answer: QueryAnswer) -> pb::QueryRangeResponse {
    let stats = stats(&answer);
    let matrix = match &answer.value {
        Value::Matrix(series) => matrix(series),
        _ => pb::Matrix::default(),
    };
    pb::QueryRangeResponse {
        matrix: Some(matrix),
        warnings: answer.warnings,
        stats: Some(stats),
    }
}

pub(crate) fn time_range(start_ms: Option<i64>, end_ms: Option<i64>) -> TimeRange {
    TimeRange {
        start: start_ms,
        end: end_ms,
    }
}
