//! Rule evaluation: the groups of the rule files, each run by its own task at its interval
//! and, when `alert.evaluate_on_commit` is on, as soon as ingest's feed reports a committed
//! batch with points of a metric the group reads. Queries go to the query service and
//! recorded series, `ALERTS` and `ALERTS_FOR_STATE` are written through ingest (both through
//! `pharos-api` interfaces, in process or remote). After each evaluation the group's alerts go
//! to the dispatcher, as Prometheus sends them to Alertmanager, and the group's alert state is
//! saved to the store, so that after a restart no `for` starts over.
//!
//! A group is never triggered by what it writes itself (its recorded series and `ALERTS`),
//! and triggered evaluations of one group are at least `commit_evaluation_gap` apart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pharos_api::feed::FeedApi;
use pharos_api::ingest::IngestApi;
use pharos_api::query::QueryApi;
use pharos_clock::Clock;
use pharos_promql::{Engine, EngineSettings, Labels, METRIC_NAME, MatchOp, Point, Sample};
use pharos_proto::ingest::v1 as ingest_pb;
use pharos_proto::query::v1 as query_pb;
use pharos_routing::LabelSet;
use pharos_rules::alerting::{ALERTS_FOR_STATE_METRIC, ALERTS_METRIC};
use pharos_rules::{Alert as RuleAlert, AlertState, Group, GroupRule, RuleGroup, RuleStorage};
use pharos_runtime::Shutdown;
use pharos_store::control::alerts::AlertRepository;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::alerts::{Alert, time_from_millis};
use crate::dispatch::Dispatcher;
use crate::settings::AlertSettings;

/// Points per write to ingest.
const WRITE_CHUNK: usize = 5_000;
/// Prometheus' `rules.alert.resend-delay`: alerts sent stay valid for 4 times the longer of
/// this and the group's interval.
const RESEND_DELAY_MS: i64 = 60_000;

/// The rule groups of the rule files, read and checked; the file of each group beside it.
pub fn load_rule_files(patterns: &[String]) -> Result<Vec<(PathBuf, RuleGroup)>, String> {
    let mut groups = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(pattern).map_err(|error| {
            format!("alert.rule_files: {pattern:?} is not a valid glob: {error}")
        })?;
        let mut paths: Vec<PathBuf> = paths.filter_map(|path| path.ok()).collect();
        paths.sort();
        for path in paths {
            let loaded = pharos_rules::load_rule_file(&path).map_err(|error| error.to_string())?;
            groups.extend(loaded.into_iter().map(|group| (path.clone(), group)));
        }
    }
    Ok(groups)
}

/// What a group reads: metric names, or anything (a selector without a fixed name).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reads {
    Any,
    Names(HashSet<String>),
}

impl Reads {
    fn of(group: &RuleGroup) -> Reads {
        let engine = Engine::new(EngineSettings::default());
        let mut names = HashSet::new();
        for rule in &group.rules {
            let Ok(prepared) = engine.prepare_instant(&rule.expr, 0) else {
                return Reads::Any;
            };
            for selection in prepared.selections() {
                let name = selection.matchers.iter().find_map(|matcher| {
                    match (&matcher.op, matcher.name.as_str()) {
                        (MatchOp::Equal(value), METRIC_NAME) => Some(value.clone()),
                        _ => None,
                    }
                });
                match name {
                    Some(name) => names.insert(name),
                    None => return Reads::Any,
                };
            }
        }
        Reads::Names(names)
    }

    fn touched_by(&self, names: &HashSet<String>, writes: &HashSet<String>) -> bool {
        match self {
            Reads::Any => names.iter().any(|name| !writes.contains(name)),
            Reads::Names(read) => names
                .iter()
                .any(|name| read.contains(name) && !writes.contains(name)),
        }
    }
}

/// The series names a group writes.
fn writes_of(group: &RuleGroup) -> HashSet<String> {
    let mut writes: HashSet<String> = [ALERTS_METRIC, ALERTS_FOR_STATE_METRIC]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for rule in &group.rules {
        if rule.kind == pharos_rules::RuleKind::Recording {
            writes.insert(rule.name.clone());
        }
    }
    writes
}

/// The last evaluation of a group, for the API and the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStatus {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub last_evaluation: Option<DateTime<Utc>>,
    pub last_duration: Duration,
    pub evaluations: u64,
    /// Rule name and its last error.
    pub errors: Vec<(String, String)>,
}

/// A running group, as the feed follower and reloads see it.
struct RunningGroup {
    key: String,
    reads: Reads,
    writes: HashSet<String>,
    trigger: Arc<Notify>,
    stop: Arc<Notify>,
    handle: JoinHandle<()>,
}

