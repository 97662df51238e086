//! [`AlertService`]: the rules, the dispatcher, the silences and the outbox of one process,
//! started from the store's state (alerts posted through the API, silences, the notification
//! log, rule state, notifications left pending) and kept in it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use pharos_api::feed::FeedApi;
use pharos_api::ingest::IngestApi;
use pharos_api::query::QueryApi;
use pharos_clock::Clock;
use pharos_routing::RoutingConfig;
use pharos_routing::labels::Fingerprint;
use pharos_runtime::Shutdown;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use pharos_store::Store;
use pharos_store::control::alerts::{AcknowledgementRow, AlertRepository, RuleGroupRow};

use crate::alerts::{Alert, millis, time_from_millis};
use crate::detect::Detectors;
use crate::dispatch::{Acknowledgement, Dispatcher, StormControl, alert_from_row, alert_row};
use crate::error::{AlertError, Result};
use crate::evaluator::{GroupStatus, RuleEvaluator, load_rule_files};
use crate::lease::{follow_lease, holder_name};
use crate::outbox::Outbox;
use crate::security::{SharedDetectors, follow_security_events};
use crate::settings::AlertSettings;
use crate::silences::{Silence, Silences, matchers_from_json, matchers_to_json};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub groups: usize,
    pub receivers: usize,
}

/// The alert service of this process.
pub struct AlertService {
    settings: AlertSettings,
    clock: Clock,
    repository: AlertRepository,
    silences: Arc<Mutex<Silences>>,
    dispatcher: Arc<Dispatcher>,
    evaluator: Arc<RuleEvaluator>,
    outbox: Arc<Outbox>,
    /// Whether this replica holds the lease.
    leading: tokio::sync::watch::Receiver<bool>,
    detectors: SharedDetectors,
    external_url: String,
    started_at: DateTime<Utc>,
    reload_lock: tokio::sync::Mutex<()>,
    last_reload_error: Mutex<Option<String>>,
    /// The stored rule groups the running ones were built from (namespace, name, update time).
    stored_groups_seen: Mutex<Vec<(String, String, i64)>>,
}

impl std::fmt::Debug for AlertService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertService").finish_non_exhaustive()
    }
}

/// The routing file's configuration, or the one Pharos runs without a file: every alert to
/// one receiver, `default`, that notifies nobody.
pub fn load_routing(settings: &AlertSettings) -> Result<RoutingConfig> {
    let routing = if settings.routing_file.as_os_str().is_empty() {
        pharos_routing::parse_config("route:\n  receiver: default\nreceivers:\n- name: default\n")
            .map_err(|error| AlertError::Configuration(error.to_string()))?
    } else {
        pharos_routing::load_config(&settings.routing_file).map_err(|error| {
            AlertError::Configuration(format!(
                "alert.routing_file {}: {error}",
                settings.routing_file.display()
            ))
        })?
    };
    check_supported(&routing)?;
    Ok(routing)
}

/// Refuses the parts of a routing file Pharos reads but does not deliver with yet, by name.
fn check_supported(routing: &RoutingConfig) -> Result<()> {
    for receiver in routing.receivers() {
        for webhook in &receiver.webhook_configs {
            let http = &webhook.http_config;
            let unsupported = [
                (http.basic_auth.is_some(), "http_config.basic_auth"),
                (http.oauth2.is_some(), "http_config.oauth2"),
                (http.proxy_url.is_some(), "http_config.proxy_url"),
                (
                    http.tls_config != Default::default(),
                    "http_config.tls_config",
                ),
                (
                    http.authorization.as_ref().is_some_and(|auth| {
                        !auth.credentials_file.is_empty()
                            || !(auth.auth_type.is_empty()
                                || auth.auth_type.eq_ignore_ascii_case("bearer"))
                    }),
                    "http_config.authorization (only a Bearer token given inline is supported)",
                ),
            ];
            if let Some((_, key)) = unsupported.iter().find(|(set, _)| *set) {
                return Err(AlertError::Configuration(format!(
                    "receiver {:?}: {key} is not supported by this version of Pharos",
                    receiver.name
                )));
            }
        }
    }
    Ok(())
}

