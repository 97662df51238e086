//! [`SearchService`]: the search service's operations behind the gRPC handlers. Each one
//! validates its request against the limits and the index's definition, then writes through
//! the store (a write is answered once committed and applied on this replica) or searches the
//! index's published copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::time::Instant;

use pharos_proto::search::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_runtime::error::FieldViolation;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use pharos_store::Store;
use pharos_store::control::vectors::{VectorRepository, VectorRow};
use pharos_vector::{Metric, SearchParams, VectorError, check_vector};
use tokio::sync::mpsc;

use crate::catalog::{Catalog, run_blocking};
use crate::convert::{finished, info, progress, to_hits};
use crate::definition::{IndexDefinition, KindDefinition};
use crate::describe;
use crate::error::{Result, SearchError};
use crate::live_index::{IndexCopy, LiveIndex, PayloadFilter};
use crate::metrics::{Call, SearchMetrics};
use crate::settings::SearchSettings;

/// k when a request leaves it 0.
const DEFAULT_K: usize = 10;
/// Work (vectors x dimension) above which a single search leaves the async workers.
const INLINE_SEARCH_WORK: usize = 2_000_000;

/// The search service of one replica.
pub struct SearchService {
    repository: VectorRepository,
    catalog: Arc<Catalog>,
    settings: SearchSettings,
    metrics: SearchMetrics,
}

impl std::fmt::Debug for SearchService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchService").finish_non_exhaustive()
    }
}

/// One search, checked.
struct Query {
    k: usize,
    params: SearchParams,
    filter: Arc<PayloadFilter>,
}

