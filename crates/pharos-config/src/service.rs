//! [`ConfigService`]: the configuration service's logic, independent of the
//! transport. Reads go through the cache; writes go to the store, then to
//! this replica's cache and watchers through the replicator before they are
//! acknowledged (other replicas learn of them through NOTIFY).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pharos_proto::config::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use pharos_store::Store;
use pharos_store::control::config::{ChangeRow, ConfigRepository, ListQuery};

use crate::cache::{ConfigCache, KeyRecord, TtlPolicy};
use crate::convert::{self, Violations};
use crate::error::{ConfigError, Result};
use crate::metrics::ConfigMetrics;
use crate::replication::Replicator;
use crate::settings::ConfigSettings;
use crate::value;
use crate::watch::{Filter, Hub};

/// Events per response in a Watch snapshot or catch-up.
const WATCH_CHUNK: usize = 512;
/// Keys and prefixes one Watch may name.
pub const MAX_WATCH_SELECTORS: usize = 1000;

/// The stream a Watch returns.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse>> + Send>>;

/// The configuration service of one replica.
pub struct ConfigService {
    repository: ConfigRepository,
    cache: Arc<ConfigCache>,
    hub: Arc<Hub>,
    replicator: Arc<Replicator>,
    settings: ConfigSettings,
    shutdown: Shutdown,
}

