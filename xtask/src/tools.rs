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
