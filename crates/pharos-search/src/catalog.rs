//! [`Catalog`]: the indexes this replica serves and how they stay equal to the store. At start
//! every index is loaded from the store in one consistent read (and IVF_PQ indexes with enough
//! vectors are trained) before the service answers; after that, committed changes are applied
//! one revision after another: this replica's own writes at once, other replicas' writes on
//! PostgreSQL NOTIFY, and anything missed from the change log (on a gap, a lost connection or
//! a periodic check). A replica that fell behind the change log's retention reloads everything.
//!
//! With snapshots on, the start reads the indexes from the last snapshot in the data directory
//! (see [`crate::snapshot`]) and replays only the changes after it; a snapshot is written
//! periodically when something changed, and at shutdown. Every index is pre-warmed (searched
//! once) before the service answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use pharos_runtime::Shutdown;
use pharos_store::control::follow::{Follower, replicate};
use pharos_store::control::vectors::{
    CHANGES_CHANNEL, Change, ChangeKind, Loaded, VectorRepository, VectorRow,
};
use pharos_vector::{IvfPqParams, Quantizers, SearchParams, TrainStage, VectorIndex};

use crate::definition::{IndexDefinition, KindDefinition};
use crate::error::{Result, SearchError};
use crate::live_index::{IndexCopy, LiveIndex, Op, Payload};
use crate::settings::SearchSettings;
use crate::snapshot::{IndexToWrite, Manifest, SnapshotDir};

/// Changes read from the log per query while catching up.
const CATCH_UP_PAGE: usize = 256;

/// The indexes of this replica, kept current with the store.
pub struct Catalog {
    repository: VectorRepository,
    indexes: ArcSwap<BTreeMap<String, Arc<LiveIndex>>>,
    /// The last revision applied; held while applying, so application is serialised.
    last_applied: tokio::sync::Mutex<i64>,
    /// The revision applied here, watched by whoever waits for a change to arrive.
    applied: tokio::sync::watch::Sender<i64>,
    listening: AtomicBool,
    auto_train: bool,
    train_seed: u64,
    snapshots: Option<Snapshots>,
    /// The revision of the snapshot this replica started from (`None`: loaded from the store).
    started_from: Option<i64>,
}

/// The snapshot directory and the last snapshot written or read (held while writing, so
/// that one snapshot is written at a time).
struct Snapshots {
    dir: SnapshotDir,
    last: tokio::sync::Mutex<Option<Manifest>>,
    /// Set by [`Catalog::close`]: the directory is released and no snapshot is written again.
    closed: AtomicBool,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Loads every index (from the last snapshot and the changes since, or from the store),
    /// trains those that should be and pre-warms them all.
    pub async fn load(
        repository: VectorRepository,
        settings: &SearchSettings,
    ) -> Result<Arc<Self>> {
        let dir = settings
            .snapshot_dir()
            .cloned()
            .map(SnapshotDir::open)
            .transpose()
            .map_err(|error| SearchError::FailedPrecondition(error.to_string()))?;
        let from_snapshot = match &dir {
            Some(dir) => read_snapshot(&repository, dir).await,
            None => None,
        };
        let (revision, indexes, manifest) = match from_snapshot {
            Some((manifest, indexes)) => (manifest.revision, indexes, Some(manifest)),
            None => {
                let (revision, indexes) = load_indexes(&repository).await?;
                (revision, indexes, None)
            }
        };
        let catalog = Arc::new(Self {
            repository,
            indexes: ArcSwap::from_pointee(indexes),
            last_applied: tokio::sync::Mutex::new(revision),
            applied: tokio::sync::watch::Sender::new(revision),
            listening: AtomicBool::new(true),
            auto_train: settings.auto_train,
            train_seed: settings.train_seed,
            started_from: manifest.as_ref().map(|manifest| manifest.revision),
            snapshots: dir.map(|dir| Snapshots {
                dir,
                last: tokio::sync::Mutex::new(manifest),
                closed: AtomicBool::new(false),
            }),
        });
        {
            let mut last = catalog.last_applied.lock().await;
            catalog.catch_up_locked(&mut last).await?;
            if *last > revision {
                tracing::info!(
                    from = revision,
                    to = *last,
                    "changes after the snapshot replayed from the store"
                );
            }
        }
        catalog.train_due().await?;
        catalog.warm().await?;
        Ok(catalog)
    }

