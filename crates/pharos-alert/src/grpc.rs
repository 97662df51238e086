//! The tonic adapter of the alert service, `pharos.alert.v1.AlertService`: each handler checks
//! and converts its request (`convert.rs`), calls [`AlertService`] and converts the answer;
//! errors become statuses through `From<AlertError> for Status`. The acknowledger of an alert
//! and the default author of a silence are the caller's identity.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use pharos_proto::alert::v1 as pb;
use pharos_proto::alert::v1::alert_service_server::{self, AlertServiceServer};
use pharos_routing::matcher::Matcher;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use crate::convert::{self, AlertSelection, MAX_COMMENT_BYTES, MAX_NAME_BYTES, check_len};
use crate::dispatch::AlertEvent;
use crate::service::AlertService;

pub use pharos_api::client::ACTOR_METADATA;

/// The tonic service over an [`AlertService`].
#[derive(Clone)]
pub struct AlertGrpc {
    service: Arc<AlertService>,
    /// Ends open watches when the process stops, so that they do not hold the shutdown up.
    shutdown: pharos_runtime::Shutdown,
}

impl AlertGrpc {
    pub fn new(service: Arc<AlertService>, shutdown: pharos_runtime::Shutdown) -> Self {
        Self { service, shutdown }
    }

    fn alert(&self, view: crate::dispatch::AlertView) -> pb::Alert {
        let acknowledgement = self.service.dispatcher().acknowledgement(view.fingerprint);
        convert::alert(view, acknowledgement, self.service.now())
    }

    /// A change as a watcher sees it: the alert as it is now, with the acknowledgement the
    /// event carries.
    fn event(&self, event: AlertEvent) -> pb::AlertEvent {
        let kind = convert::event_kind(event.kind);
        let view = self.service.view_of(event.alert);
        pb::AlertEvent {
            kind: kind as i32,
            alert: Some(convert::alert(
                view,
                event.acknowledgement,
                self.service.now(),
            )),
        }
    }
}

/// The mountable server, with the process's message size limit.
pub fn server(
    service: Arc<AlertService>,
    shutdown: pharos_runtime::Shutdown,
    max_message_bytes: usize,
) -> AlertServiceServer<AlertGrpc> {
    pharos_runtime::tonic_server!(
        AlertServiceServer::new(AlertGrpc { service, shutdown }),
        max_message_bytes
    )
}

use pharos_api::client::request_actor as actor;

/// What a watch ends with when it fell behind the dispatcher's event buffer.
fn fell_behind() -> Status {
    pharos_runtime::error::overloaded(
        tonic::Code::ResourceExhausted,
        "watch fell behind; watch again",
        Duration::ZERO,
    )
}

/// What a watch ends with when the process stops.
fn shutting_down() -> Status {
    pharos_runtime::error::unavailable(
        "the server is shutting down; watch again (another replica, or this one once it is back)",
        Duration::from_secs(1),
    )
}

type WatchAlertsStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchAlertsResponse, Status>> + Send>>;

