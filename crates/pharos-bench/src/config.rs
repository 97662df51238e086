//! `pharos-bench config`: the config service beside etcd, driven by the same code. Pharos runs as
//! two replicas on one PostgreSQL (writes on one, watches on the other); etcd as one member
//! (writes and watches on it). Reports Set, first and cached Get, Get throughput, hit rate,
//! propagation from a Set's ack to a watcher's receipt, fan-out to 1,000 and 10,000 watchers,
//! start-up time and idle memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use crate::Common;
use crate::database::BenchDatabase;
use crate::process::{Server, free_port, loopback, start_pharos, wait_serving};
use crate::stats::{Latencies, Table, Value};
use crate::systems::{Etcd, KvSystem, Pharos};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// The etcd server binary (Debian package etcd-server).
    #[arg(long)]
    etcd_bin: PathBuf,
    /// Changes sent to each fan-out group (default 30, 20 with --quick); raise it to profile.
    #[arg(long)]
    fan_out_rounds: Option<usize>,
}

/// How much work each measurement does.
struct Scale {
    keys: usize,
    sets: usize,
    gets: usize,
    throughput_for: Duration,
    throughput_tasks: usize,
    propagation_rounds: usize,
    fan_out: Vec<usize>,
    fan_out_rounds: usize,
    startups: usize,
}

impl Scale {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                keys: 200,
                sets: 300,
                gets: 2_000,
                throughput_for: Duration::from_secs(1),
                throughput_tasks: 32,
                propagation_rounds: 200,
                fan_out: vec![1_000],
                fan_out_rounds: 20,
                startups: 2,
            }
        } else {
            Self {
                keys: 1_000,
                sets: 3_000,
                gets: 30_000,
                throughput_for: Duration::from_secs(5),
                throughput_tasks: 64,
                propagation_rounds: 2_000,
                fan_out: vec![1_000, 10_000],
                fan_out_rounds: 30,
                startups: 5,
            }
        }
    }
}

/// What one system measured.
struct Measured {
    set: Latencies,
    set_rate: f64,
    first_get: Latencies,
    get: Latencies,
    get_rate: f64,
    propagation: Latencies,
    send_to_receipt: Latencies,
    fan_out: Vec<FanOut>,
}

struct FanOut {
    watchers: usize,
    last: Latencies,
    memory: u64,
    /// Server CPU time per change delivered to every watcher.
    cpu_per_change: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut scale = Scale::new(args.common.quick);
    if let Some(rounds) = args.fan_out_rounds {
        scale.fan_out_rounds = rounds.max(1);
    }
    let work = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "config benchmark: {cores} cores, logs and data under {}",
        work.path().display()
    );

    let database = BenchDatabase::create(&args.common.database_url, "config").await?;
    let result = measure_all(&args, &scale, work.path(), &database.url).await;
    database.drop_it().await;
    let table = result?;
    table.print();
    println!(
        "\nratio = pharos / etcd (below 1 is faster for times, above 1 is more for rates). Pharos: \
         writes on replica A, watches and first reads on replica B, both on PostgreSQL {}; etcd: one member, \
         serializable reads. Start-up: `pharos serve` (all targets, SQLite) on an empty directory.",
        database.server_version
    );
    Ok(())
}

