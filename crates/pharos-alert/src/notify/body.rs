//! The webhook message, version 4, byte for byte as Alertmanager 0.25 posts it
//! (`notify/webhook/webhook.go`'s `Message` around `template.Data`): [`WebhookMessage`], built
//! from a [`Notification`] by [`pages`], and encoded with Go's `encoding/json` conventions by
//! [`WebhookMessage::to_json`].
//!
//! Where Pharos differs: Alertmanager cuts a notification to `max_alerts` alerts and reports how
//! many it dropped in `truncatedAlerts`; Pharos sends every alert, in pages of at most
//! `max_alerts`, each page a complete message, so `truncatedAlerts` is always 0.

use std::collections::BTreeMap;
use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AlertStatus, Notification, NotifiedAlert};

/// The webhook protocol version Alertmanager 0.25 sends.
pub const VERSION: &str = "4";

/// One webhook POST body: `webhook.Message`, the fields of `template.Data` followed by
/// `version`, `groupKey` and `truncatedAlerts`, in Go's struct order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// The receiver's name, escaped with Go's `regexp.QuoteMeta` as `template.Data` does
    /// (`team.ops` is sent as `team\.ops`).
    pub receiver: String,
    /// `firing` when any alert of the message fires, else `resolved`.
    pub status: AlertStatus,
    pub alerts: Vec<WebhookAlert>,
    #[serde(rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    /// The label pairs every alert of this message shares.
    #[serde(rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    /// The annotation pairs every alert of this message shares.
    #[serde(rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always [`VERSION`].
    pub version: String,
    #[serde(rename = "groupKey")]
    pub group_key: String,
    /// Always 0 from Pharos, which pages instead of truncating.
    #[serde(rename = "truncatedAlerts")]
    pub truncated_alerts: u64,
}

/// One alert of a message: `template.Alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookAlert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", with = "go_time")]
    pub starts_at: DateTime<Utc>,
    /// `None` is Go's zero time, `0001-01-01T00:00:00Z`, on the wire.
    #[serde(rename = "endsAt", with = "go_time_or_zero")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The fingerprint of the labels, 16 lowercase hex digits.
    pub fingerprint: String,
}

impl WebhookMessage {
    /// The message for `alerts` (all of `notification.alerts`, or one page of them): status,
    /// common labels and common annotations are computed over `alerts` only, as
    /// `template.Data` computes them over the alerts it is given.
    pub fn new(notification: &Notification, alerts: &[NotifiedAlert]) -> Self {
        let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        WebhookMessage {
            receiver: quote_meta(&notification.receiver),
            status,
            alerts: alerts.iter().map(WebhookAlert::from).collect(),
            group_labels: notification.group_labels.clone(),
            common_labels: common_pairs(alerts.iter().map(|a| &a.labels)),
            common_annotations: common_pairs(alerts.iter().map(|a| &a.annotations)),
            external_url: notification.external_url.clone(),
            version: VERSION.to_owned(),
            group_key: notification.group_key.clone(),
            truncated_alerts: 0,
        }
    }

    /// The body as Alertmanager writes it with `json.NewEncoder(..).Encode(msg)`: compact,
    /// map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`-style sequences,
    /// control characters other than `\n`, `\r`, `\t` as `\u00XX`, and a final newline.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512 + 256 * self.alerts.len());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
        self.serialize(&mut serializer)?;
        out.push(b'\n');
        Ok(out)
    }
}

impl From<&NotifiedAlert> for WebhookAlert {
    fn from(alert: &NotifiedAlert) -> Self {
        WebhookAlert {
            status: alert.status,
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: alert.starts_at,
            ends_at: alert.ends_at,
            generator_url: alert.generator_url.clone(),
            fingerprint: alert.fingerprint.to_string(),
        }
    }
}

/// The messages that carry `notification`: its alerts in the given order, split into pages
/// of at most `max_alerts` (0: all in one), each a full message with its own status and
/// common labels. A notification without alerts still gives one (empty, `resolved`) message.
pub fn pages(notification: &Notification, max_alerts: u64) -> Vec<WebhookMessage> {
    let page_size = match usize::try_from(max_alerts) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(size) => size,
    };
    if notification.alerts.is_empty() {
        return vec![WebhookMessage::new(notification, &[])];
    }
    notification
        .alerts
        .chunks(page_size)
        .map(|page| WebhookMessage::new(notification, page))
        .collect()
}

