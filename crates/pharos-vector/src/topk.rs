//! [`TopK`]: the best `k` of a stream of scored candidates, kept in a bounded heap whose root is
//! the worst kept candidate, so that most candidates are refused with one comparison.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate; `key` is larger for better candidates.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: f32,
    id: u64,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so the heap's root is the worst: lower key, then (for equal keys) higher id.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The best `k` candidates seen.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The key a candidate must beat to be kept, once `k` are kept.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap
                .peek()
                .map_or(f32::NEG_INFINITY, |worst| worst.key)
        }
    }

    /// Offers a candidate; `key` is larger for better.
    #[inline]
    pub fn push(&mut self, key: f32, id: u64) {
        if self.k == 0 {
            return;
        }
        let entry = Entry { key, id };
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && entry < *worst
        {
            *worst = entry;
        }
    }

    /// The kept candidates, best first (ties by smaller id), as (key, id).
    pub fn into_sorted(self) -> Vec<(f32, u64)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|entry| (entry.key, entry.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_best_first() {
        let mut top = TopK::new(3);
        for (key, id) in [(0.5, 1), (0.9, 2), (0.1, 3), (0.7, 4), (0.9, 5), (-1.0, 6)] {
            top.push(key, id);
        }
        assert_eq!(top.threshold(), 0.7);
        assert_eq!(top.into_sorted(), vec![(0.9, 2), (0.9, 5), (0.7, 4)]);
        let mut none = TopK::new(0);
        none.push(1.0, 1);
        assert!(none.into_sorted().is_empty());
    }
}
