//! Component health for HTTP `/health` and `/ready`: each service registers
//! checks (database round trip, cache, change stream...) beside the
//! process-wide ones defined here (resident memory, free disk).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

/// The verdict of one component.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
    Down,
}

/// One component's verdict and the figures behind it.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    pub status: HealthStatus,
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl ComponentHealth {
    pub fn ok(detail: serde_json::Value) -> Self {
        Self::with_status(HealthStatus::Ok, detail)
    }

    pub fn degraded(detail: serde_json::Value) -> Self {
        Self::with_status(HealthStatus::Degraded, detail)
    }

    pub fn down(detail: serde_json::Value) -> Self {
        Self::with_status(HealthStatus::Down, detail)
    }

    fn with_status(status: HealthStatus, detail: serde_json::Value) -> Self {
        let detail = match detail {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("detail".into(), other);
                map
            }
        };
        Self { status, detail }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A component that can say how it is.
pub trait HealthCheck: Send + Sync {
    /// The key of this component in `/health`.
    fn name(&self) -> &str;
    fn check(&self) -> BoxFuture<'_, ComponentHealth>;
}

/// Every check of the process.
#[derive(Clone, Default)]
pub struct HealthRegistry {
    checks: Vec<Arc<dyn HealthCheck>>,
}

impl HealthRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, check: Arc<dyn HealthCheck>) {
        self.checks.push(check);
    }

    /// Runs every check concurrently.
    pub async fn run(&self) -> Vec<(String, ComponentHealth)> {
        let results =
            futures::future::join_all(self.checks.iter().map(|check| check.check())).await;
        self.checks
            .iter()
            .map(|check| check.name().to_string())
            .zip(results)
            .collect()
    }
}

/// Resident memory of this process. The probe's `System` is kept between checks, and each
/// check refreshes only this process' memory figures (one read of `/proc/self/statm` on Linux).
#[derive(Default)]
pub struct ProcessMemoryCheck {
    system: std::sync::Mutex<sysinfo::System>,
}

impl ProcessMemoryCheck {
    pub fn new() -> Self {
        Self::default()
    }
}

impl HealthCheck for ProcessMemoryCheck {
    fn name(&self) -> &str {
        "process_memory"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let Ok(pid) = sysinfo::get_current_pid() else {
                return ComponentHealth::degraded(serde_json::json!({"error": "no pid"}));
            };
            let mut system = self
                .system
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            system.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::Some(&[pid]),
                false,
                sysinfo::ProcessRefreshKind::nothing().with_memory(),
            );
            match system.process(pid) {
                Some(process) => ComponentHealth::ok(serde_json::json!({
                    "rss_bytes": process.memory(),
                    "virtual_bytes": process.virtual_memory(),
                })),
                None => {
                    ComponentHealth::degraded(serde_json::json!({"error": "process not found"}))
                }
            }
        })
    }
}

/// Free space on the disk that holds a directory; degraded under 5 %. The disk is found in
/// the mount table once; each check then refreshes only its space (one `statvfs`), and lists
/// the disks again should that fail (the disk was unmounted).
pub struct FreeDiskCheck {
    path: PathBuf,
    disk: std::sync::Mutex<Option<sysinfo::Disk>>,
}

impl FreeDiskCheck {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            disk: std::sync::Mutex::new(None),
        }
    }
}

impl HealthCheck for FreeDiskCheck {
    fn name(&self) -> &str {
        "disk"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
            let mut held = self
                .disk
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let space = sysinfo::DiskRefreshKind::nothing().with_storage();
            if !held
                .as_mut()
                .is_some_and(|disk| disk.refresh_specifics(space))
            {
                *held = holding_disk(&path);
            }
            match held.as_ref() {
                Some(disk) => {
                    let total = disk.total_space().max(1);
                    let free = disk.available_space();
                    let detail = serde_json::json!({
                        "path": path.display().to_string(),
                        "free_bytes": free,
                        "total_bytes": total,
                    });
                    if free.saturating_mul(20) < total {
                        ComponentHealth::degraded(detail)
                    } else {
                        ComponentHealth::ok(detail)
                    }
                }
                None => ComponentHealth::degraded(serde_json::json!({
                    "path": path.display().to_string(),
                    "error": "no disk found for the path",
                })),
            }
        })
    }
}

/// The mount table's disk that holds `path` (the longest mount point above it); None when no
/// disk holds it.
fn holding_disk(path: &std::path::Path) -> Option<sysinfo::Disk> {
    let disks: Vec<sysinfo::Disk> = sysinfo::Disks::new_with_refreshed_list().into();
    disks
        .into_iter()
        .filter(|disk| path.starts_with(disk.mount_point()))
        .max_by_key(|disk| disk.mount_point().as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(health: &ComponentHealth, key: &str) -> u64 {
        health
            .detail
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("no {key} in {health:?}"))
    }

    #[tokio::test]
    async fn process_memory_is_read_again_at_each_check() {
        let check = ProcessMemoryCheck::new();
        let before = check.check().await;
        assert_eq!(before.status, HealthStatus::Ok, "{before:?}");
        assert!(figure(&before, "rss_bytes") > 0);
        // 64 MiB touched: the next check sees a resident set that grew.
        let held = vec![1u8; 64 << 20];
        let after = check.check().await;
        assert!(
            figure(&after, "rss_bytes") >= figure(&before, "rss_bytes") + (32 << 20),
            "{before:?} then {after:?}"
        );
        drop(held);
    }

    #[tokio::test]
    async fn free_disk_is_the_disk_holding_the_directory_and_read_at_each_check() {
        let directory = std::env::temp_dir();
        let check = FreeDiskCheck::new(directory.clone());
        for _ in 0..2 {
            let health = check.check().await;
            assert_ne!(health.status, HealthStatus::Down, "{health:?}");
            assert!(figure(&health, "total_bytes") >= figure(&health, "free_bytes"));
            assert!(figure(&health, "total_bytes") > 1, "{health:?}");
        }
        let missing = FreeDiskCheck::new(PathBuf::from("relative/and/missing"));
        let health = missing.check().await;
        assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    }
}
