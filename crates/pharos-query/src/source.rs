//! [`StoreSource`]: the engine's [`SeriesSource`] on the store. A selection picks its series
//! from the series table (by metric name when the selector names one, then every label matcher
//! in memory, regexes fully anchored), through a moka cache so that dashboards refreshing the
//! same panels leave the series table alone; then it reads the points of those series over the
//! range only, in chunks read in parallel (only each series' latest point for a selector at one
//! instant, such as a rule's or an instant query's). A `*_over_time` over whole hours reads the hourly
//! rollups instead (hours not rolled up yet are summed from their points in the same read),
//! plus the points at the step instants. A selection within the head's window is answered by
//! the head of recent points instead ([`crate::head`]), once it has caught up with the feed; a
//! range that begins before the window and ends in it reads the store up to where the head
//! begins and takes the rest from the head (every point not yet compacted into chunks among it).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use pharos_promql::{
    HourBucket, HourlySelection, HourlySeries, Labels, METRIC_NAME, Matcher, Point, Selection,
    Series, SeriesBatches, SeriesSource, SourceError,
};
use pharos_store::signals::metrics::{EncodedPoints, PointForm};
use pharos_store::{Store, StoreError};

use pharos_store::signals::feed::FeedSignal;

use crate::head::Head;
use crate::settings::SeriesCacheSettings;

/// Series whose points are read by one statement.
const SERIES_PER_READ: usize = 256;
/// Point reads of one selection running at once.
const PARALLEL_READS: usize = 4;
/// Series a read hands to the engine at a time when it evaluates them as they are read: each
/// is converted just before, so that the engine finds its points still in the cache (16 series
/// of 6 hours at 15 s are 370 KB).
const SERIES_PER_HANDOVER: usize = 16;

/// A stored series as the query service knows it: its row id and its labels, name included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeries {
    pub id: i64,
    pub labels: Labels,
}

/// The engine's source of series on the store; cheap to clone.
#[derive(Clone)]
pub struct StoreSource {
    store: Store,
    cache: Option<moka::future::Cache<String, Arc<Vec<StoredSeries>>>>,
    /// Select from the series table and refresh the cache, never reading it.
    fresh_series: bool,
    /// The recent points in memory, when the head is on.
    head: Option<Arc<Head>>,
    /// For one query: whether the head has applied every batch committed before it (checked
    /// once, by the first selection the head covers); `None`: checked at each selection.
    head_caught_up: Option<Arc<tokio::sync::OnceCell<bool>>>,
}

impl std::fmt::Debug for StoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSource")
            .field(
                "cached_selections",
                &self.cache.as_ref().map(|c| c.entry_count()),
            )
            .finish()
    }
}

