//! The dispatcher: Alertmanager 0.25's alert store, dispatcher and notification pipeline in
//! one place. Alerts (from the rules of this service and from the API) are merged by
//! fingerprint as Alertmanager merges them, routed through the route tree into aggregation
//! groups (one per route and group key), and each group is flushed after `group_wait`, then
//! every `group_interval`. A flush drops inhibited and silenced alerts, skips muted routes,
//! and for each integration of the receiver decides from the notification log whether the
//! receiver must hear about it (Alertmanager's `DedupStage.needsUpdate`: new firing alerts, a
//! change in the resolved ones, or `repeat_interval` passed).
//!
//! A notification is delivered through the [`Outbox`](crate::outbox::Outbox): written to the
//! store before it is sent and marked delivered together with its notification-log entry, so
//! a crash neither loses it nor sends it again after a 2xx.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pharos_clock::Clock;
use pharos_routing::labels::Fingerprint;
use pharos_routing::{LabelSet, RouteOptions, RoutingConfig};
use pharos_runtime::Shutdown;
use pharos_store::control::alerts::{AlertRepository, AlertRow, NotificationLogRow};
use tokio::sync::Notify;

use crate::alerts::{Alert, millis, time_from_millis};
use crate::error::{AlertError, Result};
use crate::notify::{AlertStatus, Notification, NotifiedAlert};
use crate::outbox::{Integration, Outbox, PreparedNotification};
use crate::settings::NotificationRateLimit;
use crate::silences::Silences;

/// How often resolved alerts that no group holds any more are dropped.
const GC_INTERVAL: Duration = Duration::from_secs(60);

/// What the notification log says was last sent to one integration of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl LogEntry {
    pub fn from_row(row: &NotificationLogRow) -> Option<(LogKey, LogEntry)> {
        let entry = LogEntry {
            firing: fingerprints_from_json(&row.firing_json)?,
            resolved: fingerprints_from_json(&row.resolved_json)?,
            sent_at: time_from_millis(row.sent_at_ms),
            expires_at: time_from_millis(row.expires_at_ms),
        };
        Some(((row.group_key.clone(), row.integration.clone()), entry))
    }
}

/// A group key and an integration (`receiver/webhook/0`).
pub type LogKey = (String, String);

/// Fingerprints as the notification log stores them: hex strings, sorted.
pub fn fingerprints_to_json(set: &BTreeSet<u64>) -> String {
    let hex: Vec<String> = set.iter().map(|fp| Fingerprint(*fp).to_string()).collect();
    serde_json::to_string(&hex).unwrap_or_else(|_| "[]".to_owned())
}

fn fingerprints_from_json(text: &str) -> Option<BTreeSet<u64>> {
    let hex: Vec<String> = serde_json::from_str(text).ok()?;
    hex.iter()
        .map(|fp| u64::from_str_radix(fp, 16).ok())
        .collect()
}

