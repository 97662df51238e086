//! Rate-limit abuse: `rate_limit_violation` events counted in a sliding window per source
//! address. A client that trips the limit now and then is normal; one that keeps hammering
//! through it (RateLimitAbuse) is scraping, stuffing or trying to take the service down.

use std::time::Duration;

use pharos_proto::ingest::v1::SecurityEvent;
use serde::{Deserialize, Serialize};

use super::{
    Cooldown, DEFAULT_MAX_KEYS, Detection, Evidence, Incident, KeyState, Keyed,
    RATE_LIMIT_VIOLATION, SlidingWindow, Traces, nanos, rfc3339, service_name, severity, threshold,
    window_cap,
};

/// Thresholds of the rate-limit abuse detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateAbuseSettings {
    pub enabled: bool,
    /// The sliding window, and the quiet time after a detection.
    #[serde(with = "pharos_clock::duration")]
    pub window: Duration,
    /// Violations from one source address within the window that make abuse.
    pub max_violations: u32,
    /// Source addresses tracked at most.
    pub max_keys: usize,
}

impl Default for RateAbuseSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(10),
            max_violations: 20,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// The violations from one source address.
#[derive(Debug, Default)]
pub(super) struct IpState {
    violations: SlidingWindow<()>,
    traces: Traces,
    cooldown: Cooldown,
}

impl KeyState for IpState {
    fn last_seen(&self) -> i64 {
        self.violations.latest
    }
}

/// The state of the rate-limit abuse detector.
#[derive(Debug)]
pub(super) struct RateAbuse {
    pub(super) ips: Keyed<IpState>,
    latest: i64,
}

impl RateAbuse {
    pub(super) fn new(settings: &RateAbuseSettings) -> Self {
        Self {
            ips: Keyed::new(settings.max_keys),
            latest: i64::MIN,
        }
    }

    pub(super) fn apply(&mut self, settings: &RateAbuseSettings) {
        if settings.enabled {
            self.ips
                .set_max_keys(settings.max_keys, self.latest, nanos(settings.window));
        } else {
            self.ips.clear();
        }
    }

    pub(super) fn observe(
        &mut self,
        event: &SecurityEvent,
        at: i64,
        settings: &RateAbuseSettings,
        detections: &mut Vec<Detection>,
    ) {
        if event.event_type != RATE_LIMIT_VIOLATION || event.source_ip.is_empty() {
            return;
        }
        self.latest = self.latest.max(at);
        let window = nanos(settings.window);
        let limit = threshold(settings.max_violations);
        let fired = self
            .ips
            .with(&event.source_ip, self.latest, window, |state| {
                let now = state
                    .violations
                    .push(at, (), window, window_cap(limit), |()| {});
                state.traces.push(event, at);
                let count = state.violations.len();
                (count >= limit && state.cooldown.fire(now, window)).then(|| Evidence {
                    count: count as u64,
                    first_unix_nano: state.violations.first(),
                    last_unix_nano: state.violations.last(),
                    samples: state
                        .traces
                        .samples(now.saturating_sub(window), RATE_LIMIT_VIOLATION),
                    distinct: None,
                    score: None,
                })
            });
        let Some(evidence) = fired else { return };
        let window_text = pharos_clock::duration::format(settings.window);
        let ip = event.source_ip.as_str();
        let incident = Incident {
            detector: "rate_abuse",
            alertname: "RateLimitAbuse",
            severity: severity(evidence.count as usize, limit),
            keys: &[("source_ip", ip)],
            summary: format!(
                "{} rate-limit violations from {ip} within {window_text}",
                evidence.count
            ),
            description: format!(
                "{ip} went over the rate limit {} times between {} and {} (threshold {limit} \
                 within {window_text}); the last time on {} {}",
                evidence.count,
                rfc3339(evidence.first_unix_nano),
                rfc3339(evidence.last_unix_nano),
                service_name(event),
                event.resource,
            ),
        };
        detections.push(incident.detection(evidence, at));
    }
}