async fn measure_all(
    args: &Args,
    scale: &Scale,
    work: &Path,
    database_url: &str,
) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "config: Pharos (2 replicas on one PostgreSQL) beside etcd (1 member), same harness, same run",
        "etcd",
    );

    eprintln!("starting two Pharos config replicas and etcd");
    let (mut replica_a, addr_a) = start_pharos(
        &args.common.pharos_bin,
        "config",
        database_url,
        work,
        "pharos-a",
    )
    .await?;
    let (mut replica_b, addr_b) = start_pharos(
        &args.common.pharos_bin,
        "config",
        database_url,
        work,
        "pharos-b",
    )
    .await?;
    let (mut etcd, etcd_addr) = start_etcd(&args.etcd_bin, work).await?;

    eprintln!("measuring Pharos");
    let pharos = measure::<Pharos>(addr_a, addr_b, &replica_b, scale).await?;
    let cache_a = Pharos::connect(addr_a).await?.cache_stats().await?;
    let cache_b = Pharos::connect(addr_b).await?.cache_stats().await?;
    replica_a.check_alive()?;
    replica_b.check_alive()?;
    eprintln!("measuring etcd");
    let reference = measure::<Etcd>(etcd_addr, etcd_addr, &etcd, scale).await?;
    etcd.check_alive()?;
    replica_a.stop().await?;
    replica_b.stop().await?;
    etcd.stop().await?;

    let time = Value::Time;
    table.percentiles(
        "Set (1 client, sequential)",
        &pharos.set,
        &reference.set,
        ["", ""],
    );
    table.row(
        "Set throughput (1 client)",
        Value::Rate(pharos.set_rate),
        Value::Rate(reference.set_rate),
        "",
    );
    table.percentiles(
        "Get, first read of a key (uncached),",
        &pharos.first_get,
        &reference.first_get,
        ["< 50 ms", "< 50 ms"],
    );
    table.percentiles(
        "Get, cached,",
        &pharos.get,
        &reference.get,
        ["", "<= 0.5x etcd, < 10 ms"],
    );
    let tasks = format!("Get throughput ({} concurrent)", scale.throughput_tasks);
    table.row(
        &tasks,
        Value::Rate(pharos.get_rate),
        Value::Rate(reference.get_rate),
        "",
    );
    table.row(
        "cache hit rate, replica A (writes, cached Gets)",
        Value::Percent(cache_a.hit_rate * 100.0),
        Value::Missing,
        "> 99%",
    );
    table.row(
        "cache hit rate, replica B (first reads, watches)",
        Value::Percent(cache_b.hit_rate * 100.0),
        Value::Missing,
        "",
    );
    table.percentiles(
        "Set ack -> watch receipt on another replica",
        &pharos.propagation,
        &reference.propagation,
        ["", "< 5 ms"],
    );
    table.percentiles(
        "Set sent -> watch receipt on another replica",
        &pharos.send_to_receipt,
        &reference.send_to_receipt,
        ["", ""],
    );
    for (ours, theirs) in pharos.fan_out.iter().zip(&reference.fan_out) {
        let n = ours.watchers;
        let aim = if n == 1_000 { "<= 0.5x etcd" } else { "" };
        table.percentiles(
            &format!("last of {n} watchers after ack"),
            &ours.last,
            &theirs.last,
            [aim, aim],
        );
        table.row(
            &format!("server memory for {n} watchers"),
            Value::Bytes(ours.memory),
            Value::Bytes(theirs.memory),
            "",
        );
        table.row(
            &format!("server CPU per change sent to {n} watchers"),
            time(ours.cpu_per_change),
            time(theirs.cpu_per_change),
            "",
        );
    }

    eprintln!("measuring start-up on an empty directory");
    let (pharos_start, pharos_rss) =
        startup_pharos(&args.common.pharos_bin, work, scale.startups).await?;
    let (etcd_start, etcd_rss) = startup_etcd(&args.etcd_bin, work, scale.startups).await?;
    table.row(
        "start to SERVING, empty directory (median)",
        time(pharos_start),
        time(etcd_start),
        "< 100 ms",
    );
    table.row(
        "idle RSS after start",
        Value::Bytes(pharos_rss),
        Value::Bytes(etcd_rss),
        "< 30 MB",
    );
    Ok(table)
}

fn key(index: usize) -> String {
    format!("bench.kv.{index:05}")
}

