//! The command line: `pharos serve`, `pharos migrate`, `pharos settings`,
//! `pharos targets`, `pharos config get|set|list|history|watch|delete` and
//! `pharos search ...` (see `search_cli`)
//! (a gRPC client for people, with readable output or `--json`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt as _;
use pharos_api::{ClientSettings, ConfigApi as _, RemoteConfig};
use pharos_proto::config::v1 as pb;

use crate::settings::Overrides;
use pharos_api::Target;

/// Pharos: telemetry ingest, query, configuration, vector search and alerting.
#[derive(Debug, Parser)]
#[command(name = "pharos", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run services: all of them in one process (default) or the given targets.
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(ServeArgs),
    /// Print the effective settings (defaults, file, environment, flags) as TOML.
    Settings(ServeArgs),
    /// List the targets `--target` accepts.
    Targets,
    /// Read and change configuration values on a running server.
    Config(ConfigArgs),
    /// Manage vector indexes and search them on a running server.
    Search(crate::search_cli::SearchArgs),
    /// Evaluate PromQL on a running server: a table, JSON lines or a chart in the terminal.
    Query(crate::query_cli::QueryArgs),
    /// Check rule files and run rule unit tests, as promtool does (no server needed).
    Rules(crate::rules_cli::RulesArgs),
    /// The alert service: alerts, acknowledgements, silences, rule groups and deliveries; and
    /// `check-config`, which checks an Alertmanager configuration without a server.
    Alert(crate::alert_cli::AlertArgs),
    /// Send realistic telemetry to a running server and report the rate and ack latency.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// Check that a running server (or some of its services) is serving, over
    /// grpc.health.v1; exits non-zero otherwise.
    Health(crate::health_cli::HealthArgs),
}

/// Where settings come from; every flag also reads a `PHAROS_*` variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Services to run, comma-separated: all, config, ingest, query, search, alert.
    #[arg(long, env = "PHAROS_TARGET", value_delimiter = ',')]
    pub target: Option<Vec<Target>>,
    /// The gRPC listener of every service [default: 127.0.0.1:50051].
    #[arg(long, env = "PHAROS_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// The HTTP listener for /metrics, /health and /ready [default: 127.0.0.1:8081].
    #[arg(long, env = "PHAROS_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// postgres://user@host/db for PostgreSQL, sqlite:path for SQLite
    /// [default: sqlite:<data-dir>/pharos.db].
    #[arg(long, env = "PHAROS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for the embedded store and local state [default: ./pharos-data].
    #[arg(long, env = "PHAROS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "PHAROS_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// A TOML settings file; nested values can also be set with variables
    /// like PHAROS_CONFIG__CACHE__CAPACITY=5000.
    #[arg(long = "config", env = "PHAROS_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            target: self.target.clone(),
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            log_format: self.log_format.clone(),
        }
    }
}

