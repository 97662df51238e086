//! [`Clock`]: the one place Pharos reads the wall clock. Services, the store and the engines are
//! handed a `Clock` instead of calling `SystemTime::now()`, so a test can start one at a chosen
//! instant and move it (`Clock::manual`, then [`ManualClock::advance`]) to check retention,
//! rollups, `for:` durations or change-log compaction without waiting. Durations that a task
//! sleeps or measures use tokio's time, which tests pause and advance (`tokio::time::pause`).
//!
//! clippy's `disallowed-methods` (root `clippy.toml`) refuses `SystemTime::now` everywhere else.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds in one second, the unit conversions below use.
const MICROS_PER_SECOND: i64 = 1_000_000;

/// A source of wall-clock time; cheap to clone (a manual clock shares its instant).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock: what every process uses outside tests.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands at `start_us` (microseconds since the Unix epoch) until the returned
    /// handle moves it. Every clone of the clock sees the moves.
    pub fn manual(start_us: i64) -> (Self, ManualClock) {
        let instant = Arc::new(AtomicI64::new(start_us));
        (
            Self {
                manual: Some(instant.clone()),
            },
            ManualClock { instant },
        )
    }

    /// Microseconds since the Unix epoch, the unit of every timestamp column.
    pub fn now_micros(&self) -> i64 {
        match &self.manual {
            Some(instant) => instant.load(Ordering::Acquire),
            None => system_micros(),
        }
    }

    /// Nanoseconds since the Unix epoch, the unit of OTLP timestamps.
    pub fn now_nanos(&self) -> i64 {
        self.now_micros().saturating_mul(1_000)
    }

    /// Whole seconds since the Unix epoch.
    pub fn now_seconds(&self) -> i64 {
        self.now_micros().div_euclid(MICROS_PER_SECOND)
    }

    /// The current instant as a `SystemTime`.
    pub fn now(&self) -> SystemTime {
        let micros = self.now_micros();
        match u64::try_from(micros) {
            Ok(after) => UNIX_EPOCH + Duration::from_micros(after),
            Err(_) => UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs()),
        }
    }

    /// Whether this clock is moved by hand (a test's clock).
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

/// The handle that moves a [`Clock::manual`] clock.
#[derive(Clone, Debug)]
pub struct ManualClock {
    instant: Arc<AtomicI64>,
}

impl ManualClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.instant.fetch_add(by, Ordering::AcqRel);
    }

    /// Sets the clock to `micros` since the Unix epoch (it may go back: a test of a clock step).
    pub fn set_micros(&self, micros: i64) {
        self.instant.store(micros, Ordering::Release);
    }

    /// Where the clock stands, in microseconds since the Unix epoch.
    pub fn now_micros(&self) -> i64 {
        self.instant.load(Ordering::Acquire)
    }
}

/// The system clock in microseconds since the Unix epoch; 0 before the epoch (a broken clock).
#[allow(clippy::disallowed_methods)] // the one permitted reading of the wall clock
fn system_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved() {
        let (clock, hand) = Clock::manual(1_000_000);
        let copy = clock.clone();
        assert_eq!(clock.now_micros(), 1_000_000);
        hand.advance(Duration::from_millis(1_500));
        assert_eq!(copy.now_micros(), 2_500_000);
        assert_eq!(copy.now_seconds(), 2);
        assert_eq!(copy.now_nanos(), 2_500_000_000);
        hand.set_micros(-1_500_000);
        assert_eq!(clock.now_seconds(), -2);
        assert_eq!(clock.now(), UNIX_EPOCH - Duration::from_micros(1_500_000));
    }

    #[test]
    fn the_system_clock_moves() {
        let clock = Clock::system();
        assert!(!clock.is_manual());
        // 2020-01-01 in microseconds: any real clock is past it.
        assert!(clock.now_micros() > 1_577_836_800_000_000);
    }
}
