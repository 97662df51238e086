//! The models of Alertmanager 0.25's API v2 (`api/v2/openapi.yaml`), with its JSON names and
//! shapes: what fields are always written (required ones, even when empty) and what is left out
//! (`generatorURL` when empty, a cluster without a name), times as go-openapi's
//! `strfmt.DateTime` writes them ([`format_time`]: milliseconds, `Z`), any RFC 3339 time read.
//! Also the conversions to and from the domain ([`Silence`], [`Alert`], routing matchers) and
//! the helpers Alertmanager's handlers use on query parameters ([`parse_filter`]) and results
//! ([`alert_matches_filter`], [`silence_matches_filter`], [`sort_silences`]).
//!
//! Fields are in the order Alertmanager writes them: go-swagger sorts each part of an `allOf`
//! by name, and writes the parts one after the other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pharos_routing::labels::{LabelSet, go_quote};
use pharos_routing::matcher::{MatchType, parse_matcher};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alerts::Alert;
use crate::dispatch::AlertView;
use crate::silences::{self, Silence, SilenceError, SilenceState, match_type_from_flags};

/// A time as `strfmt.DateTime` writes it: RFC 3339 in UTC with exactly three fraction digits
/// (truncated, as Go's formatting does), `2026-12-06T10:00:00.000Z`.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads any RFC 3339 time (any offset, any number of fraction digits).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| format!("parsing time {}: {error}", go_quote(text)))
}

/// A label set or annotations as the API writes them: `{"name": "value"}`.
pub type Annotations = BTreeMap<String, String>;

// ---------------------------------------------------------------------------------------
// Alerts

/// One alert of `POST /api/v2/alerts` (the body is an array of these). Only the labels are
/// required; a missing, `null`, empty or zero (`0001-01-01T00:00:00Z`) time reads as `None`,
/// which the handler fills in as Alertmanager does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: Annotations,
    #[serde(
        default,
        with = "optional_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        with = "optional_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub starts_at: Option<DateTime<Utc>>,
    /// Empty when absent (Go's `omitempty`).
    #[serde(
        rename = "generatorURL",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub generator_url: String,
    pub labels: LabelSet,
}

/// One alert of `GET /api/v2/alerts` and of the alert groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableAlert {
    pub annotations: Annotations,
    #[serde(with = "time")]
    pub ends_at: DateTime<Utc>,
    /// The label set's fingerprint, 16 hex digits.
    pub fingerprint: String,
    pub receivers: Vec<Receiver>,
    #[serde(with = "time")]
    pub starts_at: DateTime<Utc>,
    pub status: AlertStatus,
    #[serde(with = "time")]
    pub updated_at: DateTime<Utc>,
    /// Left out when empty (Go's `omitempty`).
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub generator_url: String,
    pub labels: LabelSet,
}

impl GettableAlert {
    /// Alertmanager's `AlertToOpenAPIAlert`: the alert with its receivers (in the given order)
    /// and status.
    pub fn from_alert(alert: &Alert, receivers: &[String], status: AlertStatus) -> Self {
        Self {
            annotations: alert.annotations.clone(),
            ends_at: alert.ends_at,
            fingerprint: alert.fingerprint().to_string(),
            receivers: receivers
                .iter()
                .map(|name| Receiver { name: name.clone() })
                .collect(),
            starts_at: alert.starts_at,
            status,
            updated_at: alert.updated_at,
            generator_url: alert.generator_url.clone(),
            labels: alert.labels.clone(),
        }
    }

    /// The alert as the dispatcher shows it: receivers, silences and inhibitions.
    pub fn from_view(view: &AlertView) -> Self {
        let status = AlertStatus::new(view.silenced_by.clone(), view.inhibited_by.clone());
        let mut alert = Self::from_alert(&view.alert, &view.receivers, status);
        alert.fingerprint = view.fingerprint.to_string();
        alert
    }
}

/// Whether an alert is muted and by what. Both lists are always written, empty as `[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    pub inhibited_by: Vec<String>,
    pub silenced_by: Vec<String>,
    pub state: AlertState,
}

impl AlertStatus {
    /// A processed alert: `suppressed` when silenced or inhibited, `active` otherwise.
    pub fn new(silenced_by: Vec<String>, inhibited_by: Vec<String>) -> Self {
        let state = if silenced_by.is_empty() && inhibited_by.is_empty() {
            AlertState::Active
        } else {
            AlertState::Suppressed
        };
        Self {
            inhibited_by,
            silenced_by,
            state,
        }
    }
}

/// `types.AlertState`: not yet seen by the dispatcher, notifying, or muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Unprocessed,
    Active,
    Suppressed,
}

