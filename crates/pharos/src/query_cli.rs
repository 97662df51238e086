//! `pharos query 'EXPR'`: PromQL against a running server over gRPC. An instant query by
//! default (`--time`, default now), a range query with `--start` (and `--end`, `--step`). Prints
//! a table, JSON lines with `--json` (the Prometheus API's shapes, one result per line), or a
//! line chart drawn in the terminal with `--plot`.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use clap::Args;
use pharos_proto::query::v1 as pb;
use pharos_proto::query::v1::query_service_client::QueryServiceClient;

use crate::cli::status_error;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: crate::cli::ClientArgs,
    /// The PromQL expression.
    pub query: String,
    /// Evaluation time of an instant query: Unix seconds, RFC 3339, `now` or `-1h` (ago).
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["start", "end", "step"])]
    pub time: Option<String>,
    /// Start of a range query (same forms as --time).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End of a range query [default: now].
    #[arg(long, allow_hyphen_values = true, requires = "start")]
    pub end: Option<String>,
    /// Step of a range query: seconds or a duration like `1m` [default: about 250 points].
    #[arg(long, requires = "start")]
    pub step: Option<String>,
    /// Draw the result as a line chart in the terminal.
    #[arg(long)]
    pub plot: bool,
}

pub async fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    let settings = args.client.settings(None);
    let channel = settings.connect().await?;
    let mut client = QueryServiceClient::with_interceptor(channel, settings.interceptor()?);
    let now = pharos_clock::Clock::system().now_micros().div_euclid(1000);
    let json = args.client.json;
    match &args.start {
        None => {
            let time = args
                .time
                .as_deref()
                .map(|text| parse_cli_time(text, now))
                .transpose()?;
            let response = client
                .query_instant(pb::QueryInstantRequest {
                    query: args.query.clone(),
                    time_ms: time,
                    timeout_ms: 0,
                    fresh_series: false,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print_warnings(&response.warnings);
            match response.result {
                Some(pb::query_instant_response::Result::Scalar(scalar)) => {
                    print_scalar(scalar.time_ms, scalar.value, json);
                }
                Some(pb::query_instant_response::Result::String(string)) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!([seconds(string.time_ms), string.value])
                        );
                    } else {
                        println!("{}", string.value);
                    }
                }
                Some(pb::query_instant_response::Result::Vector(vector)) => {
                    print_vector(&vector, json, args.plot);
                }
                Some(pb::query_instant_response::Result::Matrix(matrix)) => {
                    print_matrix(&matrix, json, args.plot);
                }
                None => bail!("the server answered without a result"),
            }
        }
        Some(start) => {
            let start = parse_cli_time(start, now)?;
            let end = match &args.end {
                Some(end) => parse_cli_time(end, now)?,
                None => now,
            };
            let step = match &args.step {
                Some(step) => pharos_query::parse_duration("step", step)
                    .map_err(|error| anyhow::anyhow!("{error}"))?,
                None => ((end - start) / 250).max(1000) / 1000 * 1000,
            };
            let response = client
                .query_range(pb::QueryRangeRequest {
                    query: args.query.clone(),
                    start_ms: start,
                    end_ms: end,
                    step_ms: step,
                    timeout_ms: 0,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print_warnings(&response.warnings);
            print_matrix(&response.matrix.unwrap_or_default(), json, args.plot);
        }
    }
    Ok(())
}

/// A time on the command line: `now`, `-1h` (that long ago), Unix seconds or RFC 3339.
fn parse_cli_time(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = text.strip_prefix('-')
        && let Ok(ago) = pharos_query::parse_duration("time", ago)
    {
        return Ok(now_ms - ago);
    }
    pharos_query::parse_time("time", text)
        .map_err(|error| anyhow::anyhow!("{error}; use Unix seconds, RFC 3339, now or -1h"))
        .context("reading a time")
}

fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// `{a="1", b="2"}` with the metric name in front, as Prometheus prints series.
fn series_name(labels: &HashMap<String, String>) -> String {
    let mut names: Vec<&String> = labels.keys().filter(|name| *name != "__name__").collect();
    names.sort();
    let inner: Vec<String> = names
        .iter()
        .map(|name| format!("{name}={:?}", labels[*name]))
        .collect();
    format!(
        "{}{{{}}}",
        labels.get("__name__").map_or("", String::as_str),
        inner.join(", ")
    )
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn print_scalar(time_ms: i64, value: f64, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!([seconds(time_ms), pharos_promql::format_float(value)])
        );
    } else {
        println!("{}", pharos_promql::format_float(value));
    }
}

