//! Brute force and credential stuffing: `auth_failure` events counted in a sliding window per
//! user (BruteForceUser), per source address (BruteForceSourceIp), and the distinct users one
//! address failed for (CredentialStuffing). An `auth_success` clears that user's failures (they
//! were the user's own mistakes) but never an address's: one office address where many people
//! log in, or an attacker who finally guesses right, keeps its count.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::time::Duration;

use pharos_proto::ingest::v1::SecurityEvent;
use serde::{Deserialize, Serialize};

use super::{
    AUTH_FAILURE, AUTH_SUCCESS, Cooldown, DEFAULT_MAX_KEYS, Detection, Evidence, Incident,
    KeyState, Keyed, SlidingWindow, Traces, nanos, rfc3339, service_name, severity, threshold,
    window_cap,
};

/// Thresholds of the brute-force detectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceSettings {
    pub enabled: bool,
    /// The sliding window every count below is taken over, and the quiet time after a
    /// detection.
    #[serde(with = "pharos_clock::duration")]
    pub window: Duration,
    /// Failed logins of one user within the window that make an attack on it.
    pub max_failures: u32,
    /// Failed logins from one source address within the window.
    pub max_failures_per_ip: u32,
    /// Distinct users one source address failed for within the window (credential
    /// stuffing).
    pub max_users_per_ip: u32,
    /// Users, and separately addresses, tracked at most.
    pub max_keys: usize,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(60),
            max_failures: 5,
            max_failures_per_ip: 10,
            max_users_per_ip: 5,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// The failures of one user.
#[derive(Debug, Default)]
pub(super) struct UserState {
    failures: SlidingWindow<()>,
    traces: Traces,
    cooldown: Cooldown,
}

impl KeyState for UserState {
    fn last_seen(&self) -> i64 {
        self.failures.latest
    }
}

/// The failures from one source address, each with a hash of the user tried.
#[derive(Debug, Default)]
pub(super) struct IpState {
    failures: SlidingWindow<u64>,
    /// How many failures of the window tried each user (by hash): its size is the distinct
    /// count.
    users: HashMap<u64, u32>,
    traces: Traces,
    brute_force: Cooldown,
    stuffing: Cooldown,
}

impl KeyState for IpState {
    fn last_seen(&self) -> i64 {
        self.failures.latest
    }
}

/// The state of the three brute-force detectors.
#[derive(Debug)]
pub(super) struct BruteForce {
    pub(super) users: Keyed<UserState>,
    pub(super) ips: Keyed<IpState>,
    /// The latest event time seen: what "idle for a window" is measured from.
    latest: i64,
    /// Hashes user names for the distinct count; fixed keys, so runs are reproducible.
    hasher: BuildHasherDefault<DefaultHasher>,
}

impl BruteForce {
    pub(super) fn new(settings: &BruteForceSettings) -> Self {
        Self {
            users: Keyed::new(settings.max_keys),
            ips: Keyed::new(settings.max_keys),
            latest: i64::MIN,
            hasher: BuildHasherDefault::default(),
        }
    }

    pub(super) fn apply(&mut self, settings: &BruteForceSettings) {
        if settings.enabled {
            let window = nanos(settings.window);
            self.users
                .set_max_keys(settings.max_keys, self.latest, window);
            self.ips
                .set_max_keys(settings.max_keys, self.latest, window);
        } else {
            self.users.clear();
            self.ips.clear();
        }
    }

    pub(super) fn observe(
        &mut self,
        event: &SecurityEvent,
        at: i64,
        settings: &BruteForceSettings,
        detections: &mut Vec<Detection>,
    ) {
        match event.event_type.as_str() {
            AUTH_FAILURE => {
                self.latest = self.latest.max(at);
                let window = nanos(settings.window);
                if !event.user_id.is_empty() {
                    self.user_failure(event, at, window, settings, detections);
                }
                if !event.source_ip.is_empty() {
                    self.ip_failure(event, at, window, settings, detections);
                }
            }
            AUTH_SUCCESS if !event.user_id.is_empty() => {
                if let Some(state) = self.users.get_mut(&event.user_id) {
                    state.failures.clear();
                    state.traces.clear();
                }
            }
            _ => {}
        }
    }