/// Everything a group's evaluation uses.
struct EvalContext {
    clock: Clock,
    storage: ServiceStorage,
    repository: AlertRepository,
    dispatcher: Arc<Dispatcher>,
    external_labels: Labels,
    external_url: String,
    default_interval: Duration,
    commit_gap: Duration,
    status: Mutex<BTreeMap<String, GroupStatus>>,
}

/// Runs the rule groups.
pub struct RuleEvaluator {
    context: Arc<EvalContext>,
    groups: RwLock<Vec<RunningGroup>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RuleEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEvaluator").finish_non_exhaustive()
    }
}

impl RuleEvaluator {
    pub fn new(
        settings: &AlertSettings,
        external_url: String,
        clock: Clock,
        query: Arc<dyn QueryApi>,
        ingest: Arc<dyn IngestApi>,
        repository: AlertRepository,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        let timeout_ms = i64::try_from(settings.query_timeout.as_millis()).unwrap_or(i64::MAX);
        Self {
            context: Arc::new(EvalContext {
                clock,
                storage: ServiceStorage {
                    query,
                    ingest,
                    timeout_ms,
                },
                repository,
                dispatcher,
                external_labels: Labels::from_pairs(settings.external_labels.clone()),
                external_url,
                default_interval: settings.evaluation_interval,
                commit_gap: settings.commit_evaluation_gap,
                status: Mutex::new(BTreeMap::new()),
            }),
            groups: RwLock::new(Vec::new()),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Replaces the running groups with `groups`: each old group stops (its state is saved
    /// after every evaluation), each new one starts from the state saved under its key.
    pub async fn replace(&self, groups: Vec<(PathBuf, RuleGroup)>) -> Result<(), String> {
        let _reloading = self.reload_lock.lock().await;
        self.stop_running().await;
        let saved: HashMap<String, String> = match self.context.repository.load_rule_states().await
        {
            Ok(states) => states.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read saved rule state; alerts start over");
                HashMap::new()
            }
        };
        let default_interval_ms =
            i64::try_from(self.context.default_interval.as_millis()).unwrap_or(60_000);
        let mut started = Vec::with_capacity(groups.len());
        let mut status = BTreeMap::new();
        for (path, definition) in groups {
            let file = path.display().to_string();
            let key = format!("{file};{}", definition.name);
            let mut group = Group::new(
                &definition,
                file.clone(),
                default_interval_ms,
                &self.context.external_labels,
                &self.context.external_url,
            );
            if let Some(state) = saved.get(&key) {
                restore(&mut group, state);
            }
            status.insert(
                key.clone(),
                GroupStatus {
                    file,
                    name: definition.name.clone(),
                    interval: Duration::from_millis(u64::try_from(group.interval_ms).unwrap_or(0)),
                    last_evaluation: None,
                    last_duration: Duration::ZERO,
                    evaluations: 0,
                    errors: Vec::new(),
                },
            );
            let trigger = Arc::new(Notify::new());
            let stop = Arc::new(Notify::new());
            let handle = tokio::spawn(run_group(
                group,
                key.clone(),
                self.context.clone(),
                trigger.clone(),
                stop.clone(),
            ));
            started.push(RunningGroup {
                key,
                reads: Reads::of(&definition),
                writes: writes_of(&definition),
                trigger,
                stop,
                handle,
            });
        }
        if let Ok(mut current) = self.context.status.lock() {
            *current = status;
        }
        let keys: HashSet<&str> = started.iter().map(|group| group.key.as_str()).collect();
        for key in saved.keys().filter(|key| !keys.contains(key.as_str())) {
            // A group that is gone leaves no state behind.
            if let Err(error) = self.context.repository.delete_rule_state(key).await {
                tracing::warn!(%error, key, "cannot drop the state of a removed group");
            }
        }
        tracing::info!(groups = started.len(), "rule groups running");
        match self.groups.write() {
            Ok(mut running) => *running = started,
            Err(poisoned) => *poisoned.into_inner() = started,
        }
        Ok(())
    }

    /// Stops every group.
    pub async fn stop(&self) {
        let _reloading = self.reload_lock.lock().await;
        self.stop_running().await;
    }

    /// Stops the running groups and waits for their tasks (each saved its state after its
    /// last evaluation). The caller holds `reload_lock`.
    async fn stop_running(&self) {
        let old: Vec<RunningGroup> = match self.groups.write() {
            Ok(mut running) => std::mem::take(&mut *running),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for group in old {
            group.stop.notify_one();
            let _ = group.handle.await;
        }
    }

    /// The groups' last evaluations.
    pub fn status(&self) -> Vec<GroupStatus> {
        self.context
            .status
            .lock()
            .map(|status| status.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Wakes the groups that read any of `names` (metric names of a committed batch).
    pub fn committed(&self, names: &HashSet<String>) {
        if let Ok(groups) = self.groups.read() {
            for group in groups.iter() {
                if group.reads.touched_by(names, &group.writes) {
                    group.trigger.notify_one();
                }
            }
        }
    }

    /// Follows ingest's feed and wakes the groups each committed batch concerns, until the
    /// process stops. A lost subscription is taken up again after the last batch seen.
    pub async fn follow_feed(self: Arc<Self>, feed: Arc<dyn FeedApi>, shutdown: Shutdown) {
        let mut names_by_series: HashMap<i64, String> = HashMap::new();
        pharos_api::feed::follow(
            feed,
            &[ingest_pb::FeedSignal::Metrics],
            shutdown,
            "rule evaluation",
            |batch| {
                if let Some(ingest_pb::committed_batch::Items::Metrics(metrics)) = batch.items {
                    for series in metrics.series {
                        names_by_series.insert(series.id, series.name);
                    }
                    let names: HashSet<String> = metrics
                        .points
                        .iter()
                        .filter_map(|point| names_by_series.get(&point.series_id))
                        .cloned()
                        .collect();
                    tracing::debug!(position = batch.position, ?names, "committed batch");
                    self.committed(&names);
                }
                std::future::ready(())
            },
        )
        .await;
    }
}

/// One group's task: an evaluation at start, then at each interval and on triggers.
async fn run_group(
    mut group: Group,
    key: String,
    context: Arc<EvalContext>,
    trigger: Arc<Notify>,
    stop: Arc<Notify>,
) {
    let interval = Duration::from_millis(u64::try_from(group.interval_ms).unwrap_or(60_000).max(1));
    let mut last_saved = String::new();
    let mut next_tick = Instant::now();
    let mut last_evaluation: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::time::sleep_until(next_tick) => {
                let now = Instant::now();
                while next_tick <= now {
                    next_tick += interval;
                }
            }
            _ = trigger.notified() => {
                if let Some(last) = last_evaluation {
                    let earliest = last + context.commit_gap;
                    if Instant::now() < earliest {
                        tokio::select! {
                            _ = stop.notified() => return,
                            _ = tokio::time::sleep(earliest - Instant::now()) => {}
                        }
                    }
                }
            }
        }
        let started = Instant::now();
        evaluate(&mut group, &key, &context, &mut last_saved).await;
        last_evaluation = Some(started);
    }
}

/// One evaluation: the rules, the alerts to the dispatcher, the state to the store.
async fn evaluate(group: &mut Group, key: &str, context: &EvalContext, last_saved: &mut String) {
    let started = Instant::now();
    let ts = context.clock.now_micros().div_euclid(1000);
    group.eval(ts, &context.storage).await;
    tracing::debug!(group = %group.name, ts, "group evaluated");
    let valid_until = ts + 4 * group.interval_ms.max(RESEND_DELAY_MS);
    let now = time_from_millis(ts);
    let mut alerts = Vec::new();
    for evaluated in group.rules() {
        let GroupRule::Alerting(rule) = &evaluated.rule else {
            continue;
        };
        let generator_url = generator_url(&context.external_url, &rule.rule().expr);
        for alert in rule.alerts() {
            if let Some(sent) = to_dispatch(alert, valid_until, now, &generator_url) {
                alerts.push(sent);
            }
        }
    }
    context.dispatcher.put(alerts);
    let state = save_state(group);
    if state != *last_saved {
        match context.repository.save_rule_state(key, &state, ts).await {
            Ok(()) => *last_saved = state,
            Err(error) => tracing::warn!(%error, group = %group.name, "cannot save rule state"),
        }
    }
    if let Ok(mut status) = context.status.lock()
        && let Some(entry) = status.get_mut(key)
    {
        entry.last_evaluation = Some(now);
        entry.last_duration = started.elapsed();
        entry.evaluations += 1;
        entry.errors = group
            .rules()
            .iter()
            .filter_map(|rule| {
                rule.last_error
                    .as_ref()
                    .map(|error| (rule.rule.name().to_owned(), error.clone()))
            })
            .collect();
    }
    for rule in group.rules() {
        if let Some(error) = &rule.last_error {
            tracing::warn!(group = %group.name, rule = rule.rule.name(), %error, "rule evaluation failed");
        }
    }
}

/// The alert Prometheus would send for `alert`: firing ones valid until `valid_until`,
/// resolved ones ending when they resolved; pending ones are not sent.
fn to_dispatch(
    alert: &RuleAlert,
    valid_until: i64,
    now: DateTime<Utc>,
    generator_url: &str,
) -> Option<Alert> {
    let ends_at = match (alert.state, alert.resolved_at) {
        (AlertState::Firing, _) => valid_until,
        (AlertState::Inactive, Some(resolved_at)) => resolved_at,
        _ => return None,
    };
    let starts_at = alert.fired_at.unwrap_or(alert.active_at);
    Some(Alert {
        labels: label_set(&alert.labels),
        annotations: alert.annotations.clone(),
        starts_at: time_from_millis(starts_at),
        ends_at: time_from_millis(ends_at),
        generator_url: generator_url.to_owned(),
        updated_at: now,
        timeout: false,
    })
}

fn label_set(labels: &Labels) -> LabelSet {
    labels
        .iter()
        .map(|label| (label.name.clone(), label.value.clone()))
        .collect()
}

/// Prometheus' link to an expression: `<external URL>/graph?g0.expr=<expr>&g0.tab=1`.
fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.trim_end_matches('/'),
        go_query_escape(expr)
    )
}

/// Go's `url.QueryEscape`.
fn go_query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            b' ' => escaped.push('+'),
            _ => escaped.push_str(&format!("%{byte:02X}")),
        }
    }
    escaped
}

