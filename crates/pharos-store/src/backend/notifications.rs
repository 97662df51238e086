//! [`Notifications`]: PostgreSQL `LISTEN` connections, through which replicas learn of what other
//! replicas committed ([`crate::Store::notifications`] opens one; SQLite has none).

use sqlx::postgres::PgListener;

use crate::error::Result;

/// What a [`Notifications`] stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A NOTIFY payload.
    Payload(String),
    /// The connection was lost and has been re-established: anything sent
    /// meanwhile was missed, so the caller must catch up from the database.
    Reconnected,
}

/// A PostgreSQL LISTEN connection.
pub struct Notifications {
    listener: PgListener,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").finish_non_exhaustive()
    }
}

impl Notifications {
    pub(super) fn new(listener: PgListener) -> Self {
        Self { listener }
    }

    /// Waits for the next notification; reconnects by itself after a lost
    /// connection and says so.
    pub async fn next(&mut self) -> Result<Notification> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Notification::Payload(notification.payload().to_string())),
            None => Ok(Notification::Reconnected),
        }
    }
}
