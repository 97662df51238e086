//! `cargo xtask soak --minutes N`: the whole platform under mixed load, then a report.
//!
//! 1. the release binary (`cargo build --release -p pharos -p pharos-bench`, the same package set
//!    as `cargo xtask bench`, so that the two share one build; or `--binary PATH`);
//! 2. a fresh PostgreSQL database `pharos_soak_<pid>` (`--database-url` names the server, else
//!    the one `cargo xtask pg` finds for the tests) and the five services each in its own process
//!    (`--target config|query|search|ingest|alert`, wired as in `deploy/settings/distributed-*`);
//!    or, with `--sqlite`, one `--target all` process on SQLite. The alert service evaluates a
//!    recording rule and an alerting rule every 10 s through the query service and writes what
//!    it records through ingest; its self-monitoring is off, so that only the load writes;
//! 3. a search index `soak` with 5,000 vectors;
//! 4. the load: `pharos loadgen --signal mixed` against ingest for N minutes, and beside it once
//!    a second PromQL over HTTP (`/api/v1/query`, `/api/v1/query_range`) and gRPC (`pharos
//!    query`), config sets and gets, search queries and, every tenth round, 100 more vectors
//!    and a config listing; a progress bar on stderr;
//! 5. the report: items per second per signal, p50/p99 of every RPC from the servers'
//!    `rpc_server_call_duration_seconds` histograms (interpolated in their buckets, this run
//!    only) and of the client-side operations, peak RSS (VmHWM) and CPU time per process, and
//!    the acknowledged items against the rows in the database (metric points, spans, logs,
//!    security events, vectors, config changes).
//!
//! Any error fails the task: a failed or rejected request of loadgen, a non-OK RPC on any
//! server, a failed side operation, an acknowledged item missing from the database, a process
//! that died, reports unhealthy at the end or does not stop cleanly. `--json PATH` writes the
//! report as JSON too. The database and the work directory (settings, logs) are removed at the
//! end unless `--keep` is given or the run failed (the work directory is kept then).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{IsTerminal as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use xshell::{Shell, cmd};

use crate::http::{first_chars, http_get, percent_encode};
use crate::step;

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long the load runs, in minutes (fractions allowed: 0.5 is 30 s).
    #[arg(long, default_value_t = 5.0)]
    pub minutes: f64,
    /// The `pharos` binary to run [default: `cargo build --release -p pharos -p pharos-bench`,
    /// then $CARGO_TARGET_DIR/release/pharos].
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// One `pharos serve --target all` on SQLite instead of five processes on PostgreSQL.
    #[arg(long)]
    pub sqlite: bool,
    /// The PostgreSQL server to create the soak database on, as a URL of any database on it
    /// [default: PHAROS_TEST_DATABASE_URL, else 127.0.0.1:5432, else `cargo xtask pg`'s].
    #[arg(long)]
    pub database_url: Option<String>,
    /// loadgen: HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// loadgen: requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// loadgen: items per request.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// loadgen: distinct metric series.
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Only the ingest load: no queries, config or search operations beside it.
    #[arg(long)]
    pub no_side_load: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the database and the work directory (settings, logs, data) for a look afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// The search index the side load queries, its dimension and its first vectors.
const INDEX: &str = "soak";
const DIMENSION: usize = 32;
const INITIAL_VECTORS: u64 = 5_000;
/// Vectors added every tenth round of the side load.
const VECTORS_PER_UPSERT: u64 = 100;
/// One round of side operations per this interval.
const SIDE_ROUND: Duration = Duration::from_secs(1);

/// Rules the alert service evaluates during the soak: one recorded series per service (written
/// back through ingest) and an alert that cannot fire (loadgen's gauges stay under 1000).
const RULES: &str = "\
groups:
  - name: soak
    interval: 10s
    rules:
      - record: soak:http_requests:rate1m
        expr: sum by (service) (rate(http_requests_total[1m]))
      - alert: SoakQueueDepthImpossible
        expr: max(queue_depth) > 1e9
        for: 1m
        labels:
          severity: warning
";

/// PromQL the side load sends over HTTP and gRPC, in turn.
const QUERIES: [&str; 4] = [
    "sum by (service) (rate(http_requests_total[1m]))",
    "topk(5, queue_depth)",
    "count by (code) (process_cpu_seconds_total)",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_sum[1m])))",
];

/// The signals loadgen sends, by the names of its report, with the table that stores them.
const SIGNALS: [(&str, &str); 4] = [
    ("metrics", "metric_points"),
    ("spans", "spans"),
    ("logs", "logs"),
    ("security_events", "security_events"),
];

