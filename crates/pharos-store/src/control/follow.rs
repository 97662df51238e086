//! How a replica follows the changes other replicas commit. [`follow`] listens on a PostgreSQL
//! NOTIFY channel, hands each payload to its [`Follower`], and asks it to catch up from its
//! change log whenever notifications may have been missed (after LISTEN takes effect and after a
//! reconnect); a lost connection is retried with backoff; on SQLite it returns at once, since one
//! process owns the file and changes travel in memory. [`replicate`] runs it together with the
//! two periodic tasks every replica needs: a catch-up check (a safety net for missed
//! notifications) and the pruning of the change log.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::backend::{Notification, Store};
use crate::error::Result;

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
    /// The newest revision applied here.
    fn applied_revision(&self) -> i64;
    /// The newest revision committed in the store.
    fn committed_revision(&self) -> BoxFuture<'_, Result<i64>>;
    /// Prunes the change log of changes older than `before_micros`; returns the new compacted
    /// revision, if any.
    fn compact(&self, before_micros: i64) -> BoxFuture<'_, Result<Option<i64>>>;
}

/// How a replica of a service with a change log (config, search) keeps current: how long the
/// log keeps changes, how often it is pruned, and how often a replica checks for changes whose
/// notification it missed. The `replication` section of each such service's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSettings {
    /// How long changes stay in the change log. A follower resuming from an older revision
    /// must re-read everything (a config watcher gets OUT_OF_RANGE).
    #[serde(with = "pharos_clock::duration")]
    pub change_log_retention: Duration,
    /// How often old changes are pruned.
    #[serde(with = "pharos_clock::duration")]
    pub compaction_interval: Duration,
    /// How often a replica checks the revision counter for changes whose notification it
    /// missed (a safety net; notifications are the fast path).
    #[serde(with = "pharos_clock::duration")]
    pub catch_up_interval: Duration,
}

impl ReplicaSettings {
    /// Pruning every 10 minutes and a catch-up check every second, keeping `retention`.
    pub fn keeping(retention: Duration) -> Self {
        Self {
            change_log_retention: retention,
            compaction_interval: Duration::from_secs(600),
            catch_up_interval: Duration::from_secs(1),
        }
    }
}

/// Keeps `follower` current until the returned future is dropped: [`follow`] on `channel`, a
/// catch-up whenever the store's revision is ahead of the applied one (checked every
/// `settings.catch_up_interval`), and change-log pruning every `settings.compaction_interval`.
pub async fn replicate(
    store: &Store,
    channel: &str,
    follower: &dyn Follower,
    settings: ReplicaSettings,
) {
    let subject = follower.subject();
    let check = every(settings.catch_up_interval, || async {
        match follower.committed_revision().await {
            Ok(committed) if committed > follower.applied_revision() => follower.catch_up().await,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the revision of {subject}"),
        }
    });
    let prune = every(settings.compaction_interval, || async {
        let retention =
            i64::try_from(settings.change_log_retention.as_micros()).unwrap_or(i64::MAX);
        match follower
            .compact(store.clock().now_micros().saturating_sub(retention))
            .await
        {
            Ok(Some(upto)) => {
                tracing::info!(
                    compacted_revision = upto,
                    "change log of {subject} compacted"
                )
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "compaction of the change log of {subject} failed")
            }
        }
    });
    tokio::join!(follow(store, channel, follower), check, prune);
}

/// Runs `task` every `interval` (the first time at once), forever.
async fn every<F: Future<Output = ()>>(interval: Duration, task: impl Fn() -> F) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        task().await;
    }
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
