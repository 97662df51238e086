//! The Prometheus HTTP API on the process's HTTP listener, in Prometheus' own JSON shapes and
//! error types, so that Grafana's Prometheus data source, `promtool` and any Prometheus API
//! client work unchanged: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values`, `/api/v1/metadata`,
//! `/api/v1/query_exemplars` and `/api/v1/status/buildinfo`. Parameters come from the URL and,
//! for POST, from a form body (which wins), as Go's `Request.FormValue` reads them.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pharos_promql::{ErrorClass, Labels, Value};

use crate::error::QueryError;
use crate::params::{self, Params};
use crate::service::{QueryService, TimeRange};

/// The routes of the Prometheus HTTP API.
pub fn routes(service: Arc<QueryService>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .with_state(service)
}

type Service = State<Arc<QueryService>>;

async fn query(
    State(service): Service,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &body);
    respond(async {
        let query = params.required("query")?;
        let time = match params.get("time") {
            Some(time) => params::parse_time("time", time)?,
            None => service.now_millis(),
        };
        let timeout = optional_timeout(&params)?;
        let answer = service.instant(query, time, timeout, false).await?;
        Ok((value_json(&answer.value), answer.warnings))
    })
    .await
}

async fn query_range(
    State(service): Service,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &body);
    respond(async {
        let start = params::parse_time("start", params.get("start").unwrap_or(""))?;
        let end = params::parse_time("end", params.get("end").unwrap_or(""))?;
        if end < start {
            return Err(QueryError::invalid(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        let step = params::parse_duration("step", params.get("step").unwrap_or(""))?;
        if step <= 0 {
            return Err(QueryError::invalid(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let timeout = optional_timeout(&params)?;
        let query = params.required("query")?;
        let answer = service.range(query, start, end, step, timeout).await?;
        Ok((value_json(&answer.value), answer.warnings))
    })
    .await
}

async fn series(
    State(service): Service,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &body);
    respond(async {
        let selectors = params.all("match[]");
        let range = time_range(&params)?;
        let limit = limit(&params)?;
        let (series, truncated) = service.series(&selectors, range, limit).await?;
        let mut json = String::from("[");
        for (index, labels) in series.iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            labels_json(&mut json, labels);
        }
        json.push(']');
        Ok((json, truncated_warning(truncated)))
    })
    .await
}

async fn labels(
    State(service): Service,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &body);
    respond(async {
        let selectors = params.all("match[]");
        let range = time_range(&params)?;
        let limit = limit(&params)?;
        let (names, truncated) = service.label_names(&selectors, range, limit).await?;
        Ok((strings_json(&names), truncated_warning(truncated)))
    })
    .await
}

async fn label_values(
    State(service): Service,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &Bytes::new());
    respond(async {
        let selectors = params.all("match[]");
        let range = time_range(&params)?;
        let limit = limit(&params)?;
        let (values, truncated) = service
            .label_values(&name, &selectors, range, limit)
            .await?;
        Ok((strings_json(&values), truncated_warning(truncated)))
    })
    .await
}

/// Metric metadata: Pharos keeps no type, help or unit per metric, so every metric is listed
/// with type `unknown`, as Prometheus lists a metric whose exposition gave none.
async fn metadata(
    State(service): Service,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &Bytes::new());
    respond(async {
        let limit = limit(&params)?;
        let metric = params.get("metric").filter(|m| !m.is_empty());
        let mut names = service.metric_names().await?;
        if let Some(metric) = metric {
            names.retain(|name| name == metric);
        }
        if limit > 0 {
            names.truncate(limit);
        }
        let mut json = String::from("{");
        for (index, name) in names.iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            push_string(&mut json, name);
            json.push_str(r#":[{"type":"unknown","help":"","unit":""}]"#);
        }
        json.push('}');
        Ok((json, Vec::new()))
    })
    .await
}

/// Exemplars: Pharos stores none, so every selection has none (not an error, so that panels
/// with exemplars turned on still draw).
async fn query_exemplars(RawQuery(url): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(url.as_deref(), &headers, &body);
    respond(async {
        let query = params.required("query")?;
        pharos_promql::Engine::default()
            .prepare_instant(query, 0)
            .map_err(QueryError::from)?;
        Ok(("[]".to_owned(), Vec::new()))
    })
    .await
}

/// Build information in Prometheus' shape. `version` is the Prometheus version whose PromQL
/// semantics Pharos follows, which is what clients such as Grafana read it for.
async fn buildinfo() -> Response {
    let data = serde_json::json!({
        "version": "2.42.0",
        "revision": concat!("pharos-", env!("CARGO_PKG_VERSION")),
        "branch": "pharos",
        "buildUser": "pharos",
        "buildDate": "",
        "goVersion": "none (Pharos is written in Rust)",
    });
    success(data.to_string(), &[])
}

fn optional_timeout(params: &Params) -> Result<Option<Duration>, QueryError> {
    params
        .get("timeout")
        .filter(|t| !t.is_empty())
        .map(|t| params::parse_duration("timeout", t))
        .transpose()
        .map(|ms| ms.map(|ms| Duration::from_millis(ms.max(0) as u64)))
}

fn time_range(params: &Params) -> Result<TimeRange, QueryError> {
    let bound = |name: &str| {
        params
            .get(name)
            .filter(|value| !value.is_empty())
            .map(|value| params::parse_time(name, value))
            .transpose()
    };
    Ok(TimeRange {
        start: bound("start")?,
        end: bound("end")?,
    })
}

