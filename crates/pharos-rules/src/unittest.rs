//! Rule unit tests in promtool's `test rules` format, run as promtool 2.42 runs them
//! (`cmd/promtool/unittest.go`), so the test files teams already keep work unchanged.
//!
//! For each test group the input series are written into memory as time passes, every rule
//! group is evaluated at each `evaluation_interval` from 0 to the last `eval_time`, the firing
//! alerts are compared after the evaluation at or just before each alert test's time, and the
//! PromQL tests are queried at the end. Failures are reported in promtool's words.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pharos_promql::{
    Abort, Engine, EngineSettings, Labels, Point, Sample, Selection, Series, SeriesSource,
    SourceError, Value, format_duration, is_stale_nan, parse_duration, select_in_memory, stale_nan,
};
use serde::Deserialize;

use crate::alerting::{ALERT_NAME, AlertState};
use crate::file::{ScalarString, load_rule_file};
use crate::group::{Group, GroupRule, RuleStorage};
use crate::notation::{self, SeriesValue};

/// What running one test file found: nothing when it passed, else each failure as promtool
/// words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFileOutcome {
    pub path: PathBuf,
    pub failures: Vec<String>,
    /// Warnings (a rule file pattern that matched nothing).
    pub warnings: Vec<String>,
}

impl TestFileOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the test file at `path`.
pub async fn run_test_file(path: &Path) -> TestFileOutcome {
    let mut outcome = TestFileOutcome {
        path: path.to_owned(),
        failures: Vec::new(),
        warnings: Vec::new(),
    };
    match run(path, &mut outcome.warnings).await {
        Ok(failures) => outcome.failures = failures,
        Err(error) => outcome.failures = vec![error],
    }
    outcome
}

async fn run(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
    let file: UnitTestFile = serde_yaml_ng::from_str(&text).map_err(|error| error.to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rule_files = resolve_rule_files(base, &file.rule_files, warnings)?;
    let evaluation_interval = match &file.evaluation_interval {
        None => 60_000,
        Some(text) => match duration(text)? {
            0 => 60_000,
            ms => ms,
        },
    };
    let mut group_order: HashMap<&str, usize> = HashMap::new();
    for (index, name) in file.group_eval_order.iter().enumerate() {
        if group_order.insert(name.as_str(), index).is_some() {
            return Err(format!("group name repeated in evaluation order: {name}"));
        }
    }
    let mut failures = Vec::new();
    for test in &file.tests {
        failures.extend(
            test.run(evaluation_interval, &group_order, &rule_files)
                .await,
        );
    }
    Ok(failures)
}

/// Rule file patterns relative to the test file's directory, expanded.
fn resolve_rule_files(
    base: &Path,
    patterns: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for pattern in patterns {
        let full = if pattern.is_empty() || Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let matches: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
            .map_err(|error| error.to_string())?
            .filter_map(Result::ok)
            .collect();
        if matches.is_empty() {
            warnings.push(format!("no file match pattern {}", full.display()));
        }
        files.extend(matches);
    }
    Ok(files)
}

fn duration(text: &ScalarString) -> Result<i64, String> {
    parse_duration(&text.0).ok_or_else(|| format!("not a valid duration string: {:?}", text.0))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<ScalarString>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<ScalarString>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default)]
    series: String,
    #[serde(default)]
    values: ScalarString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: Option<ScalarString>,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, ScalarString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    #[serde(default)]
    expr: String,
    #[serde(default)]
    eval_time: Option<ScalarString>,
    #[serde(default)]
    exp_samples: Vec<ExpectedSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
}

/// Labels and annotations of one alert, compared as promtool compares them.
type AlertView = (Vec<(String, String)>, Vec<(String, String)>);

impl TestGroup {
    async fn run(
        &self,
        evaluation_interval: i64,
        group_order: &HashMap<&str, usize>,
        rule_files: &[PathBuf],
    ) -> Vec<String> {
        match self
            .try_run(evaluation_interval, group_order, rule_files)
            .await
        {
            Ok(failures) => failures,
            Err(error) => vec![error],
        }
    }

