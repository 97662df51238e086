//! `pharos alert ...`: a gRPC client of the alert service (`pharos.alert.v1.AlertService`) for
//! people: `list` the firing alerts, `ack` one, `silence add|list|expire`, `rules
//! list|put|delete` for the rule groups stored in the database, and `deliveries` (webhook
//! attempts, or dead letters with `--dead`). Output is an aligned table, or JSON lines with
//! `--json`.
//!
//! `pharos alert check-config FILE...` needs no server: it reads Alertmanager configuration
//! files as the alert service reads its `alert.routing_file` (Alertmanager 0.25's format and
//! checks, with the receivers Pharos delivers to), and prints what `amtool check-config`
//! prints for each.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use pharos_api::client::{ClientInterceptor, MAX_DECODING_MESSAGE_BYTES};
use pharos_proto::alert::v1 as pb;
use pharos_proto::alert::v1::alert_service_client::AlertServiceClient;
use serde_json::json;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::status_error;

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[command(flatten)]
    pub client: crate::cli::ClientArgs,
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// List the firing alerts with their fingerprints, states and acknowledgements.
    List {
        /// Only alerts matching this label matcher (repeatable, all must hold):
        /// --filter severity=page --filter 'instance=~"db-.*"'
        #[arg(long = "filter")]
        filters: Vec<String>,
        /// Only alerts routed to a receiver matching this regular expression.
        #[arg(long)]
        receiver: Option<String>,
        /// Leave out alerts muted by a silence.
        #[arg(long)]
        no_silenced: bool,
        /// Leave out alerts inhibited by another alert.
        #[arg(long)]
        no_inhibited: bool,
    },
    /// Acknowledge a firing alert: it stops repeating until it resolves.
    Ack {
        /// The alert's fingerprint, as `pharos alert list` shows it.
        fingerprint: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Add, list and expire silences.
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// List the running rule groups; store and delete rule groups in the database.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Show webhook delivery attempts, newest first (or, with --dead, the notifications
    /// given up on).
    Deliveries {
        /// Only the attempts of this notification (its Idempotency-Key).
        #[arg(long)]
        key: Option<String>,
        /// Show the dead letters instead of the attempts.
        #[arg(long, conflicts_with = "key")]
        dead: bool,
        /// At most this many (up to 1000) [default: 100].
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Check Alertmanager configuration files (route tree, receivers, inhibit rules, time
    /// intervals) as the alert service would load them (no server needed).
    CheckConfig {
        /// Alertmanager configuration files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts matching every matcher: alertname=DiskFull 'instance=~"db-.*"'.
    Add {
        /// Label matchers: name=value, name!=value, name=~regex, name!~regex.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long the silence lasts from now: 30m, 2h, 1d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// Who silences [default: the identity the server knows you by: your token's name,
        /// else $USER].
        #[arg(long, default_value = "")]
        author: String,
    },
    /// List the active and pending silences (and the expired ones with --expired).
    List {
        /// Include expired silences.
        #[arg(long)]
        expired: bool,
    },
    /// End silences now.
    Expire {
        /// Silence ids, as `pharos alert silence list` shows them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List every running rule group (rule files and database) with its last evaluation.
    List,
    /// Store a rule group in the database from a rule file holding one group; it runs at once.
    Put {
        /// Groups the stored groups: 1 to 128 of [A-Za-z0-9_.-].
        namespace: String,
        /// A Prometheus rule file (YAML) with exactly one group.
        file: PathBuf,
    },
    /// Delete a rule group stored in the database.
    Delete { namespace: String, name: String },
}

type Client = AlertServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// Runs a `pharos alert` command.
pub async fn run_alert(args: AlertArgs) -> anyhow::Result<()> {
    if let AlertCommand::CheckConfig { files } = &args.command {
        return check_config(files);
    }
    let settings = args.client.settings(std::env::var("USER").ok());
    let channel = settings.connect().await?;
    let mut client = AlertServiceClient::with_interceptor(channel, settings.interceptor()?)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES);
    let out = Output {
        json: args.client.json,
        endpoint: args.client.endpoint.clone(),
    };
    match args.command {
        AlertCommand::List {
            filters,
            receiver,
            no_silenced,
            no_inhibited,
        } => {
            let request = pb::ListAlertsRequest {
                matchers: filters,
                exclude_silenced: no_silenced,
                exclude_inhibited: no_inhibited,
                exclude_active: false,
                receiver: receiver.unwrap_or_default(),
            };
            let alerts = client
                .list_alerts(request)
                .await
                .map_err(|status| out.failed(status, "fix the --filter or --receiver named above"))?
                .into_inner()
                .alerts;
            out.alerts(&alerts);
        }
        AlertCommand::Ack {
            fingerprint,
            comment,
        } => ack(&mut client, &out, fingerprint, comment).await?,
        AlertCommand::Silence { command } => silence(&mut client, &out, command).await?,
        AlertCommand::Rules { command } => rules(&mut client, &out, command).await?,
        AlertCommand::Deliveries { key, dead, limit } => {
            deliveries(&mut client, &out, key, dead, limit.unwrap_or(0)).await?;
        }
        AlertCommand::CheckConfig { .. } => {}
    }
    Ok(())
}

async fn ack(
    client: &mut Client,
    out: &Output,
    fingerprint: String,
    comment: String,
) -> anyhow::Result<()> {
    let alert = client
        .acknowledge(pb::AcknowledgeRequest {
            fingerprint: fingerprint.clone(),
            comment,
        })
        .await
        .map_err(|status| {
            out.failed(
                status,
                "`pharos alert list` shows the firing alerts and their fingerprints (16 hexadecimal digits)",
            )
        })?
        .into_inner()
        .alert
        .context("the server answered without the alert")?;
    if out.json {
        println!("{}", alert_json(&alert));
    } else {
        let by = alert
            .acknowledgement
            .as_ref()
            .map_or("", |ack| ack.by.as_str());
        println!(
            "acknowledged {} {} as {by}",
            alert.fingerprint,
            labels_text(&alert.labels)
        );
    }
    Ok(())
}

async fn silence(client: &mut Client, out: &Output, command: SilenceCommand) -> anyhow::Result<()> {
    match command {
        SilenceCommand::Add {
            matchers,
            duration,
            comment,
            author,
        } => {
            let matchers = matchers
                .iter()
                .map(|text| silence_matcher(text))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let now_ms = pharos_clock::Clock::system().now_micros().div_euclid(1000);
            let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
            if duration_ms <= 0 {
                bail!("--duration must be more than 0, like 30m or 2h");
            }
            let silence = client
                .create_silence(pb::CreateSilenceRequest {
                    id: String::new(),
                    matchers,
                    // From the server's now; the end is this machine's now plus the duration.
                    starts_at_ms: 0,
                    ends_at_ms: now_ms.saturating_add(duration_ms),
                    created_by: author,
                    comment,
                })
                .await
                .map_err(|status| out.failed(status, "fix the matchers or flags named above"))?
                .into_inner()
                .silence
                .context("the server answered without the silence")?;
            if out.json {
                println!("{}", silence_json(&silence));
            } else {
                println!("{}", silence.id);
            }
        }
        SilenceCommand::List { expired } => {
            let silences = client
                .list_silences(pb::ListSilencesRequest {
                    matchers: Vec::new(),
                    exclude_expired: !expired,
                })
                .await
                .map_err(|status| out.failed(status, ""))?
                .into_inner()
                .silences;
            out.silences(&silences);
        }
        SilenceCommand::Expire { ids } => {
            for id in ids {
                let silence = client
                    .expire_silence(pb::ExpireSilenceRequest { id: id.clone() })
                    .await
                    .map_err(|status| {
                        out.failed(
                            status,
                            "`pharos alert silence list --expired` shows every silence and its id",
                        )
                    })?
                    .into_inner()
                    .silence;
                match (&silence, out.json) {
                    (Some(silence), true) => println!("{}", silence_json(silence)),
                    _ => println!("expired {id}"),
                }
            }
        }
    }
    Ok(())
}

/// A matcher of `silence add` (`name=value`, `name=~"regex"`...) as the API's message.
fn silence_matcher(text: &str) -> anyhow::Result<pb::Matcher> {
    use pharos_routing::MatchType;
    let matcher = pharos_routing::parse_matcher(text).map_err(|error| {
        anyhow::anyhow!(
            "{error}\nwrite matchers as name=value, name!=value, name=~regex or name!~regex (quote the value when it holds spaces or commas)"
        )
    })?;
    let r#type = match matcher.match_type() {
        MatchType::Equal => pb::MatchType::Equal,
        MatchType::NotEqual => pb::MatchType::NotEqual,
        MatchType::Regexp => pb::MatchType::Regex,
        MatchType::NotRegexp => pb::MatchType::NotRegex,
    };
    Ok(pb::Matcher {
        name: matcher.name().to_owned(),
        value: matcher.value().to_owned(),
        r#type: r#type as i32,
    })
}

async fn rules(client: &mut Client, out: &Output, command: RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::List => {
            let groups = client
                .list_rule_groups(pb::ListRuleGroupsRequest {})
                .await
                .map_err(|status| out.failed(status, ""))?
                .into_inner()
                .groups;
            out.rule_groups(&groups);
        }
        RulesCommand::Put { namespace, file } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the rule file {}", file.display()))?;
            let name = client
                .put_rule_group(pb::PutRuleGroupRequest {
                    namespace: namespace.clone(),
                    yaml,
                })
                .await
                .map_err(|status| {
                    out.failed(
                        status,
                        "check the file with `pharos rules check FILE`; it must hold exactly one group",
                    )
                })?
                .into_inner()
                .name;
            if out.json {
                println!("{}", json!({"namespace": namespace, "name": name}));
            } else {
                println!("stored rule group {name:?} in namespace {namespace:?}; it runs now");
            }
        }
        RulesCommand::Delete { namespace, name } => {
            client
                .delete_rule_group(pb::DeleteRuleGroupRequest {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })
                .await
                .map_err(|status| {
                    out.failed(
                        status,
                        "`pharos alert rules list` shows the stored groups (file db:<namespace>)",
                    )
                })?;
            if out.json {
                println!(
                    "{}",
                    json!({"namespace": namespace, "name": name, "deleted": true})
                );
            } else {
                println!("deleted rule group {name:?} of namespace {namespace:?}");
            }
        }
    }
    Ok(())
}

