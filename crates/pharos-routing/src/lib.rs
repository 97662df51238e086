//! Alertmanager 0.25's configuration and routing semantics, as a pure library for the Pharos
//! alert service: read an Alertmanager configuration file ([`load_config`], [`parse_config`]),
//! find the routes and receivers of an alert ([`RoutingConfig::match_alert`]), group alerts as
//! Alertmanager groups them ([`RouteNode::group_key`]), decide inhibition
//! ([`RoutingConfig::is_inhibited`]) and muting by time intervals
//! ([`RoutingConfig::is_route_muted`]).
//!
//! Alertmanager's own Go source is the reference, and the integration tests check every
//! configuration and route against the `amtool` of Alertmanager 0.25.
//!
//! - [`config`]: the file model, strict reading, defaults and checks;
//! - [`matcher`]: `foo="bar"`, `baz=~"a|b"` matchers and their parser;
//! - [`route`]: the route tree, inheritance, matching order, keys, IDs and group keys;
//! - [`inhibit`]: inhibition rules;
//! - [`time_interval`]: named time intervals;
//! - [`labels`]: label sets, fingerprints and their text form;
//! - [`duration`] and [`net`]: Prometheus durations and Go's URL and `host:port` checks.
//!
//! Only reading the configuration file touches the outside world.

pub mod config;
pub mod duration;
mod error;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod net;
mod regex_compat;
pub mod route;
pub mod time_interval;
mod yaml;

use std::path::Path;

pub use config::{
    Authorization, BasicAuth, EmailConfig, GlobalConfig, HttpClientConfig, OAuth2, Receiver,
    RouteConfig, RoutingConfig, Secret, TlsConfig, TlsVersion, WebhookConfig,
};
pub use error::{ConfigError, Result};
pub use inhibit::{InhibitRule, is_inhibited};
pub use labels::{Fingerprint, LabelSet, fingerprint};
pub use matcher::{MatchType, Matcher, Matchers, parse_matcher, parse_matchers};
pub use route::{RouteNode, RouteOptions, RouteTree};
pub use time_interval::{NamedTimeInterval, TimeInterval};

/// Reads and checks an Alertmanager configuration file. Relative paths in it (templates, the
/// files of HTTP client settings) are taken relative to the file's directory, as Alertmanager
/// does.
pub fn load_config(path: &Path) -> Result<RoutingConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut config = parse_config(&text)?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    config.resolve_paths(base);
    Ok(config)
}

/// Reads and checks an Alertmanager configuration text. The text is kept
/// ([`RoutingConfig::original`]).
pub fn parse_config(text: &str) -> Result<RoutingConfig> {
    config::parse(text)
}
