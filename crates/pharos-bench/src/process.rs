//! Child processes under measurement (pharos replicas, etcd, Prometheus, VictoriaMetrics):
//! spawned on free loopback ports with their output in a log file, killed when dropped, with
//! their resident memory readable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A free loopback port (bound, read, released: good enough for a benchmark on one machine).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running child process.
pub struct Server {
    pub name: String,
    child: tokio::process::Child,
    log: PathBuf,
    pub started: Instant,
}

impl Server {
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let output = std::fs::File::create(&log)?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            started,
        })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .with_context(|| format!("{} has exited", self.name))
    }

    /// Resident set size from /proc.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmRSS:")
    }

    /// The highest resident set size so far (the kernel's high-water mark).
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmHWM:")
    }

    fn status_bytes(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in /proc/<pid>/status"))?;
        Ok(kib * 1024)
    }

    /// CPU time (user + system) the process has used so far, from /proc (10 ms resolution).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("malformed /proc/<pid>/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |index: usize| -> anyhow::Result<u64> {
            Ok(fields
                .get(index)
                .context("short /proc/<pid>/stat")?
                .parse()?)
        };
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        let total = ticks(11)? + ticks(12)?;
        Ok(Duration::from_millis(total * 10))
    }

    /// Fails with the tail of the log when the process has already exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} exited with {status}; last log lines:\n{}",
                self.name,
                tail.join("\n")
            );
        }
        Ok(())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Ok(pid) = self.pid() {
            // SIGTERM for a clean shutdown; kill_on_drop covers the rest.
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        }
        Ok(())
    }
}

/// Starts `pharos serve --target <target>` on `database_url` with free loopback ports and waits
/// until it reports SERVING.
pub async fn start_pharos(
    binary: &Path,
    target: &str,
    database_url: &str,
    work: &Path,
    name: &str,
) -> anyhow::Result<(Server, SocketAddr)> {
    let (server, grpc, _) =
        start_pharos_with(binary, target, database_url, work, name, &[]).await?;
    Ok((server, grpc))
}

/// [`start_pharos`] with settings given as `PHAROS_*` environment variables; also returns the
/// HTTP listener (the Prometheus API of the query service, /metrics, /health).
pub async fn start_pharos_with(
    binary: &Path,
    target: &str,
    database_url: &str,
    work: &Path,
    name: &str,
    env: &[(&str, String)],
) -> anyhow::Result<(Server, SocketAddr, SocketAddr)> {
    let grpc = loopback(free_port()?);
    let http = loopback(free_port()?);
    let args = [
        "serve".to_owned(),
        "--target".to_owned(),
        target.to_owned(),
        "--grpc-addr".to_owned(),
        grpc.to_string(),
        "--http-addr".to_owned(),
        http.to_string(),
        "--database-url".to_owned(),
        database_url.to_owned(),
        "--data-dir".to_owned(),
        work.join(name).display().to_string(),
    ];
    let mut server = Server::spawn(name, binary, &args, env, work)?;
    wait_serving(&mut server, grpc, Duration::from_secs(30)).await?;
    Ok((server, grpc, http))
}

pub async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

/// Polls gRPC health (overall status) until SERVING and returns the time since the process
/// started. Polls every millisecond: the figure is the start-up time, not the poll period.
pub async fn wait_serving(
    server: &mut Server,
    addr: SocketAddr,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + limit;
    loop {
        server.check_alive()?;
        if Instant::now() > deadline {
            bail!("{} did not report SERVING within {limit:?}", server.name);
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_millis(100));
        if let Ok(channel) = endpoint.connect().await {
            let mut health = HealthClient::new(channel);
            if let Ok(response) = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                && response.into_inner().status == ServingStatus::Serving as i32
            {
                return Ok(server.started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
