//! Live settings: any Pharos service follows its `pharos.<service>.*` keys
//! through a Watch and applies changes without a restart. The stream resumes
//! from the last revision it saw after a disconnect, and starts over from a
//! fresh snapshot if that revision has left the change log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use pharos_proto::config::v1 as pb;
use pharos_runtime::Shutdown;
use tokio::task::JoinHandle;

use crate::cache::TtlPolicy;
use crate::client::ConfigClient;
use crate::service::ConfigService;

/// One live setting that changed: its base value, or `None` once deleted.
/// Environment overrides are not live settings and are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChange {
    pub key: String,
    pub value: Option<String>,
    pub revision: i64,
}

/// Follows every key under `prefix` and calls `apply` for each current value
/// and each change, until `shutdown`.
pub fn watch_settings<F>(
    client: ConfigClient,
    prefix: String,
    shutdown: Shutdown,
    mut apply: F,
) -> JoinHandle<()>
where
    F: FnMut(LiveChange) + Send + 'static,
{
    tokio::spawn(async move {
        let mut last_seen: Option<i64> = None;
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_triggered() {
            let request = pb::WatchRequest {
                keys: Vec::new(),
                prefixes: vec![prefix.clone()],
                start_revision: last_seen,
            };
            let mut stream = match client.watch(request).await {
                Ok(stream) => stream,
                Err(status) => {
                    if status.code() == tonic::Code::OutOfRange {
                        last_seen = None;
                    }
                    tracing::warn!(%prefix, code = ?status.code(), message = status.message(), retry_in = ?backoff, "live settings watch refused");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.wait() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = stream.next() => next,
                    () = shutdown.wait() => return,
                };
                match next {
                    Some(Ok(response)) => {
                        backoff = Duration::from_millis(100);
                        for event in response.events {
                            let Some(entry) = event.entry else { continue };
                            if !entry.environment.is_empty() {
                                continue;
                            }
                            let deleted = event.r#type == pb::ChangeKind::Delete as i32;
                            apply(LiveChange {
                                key: entry.key,
                                value: (!deleted).then_some(entry.value),
                                revision: entry.revision,
                            });
                        }
                        last_seen = Some(response.revision);
                    }
                    Some(Err(status)) => {
                        if status.code() == tonic::Code::OutOfRange {
                            last_seen = None;
                        }
                        tracing::warn!(%prefix, code = ?status.code(), message = status.message(), "live settings watch ended; resuming");
                        break;
                    }
                    None => break,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.wait() => return,
            }
        }
    })
}

/// The live keys of the configuration service's own cache.
pub const DEFAULT_CHANGE_PERIOD_KEY: &str = "pharos.config.cache.default_change_period";
pub const CHANGE_PERIOD_KEY_PREFIX: &str = "pharos.config.cache.change_period.";

/// Applies `pharos.config.cache.*` keys to the service's TTL rule.
pub(crate) fn follow_own_settings(service: &Arc<ConfigService>) {
    let base = TtlPolicy::from_settings(&service.settings().cache);
    let mut overrides: HashMap<String, Duration> = HashMap::new();
    // The watch task ends with the service's shutdown, so holding the service here is fine.
    let client = ConfigClient::local(service.clone());
    let service = service.clone();
    watch_settings(
        client,
        "pharos.config.".to_string(),
        service.shutdown().clone(),
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
    );
}
