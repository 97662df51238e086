//! The `[alert]` section of the settings: where the rules and the routing come from, how often
//! groups evaluate by default, how webhooks are retried, how long the notification log is kept,
//! and where the query and ingest services are when they run in another process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the alert service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Prometheus rule files, as globs; relative paths are relative to the settings file.
    pub rule_files: Vec<String>,
    /// An Alertmanager configuration file (route tree, receivers, inhibit rules, time
    /// intervals); empty: every alert goes to one receiver, `default`, that notifies nobody.
    pub routing_file: PathBuf,
    /// The interval of a rule group that names none (Prometheus' `evaluation_interval`).
    #[serde(with = "pharos_clock::duration")]
    pub evaluation_interval: Duration,
    /// Also evaluate a group as soon as ingest commits points of a metric its rules read.
    pub evaluate_on_commit: bool,
    /// The shortest time between two evaluations of one group that commits triggered.
    #[serde(with = "pharos_clock::duration")]
    pub commit_evaluation_gap: Duration,
    /// Labels added to every alert and recorded series (Prometheus' `external_labels`).
    pub external_labels: BTreeMap<String, String>,
    /// The URL alerts link to (`generatorURL`, `externalURL`, `$externalURL`); empty: the
    /// HTTP listener's address.
    pub external_url: String,
    /// How long a query of a rule may run.
    #[serde(with = "pharos_clock::duration")]
    pub query_timeout: Duration,
    /// Webhook delivery (`[alert.webhook]`).
    pub webhook: WebhookSettings,
    /// How long silences that ended, the notification log and delivered notifications are
    /// kept (Alertmanager's `--data.retention`).
    #[serde(with = "pharos_clock::duration")]
    pub retention: Duration,
    /// The query service, when it runs in another process (`http://query:50051`).
    pub query_endpoint: String,
    /// The ingest service (writes and its feed), when it runs in another process.
    pub ingest_endpoint: String,
    /// The bearer token presented to the query and ingest services of other processes.
    pub service_token: String,
    /// How long the leader's lease lasts without renewal: a standby takes over within
    /// `lease_ttl` and a quarter after the leader stops.
    #[serde(with = "pharos_clock::duration")]
    pub lease_ttl: Duration,
    /// Write this process's own metrics through ingest and evaluate the built-in
    /// self-monitoring rules (`rules/self_monitoring.yml`) over them.
    pub self_monitoring: bool,
    /// How often the process's own metrics are written.
    #[serde(with = "pharos_clock::duration")]
    pub self_monitoring_interval: Duration,
    /// Storm control: the most alerts held at once (firing and recently resolved, from rules,
    /// detectors and the API); new ones past it are refused (the API answers 429). About 2 KiB
    /// each.
    pub max_alerts: usize,
    /// Storm control: how many notifications each route of the tree may send in a window;
    /// what it holds back goes out as one summary when the window ends
    /// (`[alert.notification_rate_limit]`).
    pub notification_rate_limit: NotificationRateLimit,
    /// The security detectors over ingest's security events (`[alert.detectors]`), live
    /// through the `pharos.alert.detectors.*` keys of the config service.
    pub detectors: crate::detect::DetectorSettings,
    /// How long a detection's alert holds after the incident's last detection.
    #[serde(with = "pharos_clock::duration")]
    pub detection_hold: Duration,
    /// The config service, when it runs in another process (live detector settings).
    pub config_endpoint: String,
    /// How often silences, posted alerts and acknowledgements written through other replicas
    /// are read from the store.
    #[serde(with = "pharos_clock::duration")]
    pub sync_interval: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            rule_files: Vec::new(),
            routing_file: PathBuf::new(),
            evaluation_interval: Duration::from_secs(60),
            evaluate_on_commit: true,
            commit_evaluation_gap: Duration::from_millis(100),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            query_timeout: Duration::from_secs(30),
            webhook: WebhookSettings::default(),
            retention: Duration::from_secs(120 * 3600),
            query_endpoint: String::new(),
            ingest_endpoint: String::new(),
            service_token: String::new(),
            lease_ttl: Duration::from_secs(4),
            max_alerts: 50_000,
            notification_rate_limit: NotificationRateLimit::default(),
            detectors: crate::detect::DetectorSettings::default(),
            detection_hold: Duration::from_secs(300),
            config_endpoint: String::new(),
            self_monitoring: true,
            self_monitoring_interval: Duration::from_secs(15),
            sync_interval: Duration::from_secs(2),
        }
    }
}

/// A per-route notification budget. Each node of the route tree has its own: at most
/// `notifications` group notifications per `per`; past it a group's notification is held back,
/// and when the window ends one summary notification ("N more alerts") carries every alert held
/// back, then the budget starts again. Off when `notifications` is 0 (the default, as in
/// Alertmanager, which has no such limit).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationRateLimit {
    /// Notifications per window for each route; 0: no limit.
    pub notifications: u32,
    /// The window.
    #[serde(with = "pharos_clock::duration")]
    pub per: Duration,
    /// Other budgets for the routes whose receiver has this name.
    pub receivers: BTreeMap<String, RouteBudgetSettings>,
}

impl Default for NotificationRateLimit {
    fn default() -> Self {
        Self {
            notifications: 0,
            per: Duration::from_secs(60),
            receivers: BTreeMap::new(),
        }
    }
}

