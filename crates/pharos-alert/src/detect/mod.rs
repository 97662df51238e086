//! Security detectors: a pure engine that watches the ingest service's security events and
//! says when they add up to an incident. No I/O and no clock: each event comes with its time
//! and every window is measured in event time, so replaying the same events gives the same
//! detections. The alert service feeds it every committed batch, in order, and turns each
//! [`Detection`] into an alert.
//!
//! - `brute_force.rs`: failed logins per user and per source address, and distinct users
//!   tried from one address (credential stuffing);
//! - `injection.rs`: request strings scored against SQL injection, XSS, path traversal and
//!   command injection patterns;
//! - `rate_abuse.rs`: bursts of rate-limit violations per source address.
//!
//! **One alert per incident and window.** A key (a user, an address) that fires stays quiet
//! for one window; after that it fires again only if its window, now holding only later
//! events, reaches the threshold again. An attack that goes on therefore fires once per window
//! (which keeps its alert firing), not once per event. Labels hold the detector, the severity
//! and the key only, so repeated detections of one incident share one alert fingerprint; an
//! attack that grows to 5 × the threshold within a window becomes a second, `critical` alert.
//!
//! **Bounded memory.** Each keyed detector tracks at most `max_keys` keys (100,000 by
//! default). When a new key arrives at the cap, keys whose last event is older than the window
//! (they can no longer count toward anything) are dropped; if that frees less than a tenth of
//! the cap, the keys with the oldest last events are dropped until a tenth is free. Each key
//! keeps at most 5 × its threshold event times (enough to tell `critical`) and its last
//! [`MAX_SAMPLES`] events as samples, with strings cut to [`MAX_SAMPLE_BYTES`]: usually under
//! 1 KB per key, at most about 3 KB (300 MB per detector at 100,000 keys, at worst). The
//! injection detector keeps no state per key.

mod brute_force;
mod injection;
mod rate_abuse;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use pharos_proto::ingest::v1::SecurityEvent;
use serde::{Deserialize, Serialize};

pub use brute_force::BruteForceSettings;
pub use injection::InjectionSettings;
pub use rate_abuse::RateAbuseSettings;

use crate::error::{AlertError, Result};

/// The event types the detectors read; any other type is only scanned for injections.
pub const AUTH_FAILURE: &str = "auth_failure";
pub const AUTH_SUCCESS: &str = "auth_success";
pub const SQL_INJECTION_ATTEMPT: &str = "sql_injection_attempt";
pub const RATE_LIMIT_VIOLATION: &str = "rate_limit_violation";

/// Samples kept per key and carried by a detection.
pub const MAX_SAMPLES: usize = 5;
/// Strings of a kept sample are cut to this many bytes, so a key's memory stays small.
pub const MAX_SAMPLE_BYTES: usize = 128;
/// The default cap of keys tracked per detector.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// A key's window keeps at most this many times its threshold: a count at this level is
/// `critical`, and more would tell nothing new.
const CRITICAL_FACTOR: usize = 5;

/// The detectors' settings, a section of the alert service's settings, tunable live with
/// [`Detectors::apply_settings`]. Every value has a default; durations read like `60s`, `5m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorSettings {
    /// Failed logins per user and per address, credential stuffing.
    pub brute_force: BruteForceSettings,
    /// Injection payloads in requests.
    pub injection: InjectionSettings,
    /// Bursts of rate-limit violations.
    pub rate_abuse: RateAbuseSettings,
}

impl DetectorSettings {
    /// Refuses thresholds and windows that would fire on every event or never forget.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: &str| {
            Err(AlertError::InvalidArgument {
                field: format!("detectors.{field}"),
                reason: reason.to_string(),
            })
        };
        let brute_force = &self.brute_force;
        if brute_force.window.is_zero() {
            return invalid("brute_force.window", "must be longer than 0s");
        }
        for (field, value) in [
            ("brute_force.max_failures", brute_force.max_failures),
            (
                "brute_force.max_failures_per_ip",
                brute_force.max_failures_per_ip,
            ),
            ("brute_force.max_users_per_ip", brute_force.max_users_per_ip),
            ("rate_abuse.max_violations", self.rate_abuse.max_violations),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
        }
        for (field, value) in [
            ("brute_force.max_keys", brute_force.max_keys),
            ("rate_abuse.max_keys", self.rate_abuse.max_keys),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
        }
        if self.rate_abuse.window.is_zero() {
            return invalid("rate_abuse.window", "must be longer than 0s");
        }
        let injection = &self.injection;
        if !(injection.threshold.is_finite() && injection.threshold > 0.0) {
            return invalid("injection.threshold", "must be a number above 0");
        }
        if !(injection.critical_score.is_finite() && injection.critical_score > 0.0) {
            return invalid("injection.critical_score", "must be a number above 0");
        }
        Ok(())
    }
}

