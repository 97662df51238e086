//! The search service's registration in the module registry: target `search`. Its snapshots go
//! to `<data_dir>/search` unless `search.snapshot_dir` says otherwise; its stop hook writes the
//! last snapshot and releases that directory.

use pharos_api::module::{BoxError, Module, ModuleContext, Target};

use crate::service::SearchService;
use crate::settings::SearchSettings;

/// Starts the search service with its section of the settings.
#[derive(Debug, Clone)]
pub struct SearchModule {
    settings: SearchSettings,
}

impl SearchModule {
    pub fn new(settings: SearchSettings) -> Self {
        Self { settings }
    }
}

#[async_trait::async_trait]
impl Module for SearchModule {
    fn target(&self) -> Target {
        Target::Search
    }

    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError> {
        let mut settings = self.settings.clone();
        if settings.snapshot_dir.is_none() {
            settings.snapshot_dir = Some(context.data_dir.join("search"));
        }
        let service =
            SearchService::start(context.store.clone(), settings, context.shutdown.clone()).await?;
        for check in service.health_checks() {
            context.add_health_check(check);
        }
        let max_message_bytes = context.max_message_bytes();
        context.describe_grpc(pharos_proto::FILE_DESCRIPTOR_SET);
        context.serve_grpc(crate::grpc::server(service.clone(), max_message_bytes));
        context.on_stop(move || async move { service.stop().await });
        Ok(())
    }
}
