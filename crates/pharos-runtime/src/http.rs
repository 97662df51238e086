//! The HTTP side of every process: Prometheus `/metrics`, `/health` (each
//! component with its figures) and `/ready` (200 once every component is up
//! and the process is not shutting down, else 503), and [`require_bearer`] for the routes services
//! add.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::auth::TokenSet;
use crate::health::{HealthRegistry, HealthStatus};
use crate::shutdown::Shutdown;

#[derive(Clone)]
struct HttpState {
    health: Arc<HealthRegistry>,
    shutdown: Shutdown,
}

/// The router of the HTTP listener; services may merge routes of their own.
pub fn router(health: HealthRegistry, shutdown: Shutdown) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health_report))
        .route("/ready", get(ready))
        .with_state(HttpState {
            health: Arc::new(health),
            shutdown,
        })
}

/// Wraps the routes of the services (the Prometheus API, remote write) so that each request
/// must carry `Authorization: Bearer <token>` with one of `tokens`, as the gRPC port requires;
/// `/metrics`, `/health` and `/ready` are not in these routes and stay open for probes.
pub fn require_bearer(routes: Router, tokens: TokenSet) -> Router {
    routes.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let tokens = tokens.clone();
            async move {
                let presented = request
                    .headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .map(str::trim);
                match presented {
                    Some(token) if tokens.verify(token.as_bytes()).is_some() => {
                        next.run(request).await
                    }
                    _ => unauthorized(),
                }
            }
        },
    ))
}

/// 401 in the shape of the Prometheus API's errors, with the challenge HTTP clients expect.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({
            "status": "error",
            "errorType": "unauthorized",
            "error": "missing or unknown bearer token: send Authorization: Bearer <token>",
        })),
    )
        .into_response()
}

/// Serves `router` until the shutdown fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render_prometheus(),
    )
        .into_response()
}

async fn health_report(State(state): State<HttpState>) -> Response {
    let components = state.health.run().await;
    let worst = components
        .iter()
        .map(|(_, health)| health.status)
        .max()
        .unwrap_or(HealthStatus::Ok);
    let code = if worst == HealthStatus::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let components: serde_json::Map<String, serde_json::Value> = components
        .into_iter()
        .map(|(name, health)| {
            (
                name,
                serde_json::to_value(health).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    (
        code,
        Json(serde_json::json!({ "status": worst, "components": components })),
    )
        .into_response()
}

async fn ready(State(state): State<HttpState>) -> Response {
    if state.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let components = state.health.run().await;
    let down: Vec<&str> = components
        .iter()
        .filter(|(_, health)| health.status == HealthStatus::Down)
        .map(|(name, _)| name.as_str())
        .collect();
    if down.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {} down\n", down.join(", ")),
        )
            .into_response()
    }
}
