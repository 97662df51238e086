//! Rule groups: rules evaluated in order at one timestamp, each rule's results written before
//! the next rule runs (so a rule can read the one before it), and staleness markers written for
//! series a rule stopped returning, as Prometheus 2.42's `Group.Eval` does.
//!
//! The group reads and writes through [`RuleStorage`]: the alert service gives it the query
//! engine over the store and the ingest path, the rule unit tests memory.

use std::collections::HashSet;

use async_trait::async_trait;
use pharos_promql::{Labels, Point, Sample, stale_nan};

use crate::alerting::AlertingRule;
use crate::file::{RuleGroup, RuleKind};
use crate::recording;

/// Where rules read their data and write their results.
#[async_trait]
pub trait RuleStorage: Send + Sync {
    /// The instant vector `expr` gives at `time` (milliseconds); a scalar is one sample without
    /// labels, anything else an error (`rule result is not a vector or scalar`).
    async fn query(&self, expr: &str, time: i64) -> Result<Vec<Sample>, String>;

    /// Writes samples; an error says which were refused (out of order, duplicate).
    async fn append(&self, samples: &[(Labels, Point)]) -> Result<(), String>;
}

/// The runnable form of one rule of a group.
#[derive(Debug, Clone)]
pub enum GroupRule {
    Alerting(AlertingRule),
    Recording(crate::file::Rule),
}

impl GroupRule {
    pub fn name(&self) -> &str {
        match self {
            GroupRule::Alerting(rule) => rule.name(),
            GroupRule::Recording(rule) => &rule.name,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            GroupRule::Alerting(rule) => &rule.rule().expr,
            GroupRule::Recording(rule) => &rule.expr,
        }
    }
}

/// A rule with what its last evaluation left.
#[derive(Debug, Clone)]
pub struct EvaluatedRule {
    pub rule: GroupRule,
    /// Why the last evaluation failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// The series the last successful evaluation wrote, to mark stale when they stop.
    series_in_previous_eval: HashSet<Labels>,
}

/// A group ready to evaluate, holding its rules' state between evaluations.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// The file the group came from (or where it is stored), to tell groups of one name apart.
    pub file: String,
    /// Milliseconds between evaluations.
    pub interval_ms: i64,
    pub limit: usize,
    rules: Vec<EvaluatedRule>,
}

impl Group {
    /// The group of `definition` from `file`, at its own interval or `default_interval_ms`.
    pub fn new(
        definition: &RuleGroup,
        file: impl Into<String>,
        default_interval_ms: i64,
        external_labels: &Labels,
        external_url: &str,
    ) -> Self {
        let rules = definition
            .rules
            .iter()
            .map(|rule| EvaluatedRule {
                rule: match rule.kind {
                    RuleKind::Alerting => GroupRule::Alerting(AlertingRule::new(
                        rule.clone(),
                        external_labels.clone(),
                        external_url.to_owned(),
                    )),
                    RuleKind::Recording => GroupRule::Recording(rule.clone()),
                },
                last_error: None,
                series_in_previous_eval: HashSet::new(),
            })
            .collect();
        Self {
            name: definition.name.clone(),
            file: file.into(),
            interval_ms: definition.interval_ms.unwrap_or(default_interval_ms),
            limit: definition.limit,
            rules,
        }
    }

    pub fn rules(&self) -> &[EvaluatedRule] {
        &self.rules
    }

    pub fn rules_mut(&mut self) -> &mut [EvaluatedRule] {
        &mut self.rules
    }

    /// Evaluates every rule at `ts`, in order. A failing rule records its error and the group
    /// goes on with the next one.
    pub async fn eval(&mut self, ts: i64, storage: &dyn RuleStorage) {
        let limit = self.limit;
        for evaluated in &mut self.rules {
            let results = match storage.query(evaluated.rule.expr(), ts).await {
                Ok(results) => results,
                Err(error) => {
                    evaluated.last_error = Some(error);
                    continue;
                }
            };
            let written = match &mut evaluated.rule {
                GroupRule::Alerting(rule) => rule.eval(&results, ts, limit),
                GroupRule::Recording(rule) => recording::record(rule, &results, ts, limit),
            };
            let samples = match written {
                Ok(samples) => samples,
                Err(error) => {
                    evaluated.last_error = Some(error);
                    continue;
                }
            };
            evaluated.last_error = storage.append(&samples).await.err();
            let returned: HashSet<Labels> = samples.into_iter().map(|(labels, _)| labels).collect();
            let stale: Vec<(Labels, Point)> = evaluated
                .series_in_previous_eval
                .iter()
                .filter(|labels| !returned.contains(*labels))
                .map(|labels| (labels.clone(), Point::new(ts, stale_nan())))
                .collect();
            if !stale.is_empty() {
                // Refused markers are expected (another rule may write the series); Prometheus
                // ignores them too.
                let _ = storage.append(&stale).await;
            }
            evaluated.series_in_previous_eval = returned;
        }
    }
}
