//! `pharos-bench search`: vector search beside FAISS (faiss-cpu) and hnswlib, on the same data
//! and thread count in the same run. The harness generates clustered data, writes it to files,
//! computes the exact neighbours, and measures the `pharos-vector` engine in this process and
//! FAISS and hnswlib in `python/search_reference.py` (on the same files) in turns of a quarter
//! second each, then `pharos serve --target search` over gRPC for the documents' case, and
//! prints the ratios.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pharos_proto::search::v1 as pb;
use pharos_proto::search::v1::search_service_client::SearchServiceClient;
use pharos_vector::{
    FlatIndex, Hit, HnswIndex, HnswParams, IndexKind, IvfPqIndex, IvfPqParams, IvfPqSearch, Metric,
    VectorError, VectorIndex,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use crate::Common;
use crate::process::{channel, start_pharos};
use crate::search_reference::Reference;
use crate::stats::{Latencies, Table, Value};

/// ef_search settings of HNSW on the documents' case; the fastest reaching the recall floor
/// is shown, as for the large set.
const DOC_HNSW_EFS: [usize; 3] = [16, 32, 64];
/// The recall@10 an HNSW setting must reach to be shown.
const HNSW_RECALL_FLOOR: f64 = 0.95;
/// The recall@10 an IVF-PQ setting must reach to be shown.
const IVF_RECALL_FLOOR: f64 = 0.9;
const K: usize = 10;
const DOC_COUNT: usize = 6_574;
const DOC_DIMENSION: usize = 52;
const BIG_DIMENSION: usize = 128;
const IVF_NLIST: usize = 1024;
const IVF_M: usize = 32;
const NPROBES: [usize; 4] = [8, 16, 32, 64];
const RERANKS: [usize; 3] = [2, 4, 8];
const HNSW_M: usize = 16;
const HNSW_EF_CONSTRUCTION: usize = 100;
const EF_SEARCHES: [usize; 5] = [16, 32, 64, 128, 256];

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// The Python interpreter that has faiss-cpu, hnswlib and numpy.
    #[arg(long)]
    python: PathBuf,
    /// The reference script (`crates/pharos-bench/python/search_reference.py`).
    #[arg(long)]
    reference_script: PathBuf,
    /// Threads for both systems.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Row-major vectors of one dimension.
struct Set {
    dimension: usize,
    values: Vec<f32>,
}

impl Set {
    fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks_exact(self.dimension)
    }

    fn len(&self) -> usize {
        self.values.len() / self.dimension
    }

    fn to_vecs(&self) -> Vec<Vec<f32>> {
        self.rows().map(<[f32]>::to_vec).collect()
    }

    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let bytes: Vec<u8> = self.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// `count` points around `centres` random centres in [-1, 1]^d, each value within ±`spread`.
fn clustered(count: usize, dimension: usize, centres: usize, spread: f32, seed: u64) -> Set {
    let mut random = SmallRng::seed_from_u64(seed);
    let mut centre_random = SmallRng::seed_from_u64(7);
    let centres: Vec<Vec<f32>> = (0..centres)
        .map(|_| {
            (0..dimension)
                .map(|_| centre_random.random_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let mut values = Vec::with_capacity(count * dimension);
    for _ in 0..count {
        let centre = &centres[random.random_range(0..centres.len())];
        values.extend(
            centre
                .iter()
                .map(|c| c + random.random_range(-spread..spread)),
        );
    }
    Set { dimension, values }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let quick = args.common.quick;
    let threads = args.threads.max(1);
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let big_count = if quick { 50_000 } else { 200_000 };
    let query_count = if quick { 200 } else { 1_000 };
    eprintln!(
        "generating {DOC_COUNT} x {DOC_DIMENSION} and {big_count} x {BIG_DIMENSION} clustered vectors"
    );
    let doc_base = clustered(DOC_COUNT, DOC_DIMENSION, 50, 0.5, 1);
    let doc_queries = clustered(query_count, DOC_DIMENSION, 50, 0.5, 2);
    let big_base = clustered(big_count, BIG_DIMENSION, 256, 0.6, 3);
    let big_queries = clustered(query_count, BIG_DIMENSION, 256, 0.6, 4);
    doc_base.write(&dir.join("doc_base.f32"))?;
    doc_queries.write(&dir.join("doc_queries.f32"))?;
    big_base.write(&dir.join("big_base.f32"))?;
    big_queries.write(&dir.join("big_queries.f32"))?;

    eprintln!("exact neighbours of the big queries (L2)");
    let mut exact = FlatIndex::new(BIG_DIMENSION, Metric::L2)?;
    for (id, row) in big_base.rows().enumerate() {
        exact.upsert(id as u64, row)?;
    }
    let queries = big_queries.to_vecs();
    let truth: Vec<Vec<u64>> = queries
        .chunks(64)
        .flat_map(|part| {
            exact
                .search_batch(part, K, None)
                .unwrap_or_default()
                .into_iter()
                .map(|hits| hits.into_iter().map(|hit| hit.id).collect::<Vec<_>>())
        })
        .collect();
    drop(exact);
    let truth_bytes: Vec<u8> = truth
        .iter()
        .flatten()
        .flat_map(|id| id.to_le_bytes())
        .collect();
    std::fs::write(dir.join("big_truth_l2.u64"), truth_bytes)?;
    let (nprobes, reranks, efs): (&[usize], &[usize], &[usize]) = if quick {
        (&NPROBES[1..3], &RERANKS[1..2], &EF_SEARCHES[1..4])
    } else {
        (&NPROBES, &RERANKS, &EF_SEARCHES)
    };
    let nlist = if quick { 256 } else { IVF_NLIST };
    let meta = serde_json::json!({
        "doc": {"n": DOC_COUNT, "d": DOC_DIMENSION, "queries": query_count},
        "big": {"n": big_count, "d": BIG_DIMENSION, "queries": query_count},
        "ivf": {"nlist": nlist, "m": IVF_M, "nprobe": nprobes, "rerank": reranks},
        "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": efs},
    });
    std::fs::write(dir.join("meta.json"), meta.to_string())?;

    let timing = if quick {
        Timing {
            slice: Duration::from_millis(150),
            rounds: 2,
        }
    } else {
        Timing {
            slice: Duration::from_millis(250),
            rounds: 10,
        }
    };
    let mut table = Table::new(
        &format!("Vector search, {threads} thread(s), k = {K}"),
        "reference",
    );
    eprintln!("reference: starting FAISS and hnswlib ({threads} thread(s))");
    let mut reference = Reference::start(&args.python, &args.reference_script, dir, threads)?;
    let versions = reference.versions()?;

    eprintln!("the documents' case in process, flat inner product, pharos and FAISS in turns");
    let mut doc = FlatIndex::new(DOC_DIMENSION, Metric::InnerProduct)?;
    for (id, row) in doc_base.rows().enumerate() {
        doc.upsert(id as u64, row)?;
    }
    reference.build("doc_flat")?;
    let doc_query_vecs = doc_queries.to_vecs();
    for query in doc_query_vecs.iter().take(100) {
        doc.search(query, K, None)?;
    }
    reference.latencies("doc_flat", &mut Latencies::new())?; // warm
    let mut doc_latency = Latencies::new();
    let mut reference_doc = Latencies::new();
    for _ in 0..timing.rounds {
        for query in &doc_query_vecs {
            let started = Instant::now();
            doc.search(query, K, None)?;
            doc_latency.record(started.elapsed());
        }
        reference.latencies("doc_flat", &mut reference_doc)?;
    }
    reference.drop_index("doc_flat")?;

    eprintln!("pharos: the documents' case with HNSW in process");
    let mut doc_graph = HnswIndex::new(
        DOC_DIMENSION,
        Metric::InnerProduct,
        HnswParams {
            m: HNSW_M,
            ef_construction: HNSW_EF_CONSTRUCTION,
        },
    )?;
    for (id, row) in doc_base.rows().enumerate() {
        doc_graph.upsert(id as u64, row)?;
    }
    let doc_truth: Vec<Vec<u64>> = doc_query_vecs
        .iter()
        .map(|query| {
            Ok(doc
                .search(query, K, None)?
                .iter()
                .map(|hit| hit.id)
                .collect())
        })
        .collect::<anyhow::Result<_>>()?;
    // (ef_search, latencies, recall) of the fastest setting reaching the floor, else of the
    // most accurate.
    let mut doc_hnsw: Option<(usize, Latencies, f64)> = None;
    for ef in DOC_HNSW_EFS {
        let mut latencies = Latencies::new();
        let mut found = Vec::with_capacity(doc_query_vecs.len());
        for query in &doc_query_vecs {
            let started = Instant::now();
            let hits = doc_graph.search(query, K, ef, None)?;
            latencies.record(started.elapsed());
            found.push(hits.iter().map(|hit| hit.id).collect::<Vec<_>>());
        }
        let reached = recall(&found, &doc_truth);
        eprintln!(
            "  pharos HNSW ef_search {ef}: recall@10 {reached:.3}, p50 {:?}",
            latencies.p50()
        );
        let better = match &doc_hnsw {
            None => true,
            Some((_, shown, shown_recall)) if *shown_recall >= HNSW_RECALL_FLOOR => {
                reached >= HNSW_RECALL_FLOOR && latencies.p50() < shown.p50()
            }
            Some((_, _, shown_recall)) => reached > *shown_recall,
        };
        if better {
            doc_hnsw = Some((ef, latencies, reached));
        }
    }
    let (doc_hnsw_ef, doc_hnsw_latency, doc_hnsw_recall) =
        doc_hnsw.context("no ef_search setting was measured")?;
    drop(doc_graph);

    eprintln!("flat inner product on {big_count} x {BIG_DIMENSION}");
    let mut flat = FlatIndex::new(BIG_DIMENSION, Metric::InnerProduct)?;
    for (id, row) in big_base.rows().enumerate() {
        flat.upsert(id as u64, row)?;
    }
    reference.build("flat")?;
    let mut flat_qps = Vec::new();
    for batch in [1usize, 32, 128, 1000] {
        eprintln!("  batch {batch}");
        let (rate, references) = in_turns(
            &mut reference,
            &timing,
            batch,
            &mut |slice| {
                qps(&queries, batch, slice, |part| {
                    if batch == 1 {
                        flat.search(&part[0], K, None).map(|_| ())
                    } else {
                        flat.search_batch(part, K, None).map(|_| ())
                    }
                })
            },
            &[("flat", &Json::Null)],
        )?;
        flat_qps.push((batch, rate, references[0]));
    }
    let flat_memory = flat.memory_bytes();
    drop(flat);
    reference.drop_index("flat")?;

    eprintln!("IVF-PQ (nlist {nlist}, m {IVF_M}): training pharos, then FAISS");
    let params = IvfPqParams { nlist, m: IVF_M };
    let mut ivf = IvfPqIndex::new(BIG_DIMENSION, Metric::L2, params)?;
    let started = Instant::now();
    for (id, row) in big_base.rows().enumerate() {
        ivf.upsert(id as u64, row)?;
    }
    ivf.train(42, &mut |stage| eprintln!("  {stage:?}"));
    let ivf_build = started.elapsed();
    let faiss_ivf_build = reference.build("ivf")?;
    let ivf_settings: Vec<IvfPqSearch> = nprobes
        .iter()
        .flat_map(|&nprobe| {
            reranks
                .iter()
                .map(move |&rerank| IvfPqSearch { nprobe, rerank })
        })
        .collect();
    let ivf_label = |at: usize| {
        let options = ivf_settings[at];
        format!("nprobe {} rerank {}", options.nprobe, options.rerank)
    };
    let settings: Vec<Setting> = ivf_settings
        .iter()
        .enumerate()
        .map(|(at, options)| Setting {
            label: ivf_label(at),
            reference: serde_json::json!({"nprobe": options.nprobe, "rerank": options.rerank}),
        })
        .collect();
    let ivf_compared = compare_at_recall(
        &mut reference,
        &timing,
        (&queries, &truth),
        (&settings, IVF_RECALL_FLOOR),
        &["ivf"],
        &|at, query| ivf.search(query, K, ivf_settings[at], None),
    )?;
    let ivf_memory = ivf.memory_bytes();
    drop(ivf);
    reference.drop_index("ivf")?;

    eprintln!(
        "HNSW (m {HNSW_M}, ef_construction {HNSW_EF_CONSTRUCTION}): building pharos, FAISS HNSWFlat, hnswlib"
    );
    let params = HnswParams {
        m: HNSW_M,
        ef_construction: HNSW_EF_CONSTRUCTION,
    };
    let mut graph = HnswIndex::new(BIG_DIMENSION, Metric::L2, params)?;
    let started = Instant::now();
    for (id, row) in big_base.rows().enumerate() {
        graph.upsert(id as u64, row)?;
    }
    let hnsw_build = started.elapsed();
    const HNSW_REFERENCES: [&str; 2] = ["faiss_hnsw", "hnswlib"];
    let mut reference_builds = Vec::new();
    for index in HNSW_REFERENCES {
        reference_builds.push(reference.build(index)?);
    }
    let settings: Vec<Setting> = efs
        .iter()
        .map(|ef| Setting {
            label: format!("ef_search {ef}"),
            reference: serde_json::json!({ "ef": ef }),
        })
        .collect();
    let hnsw_compared = compare_at_recall(
        &mut reference,
        &timing,
        (&queries, &truth),
        (&settings, HNSW_RECALL_FLOOR),
        &HNSW_REFERENCES,
        &|at, query| graph.search(query, K, efs[at], None),
    )?;
    for index in HNSW_REFERENCES {
        reference.drop_index(index)?;
    }
    drop(reference);
    let hnsw_memory = graph.memory_bytes();
    // What a restart costs with a snapshot: the graph read back instead of rebuilt.
    let graph = VectorIndex::Hnsw(graph);
    let started = Instant::now();
    let snapshot = graph.to_bytes();
    let hnsw_encode = started.elapsed();
    drop(graph);
    let started = Instant::now();
    let read = VectorIndex::from_bytes(
        &snapshot,
        BIG_DIMENSION,
        Metric::L2,
        IndexKind::Hnsw(params),
    )?;
    let hnsw_decode = started.elapsed();
    let snapshot_bytes = snapshot.len();
    drop((read, snapshot));

    eprintln!("pharos: the documents' case over gRPC (pharos serve --target search, SQLite)");
    let grpc_latency = grpc_documents_case(&args, dir, &doc_base, &doc_query_vecs).await?;

    table.percentiles(
        "documents' case, flat IP in process",
        &doc_latency,
        &reference_doc,
        ["<= 25 us", ""],
    );
    table.row(
        &format!(
            "documents' case, HNSW ef_search {doc_hnsw_ef} in process p50 (recall {doc_hnsw_recall:.3}; pharos only)"
        ),
        Value::Time(doc_hnsw_latency.p50()),
        Value::Missing,
        "< 10 us",
    );
    table.row(
        "documents' case over gRPC p50 (reference: FAISS in process)",
        Value::Time(grpc_latency.p50()),
        Value::Time(reference_doc.p50()),
        "",
    );
    table.row(
        "documents' case over gRPC p99",
        Value::Time(grpc_latency.p99()),
        Value::Missing,
        "< 0.5 ms",
    );
    for (batch, rate, reference_rate) in flat_qps {
        let aim = if batch == 32 || batch == 128 {
            ">= 5x"
        } else {
            ">= 1x"
        };
        table.row(
            &format!("flat IP QPS, batch {batch}"),
            Value::Rate(rate),
            Value::Rate(reference_rate),
            aim,
        );
    }
    table.row(
        "flat index memory",
        Value::Bytes(flat_memory as u64),
        Value::Missing,
        "",
    );
    let [faiss_ivf] = &ivf_compared.references[..] else {
        bail!(
            "IVF-PQ was compared with {} references",
            ivf_compared.references.len()
        );
    };
    table.row(
        &format!(
            "IVF-PQ QPS at recall >= {IVF_RECALL_FLOOR} (pharos {}: {:.3}; FAISS {}: {:.3})",
            ivf_label(ivf_compared.pharos.setting),
            ivf_compared.pharos.recall,
            ivf_label(faiss_ivf.setting),
            faiss_ivf.recall,
        ),
        Value::Rate(ivf_compared.pharos.rate),
        Value::Rate(faiss_ivf.rate),
        ">= 1x",
    );
    table.row(
        "IVF-PQ build (train + add)",
        Value::Time(ivf_build),
        Value::Time(faiss_ivf_build),
        "",
    );
    table.row(
        "IVF-PQ index memory (codes + kept vectors)",
        Value::Bytes(ivf_memory as u64),
        Value::Missing,
        "",
    );
    let pharos_hnsw = &hnsw_compared.pharos;
    for ((name, chosen), build) in ["FAISS HNSWFlat", "hnswlib"]
        .into_iter()
        .zip(&hnsw_compared.references)
        .zip(reference_builds)
    {
        table.row(
            &format!(
                "HNSW QPS at recall >= {HNSW_RECALL_FLOOR} vs {name} (pharos ef_search {}: {:.3}; {name} ef_search {}: {:.3})",
                efs[pharos_hnsw.setting], pharos_hnsw.recall, efs[chosen.setting], chosen.recall
            ),
            Value::Rate(pharos_hnsw.rate),
            Value::Rate(chosen.rate),
            ">= 1x",
        );
        table.row(
            &format!("HNSW build vs {name}"),
            Value::Time(hnsw_build),
            Value::Time(build),
            "",
        );
    }
    table.row(
        "HNSW index memory",
        Value::Bytes(hnsw_memory as u64),
        Value::Missing,
        "",
    );
    table.row(
        &format!(
            "HNSW snapshot of {} MiB: written in memory (pharos only)",
            snapshot_bytes >> 20
        ),
        Value::Time(hnsw_encode),
        Value::Missing,
        "",
    );
    table.row(
        "HNSW snapshot read back: a restart without rebuilding (pharos only)",
        Value::Time(hnsw_decode),
        Value::Missing,
        "",
    );
    table.print();
    println!(
        "\nratio = pharos / reference. Data: {DOC_COUNT} x {DOC_DIMENSION} (50 clusters) for the \
         documents' case; {big_count} x {BIG_DIMENSION} (256 clusters) with {query_count} queries \
         for the rest, L2 ground truth for recall. Both systems on {threads} thread(s), timed \
         around each call: pharos-vector in this process, FAISS {} and hnswlib {} through their \
         Python bindings (numpy arrays, no copies; the reference answers all queries of an \
         IVF-PQ or HNSW measurement in one call). The systems take turns: every QPS row is the \
         mean of {} slices of {} ms per system, alternating, so a drift in this machine's speed \
         reaches both alike; settings are swept with one slice each and the fastest reaching \
         the recall is shown. The documents' case alternates all {query_count} queries per \
         turn. IVF-PQ: nlist {nlist}, m {IVF_M}, 8-bit codes, exact re-ranking of rerank x k \
         candidates (FAISS IndexRefineFlat). gRPC: one tonic client on its own single-thread \
         runtime, sequential calls on loopback.",
        versions["faiss"].as_str().unwrap_or("?"),
        versions["hnswlib"].as_str().unwrap_or("?"),
        timing.rounds,
        timing.slice.as_millis(),
    );
    Ok(())
}

/// How long each system answers queries before the next takes its turn, and how many turns
/// each gets for a row of the table.
struct Timing {
    slice: Duration,
    rounds: usize,
}

impl Timing {
    /// One turn each: enough to choose a setting, not to report it.
    fn sweep(&self) -> Timing {
        Timing {
            slice: self.slice,
            rounds: 1,
        }
    }
}

/// Queries per second of Pharos (`pharos` measures one slice) and of each reference index at
/// its setting (`references`, in batches of `batch`), in `timing.rounds` rounds in which each
/// takes a slice in turn, so a drift in the machine's speed reaches all of them alike. Each
/// rate is the mean over the rounds.
fn in_turns(
    reference: &mut Reference,
    timing: &Timing,
    batch: usize,
    pharos: &mut dyn FnMut(Duration) -> anyhow::Result<f64>,
    references: &[(&str, &Json)],
) -> anyhow::Result<(f64, Vec<f64>)> {
    let mut pharos_total = 0.0;
    let mut totals = vec![0.0; references.len()];
    for _ in 0..timing.rounds {
        let rate = pharos(timing.slice)?;
        pharos_total += rate;
        let mut line = format!("    pharos {rate:.0} QPS");
        for ((index, setting), total) in references.iter().zip(&mut totals) {
            let theirs = reference.qps(index, setting, batch, timing.slice)?;
            *total += theirs;
            line += &format!(", {index} {theirs:.0} ({:.2}x)", rate / theirs);
        }
        if timing.rounds > 1 {
            eprintln!("{line}");
        }
    }
    let rounds = timing.rounds as f64;
    Ok((
        pharos_total / rounds,
        totals.into_iter().map(|total| total / rounds).collect(),
    ))
}

/// Pharos's approximate index answering a query at a position in the settings swept.
type Searcher<'a> = dyn Fn(usize, &[f32]) -> Result<Vec<Hit>, VectorError> + 'a;

/// One setting of an approximate index: how the harness shows it and how the reference gets it.
struct Setting {
    label: String,
    reference: Json,
}

/// The setting a system was measured at, with its recall@10 and queries per second.
struct Chosen {
    setting: usize,
    recall: f64,
    rate: f64,
}

/// Pharos and one or more reference indexes, each at its own fastest setting reaching the floor.
struct Compared {
    pharos: Chosen,
    references: Vec<Chosen>,
}

/// Compares Pharos's approximate index (`search` answers a query at a position in `settings`)
/// with the reference's `references` at a recall floor: every setting's recall@10 and one
/// slice of QPS each in turns, then each system's fastest setting reaching `floor` (else its
/// most accurate) measured again over `timing.rounds` turns. Queries go one per call to Pharos
/// and all at once to the reference.
fn compare_at_recall(
    reference: &mut Reference,
    timing: &Timing,
    (queries, truth): (&[Vec<f32>], &[Vec<u64>]),
    (settings, floor): (&[Setting], f64),
    references: &[&str],
    search: &Searcher<'_>,
) -> anyhow::Result<Compared> {
    let mut pharos_sweep = Vec::new();
    let mut reference_sweeps = vec![Vec::new(); references.len()];
    for (at, setting) in settings.iter().enumerate() {
        let found: Vec<Vec<u64>> = queries
            .iter()
            .map(|query| search(at, query).map(|hits| hits.iter().map(|hit| hit.id).collect()))
            .collect::<Result<_, _>>()?;
        let reached = recall(&found, truth);
        let turns: Vec<(&str, &Json)> = references
            .iter()
            .map(|index| (*index, &setting.reference))
            .collect();
        let (rate, rates) = in_turns(
            reference,
            &timing.sweep(),
            queries.len(),
            &mut |slice| qps(queries, 1, slice, |part| search(at, &part[0]).map(drop)),
            &turns,
        )?;
        let mut line = format!(
            "  {}: pharos recall@10 {reached:.3} {rate:.0} QPS",
            setting.label
        );
        pharos_sweep.push((reached, rate));
        for ((index, sweep), rate) in references.iter().zip(&mut reference_sweeps).zip(rates) {
            let reached = reference.recall(index, &setting.reference)?;
            line += &format!(", {index} {reached:.3} {rate:.0} QPS");
            sweep.push((reached, rate));
        }
        eprintln!("{line}");
    }
    let pharos_at = fastest_reaching(&pharos_sweep, floor);
    let reference_at: Vec<usize> = reference_sweeps
        .iter()
        .map(|sweep| fastest_reaching(sweep, floor))
        .collect();
    eprintln!("  the chosen settings in turns");
    let turns: Vec<(&str, &Json)> = references
        .iter()
        .zip(&reference_at)
        .map(|(index, &at)| (*index, &settings[at].reference))
        .collect();
    let (rate, rates) = in_turns(
        reference,
        timing,
        queries.len(),
        &mut |slice| {
            qps(queries, 1, slice, |part| {
                search(pharos_at, &part[0]).map(drop)
            })
        },
        &turns,
    )?;
    Ok(Compared {
        pharos: Chosen {
            setting: pharos_at,
            recall: pharos_sweep[pharos_at].0,
            rate,
        },
        references: reference_at
            .iter()
            .zip(&reference_sweeps)
            .zip(rates)
            .map(|((&at, sweep), rate)| Chosen {
                setting: at,
                recall: sweep[at].0,
                rate,
            })
            .collect(),
    })
}

/// The position in `sweep` ((recall, rate) per setting) of the fastest setting whose recall
/// reaches `floor`, else of the most accurate one.
fn fastest_reaching(sweep: &[(f64, f64)], floor: f64) -> usize {
    let positions = 0..sweep.len();
    positions
        .clone()
        .filter(|&at| sweep[at].0 >= floor)
        .max_by(|&a, &b| sweep[a].1.total_cmp(&sweep[b].1))
        .or_else(|| positions.max_by(|&a, &b| sweep[a].0.total_cmp(&sweep[b].0)))
        .unwrap_or(0)
}

/// Queries per second answering `queries` in parts of `batch` for about `budget`.
fn qps<E: std::error::Error + Send + Sync + 'static>(
    queries: &[Vec<f32>],
    batch: usize,
    budget: Duration,
    mut search: impl FnMut(&[Vec<f32>]) -> Result<(), E>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut done = 0usize;
    loop {
        for part in queries.chunks(batch) {
            search(part)?;
            done += part.len();
            if started.elapsed() > budget {
                return Ok(done as f64 / started.elapsed().as_secs_f64());
            }
        }
    }
}

fn recall(found: &[Vec<u64>], truth: &[Vec<u64>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(got, expected)| got.iter().filter(|id| expected.contains(id)).count())
        .sum();
    hits as f64 / (truth.len() * K) as f64
}

/// `pharos serve --target search` on SQLite, the documents' set upserted, sequential searches.
async fn grpc_documents_case(
    args: &Args,
    dir: &Path,
    base: &Set,
    queries: &[Vec<f32>],
) -> anyhow::Result<Latencies> {
    let database_url = format!("sqlite:{}", dir.join("search.db").display());
    let (server, addr) = start_pharos(
        &args.common.pharos_bin,
        "search",
        &database_url,
        dir,
        "pharos-search",
    )
    .await?;
    let mut client = SearchServiceClient::new(channel(addr).await?);
    client
        .create_index(pb::CreateIndexRequest {
            name: "documents".into(),
            dimension: DOC_DIMENSION as u32,
            metric: pb::Metric::InnerProduct.into(),
            kind: pb::IndexKind::Flat.into(),
            params: None,
        })
        .await?;
    for (block, rows) in base.to_vecs().chunks(1000).enumerate() {
        let vectors = rows
            .iter()
            .enumerate()
            .map(|(offset, values)| pb::Vector {
                id: (block * 1000 + offset) as u64,
                values: values.clone(),
                payload: Default::default(),
            })
            .collect();
        client
            .upsert(pb::UpsertRequest {
                index: "documents".into(),
                vectors,
            })
            .await?;
    }
    if base.len() != DOC_COUNT {
        bail!("the documents' set has {} vectors", base.len());
    }
    let queries = queries.to_vec();
    let latencies = tokio::task::spawn_blocking(move || sequential_searches(addr, &queries))
        .await
        .context("the gRPC latency probe stopped")??;
    server.stop().await?;
    Ok(latencies)
}

/// Sequential searches of `queries` (twice, after 200 to warm up) from a client on its own
/// single-thread runtime, as a latency probe runs: the figures are the server's and the
/// loopback's, not this harness's thread hand-offs (a multi-thread client runtime adds about
/// 100 us per call on two cores).
fn sequential_searches(addr: SocketAddr, queries: &[Vec<f32>]) -> anyhow::Result<Latencies> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the probe's runtime")?;
    runtime.block_on(async {
        let mut client = SearchServiceClient::new(channel(addr).await?);
        let request = |query: &Vec<f32>| pb::SearchRequest {
            index: "documents".into(),
            vector: query.clone(),
            k: K as u32,
            ..pb::SearchRequest::default()
        };
        for query in queries.iter().take(200) {
            client.search(request(query)).await?;
        }
        let mut latencies = Latencies::new();
        for _ in 0..2 {
            for query in queries {
                let started = Instant::now();
                client.search(request(query)).await?;
                latencies.record(started.elapsed());
            }
        }
        Ok(latencies)
    })
}
