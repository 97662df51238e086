//! [`IndexDefinition`]: what an index is (dimension, metric, kind and build parameters), read
//! from a CreateIndex request with every default filled in and every rule checked, stored as
//! JSON, and turned into the engine's index.

use pharos_proto::search::v1 as pb;
use pharos_runtime::error::FieldViolation;
use pharos_vector::{
    HnswParams, IndexKind, IvfPqParams, MAX_DIMENSION, Metric, VectorError, VectorIndex,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};

/// The longest index name.
pub const MAX_NAME_BYTES: usize = 128;
const DEFAULT_NLIST: u32 = 256;
const DEFAULT_HNSW_M: u32 = 16;
const DEFAULT_EF_CONSTRUCTION: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    InnerProduct,
    L2,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KindDefinition {
    Flat,
    IvfPq { nlist: u32, m: u32, nbits: u32 },
    Hnsw { m: u32, ef_construction: u32 },
}

impl KindDefinition {
    /// The kind's name in metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            KindDefinition::Flat => "flat",
            KindDefinition::IvfPq { .. } => "ivf_pq",
            KindDefinition::Hnsw { .. } => "hnsw",
        }
    }
}

/// An index's definition, as stored (JSON) and compared between replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDefinition {
    pub dimension: u32,
    pub metric: MetricName,
    pub kind: KindDefinition,
}

