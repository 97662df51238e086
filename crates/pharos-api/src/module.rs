//! The module registry, after Loki's module manager: each service registers one [`Module`]
//! that declares its [`Target`], the interfaces it serves to other services in the same
//! process ([`Interface`]) and the ones it needs ([`Need`]), and how it starts: what it mounts
//! on the process's gRPC server, `/health` and HTTP listener, and what it does when the
//! process stops. [`Registry::start`] resolves a target list to modules, orders them so that
//! every provider starts before the modules that use it, hands each need the local provider
//! or a lazily connected remote client, and starts them. Adding a service is one
//! registration in `pharos`'s `modules.rs`, never a new branch in `serve`. The registry also
//! registers the process-wide `/health` components (database, process memory, disk), so that a
//! test server started through it reports what `pharos serve` reports.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use pharos_clock::Clock;
use pharos_runtime::health::{
    BoxFuture, ComponentHealth, FreeDiskCheck, HealthCheck, HealthRegistry, ProcessMemoryCheck,
};
use pharos_runtime::server::{GrpcServer, ServeError};
use pharos_runtime::{ServerSettings, Shutdown};
use pharos_store::Store;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;

use crate::client::{ClientSettings, ConnectError};
use crate::config::{ConfigApi, RemoteConfig};
use crate::feed::{FeedApi, RemoteFeed};
use crate::ingest::{IngestApi, RemoteIngest};
use crate::query::{QueryApi, RemoteQuery};

/// Any error a module's start may fail with; the registry names the target in front of it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One target of `pharos serve --target`: `all`, or one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    All,
    Config,
    Ingest,
    Query,
    Search,
    Alert,
}

impl Target {
    /// Every target, in the order listings show them.
    pub const ALL: [Target; 6] = [
        Target::All,
        Target::Config,
        Target::Ingest,
        Target::Query,
        Target::Search,
        Target::Alert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::All => "all",
            Target::Config => "config",
            Target::Ingest => "ingest",
            Target::Query => "query",
            Target::Search => "search",
            Target::Alert => "alert",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .iter()
            .copied()
            .find(|target| target.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| TargetError::Unknown {
                name: text.to_string(),
                targets: Target::ALL
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// Why a target list cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target {name:?}; targets are: {targets}")]
    Unknown { name: String, targets: String },
    #[error(
        "target `{target}` is not built yet in this version of Pharos; targets available now: {built}"
    )]
    NotBuilt { target: Target, built: String },
    #[error("no target given; targets available now: {built}")]
    Empty { built: String },
}

/// What a module can serve to the other modules of its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interface {
    /// [`ConfigApi`]: values, watches (live settings).
    Config,
    /// [`FeedApi`]: ingest's committed-data feed.
    Feed,
    /// [`IngestApi`]: writing metric points through ingest.
    Ingest,
    /// [`QueryApi`]: PromQL over the stored metrics.
    Query,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interface::Config => "the config service",
            Interface::Feed => "the ingest feed",
            Interface::Ingest => "the ingest service",
            Interface::Query => "the query service",
        })
    }
}

/// An interface a module uses: from the module of this process that provides it, else from
/// `remote` (another process), else absent: an error at start when `required`, otherwise the
/// module runs without it (and says so).
#[derive(Debug, Clone)]
pub struct Need {
    pub interface: Interface,
    pub required: bool,
    /// Where the interface is when no module of this process provides it.
    pub remote: Option<ClientSettings>,
    /// The setting that holds `remote`, for messages (like `ingest.config_endpoint`).
    pub remote_setting: &'static str,
}

impl Need {
    /// The module works without `interface`, with less (live settings off, say).
    pub fn optional(interface: Interface, remote_setting: &'static str) -> Self {
        Self {
            interface,
            required: false,
            remote: None,
            remote_setting,
        }
    }

    /// The module cannot start without `interface`.
    pub fn required(interface: Interface, remote_setting: &'static str) -> Self {
        Self {
            required: true,
            ..Self::optional(interface, remote_setting)
        }
    }

    /// Where to reach the interface when it is not in this process (ignored when `remote`'s
    /// endpoint is empty).
    pub fn or_remote(mut self, remote: ClientSettings) -> Self {
        self.remote = remote.is_set().then_some(remote);
        self
    }
}

