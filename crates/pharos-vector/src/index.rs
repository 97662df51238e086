//! [`VectorIndex`]: one index of any kind behind one interface, so that the search service
//! holds, searches and maintains indexes without knowing their kind. Batches are split across
//! threads when there is more than one query group's worth of work.

use crate::flat::FlatIndex;
use crate::hnsw::{HnswIndex, HnswParams};
use crate::ivfpq::{IvfPqIndex, IvfPqParams, IvfPqSearch, Quantizers, TrainStage};
use crate::{Filter, Hit, Metric, Result, VectorError};

/// The structure of an index and its build-time parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Exact search over every vector.
    Flat,
    /// Inverted lists of product-quantized codes, trained on the vectors held.
    IvfPq(IvfPqParams),
    /// A hierarchical navigable small-world graph.
    Hnsw(HnswParams),
}

/// Query-time parameters; each kind reads the ones it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// IVF lists probed.
    pub nprobe: usize,
    /// IVF candidates re-ranked exactly, as a multiple of k (0: none).
    pub rerank: usize,
    /// HNSW candidates explored (at least k).
    pub ef_search: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            nprobe: 8,
            rerank: 4,
            ef_search: 64,
        }
    }
}

/// Queries below which a batch is not split across threads: the split costs more than it saves.
const PARALLEL_BATCH: usize = 16;

#[derive(Debug, Clone)]
pub enum VectorIndex {
    Flat(FlatIndex),
    IvfPq(IvfPqIndex),
    Hnsw(HnswIndex),
}

impl VectorIndex {
    pub fn new(dimension: usize, metric: Metric, kind: IndexKind) -> Result<Self> {
        Ok(match kind {
            IndexKind::Flat => VectorIndex::Flat(FlatIndex::new(dimension, metric)?),
            IndexKind::IvfPq(params) => {
                VectorIndex::IvfPq(IvfPqIndex::new(dimension, metric, params)?)
            }
            IndexKind::Hnsw(params) => {
                VectorIndex::Hnsw(HnswIndex::new(dimension, metric, params)?)
            }
        })
    }

