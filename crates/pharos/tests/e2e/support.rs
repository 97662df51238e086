//! What every end-to-end scenario uses: [`Process`], a `pharos serve` child on free loopback
//! ports with its log, [`free_addr`], and the CLI helpers [`cli`] and [`cli_of`].

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pharos_api::{ClientSettings, RemoteConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_pharos");

/// A `pharos serve` child process, killed if the test ends early.
pub struct Process {
    /// The child, until it exits (the kill -9 scenario kills it through this).
    pub child: Option<Child>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    log: std::path::PathBuf,
}

pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

impl Process {
    pub fn spawn(dir: &Path, extra: &[&str]) -> Process {
        Self::spawn_with_env(dir, extra, &[])
    }

    /// Like [`Process::spawn`], with settings given as `PHAROS_*` environment variables.
    pub fn spawn_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Process {
        Self::spawn_at(dir, free_addr(), extra, env)
    }

    /// Like [`Process::spawn_with_env`], serving gRPC on `grpc` (an address reserved earlier,
    /// say one another process was told to reach).
    pub fn spawn_at(dir: &Path, grpc: SocketAddr, extra: &[&str], env: &[(&str, &str)]) -> Process {
        let http = free_addr();
        let log = dir.join(format!("pharos-{}.log", grpc.port()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--grpc-addr")
            .arg(grpc.to_string())
            .arg("--http-addr")
            .arg(http.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn pharos");
        Process {
            child: Some(child),
            grpc,
            http,
            log,
        }
    }

    /// Resident memory of the process now, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let Some(child) = &self.child else { return 0 };
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /health` of this process.
    pub async fn health(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/health", self.http))
            .await
            .expect("health")
            .json()
            .await
            .expect("json")
    }

    /// Waits until gRPC health says SERVING.
    pub async fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(self.endpoint())
                .expect("endpoint")
                .connect()
                .await
            {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                if let Ok(response) = health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    && response.into_inner().status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "pharos did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn client(&self) -> RemoteConfig {
        RemoteConfig::connect(&ClientSettings::new(self.endpoint()).with_actor("e2e"))
            .await
            .expect("connect")
    }

    /// Sends SIGTERM and expects a clean exit.
    pub fn terminate(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where Debian's `name` (from `package`) is installed, or `None` (with the reason printed)
/// outside CI; under CI it must be there (`cargo xtask ci` installs it).
pub fn reference_tool(name: &str, package: &str) -> Option<std::path::PathBuf> {
    let found = [format!("/usr/bin/{name}"), format!("/usr/local/bin/{name}")]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed; `cargo xtask ci` installs Debian's {package} package"
        );
        eprintln!("skipped: {name} is not installed (apt-get install {package})");
    }
    found
}

pub fn cli(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    cli_of("config", endpoint, args)
}

/// Runs `pharos <command> --endpoint <endpoint> <args>`: success, stdout, stderr.
pub fn cli_of(command: &str, endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .arg(command)
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .output()
        .expect("run cli");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
