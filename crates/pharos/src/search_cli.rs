//! `pharos search create|drop|list|upsert|query|describe|train`: a gRPC client of the search
//! service for people. `upsert` reads `.npy` (2-D float32 or float64), `.fvecs` or JSON lines
//! (`{"id": 1, "values": [...], "payload": {...}}`) and shows a progress bar.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use pharos_api::{RemoteSearch, SearchApi as _};
use pharos_proto::search::v1 as pb;

use crate::cli::status_error;

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub client: crate::cli::ClientArgs,
    #[command(subcommand)]
    pub command: SearchCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricArg {
    #[value(name = "ip")]
    InnerProduct,
    L2,
    Cosine,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Flat,
    IvfPq,
    Hnsw,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Npy,
    Fvecs,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// List the indexes.
    List,
    /// Create an index.
    Create {
        name: String,
        #[arg(long)]
        dimension: u32,
        #[arg(long, value_enum, default_value = "ip")]
        metric: MetricArg,
        #[arg(long, value_enum, default_value = "flat")]
        kind: KindArg,
        /// IVF_PQ lists [default: 256].
        #[arg(long)]
        nlist: Option<u32>,
        /// IVF_PQ sub-vectors per code, dividing the dimension [default: chosen from it].
        #[arg(long)]
        m: Option<u32>,
    },
    /// Drop an index and its vectors.
    Drop { name: String },
    /// Write vectors from a file: .npy, .fvecs or JSON lines.
    Upsert {
        index: String,
        file: PathBuf,
        /// The file's format [default: from its extension].
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// The id of the first row of a .npy or .fvecs file; rows count up from it.
        #[arg(long, default_value_t = 0)]
        start_id: u64,
        /// Vectors per request.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Find the nearest vectors to one query.
    Query {
        index: String,
        /// The query, comma-separated: --vector 0.1,0.2,0.3
        #[arg(
            long,
            value_delimiter = ',',
            allow_hyphen_values = true,
            required = true
        )]
        vector: Vec<f32>,
        #[arg(short, long, default_value_t = 10)]
        k: u32,
        #[arg(long, default_value_t = 0)]
        nprobe: u32,
        #[arg(long, default_value_t = 0)]
        rerank: u32,
        /// Payload conditions, all required: --filter colour=red --filter shape=circle|square
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Show an index's size, latency grade and recommendations.
    Describe { name: String },
    /// Train an IVF_PQ index (or retrain it with --rebuild), showing progress.
    Train {
        name: String,
        #[arg(long)]
        rebuild: bool,
    },
}

