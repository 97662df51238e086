//! The rules every stored value and name follows: value types and how each
//! is parsed, and the limits on keys, environments, categories, descriptions
//! and values (documented in the README's limits table).

use pharos_proto::config::v1::ValueType;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest environment or category name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Checks a key: 1 to 256 bytes of `[A-Za-z0-9._/-]`.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".into());
    }
    check_name(key, MAX_KEY_BYTES)
}

/// Checks an environment or category name: empty, or up to 64 bytes of
/// `[A-Za-z0-9._/-]`.
pub fn check_optional_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Ok(());
    }
    check_name(name, MAX_NAME_BYTES)
}

/// Checks a key prefix: empty, or a key's beginning.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_name(prefix, MAX_KEY_BYTES)
}

fn check_name(name: &str, max: usize) -> Result<(), String> {
    if name.len() > max {
        return Err(format!("{} bytes; at most {max} allowed", name.len()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(format!(
            "character {bad:?} not allowed; use only A-Z a-z 0-9 . _ / -"
        ));
    }
    Ok(())
}

/// Checks `value` against `value_type` (the proto enum number).
pub fn check_value(value_type: i64, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "{} bytes; at most {MAX_VALUE_BYTES} allowed",
            value.len()
        ));
    }
    let value_type = i32::try_from(value_type)
        .ok()
        .and_then(|number| ValueType::try_from(number).ok())
        .unwrap_or(ValueType::Unspecified);
    match value_type {
        ValueType::String => Ok(()),
        ValueType::Int => value
            .trim()
            .parse::<i64>()
            .map(drop)
            .map_err(|_| format!("{value:?} is not a 64-bit integer")),
        ValueType::Float => match value.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(()),
            _ => Err(format!("{value:?} is not a finite number")),
        },
        ValueType::Bool => match value.trim() {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?} is not a boolean; use true or false")),
        },
        ValueType::Json => serde_json::from_str::<serde_json::Value>(value)
            .map(drop)
            .map_err(|error| format!("not valid JSON: {error}")),
        ValueType::Duration => humantime::parse_duration(value.trim())
            .map(drop)
            .map_err(|error| format!("{value:?} is not a duration like 30s, 5m or 1h30m: {error}")),
        ValueType::Unspecified => Err("unknown value type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("app.db/pool-size_max").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(256)).is_ok());
        assert!(check_key(&"k".repeat(257)).is_err());
        assert!(check_key("ключ").is_err());
    }

    #[test]
    fn values() {
        let int = ValueType::Int as i64;
        assert!(check_value(int, "42").is_ok());
        assert!(check_value(int, "4.2").is_err());
        assert!(check_value(ValueType::Float as i64, "4.2").is_ok());
        assert!(check_value(ValueType::Float as i64, "NaN").is_err());
        assert!(check_value(ValueType::Bool as i64, "true").is_ok());
        assert!(check_value(ValueType::Bool as i64, "yes").is_err());
        assert!(check_value(ValueType::Json as i64, r#"{"a":[1]}"#).is_ok());
        assert!(check_value(ValueType::Json as i64, "{").is_err());
        assert!(check_value(ValueType::Duration as i64, "1h30m").is_ok());
        assert!(check_value(ValueType::Duration as i64, "soon").is_err());
        assert!(check_value(ValueType::String as i64, &"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
        assert!(check_value(99, "x").is_err());
    }
}
