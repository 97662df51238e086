//! The watch hub of one replica: every applied change is offered to every
//! open Watch stream whose filter matches. Each stream has a bounded buffer;
//! a stream that falls behind has its pending events coalesced to the latest
//! per key (each keeping its own revision), so a slow reader never slows the
//! writers or the other watchers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pharos_proto::config::v1 as pb;
use tokio::sync::Notify;

use crate::error::ConfigError;

/// One change as watchers receive it, built once and shared.
#[derive(Debug)]
pub struct WatchItem {
    pub revision: i64,
    pub key: String,
    pub environment: String,
    pub event: pb::WatchEvent,
}

/// Which keys a stream wants: exact keys and prefixes; nothing means all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    keys: HashSet<String>,
    prefixes: Vec<String>,
}

impl Filter {
    pub fn new(keys: Vec<String>, prefixes: Vec<String>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
            prefixes,
        }
    }

    pub fn matches(&self, key: &str) -> bool {
        (self.keys.is_empty() && self.prefixes.is_empty())
            || self.keys.contains(key)
            || self.prefixes.iter().any(|prefix| key.starts_with(prefix))
    }
}

struct Queue {
    items: VecDeque<Arc<WatchItem>>,
    /// Coalesce when the queue grows past this; it rises when coalescing
    /// cannot shrink the queue (many distinct keys), so the work stays linear.
    coalesce_at: usize,
    closed: Option<ConfigError>,
}

struct Subscriber {
    filter: Filter,
    queue: Mutex<Queue>,
    ready: Notify,
}

/// The watch hub of one replica.
pub struct Hub {
    subscribers: RwLock<HashMap<u64, Arc<Subscriber>>>,
    next_id: AtomicU64,
    coalesced: AtomicU64,
    buffer: usize,
    max_watchers: usize,
}

impl Hub {
    pub fn new(buffer: usize, max_watchers: usize) -> Arc<Self> {
        Arc::new(Self {
            subscribers: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            coalesced: AtomicU64::new(0),
            buffer: buffer.max(1),
            max_watchers,
        })
    }

    /// Starts buffering the changes that match `filter`.
    pub fn subscribe(self: &Arc<Self>, filter: Filter) -> Result<Subscription, ConfigError> {
        let subscriber = Arc::new(Subscriber {
            filter,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                coalesce_at: self.buffer,
                closed: None,
            }),
            ready: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut subscribers = write(&self.subscribers);
            if subscribers.len() >= self.max_watchers {
                return Err(ConfigError::Overloaded {
                    reason: format!(
                        "this replica already serves {} watch streams (config.watch.max_watchers); retry on another replica or later",
                        subscribers.len()
                    ),
                    retry_after: Duration::from_secs(1),
                });
            }
            subscribers.insert(id, subscriber.clone());
        }
        Ok(Subscription {
            hub: self.clone(),
            id,
            subscriber,
        })
    }

    /// Offers a change to every matching stream.
    pub fn publish(&self, item: Arc<WatchItem>) {
        let subscribers = read(&self.subscribers);
        for subscriber in subscribers.values() {
            if !subscriber.filter.matches(&item.key) {
                continue;
            }
            let mut queue = lock(&subscriber.queue);
            if queue.closed.is_some() {
                // An ended stream gets nothing after the error that ended it.
                continue;
            }
            queue.items.push_back(item.clone());
            if queue.items.len() > queue.coalesce_at {
                let before = queue.items.len();
                coalesce(&mut queue.items);
                self.coalesced
                    .fetch_add((before - queue.items.len()) as u64, Ordering::Relaxed);
                queue.coalesce_at = (queue.items.len() * 2).max(self.buffer);
            }
            drop(queue);
            subscriber.ready.notify_one();
        }
    }

    /// Ends every stream with `error`.
    pub fn close_all(&self, error: ConfigError) {
        for subscriber in read(&self.subscribers).values() {
            lock(&subscriber.queue).closed = Some(error.clone());
            subscriber.ready.notify_one();
        }
    }

    pub fn watchers(&self) -> usize {
        read(&self.subscribers).len()
    }

    /// Events dropped by coalescing, in total.
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }
}

/// Keeps only the latest item of each key and environment, in revision order.
fn coalesce(items: &mut VecDeque<Arc<WatchItem>>) {
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(items.len());
    let mut keep = vec![false; items.len()];
    for (index, item) in items.iter().enumerate().rev() {
        keep[index] = seen.insert((item.key.as_str(), item.environment.as_str()));
    }
    let mut index = 0;
    items.retain(|_| {
        let kept = keep[index];
        index += 1;
        kept
    });
}

/// An open stream's place in the hub; leaving the hub when dropped.
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    subscriber: Arc<Subscriber>,
}

impl Subscription {
    /// Waits for the next buffered events (all of them, in revision order).
    pub async fn next_batch(&self) -> Result<Vec<Arc<WatchItem>>, ConfigError> {
        loop {
            {
                let mut queue = lock(&self.subscriber.queue);
                if !queue.items.is_empty() {
                    queue.coalesce_at = self.hub.buffer;
                    return Ok(queue.items.drain(..).collect());
                }
                if let Some(error) = &queue.closed {
                    return Err(error.clone());
                }
            }
            self.subscriber.ready.notified().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        write(&self.hub.subscribers).remove(&self.id);
    }
}

// The hub's locks guard plain data that no panic can leave half-written, so
// a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(revision: i64, key: &str) -> Arc<WatchItem> {
        Arc::new(WatchItem {
            revision,
            key: key.into(),
            environment: String::new(),
            event: pb::WatchEvent::default(),
        })
    }

    #[tokio::test]
    async fn filters_and_orders() {
        let hub = Hub::new(16, 10);
        let sub = hub
            .subscribe(Filter::new(vec!["a".into()], vec!["app.".into()]))
            .expect("subscribe");
        hub.publish(item(1, "a"));
        hub.publish(item(2, "b"));
        hub.publish(item(3, "app.x"));
        let batch = sub.next_batch().await.expect("batch");
        let revisions: Vec<i64> = batch.iter().map(|i| i.revision).collect();
        assert_eq!(revisions, [1, 3]);
    }

    #[tokio::test]
    async fn slow_watcher_coalesces_to_latest_per_key() {
        let hub = Hub::new(4, 10);
        let sub = hub.subscribe(Filter::default()).expect("subscribe");
        for revision in 1..=20 {
            let key = if revision % 2 == 0 { "even" } else { "odd" };
            hub.publish(item(revision, key));
        }
        let batch = sub.next_batch().await.expect("batch");
        let got: Vec<(i64, &str)> = batch.iter().map(|i| (i.revision, i.key.as_str())).collect();
        assert_eq!(got, [(19, "odd"), (20, "even")]);
        assert!(hub.coalesced() >= 18);
    }

    #[tokio::test]
    async fn watcher_limit_and_drop() {
        let hub = Hub::new(4, 1);
        let first = hub.subscribe(Filter::default()).expect("subscribe");
        assert!(matches!(
            hub.subscribe(Filter::default()),
            Err(ConfigError::Overloaded { .. })
        ));
        drop(first);
        assert_eq!(hub.watchers(), 0);
        assert!(hub.subscribe(Filter::default()).is_ok());
    }
}