impl SearchService {
    /// Loads every index (from the last snapshot and the store), trains those due, pre-warms
    /// them, and starts following changes and writing snapshots.
    pub async fn start(
        store: Store,
        settings: SearchSettings,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>> {
        let repository = store.vectors();
        let catalog = Catalog::load(repository.clone(), &settings).await?;
        catalog.spawn_tasks(&settings, shutdown);
        SearchMetrics::observe(&catalog);
        Ok(Arc::new(Self {
            repository,
            catalog,
            settings,
            metrics: SearchMetrics::new(),
        }))
    }

    /// Writes a last index snapshot (when snapshots are on and something changed since the
    /// previous one), so that the next start replays nothing, and releases the snapshot
    /// directory: when this returns, another service may open it. Called once the server
    /// drained.
    pub async fn stop(&self) {
        if let Err(error) = self.catalog.close().await {
            tracing::warn!(%error, "no index snapshot at shutdown: the next start replays the changes since the last one");
        }
    }

    pub fn health_checks(self: &Arc<Self>) -> Vec<Arc<dyn HealthCheck>> {
        vec![Arc::new(SearchHealth(self.clone()))]
    }

    /// The revision of the snapshot this replica started from (`None`: loaded from the store).
    pub fn started_from_snapshot(&self) -> Option<i64> {
        self.catalog.started_from_snapshot()
    }

    /// The revision of the store this replica has applied.
    pub fn applied_revision(&self) -> i64 {
        self.catalog.applied_revision()
    }

    /// Resolves once no training of index `name` runs here, and says whether it is trained
    /// then: how a caller waits for the training an upsert started in the background.
    pub async fn training_finished(&self, name: &str) -> Result<bool> {
        let live = self.index(name)?;
        live.training_finished().await;
        Ok(self.index(name)?.snapshot().engine.is_trained())
    }

    /// Resolves once this replica has applied the store up to `revision`: how a caller waits
    /// for another replica's write to arrive here.
    pub async fn wait_applied(&self, revision: i64) {
        self.catalog.wait_applied(revision).await;
    }

    fn index(&self, name: &str) -> Result<Arc<LiveIndex>> {
        self.catalog
            .get(name)
            .ok_or_else(|| SearchError::IndexNotFound(name.to_owned()))
    }

    pub async fn create_index(&self, request: pb::CreateIndexRequest) -> Result<pb::IndexInfo> {
        let (name, definition) = IndexDefinition::from_request(&request)?;
        let change = self
            .repository
            .create_index(&name, &definition.to_json())
            .await
            .map_err(|error| SearchError::from_store(error, &name))?;
        self.catalog.apply(change, None).await?;
        Ok(definition.to_info(
            &name,
            0,
            !matches!(definition.kind, KindDefinition::IvfPq { .. }),
        ))
    }

    pub async fn drop_index(&self, name: &str) -> Result<()> {
        let change = self
            .repository
            .drop_index(name)
            .await
            .map_err(|error| SearchError::from_store(error, name))?;
        self.catalog.apply(change, None).await
    }

    pub fn list_indexes(&self) -> Vec<pb::IndexInfo> {
        self.catalog
            .all()
            .iter()
            .map(|live| info(live, &live.snapshot()))
            .collect()
    }

    /// Writes `request.vectors`; returns how many and the revision.
    pub async fn upsert(&self, request: pb::UpsertRequest) -> Result<(u64, i64)> {
        let live = self.index(&request.index)?;
        let limits = &self.settings.limits;
        if request.vectors.len() > limits.max_upsert_vectors {
            return Err(SearchError::invalid(
                "vectors",
                format!(
                    "{} vectors in one Upsert; at most {} (send several)",
                    request.vectors.len(),
                    limits.max_upsert_vectors
                ),
            ));
        }
        let dimension = live.definition.dimension();
        let cosine = live.definition.metric() == Metric::Cosine;
        let mut violations = Vec::new();
        let mut rows = Vec::with_capacity(request.vectors.len());
        for (position, vector) in request.vectors.into_iter().enumerate() {
            let field = format!("vectors[{position}]");
            if let Err(reason) = check_values(&vector.values, dimension, cosine, &live.name) {
                violations.push(FieldViolation::new(format!("{field}.values"), reason));
            }
            if let Err(reason) = self.check_payload(&vector.payload) {
                violations.push(FieldViolation::new(format!("{field}.payload"), reason));
            }
            if violations.len() >= 20 {
                break;
            }
            let payload: BTreeMap<String, String> = vector.payload.into_iter().collect();
            rows.push(VectorRow {
                id: vector.id,
                values: vector.values,
                payload: serde_json::to_string(&payload).unwrap_or_default(),
            });
        }
        if !violations.is_empty() {
            return Err(SearchError::InvalidArgument(violations));
        }
        if rows.is_empty() {
            return Ok((0, self.catalog.applied_revision()));
        }
        let change = self
            .repository
            .upsert(&live.name, &live.definition.to_json(), &rows)
            .await
            .map_err(|error| SearchError::from_store(error, &live.name))?;
        let (count, revision) = (change.count, change.revision);
        self.catalog.apply(change, Some(rows)).await?;
        self.catalog.maybe_train(&live);
        let count = u64::try_from(count).unwrap_or(0);
        self.metrics.written("upsert", count);
        Ok((count, revision))
    }

    /// Removes `request.ids`; returns how many were there and the revision.
    pub async fn delete(&self, request: pb::DeleteRequest) -> Result<(u64, i64)> {
        let live = self.index(&request.index)?;
        if request.ids.len() > self.settings.limits.max_delete_ids {
            return Err(SearchError::invalid(
                "ids",
                format!(
                    "{} ids in one Delete; at most {}",
                    request.ids.len(),
                    self.settings.limits.max_delete_ids
                ),
            ));
        }
        let change = self
            .repository
            .delete(&live.name, &request.ids)
            .await
            .map_err(|error| SearchError::from_store(error, &live.name))?;
        let (count, revision) = (change.count, change.revision);
        self.catalog.apply(change, None).await?;
        let count = u64::try_from(count).unwrap_or(0);
        self.metrics.written("delete", count);
        Ok((count, revision))
    }

    pub async fn search(&self, request: pb::SearchRequest) -> Result<Vec<pb::Hit>> {
        let live = self.index(&request.index)?;
        let query = self.check_query(
            request.k,
            [request.nprobe, request.rerank, request.ef_search],
            request.filter.as_ref(),
        )?;
        check_values(
            &request.vector,
            live.definition.dimension(),
            false,
            &live.name,
        )
        .map_err(|reason| SearchError::invalid("vector", reason))?;
        search_one(live, request.vector, query, self.metrics.clone()).await
    }

    pub async fn batch_search(&self, request: pb::BatchSearchRequest) -> Result<Vec<Vec<pb::Hit>>> {
        let live = self.index(&request.index)?;
        let query = self.check_query(
            request.k,
            [request.nprobe, request.rerank, request.ef_search],
            request.filter.as_ref(),
        )?;
        let limit = self.settings.limits.max_batch_queries;
        if request.queries.len() > limit {
            return Err(SearchError::invalid(
                "queries",
                format!(
                    "{} queries in one batch; at most {limit}",
                    request.queries.len()
                ),
            ));
        }
        let dimension = live.definition.dimension();
        let violations: Vec<FieldViolation> = request
            .queries
            .iter()
            .enumerate()
            .filter_map(|(position, q)| {
                check_values(&q.vector, dimension, false, &live.name)
                    .err()
                    .map(|reason| {
                        FieldViolation::new(format!("queries[{position}].vector"), reason)
                    })
            })
            .take(20)
            .collect();
        if !violations.is_empty() {
            return Err(SearchError::InvalidArgument(violations));
        }
        let queries: Vec<Vec<f32>> = request.queries.into_iter().map(|q| q.vector).collect();
        let threads = self.settings.threads();
        let metrics = self.metrics.clone();
        run_blocking(move || {
            let snapshot = live.snapshot();
            let started = Instant::now();
            let accept = |id: u64| query.filter.accepts(&snapshot, id);
            let filter: Option<&(dyn Fn(u64) -> bool + Sync)> =
                (!query.filter.is_empty()).then_some(&accept);
            let answers = snapshot
                .engine
                .search_batch(&queries, query.k, query.params, filter, threads)
                .map_err(|error| engine_error(error, &live.name))?;
            let per_query = started.elapsed() / queries.len().max(1) as u32;
            live.record(per_query, query.params);
            metrics.query(live.definition.kind.name(), Call::Batch, per_query);
            Ok(answers
                .into_iter()
                .map(|hits| to_hits(&snapshot, hits))
                .collect())
        })
        .await?
    }

    pub async fn multi_index_search(
        &self,
        request: pb::MultiIndexSearchRequest,
    ) -> Result<Vec<pb::IndexHits>> {
        let limit = self.settings.limits.max_multi_indexes;
        if request.indexes.is_empty() || request.indexes.len() > limit {
            return Err(SearchError::invalid(
                "indexes",
                format!("name 1..={limit} indexes, not {}", request.indexes.len()),
            ));
        }
        let query = self.check_query(
            request.k,
            [request.nprobe, request.rerank, request.ef_search],
            request.filter.as_ref(),
        )?;
        let mut searches = Vec::with_capacity(request.indexes.len());
        for (position, name) in request.indexes.iter().enumerate() {
            let live = self.index(name)?;
            check_values(&request.vector, live.definition.dimension(), false, name)
                .map_err(|reason| SearchError::invalid(format!("indexes[{position}]"), reason))?;
            let query = Query {
                k: query.k,
                params: query.params,
                filter: query.filter.clone(),
            };
            let vector = request.vector.clone();
            searches.push(tokio::spawn(search_one(
                live,
                vector,
                query,
                self.metrics.clone(),
            )));
        }
        let mut results = Vec::with_capacity(searches.len());
        for (name, search) in request.indexes.into_iter().zip(searches) {
            let hits = search
                .await
                .map_err(|error| SearchError::internal_from("a search task failed", error))??;
            results.push(pb::IndexHits { index: name, hits });
        }
        Ok(results)
    }

    pub fn describe(&self, name: &str) -> Result<pb::DescribeIndexResponse> {
        let live = self.index(name)?;
        let snapshot = live.snapshot();
        let (searches, p50, p95, p99) = live.latency();
        let grade = describe::grade(searches, p95);
        let recommendations = describe::recommendations(&live, &snapshot, p95);
        Ok(pb::DescribeIndexResponse {
            index: Some(info(&live, &snapshot)),
            // Both copies of the left-right pair.
            memory_bytes: (snapshot.memory_bytes() * 2) as u64,
            latency: Some(pb::Latency {
                searches,
                p50_us: p50,
                p95_us: p95,
                p99_us: p99,
                grade: grade.to_owned(),
            }),
            recommendations,
            applied_revision: self.catalog.applied_revision(),
        })
    }

    /// Trains (or, with `rebuild`, retrains) IVF_PQ index `name`; the receiver hears each
    /// stage and a last message with `finished` set, or the error.
    pub fn train(
        &self,
        name: &str,
        rebuild: bool,
    ) -> Result<mpsc::Receiver<Result<pb::TrainProgress>>> {
        let live = self.index(name)?;
        let snapshot = live.snapshot();
        let Some(needed) = snapshot.engine.min_training_vectors() else {
            return Err(SearchError::FailedPrecondition(format!(
                "index {name:?} is FLAT: it has nothing to train"
            )));
        };
        let (count, trained) = (snapshot.engine.len(), snapshot.engine.is_trained());
        drop(snapshot);
        let (sender, receiver) = mpsc::channel(64);
        if trained && !rebuild {
            let _ = sender.try_send(Ok(finished("already trained")));
            return Ok(receiver);
        }
        let minimum = match live.definition.kind {
            KindDefinition::IvfPq { nlist, .. } => (nlist as usize).max(256),
            _ => needed,
        };
        if count < minimum {
            return Err(SearchError::FailedPrecondition(format!(
                "index {name:?} holds {count} vectors; training needs at least {minimum} (one per list and one per codebook entry), and {needed} train well"
            )));
        }
        if !live.start_training() {
            return Err(SearchError::FailedPrecondition(format!(
                "index {name:?} is being trained already; wait for it to finish"
            )));
        }
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            let progress_sender = sender.clone();
            let result = catalog
                .train(live.clone(), move |stage| {
                    let _ = progress_sender.blocking_send(Ok(progress(stage)));
                })
                .await;
            live.finish_training();
            let last = result.map(|()| finished("trained"));
            let _ = sender.send(last).await;
        });
        Ok(receiver)
    }

    /// A checked search: `k`, then nprobe, rerank and ef_search (0: the default), and the filter.
    fn check_query(
        &self,
        k: u32,
        [nprobe, rerank, ef_search]: [u32; 3],
        filter: Option<&pb::Filter>,
    ) -> Result<Query> {
        let limits = &self.settings.limits;
        let k = if k == 0 { DEFAULT_K } else { k as usize };
        let mut violations = Vec::new();
        if k > limits.max_k {
            violations.push(FieldViolation::new(
                "k",
                format!("must be 1..={}, not {k}", limits.max_k),
            ));
        }
        let defaults = SearchParams::default();
        let params = SearchParams {
            nprobe: if nprobe == 0 {
                defaults.nprobe
            } else {
                nprobe as usize
            },
            rerank: if rerank == 0 {
                defaults.rerank
            } else {
                rerank as usize
            },
            ef_search: if ef_search == 0 {
                defaults.ef_search.max(k)
            } else {
                ef_search as usize
            },
        };
        if params.rerank > 100 {
            violations.push(FieldViolation::new("rerank", "must be at most 100"));
        }
        if params.ef_search > 4096 {
            violations.push(FieldViolation::new("ef_search", "must be at most 4096"));
        }
        let mut conditions = Vec::new();
        if let Some(filter) = filter {
            if filter.conditions.len() > limits.max_filter_conditions {
                violations.push(FieldViolation::new(
                    "filter.conditions",
                    format!("at most {} conditions", limits.max_filter_conditions),
                ));
            }
            for (position, condition) in filter.conditions.iter().enumerate() {
                let field = format!("filter.conditions[{position}]");
                if condition.key.is_empty() {
                    violations.push(FieldViolation::new(
                        format!("{field}.key"),
                        "must not be empty",
                    ));
                }
                if condition.values.is_empty() || condition.values.len() > limits.max_filter_values
                {
                    violations.push(FieldViolation::new(
                        format!("{field}.values"),
                        format!("give 1..={} values", limits.max_filter_values),
                    ));
                }
                conditions.push((condition.key.clone(), condition.values.clone()));
            }
        }
        if !violations.is_empty() {
            return Err(SearchError::InvalidArgument(violations));
        }
        Ok(Query {
            k,
            params,
            filter: Arc::new(PayloadFilter::new(conditions)),
        })
    }

    fn check_payload(&self, payload: &HashMap<String, String>) -> std::result::Result<(), String> {
        let limits = &self.settings.limits;
        if payload.len() > limits.max_payload_entries {
            return Err(format!(
                "{} entries; at most {}",
                payload.len(),
                limits.max_payload_entries
            ));
        }
        for (key, value) in payload {
            if key.is_empty() || key.len() > limits.max_payload_key_bytes {
                return Err(format!(
                    "key {key:?} must be 1..={} bytes",
                    limits.max_payload_key_bytes
                ));
            }
            if value.len() > limits.max_payload_value_bytes {
                return Err(format!(
                    "the value of {key:?} has {} bytes; at most {}",
                    value.len(),
                    limits.max_payload_value_bytes
                ));
            }
        }
        Ok(())
    }
}

