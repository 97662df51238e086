//! k-means (Lloyd's algorithm) for the coarse quantizer of IVF and the codebooks of product
//! quantization: centroids start with k-means++ (each next one a point drawn with probability
//! proportional to its squared distance from those chosen), empty clusters restart from a random
//! point, and training uses a bounded sample so its cost does not grow with the index.

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use crate::kernel::l2_squared;

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
    // k-means++: spread the starting centroids over the data.
    let mut centroids = Vec::with_capacity(k * dimension);
    let first = training[random.random_range(0..training.len())];
    centroids.extend_from_slice(row(first));
    let mut closest: Vec<f32> = training
        .iter()
        .map(|&point| l2_squared(row(point), row(first)))
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
        for (slot, &point) in training.iter().enumerate() {
            closest[slot] = closest[slot].min(l2_squared(row(point), centroid));
        }
    }
    let mut assignment = vec![0usize; training.len()];
    for _ in 0..iterations {
        for (slot, &point) in training.iter().enumerate() {
            assignment[slot] = nearest(&centroids, dimension, row(point));
        }
        let mut sums = vec![0.0f64; k * dimension];
        let mut sizes = vec![0usize; k];
        for (slot, &point) in training.iter().enumerate() {
            let cluster = assignment[slot];
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

/// The index of the centroid nearest to `point` (squared L2).
pub fn nearest(centroids: &[f32], dimension: usize, point: &[f32]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (index, centroid) in centroids.chunks_exact(dimension).enumerate() {
        let distance = l2_squared(point, centroid);
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
