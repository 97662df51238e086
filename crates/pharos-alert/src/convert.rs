//! Between the alert service's values and the `pharos.alert.v1` messages, with the checks of
//! the request fields and the limits `alert.proto` documents (a wrong field is an
//! [`AlertError::InvalidArgument`] naming it as the request names it).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pharos_proto::alert::v1 as pb;
use pharos_routing::labels::LabelSet;
use pharos_routing::matcher::{MatchType, Matcher};
use pharos_store::control::alerts::{AttemptRow, DeadLetterRow, RuleGroupRow};

use crate::alerts::{Alert, millis, time_from_millis};
use crate::api::model::{alert_matches_filter, parse_receiver_filter};
use crate::dispatch::{Acknowledgement, AlertEventKind, AlertView};
use crate::error::{AlertError, Result};
use crate::evaluator::GroupStatus;
use crate::silences::{Silence, SilenceError, SilenceState, Silences};

/// Matchers in one request.
pub(crate) const MAX_MATCHERS: usize = 64;
/// Bytes of one matcher (as text, or its name and its value).
pub(crate) const MAX_MATCHER_BYTES: usize = 1024;
/// Bytes of a comment (acknowledgement, silence).
pub(crate) const MAX_COMMENT_BYTES: usize = 4096;
/// Bytes of a name: a silence's author, a rule group's name, a silence id.
pub(crate) const MAX_NAME_BYTES: usize = 128;
/// Bytes of a rule group's YAML.
pub(crate) const MAX_RULE_GROUP_BYTES: usize = 1 << 20;
/// The answer of a list when its `limit` is 0.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` a list accepts.
pub(crate) const MAX_LIMIT: u32 = 1000;
/// CURRENT events per response of a watch's snapshot.
pub(crate) const SNAPSHOT_CHUNK: usize = 100;

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> AlertError {
    AlertError::InvalidArgument {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Refuses text longer than `max` bytes.
pub(crate) fn check_len(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes; at most {max} are accepted", text.len()),
        ));
    }
    Ok(())
}

/// A list's `limit`: 0 is [`DEFAULT_LIMIT`], more than [`MAX_LIMIT`] is refused.
pub(crate) fn limit(limit: u32) -> Result<i64> {
    match limit {
        0 => Ok(i64::from(DEFAULT_LIMIT)),
        n if n <= MAX_LIMIT => Ok(i64::from(n)),
        n => Err(invalid(
            "limit",
            format!("{n} is more than {MAX_LIMIT}; page with a smaller limit"),
        )),
    }
}

/// Matchers in Alertmanager's syntax (`severity="page"`), each parsed as
/// `labels.ParseMatcher`; a bad one is named by its index (`matchers[2]`).
pub(crate) fn filter_matchers(texts: &[String]) -> Result<Vec<Matcher>> {
    if texts.len() > MAX_MATCHERS {
        return Err(invalid(
            "matchers",
            format!("{} matchers; at most {MAX_MATCHERS}", texts.len()),
        ));
    }
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let field = format!("matchers[{index}]");
            check_len(&field, text, MAX_MATCHER_BYTES)?;
            pharos_routing::parse_matcher(text).map_err(|error| {
                invalid(
                    field,
                    format!(
                        "{error}; write a matcher like severity=\"page\" or instance=~\"db-.*\""
                    ),
                )
            })
        })
        .collect()
}

/// Which alerts `ListAlerts` keeps, as Alertmanager's `alertFilter` keeps them for the
/// `filter`, `receiver`, `active`, `silenced` and `inhibited` parameters.
pub(crate) struct AlertSelection {
    matchers: Vec<Matcher>,
    receiver: Option<Matcher>,
    active: bool,
    silenced: bool,
    inhibited: bool,
}

impl AlertSelection {
    pub(crate) fn from_request(request: &pb::ListAlertsRequest) -> Result<Self> {
        let receiver = if request.receiver.is_empty() {
            None
        } else {
            check_len("receiver", &request.receiver, MAX_MATCHER_BYTES)?;
            Some(
                parse_receiver_filter(&request.receiver)
                    .map_err(|error| invalid("receiver", error))?,
            )
        };
        Ok(Self {
            matchers: filter_matchers(&request.matchers)?,
            receiver,
            active: !request.exclude_active,
            silenced: !request.exclude_silenced,
            inhibited: !request.exclude_inhibited,
        })
    }

    pub(crate) fn keeps(&self, view: &AlertView) -> bool {
        if let Some(receiver) = &self.receiver
            && !view.receivers.iter().any(|name| receiver.matches(name))
        {
            return false;
        }
        if !alert_matches_filter(&view.alert.labels, &self.matchers) {
            return false;
        }
        let suppressed = !view.silenced_by.is_empty() || !view.inhibited_by.is_empty();
        (self.active || suppressed)
            && (self.silenced || view.silenced_by.is_empty())
            && (self.inhibited || view.inhibited_by.is_empty())
    }
}

