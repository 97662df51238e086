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

/// Resident memory of this process.
pub struct ProcessMemoryCheck;

impl HealthCheck for ProcessMemoryCheck {
    fn name(&self) -> &str {
        "process_memory"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let mut system = sysinfo::System::new();
            let Ok(pid) = sysinfo::get_current_pid() else {
                return ComponentHealth::degraded(serde_json::json!({"error": "no pid"}));
            };
            system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
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

/// Free space on the disk that holds a directory; degraded under 5 %.
pub struct FreeDiskCheck {
    pub path: PathBuf,
}

impl HealthCheck for FreeDiskCheck {
    fn name(&self) -> &str {
        "disk"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
            let disks = sysinfo::Disks::new_with_refreshed_list();
            let disk = disks
                .list()
                .iter()
                .filter(|disk| path.starts_with(disk.mount_point()))
                .max_by_key(|disk| disk.mount_point().as_os_str().len());
            match disk {
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
