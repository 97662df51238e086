//! `cargo xtask image`: checks everything under `deploy/` and the image `deploy/Dockerfile` makes,
//! offline. The steps, each printed with its duration:
//!
//! 1. tools: buildah, podman, runc, promtool, a Python with PyYAML, docker-compose (apt-get);
//! 2. the binary: `--binary PATH`, else the release build (`cargo build --release -p pharos -p
//!    pharos-bench`, a no-op when current);
//! 3. deploy files: `pharos settings --config` on every example settings file, `pharos alert
//!    check-config` (and amtool's) on the routing file, `promtool check config` and `check rules`
//!    and `test rules`, `docker-compose config` and the structure of the Compose file, the
//!    Grafana dashboards (`deploy/image/check_deploy.py`);
//! 4. the image: `deploy/image/rootfs.sh` lays the binary, its libraries and loader out in a
//!    build context, and `buildah bud --target runtime-prebuilt` builds `deploy/Dockerfile`
//!    from it (storage driver vfs, no registry);
//! 5. its metadata (user 65532:65532, entrypoint, command, ports) and size;
//! 6. the container: `pharos targets` in it, then its default command (`pharos serve`, every
//!    service) with podman on runc, ports published on loopback; HTTP `/health` and `/ready`,
//!    `pharos health` of every service and a gRPC call (`pharos config list`) from the host,
//!    uid and gid of the process (65532);
//! 7. every PromQL expression of the dashboards and the Prometheus rules through the container's
//!    Prometheus API (`/api/v1/query`), each answered with `"status":"success"`;
//!
//! then removes the container, the image and the build context, failed or not.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use xshell::{Shell, cmd};

use crate::http::{first_chars, free_port, http_get, percent_encode};
use crate::step;

