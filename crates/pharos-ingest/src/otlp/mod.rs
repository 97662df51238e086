//! OpenTelemetry OTLP/gRPC on the shared port, so any OpenTelemetry SDK or Collector exports to
//! Pharos unchanged: `MetricsService`, `TraceService` and `LogsService` `Export`. Each converts
//! OTLP data into the items of our own API and goes through the same validation and write path.
//! Refused items are reported in `partial_success` as the OTLP specification says; overload
//! answers RESOURCE_EXHAUSTED with RetryInfo or UNAVAILABLE, which OTLP exporters retry. gzip is
//! accepted.
//!
//! Attribute values keep their types in the stored JSON: strings, booleans, integers, doubles
//! (NaN and infinities as the strings "NaN", "Infinity", "-Infinity"), arrays, key-value lists as
//! objects, and bytes as lowercase hex.

mod delta;
mod logs;
mod metrics;
mod naming;
mod traces;

pub use delta::{DeltaLimits, Deltas};
pub use logs::{OtlpLogs, logs_server, to_log_items};
pub use metrics::{Converted, OtlpMetrics, STALE_NAN, metrics_server, to_points};
pub use traces::{OtlpTraces, to_span_items, traces_server};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::Value;

use crate::records::{Attributes, hex};
use crate::validate::Rejection;

/// The first few rejections, for the exporter's log.
fn summarize(rejections: &[Rejection]) -> String {
    let mut shown: Vec<String> = rejections
        .iter()
        .take(3)
        .map(|rejection| {
            format!(
                "{} ({}): {}",
                rejection.reason, rejection.field, rejection.message
            )
        })
        .collect();
    if rejections.len() > shown.len() {
        shown.push(format!("and {} more", rejections.len() - shown.len()));
    }
    shown.join("; ")
}

/// An attribute value as label text (metrics), as Go's `pcommon.Value.AsString` prints it for
/// Prometheus' OTLP translator: strings as sent, integers and booleans plainly, doubles as
/// JavaScript prints numbers (`1`, `0.5`, `1e+21`, `1e-7`; NaN and infinities as `NaN`,
/// `+Inf`, `-Inf`), bytes as base64, a missing value as empty (no label), structured values as
/// their JSON text.
fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::DoubleValue(number)) => number_text(*number),
        Some(any_value::Value::BytesValue(bytes)) => base64(bytes),
        None => String::new(),
        Some(_) => match json(value) {
            Value::String(text) => text,
            other => other.to_string(),
        },
    }
}

/// A double as ECMAScript's number-to-string (what Go's JSON encoder and `AsString` follow).
fn number_text(number: f64) -> String {
    if number.is_nan() {
        return "NaN".to_owned();
    }
    if number.is_infinite() {
        return if number > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let magnitude = number.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let text = format!("{number:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        number.to_string()
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |word, (position, byte)| {
                word | u32::from(*byte) << (16 - 8 * position)
            });
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (word >> (18 - 6 * position)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An attribute value with its type kept.
fn json(value: Option<&AnyValue>) -> Value {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => Value::String(text.clone()),
        Some(any_value::Value::BoolValue(flag)) => Value::Bool(*flag),
        Some(any_value::Value::IntValue(number)) => Value::from(*number),
        Some(any_value::Value::DoubleValue(number)) => {
            match serde_json::Number::from_f64(*number) {
                Some(number) => Value::Number(number),
                None if number.is_nan() => Value::from("NaN"),
                None if *number > 0.0 => Value::from("Infinity"),
                None => Value::from("-Infinity"),
            }
        }
        Some(any_value::Value::BytesValue(bytes)) => Value::String(hex(bytes)),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(|value| json(Some(value))).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(
            list.values
                .iter()
                .map(|kv| (kv.key.clone(), json(kv.value.as_ref())))
                .collect(),
        ),
        // An index into a profile's string table: meaningless outside profiles.
        Some(any_value::Value::StringValueStrindex(_)) | None => Value::Null,
    }
}

fn attributes(attributes: &[KeyValue]) -> Attributes {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), json(kv.value.as_ref())))
        .collect()
}

/// A resource's attributes and its `service.name`.
fn resource(resource: Option<&Resource>) -> (Attributes, String) {
    let attributes = resource
        .map(|resource| attributes(&resource.attributes))
        .unwrap_or_default();
    let service = attributes
        .iter()
        .find(|(key, _)| key == "service.name")
        .map(|(_, value)| match value {
            Value::String(name) => name.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    (attributes, service)
}

/// An id as sent, or empty when it is all zeros (OpenTelemetry's "no id").
fn id(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.iter().all(|&byte| byte == 0) {
        Vec::new()
    } else {
        bytes
    }
}

/// A time in nanoseconds as stored.
fn nanos(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

/// The instrumentation scope as attributes, the way OpenTelemetry's exporters to other formats
/// keep it.
fn scope_attributes(
    scope: Option<&opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
) -> Attributes {
    let mut out = Attributes::new();
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            out.push((
                "otel.scope.name".to_owned(),
                Value::from(scope.name.clone()),
            ));
        }
        if !scope.version.is_empty() {
            out.push((
                "otel.scope.version".to_owned(),
                Value::from(scope.version.clone()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn any(value: any_value::Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    #[test]
    fn attribute_values_keep_their_types() {
        assert_eq!(
            json(Some(&any(any_value::Value::IntValue(7)))),
            Value::from(7)
        );
        assert_eq!(
            json(Some(&any(any_value::Value::DoubleValue(f64::NAN)))),
            Value::from("NaN")
        );
        assert_eq!(
            json(Some(&any(any_value::Value::BytesValue(vec![1, 255])))),
            Value::from("01ff")
        );
        let array = any(any_value::Value::ArrayValue(ArrayValue {
            values: vec![any(any_value::Value::BoolValue(true))],
        }));
        assert_eq!(json(Some(&array)), serde_json::json!([true]));
        let list = any(any_value::Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "a".into(),
                value: Some(any(any_value::Value::StringValue("b".into()))),
                ..Default::default()
            }],
        }));
        assert_eq!(json(Some(&list)), serde_json::json!({"a": "b"}));
        assert_eq!(text(Some(&any(any_value::Value::DoubleValue(1.5)))), "1.5");
        assert_eq!(text(Some(&any(any_value::Value::DoubleValue(2.0)))), "2");
        assert_eq!(number_text(1e21), "1e+21");
        assert_eq!(number_text(1.5e300), "1.5e+300");
        assert_eq!(number_text(1e20), "100000000000000000000");
        assert_eq!(number_text(0.000001), "0.000001");
        assert_eq!(number_text(1e-7), "1e-7");
        assert_eq!(number_text(-2.5e-10), "-2.5e-10");
        assert_eq!(number_text(0.0), "0");
        assert_eq!(number_text(f64::NEG_INFINITY), "-Inf");
        assert_eq!(text(Some(&any(any_value::Value::IntValue(-3)))), "-3");
        assert_eq!(text(Some(&any(any_value::Value::BoolValue(true)))), "true");
        assert_eq!(
            text(Some(&any(any_value::Value::BytesValue(vec![1, 255])))),
            "Af8="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(text(None), "");
        assert_eq!(json(None), Value::Null);
        assert_eq!(id(vec![0; 16]), Vec::<u8>::new());
    }
}
