//! The outbox: how a notification leaves without being lost or sent twice.
//!
//! A notification is split into pages of at most `max_alerts` alerts (Alertmanager truncates;
//! Pharos sends every alert). Each page gets an `Idempotency-Key` and is written to the store
//! as `pending` before the first attempt. After a 2xx it is marked `delivered` in the same
//! transaction that writes the group's notification-log entry, so a restarted service neither
//! sends it again nor forgets that it was sent. After the last failed attempt it becomes a dead
//! letter, listed by the API. Pages left `pending` by a crash are sent again at start with
//! their original key; the one window no sender can close (the receiver answered 2xx, the
//! process died before the store heard of it) is covered by the receiver's honouring of the
//! key. Every attempt is recorded with its outcome.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pharos_clock::Clock;
use pharos_routing::{EmailConfig, RoutingConfig, WebhookConfig};
use pharos_store::control::alerts::{AlertRepository, AttemptRow, OutboxLogRow, OutboxRow};
use serde::{Deserialize, Serialize};

use crate::alerts::{millis, time_from_millis};
use crate::dispatch::{LogEntry, fingerprints_to_json};
use crate::notify::Notification;
use crate::notify::body::pages;
use crate::notify::email::{self, EmailMessage, EmailSender};
use crate::notify::webhook::{Attempt, Delivery, RetryPolicy, WebhookSender, WebhookTarget};
use crate::settings::WebhookSettings;

/// Where a notification goes.
#[derive(Debug, Clone)]
pub enum Integration {
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

/// A notification the dispatcher decided to send, with what the log records once it is out.
#[derive(Debug, Clone)]
pub struct PreparedNotification {
    pub notification: Notification,
    /// `receiver/webhook/<index>` or `receiver/email/<index>`.
    pub integration: String,
    pub config: Integration,
    pub log_entry: LogEntry,
    /// The entries of other groups this notification speaks for (a rate-limit summary),
    /// recorded with its own when it is delivered.
    pub also_logs: Vec<(String, LogEntry)>,
}

/// An email as the outbox keeps it, rendered once, so that a resend after a crash sends the
/// same message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEmail {
    subject: String,
    text: String,
    html: String,
    to: Vec<String>,
    from: String,
    headers: std::collections::BTreeMap<String, String>,
}

impl From<EmailMessage> for StoredEmail {
    fn from(message: EmailMessage) -> Self {
        Self {
            subject: message.subject,
            text: message.text,
            html: message.html,
            to: message.to,
            from: message.from,
            headers: message.headers,
        }
    }
}

impl From<StoredEmail> for EmailMessage {
    fn from(stored: StoredEmail) -> Self {
        Self {
            subject: stored.subject,
            text: stored.text,
            html: stored.html,
            to: stored.to,
            from: stored.from,
            headers: stored.headers,
        }
    }
}

