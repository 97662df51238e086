//! The one gRPC listener of a process: every enabled service is mounted on
//! it together with `grpc.health.v1` (per service) and server reflection
//! (`grpc.reflection.v1` and `v1alpha`), behind the server-wide tower layers
//! built in [`GrpcServer::serve`].

use std::convert::Infallible;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;

use crate::auth::{AuthError, AuthLayer, TokenSet};
use crate::coalesce::CoalescingIo;
use crate::limits::LimitLayer;
use crate::observe::ObserveLayer;
use crate::settings::{ServerSettings, TlsSettings};
use crate::shutdown::Shutdown;

/// A generated tonic server as every Pharos service mounts it: requests and responses up to the
/// process's `max_message_bytes`, gzip accepted and sent. Generated servers share no trait for
/// these builders, hence a macro: `pharos_runtime::tonic_server!(XServer::new(x), max_bytes)`.
#[macro_export]
macro_rules! tonic_server {
    ($server:expr, $max_message_bytes:expr) => {
        $server
            .max_decoding_message_size($max_message_bytes)
            .max_encoding_message_size($max_message_bytes)
            .accept_compressed($crate::__tonic::codec::CompressionEncoding::Gzip)
            .send_compressed($crate::__tonic::codec::CompressionEncoding::Gzip)
    };
}

/// Why the gRPC server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS needs both tls.cert_file and tls.key_file")]
    TlsIncomplete,
    #[error("reflection set-up failed: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Collects the services of a process and serves them.
pub struct GrpcServer {
    settings: ServerSettings,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
    health: HealthReporter,
    health_service:
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
}

impl GrpcServer {
    /// The server settings this server was made with.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    pub fn new(settings: ServerSettings) -> Self {
        let health = HealthReporter::new();
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        Self {
            settings,
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            descriptor_sets: Vec::new(),
            health,
            health_service,
        }
    }

    /// Mounts a tonic service; it reports SERVING on `grpc.health.v1` once
    /// the server runs.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Registers an encoded `FileDescriptorSet` for server reflection.
    /// Several services may register the same set; it is kept once. Reflection lists only the
    /// services mounted, whatever else the sets describe.
    pub fn add_descriptor_set(&mut self, encoded: &'static [u8]) -> &mut Self {
        if !self.descriptor_sets.contains(&encoded) {
            self.descriptor_sets.push(encoded);
        }
        self
    }

    /// The health reporter, for services that change their status later.
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves until `shutdown` fires, then stops accepting, lets in-flight
    /// calls finish for up to `limits.shutdown_grace` and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServeError> {
        let tokens = TokenSet::load(&self.settings.auth)?;
        let limits = &self.settings.limits;

        let mut reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for set in &self.descriptor_sets {
            reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(set);
            reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
        }
        // List exactly what is served: a set also describes services this process does not
        // mount (another target's, or OTLP's ProfilesService).
        let served = self.service_names.iter().copied().chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
        for name in served {
            reflection_v1 = reflection_v1.with_service_name(name);
            reflection_v1alpha = reflection_v1alpha.with_service_name(name);
        }

        let mut routes = self.routes;
        routes
            .add_service(self.health_service)
            .add_service(reflection_v1.build_v1()?)
            .add_service(reflection_v1alpha.build_v1alpha()?);
        let routes: Routes = routes.routes();

        for name in &self.service_names {
            self.health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        self.health
            .set_service_status("", ServingStatus::Serving)
            .await;

        let layers = tower::ServiceBuilder::new()
            // Outermost, so that every call, refused or not, is traced and measured.
            .layer(ObserveLayer)
            // Before any work is done for a caller without a valid token.
            .option_layer(tokens.map(AuthLayer::new))
            // Refuse rather than queue when too much is in flight, and bound call time.
            .layer(LimitLayer::new(limits))
            .into_inner();

        let mut builder = Server::builder()
            .max_concurrent_streams(Some(limits.max_concurrent_streams))
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .tcp_nodelay(true);
        if let Some(tls) = tls_config(&self.settings.tls)? {
            builder = builder.tls_config(tls)?;
        }

        let local_addr = listener.local_addr().ok();
        // Each connection coalesces the frames its streams write at once (see `coalesce`).
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .map(|connection| connection.map(CoalescingIo::new));
        tracing::info!(addr = ?local_addr, services = ?self.service_names, "grpc server listening");

        let health = self.health.clone();
        let names = self.service_names.clone();
        let signal = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.wait().await;
                for name in names {
                    health
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            }
        };
        let server = builder
            .layer(layers)
            .serve_with_incoming_shutdown(routes, incoming, signal);
        let grace = limits.shutdown_grace;
        tokio::select! {
            result = server => result?,
            () = async { shutdown.wait().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "in-flight calls still running after the grace period; closing them");
            }
        }
        tracing::info!("grpc server stopped");
        Ok(())
    }
}

fn tls_config(settings: &TlsSettings) -> Result<Option<ServerTlsConfig>, ServeError> {
    if !settings.is_enabled() {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) else {
        return Err(ServeError::TlsIncomplete);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServeError::TlsFile {
            path: path.display().to_string(),
            source,
        })
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &settings.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(config))
}