impl IndexDefinition {
    /// The definition a CreateIndex request asks for, defaults filled in.
    pub fn from_request(request: &pb::CreateIndexRequest) -> Result<(String, IndexDefinition)> {
        let mut violations = Vec::new();
        if let Err(reason) = check_name(&request.name) {
            violations.push(FieldViolation::new("name", reason));
        }
        let dimension = request.dimension;
        if dimension == 0 || dimension as usize > MAX_DIMENSION {
            violations.push(FieldViolation::new(
                "dimension",
                format!("must be 1..={MAX_DIMENSION}, not {dimension}"),
            ));
        }
        let metric = match pb::Metric::try_from(request.metric) {
            Ok(pb::Metric::InnerProduct) => Some(MetricName::InnerProduct),
            Ok(pb::Metric::L2) => Some(MetricName::L2),
            Ok(pb::Metric::Cosine) => Some(MetricName::Cosine),
            _ => {
                violations.push(FieldViolation::new(
                    "metric",
                    "must be METRIC_INNER_PRODUCT, METRIC_L2 or METRIC_COSINE",
                ));
                None
            }
        };
        let kind = match (pb::IndexKind::try_from(request.kind), &request.params) {
            (Ok(pb::IndexKind::Flat), None) => Some(KindDefinition::Flat),
            (Ok(pb::IndexKind::Flat), Some(_)) => {
                violations.push(FieldViolation::new(
                    "params",
                    "a FLAT index takes no parameters",
                ));
                None
            }
            (Ok(pb::IndexKind::IvfPq), params) => {
                let given = match params {
                    Some(pb::create_index_request::Params::IvfPq(given)) => *given,
                    None => pb::IvfPqParams::default(),
                    Some(pb::create_index_request::Params::Hnsw(_)) => {
                        violations.push(FieldViolation::new(
                            "params",
                            "an IVF_PQ index takes ivf_pq parameters, not hnsw",
                        ));
                        pb::IvfPqParams::default()
                    }
                };
                ivf_pq_kind(dimension, given, &mut violations)
            }
            (Ok(pb::IndexKind::Hnsw), params) => {
                let given = match params {
                    Some(pb::create_index_request::Params::Hnsw(given)) => *given,
                    None => pb::HnswParams::default(),
                    Some(pb::create_index_request::Params::IvfPq(_)) => {
                        violations.push(FieldViolation::new(
                            "params",
                            "an HNSW index takes hnsw parameters, not ivf_pq",
                        ));
                        pb::HnswParams::default()
                    }
                };
                hnsw_kind(given, &mut violations)
            }
            _ => {
                violations.push(FieldViolation::new(
                    "kind",
                    "must be INDEX_KIND_FLAT, INDEX_KIND_IVF_PQ or INDEX_KIND_HNSW",
                ));
                None
            }
        };
        match (metric, kind) {
            (Some(metric), Some(kind)) if violations.is_empty() => Ok((
                request.name.clone(),
                IndexDefinition {
                    dimension,
                    metric,
                    kind,
                },
            )),
            _ => Err(SearchError::InvalidArgument(violations)),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<IndexDefinition> {
        serde_json::from_str(text).map_err(|error| {
            SearchError::internal_from("a stored index definition does not parse", error)
        })
    }

    pub fn dimension(&self) -> usize {
        self.dimension as usize
    }

    pub fn metric(&self) -> Metric {
        match self.metric {
            MetricName::InnerProduct => Metric::InnerProduct,
            MetricName::L2 => Metric::L2,
            MetricName::Cosine => Metric::Cosine,
        }
    }

    /// An empty engine index of this definition.
    pub fn new_index(&self) -> Result<VectorIndex> {
        VectorIndex::new(self.dimension(), self.metric(), self.index_kind()).map_err(
            |error: VectorError| {
                SearchError::internal_from("the vector engine refused the index", error)
            },
        )
    }

    /// The engine's kind and build parameters.
    pub fn index_kind(&self) -> IndexKind {
        match self.kind {
            KindDefinition::Flat => IndexKind::Flat,
            KindDefinition::IvfPq { nlist, m, .. } => IndexKind::IvfPq(IvfPqParams {
                nlist: nlist as usize,
                m: m as usize,
            }),
            KindDefinition::Hnsw { m, ef_construction } => IndexKind::Hnsw(HnswParams {
                m: m as usize,
                ef_construction: ef_construction as usize,
            }),
        }
    }

    /// The definition as the API shows it.
    pub fn to_info(&self, name: &str, count: usize, trained: bool) -> pb::IndexInfo {
        let metric = match self.metric {
            MetricName::InnerProduct => pb::Metric::InnerProduct,
            MetricName::L2 => pb::Metric::L2,
            MetricName::Cosine => pb::Metric::Cosine,
        };
        let (kind, params) = match self.kind {
            KindDefinition::Flat => (pb::IndexKind::Flat, None),
            KindDefinition::IvfPq { nlist, m, nbits } => (
                pb::IndexKind::IvfPq,
                Some(pb::index_info::Params::IvfPq(pb::IvfPqParams {
                    nlist,
                    m,
                    nbits,
                })),
            ),
            KindDefinition::Hnsw { m, ef_construction } => (
                pb::IndexKind::Hnsw,
                Some(pb::index_info::Params::Hnsw(pb::HnswParams {
                    m,
                    ef_construction,
                })),
            ),
        };
        pb::IndexInfo {
            name: name.to_owned(),
            dimension: self.dimension,
            metric: metric.into(),
            kind: kind.into(),
            params,
            count: count as u64,
            trained,
        }
    }
}

/// The IVF_PQ parameters asked for, defaults filled in, or the violations.
fn ivf_pq_kind(
    dimension: u32,
    given: pb::IvfPqParams,
    violations: &mut Vec<FieldViolation>,
) -> Option<KindDefinition> {
    let nlist = if given.nlist == 0 {
        DEFAULT_NLIST
    } else {
        given.nlist
    };
    if nlist > 65_536 {
        violations.push(FieldViolation::new(
            "params.ivf_pq.nlist",
            format!("must be at most 65536, not {nlist}"),
        ));
    }
    let m = if given.m == 0 {
        [64, 32, 16, 8, 4, 2, 1]
            .into_iter()
            .find(|m| dimension >= *m && dimension.is_multiple_of(*m))
            .unwrap_or(1)
    } else {
        given.m
    };
    if dimension > 0 && !dimension.is_multiple_of(m) {
        violations.push(FieldViolation::new(
            "params.ivf_pq.m",
            format!("must divide the dimension {dimension}; {m} does not"),
        ));
    }
    let nbits = if given.nbits == 0 { 8 } else { given.nbits };
    if nbits != 8 {
        violations.push(FieldViolation::new(
            "params.ivf_pq.nbits",
            format!("only 8-bit codes are supported, not {nbits}"),
        ));
    }
    Some(KindDefinition::IvfPq { nlist, m, nbits })
}

/// The HNSW parameters asked for, defaults filled in, or the violations.
fn hnsw_kind(
    given: pb::HnswParams,
    violations: &mut Vec<FieldViolation>,
) -> Option<KindDefinition> {
    let m = if given.m == 0 {
        DEFAULT_HNSW_M
    } else {
        given.m
    };
    if !(2..=128).contains(&m) {
        violations.push(FieldViolation::new(
            "params.hnsw.m",
            format!("must be 2..=128, not {m}"),
        ));
    }
    let ef_construction = if given.ef_construction == 0 {
        DEFAULT_EF_CONSTRUCTION
    } else {
        given.ef_construction
    };
    if ef_construction > 4096 {
        violations.push(FieldViolation::new(
            "params.hnsw.ef_construction",
            format!("must be 1..=4096, not {ef_construction}"),
        ));
    }
    Some(KindDefinition::Hnsw { m, ef_construction })
}

/// Index names: 1..=128 bytes of `[a-zA-Z0-9_.-]`.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "must be 1..={MAX_NAME_BYTES} bytes, not {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "may hold only letters, digits, '_', '.' and '-', not {bad:?}"
        ));
    }
    Ok(())
}
