//! [`Head`]: the recent points of every series, in memory, as Prometheus keeps its head block.
//! It starts from one snapshot of the store ([`pharos_store::signals::metrics::RecentPoints`]:
//! the points of the last `query.head.window` and the feed position they are complete up to),
//! then applies every batch of metric points ingest's committed-data feed reports after that
//! position ([`follow`]). From then on it holds every committed point with a time at or after
//! [`Head::complete_from`], and a selection over that span is answered from memory, without
//! reading the series table or the points; a selection that begins earlier reads the store up to
//! that time and takes the rest from the head ([`Head::matching`], [`Head::with_points_of`]).
//!
//! A query still sees every point acknowledged before it began: before the head answers, the
//! query reads the feed position of the last committed batch of metric points and waits (at
//! most `query.head.catch_up`) for the head to have applied it; otherwise it reads the store.
//! Whenever the head may have missed a batch (its subscription failed or was refused, batches
//! were missed, it holds more than `query.head.max_series` series) it stops answering until it
//! has started again from a new snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pharos_api::feed::FeedApi;
use pharos_clock::Clock;
use pharos_promql::{Labels, METRIC_NAME, Point, Selection, Series};
use pharos_proto::ingest::v1 as pb;
use pharos_runtime::Shutdown;
use pharos_runtime::health::{BoxFuture, ComponentHealth, HealthCheck};
use pharos_store::Store;
use pharos_store::signals::metrics::RecentPoints;
use tokio::sync::watch;

use crate::settings::HeadSettings;
use crate::source::{engine_points, stored_labels};

/// The recent points of every series; shared by the follower that fills it and the queries.
#[derive(Debug)]
pub struct Head {
    state: RwLock<HeadState>,
    /// The feed position applied; `None` while the head does not answer.
    applied: watch::Sender<Option<i64>>,
    settings: HeadSettings,
    clock: Clock,
    /// Selections answered.
    answered: AtomicU64,
    /// Selections begun in the store and completed from the head.
    completed: AtomicU64,
}

#[derive(Debug, Default)]
struct HeadState {
    /// From this time on (milliseconds) the head holds every committed point; `None` while it
    /// does not answer.
    complete_from: Option<i64>,
    /// The feed position of the last batch applied (or of the snapshot started from).
    position: i64,
    series: HashMap<i64, HeadSeries>,
    /// Series ids by metric name.
    by_name: HashMap<String, HashSet<i64>>,
    points: usize,
}

#[derive(Debug)]
struct HeadSeries {
    labels: Labels,
    /// Oldest first.
    points: Vec<Point>,
}

impl HeadSeries {
    /// Its points in `from..=end` (milliseconds). The bounds are searched from the ends they
    /// lie near (a selection mostly begins at or before the series' first point and ends after
    /// its last): a binary search from the middle would touch a line of memory, out of the
    /// cache, at each of its steps, for each of a thousand series.
    fn points_in(&self, from: i64, end: i64) -> &[Point] {
        let first = partition_near_front(&self.points, |p| p.t < from);
        let last = partition_near_back(&self.points, |p| p.t <= end);
        &self.points[first..last.max(first)]
    }
}

/// `items.partition_point(before)`, searched by doubling steps from the front, then in halves.
fn partition_near_front<T>(items: &[T], before: impl Fn(&T) -> bool) -> usize {
    // Every item below `bound / 2` is before.
    let mut bound = 1;
    while bound <= items.len() && before(&items[bound - 1]) {
        bound *= 2;
    }
    let low = bound / 2;
    low + items[low..bound.min(items.len())].partition_point(before)
}

/// `items.partition_point(before)`, searched by doubling steps from the back, then in halves.
fn partition_near_back<T>(items: &[T], before: impl Fn(&T) -> bool) -> usize {
    // No item from `len - bound / 2` on is before.
    let len = items.len();
    let mut bound = 1;
    while bound <= len && !before(&items[len - bound]) {
        bound *= 2;
    }
    let low = len.saturating_sub(bound);
    low + items[low..len - bound / 2].partition_point(before)
}

/// What [`Head::state`] reports (for `/health` and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadFigures {
    pub complete_from: Option<i64>,
    pub position: i64,
    pub series: usize,
    pub points: usize,
    /// Selections answered since the start.
    pub answered: u64,
    /// Selections begun in the store (their range begins before the window) and completed
    /// from the head, since the start.
    pub completed: u64,
}