/// Searches one index: on the calling worker when small, else off the async workers.
async fn search_one(
    live: Arc<LiveIndex>,
    vector: Vec<f32>,
    query: Query,
    metrics: SearchMetrics,
) -> Result<Vec<pb::Hit>> {
    let snapshot = live.snapshot();
    if snapshot.engine.len() * live.definition.dimension() <= INLINE_SEARCH_WORK {
        return search_now(&live, &snapshot, &vector, &query, &metrics);
    }
    run_blocking(move || search_now(&live, &snapshot, &vector, &query, &metrics)).await?
}

fn search_now(
    live: &LiveIndex,
    snapshot: &IndexCopy,
    vector: &[f32],
    query: &Query,
    metrics: &SearchMetrics,
) -> Result<Vec<pb::Hit>> {
    let started = Instant::now();
    let accept = |id: u64| query.filter.accepts(snapshot, id);
    let filter: Option<&(dyn Fn(u64) -> bool + Sync)> =
        (!query.filter.is_empty()).then_some(&accept);
    let hits = snapshot
        .engine
        .search(vector, query.k, query.params, filter)
        .map_err(|error| engine_error(error, &live.name))?;
    let took = started.elapsed();
    live.record(took, query.params);
    metrics.query(live.definition.kind.name(), Call::Search, took);
    Ok(to_hits(snapshot, hits))
}

