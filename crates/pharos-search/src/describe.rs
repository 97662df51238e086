//! What DescribeIndex says beyond the numbers: a latency grade from A to F and
//! recommendations in plain words, from the index's kind, size, parameters and latency.

use crate::definition::KindDefinition;
use crate::live_index::{IndexCopy, LiveIndex};

/// p95 upper bounds in microseconds of grades A to D; F above. A is the documents' target
/// (under 0.2 ms per search).
const GRADES: [(f64, &str); 4] = [
    (200.0, "A"),
    (1_000.0, "B"),
    (5_000.0, "C"),
    (25_000.0, "D"),
];
/// Vectors above which exact search gets slow.
const FLAT_LIMIT: usize = 50_000;
/// Vectors below which an IVF index is not worth it.
const IVF_MINIMUM: usize = 10_000;
/// nprobe above which an IVF search costs nearly a flat scan.
const COSTLY_NPROBE: u32 = 64;

/// The grade of a p95 latency, "-" before any search.
pub fn grade(searches: u64, p95_us: f64) -> &'static str {
    if searches == 0 {
        return "-";
    }
    GRADES
        .iter()
        .find(|(bound, _)| p95_us < *bound)
        .map_or("F", |(_, grade)| grade)
}

pub fn recommendations(live: &LiveIndex, copy: &IndexCopy, p95_us: f64) -> Vec<String> {
    let count = copy.engine.len();
    let dimension = live.definition.dimension;
    let mut advice = Vec::new();
    match live.definition.kind {
        KindDefinition::Flat if count > FLAT_LIMIT => advice.push(format!(
            "{count} vectors in a FLAT index: every search reads all of them; an IVF_PQ or HNSW index answers much faster at this size"
        )),
        KindDefinition::IvfPq { nlist, m, .. } => {
            if count < IVF_MINIMUM {
                advice.push(format!(
                    "only {count} vectors: a FLAT index answers exactly and about as fast below {IVF_MINIMUM}"
                ));
            }
            if !copy.engine.is_trained() {
                let needed = copy.engine.min_training_vectors().unwrap_or(0);
                advice.push(format!(
                    "not trained yet, so searched exactly: it trains by itself at {needed} vectors (holds {count}), or call Train"
                ));
            } else if count < nlist as usize * 39 {
                advice.push(format!(
                    "nlist {nlist} is large for {count} vectors: lists of fewer than 39 vectors train poorly; recreate with nlist near sqrt(count) = {}",
                    (count as f64).sqrt().round()
                ));
            }
            if live.largest_nprobe() > COSTLY_NPROBE {
                advice.push(format!(
                    "nprobe up to {} was asked: above {COSTLY_NPROBE} a search reads so many lists that it costs nearly a flat scan; raise rerank or recreate with more lists instead",
                    live.largest_nprobe()
                ));
            }
            if !dimension.is_multiple_of(m) {
                advice.push(format!("m {m} must divide the dimension {dimension}"));
            }
        }
        _ => {}
    }
    if p95_us >= GRADES[1].0 {
        advice.push(format!(
            "p95 latency {:.2} ms is above 1 ms: check the recommendations above, batch queries with BatchSearch, or add replicas",
            p95_us / 1000.0
        ));
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_follow_the_thresholds() {
        assert_eq!(grade(0, 0.0), "-");
        assert_eq!(grade(5, 51.0), "A");
        assert_eq!(grade(5, 200.0), "B");
        assert_eq!(grade(5, 4_000.0), "C");
        assert_eq!(grade(5, 24_999.0), "D");
        assert_eq!(grade(5, 90_000.0), "F");
    }
}