/// An interface handed to a module, and where it lives (for `/health` and the logs).
pub struct Resolved<T: ?Sized> {
    pub api: Arc<T>,
    /// `in-process`, or the remote endpoint.
    pub source: String,
}

impl<T: ?Sized> Clone for Resolved<T> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            source: self.source.clone(),
        }
    }
}

/// The interfaces modules serve or were handed.
#[derive(Default)]
struct Interfaces {
    config: Option<Resolved<dyn ConfigApi>>,
    feed: Option<Resolved<dyn FeedApi>>,
    ingest: Option<Resolved<dyn IngestApi>>,
    query: Option<Resolved<dyn QueryApi>>,
}

type StopHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What the started modules mount on the process: its one gRPC server, `/health`, extra HTTP
/// routes, and the hooks run once the servers have drained.
pub struct Mounts {
    pub grpc: GrpcServer,
    pub health: HealthRegistry,
    pub http_routes: axum::Router,
    pub stop_hooks: StopHooks,
}

impl Mounts {
    pub fn new(server: ServerSettings) -> Self {
        Self {
            grpc: GrpcServer::new(server),
            health: HealthRegistry::new(),
            http_routes: axum::Router::new(),
            stop_hooks: StopHooks::default(),
        }
    }

    /// Serves what the modules mounted, gRPC on `grpc_listener` and `/metrics`, `/health`,
    /// `/ready` and the modules' routes on `http_listener`, until `shutdown` fires; then stops
    /// as a process stops: the gRPC server drains (in-flight calls get the grace period), the
    /// HTTP listener closes, the stop hooks run and the background tasks are waited for (up to
    /// `grace`). `pharos serve` and the test server both stop through here.
    pub async fn serve(
        self,
        grpc_listener: TcpListener,
        http_listener: TcpListener,
        shutdown: Shutdown,
        grace: Duration,
    ) -> Stopped {
        // The services' routes obey the server's bearer tokens; a bad token set stops the gRPC
        // server below with the error, so here it only leaves the routes as they are.
        let routes = match pharos_runtime::auth::TokenSet::load(&self.grpc.settings().auth) {
            Ok(Some(tokens)) => pharos_runtime::http::require_bearer(self.http_routes, tokens),
            _ => self.http_routes,
        };
        let router = pharos_runtime::http::router(self.health, shutdown.clone()).merge(routes);
        let http = tokio::spawn(pharos_runtime::http::serve(
            http_listener,
            router,
            shutdown.clone(),
        ));
        let grpc = self.grpc.serve(grpc_listener, shutdown.clone()).await;
        shutdown.trigger();
        let http = match http.await {
            Ok(served) => served,
            Err(failed) => Err(std::io::Error::other(failed)),
        };
        let drained = self.stop_hooks.stop(&shutdown, grace).await;
        Stopped {
            grpc,
            http,
            drained,
        }
    }
}

/// How the servers and modules of a process stopped.
#[derive(Debug)]
pub struct Stopped {
    pub grpc: Result<(), ServeError>,
    pub http: std::io::Result<()>,
    /// Every background task ended within the grace period.
    pub drained: bool,
}

/// What the started modules do once the servers have drained.
#[derive(Default)]
pub struct StopHooks {
    hooks: Vec<(Target, StopHook)>,
}

impl StopHooks {
    /// Fires the shutdown, runs the hooks (the last started module's first), then waits up to
    /// `grace` for every background task; `false`, with a warning, when some still run.
    pub async fn stop(mut self, shutdown: &Shutdown, grace: Duration) -> bool {
        shutdown.trigger();
        while let Some((target, hook)) = self.hooks.pop() {
            tracing::debug!(%target, "stopping");
            hook().await;
        }
        let drained = tokio::time::timeout(grace, shutdown.wait_drained())
            .await
            .is_ok();
        if !drained {
            tracing::warn!(
                ?grace,
                tasks = shutdown.running_tasks(),
                "background tasks still running after the grace period"
            );
        }
        drained
    }
}

/// What a module gets to start with, and where it puts what it serves.
pub struct ModuleContext<'a> {
    pub store: Store,
    pub clock: Clock,
    pub shutdown: Shutdown,
    pub server: ServerSettings,
    /// The process's data directory (snapshots, the SQLite file).
    pub data_dir: PathBuf,
    target: Target,
    /// What this module declared it needs, resolved.
    handed: Interfaces,
    /// What the modules of this process serve to the ones started after them.
    provided: &'a mut Interfaces,
    mounts: &'a mut Mounts,
}

