//! k-means (Lloyd's algorithm) for the coarse quantizer of IVF and the codebooks of product
//! quantization: centroids start with k-means++ (each next one a point drawn with probability
//! proportional to its squared distance from those chosen) over a pool of 16 points per
//! centroid, empty clusters restart from a random point, and training uses a bounded sample so
//! its cost does not grow with the index. Points are
//! assigned to centroids with matrix products ([`assign`]), as FAISS does with BLAS.

use std::borrow::Cow;

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use multiversion::multiversion;

use crate::kernel::{dot, l2_squared, l2_squared_simd, products};

/// Training points used per centroid at most.
pub(crate) const SAMPLE_PER_CENTROID: usize = 256;
/// Points per centroid among which k-means++ picks the starting centroids.
const SEED_POOL_PER_CENTROID: usize = 16;

/// `k` centroids (row-major, `k * dimension` values) of the `data.len() / dimension` points in
/// `data`. With fewer points than `k`, the missing centroids repeat points.
pub fn train(data: &[f32], dimension: usize, k: usize, iterations: usize, seed: u64) -> Vec<f32> {
    let count = data.len() / dimension;
    let mut random = SmallRng::seed_from_u64(seed);
    if count == 0 || k == 0 {
        return vec![0.0; k * dimension];
    }
    let row = |index: usize| &data[index * dimension..(index + 1) * dimension];
    let training: Vec<usize> = if count > k * SAMPLE_PER_CENTROID {
        sample(&mut random, count, k * SAMPLE_PER_CENTROID).into_vec()
    } else {
        (0..count).collect()
    };
    // k-means++ over a pool of at most SEED_POOL_PER_CENTROID points per centroid: it reads
    // the pool once per centroid chosen, which over the whole sample (200k x 128 for 1,024
    // lists) was a third of IVF training; Lloyd's iterations below refine on the whole sample.
    let points: Vec<f32> = training
        .iter()
        .flat_map(|&point| row(point))
        .copied()
        .collect();
    let (pool, pool_points): (Vec<usize>, Cow<[f32]>) =
        if training.len() > k * SEED_POOL_PER_CENTROID {
            let pool: Vec<usize> = sample(&mut random, training.len(), k * SEED_POOL_PER_CENTROID)
                .into_iter()
                .map(|slot| training[slot])
                .collect();
            let pool_points = pool.iter().flat_map(|&point| row(point)).copied().collect();
            (pool, Cow::Owned(pool_points))
        } else {
            (training.clone(), Cow::Borrowed(&points))
        };
    let mut centroids = Vec::with_capacity(k * dimension);
    let first = pool[random.random_range(0..pool.len())];
    centroids.extend_from_slice(row(first));
    let mut closest: Vec<f32> = pool
        .iter()
        .map(|&point| squared_distance(row(point), row(first)))
        .collect();
    while centroids.len() < k * dimension {
        let total: f64 = closest.iter().map(|&d| f64::from(d)).sum();
        let chosen = if total > 0.0 {
            let mut target = random.random_range(0.0..total);
            let mut chosen = pool.len() - 1;
            for (slot, &distance) in closest.iter().enumerate() {
                target -= f64::from(distance);
                if target <= 0.0 {
                    chosen = slot;
                    break;
                }
            }
            chosen
        } else {
            random.random_range(0..pool.len())
        };
        let centroid = row(pool[chosen]);
        centroids.extend_from_slice(centroid);
        lower_distances(&pool_points, centroid, &mut closest);
    }
    for _ in 0..iterations {
        let assignment = assign(&points, dimension, &centroids);
        let mut sums = vec![0.0f64; k * dimension];
        let mut sizes = vec![0usize; k];
        for (slot, &point) in training.iter().enumerate() {
            let cluster = assignment[slot] as usize;
            sizes[cluster] += 1;
            for (sum, value) in sums[cluster * dimension..(cluster + 1) * dimension]
                .iter_mut()
                .zip(row(point))
            {
                *sum += f64::from(*value);
            }
        }
        for cluster in 0..k {
            let centroid = &mut centroids[cluster * dimension..(cluster + 1) * dimension];
            if sizes[cluster] == 0 {
                let restart = training[random.random_range(0..training.len())];
                centroid.copy_from_slice(row(restart));
                continue;
            }
            for (value, sum) in centroid
                .iter_mut()
                .zip(&sums[cluster * dimension..(cluster + 1) * dimension])
            {
                *value = (sum / sizes[cluster] as f64) as f32;
            }
        }
    }
    centroids
}

