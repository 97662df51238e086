//! k-means (Lloyd's algorithm) for the coarse quantizer of IVF and the codebooks of product
//! quantization: centroids start with k-means++ (each next one a point drawn with probability
//! proportional to its squared distance from those chosen), empty clusters restart from a random
//! point, and training uses a bounded sample so its cost does not grow with the index. Points are
//! assigned to centroids with matrix products ([`assign`]), as FAISS does with BLAS.

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use multiversion::multiversion;

use crate::kernel::{dot, l2_squared_simd, products};

/// Training points used per centroid at most.
pub(crate) const SAMPLE_PER_CENTROID: usize = 256;

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
    let points: Vec<f32> = training
        .iter()
        .flat_map(|&point| row(point))
        .copied()
        .collect();
    // k-means++: spread the starting centroids over the data.
    let mut centroids = Vec::with_capacity(k * dimension);
    let first = training[random.random_range(0..training.len())];
    centroids.extend_from_slice(row(first));
    let mut closest: Vec<f32> = training
        .iter()
        .map(|&point| l2_squared_simd(row(point), row(first)))
        .collect();
    while centroids.len() < k * dimension {
        let total: f64 = closest.iter().map(|&d| f64::from(d)).sum();
        let chosen = if total > 0.0 {
            let mut target = random.random_range(0.0..total);
            let mut chosen = training.len() - 1;
            for (slot, &distance) in closest.iter().enumerate() {
                target -= f64::from(distance);
                if target <= 0.0 {
                    chosen = slot;
                    break;
                }
            }
            chosen
        } else {
            random.random_range(0..training.len())
        };
        let centroid = row(training[chosen]);
        centroids.extend_from_slice(centroid);
        lower_distances(&points, centroid, &mut closest);
    }
    let points: Vec<f32> = training
        .iter()
        .flat_map(|&point| row(point))
        .copied()
        .collect();
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
        *distance = distance.min(l2_squared_simd(point, centroid));
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
/// that minimizes `|c|^2 - 2 <p, c>`, the first one on ties. Eight lanes each keep their own
/// best, so the comparisons vectorize; compiled like [`nearest`].
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn nearest_of_products(products: &[f32], norms: &[f32], nearest: &mut Vec<u32>) {
    let (norm_chunks, norm_tail) = norms.as_chunks::<8>();
    for row in products.chunks_exact(norms.len()) {
        let (row_chunks, row_tail) = row.as_chunks::<8>();
        let mut best = [f32::INFINITY; 8];
        let mut index = [0u32; 8];
        for (chunk, (products, norms)) in row_chunks.iter().zip(norm_chunks).enumerate() {
            for lane in 0..8 {
                let distance = norms[lane] - 2.0 * products[lane];
                let better = distance < best[lane];
                best[lane] = if better { distance } else { best[lane] };
                index[lane] = if better {
                    (chunk * 8 + lane) as u32
                } else {
                    index[lane]
                };
            }
        }
        let mut winner = (f32::INFINITY, 0u32);
        for (&distance, &centre) in best.iter().zip(&index) {
            if distance < winner.0 || (distance == winner.0 && centre < winner.1) {
                winner = (distance, centre);
            }
        }
        let first_tail = row_chunks.len() * 8;
        for (offset, (&product, &norm)) in row_tail.iter().zip(norm_tail).enumerate() {
            let distance = norm - 2.0 * product;
            if distance < winner.0 {
                winner = (distance, (first_tail + offset) as u32);
            }
        }
        nearest.push(winner.1);
    }
}

/// The index of the centroid nearest to `point` (squared L2). Compiled for AVX2 with FMA and
/// for AVX besides the baseline, chosen at run time: training and encoding spend their time here.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
pub fn nearest(centroids: &[f32], dimension: usize, point: &[f32]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (index, centroid) in centroids.chunks_exact(dimension).enumerate() {
        let distance = l2_squared_simd(point, centroid);
        if distance < best.0 {
            best = (distance, index);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::l2_squared;

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
