//! Throwaway databases for tests: a fresh SQLite file, or a fresh PostgreSQL
//! database created on the server named by `PHAROS_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped again
//! when the handle goes away. Without a reachable server the PostgreSQL half
//! of a suite is skipped with a printed reason, except under `CI=true`,
//! where it fails instead.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::{Store, StoreSettings};

/// The server test databases are created on.
pub const DEFAULT_TEST_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDatabase {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => panic!("cannot create a temporary directory: {error}"),
        };
        let url = format!("sqlite:{}", dir.path().join("pharos.db").display());
        TestDatabase {
            url,
            admin_url: None,
            name: None,
            _dir: Some(dir),
        }
    }

    /// A new, empty PostgreSQL database, or `None` (with the reason printed)
    /// when no server is reachable outside CI.
    pub async fn postgres() -> Option<TestDatabase> {
        let admin_url = std::env::var("PHAROS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_SERVER.to_string());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(connection) => connection,
            Err(error) => {
                if std::env::var("CI").is_ok_and(|value| value == "true") {
                    panic!(
                        "PostgreSQL at {admin_url} is unreachable under CI=true: {error}; start it (cargo xtask pg start) or set PHAROS_TEST_DATABASE_URL"
                    );
                }
                eprintln!(
                    "skipping the PostgreSQL part of this test: {admin_url} is unreachable ({error}); run `cargo xtask pg start` or set PHAROS_TEST_DATABASE_URL"
                );
                return None;
            }
        };
        let name = format!(
            "pharos_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            pharos_clock::Clock::system().now_micros() % 1_000_000
        );
        let create = format!("CREATE DATABASE {name}");
        if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut admin)
            .await
        {
            panic!("cannot create the test database {name}: {error}");
        }
        let _ = admin.close().await;
        let url = database_url(&admin_url, &name);
        Some(TestDatabase {
            url,
            admin_url: Some(admin_url),
            name: Some(name),
            _dir: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the server's maintenance database (PostgreSQL; empty on SQLite).
    pub fn admin_url(&self) -> &str {
        self.admin_url.as_deref().unwrap_or_default()
    }

    /// The name of this test's database (PostgreSQL; empty on SQLite).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// Store settings pointing at this database.
    pub fn settings(&self) -> StoreSettings {
        StoreSettings {
            url: self.url.clone(),
            max_connections: 8,
            min_connections: 0,
            ..StoreSettings::default()
        }
    }

    /// A connected, migrated store whose rows are stamped by `clock` (a manual clock, to test
    /// retention, rollups or compaction without waiting).
    pub async fn store_with_clock(&self, clock: pharos_clock::Clock) -> Store {
        self.store().await.with_clock(clock)
    }

    /// A connected, migrated store on the system clock.
    pub async fn store(&self) -> Store {
        let store = match Store::connect(&self.settings()).await {
            Ok(store) => store,
            Err(error) => panic!("cannot connect to {}: {error}", self.url),
        };
        if let Err(error) = store.migrate().await {
            panic!("cannot migrate {}: {error}", self.url);
        }
        store
    }
}

/// `server_url` with its database name replaced by `name`.
fn database_url(server_url: &str, name: &str) -> String {
    let host_start = server_url.find("://").map_or(0, |at| at + 3);
    let (base, rest) = match server_url[host_start..].find('/') {
        Some(slash) => server_url.split_at(host_start + slash),
        None => (server_url, ""),
    };
    let query = rest.find('?').map_or("", |at| &rest[at..]);
    format!("{base}/{name}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Some(admin_url), Some(name)) = (self.admin_url.take(), self.name.take()) else {
            return;
        };
        // Drop runs outside any runtime guarantee, so use a private one.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                    .execute(&mut admin)
                    .await
                    .ok()?;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop a test database; it is named pharos_test_*");
        }
    }
}

/// Declares each listed test once per backend, as `sqlite::<name>` and `postgres::<name>`: the
/// test is an `async fn <name>(database: &TestDatabase)` beside the macro call. The PostgreSQL one
/// is skipped (with the reason printed) when no server is reachable, except under `CI=true`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = $crate::testing::TestDatabase::sqlite();
                    super::$name(&database).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(database) = $crate::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$name(&database).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::database_url("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(super::database_url("postgres://h", "t2"), "postgres://h/t2");
    }
}