impl ModuleContext<'_> {
    /// The config service, if this module declared the need and it is reachable.
    pub fn config(&self) -> Option<Resolved<dyn ConfigApi>> {
        self.handed.config.clone()
    }

    /// Ingest's feed, if this module declared the need and it is reachable.
    pub fn feed(&self) -> Option<Resolved<dyn FeedApi>> {
        self.handed.feed.clone()
    }

    /// The ingest service's writes, if this module declared the need and it is reachable.
    pub fn ingest(&self) -> Option<Resolved<dyn IngestApi>> {
        self.handed.ingest.clone()
    }

    /// The query service, if this module declared the need and it is reachable.
    pub fn query(&self) -> Option<Resolved<dyn QueryApi>> {
        self.handed.query.clone()
    }

    /// Serves the ingest interface to the modules that start after this one.
    pub fn provide_ingest(&mut self, api: Arc<dyn IngestApi>) {
        self.provided.ingest = Some(local(api));
    }

    /// Serves the query interface to the modules that start after this one.
    pub fn provide_query(&mut self, api: Arc<dyn QueryApi>) {
        self.provided.query = Some(local(api));
    }

    /// Serves the config interface to the modules that start after this one.
    pub fn provide_config(&mut self, api: Arc<dyn ConfigApi>) {
        self.provided.config = Some(local(api));
    }

    /// Serves the feed interface to the modules that start after this one.
    pub fn provide_feed(&mut self, api: Arc<dyn FeedApi>) {
        self.provided.feed = Some(local(api));
    }

    /// The largest gRPC message this process accepts or sends.
    pub fn max_message_bytes(&self) -> usize {
        self.server.limits.max_message_bytes
    }

    /// Mounts a tonic service on the process's gRPC listener.
    pub fn serve_grpc<S>(&mut self, service: S)
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.mounts.grpc.add_service(service);
    }

    /// Registers an encoded `FileDescriptorSet` for server reflection.
    pub fn describe_grpc(&mut self, encoded: &'static [u8]) {
        self.mounts.grpc.add_descriptor_set(encoded);
    }

    /// Adds a `/health` component.
    pub fn add_health_check(&mut self, check: Arc<dyn HealthCheck>) {
        self.mounts.health.register(check);
    }

    /// Merges routes into the process's HTTP listener (beside `/metrics`, `/health`, `/ready`).
    pub fn serve_http(&mut self, routes: axum::Router) {
        let current = std::mem::take(&mut self.mounts.http_routes);
        self.mounts.http_routes = current.merge(routes);
    }

    /// Runs `hook` once the servers have drained, before the store closes; hooks run in the
    /// reverse order of the modules' start.
    pub fn on_stop<F, Fut>(&mut self, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.mounts
            .stop_hooks
            .hooks
            .push((self.target, Box::new(move || Box::pin(hook()))));
    }
}

fn local<T: ?Sized>(api: Arc<T>) -> Resolved<T> {
    Resolved {
        api,
        source: "in-process".to_string(),
    }
}

/// The service a module started, shared by the module's clones: the registry owns the
/// registered module, so whoever needs the service itself (a test reading its state, an
/// embedder) registers a clone and asks it. Holds the first service started.
pub struct StartedService<T>(Arc<std::sync::OnceLock<Arc<T>>>);

impl<T> StartedService<T> {
    /// Records `service` as started (a later start of a clone keeps the first).
    pub fn record(&self, service: &Arc<T>) {
        let _ = self.0.set(service.clone());
    }

    /// The service, once started.
    pub fn get(&self) -> Option<Arc<T>> {
        self.0.get().cloned()
    }
}

impl<T> Default for StartedService<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Clone for StartedService<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> fmt::Debug for StartedService<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "started"
        } else {
            "not started"
        })
    }
}

/// One service, as the registry sees it.
#[async_trait::async_trait]
pub trait Module: Send + Sync {
    /// The target that runs this module.
    fn target(&self) -> Target;