impl StoreSource {
    pub fn new(store: Store, cache: &SeriesCacheSettings) -> Self {
        let cache = (cache.capacity > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(cache.capacity)
                .time_to_live(cache.ttl)
                .build()
        });
        Self {
            store,
            cache,
            fresh_series: false,
            head: None,
            head_caught_up: None,
        }
    }

    /// The same source, answering the selections `head` covers from it.
    pub fn with_head(self, head: Arc<Head>) -> Self {
        Self {
            head: Some(head),
            ..self
        }
    }

    /// The same source (sharing its cache) for one query: whether the head has caught up is
    /// checked once for all of the query's selections.
    pub fn for_query(&self) -> Self {
        Self {
            head_caught_up: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// The same source (sharing its cache) that selects series from the series table and
    /// refreshes the cache with what it read: one query that must see series created since the
    /// cache was filled (a rule evaluated as its data commits).
    pub fn with_fresh_series(&self) -> Self {
        Self {
            fresh_series: true,
            ..self.clone()
        }
    }

    /// The stored series that match every matcher, sorted by labels.
    pub async fn matching_series(
        &self,
        matchers: &[Matcher],
    ) -> Result<Arc<Vec<StoredSeries>>, StoreError> {
        let Some(cache) = &self.cache else {
            return self.load_series(matchers).await.map(Arc::new);
        };
        let key = cache_key(matchers);
        if self.fresh_series {
            let series = Arc::new(self.load_series(matchers).await?);
            cache.insert(key, series.clone()).await;
            return Ok(series);
        }
        cache
            .try_get_with(key, async {
                self.load_series(matchers).await.map(Arc::new)
            })
            .await
            .map_err(|error| match Arc::try_unwrap(error) {
                Ok(error) => error,
                Err(shared) => StoreError::InvalidValue(shared.to_string()),
            })
    }

    async fn load_series(&self, matchers: &[Matcher]) -> Result<Vec<StoredSeries>, StoreError> {
        let name = matchers.iter().find_map(|matcher| match &matcher.op {
            pharos_promql::MatchOp::Equal(name) if matcher.name == METRIC_NAME => {
                Some(name.as_str())
            }
            _ => None,
        });
        // Equality matchers narrow the statement, and so do regexes of plain alternatives
        // (`job=~"$job"` in a dashboard: `a` with one value chosen, `a|b` with several); a
        // matcher of "" also matches series without the label, so it cannot. Every matcher is
        // checked below.
        let literals: Vec<(&str, Vec<String>)> = matchers
            .iter()
            .filter(|matcher| matcher.name != METRIC_NAME)
            .filter_map(|matcher| match &matcher.op {
                pharos_promql::MatchOp::Equal(value) if !value.is_empty() => {
                    Some((matcher.name.as_str(), vec![value.clone()]))
                }
                pharos_promql::MatchOp::Regex(regex) => regex
                    .literal_alternatives()
                    .map(|values| (matcher.name.as_str(), values)),
                _ => None,
            })
            .collect();
        let choices: Vec<Vec<&str>> = literals
            .iter()
            .map(|(_, values)| values.iter().map(String::as_str).collect())
            .collect();
        let wanted: Vec<(&str, &[&str])> = literals
            .iter()
            .zip(&choices)
            .map(|((label, _), values)| (*label, values.as_slice()))
            .collect();
        let rows = self.store.metrics().series_labels(name, &wanted).await?;
        let mut series: Vec<StoredSeries> = rows
            .into_iter()
            .filter_map(|(id, name, labels_json)| {
                let labels = stored_labels(&name, &labels_json)?;
                matchers
                    .iter()
                    .all(|matcher| matcher.matches_labels(&labels))
                    .then_some(StoredSeries { id, labels })
            })
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series)
    }

    /// Of `series`, those with at least one point in `start..=end` (milliseconds).
    pub async fn with_points_in(
        &self,
        series: &[StoredSeries],
        start: i64,
        end: i64,
    ) -> Result<Vec<StoredSeries>, StoreError> {
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
        let present = self
            .store
            .metrics()
            .series_with_points(&ids, millis_to_micros(start), last_micro_of(end))
            .await?;
        let present: std::collections::HashSet<i64> = present.into_iter().collect();
        Ok(series
            .iter()
            .filter(|s| present.contains(&s.id))
            .cloned()
            .collect())
    }

    /// The points of `series` in `start..=end` (milliseconds), read in parallel chunks, each
    /// its own task so that decoding chunks of points spreads over the cores (a task is
    /// aborted, and its read canceled, when the query is dropped; a single chunk is read on
    /// the caller's task); only the latest of each
    /// series when `latest_only`. With `batches`, each chunk's series are handed to it in
    /// their task as soon as they are read (and the reads stop when it says so), and nothing
    /// is returned.
    ///
    /// With `head_from` (the head and a time in milliseconds after `start`, from which it holds
    /// every point), each chunk reads the store up to that time and takes the rest from the
    /// head (from the store again, should the head have stopped answering or moved on since).
    async fn points(
        &self,
        series: &[StoredSeries],
        start: i64,
        end: i64,
        latest_only: bool,
        batches: Option<Arc<dyn SeriesBatches>>,
        head_from: Option<(Arc<Head>, i64)>,
    ) -> Result<Vec<Series>, SourceError> {
        let from_us = millis_to_micros(start);
        let to_us = last_micro_of(end);
        let store_to_us = match &head_from {
            Some((_, from)) => millis_to_micros(*from) - 1,
            None => to_us,
        };
        let metrics = self.store.metrics();
        let chunks: Vec<Vec<StoredSeries>> = series
            .chunks(SERIES_PER_READ)
            .map(<[StoredSeries]>::to_vec)
            .collect();
        let read_chunk = move |chunk: Vec<StoredSeries>| {
            let metrics = metrics.clone();
            let batches = batches.clone();
            let head_from = head_from.clone();
            async move {
                let ids: Vec<i64> = chunk.iter().map(|s| s.id).collect();
                let mut stored = if latest_only {
                    ReadPoints::Latest(
                        metrics
                            .latest_points_of_series(&ids, from_us, to_us)
                            .await?
                            .into_iter()
                            .map(|(id, time, value)| (id, EngineTime::point(time, value)))
                            .collect(),
                    )
                } else {
                    ReadPoints::Encoded(
                        metrics
                            .encoded_points_by_series(&ids, from_us, store_to_us)
                            .await?,
                    )
                };
                // Each series' vector has room for its points from the head, taken to be as
                // dense as those read (and a little more).
                let spans = head_from
                    .as_ref()
                    .map(|(_, from)| ((end - from + 1).max(0), (from - start).max(1)));
                let room_after = |read: usize| match spans {
                    Some((in_head, read_from_store)) => {
                        let room =
                            (read as u128 * in_head as u128 / read_from_store as u128) as usize;
                        room + room / 16 + 4
                    }
                    None => 0,
                };
                // Decoded and completed from the head a group at a time, just before the
                // engine takes it (the points are still in cache when it reads them); at once
                // when nothing takes them as they come.
                let group_size = match batches {
                    Some(_) => SERIES_PER_HANDOVER,
                    None => chunk.len().max(1),
                };
                let mut read = Vec::new();
                for group in chunk.chunks(group_size) {
                    let stored = group
                        .iter()
                        .map(|series| stored.take(series.id, room_after))
                        .collect::<Result<Vec<_>, _>>()?;
                    let series = match &head_from {
                        None => series_with(group, stored),
                        Some((head, from)) => {
                            let recent = Recent {
                                head,
                                from: *from,
                                end,
                                to_us,
                            };
                            recent.completed(&metrics, group, stored).await?
                        }
                    };
                    match &batches {
                        None => read.extend(series),
                        // `None` when the engine asks to stop reading.
                        Some(batches) => {
                            if !series.is_empty() && !batches.take(series) {
                                return Ok(None);
                            }
                        }
                    }
                }
                Ok::<_, StoreError>(Some(read))
            }
        };
        let read: Result<Vec<Vec<Series>>, ReadEnd> = if chunks.len() == 1 {
            // A single read stays on this task: no other thread to wake, nothing to spread.
            let chunk = chunks.into_iter().next().unwrap_or_default();
            read_end(Ok(read_chunk(chunk).await)).map(|read| vec![read])
        } else {
            futures::stream::iter(chunks)
                .map(|chunk| {
                    let task =
                        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(read_chunk(chunk)));
                    async move { read_end(task.await) }
                })
                .buffered(PARALLEL_READS)
                .try_collect()
                .await
        };
        match read {
            Ok(read) => Ok(read.into_iter().flatten().collect()),
            // The engine gave up on the query and knows why; the reads left are dropped.
            Err(ReadEnd::Stopped) => Ok(Vec::new()),
            Err(ReadEnd::Failed(error)) => Err(error),
        }
    }
}

