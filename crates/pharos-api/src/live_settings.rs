//! Live settings: a service follows its `pharos.<service>.*` keys through a Watch on any
//! [`ConfigApi`] (the service in this process, or a remote one) and applies each change
//! without a restart ([`follow`]). The watch resumes from the last revision it saw after a
//! disconnect, starts over from a fresh snapshot when that revision has left the change log,
//! and retries with backoff while the config service cannot be reached, so the order in which
//! processes start does not matter. [`LiveSettings`] lays the keys over a settings struct.
//! [`Follower::health_check`] reports in `/health` whether the keys are followed.

use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use pharos_proto::config::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use tokio::sync::watch;

use crate::config::ConfigApi;

/// The first wait after a refused or broken watch; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One live setting that changed: its base value, or `None` once deleted.
/// Environment overrides are not live settings and are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChange {
    pub key: String,
    pub value: Option<String>,
    pub revision: i64,
}

/// Where a follower stands, for `/health` and for tests that wait on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowState {
    /// The watch is open and its snapshot was read.
    pub following: bool,
    /// The revision of the config store the applied values are current at.
    pub revision: Option<i64>,
    /// Why the last attempt failed, while the follower retries.
    pub last_error: Option<String>,
}

/// A running follower: its state, and a health check that reports it.
#[derive(Debug, Clone)]
pub struct Follower {
    prefix: String,
    source: String,
    state: watch::Receiver<FollowState>,
}

impl Follower {
    /// The state, which changes as the watch opens, applies changes or fails.
    pub fn state(&self) -> watch::Receiver<FollowState> {
        self.state.clone()
    }

    /// Waits until the follower has applied the config store up to `revision` at least.
    pub async fn applied(&self, revision: i64) {
        let mut state = self.state.clone();
        // The sender lives as long as the follower task; an ended task applies nothing more.
        let _ = state
            .wait_for(|state| state.revision.is_some_and(|applied| applied >= revision))
            .await;
    }

    /// A `/health` component named `name`: ok while the keys are followed, degraded while the
    /// config service cannot be reached (the service runs on with the last values it had).
    pub fn health_check(&self, name: impl Into<String>) -> Arc<dyn HealthCheck> {
        Arc::new(FollowerHealth {
            name: name.into(),
            follower: self.clone(),
        })
    }
}

struct FollowerHealth {
    name: String,
    follower: Follower,
}

impl HealthCheck for FollowerHealth {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let state = self.follower.state.borrow().clone();
            let detail = serde_json::json!({
                "prefix": self.follower.prefix,
                "source": self.follower.source,
                "following": state.following,
                "revision": state.revision,
                "error": state.last_error,
            });
            if state.following {
                ComponentHealth::ok(detail)
            } else {
                ComponentHealth::degraded(detail)
            }
        })
    }
}

/// Follows every key under `prefix` through `config` and calls `apply` for each current value
/// and each change, until `shutdown`. `source` says where `config` is (`in-process`, or the
/// endpoint) for `/health` and the logs.
pub fn follow<F>(
    config: Arc<dyn ConfigApi>,
    prefix: impl Into<String>,
    source: impl Into<String>,
    shutdown: &Shutdown,
    mut apply: F,
) -> Follower
where
    F: FnMut(LiveChange) + Send + 'static,
{
    let prefix = prefix.into();
    let source = source.into();
    let (state, receiver) = watch::channel(FollowState::default());
    let follower = Follower {
        prefix: prefix.clone(),
        source: source.clone(),
        state: receiver,
    };
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        let mut last_seen: Option<i64> = None;
        let mut backoff = FIRST_BACKOFF;
        let mut present = PresentKeys::default();
        let failed = |error: String| {
            state.send_modify(|state| {
                state.following = false;
                state.last_error = Some(error);
            });
        };
        while !stop.is_triggered() {
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
            let mut stream = match config.watch(request).await {
                Ok(stream) => stream,
                Err(status) => {
                    if status.code() == tonic::Code::OutOfRange {
                        last_seen = None;
                    }
                    tracing::warn!(%prefix, %source, code = ?status.code(), message = status.message(), retry_in = ?backoff, "cannot watch live settings; retrying");
                    failed(format!("{:?}: {}", status.code(), status.message()));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.wait() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = stream.next() => next,
                    () = stop.wait() => return,
                };
                match next {
                    Some(Ok(response)) => {
                        backoff = FIRST_BACKOFF;
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
                        state.send_modify(|state| {
                            state.following = true;
                            state.revision = Some(response.revision);
                            state.last_error = None;
                        });
                    }
                    Some(Err(status)) => {
                        if status.code() == tonic::Code::OutOfRange {
                            last_seen = None;
                        }
                        tracing::warn!(%prefix, %source, code = ?status.code(), message = status.message(), "live settings watch ended; resuming");
                        failed(format!("{:?}: {}", status.code(), status.message()));
                        break;
                    }
                    None => {
                        failed("the watch stream ended".to_string());
                        break;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.wait() => return,
            }
        }
    });
    follower
}

/// The keys that currently have a value, so that a fresh snapshot can tell which ones were
/// deleted while the watch was away.
#[derive(Debug, Default)]
struct PresentKeys {
    present: HashSet<String>,
    /// Keys seen since the current snapshot began, while one is being read.
    in_snapshot: Option<HashSet<String>>,
}

impl PresentKeys {
    fn begin_snapshot(&mut self) {
        self.in_snapshot = Some(HashSet::new());
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
    overrides: BTreeMap<String, serde_json::Value>,
    _settings: PhantomData<T>,
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> LiveSettings<T> {
    pub fn new(prefix: impl Into<String>, base: &T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            prefix: prefix.into(),
            base: serde_json::to_value(base)?,
            overrides: BTreeMap::new(),
            _settings: PhantomData,
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

#[cfg(test)]
mod live_settings_tests {
    use super::*;

    /// While the config service cannot be reached, the follower says why, stays degraded and
    /// retries with a backoff that doubles from 100 ms up to 10 s. Time is tokio's, paused and
    /// advanced by the runtime, so the test takes no wall-clock seconds.
    #[tokio::test(start_paused = true)]
    async fn an_unreachable_config_service_is_retried_with_doubling_backoff() {
        // A port nobody listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let settings = crate::client::ClientSettings::new(format!("http://127.0.0.1:{port}"));
        let config = crate::config::RemoteConfig::lazy(&settings).expect("a lazy client");
        let shutdown = Shutdown::new();
        let follower = follow(
            config,
            "pharos.test.",
            settings.endpoint.clone(),
            &shutdown,
            |_| {},
        );
        let mut state = follower.state();
        let started = tokio::time::Instant::now();
        let mut failures = Vec::new();
        while failures.len() < 9 {
            state.changed().await.expect("the follower runs");
            let now = state.borrow_and_update().clone();
            assert!(!now.following);
            assert!(now.last_error.is_some(), "the reason is reported: {now:?}");
            failures.push(started.elapsed());
        }
        let gaps: Vec<u128> = failures
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).as_millis())
            .collect();
        // 100 ms doubled each time, capped at 10 s (a failed connection attempt takes no time
        // on a paused clock, beyond the backoff itself).
        assert_eq!(
            gaps,
            [100, 200, 400, 800, 1_600, 3_200, 6_400, 10_000],
            "{failures:?}"
        );
        let health = follower.health_check("test_live_settings").check().await;
        assert_eq!(
            health.status,
            pharos_runtime::health::HealthStatus::Degraded
        );
        shutdown.wait_drained().await;
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Example {
        inner: Inner,
        count: u32,
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Inner {
        #[serde(with = "pharos_clock::duration")]
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
