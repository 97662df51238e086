//! Silences with Alertmanager 0.25's semantics (`silence/silence.go`), held in memory: [`Silence`],
//! its [`SilenceState`] at a given time, and [`Silences`], the set keyed by id with
//! Alertmanager's rules to create, update in place or replace, expire, mute and garbage-collect.
//! Persistence is the caller's: [`Silences::set`] and [`Silences::expire`] return every silence
//! they changed, and [`matchers_to_json`] / [`matchers_from_json`] store matchers in the API's
//! shape.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use pharos_routing::labels::{LabelSet, go_quote, is_valid_label_name};
use pharos_routing::matcher::{MatchType, Matcher};
use serde::{Deserialize, Serialize};

/// One silence: alerts whose labels satisfy every matcher are muted while it is active.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// A UUID v4 given by [`Silences::set`]; empty on a silence that is yet to be created.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// When the silence was last created, updated or expired.
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// The state at `now`, as `getState` decides it: pending before the start, expired after
    /// the end, active in between (both ends included).
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether every matcher holds for the label set, an absent label read as `""`
    /// (`labels.Matchers.Matches`).
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matchers.iter().all(|matcher| {
            matcher.matches(labels.get(matcher.name()).map(String::as_str).unwrap_or(""))
        })
    }
}

/// Where a silence stands in time; serialises as Alertmanager's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Expired,
    Active,
    Pending,
}

impl SilenceState {
    /// `expired`, `active` or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Active => "active",
            Self::Pending => "pending",
        }
    }
}

impl std::fmt::Display for SilenceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a silence was refused, in Alertmanager's words (the API v2 sends these texts as they
/// are: 400 for [`SilenceError::Invalid`], 404 for [`SilenceError::NotFound`]).
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The silence breaks a rule of `validateSilence`; the reason is Alertmanager's text
    /// (`at least one matcher required`).
    #[error("silence invalid: {0}")]
    Invalid(String),
    /// No silence has this id (`silence.ErrNotFound`).
    #[error("silence not found")]
    NotFound(String),
    /// The silence to expire has already ended.
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
}

/// The silences, keyed by id. Expired silences stay until [`Silences::gc`] drops them, so that
/// the API can still show them.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

impl Silences {
    /// No silences.
    pub fn new() -> Self {
        Self::default()
    }

    /// The silences as stored (not validated again, as Alertmanager loads its snapshot).
    pub fn from_silences(silences: Vec<Silence>) -> Self {
        Self {
            by_id: silences
                .into_iter()
                .map(|silence| (silence.id.clone(), silence))
                .collect(),
        }
    }

    /// Alertmanager's `validateSilence`: at least one matcher; valid label names; at least
    /// one matcher that does not match the empty string (an `=` with an empty value or a `=~`
    /// whose regular expression matches `""`; `!=` and `!~` never count as matching it); no
    /// zero timestamps; the end not before the start. Neither the creator nor the comment is
    /// checked (the API requires the fields, not that they hold text), nor the id, which
    /// [`Silences::set`] gives. Regular expressions were compiled when the matchers were made.
    pub fn validate(silence: &Silence) -> Result<(), SilenceError> {
        if silence.matchers.is_empty() {
            return Err(invalid("at least one matcher required"));
        }
        let mut all_match_empty = true;
        for (index, matcher) in silence.matchers.iter().enumerate() {
            if !is_valid_label_name(matcher.name()) {
                return Err(invalid(format!(
                    "invalid label matcher {index}: invalid label name {}",
                    go_quote(matcher.name())
                )));
            }
            all_match_empty = all_match_empty && matches_empty(matcher);
        }
        if all_match_empty {
            return Err(invalid(
                "at least one matcher must not match the empty string",
            ));
        }
        if is_go_zero_time(silence.starts_at) {
            return Err(invalid("invalid zero start timestamp"));
        }
        if is_go_zero_time(silence.ends_at) {
            return Err(invalid("invalid zero end timestamp"));
        }
        if silence.ends_at < silence.starts_at {
            return Err(invalid("end time must not be before start time"));
        }
        Ok(())
    }

