//! Live settings of the alert service: every `pharos.alert.detectors.<setting path>` key of the
//! config service (like `pharos.alert.detectors.brute_force.max_failures = 10`) is laid over the
//! start-up detector settings and applied to this replica's detectors without a restart; a value
//! that does not fit its setting, or leaves the settings invalid, is logged and ignored.

use pharos_api::ConfigApi;
use pharos_api::live_settings::{self, Follower, LiveSettings};
use pharos_api::module::Resolved;
use pharos_runtime::Shutdown;

use crate::detect::DetectorSettings;
use crate::security::SharedDetectors;

/// The key prefix of the detectors' live settings.
pub const PREFIX: &str = "pharos.alert.detectors.";

/// Follows the live keys through `config` until `shutdown`; `None` when the settings cannot be
/// made live (a bug: they are plain serde structs).
pub fn follow(
    detectors: SharedDetectors,
    base: DetectorSettings,
    config: Resolved<dyn ConfigApi>,
    shutdown: &Shutdown,
) -> Option<Follower> {
    let mut live = match LiveSettings::new(PREFIX, &base) {
        Ok(live) => live,
        Err(error) => {
            tracing::error!(%error, "detector settings cannot be made live");
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
                if let Err(error) = settings.validate() {
                    tracing::warn!(key = %change.key, %error, "ignoring live detector setting");
                    return;
                }
                match detectors.lock() {
                    Ok(mut detectors) => detectors.apply_settings(settings),
                    Err(poisoned) => poisoned.into_inner().apply_settings(settings),
                }
                tracing::info!(key = %change.key, value = ?change.value, "applied live detector setting");
            }
            Ok(None) => {}
            Err(reason) => tracing::warn!(%reason, "ignoring live detector setting"),
        },
    ))
}
