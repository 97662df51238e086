//! A real configuration server for tests: the service mounted on the shared
//! gRPC server, bound to `127.0.0.1:0`, reached through a real tonic client.

use std::net::SocketAddr;
use std::sync::Arc;

use pharos_api::{ClientSettings, RemoteConfig};
use pharos_config::{ConfigService, ConfigSettings};
use pharos_runtime::server::GrpcServer;
use pharos_runtime::{ServerSettings, Shutdown};
use pharos_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub service: Arc<ConfigService>,
    handle: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(store: Store) -> TestServer {
        Self::start_with(store, ConfigSettings::default(), ServerSettings::default()).await
    }

    pub async fn start_with(
        store: Store,
        settings: ConfigSettings,
        server: ServerSettings,
    ) -> TestServer {
        let shutdown = Shutdown::new();
        let service = ConfigService::start(store, settings, shutdown.clone())
            .await
            .expect("config service starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut grpc = GrpcServer::new(server);
        grpc.add_descriptor_set(pharos_proto::FILE_DESCRIPTOR_SET);
        grpc.add_service(pharos_config::grpc::server(service.clone(), 8 << 20));
        let stop = shutdown.clone();
        let handle = tokio::spawn(async move {
            grpc.serve(listener, stop).await.expect("serve");
        });
        TestServer {
            addr,
            shutdown,
            service,
            handle,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> RemoteConfig {
        self.client_as(None, None).await
    }

    pub async fn client_as(&self, token: Option<&str>, actor: Option<&str>) -> RemoteConfig {
        let settings = ClientSettings {
            token: token.map(str::to_owned),
            actor: actor.map(str::to_owned),
            ..ClientSettings::new(self.endpoint())
        };
        RemoteConfig::connect(&settings)
            .await
            .expect("client connects")
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(15), self.handle)
            .await
            .expect("server stops within the grace period")
            .expect("server task");
    }
}
