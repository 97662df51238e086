//! The search service on the shared [`pharos_test_support::TestServer`], reached through a real
//! tonic client; plus clustered test data and exact ground truth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pharos_proto::search::v1 as pb;
use pharos_proto::search::v1::search_service_client::SearchServiceClient;
use pharos_runtime::ServerSettings;
use pharos_search::{SearchModule, SearchService, SearchSettings};
use pharos_store::Store;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

pub type Client = SearchServiceClient<Channel>;

/// A real server with the search service it started (through its module, as
/// `pharos serve --target search` starts it); see `pharos_test_support`.
pub type TestServer = pharos_test_support::TestServer<Arc<SearchService>>;

/// The largest gRPC message the servers and clients of these tests take.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A server with the default settings: snapshots in its own temporary data directory.
pub async fn start_server(store: Store) -> TestServer {
    start_server_with(store, SearchSettings::default()).await
}

/// A server with these settings. Stopping it (`stop`) writes the last snapshot when snapshots
/// are on, as `pharos serve` does.
pub async fn start_server_with(store: Store, settings: SearchSettings) -> TestServer {
    let module = SearchModule::new(settings);
    let mut server = ServerSettings::default();
    server.limits.max_message_bytes = MAX_MESSAGE_BYTES;
    let started = pharos_test_support::TestServer::builder(store)
        .server(server)
        .module(module.clone())
        .start()
        .await;
    started.with_service(
        module
            .service()
            .expect("the search module started its service"),
    )
}

/// A real client of a [`TestServer`].
pub trait Clients {
    async fn client(&self) -> Client;
}

impl Clients for TestServer {
    async fn client(&self) -> Client {
        SearchServiceClient::connect(self.endpoint())
            .await
            .expect("client connects")
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

pub fn create(
    name: &str,
    dimension: u32,
    metric: pb::Metric,
    kind: pb::IndexKind,
) -> pb::CreateIndexRequest {
    pb::CreateIndexRequest {
        name: name.to_owned(),
        dimension,
        metric: metric.into(),
        kind: kind.into(),
        params: None,
    }
}

pub fn ivf_pq(
    name: &str,
    dimension: u32,
    metric: pb::Metric,
    nlist: u32,
    m: u32,
) -> pb::CreateIndexRequest {
    pb::CreateIndexRequest {
        params: Some(pb::create_index_request::Params::IvfPq(pb::IvfPqParams {
            nlist,
            m,
            nbits: 8,
        })),
        ..create(name, dimension, metric, pb::IndexKind::IvfPq)
    }
}

/// `count` points around 40 fixed random centres: the clustered data real embeddings look like,
/// queries drawn from the same distribution as the vectors.
pub fn clustered(count: usize, dimension: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut centres_random = SmallRng::seed_from_u64(1_000 + dimension as u64);
    let centres: Vec<Vec<f32>> = (0..40)
        .map(|_| {
            (0..dimension)
                .map(|_| centres_random.random_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let mut random = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let centre = &centres[random.random_range(0..centres.len())];
            centre
                .iter()
                .map(|value| value + random.random_range(-0.15..0.15))
                .collect()
        })
        .collect()
}

pub fn vector(id: u64, values: &[f32], payload: &[(&str, &str)]) -> pb::Vector {
    pb::Vector {
        id,
        values: values.to_vec(),
        payload: payload
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    }
}

/// Upserts `base` as ids 0.. in requests of 1,000.
pub async fn upsert_all(client: &mut Client, index: &str, base: &[Vec<f32>]) {
    for (block, chunk) in base.chunks(1000).enumerate() {
        let vectors = chunk
            .iter()
            .enumerate()
            .map(|(offset, values)| vector((block * 1000 + offset) as u64, values, &[]))
            .collect();
        client
            .upsert(pb::UpsertRequest {
                index: index.to_owned(),
                vectors,
            })
            .await
            .expect("upsert");
    }
}

/// The exact best `k` ids of `query` among `base` (ids 0..) accepted by `keep`.
pub fn exact(
    metric: pb::Metric,
    base: &[Vec<f32>],
    query: &[f32],
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let norm = |a: &[f32]| dot(a, a).sqrt();
    let mut scored: Vec<(f32, u64)> = base
        .iter()
        .enumerate()
        .filter(|(id, _)| keep(*id as u64))
        .map(|(id, v)| {
            let key = match metric {
                pb::Metric::L2 => -v
                    .iter()
                    .zip(query)
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f32>(),
                pb::Metric::Cosine => dot(v, query) / (norm(v) * norm(query)),
                _ => dot(v, query),
            };
            (key, id as u64)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

pub fn search(index: &str, query: &[f32], k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        index: index.to_owned(),
        vector: query.to_vec(),
        k,
        ..pb::SearchRequest::default()
    }
}

pub fn ids(hits: &[pb::Hit]) -> Vec<u64> {
    hits.iter().map(|hit| hit.id).collect()
}

/// Waits until the training of `index` that an upsert started has finished (60 s at most, so
/// that a stuck training fails the test instead of hanging it), and checks it left the index
/// trained.
pub async fn until_trained(server: &TestServer, index: &str) {
    let trained = tokio::time::timeout(
        Duration::from_secs(60),
        server.service.training_finished(index),
    )
    .await
    .expect("training ends within 60 s")
    .expect("the index exists");
    assert!(trained, "{index} is trained once its training ended");
}

/// [`search`] with the approximate kinds tuned for recall: nprobe 8, rerank 10, ef_search 64.
pub fn tuned_search(index: &str, query: &[f32], k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        nprobe: 8,
        rerank: 10,
        ef_search: 64,
        ..search(index, query, k)
    }
}
