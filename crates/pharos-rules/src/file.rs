//! Rule files: Prometheus' rule-group YAML (`groups`, `name`, `interval`, `limit`, `rules` with
//! `alert` or `record`, `expr`, `for`, `keep_firing_for`, `labels`, `annotations`), read as
//! Prometheus 2.42 reads it (unknown fields refused) and checked as `promtool check rules`
//! checks it (`model/rulefmt` `Validate`).
//!
//! Expressions are checked by planning them with the engine, so an expression Pharos cannot
//! evaluate is refused here, by name, rather than failing at every evaluation.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use pharos_promql::{Engine, is_valid_label_name, parse_duration};
use serde::Deserialize;

use crate::template;

/// A rule group: rules evaluated in order at one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// The group's own interval (milliseconds), `None` for the default.
    pub interval_ms: Option<i64>,
    /// Most alerts or series one rule may produce; 0 for no limit.
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// Whether a rule alerts or records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Alerting,
    Recording,
}

/// One rule as written in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    /// The alert name or the recorded metric name.
    pub name: String,
    pub expr: String,
    /// How long an alert stays pending before it fires (milliseconds).
    pub for_ms: i64,
    /// How long a firing alert keeps firing after its expression stopped returning it.
    pub keep_firing_for_ms: i64,
    /// Labels added to each result (templates in alerting rules).
    pub labels: BTreeMap<String, String>,
    /// Annotations of each alert (templates); empty for recording rules.
    pub annotations: BTreeMap<String, String>,
}

/// One thing wrong with a rule file, in promtool's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError(pub String);

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule file that could not be read or is not valid, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{}", .errors.iter().map(|e| format!("{}: {e}", .path.display())).collect::<Vec<_>>().join("\n"))]
pub struct InvalidRuleFile {
    pub path: PathBuf,
    pub errors: Vec<RuleFileError>,
}

/// Reads and checks the rule file at `path`.
pub fn load_rule_file(path: &Path) -> Result<Vec<RuleGroup>, InvalidRuleFile> {
    let text = std::fs::read_to_string(path).map_err(|error| InvalidRuleFile {
        path: path.to_owned(),
        errors: vec![RuleFileError(error.to_string())],
    })?;
    parse_rule_groups(&text).map_err(|errors| InvalidRuleFile {
        path: path.to_owned(),
        errors,
    })
}

