//! `cargo xtask ci`: the whole check CI runs (and what README tells contributors to run), in the
//! order that fails fastest: no-build checks first, then one shared build for clippy and tests,
//! then the Python clients against the built binary, then the image and deploy files.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::step;

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    // What CI means for the suites: a test that needs PostgreSQL fails instead of skipping when
    // none is reachable. Set here, so `cargo xtask ci` on a laptop checks what CI checks.
    sh.set_var("CI", "true");
    step("toolchain components", || ensure_components(sh))?;
    let database_url = step("PostgreSQL", || crate::pg::ensure_for_tests(sh))?;
    sh.set_var("PHAROS_TEST_DATABASE_URL", &database_url);
    // The PromQL conformance suite and the rule tests compare Pharos with a real Prometheus
    // 2.42 and its promtool, the routing tests with Alertmanager 0.25's amtool; under CI=true
    // they fail without them.
    step(
        "Prometheus and promtool (PromQL and rules reference)",
        || crate::tools::prometheus(sh).map(drop),
    )?;
    step("amtool (Alertmanager reference)", || {
        crate::tools::amtool(sh).map(drop)
    })?;
    step("cargo fmt --check", || {
        Ok(cmd!(sh, "cargo fmt --all -- --check").run()?)
    })?;
    step("tidy", || crate::tidy::run(&crate::project_root()))?;
    step("buf lint", || {
        let buf = crate::tools::buf(sh)?;
        Ok(cmd!(sh, "{buf} lint").run()?)
    })?;
    // The Helm chart needs no build: lint, render, validate offline, check bad values refused.
    crate::helm::run(sh)?;
    step("cargo clippy -D warnings", || {
        Ok(cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()?)
    })?;
    step("cargo test", || {
        Ok(cmd!(sh, "cargo test --workspace --locked").run()?)
    })?;
    // `cargo test` has just built target/debug/pharos for the e2e tests; building it again with
    // `-p pharos` would unify features differently and recompile half the dependency tree.
    step("python clients", || python_tests(sh, false))?;
    // The image from deploy/Dockerfile with the binary `cargo test` built (buildah, podman),
    // served and probed; the Compose file, Prometheus rules and Grafana dashboards checked.
    step("deploy: image, compose, rules, dashboards", || {
        crate::image::run(
            sh,
            crate::image::ImageArgs {
                binary: Some(crate::target_dir().join("debug").join("pharos")),
                keep: false,
            },
        )
    })?;
    eprintln!("\nci: all steps passed");
    Ok(())
}

/// Runs `tests/python` (Python grpcio clients) against the debug `pharos` binary, building it
/// first when asked.
pub fn python_tests(sh: &Shell, build: bool) -> anyhow::Result<()> {
    if build {
        cmd!(sh, "cargo build --package pharos --locked").run()?;
    }
    let binary = crate::target_dir().join("debug").join("pharos");
    if !binary.exists() {
        bail!("{} is missing after the build", binary.display());
    }
    let python = crate::tools::python_venv(sh)?;
    cmd!(sh, "{python} -m pytest -q tests/python")
        .env("PHAROS_BIN", &binary)
        .run()
        .context("python client tests failed")?;
    // The client package as its users install it (its dependencies are pinned in the venv's
    // requirements), then its own suite: stub drift, mypy --strict, each service.
    let package = crate::project_root().join("clients").join("python");
    cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall {package}"
    )
    .run()
    .context("pip install clients/python failed")?;
    cmd!(sh, "{python} -m pytest -q clients/python/tests")
        .env("PHAROS_BIN", &binary)
        .run()
        .context("the pharos-client package tests failed")?;
    // The platform as users run it: five processes on PostgreSQL, then `--target all` on SQLite,
    // driven from Python only; kill -9 of each service in turn.
    cmd!(sh, "{python} -m pytest -q tests/platform")
        .env("PHAROS_BIN", &binary)
        .run()
        .context("the platform tests (tests/platform) failed")?;
    Ok(())
}

/// rustfmt and clippy come with rustup's default profile; add them when a minimal toolchain
/// lacks them.
fn ensure_components(sh: &Shell) -> anyhow::Result<()> {
    for (probe, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let present = cmd!(sh, "cargo {probe} --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok();
        if !present {
            cmd!(sh, "rustup component add {component}")
                .run()
                .with_context(|| {
                    format!("cargo {probe} is missing and rustup could not add {component}")
                })?;
        }
    }
    Ok(())
}