/// Sends notifications through the store.
pub struct Outbox {
    repository: AlertRepository,
    sender: WebhookSender,
    email: EmailSender,
    clock: Clock,
    hmac_secret: Option<String>,
    retention: Duration,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    pub fn new(
        repository: AlertRepository,
        clock: Clock,
        settings: &WebhookSettings,
        retention: Duration,
    ) -> Result<Self, String> {
        let policy = RetryPolicy {
            attempts: settings.attempts,
            initial_backoff: settings.initial_backoff,
            factor: settings.backoff_factor,
            max_backoff: settings.max_backoff,
            timeout: settings.timeout,
            max_retry_after: settings.max_retry_after,
        };
        let sender = WebhookSender::new(policy.clone()).map_err(|error| error.to_string())?;
        Ok(Self {
            repository,
            sender,
            email: EmailSender::new(policy),
            clock,
            hmac_secret: (!settings.hmac_secret.is_empty()).then(|| settings.hmac_secret.clone()),
            retention,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        time_from_millis(self.clock.now_micros().div_euclid(1000))
    }

    /// How long a notification-log entry is kept: the retention, or two repeat intervals when
    /// that is longer (an entry must outlive the interval it deduplicates).
    pub fn log_retention(&self, repeat_interval: Duration) -> Duration {
        self.retention.max(repeat_interval.saturating_mul(2))
    }

    /// Sends a notification (every page of a webhook, or one email); true when all of it was
    /// delivered.
    pub async fn send(&self, prepared: PreparedNotification) -> bool {
        let bodies: Vec<(String, String)> = match &prepared.config {
            Integration::Webhook(webhook) => {
                let mut bodies = Vec::new();
                for page in pages(&prepared.notification, webhook.max_alerts) {
                    // The bytes Alertmanager sends (Go's JSON encoder), not just the same meaning.
                    match page.to_json().map(String::from_utf8) {
                        Ok(Ok(body)) => bodies.push((webhook.url.clone(), body)),
                        _ => tracing::error!("a webhook body could not be encoded"),
                    }
                }
                bodies
            }
            Integration::Email(email) => match email::render(email, &prepared.notification) {
                Ok(message) => match serde_json::to_string(&StoredEmail::from(message)) {
                    Ok(body) => vec![(format!("smtp://{}", email.smarthost), body)],
                    Err(error) => {
                        tracing::error!(%error, "an email could not be stored");
                        return false;
                    }
                },
                Err(error) => {
                    // A setting Pharos cannot send with: nothing to retry until the routing
                    // changes, so the next flush decides again.
                    tracing::warn!(%error, receiver = %prepared.notification.receiver, "an email notification cannot be rendered");
                    return false;
                }
            },
        };
        let also_logs: Vec<OutboxLogRow> = prepared
            .also_logs
            .iter()
            .map(|(group_key, entry)| OutboxLogRow {
                group_key: group_key.clone(),
                firing_json: fingerprints_to_json(&entry.firing),
                resolved_json: fingerprints_to_json(&entry.resolved),
            })
            .collect();
        let mut delivered_all = true;
        for (url, body) in bodies {
            let row = OutboxRow {
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                group_key: prepared.notification.group_key.clone(),
                integration: prepared.integration.clone(),
                receiver: prepared.notification.receiver.clone(),
                url,
                body,
                log_firing_json: fingerprints_to_json(&prepared.log_entry.firing),
                log_resolved_json: fingerprints_to_json(&prepared.log_entry.resolved),
                log_expires_at_ms: millis(prepared.log_entry.expires_at),
                created_at_ms: millis(self.now()),
            };
            if let Err(error) = self.repository.enqueue(&row, &also_logs).await {
                // Not recorded, so not sent: the group's next flush decides again.
                tracing::warn!(%error, group_key = %row.group_key, "cannot record a notification; not sending it now");
                delivered_all = false;
                continue;
            }
            delivered_all &= self.deliver(&row, Some(&prepared.config)).await;
        }
        delivered_all
    }

    /// Sends again what a crash left pending, with the same keys. `routing` gives the current
    /// credentials of each row's integration.
    pub async fn replay_pending(&self, routing: &RoutingConfig) -> usize {
        let pending = match self.repository.pending_outbox().await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "cannot read pending notifications");
                return 0;
            }
        };
        let count = pending.len();
        if count > 0 {
            tracing::info!(count, "sending notifications a previous run left pending");
        }
        for row in pending {
            let config = integration_config(routing, &row.receiver, &row.integration);
            self.deliver(&row, config.as_ref()).await;
        }
        count
    }

    fn target(&self, webhook: &WebhookConfig, url: &str) -> WebhookTarget {
        let bearer_token = webhook
            .http_config
            .authorization
            .as_ref()
            .filter(|auth| {
                auth.auth_type.is_empty() || auth.auth_type.eq_ignore_ascii_case("bearer")
            })
            .map(|auth| auth.credentials.expose().to_owned())
            .filter(|token| !token.is_empty());
        WebhookTarget {
            url: url.to_owned(),
            bearer_token,
            hmac_secret: self.hmac_secret.clone(),
        }
    }

    /// One page or email: attempts until delivered or dead, each recorded. `config` is the
    /// integration as the routing has it now (`None` when it is gone: a webhook is still sent
    /// to its recorded URL, an email cannot be).
    async fn deliver(&self, row: &OutboxRow, config: Option<&Integration>) -> bool {
        let (attempts_tx, mut attempts_rx) = tokio::sync::mpsc::unbounded_channel::<Attempt>();
        let repository = self.repository.clone();
        let key = row.idempotency_key.clone();
        let recorder = tokio::spawn(async move {
            while let Some(attempt) = attempts_rx.recv().await {
                let row = AttemptRow {
                    idempotency_key: key.clone(),
                    attempt: i32::try_from(attempt.attempt).unwrap_or(i32::MAX),
                    at_ms: millis(attempt.started_at),
                    duration_ms: i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX),
                    outcome: attempt.outcome.as_str().to_owned(),
                    http_status: attempt.http_status.map(i32::from),
                    error: attempt.error.clone(),
                };
                if let Err(error) = repository.record_attempt(&row).await {
                    tracing::warn!(%error, "cannot record a delivery attempt");
                }
            }
        });
        let clock = self.clock.clone();
        let now = move || time_from_millis(clock.now_micros().div_euclid(1000));
        let on_attempt = |attempt: &Attempt| {
            let _ = attempts_tx.send(attempt.clone());
        };
        let delivery = match config {
            Some(Integration::Email(email)) => {
                match serde_json::from_str::<StoredEmail>(&row.body) {
                    Ok(stored) => {
                        self.email
                            .deliver(
                                email,
                                &EmailMessage::from(stored),
                                &row.idempotency_key,
                                now,
                                on_attempt,
                            )
                            .await
                    }
                    Err(error) => Delivery::Dead {
                        attempts: 0,
                        last_error: format!("the stored email does not read back: {error}"),
                    },
                }
            }
            None if row.integration.contains("/email/") => Delivery::Dead {
                attempts: 0,
                last_error: "the receiver's email_configs entry is gone from the routing file; the email cannot be sent".to_owned(),
            },
            webhook => {
                let target = match webhook {
                    Some(Integration::Webhook(webhook)) => self.target(webhook, &row.url),
                    _ => WebhookTarget {
                        url: row.url.clone(),
                        bearer_token: None,
                        hmac_secret: self.hmac_secret.clone(),
                    },
                };
                self.sender
                    .deliver(&target, row.body.as_bytes(), &row.idempotency_key, now, on_attempt)
                    .await
            }
        };
        drop(attempts_tx);
        let _ = recorder.await;
        let now = millis(self.now());
        match delivery {
            Delivery::Delivered { .. } => {
                if let Err(error) = self
                    .repository
                    .mark_delivered(&row.idempotency_key, now)
                    .await
                {
                    // Delivered, but the store did not hear it: a restart sends it again with
                    // the same key, which the receiver recognises.
                    tracing::warn!(%error, key = %row.idempotency_key, "a delivered notification could not be marked delivered");
                }
                true
            }
            Delivery::Dead {
                attempts,
                last_error,
            } => {
                tracing::warn!(key = %row.idempotency_key, receiver = %row.receiver, attempts, error = %last_error, "notification failed; kept as a dead letter");
                if let Err(error) = self
                    .repository
                    .mark_dead(&row.idempotency_key, &last_error, now)
                    .await
                {
                    tracing::warn!(%error, "cannot record a dead letter");
                }
                false
            }
        }
    }
}

/// The integration (`receiver/webhook/<index>`, `receiver/email/<index>`) in the current
/// routing.
fn integration_config(
    routing: &RoutingConfig,
    receiver: &str,
    integration: &str,
) -> Option<Integration> {
    let mut parts = integration.rsplit('/');
    let index: usize = parts.next()?.parse().ok()?;
    let kind = parts.next()?;
    let receiver = routing.receiver(receiver)?;
    match kind {
        "webhook" => receiver
            .webhook_configs
            .get(index)
            .cloned()
            .map(Integration::Webhook),
        "email" => receiver
            .email_configs
            .get(index)
            .cloned()
            .map(Integration::Email),
        _ => None,
    }
}
