//! Reading YAML the way Alertmanager's `yaml.v2` `UnmarshalStrict` does, where serde's defaults
//! differ: `null` is a zero value (an empty string, a false flag), a key given twice in a map is
//! an error, YAML 1.1 booleans (`yes`, `off`) are booleans, and `<<` merge keys are applied.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};

use crate::error::{ConfigError, Result};

/// Parses a whole document into `T`. Documents with `<<` merge keys go through a YAML value
/// with the merges applied (their error messages then lack line numbers).
pub fn parse_document<T: DeserializeOwned>(text: &str) -> Result<T> {
    match serde_yaml_ng::from_str::<T>(text) {
        Ok(value) => Ok(value),
        Err(direct_error) => {
            let Ok(mut value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
                return Err(yaml_error(&direct_error));
            };
            if !has_merge_key(&value) {
                return Err(yaml_error(&direct_error));
            }
            value.apply_merge().map_err(|e| yaml_error(&e))?;
            serde_yaml_ng::from_value::<T>(value).map_err(|e| yaml_error(&e))
        }
    }
}

fn yaml_error(error: &serde_yaml_ng::Error) -> ConfigError {
    ConfigError::Yaml {
        message: error.to_string(),
    }
}

fn has_merge_key(value: &serde_yaml_ng::Value) -> bool {
    match value {
        serde_yaml_ng::Value::Mapping(mapping) => mapping.iter().any(|(key, value)| {
            key.as_str() == Some("<<") || has_merge_key(key) || has_merge_key(value)
        }),
        serde_yaml_ng::Value::Sequence(items) => items.iter().any(has_merge_key),
        serde_yaml_ng::Value::Tagged(tagged) => has_merge_key(&tagged.value),
        _ => false,
    }
}

/// A field whose default is not the zero value: told apart are a field that is absent (the
/// default applies) and one written as `null` (`yaml.v2` then sets the zero value: `false`,
/// `""`, `0s`). Use with `#[serde(default)]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// The key is not in the mapping.
    #[default]
    Absent,
    /// The key is there with a `null` (or empty) value.
    Null,
    /// The key has a value.
    Value(T),
}

impl<T> Field<T> {
    /// `absent` when absent, `null` when null, the value mapped by `read` otherwise.
    pub fn resolve<R>(self, absent: R, null: R, read: impl FnOnce(T) -> R) -> R {
        match self {
            Self::Absent => absent,
            Self::Null => null,
            Self::Value(value) => read(value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Self::Null,
            Some(value) => Self::Value(value),
        })
    }
}

/// A string where `null` reads as empty, and numbers or booleans as their text (`1`, `true`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(
            Option::<String>::deserialize(deserializer)?.unwrap_or_default(),
        ))
    }
}

/// Text of an optional field: empty when absent or `null`.
pub fn text(field: &Option<Text>) -> String {
    field.as_ref().map(|t| t.0.clone()).unwrap_or_default()
}

/// A boolean that also reads YAML 1.1's words (`yes`, `no`, `on`, `off`, `y`, `n`), as
/// `yaml.v2` does; `null` reads as false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = Flag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
                Ok(Flag(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Flag, E> {
                match value {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True"
                    | "TRUE" => Ok(Flag(true)),
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False"
                    | "FALSE" => Ok(Flag(false)),
                    _ => Err(E::invalid_type(de::Unexpected::Str(value), &self)),
                }
            }

            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }

            fn visit_none<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// A mapping that refuses a key given twice (`key "x" already set in map`), keeping keys in
/// sorted order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrictMap<V>(pub BTreeMap<String, V>);

impl<V> Default for StrictMap<V> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for StrictMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = StrictMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<Text>()? {
                    let value = access.next_value::<V>()?;
                    if map.insert(key.0.clone(), value).is_some() {
                        return Err(de::Error::custom(format!(
                            "key {:?} already set in map",
                            key.0
                        )));
                    }
                }
                Ok(StrictMap(map))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrictMap::default())
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Option<Text>,
        flag: Option<Flag>,
        map: Option<StrictMap<Text>>,
    }

    fn sample(text: &str) -> Result<Sample> {
        parse_document(text)
    }

    #[test]
    fn null_numbers_and_booleans_read_as_text() {
        let parsed = sample("name: 010\nmap: {a: null, b: 1, c: true}").ok();
        let parsed = parsed.as_ref();
        assert_eq!(
            parsed.and_then(|s| s.name.clone()),
            Some(Text("010".into()))
        );
        let map = parsed.and_then(|s| s.map.clone()).unwrap_or_default().0;
        assert_eq!(map.get("a"), Some(&Text(String::new())));
        assert_eq!(map.get("b"), Some(&Text("1".into())));
        assert_eq!(map.get("c"), Some(&Text("true".into())));
    }

    #[test]
    fn absent_and_null_fields_differ() {
        #[derive(Debug, Deserialize)]
        struct WithField {
            #[serde(default)]
            flag: Field<Flag>,
        }
        let read = |text: &str| {
            parse_document::<WithField>(text)
                .map(|w| w.flag.resolve(true, false, |f| f.0))
                .ok()
        };
        assert_eq!(read("{}"), Some(true));
        assert_eq!(read("flag:"), Some(false));
        assert_eq!(read("flag: null"), Some(false));
        assert_eq!(read("flag: yes"), Some(true));
    }

    #[test]
    fn yaml_1_1_booleans() {
        assert_eq!(
            sample("flag: yes").ok().and_then(|s| s.flag),
            Some(Flag(true))
        );
        assert_eq!(
            sample("flag: off").ok().and_then(|s| s.flag),
            Some(Flag(false))
        );
        assert!(sample("flag: maybe").is_err());
    }

    #[test]
    fn duplicate_map_keys_and_unknown_fields_are_refused() {
        let err = sample("map: {a: 1, a: 2}").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("already set in map")));
        assert!(sample("bogus: 1").is_err());
        assert!(sample("name: a\nname: b").is_err());
    }

    #[test]
    fn merge_keys_are_applied() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Outer {
            #[allow(dead_code)]
            first: Option<Sample>,
            second: Option<Sample>,
        }
        let parsed: Result<Outer> =
            parse_document("first: &base {name: x}\nsecond:\n  <<: *base\n  flag: true\n");
        let second = parsed.ok().and_then(|o| o.second);
        assert_eq!(
            second.as_ref().and_then(|s| s.name.clone()),
            Some(Text("x".into()))
        );
        assert_eq!(second.and_then(|s| s.flag), Some(Flag(true)));
    }
}
