//! The control room: the control-plane state of the services. The configuration repository, the
//! vector index repository and the loop with which a replica follows the changes other replicas
//! commit to either of them; and the alert repository, where the alert service keeps its rule
//! state, alerts, silences, notification outbox and leader lease.

pub mod alerts;
pub mod config;
pub mod follow;
pub mod vectors;
