//! The FAISS/hnswlib side of `pharos-bench search`: `python/search_reference.py` kept running as
//! a child process that answers one JSON request per line, so the harness can give Pharos and
//! the reference short turns one after the other instead of measuring each for minutes apart.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};

use crate::stats::Latencies;

/// The running reference process.
pub struct Reference {
    child: Child,
    requests: ChildStdin,
    replies: BufReader<ChildStdout>,
}

impl Reference {
    /// Starts the script on the data files in `dir` (it loads them before answering).
    pub fn start(python: &Path, script: &Path, dir: &Path, threads: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(python)
            .arg(script)
            .arg("--dir")
            .arg(dir)
            .arg("--threads")
            .arg(threads.to_string())
            .env("OMP_NUM_THREADS", threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run {}", python.display()))?;
        let (Some(requests), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("the reference process has no stdin/stdout pipes");
        };
        Ok(Self {
            child,
            requests,
            replies: BufReader::new(replies),
        })
    }

    fn call(&mut self, request: Json) -> anyhow::Result<Json> {
        let op = request["op"].as_str().unwrap_or("?").to_owned();
        writeln!(self.requests, "{request}")
            .and_then(|()| self.requests.flush())
            .with_context(|| format!("the reference process stopped before `{op}`"))?;
        let mut line = String::new();
        self.replies
            .read_line(&mut line)
            .with_context(|| format!("cannot read the reference's answer to `{op}`"))?;
        if line.is_empty() {
            bail!("the reference process stopped during `{op}` (see its output above)");
        }
        let mut reply: Json = serde_json::from_str(&line)
            .with_context(|| format!("the reference answered `{op}` with {line:?}"))?;
        if let Some(error) = reply.get("error").and_then(Json::as_str) {
            bail!("the reference failed `{op}`: {error}");
        }
        Ok(reply["ok"].take())
    }

    /// FAISS and hnswlib versions, as {"faiss", "hnswlib"}.
    pub fn versions(&mut self) -> anyhow::Result<Json> {
        self.call(json!({"op": "versions"}))
    }

    /// Builds `index` (doc_flat, flat, ivf, faiss_hnsw or hnswlib); the time it took.
    pub fn build(&mut self, index: &str) -> anyhow::Result<Duration> {
        let seconds = self.call(json!({"op": "build", "index": index}))?;
        Ok(Duration::from_secs_f64(number(&seconds, "build")?))
    }

    /// Records the latency of each documents' query, one call each, into `latencies`.
    pub fn latencies(&mut self, index: &str, latencies: &mut Latencies) -> anyhow::Result<()> {
        let values = self.call(json!({"op": "latencies", "index": index}))?;
        for micros in values.as_array().into_iter().flatten() {
            latencies.record(Duration::from_secs_f64(number(micros, "latencies")? / 1e6));
        }
        Ok(())
    }

    /// Recall@10 of `index` at `setting` over the big queries.
    pub fn recall(&mut self, index: &str, setting: &Json) -> anyhow::Result<f64> {
        let reply = self.call(json!({"op": "recall", "index": index, "setting": setting}))?;
        number(&reply, "recall")
    }

    /// Queries per second of `index` at `setting`, in batches of `batch`, for about `slice`.
    pub fn qps(
        &mut self,
        index: &str,
        setting: &Json,
        batch: usize,
        slice: Duration,
    ) -> anyhow::Result<f64> {
        let reply = self.call(json!({
            "op": "qps", "index": index, "setting": setting, "batch": batch,
            "seconds": slice.as_secs_f64(),
        }))?;
        number(&reply, "qps")
    }

    /// Frees `index`.
    pub fn drop_index(&mut self, index: &str) -> anyhow::Result<()> {
        self.call(json!({"op": "drop", "index": index})).map(drop)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // The script ends at the end of its input; a stuck one is stopped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn number(value: &Json, op: &str) -> anyhow::Result<f64> {
    value
        .as_f64()
        .with_context(|| format!("the reference answered `{op}` with {value} instead of a number"))
}
