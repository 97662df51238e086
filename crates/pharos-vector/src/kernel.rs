//! Distance kernels over `f32` slices of equal length. They keep eight independent partial sums,
//! so the compiler vectorizes them (AVX2 or SSE on x86-64, NEON on ARM) without `unsafe` or
//! target-specific code. They are always inlined, so that the scans calling them, compiled for
//! several instruction sets with `multiversion`, vectorize them for the set chosen at run time.

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

/// The sum of `term(a[i], b[i])`, in `LANES` independent partial sums that vectorize.
#[inline(always)]
fn sum_of_terms(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let length = a.len().min(b.len());
    let (a, b) = (&a[..length], &b[..length]);
    let mut sums = [0.0f32; LANES];
    let chunks = length / LANES;
    for chunk in 0..chunks {
        let (x, y) = (&a[chunk * LANES..][..LANES], &b[chunk * LANES..][..LANES]);
        for lane in 0..LANES {
            sums[lane] += term(x[lane], y[lane]);
        }
    }
    let mut total: f32 = sums.iter().sum();
    for index in chunks * LANES..length {
        total += term(a[index], b[index]);
    }
    total
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
        *total = partial.iter().sum();
        for index in chunks * LANES..length {
            *total += term(query[index], vector[index]);
        }
    }
    totals
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
        for length in [1, 3, 7, 8, 9, 16, 52, 128, 131] {
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
