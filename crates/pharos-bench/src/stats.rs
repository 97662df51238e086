//! Latency histograms (hdrhistogram, nanosecond resolution) and the result table every area
//! prints: one row per measurement, Pharos beside the reference and their ratio (and the
//! markdown printer behind it, for areas with more systems than two).

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies of one measurement.
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Latencies {
    pub fn new() -> Self {
        // 1 ns .. 120 s at 3 significant digits; creation cannot fail with these bounds.
        let histogram = Histogram::new_with_bounds(1, 120_000_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        Self { histogram }
    }

    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.histogram.saturating_record(nanos);
    }

    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_nanos(self.histogram.value_at_quantile(quantile))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

/// A measured value, kept as a number so ratios can be computed.
#[derive(Clone, Copy)]
pub enum Value {
    Time(Duration),
    Rate(f64),
    Bytes(u64),
    Percent(f64),
    Missing,
}

impl Value {
    fn number(self) -> Option<f64> {
        match self {
            Value::Time(duration) => Some(duration.as_secs_f64()),
            Value::Rate(rate) => Some(rate),
            Value::Bytes(bytes) => Some(bytes as f64),
            Value::Percent(percent) => Some(percent),
            Value::Missing => None,
        }
    }

    fn show(self) -> String {
        match self {
            Value::Time(duration) => show_duration(duration),
            Value::Rate(rate) => format!("{rate:.0}/s"),
            Value::Bytes(bytes) => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
            Value::Percent(percent) => format!("{percent:.2}%"),
            Value::Missing => "-".to_owned(),
        }
    }
}

pub fn show_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} us")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

struct Row {
    metric: String,
    pharos: Value,
    reference: Value,
    aim: String,
}

/// The printed result of an area.
pub struct Table {
    title: String,
    reference_name: String,
    rows: Vec<Row>,
}

impl Table {
    pub fn new(title: &str, reference_name: &str) -> Self {
        Self {
            title: title.to_owned(),
            reference_name: reference_name.to_owned(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, metric: &str, pharos: Value, reference: Value, aim: &str) {
        eprintln!(
            "  measured {metric}: pharos {} / {} {}",
            pharos.show(),
            self.reference_name,
            reference.show()
        );
        self.rows.push(Row {
            metric: metric.to_owned(),
            pharos,
            reference,
            aim: aim.to_owned(),
        });
    }

    /// Two rows, `<metric> p50` and `<metric> p99`, for latencies measured on both systems.
    pub fn percentiles(
        &mut self,
        metric: &str,
        pharos: &Latencies,
        reference: &Latencies,
        aims: [&str; 2],
    ) {
        self.row(
            &format!("{metric} p50"),
            Value::Time(pharos.p50()),
            Value::Time(reference.p50()),
            aims[0],
        );
        self.row(
            &format!("{metric} p99"),
            Value::Time(pharos.p99()),
            Value::Time(reference.p99()),
            aims[1],
        );
    }

    pub fn print(&self) {
        let header = [
            "measurement",
            "pharos",
            &self.reference_name,
            "pharos/ref",
            "aim",
        ];
        let mut lines: Vec<Vec<String>> =
            vec![header.iter().map(|cell| (*cell).to_owned()).collect()];
        for row in &self.rows {
            let ratio = match (row.pharos.number(), row.reference.number()) {
                (Some(pharos), Some(reference)) if reference > 0.0 => {
                    format!("{:.2}x", pharos / reference)
                }
                _ => "-".to_owned(),
            };
            lines.push(vec![
                row.metric.clone(),
                row.pharos.show(),
                row.reference.show(),
                ratio,
                row.aim.clone(),
            ]);
        }
        print_markdown(&self.title, &lines);
    }
}

/// Prints `title`, then `lines` as a markdown table whose first line is the header, each
/// column padded to its widest cell.
pub fn print_markdown(title: &str, lines: &[Vec<String>]) {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    println!("\n{title}");
    for (index, line) in lines.iter().enumerate() {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(column, width)| {
                let cell = line.get(column).map_or("", String::as_str);
                format!("{cell:<width$}")
            })
            .collect();
        println!("| {} |", cells.join(" | "));
        if index == 0 {
            let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
}