fn string_map(labels: &LabelSet) -> HashMap<String, String> {
    labels
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn state(view: &AlertView, now: DateTime<Utc>) -> pb::AlertState {
    if view.alert.resolved_at(now) {
        pb::AlertState::Resolved
    } else if view.silenced_by.is_empty() && view.inhibited_by.is_empty() {
        pb::AlertState::Active
    } else {
        pb::AlertState::Suppressed
    }
}

/// An alert as the API shows it, with its acknowledgement when it has one.
pub(crate) fn alert(
    view: AlertView,
    acknowledgement: Option<Acknowledgement>,
    now: DateTime<Utc>,
) -> pb::Alert {
    let state = state(&view, now);
    let AlertView {
        alert,
        fingerprint,
        receivers,
        silenced_by,
        inhibited_by,
    } = view;
    let Alert {
        labels,
        annotations,
        starts_at,
        ends_at,
        generator_url,
        updated_at,
        timeout: _,
    } = alert;
    pb::Alert {
        labels: string_map(&labels),
        annotations: annotations.into_iter().collect(),
        starts_at_ms: millis(starts_at),
        ends_at_ms: millis(ends_at),
        generator_url,
        fingerprint: fingerprint.to_string(),
        state: state as i32,
        receivers,
        silenced_by,
        inhibited_by,
        acknowledgement: acknowledgement.map(|ack| pb::Acknowledgement {
            by: ack.by,
            comment: ack.comment,
            at_ms: millis(ack.at),
        }),
        updated_at_ms: millis(updated_at),
    }
}

pub(crate) fn event_kind(kind: AlertEventKind) -> pb::AlertEventKind {
    match kind {
        AlertEventKind::Firing => pb::AlertEventKind::Firing,
        AlertEventKind::Updated => pb::AlertEventKind::Updated,
        AlertEventKind::Resolved => pb::AlertEventKind::Resolved,
        AlertEventKind::Acknowledged => pb::AlertEventKind::Acknowledged,
    }
}

/// Whether the labels satisfy a watch's matchers (Alertmanager's filter semantics).
pub(crate) fn labels_match(labels: &LabelSet, matchers: &[Matcher]) -> bool {
    alert_matches_filter(labels, matchers)
}

fn match_type(matcher: &Matcher) -> pb::MatchType {
    match matcher.match_type() {
        MatchType::Equal => pb::MatchType::Equal,
        MatchType::NotEqual => pb::MatchType::NotEqual,
        MatchType::Regexp => pb::MatchType::Regex,
        MatchType::NotRegexp => pb::MatchType::NotRegex,
    }
}

fn silence_state(state: SilenceState) -> pb::SilenceState {
    match state {
        SilenceState::Pending => pb::SilenceState::Pending,
        SilenceState::Active => pb::SilenceState::Active,
        SilenceState::Expired => pb::SilenceState::Expired,
    }
}

pub(crate) fn silence(silence: &Silence, now: DateTime<Utc>) -> pb::Silence {
    pb::Silence {
        id: silence.id.clone(),
        matchers: silence
            .matchers
            .iter()
            .map(|matcher| pb::Matcher {
                name: matcher.name().to_owned(),
                value: matcher.value().to_owned(),
                r#type: match_type(matcher) as i32,
            })
            .collect(),
        starts_at_ms: millis(silence.starts_at),
        ends_at_ms: millis(silence.ends_at),
        updated_at_ms: millis(silence.updated_at),
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
        state: silence_state(silence.state(now)) as i32,
    }
}

/// Alertmanager's `SortSilences`: active first (ending soonest first), then pending (starting
/// soonest first), then expired (ended most recently first).
pub(crate) fn sort_silences(silences: &mut [pb::Silence]) {
    fn rank(silence: &pb::Silence) -> (u8, i64) {
        match pb::SilenceState::try_from(silence.state) {
            Ok(pb::SilenceState::Active) => (0, silence.ends_at_ms),
            Ok(pb::SilenceState::Pending) => (1, silence.starts_at_ms),
            _ => (2, -silence.ends_at_ms),
        }
    }
    silences.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id)));
}