impl StoreSource {
    /// `selection` read from the store: the points of its `series` (handed to `batches` as
    /// they are read, when given). With `head_from`, the points from that time on come from the
    /// head, and the head's series that match are read too.
    async fn read_selection(
        &self,
        selection: &Selection,
        mut series: Arc<Vec<StoredSeries>>,
        batches: Option<Arc<dyn SeriesBatches>>,
        head_from: Option<(Arc<Head>, i64)>,
    ) -> Result<Vec<Series>, SourceError> {
        let head_from = head_from.and_then(|(head, from)| {
            let known: std::collections::HashSet<i64> = series.iter().map(|s| s.id).collect();
            let new: Vec<StoredSeries> = head
                .matching(selection, from, &known)?
                .into_iter()
                .map(|(id, labels)| StoredSeries { id, labels })
                .collect();
            if !new.is_empty() {
                let mut all = series.as_ref().clone();
                all.extend(new);
                all.sort_by(|a, b| a.labels.cmp(&b.labels));
                series = Arc::new(all);
            }
            Some((head, from))
        });
        self.points(
            &series,
            selection.start,
            selection.end,
            selection.latest_only,
            batches,
            head_from,
        )
        .await
    }

    /// How the head takes part in `selection`, when it has applied every batch of metric
    /// points committed before the query (the feed position of the last one is read from the
    /// store: one indexed row, once per query).
    async fn head_part(&self, selection: &Selection) -> Result<HeadPart, SourceError> {
        let Some(head) = &self.head else {
            return Ok(HeadPart::Nothing);
        };
        let Some(complete_from) = head.complete_from() else {
            return Ok(HeadPart::Nothing);
        };
        // A selector at one instant before the window reads each series' latest point from
        // the store; a range that ends before the window has nothing in the head.
        let whole = selection.start >= complete_from;
        if selection.end < complete_from || (selection.latest_only && !whole) {
            return Ok(HeadPart::Nothing);
        }
        let check = async {
            let position = self
                .store
                .feed()
                .last_position_of(FeedSignal::Metrics)
                .await?;
            Ok::<_, StoreError>(head.caught_up(position).await)
        };
        let caught_up = match &self.head_caught_up {
            Some(once) => *once.get_or_try_init(|| check).await.map_err(source_error)?,
            None => check.await.map_err(source_error)?,
        };
        if !caught_up {
            return Ok(HeadPart::Nothing);
        }
        if whole && let Some(series) = head.select(selection) {
            return Ok(HeadPart::Whole(series));
        }
        // The window may have moved on since: the head then answers from where it starts now
        // (a selector at one instant reads the store).
        Ok(match head.complete_from() {
            Some(from)
                if !selection.latest_only && from > selection.start && from <= selection.end =>
            {
                HeadPart::From(head.clone(), from)
            }
            _ => HeadPart::Nothing,
        })
    }

