//! The Alertmanager API v2 on the HTTP listener, as Alertmanager 0.25 serves it, so that
//! `amtool`, Grafana's Alertmanager data source and a Prometheus whose `alerting` section
//! points at Pharos work unchanged: alerts (list, post), alert groups, silences (list, create
//! or update, get, expire), receivers and status. Also Alertmanager's `POST /-/reload`,
//! `GET /-/healthy` and `GET /-/ready`. The handlers validate, convert (`model.rs`) and call
//! [`AlertService`]; the semantics live there and in the dispatcher.

pub mod model;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pharos_routing::Matcher;

use crate::alerts::Alert;
use crate::dispatch::AlertView;
use crate::error::AlertError;
use crate::service::AlertService;

/// The routes, to merge into the process's HTTP router.
pub fn routes(service: Arc<AlertService>) -> axum::Router {
    axum::Router::new()
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v2/alerts", get(list_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(list_groups))
        .route("/api/v2/silences", get(list_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/-/reload", post(reload))
        .route("/-/healthy", get(|| async { "OK" }))
        .route("/-/ready", get(|| async { "OK" }))
        .with_state(service)
}

type Service = State<Arc<AlertService>>;

/// The query string as name and values (`filter` may repeat).
fn params(query: Option<String>) -> HashMap<String, Vec<String>> {
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        params
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    params
}

/// A boolean query parameter, `default` when absent.
fn flag(params: &HashMap<String, Vec<String>>, name: &str, default: bool) -> Result<bool, Refused> {
    match params.get(name).and_then(|values| values.last()) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| {
            Refused::Swagger(format!(
                "{name} in query must be of type boolean: \"{value}\""
            ))
        }),
    }
}

/// A request the API refuses before it reaches the service.
#[derive(Debug)]
enum Refused {
    /// A parameter that does not fit the spec (go-swagger's `{"code","message"}`).
    Swagger(String),
    /// A handler's refusal: 400 with the text as a JSON string.
    BadRequest(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Swagger(message) => swagger_error(message),
            Refused::BadRequest(message) => text_error(StatusCode::BAD_REQUEST, message),
        }
    }
}

/// The error go-swagger answers for a request that does not fit the spec.
fn swagger_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "code": 400, "message": message })),
    )
        .into_response()
}

/// An error of a handler: its status and the error text as a JSON string, as Alertmanager
/// answers.
fn text_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::Value::String(message.into()))).into_response()
}

