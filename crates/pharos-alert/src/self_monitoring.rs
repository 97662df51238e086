//! Self-monitoring: the process's own metrics (`pharos_runtime::metrics::samples`, the resident
//! memory from `/proc/self/statm` and a timed round trip to the store) written through ingest
//! every `alert.self_monitoring_interval` with `job="pharos"` and `instance=<gRPC address>`, and
//! the rule file `rules/self_monitoring.yml` (built into the binary) evaluated over them like any
//! rule group. Each process writes its own metrics, so in split mode the alert process watches
//! itself; a Prometheus scraping every process's `/metrics` can run the same file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pharos_api::ingest::IngestApi;
use pharos_proto::ingest::v1 as pb;
use pharos_rules::RuleGroup;
use pharos_runtime::Shutdown;
use pharos_store::Store;

/// The self-monitoring rule file, as shipped.
pub const RULES: &str = include_str!("../rules/self_monitoring.yml");

/// The file name the built-in groups carry (rule state and the API show it).
const RULES_FILE: &str = "builtin:self_monitoring.yml";

/// Points per write.
const WRITE_CHUNK: usize = 5_000;

/// The built-in self-monitoring groups.
pub fn rule_groups() -> Vec<(PathBuf, RuleGroup)> {
    match pharos_rules::parse_rule_groups(RULES) {
        Ok(groups) => groups
            .into_iter()
            .map(|group| (PathBuf::from(RULES_FILE), group))
            .collect(),
        Err(errors) => {
            // The file is checked by the tests; this would be a build of a broken file.
            tracing::error!(?errors, "the built-in self-monitoring rules do not read");
            Vec::new()
        }
    }
}

/// Writes this process's metrics through ingest every `interval` until the process stops.
pub async fn write_own_metrics(
    ingest: Arc<dyn IngestApi>,
    store: Store,
    instance: String,
    interval: Duration,
    shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let points = own_metrics(&store, &instance).await;
        for chunk in points.chunks(WRITE_CHUNK) {
            let request = pb::WriteMetricsRequest {
                points: chunk.to_vec(),
            };
            match ingest.write_metrics(request).await {
                Ok(response) if response.rejected > 0 => tracing::debug!(
                    rejected = response.rejected,
                    first = ?response.rejections.first(),
                    "some self-monitoring samples were refused"
                ),
                Ok(_) => {}
                Err(status) => {
                    tracing::warn!(error = %status.message(), "cannot write self-monitoring samples; will retry");
                    break;
                }
            }
        }
    }
}

/// The samples of one self-scrape, as metric points stamped by the server.
async fn own_metrics(store: &Store, instance: &str) -> Vec<pb::MetricPoint> {
    let mut samples = pharos_runtime::metrics::samples();
    if let Some(bytes) = resident_memory_bytes() {
        samples.push(pharos_runtime::metrics::MetricSample {
            name: "process_resident_memory_bytes".to_owned(),
            labels: Vec::new(),
            value: bytes,
        });
    }
    if let Ok(round_trip) = store.ping().await {
        samples.push(pharos_runtime::metrics::MetricSample {
            name: "pharos_database_round_trip_seconds".to_owned(),
            labels: Vec::new(),
            value: round_trip.as_secs_f64(),
        });
    }
    samples
        .into_iter()
        .filter(|sample| sample.name != "target_info")
        .map(|sample| {
            let mut labels: Vec<pb::Label> = sample
                .labels
                .into_iter()
                .filter(|(name, _)| name != "job" && name != "instance")
                .map(|(name, value)| pb::Label { name, value })
                .collect();
            labels.push(pb::Label {
                name: "job".to_owned(),
                value: "pharos".to_owned(),
            });
            labels.push(pb::Label {
                name: "instance".to_owned(),
                value: instance.to_owned(),
            });
            pb::MetricPoint {
                name: sample.name,
                labels,
                time_unix_nano: 0,
                value: sample.value,
            }
        })
        .collect()
}

/// The process's resident memory, from `/proc/self/statm` (pages of 4 KiB); `None` where
/// there is no procfs.
fn resident_memory_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_read_and_plan() {
        let groups = rule_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1.rules.len(), 6);
    }

    #[test]
    fn resident_memory_reads_from_procfs() {
        let bytes = resident_memory_bytes().expect("procfs on Linux");
        assert!(bytes > 1024.0 * 1024.0, "{bytes}");
    }
}