/// The silence a `CreateSilence` asks for, checked as the Alertmanager API checks a posted one
/// (and as `Silences::validate` does), with its author the caller's identity when it names
/// none.
pub(crate) fn silence_from_request(
    request: pb::CreateSilenceRequest,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Silence> {
    check_len("id", &request.id, MAX_NAME_BYTES)?;
    check_len("created_by", &request.created_by, MAX_NAME_BYTES)?;
    check_len("comment", &request.comment, MAX_COMMENT_BYTES)?;
    if request.matchers.is_empty() {
        return Err(invalid(
            "matchers",
            "at least one matcher is required, like {name: \"alertname\", value: \"DiskFull\", type: MATCH_TYPE_EQUAL}",
        ));
    }
    if request.matchers.len() > MAX_MATCHERS {
        return Err(invalid(
            "matchers",
            format!(
                "{} matchers; at most {MAX_MATCHERS}",
                request.matchers.len()
            ),
        ));
    }
    let matchers = request
        .matchers
        .iter()
        .enumerate()
        .map(|(index, matcher)| silence_matcher(index, matcher))
        .collect::<Result<Vec<_>>>()?;
    if request.starts_at_ms < 0 {
        return Err(invalid("starts_at_ms", "is before 1970; use 0 for now"));
    }
    let starts_at = if request.starts_at_ms == 0 {
        now
    } else {
        time_from_millis(request.starts_at_ms)
    };
    if request.ends_at_ms <= 0 {
        return Err(invalid(
            "ends_at_ms",
            "is required: when the silence ends, in milliseconds since the Unix epoch",
        ));
    }
    let ends_at = time_from_millis(request.ends_at_ms);
    if ends_at <= starts_at {
        return Err(invalid("ends_at_ms", "must be after starts_at_ms"));
    }
    if ends_at < now {
        return Err(invalid("ends_at_ms", "is in the past"));
    }
    let silence = Silence {
        id: request.id,
        matchers,
        starts_at,
        ends_at,
        updated_at: now,
        created_by: if request.created_by.is_empty() {
            actor.to_owned()
        } else {
            request.created_by
        },
        comment: request.comment,
    };
    Silences::validate(&silence).map_err(|error| match error {
        SilenceError::Invalid(reason) => invalid("matchers", reason),
        other => invalid("matchers", other.to_string()),
    })?;
    Ok(silence)
}

fn silence_matcher(index: usize, matcher: &pb::Matcher) -> Result<Matcher> {
    let field = |part: &str| format!("matchers[{index}].{part}");
    check_len(&field("name"), &matcher.name, MAX_MATCHER_BYTES)?;
    check_len(&field("value"), &matcher.value, MAX_MATCHER_BYTES)?;
    if !pharos_routing::labels::is_valid_label_name(&matcher.name) {
        return Err(invalid(
            field("name"),
            format!(
                "{:?} is not a label name: [a-zA-Z_][a-zA-Z0-9_]*",
                matcher.name
            ),
        ));
    }
    let match_type = match pb::MatchType::try_from(matcher.r#type) {
        Ok(pb::MatchType::Equal) => MatchType::Equal,
        Ok(pb::MatchType::NotEqual) => MatchType::NotEqual,
        Ok(pb::MatchType::Regex) => MatchType::Regexp,
        Ok(pb::MatchType::NotRegex) => MatchType::NotRegexp,
        Ok(pb::MatchType::Unspecified) | Err(_) => {
            return Err(invalid(
                field("type"),
                "set MATCH_TYPE_EQUAL, MATCH_TYPE_NOT_EQUAL, MATCH_TYPE_REGEX or MATCH_TYPE_NOT_REGEX",
            ));
        }
    };
    Matcher::new(match_type, matcher.name.clone(), matcher.value.as_str())
        .map_err(|error| invalid(field("value"), format!("not a regular expression: {error}")))
}

/// The running groups with their status, and the stored ones with their YAML (a stored group
/// that does not run is listed as not running), by file and name.
pub(crate) fn rule_groups(
    status: Vec<GroupStatus>,
    stored: Vec<RuleGroupRow>,
) -> Vec<pb::RuleGroup> {
    let mut stored: HashMap<(String, String), RuleGroupRow> = stored
        .into_iter()
        .map(|row| ((row.namespace.clone(), row.name.clone()), row))
        .collect();
    let mut groups: Vec<pb::RuleGroup> = status
        .into_iter()
        .map(|group| {
            let namespace = group
                .file
                .strip_prefix("db:")
                .map(str::to_owned)
                .unwrap_or_default();
            let row = if namespace.is_empty() {
                None
            } else {
                stored.remove(&(namespace.clone(), group.name.clone()))
            };
            pb::RuleGroup {
                file: group.file,
                name: group.name,
                namespace,
                interval_ms: duration_ms(group.interval),
                last_evaluation_ms: group.last_evaluation.map_or(0, millis),
                last_duration_us: i64::try_from(group.last_duration.as_micros())
                    .unwrap_or(i64::MAX),
                evaluations: group.evaluations,
                errors: group
                    .errors
                    .into_iter()
                    .map(|(rule, error)| pb::RuleError { rule, error })
                    .collect(),
                running: true,
                yaml: row.as_ref().map(|row| row.yaml.clone()).unwrap_or_default(),
                updated_at_ms: row.map_or(0, |row| row.updated_at_ms),
            }
        })
        .collect();
    groups.extend(stored.into_values().map(|row| pb::RuleGroup {
        file: format!("db:{}", row.namespace),
        name: row.name,
        namespace: row.namespace,
        running: false,
        yaml: row.yaml,
        updated_at_ms: row.updated_at_ms,
        ..pb::RuleGroup::default()
    }));
    groups.sort_by(|a, b| a.file.cmp(&b.file).then_with(|| a.name.cmp(&b.name)));
    groups
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn attempt(row: AttemptRow) -> pb::DeliveryAttempt {
    let outcome = match row.outcome.as_str() {
        "delivered" => pb::DeliveryOutcome::Delivered,
        "retry" => pb::DeliveryOutcome::Retry,
        "failed" => pb::DeliveryOutcome::Failed,
        _ => pb::DeliveryOutcome::Unspecified,
    };
    pb::DeliveryAttempt {
        idempotency_key: row.idempotency_key,
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        at_ms: row.at_ms,
        duration_ms: row.duration_ms,
        outcome: outcome as i32,
        http_status: row.http_status,
        error: row.error,
    }
}

pub(crate) fn dead_letter(row: DeadLetterRow) -> pb::DeadLetter {
    pb::DeadLetter {
        url: redact_url(&row.outbox.url),
        idempotency_key: row.outbox.idempotency_key,
        group_key: row.outbox.group_key,
        receiver: row.outbox.receiver,
        integration: row.outbox.integration,
        body: row.outbox.body,
        created_at_ms: row.outbox.created_at_ms,
        failed_at_ms: row.failed_at_ms,
        last_error: row.last_error,
    }
}

/// A receiver's URL without what may be a credential: the user information and the query.
fn redact_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(slash) => rest.split_at(slash),
                None => (rest, ""),
            };
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => without_query.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:secret@hooks.example.com/a/b?token=x#f"),
            "https://hooks.example.com/a/b"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/hook"),
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(redact_url("http://h"), "http://h");
    }

    #[test]
    fn limits_default_and_refuse_too_much() {
        assert_eq!(limit(0).ok(), Some(100));
        assert_eq!(limit(7).ok(), Some(7));
        assert!(matches!(
            limit(1001),
            Err(AlertError::InvalidArgument { field, .. }) if field == "limit"
        ));
    }

    #[test]
    fn bad_filter_matchers_are_named_by_index() {
        let parsed = filter_matchers(&["severity=\"page\"".to_owned(), "env!=prod".to_owned()])
            .expect("valid matchers");
        assert_eq!(parsed.len(), 2);
        let error = filter_matchers(&["a=\"1\"".to_owned(), "not a matcher".to_owned()])
            .expect_err("refused");
        assert!(
            matches!(&error, AlertError::InvalidArgument { field, .. } if field == "matchers[1]"),
            "{error}"
        );
    }

    fn request(matchers: Vec<pb::Matcher>, ends_at_ms: i64) -> pb::CreateSilenceRequest {
        pb::CreateSilenceRequest {
            matchers,
            ends_at_ms,
            comment: "maintenance".to_owned(),
            ..pb::CreateSilenceRequest::default()
        }
    }

    fn matcher(name: &str, value: &str, r#type: pb::MatchType) -> pb::Matcher {
        pb::Matcher {
            name: name.to_owned(),
            value: value.to_owned(),
            r#type: r#type as i32,
        }
    }

    #[test]
    fn silences_are_checked_field_by_field() {
        let now = time_from_millis(1_700_000_000_000);
        let later = 1_700_000_000_000 + 3_600_000;
        let silence = silence_from_request(
            request(
                vec![matcher("alertname", "DiskFull", pb::MatchType::Equal)],
                later,
            ),
            "ops",
            now,
        )
        .expect("a valid silence");
        assert_eq!(silence.created_by, "ops");
        assert_eq!(silence.starts_at, now);
        let field_of = |request| match silence_from_request(request, "ops", now) {
            Err(AlertError::InvalidArgument { field, .. }) => field,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            field_of(request(
                vec![matcher("a", "b", pb::MatchType::Unspecified)],
                later
            )),
            "matchers[0].type"
        );
        assert_eq!(
            field_of(request(
                vec![matcher("a", "(", pb::MatchType::Regex)],
                later
            )),
            "matchers[0].value"
        );
        assert_eq!(
            field_of(request(vec![matcher("a", "", pb::MatchType::Equal)], later)),
            "matchers"
        );
        assert_eq!(
            field_of(request(vec![matcher("a", "b", pb::MatchType::Equal)], 1)),
            "ends_at_ms"
        );
        assert_eq!(field_of(request(Vec::new(), later)), "matchers");
    }
}
