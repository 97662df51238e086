//! Email notifications over SMTP: [`render`] turns a [`Notification`] into an [`EmailMessage`]
//! (Alertmanager 0.25's default subject, a plain-text body and a simple HTML body) for one
//! receiver's `email_configs` entry, and [`EmailSender::deliver`] sends it through the entry's
//! smarthost with lettre, with the webhook sender's [`RetryPolicy`], [`Attempt`] reports and
//! [`Delivery`] outcome.
//!
//! How the connection is made follows Alertmanager's `notify/email/email.go`: port 465 is TLS
//! from the first byte; any other port starts in plain text and upgrades with STARTTLS, which
//! is required when `require_tls` is set (the default) and used when offered otherwise
//! (Alertmanager does not try it then). `hello` is the EHLO name; when `auth_username` is set
//! the sender logs in with PLAIN or LOGIN, the password coming from `auth_password` or
//! `auth_password_file`. The `Message-Id` is derived from the delivery's idempotency key
//! ([`message_id`]), so a message sent again after a crash can be recognised as the same one.
//!
//! Which failures are worth another attempt: connection and TLS failures, timeouts and SMTP
//! 4xx replies; an SMTP 5xx reply, an address the message cannot carry or a setting lettre
//! cannot honour fails the delivery at once, with what to fix.
//!
//! Not supported yet, and refused with an error naming the setting: `html` and `text`
//! templates other than Alertmanager's defaults, templates in `to`, `from` and `headers`
//! (except the default `Subject`), CRAM-MD5 (`auth_secret` without a password), a PLAIN
//! `auth_identity` other than the user, and TLS versions rustls does not speak (below 1.2, or a
//! `max_version` below 1.3).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, Identity, Tls, TlsParameters, TlsVersion as SmtpTlsVersion,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pharos_routing::config::{DEFAULT_EMAIL_HTML, EmailConfig, TlsConfig, TlsVersion};
use pharos_routing::labels::LabelSet;

use super::body::WebhookMessage;
use super::retry::{Answer, deliver_with_retries};
use super::webhook::{Attempt, Delivery, RetryPolicy};
use super::{AlertStatus, Notification, NotifiedAlert};

/// The `Subject` header Alertmanager puts in every email config that sets none; it stands for
/// the subject [`render`] computes.
pub const DEFAULT_SUBJECT_TEMPLATE: &str = r#"{{ template "email.default.subject" . }}"#;
/// The domain of every [`message_id`].
pub const MESSAGE_ID_DOMAIN: &str = "pharos";
/// The port of SMTP over implicit TLS (`smtps`).
const SMTPS_PORT: u16 = 465;
/// The EHLO name when `hello` is empty, as Go's `net/smtp` says.
const DEFAULT_HELLO: &str = "localhost";
/// Headers Pharos writes itself: setting them would break the message or its identity.
const RESERVED_HEADERS: [&str; 5] = [
    "Message-Id",
    "Date",
    "Mime-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Why a notification cannot be rendered as an email.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A template other than Alertmanager's default; Pharos does not execute Go templates.
    #[error(
        "email config {field}: templates other than Alertmanager's default are not supported \
         yet; remove the setting to use the default"
    )]
    UnsupportedTemplate { field: String },
    /// A setting that cannot make a valid message (an address, a header).
    #[error("email config {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
}

impl EmailError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EmailError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One email, ready to send: what [`render`] makes of a notification for one email config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body; empty when the config's `html` is empty, and then the message is plain
    /// text only (as Alertmanager sends no HTML part then).
    pub html: String,
    /// The recipients, one mailbox each (`ops@example.org`, `Ops <ops@example.org>`).
    pub to: Vec<String>,
    /// The sender's mailbox.
    pub from: String,
    /// Extra headers from the config, `Subject` excepted (it is in `subject`). A `To` or
    /// `From` here replaces the header shown, not the envelope.
    pub headers: BTreeMap<String, String>,
}

/// The email for `notification` under `config`.
///
/// The subject is Alertmanager's default `__subject`
/// (`[FIRING:2] <group label values> (<other common label values>)`, a trailing space
/// included when there are none), unless a `Subject` header other than
/// [`DEFAULT_SUBJECT_TEMPLATE`] replaces it. The text body lists each alert (status, labels,
/// annotations, start, end, source link); the HTML body shows the same as tables. The HTML is
/// not Alertmanager's full default `email.default.html` template, only a readable rendering of
/// the same content. `to` may hold several comma-separated addresses.
pub fn render(
    config: &EmailConfig,
    notification: &Notification,
) -> Result<EmailMessage, EmailError> {
    refuse_template("to", &config.to)?;
    refuse_template("from", &config.from)?;
    let to = parse_address_list(&config.to)?;
    let from = parse_mailbox(&config.from).map_err(|reason| EmailError::invalid("from", reason))?;

    let html_wanted = match config.html.trim() {
        "" => false,
        html if html == DEFAULT_EMAIL_HTML => true,
        _ => {
            return Err(EmailError::UnsupportedTemplate {
                field: "html".to_owned(),
            });
        }
    };
    if !config.text.trim().is_empty() {
        return Err(EmailError::UnsupportedTemplate {
            field: "text".to_owned(),
        });
    }

    let data = WebhookMessage::new(notification, &notification.alerts);
    let firing = notification
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count();
    let mut subject = default_subject(
        data.status,
        firing,
        &notification.group_labels,
        &data.common_labels,
    );

    let mut headers = BTreeMap::new();
    for (name, value) in &config.headers {
        let field = format!("headers.{name}");
        if name.eq_ignore_ascii_case("subject") {
            if value.trim() != DEFAULT_SUBJECT_TEMPLATE {
                refuse_template(&field, value)?;
                subject = value.clone();
            }
            continue;
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        {
            return Err(EmailError::invalid(
                field,
                "Pharos sets this header itself; remove it",
            ));
        }
        if HeaderName::new_from_ascii(name.clone()).is_err() {
            return Err(EmailError::invalid(
                field,
                "not a valid header name (ASCII, at most 76 characters, no space or colon)",
            ));
        }
        refuse_template(&field, value)?;
        headers.insert(name.clone(), value.clone());
    }

    let text = text_body(notification, firing);
    let html = if html_wanted {
        html_body(notification, &subject, firing)
    } else {
        String::new()
    };
    Ok(EmailMessage {
        subject,
        text,
        html,
        to,
        from,
        headers,
    })
}

/// The `Message-Id` of the message delivered under `idempotency_key`: `<key@pharos>`, with the
/// characters a message id cannot hold (and `=`) written as `=XX`.
pub fn message_id(idempotency_key: &str) -> String {
    let mut id = String::with_capacity(idempotency_key.len() + MESSAGE_ID_DOMAIN.len() + 3);
    id.push('<');
    for byte in idempotency_key.bytes() {
        // RFC 5322 `atext` and the dots of a `dot-atom-text`.
        let plain = byte.is_ascii_alphanumeric() || b"!#$%&'*+-/?^_`{|}~.".contains(&byte);
        if plain {
            id.push(char::from(byte));
        } else {
            let _ = write!(id, "={byte:02X}");
        }
    }
    id.push('@');
    id.push_str(MESSAGE_ID_DOMAIN);
    id.push('>');
    id
}

/// Alertmanager's `__subject`: `[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{
/// .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }} {{ if
/// gt (len .CommonLabels) (len .GroupLabels) }}({{ with .CommonLabels.Remove
/// .GroupLabels.Names }}{{ .Values | join " " }}{{ end }}){{ end }}`.
fn default_subject(
    status: AlertStatus,
    firing: usize,
    group_labels: &LabelSet,
    common_labels: &BTreeMap<String, String>,
) -> String {
    let mut subject = format!("[{}", status.as_str().to_uppercase());
    if status == AlertStatus::Firing {
        let _ = write!(subject, ":{firing}");
    }
    subject.push_str("] ");
    // A BTreeMap iterates by name in byte order, Go's `SortedPairs` order.
    subject.push_str(&join(group_labels.values()));
    subject.push(' ');
    if common_labels.len() > group_labels.len() {
        let rest = common_labels
            .iter()
            .filter(|(name, _)| !group_labels.contains_key(*name))
            .map(|(_, value)| value);
        subject.push('(');
        subject.push_str(&join(rest));
        subject.push(')');
    }
    subject
}

fn join<'a>(values: impl Iterator<Item = &'a String>) -> String {
    values.map(String::as_str).collect::<Vec<_>>().join(" ")
}