impl NotificationRateLimit {
    /// The budget of a route notifying `receiver`; `None` when it has no limit.
    pub fn for_receiver(&self, receiver: &str) -> Option<RouteBudgetSettings> {
        let budget = self
            .receivers
            .get(receiver)
            .cloned()
            .unwrap_or(RouteBudgetSettings {
                notifications: self.notifications,
                per: self.per,
            });
        (budget.notifications > 0 && !budget.per.is_zero()).then_some(budget)
    }
}

/// One route's notification budget.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteBudgetSettings {
    pub notifications: u32,
    #[serde(with = "pharos_clock::duration")]
    pub per: Duration,
}

/// How webhooks are sent and retried.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Attempts per notification (the first one included).
    pub attempts: u32,
    /// The wait before the second attempt.
    #[serde(with = "pharos_clock::duration")]
    pub initial_backoff: Duration,
    /// Each further wait is this many times the one before.
    pub backoff_factor: f64,
    /// The longest wait between attempts.
    #[serde(with = "pharos_clock::duration")]
    pub max_backoff: Duration,
    /// How long one attempt may take.
    #[serde(with = "pharos_clock::duration")]
    pub timeout: Duration,
    /// The longest `Retry-After` honoured.
    #[serde(with = "pharos_clock::duration")]
    pub max_retry_after: Duration,
    /// When set, every request carries `X-Pharos-Signature: sha256=<HMAC-SHA256>` of
    /// `<X-Pharos-Timestamp>.<body>` with this secret.
    pub hmac_secret: String,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            attempts: 3,
            initial_backoff: Duration::from_secs(1),
            backoff_factor: 2.0,
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(300),
            hmac_secret: String::new(),
        }
    }
}

impl AlertSettings {
    /// Makes relative rule globs and the routing file relative to `base` (the settings file's
    /// directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for pattern in &mut self.rule_files {
            if !pattern.is_empty() && Path::new(pattern.as_str()).is_relative() {
                *pattern = base.join(pattern.as_str()).to_string_lossy().into_owned();
            }
        }
        if !self.routing_file.as_os_str().is_empty() && self.routing_file.is_relative() {
            self.routing_file = base.join(&self.routing_file);
        }
    }

    /// Refuses values the service cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        if self.evaluation_interval.is_zero() {
            return Err("alert.evaluation_interval must be more than 0s".to_owned());
        }
        if self.query_timeout.is_zero() {
            return Err("alert.query_timeout must be more than 0s".to_owned());
        }
        if self.lease_ttl < Duration::from_millis(200) {
            return Err("alert.lease_ttl must be at least 200ms".to_owned());
        }
        if self.max_alerts < 1 {
            return Err("alert.max_alerts must be at least 1".to_owned());
        }
        let limit = &self.notification_rate_limit;
        if limit.notifications > 0 && limit.per.is_zero() {
            return Err("alert.notification_rate_limit.per must be more than 0s".to_owned());
        }
        for (receiver, budget) in &limit.receivers {
            if budget.notifications > 0 && budget.per.is_zero() {
                return Err(format!(
                    "alert.notification_rate_limit.receivers.{receiver}.per must be more than 0s"
                ));
            }
        }
        if self.self_monitoring && self.self_monitoring_interval.is_zero() {
            return Err("alert.self_monitoring_interval must be more than 0s".to_owned());
        }
        self.detectors
            .validate()
            .map_err(|error| format!("alert.detectors: {error}"))?;
        if self.sync_interval.is_zero() {
            return Err("alert.sync_interval must be more than 0s".to_owned());
        }
        if self.webhook.attempts < 1 {
            return Err("alert.webhook.attempts must be at least 1".to_owned());
        }
        if !(self.webhook.backoff_factor >= 1.0 && self.webhook.backoff_factor.is_finite()) {
            return Err("alert.webhook.backoff_factor must be a number of at least 1".to_owned());
        }
        if self.webhook.timeout.is_zero() {
            return Err("alert.webhook.timeout must be more than 0s".to_owned());
        }
        for name in self.external_labels.keys() {
            if !pharos_routing::labels::is_valid_label_name(name) {
                return Err(format!(
                    "alert.external_labels: {name:?} is not a valid label name"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_settings_file() {
        let mut settings = AlertSettings {
            rule_files: vec!["rules/*.yml".to_owned(), "/etc/pharos/a.yml".to_owned()],
            routing_file: PathBuf::from("routing.yml"),
            ..AlertSettings::default()
        };
        settings.resolve_paths(Path::new("/srv/pharos"));
        assert_eq!(
            settings.rule_files,
            ["/srv/pharos/rules/*.yml", "/etc/pharos/a.yml"]
        );
        assert_eq!(
            settings.routing_file,
            PathBuf::from("/srv/pharos/routing.yml")
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut settings = AlertSettings::default();
        assert_eq!(settings.validate(), Ok(()));
        settings.webhook.backoff_factor = 0.5;
        assert!(settings.validate().is_err());
        settings.webhook.backoff_factor = 2.0;
        settings
            .external_labels
            .insert("bad-name".into(), "x".into());
        assert_eq!(
            settings.validate(),
            Err("alert.external_labels: \"bad-name\" is not a valid label name".to_owned())
        );
    }
}
