//! `pharos health`: asks a running server's `grpc.health.v1.Health` whether it serves, the
//! whole server or named services, and exits non-zero when one does not. The image has no shell
//! and no probe binary, so Compose healthchecks and the Helm chart's test Pod use this.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::ClientArgs;

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A service to check, like `pharos.config.v1.ConfigService` (repeatable); none: the
    /// whole server.
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// How long each check may take.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn run_health(args: HealthArgs) -> anyhow::Result<()> {
    let settings = args.client.settings(None);
    let channel = tokio::time::timeout(args.timeout, settings.connect())
        .await
        .with_context(|| {
            format!(
                "{} did not answer within {:?}; is `pharos serve` running there?",
                args.client.endpoint, args.timeout
            )
        })??;
    let mut client = HealthClient::new(channel);
    let services = if args.services.is_empty() {
        vec![String::new()]
    } else {
        args.services
    };
    let mut failed = Vec::new();
    for service in services {
        let shown = if service.is_empty() {
            "(server)".to_owned()
        } else {
            service.clone()
        };
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: service.clone(),
        });
        request.set_timeout(args.timeout);
        let status = match client.check(request).await {
            Ok(reply) => ServingStatus::try_from(reply.into_inner().status)
                .map_or_else(|_| "UNKNOWN".to_owned(), |s| s.as_str_name().to_owned()),
            Err(status) if status.code() == tonic::Code::NotFound => {
                "NOT_FOUND (this process does not run it)".to_owned()
            }
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        if args.client.json {
            println!(
                "{}",
                serde_json::json!({"service": service, "status": status})
            );
        } else {
            println!("{shown}: {status}");
        }
        if status != "SERVING" {
            failed.push(shown);
        }
    }
    if !failed.is_empty() {
        bail!("not serving: {}", failed.join(", "));
    }
    Ok(())
}