fn service_error(error: AlertError) -> Response {
    match error {
        AlertError::NotFound(_) => StatusCode::NOT_FOUND.into_response(),
        AlertError::TooManyAlerts { .. } => {
            text_error(StatusCode::TOO_MANY_REQUESTS, error.to_string())
        }
        AlertError::InvalidArgument { reason, .. } => text_error(StatusCode::BAD_REQUEST, reason),
        other => {
            tracing::error!(error = %other, "alertmanager api request failed");
            text_error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

fn filters(params: &HashMap<String, Vec<String>>) -> Result<Vec<Matcher>, Refused> {
    let filters = params.get("filter").cloned().unwrap_or_default();
    model::parse_filter(&filters).map_err(Refused::BadRequest)
}

/// The `receiver` parameter: a regular expression over receiver names, anchored.
fn receiver_filter(params: &HashMap<String, Vec<String>>) -> Result<Option<Matcher>, Refused> {
    match params.get("receiver").and_then(|values| values.last()) {
        None => Ok(None),
        Some(pattern) => model::parse_receiver_filter(pattern)
            .map(Some)
            .map_err(Refused::BadRequest),
    }
}

async fn status(State(service): Service) -> Response {
    let routing = service.routing();
    Json(model::AlertmanagerStatus::new(
        routing.original().to_owned(),
        service.started_at(),
    ))
    .into_response()
}

async fn receivers(State(service): Service) -> Response {
    let names: Vec<model::Receiver> = service
        .routing()
        .receivers()
        .iter()
        .map(|receiver| model::Receiver {
            name: receiver.name.clone(),
        })
        .collect();
    Json(names).into_response()
}

/// Which alerts a list keeps (`active`, `silenced`, `inhibited`, `unprocessed`, `filter`,
/// `receiver`), as Alertmanager's `alertFilter`.
struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Vec<Matcher>,
    receiver: Option<Matcher>,
}

impl AlertFilter {
    fn from_params(params: &HashMap<String, Vec<String>>) -> Result<Self, Refused> {
        flag(params, "unprocessed", true)?;
        Ok(Self {
            active: flag(params, "active", true)?,
            silenced: flag(params, "silenced", true)?,
            inhibited: flag(params, "inhibited", true)?,
            matchers: filters(params)?,
            receiver: receiver_filter(params)?,
        })
    }

    fn keeps(&self, view: &AlertView) -> bool {
        if let Some(receiver) = &self.receiver
            && !view.receivers.iter().any(|name| receiver.matches(name))
        {
            return false;
        }
        if !model::alert_matches_filter(&view.alert.labels, &self.matchers) {
            return false;
        }
        let suppressed = !view.silenced_by.is_empty() || !view.inhibited_by.is_empty();
        if !self.active && !suppressed {
            return false;
        }
        if !self.silenced && !view.silenced_by.is_empty() {
            return false;
        }
        if !self.inhibited && !view.inhibited_by.is_empty() {
            return false;
        }
        true
    }
}

async fn list_alerts(State(service): Service, RawQuery(query): RawQuery) -> Response {
    let params = params(query);
    let filter = match AlertFilter::from_params(&params) {
        Ok(filter) => filter,
        Err(refused) => return refused.into_response(),
    };
    let mut alerts: Vec<model::GettableAlert> = service
        .dispatcher()
        .alert_views()
        .iter()
        .filter(|view| filter.keeps(view))
        .map(model::GettableAlert::from_view)
        .collect();
    alerts.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    Json(alerts).into_response()
}

async fn list_groups(State(service): Service, RawQuery(query): RawQuery) -> Response {
    let params = params(query);
    let filter = match AlertFilter::from_params(&params) {
        Ok(filter) => filter,
        Err(refused) => return refused.into_response(),
    };
    let mut groups: Vec<model::AlertGroup> = service
        .dispatcher()
        .group_views()
        .into_iter()
        .filter(|group| {
            filter
                .receiver
                .as_ref()
                .is_none_or(|receiver| receiver.matches(&group.receiver))
        })
        .filter_map(|group| {
            let alerts: Vec<model::GettableAlert> = group
                .alerts
                .iter()
                .filter(|view| {
                    AlertFilter {
                        receiver: None,
                        matchers: filter.matchers.clone(),
                        ..filter
                    }
                    .keeps(view)
                })
                .map(model::GettableAlert::from_view)
                .collect();
            (!alerts.is_empty()).then(|| model::AlertGroup {
                alerts,
                labels: group.labels.clone(),
                receiver: model::Receiver {
                    name: group.receiver.clone(),
                },
            })
        })
        .collect();
    groups.sort_by(|a, b| {
        pharos_routing::labels::label_set_string(&a.labels)
            .cmp(&pharos_routing::labels::label_set_string(&b.labels))
            .then_with(|| a.receiver.name.cmp(&b.receiver.name))
    });
    Json(groups).into_response()
}

async fn post_alerts(State(service): Service, body: axum::body::Bytes) -> Response {
    let posted: Vec<model::PostableAlert> = match serde_json::from_slice(&body) {
        Ok(posted) => posted,
        Err(error) => {
            return swagger_error(format!(
                "parsing alerts body from \"\" failed, because {error}"
            ));
        }
    };
    let now = service.now();
    let resolve_timeout = chrono::Duration::from_std(service.routing().global().resolve_timeout)
        .unwrap_or(chrono::Duration::minutes(5));
    let mut valid = Vec::with_capacity(posted.len());
    let mut errors = Vec::new();
    for alert in posted {
        let mut starts_at = alert.starts_at;
        let mut ends_at = alert.ends_at;
        let mut timeout = false;
        if starts_at.is_none() {
            starts_at = Some(ends_at.unwrap_or(now));
        }
        if ends_at.is_none() {
            timeout = true;
            ends_at = Some(now + resolve_timeout);
        }
        let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) else {
            continue;
        };
        let alert = Alert {
            labels: alert.labels,
            annotations: alert.annotations,
            starts_at,
            ends_at,
            generator_url: alert.generator_url,
            updated_at: now,
            timeout,
        };
        match validate_alert(&alert) {
            Ok(()) => valid.push(alert),
            Err(error) => errors.push(error),
        }
    }
    if let Err(error) = service.receive(valid).await {
        return service_error(error);
    }
    if errors.is_empty() {
        StatusCode::OK.into_response()
    } else {
        text_error(StatusCode::BAD_REQUEST, errors.join("; "))
    }
}

/// Alertmanager's `Alert.Validate` (model and types): a start, an end not before it, at least
/// one label, valid names.
fn validate_alert(alert: &Alert) -> Result<(), String> {
    if alert.ends_at < alert.starts_at {
        return Err(format!(
            "{}: start time must be before end time",
            pharos_routing::labels::label_set_string(&alert.labels)
        ));
    }
    if alert.labels.is_empty() {
        return Err("at least one label pair required".to_owned());
    }
    for (name, value) in &alert.labels {
        if !pharos_routing::labels::is_valid_label_name(name) {
            return Err(format!("invalid name {name:?}"));
        }
        if value.is_empty() {
            return Err(format!("invalid value \"\" for label {name}"));
        }
    }
    for name in alert.annotations.keys() {
        if !pharos_routing::labels::is_valid_label_name(name) {
            return Err(format!("invalid name {name:?}"));
        }
    }
    Ok(())
}

async fn list_silences(State(service): Service, RawQuery(query): RawQuery) -> Response {
    let params = params(query);
    let matchers = match filters(&params) {
        Ok(matchers) => matchers,
        Err(refused) => return refused.into_response(),
    };
    let now = service.now();
    let mut silences: Vec<model::GettableSilence> = service.with_silences(|silences| {
        silences
            .all()
            .filter(|silence| model::silence_matches_filter(silence, &matchers))
            .map(|silence| model::GettableSilence::from_silence(silence, now))
            .collect()
    });
    model::sort_silences(&mut silences);
    Json(silences).into_response()
}

async fn post_silence(State(service): Service, body: axum::body::Bytes) -> Response {
    let posted: model::PostableSilence = match serde_json::from_slice(&body) {
        Ok(posted) => posted,
        Err(error) => {
            return swagger_error(format!(
                "parsing silence body from \"\" failed, because {error}"
            ));
        }
    };
    let silence = match posted.into_silence() {
        Ok(silence) => silence,
        Err(message) => return text_error(StatusCode::BAD_REQUEST, message),
    };
    if silence.starts_at >= silence.ends_at {
        return text_error(
            StatusCode::BAD_REQUEST,
            "failed to create silence: start time must be before end time",
        );
    }
    if silence.ends_at < service.now() {
        return text_error(
            StatusCode::BAD_REQUEST,
            "failed to create silence: end time can't be in the past",
        );
    }
    match service.set_silence(silence).await {
        Ok(id) => Json(model::PostSilenceResponse { silence_id: id }).into_response(),
        Err(AlertError::NotFound(_)) => text_error(StatusCode::NOT_FOUND, "silence not found"),
        Err(error) => service_error(error),
    }
}

async fn get_silence(State(service): Service, Path(id): Path<String>) -> Response {
    let now = service.now();
    match service.with_silences(|silences| silences.get(&id).cloned()) {
        Some(silence) => Json(model::GettableSilence::from_silence(&silence, now)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(service): Service, Path(id): Path<String>) -> Response {
    match service.expire_silence(&id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(AlertError::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(AlertError::InvalidArgument { reason, .. }) => {
            text_error(StatusCode::INTERNAL_SERVER_ERROR, reason)
        }
        Err(error) => service_error(error),
    }
}

async fn reload(State(service): Service) -> Response {
    match service.reload().await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {error}"),
        )
            .into_response(),
    }
}