/// One group of `GET /api/v2/alerts/groups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertGroup {
    pub alerts: Vec<GettableAlert>,
    pub labels: LabelSet,
    pub receiver: Receiver,
}

/// A receiver, by name (`GET /api/v2/receivers` answers an array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: String,
}

// ---------------------------------------------------------------------------------------
// Matchers

/// A silence matcher as the API writes it. `isEqual` is true when absent (or `null`), as the
/// API's default; it is always written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub is_equal: bool,
    pub is_regex: bool,
    pub name: String,
    pub value: String,
}

fn yes() -> bool {
    true
}

/// Why an API matcher does not make a routing matcher: its regular expression does not
/// compile (in Alertmanager's words, `validateMatcher`'s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression {}: {reason}", go_quote(.pattern))]
pub struct InvalidMatcher {
    /// The value as given.
    pub pattern: String,
    /// What the regular expression parser said.
    pub reason: String,
}

impl From<&pharos_routing::Matcher> for Matcher {
    fn from(matcher: &pharos_routing::Matcher) -> Self {
        let match_type = matcher.match_type();
        Self {
            is_equal: matches!(match_type, MatchType::Equal | MatchType::Regexp),
            is_regex: matches!(match_type, MatchType::Regexp | MatchType::NotRegexp),
            name: matcher.name().to_string(),
            value: matcher.value().to_string(),
        }
    }
}

impl TryFrom<&Matcher> for pharos_routing::Matcher {
    type Error = InvalidMatcher;

    /// `isRegex`/`isEqual` give `=`, `!=`, `=~` or `!~`; a regular expression is compiled
    /// anchored. The label name is checked with the silence ([`silences::Silences::validate`]).
    fn try_from(matcher: &Matcher) -> Result<Self, Self::Error> {
        let match_type = match_type_from_flags(matcher.is_regex, matcher.is_equal);
        pharos_routing::Matcher::new(match_type, matcher.name.as_str(), matcher.value.as_str())
            .map_err(|error| InvalidMatcher {
                pattern: matcher.value.clone(),
                reason: error.to_string(),
            })
    }
}

impl TryFrom<Matcher> for pharos_routing::Matcher {
    type Error = InvalidMatcher;

    fn try_from(matcher: Matcher) -> Result<Self, Self::Error> {
        Self::try_from(&matcher)
    }
}

/// The matchers of a silence; a regular expression that does not compile is refused as
/// Alertmanager's `Set` refuses it (`silence invalid: invalid label matcher 0: invalid regular
/// expression ...`).
fn silence_matchers(matchers: &[Matcher]) -> Result<Vec<pharos_routing::Matcher>, SilenceError> {
    matchers
        .iter()
        .enumerate()
        .map(|(index, matcher)| {
            pharos_routing::Matcher::try_from(matcher).map_err(|error| {
                SilenceError::Invalid(format!("invalid label matcher {index}: {error}"))
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Silences

/// The body of `POST /api/v2/silences`: a new silence (no id) or an update. Every field but
/// the id is required; the creator and comment may be empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    /// Empty for a new silence (Go's `omitempty`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    pub comment: String,
    pub created_by: String,
    #[serde(with = "time")]
    pub ends_at: DateTime<Utc>,
    pub matchers: Vec<Matcher>,
    #[serde(with = "time")]
    pub starts_at: DateTime<Utc>,
}

impl PostableSilence {
    /// The silence to hand to [`silences::Silences::set`], or the text Alertmanager answers
    /// (400) for it. `updated_at` is left at the Unix epoch: `set` stamps it.
    pub fn into_silence(self) -> Result<Silence, String> {
        Silence::try_from(self).map_err(|error| error.to_string())
    }
}

impl TryFrom<PostableSilence> for Silence {
    type Error = SilenceError;

    fn try_from(posted: PostableSilence) -> Result<Self, Self::Error> {
        Ok(Silence {
            matchers: silence_matchers(&posted.matchers)?,
            id: posted.id,
            starts_at: posted.starts_at,
            ends_at: posted.ends_at,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            created_by: posted.created_by,
            comment: posted.comment,
        })
    }
}

impl From<&Silence> for PostableSilence {
    fn from(silence: &Silence) -> Self {
        Self {
            id: silence.id.clone(),
            comment: silence.comment.clone(),
            created_by: silence.created_by.clone(),
            ends_at: silence.ends_at,
            matchers: silence.matchers.iter().map(Matcher::from).collect(),
            starts_at: silence.starts_at,
        }
    }
}

/// A silence of `GET /api/v2/silences` and `GET /api/v2/silence/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    pub id: String,
    pub status: SilenceStatus,
    #[serde(with = "time")]
    pub updated_at: DateTime<Utc>,
    pub comment: String,
    pub created_by: String,
    #[serde(with = "time")]
    pub ends_at: DateTime<Utc>,
    pub matchers: Vec<Matcher>,
    #[serde(with = "time")]
    pub starts_at: DateTime<Utc>,
}

impl GettableSilence {
    /// Alertmanager's `GettableSilenceFromProto`, the state taken at `now`.
    pub fn from_silence(silence: &Silence, now: DateTime<Utc>) -> Self {
        Self {
            id: silence.id.clone(),
            status: SilenceStatus {
                state: silence.state(now),
            },
            updated_at: silence.updated_at,
            comment: silence.comment.clone(),
            created_by: silence.created_by.clone(),
            ends_at: silence.ends_at,
            matchers: silence.matchers.iter().map(Matcher::from).collect(),
            starts_at: silence.starts_at,
        }
    }
}

impl TryFrom<GettableSilence> for Silence {
    type Error = SilenceError;

    fn try_from(gettable: GettableSilence) -> Result<Self, Self::Error> {
        Ok(Silence {
            matchers: silence_matchers(&gettable.matchers)?,
            id: gettable.id,
            starts_at: gettable.starts_at,
            ends_at: gettable.ends_at,
            updated_at: gettable.updated_at,
            created_by: gettable.created_by,
            comment: gettable.comment,
        })
    }
}

/// A silence's state: `expired`, `active` or `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    pub state: SilenceState,
}

/// The answer to `POST /api/v2/silences`: `{"silenceID": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostSilenceResponse {
    #[serde(rename = "silenceID")]
    pub silence_id: String,
}

// ---------------------------------------------------------------------------------------
// Status

/// The answer to `GET /api/v2/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerStatus {
    pub cluster: ClusterStatus,
    pub config: AlertmanagerConfig,
    /// When the process started (Alertmanager's name for it).
    #[serde(with = "time")]
    pub uptime: DateTime<Utc>,
    pub version_info: VersionInfo,
}