    /// `selection`'s series, handed to `batches` when given (nothing is returned then).
    async fn selected(
        &self,
        selection: &Selection,
        batches: Option<Arc<dyn SeriesBatches>>,
    ) -> Result<Vec<Series>, SourceError> {
        let series_of_selection = || async {
            self.matching_series(&selection.matchers)
                .await
                .map_err(source_error)
        };
        // A selection the head should answer whole needs no series from the store; any other
        // does, and they are selected while the head's catch-up is checked.
        let within_head = self
            .head
            .as_ref()
            .and_then(|head| head.complete_from())
            .is_some_and(|from| selection.start >= from);
        let (part, series) = if within_head {
            (self.head_part(selection).await?, None)
        } else {
            let (part, series) =
                futures::try_join!(self.head_part(selection), series_of_selection())?;
            (part, Some(series))
        };
        let head_from = match part {
            HeadPart::Whole(series) => {
                return match batches {
                    None => Ok(series),
                    Some(batches) => hand_over_in_tasks(series, batches)
                        .await
                        .map(|()| Vec::new()),
                };
            }
            HeadPart::From(head, from) => Some((head, from)),
            HeadPart::Nothing => None,
        };
        let series = match series {
            Some(series) => series,
            None => series_of_selection().await?,
        };
        self.read_selection(selection, series, batches, head_from)
            .await
    }
}

/// How the head takes part in a selection.
enum HeadPart {
    /// It answers the whole selection.
    Whole(Vec<Series>),
    /// It holds the points from this time (milliseconds, within the range) on.
    From(Arc<Head>, i64),
    Nothing,
}

#[async_trait]
impl SeriesSource for StoreSource {
    async fn select(&self, selection: &Selection) -> Result<Vec<Series>, SourceError> {
        self.selected(selection, None).await
    }

