//! The Alertmanager 0.25 configuration file, read strictly and checked as `config.Load` checks
//! it, with Alertmanager's defaults applied.
//!
//! What is read: `global`, `route`, `receivers` (webhook and email integrations), `inhibit_rules`,
//! `time_intervals`, `mute_time_intervals` and `templates`. Unknown keys are refused, as
//! Alertmanager refuses them. The receiver integrations Alertmanager 0.25 has but Pharos does
//! not deliver (`slack_configs`, `pagerduty_configs`, ...) are refused with
//! [`ConfigError::UnsupportedIntegration`]. The `global` settings of those integrations are
//! accepted and checked (so that a file Alertmanager accepts is accepted) but not kept.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::duration::parse_duration;
use crate::error::{ConfigError, Result};
use crate::inhibit::{self, InhibitRule};
use crate::labels::{Fingerprint, LabelSet, is_valid_label_name};
use crate::matcher::{MatchType, Matcher, Matchers, parse_matchers};
use crate::net::{self, HostPort};
use crate::route::{RouteNode, RouteTree};
use crate::time_interval::{self, NamedTimeInterval, TimeInterval, TimeRange};
use crate::yaml::{Field, Flag, StrictMap, Text, parse_document, text};

/// The default `resolve_timeout`.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The default `smtp_hello`.
pub const DEFAULT_SMTP_HELLO: &str = "localhost";
/// The default body of an email (`html`), Alertmanager's default template.
pub const DEFAULT_EMAIL_HTML: &str = r#"{{ template "email.default.html" . }}"#;

/// The receiver integrations Pharos delivers.
pub const SUPPORTED_INTEGRATIONS: [&str; 2] = ["webhook_configs", "email_configs"];

/// A value that must not be shown: its `Debug` prints `<secret>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty (not set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<secret>")
        }
    }
}

/// A loaded, checked configuration.
#[derive(Clone, Debug)]
pub struct RoutingConfig {
    global: GlobalConfig,
    route: RouteConfig,
    route_tree: RouteTree,
    receivers: Vec<Receiver>,
    inhibit_rules: Vec<InhibitRule>,
    time_intervals: Vec<NamedTimeInterval>,
    templates: Vec<String>,
    original: String,
}

impl RoutingConfig {
    /// The `global` section with Alertmanager's defaults.
    pub fn global(&self) -> &GlobalConfig {
        &self.global
    }

    /// The root route as written (after checks); see [`RoutingConfig::route_tree`] for the
    /// effective options.
    pub fn route(&self) -> &RouteConfig {
        &self.route
    }

    /// The route tree.
    pub fn route_tree(&self) -> &RouteTree {
        &self.route_tree
    }

    /// The receivers, in file order.
    pub fn receivers(&self) -> &[Receiver] {
        &self.receivers
    }

    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|receiver| receiver.name == name)
    }

    /// The inhibition rules, in file order.
    pub fn inhibit_rules(&self) -> &[InhibitRule] {
        &self.inhibit_rules
    }

    /// The named time intervals: `mute_time_intervals` first, then `time_intervals`.
    pub fn time_intervals(&self) -> &[NamedTimeInterval] {
        &self.time_intervals
    }

    /// The time interval named `name`.
    pub fn time_interval(&self, name: &str) -> Option<&NamedTimeInterval> {
        self.time_intervals
            .iter()
            .find(|interval| interval.name == name)
    }

    /// The `templates` globs (relative ones made absolute by [`crate::load_config`]).
    pub fn templates(&self) -> &[String] {
        &self.templates
    }

    /// The text the configuration was read from (the API's `config.original`).
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Every route that handles an alert with these labels, in Alertmanager's order.
    pub fn match_alert(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        self.route_tree.match_alert(labels)
    }

    /// Whether `target` is inhibited by one of the `firing` alerts under the inhibition
    /// rules: the fingerprint of the inhibiting alert.
    pub fn is_inhibited<L: std::borrow::Borrow<LabelSet>>(
        &self,
        target: &LabelSet,
        firing: &[L],
    ) -> Option<Fingerprint> {
        inhibit::is_inhibited(&self.inhibit_rules, target, firing)
    }

    /// Whether a route sends nothing at `instant`: it is inside one of the route's
    /// `mute_time_intervals`, or the route has `active_time_intervals` and is inside none.
    pub fn is_route_muted(&self, route: &RouteNode, instant: DateTime<Utc>) -> bool {
        let inside = |names: &[String]| {
            names.iter().any(|name| {
                self.time_interval(name)
                    .is_some_and(|interval| interval.contains(instant))
            })
        };
        let options = route.options();
        if inside(&options.mute_time_intervals) {
            return true;
        }
        !options.active_time_intervals.is_empty() && !inside(&options.active_time_intervals)
    }

    /// Makes relative file paths absolute against `base`, as Alertmanager's `LoadFile` does
    /// (templates and the files of HTTP client settings).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let join = |path: &mut String| {
            if !path.is_empty() && Path::new(path.as_str()).is_relative() {
                *path = base.join(path.as_str()).to_string_lossy().into_owned();
            }
        };
        for template in &mut self.templates {
            join(template);
        }
        let mut http_configs: Vec<&mut HttpClientConfig> = vec![&mut self.global.http_config];
        for receiver in &mut self.receivers {
            for webhook in &mut receiver.webhook_configs {
                http_configs.push(&mut webhook.http_config);
            }
        }
        for http in http_configs {
            if let Some(auth) = &mut http.basic_auth {
                join(&mut auth.password_file);
            }
            if let Some(auth) = &mut http.authorization {
                join(&mut auth.credentials_file);
            }
            if let Some(oauth2) = &mut http.oauth2 {
                join(&mut oauth2.client_secret_file);
                join_tls(&mut oauth2.tls_config, &join);
            }
            join_tls(&mut http.tls_config, &join);
        }
    }
}

fn join_tls(tls: &mut TlsConfig, join: &impl Fn(&mut String)) {
    join(&mut tls.ca_file);
    join(&mut tls.cert_file);
    join(&mut tls.key_file);
}

