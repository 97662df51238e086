//! How a remote client reaches a Pharos process: [`ClientSettings`] (endpoint, bearer token,
//! TLS, the actor named in writes) turned into a tonic channel, and the one
//! [`ClientInterceptor`] that adds the token, the actor and the trace context to every call.
//! The CLI and service-to-service clients share both.
//!
//! Service-to-service channels connect lazily ([`ClientSettings::lazy_channel`]): a process may
//! start before the service it calls (Kubernetes gives no start order), its calls fail with
//! UNAVAILABLE until the other side is up, and the channel reconnects by itself.

use std::path::PathBuf;
use std::time::Duration;

use pharos_runtime::trace::TraceContextInterceptor;
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The metadata key a caller without a named token may use to say who it is.
pub const ACTOR_METADATA: &str = "x-pharos-actor";

/// The longest actor name taken from `x-pharos-actor` metadata.
const MAX_ACTOR_BYTES: usize = 128;

/// Who a request comes from, as the services record it: the authenticated token's name, else
/// the `x-pharos-actor` metadata (1 to 128 bytes), else `anonymous`.
pub fn request_actor<T>(request: &tonic::Request<T>) -> String {
    if let Some(pharos_runtime::auth::Actor(name)) =
        request.extensions().get::<pharos_runtime::auth::Actor>()
    {
        return name.clone();
    }
    request
        .metadata()
        .get(ACTOR_METADATA)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= MAX_ACTOR_BYTES)
        .map_or_else(|| "anonymous".to_owned(), str::to_owned)
}

/// Largest message a Pharos client accepts (a config list page, a feed batch).
pub const MAX_DECODING_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where a Pharos service is and how to present oneself to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// Like `http://pharos-config:50051`, or `https://...` with TLS.
    pub endpoint: String,
    /// Bearer token, when the server requires one.
    pub token: Option<String>,
    /// The name recorded as the author of writes, for callers without a named token.
    pub actor: Option<String>,
    /// A PEM CA bundle to verify the server with (default: the system roots for `https`).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate and key, for servers that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify the server certificate against, when it differs from the host.
    pub tls_domain: Option<String>,
}

/// Why a client could not be built or could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid endpoint {endpoint:?}: {source}; use a URL like http://127.0.0.1:50051")]
    Endpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to {endpoint}: {source}; is `pharos serve` running there?")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("a client certificate needs both cert_file and key_file")]
    TlsIncomplete,
    #[error("the token or actor name is not valid metadata (printable ASCII only)")]
    Metadata,
}

impl ClientSettings {
    /// Settings for `endpoint` with no token and no TLS files.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            ..Self::default()
        }
    }

    /// The same settings, naming `actor` as the author of writes.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Whether an endpoint is set at all (an empty one means "no remote service").
    pub fn is_set(&self) -> bool {
        !self.endpoint.trim().is_empty()
    }

    /// Connects now, failing at once when nobody answers: for the CLI, which should say so.
    pub async fn connect(&self) -> Result<Channel, ConnectError> {
        self.endpoint()?
            .connect()
            .await
            .map_err(|source| ConnectError::Connect {
                endpoint: self.endpoint.clone(),
                source,
            })
    }

    /// A channel that connects on first use and reconnects after a failure: for services,
    /// which must not depend on the other side being up first.
    pub fn lazy_channel(&self) -> Result<Channel, ConnectError> {
        Ok(self.endpoint()?.connect_lazy())
    }

    /// The interceptor that sends this client's token, actor and trace context.
    pub fn interceptor(&self) -> Result<ClientInterceptor, ConnectError> {
        let authorization = self
            .token
            .as_deref()
            .filter(|token| !token.is_empty())
            .map(|token| MetadataValue::try_from(format!("Bearer {token}")))
            .transpose()
            .map_err(|_| ConnectError::Metadata)?;
        let actor = self
            .actor
            .as_deref()
            .filter(|actor| !actor.is_empty())
            .map(MetadataValue::try_from)
            .transpose()
            .map_err(|_| ConnectError::Metadata)?;
        Ok(ClientInterceptor {
            authorization,
            actor,
        })
    }

    fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        let invalid = |source| ConnectError::Endpoint {
            endpoint: self.endpoint.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(self.endpoint.trim().to_string())
            .map_err(invalid)?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = self.tls()? {
            endpoint = endpoint.tls_config(tls).map_err(invalid)?;
        }
        Ok(endpoint)
    }

    /// TLS for `https` endpoints or when any TLS file is given.
    fn tls(&self) -> Result<Option<ClientTlsConfig>, ConnectError> {
        let wanted = self.endpoint.trim_start().starts_with("https://")
            || self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some();
        if !wanted {
            return Ok(None);
        }
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ConnectError::TlsFile {
                path: path.display().to_string(),
                source,
            })
        };
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &self.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => return Err(ConnectError::TlsIncomplete),
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        Ok(Some(tls))
    }
}

/// Adds the bearer token (if any), the actor name (if any) and the trace context to a call.
#[derive(Clone, Debug, Default)]
pub struct ClientInterceptor {
    authorization: Option<AsciiMetadataValue>,
    actor: Option<AsciiMetadataValue>,
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        if let Some(value) = &self.actor {
            request.metadata_mut().insert(ACTOR_METADATA, value.clone());
        }
        TraceContextInterceptor.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interceptor_sends_token_and_actor() {
        let settings = ClientSettings {
            token: Some("s3cret".into()),
            ..ClientSettings::new("http://127.0.0.1:1")
        }
        .with_actor("alice");
        let mut interceptor = settings.interceptor().expect("valid metadata");
        let request = interceptor
            .call(tonic::Request::new(()))
            .expect("intercepted");
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().ok()),
            Some(Some("Bearer s3cret"))
        );
        assert_eq!(
            request
                .metadata()
                .get(ACTOR_METADATA)
                .map(|v| v.to_str().ok()),
            Some(Some("alice"))
        );
        let bad = ClientSettings {
            token: Some("line\nbreak".into()),
            ..ClientSettings::default()
        };
        assert!(matches!(bad.interceptor(), Err(ConnectError::Metadata)));
    }

    #[test]
    fn bad_endpoints_and_half_identities_are_refused() {
        assert!(matches!(
            ClientSettings::new("not a url").lazy_channel(),
            Err(ConnectError::Endpoint { .. })
        ));
        let half = ClientSettings {
            cert_file: Some("/nonexistent.pem".into()),
            ..ClientSettings::new("https://127.0.0.1:1")
        };
        assert!(matches!(half.tls(), Err(ConnectError::TlsIncomplete)));
        assert!(!ClientSettings::new("  ").is_set());
    }
}
