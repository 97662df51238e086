//! The tonic adapter of the query service: each handler converts its request, calls
//! [`QueryService`] and converts the answer (`convert.rs`); errors become statuses through
//! `From<QueryError> for Status`.

use std::sync::Arc;
use std::time::Duration;

use pharos_proto::query::v1 as pb;
use pharos_proto::query::v1::query_service_server::{self, QueryServiceServer};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::QueryError;
use crate::service::QueryService;

/// The tonic service over [`QueryService`].
#[derive(Clone)]
pub struct QueryGrpc {
    service: Arc<QueryService>,
}

impl QueryGrpc {
    pub fn new(service: Arc<QueryService>) -> Self {
        Self { service }
    }
}

/// The mountable server, with the process's message size limit.
pub fn server(
    service: Arc<QueryService>,
    max_message_bytes: usize,
) -> QueryServiceServer<QueryGrpc> {
    pharos_runtime::tonic_server!(
        QueryServiceServer::new(QueryGrpc { service }),
        max_message_bytes
    )
}

/// The error with its field named as the gRPC request names it (the service names the HTTP
/// API's parameters, `match[]` and `label`).
fn grpc_fields(error: QueryError) -> Status {
    let renamed = match error {
        QueryError::InvalidParameter { parameter, reason } => QueryError::InvalidParameter {
            parameter: match parameter.as_str() {
                "match[]" => "matchers".to_owned(),
                "label" => "name".to_owned(),
                _ => parameter,
            },
            reason,
        },
        other => other,
    };
    renamed.into()
}

fn timeout(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

#[tonic::async_trait]
impl query_service_server::QueryService for QueryGrpc {
    async fn query_instant(
        &self,
        request: Request<pb::QueryInstantRequest>,
    ) -> Result<Response<pb::QueryInstantResponse>, Status> {
        let request = request.into_inner();
        let time = request.time_ms.unwrap_or_else(|| self.service.now_millis());
        let answer = self
            .service
            .instant(
                &request.query,
                time,
                timeout(request.timeout_ms),
                request.fresh_series,
            )
            .await?;
        Ok(Response::new(convert::instant_response(answer)))
    }

    async fn query_range(
        &self,
        request: Request<pb::QueryRangeRequest>,
    ) -> Result<Response<pb::QueryRangeResponse>, Status> {
        let request = request.into_inner();
        let answer = self
            .service
            .range(
                &request.query,
                request.start_ms,
                request.end_ms,
                request.step_ms,
                timeout(request.timeout_ms),
            )
            .await?;
        Ok(Response::new(convert::range_response(answer)))
    }

    async fn series(
        &self,
        request: Request<pb::SeriesRequest>,
    ) -> Result<Response<pb::SeriesResponse>, Status> {
        let request = request.into_inner();
        let (series, truncated) = self
            .service
            .series(
                &request.matchers,
                convert::time_range(request.start_ms, request.end_ms),
                request.limit as usize,
            )
            .await
            .map_err(grpc_fields)?;
        Ok(Response::new(pb::SeriesResponse {
            series: series
                .iter()
                .map(|labels| pb::LabelSet {
                    labels: convert::labels(labels),
                })
                .collect(),
            truncated,
        }))
    }

    async fn label_names(
        &self,
        request: Request<pb::LabelNamesRequest>,
    ) -> Result<Response<pb::LabelNamesResponse>, Status> {
        let request = request.into_inner();
        let (names, truncated) = self
            .service
            .label_names(
                &request.matchers,
                convert::time_range(request.start_ms, request.end_ms),
                request.limit as usize,
            )
            .await
            .map_err(grpc_fields)?;
        Ok(Response::new(pb::LabelNamesResponse { names, truncated }))
    }

    async fn label_values(
        &self,
        request: Request<pb::LabelValuesRequest>,
    ) -> Result<Response<pb::LabelValuesResponse>, Status> {
        let request = request.into_inner();
        let (values, truncated) = self
            .service
            .label_values(
                &request.name,
                &request.matchers,
                convert::time_range(request.start_ms, request.end_ms),
                request.limit as usize,
            )
            .await
            .map_err(grpc_fields)?;
        Ok(Response::new(pb::LabelValuesResponse { values, truncated }))
    }
}
