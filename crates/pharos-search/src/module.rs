//! The search service's registration in the module registry: target `search`. Its snapshots go
//! to `<data_dir>/search` unless `search.snapshot_dir` says otherwise; its stop hook writes the
//! last snapshot and releases that directory.

use std::fmt;
use std::sync::{Arc, OnceLock};

use pharos_api::module::{BoxError, Module, ModuleContext, Target};

use crate::service::SearchService;
use crate::settings::SearchSettings;

/// Starts the search service with its section of the settings. Clones share the service
/// started by any of them ([`SearchModule::service`]).
#[derive(Clone)]
pub struct SearchModule {
    settings: SearchSettings,
    started: Arc<OnceLock<Arc<SearchService>>>,
}

impl SearchModule {
    pub fn new(settings: SearchSettings) -> Self {
        Self {
            settings,
            started: Arc::default(),
        }
    }

    /// The service this module or a clone of it started (the first one, if started more than
    /// once), `None` before that. The registry owns the registered module, so whoever needs the
    /// service itself (a test reading its state, an embedder) registers a clone and asks here.
    pub fn service(&self) -> Option<Arc<SearchService>> {
        self.started.get().cloned()
    }
}

impl fmt::Debug for SearchModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchModule")
            .field("settings", &self.settings)
            .field("started", &self.started.get().is_some())
            .finish()
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
        let _ = self.started.set(service.clone());
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