    async fn select_into(
        &self,
        selection: &Selection,
        batches: Arc<dyn SeriesBatches>,
    ) -> Result<(), SourceError> {
        self.selected(selection, Some(batches)).await?;
        Ok(())
    }

    async fn select_hourly(
        &self,
        selection: &HourlySelection,
    ) -> Result<Option<Vec<HourlySeries>>, SourceError> {
        let series = self
            .matching_series(&selection.matchers)
            .await
            .map_err(source_error)?;
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
        let metrics = self.store.metrics();
        let (buckets, instants) = futures::try_join!(
            metrics.hourly_aggregates(
                &ids,
                selection.start.saturating_mul(1000),
                selection.end.saturating_mul(1000)
            ),
            metrics.points_at_instants(&ids, &selection.instants),
        )
        .map_err(source_error)?;
        let index: std::collections::HashMap<i64, usize> =
            series.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let mut hourly: Vec<HourlySeries> = series
            .iter()
            .map(|s| HourlySeries {
                labels: s.labels.clone(),
                buckets: Vec::new(),
                instant_points: Vec::new(),
            })
            .collect();
        for row in buckets {
            if let Some(&at) = index.get(&row.series_id) {
                hourly[at].buckets.push(HourBucket {
                    start: row.bucket_us.div_euclid(1000),
                    count: row.count.max(0) as u64,
                    sum: row.sum,
                    min: row.min,
                    max: row.max,
                    nan_count: row.nan_count.max(0) as u64,
                });
            }
        }
        for (id, time_us, value) in instants {
            if let Some(&at) = index.get(&id)
                && !pharos_promql::is_stale_nan(value)
            {
                hourly[at]
                    .instant_points
                    .push(Point::new(time_us.div_euclid(1000), value));
            }
        }
        hourly.retain(|s| !s.buckets.is_empty() || !s.instant_points.is_empty());
        Ok(Some(hourly))
    }
}

/// Hands `series` (the head's answer) to `batches` in parts of [`SERIES_PER_READ`], each in
/// its own task as a read's would be, so that the work spreads over the cores and stays off the
/// caller's task (once `batches` has said to stop, it refuses the parts still to come at once).
async fn hand_over_in_tasks(
    series: Vec<Series>,
    batches: Arc<dyn SeriesBatches>,
) -> Result<(), SourceError> {
    let mut parts: Vec<Vec<Series>> = Vec::new();
    let mut series = series.into_iter().peekable();
    while series.peek().is_some() {
        parts.push(series.by_ref().take(SERIES_PER_READ).collect());
    }
    let tasks = parts.into_iter().map(|part| {
        let batches = batches.clone();
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move { batches.take(part) }))
    });
    for handed in futures::future::join_all(tasks).await {
        if let Err(error) = handed {
            return Err(SourceError::new(
                format!("evaluating the head's series stopped: {error}"),
                false,
            ));
        }
    }
    Ok(())
}

/// How a read of points (run as its own task, or on the caller's) ended.
fn read_end(
    ended: Result<Result<Option<Vec<Series>>, StoreError>, tokio::task::JoinError>,
) -> Result<Vec<Series>, ReadEnd> {
    match ended {
        Ok(Ok(Some(read))) => Ok(read),
        Ok(Ok(None)) => Err(ReadEnd::Stopped),
        Ok(Err(error)) => Err(ReadEnd::Failed(source_error(error))),
        Err(error) => Err(ReadEnd::Failed(SourceError::new(
            format!("a read of points stopped: {error}"),
            false,
        ))),
    }
}

/// Why reading a selection's points ended early.
enum ReadEnd {
    /// The batches said to stop.
    Stopped,
    Failed(SourceError),
}

/// A read's points, taken a series at a time.
enum ReadPoints {
    /// The latest point of each series (an instant query's selection).
    Latest(std::collections::HashMap<i64, Point>),
    /// Every point in the range, each series decoded as it is taken.
    Encoded(EncodedPoints),
}

impl ReadPoints {
    /// Series `id`'s points, oldest first (empty when the read found none), with room for
    /// `room_after(points read)` more.
    fn take(
        &mut self,
        id: i64,
        room_after: impl FnOnce(usize) -> usize,
    ) -> Result<Vec<Point>, StoreError> {
        match self {
            ReadPoints::Latest(points) => Ok(points.remove(&id).into_iter().collect()),
            ReadPoints::Encoded(read) => read.decode::<EngineTime>(id, room_after),
        }
    }
}