impl AlertService {
    /// Starts the service: reads the rule files and the routing file (either failing stops
    /// the start with the reason), restores the state kept in the store, sends what a previous
    /// run left pending, and starts the dispatcher and the rule groups.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        store: Store,
        settings: AlertSettings,
        external_url: String,
        clock: Clock,
        query: Arc<dyn QueryApi>,
        ingest: Arc<dyn IngestApi>,
        feed: Option<Arc<dyn FeedApi>>,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>> {
        settings.validate().map_err(AlertError::Configuration)?;
        let routing = Arc::new(load_routing(&settings)?);
        let repository = store.alerts();
        let stored_groups = repository.list_rule_groups().await?;
        let groups = all_rule_groups(&settings, &stored_groups)?;

        let silences = Arc::new(Mutex::new(Silences::new()));
        let outbox = Arc::new(
            Outbox::new(
                repository.clone(),
                clock.clone(),
                &settings.webhook,
                settings.retention,
            )
            .map_err(AlertError::Configuration)?,
        );
        let dispatcher = Arc::new(Dispatcher::new(
            clock.clone(),
            routing,
            silences.clone(),
            outbox.clone(),
            repository.clone(),
            external_url.clone(),
            StormControl {
                max_alerts: settings.max_alerts,
                rate_limit: settings.notification_rate_limit.clone(),
            },
        ));
        let evaluator = Arc::new(RuleEvaluator::new(
            &settings,
            external_url.clone(),
            clock.clone(),
            query,
            ingest,
            repository.clone(),
            dispatcher.clone(),
        ));
        if settings.evaluate_on_commit {
            match feed.clone() {
                Some(feed) => {
                    shutdown.spawn(evaluator.clone().follow_feed(feed, shutdown.clone()));
                }
                None => tracing::info!(
                    "no ingest feed in this process and no alert.ingest_endpoint: rules evaluate at their intervals only"
                ),
            }
        }
        let detectors: SharedDetectors =
            Arc::new(Mutex::new(Detectors::new(settings.detectors.clone())));
        let detection_feed = feed.clone();
        let leading = follow_lease(
            repository.clone(),
            holder_name(),
            settings.lease_ttl,
            clock.clone(),
            &shutdown,
        );
        let service = Arc::new(Self {
            started_at: time_from_millis(clock.now_micros().div_euclid(1000)),
            settings,
            clock,
            repository,
            silences,
            dispatcher,
            evaluator,
            outbox,
            leading,
            detectors,
            external_url,
            reload_lock: tokio::sync::Mutex::new(()),
            last_reload_error: Mutex::new(None),
            stored_groups_seen: Mutex::new(signature(&stored_groups)),
        });
        // Every replica serves the API from the store's state; the leader also acts on it.
        service.sync_from_store().await?;
        if let Some(feed) = detection_feed {
            shutdown.spawn(follow_security_events(
                service.clone(),
                feed,
                service.detectors.clone(),
                service.settings.detection_hold,
                shutdown.clone(),
            ));
        }
        shutdown.spawn(service.clone().lead(groups, shutdown.clone()));
        shutdown.spawn(service.clone().follow_store(shutdown.clone()));
        shutdown.spawn(service.clone().housekeeping(shutdown.clone()));
        Ok(service)
    }

    /// The security detectors of this replica (live settings apply here).
    pub fn detectors(&self) -> &SharedDetectors {
        &self.detectors
    }

