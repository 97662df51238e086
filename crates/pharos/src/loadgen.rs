//! `pharos loadgen`: realistic ingest load against any Pharos address, with a progress bar on
//! stderr and a final report (text, or JSON with `--json`). The work is `pharos_loadgen`'s.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use clap::Args;
use pharos_loadgen::{LoadSettings, Progress, Protocol, Signal};

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// The server (it must run the ingest target), and `--json` for the report as JSON.
    #[command(flatten)]
    pub client: crate::cli::ClientArgs,
    /// How long to send, like 30s or 2m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Items per request.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// What to send: metrics, spans, logs, security-events, or mixed (all four, request by
    /// request).
    #[arg(long, default_value = "metrics")]
    pub signal: Signal,
    /// pharos (our own API) or otlp (OpenTelemetry OTLP/gRPC; metrics, spans and logs).
    #[arg(long, default_value = "pharos")]
    pub protocol: Protocol,
    /// Distinct series to cycle through.
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let settings = LoadSettings {
        client: args.client.settings(None),
        duration: args.duration,
        connections: args.connections,
        concurrency: args.concurrency,
        batch: args.batch,
        series: args.series,
        signal: args.signal,
        protocol: args.protocol,
    };
    let progress = Arc::new(Progress::default());
    let bar = indicatif::ProgressBar::new(settings.duration.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let ticker = {
        let (bar, progress) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let elapsed = started.elapsed();
                let accepted = progress.items_accepted.load(Ordering::Relaxed);
                let rate = accepted as f64 / elapsed.as_secs_f64().max(0.001);
                let errors = progress.errors.load(Ordering::Relaxed);
                bar.set_position(elapsed.as_millis() as u64);
                bar.set_message(format!(
                    "{accepted} items, {rate:.0}/s, {errors} failed requests"
                ));
            }
        })
    };
    let report = pharos_loadgen::run(&settings, progress).await;
    ticker.abort();
    bar.finish_and_clear();
    let report = report?;
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} {} accepted in {:.1}s: {:.0}/s ({} requests, {} rejected)",
            report.items_accepted,
            report.signal.name(),
            report.elapsed_seconds,
            report.items_per_second,
            report.requests,
            report.items_rejected
        );
        if report.accepted_by_signal.len() > 1 {
            for (signal, accepted) in &report.accepted_by_signal {
                println!("  {signal}: {accepted}");
            }
        }
        println!(
            "ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            report.ack_p50_ms, report.ack_p99_ms, report.ack_max_ms
        );
        for (code, count) in &report.errors {
            println!("failed requests: {count} x {code}");
        }
    }
    Ok(())
}
