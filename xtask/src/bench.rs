//! `cargo xtask bench <area>`: builds the release binaries once and runs the `pharos-bench`
//! harness for an area, with the reference system (etcd, PostgreSQL COPY, FAISS, Prometheus and
//! VictoriaMetrics, Alertmanager) measured beside Pharos in the same run.

use anyhow::bail;
use xshell::{Shell, cmd};

pub fn run(sh: &Shell, area: &str, quick: bool) -> anyhow::Result<()> {
    const BUILT: &str = "config, ingest, search, query, alert";
    match area {
        "config" | "ingest" | "search" | "query" | "alert" => {}
        other => bail!("unknown bench area `{other}`; built areas: {BUILT}"),
    }
    let database_url = crate::pg::ensure_for_tests(sh)?;
    let release = crate::build_release(sh)?;
    let harness = release.join("pharos-bench");
    let pharos = release.join("pharos");
    let quick = quick.then_some("--quick");
    if area == "search" {
        let python = crate::tools::bench_venv(sh)?;
        let script = crate::project_root().join("crates/pharos-bench/python/search_reference.py");
        cmd!(
            sh,
            "{harness} search --pharos-bin {pharos} --database-url {database_url} --python {python} --reference-script {script} {quick...}"
        )
        .run()?;
    } else if area == "query" {
        let prometheus = crate::tools::prometheus(sh)?;
        let victoria_metrics = crate::tools::victoria_metrics(sh)?;
        cmd!(
            sh,
            "{harness} query --pharos-bin {pharos} --prometheus-bin {prometheus} --victoria-metrics-bin {victoria_metrics} --database-url {database_url} {quick...}"
        )
        .run()?;
    } else if area == "alert" {
        let prometheus = crate::tools::prometheus(sh)?;
        // Debian's prometheus-alertmanager puts the server beside amtool.
        let alertmanager = crate::tools::amtool(sh)?.with_file_name("prometheus-alertmanager");
        cmd!(
            sh,
            "{harness} alert --pharos-bin {pharos} --prometheus-bin {prometheus} --alertmanager-bin {alertmanager} --database-url {database_url} {quick...}"
        )
        .run()?;
    } else if area == "config" {
        let etcd = crate::tools::etcd(sh)?;
        cmd!(
            sh,
            "{harness} config --pharos-bin {pharos} --etcd-bin {etcd} --database-url {database_url} {quick...}"
        )
        .run()?;
    } else {
        cmd!(
            sh,
            "{harness} {area} --pharos-bin {pharos} --database-url {database_url} {quick...}"
        )
        .run()?;
    }
    Ok(())
}
