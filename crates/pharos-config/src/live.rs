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
        let mut present = PresentKeys::default();
        while !shutdown.is_triggered() {
            // A fresh snapshot (first start, or a resume point the log no longer holds) may
            // lack keys deleted meanwhile: they are reported deleted when it completes.
            if last_seen.is_none() {
                present.begin_snapshot();
            }
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
                            let change = LiveChange {
                                key: entry.key,
                                value: (!deleted).then_some(entry.value),
                                revision: entry.revision,
                            };
                            present.record(&change);
                            apply(change);
                        }
                        if response.snapshot_complete {
                            for key in present.end_snapshot() {
                                apply(LiveChange {
                                    key,
                                    value: None,
                                    revision: response.revision,
                                });
                            }
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

/// The keys that currently have a value, so that a fresh snapshot can tell which ones were
/// deleted while the watch was away.
#[derive(Debug, Default)]
struct PresentKeys {
    present: std::collections::HashSet<String>,
    /// Keys seen since the current snapshot began, while one is being read.
    in_snapshot: Option<std::collections::HashSet<String>>,
}

impl PresentKeys {
    fn begin_snapshot(&mut self) {
        self.in_snapshot = Some(std::collections::HashSet::new());
    }

    fn record(&mut self, change: &LiveChange) {
        if change.value.is_some() {
            self.present.insert(change.key.clone());
            if let Some(seen) = &mut self.in_snapshot {
                seen.insert(change.key.clone());
            }
        } else {
            self.present.remove(&change.key);
        }
    }

    /// Keys that had a value before the snapshot but are not in it: deleted meanwhile.
    fn end_snapshot(&mut self) -> Vec<String> {
        let Some(seen) = self.in_snapshot.take() else {
            return Vec::new();
        };
        let mut gone: Vec<String> = self.present.difference(&seen).cloned().collect();
        gone.sort();
        for key in &gone {
            self.present.remove(key);
        }
        gone
    }
}

/// Settings of type `T` with live keys laid over their start-up values: the key
/// `<prefix><path>` sets the field at the dot-separated `path` of `T`'s serde form, so
/// `pharos.ingest.limits.max_age = "14d"` sets `limits.max_age`. A value is read as JSON when it
/// is JSON (numbers, booleans), else as a string (durations like `30s`). A deleted key falls back
/// to the start-up value.
#[derive(Debug, Clone)]
pub struct LiveSettings<T> {
    prefix: String,
    base: serde_json::Value,
    overrides: std::collections::BTreeMap<String, serde_json::Value>,
    _settings: std::marker::PhantomData<T>,
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> LiveSettings<T> {
    pub fn new(prefix: impl Into<String>, base: &T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            prefix: prefix.into(),
            base: serde_json::to_value(base)?,
            overrides: std::collections::BTreeMap::new(),
            _settings: std::marker::PhantomData,
        })
    }

    /// Applies one change and returns the settings now in effect, `Ok(None)` for a key outside
    /// the prefix, or an error saying why the value was refused (it is then ignored).
    pub fn apply(&mut self, change: &LiveChange) -> Result<Option<T>, String> {
        let Some(path) = change.key.strip_prefix(&self.prefix) else {
            return Ok(None);
        };
        let previous = match &change.value {
            Some(text) => {
                let value = serde_json::from_str(text.trim())
                    .unwrap_or_else(|_| serde_json::Value::String(text.clone()));
                self.overrides.insert(path.to_owned(), value)
            }
            None => self.overrides.remove(path),
        };
        match self.effective() {
            Ok(settings) => Ok(Some(settings)),
            Err(reason) => {
                match previous {
                    Some(value) => self.overrides.insert(path.to_owned(), value),
                    None => self.overrides.remove(path),
                };
                Err(format!("{}: {reason}", change.key))
            }
        }
    }

    fn effective(&self) -> Result<T, String> {
        let mut merged = self.base.clone();
        for (path, value) in &self.overrides {
            let mut slot = &mut merged;
            for part in path.split('.') {
                slot = slot
                    .as_object_mut()
                    .and_then(|object| object.get_mut(part))
                    .ok_or_else(|| format!("no setting `{path}`"))?;
            }
            *slot = value.clone();
        }
        serde_json::from_value(merged).map_err(|error| error.to_string())
    }
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

#[cfg(test)]
mod live_settings_tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Example {
        inner: Inner,
        count: u32,
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Inner {
        #[serde(with = "humantime_serde")]
        wait: Duration,
    }

    fn change(key: &str, value: Option<&str>) -> LiveChange {
        LiveChange {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            revision: 1,
        }
    }

    #[test]
    fn a_fresh_snapshot_reports_keys_deleted_meanwhile() {
        let mut present = PresentKeys::default();
        present.begin_snapshot();
        present.record(&change("pharos.example.a", Some("1")));
        present.record(&change("pharos.example.b", Some("2")));
        assert!(present.end_snapshot().is_empty());
        // Live changes outside a snapshot.
        present.record(&change("pharos.example.c", Some("3")));
        present.record(&change("pharos.example.a", None));
        // The resume point left the log: a new snapshot holds only c.
        present.begin_snapshot();
        present.record(&change("pharos.example.c", Some("3")));
        assert_eq!(present.end_snapshot(), ["pharos.example.b"]);
        // Without a snapshot in progress nothing is reported.
        assert!(present.end_snapshot().is_empty());
    }

    #[test]
    fn overrides_apply_validate_and_fall_back() {
        let base = Example {
            inner: Inner {
                wait: Duration::from_secs(1),
            },
            count: 3,
        };
        let mut live = LiveSettings::new("pharos.example.", &base).expect("serializable");
        let now = live
            .apply(&change("pharos.example.inner.wait", Some("250ms")))
            .expect("valid");
        assert_eq!(now.map(|s| s.inner.wait), Some(Duration::from_millis(250)));
        let now = live
            .apply(&change("pharos.example.count", Some("7")))
            .expect("valid");
        assert_eq!(
            now.map(|s| (s.inner.wait, s.count)),
            Some((Duration::from_millis(250), 7))
        );
        assert!(
            live.apply(&change("pharos.example.count", Some("seven")))
                .is_err()
        );
        assert!(
            live.apply(&change("pharos.example.nope", Some("1")))
                .is_err()
        );
        assert_eq!(
            live.apply(&change("pharos.other.count", Some("1"))),
            Ok(None)
        );
        // The refused values left the last good ones in place; a delete restores the base.
        let now = live
            .apply(&change("pharos.example.inner.wait", None))
            .expect("valid");
        assert_eq!(
            now,
            Some(Example {
                inner: Inner {
                    wait: Duration::from_secs(1)
                },
                count: 7
            })
        );
    }
}
