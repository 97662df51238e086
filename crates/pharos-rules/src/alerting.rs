//! Alerting rules: the state of each alert (inactive, pending, firing) moved by each evaluation
//! exactly as Prometheus 2.42 moves it (`rules/alerting.go`), with `for`, `keep_firing_for`, the
//! 15-minute retention of resolved alerts, and the `ALERTS` / `ALERTS_FOR_STATE` samples.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use pharos_promql::{Labels, METRIC_NAME, Point, Sample};

use crate::file::Rule;
use crate::template::{self, TemplateContext};

/// How long a resolved alert is kept, so it is reported as resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;
/// The label that names the alert.
pub const ALERT_NAME: &str = "alertname";
/// The label of `ALERTS` that holds the state.
pub const ALERT_STATE: &str = "alertstate";
/// The series of active alerts.
pub const ALERTS_METRIC: &str = "ALERTS";
/// The series of the times alerts became active (for restoring `for` after a restart).
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

/// The state of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    /// The name Prometheus gives the state (`alertstate` label, API).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert of a rule: one output label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    /// Expanded annotations, by name (empty values kept, as Prometheus keeps them).
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// The value of the sample that made the alert, at its last evaluation.
    pub value: f64,
    /// When the alert became pending (milliseconds).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// When the expression stopped returning the alert while `keep_firing_for` holds it.
    pub keep_firing_since: Option<i64>,
}

/// An alerting rule with its active alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    rule: Rule,
    rule_labels: Labels,
    external_labels: Labels,
    external_url: String,
    active: HashMap<Labels, Alert>,
    /// Whether `ALERTS` samples are written (Prometheus holds them back until state restored).
    restored: bool,
}

impl AlertingRule {
    pub fn new(rule: Rule, external_labels: Labels, external_url: String) -> Self {
        let rule_labels =
            Labels::from_pairs(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self {
            rule,
            rule_labels,
            external_labels,
            external_url,
            active: HashMap::new(),
            restored: true,
        }
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    pub fn name(&self) -> &str {
        &self.rule.name
    }

    /// Whether evaluations write `ALERTS` and `ALERTS_FOR_STATE` samples.
    pub fn set_restored(&mut self, restored: bool) {
        self.restored = restored;
    }

    /// Alerts not inactive, in no particular order.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active
            .values()
            .filter(|alert| alert.state != AlertState::Inactive)
    }

    /// Every alert held, resolved ones included (for restoring and for notifications).
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// Puts back an alert held before a restart.
    pub fn restore_alert(&mut self, alert: Alert) {
        self.active.insert(alert.labels.clone(), alert);
    }

    /// Moves the alerts by one evaluation at `ts` whose expression returned `results`, and returns
    /// the `ALERTS` and `ALERTS_FOR_STATE` samples to write. `limit` (0 for none) caps the alerts
    /// pending or firing; over it the rule fails and forgets its alerts, as in Prometheus.
    pub fn eval(
        &mut self,
        results: &[Sample],
        ts: i64,
        limit: usize,
    ) -> Result<Vec<(Labels, Point)>, String> {
        let mut current: HashMap<Labels, Alert> = HashMap::with_capacity(results.len());
        let template_name = format!("__alert_{}", self.rule.name);
        for sample in results {
            let context = TemplateContext {
                labels: &sample.labels,
                value: sample.v,
                external_labels: &self.external_labels,
                external_url: &self.external_url,
                time_ms: ts,
                query: None,
            };
            let expand = |text: &str| template::expand_for_alert(&template_name, text, &context);
            let mut labels = sample.labels.without_metric_name();
            for (name, text) in &self.rule.labels {
                labels = labels.with(name, &expand(text));
            }
            labels = labels.with(ALERT_NAME, &self.rule.name);
            let annotations = self
                .rule
                .annotations
                .iter()
                .map(|(name, text)| (name.clone(), expand(text)))
                .collect();
            if current.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_owned(),
                );
            }
            current.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value: sample.v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    keep_firing_since: None,
                },
            );
        }

        let returned: HashSet<Labels> = current.keys().cloned().collect();
        for (labels, alert) in current {
            match self.active.get_mut(&labels) {
                Some(held) if held.state != AlertState::Inactive => {
                    held.value = alert.value;
                    held.annotations = alert.annotations;
                }
                _ => {
                    self.active.insert(labels, alert);
                }
            }
        }

        let mut samples = Vec::new();
        let mut active_or_pending = 0usize;
        let mut forget = Vec::new();
        for (labels, alert) in self.active.iter_mut() {
            if !returned.contains(labels) {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && self.rule.keep_firing_for_ms > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.rule.keep_firing_for_ms;
                }
                if alert.state == AlertState::Pending
                    || alert
                        .resolved_at
                        .is_some_and(|resolved| ts - resolved > RESOLVED_RETENTION_MS)
                {
                    forget.push(labels.clone());
                }
                if alert.state != AlertState::Inactive && !keep_firing {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                alert.keep_firing_since = None;
            }
            active_or_pending += 1;
            if alert.state == AlertState::Pending && ts - alert.active_at >= self.rule.for_ms {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
            }
            if self.restored {
                samples.push(alerts_sample(&self.rule_labels, &self.rule.name, alert, ts));
                samples.push(for_state_sample(
                    &self.rule_labels,
                    &self.rule.name,
                    alert,
                    ts,
                ));
            }
        }
        for labels in forget {
            self.active.remove(&labels);
        }
        if limit > 0 && active_or_pending > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_or_pending} alerts"
            ));
        }
        Ok(samples)
    }
}

/// Labels of the alert's `ALERTS*` series: the rule's labels as written, overridden by the
/// alert's.
fn alert_series_labels(rule_labels: &Labels, alert: &Alert) -> Labels {
    let mut labels = rule_labels.clone();
    for label in alert.labels.iter() {
        labels = labels.with(&label.name, &label.value);
    }
    labels
}

/// `ALERTS{alertstate="pending|firing", ...} 1`.
fn alerts_sample(rule_labels: &Labels, name: &str, alert: &Alert, ts: i64) -> (Labels, Point) {
    let labels = alert_series_labels(rule_labels, alert)
        .with(METRIC_NAME, ALERTS_METRIC)
        .with(ALERT_NAME, name)
        .with(ALERT_STATE, alert.state.as_str());
    (labels, Point::new(ts, 1.0))
}

/// `ALERTS_FOR_STATE{...}` valued at the second the alert became active.
fn for_state_sample(rule_labels: &Labels, name: &str, alert: &Alert, ts: i64) -> (Labels, Point) {
    let labels = alert_series_labels(rule_labels, alert)
        .with(METRIC_NAME, ALERTS_FOR_STATE_METRIC)
        .with(ALERT_NAME, name);
    (
        labels,
        Point::new(ts, alert.active_at.div_euclid(1000) as f64),
    )
}
