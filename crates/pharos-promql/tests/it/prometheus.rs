//! [`ReferencePrometheus`]: a real Prometheus (Debian's 2.42 package) started on a loopback port
//! over a TSDB that `promtool` builds from OpenMetrics text, all in a temporary directory, and
//! asked through its HTTP API. Answers come back in the engine's own [`Value`] shape, so that
//! the suite compares both sides with one function.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pharos_promql::{Labels, Point, Sample, Series, Value};
use serde_json::Value as Json;

/// How long Prometheus gets to load the TSDB and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a query returned: a value, or Prometheus' `errorType` and message.
pub type Outcome = Result<Value, QueryError>;

/// An error answer, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The Prometheus API's `errorType`: `bad_data`, `execution`, ...
    pub class: String,
    pub message: String,
}

/// A running Prometheus, killed on drop with its temporary directory removed.
pub struct ReferencePrometheus {
    child: Child,
    api: PrometheusApi,
    // Dropped after the process is killed (fields drop in order, after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl ReferencePrometheus {
    /// Starts Prometheus over the samples of `openmetrics`. `None` (with the reason printed)
    /// when `prometheus` or `promtool` is not installed, except under `CI=true`, where that is a
    /// failure: `cargo xtask ci` installs them.
    pub async fn start(openmetrics: &str) -> Option<Self> {
        let (prometheus, promtool) = match (find_tool("prometheus"), find_tool("promtool")) {
            (Some(prometheus), Some(promtool)) => (prometheus, promtool),
            (prometheus, _) => {
                let missing = if prometheus.is_none() {
                    "prometheus"
                } else {
                    "promtool"
                };
                let reason = format!(
                    "`{missing}` is not installed (neither on PATH nor in /usr/bin); `cargo xtask ci` installs it with Debian's `prometheus` package (apt-get install prometheus)"
                );
                if std::env::var("CI").is_ok_and(|value| value == "true") {
                    panic!("the PromQL conformance suite cannot run under CI=true: {reason}");
                }
                eprintln!("skipping the PromQL conformance suite: {reason}");
                return None;
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("pharos-promql-reference-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let input = dir.path().join("data.om.txt");
        let tsdb = dir.path().join("tsdb");
        let config = dir.path().join("prometheus.yml");
        let log_path = dir.path().join("prometheus.log");
        std::fs::write(&input, openmetrics).expect("cannot write the OpenMetrics file");
        std::fs::create_dir_all(&tsdb).expect("cannot create the TSDB directory");
        // Subqueries without a step use the global evaluation interval: 1m, the engine's
        // default. No scrape jobs: the TSDB holds only the data set.
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n",
        )
        .expect("cannot write the Prometheus configuration");

        let created = Command::new(&promtool)
            .current_dir(dir.path())
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&tsdb)
            .output()
            .expect("cannot run promtool");
        assert!(
            created.status.success(),
            "promtool tsdb create-blocks-from openmetrics failed ({}):\n{}{}",
            created.status,
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr),
        );

        let port = free_port();
        let log = std::fs::File::create(&log_path).expect("cannot create the Prometheus log");
        let child = Command::new(&prometheus)
            .current_dir(dir.path())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--query.lookback-delta=5m")
            .arg("--query.max-samples=50000000")
            .arg(format!(
                "--web.console.templates={}",
                dir.path().join("consoles").display()
            ))
            .arg(format!(
                "--web.console.libraries={}",
                dir.path().join("console_libraries").display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share the log file"))
            .stderr(log)
            .spawn()
            .expect("cannot start prometheus");
        let mut reference = ReferencePrometheus {
            child,
            api: PrometheusApi::new(format!("http://127.0.0.1:{port}")),
            dir,
        };
        reference.wait_ready(&log_path).await;
        Some(reference)
    }

    /// Waits for `GET /-/ready` to answer 200; panics with the server's log when it exits or
    /// stays unready for [`READY_TIMEOUT`].
    async fn wait_ready(&mut self, log_path: &Path) {
        let url = format!("{}/-/ready", self.api.base_url);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot poll prometheus") {
                panic!(
                    "prometheus exited ({status}) before it was ready; its log:\n{}",
                    read_log(log_path)
                );
            }
            let ready = self
                .api
                .client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "prometheus was not ready after {READY_TIMEOUT:?}; its log:\n{}",
                    read_log(log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("prometheus.log"))
    }

    /// `http://127.0.0.1:<port>`, where the API is (used by `pharos-query`'s tests).
    #[allow(dead_code)]
    pub fn base_url(&self) -> &str {
        &self.api.base_url
    }

    /// An instant query at `time_ms`.
    pub async fn query(&self, expr: &str, time_ms: i64) -> Outcome {
        self.api.query(expr, time_ms).await
    }

    /// A range query over `start_ms..=end_ms` every `step_ms`.
    pub async fn query_range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Outcome {
        self.api.query_range(expr, start_ms, end_ms, step_ms).await
    }
}

/// A client of any Prometheus-compatible HTTP API (Prometheus itself, or Pharos' query
/// service), answering in the engine's value types.
#[derive(Clone)]
pub struct PrometheusApi {
    base_url: String,
    client: reqwest::Client,
}

impl PrometheusApi {
    /// A client of the API under `base_url` (`http://host:port`, without `/api/v1`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("cannot build an HTTP client"),
        }
    }

    /// An instant query at `time_ms`.
    pub async fn query(&self, expr: &str, time_ms: i64) -> Outcome {
        let time = seconds(time_ms);
        self.post("query", &[("query", expr), ("time", &time)])
            .await
    }

    /// A range query over `start_ms..=end_ms` every `step_ms`.
    pub async fn query_range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Outcome {
        let (start, end, step) = (seconds(start_ms), seconds(end_ms), seconds(step_ms));
        self.post(
            "query_range",
            &[
                ("query", expr),
                ("start", &start),
                ("end", &end),
                ("step", &step),
            ],
        )
        .await
    }

    async fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Outcome {
        let url = format!("{}/api/v1/{endpoint}", self.base_url);
        let response = self
            .client
            .post(&url)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
        let status = response.status();
        let body = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("reading the answer of POST {url} failed: {error}"));
        let json: Json = serde_json::from_str(&body).unwrap_or_else(|error| {
            panic!("POST {url} answered {status} with something that is not JSON ({error}): {body}")
        });
        parse_answer(&json).unwrap_or_else(|problem| {
            panic!("unexpected answer from POST {url} ({status}): {problem}: {body}")
        })
    }
}