/// Why the head stopped answering.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("the feed of metric points cannot be followed: {0}")]
    Feed(String),
    #[error("the recent points cannot be read from the store: {0}")]
    Store(#[from] pharos_store::StoreError),
    #[error("the feed no longer holds batches {first}..={last}")]
    Missed { first: u64, last: u64 },
    #[error(
        "more than query.head.max_series ({0}) series have recent points; raise it or shorten query.head.window"
    )]
    TooManySeries(usize),
}

impl Head {
    pub fn new(settings: HeadSettings, clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(HeadState::default()),
            applied: watch::channel(None).0,
            settings,
            clock,
            answered: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        })
    }

    /// How much the head holds.
    pub fn figures(&self) -> HeadFigures {
        let state = self.read();
        HeadFigures {
            complete_from: state.complete_from,
            position: state.position,
            series: state.series.len(),
            points: state.points,
            answered: self.answered.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
        }
    }

    /// From when (milliseconds) the head holds every committed point; `None` while it does not
    /// answer.
    pub fn complete_from(&self) -> Option<i64> {
        self.read().complete_from
    }

    /// The series the head holds that match every matcher of `selection` and are not among
    /// `known` (their ids and labels), whatever the times of their points; `None` when the head
    /// no longer holds every point from `from` (milliseconds) on. A selection whose range
    /// begins before the head's window reads these from the store too, so that a series too
    /// new for the series cache is not missed. Counted as a selection the head completes
    /// (`completed`).
    pub fn matching(
        &self,
        selection: &Selection,
        from: i64,
        known: &HashSet<i64>,
    ) -> Option<Vec<(i64, Labels)>> {
        let state = self.read();
        if !state.holds_from(from) {
            return None;
        }
        self.completed.fetch_add(1, Ordering::Relaxed);
        Some(
            state
                .candidates(selection)
                .filter(|(id, series)| !known.contains(id) && selection.matches(&series.labels))
                .map(|(id, series)| (id, series.labels.clone()))
                .collect(),
        )
    }

    /// Calls `take` with the points in `from..=end` (milliseconds) of each series of `ids`, in
    /// their order (none for a series the head does not hold), under the head's read lock:
    /// `take` copies them. Whether the head still holds every point from `from` on; `take` is
    /// not called when it does not.
    pub fn with_points_of(
        &self,
        ids: &[i64],
        from: i64,
        end: i64,
        mut take: impl FnMut(&[Point]),
    ) -> bool {
        let state = self.read();
        if !state.holds_from(from) {
            return false;
        }
        for id in ids {
            match state.series.get(id) {
                Some(series) => take(series.points_in(from, end)),
                None => take(&[]),
            }
        }
        true
    }

    /// Waits, at most `query.head.catch_up`, until the head has applied feed position
    /// `position`; whether it has.
    pub async fn caught_up(&self, position: i64) -> bool {
        let mut applied = self.applied.subscribe();
        let reached = applied.wait_for(|applied| applied.is_some_and(|at| at >= position));
        matches!(
            tokio::time::timeout(self.settings.catch_up, reached).await,
            Ok(Ok(_))
        )
    }

    /// The series matching `selection` with their points in its range, sorted by labels;
    /// `None` when the head does not hold every point of the range.
    pub fn select(&self, selection: &Selection) -> Option<Vec<Series>> {
        let state = self.read();
        if !state.holds_from(selection.start) {
            return None;
        }
        let mut selected = pharos_promql::select_in_memory(
            state
                .candidates(selection)
                .map(|(_, series)| (&series.labels, series.points.as_slice())),
            selection,
        );
        drop(state);
        selected.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.answered.fetch_add(1, Ordering::Relaxed);
        Some(selected)
    }

    /// Stops answering until the next [`Head::start_from`].
    fn stop_answering(&self) {
        let mut state = self.write();
        *state = HeadState::default();
        self.applied.send_replace(None);
    }

    /// Starts over from `recent`, the store's points since `from` (milliseconds).
    pub(crate) fn start_from(&self, recent: RecentPoints, from: i64) -> Result<(), HeadError> {
        if recent.series.len() > self.settings.max_series {
            return Err(HeadError::TooManySeries(self.settings.max_series));
        }
        let mut state = HeadState {
            complete_from: Some(from),
            position: recent.position,
            ..HeadState::default()
        };
        let labels: HashMap<i64, Labels> = recent
            .series
            .iter()
            .filter_map(|(id, name, json)| Some((*id, stored_labels(name, json)?)))
            .collect();
        for (id, points) in recent.points {
            let Some(labels) = labels.get(&id) else {
                continue;
            };
            state.insert_series(id, labels.clone(), engine_points(points));
        }
        let position = state.position;
        *self.write() = state;
        self.applied.send_replace(Some(position));
        Ok(())
    }

    /// The ids of the series `batch` has points of that the head does not know and the batch
    /// does not describe.
    fn unknown_series(&self, metrics: &pb::CommittedMetrics) -> Vec<i64> {
        let state = self.read();
        let described: HashSet<i64> = metrics.series.iter().map(|s| s.id).collect();
        let unknown: HashSet<i64> = metrics
            .points
            .iter()
            .map(|point| point.series_id)
            .filter(|id| !state.series.contains_key(id) && !described.contains(id))
            .collect();
        unknown.into_iter().collect()
    }

    /// Applies a committed batch at `position`; `looked_up` describes the series it has points
    /// of that it does not describe and the head did not know.
    fn apply(
        &self,
        position: i64,
        metrics: &pb::CommittedMetrics,
        looked_up: &HashMap<i64, Labels>,
    ) -> Result<(), HeadError> {
        let mut state = self.write();
        let Some(complete_from) = state.complete_from else {
            return Ok(());
        };
        if position <= state.position {
            return Ok(());
        }
        let described: HashMap<i64, &pb::CommittedSeries> =
            metrics.series.iter().map(|s| (s.id, s)).collect();
        for point in &metrics.points {
            let time = point.time_unix_nano.div_euclid(1_000_000);
            if time < complete_from {
                continue;
            }
            let point_at = Point::new(time, point.value);
            if let Some(series) = state.series.get_mut(&point.series_id) {
                insert_in_order(&mut series.points, point_at);
                state.points += 1;
                continue;
            }
            let labels = match described.get(&point.series_id) {
                Some(series) => Some(committed_labels(series)),
                None => looked_up.get(&point.series_id).cloned(),
            };
            let Some(labels) = labels else {
                tracing::warn!(
                    series_id = point.series_id,
                    "a committed point of an unknown series; the head skips it"
                );
                continue;
            };
            state.insert_series(point.series_id, labels, vec![point_at]);
        }
        if state.series.len() > self.settings.max_series {
            return Err(HeadError::TooManySeries(self.settings.max_series));
        }
        state.position = position;
        drop(state);
        self.applied.send_replace(Some(position));
        Ok(())
    }

    /// Drops the points older than the window, and the series left without points.
    pub(crate) fn evict(&self) {
        let cutoff = self.window_start();
        let mut state = self.write();
        let Some(complete_from) = state.complete_from else {
            return;
        };
        if cutoff <= complete_from {
            return;
        }
        state.complete_from = Some(cutoff);
        let HeadState {
            series,
            by_name,
            points,
            ..
        } = &mut *state;
        series.retain(|id, series| {
            let old = series.points.partition_point(|p| p.t < cutoff);
            series.points.drain(..old);
            *points -= old;
            let keep = !series.points.is_empty();
            if !keep
                && let Some(name) = series.labels.metric_name()
                && let Some(ids) = by_name.get_mut(name)
            {
                ids.remove(id);
                if ids.is_empty() {
                    by_name.remove(name);
                }
            }
            keep
        });
    }

    /// The start of the window, now (milliseconds).
    fn window_start(&self) -> i64 {
        let window = i64::try_from(self.settings.window.as_millis()).unwrap_or(i64::MAX);
        self.clock
            .now_micros()
            .div_euclid(1000)
            .saturating_sub(window)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HeadState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HeadState> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl HeadState {
    /// Whether it holds every committed point from `from` (milliseconds) on.
    fn holds_from(&self, from: i64) -> bool {
        self.complete_from
            .is_some_and(|complete_from| from >= complete_from)
    }

    /// The series that may match `selection`: those of its metric name when it names one.
    fn candidates<'a>(
        &'a self,
        selection: &Selection,
    ) -> Box<dyn Iterator<Item = (i64, &'a HeadSeries)> + 'a> {
        match selection.metric_name() {
            Some(name) => Box::new(
                self.by_name
                    .get(name)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| Some((*id, self.series.get(id)?))),
            ),
            None => Box::new(self.series.iter().map(|(id, series)| (*id, series))),
        }
    }

    fn insert_series(&mut self, id: i64, labels: Labels, points: Vec<Point>) {
        if let Some(name) = labels.metric_name() {
            self.by_name.entry(name.to_owned()).or_default().insert(id);
        }
        self.points += points.len();
        self.series.insert(id, HeadSeries { labels, points });
    }
}