async fn deliveries(
    client: &mut Client,
    out: &Output,
    key: Option<String>,
    dead: bool,
    limit: u32,
) -> anyhow::Result<()> {
    if dead {
        let dead_letters = client
            .list_dead_letters(pb::ListDeadLettersRequest { limit })
            .await
            .map_err(|status| out.failed(status, ""))?
            .into_inner()
            .dead_letters;
        out.dead_letters(&dead_letters);
    } else {
        let attempts = client
            .list_deliveries(pb::ListDeliveriesRequest {
                idempotency_key: key.unwrap_or_default(),
                limit,
            })
            .await
            .map_err(|status| out.failed(status, ""))?
            .into_inner()
            .attempts;
        out.attempts(&attempts);
    }
    Ok(())
}

/// How the answers are printed, and where errors point.
struct Output {
    json: bool,
    endpoint: String,
}

impl Output {
    /// A failed call as an error that says what to do next: `hint` for a refused request,
    /// and how to reach an alert service when the server has none.
    fn failed(&self, status: tonic::Status, hint: &str) -> anyhow::Error {
        let next = match status.code() {
            tonic::Code::Unimplemented => format!(
                "the server at {} does not run the alert service: start it with `pharos serve` \
                 (target all or alert), or point --endpoint at one that runs it",
                self.endpoint
            ),
            tonic::Code::InvalidArgument | tonic::Code::NotFound => hint.to_owned(),
            tonic::Code::Unauthenticated => {
                "pass a token the server accepts with --token or PHAROS_TOKEN".to_owned()
            }
            _ => String::new(),
        };
        let error = status_error(status);
        if next.is_empty() {
            error
        } else {
            anyhow::anyhow!("{error}\n{next}")
        }
    }

