//! `Settings`: the whole process configuration, each service owning its
//! section. Sources, later ones winning: built-in defaults, the TOML file
//! given by `--config`, `PHAROS_<SECTION>__<FIELD>` environment variables
//! (nested with `__`, like `PHAROS_CONFIG__CACHE__CAPACITY=5000`), then the
//! command-line flags and their `PHAROS_*` variables. Validated once at start.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use pharos_alert::AlertSettings;
use pharos_config::ConfigSettings;
use pharos_ingest::IngestSettings;
use pharos_query::QuerySettings;
use pharos_runtime::{ServerSettings, TelemetrySettings};
use pharos_search::SearchSettings;
use pharos_store::StoreSettings;
use serde::{Deserialize, Serialize};

use pharos_api::Target;

/// The configuration of one `pharos` process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The services this process runs.
    pub target: Vec<Target>,
    /// Where the embedded store and other local state live.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: StoreSettings,
    pub telemetry: TelemetrySettings,
    pub config: ConfigSettings,
    pub ingest: IngestSettings,
    pub query: QuerySettings,
    pub search: SearchSettings,
    pub alert: AlertSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            target: vec![Target::All],
            data_dir: PathBuf::from("./pharos-data"),
            server: ServerSettings::default(),
            database: StoreSettings::default(),
            telemetry: TelemetrySettings::default(),
            config: ConfigSettings::default(),
            ingest: IngestSettings::default(),
            query: QuerySettings::default(),
            search: SearchSettings::default(),
            alert: AlertSettings::default(),
        }
    }
}

/// Values given on the command line (or their `PHAROS_*` variables).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<Vec<Target>>,
    pub grpc_addr: Option<std::net::SocketAddr>,
    pub http_addr: Option<std::net::SocketAddr>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<String>,
}

impl Settings {
    /// Loads the settings from every source, in order.
    pub fn load(
        file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("PHAROS_").filter_map(|key| {
            let key = key.as_str();
            key.contains("__")
                .then(|| key.to_ascii_lowercase().replace("__", ".").into())
        }));
        if let Some(target) = &overrides.target {
            figment = figment.merge(Serialized::default("target", target));
        }
        if let Some(addr) = overrides.grpc_addr {
            figment = figment.merge(Serialized::default("server.grpc_addr", addr));
        }
        if let Some(addr) = overrides.http_addr {
            figment = figment.merge(Serialized::default("server.http_addr", addr));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        if let Some(format) = &overrides.log_format {
            figment = figment.merge(Serialized::default("telemetry.log_format", format));
        }
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        // Rule files and the routing file are relative to the settings file, as Prometheus'
        // and Alertmanager's are; without a file, to the working directory.
        if let Some(base) = file.and_then(Path::parent) {
            settings.alert.resolve_paths(base);
        }
        if settings.database.url.is_empty() {
            settings.database.url =
                format!("sqlite:{}", settings.data_dir.join("pharos.db").display());
        }
        Ok(settings)
    }

    /// The settings as TOML, for `pharos settings`, with the database password and the secrets
    /// of auth tokens masked.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = crate::serve::redact(&shown.database.url);
        if !shown.ingest.config_token.is_empty() {
            shown.ingest.config_token = "***".to_owned();
        }
        if !shown.alert.service_token.is_empty() {
            shown.alert.service_token = "***".to_owned();
        }
        if !shown.alert.webhook.hmac_secret.is_empty() {
            shown.alert.webhook.hmac_secret = "***".to_owned();
        }
        for token in &mut shown.server.auth.tokens {
            *token = match token.split_once(':') {
                Some((name, _)) => format!("{name}:***"),
                None => "***".to_owned(),
            };
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|error| format!("# cannot render: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_settings_mask_secrets() {
        let mut settings = Settings::default();
        settings.database.url = "postgres://pharos:hunter2@db/pharos".to_owned();
        settings.server.auth.tokens = vec!["ci:s3cret".to_owned(), "plain-secret".to_owned()];
        settings.ingest.config_token = "t0ken".to_owned();
        let printed = settings.to_toml();
        for secret in ["hunter2", "s3cret", "plain-secret", "t0ken"] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
        assert!(printed.contains("postgres://pharos:***@db/pharos"));
        assert!(printed.contains("ci:***"));
        // Durations print as people write them, and read back the same.
        assert!(printed.contains("metrics_daily = \"365d\""), "{printed}");
        assert!(
            printed.contains("change_log_retention = \"7d\""),
            "{printed}"
        );
    }

    #[test]
    fn layers_file_then_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pharos.toml");
        std::fs::write(
            &file,
            "data_dir = \"/tmp/x\"\n[server]\ngrpc_addr = \"127.0.0.1:6000\"\n[config.cache]\ncapacity = 42\n",
        )
        .expect("write");
        let overrides = Overrides {
            grpc_addr: Some("127.0.0.1:7000".parse().expect("addr")),
            ..Overrides::default()
        };
        let settings = Settings::load(Some(&file), &overrides).expect("load");
        assert_eq!(settings.server.grpc_addr.port(), 7000);
        assert_eq!(settings.config.cache.capacity, 42);
        assert_eq!(settings.database.url, "sqlite:/tmp/x/pharos.db");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pharos.toml");
        std::fs::write(&file, "[server]\ngrpc_adr = \"127.0.0.1:6000\"\n").expect("write");
        let error = Settings::load(Some(&file), &Overrides::default()).expect_err("typo refused");
        assert!(error.to_string().contains("grpc_adr"), "{error}");
    }
}