/// The head in `/health` (`query_head`): whether it answers, from when, how much it holds and
/// how many selections it answered. A head that does not answer is no fault: queries read
/// the store.
pub struct HeadHealth(pub Arc<Head>);

impl HealthCheck for HeadHealth {
    fn name(&self) -> &str {
        "query_head"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let figures = self.0.figures();
            ComponentHealth::ok(serde_json::json!({
                "answering": figures.complete_from.is_some(),
                "complete_from_ms": figures.complete_from,
                "position": figures.position,
                "series": figures.series,
                "points": figures.points,
                "answered": figures.answered,
                "completed": figures.completed,
                "window_s": self.0.settings.window.as_secs(),
            }))
        })
    }
}

/// Inserts `point` after every point at or before its time (points mostly arrive in order).
fn insert_in_order(points: &mut Vec<Point>, point: Point) {
    if points.last().is_none_or(|last| last.t <= point.t) {
        points.push(point);
    } else {
        let at = points.partition_point(|p| p.t <= point.t);
        points.insert(at, point);
    }
}

/// The labels of a series as the feed describes it, name included.
fn committed_labels(series: &pb::CommittedSeries) -> Labels {
    Labels::from_pairs(
        series
            .labels
            .iter()
            .map(|label| (label.name.clone(), label.value.clone()))
            .chain(std::iter::once((
                METRIC_NAME.to_owned(),
                series.name.clone(),
            ))),
    )
}

