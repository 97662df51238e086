//! Conversions between the search service's domain types (engine hits, live indexes, training
//! stages) and its protobuf messages.

use std::collections::HashMap;

use pharos_proto::search::v1 as pb;
use pharos_vector::{Hit, TrainStage};

use crate::live_index::{IndexCopy, LiveIndex, Payload};

/// Engine hits with their payloads, as the API answers them.
pub fn to_hits(copy: &IndexCopy, hits: Vec<Hit>) -> Vec<pb::Hit> {
    copy.with_payloads(hits)
        .into_iter()
        .map(|(hit, payload)| pb::Hit {
            id: hit.id,
            score: hit.score,
            payload: payload.map_or_else(HashMap::new, |payload: Payload| {
                payload
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        })
        .collect()
}

/// What `ListIndexes` and `CreateIndex` say of an index.
pub fn info(live: &LiveIndex, copy: &IndexCopy) -> pb::IndexInfo {
    live.definition
        .to_info(&live.name, copy.engine.len(), copy.engine.is_trained())
}

/// A training stage as a progress step.
pub fn progress(stage: TrainStage) -> pb::TrainProgress {
    let (stage, done, total) = match stage {
        TrainStage::CoarseQuantizer { vectors } => {
            ("coarse quantizer (k-means of the lists)", 0, vectors)
        }
        TrainStage::Codebook { done, total } => ("product quantizer codebooks", done, total),
        TrainStage::Encoding { vectors } => ("encoding every vector", 0, vectors),
    };
    pb::TrainProgress {
        stage: stage.to_owned(),
        done: done as u64,
        total: total as u64,
        finished: false,
    }
}

/// The last step of a training or rebuild.
pub fn finished(stage: &str) -> pb::TrainProgress {
    pb::TrainProgress {
        stage: stage.to_owned(),
        done: 1,
        total: 1,
        finished: true,
    }
}