impl Drop for ReferencePrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on PATH, else in /usr/bin.
fn find_tool(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    on_path
        .chain(std::iter::once(Path::new("/usr/bin").join(name)))
        .find(|candidate| candidate.is_file())
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("cannot bind a port on 127.0.0.1");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}

/// Milliseconds as the API's seconds, to the millisecond.
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

/// A Prometheus API answer as an [`Outcome`]; `Err` when the JSON is not shaped as expected.
fn parse_answer(json: &Json) -> Result<Outcome, String> {
    match json["status"].as_str() {
        Some("success") => {}
        Some("error") => {
            return Ok(Err(QueryError {
                class: json["errorType"].as_str().unwrap_or("").to_owned(),
                message: json["error"].as_str().unwrap_or("").to_owned(),
            }));
        }
        _ => return Err("no status".to_owned()),
    }
    let data = &json["data"];
    let result = &data["result"];
    let value = match data["resultType"].as_str() {
        Some("scalar") => {
            let (t, v) = parse_pair(result)?;
            Value::Scalar { t, v }
        }
        Some("string") => {
            let t = parse_time(&result[0])?;
            let s = result[1]
                .as_str()
                .ok_or("a string without text")?
                .to_owned();
            Value::String { t, s }
        }
        Some("vector") => Value::Vector(
            as_array(result)?
                .iter()
                .map(|item| {
                    let (t, v) = parse_pair(&item["value"])?;
                    Ok(Sample {
                        labels: parse_labels(&item["metric"])?,
                        t,
                        v,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        Some("matrix") => Value::Matrix(
            as_array(result)?
                .iter()
                .map(|item| {
                    let points = as_array(&item["values"])?
                        .iter()
                        .map(|pair| parse_pair(pair).map(|(t, v)| Point::new(t, v)))
                        .collect::<Result<_, String>>()?;
                    Ok(Series {
                        labels: parse_labels(&item["metric"])?,
                        points,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unknown resultType {other:?}")),
    };
    Ok(Ok(value))
}

fn as_array(json: &Json) -> Result<&Vec<Json>, String> {
    json.as_array()
        .ok_or_else(|| format!("expected an array, got {json}"))
}

fn parse_labels(json: &Json) -> Result<Labels, String> {
    let object = json
        .as_object()
        .ok_or_else(|| format!("expected a label object, got {json}"))?;
    object
        .iter()
        .map(|(name, value)| {
            value
                .as_str()
                .map(|value| (name.clone(), value.to_owned()))
                .ok_or_else(|| format!("label {name} is not a string"))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Labels::from_pairs)
}

/// `[1700000000.123, "1.5"]` as milliseconds and a float.
fn parse_pair(json: &Json) -> Result<(i64, f64), String> {
    let t = parse_time(&json[0])?;
    let text = json[1]
        .as_str()
        .ok_or_else(|| format!("expected a value string, got {json}"))?;
    Ok((t, parse_float(text)?))
}

fn parse_time(json: &Json) -> Result<i64, String> {
    json.as_f64()
        .map(|seconds| (seconds * 1000.0).round() as i64)
        .ok_or_else(|| format!("expected a time in seconds, got {json}"))
}

/// A sample value as Prometheus writes it: Go's `FormatFloat(v, 'f', -1, 64)` or NaN, +Inf, -Inf.
fn parse_float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|error| format!("bad sample value {text:?}: {error}")),
    }
}