    /// Whether this replica leads (evaluates and notifies).
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Each time this replica becomes the leader: what the previous leader left is read back
    /// (notification log, state), its pending notifications are sent, then the rule groups
    /// and the dispatcher run until the lease is lost or the process stops.
    async fn lead(
        self: Arc<Self>,
        mut groups: Vec<(std::path::PathBuf, pharos_rules::RuleGroup)>,
        shutdown: Shutdown,
    ) {
        let mut leading = self.leading.clone();
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                changed = leading.wait_for(|leads| *leads) => if changed.is_err() { return },
            }
            if let Err(error) = self.take_over().await {
                tracing::warn!(%error, "cannot read the alert state to take over; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            if groups.is_empty() {
                // A later take-over reads the files and the stored groups again.
                match self.repository.list_rule_groups().await {
                    Ok(stored) => match all_rule_groups(&self.settings, &stored) {
                        Ok(current) => groups = current,
                        Err(error) => {
                            tracing::warn!(%error, "rule files do not read; running none")
                        }
                    },
                    Err(error) => tracing::warn!(%error, "cannot read the stored rule groups"),
                }
            }
            if let Err(error) = self.evaluator.replace(std::mem::take(&mut groups)).await {
                tracing::warn!(%error, "rule groups not started");
            }
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let dispatcher = self.dispatcher.clone();
            let run = tokio::spawn(dispatcher.run(shutdown.clone(), stopped));
            tokio::select! {
                _ = shutdown.wait() => {}
                _ = leading.wait_for(|leads| !*leads) => {}
            }
            self.evaluator.stop().await;
            let _ = stop.send(true);
            let _ = run.await;
        }
    }

    /// What a new leader reads before it acts: the notification log, then the notifications
    /// the previous leader left pending, sent with their keys.
    async fn take_over(&self) -> Result<()> {
        self.sync_from_store().await?;
        self.outbox.replay_pending(&self.dispatcher.routing()).await;
        self.dispatcher
            .restore_log(&self.repository.load_notification_log().await?);
        Ok(())
    }

    /// Reads silences, posted alerts and acknowledgements from the store, where any replica's
    /// API writes them.
    async fn sync_from_store(&self) -> Result<()> {
        let silences = Silences::from_silences(
            self.repository
                .load_silences()
                .await?
                .iter()
                .filter_map(|row| match silence_from_row(row) {
                    Ok(silence) => Some(silence),
                    Err(error) => {
                        tracing::warn!(%error, id = %row.id, "a stored silence does not read back; skipped");
                        None
                    }
                })
                .collect(),
        );
        match self.silences.lock() {
            Ok(mut current) => *current = silences,
            Err(poisoned) => *poisoned.into_inner() = silences,
        }
        self.dispatcher.restore_acknowledgements(
            self.repository
                .load_acknowledgements()
                .await?
                .into_iter()
                .filter_map(|row| {
                    let fingerprint = parse_fingerprint(&row.fingerprint).ok()?;
                    Some((
                        fingerprint,
                        Acknowledgement {
                            by: row.acknowledged_by,
                            comment: row.comment,
                            at: time_from_millis(row.at_ms),
                        },
                    ))
                })
                .collect(),
        );
        let posted: Vec<Alert> = self
            .repository
            .load_alerts()
            .await?
            .iter()
            .filter_map(|row| alert_from_row(row).ok())
            .collect();
        self.dispatcher.put(posted);
        Ok(())
    }

    /// Follows what other replicas write: silences, posted alerts and acknowledgements every
    /// `alert.sync_interval`, and the stored rule groups (a change reloads).
    async fn follow_store(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(self.settings.sync_interval) => {}
            }
            if let Err(error) = self.sync_from_store().await {
                tracing::warn!(%error, "cannot read the alert state other replicas wrote; will retry");
            }
            let Ok(stored) = self.repository.list_rule_groups().await else {
                continue;
            };
            let changed = self
                .stored_groups_seen
                .lock()
                .map(|seen| *seen != signature(&stored))
                .unwrap_or(false);
            if changed && self.is_leader() {
                let _ = self.reload().await;
            }
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        time_from_millis(self.clock.now_micros().div_euclid(1000))
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    pub fn repository(&self) -> &AlertRepository {
        &self.repository
    }

    pub fn routing(&self) -> Arc<RoutingConfig> {
        self.dispatcher.routing()
    }

    pub fn rule_groups(&self) -> Vec<GroupStatus> {
        self.evaluator.status()
    }

    /// Reads the rule files and the routing file again (SIGHUP, `POST /-/reload`). Nothing
    /// changes unless both read cleanly.
    pub async fn reload(&self) -> Result<Reloaded> {
        let _reloading = self.reload_lock.lock().await;
        let outcome = async {
            let routing = Arc::new(load_routing(&self.settings)?);
            let stored = self.repository.list_rule_groups().await?;
            let groups = all_rule_groups(&self.settings, &stored)?;
            if let Ok(mut seen) = self.stored_groups_seen.lock() {
                *seen = signature(&stored);
            }
            let reloaded = Reloaded {
                groups: groups.len(),
                receivers: routing.receivers().len(),
            };
            self.dispatcher.set_routing(routing);
            // A standby only keeps the routing current (its API answers with it); the groups
            // run on the leader, which reads the files again when it takes over.
            if self.is_leader() {
                self.evaluator
                    .replace(groups)
                    .await
                    .map_err(AlertError::Configuration)?;
            }
            Ok(reloaded)
        }
        .await;
        if let Ok(mut last) = self.last_reload_error.lock() {
            *last = outcome.as_ref().err().map(ToString::to_string);
        }
        match &outcome {
            Ok(reloaded) => tracing::info!(
                groups = reloaded.groups,
                receivers = reloaded.receivers,
                "alert configuration reloaded"
            ),
            Err(error) => {
                tracing::warn!(%error, "alert configuration not reloaded; the previous one stays")
            }
        }
        outcome
    }

    /// Creates or replaces a rule group stored in the database (shared by every replica), from
    /// a rule file's YAML holding exactly one group; the groups run it at once. Its name.
    pub async fn put_rule_group(&self, namespace: &str, yaml: &str) -> Result<String> {
        check_namespace(namespace)?;
        let groups = pharos_rules::parse_rule_groups(yaml).map_err(|errors| {
            AlertError::InvalidArgument {
                field: "yaml".to_owned(),
                reason: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })?;
        let [group] = groups.as_slice() else {
            return Err(AlertError::InvalidArgument {
                field: "yaml".to_owned(),
                reason: format!(
                    "holds {} groups; put one group per call (`groups:` with one entry)",
                    groups.len()
                ),
            });
        };
        self.repository
            .put_rule_group(&RuleGroupRow {
                namespace: namespace.to_owned(),
                name: group.name.clone(),
                yaml: yaml.to_owned(),
                updated_at_ms: millis(self.now()),
            })
            .await?;
        self.reload().await?;
        Ok(group.name.clone())
    }

    /// Deletes a stored rule group.
    pub async fn delete_rule_group(&self, namespace: &str, name: &str) -> Result<()> {
        if !self.repository.delete_rule_group(namespace, name).await? {
            return Err(AlertError::NotFound(format!(
                "rule group {name:?} in namespace {namespace:?}"
            )));
        }
        self.reload().await?;
        Ok(())
    }

    /// The rule groups stored in the database.
    pub async fn stored_rule_groups(&self) -> Result<Vec<RuleGroupRow>> {
        Ok(self.repository.list_rule_groups().await?)
    }

    /// Acknowledges a firing alert (by its fingerprint, 16 hex digits): it stops repeating
    /// until it resolves.
    pub async fn acknowledge(&self, fingerprint: &str, by: &str, comment: &str) -> Result<Alert> {
        let parsed = parse_fingerprint(fingerprint)?;
        let acknowledgement = Acknowledgement {
            by: by.to_owned(),
            comment: comment.to_owned(),
            at: self.now(),
        };
        let alert = self
            .dispatcher
            .acknowledge(parsed, acknowledgement.clone())
            .ok_or_else(|| AlertError::NotFound(format!("firing alert {fingerprint}")))?;
        self.repository
            .put_acknowledgement(&AcknowledgementRow {
                fingerprint: parsed.to_string(),
                acknowledged_by: acknowledgement.by,
                comment: acknowledgement.comment,
                at_ms: millis(acknowledgement.at),
            })
            .await?;
        Ok(alert)
    }

    /// Receives alerts (the API's `POST /api/v2/alerts`), persisted before the call returns.
    /// New alerts past `alert.max_alerts` are refused (`TooManyAlerts`, after the others are
    /// stored).
    pub async fn receive(&self, alerts: Vec<Alert>) -> Result<()> {
        let (merged, refused) = self.dispatcher.put_counted(alerts);
        let rows: Vec<_> = merged.iter().map(alert_row).collect();
        self.repository.upsert_alerts(&rows).await?;
        if refused > 0 {
            return Err(AlertError::TooManyAlerts {
                limit: self.dispatcher.max_alerts(),
                refused,
            });
        }
        Ok(())
    }

    /// The silences, read under their lock.
    pub fn with_silences<T>(&self, read: impl FnOnce(&Silences) -> T) -> T {
        match self.silences.lock() {
            Ok(silences) => read(&silences),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    /// Creates or updates a silence, persisted before the call returns; its id.
    pub async fn set_silence(&self, silence: Silence) -> Result<String> {
        let now = self.now();
        let (id, changed) = {
            let mut silences = match self.silences.lock() {
                Ok(silences) => silences,
                Err(poisoned) => poisoned.into_inner(),
            };
            silences
                .set(silence, now)
                .map_err(|error| silence_error(error, "silence"))?
        };
        let rows: Vec<_> = changed.iter().map(silence_row).collect();
        self.repository.upsert_silences(&rows).await?;
        Ok(id)
    }

    /// Expires a silence, persisted before the call returns.
    pub async fn expire_silence(&self, id: &str) -> Result<()> {
        let now = self.now();
        let expired = {
            let mut silences = match self.silences.lock() {
                Ok(silences) => silences,
                Err(poisoned) => poisoned.into_inner(),
            };
            silences
                .expire(id, now)
                .map_err(|error| silence_error(error, "silence"))?
        };
        self.repository
            .upsert_silences(&[silence_row(&expired)])
            .await?;
        Ok(())
    }

    /// Stops the rule groups (their state is saved after every evaluation).
    pub async fn stop(&self) {
        self.evaluator.stop().await;
    }

    /// Drops what the retention no longer keeps: silences that ended, expired log entries,
    /// finished notifications and their attempts.
    async fn housekeeping(self: Arc<Self>, shutdown: Shutdown) {
        let period = std::time::Duration::from_secs(60);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let now = self.now();
            let retention = chrono::Duration::from_std(self.settings.retention)
                .unwrap_or(chrono::Duration::MAX);
            let before = millis(now - retention);
            let dropped = match self.silences.lock() {
                Ok(mut silences) => silences.gc(now, retention),
                Err(_) => Vec::new(),
            };
            let stale: Vec<String> = self
                .dispatcher
                .drop_stale_acknowledgements()
                .iter()
                .map(ToString::to_string)
                .collect();
            let results = [
                self.repository.delete_acknowledgements(&stale).await,
                self.repository.delete_silences_ended_before(before).await,
                self.repository
                    .delete_notification_log_expired(millis(now))
                    .await,
                self.repository.delete_outbox_finished_before(before).await,
                self.repository.delete_attempts_before(before).await,
            ];
            for result in results {
                if let Err(error) = result {
                    tracing::warn!(%error, "alert housekeeping failed; will retry");
                }
            }
            if !dropped.is_empty() {
                tracing::debug!(silences = dropped.len(), "expired silences dropped");
            }
        }
    }

    /// The service's `/health` component.
    pub fn health_check(self: &Arc<Self>) -> Arc<dyn HealthCheck> {
        Arc::new(AlertHealth(self.clone()))
    }

    /// The alert held with this fingerprint (16 hex digits), a resolved one included until the
    /// dispatcher collects it, as the gRPC API shows one alert.
    pub fn alert_view(&self, fingerprint: &str) -> Result<crate::dispatch::AlertView> {
        let parsed = parse_fingerprint(fingerprint)?;
        let alert = self
            .dispatcher
            .alerts()
            .into_iter()
            .find(|alert| alert.fingerprint() == parsed)
            .ok_or_else(|| AlertError::NotFound(format!("alert {fingerprint}")))?;
        Ok(self.view_of(alert))
    }

    /// One alert as the API shows it now: its receivers, the silences that mute it and the
    /// alert that inhibits it (none once it resolved), as `Dispatcher::alert_views` shows
    /// every firing alert.
    pub fn view_of(&self, alert: Alert) -> crate::dispatch::AlertView {
        let now = self.now();
        let routing = self.routing();
        let mut receivers: Vec<String> = routing
            .match_alert(&alert.labels)
            .iter()
            .map(|route| route.receiver().to_owned())
            .collect();
        receivers.dedup();
        let (silenced_by, inhibited_by) = if alert.resolved_at(now) {
            (Vec::new(), Vec::new())
        } else {
            let silenced_by = self.with_silences(|silences| silences.mutes(&alert.labels, now));
            // Inhibition needs every firing alert: only read them when a rule could apply.
            let inhibited_by = if routing.inhibit_rules().is_empty() {
                Vec::new()
            } else {
                let firing: Vec<pharos_routing::LabelSet> = self
                    .dispatcher
                    .alerts()
                    .into_iter()
                    .filter(|other| !other.resolved_at(now))
                    .map(|other| other.labels)
                    .collect();
                routing
                    .is_inhibited(&alert.labels, &firing)
                    .map(|fp| vec![fp.to_string()])
                    .unwrap_or_default()
            };
            (silenced_by, inhibited_by)
        };
        crate::dispatch::AlertView {
            fingerprint: alert.fingerprint(),
            alert,
            receivers,
            silenced_by,
            inhibited_by,
        }
    }
}

/// The rule files' groups, then the stored ones (as files named `db:<namespace>`).
fn all_rule_groups(
    settings: &AlertSettings,
    stored: &[RuleGroupRow],
) -> Result<Vec<(std::path::PathBuf, pharos_rules::RuleGroup)>> {
    let mut groups = load_rule_files(&settings.rule_files).map_err(AlertError::Configuration)?;
    if settings.self_monitoring {
        groups.extend(crate::self_monitoring::rule_groups());
    }
    for row in stored {
        match pharos_rules::parse_rule_groups(&row.yaml) {
            Ok(parsed) => groups.extend(parsed.into_iter().map(|group| {
                (
                    std::path::PathBuf::from(format!("db:{}", row.namespace)),
                    group,
                )
            })),
            // Checked when it was stored; a later version may read it differently.
            Err(errors) => {
                tracing::warn!(namespace = %row.namespace, name = %row.name, errors = ?errors, "a stored rule group does not read; skipped")
            }
        }
    }
    Ok(groups)
}

fn signature(stored: &[RuleGroupRow]) -> Vec<(String, String, i64)> {
    stored
        .iter()
        .map(|row| (row.namespace.clone(), row.name.clone(), row.updated_at_ms))
        .collect()
}

fn check_namespace(namespace: &str) -> Result<()> {
    let valid = !namespace.is_empty()
        && namespace.len() <= 128
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(AlertError::InvalidArgument {
            field: "namespace".to_owned(),
            reason: format!("{namespace:?} is not a namespace: use 1 to 128 of [A-Za-z0-9_.-]"),
        })
    }
}