/// One incident found: what the alert service turns into an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `brute_force_user`, `brute_force_ip`, `credential_stuffing`, `injection` or
    /// `rate_abuse`.
    pub detector: &'static str,
    /// `alertname`, `severity` (`warning` or `critical`), `detector` and the incident's key
    /// (`user`, `source_ip`; for injections also `kind` and `service`): stable per incident,
    /// so that repeated detections share one alert fingerprint.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`, with the counts and the window.
    pub annotations: BTreeMap<String, String>,
    pub evidence: Evidence,
    /// The time of the event that completed the incident.
    pub at_unix_nano: i64,
}

/// What a detection saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Events of the incident within the window (for an injection, 1). At most 5 × the
    /// threshold: a window keeps no more.
    pub count: u64,
    pub first_unix_nano: i64,
    pub last_unix_nano: i64,
    /// The last events of the incident, at most [`MAX_SAMPLES`].
    pub samples: Vec<EventSample>,
    /// Distinct users tried (credential stuffing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
    /// The injection score (0 to 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// One event of an incident, as evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSample {
    pub time_unix_nano: i64,
    pub event_type: String,
    pub user_id: String,
    pub source_ip: String,
    pub resource: String,
    /// The injection patterns that matched, as `family.name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// How many keys the detectors track, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DetectorStats {
    /// Users with recent failed logins.
    pub tracked_users: usize,
    /// Source addresses with recent failed logins.
    pub tracked_ips: usize,
    /// Source addresses with recent rate-limit violations.
    pub tracked_rate_ips: usize,
    /// Keys dropped because a detector reached its `max_keys`, since the start.
    pub evicted_keys: u64,
}

/// The detectors and their state. One instance sees every security event in commit order.
#[derive(Debug)]
pub struct Detectors {
    settings: DetectorSettings,
    brute_force: brute_force::BruteForce,
    injection: injection::Injection,
    rate_abuse: rate_abuse::RateAbuse,
}

impl Detectors {
    /// Compiles the injection patterns (once) and starts with no state.
    pub fn new(settings: DetectorSettings) -> Self {
        Self {
            brute_force: brute_force::BruteForce::new(&settings.brute_force),
            injection: injection::Injection::new(),
            rate_abuse: rate_abuse::RateAbuse::new(&settings.rate_abuse),
            settings,
        }
    }

    /// New thresholds take effect with the next event; the windows and cooldowns in progress
    /// are kept (a disabled detector drops its state).
    pub fn apply_settings(&mut self, settings: DetectorSettings) {
        self.brute_force.apply(&settings.brute_force);
        self.rate_abuse.apply(&settings.rate_abuse);
        self.settings = settings;
    }

    /// Reads one event; `at_unix_nano` is the event's time, or the commit time when the event
    /// has none. Returns what it completed: usually nothing.
    pub fn observe(&mut self, event: &SecurityEvent, at_unix_nano: i64) -> Vec<Detection> {
        let mut detections = Vec::new();
        if self.settings.brute_force.enabled {
            self.brute_force.observe(
                event,
                at_unix_nano,
                &self.settings.brute_force,
                &mut detections,
            );
        }
        if self.settings.injection.enabled {
            self.injection.observe(
                event,
                at_unix_nano,
                &self.settings.injection,
                &mut detections,
            );
        }
        if self.settings.rate_abuse.enabled {
            self.rate_abuse.observe(
                event,
                at_unix_nano,
                &self.settings.rate_abuse,
                &mut detections,
            );
        }
        detections
    }

    /// The settings in effect, for the effective-settings printout and for tuning one value.
    pub fn settings(&self) -> &DetectorSettings {
        &self.settings
    }

    /// How much state the detectors hold, for the service's metrics.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            tracked_users: self.brute_force.users.len(),
            tracked_ips: self.brute_force.ips.len(),
            tracked_rate_ips: self.rate_abuse.ips.len(),
            evicted_keys: self.brute_force.users.evicted
                + self.brute_force.ips.evicted
                + self.rate_abuse.ips.evicted,
        }
    }
}

/// A duration in nanoseconds, at least 1 and at most `i64::MAX`.
fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// A threshold as a count, at least 1.
fn threshold(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX).max(1)
}

/// The most entries a window with this threshold keeps.
fn window_cap(threshold: usize) -> usize {
    threshold.saturating_mul(CRITICAL_FACTOR)
}

/// `warning`, or `critical` when the count reached [`CRITICAL_FACTOR`] × the threshold.
fn severity(count: usize, threshold: usize) -> &'static str {
    if count >= window_cap(threshold) {
        "critical"
    } else {
        "warning"
    }
}

/// RFC 3339 time of a Unix time in nanoseconds, for annotations.
fn rfc3339(unix_nano: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(unix_nano).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The service an event names, as ingest stores it.
fn service_name(event: &SecurityEvent) -> &str {
    if event.service_name.is_empty() {
        "unknown_service"
    } else {
        &event.service_name
    }
}

/// The parts of a detection, assembled into labels and annotations by [`Incident::detection`].
struct Incident<'a> {
    detector: &'static str,
    alertname: &'static str,
    severity: &'static str,
    /// The incident's key labels; empty values are left out.
    keys: &'a [(&'static str, &'a str)],
    summary: String,
    description: String,
}

