//! One real Pharos server for the integration tests of every service crate, started exactly as
//! `pharos serve` starts one: the given modules through a [`Registry`], with a [`Base`] (store,
//! clock, shutdown, server settings, data directory) and [`Mounts`], the gRPC server on
//! `127.0.0.1:0` and the HTTP listener (`/health`, `/ready`, `/metrics` and the modules' routes)
//! on `127.0.0.1:0`; and stopped as `serve` stops it ([`TestServer::stop`]), so that a server
//! started again on the same store and directories works at once.
//!
//! ```text
//! let module = ConfigModule::new(ConfigSettings::default());
//! let server = TestServer::builder(store)
//!     .module(module.clone())
//!     .start()
//!     .await
//!     .with_service(module.service().expect("started"));
//! // ... talk to server.endpoint(), read server.service ...
//! server.stop().await;
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pharos_api::module::{Base, Module, Mounts, Registry, StartError, Stopped, Target};
use pharos_clock::Clock;
use pharos_runtime::{ServerSettings, Shutdown};
use pharos_store::Store;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long past the grace period [`TestServer::stop`] waits for the gRPC server before it
/// fails the test: the server bounds itself by the grace period, this covers a slow machine.
const STOP_SLACK: Duration = Duration::from_secs(5);

/// What a [`TestServer`] starts: its modules and the [`Base`] they get.
pub struct TestServerBuilder {
    store: Store,
    registry: Registry,
    targets: Vec<Target>,
    clock: Clock,
    server: ServerSettings,
    data_dir: Option<PathBuf>,
}

impl TestServerBuilder {
    /// Adds a module and runs its target. Several modules start in the order their needs give,
    /// as with `--target all`: a config module serves the ingest module of the same server.
    pub fn module(mut self, module: impl Module + 'static) -> Self {
        self.targets.push(module.target());
        self.registry.register(module);
        self
    }

    /// The clock the modules get; [`Clock::system`] unless set.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The server settings (auth tokens, limits, TLS); the defaults unless set.
    pub fn server(mut self, settings: ServerSettings) -> Self {
        self.server = settings;
        self
    }

    /// The data directory; unless set, a temporary directory the server owns and removes once
    /// stopped or dropped.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Starts the modules and the servers, failing the test when a module cannot start.
    pub async fn start(self) -> TestServer {
        match self.try_start().await {
            Ok(server) => server,
            Err(error) => panic!("the test server cannot start: {error}"),
        }
    }

    /// Starts the modules and the servers. When a module fails, the ones started before it are
    /// stopped (as `serve` does) and the error is returned.
    pub async fn try_start(self) -> Result<TestServer, StartError> {
        let owned_dir = match self.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("a temporary data directory")),
        };
        let data_dir = match (&self.data_dir, &owned_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(owned)) => owned.path().to_path_buf(),
            (None, None) => unreachable!("a data directory is given or owned"),
        };
        let shutdown = Shutdown::new();
        let mut mounts = Mounts::new(self.server.clone());

        let base = Base {
            store: self.store.clone(),
            clock: self.clock.clone(),
            shutdown: shutdown.clone(),
            server: self.server.clone(),
            data_dir: data_dir.clone(),
        };
        let grace = self.server.limits.shutdown_grace;
        if let Err(error) = self.registry.start(&self.targets, &base, &mut mounts).await {
            mounts.stop_hooks.stop(&shutdown, grace).await;
            return Err(error);
        }

        let grpc_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gRPC listener");
        let http_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the HTTP listener");
        let addr = grpc_listener.local_addr().expect("gRPC address");
        let http_addr = http_listener.local_addr().expect("HTTP address");
        let served =
            tokio::spawn(mounts.serve(grpc_listener, http_listener, shutdown.clone(), grace));
        Ok(TestServer {
            service: (),
            addr,
            http_addr,
            store: self.store,
            clock: self.clock,
            shutdown,
            settings: self.server,
            data_dir,
            running: Some(Running {
                served,
                _owned_dir: owned_dir,
            }),
        })
    }
}

/// A running server: what `serve` keeps until it stops.
struct Running {
    /// The servers, then the stop, as `Mounts::serve` runs them.
    served: JoinHandle<Stopped>,
    /// Removed once the server has stopped.
    _owned_dir: Option<TempDir>,
}

/// A real server on `127.0.0.1:0`, with `service`: what the test reads of the service it
/// started (`()` until [`TestServer::with_service`] sets it). Dropping it triggers the shutdown
/// without waiting for anything; [`TestServer::stop`] stops it as `serve` does.
pub struct TestServer<S = ()> {
    /// The service object the test reads (like `server.service.settings()`).
    pub service: S,
    /// The gRPC listener.
    pub addr: SocketAddr,
    /// The HTTP listener (`/health`, `/ready`, `/metrics`).
    pub http_addr: SocketAddr,
    /// The store the modules got; the caller's, so it stays open after the server stops.
    pub store: Store,
    pub clock: Clock,
    pub shutdown: Shutdown,
    pub settings: ServerSettings,
    pub data_dir: PathBuf,
    running: Option<Running>,
}

impl TestServer {
    /// A server on `store` with no modules yet.
    pub fn builder(store: Store) -> TestServerBuilder {
        TestServerBuilder {
            store,
            registry: Registry::new(),
            targets: Vec::new(),
            clock: Clock::system(),
            server: ServerSettings::default(),
            data_dir: None,
        }
    }
}

impl<S> TestServer<S> {
    /// This server, carrying `service` for the test to read (typically what a module's
    /// `service()` handed out).
    pub fn with_service<T>(mut self, service: T) -> TestServer<T> {
        TestServer {
            service,
            addr: self.addr,
            http_addr: self.http_addr,
            store: self.store.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.clone(),
            settings: self.settings.clone(),
            data_dir: self.data_dir.clone(),
            running: self.running.take(),
        }
    }

    /// The gRPC endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on the HTTP listener.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// `GET /health`: every component with its status and figures.
    pub async fn health(&self) -> serde_json::Value {
        reqwest::get(self.http_url("/health"))
            .await
            .expect("GET /health")
            .json()
            .await
            .expect("/health is JSON")
    }

    /// Stops as `pharos serve` does: triggers the shutdown, waits for the gRPC server (which
    /// lets in-flight calls finish within the grace period) and the HTTP listener, runs the
    /// modules' stop hooks (the last started first), then waits until every background task
    /// has ended. Fails the test when any of that does not happen within the grace period.
    /// The store stays open: it is the caller's.
    pub async fn stop(mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.shutdown.trigger();
        let grace = self.settings.limits.shutdown_grace;
        // The gRPC server drains within the grace period, then the background tasks get it
        // again.
        let stopped = tokio::time::timeout(2 * grace + STOP_SLACK, running.served)
            .await
            .expect("the server stops within the grace periods")
            .expect("the server task");
        stopped.grpc.expect("the gRPC server ran without error");
        stopped.http.expect("the HTTP listener ran without error");
        assert!(
            stopped.drained,
            "every background task ends within the grace period"
        );
    }
}

impl<S> Drop for TestServer<S> {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.shutdown.trigger();
        }
    }
}