/// Runs a `pharos search` command against a server.
pub async fn run_search(args: SearchArgs) -> anyhow::Result<()> {
    let client = RemoteSearch::connect(&args.client.settings(None)).await?;
    let json = args.client.json;
    match args.command {
        SearchCommand::List => {
            let indexes = client.list_indexes().await.map_err(status_error)?.indexes;
            if json {
                let shown: Vec<_> = indexes.iter().map(info_json).collect();
                println!("{}", serde_json::Value::Array(shown));
            } else if indexes.is_empty() {
                println!("no indexes");
            } else {
                for info in &indexes {
                    println!("{}", info_line(info));
                }
            }
        }
        SearchCommand::Create {
            name,
            dimension,
            metric,
            kind,
            nlist,
            m,
        } => {
            let params = match kind {
                KindArg::IvfPq => Some(pb::create_index_request::Params::IvfPq(pb::IvfPqParams {
                    nlist: nlist.unwrap_or(0),
                    m: m.unwrap_or(0),
                    nbits: 8,
                })),
                KindArg::Flat | KindArg::Hnsw => None,
            };
            let info = client
                .create_index(pb::CreateIndexRequest {
                    name,
                    dimension,
                    metric: metric_of(metric).into(),
                    kind: kind_of(kind).into(),
                    params,
                })
                .await
                .map_err(status_error)?
                .index
                .unwrap_or_default();
            if json {
                println!("{}", info_json(&info));
            } else {
                println!("created {}", info_line(&info));
            }
        }
        SearchCommand::Drop { name } => {
            client
                .drop_index(pb::DropIndexRequest { name: name.clone() })
                .await
                .map_err(status_error)?;
            println!("dropped {name}");
        }
        SearchCommand::Upsert {
            index,
            file,
            format,
            start_id,
            batch,
        } => upsert_file(&client, &index, &file, format, start_id, batch.max(1), json).await?,
        SearchCommand::Query {
            index,
            vector,
            k,
            nprobe,
            rerank,
            filter,
        } => {
            let filter = parse_filter(&filter)?;
            let hits = client
                .search(pb::SearchRequest {
                    index,
                    vector,
                    k,
                    nprobe,
                    rerank,
                    filter,
                    ..pb::SearchRequest::default()
                })
                .await
                .map_err(status_error)?
                .hits;
            if json {
                let shown: Vec<_> = hits
                    .iter()
                    .map(|hit| serde_json::json!({"id": hit.id, "score": hit.score, "payload": hit.payload}))
                    .collect();
                println!("{}", serde_json::Value::Array(shown));
            } else {
                for (rank, hit) in hits.iter().enumerate() {
                    let mut payload: Vec<_> = hit
                        .payload
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    payload.sort();
                    println!(
                        "{:>3}. id {}  score {:.6}  {}",
                        rank + 1,
                        hit.id,
                        hit.score,
                        payload.join(" ")
                    );
                }
            }
        }
        SearchCommand::Describe { name } => {
            let described = client
                .describe_index(pb::DescribeIndexRequest { name })
                .await
                .map_err(status_error)?;
            let info = described.index.clone().unwrap_or_default();
            let latency = described.latency.clone().unwrap_or_default();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "index": info_json(&info),
                        "memory_bytes": described.memory_bytes,
                        "latency": {"searches": latency.searches, "p50_us": latency.p50_us, "p95_us": latency.p95_us, "p99_us": latency.p99_us, "grade": latency.grade},
                        "recommendations": described.recommendations,
                        "applied_revision": described.applied_revision,
                    })
                );
            } else {
                println!("{}", info_line(&info));
                println!(
                    "memory: {:.1} MiB",
                    described.memory_bytes as f64 / (1 << 20) as f64
                );
                println!(
                    "latency: grade {}  p50 {:.0} us  p95 {:.0} us  p99 {:.0} us  ({} searches)",
                    latency.grade, latency.p50_us, latency.p95_us, latency.p99_us, latency.searches
                );
                for advice in &described.recommendations {
                    println!("- {advice}");
                }
            }
        }
        SearchCommand::Train { name, rebuild } => {
            let mut stream = client.train(name, rebuild).await.map_err(status_error)?;
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            while let Some(step) = stream.next().await {
                let progress = step.map_err(status_error)?;
                if progress.finished {
                    spinner.finish_with_message(progress.stage);
                    break;
                }
                let counted = if progress.total > 0 {
                    format!(" ({}/{})", progress.done, progress.total)
                } else {
                    String::new()
                };
                spinner.set_message(format!("{}{counted}", progress.stage));
            }
        }
    }
    Ok(())
}

