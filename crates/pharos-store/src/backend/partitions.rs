//! [`Partitions`]: the time partitions of one PostgreSQL table partitioned by range of a time
//! column. Partitions (`<parent>_pYYYYMMDD` per UTC day or `<parent>_pYYYYMM` per month) are
//! created ahead of the data and expiry drops whole partitions instead of deleting rows. Which
//! partitions exist is remembered, so that the write path asks the catalog only when a batch
//! reaches a day it has not seen. SQLite has no partitions: there the same calls do nothing and
//! expiry deletes rows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgPool;

use crate::Store;
use crate::backend::Pool;
use crate::error::Result;

pub(crate) const DAY_US: i64 = 86_400_000_000;

/// How much time one partition covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Day,
    Month,
}

/// The time unit of a partitioned table's time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Micros,
    Nanos,
}

impl TimeUnit {
    /// Units per microsecond.
    fn per_micro(self) -> i64 {
        match self {
            TimeUnit::Micros => 1,
            TimeUnit::Nanos => 1_000,
        }
    }
}

/// What an expiry removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub partitions_dropped: u64,
    pub rows_deleted: u64,
}

impl std::ops::AddAssign for Expired {
    fn add_assign(&mut self, other: Self) {
        self.partitions_dropped += other.partitions_dropped;
        self.rows_deleted += other.rows_deleted;
    }
}

/// The partitions of one table; cheap to clone (the memory of known partitions is shared).
#[derive(Debug, Clone)]
pub struct Partitions {
    parent: &'static str,
    span: Span,
    unit: TimeUnit,
    /// First day (since the epoch) of every partition known to exist.
    known: Arc<Mutex<HashSet<i64>>>,
}

impl Partitions {
    pub(crate) fn new(parent: &'static str, span: Span, unit: TimeUnit) -> Self {
        Self {
            parent,
            span,
            unit,
            known: Arc::default(),
        }
    }

    /// Creates the missing partitions covering `from..=to` (in the table's time unit); returns
    /// how many it created.
    pub(crate) async fn ensure(&self, pool: &PgPool, from: i64, to: i64) -> Result<usize> {
        let (first, last) = (self.start_day(from), self.start_day(to));
        let wanted: Vec<i64> = self.starts(first, last).collect();
        {
            let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            if wanted.iter().all(|day| known.contains(day)) {
                return Ok(0);
            }
        }
        let existing: HashSet<String> = self
            .children(pool)
            .await?
            .into_iter()
            .map(|c| c.0)
            .collect();
        let mut created = 0;
        for &day in &wanted {
            let name = self.name(day);
            if !existing.contains(&name) {
                let per_micro = self.unit.per_micro();
                // Built from a day number we computed, never from input.
                let ddl = format!(
                    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {} FOR VALUES FROM ({}) TO ({})",
                    self.parent,
                    day * DAY_US * per_micro,
                    self.next_start(day) * DAY_US * per_micro
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                    .execute(pool)
                    .await?;
                created += 1;
            }
        }
        if created > 0 {
            tracing::info!(
                table = self.parent,
                created,
                "created partitions ahead of the data"
            );
        }
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(wanted);
        Ok(created)
    }

    /// Drops every partition that lies wholly before `before` (in the table's time unit); a
    /// partition holding anything newer stays until it is whole past the cut.
    pub(crate) async fn drop_before(&self, pool: &PgPool, before: i64) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for (name, upper) in self.children(pool).await? {
            let Some(upper) = upper else { continue };
            if upper > before {
                continue;
            }
            // The name came from the catalog and matched our pattern.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                .execute(pool)
                .await?;
            dropped.push(name);
        }
        if !dropped.is_empty() {
            self.forget();
        }
        Ok(dropped)
    }

    /// Partitions wholly before `before`, oldest first, with their bounds, for expiry that must
    /// look inside a partition before dropping it.
    pub(crate) async fn wholly_before(
        &self,
        pool: &PgPool,
        before: i64,
    ) -> Result<Vec<(String, i64, i64)>> {
        let mut partitions: Vec<(String, i64, i64)> = self
            .children(pool)
            .await?
            .into_iter()
            .filter_map(|(name, upper)| {
                let upper = upper?;
                let day = self.day_of_name(&name)?;
                let lower = day * DAY_US * self.unit.per_micro();
                (upper <= before).then_some((name, lower, upper))
            })
            .collect();
        partitions.sort_by_key(|partition| partition.1);
        Ok(partitions)
    }

