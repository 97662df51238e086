//! The sections of `Settings` that the shared runtime owns: listeners, auth,
//! TLS, request limits and telemetry. Each is a serde struct with defaults and
//! `deny_unknown_fields`, so a typo in a TOML file or a `PHAROS_*` variable is
//! an error at start, not a silently ignored value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the process listens and how it guards its gRPC port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// The one gRPC listener of the process; every enabled service is mounted on it.
    pub grpc_addr: SocketAddr,
    /// The HTTP listener for `/metrics`, `/health` and `/ready`.
    pub http_addr: SocketAddr,
    pub auth: AuthSettings,
    pub tls: TlsSettings,
    pub limits: LimitSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            auth: AuthSettings::default(),
            tls: TlsSettings::default(),
            limits: LimitSettings::default(),
        }
    }
}

/// Optional bearer-token auth on the gRPC port (health checks stay open).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted tokens. A token may be written `name:secret`; the name is then
    /// recorded as the actor of writes made with it. A plain token records the
    /// actor `token`.
    pub tokens: Vec<String>,
    /// A file with one token (or `name:secret`) per line; `#` starts a comment.
    pub tokens_file: Option<PathBuf>,
}

impl AuthSettings {
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty() || self.tokens_file.is_some()
    }
}

/// Optional TLS on the gRPC port, with rustls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain; TLS is on when this and `key_file` are set.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }
}

/// Explicit limits that keep one process responsive under load.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Unary calls in flight across the process; past it calls are refused
    /// with RESOURCE_EXHAUSTED and a RetryInfo instead of queueing.
    pub max_in_flight: usize,
    /// How long a unary call may run before it ends with DEADLINE_EXCEEDED
    /// (a shorter `grpc-timeout` from the client wins).
    #[serde(with = "pharos_clock::duration")]
    pub request_timeout: Duration,
    /// The largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// The delay suggested to clients refused for overload.
    #[serde(with = "pharos_clock::duration")]
    pub retry_after: Duration,
    /// How long shutdown waits for in-flight calls before it closes them.
    #[serde(with = "pharos_clock::duration")]
    pub shutdown_grace: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            request_timeout: Duration::from_secs(30),
            max_message_bytes: 8 * 1024 * 1024,
            max_concurrent_streams: 16_384,
            retry_after: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How the process reports what it does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `text` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `info,pharos_config=debug`
    /// (`RUST_LOG` wins when set).
    pub log_filter: String,
    /// An OTLP/gRPC endpoint (like `http://127.0.0.1:4317`) to export traces to.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of exported traces.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".to_string(),
            otlp_endpoint: None,
            service_name: "pharos".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}