/// The image's name; `cargo xtask image` tags its throwaway build `:xtask-<pid>`.
const IMAGE: &str = "ghcr.io/pharos-platform/pharos";
/// The user the image runs as (distroless' `nonroot`).
const UID: u32 = 65532;
/// An image above this is a regression: the stripped release binary and glibc made 41 MB.
const MAX_RELEASE_IMAGE_MB: f64 = 60.0;

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// The `pharos` binary to put in the image [default: the release build, built first]. A
    /// debug binary works too; its
    /// image is larger and not held to the size limit.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Leave the container running and the image in place (for a look with podman); print how
    /// to remove them.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(sh: &Shell, args: ImageArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = crate::project_root();
    step("tools: buildah, podman, runc, promtool", || {
        crate::tools::container_tools(sh)?;
        crate::tools::prometheus(sh)?;
        Ok(())
    })?;
    let binary = step("the pharos binary", || binary(sh, args.binary.as_deref()))?;
    step("deploy files", || check_deploy_files(sh, &root, &binary))?;

    let work = Work::new(args.keep)?;
    step(
        "build the image with buildah (offline, target runtime-prebuilt)",
        || build_image(sh, &root, &binary, &work),
    )?;
    let size_mb = step("image metadata and size", || {
        check_metadata(sh, &work, &binary)
    })?;
    step("pharos targets in the image", || {
        let output = work
            .podman(sh, &["run", "--rm", work.image.as_str(), "targets"])
            .read()
            .context("`pharos targets` in the image failed")?;
        eprintln!("{output}");
        ensure!(
            output.lines().any(|line| line.trim() == "all"),
            "`pharos targets` did not list `all`"
        );
        Ok(())
    })?;
    let ports = step("start `pharos serve` in a container", || {
        start_container(sh, &work)
    })?;
    step("health over HTTP and gRPC, uid 65532", || {
        check_running(sh, &work, &binary, &ports)
    })?;
    step(
        "PromQL of the dashboards and rules through the container's /api/v1/query",
        || check_queries(sh, &root, &ports),
    )?;
    eprintln!(
        "\nimage: all steps passed in {:.0}s ({IMAGE}, {size_mb:.1} MB)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The binary to package: the one given, else the release build, with its size.
fn binary(sh: &Shell, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let binary = crate::pharos_binary(sh, given)?;
    let size = std::fs::metadata(&binary)?.len();
    eprintln!("binary size: {:.1} MB", mb(size));
    Ok(binary)
}

/// Everything under deploy/ that can be checked without a container.
fn check_deploy_files(sh: &Shell, root: &Path, binary: &Path) -> anyhow::Result<()> {
    let deploy = root.join("deploy");
    let settings_dir = deploy.join("settings");
    let mut settings_files: Vec<PathBuf> = std::fs::read_dir(&settings_dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    settings_files.sort();
    ensure!(
        settings_files.len() >= 2,
        "expected the example settings files in {}",
        settings_dir.display()
    );
    for file in &settings_files {
        eprintln!("pharos settings --config {}", relative(root, file));
        // Unknown keys and invalid values stop `pharos settings`; the file's secrets would come
        // from the environment, which must not leak in from the caller's.
        let printed = cmd!(sh, "{binary} settings --config {file}")
            .env_remove("PHAROS_CONFIG_FILE")
            .env_remove("PHAROS_TARGET")
            .env_remove("PHAROS_DATABASE_URL")
            .quiet()
            .read()
            .with_context(|| format!("{} is not valid settings", file.display()))?;
        let name = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("");
        if let Some(service) = name.strip_prefix("distributed-") {
            let wanted = format!("target = [\"{service}\"]");
            ensure!(
                printed.contains(&wanted),
                "{} does not run only the {service} service (no `{wanted}`)",
                file.display()
            );
        }
    }
    let routing = settings_dir.join("alertmanager.yml");
    eprintln!("pharos alert check-config {}", relative(root, &routing));
    cmd!(sh, "{binary} alert check-config {routing}").run()?;
    if let Some(amtool) = ["/usr/bin/amtool", "/usr/local/bin/amtool"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
    {
        cmd!(sh, "{amtool} check-config {routing}").run()?;
    }

    let promtool = crate::tools::prometheus(sh)?.with_file_name("promtool");
    let prometheus_dir = deploy.join("prometheus");
    let config = prometheus_dir.join("prometheus.yml");
    // The file names paths inside the Prometheus container (/etc/prometheus/rules/*.yml, the
    // token file): check it from a copy whose paths point into the repository.
    let copy_dir = std::env::temp_dir().join(format!("pharos-promcheck-{}", std::process::id()));
    std::fs::create_dir_all(&copy_dir)?;
    let checked = (|| -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&config)?
            .replace(
                "/etc/prometheus/rules/",
                &format!("{}/", prometheus_dir.join("rules").display()),
            )
            .replace(
                "/etc/prometheus/self_monitoring.yml",
                &root
                    .join("crates/pharos-alert/rules/self_monitoring.yml")
                    .display()
                    .to_string(),
            )
            .replace(
                "/prometheus/pharos.token",
                &copy_dir.join("pharos.token").display().to_string(),
            );
        std::fs::write(copy_dir.join("pharos.token"), "token")?;
        let copy = copy_dir.join("prometheus.yml");
        std::fs::write(&copy, text)?;
        cmd!(sh, "{promtool} check config {copy}").run()?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&copy_dir);
    checked.context("promtool check config deploy/prometheus/prometheus.yml failed")?;
    let rules = sorted_files(&prometheus_dir.join("rules"), ".rules.yml")?;
    ensure!(
        !rules.is_empty(),
        "no *.rules.yml under deploy/prometheus/rules"
    );
    cmd!(sh, "{promtool} check rules {rules...}").run()?;
    let tests = sorted_files(&prometheus_dir.join("rules"), ".test.yml")?;
    if !tests.is_empty() {
        cmd!(sh, "{promtool} test rules {tests...}").run()?;
    }

    let python = crate::tools::python_with_yaml(sh)?;
    let checker = deploy.join("image").join("check_deploy.py");
    cmd!(sh, "{python} {checker} check {deploy}").run()?;
    match crate::tools::docker_compose(sh) {
        Ok(compose) => {
            let file = deploy.join("docker-compose.yml");
            eprintln!("docker-compose -f {} config -q", relative(root, &file));
            cmd!(sh, "{compose} -f {file} config -q")
                .run()
                .context("docker-compose finds deploy/docker-compose.yml invalid")?;
        }
        Err(error) => eprintln!("warning: skipping the Compose schema check: {error:#}"),
    }
    Ok(())
}

/// A build context, the names of the image and container, and the podman configuration; removes
/// the container, the image and the context when dropped (unless kept).
struct Work {
    dir: PathBuf,
    image: String,
    container: String,
    keep: bool,
}

impl Work {
    fn new(keep: bool) -> anyhow::Result<Work> {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("pharos-image-{id}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.join("context"))?;
        // Podman's default ulimits (nofile) cannot be set in this sandbox: runc fails with
        // "error setting rlimit type 7: operation not permitted". Keep the host's instead.
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = []\nlog_driver = \"k8s-file\"\n\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n",
        )?;
        Ok(Work {
            image: format!("{IMAGE}:xtask-{id}"),
            container: format!("pharos-xtask-{id}"),
            dir,
            keep,
        })
    }

    fn context(&self) -> PathBuf {
        self.dir.join("context")
    }

    /// `podman` rootful, storage driver vfs (as buildah), runc, cgroupfs, our containers.conf.
    fn podman<'a>(&self, sh: &'a Shell, args: &[&str]) -> xshell::Cmd<'a> {
        cmd!(
            sh,
            "podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs --events-backend file {args...}"
        )
        .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
    }

    fn buildah<'a>(&self, sh: &'a Shell, args: &[&str]) -> xshell::Cmd<'a> {
        cmd!(sh, "buildah --storage-driver vfs {args...}")
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let Ok(sh) = Shell::new() else { return };
        if self.keep {
            eprintln!(
                "\nkept: container {c} and image {i}; remove them with\n  \
                 CONTAINERS_CONF={conf} podman --storage-driver vfs rm -f {c}\n  \
                 podman --storage-driver vfs rmi -f {i}",
                c = self.container,
                i = self.image,
                conf = self.dir.join("containers.conf").display(),
            );
            return;
        }
        eprintln!("\n==> clean up: container, image, build context");
        let _ = self
            .podman(
                &sh,
                &["rm", "--force", "--time", "5", self.container.as_str()],
            )
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
        let _ = self
            .podman(&sh, &["rmi", "--force", self.image.as_str()])
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn build_image(sh: &Shell, root: &Path, binary: &Path, work: &Work) -> anyhow::Result<()> {
    let rootfs_sh = root.join("deploy").join("image").join("rootfs.sh");
    let rootfs = work.context().join("rootfs");
    cmd!(sh, "sh {rootfs_sh} {binary} {rootfs}").run()?;
    let dockerfile = root.join("deploy").join("Dockerfile");
    let dockerfile = dockerfile.to_string_lossy().into_owned();
    let context = work.context().to_string_lossy().into_owned();
    work.buildah(
        sh,
        &[
            "bud",
            "--target",
            "runtime-prebuilt",
            "--file",
            &dockerfile,
            "--tag",
            work.image.as_str(),
            &context,
        ],
    )
    .run()
    .context("buildah bud failed")?;
    Ok(())
}