/// Parses and checks rule groups from YAML text. Every problem is reported, not only the first.
pub fn parse_rule_groups(text: &str) -> Result<Vec<RuleGroup>, Vec<RuleFileError>> {
    // An empty document holds no groups, as in Prometheus.
    if text.trim().is_empty() || only_comments(text) {
        return Ok(Vec::new());
    }
    let file: RuleFileYaml =
        serde_yaml_ng::from_str(text).map_err(|error| vec![RuleFileError(yaml_error(&error))])?;
    let engine = Engine::default();
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    let mut groups = Vec::with_capacity(file.groups.len());
    for group in file.groups {
        if group.name.is_empty() {
            errors.push(RuleFileError("Groupname must not be empty".to_owned()));
        }
        if !names.insert(group.name.clone()) {
            errors.push(RuleFileError(format!(
                "groupname: \"{}\" is repeated in the same file",
                group.name
            )));
        }
        let interval_ms = match &group.interval {
            None => None,
            Some(text) => match parse_duration(&text.0) {
                Some(ms) if ms > 0 => Some(ms),
                Some(_) => None,
                None => {
                    errors.push(RuleFileError(format!(
                        "group {:?}: not a valid duration string: {:?}",
                        group.name, text.0
                    )));
                    None
                }
            },
        };
        let mut rules = Vec::with_capacity(group.rules.len());
        for (index, rule) in group.rules.into_iter().enumerate() {
            let rule_name = if rule.alert.as_ref().is_some_and(|a| !a.0.is_empty()) {
                rule.alert.as_ref().map(|a| a.0.clone()).unwrap_or_default()
            } else {
                rule.record
                    .as_ref()
                    .map(|r| r.0.clone())
                    .unwrap_or_default()
            };
            let mut report = |message: String| {
                errors.push(RuleFileError(format!(
                    "group {:?}, rule {}, {:?}: {message}",
                    group.name,
                    index + 1,
                    rule_name
                )));
            };
            match check_rule(rule, &engine, &mut report) {
                Some(rule) => rules.push(rule),
                None => continue,
            }
        }
        groups.push(RuleGroup {
            name: group.name,
            interval_ms,
            limit: group.limit.unwrap_or(0),
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Checks one rule as `rulefmt.Rule.Validate` does, reporting each problem; the rule when it
/// has none.
fn check_rule(rule: RuleYaml, engine: &Engine, report: &mut dyn FnMut(String)) -> Option<Rule> {
    let mut failed = false;
    let mut fail = |message: String| {
        failed = true;
        report(message);
    };
    let record = rule.record.map(|r| r.0).unwrap_or_default();
    let alert = rule.alert.map(|a| a.0).unwrap_or_default();
    let expr = rule.expr.map(|e| e.0).unwrap_or_default();
    if !record.is_empty() && !alert.is_empty() {
        fail("only one of 'record' and 'alert' must be set".to_owned());
    }
    if record.is_empty() && alert.is_empty() {
        fail("one of 'record' or 'alert' must be set".to_owned());
    }
    if expr.is_empty() {
        fail("field 'expr' must be set in rule".to_owned());
    } else if let Err(error) = engine.prepare_instant(&expr, 0) {
        fail(format!("could not parse expression: {error}"));
    }
    let duration =
        |field: &str, value: &Option<ScalarString>, fail: &mut dyn FnMut(String)| match value {
            None => 0,
            Some(text) => parse_duration(&text.0).unwrap_or_else(|| {
                fail(format!(
                    "{field}: not a valid duration string: {:?}",
                    text.0
                ));
                0
            }),
        };
    let for_ms = duration("for", &rule.for_, &mut fail);
    let keep_firing_for_ms = duration("keep_firing_for", &rule.keep_firing_for, &mut fail);
    let labels: BTreeMap<String, String> = rule
        .labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let annotations: BTreeMap<String, String> = rule
        .annotations
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    if !record.is_empty() {
        if !annotations.is_empty() {
            fail("invalid field 'annotations' in recording rule".to_owned());
        }
        if for_ms != 0 {
            fail("invalid field 'for' in recording rule".to_owned());
        }
        if keep_firing_for_ms != 0 {
            fail("invalid field 'keep_firing_for' in recording rule".to_owned());
        }
        if !is_valid_metric_name(&record) {
            fail(format!("invalid recording rule name: {record}"));
        }
    }
    for name in labels.keys() {
        if !is_valid_label_name(name) || name == pharos_promql::METRIC_NAME {
            fail(format!("invalid label name: {name}"));
        }
    }
    for name in annotations.keys() {
        if !is_valid_label_name(name) {
            fail(format!("invalid annotation name: {name}"));
        }
    }
    if !alert.is_empty() {
        let template_name = format!("__alert_{alert}");
        for (name, text) in &labels {
            if let Err(error) = template::check(&template_name, text) {
                fail(format!("label {name:?}: {error}"));
            }
        }
        for (name, text) in &annotations {
            if let Err(error) = template::check(&template_name, text) {
                fail(format!("annotation {name:?}: {error}"));
            }
        }
    }
    if failed {
        return None;
    }
    let (kind, name) = if alert.is_empty() {
        (RuleKind::Recording, record)
    } else {
        (RuleKind::Alerting, alert)
    };
    Some(Rule {
        kind,
        name,
        expr,
        for_ms,
        keep_firing_for_ms,
        labels,
        annotations,
    })
}

/// Prometheus' (pre-UTF-8) metric name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether the text holds only comments and blank lines (an empty YAML document).
fn only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    })
}

/// A YAML error in the words users know from Prometheus: line and column first.
fn yaml_error(error: &serde_yaml_ng::Error) -> String {
    let message = error.to_string();
    match error.location() {
        Some(location) => {
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            format!("{}:{}: {message}", location.line(), location.column())
        }
        None => message,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileYaml {
    #[serde(default)]
    groups: Vec<RuleGroupYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroupYaml {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<ScalarString>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    rules: Vec<RuleYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleYaml {
    #[serde(default)]
    record: Option<ScalarString>,
    #[serde(default)]
    alert: Option<ScalarString>,
    #[serde(default)]
    expr: Option<ScalarString>,
    #[serde(default, rename = "for")]
    for_: Option<ScalarString>,
    #[serde(default)]
    keep_firing_for: Option<ScalarString>,
    #[serde(default)]
    labels: Option<BTreeMap<String, ScalarString>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, ScalarString>>,
}

/// A YAML scalar read as a string, as Go's YAML decoder reads `1`, `true` or `0.5` into a string
/// field; `null` reads as the empty string.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ScalarString, E> {
                Ok(ScalarString(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ScalarString, E> {
                Ok(ScalarString::default())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<ScalarString, E> {
                Ok(ScalarString::default())
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::{RuleKind, parse_rule_groups};

    #[test]
    fn reads_alerting_and_recording_rules() {
        let groups = parse_rule_groups(
            r#"
groups:
  - name: api
    interval: 30s
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - alert: HighErrorRate
        expr: job:http_requests:rate5m > 1
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
          tier: 1
        annotations:
          summary: "{{ $labels.job }} at {{ $value }}"
"#,
        )
        .expect("valid");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].interval_ms, Some(30_000));
        let rules = &groups[0].rules;
        assert_eq!(rules[0].kind, RuleKind::Recording);
        assert_eq!(rules[1].kind, RuleKind::Alerting);
        assert_eq!(
            (rules[1].for_ms, rules[1].keep_firing_for_ms),
            (300_000, 60_000)
        );
        assert_eq!(rules[1].labels["tier"], "1");
    }

    #[test]
    fn reports_every_problem_as_promtool_words_it() {
        let errors = parse_rule_groups(
            r#"
groups:
  - name: a
    rules:
      - record: "bad name"
        expr: up
        for: 1m
      - alert: X
        record: y
        expr: "sum("
        labels:
          __name__: x
  - name: a
    rules: []
"#,
        )
        .expect_err("invalid");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(
                &"group \"a\", rule 1, \"bad name\": invalid field 'for' in recording rule"
                    .to_owned()
            ),
            "{text:?}"
        );
        assert!(text.contains(
            &"group \"a\", rule 1, \"bad name\": invalid recording rule name: bad name".to_owned()
        ));
        assert!(text.contains(
            &"group \"a\", rule 2, \"X\": only one of 'record' and 'alert' must be set".to_owned()
        ));
        assert!(
            text.iter()
                .any(|e| e.starts_with("group \"a\", rule 2, \"X\": could not parse expression"))
        );
        assert!(
            text.contains(&"group \"a\", rule 2, \"X\": invalid label name: __name__".to_owned())
        );
        assert!(text.contains(&"groupname: \"a\" is repeated in the same file".to_owned()));
    }

    #[test]
    fn refuses_unknown_fields_and_reads_empty_files() {
        let errors =
            parse_rule_groups("groups:\n  - name: a\n    rulez: []\n").expect_err("unknown");
        assert!(errors[0].0.contains("unknown field `rulez`"), "{errors:?}");
        assert_eq!(parse_rule_groups("# nothing\n").expect("empty"), []);
    }
}