/// The `global` section Pharos uses, with Alertmanager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalConfig {
    /// How long after its last update an alert without an end time is resolved (5m).
    pub resolve_timeout: Duration,
    /// The HTTP client settings webhooks use when they have none.
    pub http_config: HttpClientConfig,
    /// The default `from` of emails.
    pub smtp_from: String,
    /// The name sent in SMTP `HELO`/`EHLO` (`localhost`).
    pub smtp_hello: String,
    /// The default SMTP server.
    pub smtp_smarthost: Option<HostPort>,
    /// The default SMTP user.
    pub smtp_auth_username: String,
    /// The default SMTP password.
    pub smtp_auth_password: Secret,
    /// A file holding the default SMTP password.
    pub smtp_auth_password_file: String,
    /// The default SMTP CRAM-MD5 secret.
    pub smtp_auth_secret: Secret,
    /// The default SMTP PLAIN identity.
    pub smtp_auth_identity: String,
    /// Whether SMTP requires STARTTLS by default (true).
    pub smtp_require_tls: bool,
}

/// HTTP client settings (prometheus/common's `HTTPClientConfig`, as Alertmanager 0.25 has it).
/// A `bearer_token` or `bearer_token_file` is turned into an [`Authorization`] of type `Bearer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// The `Authorization` header (type and credentials).
    pub authorization: Option<Authorization>,
    /// OAuth 2.0 client credentials.
    pub oauth2: Option<OAuth2>,
    /// A proxy URL.
    pub proxy_url: Option<String>,
    /// Headers sent to the proxy on CONNECT.
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    /// TLS settings.
    pub tls_config: TlsConfig,
    /// Whether redirects are followed (true).
    pub follow_redirects: bool,
    /// Whether HTTP/2 is enabled (true).
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            proxy_url: None,
            proxy_connect_header: BTreeMap::new(),
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// Basic authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user.
    pub username: String,
    /// The password.
    pub password: Secret,
    /// A file holding the password.
    pub password_file: String,
}

/// An `Authorization` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorization {
    /// The scheme (`Bearer` unless set).
    pub auth_type: String,
    /// The credentials.
    pub credentials: Secret,
    /// A file holding the credentials.
    pub credentials_file: String,
}

/// OAuth 2.0 client-credentials settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuth2 {
    /// The client ID.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// A file holding the client secret.
    pub client_secret_file: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The token endpoint.
    pub token_url: String,
    /// Extra parameters sent to the token endpoint.
    pub endpoint_params: BTreeMap<String, String>,
    /// TLS settings for the token endpoint.
    pub tls_config: TlsConfig,
    /// A proxy for the token endpoint.
    pub proxy_url: Option<String>,
}

/// TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// A CA certificate file.
    pub ca_file: String,
    /// A client certificate file.
    pub cert_file: String,
    /// The client key file.
    pub key_file: String,
    /// The server name checked against the certificate.
    pub server_name: String,
    /// Whether the server certificate is not checked.
    pub insecure_skip_verify: bool,
    /// The lowest TLS version accepted.
    pub min_version: Option<TlsVersion>,
    /// The highest TLS version accepted.
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version (`TLS10` to `TLS13`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A receiver: a name and the integrations it notifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    /// The name routes refer to.
    pub name: String,
    /// Webhooks.
    pub webhook_configs: Vec<WebhookConfig>,
    /// Emails.
    pub email_configs: Vec<EmailConfig>,
}

/// A webhook integration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The URL the notification is POSTed to (`http` or `https`).
    pub url: String,
    /// Whether resolved alerts are notified (true).
    pub send_resolved: bool,
    /// The most alerts sent in one notification (0: all).
    pub max_alerts: u64,
    /// HTTP client settings (the global ones when not set).
    pub http_config: HttpClientConfig,
}

/// An email integration, with the global SMTP settings filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// The recipients.
    pub to: String,
    /// The sender.
    pub from: String,
    /// The name sent in `HELO`/`EHLO`.
    pub hello: String,
    /// The SMTP server.
    pub smarthost: HostPort,
    /// The SMTP user.
    pub auth_username: String,
    /// The SMTP password.
    pub auth_password: Secret,
    /// A file holding the SMTP password.
    pub auth_password_file: String,
    /// The CRAM-MD5 secret.
    pub auth_secret: Secret,
    /// The PLAIN identity.
    pub auth_identity: String,
    /// Extra headers, names in title case (`Subject`, `X-Team`).
    pub headers: BTreeMap<String, String>,
    /// The HTML body template.
    pub html: String,
    /// The text body template.
    pub text: String,
    /// Whether STARTTLS is required.
    pub require_tls: bool,
    /// TLS settings.
    pub tls_config: TlsConfig,
    /// Whether resolved alerts are notified (false).
    pub send_resolved: bool,
}