    fn user_failure(
        &mut self,
        event: &SecurityEvent,
        at: i64,
        window: i64,
        settings: &BruteForceSettings,
        detections: &mut Vec<Detection>,
    ) {
        let limit = threshold(settings.max_failures);
        let fired = self
            .users
            .with(&event.user_id, self.latest, window, |state| {
                let now = state
                    .failures
                    .push(at, (), window, window_cap(limit), |()| {});
                state.traces.push(event, at);
                let count = state.failures.len();
                (count >= limit && state.cooldown.fire(now, window)).then(|| Evidence {
                    count: count as u64,
                    first_unix_nano: state.failures.first(),
                    last_unix_nano: state.failures.last(),
                    samples: state
                        .traces
                        .samples(now.saturating_sub(window), AUTH_FAILURE),
                    distinct: None,
                    score: None,
                })
            });
        let Some(evidence) = fired else { return };
        let window_text = pharos_clock::duration::format(settings.window);
        let user = event.user_id.as_str();
        let incident = Incident {
            detector: "brute_force_user",
            alertname: "BruteForceUser",
            severity: severity(evidence.count as usize, limit),
            keys: &[("user", user)],
            summary: format!(
                "{} failed logins for user {user} within {window_text}",
                evidence.count
            ),
            description: format!(
                "user {user} failed to log in {} times between {} and {} (threshold {limit} \
                 within {window_text}); the last attempt came from {} to {} {}",
                evidence.count,
                rfc3339(evidence.first_unix_nano),
                rfc3339(evidence.last_unix_nano),
                display(&event.source_ip),
                service_name(event),
                event.resource,
            ),
        };
        detections.push(incident.detection(evidence, at));
    }

    fn ip_failure(
        &mut self,
        event: &SecurityEvent,
        at: i64,
        window: i64,
        settings: &BruteForceSettings,
        detections: &mut Vec<Detection>,
    ) {
        let failures_limit = threshold(settings.max_failures_per_ip);
        let users_limit = threshold(settings.max_users_per_ip);
        let cap = window_cap(failures_limit.max(users_limit));
        let user = self.hasher.hash_one(event.user_id.as_str());
        let (brute_force, stuffing) =
            self.ips
                .with(&event.source_ip, self.latest, window, |state| {
                    // Every value in the window is counted once in `users`; each one dropped (left the
                    // window, over the cap, or too late to enter) is uncounted.
                    *state.users.entry(user).or_insert(0) += 1;
                    let users = &mut state.users;
                    let now = state.failures.push(at, user, window, cap, |dropped| {
                        if let Some(count) = users.get_mut(&dropped) {
                            *count -= 1;
                            if *count == 0 {
                                users.remove(&dropped);
                            }
                        }
                    });
                    state.traces.push(event, at);
                    let count = state.failures.len();
                    let distinct = state.users.len();
                    let brute_force =
                        count >= failures_limit && state.brute_force.fire(now, window);
                    let stuffing = distinct >= users_limit && state.stuffing.fire(now, window);
                    let evidence = || Evidence {
                        count: count as u64,
                        first_unix_nano: state.failures.first(),
                        last_unix_nano: state.failures.last(),
                        samples: state
                            .traces
                            .samples(now.saturating_sub(window), AUTH_FAILURE),
                        distinct: Some(distinct as u64),
                        score: None,
                    };
                    (brute_force.then(evidence), stuffing.then(evidence))
                });
        let window_text = pharos_clock::duration::format(settings.window);
        let ip = event.source_ip.as_str();
        if let Some(evidence) = brute_force {
            let incident = Incident {
                detector: "brute_force_ip",
                alertname: "BruteForceSourceIp",
                severity: severity(evidence.count as usize, failures_limit),
                keys: &[("source_ip", ip)],
                summary: format!(
                    "{} failed logins from {ip} within {window_text}",
                    evidence.count
                ),
                description: format!(
                    "{ip} failed to log in {} times, for {} distinct users, between {} and {} \
                     (threshold {failures_limit} within {window_text}); the last attempt was \
                     for user {} on {} {}",
                    evidence.count,
                    evidence.distinct.unwrap_or(0),
                    rfc3339(evidence.first_unix_nano),
                    rfc3339(evidence.last_unix_nano),
                    display(&event.user_id),
                    service_name(event),
                    event.resource,
                ),
            };
            detections.push(incident.detection(evidence, at));
        }
        if let Some(evidence) = stuffing {
            let distinct = evidence.distinct.unwrap_or(0);
            let incident = Incident {
                detector: "credential_stuffing",
                alertname: "CredentialStuffing",
                severity: severity(usize::try_from(distinct).unwrap_or(usize::MAX), users_limit),
                keys: &[("source_ip", ip)],
                summary: format!("{ip} tried {distinct} distinct users within {window_text}"),
                description: format!(
                    "{ip} failed to log in as {distinct} distinct users ({} failures) between \
                     {} and {} (threshold {users_limit} users within {window_text}); the last \
                     attempt was for user {} on {} {}",
                    evidence.count,
                    rfc3339(evidence.first_unix_nano),
                    rfc3339(evidence.last_unix_nano),
                    display(&event.user_id),
                    service_name(event),
                    event.resource,
                ),
            };
            detections.push(incident.detection(evidence, at));
        }
    }
}

/// A value for a description, `(unknown)` when empty.
fn display(text: &str) -> &str {
    if text.is_empty() { "(unknown)" } else { text }
}
