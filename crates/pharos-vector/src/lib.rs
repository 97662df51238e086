//! The vector search engine behind the search service: distance kernels ([`kernel`]), top-k
//! selection ([`topk`]) and indexes, with no I/O so that it can be tested and benchmarked alone.
//!
//! Built so far: [`FlatIndex`], exact search for inner product, L2 and cosine, one query at a
//! time or in batches that scan the base once per block of queries; [`IvfPqIndex`] (k-means
//! coarse lists, 8-bit product quantization, lookup-table scoring, exact re-ranking); and
//! [`HnswIndex`] (a navigable small-world graph), all behind
//! [`VectorIndex`], which the search service holds. Every search takes an optional [`Filter`].

pub mod flat;
pub mod hnsw;
pub mod index;
pub mod ivfpq;
pub mod kernel;
pub mod kmeans;
pub mod pages;
pub mod persist;
pub mod topk;

pub use flat::FlatIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use index::{IndexKind, SearchParams, VectorIndex};
pub use ivfpq::{IvfPqIndex, IvfPqParams, IvfPqSearch, Quantizers, TrainStage};

/// Which stored ids a search may return: called only for candidates good enough to be kept.
pub type Filter<'a> = &'a (dyn Fn(u64) -> bool + Sync);

/// The largest dimension an index accepts.
pub const MAX_DIMENSION: usize = 4096;

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Larger is closer.
    InnerProduct,
    /// Squared Euclidean distance; smaller is closer.
    L2,
    /// Cosine similarity (vectors are normalized on the way in); larger is closer.
    Cosine,
}

impl Metric {
    /// How close `vector` is to `query`, larger is closer whatever the metric (L2 negated), so
    /// that every index ranks with one top-k.
    #[inline(always)]
    pub(crate) fn key(self, query: &[f32], vector: &[f32]) -> f32 {
        match self {
            Metric::InnerProduct | Metric::Cosine => kernel::dot(query, vector),
            Metric::L2 => -kernel::l2_squared(query, vector),
        }
    }

    /// [`Metric::key`] with explicit SIMD ([`kernel::dot_simd`]), for paths that score one
    /// vector at a time.
    #[inline(always)]
    pub(crate) fn key_simd(self, query: &[f32], vector: &[f32]) -> f32 {
        match self {
            Metric::InnerProduct | Metric::Cosine => kernel::dot_simd(query, vector),
            Metric::L2 => -kernel::l2_squared_simd(query, vector),
        }
    }

    /// [`Metric::key`] of four queries against one vector, read once.
    #[inline(always)]
    pub(crate) fn key4(self, queries: [&[f32]; 4], vector: &[f32]) -> [f32; 4] {
        match self {
            Metric::InnerProduct | Metric::Cosine => kernel::dot4(queries, vector),
            Metric::L2 => kernel::l2_squared4(queries, vector).map(|distance| -distance),
        }
    }

    /// The ranked candidates of a top-k as hits with the metric's own score.
    pub(crate) fn hits(self, ranked: Vec<(f32, u64)>) -> Vec<Hit> {
        ranked
            .into_iter()
            .map(|(key, id)| Hit {
                id,
                score: if self == Metric::L2 { -key } else { key },
            })
            .collect()
    }
}

/// One result: the caller's id and its score. Inner product and cosine give the similarity,
/// L2 the squared distance; results come best first either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VectorError {
    #[error("dimension must be 1..={MAX_DIMENSION}, not {0}")]
    InvalidDimension(usize),
    #[error("the vector has {given} values; this index holds vectors of dimension {expected}")]
    DimensionMismatch { expected: usize, given: usize },
    #[error("value {position} is not a finite number")]
    NotFinite { position: usize },
    #[error("a zero vector has no direction to compare by cosine")]
    ZeroVector,
    #[error("k must be at least 1")]
    InvalidK,
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    #[error("the encoded index is damaged or of another layout: {0}")]
    Corrupt(String),
}

pub type Result<T, E = VectorError> = std::result::Result<T, E>;

/// Checks a vector against `dimension`: right length, every value finite.
pub fn check_vector(vector: &[f32], dimension: usize) -> Result<()> {
    if vector.len() != dimension {
        return Err(VectorError::DimensionMismatch {
            expected: dimension,
            given: vector.len(),
        });
    }
    match vector.iter().position(|value| !value.is_finite()) {
        Some(position) => Err(VectorError::NotFinite { position }),
        None => Ok(()),
    }
}