    /// Drops one partition by the name [`Partitions::wholly_before`] gave.
    pub(crate) async fn drop_one(&self, pool: &PgPool, name: &str) -> Result<()> {
        if self.day_of_name(name).is_none() {
            return Ok(());
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
            .execute(pool)
            .await?;
        self.forget();
        Ok(())
    }

    /// How many partitions exist.
    pub(crate) async fn count(&self, pool: &PgPool) -> Result<usize> {
        Ok(self.children(pool).await?.len())
    }

    /// Forgets which partitions exist, so that the next write checks the catalog.
    pub(crate) fn forget(&self) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Our partitions of the parent in the catalog, with their upper bounds.
    async fn children(&self, pool: &PgPool) -> Result<Vec<(String, Option<i64>)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT child.relname::text, pg_get_expr(child.relpartbound, child.oid) \
             FROM pg_inherits \
             JOIN pg_class parent ON parent.oid = pg_inherits.inhparent \
             JOIN pg_class child ON child.oid = pg_inherits.inhrelid \
             WHERE parent.relname = $1",
        )
        .bind(self.parent)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(name, _)| self.day_of_name(name).is_some())
            .map(|(name, bound)| (name, upper_bound(&bound)))
            .collect())
    }

    /// The first day of the partition holding `time`.
    fn start_day(&self, time: i64) -> i64 {
        let day = time.div_euclid(DAY_US * self.unit.per_micro());
        match self.span {
            Span::Day => day,
            Span::Month => {
                let (year, month, _) = civil_from_days(day);
                days_from_civil(year, month, 1)
            }
        }
    }

    fn next_start(&self, day: i64) -> i64 {
        match self.span {
            Span::Day => day + 1,
            Span::Month => {
                let (year, month, _) = civil_from_days(day);
                if month == 12 {
                    days_from_civil(year + 1, 1, 1)
                } else {
                    days_from_civil(year, month + 1, 1)
                }
            }
        }
    }

    fn starts(&self, first: i64, last: i64) -> impl Iterator<Item = i64> + '_ {
        std::iter::successors(Some(first), move |&day| Some(self.next_start(day)))
            .take_while(move |&day| day <= last)
    }

    fn name(&self, day: i64) -> String {
        let (year, month, date) = civil_from_days(day);
        match self.span {
            Span::Day => format!("{}_p{year:04}{month:02}{date:02}", self.parent),
            Span::Month => format!("{}_p{year:04}{month:02}", self.parent),
        }
    }

    /// The first day of a partition from its name, when the name is one of ours.
    fn day_of_name(&self, name: &str) -> Option<i64> {
        let digits = name.strip_prefix(self.parent)?.strip_prefix("_p")?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u32>().ok();
        match (self.span, digits.len()) {
            (Span::Day, 8) => Some(days_from_civil(
                i64::from(number(0..4)?),
                number(4..6)?,
                number(6..8)?,
            )),
            (Span::Month, 6) => Some(days_from_civil(i64::from(number(0..4)?), number(4..6)?, 1)),
            _ => None,
        }
    }
}

impl Store {
    /// Removes the rows of a time-partitioned table older than `before`: on PostgreSQL by
    /// dropping the partitions wholly before it, on SQLite by deleting rows.
    pub(crate) async fn expire(
        &self,
        partitions: &Partitions,
        table: &'static str,
        column: &'static str,
        before: i64,
    ) -> Result<Expired> {
        match &self.pool {
            Pool::Postgres(pool) => {
                let dropped = partitions.drop_before(pool, before).await?;
                Ok(Expired {
                    partitions_dropped: dropped.len() as u64,
                    rows_deleted: 0,
                })
            }
            Pool::Sqlite(pool) => {
                let _writer = self.write_lock.lock().await;
                // Table and column are our constants, never input.
                let delete = format!("DELETE FROM {table} WHERE {column} < $1");
                let deleted = sqlx::query(sqlx::AssertSqlSafe(delete))
                    .bind(before)
                    .execute(pool)
                    .await?
                    .rows_affected();
                Ok(Expired {
                    partitions_dropped: 0,
                    rows_deleted: deleted,
                })
            }
        }
    }
}

/// The upper bound of `FOR VALUES FROM ('a') TO ('b')`.
fn upper_bound(bound: &str) -> Option<i64> {
    let upper = bound.split(" TO (").nth(1)?;
    upper
        .trim_matches(|c: char| !c.is_ascii_digit() && c != '-')
        .parse()
        .ok()
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a Gregorian date (the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bounds_follow_utc_days_and_months() {
        let days = Partitions::new("metric_points", Span::Day, TimeUnit::Micros);
        assert_eq!(days.name(0), "metric_points_p19700101");
        // 2026-11-25 is day 20782 since the epoch.
        assert_eq!(days.name(20_782), "metric_points_p20261125");
        assert_eq!(days.name(-1), "metric_points_p19691231");
        assert_eq!(days.day_of_name("metric_points_p20261125"), Some(20_782));
        assert_eq!(days.day_of_name("metric_points_p2026112; DROP"), None);
        assert_eq!(days.day_of_name("metric_points_old"), None);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for day in [-800_000, -1, 0, 11_016, 20_782, 2_000_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }

        let months = Partitions::new("security_events_high", Span::Month, TimeUnit::Nanos);
        let nov_25 = 20_782 * DAY_US * 1_000;
        let nov_1 = days_from_civil(2026, 11, 1);
        assert_eq!(months.start_day(nov_25), nov_1);
        assert_eq!(months.name(nov_1), "security_events_high_p202611");
        assert_eq!(months.next_start(nov_1), days_from_civil(2026, 12, 1));
        assert_eq!(
            months.next_start(days_from_civil(2026, 12, 1)),
            days_from_civil(2027, 1, 1)
        );
        let covered: Vec<i64> = months
            .starts(nov_1, months.start_day(nov_25 + 70 * DAY_US * 1_000))
            .collect();
        // November, December, January, February.
        assert_eq!(covered.len(), 4);
        assert_eq!(
            upper_bound("FOR VALUES FROM ('1795564800000000') TO ('1795651200000000')"),
            Some(1_795_651_200_000_000)
        );
    }
}
