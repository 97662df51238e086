//! The outermost gRPC layer: one tracing span per call that continues the
//! caller's W3C trace, and the `rpc.server.call.duration` histogram with the
//! semantic-convention attributes (service, method, status code).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::Instant;

use opentelemetry::KeyValue;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::metrics::RpcMetrics;

/// Wraps a service with [`Observe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let span = tracing::info_span!(
            "grpc",
            otel.name = %request.uri().path().trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        crate::trace::continue_trace(&span, request.headers());
        let start = Instant::now();
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
                let code = match &result {
                    Ok(response) => grpc_status(response.headers()),
                    Err(_) => tonic::Code::Unknown as i32,
                };
                tracing::Span::current().record("rpc.grpc.status_code", code);
                let attributes = [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service),
                    KeyValue::new("rpc.method", method),
                    KeyValue::new("rpc.grpc.status_code", i64::from(code)),
                ];
                let metrics = RpcMetrics::get();
                metrics
                    .call_duration
                    .record(start.elapsed().as_secs_f64(), &attributes);
                if code != 0 {
                    metrics.errors.add(1, &attributes);
                }
                result
            }
            .instrument(span),
        )
    }
}

/// `/pkg.Service/Method` into (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (String, String) {
    let trimmed = path.trim_start_matches('/');
    match trimmed.split_once('/') {
        Some((service, method)) => (service.to_string(), method.to_string()),
        None => (trimmed.to_string(), String::new()),
    }
}

/// The status of a trailers-only response, or OK when the call succeeded and
/// the status follows in the trailers.
fn grpc_status(headers: &http::HeaderMap) -> i32 {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_grpc_paths() {
        assert_eq!(
            split_path("/pharos.config.v1.ConfigService/Get"),
            ("pharos.config.v1.ConfigService".into(), "Get".into())
        );
        assert_eq!(split_path("/odd"), ("odd".into(), String::new()));
    }
}