async fn measure<S: KvSystem>(
    writer_addr: SocketAddr,
    reader_addr: SocketAddr,
    reader: &Server,
    scale: &Scale,
) -> anyhow::Result<Measured> {
    let writer_client = S::connect(writer_addr).await?;
    let reader_client = S::connect(reader_addr).await?;

    let mut set = Latencies::new();
    let started = Instant::now();
    for index in 0..scale.sets {
        let began = Instant::now();
        writer_client
            .put(key(index % scale.keys), format!("value-{index}"))
            .await?;
        set.record(began.elapsed());
    }
    let set_rate = scale.sets as f64 / started.elapsed().as_secs_f64();

    let mut first_get = Latencies::new();
    for index in 0..scale.keys {
        let began = Instant::now();
        reader_client.get(key(index)).await?;
        first_get.record(began.elapsed());
    }

    for index in 0..scale.keys {
        writer_client.get(key(index)).await?;
    }
    let mut get = Latencies::new();
    for index in 0..scale.gets {
        let began = Instant::now();
        writer_client.get(key(index % scale.keys)).await?;
        get.record(began.elapsed());
    }
    let get_rate = get_throughput::<S>(writer_addr, scale).await?;

    let (propagation, send_to_receipt) =
        propagation(&writer_client, &reader_client, scale.propagation_rounds).await?;

    let mut fan_out = Vec::new();
    for &watchers in &scale.fan_out {
        eprintln!("  {watchers} watchers");
        fan_out.push(
            fan_out_to::<S>(
                &writer_client,
                reader_addr,
                reader,
                watchers,
                scale.fan_out_rounds,
            )
            .await?,
        );
    }
    Ok(Measured {
        set,
        set_rate,
        first_get,
        get,
        get_rate,
        propagation,
        send_to_receipt,
        fan_out,
    })
}