/// A group's alerts as the store keeps them.
#[derive(Debug, Serialize, Deserialize)]
struct SavedGroup {
    rules: Vec<SavedRule>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRule {
    name: String,
    expr: String,
    alerts: Vec<SavedAlert>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedAlert {
    labels: Vec<(String, String)>,
    annotations: BTreeMap<String, String>,
    state: String,
    /// The value as Rust prints it (`NaN` and `inf` included, which JSON numbers cannot hold).
    value: String,
    active_at: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    keep_firing_since: Option<i64>,
}

fn save_state(group: &Group) -> String {
    let rules = group
        .rules()
        .iter()
        .filter_map(|evaluated| match &evaluated.rule {
            GroupRule::Alerting(rule) => Some(SavedRule {
                name: rule.name().to_owned(),
                expr: rule.rule().expr.clone(),
                alerts: rule
                    .alerts()
                    .map(|alert| SavedAlert {
                        labels: alert
                            .labels
                            .iter()
                            .map(|label| (label.name.clone(), label.value.clone()))
                            .collect(),
                        annotations: alert.annotations.clone(),
                        state: alert.state.as_str().to_owned(),
                        value: alert.value.to_string(),
                        active_at: alert.active_at,
                        fired_at: alert.fired_at,
                        resolved_at: alert.resolved_at,
                        keep_firing_since: alert.keep_firing_since,
                    })
                    .collect(),
            }),
            GroupRule::Recording(_) => None,
        })
        .collect();
    let mut saved = SavedGroup { rules };
    for rule in &mut saved.rules {
        rule.alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
    serde_json::to_string(&saved).unwrap_or_default()
}

/// Puts back the alerts saved for a group into the rules of the same name and expression.
fn restore(group: &mut Group, state: &str) {
    let saved: SavedGroup = match serde_json::from_str(state) {
        Ok(saved) => saved,
        Err(error) => {
            tracing::warn!(%error, group = %group.name, "saved rule state does not read back; alerts start over");
            return;
        }
    };
    let mut restored = 0usize;
    for saved_rule in saved.rules {
        for evaluated in group.rules_mut() {
            let GroupRule::Alerting(rule) = &mut evaluated.rule else {
                continue;
            };
            if rule.name() != saved_rule.name || rule.rule().expr != saved_rule.expr {
                continue;
            }
            for alert in &saved_rule.alerts {
                let state = match alert.state.as_str() {
                    "firing" => AlertState::Firing,
                    "pending" => AlertState::Pending,
                    _ => AlertState::Inactive,
                };
                rule.restore_alert(RuleAlert {
                    labels: Labels::from_pairs(alert.labels.clone()),
                    annotations: alert.annotations.clone(),
                    state,
                    value: alert.value.parse().unwrap_or(f64::NAN),
                    active_at: alert.active_at,
                    fired_at: alert.fired_at,
                    resolved_at: alert.resolved_at,
                    keep_firing_since: alert.keep_firing_since,
                });
                restored += 1;
            }
            break;
        }
    }
    if restored > 0 {
        tracing::info!(group = %group.name, alerts = restored, "rule state restored");
    }
}

/// The rules' storage: the query service to read, ingest to write.
struct ServiceStorage {
    query: Arc<dyn QueryApi>,
    ingest: Arc<dyn IngestApi>,
    timeout_ms: i64,
}

#[async_trait::async_trait]
impl RuleStorage for ServiceStorage {
    async fn query(&self, expr: &str, time: i64) -> Result<Vec<Sample>, String> {
        let response = self
            .query
            .instant(query_pb::QueryInstantRequest {
                query: expr.to_owned(),
                time_ms: Some(time),
                timeout_ms: self.timeout_ms,
                // Evaluated as its points commit, a rule must see series created a moment ago.
                fresh_series: true,
            })
            .await
            .map_err(|status| status.message().to_owned())?;
        match response.result {
            Some(query_pb::query_instant_response::Result::Vector(vector)) => Ok(vector
                .samples
                .into_iter()
                .map(|sample| Sample {
                    labels: Labels::from_pairs(sample.labels),
                    t: time,
                    v: sample.value,
                })
                .collect()),
            Some(query_pb::query_instant_response::Result::Scalar(scalar)) => Ok(vec![Sample {
                labels: Labels::empty(),
                t: time,
                v: scalar.value,
            }]),
            _ => Err("rule result is not a vector or scalar".to_owned()),
        }
    }

    async fn append(&self, samples: &[(Labels, Point)]) -> Result<(), String> {
        for chunk in samples.chunks(WRITE_CHUNK) {
            let points = chunk
                .iter()
                .map(|(labels, point)| ingest_pb::MetricPoint {
                    name: labels.metric_name().unwrap_or_default().to_owned(),
                    labels: labels
                        .iter()
                        .filter(|label| label.name != METRIC_NAME)
                        .map(|label| ingest_pb::Label {
                            name: label.name.clone(),
                            value: label.value.clone(),
                        })
                        .collect(),
                    time_unix_nano: point.t.saturating_mul(1_000_000),
                    value: point.v,
                })
                .collect();
            let response = self
                .ingest
                .write_metrics(ingest_pb::WriteMetricsRequest { points })
                .await
                .map_err(|status| status.message().to_owned())?;
            if let Some(rejection) = response.rejections.first() {
                return Err(format!(
                    "{} of {} samples refused by ingest, the first: {} ({})",
                    response.rejected,
                    chunk.len(),
                    rejection.message,
                    rejection.reason
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
    fn generator_urls_escape_as_go_does() {
        assert_eq!(
            generator_url("http://pharos:9090/", "rate(x{a=\"b c\"}[5m]) > 0.5"),
            "http://pharos:9090/graph?g0.expr=rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29+%3E+0.5&g0.tab=1"
        );
    }

    #[test]
    fn groups_read_named_metrics_and_ignore_their_own_writes() {
        let groups = pharos_rules::parse_rule_groups(
            "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: job:up:sum == 0\n",
        )
        .expect("parses");
        let reads = Reads::of(&groups[0]);
        let writes = writes_of(&groups[0]);
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<HashSet<_>>();
        assert!(reads.touched_by(&names(&["up"]), &writes));
        assert!(!reads.touched_by(&names(&["job:up:sum", "ALERTS"]), &writes));
        assert!(!reads.touched_by(&names(&["other"]), &writes));
        let any = pharos_rules::parse_rule_groups(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '{__name__=~\"x.*\"} > 1'\n",
        )
        .expect("parses");
        assert_eq!(Reads::of(&any[0]), Reads::Any);
    }

    #[test]
    fn state_round_trips_with_nan_values() {
        let groups = pharos_rules::parse_rule_groups(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n",
        )
        .expect("parses");
        let mut group = Group::new(&groups[0], "f", 60_000, &Labels::empty(), "");
        if let GroupRule::Alerting(rule) = &mut group.rules_mut()[0].rule {
            rule.restore_alert(RuleAlert {
                labels: Labels::from_pairs([("alertname", "A"), ("job", "x")]),
                annotations: BTreeMap::new(),
                state: AlertState::Pending,
                value: f64::NAN,
                active_at: 1_000,
                fired_at: None,
                resolved_at: None,
                keep_firing_since: None,
            });
        }
        let saved = save_state(&group);
        let mut fresh = Group::new(&groups[0], "f", 60_000, &Labels::empty(), "");
        restore(&mut fresh, &saved);
        assert_eq!(save_state(&fresh), saved);
        let GroupRule::Alerting(rule) = &fresh.rules()[0].rule else {
            panic!("alerting rule")
        };
        let alert = rule.alerts().next().expect("restored");
        assert_eq!(alert.active_at, 1_000);
        assert!(alert.value.is_nan());
    }
}
