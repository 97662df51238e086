//! Our own API's spans, log records and security events to the items validation takes.

use pharos_proto::ingest::v1 as pb;
use serde_json::Value;

use crate::records::{
    Attributes, LogItem, SecurityEventItem, SpanEventItem, SpanItem, SpanLinkItem,
};

/// String attributes, sorted by key so that stored JSON does not depend on map order.
fn attributes(map: std::collections::HashMap<String, String>) -> Attributes {
    let mut attributes: Attributes = map
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    attributes
}

impl From<pb::Span> for SpanItem {
    fn from(span: pb::Span) -> Self {
        let status = span.status.unwrap_or_default();
        SpanItem {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            trace_state: span.trace_state,
            service: span.service_name,
            name: span.name,
            kind: span.kind,
            start_ns: span.start_time_unix_nano,
            end_ns: span.end_time_unix_nano,
            status_code: status.code,
            status_message: status.message,
            attributes: attributes(span.attributes),
            events: span
                .events
                .into_iter()
                .map(|event| SpanEventItem {
                    time_ns: event.time_unix_nano,
                    name: event.name,
                    attributes: attributes(event.attributes),
                })
                .collect(),
            links: span
                .links
                .into_iter()
                .map(|link| SpanLinkItem {
                    trace_id: link.trace_id,
                    span_id: link.span_id,
                    trace_state: link.trace_state,
                    attributes: attributes(link.attributes),
                })
                .collect(),
            resource: attributes(span.resource),
        }
    }
}

impl From<pb::LogRecord> for LogItem {
    fn from(record: pb::LogRecord) -> Self {
        LogItem {
            time_ns: record.time_unix_nano,
            observed_ns: record.observed_time_unix_nano,
            service: record.service_name,
            severity_number: record.severity_number,
            severity_text: record.severity_text,
            body: record.body,
            attributes: attributes(record.attributes),
            trace_id: record.trace_id,
            span_id: record.span_id,
            resource: attributes(record.resource),
        }
    }
}

impl From<pb::SecurityEvent> for SecurityEventItem {
    fn from(event: pb::SecurityEvent) -> Self {
        SecurityEventItem {
            time_ns: event.time_unix_nano,
            event_type: event.event_type,
            user_id: event.user_id,
            source_ip: event.source_ip,
            severity: event.severity,
            resource: event.resource,
            service: event.service_name,
            attributes: attributes(event.attributes),
        }
    }
}
