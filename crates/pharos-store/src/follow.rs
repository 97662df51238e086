//! [`follow`]: how a replica follows the changes other replicas commit. It listens on a
//! PostgreSQL NOTIFY channel, hands each payload to its [`Follower`], and asks it to catch up
//! from its change log whenever notifications may have been missed (after LISTEN takes effect
//! and after a reconnect). A lost connection is retried with backoff. On SQLite it returns at
//! once: one process owns the file, so changes travel in memory.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::backend::{Notification, Store};

/// What a replica does with the changes of one channel.
pub trait Follower: Send + Sync {
    /// What follows, for logs ("configuration changes").
    fn subject(&self) -> &'static str;
    /// Applies everything committed and not yet applied; logs its own failures.
    fn catch_up(&self) -> BoxFuture<'_, ()>;
    /// A notification arrived with `payload`; logs its own failures.
    fn notified<'a>(&'a self, payload: &'a str) -> BoxFuture<'a, ()>;
    /// Whether notifications currently flow, for health reports.
    fn set_listening(&self, listening: bool);
}

/// Follows `channel` for `follower` until the returned future is dropped; returns at once on
/// SQLite.
pub async fn follow(store: &Store, channel: &str, follower: &dyn Follower) {
    let subject = follower.subject();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut notifications = match store.notifications(channel).await {
            Ok(Some(notifications)) => notifications,
            Ok(None) => return,
            Err(error) => {
                follower.set_listening(false);
                tracing::warn!(%error, retry_in = ?backoff, "cannot listen for {subject}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        follower.set_listening(true);
        backoff = Duration::from_millis(100);
        // Anything committed before LISTEN took effect is in the log.
        follower.catch_up().await;
        loop {
            match notifications.next().await {
                Ok(Notification::Payload(payload)) => follower.notified(&payload).await,
                Ok(Notification::Reconnected) => {
                    tracing::info!("notifications of {subject} reconnected; catching up");
                    follower.catch_up().await;
                }
                Err(error) => {
                    follower.set_listening(false);
                    tracing::warn!(%error, "the notification connection of {subject} was lost");
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}
