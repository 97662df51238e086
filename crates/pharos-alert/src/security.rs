//! The security detectors (`detect/`) over ingest's committed security events: every replica
//! follows the feed and keeps the detectors' windows warm, and the leader turns each detection
//! into an alert (labels from the detector, the evidence as an annotation) that is stored and
//! routed like any posted alert. A detection's alert holds for `alert.detection_hold` after the
//! last detection of the same incident, then resolves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pharos_api::feed::FeedApi;
use pharos_proto::ingest::v1 as pb;
use pharos_runtime::Shutdown;

use crate::alerts::{Alert, time_from_millis};
use crate::detect::{Detection, Detectors};
use crate::service::AlertService;

/// The detectors of this replica, shared with the live settings follower.
pub type SharedDetectors = Arc<Mutex<Detectors>>;

/// Follows the committed security events until the process stops; a lost subscription is
/// taken up again after the last batch seen.
pub async fn follow_security_events(
    service: Arc<AlertService>,
    feed: Arc<dyn FeedApi>,
    detectors: SharedDetectors,
    hold: Duration,
    shutdown: Shutdown,
) {
    pharos_api::feed::follow(
        feed,
        &[pb::FeedSignal::SecurityEvents],
        shutdown,
        "security detectors",
        |batch| {
            let service = service.clone();
            let detections = match batch.items {
                Some(pb::committed_batch::Items::SecurityEvents(events)) => {
                    observe(&detectors, &events.events, batch.committed_unix_nano)
                }
                _ => Vec::new(),
            };
            async move {
                if detections.is_empty() || !service.is_leader() {
                    return;
                }
                let alerts: Vec<Alert> = detections
                    .iter()
                    .map(|detection| to_alert(detection, &service, hold))
                    .collect();
                if let Err(error) = service.receive(alerts).await {
                    tracing::warn!(%error, "a detection could not be stored; it is lost");
                }
            }
        },
    )
    .await;
}

/// Runs a batch through the detectors (the event's own time, else the commit time).
fn observe(
    detectors: &SharedDetectors,
    events: &[pb::SecurityEvent],
    committed: i64,
) -> Vec<Detection> {
    let mut detectors = match detectors.lock() {
        Ok(detectors) => detectors,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut detections = Vec::new();
    for event in events {
        let at = if event.time_unix_nano > 0 {
            event.time_unix_nano
        } else {
            committed
        };
        detections.extend(detectors.observe(event, at));
    }
    detections
}

/// A detection as an alert: its labels, its annotations and the evidence as JSON, starting at
/// the incident's first event and holding `hold` past the detection.
fn to_alert(detection: &Detection, service: &AlertService, hold: Duration) -> Alert {
    let mut annotations = detection.annotations.clone();
    if let Ok(evidence) = serde_json::to_string(&detection.evidence) {
        annotations.insert("evidence".to_owned(), evidence);
    }
    let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
    let at_ms = detection.at_unix_nano.div_euclid(1_000_000);
    let first_ms = detection.evidence.first_unix_nano.div_euclid(1_000_000);
    Alert {
        labels: detection.labels.clone(),
        annotations,
        starts_at: time_from_millis(first_ms.min(at_ms)),
        ends_at: time_from_millis(at_ms.saturating_add(hold_ms)),
        generator_url: format!("{}/api/v2/alerts", service.external_url()),
        updated_at: service.now(),
        timeout: false,
    }
}