/// A route as written in the file, checked: old-style `match`/`match_re` folded into
/// `matchers` and sorted. Unset options are `None` or empty; [`RouteTree`] resolves
/// inheritance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    /// The receiver, when set.
    pub receiver: Option<String>,
    /// The `group_by` labels other than `...` (empty: inherited).
    pub group_by: Vec<String>,
    /// Whether `group_by` was `['...']`.
    pub group_by_all: bool,
    /// The matchers.
    pub matchers: Matchers,
    /// `mute_time_intervals`.
    pub mute_time_intervals: Vec<String>,
    /// `active_time_intervals`.
    pub active_time_intervals: Vec<String>,
    /// `continue`.
    pub continue_matching: bool,
    /// The child routes.
    pub routes: Vec<RouteConfig>,
    /// `group_wait`, when set.
    pub group_wait: Option<Duration>,
    /// `group_interval`, when set.
    pub group_interval: Option<Duration>,
    /// `repeat_interval`, when set.
    pub repeat_interval: Option<Duration>,
}

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    global: Option<RawGlobal>,
    route: Option<RawRoute>,
    inhibit_rules: Option<Vec<RawInhibitRule>>,
    receivers: Option<Vec<RawReceiver>>,
    templates: Option<Vec<Text>>,
    mute_time_intervals: Option<Vec<RawNamedTimeInterval>>,
    time_intervals: Option<Vec<RawNamedTimeInterval>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    #[serde(default)]
    resolve_timeout: Field<Text>,
    http_config: Option<RawHttpConfig>,
    smtp_from: Option<Text>,
    #[serde(default)]
    smtp_hello: Field<Text>,
    smtp_smarthost: Option<Text>,
    smtp_auth_username: Option<Text>,
    smtp_auth_password: Option<Text>,
    smtp_auth_password_file: Option<Text>,
    smtp_auth_secret: Option<Text>,
    smtp_auth_identity: Option<Text>,
    #[serde(default)]
    smtp_require_tls: Field<Flag>,
    slack_api_url: Option<Text>,
    slack_api_url_file: Option<Text>,
    pagerduty_url: Option<Text>,
    opsgenie_api_url: Option<Text>,
    opsgenie_api_key: Option<Text>,
    opsgenie_api_key_file: Option<Text>,
    wechat_api_url: Option<Text>,
    // Accepted so that files Alertmanager reads are read; Pharos has no WeChat integration.
    #[allow(dead_code)]
    wechat_api_secret: Option<Text>,
    #[allow(dead_code)]
    wechat_api_corp_id: Option<Text>,
    victorops_api_url: Option<Text>,
    victorops_api_key: Option<Text>,
    victorops_api_key_file: Option<Text>,
    telegram_api_url: Option<Text>,
    webex_api_url: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpConfig {
    basic_auth: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
    oauth2: Option<RawOAuth2>,
    bearer_token: Option<Text>,
    bearer_token_file: Option<Text>,
    proxy_url: Option<Text>,
    proxy_connect_header: Option<StrictMap<Option<Vec<Text>>>>,
    tls_config: Option<RawTlsConfig>,
    #[serde(default)]
    follow_redirects: Field<Flag>,
    #[serde(default)]
    enable_http2: Field<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: Option<Text>,
    password: Option<Text>,
    password_file: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    #[serde(rename = "type")]
    auth_type: Option<Text>,
    credentials: Option<Text>,
    credentials_file: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    client_id: Option<Text>,
    client_secret: Option<Text>,
    client_secret_file: Option<Text>,
    scopes: Option<Vec<Text>>,
    token_url: Option<Text>,
    endpoint_params: Option<StrictMap<Text>>,
    tls_config: Option<RawTlsConfig>,
    proxy_url: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsConfig {
    ca_file: Option<Text>,
    cert_file: Option<Text>,
    key_file: Option<Text>,
    server_name: Option<Text>,
    insecure_skip_verify: Option<Flag>,
    min_version: Option<Text>,
    max_version: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receiver: Option<Text>,
    group_by: Option<Vec<Text>>,
    #[serde(rename = "match")]
    match_equal: Option<StrictMap<Text>>,
    match_re: Option<StrictMap<Option<Text>>>,
    matchers: Option<Vec<Text>>,
    mute_time_intervals: Option<Vec<Text>>,
    active_time_intervals: Option<Vec<Text>>,
    #[serde(rename = "continue")]
    continue_matching: Option<Flag>,
    routes: Option<Vec<RawRoute>>,
    group_wait: Option<Text>,
    group_interval: Option<Text>,
    repeat_interval: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    source_match: Option<StrictMap<Text>>,
    source_match_re: Option<StrictMap<Option<Text>>>,
    source_matchers: Option<Vec<Text>>,
    target_match: Option<StrictMap<Text>>,
    target_match_re: Option<StrictMap<Option<Text>>>,
    target_matchers: Option<Vec<Text>>,
    equal: Option<Vec<Text>>,
}

/// Receiver integrations Alertmanager 0.25 has and Pharos does not deliver; their contents
/// are not read.
type Unsupported = Option<serde_yaml_ng::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: Option<Text>,
    webhook_configs: Option<Vec<RawWebhook>>,
    email_configs: Option<Vec<RawEmail>>,
    pagerduty_configs: Unsupported,
    slack_configs: Unsupported,
    opsgenie_configs: Unsupported,
    wechat_configs: Unsupported,
    pushover_configs: Unsupported,
    victorops_configs: Unsupported,
    sns_configs: Unsupported,
    telegram_configs: Unsupported,
    discord_configs: Unsupported,
    webex_configs: Unsupported,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    send_resolved: Field<Flag>,
    http_config: Option<RawHttpConfig>,
    url: Option<Text>,
    max_alerts: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    send_resolved: Option<Flag>,
    to: Option<Text>,
    from: Option<Text>,
    hello: Option<Text>,
    smarthost: Option<Text>,
    auth_username: Option<Text>,
    auth_password: Option<Text>,
    auth_password_file: Option<Text>,
    auth_secret: Option<Text>,
    auth_identity: Option<Text>,
    headers: Option<StrictMap<Text>>,
    #[serde(default)]
    html: Field<Text>,
    text: Option<Text>,
    require_tls: Option<Flag>,
    tls_config: Option<RawTlsConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedTimeInterval {
    name: Option<Text>,
    time_intervals: Option<Vec<RawTimeInterval>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeInterval {
    times: Option<Vec<RawTimeRange>>,
    weekdays: Option<Vec<Text>>,
    days_of_month: Option<Vec<Text>>,
    months: Option<Vec<Text>>,
    years: Option<Vec<Text>>,
    location: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: Option<Text>,
    end_time: Option<Text>,
}

// ---------------------------------------------------------------------------------------------
// Reading and checking.

/// Reads and checks a configuration text (see [`crate::parse_config`]).
pub(crate) fn parse(text_in: &str) -> Result<RoutingConfig> {
    let Some(raw) = parse_document::<Option<RawConfig>>(text_in)? else {
        return Err(ConfigError::invalid("no route provided in config"));
    };

    let global = build_global(raw.global.unwrap_or_default())?;

    let mut receivers = Vec::new();
    let mut names = BTreeSet::new();
    for raw_receiver in raw.receivers.unwrap_or_default() {
        let receiver = build_receiver(raw_receiver, &global)?;
        if !names.insert(receiver.name.clone()) {
            return Err(ConfigError::invalid(format!(
                "notification config name {:?} is not unique",
                receiver.name
            )));
        }
        receivers.push(receiver);
    }

    let Some(raw_route) = raw.route else {
        return Err(ConfigError::invalid("no routes provided"));
    };
    let route = build_route(raw_route)?;
    if route.receiver.as_deref().unwrap_or("").is_empty() {
        return Err(ConfigError::invalid(
            "root route must specify a default receiver",
        ));
    }
    if !route.matchers.is_empty() {
        return Err(ConfigError::invalid(
            "root route must not have any matchers",
        ));
    }
    if !route.mute_time_intervals.is_empty() {
        return Err(ConfigError::invalid(
            "root route must not have any mute time intervals",
        ));
    }
    if !route.active_time_intervals.is_empty() {
        return Err(ConfigError::invalid(
            "root route must not have any active time intervals",
        ));
    }
    check_receivers(&route, &names)?;

    let mut time_intervals = Vec::new();
    let mut interval_names = BTreeSet::new();
    for (raw_list, kind) in [
        (raw.mute_time_intervals, "mute time interval"),
        (raw.time_intervals, "time interval"),
    ] {
        for raw_interval in raw_list.unwrap_or_default() {
            let interval = build_named_time_interval(raw_interval, kind)?;
            if !interval_names.insert(interval.name.clone()) {
                return Err(ConfigError::invalid(format!(
                    "{kind} {:?} is not unique",
                    interval.name
                )));
            }
            time_intervals.push(interval);
        }
    }
    check_time_intervals(&route, &interval_names)?;
    if route.continue_matching {
        return Err(ConfigError::invalid("cannot have continue in root route"));
    }

    let inhibit_rules = raw
        .inhibit_rules
        .unwrap_or_default()
        .into_iter()
        .map(build_inhibit_rule)
        .collect::<Result<Vec<_>>>()?;

    let templates: Vec<String> = raw
        .templates
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.0)
        .collect();
    for template in &templates {
        glob::Pattern::new(template)
            .map_err(|_| ConfigError::invalid("syntax error in pattern"))?;
    }

    let route_tree = RouteTree::new(&route);
    Ok(RoutingConfig {
        global,
        route,
        route_tree,
        receivers,
        inhibit_rules,
        time_intervals,
        templates,
        original: text_in.to_string(),
    })
}

/// "at most one of `a` & `b` must be configured" when both are set.
fn at_most_one(first: &Option<Text>, second: &Option<Text>, names: (&str, &str)) -> Result<()> {
    if !text(first).is_empty() && !text(second).is_empty() {
        return Err(ConfigError::invalid(format!(
            "at most one of {} & {} must be configured",
            names.0, names.1
        )));
    }
    Ok(())
}

fn build_global(raw: RawGlobal) -> Result<GlobalConfig> {
    let resolve_timeout = match &raw.resolve_timeout {
        Field::Value(value) => parse_duration(&value.0)?,
        Field::Null => Duration::ZERO,
        Field::Absent => DEFAULT_RESOLVE_TIMEOUT,
    };
    for url in [
        &raw.pagerduty_url,
        &raw.opsgenie_api_url,
        &raw.wechat_api_url,
        &raw.victorops_api_url,
        &raw.telegram_api_url,
        &raw.webex_api_url,
    ]
    .into_iter()
    .flatten()
    {
        net::check_http_url(&url.0).map_err(ConfigError::invalid)?;
    }
    if let Some(url) = &raw.slack_api_url {
        // A secret URL: `<secret>` (as the API shows it) reads back as set.
        if url.0 != "<secret>" {
            net::check_http_url(&url.0).map_err(ConfigError::invalid)?;
        }
    }
    if raw.slack_api_url.is_some() && !text(&raw.slack_api_url_file).is_empty() {
        return Err(ConfigError::invalid(
            "at most one of slack_api_url & slack_api_url_file must be configured",
        ));
    }
    at_most_one(
        &raw.opsgenie_api_key,
        &raw.opsgenie_api_key_file,
        ("opsgenie_api_key", "opsgenie_api_key_file"),
    )?;
    at_most_one(
        &raw.victorops_api_key,
        &raw.victorops_api_key_file,
        ("victorops_api_key", "victorops_api_key_file"),
    )?;
    at_most_one(
        &raw.smtp_auth_password,
        &raw.smtp_auth_password_file,
        ("smtp_auth_password", "smtp_auth_password_file"),
    )?;
    let smtp_smarthost = match &raw.smtp_smarthost {
        Some(value) => net::parse_host_port(&value.0).map_err(ConfigError::invalid)?,
        None => None,
    };
    Ok(GlobalConfig {
        resolve_timeout,
        http_config: match raw.http_config {
            Some(http) => build_http_config(http)?,
            None => HttpClientConfig::default(),
        },
        smtp_from: text(&raw.smtp_from),
        smtp_hello: raw
            .smtp_hello
            .resolve(DEFAULT_SMTP_HELLO.to_string(), String::new(), |t| t.0),
        smtp_smarthost,
        smtp_auth_username: text(&raw.smtp_auth_username),
        smtp_auth_password: Secret(text(&raw.smtp_auth_password)),
        smtp_auth_password_file: text(&raw.smtp_auth_password_file),
        smtp_auth_secret: Secret(text(&raw.smtp_auth_secret)),
        smtp_auth_identity: text(&raw.smtp_auth_identity),
        smtp_require_tls: raw.smtp_require_tls.resolve(true, false, |flag| flag.0),
    })
}

/// Go's `url.Parse` for a proxy URL (any scheme); empty means none.
fn optional_proxy_url(value: &Option<Text>) -> Result<Option<String>> {
    let value = text(value);
    if value.is_empty() {
        return Ok(None);
    }
    net::parse_go_url(&value).map_err(ConfigError::invalid)?;
    Ok(Some(value))
}

fn build_http_config(raw: RawHttpConfig) -> Result<HttpClientConfig> {
    let bearer_token = text(&raw.bearer_token);
    let bearer_token_file = text(&raw.bearer_token_file);
    if !bearer_token.is_empty() && !bearer_token_file.is_empty() {
        return Err(ConfigError::invalid(
            "at most one of bearer_token & bearer_token_file must be configured",
        ));
    }
    let has_bearer = !bearer_token.is_empty() || !bearer_token_file.is_empty();
    if (raw.basic_auth.is_some() || raw.oauth2.is_some()) && has_bearer {
        return Err(ConfigError::invalid(
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
        ));
    }
    let basic_auth = match raw.basic_auth {
        Some(auth) => {
            let password = text(&auth.password);
            let password_file = text(&auth.password_file);
            if !password.is_empty() && !password_file.is_empty() {
                return Err(ConfigError::invalid(
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
            Some(BasicAuth {
                username: text(&auth.username),
                password: Secret(password),
                password_file,
            })
        }
        None => None,
    };
    let authorization = match raw.authorization {
        Some(auth) => {
            if has_bearer {
                return Err(ConfigError::invalid(
                    "authorization is not compatible with bearer_token & bearer_token_file",
                ));
            }
            let credentials = text(&auth.credentials);
            let credentials_file = text(&auth.credentials_file);
            if !credentials.is_empty() && !credentials_file.is_empty() {
                return Err(ConfigError::invalid(
                    "at most one of authorization credentials & credentials_file must be configured",
                ));
            }
            let mut auth_type = text(&auth.auth_type).trim().to_string();
            if auth_type.is_empty() {
                auth_type = "Bearer".to_string();
            }
            if auth_type.eq_ignore_ascii_case("basic") {
                return Err(ConfigError::invalid(
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            if basic_auth.is_some() || raw.oauth2.is_some() {
                return Err(ConfigError::invalid(
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
            Some(Authorization {
                auth_type,
                credentials: Secret(credentials),
                credentials_file,
            })
        }
        None if has_bearer => Some(Authorization {
            auth_type: "Bearer".to_string(),
            credentials: Secret(bearer_token),
            credentials_file: bearer_token_file,
        }),
        None => None,
    };
    let oauth2 = match raw.oauth2 {
        Some(oauth2) => {
            if basic_auth.is_some() {
                return Err(ConfigError::invalid(
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
            let client_id = text(&oauth2.client_id);
            let client_secret = text(&oauth2.client_secret);
            let client_secret_file = text(&oauth2.client_secret_file);
            let token_url = text(&oauth2.token_url);
            if client_id.is_empty() {
                return Err(ConfigError::invalid("oauth2 client_id must be configured"));
            }
            if client_secret.is_empty() && client_secret_file.is_empty() {
                return Err(ConfigError::invalid(
                    "either oauth2 client_secret or client_secret_file must be configured",
                ));
            }
            if token_url.is_empty() {
                return Err(ConfigError::invalid("oauth2 token_url must be configured"));
            }
            if !client_secret.is_empty() && !client_secret_file.is_empty() {
                return Err(ConfigError::invalid(
                    "at most one of oauth2 client_secret & client_secret_file must be configured",
                ));
            }
            Some(OAuth2 {
                client_id,
                client_secret: Secret(client_secret),
                client_secret_file,
                scopes: oauth2
                    .scopes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.0)
                    .collect(),
                token_url,
                endpoint_params: oauth2
                    .endpoint_params
                    .unwrap_or_default()
                    .0
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
                tls_config: build_tls_config(oauth2.tls_config)?,
                proxy_url: optional_proxy_url(&oauth2.proxy_url)?,
            })
        }
        None => None,
    };
    let proxy_url = optional_proxy_url(&raw.proxy_url)?;
    let proxy_connect_header: BTreeMap<String, Vec<Secret>> = raw
        .proxy_connect_header
        .unwrap_or_default()
        .0
        .into_iter()
        .map(|(name, values)| {
            let values = values
                .unwrap_or_default()
                .into_iter()
                .map(|v| Secret(v.0))
                .collect();
            (name, values)
        })
        .collect();
    if !proxy_connect_header.is_empty() && proxy_url.is_none() {
        return Err(ConfigError::invalid(
            "if proxy_connect_header is configured proxy_url must also be configured",
        ));
    }
    Ok(HttpClientConfig {
        basic_auth,
        authorization,
        oauth2,
        proxy_url,
        proxy_connect_header,
        tls_config: build_tls_config(raw.tls_config)?,
        follow_redirects: raw.follow_redirects.resolve(true, false, |flag| flag.0),
        enable_http2: raw.enable_http2.resolve(true, false, |flag| flag.0),
    })
}

fn build_tls_config(raw: Option<RawTlsConfig>) -> Result<TlsConfig> {
    let raw = raw.unwrap_or_default();
    let version = |value: &Option<Text>| -> Result<Option<TlsVersion>> {
        match value {
            None => Ok(None),
            Some(value) => match value.0.as_str() {
                "TLS10" => Ok(Some(TlsVersion::Tls10)),
                "TLS11" => Ok(Some(TlsVersion::Tls11)),
                "TLS12" => Ok(Some(TlsVersion::Tls12)),
                "TLS13" => Ok(Some(TlsVersion::Tls13)),
                other => Err(ConfigError::invalid(format!(
                    "unknown TLS version: {other}"
                ))),
            },
        }
    };
    Ok(TlsConfig {
        ca_file: text(&raw.ca_file),
        cert_file: text(&raw.cert_file),
        key_file: text(&raw.key_file),
        server_name: text(&raw.server_name),
        insecure_skip_verify: raw.insecure_skip_verify.is_some_and(|flag| flag.0),
        min_version: version(&raw.min_version)?,
        max_version: version(&raw.max_version)?,
    })
}

fn build_receiver(raw: RawReceiver, global: &GlobalConfig) -> Result<Receiver> {
    let name = text(&raw.name);
    if name.is_empty() {
        return Err(ConfigError::invalid("missing name in receiver"));
    }
    let unsupported = [
        ("pagerduty_configs", &raw.pagerduty_configs),
        ("slack_configs", &raw.slack_configs),
        ("opsgenie_configs", &raw.opsgenie_configs),
        ("wechat_configs", &raw.wechat_configs),
        ("pushover_configs", &raw.pushover_configs),
        ("victorops_configs", &raw.victorops_configs),
        ("sns_configs", &raw.sns_configs),
        ("telegram_configs", &raw.telegram_configs),
        ("discord_configs", &raw.discord_configs),
        ("webex_configs", &raw.webex_configs),
    ];
    for (key, value) in unsupported {
        let used = match value {
            None | Some(serde_yaml_ng::Value::Null) => false,
            Some(serde_yaml_ng::Value::Sequence(items)) => !items.is_empty(),
            Some(_) => true,
        };
        if used {
            return Err(ConfigError::UnsupportedIntegration {
                receiver: name,
                integration: key.to_string(),
            });
        }
    }
    let webhook_configs = raw
        .webhook_configs
        .unwrap_or_default()
        .into_iter()
        .map(|webhook| build_webhook(webhook, global))
        .collect::<Result<Vec<_>>>()?;
    let email_configs = raw
        .email_configs
        .unwrap_or_default()
        .into_iter()
        .map(|email| build_email(email, global))
        .collect::<Result<Vec<_>>>()?;
    Ok(Receiver {
        name,
        webhook_configs,
        email_configs,
    })
}

fn build_webhook(raw: RawWebhook, global: &GlobalConfig) -> Result<WebhookConfig> {
    let http_config = match raw.http_config {
        Some(http) => build_http_config(http)?,
        None => global.http_config.clone(),
    };
    let Some(url) = raw.url else {
        return Err(ConfigError::invalid("missing URL in webhook config"));
    };
    net::check_http_url(&url.0).map_err(ConfigError::invalid)?;
    Ok(WebhookConfig {
        url: url.0,
        send_resolved: raw.send_resolved.resolve(true, false, |flag| flag.0),
        max_alerts: raw.max_alerts.unwrap_or(0),
        http_config,
    })
}

/// Go's `strings.Title`: the first letter of each word upper-cased, the rest kept.
fn title_case(name: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(name.len());
    let mut previous = ' ';
    for c in name.chars() {
        if is_separator(previous) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

fn build_email(raw: RawEmail, global: &GlobalConfig) -> Result<EmailConfig> {
    let to = text(&raw.to);
    if to.is_empty() {
        return Err(ConfigError::invalid("missing to address in email config"));
    }
    let mut headers = BTreeMap::new();
    for (name, value) in raw.headers.unwrap_or_default().0 {
        let normalized = title_case(&name);
        if headers.insert(normalized.clone(), value.0).is_some() {
            return Err(ConfigError::invalid(format!(
                "duplicate header {normalized:?} in email config"
            )));
        }
    }
    let smarthost = match &raw.smarthost {
        Some(value) => net::parse_host_port(&value.0).map_err(ConfigError::invalid)?,
        None => None,
    };
    let smarthost = match smarthost.or_else(|| global.smtp_smarthost.clone()) {
        Some(smarthost) => smarthost,
        None => return Err(ConfigError::invalid("no global SMTP smarthost set")),
    };
    let mut from = text(&raw.from);
    if from.is_empty() {
        if global.smtp_from.is_empty() {
            return Err(ConfigError::invalid("no global SMTP from set"));
        }
        from = global.smtp_from.clone();
    }
    let or_global = |value: String, fallback: &str| {
        if value.is_empty() {
            fallback.to_string()
        } else {
            value
        }
    };
    let mut auth_password = Secret(text(&raw.auth_password));
    let mut auth_password_file = text(&raw.auth_password_file);
    if auth_password.is_empty() && auth_password_file.is_empty() {
        auth_password = global.smtp_auth_password.clone();
        auth_password_file = global.smtp_auth_password_file.clone();
    }
    Ok(EmailConfig {
        to,
        from,
        hello: or_global(text(&raw.hello), &global.smtp_hello),
        smarthost,
        auth_username: or_global(text(&raw.auth_username), &global.smtp_auth_username),
        auth_password,
        auth_password_file,
        auth_secret: Secret(or_global(
            text(&raw.auth_secret),
            global.smtp_auth_secret.expose(),
        )),
        auth_identity: or_global(text(&raw.auth_identity), &global.smtp_auth_identity),
        headers,
        html: raw
            .html
            .resolve(DEFAULT_EMAIL_HTML.to_string(), String::new(), |t| t.0),
        text: text(&raw.text),
        require_tls: raw
            .require_tls
            .map_or(global.smtp_require_tls, |flag| flag.0),
        tls_config: build_tls_config(raw.tls_config)?,
        send_resolved: raw.send_resolved.is_some_and(|flag| flag.0),
    })
}

/// Matchers from an old-style `match` map.
fn equal_matchers(map: Option<StrictMap<Text>>) -> Result<Vec<Matcher>> {
    let mut matchers = Vec::new();
    for (name, value) in map.unwrap_or_default().0 {
        if !is_valid_label_name(&name) {
            return Err(ConfigError::invalid(format!("invalid label name {name:?}")));
        }
        matchers.push(Matcher::new(MatchType::Equal, name, value.0)?);
    }
    Ok(matchers)
}

/// Matchers from an old-style `match_re` map. As in Alertmanager the matcher's value is the
/// anchored expression (`^(?:...)$`), which is what route keys show.
fn regex_matchers(map: Option<StrictMap<Option<Text>>>) -> Result<Vec<Matcher>> {
    let mut matchers = Vec::new();
    for (name, value) in map.unwrap_or_default().0 {
        if !is_valid_label_name(&name) {
            return Err(ConfigError::invalid(format!("invalid label name {name:?}")));
        }
        let Some(value) = value else {
            return Err(ConfigError::invalid(format!(
                "invalid regexp value for {name:?}"
            )));
        };
        let anchored = format!("^(?:{})$", value.0);
        // Compiled once as written, to report errors as Alertmanager does.
        crate::regex_compat::compile(&anchored)?;
        matchers.push(Matcher::new(MatchType::Regexp, name, anchored)?);
    }
    Ok(matchers)
}

/// Matchers from a `matchers` list of matcher strings.
fn listed_matchers(lines: Option<Vec<Text>>) -> Result<Vec<Matcher>> {
    let mut matchers = Vec::new();
    for line in lines.unwrap_or_default() {
        matchers.extend(parse_matchers(&line.0)?);
    }
    Ok(matchers)
}

fn optional_duration(value: &Option<Text>) -> Result<Option<Duration>> {
    value.as_ref().map(|v| parse_duration(&v.0)).transpose()
}

fn build_route(raw: RawRoute) -> Result<RouteConfig> {
    let mut matchers = equal_matchers(raw.match_equal)?;
    matchers.extend(regex_matchers(raw.match_re)?);
    matchers.extend(listed_matchers(raw.matchers)?);
    let mut matchers = Matchers::new(matchers);
    matchers.sort();

    let mut group_by = Vec::new();
    let mut group_by_all = false;
    for label in raw.group_by.unwrap_or_default() {
        if label.0 == "..." {
            group_by_all = true;
        } else if is_valid_label_name(&label.0) {
            group_by.push(label.0);
        } else {
            return Err(ConfigError::invalid(format!(
                "invalid label name {:?} in group_by list",
                label.0
            )));
        }
    }
    if !group_by.is_empty() && group_by_all {
        return Err(ConfigError::invalid(
            "cannot have wildcard group_by (`...`) and other labels at the same time",
        ));
    }
    let mut seen = BTreeSet::new();
    for label in &group_by {
        if !seen.insert(label) {
            return Err(ConfigError::invalid(format!(
                "duplicated label {label:?} in group_by"
            )));
        }
    }

    let group_wait = optional_duration(&raw.group_wait)?;
    let group_interval = optional_duration(&raw.group_interval)?;
    let repeat_interval = optional_duration(&raw.repeat_interval)?;
    if group_interval == Some(Duration::ZERO) {
        return Err(ConfigError::invalid("group_interval cannot be zero"));
    }
    if repeat_interval == Some(Duration::ZERO) {
        return Err(ConfigError::invalid("repeat_interval cannot be zero"));
    }

    let routes = raw
        .routes
        .unwrap_or_default()
        .into_iter()
        .map(build_route)
        .collect::<Result<Vec<_>>>()?;
    let names = |list: Option<Vec<Text>>| -> Vec<String> {
        list.unwrap_or_default().into_iter().map(|t| t.0).collect()
    };
    Ok(RouteConfig {
        receiver: raw.receiver.map(|t| t.0).filter(|r| !r.is_empty()),
        group_by,
        group_by_all,
        matchers,
        mute_time_intervals: names(raw.mute_time_intervals),
        active_time_intervals: names(raw.active_time_intervals),
        continue_matching: raw.continue_matching.is_some_and(|flag| flag.0),
        routes,
        group_wait,
        group_interval,
        repeat_interval,
    })
}

/// Every receiver a route names exists (children checked before their parent, as Alertmanager
/// does).
fn check_receivers(route: &RouteConfig, names: &BTreeSet<String>) -> Result<()> {
    for child in &route.routes {
        check_receivers(child, names)?;
    }
    match &route.receiver {
        Some(receiver) if !names.contains(receiver) => Err(ConfigError::invalid(format!(
            "undefined receiver {receiver:?} used in route"
        ))),
        _ => Ok(()),
    }
}

/// Every time interval a route names exists.
fn check_time_intervals(route: &RouteConfig, names: &BTreeSet<String>) -> Result<()> {
    for child in &route.routes {
        check_time_intervals(child, names)?;
    }
    for name in route
        .active_time_intervals
        .iter()
        .chain(&route.mute_time_intervals)
    {
        if !names.contains(name) {
            return Err(ConfigError::invalid(format!(
                "undefined time interval {name:?} used in route"
            )));
        }
    }
    Ok(())
}

fn build_inhibit_rule(raw: RawInhibitRule) -> Result<InhibitRule> {
    let mut source = equal_matchers(raw.source_match)?;
    source.extend(regex_matchers(raw.source_match_re)?);
    source.extend(listed_matchers(raw.source_matchers)?);
    let mut target = equal_matchers(raw.target_match)?;
    target.extend(regex_matchers(raw.target_match_re)?);
    target.extend(listed_matchers(raw.target_matchers)?);
    let mut equal = Vec::new();
    for label in raw.equal.unwrap_or_default() {
        if !is_valid_label_name(&label.0) {
            return Err(ConfigError::invalid(format!(
                "{:?} is not a valid label name",
                label.0
            )));
        }
        if !equal.contains(&label.0) {
            equal.push(label.0);
        }
    }
    Ok(InhibitRule {
        source_matchers: Matchers::new(source),
        target_matchers: Matchers::new(target),
        equal,
    })
}

fn build_named_time_interval(raw: RawNamedTimeInterval, kind: &str) -> Result<NamedTimeInterval> {
    let name = text(&raw.name);
    if name.is_empty() {
        return Err(ConfigError::invalid(format!("missing name in {kind}")));
    }
    let time_intervals = raw
        .time_intervals
        .unwrap_or_default()
        .into_iter()
        .map(build_time_interval)
        .collect::<Result<Vec<_>>>()?;
    Ok(NamedTimeInterval {
        name,
        time_intervals,
    })
}

fn build_time_interval(raw: RawTimeInterval) -> Result<TimeInterval> {
    fn ranges(
        list: Option<Vec<Text>>,
        parse: fn(&str) -> Result<time_interval::InclusiveRange>,
    ) -> Result<Option<Vec<time_interval::InclusiveRange>>> {
        list.map(|items| items.iter().map(|item| parse(&item.0)).collect())
            .transpose()
    }
    let times = raw
        .times
        .map(|times| {
            times
                .iter()
                .map(|range| {
                    time_interval::parse_time_range(
                        &text(&range.start_time),
                        &text(&range.end_time),
                    )
                })
                .collect::<Result<Vec<TimeRange>>>()
        })
        .transpose()?;
    Ok(TimeInterval {
        times,
        weekdays: ranges(raw.weekdays, time_interval::parse_weekday_range)?,
        days_of_month: ranges(raw.days_of_month, time_interval::parse_day_of_month_range)?,
        months: ranges(raw.months, time_interval::parse_month_range)?,
        years: ranges(raw.years, time_interval::parse_year_range)?,
        location: raw
            .location
            .map(|name| time_interval::parse_location(&name.0))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_config;

    fn load(yaml: &str) -> RoutingConfig {
        parse_config(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn refused(yaml: &str) -> String {
        match parse_config(yaml) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_alertmanagers() {
        let config = load("route: {receiver: a}\nreceivers: [{name: a}]\n");
        let global = config.global();
        assert_eq!(global.resolve_timeout, DEFAULT_RESOLVE_TIMEOUT);
        assert_eq!(global.smtp_hello, "localhost");
        assert!(global.smtp_require_tls);
        assert!(global.http_config.follow_redirects);
        assert!(global.http_config.enable_http2);
        let root = config.route_tree().root().options();
        assert_eq!(root.group_wait, Duration::from_secs(30));
        assert_eq!(root.group_interval, Duration::from_secs(300));
        assert_eq!(root.repeat_interval, Duration::from_secs(14_400));
        assert_eq!(
            config.original(),
            "route: {receiver: a}\nreceivers: [{name: a}]\n"
        );
    }

    #[test]
    fn email_takes_global_smtp_settings() {
        let config = load(
            r#"
global:
  smtp_from: alerts@example.org
  smtp_smarthost: smtp.example.org:587
  smtp_auth_username: alerts
  smtp_auth_password: hunter2
  smtp_require_tls: false
route: {receiver: mail}
receivers:
- name: mail
  email_configs:
  - to: oncall@example.org
    headers: {subject: Alert, x-team: db}
  - to: other@example.org
    from: other@example.org
    require_tls: true
    send_resolved: true
"#,
        );
        let emails = &config.receivers()[0].email_configs;
        assert_eq!(emails[0].from, "alerts@example.org");
        assert_eq!(emails[0].smarthost.to_string(), "smtp.example.org:587");
        assert_eq!(emails[0].auth_username, "alerts");
        assert_eq!(emails[0].auth_password.expose(), "hunter2");
        assert_eq!(format!("{:?}", emails[0].auth_password), "<secret>");
        assert!(!emails[0].require_tls);
        assert!(!emails[0].send_resolved);
        assert_eq!(emails[0].html, DEFAULT_EMAIL_HTML);
        assert_eq!(
            emails[0].headers.keys().collect::<Vec<_>>(),
            ["Subject", "X-Team"]
        );
        assert_eq!(emails[1].from, "other@example.org");
        assert!(emails[1].require_tls);
        assert!(emails[1].send_resolved);
    }

    #[test]
    fn webhook_defaults_and_bearer_tokens() {
        let config = load(
            r#"
global:
  http_config:
    basic_auth: {username: u, password: p}
route: {receiver: hook}
receivers:
- name: hook
  webhook_configs:
  - url: https://hooks.example.org/a
  - url: http://hooks.example.org/b
    send_resolved: false
    max_alerts: 10
    http_config:
      bearer_token: abc
      tls_config: {insecure_skip_verify: true, min_version: TLS12}
"#,
        );
        let hooks = &config.receivers()[0].webhook_configs;
        assert!(hooks[0].send_resolved);
        assert_eq!(hooks[0].max_alerts, 0);
        assert_eq!(
            hooks[0]
                .http_config
                .basic_auth
                .as_ref()
                .map(|a| a.username.as_str()),
            Some("u")
        );
        assert!(!hooks[1].send_resolved);
        assert_eq!(hooks[1].max_alerts, 10);
        let auth = hooks[1].http_config.authorization.as_ref();
        assert_eq!(auth.map(|a| a.auth_type.as_str()), Some("Bearer"));
        assert_eq!(auth.map(|a| a.credentials.expose()), Some("abc"));
        assert!(hooks[1].http_config.basic_auth.is_none());
        assert_eq!(
            hooks[1].http_config.tls_config.min_version,
            Some(TlsVersion::Tls12)
        );
    }

    #[test]
    fn validation_uses_alertmanagers_words() {
        let cases = [
            (
                "route: {receiver: a, bogus: 1}\nreceivers: [{name: a}]",
                "unknown field `bogus`",
            ),
            (
                "route: {}\nreceivers: [{name: a}]",
                "root route must specify a default receiver",
            ),
            (
                "route: {receiver: b}\nreceivers: [{name: a}]",
                "undefined receiver \"b\" used in route",
            ),
            (
                "route: {receiver: a, matchers: [x=y]}\nreceivers: [{name: a}]",
                "root route must not have any matchers",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a}, {name: a}]",
                "notification config name \"a\" is not unique",
            ),
            (
                "route: {receiver: a, routes: [{mute_time_intervals: [x]}]}\nreceivers: [{name: a}]",
                "undefined time interval \"x\" used in route",
            ),
            (
                "route: {receiver: a, group_by: ['...', x]}\nreceivers: [{name: a}]",
                "cannot have wildcard group_by",
            ),
            (
                "route: {receiver: a, group_by: [x, x]}\nreceivers: [{name: a}]",
                "duplicated label \"x\" in group_by",
            ),
            (
                "route: {receiver: a, continue: true}\nreceivers: [{name: a}]",
                "cannot have continue in root route",
            ),
            ("", "no route provided in config"),
            ("route:\nreceivers: [{name: a}]", "no routes provided"),
            (
                "route: {receiver: a, routes: [{matchers: ['a=~\"(\"']}]}\nreceivers: [{name: a}]",
                "error parsing regexp",
            ),
            (
                "route: {receiver: a, routes: [{matchers: ['a']}]}\nreceivers: [{name: a}]",
                "bad matcher format: a",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: x}]}]",
                "no global SMTP smarthost set",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'ftp://x'}]}]",
                "unsupported scheme \"ftp\" for URL",
            ),
            (
                "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url_file: /x}]}]",
                "unknown field `url_file`",
            ),
            (
                "route: {receiver: a}\ninhibit_rules: [{equal: ['a-b']}]\nreceivers: [{name: a}]",
                "\"a-b\" is not a valid label name",
            ),
        ];
        for (yaml, expected) in cases {
            let message = refused(yaml);
            assert!(
                message.contains(expected),
                "{yaml}\n=> {message}\nwanted {expected}"
            );
        }
    }

    #[test]
    fn unsupported_integrations_name_key_and_receiver() {
        let message = refused(
            "route: {receiver: chat}\nreceivers:\n- name: chat\n  slack_configs:\n  - {api_url: 'https://x', channel: '#a'}\n",
        );
        assert_eq!(
            message,
            "receiver \"chat\" uses slack_configs, which Pharos does not deliver; supported \
             integrations are webhook_configs and email_configs"
        );
        // An empty list delivers nothing and is accepted.
        load("route: {receiver: a}\nreceivers: [{name: a, slack_configs: []}]");
    }

    #[test]
    fn match_re_values_are_anchored_like_alertmanager() {
        let config = load(
            "route: {receiver: a, routes: [{match_re: {team: 'a|b'}, match: {env: prod}}]}\nreceivers: [{name: a}]",
        );
        let child = &config.route_tree().nodes()[1];
        assert_eq!(
            child.matchers().to_string(),
            r#"{env="prod",team=~"^(?:a|b)$"}"#
        );
    }

    #[test]
    fn route_muting_follows_mute_and_active_intervals() {
        let config = load(
            r#"
route:
  receiver: a
  routes:
  - matchers: [x=muted]
    mute_time_intervals: [weekend]
  - matchers: [x=active]
    active_time_intervals: [weekend]
time_intervals:
- name: weekend
  time_intervals: [{weekdays: [saturday, sunday]}]
receivers: [{name: a}]
"#,
        );
        let saturday = DateTime::parse_from_rfc3339("2024-03-09T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let monday = DateTime::parse_from_rfc3339("2024-03-11T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let nodes = config.route_tree().nodes();
        assert!(config.is_route_muted(&nodes[1], saturday));
        assert!(!config.is_route_muted(&nodes[1], monday));
        assert!(!config.is_route_muted(&nodes[2], saturday));
        assert!(config.is_route_muted(&nodes[2], monday));
        assert!(!config.is_route_muted(&nodes[0], monday));
    }

    #[test]
    fn null_values_set_zero_values_as_yaml_v2_does() {
        let config = load(
            r#"
global:
  resolve_timeout:
  smtp_hello: null
  smtp_require_tls:
  smtp_from: a@example.org
  smtp_smarthost: 'mail:25'
route: {receiver: a}
receivers:
- name: a
  webhook_configs:
  - url: http://x/
    send_resolved:
    http_config: {follow_redirects: null}
  email_configs:
  - to: b@example.org
    html:
"#,
        );
        let global = config.global();
        assert_eq!(global.resolve_timeout, Duration::ZERO);
        assert_eq!(global.smtp_hello, "");
        assert!(!global.smtp_require_tls);
        let receiver = &config.receivers()[0];
        assert!(!receiver.webhook_configs[0].send_resolved);
        assert!(!receiver.webhook_configs[0].http_config.follow_redirects);
        assert!(receiver.webhook_configs[0].http_config.enable_http2);
        assert_eq!(receiver.email_configs[0].html, "");
        assert!(!receiver.email_configs[0].require_tls);
    }

    #[test]
    fn title_case_matches_go() {
        assert_eq!(title_case("subject"), "Subject");
        assert_eq!(title_case("x-foo"), "X-Foo");
        assert_eq!(title_case("X-FOO"), "X-FOO");
        assert_eq!(title_case("reply_to"), "Reply_to");
    }
}