/// Why `values` cannot be a vector of index `name`, in words naming what was expected.
fn check_values(
    values: &[f32],
    dimension: usize,
    cosine: bool,
    name: &str,
) -> std::result::Result<(), String> {
    match check_vector(values, dimension) {
        Err(VectorError::DimensionMismatch { expected, given }) => Err(format!(
            "has {given} values; index {name:?} holds vectors of dimension {expected}"
        )),
        Err(error) => Err(error.to_string()),
        Ok(()) if cosine && values.iter().all(|value| *value == 0.0) => {
            Err(VectorError::ZeroVector.to_string())
        }
        Ok(()) => Ok(()),
    }
}

fn engine_error(error: VectorError, name: &str) -> SearchError {
    match error {
        VectorError::DimensionMismatch { .. }
        | VectorError::NotFinite { .. }
        | VectorError::ZeroVector => {
            SearchError::invalid("vector", format!("{error} (index {name:?})"))
        }
        other => SearchError::internal_from("the vector engine failed", other),
    }
}

/// The service's health: the revision applied, whether notifications flow, the indexes held.
struct SearchHealth(Arc<SearchService>);

impl HealthCheck for SearchHealth {
    fn name(&self) -> &str {
        "search"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let catalog = &self.0.catalog;
            let detail = serde_json::json!({
                "applied_revision": catalog.applied_revision(),
                "indexes": catalog.all().len(),
                "listening": catalog.is_listening(),
            });
            if catalog.is_listening() {
                ComponentHealth::ok(detail)
            } else {
                ComponentHealth::degraded(detail)
            }
        })
    }
}