    /// The interfaces this module serves to the modules started after it.
    fn provides(&self) -> &'static [Interface] {
        &[]
    }

    /// The interfaces this module uses.
    fn needs(&self) -> Vec<Need> {
        Vec::new()
    }

    /// Starts the service: spawns its tasks through `context.shutdown`, mounts what it serves,
    /// provides what it declared, and registers its stop hook.
    async fn start(&self, context: &mut ModuleContext<'_>) -> Result<(), BoxError>;
}

/// Why the modules could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("target `{target}` needs {interface}: run its target in this process or set {setting}")]
    Missing {
        target: Target,
        interface: Interface,
        setting: &'static str,
    },
    #[error("target `{target}`: cannot use {interface} at {setting}: {source}")]
    Remote {
        target: Target,
        interface: Interface,
        setting: &'static str,
        source: ConnectError,
    },
    #[error("the modules' needs form a cycle: {0}")]
    Cycle(String),
    #[error("cannot start the {target} service: {source}")]
    Module { target: Target, source: BoxError },
}

/// What every module starts with.
#[derive(Clone)]
pub struct Base {
    pub store: Store,
    pub clock: Clock,
    pub shutdown: Shutdown,
    pub server: ServerSettings,
    pub data_dir: PathBuf,
}

/// Every service this build of Pharos has, one module each.
#[derive(Default)]
pub struct Registry {
    modules: Vec<Box<dyn Module>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a service's module.
    pub fn register(&mut self, module: impl Module + 'static) -> &mut Self {
        self.modules.push(Box::new(module));
        self
    }

    /// Whether this build runs `target`.
    pub fn is_built(&self, target: Target) -> bool {
        target == Target::All || self.modules.iter().any(|module| module.target() == target)
    }

