//! Spans, log records and security events between the wire and the store: the items both our
//! own API and OTLP convert into ([`SpanItem`], [`LogItem`], [`SecurityEventItem`], with typed
//! attribute values), and their validation against the documented limits into the rows the
//! store writes. A bad item becomes a [`Rejection`] naming the field and a stable reason.

use std::net::IpAddr;

use pharos_store::signals::logs::LogRow;
use pharos_store::signals::security_events::SecurityEventRow;
use pharos_store::signals::spans::SpanRow;
use serde_json::{Map, Value};

use crate::validate::{Rejection, Validator};

/// The service name when none was given, as OpenTelemetry names it.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
const MAX_SPAN_NAME_BYTES: usize = 1024;
const MAX_TEXT_BYTES: usize = 1024;
const MAX_USER_ID_BYTES: usize = 256;
const MAX_EVENT_TYPE_BYTES: usize = 100;

/// Attributes in the order received; a repeated key keeps its last value.
pub type Attributes = Vec<(String, Value)>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanItem {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Vec<u8>,
    pub trace_state: String,
    pub service: String,
    pub name: String,
    pub kind: i32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status_code: i32,
    pub status_message: String,
    pub attributes: Attributes,
    pub events: Vec<SpanEventItem>,
    pub links: Vec<SpanLinkItem>,
    pub resource: Attributes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEventItem {
    pub time_ns: i64,
    pub name: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanLinkItem {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub trace_state: String,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogItem {
    /// 0: the observed time.
    pub time_ns: i64,
    /// 0: the time the server received it.
    pub observed_ns: i64,
    pub service: String,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: String,
    pub attributes: Attributes,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub resource: Attributes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityEventItem {
    /// 0: the time the server received it.
    pub time_ns: i64,
    pub event_type: String,
    pub user_id: String,
    pub source_ip: String,
    pub severity: i32,
    pub resource: String,
    pub service: String,
    pub attributes: Attributes,
}

/// Builds rejections for one item.
struct Reject(u32);

impl Reject {
    fn at(
        &self,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Rejection {
        Rejection::new(self.0, field, reason, message)
    }
}

impl Validator {
    /// Validates span `index` received at `now_us`.
    pub fn span(&self, index: u32, item: SpanItem, now_us: i64) -> Result<SpanRow, Rejection> {
        let limits = self.limits();
        let reject = Reject(index);
        check_id(&reject, "trace_id", &item.trace_id, 16, "TRACE_ID_INVALID")?;
        check_id(&reject, "span_id", &item.span_id, 8, "SPAN_ID_INVALID")?;
        if !item.parent_span_id.is_empty() {
            check_id(
                &reject,
                "parent_span_id",
                &item.parent_span_id,
                8,
                "PARENT_SPAN_ID_INVALID",
            )?;
        }
        if item.name.is_empty() || item.name.len() > MAX_SPAN_NAME_BYTES {
            return Err(reject.at(
                "name",
                "SPAN_NAME_INVALID",
                format!(
                    "span name must be 1..={MAX_SPAN_NAME_BYTES} bytes, not {}",
                    item.name.len()
                ),
            ));
        }
        if item.start_ns <= 0 {
            return Err(reject.at(
                "start_time_unix_nano",
                "START_TIME_MISSING",
                "a span needs its start time",
            ));
        }
        if item.end_ns < item.start_ns {
            return Err(reject.at(
                "end_time_unix_nano",
                "SPAN_END_BEFORE_START",
                "the end time is before the start time",
            ));
        }
        self.check_time(&reject, "start_time_unix_nano", item.start_ns, now_us)?;
        if !(0..=5).contains(&item.kind) {
            return Err(reject.at(
                "kind",
                "SPAN_KIND_INVALID",
                format!("span kind {} is not 0..=5", item.kind),
            ));
        }
        if !(0..=2).contains(&item.status_code) {
            return Err(reject.at(
                "status.code",
                "STATUS_CODE_INVALID",
                format!(
                    "status code {} is not 0 (unset), 1 (ok) or 2 (error)",
                    item.status_code
                ),
            ));
        }
        if item.events.len() > limits.max_span_events {
            return Err(reject.at(
                "events",
                "TOO_MANY_EVENTS",
                format!(
                    "{} events; at most {} are allowed",
                    item.events.len(),
                    limits.max_span_events
                ),
            ));
        }
        if item.links.len() > limits.max_span_links {
            return Err(reject.at(
                "links",
                "TOO_MANY_LINKS",
                format!(
                    "{} links; at most {} are allowed",
                    item.links.len(),
                    limits.max_span_links
                ),
            ));
        }
        for (field, text) in [
            ("name", &item.name),
            ("trace_state", &item.trace_state),
            ("service_name", &item.service),
            ("status.message", &item.status_message),
        ] {
            check_text(&reject, field, text, usize::MAX)?;
        }
        let attributes = self.attributes(&reject, "attributes", item.attributes)?;
        let resource = self.attributes(&reject, "resource", item.resource)?;
        let mut events = Vec::with_capacity(item.events.len());
        for (position, event) in item.events.into_iter().enumerate() {
            check_text(
                &reject,
                &format!("events[{position}].name"),
                &event.name,
                MAX_SPAN_NAME_BYTES,
            )?;
            let attributes = self.attributes(
                &reject,
                &format!("events[{position}].attributes"),
                event.attributes,
            )?;
            let mut object = Map::new();
            object.insert("time_ns".into(), Value::from(event.time_ns));
            object.insert("name".into(), Value::from(event.name));
            object.insert("attributes".into(), Value::Object(attributes));
            events.push(Value::Object(object));
        }
        let mut links = Vec::with_capacity(item.links.len());
        for (position, link) in item.links.into_iter().enumerate() {
            check_id(
                &reject,
                &format!("links[{position}].trace_id"),
                &link.trace_id,
                16,
                "TRACE_ID_INVALID",
            )?;
            check_id(
                &reject,
                &format!("links[{position}].span_id"),
                &link.span_id,
                8,
                "SPAN_ID_INVALID",
            )?;
            check_text(
                &reject,
                &format!("links[{position}].trace_state"),
                &link.trace_state,
                usize::MAX,
            )?;
            let attributes = self.attributes(
                &reject,
                &format!("links[{position}].attributes"),
                link.attributes,
            )?;
            let mut object = Map::new();
            object.insert("trace_id".into(), Value::from(hex(&link.trace_id)));
            object.insert("span_id".into(), Value::from(hex(&link.span_id)));
            object.insert("trace_state".into(), Value::from(link.trace_state));
            object.insert("attributes".into(), Value::Object(attributes));
            links.push(Value::Object(object));
        }
        Ok(SpanRow {
            trace_id: item.trace_id,
            span_id: item.span_id,
            parent_span_id: item.parent_span_id,
            trace_state: item.trace_state,
            service: service_or_unknown(item.service),
            name: item.name,
            kind: item.kind as i16,
            start_ns: item.start_ns,
            end_ns: item.end_ns,
            status_code: item.status_code as i16,
            status_message: item.status_message,
            attributes: Value::Object(attributes).to_string(),
            events: Value::Array(events).to_string(),
            links: Value::Array(links).to_string(),
            resource: Value::Object(resource).to_string(),
        })
    }

    /// Validates log record `index` received at `now_us`.
    pub fn log_record(&self, index: u32, item: LogItem, now_us: i64) -> Result<LogRow, Rejection> {
        let limits = self.limits();
        let reject = Reject(index);
        let observed_ns = if item.observed_ns == 0 {
            now_us.saturating_mul(1_000)
        } else {
            item.observed_ns
        };
        let time_ns = if item.time_ns == 0 {
            observed_ns
        } else {
            item.time_ns
        };
        self.check_time(&reject, "time_unix_nano", time_ns, now_us)?;
        if !(0..=24).contains(&item.severity_number) {
            return Err(reject.at(
                "severity_number",
                "SEVERITY_NUMBER_INVALID",
                format!("severity number {} is not 0..=24", item.severity_number),
            ));
        }
        if !item.trace_id.is_empty() {
            check_id(&reject, "trace_id", &item.trace_id, 16, "TRACE_ID_INVALID")?;
        }
        if !item.span_id.is_empty() {
            check_id(&reject, "span_id", &item.span_id, 8, "SPAN_ID_INVALID")?;
        }
        if item.body.len() > limits.max_body_bytes {
            return Err(reject.at(
                "body",
                "BODY_TOO_LONG",
                format!(
                    "{} bytes; at most {} are allowed",
                    item.body.len(),
                    limits.max_body_bytes
                ),
            ));
        }
        check_text(&reject, "body", &item.body, usize::MAX)?;
        check_text(
            &reject,
            "severity_text",
            &item.severity_text,
            MAX_TEXT_BYTES,
        )?;
        check_text(&reject, "service_name", &item.service, MAX_TEXT_BYTES)?;
        let attributes = self.attributes(&reject, "attributes", item.attributes)?;
        let resource = self.attributes(&reject, "resource", item.resource)?;
        Ok(LogRow {
            time_ns,
            observed_ns,
            service: service_or_unknown(item.service),
            severity_number: item.severity_number as i16,
            severity_text: item.severity_text,
            body: item.body,
            attributes: Value::Object(attributes).to_string(),
            resource: Value::Object(resource).to_string(),
            trace_id: item.trace_id,
            span_id: item.span_id,
        })
    }

    /// Validates security event `index` received at `now_us`.
    pub fn security_event(
        &self,
        index: u32,
        item: SecurityEventItem,
        now_us: i64,
    ) -> Result<SecurityEventRow, Rejection> {
        let reject = Reject(index);
        let time_ns = if item.time_ns == 0 {
            now_us.saturating_mul(1_000)
        } else {
            item.time_ns
        };
        self.check_time(&reject, "time_unix_nano", time_ns, now_us)?;
        let type_valid = !item.event_type.is_empty()
            && item.event_type.len() <= MAX_EVENT_TYPE_BYTES
            && item
                .event_type
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !type_valid {
            return Err(reject.at(
                "event_type",
                "EVENT_TYPE_INVALID",
                format!(
                    "event type {:?} must be 1..={MAX_EVENT_TYPE_BYTES} bytes of [a-z0-9_.], like \"auth_failure\"",
                    item.event_type
                ),
            ));
        }
        if !(1..=5).contains(&item.severity) {
            return Err(reject.at(
                "severity",
                "SEVERITY_INVALID",
                "severity must be one of INFO, LOW, MEDIUM, HIGH, CRITICAL",
            ));
        }
        let source_ip: Option<IpAddr> = if item.source_ip.is_empty() {
            None
        } else {
            match item.source_ip.parse() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    return Err(reject.at(
                        "source_ip",
                        "SOURCE_IP_INVALID",
                        format!("{:?} is not an IPv4 or IPv6 address", item.source_ip),
                    ));
                }
            }
        };
        check_text(&reject, "user_id", &item.user_id, MAX_USER_ID_BYTES)?;
        check_text(&reject, "resource", &item.resource, MAX_TEXT_BYTES)?;
        check_text(&reject, "service_name", &item.service, MAX_TEXT_BYTES)?;
        let attributes = self.attributes(&reject, "attributes", item.attributes)?;
        Ok(SecurityEventRow {
            time_ns,
            event_type: item.event_type,
            severity: item.severity as i16,
            user_id: item.user_id,
            source_ip,
            resource: item.resource,
            service: service_or_unknown(item.service),
            attributes: Value::Object(attributes).to_string(),
        })
    }

    /// Time (nanoseconds) inside the accepted window.
    fn check_time(
        &self,
        reject: &Reject,
        field: &str,
        time_ns: i64,
        now_us: i64,
    ) -> Result<(), Rejection> {
        self.check_window(reject.0, field, time_ns.div_euclid(1_000), now_us)
    }

    /// Attributes within the limits, as a JSON object.
    fn attributes(
        &self,
        reject: &Reject,
        field: &str,
        attributes: Attributes,
    ) -> Result<Map<String, Value>, Rejection> {
        let limits = self.limits();
        if attributes.len() > limits.max_attributes {
            return Err(reject.at(
                field,
                "TOO_MANY_ATTRIBUTES",
                format!(
                    "{} attributes; at most {} are allowed",
                    attributes.len(),
                    limits.max_attributes
                ),
            ));
        }
        let mut object = Map::new();
        for (key, value) in attributes {
            if key.is_empty() || key.len() > limits.max_attribute_key_bytes || key.contains('\0') {
                return Err(reject.at(
                    format!("{field}[{key:?}]"),
                    "ATTRIBUTE_KEY_INVALID",
                    format!(
                        "attribute keys must be 1..={} bytes without NUL characters",
                        limits.max_attribute_key_bytes
                    ),
                ));
            }
            let size = match &value {
                Value::String(text) => {
                    check_text(reject, &format!("{field}[{key:?}]"), text, usize::MAX)?;
                    text.len()
                }
                other => {
                    let text = other.to_string();
                    if text.contains("\\u0000") {
                        return Err(reject.at(
                            format!("{field}[{key:?}]"),
                            "TEXT_HAS_NUL",
                            "text must not hold NUL characters",
                        ));
                    }
                    text.len()
                }
            };
            if size > limits.max_attribute_value_bytes {
                return Err(reject.at(
                    format!("{field}[{key:?}]"),
                    "ATTRIBUTE_VALUE_TOO_LONG",
                    format!(
                        "{size} bytes; at most {} are allowed",
                        limits.max_attribute_value_bytes
                    ),
                ));
            }
            object.insert(key, value);
        }
        Ok(object)
    }
}

/// An id of `length` bytes, not all zero.
fn check_id(
    reject: &Reject,
    field: &str,
    id: &[u8],
    length: usize,
    reason: &'static str,
) -> Result<(), Rejection> {
    if id.len() != length || id.iter().all(|&byte| byte == 0) {
        return Err(reject.at(
            field,
            reason,
            format!(
                "must be {length} bytes, not all zero (got {} bytes)",
                id.len()
            ),
        ));
    }
    Ok(())
}

/// Text the database can store (no NUL) within `max_bytes`.
fn check_text(reject: &Reject, field: &str, text: &str, max_bytes: usize) -> Result<(), Rejection> {
    if text.len() > max_bytes {
        return Err(reject.at(
            field,
            "FIELD_TOO_LONG",
            format!("{} bytes; at most {max_bytes} are allowed", text.len()),
        ));
    }
    if text.contains('\0') {
        return Err(reject.at(field, "TEXT_HAS_NUL", "text must not hold NUL characters"));
    }
    Ok(())
}

fn service_or_unknown(service: String) -> String {
    if service.is_empty() {
        UNKNOWN_SERVICE.to_owned()
    } else {
        service
    }
}

/// Lowercase hex, as trace and span ids are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::LimitSettings;

    const NOW_US: i64 = 1_800_000_000_000_000;

    fn span() -> SpanItem {
        SpanItem {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /".into(),
            start_ns: NOW_US * 1_000 - 5_000,
            end_ns: NOW_US * 1_000,
            attributes: vec![("http.status_code".into(), Value::from(200))],
            ..SpanItem::default()
        }
    }

    fn span_reason(change: impl FnOnce(&mut SpanItem)) -> &'static str {
        let validator = Validator::new(LimitSettings {
            max_attributes: 2,
            ..LimitSettings::default()
        });
        let mut item = span();
        change(&mut item);
        validator
            .span(0, item, NOW_US)
            .err()
            .map_or("OK", |rejection| rejection.reason)
    }

    #[test]
    fn span_rules_have_their_reasons() {
        assert_eq!(span_reason(|_| {}), "OK");
        assert_eq!(
            span_reason(|s| s.trace_id = vec![0; 16]),
            "TRACE_ID_INVALID"
        );
        assert_eq!(span_reason(|s| s.trace_id = vec![1; 8]), "TRACE_ID_INVALID");
        assert_eq!(span_reason(|s| s.span_id = vec![]), "SPAN_ID_INVALID");
        assert_eq!(
            span_reason(|s| s.parent_span_id = vec![3; 4]),
            "PARENT_SPAN_ID_INVALID"
        );
        assert_eq!(span_reason(|s| s.name.clear()), "SPAN_NAME_INVALID");
        assert_eq!(
            span_reason(|s| s.end_ns = s.start_ns - 1),
            "SPAN_END_BEFORE_START"
        );
        assert_eq!(span_reason(|s| s.start_ns = 0), "START_TIME_MISSING");
        assert_eq!(
            span_reason(|s| {
                s.start_ns = 1_000;
                s.end_ns = 2_000
            }),
            "TIME_TOO_OLD"
        );
        assert_eq!(span_reason(|s| s.kind = 9), "SPAN_KIND_INVALID");
        assert_eq!(span_reason(|s| s.status_code = 3), "STATUS_CODE_INVALID");
        assert_eq!(
            span_reason(|s| s.attributes = (0..3).map(|i| (format!("k{i}"), Value::Null)).collect()),
            "TOO_MANY_ATTRIBUTES"
        );
        assert_eq!(
            span_reason(|s| s.attributes = vec![(String::new(), Value::Null)]),
            "ATTRIBUTE_KEY_INVALID"
        );
        assert_eq!(
            span_reason(|s| s.attributes = vec![("k".into(), Value::from("x".repeat(17_000)))]),
            "ATTRIBUTE_VALUE_TOO_LONG"
        );
        assert_eq!(
            span_reason(|s| s.status_message = "a\0b".into()),
            "TEXT_HAS_NUL"
        );
        assert_eq!(
            span_reason(|s| s.links = vec![SpanLinkItem {
                trace_id: vec![1; 16],
                span_id: vec![0; 8],
                ..Default::default()
            }]),
            "SPAN_ID_INVALID"
        );
    }

    #[test]
    fn spans_become_rows_with_json_columns() {
        let validator = Validator::new(LimitSettings::default());
        let mut item = span();
        item.events = vec![SpanEventItem {
            time_ns: 7,
            name: "retry".into(),
            attributes: vec![],
        }];
        item.links = vec![SpanLinkItem {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..Default::default()
        }];
        let row = validator.span(0, item, NOW_US).expect("valid");
        assert_eq!(row.service, UNKNOWN_SERVICE);
        assert_eq!(row.attributes, r#"{"http.status_code":200}"#);
        assert_eq!(
            row.events,
            r#"[{"attributes":{},"name":"retry","time_ns":7}]"#
        );
        let links: Value = serde_json::from_str(&row.links).expect("json");
        assert_eq!(links[0]["span_id"], "cdcdcdcdcdcdcdcd");
    }

    #[test]
    fn log_and_security_event_rules_have_their_reasons() {
        let validator = Validator::new(LimitSettings {
            max_body_bytes: 10,
            ..LimitSettings::default()
        });
        let log = |change: fn(&mut LogItem)| {
            let mut item = LogItem {
                body: "hello".into(),
                ..LogItem::default()
            };
            change(&mut item);
            validator
                .log_record(0, item, NOW_US)
                .err()
                .map_or("OK", |rejection| rejection.reason)
        };
        assert_eq!(log(|_| {}), "OK");
        assert_eq!(log(|l| l.body = "x".repeat(11)), "BODY_TOO_LONG");
        assert_eq!(log(|l| l.severity_number = 25), "SEVERITY_NUMBER_INVALID");
        assert_eq!(log(|l| l.trace_id = vec![1; 3]), "TRACE_ID_INVALID");
        assert_eq!(log(|l| l.time_ns = 1), "TIME_TOO_OLD");
        let row = validator
            .log_record(0, LogItem::default(), NOW_US)
            .expect("valid");
        assert_eq!(
            (row.time_ns, row.observed_ns),
            (NOW_US * 1_000, NOW_US * 1_000)
        );

        let event = |change: fn(&mut SecurityEventItem)| {
            let mut item = SecurityEventItem {
                event_type: "auth_failure".into(),
                severity: 3,
                source_ip: "2001:db8::1".into(),
                ..SecurityEventItem::default()
            };
            change(&mut item);
            validator
                .security_event(0, item, NOW_US)
                .err()
                .map_or("OK", |rejection| rejection.reason)
        };
        assert_eq!(event(|_| {}), "OK");
        assert_eq!(
            event(|e| e.event_type = "Auth Failure".into()),
            "EVENT_TYPE_INVALID"
        );
        assert_eq!(event(|e| e.severity = 0), "SEVERITY_INVALID");
        assert_eq!(
            event(|e| e.source_ip = "10.0.0.256".into()),
            "SOURCE_IP_INVALID"
        );
        assert_eq!(event(|e| e.user_id = "u".repeat(300)), "FIELD_TOO_LONG");
    }
}