    pub fn len(&self) -> usize {
        match self {
            VectorIndex::Flat(index) => index.len(),
            VectorIndex::IvfPq(index) => index.len(),
            VectorIndex::Hnsw(index) => index.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dimension(&self) -> usize {
        match self {
            VectorIndex::Flat(index) => index.dimension(),
            VectorIndex::IvfPq(index) => index.dimension(),
            VectorIndex::Hnsw(index) => index.dimension(),
        }
    }

    pub fn metric(&self) -> Metric {
        match self {
            VectorIndex::Flat(index) => index.metric(),
            VectorIndex::IvfPq(index) => index.metric(),
            VectorIndex::Hnsw(index) => index.metric(),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        match self {
            VectorIndex::Flat(index) => index.memory_bytes(),
            VectorIndex::IvfPq(index) => index.memory_bytes(),
            VectorIndex::Hnsw(index) => index.memory_bytes(),
        }
    }

    /// About how many bytes of copying one upsert costs to apply (its distance computations
    /// counted as the bytes they read), so that a holder of two copies can choose between
    /// applying a batch twice and copying the index once.
    pub fn upsert_cost_bytes(&self) -> usize {
        match self {
            VectorIndex::Flat(index) => index.dimension() * 4,
            VectorIndex::IvfPq(index) if index.is_trained() => {
                (index.params().nlist + index.params().m * 256) * index.dimension() * 4
            }
            VectorIndex::IvfPq(index) => index.dimension() * 4,
            VectorIndex::Hnsw(index) => index.params().ef_construction * index.dimension() * 4 * 8,
        }
    }

    /// Whether the index answers from its trained structure (always, for flat).
    pub fn is_trained(&self) -> bool {
        match self {
            VectorIndex::Flat(_) | VectorIndex::Hnsw(_) => true,
            VectorIndex::IvfPq(index) => index.is_trained(),
        }
    }

    /// Vectors needed before training is worthwhile (`None`: the kind is not trained).
    pub fn min_training_vectors(&self) -> Option<usize> {
        match self {
            VectorIndex::Flat(_) | VectorIndex::Hnsw(_) => None,
            VectorIndex::IvfPq(index) => Some(index.min_training_vectors()),
        }
    }

    pub fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        match self {
            VectorIndex::Flat(index) => index.upsert(id, vector),
            VectorIndex::IvfPq(index) => index.upsert(id, vector),
            VectorIndex::Hnsw(index) => index.upsert(id, vector),
        }
    }

    pub fn remove(&mut self, id: u64) -> bool {
        match self {
            VectorIndex::Flat(index) => index.remove(id),
            VectorIndex::IvfPq(index) => index.remove(id),
            VectorIndex::Hnsw(index) => index.remove(id),
        }
    }

    /// Trains the structure on the vectors held (flat has nothing to train).
    pub fn train(&mut self, seed: u64, progress: &mut dyn FnMut(TrainStage)) -> Result<()> {
        match self {
            VectorIndex::Flat(_) | VectorIndex::Hnsw(_) => Err(VectorError::InvalidParams(
                "only IVF-PQ indexes are trained".to_owned(),
            )),
            VectorIndex::IvfPq(index) => {
                index.train(seed, progress);
                Ok(())
            }
        }
    }

    /// Installs quantizers fitted for this index (IVF-PQ; flat refuses) and encodes every vector.
    pub fn install(&mut self, quantizers: Quantizers) -> Result<()> {
        match self {
            VectorIndex::Flat(_) | VectorIndex::Hnsw(_) => Err(VectorError::InvalidParams(
                "only IVF-PQ indexes have quantizers".to_owned(),
            )),
            VectorIndex::IvfPq(index) => {
                index.install(quantizers);
                Ok(())
            }
        }
    }

    /// The `k` nearest to `query` among those `filter` accepts, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: SearchParams,
        filter: Option<Filter>,
    ) -> Result<Vec<Hit>> {
        match self {
            VectorIndex::Flat(index) => index.search(query, k, filter),
            VectorIndex::IvfPq(index) => index.search(query, k, ivf(params), filter),
            VectorIndex::Hnsw(index) => index.search(query, k, params.ef_search, filter),
        }
    }

    /// The `k` nearest to each of `queries`, on up to `threads` threads.
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: SearchParams,
        filter: Option<Filter>,
        threads: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let threads = threads.clamp(1, queries.len().div_ceil(PARALLEL_BATCH).max(1));
        if threads == 1 {
            return self.search_batch_here(queries, k, params, filter);
        }
        let share = queries.len().div_ceil(threads);
        let parts: Vec<Result<Vec<Vec<Hit>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = queries
                .chunks(share)
                .map(|part| scope.spawn(move || self.search_batch_here(part, k, params, filter)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(VectorError::InvalidParams(
                            "a search thread failed".to_owned(),
                        ))
                    })
                })
                .collect()
        });
        let mut answers = Vec::with_capacity(queries.len());
        for part in parts {
            answers.extend(part?);
        }
        Ok(answers)
    }

    fn search_batch_here(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: SearchParams,
        filter: Option<Filter>,
    ) -> Result<Vec<Vec<Hit>>> {
        match self {
            VectorIndex::Flat(index) => index.search_batch(queries, k, filter),
            VectorIndex::IvfPq(index) => queries
                .iter()
                .map(|query| index.search(query, k, ivf(params), filter))
                .collect(),
            VectorIndex::Hnsw(index) => queries
                .iter()
                .map(|query| index.search(query, k, params.ef_search, filter))
                .collect(),
        }
    }
}

fn ivf(params: SearchParams) -> IvfPqSearch {
    IvfPqSearch {
        nprobe: params.nprobe,
        rerank: params.rerank,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_across_threads_answer_like_one_thread() {
        let mut index = VectorIndex::new(4, Metric::L2, IndexKind::Flat).expect("index");
        for id in 0..500u64 {
            let x = id as f32;
            index.upsert(id, &[x, x * 0.5, -x, 1.0]).expect("upsert");
        }
        let queries: Vec<Vec<f32>> = (0..70)
            .map(|i| vec![i as f32 * 7.0, 0.0, 0.0, 1.0])
            .collect();
        let even = |id: u64| id.is_multiple_of(2);
        let one = index
            .search_batch(&queries, 5, SearchParams::default(), Some(&even), 1)
            .expect("one thread");
        let many = index
            .search_batch(&queries, 5, SearchParams::default(), Some(&even), 4)
            .expect("threads");
        assert_eq!(one, many);
        assert_eq!(one.len(), 70);
        assert!(one.iter().flatten().all(|hit| hit.id.is_multiple_of(2)));
    }
}
