//! Graceful shutdown: one token every task of the process watches, tripped by
//! SIGTERM, SIGINT or a test. Servers stop accepting, finish in-flight calls
//! and end their streams when it fires.
//!
//! Background tasks are started with [`Shutdown::spawn`], which tracks them, so that whoever
//! stops a service can wait until every task that held part of it has ended
//! ([`Shutdown::wait_drained`]): a stopped service has released its files, locks and
//! connections when its stop returns, and a test can start the same service again at once.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A cloneable handle that says when the process is shutting down, and tracks the background
/// tasks that must end before it has stopped.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown; every clone sees it.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the shutdown has started.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Spawns a background task that ends when the shutdown fires (it must watch [`Self::wait`]
    /// or end by itself); [`Self::wait_drained`] waits for it.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Runs blocking work on tokio's blocking pool, tracked like [`Self::spawn`].
    pub fn spawn_blocking<F, T>(&self, work: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.tasks.spawn_blocking(work)
    }

    /// How many tracked tasks are still running.
    pub fn running_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Fires the shutdown (if nothing has yet) and resolves once every tracked task has ended.
    /// Tasks spawned after this call are still waited for, until none is left.
    pub async fn wait_drained(&self) {
        self.trigger();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Trips this handle on the first SIGTERM or SIGINT.
    pub fn trigger_on_signals(&self) {
        let shutdown = self.clone();
        // Not tracked: it waits for a signal that may never come, and ends with the process.
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; finishing in-flight calls");
            shutdown.trigger();
        });
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
