//! Operations endpoints on the main listener, outside ACME (no nonces, no provisioner
//! routing): liveness (`GET /health`), readiness (`GET /ready`) and Prometheus metrics
//! (`GET /metrics`).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::app::AppState;

/// How long readiness waits for the database: a load balancer's probe usually gives up after
/// a few seconds, and a database slower than this is not one to send traffic to.
pub const READY_DATABASE_BOUND: Duration = Duration::from_secs(2);

/// The Prometheus text exposition format, version 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// Liveness: the process serves requests. Asks nothing of the database.
async fn health() -> Response {
    super::json_response(StatusCode::OK, None, &json!({"status": "ok"}))
}

/// Readiness: 200 when the database answers within [`READY_DATABASE_BOUND`] and the CA is
/// usable; else 503 naming each part that is not ready.
async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = state.0.authority.readiness(READY_DATABASE_BOUND).await;
    if not_ready.is_empty() {
        return super::json_response(
            StatusCode::OK,
            None,
            &json!({"status": "ready", "database": "ok", "ca": "ok"}),
        );
    }
    let mut body = json!({"status": "not ready", "database": "ok", "ca": "ok"});
    for part in &not_ready {
        body[part.part] = json!(part.reason);
    }
    super::json_response(StatusCode::SERVICE_UNAVAILABLE, None, &body)
}

/// The Prometheus text format; 404 when `metrics.enabled` is false.
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.0.metrics else {
        return super::not_found().await.into_response();
    };
    state.0.authority.observe_crl_age();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}
