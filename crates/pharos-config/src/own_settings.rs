//! The configuration service's own live settings: the `pharos.config.cache.*` keys set the
//! cache's TTL rule while the service runs, followed through the service itself like any other
//! service's live settings (`pharos_api::live_settings`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pharos_api::live_settings::{self, Follower};

use crate::cache::TtlPolicy;
use crate::service::ConfigService;

/// The live keys of the configuration service's own cache.
pub const DEFAULT_CHANGE_PERIOD_KEY: &str = "pharos.config.cache.default_change_period";
pub const CHANGE_PERIOD_KEY_PREFIX: &str = "pharos.config.cache.change_period.";

/// Applies `pharos.config.cache.*` keys to the service's TTL rule.
pub(crate) fn follow(service: &Arc<ConfigService>) -> Follower {
    let base = TtlPolicy::from_settings(&service.settings().cache);
    let mut overrides: HashMap<String, Duration> = HashMap::new();
    // The watch task ends with the service's shutdown, so holding the service here is fine.
    let api = crate::client::api(service.clone());
    let shutdown = service.shutdown().clone();
    let service = service.clone();
    live_settings::follow(
        api,
        "pharos.config.",
        "in-process",
        &shutdown,
        move |change| {
            let relevant = change.key == DEFAULT_CHANGE_PERIOD_KEY
                || change.key.starts_with(CHANGE_PERIOD_KEY_PREFIX);
            if !relevant {
                return;
            }
            match change
                .value
                .as_deref()
                .map(|text| humantime::parse_duration(text.trim()))
            {
                Some(Ok(period)) => {
                    overrides.insert(change.key.clone(), period);
                }
                Some(Err(error)) => {
                    tracing::warn!(key = %change.key, %error, "ignoring live setting that is not a duration");
                    return;
                }
                None => {
                    overrides.remove(&change.key);
                }
            }
            let mut policy = base.clone();
            for (key, period) in &overrides {
                if key == DEFAULT_CHANGE_PERIOD_KEY {
                    policy.default_period = *period;
                } else if let Some(category) = key.strip_prefix(CHANGE_PERIOD_KEY_PREFIX) {
                    policy
                        .category_periods
                        .insert(category.to_string(), *period);
                }
            }
            tracing::info!(key = %change.key, "live cache setting applied");
            service.set_ttl_policy(policy);
        },
    )
}