pub fn run(sh: &Shell, args: SoakArgs) -> anyhow::Result<()> {
    ensure!(
        args.minutes.is_finite() && args.minutes > 0.0,
        "--minutes must be more than 0"
    );
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let binary = step("the pharos binary", || {
        crate::pharos_binary(sh, args.binary.as_deref())
    })?;
    let work = std::env::temp_dir().join(format!("pharos-soak-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let rules = work.join("soak-rules.yml");
    std::fs::write(&rules, RULES)?;

    let database = step("a fresh database", || Database::create(sh, &args, &work))?;
    let outcome = soak(sh, &args, duration, &binary, &work, &rules, &database);
    let keep_work = args.keep || !matches!(outcome, Ok(ref report) if report.failures.is_empty());
    if args.keep {
        eprintln!("kept the database: {}", database.describe());
        database.keep();
    } else {
        drop(database);
    }
    if keep_work {
        eprintln!(
            "kept the work directory (settings, logs): {}",
            work.display()
        );
    } else if let Err(error) = std::fs::remove_dir_all(&work) {
        eprintln!("could not remove {}: {error}", work.display());
    }
    let report = outcome?;
    println!("{}", report.text());
    if let Some(path) = &args.json {
        std::fs::write(path, report.json().to_string() + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if !report.failures.is_empty() {
        bail!(
            "the soak found {} problem(s); see the report above",
            report.failures.len()
        );
    }
    Ok(())
}

/// Everything between a fresh database and the report; the caller cleans up.
fn soak(
    sh: &Shell,
    args: &SoakArgs,
    duration: Duration,
    binary: &Path,
    work: &Path,
    rules: &Path,
    database: &Database,
) -> anyhow::Result<Report> {
    let mut platform = step("start the platform", || {
        Platform::start(binary, work, rules, database)
    })?;
    let config = platform.role("config")?.grpc;
    let search = platform.role("search")?.grpc;
    let query = platform.role("query")?.clone();
    let ingest = platform.role("ingest")?.clone();
    let cli = Cli {
        binary: binary.to_path_buf(),
    };
    step("a search index with 5,000 vectors", || {
        cli.run(&[
            "search",
            "create",
            INDEX,
            "--dimension",
            &DIMENSION.to_string(),
            "--metric",
            "cosine",
            "--kind",
            "hnsw",
            "--endpoint",
            &endpoint(search),
        ])?;
        let file = work.join("vectors-initial.jsonl");
        write_vectors(&file, 0, INITIAL_VECTORS)?;
        cli.run(&[
            "search",
            "upsert",
            INDEX,
            &file.display().to_string(),
            "--endpoint",
            &endpoint(search),
        ])?;
        Ok(())
    })?;

    let before = platform.scrape_all()?;
    let accepted_before = ingest_accepted(&platform.scrape(&ingest)?);
    let clock_ticks = clock_ticks(sh);
    // Resident size and CPU time of every service as the load starts, to show what it added.
    let at_start: BTreeMap<String, (Option<u64>, Option<f64>)> = platform
        .services
        .iter()
        .map(|service| {
            let pid = service.child.id();
            (
                service.name.clone(),
                (rss(pid), cpu_seconds(pid, clock_ticks)),
            )
        })
        .collect();
    let mut failures = Vec::new();

    eprintln!(
        "\n==> load for {}: pharos loadgen --signal mixed ({} connections, {} in flight, batches \
         of {}){}",
        minutes_seconds(duration),
        args.connections,
        args.concurrency,
        args.batch,
        if args.no_side_load {
            ""
        } else {
            ", with queries, config and search operations beside it"
        }
    );
    let started = Instant::now();
    let loadgen_out = work.join("loadgen.json");
    let loadgen_log = work.join("loadgen.log");
    let mut loadgen = pharos_command(binary)
        .args([
            "loadgen",
            "--endpoint",
            &endpoint(ingest.grpc),
            "--duration",
            &format!("{}ms", duration.as_millis()),
            "--connections",
            &args.connections.to_string(),
            "--concurrency",
            &args.concurrency.to_string(),
            "--batch",
            &args.batch.to_string(),
            "--series",
            &args.series.to_string(),
            "--signal",
            "mixed",
            "--json",
        ])
        .stdout(File::create(&loadgen_out)?)
        .stderr(File::create(&loadgen_log)?)
        .spawn()
        .context("cannot start pharos loadgen")?;

    let stop = Arc::new(AtomicBool::new(false));
    let side_ops = Arc::new(AtomicU64::new(0));
    let side_failures = Arc::new(AtomicU64::new(0));
    let side = (!args.no_side_load).then(|| {
        let context = SideLoad {
            cli: cli.clone(),
            work: work.to_path_buf(),
            config,
            search,
            query: query.clone(),
            stop: stop.clone(),
            ops: side_ops.clone(),
            failed: side_failures.clone(),
        };
        std::thread::spawn(move || context.run())
    });

    let mut bar = ProgressBar::new(duration);
    let mut loadgen_peak_rss = 0u64;
    let status = loop {
        if let Some(status) = loadgen.try_wait()? {
            break status;
        }
        if started.elapsed() > duration + Duration::from_secs(120) {
            let _ = loadgen.kill();
            let _ = loadgen.wait();
            stop.store(true, Ordering::Relaxed);
            bail!("pharos loadgen did not finish 2 minutes after its duration");
        }
        if let Some(died) = platform.first_exited() {
            let _ = loadgen.kill();
            let _ = loadgen.wait();
            stop.store(true, Ordering::Relaxed);
            bail!("{died}");
        }
        loadgen_peak_rss = loadgen_peak_rss.max(peak_rss(loadgen.id()).unwrap_or(0));
        let accepted = platform
            .scrape(&ingest)
            .map(|samples| ingest_accepted(&samples))
            .unwrap_or_default();
        let items: f64 = accepted.values().sum::<f64>() - accepted_before.values().sum::<f64>();
        bar.draw(
            started.elapsed(),
            items.max(0.0) as u64,
            side_ops.load(Ordering::Relaxed),
            side_failures.load(Ordering::Relaxed),
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    bar.finish();
    stop.store(true, Ordering::Relaxed);
    let side = match side {
        Some(thread) => thread
            .join()
            .map_err(|_| anyhow::anyhow!("the side load thread panicked"))?,
        None => SideStats::default(),
    };
    let elapsed = started.elapsed();
    let loadgen_text = std::fs::read_to_string(&loadgen_out)?;
    if !status.success() {
        bail!(
            "pharos loadgen failed ({status}):\n{}{}",
            loadgen_text,
            tail(&loadgen_log, 20)
        );
    }
    let loadgen: LoadgenReport = serde_yaml_ng::from_str(&loadgen_text)
        .with_context(|| format!("loadgen's report is not what was expected:\n{loadgen_text}"))?;

    for (code, count) in &loadgen.errors {
        failures.push(format!("loadgen: {count} failed requests with {code}"));
    }
    if loadgen.items_rejected > 0 {
        failures.push(format!(
            "loadgen: {} items rejected by ingest",
            loadgen.items_rejected
        ));
    }
    for message in &side.first_failures {
        failures.push(format!("side load: {message}"));
    }
    if side.failed > side.first_failures.len() as u64 {
        failures.push(format!(
            "side load: {} more failures",
            side.failed - side.first_failures.len() as u64
        ));
    }

    let after = platform.scrape_all()?;
    let rpcs = rpc_rows(&before, &after);
    for row in &rpcs {
        for (code, count) in &row.errors {
            failures.push(format!(
                "{}: {count} x {} from {}",
                row.process,
                code_name(code),
                row.rpc
            ));
        }
    }
    let mut processes = Vec::new();
    for service in &platform.services {
        let pid = service.child.id();
        let (rss_at_start, cpu_at_start) = at_start.get(&service.name).copied().unwrap_or_default();
        processes.push(ProcessRow {
            name: service.name.clone(),
            peak_rss_bytes: peak_rss(pid).unwrap_or(0),
            rss_at_start_bytes: rss_at_start,
            rss_at_end_bytes: rss(pid),
            cpu_seconds: cpu_seconds(pid, clock_ticks).map(|cpu| cpu - cpu_at_start.unwrap_or(0.0)),
        });
        match health(service.http) {
            Ok(()) => {}
            Err(error) => {
                failures.push(format!("{}: unhealthy at the end: {error:#}", service.name))
            }
        }
    }
    processes.push(ProcessRow {
        name: "loadgen".to_owned(),
        peak_rss_bytes: loadgen_peak_rss,
        rss_at_start_bytes: None,
        rss_at_end_bytes: None,
        cpu_seconds: None,
    });

    let stored = step("acknowledged items against the database", || {
        stored_rows(database, &platform, &ingest, &loadgen, &side)
    })?;
    for row in &stored {
        if !row.ok() {
            failures.push(format!(
                "{}: {} acknowledged, {} stored",
                row.what,
                row.expected(),
                row.stored
            ));
        }
    }

    let stopped = step("stop the platform", || Ok(platform.stop()))?;
    for (name, outcome) in stopped {
        match outcome {
            Ok(status) if status.success() => {}
            Ok(status) => failures.push(format!("{name}: exited with {status} on SIGTERM")),
            Err(error) => failures.push(format!("{name}: {error:#}")),
        }
    }

    Ok(Report {
        mode: if args.sqlite {
            "one process (--target all) on SQLite".to_owned()
        } else {
            format!(
                "five processes (config, query, search, ingest, alert) on PostgreSQL ({})",
                database.describe()
            )
        },
        minutes: args.minutes,
        elapsed_seconds: elapsed.as_secs_f64(),
        load: format!(
            "loadgen --signal mixed --connections {} --concurrency {} --batch {} --series {}",
            args.connections, args.concurrency, args.batch, args.series
        ),
        loadgen,
        rpcs,
        side,
        processes,
        stored,
        failures,
    })
}

/// A `pharos` command with none of the caller's `PHAROS_*` variables, so that only what the
/// soak sets reaches it.
fn pharos_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PHAROS_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

fn endpoint(address: SocketAddr) -> String {
    format!("http://{address}")
}

/// The soak's database: a fresh PostgreSQL database dropped at the end, or a SQLite file in the
/// work directory.
enum Database {
    Postgres {
        /// The server, as a URL of its `postgres` database (for CREATE and DROP).
        admin: String,
        name: String,
        url: String,
        keep: bool,
    },
    Sqlite {
        path: PathBuf,
    },
}

impl Database {
    fn create(sh: &Shell, args: &SoakArgs, work: &Path) -> anyhow::Result<Self> {
        if args.sqlite {
            let dir = work.join("all");
            std::fs::create_dir_all(&dir)?;
            return Ok(Database::Sqlite {
                path: dir.join("pharos.db"),
            });
        }
        let server = match &args.database_url {
            Some(url) => url.clone(),
            None => crate::pg::ensure_for_tests(sh)?,
        };
        let name = format!("pharos_soak_{}", std::process::id());
        let admin = with_database(&server, "postgres")?;
        let url = with_database(&server, &name)?;
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let create = format!("CREATE DATABASE {name}");
        cmd!(
            sh,
            "psql -q -v ON_ERROR_STOP=1 {admin} -c {drop} -c {create}"
        )
        .quiet()
        .run()
        .with_context(|| format!("cannot create the database {name}: is psql installed?"))?;
        eprintln!("created the database {name}");
        Ok(Database::Postgres {
            admin,
            name,
            url,
            keep: false,
        })
    }

    fn url(&self) -> String {
        match self {
            Database::Postgres { url, .. } => url.clone(),
            Database::Sqlite { path } => format!("sqlite:{}", path.display()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Database::Postgres { name, .. } => format!("database {name}"),
            Database::Sqlite { path } => path.display().to_string(),
        }
    }

    fn keep(mut self) {
        if let Database::Postgres { keep, .. } = &mut self {
            *keep = true;
        }
    }

    /// `SELECT count(*) FROM <table> [WHERE ...]` as a number; the SQL is this file's own text.
    fn count(&self, sql: &str) -> anyhow::Result<u64> {
        let output = match self {
            Database::Postgres { url, .. } => Command::new("psql")
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
                .output(),
            Database::Sqlite { path } => Command::new("sqlite3")
                .args(["-bail", "-readonly"])
                .arg(path)
                .arg(sql)
                .output(),
        }
        .context("cannot run psql or sqlite3")?;
        ensure!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .with_context(|| format!("{sql}: not a count: {:?}", text.trim()))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Database::Postgres {
            admin,
            name,
            keep: false,
            ..
        } = self
        {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            match Command::new("psql")
                .args(["-q", "-X", admin.as_str(), "-c", &sql])
                .status()
            {
                Ok(status) if status.success() => eprintln!("dropped the database {name}"),
                _ => eprintln!("could not drop the database {name}: drop it with `{sql}`"),
            }
        }
    }
}

/// `url` with its database (the path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base
        .find("://")
        .map(|at| at + 3)
        .with_context(|| format!("{url} is not a postgres:// URL"))?;
    let host_end = base[authority..]
        .find('/')
        .map_or(base.len(), |at| authority + at);
    let mut rebuilt = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        rebuilt.push('?');
        rebuilt.push_str(query);
    }
    Ok(rebuilt)
}

/// One running `pharos serve`.
struct Service {
    name: String,
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

/// A role the side load and the checks talk to, with the addresses of the process serving it.
#[derive(Clone)]
struct Role {
    grpc: SocketAddr,
    http: SocketAddr,
}

/// The running services; stopped (SIGTERM, then SIGKILL after 20 s) when dropped.
struct Platform {
    services: Vec<Service>,
    /// Which service serves which role: every role is `all` on SQLite.
    roles: BTreeMap<&'static str, Role>,
}

impl Platform {
    fn start(
        binary: &Path,
        work: &Path,
        rules: &Path,
        database: &Database,
    ) -> anyhow::Result<Self> {
        let split = matches!(database, Database::Postgres { .. });
        let mut platform = Platform {
            services: Vec::new(),
            roles: BTreeMap::new(),
        };
        if !split {
            let (grpc, http) = (free_port()?, free_port()?);
            let settings = format!(
                "target = [\"all\"]\n\n[alert]\n{}",
                alert_settings(rules, None)
            );
            platform.spawn(binary, work, database, "all", grpc, http, &settings)?;
            platform.wait_ready(&["all"])?;
            for role in ["config", "query", "search", "ingest", "alert"] {
                platform.roles.insert(role, Role { grpc, http });
            }
            return Ok(platform);
        }
        let status = pharos_command(binary)
            .args(["migrate", "--database-url", &database.url()])
            .stdout(Stdio::null())
            .status()?;
        ensure!(status.success(), "pharos migrate failed ({status})");
        let mut ports = BTreeMap::new();
        for role in ["config", "query", "search", "ingest", "alert"] {
            let (grpc, http) = free_ports()?;
            ports.insert(role, Role { grpc, http });
        }
        let address = |role: &str| ports.get(role).map(|role| endpoint(role.grpc));
        let config = address("config").unwrap_or_default();
        let sections = [
            ("config", String::new()),
            ("query", String::new()),
            ("search", String::new()),
            (
                "ingest",
                format!("[ingest]\nconfig_endpoint = {config:?}\n"),
            ),
            (
                "alert",
                format!(
                    "[alert]\n{}",
                    alert_settings(
                        rules,
                        Some((
                            address("query").unwrap_or_default(),
                            address("ingest").unwrap_or_default(),
                            config.clone()
                        ))
                    )
                ),
            ),
        ];
        // Config first: ingest and alert follow their live settings from it; alert last, as it
        // evaluates through query and writes through ingest.
        let waves: [&[&str]; 3] = [&["config"], &["query", "search", "ingest"], &["alert"]];
        for wave in waves {
            for role in wave {
                let Some((_, section)) = sections.iter().find(|(name, _)| name == role) else {
                    continue;
                };
                let Some(addresses) = ports.get(role) else {
                    continue;
                };
                let settings = format!("target = [{role:?}]\n\n{section}");
                platform.spawn(
                    binary,
                    work,
                    database,
                    role,
                    addresses.grpc,
                    addresses.http,
                    &settings,
                )?;
            }
            platform.wait_ready(wave)?;
        }
        platform.roles = ports;
        Ok(platform)
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &mut self,
        binary: &Path,
        work: &Path,
        database: &Database,
        name: &str,
        grpc: SocketAddr,
        http: SocketAddr,
        settings: &str,
    ) -> anyhow::Result<()> {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir)?;
        let settings_file = work.join(format!("{name}.toml"));
        std::fs::write(&settings_file, settings)?;
        let log = work.join(format!("{name}.log"));
        let log_file = File::create(&log)?;
        let child = pharos_command(binary)
            .args(["serve", "--config"])
            .arg(&settings_file)
            .args(["--grpc-addr", &grpc.to_string()])
            .args(["--http-addr", &http.to_string()])
            .args(["--database-url", &database.url()])
            .arg("--data-dir")
            .arg(&dir)
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start pharos serve --target {name}"))?;
        eprintln!(
            "started {name} (pid {}): gRPC {grpc}, HTTP {http}, log {}",
            child.id(),
            log.display()
        );
        self.services.push(Service {
            name: name.to_owned(),
            child,
            http,
            log,
        });
        Ok(())
    }

    /// Waits until every named service answers `/ready` with 200.
    fn wait_ready(&mut self, names: &[&str]) -> anyhow::Result<()> {
        let started = Instant::now();
        for service in &mut self.services {
            if !names.contains(&service.name.as_str()) {
                continue;
            }
            loop {
                if let Some(status) = service.child.try_wait()? {
                    bail!(
                        "{} exited at start ({status}):\n{}",
                        service.name,
                        tail(&service.log, 30)
                    );
                }
                if matches!(http_get(service.http, "/ready"), Ok((200, _))) {
                    break;
                }
                if started.elapsed() > Duration::from_secs(90) {
                    bail!(
                        "{} was not ready after 90 s:\n{}",
                        service.name,
                        tail(&service.log, 30)
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    fn role(&self, role: &str) -> anyhow::Result<&Role> {
        self.roles
            .get(role)
            .with_context(|| format!("no process serves {role}"))
    }

    /// A message about the first service that is no longer running, if any.
    fn first_exited(&mut self) -> Option<String> {
        for service in &mut self.services {
            if let Ok(Some(status)) = service.child.try_wait() {
                return Some(format!(
                    "{} exited during the soak ({status}):\n{}",
                    service.name,
                    tail(&service.log, 30)
                ));
            }
        }
        None
    }

    fn scrape(&self, role: &Role) -> anyhow::Result<Vec<Sample>> {
        let (status, body) = http_get(role.http, "/metrics")?;
        ensure!(status == 200, "GET /metrics answered {status}");
        Ok(parse_metrics(&body))
    }

    /// `/metrics` of every service, by service name.
    fn scrape_all(&self) -> anyhow::Result<BTreeMap<String, Vec<Sample>>> {
        let mut all = BTreeMap::new();
        for service in &self.services {
            let (status, body) = http_get(service.http, "/metrics")
                .with_context(|| format!("GET /metrics of {}", service.name))?;
            ensure!(
                status == 200,
                "GET /metrics of {} answered {status}",
                service.name
            );
            all.insert(service.name.clone(), parse_metrics(&body));
        }
        Ok(all)
    }

    /// SIGTERM to every service, the last started first; how each ended.
    fn stop(&mut self) -> Vec<(String, anyhow::Result<ExitStatus>)> {
        let mut outcomes = Vec::new();
        while let Some(mut service) = self.services.pop() {
            let outcome = terminate(&mut service.child);
            outcomes.push((service.name, outcome));
        }
        outcomes
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The `[alert]` settings of the soak: its rules, no self-monitoring, and (split) where the
/// query, ingest and config services are.
fn alert_settings(rules: &Path, remote: Option<(String, String, String)>) -> String {
    let mut text = format!(
        "self_monitoring = false\nevaluation_interval = \"10s\"\nrule_files = [{:?}]\n",
        rules.display().to_string()
    );
    if let Some((query, ingest, config)) = remote {
        let _ = write!(
            text,
            "query_endpoint = {query:?}\ningest_endpoint = {ingest:?}\nconfig_endpoint = {config:?}\n"
        );
    }
    text
}

/// SIGTERM, then SIGKILL if the process has not ended after 20 s.
fn terminate(child: &mut Child) -> anyhow::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        bail!("had already exited ({status})");
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let status = child.wait()?;
    bail!("did not stop within 20 s of SIGTERM; killed ({status})")
}

/// A loopback address nobody listens on now.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?)
}

/// Two distinct free ports (both listeners are held until both are known).
fn free_ports() -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let first = TcpListener::bind(("127.0.0.1", 0))?;
    let second = TcpListener::bind(("127.0.0.1", 0))?;
    Ok((first.local_addr()?, second.local_addr()?))
}

/// The last `lines` lines of a log file, indented, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut shown = format!("--- last lines of {} ---\n", path.display());
    for line in &all[start..] {
        shown.push_str("  ");
        shown.push_str(line);
        shown.push('\n');
    }
    shown
}

/// `/health` answers 200 with `"status":"ok"`.
fn health(address: SocketAddr) -> anyhow::Result<()> {
    let (status, body) = http_get(address, "/health")?;
    ensure!(
        status == 200 && body.contains("\"status\":\"ok\""),
        "/health answered {status}: {}",
        first_chars(&body, 400)
    );
    Ok(())
}

/// Peak resident set size of a running process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmHWM:").map(|kb| kb * 1024)
}

/// Resident set size of a running process (VmRSS), in bytes.
fn rss(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmRSS:").map(|kb| kb * 1024)
}

/// A `kB` field of `/proc/<pid>/status`.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of a running process, in seconds.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, the state.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / ticks_per_second)
}

fn clock_ticks(sh: &Shell) -> f64 {
    cmd!(sh, "getconf CLK_TCK")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks: &f64| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// `pharos` client commands, run to completion.
#[derive(Clone)]
struct Cli {
    binary: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = pharos_command(&self.binary)
            .args(args)
            .output()
            .with_context(|| format!("cannot run pharos {}", args.join(" ")))?;
        ensure!(
            output.status.success(),
            "pharos {} failed ({}): {}",
            args.join(" "),
            output.status,
            first_chars(String::from_utf8_lossy(&output.stderr).trim(), 400)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// JSON lines of `count` vectors with ids from `first`, for `pharos search upsert`.
fn write_vectors(path: &Path, first: u64, count: u64) -> anyhow::Result<()> {
    let mut text = String::new();
    for id in first..first + count {
        let values = vector(id)
            .iter()
            .map(|value| format!("{value:.5}"))
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(
            text,
            "{{\"id\": {id}, \"values\": [{values}], \"payload\": {{\"shard\": \"s{}\"}}}}",
            id % 8
        );
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// A pseudo-random vector in [-1, 1) determined by `seed` (xorshift64*).
fn vector(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..DIMENSION)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The operations beside the ingest load, one round a second.
struct SideLoad {
    cli: Cli,
    work: PathBuf,
    config: SocketAddr,
    search: SocketAddr,
    query: Role,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

/// What the side load did: latencies and failures per operation, and what was acknowledged.
#[derive(Default)]
struct SideStats {
    ops: BTreeMap<&'static str, OpStats>,
    failed: u64,
    first_failures: Vec<String>,
    config_sets: u64,
    vectors: u64,
}

#[derive(Default)]
struct OpStats {
    latencies_ms: Vec<f64>,
    failures: u64,
}

impl SideLoad {
    fn run(self) -> SideStats {
        let mut stats = SideStats::default();
        let mut round = 0u64;
        let mut next_id = INITIAL_VECTORS;
        let config = endpoint(self.config);
        let search = endpoint(self.search);
        let query = endpoint(self.query.grpc);
        while !self.stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            let expr = QUERIES[(round % QUERIES.len() as u64) as usize];
            self.measure(&mut stats, "http GET /api/v1/query", || {
                self.prometheus(&format!("/api/v1/query?query={}", percent_encode(expr)))
            });
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            self.measure(&mut stats, "http GET /api/v1/query_range", || {
                self.prometheus(&format!(
                    "/api/v1/query_range?query={}&start={}&end={now}&step=15",
                    percent_encode(expr),
                    now.saturating_sub(300)
                ))
            });
            self.measure(&mut stats, "cli pharos query", || {
                self.cli
                    .run(&["query", expr, "--json", "--endpoint", &query])
            });
            let key = format!("soak.key{}", round % 20);
            let value = round.to_string();
            if self.measure(&mut stats, "cli pharos config set", || {
                self.cli
                    .run(&["config", "set", &key, &value, "--endpoint", &config])
            }) {
                stats.config_sets += 1;
            }
            if round > 0 {
                let key = format!("soak.key{}", (round - 1) % 20);
                self.measure(&mut stats, "cli pharos config get", || {
                    self.cli
                        .run(&["config", "get", &key, "--endpoint", &config])
                });
            }
            let probe = vector(1_000_000 + round)
                .iter()
                .map(|value| format!("{value:.4}"))
                .collect::<Vec<_>>()
                .join(",");
            self.measure(&mut stats, "cli pharos search query", || {
                self.cli.run(&[
                    "search",
                    "query",
                    INDEX,
                    &format!("--vector={probe}"),
                    "-k",
                    "10",
                    "--endpoint",
                    &search,
                ])
            });
            if round % 10 == 9 {
                let file = self.work.join(format!("vectors-{round}.jsonl"));
                let upserted = self.measure(&mut stats, "cli pharos search upsert (100)", || {
                    write_vectors(&file, next_id, VECTORS_PER_UPSERT)?;
                    self.cli.run(&[
                        "search",
                        "upsert",
                        INDEX,
                        &file.display().to_string(),
                        "--endpoint",
                        &search,
                    ])
                });
                let _ = std::fs::remove_file(&file);
                if upserted {
                    stats.vectors += VECTORS_PER_UPSERT;
                }
                next_id += VECTORS_PER_UPSERT;
                self.measure(&mut stats, "cli pharos config list", || {
                    self.cli
                        .run(&["config", "list", "--prefix", "soak.", "--endpoint", &config])
                });
            }
            round += 1;
            while began.elapsed() < SIDE_ROUND && !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        stats
    }

    /// Runs one operation, timing it; true when it succeeded.
    fn measure<T>(
        &self,
        stats: &mut SideStats,
        name: &'static str,
        operation: impl FnOnce() -> anyhow::Result<T>,
    ) -> bool {
        let began = Instant::now();
        let outcome = operation();
        let elapsed = began.elapsed().as_secs_f64() * 1000.0;
        self.ops.fetch_add(1, Ordering::Relaxed);
        let op = stats.ops.entry(name).or_default();
        match outcome {
            Ok(_) => {
                op.latencies_ms.push(elapsed);
                true
            }
            Err(error) => {
                op.failures += 1;
                stats.failed += 1;
                self.failed.fetch_add(1, Ordering::Relaxed);
                if stats.first_failures.len() < 10 {
                    stats.first_failures.push(format!("{name}: {error:#}"));
                }
                false
            }
        }
    }

    /// A Prometheus API GET on the query service that must answer 200 with status success.
    fn prometheus(&self, path: &str) -> anyhow::Result<()> {
        let (status, body) = http_get(self.query.http, path)?;
        ensure!(
            status == 200 && body.contains("\"status\":\"success\""),
            "{path} answered {status}: {}",
            first_chars(&body, 300)
        );
        Ok(())
    }
}

/// The part of `pharos loadgen --json`'s report the soak reads.
#[derive(Debug, serde::Deserialize)]
struct LoadgenReport {
    elapsed_seconds: f64,
    requests: u64,
    items_accepted: u64,
    items_rejected: u64,
    items_per_second: f64,
    accepted_by_signal: BTreeMap<String, u64>,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    ack_max_ms: f64,
    errors: BTreeMap<String, u64>,
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Parses the Prometheus text exposition format (comments and malformed lines are skipped).
fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(at + 1);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    // A quoted value with \\, \" and \n escapes.
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        }
        rest = &inner[end?..];
    }
    let value = parse_float(rest.split_whitespace().next()?)?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// `pharos_ingest_items_total{outcome="accepted"}` by signal.
fn ingest_accepted(samples: &[Sample]) -> BTreeMap<String, f64> {
    let mut accepted = BTreeMap::new();
    for sample in samples {
        if sample.name == "pharos_ingest_items_total" && sample.label("outcome") == "accepted" {
            *accepted
                .entry(sample.label("signal").to_owned())
                .or_insert(0.0) += sample.value;
        }
    }
    accepted
}

/// A cumulative histogram: (upper bound, count) by bound, ascending.
type Buckets = Vec<(f64, f64)>;

/// `rpc_server_call_duration_seconds` buckets by (service, method) and status code.
fn rpc_histograms(samples: &[Sample]) -> BTreeMap<(String, String), BTreeMap<String, Buckets>> {
    let mut histograms: BTreeMap<(String, String), BTreeMap<String, Buckets>> = BTreeMap::new();
    for sample in samples {
        if sample.name != "rpc_server_call_duration_seconds_bucket" {
            continue;
        }
        let Some(bound) = parse_float(sample.label("le")) else {
            continue;
        };
        let rpc = (
            sample.label("rpc_service").to_owned(),
            sample.label("rpc_method").to_owned(),
        );
        let code = sample.label("rpc_grpc_status_code").to_owned();
        histograms
            .entry(rpc)
            .or_default()
            .entry(code)
            .or_default()
            .push((bound, sample.value));
    }
    for codes in histograms.values_mut() {
        for buckets in codes.values_mut() {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
    histograms
}

/// `after - before`, bucket by bucket (a missing `before` counts as empty).
fn subtract(after: &Buckets, before: Option<&Buckets>) -> Buckets {
    after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .and_then(|buckets| buckets.iter().find(|(b, _)| *b == bound))
                .map_or(0.0, |(_, count)| *count);
            (bound, (count - earlier).max(0.0))
        })
        .collect()
}

fn add(into: &mut Buckets, other: &Buckets) {
    if into.is_empty() {
        into.clone_from(other);
        return;
    }
    for (bound, count) in other {
        if let Some(slot) = into.iter_mut().find(|(b, _)| b == bound) {
            slot.1 += count;
        }
    }
}

/// The `q` quantile of a cumulative histogram, interpolated linearly inside its bucket as
/// Prometheus' `histogram_quantile` does; the highest finite bound when it falls in +Inf.
fn quantile(q: f64, buckets: &Buckets) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let width = count - below;
            let inside = if width > 0.0 {
                (rank - below) / width
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * inside);
        }
        lower = bound;
        below = count;
    }
    Some(lower)
}

/// One RPC of one process during the load.
struct RpcRow {
    process: String,
    rpc: String,
    calls: u64,
    /// Non-OK calls by status code number.
    errors: BTreeMap<String, u64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

fn rpc_rows(
    before: &BTreeMap<String, Vec<Sample>>,
    after: &BTreeMap<String, Vec<Sample>>,
) -> Vec<RpcRow> {
    let mut rows = Vec::new();
    for (process, samples) in after {
        let earlier = before
            .get(process)
            .map(|samples| rpc_histograms(samples))
            .unwrap_or_default();
        for (rpc, codes) in rpc_histograms(samples) {
            let mut all = Buckets::new();
            let mut errors = BTreeMap::new();
            for (code, buckets) in &codes {
                let during = subtract(buckets, earlier.get(&rpc).and_then(|codes| codes.get(code)));
                let calls = during.last().map_or(0.0, |(_, count)| *count) as u64;
                if code != "0" && calls > 0 {
                    errors.insert(code.clone(), calls);
                }
                add(&mut all, &during);
            }
            let calls = all.last().map_or(0.0, |(_, count)| *count) as u64;
            if calls == 0 {
                continue;
            }
            rows.push(RpcRow {
                process: process.clone(),
                rpc: format!("{}/{}", rpc.0, rpc.1),
                calls,
                errors,
                p50_ms: quantile(0.5, &all).map(|s| s * 1000.0),
                p99_ms: quantile(0.99, &all).map(|s| s * 1000.0),
            });
        }
    }
    rows
}

/// gRPC status code names by number.
fn code_name(code: &str) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    code.parse::<usize>()
        .ok()
        .and_then(|number| NAMES.get(number))
        .map_or_else(|| format!("status {code}"), |name| (*name).to_owned())
}

struct ProcessRow {
    name: String,
    /// VmHWM: the peak since the process started.
    peak_rss_bytes: u64,
    /// VmRSS as the load started and as it ended.
    rss_at_start_bytes: Option<u64>,
    rss_at_end_bytes: Option<u64>,
    /// CPU time (user and system) during the load.
    cpu_seconds: Option<f64>,
}

/// Acknowledged against stored, for one kind of item.
struct StoredRow {
    what: String,
    /// What loadgen (or the side load) had acknowledged.
    acknowledged: u64,
    /// What ingest counted as accepted in all (loadgen's items and the alert's recorded
    /// series); `None` for rows that do not go through ingest.
    accepted_by_ingest: Option<u64>,
    stored: u64,
}

impl StoredRow {
    /// The rows the database must hold.
    fn expected(&self) -> u64 {
        self.accepted_by_ingest.unwrap_or(self.acknowledged)
    }

    fn ok(&self) -> bool {
        self.stored == self.expected() && self.expected() >= self.acknowledged
    }
}

/// Counts the stored items of every signal. ingest's counters and the database are read until
/// they agree or five attempts passed: the alert service may write a recorded series between
/// the two reads.
fn stored_rows(
    database: &Database,
    platform: &Platform,
    ingest: &Role,
    loadgen: &LoadgenReport,
    side: &SideStats,
) -> anyhow::Result<Vec<StoredRow>> {
    let mut rows = Vec::new();
    for attempt in 1..=5 {
        let accepted = ingest_accepted(&platform.scrape(ingest)?);
        rows.clear();
        for (signal, table) in SIGNALS {
            let sql = format!("SELECT count(*) FROM {table}");
            rows.push(StoredRow {
                what: signal.to_owned(),
                acknowledged: loadgen.accepted_by_signal.get(signal).copied().unwrap_or(0),
                accepted_by_ingest: Some(accepted.get(signal).copied().unwrap_or(0.0) as u64),
                stored: database.count(&sql)?,
            });
        }
        let settled = ingest_accepted(&platform.scrape(ingest)?) == accepted;
        if settled && rows.iter().all(StoredRow::ok) {
            break;
        }
        if attempt < 5 {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    rows.push(StoredRow {
        what: "vectors (search upserts)".to_owned(),
        acknowledged: INITIAL_VECTORS + side.vectors,
        accepted_by_ingest: None,
        stored: database.count("SELECT count(*) FROM vectors WHERE index_name = 'soak'")?,
    });
    rows.push(StoredRow {
        what: "config changes (sets)".to_owned(),
        acknowledged: side.config_sets,
        accepted_by_ingest: None,
        stored: database.count("SELECT count(*) FROM config_changes WHERE key LIKE 'soak.%'")?,
    });
    Ok(rows)
}

/// A bar on a terminal, a line every 10 s otherwise.
struct ProgressBar {
    total: Duration,
    terminal: bool,
    last_line: Option<Instant>,
}

impl ProgressBar {
    fn new(total: Duration) -> Self {
        Self {
            total,
            terminal: std::io::stderr().is_terminal(),
            last_line: None,
        }
    }

    fn draw(&mut self, elapsed: Duration, items: u64, side_ops: u64, side_failures: u64) {
        let fraction = (elapsed.as_secs_f64() / self.total.as_secs_f64()).clamp(0.0, 1.0);
        let rate = items as f64 / elapsed.as_secs_f64().max(0.001);
        let status = format!(
            "{}/{}  {} items acked ({}/s)  {} side ops, {} failed",
            minutes_seconds(elapsed.min(self.total)),
            minutes_seconds(self.total),
            thousands(items),
            thousands(rate as u64),
            side_ops,
            side_failures
        );
        if self.terminal {
            let width = 30;
            let filled = (fraction * width as f64).round() as usize;
            eprint!(
                "\r\x1b[2K[{}{}] {status}",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        } else if self
            .last_line
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(10))
        {
            self.last_line = Some(Instant::now());
            eprintln!("{:>3.0}%  {status}", fraction * 100.0);
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn minutes_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// 1234567 as "1,234,567".
fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut shown = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            shown.push(',');
        }
        shown.push(digit);
    }
    shown
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.2}"))
}

/// The exact quantile of measured latencies (nearest rank).
fn sample_quantile(q: f64, sorted: &[f64]) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// One client-side operation: loadgen's acks or one kind of side operation.
struct ClientRow {
    name: String,
    calls: u64,
    failures: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

struct Report {
    mode: String,
    minutes: f64,
    elapsed_seconds: f64,
    load: String,
    loadgen: LoadgenReport,
    rpcs: Vec<RpcRow>,
    side: SideStats,
    processes: Vec<ProcessRow>,
    stored: Vec<StoredRow>,
    failures: Vec<String>,
}

impl Report {
    /// Client-side operations.
    fn client_rows(&self) -> Vec<ClientRow> {
        let loadgen_errors: u64 = self.loadgen.errors.values().sum();
        let mut rows = vec![ClientRow {
            name: "loadgen ack (all signals)".to_owned(),
            calls: self.loadgen.requests,
            failures: loadgen_errors,
            p50_ms: Some(self.loadgen.ack_p50_ms),
            p99_ms: Some(self.loadgen.ack_p99_ms),
        }];
        for (name, op) in &self.side.ops {
            let mut sorted = op.latencies_ms.clone();
            sorted.sort_by(f64::total_cmp);
            rows.push(ClientRow {
                name: (*name).to_owned(),
                calls: sorted.len() as u64 + op.failures,
                failures: op.failures,
                p50_ms: sample_quantile(0.5, &sorted),
                p99_ms: sample_quantile(0.99, &sorted),
            });
        }
        rows
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nsoak report: {} min of {}\n  {}; load ran {:.1} s",
            self.minutes, self.load, self.mode, self.elapsed_seconds
        );

        let _ = writeln!(
            out,
            "\nthroughput (items acknowledged by ingest to loadgen)"
        );
        let _ = writeln!(out, "  {:<18} {:>14} {:>12}", "signal", "items", "items/s");
        let seconds = self.loadgen.elapsed_seconds.max(0.001);
        for (signal, _) in SIGNALS {
            let items = self
                .loadgen
                .accepted_by_signal
                .get(signal)
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "  {:<18} {:>14} {:>12}",
                signal,
                thousands(items),
                thousands((items as f64 / seconds) as u64)
            );
        }
        let _ = writeln!(
            out,
            "  {:<18} {:>14} {:>12}",
            "total",
            thousands(self.loadgen.items_accepted),
            thousands(self.loadgen.items_per_second as u64)
        );

        let _ = writeln!(
            out,
            "\nlatency per RPC, server side (rpc_server_call_duration_seconds during the load, \
             interpolated in its buckets)"
        );
        let _ = writeln!(
            out,
            "  {:<8} {:<58} {:>9} {:>7} {:>9} {:>9}",
            "process", "rpc", "calls", "errors", "p50 ms", "p99 ms"
        );
        for row in &self.rpcs {
            let _ = writeln!(
                out,
                "  {:<8} {:<58} {:>9} {:>7} {:>9} {:>9}",
                row.process,
                row.rpc,
                thousands(row.calls),
                row.errors.values().sum::<u64>(),
                ms(row.p50_ms),
                ms(row.p99_ms)
            );
        }

        let _ = writeln!(
            out,
            "\nlatency, client side (cli: including the start of a pharos process)"
        );
        let _ = writeln!(
            out,
            "  {:<36} {:>9} {:>7} {:>9} {:>9}",
            "operation", "calls", "errors", "p50 ms", "p99 ms"
        );
        for row in self.client_rows() {
            let _ = writeln!(
                out,
                "  {:<36} {:>9} {:>7} {:>9} {:>9}",
                row.name,
                thousands(row.calls),
                row.failures,
                ms(row.p50_ms),
                ms(row.p99_ms)
            );
        }

        let _ = writeln!(
            out,
            "\nprocesses (RSS in MB; start and end of the load, peak since start; CPU during the \
             load)"
        );
        let _ = writeln!(
            out,
            "  {:<8} {:>10} {:>10} {:>10} {:>10}",
            "process", "RSS start", "RSS end", "peak RSS", "CPU (s)"
        );
        let megabytes = |bytes: Option<u64>| {
            bytes.map_or_else(|| "-".to_owned(), |b| format!("{:.1}", b as f64 / 1e6))
        };
        for process in &self.processes {
            let _ = writeln!(
                out,
                "  {:<8} {:>10} {:>10} {:>10} {:>10}",
                process.name,
                megabytes(process.rss_at_start_bytes),
                megabytes(process.rss_at_end_bytes),
                megabytes(Some(process.peak_rss_bytes)),
                process
                    .cpu_seconds
                    .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.1}"))
            );
        }

        let _ = writeln!(
            out,
            "\nacknowledged and stored (a fresh database; ingest's count includes the series \
             the alert service recorded)"
        );
        let _ = writeln!(
            out,
            "  {:<26} {:>14} {:>18} {:>14} {:>5}",
            "items", "acknowledged", "accepted by ingest", "stored", ""
        );
        for row in &self.stored {
            let _ = writeln!(
                out,
                "  {:<26} {:>14} {:>18} {:>14} {:>5}",
                row.what,
                thousands(row.acknowledged),
                row.accepted_by_ingest
                    .map_or_else(|| "-".to_owned(), thousands),
                thousands(row.stored),
                if row.ok() { "ok" } else { "LOST" }
            );
        }

        if self.failures.is_empty() {
            let _ = writeln!(out, "\nerrors: none");
        } else {
            let _ = writeln!(out, "\nerrors: {}", self.failures.len());
            for failure in &self.failures {
                let _ = writeln!(out, "  {failure}");
            }
        }
        out
    }

    fn json(&self) -> Json {
        let number = |value: f64| Json::Number(value);
        let optional = |value: Option<f64>| value.map_or(Json::Null, Json::Number);
        let seconds = self.loadgen.elapsed_seconds.max(0.001);
        Json::object([
            ("mode", Json::String(self.mode.clone())),
            ("minutes", number(self.minutes)),
            ("elapsed_seconds", number(self.elapsed_seconds)),
            ("load", Json::String(self.load.clone())),
            (
                "throughput",
                Json::Array(
                    SIGNALS
                        .iter()
                        .map(|(signal, _)| {
                            let items = self
                                .loadgen
                                .accepted_by_signal
                                .get(*signal)
                                .copied()
                                .unwrap_or(0);
                            Json::object([
                                ("signal", Json::String((*signal).to_owned())),
                                ("items", number(items as f64)),
                                ("items_per_second", number(items as f64 / seconds)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "loadgen",
                Json::object([
                    ("requests", number(self.loadgen.requests as f64)),
                    ("items_accepted", number(self.loadgen.items_accepted as f64)),
                    ("items_rejected", number(self.loadgen.items_rejected as f64)),
                    ("items_per_second", number(self.loadgen.items_per_second)),
                    ("ack_p50_ms", number(self.loadgen.ack_p50_ms)),
                    ("ack_p99_ms", number(self.loadgen.ack_p99_ms)),
                    ("ack_max_ms", number(self.loadgen.ack_max_ms)),
                    (
                        "errors",
                        Json::Object(
                            self.loadgen
                                .errors
                                .iter()
                                .map(|(code, count)| (code.clone(), number(*count as f64)))
                                .collect(),
                        ),
                    ),
                ]),
            ),
            (
                "rpcs",
                Json::Array(
                    self.rpcs
                        .iter()
                        .map(|row| {
                            Json::object([
                                ("process", Json::String(row.process.clone())),
                                ("rpc", Json::String(row.rpc.clone())),
                                ("calls", number(row.calls as f64)),
                                (
                                    "errors",
                                    Json::Object(
                                        row.errors
                                            .iter()
                                            .map(|(code, count)| {
                                                (code_name(code), number(*count as f64))
                                            })
                                            .collect(),
                                    ),
                                ),
                                ("p50_ms", optional(row.p50_ms)),
                                ("p99_ms", optional(row.p99_ms)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "client_operations",
                Json::Array(
                    self.client_rows()
                        .into_iter()
                        .map(|row| {
                            Json::object([
                                ("operation", Json::String(row.name)),
                                ("calls", number(row.calls as f64)),
                                ("errors", number(row.failures as f64)),
                                ("p50_ms", optional(row.p50_ms)),
                                ("p99_ms", optional(row.p99_ms)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "processes",
                Json::Array(
                    self.processes
                        .iter()
                        .map(|process| {
                            Json::object([
                                ("process", Json::String(process.name.clone())),
                                ("peak_rss_bytes", number(process.peak_rss_bytes as f64)),
                                (
                                    "rss_at_start_bytes",
                                    optional(process.rss_at_start_bytes.map(|b| b as f64)),
                                ),
                                (
                                    "rss_at_end_bytes",
                                    optional(process.rss_at_end_bytes.map(|b| b as f64)),
                                ),
                                ("cpu_seconds", optional(process.cpu_seconds)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "stored",
                Json::Array(
                    self.stored
                        .iter()
                        .map(|row| {
                            Json::object([
                                ("items", Json::String(row.what.clone())),
                                ("acknowledged", number(row.acknowledged as f64)),
                                (
                                    "accepted_by_ingest",
                                    row.accepted_by_ingest
                                        .map_or(Json::Null, |count| number(count as f64)),
                                ),
                                ("stored", number(row.stored as f64)),
                                ("ok", Json::Bool(row.ok())),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "errors",
                Json::Array(self.failures.iter().cloned().map(Json::String).collect()),
            ),
        ])
    }
}

/// Just enough JSON to write the report (xtask has no serde_json).
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Object(
            fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(value) => write!(f, "{value}"),
            Json::Number(value) if !value.is_finite() => f.write_str("null"),
            Json::Number(value) if value.fract() == 0.0 && value.abs() < 1e15 => {
                write!(f, "{}", *value as i64)
            }
            Json::Number(value) => write!(f, "{value}"),
            Json::String(text) => write_json_string(f, text),
            Json::Array(items) => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(fields) => {
                f.write_str("{")?;
                for (index, (name, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write_json_string(f, name)?;
                    write!(f, ": {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_json_string(f: &mut std::fmt::Formatter<'_>, text: &str) -> std::fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_escaped_labels() {
        let samples = parse_metrics(
            "# HELP x y\nrpc_bucket{a=\"1\",b=\"x\\\"y,z\",le=\"+Inf\"} 42\nplain 1.5\n",
        );
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].label("b"), "x\"y,z");
        assert_eq!(samples[0].label("le"), "+Inf");
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[1].name, "plain");
        assert!(samples[1].labels.is_empty());
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let buckets = vec![
            (0.01, 0.0),
            (0.02, 50.0),
            (0.05, 100.0),
            (f64::INFINITY, 100.0),
        ];
        let p50 = quantile(0.5, &buckets).unwrap_or_default();
        assert!((p50 - 0.02).abs() < 1e-9);
        let p25 = quantile(0.25, &buckets).unwrap_or_default();
        assert!((p25 - 0.015).abs() < 1e-9);
        let overflow = vec![(0.01, 0.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(0.5, &overflow), Some(0.01));
        assert_eq!(quantile(0.5, &vec![(f64::INFINITY, 0.0)]), None);
    }

    #[test]
    fn rpc_rows_count_only_the_load_and_its_errors() {
        let line = |code: &str, le: &str, count: u64| {
            format!(
                "rpc_server_call_duration_seconds_bucket{{rpc_grpc_status_code=\"{code}\",\
                 rpc_method=\"M\",rpc_service=\"S\",le=\"{le}\"}} {count}\n"
            )
        };
        let before = parse_metrics(&(line("0", "0.1", 5) + &line("0", "+Inf", 5)));
        let after = parse_metrics(
            &(line("0", "0.1", 15)
                + &line("0", "+Inf", 15)
                + &line("14", "0.1", 1)
                + &line("14", "+Inf", 1)),
        );
        let rows = rpc_rows(
            &BTreeMap::from([("p".to_owned(), before)]),
            &BTreeMap::from([("p".to_owned(), after)]),
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].calls, 11);
        assert_eq!(rows[0].errors.get("14"), Some(&1));
        assert_eq!(code_name("14"), "UNAVAILABLE");
    }

    #[test]
    fn database_urls_and_numbers() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "x").ok(),
            Some("postgres://u@h:5432/x?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://h", "x").ok(),
            Some("postgres://h/x".to_owned())
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        let json = Json::object([("a\"", Json::Number(1.0)), ("b", Json::Number(0.5))]);
        assert_eq!(json.to_string(), "{\"a\\\"\": 1, \"b\": 0.5}");
    }

    #[test]
    fn loadgen_reports_parse() {
        let text = r#"{
  "signal": "mixed",
  "protocol": "pharos",
  "elapsed_seconds": 3.006159938,
  "requests": 623,
  "items_sent": 62300,
  "items_accepted": 62300,
  "items_rejected": 0,
  "items_per_second": 20724.113581743833,
  "accepted_by_signal": {"logs": 15500, "metrics": 31800},
  "ack_p50_ms": 7.543,
  "ack_p99_ms": 34.975,
  "ack_max_ms": 38.783,
  "errors": {}
}"#;
        let report: Result<LoadgenReport, _> = serde_yaml_ng::from_str(text);
        let report = report.map_err(|error| error.to_string());
        assert!(report.is_ok(), "{report:?}");
        if let Ok(report) = report {
            assert_eq!(report.accepted_by_signal.get("metrics"), Some(&31_800));
            assert!(report.errors.is_empty());
        }
    }
}