    async fn try_run(
        &self,
        evaluation_interval: i64,
        group_order: &HashMap<&str, usize>,
        rule_files: &[PathBuf],
    ) -> Result<Vec<String>, String> {
        let interval = match &self.interval {
            None => 0,
            Some(text) => duration(text)?,
        };
        let storage = MemoryStorage::new(evaluation_interval);
        let series_text: Vec<(&str, &str)> = self
            .input_series
            .iter()
            .map(|series| (series.series.as_str(), series.values.0.as_str()))
            .collect();
        let described =
            notation::load_input_series(&series_text).map_err(|error| error.to_string())?;
        let mut inputs: Vec<(Labels, Point)> = Vec::new();
        for series in described {
            for (index, value) in series.values.into_iter().enumerate() {
                let t = index as i64 * interval;
                match value {
                    SeriesValue::Value(v) => inputs.push((series.labels.clone(), Point::new(t, v))),
                    SeriesValue::Stale => {
                        inputs.push((series.labels.clone(), Point::new(t, stale_nan())))
                    }
                    SeriesValue::Omitted => {}
                }
            }
        }
        inputs.sort_by_key(|(_, point)| point.t);

        let external_labels = Labels::from_pairs(
            self.external_labels
                .iter()
                .map(|(name, value)| (name.clone(), value.0.clone())),
        );
        let mut groups = Vec::new();
        for file in rule_files {
            let definitions = load_rule_file(file).map_err(|error| error.to_string())?;
            for definition in &definitions {
                groups.push(Group::new(
                    definition,
                    file.to_string_lossy(),
                    interval,
                    &external_labels,
                    &self.external_url,
                ));
            }
        }
        groups.sort_by_key(|group| group_order.get(group.name.as_str()).copied().unwrap_or(0));

        let mut alert_tests: BTreeMap<i64, Vec<&AlertTest>> = BTreeMap::new();
        for test in &self.alert_rule_test {
            let eval_time = optional_duration(&test.eval_time)?;
            if test.alertname.is_empty() {
                let in_group = if self.name.is_empty() {
                    String::new()
                } else {
                    format!(" (in TestGroup {})", self.name)
                };
                return Err(format!(
                    "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                    format_duration(eval_time)
                ));
            }
            alert_tests.entry(eval_time).or_default().push(test);
        }
        let mut max_eval_time = alert_tests.keys().last().copied().unwrap_or(0);
        for test in &self.promql_expr_test {
            max_eval_time = max_eval_time.max(optional_duration(&test.eval_time)?);
        }

        let mut failures = Vec::new();
        let mut pending_inputs = inputs.into_iter().peekable();
        let mut checks = alert_tests.iter().peekable();
        let mut ts = 0;
        while ts <= max_eval_time {
            let mut due = Vec::new();
            while let Some((_, point)) = pending_inputs.peek() {
                if point.t > ts {
                    break;
                }
                if let Some(input) = pending_inputs.next() {
                    due.push(input);
                }
            }
            storage.insert(due);
            let mut eval_errors = Vec::new();
            for group in &mut groups {
                group.eval(ts, &storage).await;
                for rule in group.rules() {
                    if let Some(error) = &rule.last_error {
                        eval_errors.push(format!(
                            "    rule: {}, time: {}, err: {error}",
                            rule.rule.name(),
                            go_duration(ts)
                        ));
                    }
                }
            }
            if !eval_errors.is_empty() {
                failures.extend(eval_errors);
                return Ok(failures);
            }
            while let Some((time, tests)) =
                checks.next_if(|(time, _)| ts <= **time && **time < ts + evaluation_interval)
            {
                let time = *time;
                for test in tests.iter() {
                    let mut got: Vec<AlertView> = groups
                        .iter()
                        .flat_map(|group| group.rules())
                        .filter_map(|rule| match &rule.rule {
                            GroupRule::Alerting(alerting) if alerting.name() == test.alertname => {
                                Some(alerting)
                            }
                            _ => None,
                        })
                        .flat_map(|rule| rule.active_alerts())
                        .filter(|alert| alert.state == AlertState::Firing)
                        .map(|alert| {
                            (
                                alert
                                    .labels
                                    .iter()
                                    .map(|l| (l.name.clone(), l.value.clone()))
                                    .collect(),
                                alert
                                    .annotations
                                    .iter()
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect(),
                            )
                        })
                        .collect();
                    let mut expected: Vec<AlertView> = test
                        .exp_alerts
                        .iter()
                        .map(|alert| {
                            let mut labels: BTreeMap<String, String> = alert
                                .exp_labels
                                .iter()
                                .map(|(k, v)| (k.clone(), v.0.clone()))
                                .collect();
                            labels.insert(ALERT_NAME.to_owned(), test.alertname.clone());
                            (
                                labels.into_iter().collect(),
                                alert
                                    .exp_annotations
                                    .iter()
                                    .map(|(k, v)| (k.clone(), v.0.clone()))
                                    .collect(),
                            )
                        })
                        .collect();
                    got.sort();
                    expected.sort();
                    if got != expected {
                        let name = if self.name.is_empty() {
                            String::new()
                        } else {
                            format!("    name: {},\n", self.name)
                        };
                        failures.push(format!(
                            "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                            test.alertname,
                            format_duration(time),
                            indent_lines(&alerts_string(&expected), "            "),
                            indent_lines(&alerts_string(&got), "            "),
                        ));
                    }
                }
            }
            ts += evaluation_interval;
        }

        for test in &self.promql_expr_test {
            let eval_time = optional_duration(&test.eval_time)?;
            let got = match storage.query(&test.expr, eval_time).await {
                Ok(got) => got,
                Err(error) => {
                    failures.push(format!(
                        "    expr: {:?}, time: {}, err: {error}",
                        test.expr,
                        format_duration(eval_time)
                    ));
                    continue;
                }
            };
            let mut expected = Vec::with_capacity(test.exp_samples.len());
            let mut unreadable = None;
            for sample in &test.exp_samples {
                match notation::parse_metric(&sample.labels) {
                    Ok(labels) => expected.push((pairs(&labels), sample.value)),
                    Err(error) => {
                        unreadable = Some(format!(
                            "    expr: {:?}, time: {}, err: labels {:?}: {error}",
                            test.expr,
                            format_duration(eval_time),
                            sample.labels
                        ));
                        break;
                    }
                }
            }
            if let Some(error) = unreadable {
                failures.push(error);
                continue;
            }
            let mut got: Vec<(Vec<(String, String)>, f64)> = got
                .iter()
                .map(|sample| (pairs(&sample.labels), sample.v))
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            // Compared as Go's reflect.DeepEqual compares: a NaN never equals anything.
            let equal = got.len() == expected.len()
                && got
                    .iter()
                    .zip(&expected)
                    .all(|(g, e)| g.0 == e.0 && g.1 == e.1);
            if !equal {
                failures.push(format!(
                    "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                    test.expr,
                    format_duration(eval_time),
                    samples_string(&expected),
                    samples_string(&got)
                ));
            }
        }
        Ok(failures)
    }
}

