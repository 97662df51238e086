//! The feed's payload format, owned by ingest (the store keeps it as opaque bytes): the first
//! byte is the format version, then the batch. Version 1:
//!
//! - metric points: 24 bytes a point, big-endian series id, time in microseconds and the
//!   value's bits (NaN payloads, such as Prometheus' staleness marker, survive);
//! - security events: a protobuf `WriteSecurityEventsRequest`.
//!
//! Rows written before the version byte existed (version 0) are still read: a metric payload
//! is a whole number of 24-byte points, and a security-event payload starts with protobuf's
//! field-1 tag (0x0a), never a valid version. A version this build does not know is an error
//! that names it, never a guess.

use pharos_proto::ingest::v1 as pb;
use pharos_store::signals::feed::FeedSignal;
use pharos_store::signals::metrics::PointRow;
use pharos_store::signals::security_events::SecurityEventRow;
use prost::Message as _;

/// The version this build writes.
pub const VERSION: u8 = 1;
/// Bytes of one metric point.
const POINT_BYTES: usize = 24;
/// The first byte of an unversioned security-event payload (protobuf field 1, length-delimited).
const UNVERSIONED_EVENTS_TAG: u8 = 0x0a;

/// A decoded feed batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Metrics(Vec<PointRow>),
    SecurityEvents(Vec<pb::SecurityEvent>),
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(
        "feed payload version {0} is newer than this build reads ({VERSION}); upgrade this replica"
    )]
    UnknownVersion(u8),
    #[error("feed payload of {signal:?} is damaged: {reason}")]
    Damaged { signal: FeedSignal, reason: String },
}

/// Metric points as a version-1 payload.
pub fn encode_points(points: &[PointRow]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + points.len() * POINT_BYTES);
    bytes.push(VERSION);
    for point in points {
        bytes.extend_from_slice(&point.series_id.to_be_bytes());
        bytes.extend_from_slice(&point.time_us.to_be_bytes());
        bytes.extend_from_slice(&point.value.to_bits().to_be_bytes());
    }
    bytes
}

/// Stored security events as a version-1 payload.
pub fn encode_security_events(rows: &[SecurityEventRow]) -> Vec<u8> {
    let events = rows.iter().map(security_event_message).collect();
    let message = pb::WriteSecurityEventsRequest { events };
    let mut bytes = Vec::with_capacity(1 + message.encoded_len());
    bytes.push(VERSION);
    // Writing into a Vec cannot fail: it grows as needed.
    let _ = message.encode(&mut bytes);
    bytes
}

/// Reads the payload of a feed row of `signal`.
pub fn decode(signal: FeedSignal, bytes: &[u8]) -> Result<Payload, PayloadError> {
    let damaged = |reason: String| PayloadError::Damaged { signal, reason };
    match signal {
        FeedSignal::Metrics => {
            let body = match bytes.first() {
                _ if bytes.len().is_multiple_of(POINT_BYTES) => bytes,
                Some(&VERSION) => &bytes[1..],
                Some(&other) => return Err(PayloadError::UnknownVersion(other)),
                None => bytes,
            };
            if !body.len().is_multiple_of(POINT_BYTES) {
                return Err(damaged(format!(
                    "{} bytes is not a whole number of points",
                    body.len()
                )));
            }
            Ok(Payload::Metrics(
                body.chunks_exact(POINT_BYTES).map(decode_point).collect(),
            ))
        }
        FeedSignal::SecurityEvents => {
            let body = match bytes.first() {
                Some(&VERSION) => &bytes[1..],
                Some(&UNVERSIONED_EVENTS_TAG) | None => bytes,
                Some(&other) => return Err(PayloadError::UnknownVersion(other)),
            };
            pb::WriteSecurityEventsRequest::decode(body)
                .map(|request| Payload::SecurityEvents(request.events))
                .map_err(|error| damaged(error.to_string()))
        }
    }
}

fn decode_point(record: &[u8]) -> PointRow {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&record[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    PointRow {
        series_id: word(0) as i64,
        time_us: word(8) as i64,
        value: f64::from_bits(word(16)),
    }
}

/// A stored security event as the feed carries it.
pub fn security_event_message(row: &SecurityEventRow) -> pb::SecurityEvent {
    let attributes: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.attributes).unwrap_or_default();
    pb::SecurityEvent {
        time_unix_nano: row.time_ns,
        event_type: row.event_type.clone(),
        user_id: row.user_id.clone(),
        source_ip: row.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        severity: i32::from(row.severity),
        resource: row.resource.clone(),
        service_name: row.service.clone(),
        attributes: attributes
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Vec<PointRow> {
        vec![
            PointRow {
                series_id: 7,
                time_us: 1_700_000_000_000_000,
                value: 1.5,
            },
            PointRow {
                series_id: -1,
                time_us: 0,
                value: f64::from_bits(0x7ff0_0000_0000_0002), // Prometheus' staleness marker
            },
        ]
    }

    fn bits(payload: Payload) -> Vec<(i64, i64, u64)> {
        match payload {
            Payload::Metrics(points) => points
                .iter()
                .map(|p| (p.series_id, p.time_us, p.value.to_bits()))
                .collect(),
            Payload::SecurityEvents(_) => panic!("not metrics"),
        }
    }

    #[test]
    fn points_round_trip_with_their_version() {
        let encoded = encode_points(&points());
        assert_eq!(encoded[0], VERSION);
        assert_eq!(encoded.len(), 1 + 2 * POINT_BYTES);
        let expected: Vec<_> = points()
            .iter()
            .map(|p| (p.series_id, p.time_us, p.value.to_bits()))
            .collect();
        let decoded = decode(FeedSignal::Metrics, &encoded).expect("decodes");
        assert_eq!(bits(decoded), expected);
        // A row written before the version byte: whole points, no header.
        let unversioned = encoded[1..].to_vec();
        let decoded = decode(FeedSignal::Metrics, &unversioned).expect("version 0");
        assert_eq!(bits(decoded), expected);
        assert_eq!(
            decode(FeedSignal::Metrics, &[]).expect("empty"),
            Payload::Metrics(Vec::new())
        );
    }

    #[test]
    fn security_events_round_trip_and_bad_payloads_are_named() {
        let message = pb::WriteSecurityEventsRequest {
            events: vec![pb::SecurityEvent {
                event_type: "auth_failure".into(),
                user_id: "alice".into(),
                ..Default::default()
            }],
        };
        let mut versioned = vec![VERSION];
        versioned.extend(message.encode_to_vec());
        for bytes in [versioned, message.encode_to_vec()] {
            assert_eq!(
                decode(FeedSignal::SecurityEvents, &bytes),
                Ok(Payload::SecurityEvents(message.events.clone()))
            );
        }
        assert_eq!(
            decode(FeedSignal::SecurityEvents, &[9, 1, 2]),
            Err(PayloadError::UnknownVersion(9))
        );
        let mut future = encode_points(&points());
        future[0] = 2;
        assert_eq!(
            decode(FeedSignal::Metrics, &future),
            Err(PayloadError::UnknownVersion(2))
        );
        assert!(matches!(
            decode(FeedSignal::Metrics, &[VERSION, 1, 2, 3]),
            Err(PayloadError::Damaged { .. })
        ));
    }
}
