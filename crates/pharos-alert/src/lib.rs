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
//! - `lease.rs`: the lease in the store that lets one replica lead (evaluate and notify);
//! - `service.rs`: [`AlertService`], start from the store's state, reload, the API's writes;
//! - `api/`: the Alertmanager API v2 and `POST /-/reload` on the HTTP listener;
//! - `module.rs`: [`AlertModule`], the registration of target `alert`.

pub mod alerts;
pub mod api;
pub mod dispatch;
pub mod error;
pub mod evaluator;
mod lease;
mod module;
pub mod notify;
pub mod outbox;
pub mod service;
pub mod settings;
pub mod silences;

pub use alerts::Alert;
pub use error::{AlertError, Result};
pub use module::AlertModule;
pub use service::AlertService;
pub use settings::{AlertSettings, WebhookSettings};
