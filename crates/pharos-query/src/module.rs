//! The query service's registration in the module registry: target `query`. It reads the
//! store the ingest service writes (in this process or another), keeps the recent points in
//! memory from ingest's feed (in this process, or at `query.ingest_endpoint`), serves
//! `pharos.query.v1.QueryService` and mounts the Prometheus HTTP API on the process's HTTP
//! listener; the services started after it in the process query through it in process
//! (`QueryApi`).

use std::sync::Arc;

use pharos_api::client::ClientSettings;
use pharos_api::module::{
    BoxError, Interface, Module, ModuleContext, Need, StartedService, Target,
};

use crate::head::{Head, HeadHealth};
use crate::service::QueryService;
use crate::settings::QuerySettings;

/// Starts the query service with its section of the settings. Clones share the service
/// started by any of them ([`QueryModule::service`]).
#[derive(Debug, Clone)]
pub struct QueryModule {
    settings: QuerySettings,
    started: StartedService<QueryService>,
}

impl QueryModule {
    pub fn new(settings: QuerySettings) -> Self {
        Self {
            settings,
            started: StartedService::default(),
        }
    }

    /// The service this module or a clone of it started, `None` before that.
    pub fn service(&self) -> Option<Arc<QueryService>> {
        self.started.get()
    }
}

#[async_trait::async_trait]
impl Module for QueryModule {
    fn target(&self) -> Target {
        Target::Query
    }

    fn provides(&self) -> &'static [Interface] {
        &[Interface::Query]
    }

    fn needs(&self) -> Vec<Need> {
        vec![
            Need::optional(Interface::Feed, "query.ingest_endpoint").or_remote(
                ClientSettings {
                    token: Some(self.settings.service_token.clone()),
                    ..ClientSettings::new(self.settings.ingest_endpoint.clone())
                }
                .with_actor("pharos-query"),
            ),
        ]
    }

    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError> {
        self.settings.validate()?;
        let head = match context.feed() {
            _ if self.settings.head.window.is_zero() => None,
            Some(feed) => {
                let head = Head::new(self.settings.head.clone(), context.clock.clone());
                context.shutdown.spawn(crate::head::follow(
                    head.clone(),
                    feed.api,
                    context.store.clone(),
                    context.shutdown.clone(),
                ));
                context.add_health_check(Arc::new(HeadHealth(head.clone())));
                Some(head)
            }
            None => {
                tracing::info!(
                    "the head of recent points is off: no ingest service in this process and no query.ingest_endpoint"
                );
                None
            }
        };
        let service = QueryService::new(
            context.store.clone(),
            self.settings.clone(),
            context.clock.clone(),
            head,
        );
        self.started.record(&service);
        context.provide_query(crate::client::api(service.clone()));
        let max_message_bytes = context.max_message_bytes();
        context.describe_grpc(pharos_proto::FILE_DESCRIPTOR_SET);
        context.serve_grpc(crate::grpc::server(service.clone(), max_message_bytes));
        context.serve_http(crate::http::routes(service));
        Ok(())
    }
}
