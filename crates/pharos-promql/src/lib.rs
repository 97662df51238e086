//! PromQL evaluated as Prometheus 2.42 evaluates it, over any [`SeriesSource`].
//!
//! A query goes through three steps:
//! 1. `plan`: the expression is parsed by the `promql-parser` crate and translated into the
//!    engine's own tree, which refuses what the engine does not evaluate (naming it and its
//!    position) and resolves functions, operators and `@ start()`/`@ end()`;
//! 2. `engine`: every selector of the tree asks the source once for its series over the whole
//!    time range the query needs (in parallel), and the samples loaded are counted against the
//!    limit; a range function of a selector (`rate(x[5m])`) is evaluated over each batch of
//!    series as the source hands them over (`stream`);
//! 3. `eval`: the tree is evaluated over memory, step by step as Prometheus' range evaluation
//!    does, with `functions`, `aggregate` and `binary` doing the arithmetic.
//!
//! The crate does no I/O of its own: the query service gives it a source on the store, the alert
//! service and the tests one over memory ([`MemorySource`]).

mod aggregate;
mod binary;
mod duration;
mod engine;
mod error;
mod eval;
mod functions;
mod plan;
mod source;
mod stream;
mod types;

pub use duration::{format_duration, parse_duration};
pub use engine::{
    Abort, Answer, Engine, EngineSettings, LoadedQuery, PreparedQuery, QueryStats, Range,
};
pub use error::{Error, ErrorClass, Position, Result};
pub use plan::{is_valid_label_name, parse_selector};
pub use source::{
    AnchoredRegex, HourBucket, HourlySelection, HourlySeries, MatchOp, Matcher, MemorySource,
    Selection, SeriesBatches, SeriesSource, SourceError, select_in_memory,
};
pub use types::{
    Label, Labels, METRIC_NAME, Point, STALE_NAN_BITS, Sample, Series, Value, format_float,
    is_stale_nan, stale_nan, write_float,
};

#[cfg(test)]
mod tests;