/// Fills `head` and keeps it current until `shutdown`: a snapshot of the store, then every
/// batch of metric points the feed reports. When the feed fails, is refused or misses batches,
/// the head stops answering and starts over (waits of 100 ms doubling to 10 s between failed
/// attempts).
pub async fn follow(head: Arc<Head>, feed: Arc<dyn FeedApi>, store: Store, shutdown: Shutdown) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = tokio::select! {
            () = shutdown.wait() => return,
            outcome = fill_and_follow(&head, feed.as_ref(), &store) => outcome,
        };
        head.stop_answering();
        match outcome {
            Err(HeadError::TooManySeries(max)) => {
                tracing::error!(
                    max_series = max,
                    "{}; queries read the store only until a restart",
                    HeadError::TooManySeries(max)
                );
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "the head of recent points starts over; queries read the store meanwhile");
            }
            Ok(()) => backoff = Duration::from_millis(100),
        }
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One life of the head: subscribes (from now on), reads the snapshot, then applies batches
/// until the subscription ends (`Ok`) or fails.
async fn fill_and_follow(head: &Head, feed: &dyn FeedApi, store: &Store) -> Result<(), HeadError> {
    use futures::StreamExt as _;
    use pb::subscribe_response::Item;

    let mut items = feed
        .subscribe(pb::SubscribeRequest {
            signals: vec![pb::FeedSignal::Metrics as i32],
            after_position: None,
        })
        .await
        .map_err(|status| HeadError::Feed(status.message().to_owned()))?;
    // The first item says where the subscription starts: at or before the snapshot below.
    match items.next().await {
        Some(Ok(pb::SubscribeResponse {
            item: Some(Item::Started(_)),
        })) => {}
        Some(Err(status)) => return Err(HeadError::Feed(status.message().to_owned())),
        _ => return Err(HeadError::Feed("the subscription did not start".to_owned())),
    }
    let from = head.window_start();
    let started = tokio::time::Instant::now();
    let recent = store
        .metrics()
        .recent_points(from.saturating_mul(1000))
        .await?;
    head.start_from(recent, from)?;
    let figures = head.figures();
    tracing::info!(
        series = figures.series,
        points = figures.points,
        position = figures.position,
        took_ms = started.elapsed().as_millis() as u64,
        "the head of recent points answers queries"
    );
    let mut evictions =
        tokio::time::interval((head.settings.window / 10).max(Duration::from_secs(1)));
    evictions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let item = tokio::select! {
            _ = evictions.tick() => {
                head.evict();
                continue;
            }
            item = items.next() => item,
        };
        let response = match item {
            None => return Ok(()),
            Some(Err(status)) => return Err(HeadError::Feed(status.message().to_owned())),
            Some(Ok(response)) => response,
        };
        match response.item {
            Some(Item::Batch(batch)) => {
                let position = i64::try_from(batch.position).unwrap_or(i64::MAX);
                // The subscription asks for metric points only.
                let Some(pb::committed_batch::Items::Metrics(metrics)) = &batch.items else {
                    continue;
                };
                let unknown = head.unknown_series(metrics);
                let looked_up: HashMap<i64, Labels> = if unknown.is_empty() {
                    HashMap::new()
                } else {
                    store
                        .metrics()
                        .series_by_ids(&unknown)
                        .await?
                        .into_iter()
                        .filter_map(|(id, name, json)| Some((id, stored_labels(&name, &json)?)))
                        .collect()
                };
                head.apply(position, metrics, &looked_up)?;
            }
            Some(Item::Missed(missed)) => {
                return Err(HeadError::Missed {
                    first: missed.first_position,
                    last: missed.last_position,
                });
            }
            Some(Item::Started(_)) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_promql::{MatchOp, Matcher};

    fn settings() -> HeadSettings {
        HeadSettings {
            window: Duration::from_secs(600),
            max_series: 3,
            catch_up: Duration::from_millis(50),
        }
    }

    const NOW_MS: i64 = 1_800_000_000_000;

    fn head() -> (Arc<Head>, pharos_clock::ManualClock) {
        let (clock, hand) = Clock::manual(NOW_MS * 1000);
        let head = Head::new(settings(), clock);
        let from = head.window_start();
        let recent = RecentPoints {
            position: 7,
            series: vec![(1, "up".to_owned(), r#"{"job":"a"}"#.to_owned())],
            points: vec![(1, vec![((from + 1_000) * 1000, 1.0)])],
        };
        head.start_from(recent, from).expect("start");
        (head, hand)
    }

    #[test]
    fn bounds_searched_from_either_end_are_those_of_a_binary_search() {
        for len in 0..40_i64 {
            let times: Vec<i64> = (0..len).map(|i| i * 10).collect();
            for bound in -5..len * 10 + 5 {
                let before = |t: &i64| *t < bound;
                let expected = times.partition_point(before);
                assert_eq!(
                    partition_near_front(&times, before),
                    expected,
                    "{len} {bound}"
                );
                assert_eq!(
                    partition_near_back(&times, before),
                    expected,
                    "{len} {bound}"
                );
            }
        }
    }

    fn selection(matchers: Vec<Matcher>, start: i64, end: i64) -> Selection {
        Selection {
            matchers,
            start,
            end,
            latest_only: false,
        }
    }

    fn batch(series: Vec<pb::CommittedSeries>, points: &[(i64, i64, f64)]) -> pb::CommittedMetrics {
        pb::CommittedMetrics {
            series,
            points: points
                .iter()
                .map(|&(series_id, time_ms, value)| pb::CommittedPoint {
                    series_id,
                    time_unix_nano: time_ms * 1_000_000,
                    value,
                })
                .collect(),
        }
    }

    fn described(id: i64, name: &str, job: &str) -> pb::CommittedSeries {
        pb::CommittedSeries {
            id,
            name: name.to_owned(),
            labels: vec![pb::Label {
                name: "job".to_owned(),
                value: job.to_owned(),
            }],
        }
    }

    #[test]
    fn batches_after_the_snapshot_are_applied_in_time_order() {
        let (head, _) = head();
        let from = head.figures().complete_from.expect("answers");
        // At or before the snapshot's position: already in it.
        head.apply(
            7,
            &batch(vec![], &[(1, from + 5_000, 9.0)]),
            &HashMap::new(),
        )
        .expect("apply");
        head.apply(
            8,
            &batch(
                vec![described(2, "up", "b")],
                &[
                    (1, from + 3_000, 3.0),
                    (1, from + 2_000, 2.0),
                    (2, from + 2_000, 5.0),
                ],
            ),
            &HashMap::new(),
        )
        .expect("apply");
        let all = head
            .select(&selection(
                vec![Matcher {
                    name: METRIC_NAME.to_owned(),
                    op: MatchOp::Equal("up".to_owned()),
                }],
                from,
                NOW_MS,
            ))
            .expect("covered");
        let points: Vec<Vec<(i64, f64)>> = all
            .iter()
            .map(|s| s.points.iter().map(|p| (p.t - from, p.v)).collect())
            .collect();
        assert_eq!(
            points,
            [
                vec![(1_000, 1.0), (2_000, 2.0), (3_000, 3.0)],
                vec![(2_000, 5.0)]
            ]
        );
        assert_eq!(all[1].labels.get("job"), Some("b"));
        assert_eq!(head.figures().position, 8);
    }

    #[test]
    fn a_range_before_the_window_is_not_answered() {
        let (head, hand) = head();
        let from = head.figures().complete_from.expect("answers");
        assert!(head.select(&selection(vec![], from - 1, NOW_MS)).is_none());
        // The window moves on: old points go, and so does what the head answers for.
        hand.advance(Duration::from_secs(120));
        head.evict();
        assert_eq!(head.figures().complete_from, Some(from + 120_000));
        assert_eq!(head.figures().series, 0, "its only point was evicted");
        assert!(head.select(&selection(vec![], from, NOW_MS)).is_none());
        assert_eq!(
            head.select(&selection(vec![], from + 120_000, NOW_MS + 120_000)),
            Some(vec![])
        );
    }

    #[test]
    fn a_selection_begun_in_the_store_takes_the_rest_from_the_head() {
        let (head, hand) = head();
        let from = head.figures().complete_from.expect("answers");
        head.apply(
            8,
            &batch(
                vec![described(2, "up", "b"), described(3, "down", "b")],
                &[
                    (1, from + 2_000, 2.0),
                    (1, from + 9_000, 3.0),
                    (2, from + 5_000, 5.0),
                    (3, from + 5_000, 7.0),
                ],
            ),
            &HashMap::new(),
        )
        .expect("apply");
        let up = selection(
            vec![Matcher {
                name: METRIC_NAME.to_owned(),
                op: MatchOp::Equal("up".to_owned()),
            }],
            from - 60_000,
            from + 5_000,
        );
        let mut matching = head
            .matching(&up, from, &HashSet::new())
            .expect("holds the rest");
        matching.sort_by_key(|(id, _)| *id);
        let ids: Vec<i64> = matching.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(matching[1].1.get("job"), Some("b"));
        let unknown = head
            .matching(&up, from, &HashSet::from([1]))
            .expect("holds the rest");
        assert_eq!(unknown.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2]);
        assert_eq!(head.figures().completed, 2);
        // In the order asked, within the range's end; none for a series it does not hold.
        let times_of = |from_asked: i64| {
            let mut times: Vec<Vec<i64>> = Vec::new();
            let held = head.with_points_of(&[2, 9, 1], from_asked, from + 5_000, |points| {
                times.push(points.iter().map(|p| p.t - from).collect());
            });
            held.then_some(times)
        };
        assert_eq!(
            times_of(from),
            Some(vec![vec![5_000], vec![], vec![1_000, 2_000]])
        );

        // Not before its window, nor once the window has moved past the time asked from.
        assert_eq!(times_of(from - 1), None);
        hand.advance(Duration::from_secs(1));
        head.evict();
        assert_eq!(times_of(from), None);
        assert!(head.matching(&up, from, &HashSet::new()).is_none());
    }

    #[test]
    fn series_beyond_the_limit_stop_the_head() {
        let (head, _) = head();
        let from = head.figures().complete_from.expect("answers");
        let series: Vec<pb::CommittedSeries> = (2..=4)
            .map(|id| described(id, "up", &id.to_string()))
            .collect();
        let points: Vec<(i64, i64, f64)> = (2..=4).map(|id| (id, from + 1, 1.0)).collect();
        assert!(matches!(
            head.apply(8, &batch(series, &points), &HashMap::new()),
            Err(HeadError::TooManySeries(3))
        ));
    }

    #[tokio::test]
    async fn a_query_waits_for_the_batches_committed_before_it() {
        let (head, _) = head();
        assert!(head.caught_up(7).await);
        assert!(!head.caught_up(8).await, "position 8 is not applied");
        let waiting = {
            let head = head.clone();
            tokio::spawn(async move { head.caught_up(8).await })
        };
        head.apply(8, &batch(vec![], &[]), &HashMap::new())
            .expect("apply");
        assert!(waiting.await.expect("task"));
        head.stop_answering();
        assert!(!head.caught_up(8).await);
        assert_eq!(head.complete_from(), None);
    }
}
