//! [`TopK`]: the best `k` of a stream of scored candidates, kept in a bounded heap whose root is
//! the worst kept candidate, so that most candidates are refused with one comparison.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate; `key` is larger for better candidates. `extra` rides along, not compared.
#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    key: f32,
    id: u64,
    extra: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so the heap's root is the worst: lower key, then (for equal keys) higher id.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The best `k` candidates seen, each with an `extra` value of its own (nothing by default).
#[derive(Debug, Clone)]
pub struct TopK<T = ()> {
    k: usize,
    heap: BinaryHeap<Entry<T>>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self::with_extras(k)
    }

    /// Offers a candidate; `key` is larger for better.
    #[inline]
    pub fn push(&mut self, key: f32, id: u64) {
        self.push_with(key, id, ());
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

impl<T: Copy> TopK<T> {
    pub fn with_extras(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Candidates kept so far (at most k).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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

    /// Offers a candidate carrying `extra`; `key` is larger for better.
    #[inline]
    pub fn push_with(&mut self, key: f32, id: u64, extra: T) {
        if self.k == 0 {
            return;
        }
        let entry = Entry { key, id, extra };
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && entry < *worst
        {
            *worst = entry;
        }
    }

    /// The kept candidates, best first (ties by smaller id), as (key, id, extra).
    pub fn into_sorted_with(self) -> Vec<(f32, u64, T)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|entry| (entry.key, entry.id, entry.extra))
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
        let mut carried = TopK::with_extras(2);
        for (key, id, extra) in [(0.5, 1, 'a'), (0.9, 2, 'b'), (0.7, 3, 'c')] {
            carried.push_with(key, id, extra);
        }
        assert_eq!(
            carried.into_sorted_with(),
            vec![(0.9, 2, 'b'), (0.7, 3, 'c')]
        );
        let mut none = TopK::new(0);
        none.push(1.0, 1);
        assert!(none.into_sorted().is_empty());
    }
}
