//! Range functions evaluated as their series are read. For a selector whose only use is the
//! range of a function with constant arguments on the query's own grid (`sum(rate(x[5m]))`;
//! see [`StreamedCall`]), the engine hands the source a [`RangeCallBatches`], which evaluates
//! the function over each batch of series the source reads and keeps only the answers. On a
//! store that reads in parts, evaluating then overlaps the reads still running, and a batch's
//! points are dropped as soon as they are evaluated instead of all being held until the last
//! read ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::{Abort, too_many_samples};
use crate::error::{Error, Result};
use crate::eval::{Grid, StepSeries, range_function_of_series};
use crate::functions::RangeFunction;
use crate::plan::{Selector, StreamedCall};
use crate::source::SeriesBatches;
use crate::types::{Labels, Series, without_stale_markers};

/// The samples a query may load, spent by its selections as they load (from several threads).
#[derive(Debug)]
pub(crate) struct SampleBudget {
    limit: usize,
    spent: AtomicUsize,
}

impl SampleBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            spent: AtomicUsize::new(0),
        }
    }

    /// Spends `samples`; `Err` once the query has loaded more than the limit.
    pub fn spend(&self, samples: usize) -> Result<()> {
        let spent = self
            .spent
            .fetch_add(samples, Ordering::Relaxed)
            .saturating_add(samples);
        if spent > self.limit {
            return Err(too_many_samples());
        }
        Ok(())
    }
}

/// What a streamed selection gathered: the function's answer for each series, sorted by the
/// series' labels as a selection's series are, and the figures of what was read.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub series: Vec<StepSeries>,
    pub series_loaded: usize,
    pub samples_loaded: usize,
}

/// Evaluates one streamed range function over the batches a source hands it.
pub(crate) struct RangeCallBatches {
    function: RangeFunction,
    selector: Selector,
    grid: Grid,
    /// Each constant argument once per step, as the evaluator passes arguments.
    params: Vec<Vec<f64>>,
    abort: Abort,
    budget: Arc<SampleBudget>,
    gathered: Mutex<Gathered>,
}

#[derive(Debug, Default)]
struct Gathered {
    /// Each answer with its series' own labels, which order the answers.
    series: Vec<(Labels, StepSeries)>,
    series_loaded: usize,
    samples_loaded: usize,
    /// Why the evaluation stopped; the first reason is kept.
    error: Option<Error>,
}

impl RangeCallBatches {
    pub fn new(
        call: &StreamedCall,
        selector: Selector,
        grid: Grid,
        abort: Abort,
        budget: Arc<SampleBudget>,
    ) -> Self {
        Self {
            function: call.function,
            selector,
            grid,
            params: call
                .params
                .iter()
                .map(|&value| vec![value; grid.len()])
                .collect(),
            abort,
            budget,
            gathered: Mutex::default(),
        }
    }

    /// The answers gathered once the source has handed over every batch, or why the
    /// evaluation stopped.
    pub fn finish(&self) -> Result<Streamed> {
        let gathered = std::mem::take(
            &mut *self
                .gathered
                .lock()
                .map_err(|_| Error::Execution("a streamed range function was poisoned".into()))?,
        );
        if let Some(error) = gathered.error {
            return Err(error);
        }
        let mut series = gathered.series;
        series.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Streamed {
            series: series.into_iter().map(|(_, answer)| answer).collect(),
            series_loaded: gathered.series_loaded,
            samples_loaded: gathered.samples_loaded,
        })
    }

    /// The function's answers for `batch`, each with its series' labels.
    fn evaluate(&self, batch: Vec<Series>) -> Result<Vec<(Labels, StepSeries)>> {
        let keep_name = self.function == RangeFunction::LastOverTime;
        let mut answers = Vec::with_capacity(batch.len());
        for series in batch {
            if self.abort.is_aborted() {
                return Err(Error::Timeout("query evaluation"));
            }
            let points = without_stale_markers(&series.points);
            let answer = range_function_of_series(
                self.function,
                &points,
                |t| self.selector.window_at(t),
                &self.params,
                self.grid,
            )?;
            if answer.is_empty() {
                continue;
            }
            let labels = if keep_name {
                series.labels.clone()
            } else {
                series.labels.without_metric_name()
            };
            answers.push((
                series.labels,
                StepSeries {
                    labels,
                    points: answer,
                },
            ));
        }
        Ok(answers)
    }

    fn stop(&self, error: Error) -> bool {
        if let Ok(mut gathered) = self.gathered.lock() {
            gathered.error.get_or_insert(error);
        }
        false
    }
}

impl SeriesBatches for RangeCallBatches {
    fn take(&self, batch: Vec<Series>) -> bool {
        if self
            .gathered
            .lock()
            .map_or(true, |gathered| gathered.error.is_some())
        {
            return false;
        }
        let (series_count, samples) = (
            batch.len(),
            batch.iter().map(|s| s.points.len()).sum::<usize>(),
        );
        if let Err(error) = self.budget.spend(samples) {
            return self.stop(error);
        }
        match self.evaluate(batch) {
            Ok(answers) => match self.gathered.lock() {
                Ok(mut gathered) => {
                    gathered.series.extend(answers);
                    gathered.series_loaded += series_count;
                    gathered.samples_loaded += samples;
                    true
                }
                Err(_) => false,
            },
            Err(error) => self.stop(error),
        }
    }
}
