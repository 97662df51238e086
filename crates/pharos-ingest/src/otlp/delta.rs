//! Delta temporality made cumulative. Prometheus (v2.x) refuses OTLP sums and histograms with
//! delta temporality; Pharos instead keeps, inside the ingest process, a running total per
//! series (the Prometheus name and labels the point is stored under) and stores that total, so a
//! delta stream reads back as an ordinary counter (`rate`, `increase` and `histogram_quantile`
//! work unchanged).
//!
//! - Each delta point with a time after the series' last one is added to the total. Its start
//!   time is not part of the identity: a point that starts after a gap, or anew after the
//!   sender restarted, continues the total, so the series stays monotonic instead of resetting.
//! - A point with the same start and time as the last one (an exporter retrying a request) gets
//!   the same total again instead of being counted twice; any other point not after the last one
//!   is late and dropped (counted in `partial_success`).
//! - Explicit-bucket histograms add bucket by bucket; a change of bucket bounds starts the total
//!   anew from that point (a counter reset for queries). Exponential histograms are brought to
//!   the coarser scale of the two before adding, and kept to at most [`MAX_BUCKETS`] buckets a
//!   side by halving their resolution, as SDKs do; of two zero thresholds the larger is kept.
//! - The state lives in memory in a bounded cache ([`DeltaLimits`]: about 64 MiB by default,
//!   least-recently/frequently-used series evicted first) and a series is forgotten after an hour
//!   without a point; a forgotten series starts from zero again, which queries read as a counter
//!   reset. The state is lost on restart the same way.
//! - The state is per process: with several ingest replicas, every delta series must reach the
//!   same replica (for example an OpenTelemetry Collector's load-balancing exporter keyed by
//!   resource, or one exporter per service sticking to one connection); otherwise each replica
//!   stores its own partial total under the same series.
//!
//! The state is updated when a request is converted, before it is written: a request refused as
//! a whole (overload) and retried by the exporter finds the same totals again as above.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::Op;
use pharos_proto::ingest::v1 as pb;

/// At most this many buckets on each side of an accumulated exponential histogram (twice the
/// OpenTelemetry SDKs' default of 160, so SDK histograms are never coarsened).
pub const MAX_BUCKETS: usize = 320;
/// The lowest scale an exponential histogram is coarsened to (the OTLP minimum).
const MIN_SCALE: i32 = -10;

/// How much delta state the process keeps.
#[derive(Debug, Clone, Copy)]
pub struct DeltaLimits {
    /// Estimated bytes of state (keys and totals) before the least used series are evicted.
    pub max_bytes: u64,
    /// A series without a point for this long is forgotten.
    pub idle: Duration,
}

impl Default for DeltaLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            idle: Duration::from_secs(3600),
        }
    }
}

/// What kind of total a series keeps: part of its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SeriesKind {
    Sum,
    Histogram,
    Exponential,
}

/// A series: its Prometheus name and labels (sorted, empty values dropped, as stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    kind: SeriesKind,
    name: String,
    labels: Vec<(String, String)>,
}

impl SeriesKey {
    fn new(kind: SeriesKind, name: &str, labels: &[pb::Label]) -> Self {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .filter(|label| !label.value.is_empty())
            .map(|label| (label.name.clone(), label.value.clone()))
            .collect();
        labels.sort_unstable();
        Self {
            kind,
            name: name.to_owned(),
            labels,
        }
    }

    fn weight(&self) -> usize {
        self.name.len()
            + self
                .labels
                .iter()
                .map(|(name, value)| name.len() + value.len() + 48)
                .sum::<usize>()
            + 64
    }
}

/// The running total of an explicit-bucket histogram (or one delta point of it).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HistogramTotal {
    pub bounds: Vec<f64>,
    /// Per bucket (not cumulative), one more than `bounds` when well formed.
    pub counts: Vec<u64>,
    pub sum: Option<f64>,
    pub count: u64,
}

/// The running total of an exponential histogram (or one delta point of it): bucket index to
/// count at `scale`, for positive and negative values.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct ExponentialTotal {
    pub scale: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    pub positive: BTreeMap<i64, u64>,
    pub negative: BTreeMap<i64, u64>,
    pub sum: Option<f64>,
    pub count: u64,
}

impl ExponentialTotal {
    /// The same buckets at a coarser `scale` (no change when `scale` is not lower).
    fn downscale(&mut self, scale: i32) {
        let shift = self.scale.saturating_sub(scale);
        if shift <= 0 {
            return;
        }
        let shift = shift.min(63) as u32;
        for buckets in [&mut self.positive, &mut self.negative] {
            let mut coarse = BTreeMap::new();
            for (index, count) in std::mem::take(buckets) {
                let slot: &mut u64 = coarse.entry(index >> shift).or_default();
                *slot = slot.saturating_add(count);
            }
            *buckets = coarse;
        }
        self.scale = scale;
    }

