//! The tonic adapter of the ingest service: convert, call [`IngestService`], map its errors to
//! statuses; and the client-streaming `Write`, which writes the batches of a stream as they
//! arrive, several at a time, and answers once all are committed.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{FuturesOrdered, StreamExt as _};
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_server::{self, IngestServiceServer};
use tonic::{Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt as _};

use pharos_api::feed::{FeedApi, FeedItems};

use crate::service::{IngestService, Outcome};

/// Batches of one `Write` stream being written at once.
const STREAM_BATCHES_IN_FLIGHT: usize = 8;
/// Rejections a `Write` answer lists (all are counted).
const STREAM_REJECTIONS_LISTED: usize = 1_000;

#[derive(Clone)]
pub struct IngestGrpc {
    service: Arc<IngestService>,
    feed: Arc<dyn FeedApi>,
}

/// The mountable server, with the process's message size limit; gzip accepted both ways.
pub fn server(
    service: Arc<IngestService>,
    max_message_bytes: usize,
) -> IngestServiceServer<IngestGrpc> {
    let feed = crate::client::feed_api(service.clone());
    pharos_runtime::tonic_server!(
        IngestServiceServer::new(IngestGrpc { service, feed }),
        max_message_bytes
    )
}

impl IngestGrpc {
    /// Writes one batch of a `Write` stream.
    async fn write_batch(&self, request: pb::WriteRequest) -> Result<Outcome, Status> {
        use pb::write_request::Batch;
        let service = &self.service;
        let outcome = match request.batch {
            Some(Batch::Metrics(batch)) => service.write_metrics(batch).await?,
            Some(Batch::Spans(batch)) => {
                service
                    .write_spans(batch.spans.into_iter().map(Into::into).collect())
                    .await?
            }
            Some(Batch::Logs(batch)) => {
                service
                    .write_logs(batch.records.into_iter().map(Into::into).collect())
                    .await?
            }
            Some(Batch::SecurityEvents(batch)) => {
                service
                    .write_security_events(batch.events.into_iter().map(Into::into).collect())
                    .await?
            }
            None => Outcome::default(),
        };
        Ok(outcome)
    }
}

#[tonic::async_trait]
impl ingest_service_server::IngestService for IngestGrpc {
    type SubscribeStream = FeedItems;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Ok(Response::new(
            self.feed.subscribe(request.into_inner()).await?,
        ))
    }

    async fn write_metrics(
        &self,
        request: Request<pb::WriteMetricsRequest>,
    ) -> Result<Response<pb::WriteMetricsResponse>, Status> {
        let outcome = self.service.write_metrics(request.into_inner()).await?;
        Ok(Response::new(outcome.into()))
    }

    async fn write_spans(
        &self,
        request: Request<pb::WriteSpansRequest>,
    ) -> Result<Response<pb::WriteSpansResponse>, Status> {
        let items = request
            .into_inner()
            .spans
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(self.service.write_spans(items).await?.into()))
    }

    async fn write_logs(
        &self,
        request: Request<pb::WriteLogsRequest>,
    ) -> Result<Response<pb::WriteLogsResponse>, Status> {
        let items = request
            .into_inner()
            .records
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(self.service.write_logs(items).await?.into()))
    }

    async fn write_security_events(
        &self,
        request: Request<pb::WriteSecurityEventsRequest>,
    ) -> Result<Response<pb::WriteSecurityEventsResponse>, Status> {
        let items = request
            .into_inner()
            .events
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(
            self.service.write_security_events(items).await?.into(),
        ))
    }

    async fn write(
        &self,
        request: Request<Streaming<pb::WriteRequest>>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let mut stream = request.into_inner();
        let mut in_flight = FuturesOrdered::new();
        let mut received = 0u64;
        let mut ended = false;
        let mut answer = pb::WriteResponse::default();
        loop {
            tokio::select! {
                // Finished batches first, in stream order: `answer.batches` is always the
                // number of leading batches committed.
                Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                    let (batch, result): (u64, Result<Outcome, Status>) = result;
                    let outcome = result.map_err(|status| with_committed(status, answer.batches))?;
                    answer.batches += 1;
                    answer.accepted += outcome.accepted;
                    answer.rejected += outcome.rejections.len() as u64;
                    let room = STREAM_REJECTIONS_LISTED.saturating_sub(answer.rejections.len());
                    answer.rejections.extend(outcome.rejections.into_iter().take(room).map(|rejection| {
                        pb::StreamRejection { batch, rejection: Some(rejection.into()) }
                    }));
                }
                message = stream.message(), if !ended && in_flight.len() < STREAM_BATCHES_IN_FLIGHT => {
                    match message.map_err(|status| with_committed(status, answer.batches))? {
                        Some(request) => {
                            let batch = received;
                            received += 1;
                            let this = self.clone();
                            in_flight.push_back(async move { (batch, this.write_batch(request).await) });
                        }
                        None => ended = true,
                    }
                }
                else => break,
            }
        }
        Ok(Response::new(answer))
    }
}

/// The status with `committed_batches` added to its ErrorInfo, so the producer knows where to
/// resume.
fn with_committed(status: Status, committed: u64) -> Status {
    let mut details: ErrorDetails = status.get_error_details();
    let (reason, domain, mut metadata) = match details.error_info() {
        Some(info) => (
            info.reason.clone(),
            info.domain.clone(),
            info.metadata.clone(),
        ),
        None => (
            "WRITE_FAILED".to_owned(),
            pharos_runtime::error::ERROR_DOMAIN.to_owned(),
            HashMap::new(),
        ),
    };
    metadata.insert("committed_batches".to_owned(), committed.to_string());
    details.set_error_info(reason, domain, metadata);
    Status::with_error_details(
        status.code(),
        format!(
            "{} ({committed} leading batches of the stream are committed; resend from batch {committed})",
            status.message()
        ),
        details,
    )
}
