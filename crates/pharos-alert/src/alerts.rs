//! [`Alert`]: an alert as the dispatcher holds it, Alertmanager's `types.Alert`: labels,
//! annotations, when it started and when it ends (set by the sender, or by the resolve
//! timeout when the sender gave none), where it came from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pharos_routing::labels::{Fingerprint, LabelSet, fingerprint};

/// One alert, identified by the fingerprint of its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// When the alert resolves (or resolved). Always set once received: an alert posted
    /// without one ends `resolve_timeout` after it was last received (`timeout` is then true).
    pub ends_at: DateTime<Utc>,
    pub generator_url: String,
    /// When this version of the alert was received.
    pub updated_at: DateTime<Utc>,
    /// `ends_at` came from the resolve timeout, not from the sender.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }

    /// Whether the alert has resolved at `now`.
    pub fn resolved_at(&self, now: DateTime<Utc>) -> bool {
        self.ends_at <= now
    }
}

impl Alert {
    /// Alertmanager's `Alert.Merge`: `self` is the alert held, `newer` the one received; the
    /// result keeps the earliest start, and the end of whichever update says most.
    pub fn merge(&self, newer: &Alert) -> Alert {
        // `latest` is the more recently updated of the two, `other` the older.
        let (latest, other) = if newer.updated_at < self.updated_at {
            (self, newer)
        } else {
            (newer, self)
        };
        let mut merged = latest.clone();
        if other.starts_at < latest.starts_at {
            merged.starts_at = other.starts_at;
        }
        let now_resolved = |alert: &Alert| alert.ends_at <= latest.updated_at;
        if now_resolved(latest) {
            // The latest explicit end wins when both are resolved.
            if now_resolved(other) && other.ends_at > latest.ends_at {
                merged.ends_at = other.ends_at;
            }
        } else if other.ends_at > latest.ends_at && !other.timeout {
            // A later end that is not a timeout rules.
            merged.ends_at = other.ends_at;
        }
        merged
    }
}

/// Milliseconds since the Unix epoch.
pub fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// The time of `ms` milliseconds since the Unix epoch (clamped to chrono's range).
pub fn time_from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(starts: i64, ends: i64, updated: i64, timeout: bool) -> Alert {
        Alert {
            labels: [("alertname".to_owned(), "A".to_owned())].into(),
            annotations: BTreeMap::new(),
            starts_at: time_from_millis(starts),
            ends_at: time_from_millis(ends),
            generator_url: String::new(),
            updated_at: time_from_millis(updated),
            timeout,
        }
    }

    #[test]
    fn merge_keeps_the_earliest_start_and_the_ruling_end() {
        let held = alert(1_000, 10_000, 2_000, false);
        // A re-send with a later start and an earlier timeout end: the held explicit end rules.
        let resent = alert(3_000, 8_000, 4_000, true);
        let merged = held.merge(&resent);
        assert_eq!(merged.starts_at, time_from_millis(1_000));
        assert_eq!(merged.ends_at, time_from_millis(10_000));
        // An explicit resolve wins over a firing end.
        let resolved = alert(1_000, 5_000, 6_000, false);
        let merged = held.merge(&resolved);
        assert_eq!(merged.ends_at, time_from_millis(5_000));
        assert!(merged.resolved_at(time_from_millis(6_000)));
        // The order of the arguments does not matter: the newer update is authoritative.
        assert_eq!(resolved.merge(&held), merged);
        assert_eq!(
            alert(1, 2, 3, false).fingerprint(),
            alert(5, 6, 7, true).fingerprint()
        );
    }
}