fn limit(params: &Params) -> Result<usize, QueryError> {
    match params.get("limit").filter(|l| !l.is_empty()) {
        None => Ok(0),
        Some(text) => text.parse::<usize>().map_err(|_| {
            QueryError::invalid("limit", format!("cannot parse {text:?} to a valid limit"))
        }),
    }
}

fn truncated_warning(truncated: bool) -> Vec<String> {
    if truncated {
        vec!["results truncated due to limit".to_owned()]
    } else {
        Vec::new()
    }
}

/// Runs a handler body and turns its result into Prometheus' envelope.
async fn respond(
    body: impl Future<Output = Result<(String, Vec<String>), QueryError>>,
) -> Response {
    match body.await {
        Ok((data, warnings)) => success(data, &warnings),
        Err(error) => error_response(&error),
    }
}

fn success(data: String, warnings: &[String]) -> Response {
    let mut json = String::with_capacity(data.len() + 32);
    json.push_str(r#"{"status":"success","data":"#);
    json.push_str(&data);
    if !warnings.is_empty() {
        json.push_str(r#","warnings":"#);
        json.push_str(&strings_json(warnings));
    }
    json.push('}');
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response()
}

/// Prometheus' error envelope and status code for `error`.
pub(crate) fn error_response(error: &QueryError) -> Response {
    let class = error.class();
    let (status, error_type) = match class {
        Some(ErrorClass::BadData) => (StatusCode::BAD_REQUEST, "bad_data"),
        Some(ErrorClass::Execution) => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
        Some(ErrorClass::Timeout) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        Some(ErrorClass::Canceled) => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "canceled",
        ),
        Some(ErrorClass::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let body = serde_json::json!({
        "status": "error",
        "errorType": error_type,
        "error": error.client_message(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A query result as the `data` of Prometheus' envelope.
pub(crate) fn value_json(value: &Value) -> String {
    let mut json = String::new();
    json.push_str(r#"{"resultType":""#);
    json.push_str(value.type_name());
    json.push_str(r#"","result":"#);
    match value {
        Value::Scalar { t, v } => push_point(&mut json, *t, *v),
        Value::String { t, s } => {
            json.push('[');
            push_timestamp(&mut json, *t);
            json.push(',');
            push_string(&mut json, s);
            json.push(']');
        }
        Value::Vector(samples) => {
            json.push('[');
            for (index, sample) in samples.iter().enumerate() {
                if index > 0 {
                    json.push(',');
                }
                json.push_str(r#"{"metric":"#);
                labels_json(&mut json, &sample.labels);
                json.push_str(r#","value":"#);
                push_point(&mut json, sample.t, sample.v);
                json.push('}');
            }
            json.push(']');
        }
        Value::Matrix(series) => {
            json.push('[');
            for (index, one) in series.iter().enumerate() {
                if index > 0 {
                    json.push(',');
                }
                json.push_str(r#"{"metric":"#);
                labels_json(&mut json, &one.labels);
                json.push_str(r#","values":["#);
                for (i, point) in one.points.iter().enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    push_point(&mut json, point.t, point.v);
                }
                json.push_str("]}");
            }
            json.push(']');
        }
    }
    json.push('}');
    json
}

fn labels_json(json: &mut String, labels: &Labels) {
    json.push('{');
    for (index, label) in labels.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        push_string(json, &label.name);
        json.push(':');
        push_string(json, &label.value);
    }
    json.push('}');
}

fn strings_json(values: &[String]) -> String {
    let mut json = String::from("[");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        push_string(&mut json, value);
    }
    json.push(']');
    json
}

fn push_string(json: &mut String, value: &str) {
    match serde_json::to_string(value) {
        Ok(quoted) => json.push_str(&quoted),
        Err(_) => json.push_str("\"\""),
    }
}

/// `[<seconds>,"<value>"]`.
fn push_point(json: &mut String, t: i64, v: f64) {
    json.push('[');
    push_timestamp(json, t);
    json.push_str(",\"");
    pharos_promql::write_float(json, v);
    json.push_str("\"]");
}

/// Milliseconds written as seconds the way Prometheus writes them: `12`, `12.5` is `12.500`.
fn push_timestamp(json: &mut String, t: i64) {
    if t < 0 {
        json.push('-');
    }
    let t = t.unsigned_abs();
    json.push_str(itoa::Buffer::new().format(t / 1000));
    let fraction = t % 1000;
    if fraction != 0 {
        json.push('.');
        for digit in [fraction / 100, fraction / 10 % 10, fraction % 10] {
            json.push(char::from(b'0' + digit as u8));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_prometheus_writes_them() {
        let written = |t: i64| {
            let mut json = String::new();
            push_timestamp(&mut json, t);
            json
        };
        assert_eq!(written(1_435_781_451_781), "1435781451.781");
        assert_eq!(written(1_435_781_451_000), "1435781451");
        assert_eq!(written(1_500), "1.500");
        assert_eq!(written(5), "0.005");
        assert_eq!(written(-1_500), "-1.500");
        assert_eq!(written(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn values_use_the_shapes_of_the_prometheus_api() {
        let vector = Value::Vector(vec![pharos_promql::Sample {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]),
            t: 1_000,
            v: f64::INFINITY,
        }]);
        assert_eq!(
            value_json(&vector),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1,"+Inf"]}]}"#
        );
        assert_eq!(
            value_json(&Value::Scalar { t: 2_500, v: 0.1 }),
            r#"{"resultType":"scalar","result":[2.500,"0.1"]}"#
        );
    }
}
