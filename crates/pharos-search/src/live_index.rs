//! [`LiveIndex`]: one named index as this replica serves it, searched without ever waiting for
//! a write. It holds two copies of the engine index (a left-right pair): searches read the
//! published copy through an atomic pointer, while a write is applied to the other copy, which
//! is then published; the write is applied again to the copy just retired once the searches
//! still reading it have finished (or, when that costs more, the retired copy is replaced by a
//! copy of the published one). Reads cost one atomic load; memory is twice the index.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hdrhistogram::Histogram;
use pharos_vector::{Hit, Quantizers, SearchParams, VectorIndex};

use crate::definition::IndexDefinition;
use crate::error::Result;

/// A vector's payload, shared by both copies.
pub type Payload = Arc<BTreeMap<String, String>>;

/// One change to apply to an index.
#[derive(Debug, Clone)]
pub enum Op {
    Upsert {
        id: u64,
        values: Vec<f32>,
        payload: Payload,
    },
    Delete(u64),
}

/// One copy of an index: the engine's structure and the payloads.
#[derive(Debug, Clone)]
pub struct IndexCopy {
    pub engine: VectorIndex,
    pub payloads: HashMap<u64, Payload>,
}

impl IndexCopy {
    /// Applies `ops`; returns how many deletes removed a vector that was there.
    pub(crate) fn apply(&mut self, ops: &[Op]) -> usize {
        let mut removed = 0;
        for op in ops {
            match op {
                Op::Upsert {
                    id,
                    values,
                    payload,
                } => match self.engine.upsert(*id, values) {
                    Ok(()) if payload.is_empty() => {
                        self.payloads.remove(id);
                    }
                    Ok(()) => {
                        self.payloads.insert(*id, payload.clone());
                    }
                    Err(error) => {
                        tracing::error!(id, %error, "a stored vector does not fit its index; skipped")
                    }
                },
                Op::Delete(id) => {
                    self.payloads.remove(id);
                    if self.engine.remove(*id) {
                        removed += 1;
                    }
                }
            }
        }
        removed
    }

    /// The hits with their payloads.
    pub fn with_payloads(&self, hits: Vec<Hit>) -> Vec<(Hit, Option<Payload>)> {
        hits.into_iter()
            .map(|hit| {
                let payload = self.payloads.get(&hit.id).cloned();
                (hit, payload)
            })
            .collect()
    }

    /// Bytes held, payloads estimated by their text.
    pub fn memory_bytes(&self) -> usize {
        let payloads: usize = self
            .payloads
            .values()
            .map(|payload| {
                payload
                    .iter()
                    .map(|(key, value)| key.len() + value.len() + 48)
                    .sum::<usize>()
            })
            .sum();
        self.engine.memory_bytes() + payloads + self.payloads.capacity() * 16
    }
}

/// A compiled payload filter: every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct PayloadFilter {
    conditions: Vec<(String, Vec<String>)>,
}

impl PayloadFilter {
    pub fn new(conditions: Vec<(String, Vec<String>)>) -> Self {
        Self { conditions }
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Whether the vector `id` of `copy` meets every condition.
    pub fn accepts(&self, copy: &IndexCopy, id: u64) -> bool {
        let Some(payload) = copy.payloads.get(&id) else {
            return false;
        };
        self.conditions.iter().all(|(key, values)| {
            payload
                .get(key)
                .is_some_and(|value| values.iter().any(|wanted| wanted == value))
        })
    }
}

/// One named index on this replica.
pub struct LiveIndex {
    pub name: String,
    pub definition: IndexDefinition,
    /// The copy searches read.
    published: ArcSwap<IndexCopy>,
    /// The copy writes go to first; also serialises writers.
    standby: Mutex<Arc<IndexCopy>>,
    /// Search latencies in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// The largest nprobe asked of this index, for recommendations.
    largest_nprobe: AtomicU32,
    /// Whether a training runs, watched by whoever waits for it to end.
    training: tokio::sync::watch::Sender<bool>,
    /// The last revision that changed the index, so that a snapshot can keep an unchanged
    /// index's file.
    changed: AtomicI64,
}

impl std::fmt::Debug for LiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIndex")
            .field("name", &self.name)
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}

impl LiveIndex {
    /// An index serving `copy` (built by the caller, e.g. from the store at start) as of
    /// revision `changed`.
    pub fn new(name: String, definition: IndexDefinition, copy: IndexCopy, changed: i64) -> Self {
        Self {
            name,
            definition,
            published: ArcSwap::from_pointee(copy.clone()),
            standby: Mutex::new(Arc::new(copy)),
            latency: Mutex::new(new_histogram()),
            largest_nprobe: AtomicU32::new(0),
            training: tokio::sync::watch::Sender::new(false),
            changed: AtomicI64::new(changed),
        }
    }

