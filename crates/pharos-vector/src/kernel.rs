//! Distance kernels over `f32` slices of equal length. They keep eight independent partial sums,
//! so the compiler vectorizes them (AVX2 or SSE on x86-64, NEON on ARM) without `unsafe` or
//! target-specific code.

const LANES: usize = 8;

/// The inner product of `a` and `b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_of_terms(a, b, |x, y| x * y)
}

/// The squared Euclidean distance between `a` and `b`.
#[inline]
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
        let unit = normalized(&[3.0, 4.0]).expect("non-zero");
        assert_eq!(unit, vec![0.6, 0.8]);
        assert_eq!(normalized(&[0.0, 0.0]), None);
    }
}