/// The points read of each series of `chunk` (by id), in the chunk's order.
fn in_order_of(chunk: &[StoredSeries], read: Vec<(i64, Vec<Point>)>) -> Vec<Vec<Point>> {
    let index: std::collections::HashMap<i64, usize> =
        chunk.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let mut points: Vec<Vec<Point>> = vec![Vec::new(); chunk.len()];
    for (id, read) in read {
        if let Some(&at) = index.get(&id) {
            points[at] = read;
        }
    }
    points
}

/// Each series of `group` with its `points` (in its order); series without points left out.
fn series_with(
    group: &[StoredSeries],
    points: impl IntoIterator<Item = Vec<Point>>,
) -> Vec<Series> {
    group
        .iter()
        .zip(points)
        .filter(|(_, points)| !points.is_empty())
        .map(|(series, points)| Series {
            labels: series.labels.clone(),
            points,
        })
        .collect()
}

/// Where a read that stops where the head begins takes the rest of its series' points.
struct Recent<'a> {
    head: &'a Head,
    /// Where the head begins (milliseconds): the read stopped just before.
    from: i64,
    /// The range's end (milliseconds) and its last microsecond.
    end: i64,
    to_us: i64,
}

impl Recent<'_> {
    /// The engine's series of `group`: the points read of each (in its order) followed by its
    /// points from the head, copied once onto the end of the points read; from the store,
    /// should the head have moved on since. Series without points are left out.
    async fn completed(
        &self,
        metrics: &pharos_store::signals::metrics::MetricsRepository,
        group: &[StoredSeries],
        stored: Vec<Vec<Point>>,
    ) -> Result<Vec<Series>, StoreError> {
        let ids: Vec<i64> = group.iter().map(|s| s.id).collect();
        let mut joined: Vec<Vec<Point>> = Vec::with_capacity(group.len());
        let mut stored = stored.into_iter();
        let held = self
            .head
            .with_points_of(&ids, self.from, self.end, |recent| {
                let mut points = stored.next().unwrap_or_default();
                points.extend_from_slice(recent);
                joined.push(points);
            });
        if !held {
            let read = metrics
                .points_by_series_as::<EngineTime>(
                    &ids,
                    millis_to_micros(self.from),
                    self.to_us,
                    &|_, _| 0,
                )
                .await?;
            joined = stored
                .zip(in_order_of(group, read))
                .map(|(mut points, recent)| {
                    points.extend(recent);
                    points
                })
                .collect();
        }
        Ok(series_with(group, joined))
    }
}

/// The engine's form of points read from the store: times in milliseconds, made as the chunks
/// are decoded.
struct EngineTime;

impl PointForm for EngineTime {
    type Point = Point;

    #[inline]
    fn point(time_us: i64, value: f64) -> Point {
        engine_point((time_us, value))
    }

    #[inline]
    fn time(point: &Point) -> i64 {
        point.t
    }
}

/// A series' points as the store reads them (times in µs) as the engine's (times in ms).
pub(crate) fn engine_points(points: Vec<(i64, f64)>) -> Vec<Point> {
    points.into_iter().map(engine_point).collect()
}

/// A point as the store reads it (time in µs) as the engine's (time in ms).
fn engine_point((time_us, value): (i64, f64)) -> Point {
    // Unsigned division by a constant is a multiplication and a shift; times before 1970 round
    // down as `div_euclid` does.
    let time_ms = match u64::try_from(time_us) {
        Ok(time_us) => (time_us / 1000) as i64,
        Err(_) => time_us.div_euclid(1000),
    };
    Point::new(time_ms, value)
}