fn optional_duration(text: &Option<ScalarString>) -> Result<i64, String> {
    text.as_ref().map_or(Ok(0), duration)
}

fn pairs(labels: &Labels) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|label| (label.name.clone(), label.value.clone()))
        .collect()
}

/// Labels as Go's `labels.Labels.String` writes them: `{a="1", b="2"}`.
fn labels_string(labels: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name}={value:?}");
    }
    out.push('}');
    out
}

/// promtool's `labelsAndAnnotations.String`.
fn alerts_string(alerts: &[AlertView]) -> String {
    if alerts.is_empty() {
        return "[]".to_owned();
    }
    let mut out = String::from("[");
    for (index, (labels, annotations)) in alerts.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let entry = format!(
            "\nLabels:{}\nAnnotations:{}",
            labels_string(labels),
            labels_string(annotations)
        );
        let _ = write!(out, "\n{index}:{}", indent_lines(&entry, "  "));
    }
    out.push_str("\n]");
    out
}

/// promtool's `parsedSamplesString`: `{labels} 1.5E+00, ...`, or `nil`.
fn samples_string(samples: &[(Vec<(String, String)>, f64)]) -> String {
    if samples.is_empty() {
        return "nil".to_owned();
    }
    samples
        .iter()
        .map(|(labels, value)| format!("{} {}", labels_string(labels), go_float_e(*value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// promtool's `indentLines`: every line after the first prefixed with `indent`.
fn indent_lines(lines: &str, indent: &str) -> String {
    let mut out = String::new();
    for (index, line) in lines.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(line);
    }
    out
}

/// A float as Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1.5E+06`, `0E+00`, `NaN`, `+Inf`.
fn go_float_e(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    crate::template::go_exponent_form(value).replacen('e', "E", 1)
}

/// A duration as Go's `time.Duration.String` writes it: `0s`, `1m0s`, `1h30m0s`, `1.5s`.
fn go_duration(millis: i64) -> String {
    if millis == 0 {
        return "0s".to_owned();
    }
    let sign = if millis < 0 { "-" } else { "" };
    let millis = millis.unsigned_abs();
    if millis < 1000 {
        return format!("{sign}{millis}ms");
    }
    let hours = millis / 3_600_000;
    let minutes = millis / 60_000 % 60;
    let seconds = millis % 60_000;
    let seconds = if seconds.is_multiple_of(1000) {
        format!("{}s", seconds / 1000)
    } else {
        let text = format!("{}.{:03}", seconds / 1000, seconds % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

/// Series in memory that rules read through the engine and write into, refusing what
/// Prometheus' storage refuses (a sample older than the series' last, or a different value at
/// the same time).
struct MemoryStorage {
    engine: Engine,
    series: Mutex<BTreeMap<Labels, Vec<Point>>>,
}

impl MemoryStorage {
    fn new(evaluation_interval: i64) -> Self {
        let settings = EngineSettings {
            default_subquery_step: Duration::from_millis(evaluation_interval.unsigned_abs()),
            hourly_rollups: false,
            ..EngineSettings::default()
        };
        Self {
            engine: Engine::new(settings),
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Writes samples, refusing those out of order or duplicated with another value; returns
    /// how many were refused.
    fn insert(&self, samples: Vec<(Labels, Point)>) -> usize {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut refused = 0;
        for (labels, point) in samples {
            let points = series.entry(labels).or_default();
            match points.last() {
                Some(last) if last.t > point.t => refused += 1,
                Some(last) if last.t == point.t => {
                    let same = last.v.to_bits() == point.v.to_bits()
                        || (is_stale_nan(last.v) && is_stale_nan(point.v));
                    if !same {
                        refused += 1;
                    }
                }
                _ => points.push(point),
            }
        }
        refused
    }
}

#[async_trait]
impl SeriesSource for MemoryStorage {
    async fn select(&self, selection: &Selection) -> Result<Vec<Series>, SourceError> {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(select_in_memory(
            series
                .iter()
                .map(|(labels, points)| (labels, points.as_slice())),
            selection,
        ))
    }
}

#[async_trait]
impl RuleStorage for MemoryStorage {
    async fn query(&self, expr: &str, time: i64) -> Result<Vec<Sample>, String> {
        let prepared = self
            .engine
            .prepare_instant(expr, time)
            .map_err(|error| error.to_string())?;
        let loaded = prepared
            .load(self)
            .await
            .map_err(|error| error.to_string())?;
        let answer = loaded
            .evaluate(&Abort::new())
            .map_err(|error| error.to_string())?;
        match answer.value {
            Value::Vector(samples) => Ok(samples),
            Value::Scalar { t, v } => Ok(vec![Sample {
                labels: Labels::empty(),
                t,
                v,
            }]),
            _ => Err("rule result is not a vector or scalar".to_owned()),
        }
    }

    async fn append(&self, samples: &[(Labels, Point)]) -> Result<(), String> {
        match self.insert(samples.to_vec()) {
            0 => Ok(()),
            refused => Err(format!(
                "{refused} samples refused: out of order or duplicate sample for timestamp"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{go_duration, go_float_e};

    #[test]
    fn formats_as_go_does() {
        assert_eq!(go_float_e(1.0), "1E+00");
        assert_eq!(go_float_e(1.5e6), "1.5E+06");
        assert_eq!(go_float_e(0.00012), "1.2E-04");
        assert_eq!(go_float_e(0.0), "0E+00");
        assert_eq!(go_float_e(f64::INFINITY), "+Inf");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(5_400_000), "1h30m0s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(500), "500ms");
    }
}
