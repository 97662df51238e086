//! Leadership among alert replicas: one lease row in the store (`alert_leases`), taken or
//! renewed in one atomic statement. The holder renews it every `ttl / 4`; when it stops (a
//! crash, a partition from the database) the lease expires after `ttl` and the next replica to
//! try takes it, so a standby takes over within `ttl + ttl / 4` (5 s with the default 4 s).
//! Only the leader evaluates rules and sends notifications; every replica serves the API.

use std::time::Duration;

use pharos_clock::Clock;
use pharos_runtime::Shutdown;
use pharos_store::control::alerts::AlertRepository;
use tokio::sync::watch;

/// The one lease the alert replicas share.
const LEASE_NAME: &str = "alert";

/// This replica's name in the lease: host, process and a random part (two processes of one
/// host never share it).
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

/// Takes and keeps the lease while the process runs; the receiver says whether this replica
/// leads. Losing the database counts as losing the lease: a leader that cannot renew steps
/// down before its lease can expire elsewhere.
pub fn follow_lease(
    repository: AlertRepository,
    holder: String,
    ttl: Duration,
    clock: Clock,
    shutdown: &Shutdown,
) -> watch::Receiver<bool> {
    let (leading, receiver) = watch::channel(false);
    let task_shutdown = shutdown.clone();
    shutdown.spawn(async move {
        let renew_every = (ttl / 4).max(Duration::from_millis(50));
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // The time up to which our lease certainly holds: renewed at `now`, it holds until
        // `now + ttl` by the database's reckoning; we step down earlier, at `now + ttl / 2`,
        // when renewals fail, so two replicas never lead at once.
        let mut holds_until: Option<tokio::time::Instant> = None;
        loop {
            let now_ms = clock.now_micros().div_euclid(1000);
            let attempt_started = tokio::time::Instant::now();
            match repository
                .try_acquire_lease(LEASE_NAME, &holder, now_ms, ttl_ms)
                .await
            {
                Ok(true) => {
                    holds_until = Some(attempt_started + ttl / 2);
                    if !*leading.borrow() {
                        tracing::info!(%holder, "this replica now leads: it evaluates rules and sends notifications");
                    }
                    leading.send_replace(true);
                }
                Ok(false) => {
                    holds_until = None;
                    if *leading.borrow() {
                        tracing::warn!(%holder, "lease lost to another replica; standing by");
                    }
                    leading.send_replace(false);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the alert lease");
                    if holds_until.is_none_or(|until| tokio::time::Instant::now() >= until) {
                        if *leading.borrow() {
                            tracing::warn!("stepping down: the lease could not be renewed in time");
                        }
                        leading.send_replace(false);
                    }
                }
            }
            tokio::select! {
                _ = task_shutdown.wait() => break,
                _ = tokio::time::sleep(renew_every) => {}
            }
        }
        leading.send_replace(false);
        if let Err(error) = repository.release_lease(LEASE_NAME, &holder).await {
            tracing::debug!(%error, "the lease was not released; it expires by itself");
        }
    });
    receiver
}