/// The pairs every map shares. As in Go, a name missing from a map reads as the empty
/// string, so `x=""` in the first map survives a map without `x`.
fn common_pairs<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut common = first.clone();
    for map in maps {
        if common.is_empty() {
            break;
        }
        common.retain(|name, value| map.get(name).map_or("", String::as_str) == value);
    }
    common
}

/// Go's `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
fn quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Unix time of Go's zero `time.Time`, `0001-01-01T00:00:00Z`.
const GO_ZERO_UNIX_SECONDS: i64 = -62_135_596_800;

/// What Go's `time.Time.MarshalJSON` writes for a UTC time: RFC 3339 with the nanoseconds
/// and their trailing zeros dropped (`2026-12-06T10:00:00.5Z`, `2026-12-06T10:00:00Z`).
pub fn format_go_time(time: &DateTime<Utc>) -> String {
    let mut out = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = time.timestamp_subsec_nanos();
    if nanos > 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// An RFC 3339 time with any offset, as Go's `time.Time.UnmarshalJSON` reads it, in UTC.
pub fn parse_go_time(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc))
}

/// Serde for a `time.Time` field.
mod go_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_go_time(time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_go_time(&text)
            .map_err(|e| D::Error::custom(format_args!("invalid time {text:?}: {e}")))
    }
}

/// Serde for a `time.Time` field whose zero value means "none".
mod go_time_or_zero {
    use chrono::{DateTime, Utc};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => super::go_time::serialize(time, s),
            None => s.serialize_str("0001-01-01T00:00:00Z"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let time = super::go_time::deserialize(d)?;
        let is_zero =
            time.timestamp() == super::GO_ZERO_UNIX_SECONDS && time.timestamp_subsec_nanos() == 0;
        Ok((!is_zero).then_some(time))
    }
}

