//! The configuration service on the shared [`pharos_test_support::TestServer`] (started through
//! its module, as `pharos serve --target config` starts it), reached through a real tonic client.

use std::sync::Arc;

use pharos_api::{ClientSettings, RemoteConfig};
use pharos_config::{ConfigModule, ConfigService, ConfigSettings};
use pharos_runtime::ServerSettings;
use pharos_store::Store;

/// A real server with the configuration service it started.
pub type TestServer = pharos_test_support::TestServer<Arc<ConfigService>>;

/// A server with the default settings.
pub async fn start_server(store: Store) -> TestServer {
    start_server_with(store, ConfigSettings::default(), ServerSettings::default()).await
}

/// A server with these service and server settings.
pub async fn start_server_with(
    store: Store,
    settings: ConfigSettings,
    server: ServerSettings,
) -> TestServer {
    let module = ConfigModule::new(settings);
    let started = pharos_test_support::TestServer::builder(store)
        .server(server)
        .module(module.clone())
        .start()
        .await;
    started.with_service(
        module
            .service()
            .expect("the config module started its service"),
    )
}

/// Real clients of a [`TestServer`].
pub trait Clients {
    /// A client without a token or an actor.
    async fn client(&self) -> RemoteConfig {
        self.client_as(None, None).await
    }

    /// A client sending `token` and `actor`.
    async fn client_as(&self, token: Option<&str>, actor: Option<&str>) -> RemoteConfig;
}

impl Clients for TestServer {
    async fn client_as(&self, token: Option<&str>, actor: Option<&str>) -> RemoteConfig {
        let settings = ClientSettings {
            token: token.map(str::to_owned),
            actor: actor.map(str::to_owned),
            ..ClientSettings::new(self.endpoint())
        };
        RemoteConfig::connect(&settings)
            .await
            .expect("client connects")
    }
}