    /// Searches every index once, so that its memory is touched and the kernels chosen for
    /// this CPU are resolved before the first caller's search.
    async fn warm(&self) -> Result<()> {
        let indexes = self.all();
        let started = tokio::time::Instant::now();
        let count = indexes.len();
        run_blocking(move || {
            for live in indexes {
                let copy = live.snapshot();
                if copy.engine.is_empty() {
                    continue;
                }
                let query = vec![1.0; copy.engine.dimension()];
                if let Err(error) = copy
                    .engine
                    .search(&query, 10, SearchParams::default(), None)
                {
                    tracing::warn!(index = %live.name, %error, "pre-warming search failed");
                }
            }
        })
        .await?;
        tracing::info!(
            indexes = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "indexes pre-warmed"
        );
        Ok(())
    }

    /// Writes a snapshot of every index at the revision applied, unless one at that revision
    /// was already written (see [`crate::snapshot`]). Does nothing when snapshots are off.
    pub async fn write_snapshot(&self) -> Result<()> {
        let Some(snapshots) = &self.snapshots else {
            return Ok(());
        };
        let mut last = snapshots.last.lock().await;
        if snapshots.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let identity = self.repository.identity().await?;
        let (revision, indexes) = {
            let applied = self.last_applied.lock().await;
            let indexes: Vec<IndexToWrite> = self
                .all()
                .into_iter()
                .map(|live| IndexToWrite {
                    name: live.name.clone(),
                    definition: live.definition,
                    copy: live.snapshot(),
                    changed: live.changed(),
                })
                .collect();
            (*applied, indexes)
        };
        let current = last
            .as_ref()
            .is_some_and(|last| last.revision == revision && last.store_id == identity.store_id);
        if current {
            return Ok(());
        }
        let started = tokio::time::Instant::now();
        let dir = snapshots.dir.clone();
        let previous = last.clone();
        let manifest = run_blocking(move || {
            dir.write(&identity.store_id, revision, indexes, previous.as_ref())
        })
        .await?
        .map_err(|error| SearchError::internal_from("cannot write the index snapshot", error))?;
        tracing::info!(
            revision,
            indexes = manifest.indexes.len(),
            bytes = manifest.indexes.values().map(|entry| entry.bytes).sum::<u64>(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            dir = %snapshots.dir.path().display(),
            "index snapshot written"
        );
        *last = Some(manifest);
        Ok(())
    }

    /// Writes the last snapshot and releases the snapshot directory, once no other snapshot is
    /// being written; later snapshot writes do nothing. Called when the service stops.
    pub async fn close(&self) -> Result<()> {
        let written = self.write_snapshot().await;
        if let Some(snapshots) = &self.snapshots {
            let _writing = snapshots.last.lock().await;
            if !snapshots.closed.swap(true, Ordering::AcqRel) {
                snapshots.dir.unlock();
            }
        }
        written
    }

    /// Trains, before serving them, the loaded indexes that hold enough vectors but were never
    /// trained (the process stopped before it could).
    async fn train_due(self: &Arc<Self>) -> Result<()> {
        if !self.auto_train {
            return Ok(());
        }
        for live in self.all() {
            if is_due(&live) && live.start_training() {
                tracing::info!(index = %live.name, "training the index before serving it");
                let trained = self.train(live.clone(), |_| {}).await;
                live.finish_training();
                trained?;
            }
        }
        Ok(())
    }

    /// Trains IVF_PQ index `live` on a sample of what it holds: the quantizers are fitted
    /// without holding anything up, stored, and then installed by every replica (this one
    /// first). `progress` hears each stage.
    pub async fn train(
        self: &Arc<Self>,
        live: Arc<LiveIndex>,
        mut progress: impl FnMut(TrainStage) + Send + 'static,
    ) -> Result<()> {
        let seed = self.train_seed;
        let fitting = live.clone();
        let (quantizers, count) = run_blocking(move || {
            let (sample, dimension, params, count) = {
                let snapshot = fitting.snapshot();
                let VectorIndex::IvfPq(index) = &snapshot.engine else {
                    return Err(SearchError::FailedPrecondition(format!(
                        "index {:?} is not IVF_PQ: it has nothing to train",
                        fitting.name
                    )));
                };
                (
                    index.training_sample(seed),
                    index.dimension(),
                    index.params(),
                    index.len(),
                )
            };
            let quantizers = Quantizers::fit(&sample, dimension, params, seed, &mut progress);
            progress(TrainStage::Encoding { vectors: count });
            Ok((quantizers, count))
        })
        .await??;
        let change = self
            .repository
            .set_quantizers(
                &live.name,
                &live.definition.to_json(),
                &quantizers.to_bytes(),
            )
            .await
            .map_err(|error| SearchError::from_store(error, &live.name))?;
        tracing::info!(index = %live.name, vectors = count, revision = change.revision, "index trained");
        self.apply(change, None).await
    }

    pub fn get(&self, name: &str) -> Option<Arc<LiveIndex>> {
        self.indexes.load().get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<LiveIndex>> {
        self.indexes.load().values().cloned().collect()
    }

    pub fn applied_revision(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Resolves once this replica has applied `revision` (at once if it has).
    pub async fn wait_applied(&self, revision: i64) {
        let mut applied = self.applied.subscribe();
        // The sender lives as long as the catalog, which outlives this borrow of it.
        let _ = applied.wait_for(|applied| *applied >= revision).await;
    }

    /// The revision of the snapshot this replica started from; `None` when it loaded every
    /// index from the store.
    pub fn started_from_snapshot(&self) -> Option<i64> {
        self.started_from
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Applies committed `change` (with its rows when this replica wrote them) and anything
    /// before it not yet applied.
    pub async fn apply(&self, change: Change, rows: Option<Vec<VectorRow>>) -> Result<()> {
        let mut last = self.last_applied.lock().await;
        if change.revision <= *last {
            return Ok(());
        }
        if change.revision == *last + 1 {
            self.apply_one(&change, rows).await?;
            *last = change.revision;
            self.applied.send_replace(*last);
            return Ok(());
        }
        self.catch_up_locked(&mut last).await
    }

    async fn catch_up_locked(&self, last: &mut i64) -> Result<()> {
        loop {
            let changes = self.repository.changes_after(*last, CATCH_UP_PAGE).await?;
            let Some(first) = changes.first() else {
                return Ok(());
            };
            if first.revision > *last + 1 {
                tracing::warn!(
                    applied = *last,
                    next = first.revision,
                    "changes missed beyond the change log's retention; reloading every index from the store"
                );
                let (revision, indexes) = load_indexes(&self.repository).await?;
                self.indexes.store(Arc::new(indexes));
                *last = revision;
                self.applied.send_replace(revision);
                continue;
            }
            for change in &changes {
                self.apply_one(change, None).await?;
                *last = change.revision;
                self.applied.send_replace(*last);
            }
            if changes.len() < CATCH_UP_PAGE {
                return Ok(());
            }
        }
    }

    async fn apply_one(&self, change: &Change, rows: Option<Vec<VectorRow>>) -> Result<()> {
        match change.kind {
            ChangeKind::CreateIndex => {
                let definition = IndexDefinition::from_json(&change.definition)?;
                let live = LiveIndex::empty(change.index.clone(), definition, change.revision)?;
                self.replace(&change.index, Some(Arc::new(live)));
            }
            ChangeKind::DropIndex => self.replace(&change.index, None),
            ChangeKind::Upsert => {
                let Some(live) = self.get(&change.index) else {
                    return Ok(());
                };
                let rows = match rows {
                    Some(rows) => rows,
                    None => self.repository.vectors_of_change(change.revision).await?,
                };
                let ops = rows
                    .into_iter()
                    .map(upsert_op)
                    .collect::<Result<Vec<_>>>()?;
                live.mark_changed(change.revision);
                run_blocking(move || live.apply(&ops)).await?;
            }
            ChangeKind::Trained => {
                let Some(live) = self.get(&change.index) else {
                    return Ok(());
                };
                let Some(bytes) = self.repository.quantizers(&change.index).await? else {
                    return Ok(());
                };
                let quantizers = quantizers_of(&live.definition, &bytes)?;
                live.mark_changed(change.revision);
                run_blocking(move || live.install(&quantizers)).await?;
            }
            ChangeKind::Delete => {
                let Some(live) = self.get(&change.index) else {
                    return Ok(());
                };
                let ops: Vec<Op> = change.ids.iter().map(|&id| Op::Delete(id)).collect();
                live.mark_changed(change.revision);
                run_blocking(move || live.apply(&ops)).await?;
            }
        }
        Ok(())
    }

    fn replace(&self, name: &str, live: Option<Arc<LiveIndex>>) {
        self.indexes.rcu(|current| {
            let mut next = BTreeMap::clone(current);
            match &live {
                Some(live) => next.insert(name.to_owned(), live.clone()),
                None => next.remove(name),
            };
            next
        });
    }

    /// Starts training `live` in the background when it is an untrained IVF_PQ index that
    /// now holds enough vectors. Called by the replica that wrote the vectors, so that one
    /// replica trains and the others install what it stored.
    pub fn maybe_train(self: &Arc<Self>, live: &Arc<LiveIndex>) {
        if !self.auto_train || !is_due(live) || !live.start_training() {
            return;
        }
        let live = live.clone();
        let catalog = self.clone();
        tokio::spawn(async move {
            tracing::info!(index = %live.name, "training the index: it holds enough vectors");
            let trained = catalog.train(live.clone(), |_| {}).await;
            live.finish_training();
            if let Err(error) = trained {
                tracing::warn!(index = %live.name, %error, "training failed");
            }
        });
    }

    /// Spawns the task that keeps this replica current (see [`replicate`]): NOTIFY on
    /// PostgreSQL, the periodic catch-up check and change-log compaction.
    pub fn spawn_tasks(self: &Arc<Self>, settings: &SearchSettings, shutdown: Shutdown) {
        let catalog = self.clone();
        let intervals = settings.replication;
        let replica = catalog.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let store = replica.repository.store().clone();
            tokio::select! {
                () = replicate(&store, CHANGES_CHANNEL, &*replica, intervals) => {}
                () = stop.wait() => {}
            }
        });
        if catalog.snapshots.is_none() {
            return;
        }
        let every = settings
            .snapshot_interval
            .max(std::time::Duration::from_secs(1));
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let shutdown = stop;
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        if let Err(error) = catalog.write_snapshot().await {
                            tracing::warn!(%error, "the index snapshot was not written; the next try is in one interval");
                        }
                    }
                    () = shutdown.wait() => return,
                }
            }
        });
    }
}