impl ConfigService {
    /// Starts the service on a migrated store: builds the cache, starts the
    /// replication tasks, warms the configured keys and follows the live
    /// `pharos.config.*` settings.
    pub async fn start(
        store: Store,
        settings: ConfigSettings,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>> {
        let repository = store.config();
        let cache = Arc::new(ConfigCache::new(&settings.cache));
        let hub = Hub::new(settings.watch.buffer, settings.watch.max_watchers);
        ConfigMetrics::observe(&cache, &hub);
        let replicator = Replicator::new(
            repository.clone(),
            cache.clone(),
            hub.clone(),
            ConfigMetrics::new(),
        )
        .await?;
        replicator.spawn_tasks(settings.replication, shutdown.clone());
        let service = Arc::new(Self {
            repository,
            cache,
            hub,
            replicator,
            settings,
            shutdown,
        });
        service.warm_configured().await?;
        crate::own_settings::follow(&service);
        Ok(service)
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn settings(&self) -> &ConfigSettings {
        &self.settings
    }

    async fn record(&self, key: &str) -> Result<Arc<KeyRecord>> {
        let repository = &self.repository;
        self.cache
            .get_or_load(key, || async move { repository.key_rows(key).await })
            .await
            .map_err(ConfigError::from)
    }

    pub async fn set(&self, request: pb::SetRequest, actor: String) -> Result<pb::ConfigEntry> {
        let put = convert::put(request, actor)?;
        let (key, environment) = (put.key.clone(), put.environment.clone());
        let change = self
            .repository
            .put(put, value::check_value)
            .await
            .map_err(|error| ConfigError::from_store(error, &key, &environment))?;
        let entry = convert::entry(&change.entry());
        self.apply_committed(change).await;
        Ok(entry)
    }

    /// Applies a change this replica just committed. The write has happened whatever this does:
    /// when the local apply fails (the store went away between commit and catch-up), the key
    /// leaves the cache so reads go to the store, and the periodic catch-up applies the change.
    async fn apply_committed(&self, change: ChangeRow) {
        let (key, revision) = (change.key.clone(), change.revision);
        if let Err(error) = self.replicator.apply(change).await {
            tracing::warn!(%error, %key, revision, "committed change not applied locally yet; catch-up will apply it");
            self.cache.invalidate(&key).await;
        }
    }

    pub async fn get(&self, request: pb::GetRequest) -> Result<pb::ConfigEntry> {
        let mut violations = Violations::default();
        violations.check("key", value::check_key(&request.key));
        violations.check(
            "environment",
            value::check_optional_name(&request.environment),
        );
        violations.into_result()?;
        let record = self.record(&request.key).await?;
        record
            .resolve(&request.environment)
            .map(convert::entry)
            .ok_or(ConfigError::NotFound {
                key: request.key,
                environment: request.environment,
            })
    }

    pub async fn list(&self, request: pb::ListRequest) -> Result<pb::ListResponse> {
        let mut violations = Violations::default();
        violations.check("prefix", value::check_prefix(&request.prefix));
        violations.check("category", value::check_optional_name(&request.category));
        violations.check(
            "environment",
            value::check_optional_name(&request.environment),
        );
        violations.check("page_token", value::check_prefix(&request.page_token));
        violations.into_result()?;
        let limit = convert::page_size("page_size", request.page_size)?;
        let (rows, more) = self
            .repository
            .list(&ListQuery {
                prefix: request.prefix,
                category: request.category,
                environment: request.environment,
                after_key: request.page_token,
                limit,
            })
            .await?;
        let next_page_token = if more {
            rows.last().map(|row| row.key.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListResponse {
            entries: rows.iter().map(convert::entry).collect(),
            next_page_token,
        })
    }

    pub async fn delete(
        &self,
        request: pb::DeleteRequest,
        actor: String,
    ) -> Result<pb::DeleteResponse> {
        let delete = convert::delete(request, actor)?;
        let (key, environment) = (delete.key.clone(), delete.environment.clone());
        let change = self
            .repository
            .delete(delete)
            .await
            .map_err(|error| ConfigError::from_store(error, &key, &environment))?;
        let mut previous = change.entry();
        if let Some(value) = &change.previous_value {
            previous.value = value.clone();
        }
        let response = pb::DeleteResponse {
            revision: change.revision,
            previous: Some(convert::entry(&previous)),
        };
        self.apply_committed(change).await;
        Ok(response)
    }

    pub async fn history(&self, request: pb::HistoryRequest) -> Result<pb::HistoryResponse> {
        let mut violations = Violations::default();
        violations.check("key", value::check_key(&request.key));
        violations.check(
            "environment",
            value::check_optional_name(&request.environment),
        );
        violations.into_result()?;
        let limit = convert::page_size("limit", request.limit)?;
        let changes = self
            .repository
            .history(&request.key, &request.environment, limit)
            .await?;
        Ok(pb::HistoryResponse {
            items: changes.iter().map(convert::history_item).collect(),
        })
    }

    /// Opens a Watch stream. Without `start_revision` it sends the current
    /// values, then every change; with it, exactly the changes after it.
    pub async fn watch(&self, request: pb::WatchRequest) -> Result<WatchStream> {
        let mut violations = Violations::default();
        if request.keys.len() + request.prefixes.len() > MAX_WATCH_SELECTORS {
            violations.check(
                "keys",
                Err(format!(
                    "at most {MAX_WATCH_SELECTORS} keys and prefixes in all"
                )),
            );
        }
        for key in &request.keys {
            violations.check("keys", value::check_key(key));
        }
        for prefix in &request.prefixes {
            violations.check("prefixes", value::check_prefix(prefix));
        }
        if request.start_revision.is_some_and(|revision| revision < 0) {
            violations.check("start_revision", Err("must not be negative".into()));
        }
        violations.into_result()?;

        // Subscribe first: from here on no change can fall between what the
        // database read below returns and what the hub delivers.
        let subscription = self
            .hub
            .subscribe(Filter::new(request.keys.clone(), request.prefixes.clone()))?;
        if let Some(start) = request.start_revision {
            let revisions = self.repository.revisions().await?;
            if start < revisions.compacted {
                return Err(ConfigError::RevisionCompacted {
                    requested: start,
                    compacted: revisions.compacted,
                });
            }
        }
        let filter = Filter::new(request.keys.clone(), request.prefixes.clone());
        let repository = self.repository.clone();
        let shutdown = self.shutdown.clone();
        let stream = async_stream::try_stream! {
            let mut last = match request.start_revision {
                Some(start) => {
                    let mut cursor = start;
                    loop {
                        let changes = repository.changes_after(cursor, WATCH_CHUNK).await.map_err(ConfigError::from)?;
                        // Revisions are contiguous: a hole means compaction ran after the check above.
                        if let Some(first) = changes.first() && first.revision > cursor + 1 {
                            Err(ConfigError::RevisionCompacted { requested: start, compacted: first.revision - 1 })?;
                        }
                        let Some(tail) = changes.last() else { break };
                        cursor = tail.revision;
                        let events: Vec<pb::WatchEvent> = changes
                            .iter()
                            .filter(|change| filter.matches(&change.key))
                            .map(convert::watch_event)
                            .collect();
                        if !events.is_empty() {
                            yield pb::WatchResponse { events, snapshot_complete: false, revision: cursor };
                        }
                        if changes.len() < WATCH_CHUNK {
                            break;
                        }
                    }
                    cursor
                }
                None => {
                    let (revision, rows) = repository
                        .snapshot(&request.keys, &request.prefixes)
                        .await
                        .map_err(ConfigError::from)?;
                    let mut chunks = rows.chunks(WATCH_CHUNK).peekable();
                    while let Some(chunk) = chunks.next() {
                        if chunks.peek().is_some() {
                            yield pb::WatchResponse {
                                events: chunk.iter().map(convert::snapshot_event).collect(),
                                snapshot_complete: false,
                                revision,
                            };
                        } else {
                            yield pb::WatchResponse {
                                events: chunk.iter().map(convert::snapshot_event).collect(),
                                snapshot_complete: true,
                                revision,
                            };
                        }
                    }
                    if rows.is_empty() {
                        yield pb::WatchResponse { events: Vec::new(), snapshot_complete: true, revision };
                    }
                    revision
                }
            };
            if request.start_revision.is_some() {
                yield pb::WatchResponse { events: Vec::new(), snapshot_complete: true, revision: last };
            }
            loop {
                let batch = tokio::select! {
                    batch = subscription.next_batch() => Some(batch),
                    () = shutdown.wait() => None,
                };
                // The service stops: UNAVAILABLE with where to resume, not a plain end that a
                // client could take for "nothing more to watch".
                let Some(batch) = batch else {
                    Err(ConfigError::ShuttingDown { last_revision: last })?;
                    break;
                };
                let batch = batch?;
                let events: Vec<pb::WatchEvent> = batch
                    .iter()
                    .filter(|item| item.revision > last)
                    .map(|item| item.event.clone())
                    .collect();
                if let Some(newest) = batch.last() && newest.revision > last {
                    last = newest.revision;
                }
                if !events.is_empty() {
                    yield pb::WatchResponse { events, snapshot_complete: false, revision: last };
                }
            }
        };
        Ok(Box::pin(stream))
    }

    pub fn cache_stats(&self) -> pb::CacheStatsResponse {
        let stats = self.cache.stats();
        pb::CacheStatsResponse {
            hits: stats.hits,
            misses: stats.misses,
            hit_rate: stats.hit_rate,
            size: stats.size,
            capacity: stats.capacity,
            evictions: stats.evictions,
        }
    }

    /// Loads keys into the cache; returns how many exist.
    pub async fn warm(&self, request: pb::WarmRequest) -> Result<pb::WarmResponse> {
        let mut violations = Violations::default();
        for key in &request.keys {
            violations.check("keys", value::check_key(key));
        }
        violations.into_result()?;
        let mut loaded = 0u32;
        for key in &request.keys {
            let repository = &self.repository;
            let record = self
                .cache
                .load(key, || async move { repository.key_rows(key).await })
                .await
                .map_err(ConfigError::from)?;
            if !record.rows.is_empty() {
                loaded += 1;
            }
        }
        Ok(pb::WarmResponse { loaded })
    }

    async fn warm_configured(&self) -> Result<()> {
        let settings = &self.settings.cache;
        if settings.warm_keys.is_empty() && settings.warm_prefixes.is_empty() {
            return Ok(());
        }
        let (_, rows) = self
            .repository
            .snapshot(&settings.warm_keys, &settings.warm_prefixes)
            .await?;
        let mut by_key: std::collections::BTreeMap<
            String,
            Vec<pharos_store::control::config::EntryRow>,
        > = std::collections::BTreeMap::new();
        for key in &settings.warm_keys {
            by_key.entry(key.clone()).or_default();
        }
        for row in rows {
            by_key.entry(row.key.clone()).or_default().push(row);
        }
        let count = by_key.len();
        for (key, rows) in by_key {
            let loaded: std::result::Result<_, std::convert::Infallible> =
                self.cache.load(&key, || async move { Ok(rows) }).await;
            drop(loaded);
        }
        tracing::info!(keys = count, "config cache warmed");
        Ok(())
    }

    /// Replaces the cache's TTL rule (live settings).
    pub fn set_ttl_policy(&self, policy: TtlPolicy) {
        self.cache.set_policy(policy);
    }

    pub fn ttl_policy(&self) -> Arc<TtlPolicy> {
        self.cache.policy()
    }

    /// The health checks of this service: its cache and its change stream (the database is
    /// the process's check).
    pub fn health_checks(self: &Arc<Self>) -> Vec<Arc<dyn HealthCheck>> {
        vec![
            Arc::new(CacheCheck(self.clone())),
            Arc::new(ChangeStreamCheck(self.clone())),
        ]
    }
}

struct CacheCheck(Arc<ConfigService>);

impl HealthCheck for CacheCheck {
    fn name(&self) -> &str {
        "config_cache"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let stats = self.0.cache.stats();
            ComponentHealth::ok(serde_json::json!({
                "hits": stats.hits,
                "misses": stats.misses,
                "hit_rate": stats.hit_rate,
                "size": stats.size,
                "capacity": stats.capacity,
                "evictions": stats.evictions,
            }))
        })
    }
}

struct ChangeStreamCheck(Arc<ConfigService>);

impl HealthCheck for ChangeStreamCheck {
    fn name(&self) -> &str {
        "change_stream"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let service = &self.0;
            let applied = service.replicator.applied_revision();
            let current = service.repository.revisions().await.map(|r| r.current).ok();
            let detail = serde_json::json!({
                "listening": service.replicator.is_listening(),
                "applied_revision": applied,
                "current_revision": current,
                "watchers": service.hub.watchers(),
                "coalesced_events": service.hub.coalesced(),
            });
            if service.replicator.is_listening() {
                ComponentHealth::ok(detail)
            } else {
                ComponentHealth::degraded(detail)
            }
        })
    }
}