/// serde_json's compact output with the escapes Go's `encoding/json` (of Go 1.19, which built
/// Alertmanager 0.25) makes and serde_json does not: HTML characters, the JavaScript line
/// separators, and `\b` / `\f` written as `\u0008` / `\u000c`.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escape: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escape)?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::{CharEscape, CompactFormatter};
        match char_escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(writer, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use pharos_routing::labels::{Fingerprint, LabelSet};

    use super::*;

    fn pairs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn at(h: u32, m: u32, s: u32, nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, h, m, s)
            .single()
            .expect("a valid time")
            + chrono::Duration::nanoseconds(nanos.into())
    }

    fn alert(status: AlertStatus, labels: LabelSet, annotations: &[(&str, &str)]) -> NotifiedAlert {
        NotifiedAlert {
            status,
            fingerprint: pharos_routing::labels::fingerprint(&labels),
            labels,
            annotations: pairs(annotations),
            starts_at: at(10, 0, 0, 0),
            ends_at: None,
            generator_url: String::new(),
        }
    }

    fn notification(alerts: Vec<NotifiedAlert>) -> Notification {
        Notification {
            receiver: "team-x".to_owned(),
            group_key: "{}:{alertname=\"HighLatency\"}".to_owned(),
            group_labels: pairs(&[("alertname", "HighLatency")]),
            external_url: "http://pharos.example:9093".to_owned(),
            alerts,
        }
    }

    #[test]
    fn two_alerts_encode_as_alertmanager_does() {
        let firing = NotifiedAlert {
            status: AlertStatus::Firing,
            labels: pairs(&[
                ("alertname", "HighLatency"),
                ("instance", "a:9090"),
                ("severity", "page"),
            ]),
            annotations: pairs(&[
                ("runbook", "https://runbooks.example/x?a=1&b=2"),
                ("summary", "p99 > 1s"),
            ]),
            starts_at: at(10, 0, 0, 500_000_000),
            ends_at: None,
            generator_url: "http://prometheus.example/graph?g0.expr=up&g0.tab=1".to_owned(),
            fingerprint: Fingerprint(0x0123_4567_89ab_cdef),
        };
        let resolved = NotifiedAlert {
            status: AlertStatus::Resolved,
            labels: pairs(&[
                ("alertname", "HighLatency"),
                ("instance", "b:9090"),
                ("severity", "page"),
            ]),
            annotations: pairs(&[("summary", "p99 > 1s")]),
            starts_at: at(9, 0, 0, 0),
            ends_at: Some(at(10, 5, 0, 123_456_780)),
            generator_url: String::new(),
            fingerprint: Fingerprint(0xfe),
        };
        let mut notification = notification(vec![firing, resolved]);
        notification.receiver = "team-x.pager".to_owned();
        notification.group_key = "{}/{severity=\"page\"}:{alertname=\"HighLatency\"}".to_owned();

        let messages = pages(&notification, 0);
        assert_eq!(messages.len(), 1);
        let json = messages[0].to_json().expect("test setup");
        let expected = concat!(
            r#"{"receiver":"team-x\\.pager","status":"firing","alerts":["#,
            r#"{"status":"firing","labels":{"alertname":"HighLatency","instance":"a:9090","severity":"page"},"#,
            r#""annotations":{"runbook":"https://runbooks.example/x?a=1\u0026b=2","summary":"p99 \u003e 1s"},"#,
            r#""startsAt":"2026-12-06T10:00:00.5Z","endsAt":"0001-01-01T00:00:00Z","#,
            r#""generatorURL":"http://prometheus.example/graph?g0.expr=up\u0026g0.tab=1","fingerprint":"0123456789abcdef"},"#,
            r#"{"status":"resolved","labels":{"alertname":"HighLatency","instance":"b:9090","severity":"page"},"#,
            r#""annotations":{"summary":"p99 \u003e 1s"},"#,
            r#""startsAt":"2026-12-06T09:00:00Z","endsAt":"2026-12-06T10:05:00.12345678Z","#,
            r#""generatorURL":"","fingerprint":"00000000000000fe"}],"#,
            r#""groupLabels":{"alertname":"HighLatency"},"#,
            r#""commonLabels":{"alertname":"HighLatency","severity":"page"},"#,
            r#""commonAnnotations":{"summary":"p99 \u003e 1s"},"#,
            r#""externalURL":"http://pharos.example:9093","version":"4","#,
            r#""groupKey":"{}/{severity=\"page\"}:{alertname=\"HighLatency\"}","truncatedAlerts":0}"#,
            "\n",
        );
        assert_eq!(
            String::from_utf8(json.clone()).expect("test setup"),
            expected
        );

        // Receivers read it back, the zero time as no end.
        let parsed: WebhookMessage = serde_json::from_slice(&json).expect("test setup");
        assert_eq!(parsed, messages[0]);
        assert_eq!(parsed.alerts[0].ends_at, None);
        assert_eq!(parsed.alerts[1].ends_at, Some(at(10, 5, 0, 123_456_780)));
    }

    #[test]
    fn empty_maps_are_objects_and_all_resolved_is_resolved() {
        let mut a = alert(AlertStatus::Resolved, LabelSet::new(), &[]);
        a.ends_at = Some(at(11, 0, 0, 0));
        let mut notification = notification(vec![a]);
        notification.group_labels.clear();
        let message = &pages(&notification, 0)[0];
        assert_eq!(message.status, AlertStatus::Resolved);
        let json = String::from_utf8(message.to_json().expect("test setup")).expect("test setup");
        assert!(json.contains(r#""labels":{},"annotations":{}"#), "{json}");
        assert!(
            json.contains(r#""groupLabels":{},"commonLabels":{},"commonAnnotations":{}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""endsAt":"2026-12-06T11:00:00Z""#),
            "{json}"
        );
    }

    #[test]
    fn common_labels_and_annotations_are_the_shared_pairs() {
        let alerts = vec![
            alert(
                AlertStatus::Firing,
                pairs(&[
                    ("alertname", "Down"),
                    ("job", "api"),
                    ("zone", "a"),
                    ("empty", ""),
                ]),
                &[("summary", "down"), ("detail", "a")],
            ),
            alert(
                AlertStatus::Firing,
                pairs(&[("alertname", "Down"), ("job", "api"), ("zone", "b")]),
                &[("summary", "down"), ("detail", "b")],
            ),
            alert(
                AlertStatus::Resolved,
                pairs(&[("alertname", "Down"), ("job", "api")]),
                &[("summary", "down")],
            ),
        ];
        let message = &pages(&notification(alerts), 0)[0];
        assert_eq!(message.status, AlertStatus::Firing);
        // `empty=""` is shared: an absent label reads as the empty string, as in Go.
        assert_eq!(
            message.common_labels,
            pairs(&[("alertname", "Down"), ("empty", ""), ("job", "api")])
        );
        assert_eq!(message.common_annotations, pairs(&[("summary", "down")]));
    }

    #[test]
    fn pages_split_without_dropping_and_compute_each_page() {
        let alerts: Vec<NotifiedAlert> = (0..5)
            .map(|i| {
                let status = if i == 4 {
                    AlertStatus::Resolved
                } else {
                    AlertStatus::Firing
                };
                let mut labels = pairs(&[("alertname", "Down")]);
                labels.insert("instance".to_owned(), format!("host-{i}"));
                labels.insert("pair".to_owned(), (i / 2).to_string());
                alert(status, labels, &[])
            })
            .collect();
        let notification = notification(alerts.clone());

        let messages = pages(&notification, 2);
        assert_eq!(messages.len(), 3);
        let sent: Vec<WebhookAlert> = messages.iter().flat_map(|m| m.alerts.clone()).collect();
        let expected: Vec<WebhookAlert> = alerts.iter().map(WebhookAlert::from).collect();
        assert_eq!(sent, expected);
        assert_eq!(
            messages.iter().map(|m| m.alerts.len()).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        for (i, message) in messages.iter().enumerate() {
            assert_eq!(message.truncated_alerts, 0);
            assert_eq!(message.version, "4");
            assert_eq!(message.group_key, notification.group_key);
            assert_eq!(message.common_labels.get("pair"), Some(&i.to_string()));
        }
        assert_eq!(messages[0].status, AlertStatus::Firing);
        assert_eq!(messages[2].status, AlertStatus::Resolved);

        assert_eq!(pages(&notification, 0).len(), 1);
        assert_eq!(pages(&notification, 0)[0].alerts.len(), 5);
        assert_eq!(pages(&notification, 5).len(), 1);
        assert_eq!(pages(&notification, u64::MAX).len(), 1);
        let empty = self::notification(Vec::new());
        assert_eq!(pages(&empty, 2).len(), 1);
        assert_eq!(pages(&empty, 2)[0].status, AlertStatus::Resolved);
    }

    #[test]
    fn times_format_as_go_marshals_them() {
        assert_eq!(format_go_time(&at(10, 0, 0, 0)), "2026-12-06T10:00:00Z");
        assert_eq!(
            format_go_time(&at(10, 0, 0, 500_000_000)),
            "2026-12-06T10:00:00.5Z"
        );
        assert_eq!(
            format_go_time(&at(10, 0, 0, 1)),
            "2026-12-06T10:00:00.000000001Z"
        );
        assert_eq!(
            format_go_time(&at(10, 0, 0, 120_000)),
            "2026-12-06T10:00:00.00012Z"
        );
        assert_eq!(
            parse_go_time("2026-12-06T11:00:00.5+01:00").expect("test setup"),
            at(10, 0, 0, 500_000_000)
        );
    }

    #[test]
    fn go_escapes_control_and_html_characters() {
        let mut a = alert(
            AlertStatus::Firing,
            LabelSet::new(),
            &[("text", "<b>\u{8}\u{c}\n\t\u{1}\u{2028}é\"\\")],
        );
        a.generator_url = "/".to_owned();
        let json = String::from_utf8(
            pages(&notification(vec![a]), 0)[0]
                .to_json()
                .expect("test setup"),
        )
        .expect("test setup");
        assert!(
            json.contains(r#""text":"\u003cb\u003e\u0008\u000c\n\t\u0001\u2028é\"\\""#),
            "{json}"
        );
        assert!(json.contains(r#""generatorURL":"/""#), "{json}");
    }

    #[test]
    fn receiver_names_are_quoted_like_regexp_quote_meta() {
        assert_eq!(quote_meta("team-x"), "team-x");
        assert_eq!(
            quote_meta(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o"),
            r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"
        );
    }
}