impl AlertmanagerStatus {
    /// The status of a Pharos process: no Alertmanager cluster (`disabled`, no peers, as
    /// Alertmanager answers without `--cluster.listen-address`), the configuration text as
    /// loaded, the start time, and Pharos's version.
    pub fn new(original: String, started_at: DateTime<Utc>) -> Self {
        Self {
            cluster: ClusterStatus {
                name: String::new(),
                peers: Vec::new(),
                status: ClusterState::Disabled,
            },
            config: AlertmanagerConfig { original },
            uptime: started_at,
            version_info: VersionInfo::pharos(),
        }
    }
}

/// The gossip cluster: its name (left out when empty), its peers (always written) and
/// whether it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub peers: Vec<PeerStatus>,
    pub status: ClusterState,
}

/// `ready`, `settling` or `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    Ready,
    Settling,
    Disabled,
}

/// A cluster peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub address: String,
    pub name: String,
}

/// The configuration as loaded (`original`: the file's text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerConfig {
    pub original: String,
}

/// The build that answers (Prometheus's `version` package fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub branch: String,
    pub build_date: String,
    pub build_user: String,
    pub go_version: String,
    pub revision: String,
    pub version: String,
}

impl VersionInfo {
    /// Pharos's version; what a Rust build does not know (branch, revision, build user and
    /// date) is `unknown`, and there is no Go version.
    /// The version of Alertmanager's API Pharos answers as (0.25.0, so that amtool does not
    /// warn of a mismatch), with Pharos' own version as the branch.
    pub fn pharos() -> Self {
        let unknown = || "unknown".to_string();
        Self {
            branch: format!("pharos-{}", env!("CARGO_PKG_VERSION")),
            build_date: unknown(),
            build_user: unknown(),
            go_version: "none (Pharos is written in Rust)".to_string(),
            revision: unknown(),
            version: "0.25.0".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Query parameters and results

/// The `filter` query parameters (`alertname="x"`, `job=~"a|b"`, `env!=prod`), each parsed as
/// Alertmanager 0.25's `labels.ParseMatcher`; the error is its text (`bad matcher format:
/// ...`), which Alertmanager answers with 400.
pub fn parse_filter(filters: &[String]) -> Result<Vec<pharos_routing::Matcher>, String> {
    filters
        .iter()
        .map(|filter| parse_matcher(filter).map_err(|error| error.to_string()))
        .collect()
}

/// The `receiver` query parameter: a regular expression over receiver names, anchored as
/// Alertmanager anchors it (`^(?:...)$`, Go's syntax). Match a name with
/// [`pharos_routing::Matcher::matches`]. The error is Alertmanager's 400 text.
pub fn parse_receiver_filter(pattern: &str) -> Result<pharos_routing::Matcher, String> {
    pharos_routing::Matcher::new(MatchType::Regexp, "receiver", pattern)
        .map_err(|error| format!("failed to parse receiver param: {error}"))
}

/// Alertmanager's `alertMatchesFilterLabels` (`matchFilterLabels`): every filter holds for
/// the alert's labels, except that `name=""` (or `=~""`) also accepts an absent label and
/// `name!=""` (or `!~""`) accepts any present one.
pub fn alert_matches_filter(labels: &LabelSet, filters: &[pharos_routing::Matcher]) -> bool {
    filters.iter().all(|filter| {
        let value = labels.get(filter.name());
        let empty_filter = filter.value().is_empty();
        match filter.match_type() {
            MatchType::NotEqual | MatchType::NotRegexp if empty_filter && value.is_some() => true,
            MatchType::Equal | MatchType::Regexp if empty_filter && value.is_none() => true,
            _ => filter.matches(value.map(String::as_str).unwrap_or("")),
        }
    })
}

/// Alertmanager 0.25's `CheckSilenceMatchesFilterLabels`: every filter matcher is one of the
/// silence's matchers (same name, operator and value, compared as text).
pub fn silence_matches_filter(silence: &Silence, filters: &[pharos_routing::Matcher]) -> bool {
    filters
        .iter()
        .all(|filter| silence.matchers.iter().any(|matcher| matcher == filter))
}

/// Alertmanager's `SortSilences`: active first (ending soonest first), then pending (starting
/// soonest first), then expired (ended most recently first).
pub fn sort_silences(silences: &mut [GettableSilence]) {
    fn rank(state: SilenceState) -> u8 {
        match state {
            SilenceState::Active => 1,
            SilenceState::Pending => 2,
            SilenceState::Expired => 3,
        }
    }
    silences.sort_by(|a, b| {
        let (state_a, state_b) = (a.status.state, b.status.state);
        rank(state_a)
            .cmp(&rank(state_b))
            .then_with(|| match state_a {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
    });
}

// ---------------------------------------------------------------------------------------
// Serde helpers

/// A required time: written with [`format_time`], read with [`parse_time`].
mod time {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_time(*time))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_time(&text).map_err(serde::de::Error::custom)
    }
}

/// An optional time: `null`, `""` and Go's zero time read as `None`.
mod optional_time {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        time: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.serialize_str(&format_time(*time)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => {
                let time = parse_time(&text).map_err(serde::de::Error::custom)?;
                Ok((!silences::is_go_zero_time(time)).then_some(time))
            }
        }
    }
}

/// `null` reads as the default, as a nil map, slice or string does in Go.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// `null` reads as `true` (`isEqual`'s default).
fn null_as_true<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Option::<bool>::deserialize(deserializer).map(|value| value.unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::{Duration, TimeZone};
    use pharos_routing::labels::{fingerprint, label_set};

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0)
            .single()
            .map(|base| base + Duration::minutes(minute))
            .unwrap_or_default()
    }