    /// The targets this build runs, comma-separated.
    pub fn built_listing(&self) -> String {
        Target::ALL
            .iter()
            .filter(|target| self.is_built(**target))
            .map(|target| target.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every target, with those not built marked.
    pub fn listing(&self) -> Vec<(Target, bool)> {
        Target::ALL
            .iter()
            .map(|target| (*target, self.is_built(*target)))
            .collect()
    }

    /// The targets a list runs (`all` stands for every built one), refusing those not built.
    pub fn resolve(&self, targets: &[Target]) -> Result<BTreeSet<Target>, TargetError> {
        let mut resolved = BTreeSet::new();
        for &target in targets {
            if !self.is_built(target) {
                return Err(TargetError::NotBuilt {
                    target,
                    built: self.built_listing(),
                });
            }
            if target == Target::All {
                resolved.extend(self.modules.iter().map(|module| module.target()));
            } else {
                resolved.insert(target);
            }
        }
        if resolved.is_empty() {
            return Err(TargetError::Empty {
                built: self.built_listing(),
            });
        }
        Ok(resolved)
    }

    /// The modules of `targets` in start order: a module that provides an interface starts
    /// before every module of the process that needs it; otherwise in target order.
    fn ordered(&self, targets: &BTreeSet<Target>) -> Result<Vec<&dyn Module>, StartError> {
        let mut waiting: Vec<&dyn Module> = self
            .modules
            .iter()
            .map(|module| module.as_ref())
            .filter(|module| targets.contains(&module.target()))
            .collect();
        waiting.sort_by_key(|module| module.target());
        let mut ordered = Vec::with_capacity(waiting.len());
        while !waiting.is_empty() {
            let ready = waiting.iter().position(|module| {
                module.needs().iter().all(|need| {
                    !waiting.iter().any(|other| {
                        other.target() != module.target()
                            && other.provides().contains(&need.interface)
                    })
                })
            });
            match ready {
                Some(index) => ordered.push(waiting.remove(index)),
                None => {
                    let names: Vec<&str> = waiting.iter().map(|m| m.target().name()).collect();
                    return Err(StartError::Cycle(names.join(", ")));
                }
            }
        }
        Ok(ordered)
    }

    /// Starts the modules of `targets` in dependency order, mounting what they serve on
    /// `mounts`. On an error the modules started so far are stopped by the caller through
    /// [`StopHooks::stop`].
    pub async fn start(
        &self,
        targets: &[Target],
        base: &Base,
        mounts: &mut Mounts,
    ) -> Result<BTreeSet<Target>, StartError> {
        let targets = self.resolve(targets)?;
        mounts
            .health
            .register(Arc::new(DatabaseCheck(base.store.clone())));
        mounts.health.register(Arc::new(ProcessMemoryCheck::new()));
        mounts
            .health
            .register(Arc::new(FreeDiskCheck::new(base.data_dir.clone())));
        let mut provided = Interfaces::default();
        for module in self.ordered(&targets)? {
            let target = module.target();
            let mut handed = Interfaces::default();
            for need in module.needs() {
                resolve_need(target, &need, &provided, &mut handed)?;
            }
            let mut context = ModuleContext {
                // One clock for the process: the store stamps rows with the modules' clock.
                store: base.store.clone().with_clock(base.clock.clone()),
                clock: base.clock.clone(),
                shutdown: base.shutdown.clone(),
                server: base.server.clone(),
                data_dir: base.data_dir.clone(),
                target,
                handed,
                provided: &mut provided,
                mounts,
            };
            module
                .start(&mut context)
                .await
                .map_err(|source| StartError::Module { target, source })?;
            for interface in module.provides() {
                let served = match interface {
                    Interface::Config => provided.config.is_some(),
                    Interface::Feed => provided.feed.is_some(),
                    Interface::Ingest => provided.ingest.is_some(),
                    Interface::Query => provided.query.is_some(),
                };
                if !served {
                    return Err(StartError::Module {
                        target,
                        source: format!("declared that it provides {interface} but did not").into(),
                    });
                }
            }
            tracing::info!(%target, "started");
        }
        Ok(targets)
    }
}

/// Hands `need` to a module: the provider of this process, else a lazy remote client, else
/// nothing (an error when required).
fn resolve_need(
    target: Target,
    need: &Need,
    provided: &Interfaces,
    handed: &mut Interfaces,
) -> Result<(), StartError> {
    let remote_error = |source| StartError::Remote {
        target,
        interface: need.interface,
        setting: need.remote_setting,
        source,
    };
    let found = match need.interface {
        Interface::Config => {
            handed.config =
                choose(&provided.config, need, RemoteConfig::lazy).map_err(remote_error)?;
            handed.config.is_some()
        }
        Interface::Feed => {
            handed.feed = choose(&provided.feed, need, RemoteFeed::lazy).map_err(remote_error)?;
            handed.feed.is_some()
        }
        Interface::Ingest => {
            handed.ingest =
                choose(&provided.ingest, need, RemoteIngest::lazy).map_err(remote_error)?;
            handed.ingest.is_some()
        }
        Interface::Query => {
            handed.query =
                choose(&provided.query, need, RemoteQuery::lazy).map_err(remote_error)?;
            handed.query.is_some()
        }
    };
    if found { Ok(()) } else { absent(target, need) }
}

/// The provider of this process when there is one, else a lazy client of `need.remote`.
fn choose<T: ?Sized>(
    local: &Option<Resolved<T>>,
    need: &Need,
    connect: fn(&ClientSettings) -> Result<Arc<T>, ConnectError>,
) -> Result<Option<Resolved<T>>, ConnectError> {
    match (local, &need.remote) {
        (Some(local), _) => Ok(Some(Resolved::clone(local))),
        (None, Some(settings)) => Ok(Some(Resolved {
            api: connect(settings)?,
            source: settings.endpoint.trim().to_string(),
        })),
        (None, None) => Ok(None),
    }
}

/// The store every service shares: its backend, a timed round trip, the pool's connections.
struct DatabaseCheck(Store);

impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &str {
        "database"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async {
            let backend = self.0.backend().name();
            let (open, idle) = self.0.pool_stats();
            match self.0.ping().await {
                Ok(elapsed) => ComponentHealth::ok(serde_json::json!({
                    "backend": backend,
                    "round_trip_ms": elapsed.as_secs_f64() * 1000.0,
                    "connections": open,
                    "idle": idle,
                })),
                Err(error) => ComponentHealth::down(serde_json::json!({
                    "backend": backend,
                    "error": error.to_string(),
                })),
            }
        })
    }
}

