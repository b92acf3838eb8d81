//! Operations: liveness, readiness, Prometheus metrics and the request-metrics middleware.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{get, web, HttpMessage, HttpResponse};
use prometheus::Encoder;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::error::{ApiError, Problem};
use crate::http::metrics::method_label;
use crate::http::request_log::RequestIdentity;
use crate::http::state::AppState;
use crate::service::health;

/// How long `/readyz` waits for a database connection.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts and times every request under its route pattern (never its raw path, which
/// would make one series per id).
pub async fn track_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let mut response = next.call(request).await?;
    // The id the request's log lines carry, so a client's report can be found in the logs.
    let request_id = response
        .request()
        .extensions()
        .get::<RequestIdentity>()
        .map(|id| id.0.clone());
    if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16().to_string();
        let metrics = &state.metrics;
        metrics
            .requests
            .with_label_values(&[&method, &route, &status])
            .inc();
        metrics
            .latency
            .with_label_values(&[&method, &route])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: the process is up
///
/// Answers 200 `{"status": "ok"}` while the process serves requests, whatever the state
/// of the database (see `/readyz` for that). Takes no credentials; meant for a
/// container's liveness probe.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process is up.", body = Health))
)]
#[get("/healthz")]
async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness: the database answers
///
/// 200 when a pooled database connection is available within 2 seconds and answers; 503
/// (`database_unavailable`, with `Retry-After`) while it does not. Recovers by itself
/// once the database is back. Takes no credentials; meant for a load balancer's
/// readiness probe.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "The database answers: the service can take traffic.", body = Health),
        (status = 503, description = "`database_unavailable`: the database is unreachable; retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    health::database_ready(&state.env.pool, READINESS_TIMEOUT).await?;
    Ok(web::Json(Health { status: "ok" }))
}

/// Prometheus metrics
///
/// The Prometheus text format (0.0.4): `http_requests_total` by method, route pattern
/// and status, the `http_request_duration_seconds` histogram by method and route, and
/// the database pool's `db_pool_connections`, `db_pool_idle_connections` and
/// `db_pool_max_connections`. Routes are labelled by pattern (`/v1/segments/{id}`),
/// never by raw path. Takes no credentials.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The metrics, in the Prometheus text format.", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
async fn prometheus_metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let metrics = &state.metrics;
    let pool = state.env.pool.state();
    metrics.pool_connections.set(i64::from(pool.connections));
    metrics.pool_idle.set(i64::from(pool.idle_connections));
    metrics.pool_max.set(i64::from(state.env.pool.max_size()));
    let mut body = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&metrics.registry.gather(), &mut body)
        .map_err(crate::core::error::Error::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(healthz)
        .service(readyz)
        .service(prometheus_metrics);
}
