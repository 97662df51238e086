//! The alert service: Prometheus alerting and recording rules (the `pharos-rules` engine)
//! evaluated at each group's interval and as soon as ingest commits data a rule reads;
//! Alertmanager's routing (the `pharos-routing` engine), grouping, inhibition and silences; and
//! webhook notifications recorded so that none is lost or sent twice.
//!
//! - `settings.rs`: the `[alert]` section;
//! - `evaluator.rs`: [`RuleEvaluator`](evaluator::RuleEvaluator), the rule groups' tasks, the
//!   feed follower that triggers them, and rule state kept in the store;
//! - `alerts.rs`: [`Alert`], the alerts the dispatcher holds (from the rules and the API);
//! - `dispatch.rs`: [`Dispatcher`](dispatch::Dispatcher), Alertmanager's aggregation groups,
//!   inhibition, silencing and notification log;
//! - `silences.rs`: silences, Alertmanager's semantics;
//! - `notify/`: notifications: the webhook body (Alertmanager's version 4) and the sender with
//!   retries, signatures and `Retry-After`; `outbox.rs`: notifications written before they are
//!   sent and marked delivered with their log entry, dead letters;
//! - `self_monitoring.rs`: the process's own metrics written through ingest, and the built-in
//!   rules of `rules/self_monitoring.yml` over them;
//! - `detect/`: the security detectors (brute force, injection scoring, rate-limit abuse);
//!   `security.rs` runs them over ingest's committed security events and turns detections into
//!   alerts; `live_settings.rs` follows `pharos.alert.detectors.*`;
//! - `lease.rs`: the lease in the store that lets one replica lead (evaluate and notify);
//! - `service.rs`: [`AlertService`], start from the store's state, reload, the API's writes;
//! - `api/`: the Alertmanager API v2 and `POST /-/reload` on the HTTP listener;
//! - `grpc.rs`: [`AlertGrpc`](grpc::AlertGrpc), `pharos.alert.v1.AlertService` (alerts,
//!   acknowledgements, watch, silences, stored rule groups, deliveries), with its conversions
//!   and request limits in `convert.rs`;
//! - `module.rs`: [`AlertModule`], the registration of target `alert`.

pub mod alerts;
pub mod api;
mod convert;
pub mod detect;
pub mod dispatch;
pub mod error;
pub mod evaluator;
pub mod grpc;
mod lease;
mod live_settings;
mod module;
pub mod notify;
pub mod outbox;
mod security;
pub mod self_monitoring;
pub mod service;
pub mod settings;
pub mod silences;

pub use alerts::Alert;
pub use error::{AlertError, Result};
pub use module::AlertModule;
pub use service::AlertService;
pub use settings::{AlertSettings, WebhookSettings};
