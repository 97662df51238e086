//! The Prometheus remote write 1.0 receiver, `POST /api/v1/write` on the HTTP listener: a
//! snappy-compressed `prometheus.WriteRequest` whose samples go through the same validation and
//! batching as `WriteMetrics`, answered once they have committed. A Prometheus or Grafana Alloy
//! pointed at it uses Pharos as its long-term store.
//!
//! Answers follow what remote-write senders retry: 204 when every sample is stored; 400 (not
//! retried) for a body that does not decode or samples refused by validation (the others are
//! stored); 503 with `Retry-After` (retried) when the write buffer is full or the database is
//! unavailable, in which case nothing of that part was stored. Staleness markers are stored as
//! they come, so a series that stops goes stale in queries exactly as in Prometheus. Native
//! histograms are refused by name; their series' float samples are still stored.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pharos_proto::ingest::v1 as pb;
use pharos_proto::prometheus as prompb;
use prost::Message as _;

use crate::error::IngestError;
use crate::service::IngestService;

/// The label holding a series' metric name.
const METRIC_NAME: &str = "__name__";

/// The route of the receiver; bodies up to `max_message_bytes` (compressed and decompressed).
pub fn routes(service: Arc<IngestService>, max_message_bytes: usize) -> Router {
    Router::new()
        .route("/api/v1/write", post(receive))
        .layer(DefaultBodyLimit::max(max_message_bytes))
        .with_state(Receiver {
            service,
            max_message_bytes,
        })
}

#[derive(Clone)]
struct Receiver {
    service: Arc<IngestService>,
    max_message_bytes: usize,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match decode(&headers, &body, receiver.max_message_bytes) {
        Ok(request) => request,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match store(&receiver.service, request).await {
        Ok(Stored {
            samples,
            refused,
            first_refusal,
        }) => {
            if refused == 0 {
                StatusCode::NO_CONTENT.into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{refused} of {} samples refused, the others stored; first: {}",
                        samples + refused,
                        first_refusal.unwrap_or_default()
                    ),
                )
                    .into_response()
            }
        }
        Err(error) => error_response(&error),
    }
}

/// The request in `body`, which must be snappy (block format) and protobuf.
fn decode(
    headers: &HeaderMap,
    body: &[u8],
    max_bytes: usize,
) -> Result<prompb::WriteRequest, String> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"snappy"
    {
        return Err(format!(
            "unsupported Content-Encoding {encoding:?}: remote write 1.0 bodies are snappy-compressed"
        ));
    }
    let length = snap::raw::decompress_len(body)
        .map_err(|error| format!("the body is not snappy-compressed: {error}"))?;
    if length > max_bytes {
        return Err(format!(
            "the body decompresses to {length} bytes, more than the limit of {max_bytes} (server.limits.max_message_bytes); send smaller batches"
        ));
    }
    let decompressed = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|error| format!("the body is not snappy-compressed: {error}"))?;
    prompb::WriteRequest::decode(decompressed.as_slice())
        .map_err(|error| format!("the body is not a prometheus.WriteRequest: {error}"))
}

struct Stored {
    samples: u64,
    refused: u64,
    first_refusal: Option<String>,
}

/// Converts the samples to metric points and writes them in batches the service accepts.
async fn store(
    service: &IngestService,
    request: prompb::WriteRequest,
) -> Result<Stored, IngestError> {
    let batch_limit = service
        .settings()
        .limits
        .max_items_per_request
        .min(service.points_capacity())
        .max(1);
    let mut stored = Stored {
        samples: 0,
        refused: 0,
        first_refusal: None,
    };
    let refuse = |stored: &mut Stored, count: u64, why: String| {
        stored.refused += count;
        stored.first_refusal.get_or_insert(why);
    };
    let mut batch: Vec<pb::MetricPoint> = Vec::with_capacity(batch_limit);
    for series in request.timeseries {
        if !series.histograms.is_empty() {
            refuse(
                &mut stored,
                series.histograms.len() as u64,
                format!(
                    "native histogram samples are not supported (series {}); send classic histograms",
                    describe(&series.labels)
                ),
            );
        }
        let Some(name) = series
            .labels
            .iter()
            .find(|label| label.name == METRIC_NAME)
            .map(|label| label.value.clone())
        else {
            refuse(
                &mut stored,
                series.samples.len() as u64,
                format!(
                    "a series without a __name__ label: {}",
                    describe(&series.labels)
                ),
            );
            continue;
        };
        let labels: Vec<pb::Label> = series
            .labels
            .into_iter()
            .filter(|label| label.name != METRIC_NAME)
            .map(|label| pb::Label {
                name: label.name,
                value: label.value,
            })
            .collect();
        for sample in series.samples {
            batch.push(pb::MetricPoint {
                name: name.clone(),
                labels: labels.clone(),
                time_unix_nano: sample.timestamp.saturating_mul(1_000_000),
                value: sample.value,
            });
            if batch.len() == batch_limit {
                write(service, &mut batch, &mut stored).await?;
            }
        }
    }
    if !batch.is_empty() {
        write(service, &mut batch, &mut stored).await?;
    }
    Ok(stored)
}

async fn write(
    service: &IngestService,
    batch: &mut Vec<pb::MetricPoint>,
    stored: &mut Stored,
) -> Result<(), IngestError> {
    let points = std::mem::take(batch);
    let outcome = service
        .write_metrics(pb::WriteMetricsRequest { points })
        .await?;
    stored.samples += outcome.accepted;
    stored.refused += outcome.rejections.len() as u64;
    if let Some(first) = outcome.rejections.first() {
        stored.first_refusal.get_or_insert_with(|| {
            format!("{} ({}): {}", first.reason, first.field, first.message)
        });
    }
    Ok(())
}

/// `{__name__="x", a="1"}` for messages.
fn describe(labels: &[prompb::Label]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|label| format!("{}={:?}", label.name, label.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn error_response(error: &IngestError) -> Response {
    match error {
        IngestError::InvalidArgument(violations) => {
            let message: Vec<String> = violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.reason))
                .collect();
            (StatusCode::BAD_REQUEST, message.join("; ")).into_response()
        }
        IngestError::Overloaded { retry_after, .. }
        | IngestError::Unavailable { retry_after, .. }
        | IngestError::ShuttingDown { retry_after } => {
            let seconds = retry_after.as_secs().max(1).to_string();
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        IngestError::Internal { .. } => {
            tracing::error!(%error, "remote write failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store refused the batch; see the server log",
            )
                .into_response()
        }
    }
}