    /// Creates a silence (empty id) or updates one; returns the silence's id and every silence
    /// that changed, to persist.
    ///
    /// As Alertmanager's `Set`: an id that is not known is [`SilenceError::NotFound`]. A known
    /// silence is updated in place when `canUpdate` allows it: same matchers in the same order
    /// and, if it is active, the same start (to the second) and an end not in the past, or, if
    /// it is pending, a start not in the past. Otherwise the old silence is expired (unless it
    /// already is) and the new one gets a new id. A new silence that would start in the past
    /// starts at `now`. `updated_at` is `now`. Unlike Alertmanager 0.25, which expired the old
    /// silence before it validated the new one, an invalid replacement leaves the old silence
    /// as it was (as later Alertmanager versions do).
    pub fn set(
        &mut self,
        mut silence: Silence,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<Silence>), SilenceError> {
        let previous = if silence.id.is_empty() {
            None
        } else {
            match self.by_id.get(&silence.id) {
                Some(previous) => Some(previous.clone()),
                None => return Err(SilenceError::NotFound(silence.id)),
            }
        };

        if let Some(previous) = &previous
            && can_update(previous, &silence, now)
        {
            silence.updated_at = now;
            Self::validate(&silence)?;
            let id = silence.id.clone();
            self.by_id.insert(id.clone(), silence.clone());
            return Ok((id, vec![silence]));
        }

        silence.id = uuid::Uuid::new_v4().to_string();
        if silence.starts_at < now {
            silence.starts_at = now;
        }
        silence.updated_at = now;
        Self::validate(&silence)?;

        let mut changed = Vec::with_capacity(2);
        if let Some(previous) = previous
            && previous.state(now) != SilenceState::Expired
        {
            let expired = expired_at(previous, now);
            self.by_id.insert(expired.id.clone(), expired.clone());
            changed.push(expired);
        }
        let id = silence.id.clone();
        self.by_id.insert(id.clone(), silence.clone());
        changed.push(silence);
        Ok((id, changed))
    }

    /// Expires a silence now, as Alertmanager's `expire`: an active silence ends now; a pending
    /// one starts and ends now; an expired one is [`SilenceError::AlreadyExpired`]. Returns the
    /// silence as it now is, to persist.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
        let Some(silence) = self.by_id.get(id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        if silence.state(now) == SilenceState::Expired {
            return Err(SilenceError::AlreadyExpired(id.to_string()));
        }
        let expired = expired_at(silence.clone(), now);
        self.by_id.insert(expired.id.clone(), expired.clone());
        Ok(expired)
    }