async fn upsert_file(
    client: &RemoteSearch,
    index: &str,
    file: &Path,
    format: Option<FormatArg>,
    start_id: u64,
    batch: usize,
    json: bool,
) -> anyhow::Result<()> {
    let format = match format {
        Some(format) => format,
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("npy") => FormatArg::Npy,
            Some("fvecs") => FormatArg::Fvecs,
            Some("jsonl" | "ndjson" | "json") => FormatArg::Jsonl,
            _ => bail!(
                "cannot tell the format of {} from its extension; give --format npy|fvecs|jsonl",
                file.display()
            ),
        },
    };
    let (total, mut source) = open_source(file, format, start_id)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let bar = ProgressBar::new(total.unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} vectors {wide_bar} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut written = 0u64;
    let mut revision = 0;
    loop {
        let mut vectors = Vec::with_capacity(batch);
        for item in source.by_ref().take(batch) {
            vectors.push(item.with_context(|| format!("while reading {}", file.display()))?);
        }
        if vectors.is_empty() {
            break;
        }
        let count = vectors.len() as u64;
        let response = client
            .upsert(pb::UpsertRequest {
                index: index.to_owned(),
                vectors,
            })
            .await
            .map_err(|status| {
                status_error(status).context(format!("after {written} vectors were written"))
            })?;
        written += count;
        revision = response.revision;
        if total.is_none() {
            bar.set_length(written);
        }
        bar.inc(count);
    }
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::json!({"upserted": written, "revision": revision})
        );
    } else {
        println!("upserted {written} vectors into {index} (revision {revision})");
    }
    Ok(())
}

type Source = Box<dyn Iterator<Item = anyhow::Result<pb::Vector>>>;

/// The vectors of `file` and their number when the format tells it up front.
fn open_source(
    file: &Path,
    format: FormatArg,
    start_id: u64,
) -> anyhow::Result<(Option<u64>, Source)> {
    let reader = BufReader::new(File::open(file)?);
    match format {
        FormatArg::Npy => {
            let npy = npyz::NpyFile::new(reader)?;
            let shape = npy.shape().to_vec();
            let [rows, dimension] = shape[..] else {
                bail!("a .npy of vectors must be 2-D (rows x dimension), not shape {shape:?}");
            };
            let dimension = usize::try_from(dimension)?;
            let values: Box<dyn Iterator<Item = anyhow::Result<f32>>> = match npy.dtype().descr().trim_matches(['\'', '"']) {
                "<f4" | ">f4" => Box::new(npy.data::<f32>()?.map(|value| Ok(value?))),
                "<f8" | ">f8" => Box::new(npy.data::<f64>()?.map(|value| Ok(value? as f32))),
                other => bail!("a .npy of vectors must hold float32 or float64, not {other}"),
            };
            Ok((Some(rows), Box::new(rows_of(values, dimension, start_id))))
        }
        FormatArg::Fvecs => Ok((
            None,
            Box::new(Fvecs {
                reader,
                next_id: start_id,
            }),
        )),
        FormatArg::Jsonl => Ok((
            None,
            Box::new(reader.lines().filter(|line| !matches!(line, Ok(text) if text.trim().is_empty())).map(|line| {
                let line = line?;
                let parsed: JsonVector = serde_json::from_str(&line)
                    .with_context(|| format!("a line is not {{\"id\": .., \"values\": [..], \"payload\": {{..}}}}: {line:.80}"))?;
                Ok(pb::Vector {
                    id: parsed.id,
                    values: parsed.values,
                    payload: parsed.payload,
                })
            })),
        )),
    }
}

#[derive(serde::Deserialize)]
struct JsonVector {
    id: u64,
    values: Vec<f32>,
    #[serde(default)]
    payload: HashMap<String, String>,
}

/// Groups a stream of values into vectors of `dimension` with ids from `start_id`.
fn rows_of(
    mut values: impl Iterator<Item = anyhow::Result<f32>>,
    dimension: usize,
    start_id: u64,
) -> impl Iterator<Item = anyhow::Result<pb::Vector>> {
    let mut next_id = start_id;
    std::iter::from_fn(move || {
        let mut row = Vec::with_capacity(dimension);
        for _ in 0..dimension {
            match values.next()? {
                Ok(value) => row.push(value),
                Err(error) => return Some(Err(error)),
            }
        }
        let id = next_id;
        next_id += 1;
        Some(Ok(pb::Vector {
            id,
            values: row,
            payload: HashMap::new(),
        }))
    })
}