    fn alerts(&self, alerts: &[pb::Alert]) {
        if self.json {
            for alert in alerts {
                println!("{}", alert_json(alert));
            }
            return;
        }
        if alerts.is_empty() {
            println!("no firing alerts");
            return;
        }
        let rows = alerts
            .iter()
            .map(|alert| {
                vec![
                    alert.fingerprint.clone(),
                    alert_state(alert.state).to_owned(),
                    time_text(alert.starts_at_ms),
                    alert.acknowledgement.as_ref().map_or_else(
                        || "-".to_owned(),
                        |ack| {
                            if ack.comment.is_empty() {
                                ack.by.clone()
                            } else {
                                format!("{} ({})", ack.by, ack.comment)
                            }
                        },
                    ),
                    labels_text(&alert.labels),
                ]
            })
            .collect();
        print_table(
            &["FINGERPRINT", "STATE", "SINCE", "ACKNOWLEDGED", "LABELS"],
            rows,
        );
    }

    fn silences(&self, silences: &[pb::Silence]) {
        if self.json {
            for silence in silences {
                println!("{}", silence_json(silence));
            }
            return;
        }
        if silences.is_empty() {
            println!("no silences");
            return;
        }
        let rows = silences
            .iter()
            .map(|silence| {
                vec![
                    silence.id.clone(),
                    silence_state(silence.state).to_owned(),
                    time_text(silence.ends_at_ms),
                    silence.created_by.clone(),
                    matchers_text(&silence.matchers),
                    silence.comment.clone(),
                ]
            })
            .collect();
        print_table(
            &["ID", "STATE", "ENDS", "CREATED BY", "MATCHERS", "COMMENT"],
            rows,
        );
    }

