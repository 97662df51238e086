//! Overload protection for unary work: a process-wide cap on calls in flight
//! that refuses (RESOURCE_EXHAUSTED with RetryInfo) instead of queueing, and
//! a deadline on the time a call takes to produce its response. Streams hold
//! a slot only until their response starts, so open Watch streams never use
//! up the cap.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::settings::LimitSettings;

/// Wraps a service with [`Limit`].
#[derive(Clone, Debug)]
pub struct LimitLayer {
    permits: Arc<Semaphore>,
    timeout: Duration,
    retry_after: Duration,
}

impl LimitLayer {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            timeout: settings.request_timeout,
            retry_after: settings.retry_after,
        }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limit {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limit<S> {
    inner: S,
    layer: LimitLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Limit<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let status = crate::error::overloaded(
                tonic::Code::ResourceExhausted,
                "too many calls in flight; retry after the suggested delay",
                self.layer.retry_after,
            );
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let timeout = self.layer.timeout;
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = tokio::time::timeout(timeout, future).await;
            drop(permit);
            match result {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call took longer than the server's limit of {timeout:?}"
                ))
                .into_http()),
            }
        })
    }
}