    fn routing(match_type: MatchType, name: &str, value: &str) -> pharos_routing::Matcher {
        pharos_routing::Matcher::new(match_type, name, value).expect("should succeed")
    }

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("should succeed")
    }

    fn sample_alert() -> Alert {
        Alert {
            labels: label_set(&[("alertname", "Down"), ("job", "api")]),
            annotations: [("summary".to_string(), "api is down".to_string())].into(),
            starts_at: at(0),
            ends_at: at(5),
            generator_url: "http://prometheus:9090/graph?g0.expr=up".to_string(),
            updated_at: at(1) + Duration::nanoseconds(123_456_789),
            timeout: true,
        }
    }

    fn sample_silence() -> Silence {
        Silence {
            id: "5f1c3b2a-7d4e-4f60-9a8b-0c1d2e3f4a5b".to_string(),
            matchers: vec![
                routing(MatchType::Equal, "alertname", "Down"),
                routing(MatchType::NotRegexp, "env", "dev|test"),
            ],
            starts_at: at(0),
            ends_at: at(60),
            updated_at: at(0),
            created_by: "ops".to_string(),
            comment: "maintenance".to_string(),
        }
    }

    #[test]
    fn times_are_written_as_strfmt_does_and_read_as_rfc3339() {
        assert_eq!(format_time(at(0)), "2026-12-06T10:00:00.000Z");
        // Truncated, not rounded, to milliseconds.
        assert_eq!(
            format_time(at(0) + Duration::nanoseconds(999_999_999)),
            "2026-12-06T10:00:00.999Z"
        );
        assert_eq!(parse_time("2026-12-06T10:00:00Z"), Ok(at(0)));
        assert_eq!(parse_time("2026-12-06T11:30:00+01:30"), Ok(at(0)));
        assert_eq!(
            parse_time("2026-12-06T10:00:00.123456789Z"),
            Ok(at(0) + Duration::nanoseconds(123_456_789))
        );
        assert!(parse_time("2026-12-06 10:00").is_err());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn gettable_alert_as_alertmanager_writes_it() {
        let status = AlertStatus::new(vec!["s1".to_string()], Vec::new());
        let alert = GettableAlert::from_alert(&sample_alert(), &["team".to_string()], status);
        let fp = fingerprint(&sample_alert().labels).to_string();
        assert_eq!(
            json(&alert),
            format!(
                r#"{{"annotations":{{"summary":"api is down"}},"endsAt":"2026-12-06T10:05:00.000Z","fingerprint":"{fp}","receivers":[{{"name":"team"}}],"startsAt":"2026-12-06T10:00:00.000Z","status":{{"inhibitedBy":[],"silencedBy":["s1"],"state":"suppressed"}},"updatedAt":"2026-12-06T10:01:00.123Z","generatorURL":"http://prometheus:9090/graph?g0.expr=up","labels":{{"alertname":"Down","job":"api"}}}}"#
            )
        );
        assert_eq!(fp.len(), 16);

        // An empty generator URL is left out; empty maps and lists are still written.
        let mut bare = sample_alert();
        bare.generator_url.clear();
        bare.annotations.clear();
        let alert = GettableAlert::from_alert(&bare, &[], AlertStatus::new(vec![], vec![]));
        let written = json(&alert);
        assert!(!written.contains("generatorURL"), "{written}");
        assert!(written.starts_with(r#"{"annotations":{},"#), "{written}");
        assert!(written.contains(r#""receivers":[],"#), "{written}");
        assert!(
            written.contains(r#""status":{"inhibitedBy":[],"silencedBy":[],"state":"active"}"#),
            "{written}"
        );
        let read: GettableAlert = serde_json::from_str(&written).expect("should succeed");
        assert_eq!(read.generator_url, "");
        assert_eq!(read.labels, bare.labels);
    }

    #[test]
    fn gettable_alert_from_a_dispatcher_view() {
        let alert = sample_alert();
        let view = AlertView {
            fingerprint: alert.fingerprint(),
            alert,
            receivers: vec!["a".to_string(), "b".to_string()],
            silenced_by: Vec::new(),
            inhibited_by: vec!["f00".to_string()],
        };
        let gettable = GettableAlert::from_view(&view);
        assert_eq!(gettable.fingerprint, view.fingerprint.to_string());
        assert_eq!(gettable.status.state, AlertState::Suppressed);
        assert_eq!(gettable.status.inhibited_by, vec!["f00".to_string()]);
        let names: Vec<&str> = gettable.receivers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(json(&AlertState::Unprocessed), r#""unprocessed""#);
    }

    #[test]
    fn alert_group_and_receivers() {
        let group = AlertGroup {
            alerts: Vec::new(),
            labels: label_set(&[("alertname", "Down")]),
            receiver: Receiver {
                name: "team".to_string(),
            },
        };
        assert_eq!(
            json(&group),
            r#"{"alerts":[],"labels":{"alertname":"Down"},"receiver":{"name":"team"}}"#
        );
        let receivers = vec![
            Receiver {
                name: "a".to_string(),
            },
            Receiver {
                name: "b".to_string(),
            },
        ];
        assert_eq!(json(&receivers), r#"[{"name":"a"},{"name":"b"}]"#);
    }

    #[test]
    fn postable_alerts_as_prometheus_posts_them() {
        let body = r#"[
            {"labels":{"alertname":"Down"}},
            {"labels":{"alertname":"Up"},"annotations":{"summary":"x"},
             "startsAt":"2026-12-06T11:00:00+01:00","endsAt":"2026-12-06T10:05:00.5Z",
             "generatorURL":"http://p/graph"},
            {"labels":{"a":"b"},"annotations":null,"startsAt":"0001-01-01T00:00:00Z",
             "endsAt":null,"generatorURL":null},
            {"labels":{"a":"b"},"startsAt":""}
        ]"#;
        let alerts: Vec<PostableAlert> = serde_json::from_str(body).expect("should succeed");
        assert_eq!(alerts.len(), 4);
        assert_eq!(alerts[0].labels, label_set(&[("alertname", "Down")]));
        assert!(alerts[0].annotations.is_empty());
        assert_eq!((alerts[0].starts_at, alerts[0].ends_at), (None, None));
        assert_eq!(alerts[0].generator_url, "");
        assert_eq!(alerts[1].starts_at, Some(at(0)));
        assert_eq!(alerts[1].ends_at, Some(at(5) + Duration::milliseconds(500)));
        assert_eq!(alerts[1].generator_url, "http://p/graph");
        assert_eq!(
            alerts[1].annotations.get("summary").map(String::as_str),
            Some("x")
        );
        // Go's zero time, null and "" are "not set".
        assert_eq!((alerts[2].starts_at, alerts[2].ends_at), (None, None));
        assert!(alerts[2].annotations.is_empty());
        assert_eq!(alerts[3].starts_at, None);

        assert!(serde_json::from_str::<Vec<PostableAlert>>(r#"[{"annotations":{}}]"#).is_err());
        assert!(
            serde_json::from_str::<Vec<PostableAlert>>(r#"[{"labels":{},"startsAt":"soon"}]"#)
                .is_err()
        );

        // Written back, what is unset is left out.
        assert_eq!(json(&alerts[0]), r#"{"labels":{"alertname":"Down"}}"#);
        assert_eq!(
            json(&alerts[1]),
            r#"{"annotations":{"summary":"x"},"endsAt":"2026-12-06T10:05:00.500Z","startsAt":"2026-12-06T10:00:00.000Z","generatorURL":"http://p/graph","labels":{"alertname":"Up"}}"#
        );
    }

    #[test]
    fn matchers_convert_both_ways() {
        let cases = [
            (MatchType::Equal, false, true),
            (MatchType::NotEqual, false, false),
            (MatchType::Regexp, true, true),
            (MatchType::NotRegexp, true, false),
        ];
        for (match_type, is_regex, is_equal) in cases {
            let original = routing(match_type, "job", "a.*");
            let api = Matcher::from(&original);
            assert_eq!(
                api,
                Matcher {
                    is_equal,
                    is_regex,
                    name: "job".to_string(),
                    value: "a.*".to_string(),
                }
            );
            let back = pharos_routing::Matcher::try_from(&api).expect("should succeed");
            assert_eq!(back, original);
            assert_eq!(back.match_type(), match_type);
        }
        assert_eq!(
            json(&Matcher::from(&routing(MatchType::NotEqual, "a", "b"))),
            r#"{"isEqual":false,"isRegex":false,"name":"a","value":"b"}"#
        );
    }

    #[test]
    fn matcher_is_equal_defaults_to_true_and_bad_regexes_are_refused() {
        let read: Matcher = serde_json::from_str(r#"{"name":"a","value":"b","isRegex":true}"#)
            .expect("should succeed");
        assert!(read.is_equal);
        let read: Matcher =
            serde_json::from_str(r#"{"name":"a","value":"b","isRegex":false,"isEqual":null}"#)
                .expect("should succeed");
        assert!(read.is_equal);
        assert!(serde_json::from_str::<Matcher>(r#"{"name":"a","value":"b"}"#).is_err());
        assert!(serde_json::from_str::<Matcher>(r#"{"name":"a","isRegex":false}"#).is_err());

        let bad = Matcher {
            is_equal: true,
            is_regex: true,
            name: "a".to_string(),
            value: "(".to_string(),
        };
        let error = pharos_routing::Matcher::try_from(bad.clone()).expect_err("should fail");
        assert_eq!(error.pattern, "(");
        assert!(
            error
                .to_string()
                .starts_with(r#"invalid regular expression "(": "#),
            "{error}"
        );
        // Not a regular expression: any value is fine.
        let plain = Matcher {
            is_regex: false,
            ..bad
        };
        assert!(pharos_routing::Matcher::try_from(plain).is_ok());
    }

    #[test]
    fn postable_silence_as_amtool_posts_it() {
        let body = r#"{"matchers":[{"name":"alertname","value":"Down","isRegex":false},
            {"name":"env","value":"dev|test","isRegex":true,"isEqual":false}],
            "startsAt":"2026-12-06T10:00:00.000Z","endsAt":"2026-12-06T11:00:00.000Z",
            "createdBy":"ops","comment":"maintenance"}"#;
        let posted: PostableSilence = serde_json::from_str(body).expect("should succeed");
        assert_eq!(posted.id, "");
        let silence = posted.clone().into_silence().expect("should succeed");
        let expected = Silence {
            id: String::new(),
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            ..sample_silence()
        };
        assert_eq!(silence, expected);
        assert_eq!(
            json(&posted),
            r#"{"comment":"maintenance","createdBy":"ops","endsAt":"2026-12-06T11:00:00.000Z","matchers":[{"isEqual":true,"isRegex":false,"name":"alertname","value":"Down"},{"isEqual":false,"isRegex":true,"name":"env","value":"dev|test"}],"startsAt":"2026-12-06T10:00:00.000Z"}"#
        );

        // An update carries the id.
        let update = PostableSilence::from(&sample_silence());
        assert!(json(&update).starts_with(r#"{"id":"5f1c3b2a-"#));
        let read: PostableSilence = serde_json::from_str(&json(&update)).expect("should succeed");
        assert_eq!(
            read.into_silence().expect("should succeed").id,
            sample_silence().id
        );

        // Creator and comment are required (but may be empty); so are the times and matchers.
        for missing in ["createdBy", "comment", "startsAt", "endsAt", "matchers"] {
            let mut value: serde_json::Value = serde_json::from_str(body).expect("should succeed");
            if let Some(object) = value.as_object_mut() {
                object.remove(missing);
            }
            assert!(
                serde_json::from_value::<PostableSilence>(value).is_err(),
                "{missing} should be required"
            );
        }
        let empty = body
            .replace(r#""ops""#, r#""""#)
            .replace(r#""maintenance""#, r#""""#);
        assert!(serde_json::from_str::<PostableSilence>(&empty).is_ok());
    }

    #[test]
    fn postable_silence_with_a_bad_regex_is_refused_in_alertmanagers_words() {
        let posted = PostableSilence {
            id: String::new(),
            comment: String::new(),
            created_by: String::new(),
            ends_at: at(60),
            matchers: vec![
                Matcher {
                    is_equal: true,
                    is_regex: false,
                    name: "a".to_string(),
                    value: "b".to_string(),
                },
                Matcher {
                    is_equal: true,
                    is_regex: true,
                    name: "c".to_string(),
                    value: "x(".to_string(),
                },
            ],
            starts_at: at(0),
        };
        let error = posted.into_silence().expect_err("should fail");
        assert!(
            error.starts_with(
                r#"silence invalid: invalid label matcher 1: invalid regular expression "x(": "#
            ),
            "{error}"
        );
    }

    #[test]
    fn gettable_silence_as_alertmanager_writes_it_and_round_trips() {
        let silence = sample_silence();
        let gettable = GettableSilence::from_silence(&silence, at(10));
        assert_eq!(
            json(&gettable),
            r#"{"id":"5f1c3b2a-7d4e-4f60-9a8b-0c1d2e3f4a5b","status":{"state":"active"},"updatedAt":"2026-12-06T10:00:00.000Z","comment":"maintenance","createdBy":"ops","endsAt":"2026-12-06T11:00:00.000Z","matchers":[{"isEqual":true,"isRegex":false,"name":"alertname","value":"Down"},{"isEqual":false,"isRegex":true,"name":"env","value":"dev|test"}],"startsAt":"2026-12-06T10:00:00.000Z"}"#
        );
        assert_eq!(
            GettableSilence::from_silence(&silence, at(-1)).status.state,
            SilenceState::Pending
        );
        assert_eq!(
            GettableSilence::from_silence(&silence, at(61)).status.state,
            SilenceState::Expired
        );

        let read: GettableSilence = serde_json::from_str(&json(&gettable)).expect("should succeed");
        assert_eq!(read, gettable);
        assert_eq!(Silence::try_from(read).expect("should succeed"), silence);

        // Through the wire a silence keeps milliseconds.
        let mut precise = silence.clone();
        precise.ends_at += Duration::nanoseconds(1_234_567);
        let read: GettableSilence =
            serde_json::from_str(&json(&GettableSilence::from_silence(&precise, at(10))))
                .expect("should succeed");
        assert_eq!(read.ends_at, silence.ends_at + Duration::milliseconds(1));
    }

    #[test]
    fn post_silence_response() {
        let response = PostSilenceResponse {
            silence_id: "abc".to_string(),
        };
        assert_eq!(json(&response), r#"{"silenceID":"abc"}"#);
    }

    #[test]
    fn status_as_alertmanager_writes_it_without_a_cluster() {
        let status = AlertmanagerStatus::new("route:\n  receiver: a\n".to_string(), at(0));
        let written = json(&status);
        assert!(
            written.starts_with(
                r#"{"cluster":{"peers":[],"status":"disabled"},"config":{"original":"route:\n  receiver: a\n"},"uptime":"2026-12-06T10:00:00.000Z","versionInfo":{"branch":"#
            ),
            "{written}"
        );
        let keys: Vec<String> = serde_json::from_str::<serde_json::Value>(&written)
            .expect("should succeed")
            .get("versionInfo")
            .and_then(|info| info.as_object())
            .map(|info| info.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            vec![
                "branch",
                "buildDate",
                "buildUser",
                "goVersion",
                "revision",
                "version"
            ]
        );
        assert_eq!(status.version_info.version, "0.25.0");

        let clustered = ClusterStatus {
            name: "01HXYZ".to_string(),
            peers: vec![PeerStatus {
                address: "10.0.0.1:9094".to_string(),
                name: "01HXYZ".to_string(),
            }],
            status: ClusterState::Ready,
        };
        assert_eq!(
            json(&clustered),
            r#"{"name":"01HXYZ","peers":[{"address":"10.0.0.1:9094","name":"01HXYZ"}],"status":"ready"}"#
        );
        let read: ClusterStatus =
            serde_json::from_str(r#"{"peers":null,"status":"settling"}"#).expect("should succeed");
        assert_eq!(read.status, ClusterState::Settling);
        assert!(read.peers.is_empty() && read.name.is_empty());
        let read: AlertmanagerStatus = serde_json::from_str(&written).expect("should succeed");
        assert_eq!(read, status);
    }

    #[test]
    fn filters_parse_as_alertmanager_parses_them() {
        let filters = vec![
            r#"alertname="Down""#.to_string(),
            "job=~api|web".to_string(),
            r#"env!="prod""#.to_string(),
            "team !~ sre.*".to_string(),
        ];
        let parsed = parse_filter(&filters).expect("should succeed");
        let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                r#"alertname="Down""#,
                r#"job=~"api|web""#,
                r#"env!="prod""#,
                r#"team!~"sre.*""#
            ]
        );
        assert_eq!(parse_filter(&[]), Ok(Vec::new()));
        assert_eq!(
            parse_filter(&["alertname".to_string()]).expect_err("should fail"),
            "bad matcher format: alertname"
        );
        assert!(parse_filter(&[r#"a=~"(""#.to_string()]).is_err());
        assert!(parse_filter(&[r#"a="b"c""#.to_string()]).is_err());
    }

    #[test]
    fn receiver_filter_is_anchored() {
        let filter = parse_receiver_filter("team-.*").expect("should succeed");
        assert!(filter.matches("team-a"));
        assert!(!filter.matches("my-team-a"));
        let error = parse_receiver_filter("(").expect_err("should fail");
        assert!(
            error.starts_with("failed to parse receiver param: "),
            "{error}"
        );
    }

    #[test]
    fn alert_filters_treat_empty_values_as_alertmanager_does() {
        let labels = label_set(&[("alertname", "Down"), ("env", "prod")]);
        let check = |filter: &str| {
            let filters = parse_filter(&[filter.to_string()]).expect("should succeed");
            alert_matches_filter(&labels, &filters)
        };
        assert!(check(r#"alertname="Down""#));
        assert!(!check(r#"alertname="Up""#));
        assert!(check("env=~pr.*"));
        assert!(!check("env=~pr"));
        assert!(check("env!=dev"));
        assert!(!check("env!~prod|dev"));
        // Empty values: `=""` accepts an absent label, `!=""` any present one.
        assert!(check(r#"team="""#));
        assert!(!check(r#"env="""#));
        assert!(check(r#"env!="""#));
        assert!(!check(r#"team!="""#));
        assert!(check(r#"team=~"""#));
        assert!(check(r#"env!~"""#));
        // An absent label reads as "" otherwise.
        assert!(check("team!=sre"));
        assert!(!check("team=sre"));
        assert!(alert_matches_filter(&labels, &[]));
    }

    #[test]
    fn silence_filters_compare_matchers_as_text() {
        let silence = sample_silence();
        let check = |filters: &[&str]| {
            let filters: Vec<String> = filters.iter().map(ToString::to_string).collect();
            silence_matches_filter(&silence, &parse_filter(&filters).expect("should succeed"))
        };
        assert!(check(&[]));
        assert!(check(&[r#"alertname="Down""#]));
        assert!(check(&[r#"env!~"dev|test""#, "alertname=Down"]));
        // Same name and value but another operator, or a value the silence's would match.
        assert!(!check(&[r#"env=~"dev|test""#]));
        assert!(!check(&["alertname=~Do.*"]));
        assert!(!check(&["alertname=Down", "job=api"]));
    }

    #[test]
    fn silences_sort_as_alertmanager_sorts_them() {
        let make = |id: &str, starts: i64, ends: i64| {
            let silence = Silence {
                id: id.to_string(),
                starts_at: at(starts),
                ends_at: at(ends),
                ..sample_silence()
            };
            GettableSilence::from_silence(&silence, at(0))
        };
        let mut silences = vec![
            make("expired-old", -60, -30),
            make("pending-late", 50, 100),
            make("active-long", -10, 90),
            make("expired-recent", -20, -5),
            make("pending-soon", 10, 100),
            make("active-short", -10, 20),
        ];
        sort_silences(&mut silences);
        let ids: Vec<&str> = silences.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "active-short",
                "active-long",
                "pending-soon",
                "pending-late",
                "expired-recent",
                "expired-old"
            ]
        );
    }
}