fn print_vector(vector: &pb::Vector, json: bool, plot: bool) {
    if json {
        for sample in &vector.samples {
            println!(
                "{}",
                serde_json::json!({
                    "metric": sample.labels,
                    "value": [seconds(sample.time_ms), pharos_promql::format_float(sample.value)],
                })
            );
        }
        return;
    }
    if plot {
        eprintln!("an instant vector has one value per series: nothing to plot over time");
    }
    let rows: Vec<(String, String)> = vector
        .samples
        .iter()
        .map(|sample| {
            (
                series_name(&sample.labels),
                pharos_promql::format_float(sample.value),
            )
        })
        .collect();
    let width = rows
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!("{:<width$}  VALUE", "SERIES");
    for (name, value) in rows {
        println!("{name:<width$}  {value}");
    }
    if vector.samples.is_empty() {
        println!("(no series)");
    }
}

fn print_matrix(matrix: &pb::Matrix, json: bool, plot: bool) {
    if json {
        for series in &matrix.series {
            let values: Vec<serde_json::Value> = series
                .samples
                .iter()
                .map(|s| {
                    serde_json::json!([seconds(s.time_ms), pharos_promql::format_float(s.value)])
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({ "metric": series.labels, "values": values })
            );
        }
        return;
    }
    if matrix.series.is_empty() {
        println!("(no series)");
        return;
    }
    if plot {
        plot_matrix(matrix);
        return;
    }
    for series in &matrix.series {
        println!("{}", series_name(&series.labels));
        for sample in &series.samples {
            println!(
                "  {}  {}",
                rfc3339(sample.time_ms),
                pharos_promql::format_float(sample.value)
            );
        }
    }
}

/// A line chart of every series (up to eight, each in its own colour), time in seconds from
/// the first point.
fn plot_matrix(matrix: &pb::Matrix) {
    use textplots::{Chart, ColorPlot as _, Shape};
    const COLOURS: [rgb::RGB8; 8] = [
        rgb::RGB8::new(86, 180, 233),
        rgb::RGB8::new(230, 159, 0),
        rgb::RGB8::new(0, 158, 115),
        rgb::RGB8::new(240, 228, 66),
        rgb::RGB8::new(213, 94, 0),
        rgb::RGB8::new(204, 121, 167),
        rgb::RGB8::new(0, 114, 178),
        rgb::RGB8::new(255, 255, 255),
    ];
    let first = matrix
        .series
        .iter()
        .filter_map(|s| s.samples.first().map(|p| p.time_ms))
        .min()
        .unwrap_or(0);
    let last = matrix
        .series
        .iter()
        .filter_map(|s| s.samples.last().map(|p| p.time_ms))
        .max()
        .unwrap_or(first);
    let lines: Vec<Vec<(f32, f32)>> = matrix
        .series
        .iter()
        .take(COLOURS.len())
        .map(|series| {
            series
                .samples
                .iter()
                .filter(|s| s.value.is_finite())
                .map(|s| (((s.time_ms - first) as f64 / 1000.0) as f32, s.value as f32))
                .collect()
        })
        .collect();
    let shapes: Vec<Shape> = lines.iter().map(|points| Shape::Lines(points)).collect();
    let x_max = (((last - first) as f64) / 1000.0).max(1.0) as f32;
    let mut chart = Chart::new(160, 60, 0.0, x_max);
    let mut drawing = &mut chart;
    for (shape, colour) in shapes.iter().zip(COLOURS) {
        drawing = drawing.linecolorplot(shape, colour);
    }
    drawing.display();
    println!("x: seconds after {}", rfc3339(first));
    for (series, colour) in matrix.series.iter().zip(COLOURS) {
        println!(
            "\x1b[38;2;{};{};{}m━━\x1b[0m {}",
            colour.r,
            colour.g,
            colour.b,
            series_name(&series.labels)
        );
    }
    if matrix.series.len() > COLOURS.len() {
        println!(
            "({} more series not drawn)",
            matrix.series.len() - COLOURS.len()
        );
    }
}

/// Milliseconds as `2023-11-14T22:13:20.000Z`.
fn rfc3339(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc_3339() {
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(951_782_400_500), "2000-02-29T00:00:00.500Z");
    }

    #[test]
    fn command_line_times_accept_now_ago_seconds_and_rfc_3339() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_cli_time("now", now).ok(), Some(now));
        assert_eq!(parse_cli_time("-1h", now).ok(), Some(now - 3_600_000));
        assert_eq!(parse_cli_time("1700000000", now).ok(), Some(now));
        assert_eq!(parse_cli_time("2023-11-14T22:13:20Z", now).ok(), Some(now));
        assert!(parse_cli_time("yesterday", now).is_err());
    }
}
