//! Writes to Pharos' ingest as the benchmarks send them: `WriteMetrics` and
//! `WriteSecurityEvents` sent again after a pause while the service says it is overloaded
//! (RESOURCE_EXHAUSTED, UNAVAILABLE), for up to a minute; any rejected item fails the run,
//! since the harness only sends valid data.

use std::time::Duration;

use anyhow::{Context as _, bail};
use pharos_proto::ingest::v1 as pb;
use pharos_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use tonic::transport::Channel;

/// Pause between attempts while the service is overloaded.
const OVERLOAD_PAUSE: Duration = Duration::from_millis(100);
/// Attempts before giving up (a minute of pauses).
const ATTEMPTS: u64 = 600;

/// Sends the `WriteMetrics` request `points` builds (built again for a retry, so a request is
/// not copied just in case); returns the points accepted and the retries.
pub async fn write_metrics(
    client: &mut IngestServiceClient<Channel>,
    points: impl Fn() -> Vec<pb::MetricPoint>,
) -> anyhow::Result<(u64, u64)> {
    for retries in 0..ATTEMPTS {
        let request = pb::WriteMetricsRequest { points: points() };
        let reply = client.write_metrics(request).await.map(|reply| {
            let reply = reply.into_inner();
            (reply.accepted, reply.rejected, reply.rejections)
        });
        if let Some(accepted) = accepted_or_retry(reply, "points", "WriteMetrics")? {
            return Ok((accepted, retries));
        }
        tokio::time::sleep(OVERLOAD_PAUSE).await;
    }
    bail!("pharos stayed overloaded for a minute")
}

/// [`write_metrics`] for security events; returns the events accepted.
pub async fn write_security_events(
    client: &mut IngestServiceClient<Channel>,
    events: impl Fn() -> Vec<pb::SecurityEvent>,
) -> anyhow::Result<u64> {
    for _ in 0..ATTEMPTS {
        let request = pb::WriteSecurityEventsRequest { events: events() };
        let reply = client.write_security_events(request).await.map(|reply| {
            let reply = reply.into_inner();
            (reply.accepted, reply.rejected, reply.rejections)
        });
        if let Some(accepted) = accepted_or_retry(reply, "security events", "WriteSecurityEvents")?
        {
            return Ok(accepted);
        }
        tokio::time::sleep(OVERLOAD_PAUSE).await;
    }
    bail!("pharos stayed overloaded for a minute")
}

/// The items accepted, `None` when the service is overloaded (try again), or the failure.
fn accepted_or_retry(
    reply: Result<(u64, u64, Vec<pb::Rejection>), tonic::Status>,
    items: &str,
    rpc: &'static str,
) -> anyhow::Result<Option<u64>> {
    match reply {
        Ok((accepted, rejected, rejections)) => {
            if let Some(rejection) = rejections.first() {
                bail!(
                    "pharos rejected {rejected} {items}, the first for {} ({}): {}",
                    rejection.reason,
                    rejection.field,
                    rejection.message
                );
            }
            Ok(Some(accepted))
        }
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable
            ) =>
        {
            Ok(None)
        }
        Err(status) => Err(status).context(format!("{rpc} failed")),
    }
}