impl Incident<'_> {
    fn detection(self, evidence: Evidence, at_unix_nano: i64) -> Detection {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), self.alertname.to_string());
        labels.insert("severity".to_string(), self.severity.to_string());
        labels.insert("detector".to_string(), self.detector.to_string());
        for (name, value) in self.keys {
            if !value.is_empty() {
                labels.insert((*name).to_string(), (*value).to_string());
            }
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_string(), self.summary);
        annotations.insert("description".to_string(), self.description);
        Detection {
            detector: self.detector,
            labels,
            annotations,
            evidence,
            at_unix_nano,
        }
    }
}

/// When a key may fire again: after a detection at `t`, not before `t` + the window.
#[derive(Debug, Clone, Copy)]
struct Cooldown {
    until: i64,
}

impl Default for Cooldown {
    fn default() -> Self {
        Self { until: i64::MIN }
    }
}

impl Cooldown {
    /// Whether the key may fire at `now`; if so, it is quiet for the next `window`.
    fn fire(&mut self, now: i64, window: i64) -> bool {
        if now > self.until {
            self.until = now.saturating_add(window);
            true
        } else {
            false
        }
    }
}

/// One key's events within its window, oldest first, each with a value (the user tried, for
/// credential stuffing).
#[derive(Debug)]
struct SlidingWindow<T> {
    events: VecDeque<(i64, T)>,
    /// The latest event time seen for the key: the window ends there.
    latest: i64,
}

impl<T> Default for SlidingWindow<T> {
    fn default() -> Self {
        Self {
            events: VecDeque::new(),
            latest: i64::MIN,
        }
    }
}

impl<T> SlidingWindow<T> {
    /// Adds an event at `at` (in order, even if it arrived late) and drops the events that
    /// left the window or exceed `cap`, handing each dropped value to `dropped`. Returns the
    /// window's end: the latest time seen.
    fn push(
        &mut self,
        at: i64,
        value: T,
        window: i64,
        cap: usize,
        mut dropped: impl FnMut(T),
    ) -> i64 {
        self.latest = self.latest.max(at);
        let start = self.latest.saturating_sub(window);
        if at >= start {
            let position = self.events.partition_point(|(time, _)| *time <= at);
            self.events.insert(position, (at, value));
        } else {
            dropped(value);
        }
        while let Some((time, _)) = self.events.front() {
            if *time >= start && self.events.len() <= cap {
                break;
            }
            if let Some((_, value)) = self.events.pop_front() {
                dropped(value);
            }
        }
        self.latest
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn first(&self) -> i64 {
        self.events.front().map_or(0, |(time, _)| *time)
    }

    fn last(&self) -> i64 {
        self.events.back().map_or(0, |(time, _)| *time)
    }

    fn clear(&mut self) {
        self.events.clear();
    }
}

/// One event kept as a sample, its strings cut to [`MAX_SAMPLE_BYTES`].
#[derive(Debug)]
struct Trace {
    at: i64,
    user: Box<str>,
    ip: Box<str>,
    resource: Box<str>,
}

/// A key's last [`MAX_SAMPLES`] events.
#[derive(Debug, Default)]
struct Traces(VecDeque<Trace>);

impl Traces {
    fn push(&mut self, event: &SecurityEvent, at: i64) {
        if self.0.len() == MAX_SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(Trace {
            at,
            user: truncate(&event.user_id, MAX_SAMPLE_BYTES).into(),
            ip: truncate(&event.source_ip, MAX_SAMPLE_BYTES).into(),
            resource: truncate(&event.resource, MAX_SAMPLE_BYTES).into(),
        });
    }