    /// Halves the resolution until each side has at most [`MAX_BUCKETS`] buckets.
    fn bound(&mut self) {
        while (self.positive.len() > MAX_BUCKETS || self.negative.len() > MAX_BUCKETS)
            && self.scale > MIN_SCALE
        {
            self.downscale(self.scale - 1);
        }
    }

    fn add(mut self, mut delta: Self) -> Self {
        let scale = self.scale.min(delta.scale);
        self.downscale(scale);
        delta.downscale(scale);
        for (mine, theirs) in [
            (&mut self.positive, delta.positive),
            (&mut self.negative, delta.negative),
        ] {
            for (index, count) in theirs {
                let slot = mine.entry(index).or_default();
                *slot = slot.saturating_add(count);
            }
        }
        self.zero_threshold = self.zero_threshold.max(delta.zero_threshold);
        self.zero_count = self.zero_count.saturating_add(delta.zero_count);
        self.sum = self.sum.zip(delta.sum).map(|(a, b)| a + b);
        self.count = self.count.saturating_add(delta.count);
        self.bound();
        self
    }
}

/// A series' running total.
#[derive(Debug, Clone, PartialEq)]
enum Total {
    Sum(f64),
    Histogram(HistogramTotal),
    Exponential(ExponentialTotal),
}

impl Total {
    /// This total with `delta` added; `delta` alone when they cannot be added.
    fn add(&self, delta: Total) -> Total {
        match (self, delta) {
            (Total::Sum(total), Total::Sum(delta)) => Total::Sum(total + delta),
            (Total::Histogram(total), Total::Histogram(delta))
                if total.bounds == delta.bounds && total.counts.len() == delta.counts.len() =>
            {
                Total::Histogram(HistogramTotal {
                    counts: total
                        .counts
                        .iter()
                        .zip(&delta.counts)
                        .map(|(a, b)| a.saturating_add(*b))
                        .collect(),
                    bounds: delta.bounds,
                    sum: total.sum.zip(delta.sum).map(|(a, b)| a + b),
                    count: total.count.saturating_add(delta.count),
                })
            }
            (Total::Exponential(total), Total::Exponential(delta)) => {
                Total::Exponential(total.clone().add(delta))
            }
            (_, delta) => delta,
        }
    }

    fn weight(&self) -> usize {
        match self {
            Total::Sum(_) => 8,
            Total::Histogram(histogram) => 48 + 16 * histogram.counts.len(),
            Total::Exponential(histogram) => {
                96 + 48 * (histogram.positive.len() + histogram.negative.len())
            }
        }
    }
}

/// A series' last accumulated point and the total up to it.
#[derive(Debug)]
struct Last {
    start: u64,
    time: u64,
    total: Arc<Total>,
}

/// The running totals of the delta series this process has seen; owned by the OTLP metrics
/// server, shared by its requests.
pub struct Deltas {
    series: moka::sync::Cache<SeriesKey, Arc<Last>>,
}

impl Default for Deltas {
    fn default() -> Self {
        Self::new(DeltaLimits::default())
    }
}

impl Deltas {
    pub fn new(limits: DeltaLimits) -> Self {
        Self {
            series: moka::sync::Cache::builder()
                .max_capacity(limits.max_bytes)
                .weigher(|key: &SeriesKey, last: &Arc<Last>| {
                    u32::try_from(key.weight() + last.total.weight()).unwrap_or(u32::MAX)
                })
                .time_to_idle(limits.idle)
                .build(),
        }
    }

    /// The total of a delta sum up to a point of value `delta` from `start` to `time`
    /// (nanoseconds); `None` for a late point.
    pub(super) fn sum(
        &self,
        name: &str,
        labels: &[pb::Label],
        start: u64,
        time: u64,
        delta: f64,
    ) -> Option<f64> {
        let key = SeriesKey::new(SeriesKind::Sum, name, labels);
        match self.add(key, start, time, Total::Sum(delta))?.as_ref() {
            Total::Sum(total) => Some(*total),
            _ => Some(delta),
        }
    }

    /// The total of a delta explicit-bucket histogram up to `delta`; `None` for a late point.
    pub(super) fn histogram(
        &self,
        name: &str,
        labels: &[pb::Label],
        start: u64,
        time: u64,
        delta: HistogramTotal,
    ) -> Option<HistogramTotal> {
        let key = SeriesKey::new(SeriesKind::Histogram, name, labels);
        match self
            .add(key, start, time, Total::Histogram(delta.clone()))?
            .as_ref()
        {
            Total::Histogram(total) => Some(total.clone()),
            _ => Some(delta),
        }
    }

    /// The total of a delta exponential histogram up to `delta`; `None` for a late point.
    pub(super) fn exponential(
        &self,
        name: &str,
        labels: &[pb::Label],
        start: u64,
        time: u64,
        mut delta: ExponentialTotal,
    ) -> Option<ExponentialTotal> {
        delta.bound();
        let key = SeriesKey::new(SeriesKind::Exponential, name, labels);
        match self
            .add(key, start, time, Total::Exponential(delta.clone()))?
            .as_ref()
        {
            Total::Exponential(total) => Some(total.clone()),
            _ => Some(delta),
        }
    }