fn absent(target: Target, need: &Need) -> Result<(), StartError> {
    if need.required {
        return Err(StartError::Missing {
            target,
            interface: need.interface,
            setting: need.remote_setting,
        });
    }
    tracing::info!(%target, interface = %need.interface, setting = need.remote_setting, "not in this process and no endpoint set; running without it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registration with the given needs and provisions; never started here.
    struct Declared {
        target: Target,
        provides: &'static [Interface],
        needs: Vec<Need>,
    }

    #[async_trait::async_trait]
    impl Module for Declared {
        fn target(&self) -> Target {
            self.target
        }

        fn provides(&self) -> &'static [Interface] {
            self.provides
        }

        fn needs(&self) -> Vec<Need> {
            self.needs.clone()
        }

        async fn start(&self, _: &mut ModuleContext<'_>) -> Result<(), BoxError> {
            Err("not started in these tests".into())
        }
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        // Registered consumer first, so that the order must come from the needs.
        registry
            .register(Declared {
                target: Target::Alert,
                provides: &[],
                needs: vec![
                    Need::required(Interface::Feed, "alert.feed_endpoint"),
                    Need::optional(Interface::Config, "alert.config_endpoint"),
                ],
            })
            .register(Declared {
                target: Target::Ingest,
                provides: &[Interface::Feed],
                needs: vec![Need::optional(Interface::Config, "ingest.config_endpoint")],
            })
            .register(Declared {
                target: Target::Config,
                provides: &[Interface::Config],
                needs: Vec::new(),
            });
        registry
    }

    fn order(registry: &Registry, targets: &[Target]) -> Vec<Target> {
        let resolved = registry.resolve(targets).expect("resolves");
        registry
            .ordered(&resolved)
            .expect("ordered")
            .iter()
            .map(|module| module.target())
            .collect()
    }

    #[test]
    fn providers_start_before_the_modules_that_need_them() {
        let registry = registry();
        assert_eq!(
            order(&registry, &[Target::All]),
            [Target::Config, Target::Ingest, Target::Alert]
        );
        assert_eq!(
            order(&registry, &[Target::Alert, Target::Ingest]),
            [Target::Ingest, Target::Alert]
        );
    }

    #[test]
    fn targets_parse_and_unbuilt_ones_are_refused() {
        let registry = registry();
        assert_eq!("INGEST".parse::<Target>(), Ok(Target::Ingest));
        assert!(matches!(
            "nope".parse::<Target>(),
            Err(TargetError::Unknown { .. })
        ));
        assert!(registry.is_built(Target::All));
        assert!(!registry.is_built(Target::Search));
        let refused = registry.resolve(&[Target::Config, Target::Search]);
        assert_eq!(
            refused.map_err(|error| error.to_string()),
            Err("target `search` is not built yet in this version of Pharos; targets available now: all, config, ingest, alert".to_string())
        );
        assert!(matches!(
            registry.resolve(&[]),
            Err(TargetError::Empty { .. })
        ));
        assert_eq!(
            registry
                .listing()
                .iter()
                .filter(|(_, built)| *built)
                .count(),
            4
        );
    }

    #[test]
    fn needs_take_the_local_provider_then_the_remote_then_nothing() {
        let need = Need::optional(Interface::Config, "ingest.config_endpoint");
        let mut handed = Interfaces::default();
        // Nothing in process, no endpoint: optional, so the module runs without it.
        resolve_need(Target::Ingest, &need, &Interfaces::default(), &mut handed).expect("optional");
        assert!(handed.config.is_none());
        // A required one is an error that names the setting.
        let required = Need::required(Interface::Feed, "alert.feed_endpoint");
        let error = resolve_need(
            Target::Alert,
            &required,
            &Interfaces::default(),
            &mut handed,
        )
        .expect_err("required");
        assert_eq!(
            error.to_string(),
            "target `alert` needs the ingest feed: run its target in this process or set alert.feed_endpoint"
        );
        // An empty endpoint counts as none.
        let blank = need.clone().or_remote(ClientSettings::new(" "));
        assert!(blank.remote.is_none());
    }

    #[tokio::test]
    async fn a_remote_need_gets_a_lazy_client_even_when_nobody_listens() {
        let need = Need::optional(Interface::Config, "ingest.config_endpoint")
            .or_remote(ClientSettings::new("http://127.0.0.1:1"));
        let mut handed = Interfaces::default();
        resolve_need(Target::Ingest, &need, &Interfaces::default(), &mut handed)
            .expect("a lazy client does not connect at start");
        let config = handed.config.expect("remote config");
        assert_eq!(config.source, "http://127.0.0.1:1");
        let status = config
            .api
            .get(pharos_proto::config::v1::GetRequest::default())
            .await
            .expect_err("nobody listens");
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