    /// The kept events at or after `since`, as evidence.
    fn samples(&self, since: i64, event_type: &str) -> Vec<EventSample> {
        self.0
            .iter()
            .filter(|trace| trace.at >= since)
            .map(|trace| EventSample {
                time_unix_nano: trace.at,
                event_type: event_type.to_string(),
                user_id: trace.user.to_string(),
                source_ip: trace.ip.to_string(),
                resource: trace.resource.to_string(),
                patterns: Vec::new(),
                score: None,
            })
            .collect()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The state of one key of a keyed detector.
trait KeyState: Default {
    /// The latest event time of the key.
    fn last_seen(&self) -> i64;
}

/// A detector's keys and their state, at most `max_keys` of them (see the module's doc for
/// what is dropped at the cap).
#[derive(Debug)]
struct Keyed<S> {
    map: HashMap<Box<str>, S>,
    max_keys: usize,
    /// Keys dropped at the cap, since the start.
    evicted: u64,
}

impl<S: KeyState> Keyed<S> {
    fn new(max_keys: usize) -> Self {
        Self {
            map: HashMap::new(),
            max_keys: max_keys.max(1),
            evicted: 0,
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Runs `update` on the state of `key`, created if new (making room at the cap, `now`
    /// being the latest time seen by the detector and `window` its window).
    fn with<R>(&mut self, key: &str, now: i64, window: i64, update: impl FnOnce(&mut S) -> R) -> R {
        if let Some(state) = self.map.get_mut(key) {
            return update(state);
        }
        if self.map.len() >= self.max_keys {
            self.make_room(now, window);
        }
        let mut state = S::default();
        let result = update(&mut state);
        self.map.insert(key.into(), state);
        result
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut S> {
        self.map.get_mut(key)
    }

    /// Applies a new cap, dropping keys at once if there are too many.
    fn set_max_keys(&mut self, max_keys: usize, now: i64, window: i64) {
        self.max_keys = max_keys.max(1);
        if self.map.len() > self.max_keys {
            self.make_room(now, window);
        }
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    /// Drops the keys idle for a window, then, if fewer than a tenth of the cap is free, the
    /// keys with the oldest last events. Amortized O(1) per new key: a pass over the map
    /// frees at least a tenth of it.
    fn make_room(&mut self, now: i64, window: i64) {
        let before = self.map.len();
        let keep = self.max_keys - (self.max_keys / 10).max(1);
        let horizon = now.saturating_sub(window);
        self.map.retain(|_, state| state.last_seen() >= horizon);
        if self.map.len() > keep {
            let excess = self.map.len() - keep;
            let mut seen: Vec<i64> = self.map.values().map(KeyState::last_seen).collect();
            let (_, cutoff, _) = seen.select_nth_unstable(excess - 1);
            let cutoff = *cutoff;
            let older = seen.iter().filter(|time| **time < cutoff).count();
            let mut at_cutoff = excess - older;
            self.map.retain(|_, state| {
                let time = state.last_seen();
                if time < cutoff {
                    false
                } else if time == cutoff && at_cutoff > 0 {
                    at_cutoff -= 1;
                    false
                } else {
                    true
                }
            });
        }
        self.evicted += u64::try_from(before - self.map.len()).unwrap_or(u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENIGN: &str = include_str!("../../tests/security/benign.jsonl");
    const ATTACKS: &str = include_str!("../../tests/security/attacks.jsonl");
    const SECOND: i64 = 1_000_000_000;
    const T0: i64 = 1_767_571_200 * SECOND;

    /// One line of a corpus: a security event and what the test expects of it.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        time_unix_nano: i64,
        event_type: String,
        user_id: String,
        source_ip: String,
        severity: i32,
        resource: String,
        service_name: String,
        attributes: HashMap<String, String>,
        #[serde(default)]
        group: Option<String>,
        #[serde(default)]
        expect: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    }

    impl Line {
        fn event(&self) -> SecurityEvent {
            SecurityEvent {
                time_unix_nano: self.time_unix_nano,
                event_type: self.event_type.clone(),
                user_id: self.user_id.clone(),
                source_ip: self.source_ip.clone(),
                severity: self.severity,
                resource: self.resource.clone(),
                service_name: self.service_name.clone(),
                attributes: self.attributes.clone(),
            }
        }
    }

    fn corpus(text: &str) -> Vec<Line> {
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(index, line)| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("corpus line {}: {error}", index + 1))
            })
            .collect()
    }

    fn event(event_type: &str, user: &str, ip: &str, at: i64) -> SecurityEvent {
        SecurityEvent {
            time_unix_nano: at,
            event_type: event_type.to_string(),
            user_id: user.to_string(),
            source_ip: ip.to_string(),
            severity: 2,
            resource: "/api/login".to_string(),
            service_name: "auth".to_string(),
            attributes: HashMap::new(),
        }
    }

    /// Observes a failed login at `T0 + seconds`, returning the detectors that fired.
    fn fail(detectors: &mut Detectors, user: &str, ip: &str, seconds: f64) -> Vec<Detection> {
        let at = T0 + (seconds * SECOND as f64) as i64;
        detectors.observe(&event(AUTH_FAILURE, user, ip, at), at)
    }

    fn names(detections: &[Detection]) -> Vec<&'static str> {
        detections
            .iter()
            .map(|detection| detection.detector)
            .collect()
    }

    #[test]
    fn benign_corpus_has_few_false_positives() {
        let lines = corpus(BENIGN);
        assert!(lines.len() >= 2_000, "{} benign events", lines.len());
        let mut detectors = Detectors::new(DetectorSettings::default());
        let mut flagged = 0;
        let mut by_detector: BTreeMap<&str, usize> = BTreeMap::new();
        for line in &lines {
            let detections = detectors.observe(&line.event(), line.time_unix_nano);
            if !detections.is_empty() {
                flagged += 1;
                for detection in &detections {
                    *by_detector.entry(detection.detector).or_default() += 1;
                    println!(
                        "false positive: {} {:?} {:?} {:?}",
                        detection.detector,
                        line.resource,
                        line.attributes,
                        detection.evidence.samples.first().map(|s| &s.patterns)
                    );
                }
            }
        }
        let rate = flagged as f64 / lines.len() as f64;
        println!(
            "benign corpus: {flagged} of {} events flagged ({:.2}%), by detector {by_detector:?}",
            lines.len(),
            rate * 100.0
        );
        assert!(
            rate < 0.05,
            "hard limit: {:.2}% false positives",
            rate * 100.0
        );
        assert!(rate < 0.01, "target: {:.2}% false positives", rate * 100.0);
    }

    #[test]
    fn attack_corpus_incidents_are_detected() {
        let lines = corpus(ATTACKS);
        let mut detectors = Detectors::new(DetectorSettings::default());
        let (mut injections, mut injections_found, mut kinds_right) = (0, 0, 0);
        let mut misses = Vec::new();
        let mut wrong = Vec::new();
        // (group, detector) -> detections and expected ones.
        let mut incidents: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
        for (index, line) in lines.iter().enumerate() {
            let detections = detectors.observe(&line.event(), line.time_unix_nano);
            let group = line.group.clone().unwrap_or_default();
            for detection in &detections {
                incidents
                    .entry((group.clone(), detection.detector.to_string()))
                    .or_default()
                    .0 += 1;
            }
            if let Some(expect) = &line.expect {
                incidents
                    .entry((group.clone(), expect.clone()))
                    .or_default()
                    .1 += 1;
            }
            if line.expect.as_deref() == Some("injection") {
                injections += 1;
                match detections.iter().find(|d| d.detector == "injection") {
                    Some(detection) => {
                        injections_found += 1;
                        if detection.labels.get("kind") == line.kind.as_ref() {
                            kinds_right += 1;
                        } else {
                            println!(
                                "kind {:?} for {:?} payload {:?}",
                                detection.labels.get("kind"),
                                line.kind,
                                line.attributes
                            );
                        }
                    }
                    None => {
                        misses.push((index + 1, line.resource.clone(), line.attributes.clone()))
                    }
                }
                if detections.iter().any(|d| d.detector != "injection") {
                    wrong.push((index + 1, names(&detections)));
                }
            } else {
                let fired = names(&detections);
                let expected: Vec<&str> = line.expect.as_deref().into_iter().collect();
                if fired != expected {
                    wrong.push((index + 1, fired));
                }
            }
        }
        for miss in &misses {
            println!(
                "missed injection: line {} {:?} {:?}",
                miss.0, miss.1, miss.2
            );
        }
        let rate = injections_found as f64 / injections as f64;
        println!(
            "injection payloads: {injections_found} of {injections} detected ({:.1}%), kind \
             right for {kinds_right}",
            rate * 100.0
        );
        for ((group, detector), (found, expected)) in &incidents {
            if detector != "injection" {
                println!("incident {group}: {detector} fired {found} times, expected {expected}");
                assert_eq!(found, expected, "{group}: {detector}");
            }
        }
        assert!(injections >= 300, "{injections} injection payloads");
        assert!(rate >= 0.95, "{:.1}% of injections detected", rate * 100.0);
        assert!(
            kinds_right as f64 >= 0.9 * injections_found as f64,
            "{kinds_right} of {injections_found} kinds right"
        );
        assert!(wrong.is_empty(), "unexpected detections: {wrong:?}");
    }

    #[test]
    fn a_long_brute_force_fires_once_per_window() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        let mut fired = Vec::new();
        // 1,000 failures in 100 s, each from another address.
        for index in 0..1_000 {
            let ip = format!("10.1.{}.{}", index / 250, index % 250);
            for detection in fail(&mut detectors, "admin", &ip, index as f64 * 0.1) {
                fired.push(detection);
            }
        }
        let times: Vec<i64> = fired
            .iter()
            .map(|d| (d.at_unix_nano - T0) / 100_000_000)
            .collect();
        assert_eq!(
            names(&fired),
            ["brute_force_user", "brute_force_user"],
            "{times:?}"
        );
        // The 5th failure (at 0.4 s), then the first one after the quiet minute.
        assert_eq!(times, [4, 605]);
        let first = &fired[0];
        assert_eq!(first.labels["alertname"], "BruteForceUser");
        assert_eq!(first.labels["severity"], "warning");
        assert_eq!(first.labels["user"], "admin");
        assert_eq!(first.evidence.count, 5);
        assert_eq!(first.evidence.samples.len(), MAX_SAMPLES);
        assert!(first.annotations["summary"].contains("5 failed logins"));
        // A minute later the window is full: critical, and the same key labels.
        let second = &fired[1];
        assert_eq!(second.labels["severity"], "critical");
        assert_eq!(second.evidence.count, 25);
        let keys = |d: &Detection| {
            let mut labels = d.labels.clone();
            labels.remove("severity");
            labels
        };
        assert_eq!(keys(first), keys(second));
    }

    #[test]
    fn cooldown_rearms_after_the_window() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        let mut fired = Vec::new();
        for second in 0..5 {
            fired.extend(fail(&mut detectors, "bob", "10.0.0.1", f64::from(second)));
        }
        assert_eq!(names(&fired), ["brute_force_user"]);
        // Five more within the window: quiet.
        for second in 10..15 {
            assert!(fail(&mut detectors, "bob", "10.0.0.2", f64::from(second)).is_empty());
        }
        // After the window: four are not enough, the fifth fires again.
        for second in 100..104 {
            assert!(fail(&mut detectors, "bob", "10.0.0.3", f64::from(second)).is_empty());
        }
        assert_eq!(
            names(&fail(&mut detectors, "bob", "10.0.0.3", 104.0)),
            ["brute_force_user"]
        );
    }

    #[test]
    fn credential_stuffing_counts_distinct_users() {
        let mut settings = DetectorSettings::default();
        settings.brute_force.max_failures_per_ip = 100;
        let mut detectors = Detectors::new(settings);
        // One user many times from one address: brute force on the user, not stuffing.
        let mut fired = Vec::new();
        for second in 0..9 {
            fired.extend(fail(&mut detectors, "carol", "10.0.0.9", f64::from(second)));
        }
        assert_eq!(names(&fired), ["brute_force_user"]);
        // Three more users: 4 distinct, still nothing; the 5th user makes it.
        for (second, user) in [(10.0, "dave"), (11.0, "erin"), (12.0, "frank")] {
            assert!(fail(&mut detectors, user, "10.0.0.9", second).is_empty());
        }
        let fired = fail(&mut detectors, "grace", "10.0.0.9", 13.0);
        assert_eq!(names(&fired), ["credential_stuffing"]);
        assert_eq!(fired[0].evidence.distinct, Some(5));
        assert_eq!(fired[0].evidence.count, 13);
        assert_eq!(fired[0].labels["source_ip"], "10.0.0.9");
        assert!(!fired[0].labels.contains_key("user"));
        // Users that left the window no longer count.
        let mut later = Detectors::new(DetectorSettings::default());
        for (second, user) in [(0.0, "a"), (1.0, "b"), (2.0, "c"), (3.0, "d")] {
            assert!(fail(&mut later, user, "10.0.0.8", second).is_empty());
        }
        assert!(fail(&mut later, "e", "10.0.0.8", 70.0).is_empty());
    }

    #[test]
    fn a_success_resets_the_user_but_not_the_address() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        for second in 0..4 {
            assert!(fail(&mut detectors, "heidi", "10.0.0.5", f64::from(second)).is_empty());
        }
        let success = event(AUTH_SUCCESS, "heidi", "10.0.0.5", T0 + 5 * SECOND);
        assert!(detectors.observe(&success, T0 + 5 * SECOND).is_empty());
        // The user starts over: four more failures do not fire.
        for second in 6..10 {
            assert!(fail(&mut detectors, "heidi", "10.0.0.5", f64::from(second)).is_empty());
        }
        // The address kept its 8: two more make 10.
        assert!(fail(&mut detectors, "ivan", "10.0.0.5", 10.0).is_empty());
        assert_eq!(
            names(&fail(&mut detectors, "ivan", "10.0.0.5", 11.0)),
            ["brute_force_ip"]
        );
    }

    #[test]
    fn late_events_count_in_their_place() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        for second in [10.0, 12.0, 11.0, 13.0] {
            assert!(fail(&mut detectors, "judy", "10.0.0.6", second).is_empty());
        }
        // Too old for the window that now ends at 13 s: dropped.
        assert!(fail(&mut detectors, "judy", "10.0.0.6", -100.0).is_empty());
        let fired = fail(&mut detectors, "judy", "10.0.0.6", 9.0);
        assert_eq!(names(&fired), ["brute_force_user"]);
        assert_eq!(fired[0].evidence.first_unix_nano, T0 + 9 * SECOND);
        assert_eq!(fired[0].evidence.last_unix_nano, T0 + 13 * SECOND);
    }