/// The image runs as 65532:65532 with `pharos` as entrypoint and `serve` as command, exposes
/// 50051 and 8081, and is not much bigger than its binary; returns the size in MB.
fn check_metadata(sh: &Shell, work: &Work, binary: &Path) -> anyhow::Result<f64> {
    let inspect = |format: &str| -> anyhow::Result<String> {
        Ok(work
            .podman(
                sh,
                &["image", "inspect", "--format", format, work.image.as_str()],
            )
            .quiet()
            .read()?
            .trim()
            .to_owned())
    };
    let user = inspect("{{.Config.User}}")?;
    let entrypoint = inspect("{{json .Config.Entrypoint}}")?;
    let command = inspect("{{json .Config.Cmd}}")?;
    let ports = inspect("{{json .Config.ExposedPorts}}")?;
    let size: u64 = inspect("{{.Size}}")?.parse().context("image size")?;
    eprintln!("user {user}\nentrypoint {entrypoint}\ncmd {command}\nports {ports}");
    ensure!(
        user == format!("{UID}:{UID}"),
        "the image runs as {user:?}, not {UID}:{UID}"
    );
    ensure!(
        entrypoint == r#"["pharos"]"#,
        "unexpected entrypoint {entrypoint}"
    );
    ensure!(
        command.starts_with(r#"["serve","#) && command.contains("0.0.0.0:8081"),
        "unexpected command {command}"
    );
    ensure!(
        ports.contains("50051/tcp") && ports.contains("8081/tcp"),
        "the image does not expose 50051 and 8081: {ports}"
    );
    let image_mb = mb(size);
    let binary_mb = mb(std::fs::metadata(binary)?.len());
    let stripped = work.context().join("rootfs/usr/local/bin/pharos");
    let stripped_mb = mb(std::fs::metadata(&stripped)?.len());
    eprintln!(
        "image {image_mb:.1} MB (the binary {binary_mb:.1} MB, stripped {stripped_mb:.1} MB)"
    );
    let release = binary
        .components()
        .any(|part| part.as_os_str() == "release");
    if release {
        ensure!(
            image_mb <= MAX_RELEASE_IMAGE_MB,
            "the image is {image_mb:.1} MB, over {MAX_RELEASE_IMAGE_MB} MB"
        );
    } else {
        eprintln!(
            "(not a release binary: the size limit of {MAX_RELEASE_IMAGE_MB} MB is not applied)"
        );
    }
    Ok(image_mb)
}

/// Host ports published to the container's gRPC and HTTP listeners.
struct Ports {
    grpc: u16,
    http: u16,
}

fn start_container(sh: &Shell, work: &Work) -> anyhow::Result<Ports> {
    let ports = Ports {
        grpc: free_port()?,
        http: free_port()?,
    };
    let grpc = format!("127.0.0.1:{}:50051", ports.grpc);
    let http = format!("127.0.0.1:{}:8081", ports.http);
    // The image's own command: `pharos serve` with every service, SQLite in /var/lib/pharos.
    let id = work
        .podman(
            sh,
            &[
                "run",
                "--detach",
                "--name",
                work.container.as_str(),
                "--publish",
                &grpc,
                "--publish",
                &http,
                "--env",
                "PHAROS_ALERT__SELF_MONITORING_INTERVAL=2s",
                work.image.as_str(),
            ],
        )
        .read()
        .context("podman run failed")?;
    eprintln!(
        "container {} ({}), gRPC on 127.0.0.1:{}, HTTP on 127.0.0.1:{}",
        work.container,
        id.chars().take(12).collect::<String>(),
        ports.grpc,
        ports.http
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let address = SocketAddr::from(([127, 0, 0, 1], ports.http));
    loop {
        match http_get(address, "/ready") {
            Ok((200, _)) => break,
            outcome => {
                let running = work
                    .podman(
                        sh,
                        &[
                            "inspect",
                            "--format",
                            "{{.State.Running}}",
                            work.container.as_str(),
                        ],
                    )
                    .quiet()
                    .read()
                    .unwrap_or_default();
                if running.trim() != "true" || Instant::now() > deadline {
                    let logs = work
                        .podman(sh, &["logs", work.container.as_str()])
                        .quiet()
                        .ignore_status()
                        .output()
                        .map(|out| {
                            format!(
                                "{}{}",
                                String::from_utf8_lossy(&out.stdout),
                                String::from_utf8_lossy(&out.stderr)
                            )
                        })
                        .unwrap_or_default();
                    bail!(
                        "the container did not become ready (running: {}, last /ready: {outcome:?}); its log:\n{logs}",
                        running.trim()
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    Ok(ports)
}

fn check_running(sh: &Shell, work: &Work, binary: &Path, ports: &Ports) -> anyhow::Result<()> {
    let http = SocketAddr::from(([127, 0, 0, 1], ports.http));
    let (status, body) = http_get(http, "/health")?;
    eprintln!("GET /health: {status} {}", first_chars(&body, 300));
    ensure!(status == 200, "/health answered {status}: {body}");
    let endpoint = format!("http://127.0.0.1:{}", ports.grpc);
    // grpc.health.v1 of every service, as Compose's healthchecks and the chart's test Pod ask.
    let services = [
        "pharos.config.v1.ConfigService",
        "pharos.ingest.v1.IngestService",
        "pharos.query.v1.QueryService",
        "pharos.search.v1.SearchService",
        "pharos.alert.v1.AlertService",
    ]
    .iter()
    .flat_map(|service| ["--service", service]);
    let health = cmd!(sh, "{binary} health --endpoint {endpoint} {services...}")
        .read()
        .context("pharos health: a service in the container is not serving")?;
    eprintln!("pharos health (gRPC):\n{health}");
    let listed = cmd!(sh, "{binary} config list --endpoint {endpoint}")
        .env_remove("PHAROS_TOKEN")
        .read()
        .context("a gRPC call (pharos config list) to the container failed")?;
    eprintln!(
        "pharos config list (gRPC): ok, {} lines",
        listed.lines().count()
    );
    // The call just made is counted on /metrics, with the names the dashboards and rules use.
    let (status, metrics) = http_get(http, "/metrics")?;
    ensure!(
        status == 200 && metrics.contains("rpc_server_call_duration_seconds_count{"),
        "/metrics answered {status} without rpc_server_call_duration_seconds_count"
    );
    // The server's main process, seen from the host: its real and effective ids.
    let pid = work
        .podman(
            sh,
            &[
                "inspect",
                "--format",
                "{{.State.Pid}}",
                work.container.as_str(),
            ],
        )
        .quiet()
        .read()?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .context("reading the container process's status")?;
    let ids = |key: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (uids, gids) = (ids("Uid:"), ids("Gid:"));
    eprintln!("process {}: Uid {uids:?} Gid {gids:?}", pid.trim());
    ensure!(
        !uids.is_empty() && uids.iter().all(|id| id == &UID.to_string()),
        "the server runs with uids {uids:?}, not {UID}"
    );
    ensure!(
        !gids.is_empty() && gids.iter().all(|id| id == &UID.to_string()),
        "the server runs with gids {gids:?}, not {UID}"
    );
    Ok(())
}

/// Runs each PromQL expression `check_deploy.py exprs` lists (dashboards with their variables
/// filled in, recording and alerting rules) through the container's Prometheus API.
fn check_queries(sh: &Shell, root: &Path, ports: &Ports) -> anyhow::Result<()> {
    let python = crate::tools::python_with_yaml(sh)?;
    let deploy = root.join("deploy");
    let checker = deploy.join("image").join("check_deploy.py");
    let listing = cmd!(sh, "{python} {checker} exprs {deploy}").read()?;
    let http = SocketAddr::from(([127, 0, 0, 1], ports.http));
    // What the data dashboard's metric variable lists (label_values(__name__)).
    let (status, body) = http_get(http, "/api/v1/label/__name__/values")?;
    ensure!(
        status == 200 && body.contains(r#""status":"success""#),
        "/api/v1/label/__name__/values answered {status}: {body}"
    );
    let (mut passed, mut failed) = (0, 0);
    for line in listing.lines().filter(|line| !line.trim().is_empty()) {
        let Some((source, expr)) = line.split_once('\t') else {
            bail!("unexpected line from check_deploy.py: {line}");
        };
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (status, body) = http_get(http, &path)?;
        if status == 200 && body.contains(r#""status":"success""#) {
            passed += 1;
        } else {
            failed += 1;
            eprintln!(
                "FAILED {source}: {expr}\n  {status} {}",
                first_chars(&body, 400)
            );
        }
    }
    eprintln!(
        "PromQL through /api/v1/query: {passed} of {} answered with success",
        passed + failed
    );
    ensure!(passed > 0, "check_deploy.py listed no expression");
    ensure!(
        failed == 0,
        "{failed} expressions were refused by Pharos' Prometheus API"
    );
    Ok(())
}

fn sorted_files(dir: &Path, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Megabytes (10^6 bytes), as registries and `podman images` show sizes.
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
