//! [`Store`]: a connection pool to PostgreSQL or SQLite chosen by the URL,
//! migrations for each backend, a round-trip probe for health checks, and
//! PostgreSQL notifications for the services that push changes to replicas.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::notifications::Notifications;
use pharos_clock::Clock;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::settings::StoreSettings;
use crate::error::{Result, StoreError};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs the same expression on whichever pool the store holds; the SQL in
/// `$body` must be valid on both backends.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::backend::store::Pool::Postgres($pool) => $body,
            $crate::backend::store::Pool::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A handle to the database and the clock its timestamps come from; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// On PostgreSQL, the pool the query service's reads of points run on (see
    /// [`connect_metric_reads`]); `None` on SQLite.
    pub(crate) metric_reads: Option<PgPool>,
    /// Where `changed_at`, `created_at` and `committed_us` come from, and what services read
    /// "now" from; the system clock unless [`Store::with_clock`] replaced it.
    clock: Clock,
    /// Serialises this process's write transactions: SQLite allows one writer,
    /// and on PostgreSQL writers queue on the revision row anyway, so waiting
    /// here keeps pool connections free for readers.
    pub(crate) write_lock: Arc<tokio::sync::Mutex<()>>,
}

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl Store {
    /// Connects to `settings.url` with the system clock; the pool is ready but the schema may
    /// not be (see [`Store::migrate`]).
    pub async fn connect(settings: &StoreSettings) -> Result<Store> {
        let url = settings.url.as_str();
        let mut metric_reads = None;
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .min_connections(settings.min_connections)
                .acquire_timeout(settings.acquire_timeout)
                .idle_timeout(Some(settings.idle_timeout))
                .max_lifetime(Some(settings.max_lifetime))
                .test_before_acquire(settings.test_before_acquire);
            // A statement whose client went away (a read abandoned by a timed-out query closes
            // its connection) is stopped by the server within this interval, not run to its end.
            let connect = PgConnectOptions::from_str(url)?.options([(
                "client_connection_check_interval",
                crate::signals::metrics::CLIENT_CHECK_MS,
            )]);
            metric_reads = Some(connect_metric_reads(settings, connect.clone()));
            Pool::Postgres(options.connect_with(connect).await?)
        } else if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            if let Some(parent) = connect.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::DataDir {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            let options = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .min_connections(settings.min_connections)
                .acquire_timeout(settings.acquire_timeout)
                .idle_timeout(Some(settings.idle_timeout))
                .max_lifetime(Some(settings.max_lifetime))
                .test_before_acquire(settings.test_before_acquire);
            Pool::Sqlite(options.connect_with(connect).await?)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Store {
            pool,
            metric_reads,
            clock: Clock::system(),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The PostgreSQL pool reads of points run on: [`connect_metric_reads`]' pool.
    pub(crate) fn metric_read_pool<'a>(&'a self, pool: &'a PgPool) -> &'a PgPool {
        self.metric_reads.as_ref().unwrap_or(pool)
    }

    /// The same store with its timestamps taken from `clock` (a test's manual clock).
    pub fn with_clock(self, clock: Clock) -> Store {
        Store { clock, ..self }
    }

    /// The clock this store stamps its rows with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// One `SELECT 1` round trip, timed.
    pub async fn ping(&self) -> Result<Duration> {
        let start = tokio::time::Instant::now();
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))?;
        Ok(start.elapsed())
    }

    /// Connections open and idle in the pool.
    pub fn pool_stats(&self) -> (u32, usize) {
        with_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// Listens on PostgreSQL NOTIFY `channel`; `None` on SQLite, where one
    /// process owns the file and changes travel in memory.
    pub async fn notifications(&self, channel: &str) -> Result<Option<Notifications>> {
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(channel).await?;
                Ok(Some(Notifications::new(listener)))
            }
            Pool::Sqlite(_) => Ok(None),
        }
    }

    /// Prunes a change log: `statements.prunable` finds the newest revision changed before
    /// `before_micros`, `prune` deletes up to it and `set_compacted` records it. Returns the new
    /// compacted revision, if anything was pruned.
    pub(crate) async fn compact_log(
        &self,
        statements: &ChangeLogCompaction,
        before_micros: i64,
    ) -> Result<Option<i64>> {
        let _writer = self.write_lock.lock().await;
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let prunable: Option<i64> = sqlx::query_scalar(statements.prunable)
                .bind(before_micros)
                .fetch_one(&mut *tx)
                .await?;
            let Some(upto) = prunable else {
                return Ok(None);
            };
            sqlx::query(statements.prune)
                .bind(upto)
                .execute(&mut *tx)
                .await?;
            sqlx::query(statements.set_compacted)
                .bind(upto)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(upto))
        })
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}

/// What every repository offers beside its domain operations, for code generic over
/// repositories: the store it works on, and so the clock its rows are stamped with. Every
/// repository is had from an accessor of [`Store`] (`store.config()`, `store.metrics()`, ...).
pub trait Repository {
    fn store(&self) -> &Store;

    /// The store's clock.
    fn clock(&self) -> &Clock {
        self.store().clock()
    }
}

/// Gives a repository (a struct with a `store: Store` field) its `store()` method and its
/// [`Repository`] implementation.
macro_rules! repository {
    ($repository:ty) => {
        impl $repository {
            /// The store this repository works on.
            pub fn store(&self) -> &$crate::Store {
                &self.store
            }
        }

        impl $crate::backend::Repository for $repository {
            fn store(&self) -> &$crate::Store {
                &self.store
            }
        }
    };
}
pub(crate) use repository;

/// The statements that prune one change log (see [`Store::compact_log`]).
pub(crate) struct ChangeLogCompaction {
    pub prunable: &'static str,
    pub prune: &'static str,
    pub set_compacted: &'static str,
}

/// The `application_name` of the pool of reads' connections, as `pg_stat_activity` shows them.
pub const METRIC_READS_APPLICATION: &str = "pharos-reads";

/// The pool of the query service's reads of points (`points_of_series`,
/// `latest_points_of_series`), beside the main pool (`max_read_connections`, at least one),
/// connected as reads need it: its connections plan those statements once each, generic plans
/// whose partitions PostgreSQL prunes as each run starts (planning them for their parameters,
/// over a month of daily partitions, took longer than running them: 0.6 ms of a 1 ms read of
/// one series), and plan them as they connect, so that no query waits for that first plan
/// (8 ms). Dashboard reads do not take the connections writes need, nor the other way round.
/// `connect`: where and how to connect (the store passes its main pool's options); the
/// benchmark's SQL floor reads on such a pool too.
pub fn connect_metric_reads(settings: &StoreSettings, connect: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_read_connections.max(1))
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(Some(settings.idle_timeout))
        .max_lifetime(Some(settings.max_lifetime))
        .test_before_acquire(settings.test_before_acquire)
        .after_connect(|connection, _| {
            Box::pin(async move { crate::signals::metrics::prepare_reads(connection).await })
        })
        .connect_lazy_with(
            connect
                .application_name(METRIC_READS_APPLICATION)
                .options([("plan_cache_mode", "force_generic_plan")]),
        )
}
