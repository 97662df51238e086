//! Distance kernels over `f32` slices of equal length. They keep eight independent partial sums,
//! so the compiler vectorizes them (AVX2 or SSE on x86-64, NEON on ARM) without `unsafe` or
//! target-specific code. They are always inlined, so that the scans calling them, compiled for
//! several instruction sets with `multiversion`, vectorize them for the set chosen at run time.
//! Many-against-many scores are matrix products ([`products`], faer's packed GEMM kernels).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

const LANES: usize = 8;

/// The inner product of `a` and `b`.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_of_terms(a, b, |x, y| x * y)
}

/// The squared Euclidean distance between `a` and `b`.
#[inline(always)]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    sum_of_terms(a, b, |x, y| (x - y) * (x - y))
}

/// The sum of `term(a[i], b[i])`, in `LANES` independent partial sums that vectorize, reduced
/// by halves so that no sum waits on a long chain of dependent additions.
#[inline(always)]
fn sum_of_terms(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let length = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..length].as_chunks::<LANES>();
    let (b_chunks, b_tail) = b[..length].as_chunks::<LANES>();
    let mut partial = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..LANES {
            partial[lane] += term(x[lane], y[lane]);
        }
    }
    let mut total = halving_sum(partial);
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        total += term(x, y);
    }
    total
}

/// [`dot`] with explicit SIMD (pulp, dispatched at run time to AVX2/FMA where the CPU has it):
/// LLVM compiles the portable one-row loop above to 128-bit operations, which costs paths that
/// score one vector at a time (graph walks, probes, re-ranking, long rows) much of their speed.
pub fn dot_simd(a: &[f32], b: &[f32]) -> f32 {
    pulp::Arch::new().dispatch(SumSimd { l2: false, a, b })
}

/// [`l2_squared`] with explicit SIMD, like [`dot_simd`].
pub fn l2_squared_simd(a: &[f32], b: &[f32]) -> f32 {
    pulp::Arch::new().dispatch(SumSimd { l2: true, a, b })
}

/// The sum of `a[i] * b[i]` or of `(a[i] - b[i])^2`, in two vector accumulators.
struct SumSimd<'a> {
    l2: bool,
    a: &'a [f32],
    b: &'a [f32],
}

impl pulp::WithSimd for SumSimd<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> f32 {
        let l2 = self.l2;
        let length = self.a.len().min(self.b.len());
        let (a, a_tail) = S::as_simd_f32s(&self.a[..length]);
        let (b, b_tail) = S::as_simd_f32s(&self.b[..length]);
        let add_term = |x, y, sum| {
            if l2 {
                let difference = simd.sub_f32s(x, y);
                simd.mul_add_e_f32s(difference, difference, sum)
            } else {
                simd.mul_add_e_f32s(x, y, sum)
            }
        };
        let mut first = simd.splat_f32s(0.0);
        let mut second = simd.splat_f32s(0.0);
        let (a_pairs, b_pairs) = (a.chunks_exact(2), b.chunks_exact(2));
        let (a_last, b_last) = (a_pairs.remainder(), b_pairs.remainder());
        for (x, y) in a_pairs.zip(b_pairs) {
            first = add_term(x[0], y[0], first);
            second = add_term(x[1], y[1], second);
        }
        for (&x, &y) in a_last.iter().zip(b_last) {
            first = add_term(x, y, first);
        }
        let mut total = simd.reduce_sum_f32s(simd.add_f32s(first, second));
        for (&x, &y) in a_tail.iter().zip(b_tail) {
            total += if l2 { (x - y) * (x - y) } else { x * y };
        }
        total
    }
}

/// The sum of eight partial sums by halves: three dependent additions instead of seven.
#[inline(always)]
fn halving_sum(sums: [f32; LANES]) -> f32 {
    let half = [
        sums[0] + sums[4],
        sums[1] + sums[5],
        sums[2] + sums[6],
        sums[3] + sums[7],
    ];
    (half[0] + half[2]) + (half[1] + half[3])
}

/// The inner products of four queries with `vector`, which is read once for all four.
#[inline(always)]
pub fn dot4(queries: [&[f32]; 4], vector: &[f32]) -> [f32; 4] {
    four_sums_of_terms(queries, vector, |x, y| x * y)
}

/// The squared Euclidean distances of four queries to `vector`, which is read once for all four.
#[inline(always)]
pub fn l2_squared4(queries: [&[f32]; 4], vector: &[f32]) -> [f32; 4] {
    four_sums_of_terms(queries, vector, |x, y| (x - y) * (x - y))
}