/// `.fvecs`: each vector is its dimension (little-endian i32) then that many f32.
struct Fvecs<R> {
    reader: R,
    next_id: u64,
}

impl<R: Read> Iterator for Fvecs<R> {
    type Item = anyhow::Result<pb::Vector>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut head = [0u8; 4];
        match self.reader.read_exact(&mut head) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(error) => return Some(Err(error.into())),
        }
        let dimension = i32::from_le_bytes(head);
        let Ok(dimension) = usize::try_from(dimension) else {
            return Some(Err(anyhow::anyhow!(
                "an .fvecs row says dimension {dimension}"
            )));
        };
        let mut body = vec![0u8; dimension * 4];
        if let Err(error) = self.reader.read_exact(&mut body) {
            return Some(Err(
                anyhow::Error::from(error).context("the .fvecs file ends inside a vector")
            ));
        }
        let values = body
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        let id = self.next_id;
        self.next_id += 1;
        Some(Ok(pb::Vector {
            id,
            values,
            payload: HashMap::new(),
        }))
    }
}

/// `key=v1|v2` conditions.
fn parse_filter(conditions: &[String]) -> anyhow::Result<Option<pb::Filter>> {
    if conditions.is_empty() {
        return Ok(None);
    }
    let conditions = conditions
        .iter()
        .map(|condition| match condition.split_once('=') {
            Some((key, values)) if !key.is_empty() => Ok(pb::Condition {
                key: key.to_owned(),
                values: values.split('|').map(str::to_owned).collect(),
            }),
            _ => bail!("a filter is key=value or key=value1|value2, not {condition:?}"),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Some(pb::Filter { conditions }))
}

fn metric_of(metric: MetricArg) -> pb::Metric {
    match metric {
        MetricArg::InnerProduct => pb::Metric::InnerProduct,
        MetricArg::L2 => pb::Metric::L2,
        MetricArg::Cosine => pb::Metric::Cosine,
    }
}

fn kind_of(kind: KindArg) -> pb::IndexKind {
    match kind {
        KindArg::Flat => pb::IndexKind::Flat,
        KindArg::IvfPq => pb::IndexKind::IvfPq,
        KindArg::Hnsw => pb::IndexKind::Hnsw,
    }
}

fn names(info: &pb::IndexInfo) -> (&'static str, &'static str) {
    let metric = match pb::Metric::try_from(info.metric) {
        Ok(pb::Metric::InnerProduct) => "ip",
        Ok(pb::Metric::L2) => "l2",
        Ok(pb::Metric::Cosine) => "cosine",
        _ => "?",
    };
    let kind = match pb::IndexKind::try_from(info.kind) {
        Ok(pb::IndexKind::Flat) => "flat",
        Ok(pb::IndexKind::IvfPq) => "ivf-pq",
        Ok(pb::IndexKind::Hnsw) => "hnsw",
        _ => "?",
    };
    (metric, kind)
}

fn info_line(info: &pb::IndexInfo) -> String {
    let (metric, kind) = names(info);
    let params = match &info.params {
        Some(pb::index_info::Params::IvfPq(p)) => format!(" nlist {} m {}", p.nlist, p.m),
        Some(pb::index_info::Params::Hnsw(p)) => {
            format!(" m {} ef_construction {}", p.m, p.ef_construction)
        }
        None => String::new(),
    };
    let trained = if info.trained {
        ""
    } else {
        " (not trained yet)"
    };
    format!(
        "{}  {kind}{params}  dimension {}  {metric}  {} vectors{trained}",
        info.name, info.dimension, info.count
    )
}

fn info_json(info: &pb::IndexInfo) -> serde_json::Value {
    let (metric, kind) = names(info);
    serde_json::json!({
        "name": info.name,
        "kind": kind,
        "metric": metric,
        "dimension": info.dimension,
        "count": info.count,
        "trained": info.trained,
    })
}