/// An alert's fingerprint as the API shows it: 16 hex digits.
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint> {
    u64::from_str_radix(text, 16)
        .ok()
        .filter(|_| text.len() == 16)
        .map(Fingerprint)
        .ok_or_else(|| AlertError::InvalidArgument {
            field: "fingerprint".to_owned(),
            reason: format!("{text:?} is not a fingerprint: 16 hexadecimal digits"),
        })
}

fn silence_error(error: crate::silences::SilenceError, what: &str) -> AlertError {
    use crate::silences::SilenceError;
    match error {
        SilenceError::NotFound(id) => AlertError::NotFound(format!("{what} {id}")),
        other => AlertError::InvalidArgument {
            field: what.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn silence_row(silence: &Silence) -> pharos_store::control::alerts::SilenceRow {
    pharos_store::control::alerts::SilenceRow {
        id: silence.id.clone(),
        matchers_json: matchers_to_json(&silence.matchers),
        starts_at_ms: millis(silence.starts_at),
        ends_at_ms: millis(silence.ends_at),
        updated_at_ms: millis(silence.updated_at),
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
    }
}

fn silence_from_row(row: &pharos_store::control::alerts::SilenceRow) -> Result<Silence> {
    Ok(Silence {
        id: row.id.clone(),
        matchers: matchers_from_json(&row.matchers_json)
            .map_err(|error| AlertError::Corrupt(error.to_string()))?,
        starts_at: time_from_millis(row.starts_at_ms),
        ends_at: time_from_millis(row.ends_at_ms),
        updated_at: time_from_millis(row.updated_at_ms),
        created_by: row.created_by.clone(),
        comment: row.comment.clone(),
    })
}

/// `/health` component `alert`: rule groups, their failing rules and the last reload.
struct AlertHealth(Arc<AlertService>);

impl HealthCheck for AlertHealth {
    fn name(&self) -> &str {
        "alert"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let groups = self.0.rule_groups();
            let failing: Vec<String> = groups
                .iter()
                .flat_map(|group| {
                    group
                        .errors
                        .iter()
                        .map(move |(rule, error)| format!("{}/{rule}: {error}", group.name))
                })
                .collect();
            let reload_error = self
                .0
                .last_reload_error
                .lock()
                .ok()
                .and_then(|error| error.clone());
            let details = serde_json::json!({
                "leader": self.0.is_leader(),
                "rule_groups": groups.len(),
                "failing_rules": failing,
                "last_reload_error": reload_error,
                "alerts": self.0.dispatcher.alerts().len(),
                "max_alerts": self.0.dispatcher.max_alerts(),
                "alerts_refused": self.0.dispatcher.refused(),
            });
            if failing.is_empty() && reload_error.is_none() {
                ComponentHealth::ok(details)
            } else {
                ComponentHealth::degraded(details)
            }
        })
    }
}