/// [`sum_of_terms`] of four queries against one vector: each chunk of the vector is loaded once
/// and combined with the same chunk of every query, so a batch scan does a quarter of the loads.
#[inline(always)]
fn four_sums_of_terms(
    queries: [&[f32]; 4],
    vector: &[f32],
    term: impl Fn(f32, f32) -> f32,
) -> [f32; 4] {
    let length = queries
        .iter()
        .fold(vector.len(), |shortest, q| shortest.min(q.len()));
    let vector = &vector[..length];
    let queries = queries.map(|query| &query[..length]);
    let mut sums = [[0.0f32; LANES]; 4];
    let chunks = length / LANES;
    for chunk in 0..chunks {
        let y = &vector[chunk * LANES..][..LANES];
        for (partial, query) in sums.iter_mut().zip(queries) {
            let x = &query[chunk * LANES..][..LANES];
            for lane in 0..LANES {
                partial[lane] += term(x[lane], y[lane]);
            }
        }
    }
    let mut totals = [0.0f32; 4];
    for ((total, partial), query) in totals.iter_mut().zip(&sums).zip(queries) {
        *total = halving_sum(*partial);
        for index in chunks * LANES..length {
            *total += term(query[index], vector[index]);
        }
    }
    totals
}

/// The inner products of every row of `a` with every row of `b` (both row-major, rows of
/// `dimension` values) into `out`, row-major `a rows x b rows`: one matrix product `a bᵀ` with
/// faer's cache-blocked kernels, chosen for the CPU at run time, on this thread.
pub fn products(a: &[f32], b: &[f32], dimension: usize, out: &mut [f32]) {
    let (a_rows, b_rows) = (a.len() / dimension, b.len() / dimension);
    let a = MatRef::from_row_major_slice(&a[..a_rows * dimension], a_rows, dimension);
    let b = MatRef::from_row_major_slice(&b[..b_rows * dimension], b_rows, dimension);
    let out = MatMut::from_row_major_slice_mut(&mut out[..a_rows * b_rows], a_rows, b_rows);
    matmul(out, Accum::Replace, a, b.transpose(), 1.0, Par::Seq);
}

/// Asks the CPU to start loading data into its caches, so that a graph walk fetches what it
/// reads next while it works on what it has (as hnswlib does). A hint: it never faults and
/// changes no result; it does nothing off x86-64. Safe through pulp's `Sse` token.
#[derive(Debug, Clone, Copy)]
pub struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl Prefetch {
    pub fn new() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            sse: pulp::core_arch::x86::Sse::try_new(),
        }
    }

    /// The first 64-byte line of `values`.
    #[inline(always)]
    pub fn fetch<T>(self, values: &[T]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(sse) = self.sse {
            sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(values.as_ptr().cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = values;
    }

    /// Every 64-byte line of `values`.
    #[inline(always)]
    pub fn fetch_lines(self, values: &[f32]) {
        for line in values.chunks(16) {
            self.fetch(line);
        }
    }
}

impl Default for Prefetch {
    fn default() -> Self {
        Self::new()
    }
}

/// `vector` scaled to unit length, or `None` for a zero vector.
pub fn normalized(vector: &[f32]) -> Option<Vec<f32>> {
    let norm = dot(vector, vector).sqrt();
    (norm > 0.0).then(|| vector.iter().map(|value| value / norm).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_the_definitions_for_every_length() {
        for length in [1, 3, 7, 8, 9, 16, 17, 33, 52, 64, 128, 131, 200] {
            let a: Vec<f32> = (0..length).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..length).map(|i| (i as f32 * 0.11).cos()).collect();
            let dot_naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let l2_naive: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            assert!(
                (dot(&a, &b) - dot_naive).abs() < 1e-4,
                "dot, length {length}"
            );
            assert!(
                (l2_squared(&a, &b) - l2_naive).abs() < 1e-4,
                "l2, length {length}"
            );
            assert!(
                (dot_simd(&a, &b) - dot_naive).abs() < 1e-4,
                "simd dot, length {length}"
            );
            assert!(
                (l2_squared_simd(&a, &b) - l2_naive).abs() < 1e-4,
                "simd l2, length {length}"
            );
        }
        let queries: Vec<Vec<f32>> = (0..4)
            .map(|q| {
                (0..52)
                    .map(|i| ((i * (q + 2)) as f32 * 0.13).sin())
                    .collect()
            })
            .collect();
        let vector: Vec<f32> = (0..52).map(|i| (i as f32 * 0.07).cos()).collect();
        let four = [&queries[0][..], &queries[1], &queries[2], &queries[3]];
        for (q, (d, l)) in dot4(four, &vector)
            .iter()
            .zip(l2_squared4(four, &vector))
            .enumerate()
        {
            assert!((d - dot(&queries[q], &vector)).abs() < 1e-4);
            assert!((l - l2_squared(&queries[q], &vector)).abs() < 1e-4);
        }
        let unit = normalized(&[3.0, 4.0]).expect("non-zero");
        assert_eq!(unit, vec![0.6, 0.8]);
        assert_eq!(normalized(&[0.0, 0.0]), None);
    }
}