/// Refuses a value holding a Go template, which Pharos does not execute.
fn refuse_template(field: &str, value: &str) -> Result<(), EmailError> {
    if value.contains("{{") {
        return Err(EmailError::UnsupportedTemplate {
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// The mailboxes of a comma-separated list (commas inside quotes or angle brackets do not
/// separate), each written back in its canonical form.
fn parse_address_list(list: &str) -> Result<Vec<String>, EmailError> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in list.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                pieces.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    pieces.push(current);

    let mut mailboxes = Vec::new();
    for piece in pieces {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let mailbox = parse_mailbox(piece).map_err(|reason| EmailError::invalid("to", reason))?;
        mailboxes.push(mailbox);
    }
    if mailboxes.is_empty() {
        return Err(EmailError::invalid("to", "no address"));
    }
    Ok(mailboxes)
}

/// One mailbox (`a@example.org` or `Name <a@example.org>`), in lettre's canonical form. lettre
/// ignores what follows a mailbox it recognised, so the text must end where the address does.
fn parse_mailbox(text: &str) -> Result<String, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not an email address");
    let mailbox: Mailbox = text.parse().map_err(|_| invalid())?;
    let address = mailbox.email.to_string();
    let bracketed = format!("<{address}>");
    if !(text.ends_with(&bracketed) || text == address) {
        return Err(invalid());
    }
    Ok(mailbox.to_string())
}

/// `2 alerts for alertname=HighLatency job=api`, the heading of Alertmanager's HTML email.
fn heading(notification: &Notification) -> String {
    let count = notification.alerts.len();
    let mut heading = format!("{count} alert{}", if count == 1 { "" } else { "s" });
    if !notification.group_labels.is_empty() {
        heading.push_str(" for");
        for (name, value) in &notification.group_labels {
            let _ = write!(heading, " {name}={value}");
        }
    }
    heading
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The alerts of one status, with the section's title (`[2] Firing`).
fn sections(notification: &Notification, firing: usize) -> Vec<(String, Vec<&NotifiedAlert>)> {
    let mut sections = Vec::new();
    for (status, count, title) in [
        (AlertStatus::Firing, firing, "Firing"),
        (
            AlertStatus::Resolved,
            notification.alerts.len() - firing,
            "Resolved",
        ),
    ] {
        if count > 0 {
            let alerts = notification
                .alerts
                .iter()
                .filter(|a| a.status == status)
                .collect();
            sections.push((format!("[{count}] {title}"), alerts));
        }
    }
    sections
}

/// The plain-text body: Alertmanager's `__text_alert_list` layout, grouped as its HTML email
/// groups alerts (firing first), with times and the status of each alert.
fn text_body(notification: &Notification, firing: usize) -> String {
    let mut text = heading(notification);
    text.push('\n');
    for (title, alerts) in sections(notification, firing) {
        let _ = write!(text, "\n{title}\n");
        for alert in alerts {
            let _ = write!(text, "\nStatus: {}\nLabels:\n", alert.status);
            for (name, value) in &alert.labels {
                let _ = writeln!(text, " - {name} = {value}");
            }
            if !alert.annotations.is_empty() {
                text.push_str("Annotations:\n");
                for (name, value) in &alert.annotations {
                    let _ = writeln!(text, " - {name} = {value}");
                }
            }
            let _ = writeln!(text, "Starts at: {}", time(alert.starts_at));
            if let (AlertStatus::Resolved, Some(ends_at)) = (alert.status, alert.ends_at) {
                let _ = writeln!(text, "Ends at: {}", time(ends_at));
            }
            if !alert.generator_url.is_empty() {
                let _ = writeln!(text, "Source: {}", alert.generator_url);
            }
        }
    }
    if !notification.external_url.is_empty() {
        let _ = write!(text, "\nSent by Pharos: {}\n", notification.external_url);
    }
    text
}

/// Text safe inside HTML elements and quoted attributes.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A link when `url` is http(s), plain text otherwise (no `javascript:` links from labels).
fn link(html: &mut String, url: &str, text: &str) {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let _ = write!(
            html,
            r#"<a href="{}" style="color: #348eda;">{}</a>"#,
            Escaped(url),
            Escaped(text)
        );
    } else {
        let _ = write!(html, "{}", Escaped(text));
    }
}

const CELL: &str = "padding: 4px 8px; border: 1px solid #e9e9e9; vertical-align: top;";

/// A titled group of rows, one per pair; nothing when there are no pairs.
fn pairs_rows(html: &mut String, title: &str, pairs: &BTreeMap<String, String>) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(
        html,
        "<tr><th colspan=\"2\" style=\"{CELL} text-align: left;\">{title}</th></tr>"
    );
    for (key, value) in pairs {
        let _ = writeln!(
            html,
            "<tr><td style=\"{CELL}\">{}</td><td style=\"{CELL}\">{}</td></tr>",
            Escaped(key),
            Escaped(value)
        );
    }
}

/// The HTML body: the heading, then a table per alert (labels, annotations, times, source).
fn html_body(notification: &Notification, subject: &str, firing: usize) -> String {
    let mut html = String::with_capacity(2048 + 1024 * notification.alerts.len());
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html>\n<head>\n\
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
         <title>{}</title>\n</head>\n\
         <body style=\"font-family: 'Helvetica Neue', Helvetica, Arial, sans-serif; \
         font-size: 14px; color: #333; margin: 0; padding: 16px;\">\n\
         <h2 style=\"font-size: 16px; font-weight: 500; color: #fff; background-color: \
         #E6522C; margin: 0 0 16px; padding: 16px;\">{}</h2>\n",
        Escaped(subject),
        Escaped(&heading(notification))
    );
    for (title, alerts) in sections(notification, firing) {
        let _ = writeln!(
            html,
            "<h3 style=\"font-size: 14px; margin: 16px 0 8px;\">{}</h3>",
            Escaped(&title)
        );
        for alert in alerts {
            let color = match alert.status {
                AlertStatus::Firing => "#E6522C",
                AlertStatus::Resolved => "#3c9a3c",
            };
            let _ = writeln!(
                html,
                "<table style=\"border-collapse: collapse; margin: 0 0 16px; min-width: 400px;\">\n\
                 <tr><th colspan=\"2\" style=\"{CELL} text-align: left; color: #fff; \
                 background-color: {color};\">{}</th></tr>",
                alert.status
            );
            pairs_rows(&mut html, "Labels", &alert.labels);
            pairs_rows(&mut html, "Annotations", &alert.annotations);
            let _ = writeln!(
                html,
                "<tr><td style=\"{CELL}\">Starts at</td><td style=\"{CELL}\">{}</td></tr>",
                time(alert.starts_at)
            );
            if let (AlertStatus::Resolved, Some(ends_at)) = (alert.status, alert.ends_at) {
                let _ = writeln!(
                    html,
                    "<tr><td style=\"{CELL}\">Ends at</td><td style=\"{CELL}\">{}</td></tr>",
                    time(ends_at)
                );
            }
            if !alert.generator_url.is_empty() {
                let _ = write!(
                    html,
                    "<tr><td style=\"{CELL}\">Source</td><td style=\"{CELL}\">"
                );
                link(&mut html, &alert.generator_url, &alert.generator_url);
                html.push_str("</td></tr>\n");
            }
            html.push_str("</table>\n");
        }
    }
    if !notification.external_url.is_empty() {
        html.push_str("<p style=\"font-size: 12px; color: #999;\">");
        link(&mut html, &notification.external_url, "Sent by Pharos");
        html.push_str("</p>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// Sends rendered emails. It keeps no connection: each attempt connects, sends and quits, so
/// a changed smarthost or password file is used at the next attempt.
#[derive(Debug, Clone)]
pub struct EmailSender {
    policy: RetryPolicy,
}

impl Answer {
    fn permanent(error: String) -> Self {
        Answer::Permanent {
            status: None,
            error,
        }
    }
}

/// How the connection is secured, from the port and `require_tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, and no message without it.
    StartTlsRequired,
    /// STARTTLS when the server offers it.
    StartTlsOpportunistic,
}

fn security(port: u16, require_tls: bool) -> Security {
    if port == SMTPS_PORT {
        Security::Implicit
    } else if require_tls {
        Security::StartTlsRequired
    } else {
        Security::StartTlsOpportunistic
    }
}

impl EmailSender {
    /// A sender following `policy` (a policy of no attempts still makes one).
    pub fn new(policy: RetryPolicy) -> Self {
        EmailSender { policy }
    }

    /// The policy every delivery follows.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends `message` through `config`'s smarthost until the server takes it, refuses it for
    /// good or attempts run out. Every attempt carries the same `Message-Id`
    /// ([`message_id`] of `idempotency_key`); `now` gives the time of each attempt (its
    /// start and the `Date` header); `on_attempt` hears of every attempt, in order, before
    /// the wait that may follow it. `Delivered.http_status` holds the SMTP reply code (250).
    pub async fn deliver(
        &self,
        config: &EmailConfig,
        message: &EmailMessage,
        idempotency_key: &str,
        now: impl Fn() -> DateTime<Utc> + Send + Sync,
        on_attempt: impl FnMut(&Attempt) + Send,
    ) -> Delivery {
        let server = config.smarthost.to_string();
        deliver_with_retries(
            &self.policy,
            "email",
            &server,
            &now,
            on_attempt,
            |started_at| self.attempt(config, message, idempotency_key, started_at),
        )
        .await
    }

    /// One connection: build the transport and the message, send, classify the outcome.
    async fn attempt(
        &self,
        config: &EmailConfig,
        message: &EmailMessage,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> Answer {
        let transport = match transport(config, self.policy.timeout).await {
            Ok(transport) => transport,
            Err(error) => return Answer::permanent(error),
        };
        let email = match build_message(message, idempotency_key, now) {
            Ok(email) => email,
            Err(error) => return Answer::permanent(error),
        };
        let server = config.smarthost.to_string();
        match tokio::time::timeout(self.policy.timeout, transport.send(email)).await {
            Err(_) => Answer::Transient {
                retry_after: None,
                status: None,
                error: format!(
                    "the SMTP server did not take the message within {:?}",
                    self.policy.timeout
                ),
                advice: "check that the SMTP server is healthy and the routing file's smarthost",
            },
            Ok(Ok(response)) => Answer::Success(u16::from(response.code())),
            Ok(Err(error)) => classify(&error, &server, config.require_tls),
        }
    }
}

/// The answer a lettre error stands for, with what to check or fix.
fn classify(error: &lettre::transport::smtp::Error, server: &str, require_tls: bool) -> Answer {
    if let Some(code) = error.status() {
        let code = u16::from(code);
        let text = source_text(error)
            .map(|text| format!("the SMTP server answered {code} {text}"))
            .unwrap_or_else(|| format!("the SMTP server answered {code}"));
        if error.is_transient() {
            return Answer::Transient {
                retry_after: None,
                status: Some(code),
                error: text,
                advice: "the SMTP server is deferring the message; see its logs",
            };
        }
        let fix = match code {
            530 | 534 | 535 | 538 => {
                "check the email config's auth_username and auth_password (or auth_password_file)"
            }
            550 | 551 | 553 => {
                "check the email config's to and from addresses, and that the server relays mail \
                 for this sender"
            }
            501 | 555 => "check the email config's to and from addresses",
            552 => "the message is larger than the server takes; group fewer alerts",
            _ => "see the SMTP server's logs and check the email config",
        };
        return Answer::Permanent {
            status: Some(code),
            error: format!("{text}; {fix}"),
        };
    }
    let detail = error_chain(error);
    if error.is_client() {
        let error = if detail.contains("STARTTLS") {
            let tls = if require_tls {
                "require_tls: true (the default)"
            } else {
                "STARTTLS"
            };
            format!(
                "{tls}, but the SMTP server {server} does not advertise the STARTTLS extension; \
                 use port 465, a server that offers STARTTLS, or set require_tls: false"
            )
        } else if detail.contains("authentication mechanism") {
            format!(
                "the SMTP server {server} offers neither AUTH PLAIN nor AUTH LOGIN; remove \
                 auth_username if it needs no login, or use a server that offers them"
            )
        } else {
            format!("the message cannot be sent to {server}: {detail}; check the email config")
        };
        return Answer::permanent(error);
    }
    if error.is_tls() {
        return Answer::Transient {
            retry_after: None,
            status: None,
            error: format!("TLS with the SMTP server failed: {detail}"),
            advice: "check the email config's tls_config (ca_file, server_name) and that the \
                     server speaks TLS on this port",
        };
    }
    Answer::Transient {
        retry_after: None,
        status: None,
        error: format!("could not talk to the SMTP server: {detail}"),
        advice: "check that the SMTP server is reachable and the routing file's smarthost",
    }
}

/// The text a lettre error carries after its kind (the server's reply, for a reply error).
fn source_text(error: &lettre::transport::smtp::Error) -> Option<String> {
    std::error::Error::source(error)
        .map(|source| source.to_string())
        .filter(|text| !text.is_empty())
}

/// An error and its sources, `a: b: c`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // lettre repeats its source in its own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The port of a smarthost: a number or one of the SMTP service names.
fn port(text: &str) -> Result<u16, String> {
    match text {
        "smtp" => Ok(25),
        "submission" => Ok(587),
        "smtps" | "submissions" => Ok(SMTPS_PORT),
        _ => text.parse().map_err(|_| {
            format!("the smarthost port {text:?} is not a port number; fix the email config")
        }),
    }
}

/// The EHLO name: an address literal for an IP, the name otherwise.
fn client_id(hello: &str) -> ClientId {
    if hello.is_empty() {
        return ClientId::Domain(DEFAULT_HELLO.to_owned());
    }
    if let Ok(ip) = hello.parse::<Ipv4Addr>() {
        return ClientId::Ipv4(ip);
    }
    if let Ok(ip) = hello.parse::<Ipv6Addr>() {
        return ClientId::Ipv6(ip);
    }
    ClientId::Domain(hello.to_owned())
}

/// The transport for one attempt; an error says which setting to fix, never a secret.
async fn transport(
    config: &EmailConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = &config.smarthost.host;
    let port = port(&config.smarthost.port)?;
    let parameters = tls_parameters(host, &config.tls_config).await?;
    let tls = match security(port, config.require_tls) {
        Security::Implicit => Tls::Wrapper(parameters),
        Security::StartTlsRequired => Tls::Required(parameters),
        Security::StartTlsOpportunistic => Tls::Opportunistic(parameters),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(port)
        .tls(tls)
        .hello_name(client_id(&config.hello))
        .timeout(Some(timeout));
    if let Some(credentials) = credentials(config).await? {
        builder = builder
            .credentials(credentials)
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(builder.build())
}

/// The login, when `auth_username` is set.
async fn credentials(config: &EmailConfig) -> Result<Option<Credentials>, String> {
    let username = &config.auth_username;
    if username.is_empty() {
        return Ok(None);
    }
    if !config.auth_identity.is_empty() && config.auth_identity != *username {
        return Err(
            "auth_identity other than auth_username is not supported yet; remove it \
                    from the email config"
                .to_owned(),
        );
    }
    let password = if !config.auth_password.is_empty() {
        config.auth_password.expose().to_owned()
    } else if !config.auth_password_file.is_empty() {
        let path = &config.auth_password_file;
        let content = tokio::fs::read_to_string(path).await.map_err(|e| {
            format!("cannot read auth_password_file {path:?}: {e}; fix the email config")
        })?;
        content.trim().to_owned()
    } else if !config.auth_secret.is_empty() {
        return Err(
            "CRAM-MD5 (auth_secret) is not supported; set auth_password or \
                    auth_password_file in the email config"
                .to_owned(),
        );
    } else {
        return Err(
            "auth_username is set but auth_password and auth_password_file are \
                    not; set one in the email config"
                .to_owned(),
        );
    };
    Ok(Some(Credentials::new(username.clone(), password)))
}

/// TLS settings from `tls_config`; the server name defaults to the smarthost's host.
async fn tls_parameters(host: &str, tls: &TlsConfig) -> Result<TlsParameters, String> {
    let read = |field: &'static str, path: String| async move {
        tokio::fs::read(&path).await.map_err(|e| {
            format!("cannot read tls_config.{field} {path:?}: {e}; fix the email config")
        })
    };
    let domain = if tls.server_name.is_empty() {
        host
    } else {
        &tls.server_name
    };
    let mut builder = TlsParameters::builder(domain.to_owned());
    if !tls.ca_file.is_empty() {
        let pem = read("ca_file", tls.ca_file.clone()).await?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "tls_config.ca_file {:?} holds no PEM certificate: {e}; fix the email config",
                tls.ca_file
            )
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    match (tls.cert_file.is_empty(), tls.key_file.is_empty()) {
        (true, true) => {}
        (false, false) => {
            let cert = read("cert_file", tls.cert_file.clone()).await?;
            let key = read("key_file", tls.key_file.clone()).await?;
            let identity = Identity::from_pem(&cert, &key).map_err(|e| {
                format!(
                    "tls_config.cert_file and key_file are not a PEM certificate and key: {e}; \
                     fix the email config"
                )
            })?;
            builder = builder.identify_with(identity);
        }
        _ => {
            return Err(
                "tls_config needs both cert_file and key_file, or neither; fix the email config"
                    .to_owned(),
            );
        }
    }
    if tls.insecure_skip_verify {
        builder = builder.dangerous_accept_invalid_certs(true);
    }
    match tls.min_version {
        None | Some(TlsVersion::Tls12) => {}
        Some(TlsVersion::Tls13) => builder = builder.set_min_tls_version(SmtpTlsVersion::Tlsv13),
        Some(TlsVersion::Tls10 | TlsVersion::Tls11) => {
            return Err(
                "tls_config.min_version below TLS12 is not supported for email; raise \
                        it to TLS12 in the email config"
                    .to_owned(),
            );
        }
    }
    if tls
        .max_version
        .is_some_and(|version| version < TlsVersion::Tls13)
    {
        return Err(
            "tls_config.max_version below TLS13 is not supported for email yet; \
                    remove it from the email config"
                .to_owned(),
        );
    }
    builder.build_rustls().map_err(|e| {
        format!(
            "the TLS settings are refused: {}; fix the email config's tls_config",
            error_chain(&e)
        )
    })
}

/// The lettre message: headers, a multipart/alternative body (text, then HTML, the preferred
/// alternative last) or plain text alone, and an envelope from `from` and `to` whatever the
/// headers show.
fn build_message(
    message: &EmailMessage,
    key: &str,
    date: DateTime<Utc>,
) -> Result<Message, String> {
    let fix =
        |field: &str, e: &dyn fmt::Display| format!("email {field}: {e}; fix the email config");
    let from: Mailbox = message.from.parse().map_err(|e| fix("from", &e))?;
    let mut to = Vec::with_capacity(message.to.len());
    for address in &message.to {
        let mailbox: Mailbox = address.parse().map_err(|e| fix("to", &e))?;
        to.push(mailbox);
    }
    let envelope = Envelope::new(
        Some(from.email.clone()),
        to.iter().map(|mailbox| mailbox.email.clone()).collect(),
    )
    .map_err(|e| fix("to", &e))?;

    let mut builder = Message::builder()
        .from(from)
        .subject(message.subject.clone())
        .envelope(envelope);
    for mailbox in to {
        builder = builder.to(mailbox);
    }
    for (name, value) in &message.headers {
        let header = HeaderName::new_from_ascii(name.clone())
            .map_err(|e| fix(&format!("headers.{name}"), &e))?;
        builder = builder.raw_header(HeaderValue::new(header, value.clone()));
    }
    // Last, so that no header of the config replaces them.
    builder = builder
        .date(SystemTime::from(date))
        .message_id(Some(message_id(key)));
    let built = if message.html.is_empty() {
        builder.singlepart(SinglePart::plain(message.text.clone()))
    } else {
        builder.multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            message.html.clone(),
        ))
    };
    built.map_err(|e| fix("message", &e))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use chrono::TimeZone;
    use pharos_routing::config::Secret;
    use pharos_routing::labels::{fingerprint, label_set};
    use pharos_routing::net::HostPort;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::notify::webhook::AttemptOutcome;

    /// What the sink saw, over all its connections.
    #[derive(Debug, Default)]
    struct Seen {
        connections: usize,
        hellos: Vec<String>,
        auth: Vec<String>,
        mail_from: Vec<String>,
        rcpt_to: Vec<String>,
        messages: Vec<String>,
    }

    /// An SMTP server that speaks enough ESMTP for lettre: it answers RCPT from a script
    /// (then 250) and records what it is told.
    struct Sink {
        addr: SocketAddr,
        seen: Arc<Mutex<Seen>>,
    }

    impl Sink {
        async fn start(rcpt_replies: Vec<&'static str>) -> Sink {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
            let addr = listener.local_addr().expect("test setup");
            let seen = Arc::new(Mutex::new(Seen::default()));
            let script = Arc::new(Mutex::new(VecDeque::from(rcpt_replies)));
            let state = seen.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    state.lock().expect("test setup").connections += 1;
                    tokio::spawn(session(stream, script.clone(), state.clone()));
                }
            });
            Sink { addr, seen }
        }

        fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
            self.seen.lock().expect("test setup")
        }
    }

    async fn session(
        stream: TcpStream,
        script: Arc<Mutex<VecDeque<&'static str>>>,
        seen: Arc<Mutex<Seen>>,
    ) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let (verb, argument) = command.split_once(' ').unwrap_or((&command, ""));
            let reply = match verb.to_ascii_uppercase().as_str() {
                "EHLO" | "HELO" => {
                    seen.lock()
                        .expect("test setup")
                        .hellos
                        .push(argument.to_owned());
                    "250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".to_owned()
                }
                "AUTH" => {
                    seen.lock()
                        .expect("test setup")
                        .auth
                        .push(argument.to_owned());
                    "235 2.7.0 authenticated".to_owned()
                }
                "MAIL" => {
                    seen.lock()
                        .expect("test setup")
                        .mail_from
                        .push(argument.to_owned());
                    "250 2.1.0 ok".to_owned()
                }
                "RCPT" => {
                    seen.lock()
                        .expect("test setup")
                        .rcpt_to
                        .push(argument.to_owned());
                    let next = script.lock().expect("test setup").pop_front();
                    next.unwrap_or("250 2.1.5 ok").to_owned()
                }
                "DATA" => {
                    write
                        .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut message = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        // Undo the client's dot-stuffing.
                        message.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    seen.lock().expect("test setup").messages.push(message);
                    "250 2.0.0 queued as 1".to_owned()
                }
                "RSET" | "NOOP" => "250 2.0.0 ok".to_owned(),
                "QUIT" => {
                    write.write_all(b"221 2.0.0 bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 5.5.2 command not recognised".to_owned(),
            };
            write.write_all(format!("{reply}\r\n").as_bytes()).await?;
        }
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(20),
            factor: 2.0,
            max_backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(5),
        }
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 6, 10, minute, 0)
            .single()
            .expect("a valid time")
    }

    fn now() -> DateTime<Utc> {
        at(30)
    }

    fn config(addr: SocketAddr) -> EmailConfig {
        EmailConfig {
            to: "oncall@example.org".to_owned(),
            from: "Pharos <alerts@example.org>".to_owned(),
            hello: "pharos.example.org".to_owned(),
            smarthost: HostPort {
                host: addr.ip().to_string(),
                port: addr.port().to_string(),
            },
            auth_username: String::new(),
            auth_password: Secret::default(),
            auth_password_file: String::new(),
            auth_secret: Secret::default(),
            auth_identity: String::new(),
            headers: BTreeMap::new(),
            html: DEFAULT_EMAIL_HTML.to_owned(),
            text: String::new(),
            require_tls: false,
            tls_config: TlsConfig::default(),
            send_resolved: true,
        }
    }

    fn alert(status: AlertStatus, pairs: &[(&str, &str)]) -> NotifiedAlert {
        let labels = label_set(pairs);
        NotifiedAlert {
            status,
            fingerprint: fingerprint(&labels),
            labels,
            annotations: BTreeMap::from([(
                "summary".to_owned(),
                "p99 latency <over> 1s & rising".to_owned(),
            )]),
            starts_at: at(0),
            ends_at: (status == AlertStatus::Resolved).then(|| at(5)),
            generator_url: "http://prometheus.example.org/graph?g0.expr=up".to_owned(),
        }
    }

    fn notification(alerts: Vec<NotifiedAlert>) -> Notification {
        Notification {
            receiver: "mail".to_owned(),
            group_key: r#"{}:{alertname="HighLatency"}"#.to_owned(),
            group_labels: label_set(&[("alertname", "HighLatency")]),
            external_url: "http://pharos.example.org:9093".to_owned(),
            alerts,
        }
    }

    fn one_firing() -> Notification {
        notification(vec![alert(
            AlertStatus::Firing,
            &[
                ("alertname", "HighLatency"),
                ("job", "api"),
                ("instance", "a"),
            ],
        )])
    }

    async fn deliver(
        policy: RetryPolicy,
        config: &EmailConfig,
        message: &EmailMessage,
    ) -> (Delivery, Vec<Attempt>) {
        let sender = EmailSender::new(policy);
        let mut attempts = Vec::new();
        let delivery = sender
            .deliver(config, message, "key-1", now, |a| attempts.push(a.clone()))
            .await;
        (delivery, attempts)
    }

    fn outcomes(attempts: &[Attempt]) -> Vec<(u32, AttemptOutcome, Option<u16>)> {
        attempts
            .iter()
            .map(|a| (a.attempt, a.outcome, a.http_status))
            .collect()
    }

    #[tokio::test]
    async fn a_message_arrives_with_subject_parts_id_headers_and_login() {
        let sink = Sink::start(Vec::new()).await;
        let mut config = config(sink.addr);
        config.to = "oncall@example.org, Ops Team <ops@example.org>".to_owned();
        config.auth_username = "alerts".to_owned();
        config.auth_password = Secret::new("hunter2");
        config.headers = BTreeMap::from([
            ("Subject".to_owned(), DEFAULT_SUBJECT_TEMPLATE.to_owned()),
            ("X-Team".to_owned(), "db".to_owned()),
        ]);
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, attempts) = deliver(fast_policy(), &config, &message).await;

        assert_eq!(
            delivery,
            Delivery::Delivered {
                attempts: 1,
                http_status: 250
            }
        );
        assert_eq!(
            outcomes(&attempts),
            [(1, AttemptOutcome::Delivered, Some(250))]
        );
        assert_eq!(attempts[0].started_at, now());

        let seen = sink.seen();
        assert_eq!(seen.hellos, ["pharos.example.org"]);
        // base64("\0alerts\0hunter2")
        assert_eq!(seen.auth, ["PLAIN AGFsZXJ0cwBodW50ZXIy"]);
        assert_eq!(seen.mail_from, ["FROM:<alerts@example.org>"]);
        assert_eq!(
            seen.rcpt_to,
            ["TO:<oncall@example.org>", "TO:<ops@example.org>"]
        );
        assert_eq!(seen.messages.len(), 1);
        let email = &seen.messages[0];
        assert!(
            email.contains("Subject: [FIRING:1] HighLatency (a api)\r\n"),
            "{email}"
        );
        assert!(email.contains("Message-ID: <key-1@pharos>\r\n"), "{email}");
        assert!(email.contains("X-Team: db\r\n"), "{email}");
        assert!(
            email.contains("From: Pharos <alerts@example.org>\r\n"),
            "{email}"
        );
        assert!(
            email.contains("To: oncall@example.org, \"Ops Team\" <ops@example.org>\r\n"),
            "{email}"
        );
        assert!(
            email.contains("Date: Sat, 06 Dec 2025 10:30:00 +0000\r\n"),
            "{email}"
        );
        assert!(
            email.contains("Content-Type: multipart/alternative;"),
            "{email}"
        );
        assert!(
            email.contains("Content-Type: text/plain; charset=utf-8"),
            "{email}"
        );
        assert!(
            email.contains("Content-Type: text/html; charset=utf-8"),
            "{email}"
        );
        assert!(email.contains(" - instance = a"), "{email}");
        assert!(
            email.contains("<title>[FIRING:1] HighLatency (a api)</title>"),
            "{email}"
        );
        assert!(!email.contains("hunter2"), "{email}");
    }

    #[tokio::test]
    async fn a_deferred_recipient_is_retried_with_the_same_message_id() {
        let sink = Sink::start(vec!["451 4.3.0 try again later"]).await;
        let config = config(sink.addr);
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, attempts) = deliver(fast_policy(), &config, &message).await;

        assert_eq!(
            delivery,
            Delivery::Delivered {
                attempts: 2,
                http_status: 250
            }
        );
        use AttemptOutcome::*;
        assert_eq!(
            outcomes(&attempts),
            [(1, Retry, Some(451)), (2, Delivered, Some(250))]
        );
        assert!(
            attempts[0]
                .error
                .contains("the SMTP server answered 451 4.3.0 try again later"),
            "{}",
            attempts[0].error
        );
        let seen = sink.seen();
        assert_eq!(seen.connections, 2);
        assert_eq!(seen.messages.len(), 1);
        assert!(seen.messages[0].contains("Message-ID: <key-1@pharos>\r\n"));
    }

    #[tokio::test]
    async fn a_refused_recipient_is_dead_at_once_with_what_to_fix() {
        let sink = Sink::start(vec!["550 5.1.1 no such user"]).await;
        let config = config(sink.addr);
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, attempts) = deliver(fast_policy(), &config, &message).await;

        let Delivery::Dead {
            attempts: 1,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert_eq!(
            last_error,
            "the SMTP server answered 550 5.1.1 no such user; check the email config's to and \
             from addresses, and that the server relays mail for this sender"
        );
        assert_eq!(
            outcomes(&attempts),
            [(1, AttemptOutcome::Failed, Some(550))]
        );
        let seen = sink.seen();
        assert_eq!(seen.connections, 1);
        assert!(seen.messages.is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_dead_after_all_attempts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
        let addr = listener.local_addr().expect("test setup");
        drop(listener);
        let config = config(addr);
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, attempts) = deliver(fast_policy(), &config, &message).await;

        use AttemptOutcome::*;
        assert_eq!(
            outcomes(&attempts),
            [(1, Retry, None), (2, Retry, None), (3, Failed, None)]
        );
        let Delivery::Dead {
            attempts: 3,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert!(
            last_error.starts_with("could not talk to the SMTP server"),
            "{last_error}"
        );
        assert!(
            last_error.contains("gave up after 3 attempts"),
            "{last_error}"
        );
        assert!(last_error.contains(&addr.to_string()), "{last_error}");
    }

    #[tokio::test]
    async fn required_tls_without_starttls_is_dead_at_once() {
        let sink = Sink::start(Vec::new()).await;
        let mut config = config(sink.addr);
        config.require_tls = true;
        config.auth_username = "alerts".to_owned();
        config.auth_password = Secret::new("hunter2");
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, attempts) = deliver(fast_policy(), &config, &message).await;

        let Delivery::Dead {
            attempts: 1,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert!(
            last_error.starts_with("require_tls: true (the default), but the SMTP server"),
            "{last_error}"
        );
        assert!(last_error.contains("require_tls: false"), "{last_error}");
        assert_eq!(outcomes(&attempts), [(1, AttemptOutcome::Failed, None)]);
        // No password went over the plain connection.
        assert!(sink.seen().auth.is_empty());
    }

    #[tokio::test]
    async fn a_missing_password_is_dead_at_once_without_connecting() {
        let sink = Sink::start(Vec::new()).await;
        let mut config = config(sink.addr);
        config.auth_username = "alerts".to_owned();
        config.auth_password_file = "/nonexistent/pharos-smtp-password".to_owned();
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, _) = deliver(fast_policy(), &config, &message).await;
        let Delivery::Dead {
            attempts: 1,
            last_error,
        } = &delivery
        else {
            panic!("{delivery:?}");
        };
        assert!(
            last_error.starts_with(
                "cannot read auth_password_file \"/nonexistent/pharos-smtp-password\""
            ),
            "{last_error}"
        );
        assert_eq!(sink.seen().connections, 0);
    }

    #[tokio::test]
    async fn the_password_file_is_read_and_trimmed() {
        let sink = Sink::start(Vec::new()).await;
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("password");
        std::fs::write(&path, "hunter2\n").expect("test setup");
        let mut config = config(sink.addr);
        config.auth_username = "alerts".to_owned();
        config.auth_password_file = path.to_string_lossy().into_owned();
        let message = render(&config, &one_firing()).expect("test setup");
        let (delivery, _) = deliver(fast_policy(), &config, &message).await;
        assert!(
            matches!(delivery, Delivery::Delivered { attempts: 1, .. }),
            "{delivery:?}"
        );
        assert_eq!(sink.seen().auth, ["PLAIN AGFsZXJ0cwBodW50ZXIy"]);
    }

    #[test]
    fn deliveries_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let sender = EmailSender::new(fast_policy());
        let config = config(SocketAddr::from(([127, 0, 0, 1], 1)));
        let message = render(&config, &one_firing()).expect("test setup");
        let future = sender.deliver(&config, &message, "key", now, |_| {});
        assert_send(&future);
    }

    #[test]
    fn subjects_follow_alertmanagers_default_template() {
        let config = config(SocketAddr::from(([127, 0, 0, 1], 25)));
        let subject = |alerts| {
            render(&config, &notification(alerts))
                .expect("test setup")
                .subject
        };
        let pairs = |instance| {
            [
                ("alertname", "HighLatency"),
                ("job", "api"),
                ("severity", "page"),
                ("instance", instance),
            ]
        };
        use AlertStatus::*;
        // Common labels beyond the group's, in name order.
        assert_eq!(
            subject(vec![alert(Firing, &pairs("a")), alert(Firing, &pairs("b"))]),
            "[FIRING:2] HighLatency (api page)"
        );
        assert_eq!(
            subject(vec![
                alert(Firing, &pairs("a")),
                alert(Resolved, &pairs("b"))
            ]),
            "[FIRING:1] HighLatency (api page)"
        );
        assert_eq!(
            subject(vec![
                alert(Resolved, &pairs("a")),
                alert(Resolved, &pairs("b"))
            ]),
            "[RESOLVED] HighLatency (api page)"
        );
        // No common label beyond the group's: the template still leaves its space.
        assert_eq!(
            subject(vec![
                alert(Firing, &[("alertname", "HighLatency"), ("x", "1")]),
                alert(Firing, &[("alertname", "HighLatency"), ("x", "2")])
            ]),
            "[FIRING:2] HighLatency "
        );
        // Several group labels, values in name order.
        let mut grouped = notification(vec![alert(Firing, &pairs("a"))]);
        grouped.group_labels = label_set(&[("job", "api"), ("alertname", "HighLatency")]);
        assert_eq!(
            render(&config, &grouped).expect("test setup").subject,
            "[FIRING:1] HighLatency api (a page)"
        );
    }

    #[test]
    fn a_subject_header_replaces_the_default_unless_it_is_the_default() {
        let mut config = config(SocketAddr::from(([127, 0, 0, 1], 25)));
        config
            .headers
            .insert("Subject".to_owned(), DEFAULT_SUBJECT_TEMPLATE.to_owned());
        let message = render(&config, &one_firing()).expect("test setup");
        assert_eq!(message.subject, "[FIRING:1] HighLatency (a api)");
        assert!(message.headers.is_empty());

        config
            .headers
            .insert("Subject".to_owned(), "Database alert".to_owned());
        let message = render(&config, &one_firing()).expect("test setup");
        assert_eq!(message.subject, "Database alert");

        config.headers.insert(
            "Subject".to_owned(),
            "{{ .CommonLabels.alertname }}".to_owned(),
        );
        let error = render(&config, &one_firing()).expect_err("a template");
        assert!(
            matches!(&error, EmailError::UnsupportedTemplate { field } if field == "headers.Subject"),
            "{error:?}"
        );
    }

    #[test]
    fn several_to_addresses_are_read() {
        let mut config = config(SocketAddr::from(([127, 0, 0, 1], 25)));
        config.to = r#"a@example.org, Ops Team <ops@example.org>,"Doe, Jane" <jane@example.org>"#
            .to_owned();
        let message = render(&config, &one_firing()).expect("test setup");
        assert_eq!(
            message.to,
            [
                "a@example.org",
                "Ops Team <ops@example.org>",
                r#""Doe, Jane" <jane@example.org>"#
            ]
        );
        assert_eq!(message.from, "Pharos <alerts@example.org>");

        for bad in ["not an address", "a@example.org; b@example.org", "", " , "] {
            config.to = bad.to_owned();
            let error = render(&config, &one_firing()).expect_err("a bad address");
            assert!(
                matches!(&error, EmailError::InvalidArgument { field, .. } if field == "to"),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn custom_templates_are_refused_by_name() {
        let base = config(SocketAddr::from(([127, 0, 0, 1], 25)));
        let refused = |config: &EmailConfig| {
            render(config, &one_firing())
                .expect_err("refused")
                .to_string()
        };

        let mut config = base.clone();
        config.html = "<b>{{ .CommonLabels.alertname }}</b>".to_owned();
        assert_eq!(
            refused(&config),
            "email config html: templates other than Alertmanager's default are not supported \
             yet; remove the setting to use the default"
        );
        let mut config = base.clone();
        config.text = r#"{{ template "email.default.text" . }}"#.to_owned();
        assert!(refused(&config).starts_with("email config text: templates"));
        let mut config = base.clone();
        config.to = "{{ .CommonLabels.team }}@example.org".to_owned();
        assert!(refused(&config).starts_with("email config to: templates"));
        let mut config = base.clone();
        config
            .headers
            .insert("X-Team".to_owned(), "{{ .GroupLabels.team }}".to_owned());
        assert!(refused(&config).starts_with("email config headers.X-Team: templates"));
        let mut config = base;
        config
            .headers
            .insert("Message-Id".to_owned(), "<x@y>".to_owned());
        assert!(refused(&config).contains("Pharos sets this header itself"));
    }

    #[test]
    fn an_empty_html_setting_sends_text_only() {
        let mut config = config(SocketAddr::from(([127, 0, 0, 1], 25)));
        config.html = String::new();
        let message = render(&config, &one_firing()).expect("test setup");
        assert!(message.html.is_empty());
        assert!(!message.text.is_empty());
        let email = build_message(&message, "k", now()).expect("test setup");
        let formatted = String::from_utf8(email.formatted()).expect("test setup");
        assert!(!formatted.contains("multipart"), "{formatted}");
        assert!(formatted.contains("text/plain"), "{formatted}");
    }

    #[test]
    fn bodies_list_every_alert() {
        let config = config(SocketAddr::from(([127, 0, 0, 1], 25)));
        let mut resolved = alert(
            AlertStatus::Resolved,
            &[("alertname", "HighLatency"), ("instance", "b")],
        );
        resolved.generator_url = "javascript:alert(1)".to_owned();
        let message = render(
            &config,
            &notification(vec![
                alert(
                    AlertStatus::Firing,
                    &[("alertname", "HighLatency"), ("instance", "a")],
                ),
                resolved,
            ]),
        )
        .expect("test setup");

        assert_eq!(
            message.text,
            "2 alerts for alertname=HighLatency\n\
             \n[1] Firing\n\
             \nStatus: firing\nLabels:\n - alertname = HighLatency\n - instance = a\n\
             Annotations:\n - summary = p99 latency <over> 1s & rising\n\
             Starts at: 2025-12-06 10:00:00 UTC\n\
             Source: http://prometheus.example.org/graph?g0.expr=up\n\
             \n[1] Resolved\n\
             \nStatus: resolved\nLabels:\n - alertname = HighLatency\n - instance = b\n\
             Annotations:\n - summary = p99 latency <over> 1s & rising\n\
             Starts at: 2025-12-06 10:00:00 UTC\n\
             Ends at: 2025-12-06 10:05:00 UTC\n\
             Source: javascript:alert(1)\n\
             \nSent by Pharos: http://pharos.example.org:9093\n"
        );

        let html = &message.html;
        assert!(
            html.contains("2 alerts for alertname=HighLatency</h2>"),
            "{html}"
        );
        assert!(html.contains("[1] Firing</h3>"), "{html}");
        assert!(html.contains("[1] Resolved</h3>"), "{html}");
        assert!(
            html.contains("p99 latency &lt;over&gt; 1s &amp; rising"),
            "{html}"
        );
        assert!(!html.contains("<over>"), "{html}");
        assert!(
            html.contains(r#"<a href="http://prometheus.example.org/graph?g0.expr=up""#),
            "{html}"
        );
        assert!(!html.contains(r#"href="javascript"#), "{html}");
        assert!(html.contains("2025-12-06 10:05:00 UTC"), "{html}");
        assert!(
            html.contains(r#"<a href="http://pharos.example.org:9093""#),
            "{html}"
        );
    }

    #[test]
    fn message_ids_keep_the_key_recognisable() {
        assert_eq!(
            message_id("0b7c6a4e-5f1d-4c1e-9a7b-3d2e1f0a9b8c"),
            "<0b7c6a4e-5f1d-4c1e-9a7b-3d2e1f0a9b8c@pharos>"
        );
        assert_eq!(message_id("a b@c=d"), "<a=20b=40c=3Dd@pharos>");
    }

    #[test]
    fn the_port_decides_how_tls_starts() {
        assert_eq!(security(465, false), Security::Implicit);
        assert_eq!(security(465, true), Security::Implicit);
        assert_eq!(security(587, true), Security::StartTlsRequired);
        assert_eq!(security(25, false), Security::StartTlsOpportunistic);
        assert_eq!(port("smtps"), Ok(465));
        assert_eq!(port("587"), Ok(587));
        assert!(port("mail").is_err());
        assert!(matches!(client_id("10.0.0.1"), ClientId::Ipv4(_)));
        assert!(matches!(client_id(""), ClientId::Domain(name) if name == "localhost"));
    }

    #[tokio::test]
    async fn unsupported_tls_settings_are_refused_by_name() {
        let tls = TlsConfig {
            min_version: Some(TlsVersion::Tls10),
            ..TlsConfig::default()
        };
        let error = tls_parameters("smtp.example.org", &tls)
            .await
            .err()
            .expect("refused");
        assert!(error.contains("min_version"), "{error}");
        let tls = TlsConfig {
            cert_file: "/x.pem".to_owned(),
            ..TlsConfig::default()
        };
        let error = tls_parameters("smtp.example.org", &tls)
            .await
            .err()
            .expect("refused");
        assert!(error.contains("both cert_file and key_file"), "{error}");
        assert!(
            tls_parameters("smtp.example.org", &TlsConfig::default())
                .await
                .is_ok()
        );
    }
}