/// Lowers each `closest[i]` to the squared distance from point `i` of `points` to `centroid`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn lower_distances(points: &[f32], centroid: &[f32], closest: &mut [f32]) {
    for (distance, point) in closest.iter_mut().zip(points.chunks_exact(centroid.len())) {
        *distance = distance.min(squared_distance(point, centroid));
    }
}

/// Vectors shorter than this (product quantization's sub-vectors, 4 values at 128 x 32) are
/// compared with the portable kernel, inlined into the caller's clone.
const SHORT_VECTOR: usize = 16;

/// The squared L2 distance of `a` and `b`: explicit SIMD for long vectors; for short ones the
/// inlined portable kernel, since a dispatch per call cost more than the arithmetic.
#[inline(always)]
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    if a.len() < SHORT_VECTOR {
        l2_squared(a, b)
    } else {
        l2_squared_simd(a, b)
    }
}

/// Points scored against every centroid per matrix product.
const ASSIGN_BLOCK: usize = 1024;

/// The nearest centroid (squared L2) of every point of `points` (row-major), as matrix
/// products: `|p - c|^2 = |p|^2 + |c|^2 - 2 <p, c>`, of which the first term does not change
/// the nearest.
pub fn assign(points: &[f32], dimension: usize, centroids: &[f32]) -> Vec<u32> {
    let count = points.len() / dimension;
    let k = centroids.len() / dimension;
    if k == 0 || dimension == 0 {
        return vec![0; count];
    }
    let centre_norms: Vec<f32> = centroids
        .chunks_exact(dimension)
        .map(|centre| dot(centre, centre))
        .collect();
    let mut nearest = Vec::with_capacity(count);
    let mut scores = vec![0.0f32; ASSIGN_BLOCK.min(count.max(1)) * k];
    for block in points.chunks(ASSIGN_BLOCK * dimension) {
        let rows = block.len() / dimension;
        let scores = &mut scores[..rows * k];
        products(block, centroids, dimension, scores);
        nearest_of_products(scores, &centre_norms, &mut nearest);
    }
    nearest
}

/// For each row of `products` (one point's inner products with every centroid), the centroid
/// that minimizes `|c|^2 - 2 <p, c>`, the first one on ties.
fn nearest_of_products(products: &[f32], norms: &[f32], nearest: &mut Vec<u32>) {
    pulp::Arch::new().dispatch(NearestOfProducts {
        products,
        norms,
        nearest,
    });
}

/// [`nearest_of_products`] with explicit SIMD: each lane keeps its own best distance and the
/// register-wide chunk it came from, selected without branches; the lanes are compared at the
/// end of the row. (Written as portable code, LLVM left this loop scalar: it was a third of the
/// training time.)
struct NearestOfProducts<'a> {
    products: &'a [f32],
    norms: &'a [f32],
    nearest: &'a mut Vec<u32>,
}