    /// The silence with this id, expired ones included until collected.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Every silence, in id order.
    pub fn all(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// How many silences are held, expired ones included.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no silence is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The ids of the active silences that match `labels` at `now`, sorted (the `silencedBy`
    /// of an alert). The alert is muted when the list is not empty.
    pub fn mutes(&self, labels: &LabelSet, now: DateTime<Utc>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .values()
            .filter(|silence| silence.state(now) == SilenceState::Active)
            .filter(|silence| silence.matches(labels))
            .map(|silence| silence.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Drops the silences that ended at least `retention` before `now` (Alertmanager's `GC`:
    /// a silence lives until `ends_at + retention`, 120h by default); returns the dropped ids,
    /// sorted.
    pub fn gc(&mut self, now: DateTime<Utc>, retention: Duration) -> Vec<String> {
        let mut dropped = Vec::new();
        self.by_id.retain(|id, silence| {
            let keep = match silence.ends_at.checked_add_signed(retention) {
                Some(expires_at) => expires_at > now,
                // Out of range: the silence never expires.
                None => true,
            };
            if !keep {
                dropped.push(id.clone());
            }
            keep
        });
        dropped
    }
}

fn invalid(reason: impl Into<String>) -> SilenceError {
    SilenceError::Invalid(reason.into())
}

/// `matchesEmpty`: only `=` with an empty value and `=~` whose expression matches `""` count.
fn matches_empty(matcher: &Matcher) -> bool {
    match matcher.match_type() {
        MatchType::Equal => matcher.value().is_empty(),
        MatchType::Regexp => matcher.matches(""),
        MatchType::NotEqual | MatchType::NotRegexp => false,
    }
}

/// `canUpdate`: whether `new` may replace `old` in place without rewriting history.
fn can_update(old: &Silence, new: &Silence, now: DateTime<Utc>) -> bool {
    if old.matchers != new.matchers {
        return false;
    }
    match old.state(now) {
        // The API carries milliseconds: the start only has to be the same second.
        SilenceState::Active => {
            new.starts_at.timestamp() == old.starts_at.timestamp() && new.ends_at >= now
        }
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// The silence expired at `now` (it must be active or pending).
fn expired_at(mut silence: Silence, now: DateTime<Utc>) -> Silence {
    if silence.state(now) == SilenceState::Pending {
        silence.starts_at = now;
    }
    silence.ends_at = now;
    silence.updated_at = now;
    silence
}

/// Whether `time` is Go's zero time (`0001-01-01T00:00:00Z`), which Alertmanager treats as
/// "not set".
pub(crate) fn is_go_zero_time(time: DateTime<Utc>) -> bool {
    time.year() == 1
        && time.ordinal() == 1
        && time.num_seconds_from_midnight() == 0
        && time.nanosecond() == 0
}

/// A matcher as the API (and the stored form) writes it.
#[derive(Serialize, Deserialize)]
struct StoredMatcher {
    name: String,
    value: String,
    #[serde(rename = "isRegex")]
    is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

/// The matchers as JSON in the API's shape:
/// `[{"name":"a","value":"b","isRegex":false,"isEqual":true}]`.
pub fn matchers_to_json(matchers: &[Matcher]) -> String {
    let stored: Vec<StoredMatcher> = matchers
        .iter()
        .map(|matcher| {
            let match_type = matcher.match_type();
            StoredMatcher {
                name: matcher.name().to_string(),
                value: matcher.value().to_string(),
                is_regex: matches!(match_type, MatchType::Regexp | MatchType::NotRegexp),
                is_equal: matches!(match_type, MatchType::Equal | MatchType::Regexp),
            }
        })
        .collect();
    // A list of plain structs with string keys always serialises.
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_string())
}

/// Reads matchers written by [`matchers_to_json`] (`isEqual` defaults to true when absent).
pub fn matchers_from_json(json: &str) -> Result<Vec<Matcher>, SilenceError> {
    let stored: Vec<StoredMatcher> = serde_json::from_str(json)
        .map_err(|error| invalid(format!("reading matchers: {error}")))?;
    stored
        .into_iter()
        .enumerate()
        .map(|(index, matcher)| {
            matcher_from_flags(
                index,
                matcher.name,
                matcher.value,
                matcher.is_regex,
                matcher.is_equal,
            )
        })
        .collect()
}

/// The match type of the API's `isRegex` / `isEqual` flags (`PostableSilenceToProto`).
pub fn match_type_from_flags(is_regex: bool, is_equal: bool) -> MatchType {
    match (is_regex, is_equal) {
        (false, true) => MatchType::Equal,
        (false, false) => MatchType::NotEqual,
        (true, true) => MatchType::Regexp,
        (true, false) => MatchType::NotRegexp,
    }
}

/// Builds the `index`th matcher of a silence from the API's flags; a regular expression that
/// does not compile is refused in `validateMatcher`'s words.
fn matcher_from_flags(
    index: usize,
    name: String,
    value: String,
    is_regex: bool,
    is_equal: bool,
) -> Result<Matcher, SilenceError> {
    let match_type = match_type_from_flags(is_regex, is_equal);
    Matcher::new(match_type, name, value.as_str()).map_err(|error| {
        invalid(format!(
            "invalid label matcher {index}: invalid regular expression {}: {error}",
            go_quote(&value)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;
    use pharos_routing::labels::label_set;

    fn at(minute: i64) -> DateTime<Utc> {
        let base = Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).single();
        base.map(|base| base + Duration::minutes(minute))
            .unwrap_or_default()
    }

    fn matcher(match_type: MatchType, name: &str, value: &str) -> Matcher {
        Matcher::new(match_type, name, value).expect("should succeed")
    }

    fn silence(matchers: Vec<Matcher>, starts: i64, ends: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers,
            starts_at: at(starts),
            ends_at: at(ends),
            updated_at: at(-1000),
            created_by: "ops".to_string(),
            comment: "maintenance".to_string(),
        }
    }

    fn job_api() -> Vec<Matcher> {
        vec![matcher(MatchType::Equal, "job", "api")]
    }

    fn invalid_reason(result: Result<(), SilenceError>) -> String {
        match result {
            Err(SilenceError::Invalid(reason)) => reason,
            other => panic!("expected an invalid silence, got {other:?}"),
        }
    }

    #[test]
    fn state_includes_both_ends() {
        let s = silence(job_api(), 0, 10);
        assert_eq!(s.state(at(-1)), SilenceState::Pending);
        assert_eq!(s.state(at(0)), SilenceState::Active);
        assert_eq!(s.state(at(10)), SilenceState::Active);
        assert_eq!(s.state(at(11)), SilenceState::Expired);
        assert_eq!(SilenceState::Pending.as_str(), "pending");
        assert_eq!(SilenceState::Active.to_string(), "active");
        assert_eq!(
            serde_json::to_string(&SilenceState::Expired).expect("should succeed"),
            r#""expired""#
        );
    }

    #[test]
    fn create_gives_a_uuid_and_starts_now_when_start_is_past() {
        let mut silences = Silences::new();
        let (id, changed) = silences
            .set(silence(job_api(), -5, 60), at(0))
            .expect("should succeed");
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_eq!(changed.len(), 1);
        let stored = silences.get(&id).expect("should succeed");
        assert_eq!(stored, &changed[0]);
        assert_eq!(stored.starts_at, at(0));
        assert_eq!(stored.ends_at, at(60));
        assert_eq!(stored.updated_at, at(0));
        assert_eq!(stored.state(at(0)), SilenceState::Active);

        // A start in the future is kept.
        let (id, _) = silences
            .set(silence(job_api(), 30, 60), at(0))
            .expect("should succeed");
        assert_eq!(silences.get(&id).expect("should succeed").starts_at, at(30));
        assert_eq!(silences.len(), 2);
    }

    #[test]
    fn unknown_id_is_not_found() {
        let mut silences = Silences::new();
        let mut s = silence(job_api(), 0, 60);
        s.id = "nope".to_string();
        let err = silences.set(s, at(0)).expect_err("should fail");
        assert!(matches!(&err, SilenceError::NotFound(id) if id == "nope"));
        assert_eq!(err.to_string(), "silence not found");
        assert!(silences.is_empty());
    }

    #[test]
    fn active_silence_updates_in_place_when_start_and_matchers_stay() {
        let mut silences = Silences::new();
        let (id, _) = silences
            .set(silence(job_api(), 0, 60), at(0))
            .expect("should succeed");
        let mut update = silences.get(&id).expect("should succeed").clone();
        update.ends_at = at(120);
        update.comment = "longer".to_string();
        // The API carries milliseconds: a start within the same second still counts.
        update.starts_at += Duration::milliseconds(400);
        let (same, changed) = silences.set(update, at(10)).expect("should succeed");
        assert_eq!(same, id);
        assert_eq!(changed.len(), 1);
        let stored = silences.get(&id).expect("should succeed");
        assert_eq!(stored.ends_at, at(120));
        assert_eq!(stored.comment, "longer");
        assert_eq!(stored.updated_at, at(10));
        assert_eq!(silences.len(), 1);
    }

    #[test]
    fn active_silence_is_replaced_when_matchers_or_start_change() {
        let mut silences = Silences::new();
        let (id, _) = silences
            .set(silence(job_api(), 0, 60), at(0))
            .expect("should succeed");

        let mut update = silences.get(&id).expect("should succeed").clone();
        update.matchers = vec![matcher(MatchType::Equal, "job", "web")];
        let (new_id, changed) = silences.set(update, at(10)).expect("should succeed");
        assert_ne!(new_id, id);
        assert_eq!(changed.len(), 2);
        let old = silences.get(&id).expect("should succeed");
        assert_eq!(old.ends_at, at(10));
        assert_eq!(old.updated_at, at(10));
        assert_eq!(old, &changed[0]);
        let new = silences.get(&new_id).expect("should succeed");
        assert_eq!(new, &changed[1]);
        // The replacement would have started in the past: it starts now.
        assert_eq!(new.starts_at, at(10));

        // Moving the start of an active silence replaces it too.
        let mut update = silences.get(&new_id).expect("should succeed").clone();
        update.starts_at = at(5);
        let (third, changed) = silences.set(update, at(20)).expect("should succeed");
        assert_ne!(third, new_id);
        assert_eq!(changed.len(), 2);
        assert_eq!(
            silences.get(&new_id).expect("should succeed").ends_at,
            at(20)
        );

        // An end in the past cannot update in place, and the replacement (starting now) would
        // end before it starts: refused, the silence stays as it was.
        let before = silences.get(&third).expect("should succeed").clone();
        let mut update = before.clone();
        update.ends_at = at(25);
        let err = silences.set(update, at(30)).expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "silence invalid: end time must not be before start time"
        );
        assert_eq!(silences.get(&third), Some(&before));

        // Extending it is an update in place.
        let mut update = before.clone();
        update.ends_at = at(90);
        let (same, _) = silences.set(update, at(30)).expect("should succeed");
        assert_eq!(same, third);
        assert_eq!(silences.len(), 3);
    }

    #[test]
    fn pending_silence_updates_in_place_unless_it_would_start_in_the_past() {
        let mut silences = Silences::new();
        let (id, _) = silences
            .set(silence(job_api(), 30, 60), at(0))
            .expect("should succeed");
        let mut update = silences.get(&id).expect("should succeed").clone();
        update.starts_at = at(40);
        update.ends_at = at(90);
        let (same, changed) = silences.set(update, at(5)).expect("should succeed");
        assert_eq!(same, id);
        assert_eq!(changed.len(), 1);
        assert_eq!(silences.get(&id).expect("should succeed").starts_at, at(40));

        let mut update = silences.get(&id).expect("should succeed").clone();
        update.starts_at = at(1);
        let (new_id, changed) = silences.set(update, at(10)).expect("should succeed");
        assert_ne!(new_id, id);
        assert_eq!(changed.len(), 2);
        // The pending one was expired: it starts and ends now.
        let old = silences.get(&id).expect("should succeed");
        assert_eq!((old.starts_at, old.ends_at), (at(10), at(10)));
        assert_eq!(
            silences.get(&new_id).expect("should succeed").starts_at,
            at(10)
        );
    }

    #[test]
    fn expired_silence_is_never_updated_and_stays_as_it_was() {
        let mut silences = Silences::new();
        let (id, _) = silences
            .set(silence(job_api(), 0, 10), at(0))
            .expect("should succeed");
        let before = silences.get(&id).expect("should succeed").clone();
        let mut update = before.clone();
        update.ends_at = at(100);
        let (new_id, changed) = silences.set(update, at(20)).expect("should succeed");
        assert_ne!(new_id, id);
        assert_eq!(changed.len(), 1, "only the new silence changed");
        assert_eq!(silences.get(&id), Some(&before));
        assert_eq!(
            silences.get(&new_id).expect("should succeed").starts_at,
            at(20)
        );
    }

    #[test]
    fn invalid_replacement_keeps_the_old_silence() {
        let mut silences = Silences::new();
        let (id, _) = silences
            .set(silence(job_api(), 0, 60), at(0))
            .expect("should succeed");
        let before = silences.get(&id).expect("should succeed").clone();
        let mut update = before.clone();
        update.matchers = vec![matcher(MatchType::Equal, "job", "")];
        let err = silences.set(update, at(10)).expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "silence invalid: at least one matcher must not match the empty string"
        );
        assert_eq!(silences.get(&id), Some(&before));
        assert_eq!(silences.len(), 1);
    }

    #[test]
    fn new_silence_ending_in_the_past_is_invalid() {
        let mut silences = Silences::new();
        let err = silences
            .set(silence(job_api(), -20, -10), at(0))
            .expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "silence invalid: end time must not be before start time"
        );
        assert!(silences.is_empty());
    }

    #[test]
    fn expire_in_each_state() {
        let mut silences = Silences::new();
        let (active, _) = silences
            .set(silence(job_api(), 0, 60), at(0))
            .expect("should succeed");
        let (pending, _) = silences
            .set(silence(job_api(), 30, 60), at(0))
            .expect("should succeed");

        let expired = silences.expire(&active, at(10)).expect("should succeed");
        assert_eq!((expired.starts_at, expired.ends_at), (at(0), at(10)));
        assert_eq!(expired.updated_at, at(10));
        assert_eq!(silences.get(&active), Some(&expired));

        let expired = silences.expire(&pending, at(10)).expect("should succeed");
        assert_eq!((expired.starts_at, expired.ends_at), (at(10), at(10)));
        assert_eq!(expired.state(at(11)), SilenceState::Expired);

        let err = silences.expire(&active, at(11)).expect_err("should fail");
        assert!(matches!(&err, SilenceError::AlreadyExpired(id) if id == &active));
        assert_eq!(err.to_string(), format!("silence {active} already expired"));

        let err = silences.expire("nope", at(11)).expect_err("should fail");
        assert!(matches!(err, SilenceError::NotFound(_)));
    }

    #[test]
    fn mutes_with_every_operator() {
        let mut silences = Silences::new();
        let mut set = |matchers: Vec<Matcher>| silences.set(silence(matchers, 0, 60), at(0));
        let equal = set(job_api()).expect("should succeed").0;
        let not_equal = set(vec![
            matcher(MatchType::Equal, "alertname", "Down"),
            matcher(MatchType::NotEqual, "env", "prod"),
        ])
        .expect("should succeed")
        .0;
        let regex = set(vec![matcher(MatchType::Regexp, "instance", "db-[0-9]+")])
            .expect("should succeed")
            .0;
        let not_regex = set(vec![
            matcher(MatchType::Equal, "alertname", "Down"),
            matcher(MatchType::NotRegexp, "team", "sre|ops"),
        ])
        .expect("should succeed")
        .0;

        let labels = label_set(&[("job", "api"), ("alertname", "Other")]);
        assert_eq!(silences.mutes(&labels, at(1)), vec![equal.clone()]);

        // `env` absent reads as "", which differs from "prod"; `team` absent does not match.
        let labels = label_set(&[("alertname", "Down")]);
        let mut both = vec![not_equal.clone(), not_regex.clone()];
        both.sort();
        assert_eq!(silences.mutes(&labels, at(1)), both);

        let labels = label_set(&[("alertname", "Down"), ("env", "prod"), ("team", "sre")]);
        assert!(silences.mutes(&labels, at(1)).is_empty());

        // Regular expressions are anchored.
        let labels = label_set(&[("instance", "db-12")]);
        assert_eq!(silences.mutes(&labels, at(1)), vec![regex.clone()]);
        let labels = label_set(&[("instance", "db-12.example")]);
        assert!(silences.mutes(&labels, at(1)).is_empty());

        // Only active silences mute.
        let labels = label_set(&[("job", "api")]);
        assert!(silences.mutes(&labels, at(61)).is_empty());
        assert!(silences.mutes(&labels, at(-1)).is_empty());
        assert_eq!(silences.mutes(&labels, at(60)), vec![equal]);
    }

    #[test]
    fn mutes_returns_sorted_ids() {
        let mut silences = Silences::new();
        for _ in 0..5 {
            silences
                .set(silence(job_api(), 0, 60), at(0))
                .expect("should succeed");
        }
        let ids = silences.mutes(&label_set(&[("job", "api")]), at(1));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids.len(), 5);
        assert_eq!(ids, sorted);
    }

    #[test]
    fn validation_messages_are_alertmanagers() {
        let check =
            |matchers: Vec<Matcher>| invalid_reason(Silences::validate(&silence(matchers, 0, 60)));
        assert_eq!(check(vec![]), "at least one matcher required");
        assert_eq!(
            check(vec![matcher(MatchType::Equal, "in-valid", "x")]),
            r#"invalid label matcher 0: invalid label name "in-valid""#
        );
        assert_eq!(
            check(vec![
                matcher(MatchType::Equal, "a", "x"),
                matcher(MatchType::Equal, "9a", "x"),
            ]),
            r#"invalid label matcher 1: invalid label name "9a""#
        );
        let empty = "at least one matcher must not match the empty string";
        assert_eq!(check(vec![matcher(MatchType::Equal, "a", "")]), empty);
        assert_eq!(check(vec![matcher(MatchType::Regexp, "a", ".*")]), empty);
        assert_eq!(
            check(vec![
                matcher(MatchType::Regexp, "a", "x|"),
                matcher(MatchType::Equal, "b", ""),
            ]),
            empty
        );
        // `!=` and `!~` never count as matching the empty string, whatever their value.
        assert!(
            Silences::validate(&silence(
                vec![matcher(MatchType::NotEqual, "a", "x")],
                0,
                60
            ))
            .is_ok()
        );
        assert!(
            Silences::validate(&silence(
                vec![matcher(MatchType::NotRegexp, "a", "")],
                0,
                60
            ))
            .is_ok()
        );
        assert!(
            Silences::validate(&silence(vec![matcher(MatchType::Regexp, "a", ".+")], 0, 60))
                .is_ok()
        );
        assert!(
            Silences::validate(&silence(
                vec![
                    matcher(MatchType::Equal, "a", ""),
                    matcher(MatchType::Equal, "b", "x")
                ],
                0,
                60
            ))
            .is_ok()
        );

        assert_eq!(
            invalid_reason(Silences::validate(&silence(job_api(), 10, 5))),
            "end time must not be before start time"
        );
        assert!(Silences::validate(&silence(job_api(), 10, 10)).is_ok());

        let zero = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z")
            .expect("should succeed")
            .with_timezone(&Utc);
        let mut s = silence(job_api(), 0, 60);
        s.starts_at = zero;
        assert_eq!(
            invalid_reason(Silences::validate(&s)),
            "invalid zero start timestamp"
        );
        let mut s = silence(job_api(), 0, 60);
        s.ends_at = zero;
        assert_eq!(
            invalid_reason(Silences::validate(&s)),
            "invalid zero end timestamp"
        );

        // Creator and comment may be empty.
        let mut s = silence(job_api(), 0, 60);
        s.created_by.clear();
        s.comment.clear();
        assert!(Silences::validate(&s).is_ok());
        assert_eq!(
            SilenceError::Invalid("x".to_string()).to_string(),
            "silence invalid: x"
        );
    }

    #[test]
    fn gc_drops_silences_ended_longer_than_retention_ago() {
        let mut silences = Silences::new();
        let (old, _) = silences
            .set(silence(job_api(), 0, 10), at(0))
            .expect("should succeed");
        let (recent, _) = silences
            .set(silence(job_api(), 0, 50), at(0))
            .expect("should succeed");
        let (active, _) = silences
            .set(silence(job_api(), 0, 500), at(0))
            .expect("should succeed");
        let retention = Duration::minutes(60);

        assert!(silences.gc(at(69), retention).is_empty());
        // Collected once `ends_at + retention` is reached, as Alertmanager's GC does.
        assert_eq!(silences.gc(at(70), retention), vec![old.clone()]);
        assert!(silences.get(&old).is_none());
        assert!(silences.get(&recent).is_some());
        assert_eq!(silences.gc(at(200), retention), vec![recent]);
        assert_eq!(
            silences.all().map(|s| s.id.clone()).collect::<Vec<_>>(),
            vec![active]
        );
    }

    #[test]
    fn from_silences_keys_by_id() {
        let mut a = silence(job_api(), 0, 10);
        a.id = "b".to_string();
        let mut b = silence(job_api(), 0, 10);
        b.id = "a".to_string();
        let silences = Silences::from_silences(vec![a.clone(), b.clone()]);
        assert_eq!(silences.get("b"), Some(&a));
        let ids: Vec<&str> = silences.all().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
    }

    #[test]
    fn matchers_round_trip_through_json() {
        let matchers = vec![
            matcher(MatchType::Equal, "a", "1"),
            matcher(MatchType::NotEqual, "b", "2"),
            matcher(MatchType::Regexp, "c", "x|y"),
            matcher(MatchType::NotRegexp, "d", "\"q\""),
        ];
        let json = matchers_to_json(&matchers);
        assert_eq!(
            json,
            r#"[{"name":"a","value":"1","isRegex":false,"isEqual":true},{"name":"b","value":"2","isRegex":false,"isEqual":false},{"name":"c","value":"x|y","isRegex":true,"isEqual":true},{"name":"d","value":"\"q\"","isRegex":true,"isEqual":false}]"#
        );
        assert_eq!(matchers_from_json(&json).expect("should succeed"), matchers);
        assert_eq!(matchers_to_json(&[]), "[]");
    }

    #[test]
    fn matchers_from_json_defaults_and_errors() {
        let read = matchers_from_json(r#"[{"name":"a","value":"x","isRegex":true}]"#)
            .expect("should succeed");
        assert_eq!(read, vec![matcher(MatchType::Regexp, "a", "x")]);

        let err = matchers_from_json(
            r#"[{"name":"a","value":"x","isRegex":false},{"name":"b","value":"(","isRegex":true}]"#,
        )
        .expect_err("should fail")
        .to_string();
        assert!(
            err.starts_with(
                r#"silence invalid: invalid label matcher 1: invalid regular expression "(": "#
            ),
            "{err}"
        );
        assert!(matches!(
            matchers_from_json("{}"),
            Err(SilenceError::Invalid(_))
        ));
        assert!(matchers_from_json(r#"[{"name":"a","value":"x"}]"#).is_err());
    }
}