/// How a client command reaches a server: shared by `pharos config`, `pharos search`,
/// `pharos query`, `pharos alert` and `pharos loadgen`.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's gRPC address (https://... for TLS).
    #[arg(
        long,
        env = "PHAROS_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub endpoint: String,
    /// Bearer token, when the server requires one.
    #[arg(long, env = "PHAROS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM CA bundle to verify the server with (default: the system's roots).
    #[arg(long, env = "PHAROS_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that require mutual TLS (with --key-file).
    #[arg(long, env = "PHAROS_CERT_FILE", global = true)]
    pub cert_file: Option<PathBuf>,
    /// PEM key of --cert-file.
    #[arg(long, env = "PHAROS_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// The name to verify the server certificate against, when it differs from the host.
    #[arg(long, env = "PHAROS_TLS_DOMAIN", global = true)]
    pub tls_domain: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    /// The client settings, naming `actor` as the author of writes.
    pub fn settings(&self, actor: Option<String>) -> ClientSettings {
        ClientSettings {
            endpoint: self.endpoint.clone(),
            token: self.token.clone(),
            actor,
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            tls_domain: self.tls_domain.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TypeArg {
    String,
    Int,
    Float,
    Bool,
    Json,
    Duration,
}

impl From<TypeArg> for pb::ValueType {
    fn from(value: TypeArg) -> Self {
        match value {
            TypeArg::String => pb::ValueType::String,
            TypeArg::Int => pb::ValueType::Int,
            TypeArg::Float => pb::ValueType::Float,
            TypeArg::Bool => pb::ValueType::Bool,
            TypeArg::Json => pb::ValueType::Json,
            TypeArg::Duration => pb::ValueType::Duration,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a value (the environment's override if there is one).
    Get {
        key: String,
        #[arg(long = "env", default_value = "")]
        environment: String,
    },
    /// Set a value.
    Set {
        key: String,
        value: String,
        /// Value type; an existing key keeps its type when omitted, a new one is a string.
        #[arg(long = "type", value_enum)]
        value_type: Option<TypeArg>,
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long = "env", default_value = "")]
        environment: String,
        /// Only write if the key is at this revision (0: only if it does not exist).
        #[arg(long)]
        expected_revision: Option<i64>,
    },
    /// List values.
    List {
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long = "env", default_value = "")]
        environment: String,
    },
    /// Show the changes of a key, newest first.
    History {
        key: String,
        #[arg(long = "env", default_value = "")]
        environment: String,
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
    /// Print changes as they happen (Ctrl-C to stop).
    Watch {
        /// Exact keys; with no keys and no --prefix every key is watched.
        keys: Vec<String>,
        #[arg(long)]
        prefix: Vec<String>,
        /// Resume after this revision instead of printing current values first.
        #[arg(long)]
        from_revision: Option<i64>,
    },
    /// Delete a value.
    Delete {
        key: String,
        #[arg(long = "env", default_value = "")]
        environment: String,
        #[arg(long)]
        expected_revision: Option<i64>,
    },
}

/// Runs a `pharos config` command against a server.
pub async fn run_config(args: ConfigArgs) -> anyhow::Result<()> {
    let user = std::env::var("USER").ok();
    let client = RemoteConfig::connect(&args.client.settings(user)).await?;
    let json = args.client.json;
    match args.command {
        ConfigCommand::Get { key, environment } => {
            let entry = client
                .get(pb::GetRequest { key, environment })
                .await
                .map_err(status_error)?;
            print_entry(&entry, json);
        }
        ConfigCommand::Set {
            key,
            value,
            value_type,
            category,
            description,
            environment,
            expected_revision,
        } => {
            let entry = client
                .set(pb::SetRequest {
                    key,
                    value,
                    r#type: value_type.map_or(0, |t| pb::ValueType::from(t) as i32),
                    category,
                    description,
                    environment,
                    expected_revision,
                })
                .await
                .map_err(status_error)?;
            print_entry(&entry, json);
        }
        ConfigCommand::List {
            prefix,
            category,
            environment,
        } => {
            let mut page_token = String::new();
            loop {
                let page = client
                    .list(pb::ListRequest {
                        prefix: prefix.clone(),
                        category: category.clone(),
                        environment: environment.clone(),
                        page_size: 1000,
                        page_token,
                    })
                    .await
                    .map_err(status_error)?;
                for entry in &page.entries {
                    print_entry(entry, json);
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        ConfigCommand::History {
            key,
            environment,
            limit,
        } => {
            let history = client
                .history(pb::HistoryRequest {
                    key,
                    environment,
                    limit,
                })
                .await
                .map_err(status_error)?;
            for item in &history.items {
                if json {
                    println!("{}", history_json(item));
                } else {
                    let kind = if item.kind == pb::ChangeKind::Delete as i32 {
                        "delete"
                    } else {
                        "put"
                    };
                    println!(
                        "rev {:<6} {:<6} {} -> {}  by {} at {}",
                        item.revision,
                        kind,
                        item.old_value.as_deref().unwrap_or("(none)"),
                        item.new_value.as_deref().unwrap_or("(deleted)"),
                        item.actor,
                        format_time(item.changed_at.as_ref()),
                    );
                }
            }
        }
        ConfigCommand::Watch {
            keys,
            prefix,
            from_revision,
        } => {
            let mut stream = client
                .watch(pb::WatchRequest {
                    keys,
                    prefixes: prefix,
                    start_revision: from_revision,
                })
                .await
                .map_err(status_error)?;
            while let Some(response) = stream.next().await {
                let response = response.map_err(status_error)?;
                for event in &response.events {
                    let Some(entry) = &event.entry else { continue };
                    let deleted = event.r#type == pb::ChangeKind::Delete as i32;
                    if json {
                        let mut value = entry_json(entry);
                        value["event"] = serde_json::json!(if deleted { "delete" } else { "put" });
                        value["previous_value"] = serde_json::json!(event.previous_value);
                        println!("{value}");
                    } else if deleted {
                        println!(
                            "DELETE {}{} (rev {})",
                            entry.key,
                            env_suffix(&entry.environment),
                            entry.revision
                        );
                    } else {
                        println!(
                            "PUT    {}{} = {} (rev {})",
                            entry.key,
                            env_suffix(&entry.environment),
                            entry.value,
                            entry.revision
                        );
                    }
                }
                if response.snapshot_complete && !json {
                    println!(
                        "-- watching for changes after revision {} --",
                        response.revision
                    );
                }
            }
        }
        ConfigCommand::Delete {
            key,
            environment,
            expected_revision,
        } => {
            let response = client
                .delete(pb::DeleteRequest {
                    key,
                    environment,
                    expected_revision,
                })
                .await
                .map_err(status_error)?;
            if json {
                println!("{}", serde_json::json!({"revision": response.revision}));
            } else {
                println!("deleted at revision {}", response.revision);
            }
        }
    }
    Ok(())
}

/// A gRPC status as an error a person can act on.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt as _;
    let mut message = format!("{:?}: {}", status.code(), status.message());
    let details = status.get_error_details();
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            message.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    anyhow::anyhow!(message)
}

fn env_suffix(environment: &str) -> String {
    if environment.is_empty() {
        String::new()
    } else {
        format!(" [{environment}]")
    }
}

fn type_name(value_type: i32) -> &'static str {
    pb::ValueType::try_from(value_type)
        .map(|t| t.as_str_name().trim_start_matches("VALUE_TYPE_"))
        .unwrap_or("UNKNOWN")
}

fn format_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    let Some(timestamp) = timestamp else {
        return "-".to_string();
    };
    let seconds = u64::try_from(timestamp.seconds).unwrap_or(0);
    let time = UNIX_EPOCH + Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn entry_json(entry: &pb::ConfigEntry) -> serde_json::Value {
    serde_json::json!({
        "key": entry.key,
        "value": entry.value,
        "type": type_name(entry.r#type),
        "category": entry.category,
        "description": entry.description,
        "environment": entry.environment,
        "revision": entry.revision,
        "updated_at": format_time(entry.updated_at.as_ref()),
        "updated_by": entry.updated_by,
    })
}

fn history_json(item: &pb::HistoryItem) -> serde_json::Value {
    serde_json::json!({
        "revision": item.revision,
        "kind": if item.kind == pb::ChangeKind::Delete as i32 { "delete" } else { "put" },
        "old_value": item.old_value,
        "new_value": item.new_value,
        "type": type_name(item.r#type),
        "changed_at": format_time(item.changed_at.as_ref()),
        "actor": item.actor,
    })
}

fn print_entry(entry: &pb::ConfigEntry, json: bool) {
    if json {
        println!("{}", entry_json(entry));
    } else {
        println!(
            "{}{} = {}  ({}, rev {}, by {} at {})",
            entry.key,
            env_suffix(&entry.environment),
            entry.value,
            type_name(entry.r#type),
            entry.revision,
            entry.updated_by,
            format_time(entry.updated_at.as_ref()),
        );
    }
}

/// Loads settings for `serve`, `migrate` and `settings`.
pub fn load_settings(args: &ServeArgs) -> anyhow::Result<crate::Settings> {
    crate::Settings::load(args.config_file.as_deref(), &args.overrides())
        .map_err(|error| anyhow::anyhow!("invalid settings: {error}"))
        .context("fix the settings file, PHAROS_* variables or flags named above")
}