/// The labels of a stored series: its labels column (a JSON object) and its name.
pub(crate) fn stored_labels(name: &str, labels_json: &str) -> Option<Labels> {
    let labels: BTreeMap<String, String> = match serde_json::from_str(labels_json) {
        Ok(labels) => labels,
        Err(error) => {
            tracing::warn!(%error, name, "a stored series has unreadable labels; skipped");
            return None;
        }
    };
    Some(Labels::from_pairs(labels.into_iter().chain(
        std::iter::once((METRIC_NAME.to_owned(), name.to_owned())),
    )))
}

fn cache_key(matchers: &[Matcher]) -> String {
    let mut parts: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    parts.sort();
    parts.join(",")
}

fn millis_to_micros(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

/// The last microsecond of millisecond `ms`: a point at 1.5 ms belongs to millisecond 1.
fn last_micro_of(ms: i64) -> i64 {
    ms.saturating_mul(1000).saturating_add(999)
}

fn source_error(error: StoreError) -> SourceError {
    let transient = matches!(error, StoreError::Unavailable(_));
    if !transient {
        tracing::error!(%error, "reading series for a query failed");
    }
    SourceError::new(
        if transient {
            "the store is unavailable; try again".to_owned()
        } else {
            format!("reading series failed: {error}")
        },
        transient,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pharos_clock::Clock;
    use pharos_promql::{AnchoredRegex, MatchOp};
    use pharos_store::signals::metrics::{NewSeries, PointRow, SeriesKey};
    use pharos_store::testing::TestDatabase;

    use super::*;
    use crate::settings::HeadSettings;

    const NOW_MS: i64 = 1_800_000_000_000;
    const WINDOW: Duration = Duration::from_secs(20 * 60);

    /// `up{job="a"}` and `up{job="b"}`, a point every 15 s over the 40 minutes up to `NOW_MS`.
    async fn stored(database: &TestDatabase) -> Store {
        let store = database.store().await;
        let metrics = store.metrics();
        let series: Vec<NewSeries> = ["a", "b"]
            .into_iter()
            .map(|job| NewSeries {
                key: SeriesKey {
                    name: "up".to_owned(),
                    labels_key: format!("job={job:?}"),
                },
                labels: vec![("job".to_owned(), job.to_owned())],
            })
            .collect();
        let ids = metrics.create_series(&series).await.expect("series");
        let first_ms = NOW_MS - 40 * 60_000;
        let rows: Vec<PointRow> = series
            .iter()
            .zip(1..)
            .flat_map(|(series, slope)| {
                let id = ids[&series.key].0;
                (0..=160).map(move |i| PointRow {
                    series_id: id,
                    time_us: (first_ms + i * 15_000) * 1000,
                    value: (i * slope) as f64,
                })
            })
            .collect();
        metrics
            .ensure_partitions(first_ms * 1000, NOW_MS * 1000)
            .await
            .expect("partitions");
        metrics.insert_points(&rows, None).await.expect("points");
        store
    }

    #[tokio::test]
    async fn literal_matchers_narrow_the_series_statement_to_the_same_answer() {
        let database = TestDatabase::sqlite();
        let no_cache = SeriesCacheSettings {
            capacity: 0,
            ..SeriesCacheSettings::default()
        };
        let source = StoreSource::new(stored(&database).await, &no_cache);
        let matcher = |name: &str, op: MatchOp| Matcher {
            name: name.to_owned(),
            op,
        };
        let regex = |source: &str| MatchOp::Regex(AnchoredRegex::new(source).expect("regex"));
        let jobs = async |matchers: Vec<Matcher>| -> Vec<String> {
            let mut matchers = matchers;
            matchers.push(matcher(METRIC_NAME, MatchOp::Equal("up".to_owned())));
            let series = source.matching_series(&matchers).await.expect("series");
            series
                .iter()
                .map(|s| s.labels.get("job").unwrap_or("").to_owned())
                .collect()
        };
        assert_eq!(jobs(vec![]).await, ["a", "b"]);
        assert_eq!(
            jobs(vec![matcher("job", MatchOp::Equal("a".into()))]).await,
            ["a"]
        );
        assert_eq!(jobs(vec![matcher("job", regex("b"))]).await, ["b"]);
        assert_eq!(jobs(vec![matcher("job", regex("a|b"))]).await, ["a", "b"]);
        assert_eq!(jobs(vec![matcher("job", regex("(b|c)"))]).await, ["b"]);
        assert_eq!(jobs(vec![matcher("job", regex("c|a"))]).await, ["a"]);
        assert_eq!(
            jobs(vec![
                matcher("job", regex("a|b")),
                matcher("job", MatchOp::NotEqual("a".into()))
            ])
            .await,
            ["b"]
        );
        assert_eq!(jobs(vec![matcher("job", regex("a.*"))]).await, ["a"]);
        assert!(jobs(vec![matcher("job", regex("c"))]).await.is_empty());
        // "" matches series without the label: no series of `up` lacks `job`.
        assert!(
            jobs(vec![matcher("job", MatchOp::Equal(String::new()))])
                .await
                .is_empty()
        );
        assert_eq!(
            jobs(vec![matcher("other", MatchOp::Equal(String::new()))]).await,
            ["a", "b"]
        );
        assert_eq!(
            jobs(vec![
                matcher("job", regex("a")),
                matcher("job", MatchOp::Equal("b".into()))
            ])
            .await,
            Vec::<String>::new()
        );
    }

    #[test]
    fn microseconds_round_down_to_milliseconds_on_both_sides_of_1970() {
        let times: Vec<i64> = [-1_001, -1_000, -1, 0, 999, 1_000, 1_999, i64::MAX]
            .into_iter()
            .map(|time_us| engine_point((time_us, 0.0)).t)
            .collect();
        let expected: Vec<i64> = [-1_001i64, -1_000, -1, 0, 999, 1_000, 1_999, i64::MAX]
            .into_iter()
            .map(|time_us| time_us.div_euclid(1000))
            .collect();
        assert_eq!(times, expected);
        assert_eq!(times[..3], [-2, -1, -1]);
    }

    #[tokio::test]
    async fn a_range_begun_in_the_store_and_completed_from_the_head_is_the_stores_answer() {
        let database = TestDatabase::sqlite();
        let store = stored(&database).await;
        let (clock, hand) = Clock::manual(NOW_MS * 1000);
        let settings = HeadSettings {
            window: WINDOW,
            max_series: 10,
            catch_up: Duration::from_millis(50),
        };
        let head = Head::new(settings, clock);
        let from = NOW_MS - 20 * 60_000;
        let snapshot = store
            .metrics()
            .recent_points(from * 1000)
            .await
            .expect("snapshot");
        head.start_from(snapshot, from).expect("start");
        let no_cache = SeriesCacheSettings {
            capacity: 0,
            ..SeriesCacheSettings::default()
        };
        let plain = StoreSource::new(store.clone(), &no_cache);
        let with_head = plain.clone().with_head(head.clone());
        let selection = Selection {
            matchers: vec![Matcher {
                name: METRIC_NAME.to_owned(),
                op: MatchOp::Equal("up".to_owned()),
            }],
            start: NOW_MS - 30 * 60_000,
            end: NOW_MS,
            latest_only: false,
        };
        let expected = plain.select(&selection).await.expect("the store's");
        let lengths: Vec<usize> = expected.iter().map(|s| s.points.len()).collect();
        assert_eq!(lengths, [121, 121]);
        let completed = with_head.select(&selection).await.expect("completed");
        assert_eq!(completed, expected);
        assert_eq!(head.figures().completed, 1);

        // The window moves past where a read stopped: its rest comes from the store instead.
        hand.advance(Duration::from_secs(60));
        head.evict();
        let series = plain
            .matching_series(&selection.matchers)
            .await
            .expect("series");
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
        let metrics = store.metrics();
        let before = metrics
            .points_by_series_as::<EngineTime>(
                &ids,
                selection.start * 1000,
                from * 1000 - 1,
                &|_, _| 0,
            )
            .await
            .expect("points before the head");
        let recent = Recent {
            head: &head,
            from,
            end: NOW_MS,
            to_us: last_micro_of(NOW_MS),
        };
        let from_store = recent
            .completed(&metrics, &series, in_order_of(&series, before))
            .await
            .expect("completed from the store");
        assert_eq!(from_store, expected);
    }
}