    /// An empty index of `definition`, created by change `revision`.
    pub fn empty(name: String, definition: IndexDefinition, revision: i64) -> Result<Self> {
        let copy = IndexCopy {
            engine: definition.new_index()?,
            payloads: HashMap::new(),
        };
        Ok(Self::new(name, definition, copy, revision))
    }

    /// The last revision that changed the index.
    pub fn changed(&self) -> i64 {
        self.changed.load(Ordering::Acquire)
    }

    /// Records that change `revision` was applied to the index.
    pub fn mark_changed(&self, revision: i64) {
        self.changed.fetch_max(revision, Ordering::AcqRel);
    }

    /// The copy to search: immutable, never waited for.
    pub fn snapshot(&self) -> Arc<IndexCopy> {
        self.published.load_full()
    }

    /// Applies `ops` to both copies, publishing the first one updated; returns how many
    /// deletes removed a vector. Blocking: CPU work, and it may wait for the searches still
    /// reading the retired copy.
    pub fn apply(&self, ops: &[Op]) -> usize {
        self.update(Some(ops.len()), |copy| copy.apply(ops))
    }

    /// Installs trained quantizers (encoding every vector) in the standby copy, publishes it and
    /// makes the other copy a clone of it.
    pub fn install(&self, quantizers: &Quantizers) {
        self.update(None, |copy| {
            if let VectorIndex::IvfPq(index) = &mut copy.engine {
                index.install(quantizers.clone());
            }
        });
    }

    /// Runs `change` (of `upserts` vectors; `None`: the whole index) on the standby copy and
    /// publishes it; then brings the retired copy level, by running `change` again or, when
    /// that costs more than copying the index (a large batch, graph inserts, training), by
    /// replacing it with a copy of the published one.
    fn update<T>(&self, upserts: Option<usize>, mut change: impl FnMut(&mut IndexCopy) -> T) -> T {
        let mut standby = self
            .standby
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let copy = exclusive(&mut standby);
        let replay_cost =
            upserts.map(|count| count.saturating_mul(copy.engine.upsert_cost_bytes()));
        let result = change(copy);
        let published = standby.clone();
        let retired = self.published.swap(published.clone());
        let copying_is_cheaper = replay_cost.is_none_or(|cost| cost > published.memory_bytes());
        if copying_is_cheaper {
            // Searches still reading the retired copy keep it alive until they finish.
            drop(retired);
            *standby = Arc::new(IndexCopy::clone(&published));
        } else {
            *standby = retired;
            change(exclusive(&mut standby));
        }
        result
    }

    /// Records one search's latency and its nprobe.
    pub fn record(&self, elapsed: Duration, params: SearchParams) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut histogram) = self.latency.lock() {
            histogram.saturating_record(micros.max(1));
        }
        self.largest_nprobe.fetch_max(
            u32::try_from(params.nprobe).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }

    /// Searches so far and their p50, p95, p99 in microseconds.
    pub fn latency(&self) -> (u64, f64, f64, f64) {
        let Ok(histogram) = self.latency.lock() else {
            return (0, 0.0, 0.0, 0.0);
        };
        (
            histogram.len(),
            histogram.value_at_quantile(0.50) as f64,
            histogram.value_at_quantile(0.95) as f64,
            histogram.value_at_quantile(0.99) as f64,
        )
    }

    pub fn largest_nprobe(&self) -> u32 {
        self.largest_nprobe.load(Ordering::Relaxed)
    }

    /// Marks a training as running; false when one already is.
    pub fn start_training(&self) -> bool {
        self.training
            .send_if_modified(|training| !std::mem::replace(training, true))
    }

    pub fn finish_training(&self) {
        self.training.send_replace(false);
    }

    pub fn is_training(&self) -> bool {
        *self.training.borrow()
    }

    /// Resolves once no training of this index runs (at once when none does).
    pub async fn training_finished(&self) {
        let mut training = self.training.subscribe();
        // The sender lives as long as this index, which outlives this borrow of it.
        let _ = training.wait_for(|training| !*training).await;
    }
}

/// A 1 µs .. 60 s histogram at 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

/// The copy behind `arc` for writing, once the searches still holding it have finished (they
/// hold it for one search at most). Falls back to a private clone if one is held too long.
fn exclusive(arc: &mut Arc<IndexCopy>) -> &mut IndexCopy {
    let mut waited = Duration::ZERO;
    let step = Duration::from_micros(50);
    while Arc::strong_count(arc) > 1 && waited < Duration::from_secs(30) {
        std::thread::sleep(step);
        waited += step;
    }
    Arc::make_mut(arc)
}
