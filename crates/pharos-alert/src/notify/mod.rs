//! Notifications: what the dispatcher hands over when a group is due ([`Notification`], one
//! [`NotifiedAlert`] per alert), the webhook message Alertmanager 0.25 sends for it ([`body`])
//! and the sender that posts it with retries, signatures and a dead-letter outcome
//! ([`webhook`]).

pub mod body;
pub mod email;
mod retry;
pub mod webhook;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pharos_routing::labels::{Fingerprint, LabelSet};
use serde::{Deserialize, Serialize};

/// Whether an alert (or a whole group) is firing or resolved, as Alertmanager's
/// `model.AlertStatus`: it serialises as `"firing"` / `"resolved"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    /// The word Alertmanager uses: `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl std::fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert of a notification, as the receiver sees it (`template.Alert`): the dispatcher
/// decides its status when it flushes the group, so the message does not depend on when it is
/// serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifiedAlert {
    pub status: AlertStatus,
    pub labels: LabelSet,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// When the alert ends; `None` is Go's zero time (`0001-01-01T00:00:00Z`), what
    /// Alertmanager sends for an alert with no end.
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
    pub fingerprint: Fingerprint,
}

/// One flush of one aggregation group to one receiver: the unit the dispatcher records and
/// the sender delivers (as one or more webhook messages, see [`body::pages`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The receiver's name in the routing file.
    pub receiver: String,
    /// Alertmanager's group key (`{}/{severity="page"}:{alertname="X"}`).
    pub group_key: String,
    pub group_labels: LabelSet,
    /// Where the alert service is reachable, for links in the receiver.
    pub external_url: String,
    /// The alerts, in the order the message lists them.
    pub alerts: Vec<NotifiedAlert>,
}
