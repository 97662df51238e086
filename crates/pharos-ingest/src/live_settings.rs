//! Live settings of the ingest service: every `pharos.ingest.<setting path>` key of the config
//! service (like `pharos.ingest.limits.max_age = "14d"` or
//! `pharos.ingest.metrics.max_batch_points = 20000`) is laid over the start-up settings and applied
//! without a restart; a value that does not fit its setting is logged and ignored.

use std::sync::Arc;

use pharos_api::ConfigApi;
use pharos_api::live_settings::{self, Follower, LiveSettings};
use pharos_api::module::Resolved;
use pharos_runtime::Shutdown;

use crate::service::IngestService;
use crate::settings::IngestSettings;

/// The key prefix of the ingest service's live settings.
pub const PREFIX: &str = "pharos.ingest.";

/// Follows the live keys through `config` until `shutdown`; `None` when the settings cannot be
/// made live (a bug: they are plain serde structs).
pub fn follow(
    service: Arc<IngestService>,
    config: Resolved<dyn ConfigApi>,
    shutdown: &Shutdown,
) -> Option<Follower> {
    let base: IngestSettings = service.settings().as_ref().clone();
    let mut live = match LiveSettings::new(PREFIX, &base) {
        Ok(live) => live,
        Err(error) => {
            tracing::error!(%error, "ingest settings cannot be made live");
            return None;
        }
    };
    Some(live_settings::follow(
        config.api,
        PREFIX,
        config.source,
        shutdown,
        move |change| match live.apply(&change) {
            Ok(Some(settings)) => {
                service.apply_settings(&settings);
                tracing::info!(key = %change.key, value = ?change.value, "applied live ingest setting");
            }
            Ok(None) => {}
            Err(reason) => tracing::warn!(%reason, "ignoring live ingest setting"),
        },
    ))
}