    fn rule_groups(&self, groups: &[pb::RuleGroup]) {
        if self.json {
            for group in groups {
                println!("{}", rule_group_json(group));
            }
            return;
        }
        if groups.is_empty() {
            println!("no rule groups");
            return;
        }
        let rows = groups
            .iter()
            .map(|group| {
                vec![
                    group.file.clone(),
                    group.name.clone(),
                    if group.running {
                        "running".to_owned()
                    } else {
                        "not running".to_owned()
                    },
                    duration_text(group.interval_ms),
                    group.evaluations.to_string(),
                    time_text(group.last_evaluation_ms),
                    group.errors.len().to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "FILE",
                "GROUP",
                "STATE",
                "INTERVAL",
                "EVALUATIONS",
                "LAST EVALUATION",
                "ERRORS",
            ],
            rows,
        );
        for group in groups {
            for error in &group.errors {
                println!("{}/{}: {}", group.name, error.rule, error.error);
            }
        }
    }

    fn attempts(&self, attempts: &[pb::DeliveryAttempt]) {
        if self.json {
            for attempt in attempts {
                println!("{}", attempt_json(attempt));
            }
            return;
        }
        if attempts.is_empty() {
            println!("no delivery attempts");
            return;
        }
        let rows = attempts
            .iter()
            .map(|attempt| {
                vec![
                    attempt.idempotency_key.clone(),
                    attempt.attempt.to_string(),
                    time_text(attempt.at_ms),
                    format!("{}ms", attempt.duration_ms),
                    outcome_text(attempt.outcome).to_owned(),
                    attempt
                        .http_status
                        .map_or_else(|| "-".to_owned(), |status| status.to_string()),
                    attempt.error.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "KEY", "ATTEMPT", "AT", "DURATION", "OUTCOME", "HTTP", "ERROR",
            ],
            rows,
        );
    }

    fn dead_letters(&self, dead_letters: &[pb::DeadLetter]) {
        if self.json {
            for dead in dead_letters {
                println!(
                    "{}",
                    json!({
                        "idempotency_key": dead.idempotency_key,
                        "group_key": dead.group_key,
                        "receiver": dead.receiver,
                        "integration": dead.integration,
                        "url": dead.url,
                        "created_at": time_json(dead.created_at_ms),
                        "failed_at": time_json(dead.failed_at_ms),
                        "last_error": dead.last_error,
                        "body": serde_json::from_str::<serde_json::Value>(&dead.body)
                            .unwrap_or_else(|_| json!(dead.body)),
                    })
                );
            }
            return;
        }
        if dead_letters.is_empty() {
            println!("no dead letters");
            return;
        }
        let rows = dead_letters
            .iter()
            .map(|dead| {
                vec![
                    dead.idempotency_key.clone(),
                    dead.integration.clone(),
                    time_text(dead.failed_at_ms),
                    dead.group_key.clone(),
                    dead.last_error.clone(),
                ]
            })
            .collect();
        print_table(&["KEY", "INTEGRATION", "FAILED AT", "GROUP", "ERROR"], rows);
    }
}

/// Prints rows under their headers, each column as wide as its widest cell (the last one is
/// not padded).
fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(index, cell)| {
                if index == last {
                    (*cell).to_owned()
                } else {
                    let pad = widths[index].saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `{alertname="X", a="1"}`: the alert's name first, then the other labels by name.
fn labels_text(labels: &HashMap<String, String>) -> String {
    let mut names: Vec<&String> = labels.keys().collect();
    names.sort_by_key(|name| (name.as_str() != "alertname", name.as_str()));
    let inner: Vec<String> = names
        .iter()
        .map(|name| format!("{name}={:?}", labels[*name]))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn matchers_text(matchers: &[pb::Matcher]) -> String {
    let inner: Vec<String> = matchers
        .iter()
        .map(|matcher| {
            let operator = match pb::MatchType::try_from(matcher.r#type) {
                Ok(pb::MatchType::NotEqual) => "!=",
                Ok(pb::MatchType::Regex) => "=~",
                Ok(pb::MatchType::NotRegex) => "!~",
                _ => "=",
            };
            format!("{}{operator}{:?}", matcher.name, matcher.value)
        })
        .collect();
    inner.join(" ")
}

fn alert_state(state: i32) -> &'static str {
    match pb::AlertState::try_from(state) {
        Ok(pb::AlertState::Active) => "active",
        Ok(pb::AlertState::Suppressed) => "suppressed",
        Ok(pb::AlertState::Resolved) => "resolved",
        _ => "unknown",
    }
}

fn silence_state(state: i32) -> &'static str {
    match pb::SilenceState::try_from(state) {
        Ok(pb::SilenceState::Active) => "active",
        Ok(pb::SilenceState::Pending) => "pending",
        Ok(pb::SilenceState::Expired) => "expired",
        _ => "unknown",
    }
}

fn outcome_text(outcome: i32) -> &'static str {
    match pb::DeliveryOutcome::try_from(outcome) {
        Ok(pb::DeliveryOutcome::Delivered) => "delivered",
        Ok(pb::DeliveryOutcome::Retry) => "retry",
        Ok(pb::DeliveryOutcome::Failed) => "failed",
        _ => "unknown",
    }
}

/// Milliseconds since the epoch as RFC 3339 to the second; `-` for none.
fn time_text(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        _ => "-".to_owned(),
    }
}

/// Milliseconds since the epoch as RFC 3339 to the millisecond; null for none.
fn time_json(ms: i64) -> serde_json::Value {
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => json!(
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        ),
        _ => serde_json::Value::Null,
    }
}