    #[test]
    fn rate_limit_bursts_fire_once() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        let mut fired = Vec::new();
        for index in 0..100 {
            let at = T0 + index * 50_000_000;
            fired.extend(detectors.observe(&event(RATE_LIMIT_VIOLATION, "", "10.9.9.9", at), at));
        }
        assert_eq!(names(&fired), ["rate_abuse"]);
        assert_eq!(fired[0].labels["alertname"], "RateLimitAbuse");
        assert_eq!(fired[0].evidence.count, 20);
        // 19 in a window, spread out: nothing.
        for index in 0..19 {
            let at = T0 + 100 * SECOND + index * SECOND / 2;
            let violation = event(RATE_LIMIT_VIOLATION, "", "10.9.9.8", at);
            assert!(detectors.observe(&violation, at).is_empty());
        }
    }

    #[test]
    fn the_key_cap_evicts_the_oldest_keys() {
        let mut settings = DetectorSettings::default();
        settings.brute_force.max_keys = 100;
        let mut detectors = Detectors::new(settings);
        // An attack in progress, and 1,000 users mistyping once, all within one window.
        for second in 0..3 {
            assert!(fail(&mut detectors, "target", "10.2.0.1", f64::from(second)).is_empty());
        }
        for index in 0..1_000 {
            let user = format!("user{index}");
            let ip = format!("10.3.{}.{}", index / 250, index % 250);
            fail(&mut detectors, &user, &ip, 3.0 + f64::from(index) * 0.01);
            if index % 50 == 0 {
                // The attack keeps going slowly, so its key is never the oldest.
                fail(
                    &mut detectors,
                    "target",
                    "10.2.0.1",
                    3.0 + f64::from(index) * 0.01,
                );
            }
        }
        let stats = detectors.stats();
        println!("{stats:?}");
        assert!(stats.tracked_users <= 100, "{stats:?}");
        assert!(stats.tracked_ips <= 100, "{stats:?}");
        assert!(stats.evicted_keys >= 1_700, "{stats:?}");
        // A key in use survives: noise of 100 new users with a cap of 10, and an attack
        // whose failures come every 5 of them, fires on its 5th failure.
        let mut again = Detectors::new(DetectorSettings {
            brute_force: BruteForceSettings {
                max_keys: 10,
                ..BruteForceSettings::default()
            },
            ..DetectorSettings::default()
        });
        for index in 0..100 {
            let at = f64::from(index) * 0.01;
            if index % 5 == 0 {
                let fired = fail(&mut again, "target", "", at);
                assert_eq!(fired.is_empty(), index != 20, "at {index}: {fired:?}");
            }
            fail(&mut again, &format!("noise{index}"), "", at);
        }
        assert!(again.stats().tracked_users <= 10);
        // Lowering the cap live drops keys at once.
        let mut settings = again.settings().clone();
        settings.brute_force.max_keys = 2;
        again.apply_settings(settings);
        assert!(again.stats().tracked_users <= 2);
    }