/// Gets per second from many concurrent callers over a few connections.
async fn get_throughput<S: KvSystem>(addr: SocketAddr, scale: &Scale) -> anyhow::Result<f64> {
    let connections = 4;
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(S::connect(addr).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..scale.throughput_tasks {
        let client = clients[task % connections].clone();
        let (stop, done, keys) = (stop.clone(), done.clone(), scale.keys);
        tasks.push(tokio::spawn(async move {
            let mut index = task;
            while !stop.load(Ordering::Relaxed) {
                client.get(key(index % keys)).await?;
                done.fetch_add(1, Ordering::Relaxed);
                index += 7;
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(scale.throughput_for).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

/// Time from a Set's acknowledgement on the writer to its arrival at a watcher on the reader (an
/// event that arrives before the ack counts as zero), and from sending the Set to that arrival.
async fn propagation<S: KvSystem>(
    writer: &S,
    reader: &S,
    rounds: usize,
) -> anyhow::Result<(Latencies, Latencies)> {
    let (sender, mut receipts) = mpsc::unbounded_channel();
    let watch = reader.watch("bench.propagation".to_owned(), sender).await?;
    let (mut after_ack, mut after_send) = (Latencies::new(), Latencies::new());
    for round in 0..rounds {
        let value = format!("round-{round}");
        let sent = Instant::now();
        writer
            .put("bench.propagation".to_owned(), value.clone())
            .await?;
        let acked = Instant::now();
        let arrived = wait_for(&mut receipts, &value, 1).await?;
        after_ack.record(arrived[0].saturating_duration_since(acked));
        after_send.record(arrived[0].saturating_duration_since(sent));
    }
    watch.abort();
    Ok((after_ack, after_send))
}

async fn fan_out_to<S: KvSystem>(
    writer: &S,
    reader_addr: SocketAddr,
    reader: &Server,
    watchers: usize,
    rounds: usize,
) -> anyhow::Result<FanOut> {
    // At most 100 streams per connection, as a fleet of clients would spread them.
    let connections = watchers.div_ceil(100);
    let watched = format!("bench.fan-out.{watchers}");
    let memory_before = reader.rss_bytes()?;
    let (sender, mut receipts) = mpsc::unbounded_channel();
    let mut openers = Vec::new();
    for connection in 0..connections {
        let (watched, sender) = (watched.clone(), sender.clone());
        let count = (watchers - connection * 100).min(100);
        openers.push(tokio::spawn(async move {
            let client = S::connect(reader_addr).await?;
            let mut handles = Vec::with_capacity(count);
            for _ in 0..count {
                handles.push(client.watch(watched.clone(), sender.clone()).await?);
            }
            anyhow::Ok(handles)
        }));
    }
    drop(sender);
    let mut handles = Vec::with_capacity(watchers);
    for opener in openers {
        handles.extend(opener.await??);
    }
    let memory = reader.rss_bytes()?.saturating_sub(memory_before);

    let mut last = Latencies::new();
    let cpu_before = reader.cpu_time()?;
    for round in 0..rounds {
        let value = format!("round-{round}");
        writer.put(watched.clone(), value.clone()).await?;
        let acked = Instant::now();
        let arrived = wait_for(&mut receipts, &value, watchers).await?;
        let latest = arrived.iter().max().copied().unwrap_or(acked);
        last.record(latest.saturating_duration_since(acked));
    }
    let cpu_per_change = reader.cpu_time()?.saturating_sub(cpu_before) / rounds.max(1) as u32;
    for handle in handles {
        handle.abort();
    }
    Ok(FanOut {
        watchers,
        last,
        memory,
        cpu_per_change,
    })
}

/// Collects the arrival times of `count` receipts carrying `value`.
async fn wait_for(
    receipts: &mut mpsc::UnboundedReceiver<(Instant, String)>,
    value: &str,
    count: usize,
) -> anyhow::Result<Vec<Instant>> {
    let mut arrived = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while arrived.len() < count {
        let (at, seen) = tokio::time::timeout_at(deadline, receipts.recv())
            .await
            .with_context(|| {
                format!(
                    "only {} of {count} watchers saw `{value}` within 30 s",
                    arrived.len()
                )
            })?
            .context("every watcher stream closed")?;
        if seen == value {
            arrived.push(at);
        }
    }
    Ok(arrived)
}

async fn start_etcd(binary: &Path, work: &Path) -> anyhow::Result<(Server, SocketAddr)> {
    let name = format!("etcd-{}", free_port()?);
    let client = loopback(free_port()?);
    let peer = format!("http://{}", loopback(free_port()?));
    let args = [
        "--name".to_owned(),
        "bench".to_owned(),
        "--data-dir".to_owned(),
        work.join(&name).display().to_string(),
        "--listen-client-urls".to_owned(),
        format!("http://{client}"),
        "--advertise-client-urls".to_owned(),
        format!("http://{client}"),
        "--listen-peer-urls".to_owned(),
        peer.clone(),
        "--initial-advertise-peer-urls".to_owned(),
        peer.clone(),
        "--initial-cluster".to_owned(),
        format!("bench={peer}"),
        "--logger".to_owned(),
        "zap".to_owned(),
        "--log-level".to_owned(),
        "warn".to_owned(),
    ];
    let mut server = Server::spawn(&name, binary, &args, &[], work)?;
    // etcd answers a read once it has elected itself leader: that is its "SERVING".
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        server.check_alive()?;
        if let Ok(etcd) = Etcd::connect(client).await
            && etcd.get("bench.ready".to_owned()).await.is_ok()
            && etcd
                .put("bench.ready".to_owned(), "1".to_owned())
                .await
                .is_ok()
        {
            return Ok((server, client));
        }
        if Instant::now() > deadline {
            bail!("etcd did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Median start-to-SERVING of `pharos serve` on an empty directory, and its RSS once idle.
async fn startup_pharos(
    binary: &Path,
    work: &Path,
    runs: usize,
) -> anyhow::Result<(Duration, u64)> {
    let mut times = Vec::new();
    let mut rss = 0;
    for run in 0..runs {
        let grpc = loopback(free_port()?);
        let http = loopback(free_port()?);
        let data = work.join(format!("startup-{run}"));
        let args = [
            "serve".to_owned(),
            "--grpc-addr".to_owned(),
            grpc.to_string(),
            "--http-addr".to_owned(),
            http.to_string(),
            "--data-dir".to_owned(),
            data.display().to_string(),
        ];
        let mut server = Server::spawn(&format!("pharos-startup-{run}"), binary, &args, &[], work)?;
        times.push(wait_serving(&mut server, grpc, Duration::from_secs(30)).await?);
        if run + 1 == runs {
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss = server.rss_bytes()?;
        }
        server.stop().await?;
    }
    times.sort();
    Ok((times[times.len() / 2], rss))
}

async fn startup_etcd(binary: &Path, work: &Path, runs: usize) -> anyhow::Result<(Duration, u64)> {
    let mut times = Vec::new();
    let mut rss = 0;
    for run in 0..runs {
        let (server, _) = start_etcd(binary, work).await?;
        times.push(server.started.elapsed());
        if run + 1 == runs {
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss = server.rss_bytes()?;
        }
        server.stop().await?;
    }
    times.sort();
    Ok((times[times.len() / 2], rss))
}