    /// Adds `delta` to the series' total, atomically per series.
    fn add(&self, key: SeriesKey, start: u64, time: u64, delta: Total) -> Option<Arc<Total>> {
        let mut answer = None;
        self.series.entry(key).and_compute_with(|current| {
            let total = match current.map(|entry| entry.into_value()) {
                None => Arc::new(delta),
                Some(last) if time > last.time => Arc::new(last.total.add(delta)),
                Some(last) => {
                    // A retry of the last point gets its total again; anything else is late.
                    if time == last.time && start == last.start {
                        answer = Some(last.total.clone());
                    }
                    return Op::Nop;
                }
            };
            answer = Some(total.clone());
            Op::Put(Arc::new(Last { start, time, total }))
        });
        answer
    }

    /// Series with state, for tests and diagnostics (pending evictions may still count).
    pub fn series_count(&self) -> u64 {
        self.series.run_pending_tasks();
        self.series.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<pb::Label> {
        pairs
            .iter()
            .map(|(name, value)| pb::Label {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            })
            .collect()
    }

    #[test]
    fn sums_accumulate_retries_repeat_and_late_points_drop() {
        let deltas = Deltas::default();
        let series = labels(&[("job", "api"), ("route", "/")]);
        assert_eq!(deltas.sum("hits_total", &series, 0, 10, 2.0), Some(2.0));
        assert_eq!(deltas.sum("hits_total", &series, 10, 20, 3.0), Some(5.0));
        // The same point again (an exporter's retry): the same total.
        assert_eq!(deltas.sum("hits_total", &series, 10, 20, 3.0), Some(5.0));
        // Older than the last point: dropped.
        assert_eq!(deltas.sum("hits_total", &series, 5, 15, 1.0), None);
        // After a gap, or a restart of the sender with a new start: the total goes on.
        assert_eq!(deltas.sum("hits_total", &series, 100, 110, 1.0), Some(6.0));
        // Label order does not matter; other labels are another series.
        let reordered = labels(&[("route", "/"), ("job", "api")]);
        assert_eq!(
            deltas.sum("hits_total", &reordered, 110, 120, 1.0),
            Some(7.0)
        );
        let other = labels(&[("job", "api"), ("route", "/x")]);
        assert_eq!(deltas.sum("hits_total", &other, 110, 120, 4.0), Some(4.0));
        assert_eq!(deltas.series_count(), 2);
    }

    #[test]
    fn histograms_add_per_bucket_and_restart_on_new_bounds() {
        let deltas = Deltas::default();
        let point = |bounds: &[f64], counts: &[u64], sum: f64| HistogramTotal {
            bounds: bounds.to_vec(),
            counts: counts.to_vec(),
            sum: Some(sum),
            count: counts.iter().sum(),
        };
        let first = deltas.histogram("d", &[], 0, 1, point(&[1.0], &[1, 2], 5.0));
        assert_eq!(first, Some(point(&[1.0], &[1, 2], 5.0)));
        let second = deltas.histogram("d", &[], 1, 2, point(&[1.0], &[3, 0], 1.5));
        assert_eq!(second, Some(point(&[1.0], &[4, 2], 6.5)));
        let rebucketed = deltas.histogram("d", &[], 2, 3, point(&[2.0], &[1, 1], 2.0));
        assert_eq!(rebucketed, Some(point(&[2.0], &[1, 1], 2.0)));
    }

    #[test]
    fn exponential_histograms_meet_at_the_coarser_scale() {
        let deltas = Deltas::default();
        let fine = ExponentialTotal {
            scale: 1,
            positive: BTreeMap::from([(0, 1), (1, 2), (2, 4)]),
            negative: BTreeMap::from([(-1, 1)]),
            zero_count: 1,
            sum: Some(10.0),
            count: 9,
            ..Default::default()
        };
        let coarse = ExponentialTotal {
            scale: 0,
            positive: BTreeMap::from([(1, 5)]),
            zero_threshold: 0.5,
            sum: Some(1.0),
            count: 5,
            ..Default::default()
        };
        deltas.exponential("e", &[], 0, 1, fine);
        let total = deltas.exponential("e", &[], 1, 2, coarse);
        assert_eq!(
            total,
            Some(ExponentialTotal {
                scale: 0,
                positive: BTreeMap::from([(0, 3), (1, 9)]),
                negative: BTreeMap::from([(-1, 1)]),
                zero_threshold: 0.5,
                zero_count: 1,
                sum: Some(11.0),
                count: 14,
            })
        );
    }

    #[test]
    fn exponential_histograms_stay_bounded() {
        let mut wide = ExponentialTotal {
            scale: 8,
            positive: (0..1000).map(|index| (index * 7, 1)).collect(),
            count: 1000,
            ..Default::default()
        };
        wide.bound();
        assert!(
            wide.positive.len() <= MAX_BUCKETS,
            "{}",
            wide.positive.len()
        );
        assert!(wide.scale < 8);
        assert_eq!(wide.positive.values().sum::<u64>(), 1000);
    }
}