fn duration_text(ms: i64) -> String {
    humantime::format_duration(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).to_string()
}

fn alert_json(alert: &pb::Alert) -> serde_json::Value {
    json!({
        "fingerprint": alert.fingerprint,
        "state": alert_state(alert.state),
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": time_json(alert.starts_at_ms),
        "ends_at": time_json(alert.ends_at_ms),
        "updated_at": time_json(alert.updated_at_ms),
        "generator_url": alert.generator_url,
        "receivers": alert.receivers,
        "silenced_by": alert.silenced_by,
        "inhibited_by": alert.inhibited_by,
        "acknowledgement": alert.acknowledgement.as_ref().map(|ack| json!({
            "by": ack.by,
            "comment": ack.comment,
            "at": time_json(ack.at_ms),
        })),
    })
}

fn silence_json(silence: &pb::Silence) -> serde_json::Value {
    let matchers: Vec<serde_json::Value> = silence
        .matchers
        .iter()
        .map(|matcher| {
            let kind = pb::MatchType::try_from(matcher.r#type).unwrap_or_default();
            json!({
                "name": matcher.name,
                "value": matcher.value,
                "is_regex": matches!(kind, pb::MatchType::Regex | pb::MatchType::NotRegex),
                "is_equal": matches!(kind, pb::MatchType::Equal | pb::MatchType::Regex),
            })
        })
        .collect();
    json!({
        "id": silence.id,
        "state": silence_state(silence.state),
        "matchers": matchers,
        "starts_at": time_json(silence.starts_at_ms),
        "ends_at": time_json(silence.ends_at_ms),
        "updated_at": time_json(silence.updated_at_ms),
        "created_by": silence.created_by,
        "comment": silence.comment,
    })
}

fn rule_group_json(group: &pb::RuleGroup) -> serde_json::Value {
    let errors: Vec<serde_json::Value> = group
        .errors
        .iter()
        .map(|error| json!({"rule": error.rule, "error": error.error}))
        .collect();
    json!({
        "file": group.file,
        "name": group.name,
        "namespace": group.namespace,
        "running": group.running,
        "interval_ms": group.interval_ms,
        "evaluations": group.evaluations,
        "last_evaluation": time_json(group.last_evaluation_ms),
        "last_duration_us": group.last_duration_us,
        "errors": errors,
        "yaml": group.yaml,
        "updated_at": time_json(group.updated_at_ms),
    })
}

fn attempt_json(attempt: &pb::DeliveryAttempt) -> serde_json::Value {
    json!({
        "idempotency_key": attempt.idempotency_key,
        "attempt": attempt.attempt,
        "at": time_json(attempt.at_ms),
        "duration_ms": attempt.duration_ms,
        "outcome": outcome_text(attempt.outcome),
        "http_status": attempt.http_status,
        "error": attempt.error,
    })
}

fn check_config(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut failed = 0;
    for file in files {
        print!("Checking '{}'", file.display());
        match pharos_routing::load_config(file) {
            Ok(config) => {
                println!("  SUCCESS");
                println!("Found:");
                println!(" - global config");
                println!(" - route");
                println!(" - {} inhibit rules", config.inhibit_rules().len());
                println!(" - {} receivers", config.receivers().len());
                println!(" - {} templates", config.templates().len());
            }
            Err(error) => {
                failed += 1;
                println!("  FAILED: {error}");
            }
        }
        println!();
    }
    if failed > 0 {
        bail!(
            "{failed} of {} configuration files are not valid",
            files.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_print_with_the_alert_name_first() {
        let labels: HashMap<String, String> = [
            ("zone", "b"),
            ("alertname", "DiskFull"),
            ("instance", "db-1"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(
            labels_text(&labels),
            "{alertname=\"DiskFull\", instance=\"db-1\", zone=\"b\"}"
        );
    }

    #[test]
    fn silence_matchers_parse_as_amtool_writes_them() {
        let matcher = silence_matcher("instance=~\"db-.*\"").expect("a matcher");
        assert_eq!(matcher.name, "instance");
        assert_eq!(matcher.value, "db-.*");
        assert_eq!(matcher.r#type, pb::MatchType::Regex as i32);
        let matcher = silence_matcher("env!=prod").expect("a matcher");
        assert_eq!(matcher.r#type, pb::MatchType::NotEqual as i32);
        assert!(silence_matcher("no operator").is_err());
    }

    #[test]
    fn times_print_to_the_second_and_none_as_a_dash() {
        assert_eq!(time_text(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(time_text(0), "-");
        assert_eq!(time_json(0), serde_json::Value::Null);
    }
}