/// The changes after the snapshot, one response each (`event` converts one), until the
/// watcher falls behind (the stream then ends with [`fell_behind`]) or the dispatcher goes away.
fn changes(
    events: broadcast::Receiver<AlertEvent>,
    matchers: Vec<Matcher>,
    event: impl Fn(AlertEvent) -> pb::AlertEvent + Clone + Send + 'static,
) -> impl Stream<Item = Result<pb::WatchAlertsResponse, Status>> + Send {
    futures::stream::unfold(Some(events), move |state| {
        let matchers = matchers.clone();
        let event = event.clone();
        async move {
            let mut events = state?;
            loop {
                match events.recv().await {
                    Ok(change) if convert::labels_match(&change.alert.labels, &matchers) => {
                        let response = pb::WatchAlertsResponse {
                            events: vec![event(change)],
                            snapshot_complete: false,
                        };
                        return Some((Ok(response), Some(events)));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "an alert watcher fell behind; its stream ends");
                        return Some((Err(fell_behind()), None));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
}

#[tonic::async_trait]
impl alert_service_server::AlertService for AlertGrpc {
    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let selection = AlertSelection::from_request(request.get_ref())?;
        let alerts = self
            .service
            .dispatcher()
            .alert_views()
            .into_iter()
            .filter(|view| selection.keeps(view))
            .map(|view| self.alert(view))
            .collect();
        Ok(Response::new(pb::ListAlertsResponse { alerts }))
    }

    async fn get_alert(
        &self,
        request: Request<pb::GetAlertRequest>,
    ) -> Result<Response<pb::GetAlertResponse>, Status> {
        let view = self.service.alert_view(&request.get_ref().fingerprint)?;
        Ok(Response::new(pb::GetAlertResponse {
            alert: Some(self.alert(view)),
        }))
    }

    type WatchAlertsStream = WatchAlertsStream;

    async fn watch_alerts(
        &self,
        request: Request<pb::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let matchers = convert::filter_matchers(&request.get_ref().matchers)?;
        // Subscribed before the snapshot is taken, so that no change falls between the two (a
        // change may then come after the snapshot that already shows it).
        let events = self.service.dispatcher().subscribe();
        let current: Vec<pb::AlertEvent> = self
            .service
            .dispatcher()
            .alert_views()
            .into_iter()
            .filter(|view| convert::labels_match(&view.alert.labels, &matchers))
            .map(|view| pb::AlertEvent {
                kind: pb::AlertEventKind::Current as i32,
                alert: Some(self.alert(view)),
            })
            .collect();
        let mut snapshot: Vec<pb::WatchAlertsResponse> = current
            .chunks(convert::SNAPSHOT_CHUNK)
            .map(|chunk| pb::WatchAlertsResponse {
                events: chunk.to_vec(),
                snapshot_complete: false,
            })
            .collect();
        match snapshot.last_mut() {
            Some(last) => last.snapshot_complete = true,
            None => snapshot.push(pb::WatchAlertsResponse {
                events: Vec::new(),
                snapshot_complete: true,
            }),
        }
        let stream =
            futures::stream::iter(snapshot.into_iter().map(Ok)).chain(changes(events, matchers, {
                let grpc = self.clone();
                move |change| grpc.event(change)
            }));
        let shutdown = self.shutdown.clone();
        let stopped = Box::pin(async move { shutdown.wait().await });
        // When the process stops: UNAVAILABLE, not a plain end a client could take for the end
        // of the watch. (After an error, tonic sends nothing more, so a stream that ended with
        // `fell_behind` keeps that status.)
        let ended = futures::stream::once(async { Err(shutting_down()) });
        Ok(Response::new(Box::pin(
            stream.take_until(stopped).chain(ended),
        )))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::AcknowledgeResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_len("comment", &request.comment, MAX_COMMENT_BYTES)?;
        let alert = self
            .service
            .acknowledge(&request.fingerprint, &actor, &request.comment)
            .await?;
        let view = self.service.view_of(alert);
        Ok(Response::new(pb::AcknowledgeResponse {
            alert: Some(self.alert(view)),
        }))
    }

    async fn list_silences(
        &self,
        request: Request<pb::ListSilencesRequest>,
    ) -> Result<Response<pb::ListSilencesResponse>, Status> {
        let request = request.into_inner();
        let matchers = convert::filter_matchers(&request.matchers)?;
        let now = self.service.now();
        let mut silences: Vec<pb::Silence> = self.service.with_silences(|silences| {
            silences
                .all()
                .filter(|silence| crate::api::model::silence_matches_filter(silence, &matchers))
                .map(|silence| convert::silence(silence, now))
                .filter(|silence| {
                    !(request.exclude_expired && silence.state == pb::SilenceState::Expired as i32)
                })
                .collect()
        });
        convert::sort_silences(&mut silences);
        Ok(Response::new(pb::ListSilencesResponse { silences }))
    }

    async fn create_silence(
        &self,
        request: Request<pb::CreateSilenceRequest>,
    ) -> Result<Response<pb::CreateSilenceResponse>, Status> {
        let actor = actor(&request);
        let silence =
            convert::silence_from_request(request.into_inner(), &actor, self.service.now())?;
        let id = self.service.set_silence(silence).await?;
        let now = self.service.now();
        let silence = self.service.with_silences(|silences| {
            silences
                .get(&id)
                .map(|silence| convert::silence(silence, now))
        });
        Ok(Response::new(pb::CreateSilenceResponse { silence }))
    }

    async fn expire_silence(
        &self,
        request: Request<pb::ExpireSilenceRequest>,
    ) -> Result<Response<pb::ExpireSilenceResponse>, Status> {
        let id = request.into_inner().id;
        check_len("id", &id, MAX_NAME_BYTES)?;
        self.service.expire_silence(&id).await?;
        let now = self.service.now();
        let silence = self.service.with_silences(|silences| {
            silences.get(&id).map(|silence| pb::Silence {
                // It ends now, and a silence is still active at its very end (Alertmanager's
                // boundary): within this millisecond it would read as active.
                state: pb::SilenceState::Expired as i32,
                ..convert::silence(silence, now)
            })
        });
        Ok(Response::new(pb::ExpireSilenceResponse { silence }))
    }

    async fn put_rule_group(
        &self,
        request: Request<pb::PutRuleGroupRequest>,
    ) -> Result<Response<pb::PutRuleGroupResponse>, Status> {
        let request = request.into_inner();
        check_len("yaml", &request.yaml, convert::MAX_RULE_GROUP_BYTES)?;
        let name = self
            .service
            .put_rule_group(&request.namespace, &request.yaml)
            .await?;
        Ok(Response::new(pb::PutRuleGroupResponse { name }))
    }

    async fn delete_rule_group(
        &self,
        request: Request<pb::DeleteRuleGroupRequest>,
    ) -> Result<Response<pb::DeleteRuleGroupResponse>, Status> {
        let request = request.into_inner();
        check_len("namespace", &request.namespace, MAX_NAME_BYTES)?;
        check_len("name", &request.name, convert::MAX_MATCHER_BYTES)?;
        self.service
            .delete_rule_group(&request.namespace, &request.name)
            .await?;
        Ok(Response::new(pb::DeleteRuleGroupResponse {}))
    }

    async fn list_rule_groups(
        &self,
        _request: Request<pb::ListRuleGroupsRequest>,
    ) -> Result<Response<pb::ListRuleGroupsResponse>, Status> {
        let stored = self.service.stored_rule_groups().await?;
        let groups = convert::rule_groups(self.service.rule_groups(), stored);
        Ok(Response::new(pb::ListRuleGroupsResponse { groups }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let limit = convert::limit(request.limit)?;
        check_len("idempotency_key", &request.idempotency_key, MAX_NAME_BYTES)?;
        let key = (!request.idempotency_key.is_empty()).then_some(request.idempotency_key.as_str());
        let attempts = self
            .service
            .repository()
            .attempts(key, limit)
            .await
            .map_err(crate::AlertError::from)?
            .into_iter()
            .map(convert::attempt)
            .collect();
        Ok(Response::new(pb::ListDeliveriesResponse { attempts }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let limit = convert::limit(request.into_inner().limit)?;
        let dead_letters = self
            .service
            .repository()
            .dead_letters(limit)
            .await
            .map_err(crate::AlertError::from)?
            .into_iter()
            .map(convert::dead_letter)
            .collect();
        Ok(Response::new(pb::ListDeadLettersResponse { dead_letters }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::time_from_millis;
    use crate::dispatch::AlertEventKind;

    fn change(name: &str) -> AlertEvent {
        AlertEvent {
            kind: AlertEventKind::Firing,
            alert: crate::Alert {
                labels: [("alertname".to_owned(), name.to_owned())].into(),
                annotations: Default::default(),
                starts_at: time_from_millis(1_000),
                ends_at: time_from_millis(2_000),
                generator_url: String::new(),
                updated_at: time_from_millis(1_000),
                timeout: false,
            },
            acknowledgement: None,
        }
    }

    fn kind_only(change: AlertEvent) -> pb::AlertEvent {
        pb::AlertEvent {
            kind: convert::event_kind(change.kind) as i32,
            alert: None,
        }
    }

    #[tokio::test]
    async fn a_watch_gets_the_changes_it_selects_and_ends_when_it_falls_behind() {
        let (sender, receiver) = broadcast::channel(2);
        let selected = vec![pharos_routing::parse_matcher("alertname=~\"A|B\"").expect("matcher")];
        let mut stream = Box::pin(changes(receiver, selected, kind_only));
        sender.send(change("A")).expect("sent");
        sender.send(change("Other")).expect("sent");
        let first = stream.next().await.expect("a response").expect("ok");
        assert_eq!(first.events.len(), 1);
        assert!(!first.snapshot_complete);
        // Three more changes than the buffer holds: the watcher missed some.
        for _ in 0..3 {
            sender.send(change("B")).expect("sent");
        }
        let status = stream
            .next()
            .await
            .expect("a response")
            .expect_err("fell behind");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "watch fell behind; watch again");
        assert!(stream.next().await.is_none(), "the stream ends");
    }

    #[tokio::test]
    async fn a_watch_ends_when_the_dispatcher_goes_away() {
        let (sender, receiver) = broadcast::channel::<AlertEvent>(4);
        let mut stream = Box::pin(changes(receiver, Vec::new(), kind_only));
        drop(sender);
        assert!(stream.next().await.is_none());
    }
}
