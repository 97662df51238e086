//! Conversions between the wire types of `pharos.config.v1` and the store's
//! rows, with the validation of every request field on the way in.

use pharos_proto::config::v1 as pb;
use pharos_runtime::error::FieldViolation;
use pharos_store::control::config::{ChangeRow, DeleteEntry, EntryRow, KIND_DELETE, PutEntry};

use crate::error::{ConfigError, Result};
use crate::value;

/// Default and largest page size of List and History.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

pub fn entry(row: &EntryRow) -> pb::ConfigEntry {
    pb::ConfigEntry {
        key: row.key.clone(),
        value: row.value.clone(),
        r#type: i32::try_from(row.value_type).unwrap_or(0),
        category: row.category.clone(),
        description: row.description.clone(),
        environment: row.environment.clone(),
        revision: row.revision,
        updated_at: Some(timestamp(row.updated_at)),
        updated_by: row.updated_by.clone(),
    }
}

fn kind(change: &ChangeRow) -> pb::ChangeKind {
    if change.kind == KIND_DELETE {
        pb::ChangeKind::Delete
    } else {
        pb::ChangeKind::Put
    }
}

pub fn watch_event(change: &ChangeRow) -> pb::WatchEvent {
    pb::WatchEvent {
        r#type: kind(change) as i32,
        entry: Some(entry(&change.entry())),
        previous_value: change.previous_value.clone(),
    }
}

/// A current value sent in a Watch snapshot.
pub fn snapshot_event(row: &EntryRow) -> pb::WatchEvent {
    pb::WatchEvent {
        r#type: pb::ChangeKind::Put as i32,
        entry: Some(entry(row)),
        previous_value: None,
    }
}

pub fn history_item(change: &ChangeRow) -> pb::HistoryItem {
    let kind = kind(change);
    pb::HistoryItem {
        revision: change.revision,
        kind: kind as i32,
        old_value: change.previous_value.clone(),
        new_value: (kind == pb::ChangeKind::Put).then(|| change.value.clone()),
        changed_at: Some(timestamp(change.changed_at)),
        actor: change.actor.clone(),
        r#type: i32::try_from(change.value_type).unwrap_or(0),
    }
}

/// Collects field violations so a request reports all its faults at once.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn check(&mut self, field: &str, result: std::result::Result<(), String>) {
        if let Err(reason) = result {
            self.0.push(FieldViolation::new(field, reason));
        }
    }

    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::InvalidArgument(self.0))
        }
    }
}

fn check_expected_revision(violations: &mut Violations, expected: Option<i64>) {
    if let Some(expected) = expected {
        violations.check(
            "expected_revision",
            if expected < 0 {
                Err("must be 0 (must not exist) or a revision".into())
            } else {
                Ok(())
            },
        );
    }
}

pub fn put(request: pb::SetRequest, actor: String) -> Result<PutEntry> {
    let mut violations = Violations::default();
    violations.check("key", value::check_key(&request.key));
    violations.check(
        "environment",
        value::check_optional_name(&request.environment),
    );
    violations.check("category", value::check_optional_name(&request.category));
    if request.description.len() > value::MAX_DESCRIPTION_BYTES {
        violations.check(
            "description",
            Err(format!(
                "{} bytes; at most {} allowed",
                request.description.len(),
                value::MAX_DESCRIPTION_BYTES
            )),
        );
    }
    let value_type = match pb::ValueType::try_from(request.r#type) {
        Ok(pb::ValueType::Unspecified) => None,
        Ok(known) => Some(known as i64),
        Err(_) => {
            violations.check(
                "type",
                Err(format!(
                    "unknown type {}; use STRING, INT, FLOAT, BOOL, JSON or DURATION",
                    request.r#type
                )),
            );
            None
        }
    };
    if let Some(value_type) = value_type {
        violations.check("value", value::check_value(value_type, &request.value));
    }
    check_expected_revision(&mut violations, request.expected_revision);
    violations.into_result()?;
    Ok(PutEntry {
        key: request.key,
        environment: request.environment,
        value: request.value,
        value_type,
        category: (!request.category.is_empty()).then_some(request.category),
        description: (!request.description.is_empty()).then_some(request.description),
        expected_revision: request.expected_revision,
        actor,
    })
}

pub fn delete(request: pb::DeleteRequest, actor: String) -> Result<DeleteEntry> {
    let mut violations = Violations::default();
    violations.check("key", value::check_key(&request.key));
    violations.check(
        "environment",
        value::check_optional_name(&request.environment),
    );
    check_expected_revision(&mut violations, request.expected_revision);
    violations.into_result()?;
    Ok(DeleteEntry {
        key: request.key,
        environment: request.environment,
        expected_revision: request.expected_revision,
        actor,
    })
}

/// A page size or limit: 0 means the default, above the maximum is refused.
pub fn page_size(field: &str, requested: i32) -> Result<usize> {
    match requested {
        0 => Ok(DEFAULT_PAGE),
        n if n < 0 => Err(ConfigError::invalid(field, "must not be negative")),
        n => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_PAGE {
                Err(ConfigError::invalid(field, format!("at most {MAX_PAGE}")))
            } else {
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_micros() {
        let ts = timestamp(1_700_000_000_123_456);
        assert_eq!(ts.seconds, 1_700_000_000);
        assert_eq!(ts.nanos, 123_456_000);
    }

    #[test]
    fn set_reports_every_bad_field() {
        let request = pb::SetRequest {
            key: String::new(),
            value: "abc".into(),
            r#type: pb::ValueType::Int as i32,
            environment: "bad env".into(),
            ..Default::default()
        };
        let Err(ConfigError::InvalidArgument(violations)) = put(request, "me".into()) else {
            panic!("expected invalid argument");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["key", "environment", "value"]);
    }

    #[test]
    fn unknown_type_is_refused() {
        let request = pb::SetRequest {
            key: "k".into(),
            r#type: 42,
            ..Default::default()
        };
        assert!(matches!(
            put(request, "me".into()),
            Err(ConfigError::InvalidArgument(_))
        ));
    }
}