    #[test]
    fn settings_round_trip_with_readable_durations() {
        let settings = DetectorSettings {
            brute_force: BruteForceSettings {
                window: Duration::from_secs(300),
                max_failures: 8,
                ..BruteForceSettings::default()
            },
            ..DetectorSettings::default()
        };
        let json = serde_json::to_string(&settings).expect("serializes");
        assert!(json.contains(r#""window":"5m""#), "{json}");
        assert!(json.contains(r#""window":"10s""#), "{json}");
        let back: DetectorSettings = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, settings);
        // A partial section keeps the defaults of the rest.
        let partial: DetectorSettings = serde_json::from_str(
            r#"{"brute_force": {"window": "90s"}, "injection": {"threshold": 6.5}}"#,
        )
        .expect("reads a partial section");
        assert_eq!(partial.brute_force.window, Duration::from_secs(90));
        assert_eq!(partial.brute_force.max_failures, 5);
        assert_eq!(partial.injection.threshold, 6.5);
        assert!(partial.rate_abuse.enabled);
        partial.validate().expect("valid");
        let unknown =
            serde_json::from_str::<DetectorSettings>(r#"{"brute_force": {"windw": "1m"}}"#);
        assert!(unknown.is_err());
        let bad = serde_json::from_str::<DetectorSettings>(r#"{"rate_abuse": {"window": "soon"}}"#)
            .expect_err("not a duration");
        assert!(bad.to_string().contains("write it like"), "{bad}");
        let mut zero = DetectorSettings::default();
        zero.brute_force.max_failures = 0;
        let error = zero.validate().expect_err("zero threshold");
        assert!(
            error.to_string().contains("brute_force.max_failures"),
            "{error}"
        );
    }

    #[test]
    fn apply_settings_changes_thresholds_live() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        for second in 0..3 {
            assert!(fail(&mut detectors, "kim", "10.0.0.7", f64::from(second)).is_empty());
        }
        let mut settings = detectors.settings().clone();
        settings.brute_force.max_failures = 4;
        detectors.apply_settings(settings.clone());
        // The three failures were kept: the fourth reaches the new threshold.
        assert_eq!(
            names(&fail(&mut detectors, "kim", "10.0.0.7", 3.0)),
            ["brute_force_user"]
        );
        let probe = |detectors: &mut Detectors| {
            let mut request = event("request", "", "10.0.0.7", T0);
            request.resource = "/search?q=%27+UNION+SELECT+password+FROM+users--".to_string();
            detectors.observe(&request, T0)
        };
        assert_eq!(names(&probe(&mut detectors)), ["injection"]);
        settings.injection.enabled = false;
        detectors.apply_settings(settings.clone());
        assert!(probe(&mut detectors).is_empty());
        settings.injection.enabled = true;
        settings.injection.threshold = 10.5;
        detectors.apply_settings(settings);
        assert!(probe(&mut detectors).is_empty());
    }

    #[test]
    fn injections_are_decoded_scored_and_labelled() {
        let mut detectors = Detectors::new(DetectorSettings::default());
        let mut request = event("request", "", "198.51.100.4", T0);
        request.service_name = "shop-web".to_string();
        request.resource = "/download?file=%252e%252e%252fetc%252fpasswd".to_string();
        let fired = detectors.observe(&request, T0);
        assert_eq!(names(&fired), ["injection"]);
        let detection = &fired[0];
        assert_eq!(detection.labels["kind"], "path_traversal");
        assert_eq!(detection.labels["alertname"], "InjectionAttempt");
        assert_eq!(detection.labels["service"], "shop-web");
        assert_eq!(detection.labels["source_ip"], "198.51.100.4");
        assert!(!detection.labels.contains_key("reported"));
        let sample = &detection.evidence.samples[0];
        assert!(
            sample.patterns.contains(&"path_traversal.encoded_dotdot"),
            "{sample:?}"
        );
        assert_eq!(detection.evidence.score, sample.score);
        // `+` is a space and case does not matter.
        request.resource = "/p?id=1+UnIoN+aLl+SeLeCt+1,2".to_string();
        assert_eq!(detectors.observe(&request, T0)[0].labels["kind"], "sqli");
        // An attribute outside the scanned ones is not read.
        request.resource = "/p".to_string();
        request
            .attributes
            .insert("note".to_string(), "<script>alert(1)</script>".to_string());
        assert!(detectors.observe(&request, T0).is_empty());
        request
            .attributes
            .insert("body".to_string(), "<script>alert(1)</script>".to_string());
        assert_eq!(detectors.observe(&request, T0)[0].labels["kind"], "xss");
        // What the application reported is a detection whatever the score.
        let mut reported = event(SQL_INJECTION_ATTEMPT, "", "198.51.100.5", T0);
        reported
            .attributes
            .insert("parameter".to_string(), "page".to_string());
        let fired = detectors.observe(&reported, T0);
        assert_eq!(names(&fired), ["injection"]);
        assert_eq!(fired[0].labels["kind"], "sqli");
        assert_eq!(fired[0].labels["reported"], "true");
        assert_eq!(fired[0].evidence.score, Some(0.0));
        let json = serde_json::to_value(&fired[0].evidence).expect("evidence serializes");
        assert_eq!(json["count"], 1);
    }

    #[test]
    fn percent_decoding_is_done_once() {
        let mut out = Vec::new();
        injection_decode(b"%2E%2e%2f+%25%32%65+%zz%4", &mut out);
        assert_eq!(out, b"../ %2e %zz%4");
        injection_decode(b"%C0%AE", &mut out);
        assert_eq!(out, [0xc0, 0xae]);
    }

    fn injection_decode(text: &[u8], out: &mut Vec<u8>) {
        injection::decode_lowercase(text, out);
    }

    /// Prints how fast the whole engine reads the benign corpus; asserts nothing about time.
    #[test]
    #[allow(clippy::disallowed_methods)] // measures this test's own speed, printed only
    fn timing_smoke() {
        let events: Vec<(SecurityEvent, i64)> = corpus(BENIGN)
            .iter()
            .chain(corpus(ATTACKS).iter())
            .map(|line| (line.event(), line.time_unix_nano))
            .collect();
        // One engine, as in the service: a first pass warms the regexes' lazy DFA, then
        // five passes are timed, each a day later than the one before.
        let mut detectors = Detectors::new(DetectorSettings::default());
        let day = 86_400 * SECOND;
        let run = |detectors: &mut Detectors, shift: i64| {
            let mut detections = 0;
            for (event, at) in &events {
                detections += detectors.observe(event, at + shift).len();
            }
            detections
        };
        run(&mut detectors, 0);
        let rounds = 5;
        let started = std::time::Instant::now();
        let mut detections = 0;
        for round in 1..=rounds {
            detections += run(&mut detectors, round * day);
        }
        let elapsed = started.elapsed();
        let count = events.len() * rounds as usize;
        println!(
            "timing: {count} events (benign and attack corpora) in {elapsed:?}: {:.0} events/s, \
             {:.1} us per event ({detections} detections)",
            count as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / count as f64,
        );
        // The worst case of one event: a body of `MAX_SCAN_BYTES` of review text.
        let mut large = event("request", "", "10.0.0.1", T0);
        let text = "Tip: select 'large' from the size menu; it's O'Reilly-level good <3 ";
        large.attributes.insert(
            "body".to_string(),
            text.repeat(injection::MAX_SCAN_BYTES / text.len() + 1),
        );
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(detectors.observe(&large, T0).is_empty());
        }
        println!(
            "timing: an event with a {} KiB body: {:.0} us",
            injection::MAX_SCAN_BYTES / 1024,
            started.elapsed().as_secs_f64() * 1e6 / 100.0
        );
    }
}