impl pulp::WithSimd for NearestOfProducts<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self {
            products,
            norms,
            nearest,
        } = self;
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        let (norm_chunks, norm_tail) = S::as_simd_f32s(norms);
        let two = simd.splat_f32s(2.0);
        let one = simd.splat_u32s(1);
        let mut lane_best = [0.0f32; 64];
        let mut lane_chunk = [0u32; 64];
        for row in products.chunks_exact(norms.len()) {
            let (row_chunks, row_tail) = S::as_simd_f32s(row);
            let mut best = simd.splat_f32s(f32::INFINITY);
            let mut best_chunk = simd.splat_u32s(0);
            let mut chunk = simd.splat_u32s(0);
            for (&product, &norm) in row_chunks.iter().zip(norm_chunks) {
                // norm - 2 product: the doubling is exact, so fused or not rounds the same.
                let distance = simd.negate_mul_add_e_f32s(two, product, norm);
                let better = simd.less_than_f32s(distance, best);
                best = simd.select_f32s(better, distance, best);
                best_chunk = simd.select_u32s(better, chunk, best_chunk);
                chunk = simd.add_u32s(chunk, one);
            }
            simd.partial_store_f32s(&mut lane_best[..lanes], best);
            simd.partial_store_u32s(&mut lane_chunk[..lanes], best_chunk);
            let mut winner = (f32::INFINITY, 0u32);
            for (lane, (&distance, &chunk)) in
                lane_best[..lanes].iter().zip(&lane_chunk).enumerate()
            {
                let centre = chunk * lanes as u32 + lane as u32;
                if distance < winner.0 || (distance == winner.0 && centre < winner.1) {
                    winner = (distance, centre);
                }
            }
            let first_tail = row_chunks.len() * lanes;
            for (offset, (&product, &norm)) in row_tail.iter().zip(norm_tail).enumerate() {
                let distance = norm - 2.0 * product;
                if distance < winner.0 {
                    winner = (distance, (first_tail + offset) as u32);
                }
            }
            nearest.push(winner.1);
        }
    }
}

/// The index of the centroid nearest to `point` (squared L2). Compiled for AVX2 with FMA and
/// for AVX besides the baseline, chosen at run time: training and encoding spend their time here.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
pub fn nearest(centroids: &[f32], dimension: usize, point: &[f32]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (index, centroid) in centroids.chunks_exact(dimension).enumerate() {
        let distance = squared_distance(point, centroid);
        if distance < best.0 {
            best = (distance, index);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_by_products_is_the_nearest_centroid() {
        let mut random = SmallRng::seed_from_u64(5);
        // 37 centroids: whole registers and a tail; 20 values: the long kernel, 4: the short.
        for dimension in [20, 4] {
            let points: Vec<f32> = (0..300 * dimension)
                .map(|_| random.random_range(-1.0..1.0))
                .collect();
            let centroids: Vec<f32> = (0..37 * dimension)
                .map(|_| random.random_range(-1.0..1.0))
                .collect();
            let assigned = assign(&points, dimension, &centroids);
            for (point, &centre) in points.chunks_exact(dimension).zip(&assigned) {
                let expected = nearest(&centroids, dimension, point);
                let distance =
                    |c: usize| l2_squared(point, &centroids[c * dimension..(c + 1) * dimension]);
                // Products and direct distances round differently: equal up to rounding.
                assert!(
                    centre as usize == expected
                        || (distance(centre as usize) - distance(expected)).abs() < 1e-5,
                    "dimension {dimension}: {centre} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn finds_well_separated_clusters() {
        let mut data = Vec::new();
        let mut random = SmallRng::seed_from_u64(3);
        let centers = [[0.0f32, 0.0], [10.0, 10.0], [-10.0, 10.0]];
        for i in 0..300 {
            let center = centers[i % 3];
            data.push(center[0] + random.random_range(-0.5..0.5));
            data.push(center[1] + random.random_range(-0.5..0.5));
        }
        let centroids = train(&data, 2, 3, 10, 1);
        for center in centers {
            let found = nearest(&centroids, 2, &center);
            let centroid = &centroids[found * 2..found * 2 + 2];
            assert!(
                l2_squared(centroid, &center) < 0.1,
                "{centroid:?} vs {center:?}"
            );
        }
    }
}