/// Alertmanager's `DedupStage.needsUpdate`: whether a group's integration must be notified.
pub fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(entry) = entry else {
        // Never notified: only when something fires.
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: tell the receiver only if it heard of some firing (this clears the log
        // entry's firing set whatever send_resolved says).
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry
        .sent_at
        .checked_add_signed(chrono_duration(repeat))
        .is_some_and(|due| due <= now)
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// One aggregation group: the alerts of one route with one set of grouping labels.
#[derive(Debug)]
struct AggregationGroup {
    route: usize,
    labels: LabelSet,
    alerts: BTreeMap<Fingerprint, Alert>,
    next_flush: DateTime<Utc>,
    has_flushed: bool,
    flushing: bool,
}

/// Someone said they are on it: the alert stops repeating until it resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub by: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// A change of an alert, as `WatchAlerts` streams it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub kind: AlertEventKind,
    pub alert: Alert,
    pub acknowledgement: Option<Acknowledgement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEventKind {
    /// New, or firing again after it resolved.
    Firing,
    /// Its labels are the same, something else changed (annotations, end time).
    Updated,
    Resolved,
    Acknowledged,
}

/// Events buffered for a slow watcher before it misses some (and is told so).
const EVENT_BUFFER: usize = 4096;

/// The state the dispatcher guards.
#[derive(Debug, Default)]
struct State {
    alerts: HashMap<Fingerprint, Alert>,
    groups: BTreeMap<(usize, String), AggregationGroup>,
    log: HashMap<LogKey, LogEntry>,
    acknowledgements: HashMap<Fingerprint, Acknowledgement>,
    /// Per route (by index), its notification budget in the current window.
    budgets: HashMap<usize, RouteBudget>,
}

/// One route's notifications in the current window of its rate limit.
#[derive(Debug)]
struct RouteBudget {
    window_start: DateTime<Utc>,
    sent: u32,
    /// The groups whose notification was held back, for the summary.
    held: BTreeSet<String>,
    /// The groups of the summary being sent: not notified on their own meanwhile.
    in_summary: BTreeSet<String>,
}

impl RouteBudget {
    fn new(window_start: DateTime<Utc>) -> Self {
        Self {
            window_start,
            sent: 0,
            held: BTreeSet::new(),
            in_summary: BTreeSet::new(),
        }
    }
}

/// A group as a flush sees it.
struct GroupSnapshot {
    labels: LabelSet,
    alerts: Vec<Alert>,
    firing_everywhere: Vec<LabelSet>,
}

/// What one flush (or a summary) sends, per integration, and the notification-log entries that
/// move on without a message.
#[derive(Debug, Default)]
struct Plan {
    notifications: Vec<PreparedNotification>,
    log_only: Vec<(LogKey, LogEntry)>,
}

impl Plan {
    /// Whether anything goes out (what the rate limit counts).
    fn sends(&self) -> bool {
        !self.notifications.is_empty()
    }
}

/// An alert as the API shows it: the alert and what the dispatcher knows about it.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub alert: Alert,
    pub fingerprint: Fingerprint,
    pub receivers: Vec<String>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

/// A group as the API shows it.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub labels: LabelSet,
    pub receiver: String,
    pub alerts: Vec<AlertView>,
}

/// The dispatcher's limits against alert storms.
#[derive(Debug, Clone)]
pub struct StormControl {
    /// The most alerts held at once (`alert.max_alerts`).
    pub max_alerts: usize,
    /// Each route's notification budget (`alert.notification_rate_limit`).
    pub rate_limit: NotificationRateLimit,
}

/// Where alerts go once received, and how notifications leave.
pub struct Dispatcher {
    clock: Clock,
    routing: RwLock<Arc<RoutingConfig>>,
    state: Mutex<State>,
    silences: Arc<Mutex<Silences>>,
    outbox: Arc<Outbox>,
    repository: AlertRepository,
    wake: Notify,
    external_url: String,
    events: tokio::sync::broadcast::Sender<AlertEvent>,
    /// Storm control: the most alerts held at once (`alert.max_alerts`).
    max_alerts: usize,
    refused: std::sync::atomic::AtomicU64,
    /// Storm control: each route's notification budget (`alert.notification_rate_limit`).
    rate_limit: NotificationRateLimit,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(
        clock: Clock,
        routing: Arc<RoutingConfig>,
        silences: Arc<Mutex<Silences>>,
        outbox: Arc<Outbox>,
        repository: AlertRepository,
        external_url: String,
        storm: StormControl,
    ) -> Self {
        let StormControl {
            max_alerts,
            rate_limit,
        } = storm;
        Self {
            clock,
            routing: RwLock::new(routing),
            state: Mutex::new(State::default()),
            silences,
            outbox,
            repository,
            wake: Notify::new(),
            external_url,
            events: tokio::sync::broadcast::channel(EVENT_BUFFER).0,
            max_alerts,
            refused: std::sync::atomic::AtomicU64::new(0),
            rate_limit,
        }
    }

    /// Every change of an alert from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<AlertEvent> {
        self.events.subscribe()
    }

    /// Acknowledges a firing alert; `None` when no firing alert has that fingerprint.
    pub fn acknowledge(
        &self,
        fingerprint: Fingerprint,
        acknowledgement: Acknowledgement,
    ) -> Option<Alert> {
        let now = self.now();
        let mut state = self.lock();
        let alert = state
            .alerts
            .get(&fingerprint)
            .filter(|alert| !alert.resolved_at(now))
            .cloned()?;
        state
            .acknowledgements
            .insert(fingerprint, acknowledgement.clone());
        drop(state);
        let _ = self.events.send(AlertEvent {
            kind: AlertEventKind::Acknowledged,
            alert: alert.clone(),
            acknowledgement: Some(acknowledgement),
        });
        Some(alert)
    }

    /// Puts back acknowledgements read from the store at start.
    pub fn restore_acknowledgements(&self, acknowledgements: Vec<(Fingerprint, Acknowledgement)>) {
        let mut state = self.lock();
        state.acknowledgements.extend(acknowledgements);
    }

    /// The acknowledgement of an alert, if any.
    pub fn acknowledgement(&self, fingerprint: Fingerprint) -> Option<Acknowledgement> {
        self.lock().acknowledgements.get(&fingerprint).cloned()
    }

    /// Acknowledgements of alerts that resolved or are gone, dropped; their fingerprints.
    pub fn drop_stale_acknowledgements(&self) -> Vec<Fingerprint> {
        let now = self.now();
        let mut state = self.lock();
        let stale: Vec<Fingerprint> = state
            .acknowledgements
            .keys()
            .filter(|fp| {
                state
                    .alerts
                    .get(fp)
                    .is_none_or(|alert| alert.resolved_at(now))
            })
            .copied()
            .collect();
        for fp in &stale {
            state.acknowledgements.remove(fp);
        }
        stale
    }

    pub fn now(&self) -> DateTime<Utc> {
        time_from_millis(self.clock.now_micros().div_euclid(1000))
    }

    pub fn routing(&self) -> Arc<RoutingConfig> {
        match self.routing.read() {
            Ok(routing) => routing.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the routing: the aggregation groups are rebuilt from the alerts held, as
    /// Alertmanager rebuilds its dispatcher on reload (the notification log is kept).
    pub fn set_routing(&self, routing: Arc<RoutingConfig>) {
        match self.routing.write() {
            Ok(mut current) => *current = routing,
            Err(poisoned) => *poisoned.into_inner() = routing,
        }
        let now = self.now();
        let mut state = self.lock();
        state.groups.clear();
        // Route indexes change with the tree; held groups are notified again by their flushes.
        state.budgets.clear();
        let alerts: Vec<Alert> = state.alerts.values().cloned().collect();
        let routing = self.routing();
        for alert in alerts {
            route_alert(&mut state, &routing, &alert, now);
        }
        drop(state);
        self.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn silences(&self) -> std::sync::MutexGuard<'_, Silences> {
        match self.silences.lock() {
            Ok(silences) => silences,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Puts back the notification log read from the store at start.
    pub fn restore_log(&self, rows: &[NotificationLogRow]) {
        let mut state = self.lock();
        for row in rows {
            if let Some((key, entry)) = LogEntry::from_row(row) {
                state.log.insert(key, entry);
            }
        }
    }

    /// Receives alerts, merging each with the one of the same fingerprint as Alertmanager's
    /// store does, and routes them. Returns the merged alerts (for the caller to persist).
    pub fn put(&self, alerts: Vec<Alert>) -> Vec<Alert> {
        let (merged, refused) = self.put_counted(alerts);
        if refused > 0 {
            tracing::warn!(
                refused,
                limit = self.max_alerts,
                "alerts refused: the dispatcher holds its maximum (alert.max_alerts)"
            );
        }
        merged
    }

    /// [`Dispatcher::put`], and how many new alerts were refused because the dispatcher holds
    /// `alert.max_alerts` already (alerts it holds are still updated and resolved).
    pub fn put_counted(&self, alerts: Vec<Alert>) -> (Vec<Alert>, usize) {
        let now = self.now();
        let mut refused = 0usize;
        let routing = self.routing();
        let mut merged_alerts = Vec::with_capacity(alerts.len());
        let mut events = Vec::new();
        {
            let mut state = self.lock();
            for alert in alerts {
                let fingerprint = alert.fingerprint();
                if !state.alerts.contains_key(&fingerprint) && state.alerts.len() >= self.max_alerts
                {
                    refused += 1;
                    continue;
                }
                let merged = match state.alerts.get(&fingerprint) {
                    // Only overlapping alerts merge; otherwise the new one replaces the old.
                    Some(old) if old.ends_at > alert.starts_at && old.starts_at < alert.ends_at => {
                        old.merge(&alert)
                    }
                    _ => alert,
                };
                let previous = state.alerts.get(&fingerprint);
                if previous == Some(&merged) {
                    continue;
                }
                let was_firing = previous.map(|p| !p.resolved_at(now));
                let kind = match (was_firing, merged.resolved_at(now)) {
                    (Some(true), false) | (Some(false), true) => AlertEventKind::Updated,
                    (Some(true), true) | (None, true) => AlertEventKind::Resolved,
                    (Some(false), false) | (None, false) => AlertEventKind::Firing,
                };
                if kind == AlertEventKind::Firing {
                    // Firing again after it resolved: an old acknowledgement no longer holds.
                    state.acknowledgements.remove(&fingerprint);
                }
                let acknowledgement = state.acknowledgements.get(&fingerprint).cloned();
                state.alerts.insert(fingerprint, merged.clone());
                route_alert(&mut state, &routing, &merged, now);
                events.push(AlertEvent {
                    kind,
                    alert: merged.clone(),
                    acknowledgement,
                });
                merged_alerts.push(merged);
            }
        }
        if !merged_alerts.is_empty() {
            self.wake.notify_one();
        }
        for event in events {
            // No watcher is fine.
            let _ = self.events.send(event);
        }
        if refused > 0 {
            self.refused
                .fetch_add(refused as u64, std::sync::atomic::Ordering::Relaxed);
        }
        (merged_alerts, refused)
    }

    /// New alerts refused since start because the dispatcher was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most alerts the dispatcher holds.
    pub fn max_alerts(&self) -> usize {
        self.max_alerts
    }

    /// Every alert held, resolved ones included.
    pub fn alerts(&self) -> Vec<Alert> {
        self.lock().alerts.values().cloned().collect()
    }

    /// The alerts with their receivers, silences and inhibitions, as the API lists them
    /// (resolved alerts left out, as Alertmanager leaves them out).
    pub fn alert_views(&self) -> Vec<AlertView> {
        let now = self.now();
        let routing = self.routing();
        let alerts: Vec<Alert> = self
            .lock()
            .alerts
            .values()
            .filter(|alert| !alert.resolved_at(now))
            .cloned()
            .collect();
        let firing: Vec<LabelSet> = alerts.iter().map(|alert| alert.labels.clone()).collect();
        let silences = self.silences();
        let mut views: Vec<AlertView> = alerts
            .into_iter()
            .map(|alert| {
                let mut receivers: Vec<String> = routing
                    .match_alert(&alert.labels)
                    .iter()
                    .map(|route| route.receiver().to_owned())
                    .collect();
                receivers.dedup();
                let silenced_by = silences.mutes(&alert.labels, now);
                let inhibited_by = routing
                    .is_inhibited(&alert.labels, &firing)
                    .map(|fp| vec![fp.to_string()])
                    .unwrap_or_default();
                AlertView {
                    fingerprint: alert.fingerprint(),
                    alert,
                    receivers,
                    silenced_by,
                    inhibited_by,
                }
            })
            .collect();
        views.sort_by_key(|view| view.fingerprint);
        views
    }

    /// The aggregation groups with their alerts, as `GET /api/v2/alerts/groups` shows them.
    pub fn group_views(&self) -> Vec<GroupView> {
        let views: HashMap<Fingerprint, AlertView> = self
            .alert_views()
            .into_iter()
            .map(|view| (view.fingerprint, view))
            .collect();
        let routing = self.routing();
        let state = self.lock();
        state
            .groups
            .values()
            .filter_map(|group| {
                let route = routing.route_tree().get(group.route)?;
                let alerts: Vec<AlertView> = group
                    .alerts
                    .keys()
                    .filter_map(|fp| views.get(fp).cloned())
                    .collect();
                (!alerts.is_empty()).then(|| GroupView {
                    labels: group.labels.clone(),
                    receiver: route.receiver().to_owned(),
                    alerts,
                })
            })
            .collect()
    }

    /// Flushes the groups that are due until the process stops or `stopped` turns true (the
    /// lease was lost), and drops resolved alerts no group holds any more.
    pub async fn run(
        self: Arc<Self>,
        shutdown: Shutdown,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut last_gc = self.now();
        loop {
            let now = self.now();
            let (summaries, next_summary) = self.due_summaries(now);
            for route in summaries {
                let dispatcher = self.clone();
                tokio::spawn(async move { dispatcher.send_summary(route).await });
            }
            let (due, next) = self.due_groups(now);
            for (route, key) in due {
                let dispatcher = self.clone();
                tokio::spawn(async move { dispatcher.flush(route, key).await });
            }
            let next = match (next, next_summary) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if now - last_gc >= chrono_duration(GC_INTERVAL) {
                last_gc = now;
                let dropped = self.gc(now);
                if !dropped.is_empty() {
                    let fingerprints: Vec<String> =
                        dropped.iter().map(|fp| fp.to_string()).collect();
                    if let Err(error) = self.repository.delete_alerts(&fingerprints).await {
                        tracing::warn!(%error, "cannot drop resolved alerts from the store; will retry");
                    }
                }
            }
            let wait = next
                .map(|next| (next - now).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(GC_INTERVAL)
                .min(GC_INTERVAL);
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = stopped.wait_for(|stop| *stop) => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The groups whose flush is due, marked as flushing, and when the next one is.
    fn due_groups(&self, now: DateTime<Utc>) -> (Vec<(usize, String)>, Option<DateTime<Utc>>) {
        let mut state = self.lock();
        let mut due = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        for (id, group) in state.groups.iter_mut() {
            if group.flushing {
                continue;
            }
            if group.next_flush <= now {
                group.flushing = true;
                due.push(id.clone());
            } else {
                next = Some(next.map_or(group.next_flush, |n| n.min(group.next_flush)));
            }
        }
        (due, next)
    }

    /// Drops resolved alerts that no group holds; returns their fingerprints.
    fn gc(&self, now: DateTime<Utc>) -> Vec<Fingerprint> {
        let mut state = self.lock();
        let held: BTreeSet<Fingerprint> = state
            .groups
            .values()
            .flat_map(|group| group.alerts.keys().copied())
            .collect();
        let dropped: Vec<Fingerprint> = state
            .alerts
            .iter()
            .filter(|(fp, alert)| alert.resolved_at(now) && !held.contains(fp))
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &dropped {
            state.alerts.remove(fp);
        }
        state.log.retain(|_, entry| entry.expires_at > now);
        dropped
    }

    /// One flush of one group: Alertmanager's pipeline, then the group's next flush. When the
    /// route's notification budget is spent, what the group needs to send is held back for the
    /// route's summary.
    async fn flush(self: Arc<Self>, route_index: usize, key: String) {
        let now = self.now();
        let routing = self.routing();
        let Some(snapshot) = self.group_snapshot(route_index, &key, now) else {
            return;
        };
        let Some(route) = routing.route_tree().get(route_index) else {
            return;
        };
        let options = route.options().clone();
        if !routing.is_route_muted(route, now) {
            let kept =
                self.kept_alerts(&routing, &snapshot.alerts, &snapshot.firing_everywhere, now);
            let plan = self.plan(&routing, &key, &snapshot.labels, &kept, &options, now);
            if !plan.sends() || self.take_budget(route_index, &options.receiver, &key, now) {
                self.carry_out(plan).await;
            }
        }
        // The next flush, and resolved alerts the receivers have now heard about leave the group.
        let mut state = self.lock();
        let group_id = (route_index, key);
        let resolved: Vec<(Fingerprint, Alert)> = snapshot
            .alerts
            .into_iter()
            .filter(|alert| alert.resolved_at(now))
            .map(|alert| (alert.fingerprint(), alert))
            .collect();
        let held = state.budgets.get(&route_index).is_some_and(|budget| {
            budget.held.contains(&group_id.1) || budget.in_summary.contains(&group_id.1)
        });
        let remove_group = match state.groups.get_mut(&group_id) {
            Some(group) => {
                // A group held back keeps its resolved alerts until the summary told of them.
                if !held {
                    for (fp, alert) in &resolved {
                        if group.alerts.get(fp) == Some(alert) {
                            group.alerts.remove(fp);
                        }
                    }
                }
                group.flushing = false;
                group.has_flushed = true;
                group.next_flush = self.now() + chrono_duration(options.group_interval);
                group.alerts.is_empty()
            }
            None => false,
        };
        if remove_group {
            state.groups.remove(&group_id);
        }
        drop(state);
        self.wake.notify_one();
    }

    /// A group's labels and alerts, and the labels of every firing alert (for inhibition).
    fn group_snapshot(
        &self,
        route_index: usize,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<GroupSnapshot> {
        let state = self.lock();
        let group = state.groups.get(&(route_index, key.to_owned()))?;
        Some(GroupSnapshot {
            labels: group.labels.clone(),
            alerts: group.alerts.values().cloned().collect(),
            firing_everywhere: state
                .alerts
                .values()
                .filter(|alert| !alert.resolved_at(now))
                .map(|alert| alert.labels.clone())
                .collect(),
        })
    }

    /// The alerts neither inhibited nor silenced.
    fn kept_alerts<'a>(
        &self,
        routing: &RoutingConfig,
        alerts: &'a [Alert],
        firing_everywhere: &[LabelSet],
        now: DateTime<Utc>,
    ) -> Vec<&'a Alert> {
        let silences = self.silences();
        alerts
            .iter()
            .filter(|alert| {
                routing
                    .is_inhibited(&alert.labels, firing_everywhere)
                    .is_none()
                    && silences.mutes(&alert.labels, now).is_empty()
            })
            .collect()
    }

    /// How long the receiver waits before hearing again of the same firing alerts:
    /// acknowledged alerts stop repeating until they resolve, so when every firing alert of the
    /// group is acknowledged only a change (a new firing alert, a resolve) is notified.
    fn repeat_interval(&self, firing: &BTreeSet<u64>, options: &RouteOptions) -> Duration {
        let all_acknowledged = !firing.is_empty() && {
            let state = self.lock();
            firing
                .iter()
                .all(|fp| state.acknowledgements.contains_key(&Fingerprint(*fp)))
        };
        if all_acknowledged {
            Duration::MAX
        } else {
            options.repeat_interval
        }
    }

    /// What each integration of the route's receiver must hear about `alerts` of one group
    /// (Alertmanager's `DedupStage`), not yet sent.
    fn plan(
        &self,
        routing: &RoutingConfig,
        group_key: &str,
        group_labels: &LabelSet,
        alerts: &[&Alert],
        options: &RouteOptions,
        now: DateTime<Utc>,
    ) -> Plan {
        let mut plan = Plan::default();
        let Some(receiver_config) = routing.receiver(&options.receiver) else {
            return plan;
        };
        let (firing, resolved) = fingerprint_sets(alerts, now);
        let expires_at = now + chrono_duration(self.outbox.log_retention(options.repeat_interval));
        let repeat = self.repeat_interval(&firing, options);
        for (integration, send_resolved, config) in integrations(&options.receiver, receiver_config)
        {
            let log_key = (group_key.to_owned(), integration.clone());
            let entry = self.lock().log.get(&log_key).cloned();
            if !needs_update(
                entry.as_ref(),
                &firing,
                &resolved,
                send_resolved,
                repeat,
                now,
            ) {
                continue;
            }
            let log_entry = LogEntry {
                firing: firing.clone(),
                resolved: resolved.clone(),
                sent_at: now,
                expires_at,
            };
            let sent: Vec<NotifiedAlert> = alerts
                .iter()
                .filter(|alert| send_resolved || !alert.resolved_at(now))
                .map(|alert| notified(alert, now))
                .collect();
            if sent.is_empty() {
                // Nothing the receiver wants (only resolved alerts, send_resolved off): the log
                // still moves on, as Alertmanager's does (in memory: after a restart an absent
                // entry with nothing firing asks for nothing either).
                plan.log_only.push((log_key, log_entry));
                continue;
            }
            plan.notifications.push(PreparedNotification {
                notification: Notification {
                    receiver: options.receiver.clone(),
                    group_key: group_key.to_owned(),
                    group_labels: group_labels.clone(),
                    external_url: self.external_url.clone(),
                    alerts: sent,
                },
                integration,
                config,
                log_entry,
                also_logs: Vec::new(),
            });
        }
        plan
    }

    /// Sends what a plan holds; the notification log moves on for what was delivered.
    async fn carry_out(&self, plan: Plan) {
        {
            let mut state = self.lock();
            state.log.extend(plan.log_only);
        }
        for prepared in plan.notifications {
            let integration = prepared.integration.clone();
            let mut entries = vec![(
                prepared.notification.group_key.clone(),
                prepared.log_entry.clone(),
            )];
            entries.extend(prepared.also_logs.iter().cloned());
            if self.outbox.send(prepared).await {
                let mut state = self.lock();
                for (group_key, entry) in entries {
                    state.log.insert((group_key, integration.clone()), entry);
                }
            }
        }
    }

    /// Takes one notification from the route's budget; false when it is spent (or a summary is
    /// due), and then the group is held back for the summary.
    fn take_budget(
        &self,
        route_index: usize,
        receiver: &str,
        group_key: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(limit) = self.rate_limit.for_receiver(receiver) else {
            return true;
        };
        let mut state = self.lock();
        let budget = state
            .budgets
            .entry(route_index)
            .or_insert_with(|| RouteBudget::new(now));
        if budget.in_summary.contains(group_key) {
            // Its alerts are in the summary on its way; its next flush decides again.
            return false;
        }
        if budget.held.is_empty() && budget.window_start + chrono_duration(limit.per) <= now {
            *budget = RouteBudget::new(now);
        }
        if budget.held.is_empty() && budget.sent < limit.notifications {
            budget.sent += 1;
            return true;
        }
        if budget.held.is_empty() {
            tracing::info!(
                receiver,
                notifications = limit.notifications,
                per = ?limit.per,
                "notification rate limit reached: notifications of this route are held back until one summary at the end of the window"
            );
        }
        budget.held.insert(group_key.to_owned());
        drop(state);
        self.wake.notify_one();
        false
    }

    /// The routes whose summary is due (their window ended with groups held back), marked as
    /// being summarised, and when the next window with held groups ends.
    fn due_summaries(&self, now: DateTime<Utc>) -> (Vec<usize>, Option<DateTime<Utc>>) {
        let routing = self.routing();
        let mut state = self.lock();
        let mut due = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        for (route_index, budget) in state.budgets.iter_mut() {
            if budget.held.is_empty() || !budget.in_summary.is_empty() {
                continue;
            }
            let Some(route) = routing.route_tree().get(*route_index) else {
                continue;
            };
            let Some(limit) = self.rate_limit.for_receiver(route.receiver()) else {
                continue;
            };
            let ends = budget.window_start + chrono_duration(limit.per);
            if ends <= now {
                due.push(*route_index);
            } else {
                next = Some(next.map_or(ends, |n| n.min(ends)));
            }
        }
        (due, next)
    }

    /// One summary for a route whose budget was spent: for each integration, every alert of the
    /// held groups that the integration still needs to hear about, in one notification ("N more
    /// alerts"), whose delivery records each group's notification-log entry. The summary is the
    /// first notification of the route's next window.
    async fn send_summary(self: Arc<Self>, route_index: usize) {
        let now = self.now();
        let routing = self.routing();
        let route = routing.route_tree().get(route_index);
        // A muted route sends nothing now; its groups are notified by their own flushes later.
        let sending = route.is_some_and(|route| !routing.is_route_muted(route, now));
        let held = {
            let mut state = self.lock();
            let Some(budget) = state.budgets.get_mut(&route_index) else {
                return;
            };
            let held = std::mem::take(&mut budget.held);
            *budget = RouteBudget::new(now);
            if sending {
                budget.sent = 1;
                budget.in_summary = held.clone();
            }
            held
        };
        let Some(route) = route.filter(|_| sending) else {
            return;
        };
        let options = route.options().clone();
        // Each held group's plan, as its own flush would make it now.
        let mut plans: Vec<Plan> = Vec::new();
        for key in &held {
            let Some(snapshot) = self.group_snapshot(route_index, key, now) else {
                continue;
            };
            let kept =
                self.kept_alerts(&routing, &snapshot.alerts, &snapshot.firing_everywhere, now);
            plans.push(self.plan(&routing, key, &snapshot.labels, &kept, &options, now));
        }
        let summary = summarize(plans, route.key(), &options.receiver);
        self.carry_out(summary).await;
        if let Some(budget) = self.lock().budgets.get_mut(&route_index) {
            budget.in_summary.clear();
        }
        // Resolved alerts the receivers have now heard about leave the groups, at their next flush.
        self.wake.notify_one();
    }
}

/// Adds `alert` to the aggregation group of each route it matches.
fn route_alert(state: &mut State, routing: &RoutingConfig, alert: &Alert, now: DateTime<Utc>) {
    let fingerprint = alert.fingerprint();
    for route in routing.match_alert(&alert.labels) {
        let key = route.group_key(&alert.labels);
        let options = route.options();
        let group = state
            .groups
            .entry((route.index(), key))
            .or_insert_with(|| AggregationGroup {
                route: route.index(),
                labels: route.group_labels(&alert.labels),
                alerts: BTreeMap::new(),
                next_flush: now + chrono_duration(options.group_wait),
                has_flushed: false,
                flushing: false,
            });
        group.alerts.insert(fingerprint, alert.clone());
        // An alert older than group_wait is not held back (Alertmanager resets the timer).
        if !group.has_flushed && alert.starts_at + chrono_duration(options.group_wait) < now {
            group.next_flush = now;
        }
    }
}

/// The integrations of a receiver: name (`receiver/webhook/0`), `send_resolved`, config.
fn integrations(
    receiver: &str,
    config: &pharos_routing::Receiver,
) -> Vec<(String, bool, Integration)> {
    let webhooks = config
        .webhook_configs
        .iter()
        .enumerate()
        .map(|(index, webhook)| {
            (
                format!("{receiver}/webhook/{index}"),
                webhook.send_resolved,
                Integration::Webhook(webhook.clone()),
            )
        });
    let emails = config
        .email_configs
        .iter()
        .enumerate()
        .map(|(index, email)| {
            (
                format!("{receiver}/email/{index}"),
                email.send_resolved,
                Integration::Email(email.clone()),
            )
        });
    webhooks.chain(emails).collect()
}

/// The fingerprints of the firing and of the resolved alerts.
fn fingerprint_sets(alerts: &[&Alert], now: DateTime<Utc>) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut firing = BTreeSet::new();
    let mut resolved = BTreeSet::new();
    for alert in alerts {
        if alert.resolved_at(now) {
            resolved.insert(alert.fingerprint().0);
        } else {
            firing.insert(alert.fingerprint().0);
        }
    }
    (firing, resolved)
}

/// The group label a rate-limit summary carries (`"12 more alerts in 7 groups"`).
pub const SUMMARY_LABEL: &str = "summary";

/// Folds the plans of the groups a route held back into one notification per integration: every
/// alert they would have sent, with each group's notification-log entry recorded by its
/// delivery. The summary's own group key is the route's key with `:rate-limited`.
fn summarize(plans: Vec<Plan>, route_key: &str, receiver: &str) -> Plan {
    let mut summary = Plan::default();
    let mut by_integration: BTreeMap<String, Vec<PreparedNotification>> = BTreeMap::new();
    for plan in plans {
        summary.log_only.extend(plan.log_only);
        for prepared in plan.notifications {
            by_integration
                .entry(prepared.integration.clone())
                .or_default()
                .push(prepared);
        }
    }
    let group_key = format!("{route_key}:rate-limited");
    for (integration, parts) in by_integration {
        let Some(first) = parts.first() else {
            continue;
        };
        let config = first.config.clone();
        let external_url = first.notification.external_url.clone();
        let mut log_entry = LogEntry {
            firing: BTreeSet::new(),
            resolved: BTreeSet::new(),
            sent_at: first.log_entry.sent_at,
            expires_at: first.log_entry.expires_at,
        };
        let mut alerts = Vec::new();
        let mut also_logs = Vec::new();
        let groups = parts.len();
        for part in parts {
            log_entry
                .firing
                .extend(part.log_entry.firing.iter().copied());
            log_entry
                .resolved
                .extend(part.log_entry.resolved.iter().copied());
            log_entry.expires_at = log_entry.expires_at.max(part.log_entry.expires_at);
            alerts.extend(part.notification.alerts);
            also_logs.push((part.notification.group_key, part.log_entry));
        }
        let text = format!(
            "{} more alert{} in {groups} group{}",
            alerts.len(),
            if alerts.len() == 1 { "" } else { "s" },
            if groups == 1 { "" } else { "s" },
        );
        summary.notifications.push(PreparedNotification {
            notification: Notification {
                receiver: receiver.to_owned(),
                group_key: group_key.clone(),
                group_labels: LabelSet::from([(SUMMARY_LABEL.to_owned(), text)]),
                external_url,
                alerts,
            },
            integration,
            config,
            log_entry,
            also_logs,
        });
    }
    summary
}

/// The alert as a notification carries it: firing alerts with no end time.
fn notified(alert: &Alert, now: DateTime<Utc>) -> NotifiedAlert {
    let resolved = alert.resolved_at(now);
    NotifiedAlert {
        status: if resolved {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        },
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        starts_at: alert.starts_at,
        ends_at: resolved.then_some(alert.ends_at),
        generator_url: alert.generator_url.clone(),
        fingerprint: alert.fingerprint(),
    }
}

/// The alert as the store keeps it.
pub fn alert_row(alert: &Alert) -> AlertRow {
    AlertRow {
        fingerprint: alert.fingerprint().to_string(),
        labels_json: serde_json::to_string(&alert.labels).unwrap_or_else(|_| "{}".to_owned()),
        annotations_json: serde_json::to_string(&alert.annotations)
            .unwrap_or_else(|_| "{}".to_owned()),
        starts_at_ms: millis(alert.starts_at),
        ends_at_ms: millis(alert.ends_at),
        generator_url: alert.generator_url.clone(),
        updated_at_ms: millis(alert.updated_at),
        timeout: alert.timeout,
    }
}

/// The alert of a stored row; `None` for a row that does not parse.
pub fn alert_from_row(row: &AlertRow) -> Result<Alert> {
    let labels: LabelSet = serde_json::from_str(&row.labels_json)
        .map_err(|error| AlertError::Corrupt(format!("alert {}: {error}", row.fingerprint)))?;
    let annotations = serde_json::from_str(&row.annotations_json)
        .map_err(|error| AlertError::Corrupt(format!("alert {}: {error}", row.fingerprint)))?;
    Ok(Alert {
        labels,
        annotations,
        starts_at: time_from_millis(row.starts_at_ms),
        ends_at: time_from_millis(row.ends_at_ms),
        generator_url: row.generator_url.clone(),
        updated_at: time_from_millis(row.updated_at_ms),
        timeout: row.timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(fps: &[u64]) -> BTreeSet<u64> {
        fps.iter().copied().collect()
    }

    fn entry(firing: &[u64], resolved: &[u64], sent_at: DateTime<Utc>) -> LogEntry {
        LogEntry {
            firing: set(firing),
            resolved: set(resolved),
            sent_at,
            expires_at: sent_at + chrono::Duration::hours(1),
        }
    }

    #[test]
    fn needs_update_follows_alertmanager() {
        let now = time_from_millis(1_000_000_000);
        let repeat = Duration::from_secs(3600);
        // Never notified: only firing alerts count.
        assert!(needs_update(None, &set(&[1]), &set(&[]), true, repeat, now));
        assert!(!needs_update(
            None,
            &set(&[]),
            &set(&[1]),
            true,
            repeat,
            now
        ));
        let sent = entry(&[1, 2], &[], now);
        // Same firing set, nothing new: not before the repeat interval.
        assert!(!needs_update(
            Some(&sent),
            &set(&[1, 2]),
            &set(&[]),
            true,
            repeat,
            now
        ));
        assert!(needs_update(
            Some(&sent),
            &set(&[1, 2]),
            &set(&[]),
            true,
            repeat,
            now + chrono::Duration::hours(1)
        ));
        // A new firing alert.
        assert!(needs_update(
            Some(&sent),
            &set(&[1, 3]),
            &set(&[]),
            true,
            repeat,
            now
        ));
        // One resolved: only with send_resolved.
        assert!(needs_update(
            Some(&sent),
            &set(&[1]),
            &set(&[2]),
            true,
            repeat,
            now
        ));
        assert!(!needs_update(
            Some(&sent),
            &set(&[1]),
            &set(&[2]),
            false,
            repeat,
            now
        ));
        // All resolved: always, to clear the log, but only if something was notified firing.
        assert!(needs_update(
            Some(&sent),
            &set(&[]),
            &set(&[1, 2]),
            false,
            repeat,
            now
        ));
        let nothing_firing = entry(&[], &[1], now);
        assert!(!needs_update(
            Some(&nothing_firing),
            &set(&[]),
            &set(&[1]),
            true,
            repeat,
            now
        ));
    }

    fn prepared(group_key: &str, integration: &str, fingerprints: &[u64]) -> PreparedNotification {
        let now = time_from_millis(1_000_000);
        let alerts = fingerprints
            .iter()
            .map(|fp| NotifiedAlert {
                status: AlertStatus::Firing,
                labels: LabelSet::from([("n".to_owned(), fp.to_string())]),
                annotations: BTreeMap::new(),
                starts_at: now,
                ends_at: None,
                generator_url: String::new(),
                fingerprint: Fingerprint(*fp),
            })
            .collect();
        PreparedNotification {
            notification: Notification {
                receiver: "hook".into(),
                group_key: group_key.into(),
                group_labels: LabelSet::new(),
                external_url: "http://pharos".into(),
                alerts,
            },
            integration: integration.into(),
            config: Integration::Webhook(pharos_routing::WebhookConfig {
                url: "http://receiver".into(),
                send_resolved: true,
                max_alerts: 0,
                http_config: pharos_routing::HttpClientConfig::default(),
            }),
            log_entry: entry(fingerprints, &[], now),
            also_logs: Vec::new(),
        }
    }

    #[test]
    fn a_summary_folds_the_held_groups_per_integration() {
        let plans = vec![
            Plan {
                notifications: vec![
                    prepared("{}:{n=\"1\"}", "hook/webhook/0", &[1]),
                    prepared("{}:{n=\"1\"}", "hook/email/0", &[1]),
                ],
                log_only: Vec::new(),
            },
            Plan {
                notifications: vec![prepared("{}:{n=\"2\"}", "hook/webhook/0", &[2, 3])],
                log_only: Vec::new(),
            },
        ];
        let summary = summarize(plans, "{}", "hook");
        assert_eq!(summary.notifications.len(), 2);
        let email = &summary.notifications[0];
        assert_eq!(email.integration, "hook/email/0");
        assert_eq!(
            email.notification.group_labels[SUMMARY_LABEL],
            "1 more alert in 1 group"
        );
        let webhook = &summary.notifications[1];
        assert_eq!(webhook.integration, "hook/webhook/0");
        assert_eq!(webhook.notification.group_key, "{}:rate-limited");
        assert_eq!(
            webhook.notification.group_labels[SUMMARY_LABEL],
            "3 more alerts in 2 groups"
        );
        assert_eq!(webhook.notification.alerts.len(), 3);
        assert_eq!(webhook.log_entry.firing, set(&[1, 2, 3]));
        let groups: Vec<(&str, BTreeSet<u64>)> = webhook
            .also_logs
            .iter()
            .map(|(key, entry)| (key.as_str(), entry.firing.clone()))
            .collect();
        assert_eq!(
            groups,
            [("{}:{n=\"1\"}", set(&[1])), ("{}:{n=\"2\"}", set(&[2, 3]))]
        );
    }

    #[test]
    fn fingerprints_round_trip_as_hex() {
        let fps = set(&[1, u64::MAX, 0xdead_beef]);
        let json = fingerprints_to_json(&fps);
        assert_eq!(
            json,
            "[\"0000000000000001\",\"00000000deadbeef\",\"ffffffffffffffff\"]"
        );
        assert_eq!(fingerprints_from_json(&json), Some(fps));
    }
}
