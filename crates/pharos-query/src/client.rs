//! The query service as [`QueryApi`] for the other services of its process (the alert
//! service's rule evaluation), with no loopback hop: the same handler the gRPC API runs.

use std::sync::Arc;

use pharos_api::query::QueryApi;
use pharos_proto::query::v1 as pb;
use pharos_proto::query::v1::query_service_server::QueryService as _;
use tonic::{Request, Status};

use crate::grpc::QueryGrpc;
use crate::service::QueryService;

/// The service as a [`QueryApi`] handle.
pub fn api(service: Arc<QueryService>) -> Arc<dyn QueryApi> {
    Arc::new(LocalQuery(QueryGrpc::new(service)))
}

/// This process's query service.
struct LocalQuery(QueryGrpc);

#[async_trait::async_trait]
impl QueryApi for LocalQuery {
    async fn instant(
        &self,
        request: pb::QueryInstantRequest,
    ) -> Result<pb::QueryInstantResponse, Status> {
        Ok(self
            .0
            .query_instant(Request::new(request))
            .await?
            .into_inner())
    }
}