/// Vector changes from other replicas: a notice carries the revision; anything newer than what
/// this replica applied is read from the change log.
impl Follower for Catalog {
    fn subject(&self) -> &'static str {
        "vector changes"
    }

    fn catch_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let mut last = self.last_applied.lock().await;
            if let Err(error) = self.catch_up_locked(&mut last).await {
                tracing::warn!(%error, "catch-up from the vector change log failed");
            }
        })
    }

    fn notified<'a>(&'a self, payload: &'a str) -> BoxFuture<'a, ()> {
        let behind = payload
            .parse::<i64>()
            .map_or(true, |revision| revision > self.applied_revision());
        Box::pin(async move {
            if behind {
                Follower::catch_up(self).await;
            }
        })
    }

    fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Relaxed);
    }

    fn applied_revision(&self) -> i64 {
        Catalog::applied_revision(self)
    }

    fn committed_revision(&self) -> BoxFuture<'_, pharos_store::Result<i64>> {
        Box::pin(async { Ok(self.repository.revisions().await?.0) })
    }

    fn compact(&self, before_micros: i64) -> BoxFuture<'_, pharos_store::Result<Option<i64>>> {
        Box::pin(self.repository.compact(before_micros))
    }
}

/// Whether `live` is an untrained IVF_PQ index holding enough vectors to train well.
fn is_due(live: &LiveIndex) -> bool {
    let snapshot = live.snapshot();
    snapshot
        .engine
        .min_training_vectors()
        .is_some_and(|needed| !snapshot.engine.is_trained() && snapshot.engine.len() >= needed)
}

