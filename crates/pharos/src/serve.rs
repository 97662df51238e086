//! [`run`]: connects the store, applies migrations, starts the modules of the enabled targets
//! (in the order their needs give, see `pharos_api::module`) on one gRPC listener (with health
//! and reflection) and the HTTP listener (`Mounts::serve`), and returns once a shutdown has
//! drained them, every stop hook has run and every background task has ended (or the grace
//! period passed), then closes the store.

use anyhow::Context as _;
use pharos_api::module::{Base, Mounts};
use pharos_clock::Clock;
use pharos_runtime::Shutdown;
use pharos_store::Store;
use tokio::net::TcpListener;

use crate::settings::Settings;

/// Opens the store and applies pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database).await.with_context(|| {
        format!(
            "cannot open the database {}; check --database-url (postgres://... or sqlite:path)",
            redact(&settings.database.url)
        )
    })?;
    store
        .migrate()
        .await
        .context("cannot apply the database migrations")?;
    Ok(store)
}

/// Runs the services of `settings.target` until `shutdown` fires.
pub async fn run(
    settings: Settings,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let registry = crate::modules::registry(&settings);
    // Refuse unknown or unbuilt targets before touching the database.
    let targets = registry.resolve(&settings.target)?;
    let store = open_store(&settings).await?;
    tracing::info!(backend = store.backend().name(), targets = ?targets, "store ready");

    let mut mounts = Mounts::new(settings.server.clone());
    let base = Base {
        store: store.clone(),
        clock: Clock::system(),
        shutdown: shutdown.clone(),
        server: settings.server.clone(),
        data_dir: settings.data_dir.clone(),
    };
    let grace = settings.server.limits.shutdown_grace;
    if let Err(error) = registry.start(&settings.target, &base, &mut mounts).await {
        mounts.stop_hooks.stop(&shutdown, grace).await;
        store.close().await;
        return Err(error.into());
    }
    let stopped = mounts
        .serve(grpc_listener, http_listener, shutdown, grace)
        .await;
    if let Err(error) = &stopped.http {
        tracing::warn!(%error, "the http server failed");
    }
    store.close().await;
    stopped.grpc.context("the gRPC server failed")?;
    Ok(())
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite:x.db"), "sqlite:x.db");
    }
}