/// Stored quantizers of an index of `definition`.
fn quantizers_of(definition: &IndexDefinition, bytes: &[u8]) -> Result<Quantizers> {
    let KindDefinition::IvfPq { nlist, m, .. } = definition.kind else {
        return Err(SearchError::internal(
            "quantizers stored for an index that is not IVF_PQ",
        ));
    };
    let params = IvfPqParams {
        nlist: nlist as usize,
        m: m as usize,
    };
    Quantizers::from_bytes(bytes, definition.dimension(), params).map_err(|error| {
        SearchError::internal_from("stored quantizers do not fit the index", error)
    })
}

/// Runs CPU-bound `work` off the async workers.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SearchError::internal_from("a search task failed", error))
}

/// The indexes of the last snapshot in `dir`, when it was taken from this store and the
/// change log still holds every change after it; `None` (with the reason logged) otherwise,
/// and the caller loads from the store.
async fn read_snapshot(
    repository: &VectorRepository,
    dir: &SnapshotDir,
) -> Option<(Manifest, BTreeMap<String, Arc<LiveIndex>>)> {
    let shown = dir.path().display().to_string();
    let manifest = match dir.manifest() {
        Ok(Some(manifest)) => manifest,
        Ok(None) => {
            tracing::info!(dir = %shown, "no index snapshot: loading the indexes from the store");
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "the index snapshot is unreadable: loading the indexes from the store");
            return None;
        }
    };
    let identity = match repository.identity().await {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(%error, "cannot check the index snapshot against the store");
            return None;
        }
    };
    let usable = if manifest.store_id != identity.store_id {
        Err("it was taken from another store")
    } else if manifest.revision > identity.revision {
        Err("it is ahead of the store (was the database restored from a backup?)")
    } else if manifest.revision < identity.compacted_revision {
        Err("the change log no longer reaches back to it")
    } else {
        Ok(())
    };
    if let Err(reason) = usable {
        tracing::info!(dir = %shown, revision = manifest.revision, reason, "the index snapshot is not used: loading the indexes from the store");
        return None;
    }
    let started = tokio::time::Instant::now();
    let reading = dir.clone();
    let wanted = manifest.clone();
    let read = run_blocking(move || reading.read(&wanted)).await;
    let indexes = match read {
        Ok(Ok(indexes)) => indexes,
        Ok(Err(error)) => {
            tracing::warn!(%error, "the index snapshot is not used: loading the indexes from the store");
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "reading the index snapshot failed");
            return None;
        }
    };
    let indexes: BTreeMap<String, Arc<LiveIndex>> = indexes
        .into_iter()
        .map(|index| {
            tracing::info!(index = %index.name, vectors = index.copy.engine.len(), "index read from the snapshot");
            let live = LiveIndex::new(index.name.clone(), index.definition, index.copy, index.changed);
            (index.name, Arc::new(live))
        })
        .collect();
    tracing::info!(
        dir = %shown,
        revision = manifest.revision,
        indexes = indexes.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "indexes read from the snapshot; replaying the changes after it"
    );
    Some((manifest, indexes))
}

/// Reads every index from the store in one consistent snapshot.
async fn load_indexes(
    repository: &VectorRepository,
) -> Result<(i64, BTreeMap<String, Arc<LiveIndex>>)> {
    let mut building: BTreeMap<String, (IndexDefinition, IndexCopy, Option<Vec<u8>>)> =
        BTreeMap::new();
    let mut failure: Option<SearchError> = None;
    let started = tokio::time::Instant::now();
    let revision = repository
        .load(&mut |item| {
            if failure.is_some() {
                return;
            }
            let outcome = match item {
                Loaded::Index(row) => {
                    IndexDefinition::from_json(&row.definition).and_then(|definition| {
                        let copy = IndexCopy {
                            engine: definition.new_index()?,
                            payloads: HashMap::new(),
                        };
                        building.insert(row.name, (definition, copy, row.quantizers));
                        Ok(())
                    })
                }
                Loaded::Vector { index, row } => match building.get_mut(&index) {
                    Some((_, copy, _)) => upsert_op(row).map(|op| {
                        copy.apply(std::slice::from_ref(&op));
                    }),
                    None => Ok(()),
                },
            };
            if let Err(error) = outcome {
                failure = Some(error);
            }
        })
        .await?;
    if let Some(error) = failure {
        return Err(error);
    }
    let mut indexes = BTreeMap::new();
    for (name, (definition, mut copy, quantizers)) in building {
        let count = copy.engine.len();
        if let Some(bytes) = quantizers {
            let quantizers = quantizers_of(&definition, &bytes)?;
            copy = run_blocking(move || copy.engine.install(quantizers).map(|()| copy))
                .await?
                .map_err(|error| {
                    SearchError::internal_from("stored quantizers cannot be installed", error)
                })?;
        }
        tracing::info!(index = %name, vectors = count, "index loaded");
        indexes.insert(
            name.clone(),
            Arc::new(LiveIndex::new(name, definition, copy, revision)),
        );
    }
    tracing::info!(
        revision,
        indexes = indexes.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "vector indexes loaded from the store"
    );
    Ok((revision, indexes))
}

/// The op of a stored row: its values and parsed payload.
fn upsert_op(row: VectorRow) -> Result<Op> {
    let payload: BTreeMap<String, String> = if row.payload.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&row.payload).map_err(|error| {
            SearchError::internal_from(
                format!("the stored payload of vector {} does not parse", row.id),
                error,
            )
        })?
    };
    Ok(Op::Upsert {
        id: row.id,
        values: row.values,
        payload: Payload::new(payload),
    })
}
