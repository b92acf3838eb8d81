//! The composition root: the application's routes and middleware, and the background
//! work a serving process runs. Used by `main` and by the tests alike.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpResponse};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use crate::http::error::ApiError;
use crate::http::request_log::RequestLog;
use crate::http::state::AppState;
use crate::http::{
    attributes, audience, campaigns, contacts, cors, events, idempotency, imports, members,
    openapi, ops, rate_limit, segments, sends, tenants, webhooks,
};
use crate::service;

/// Every route, registered so that the OpenAPI document cannot miss one.
fn routes(config: &mut ServiceConfig) {
    config.configure(ops::configure).service(
        scope::scope("/v1")
            .configure(tenants::configure)
            .configure(attributes::configure)
            .configure(contacts::configure)
            .configure(imports::configure)
            .configure(members::configure)
            .configure(segments::configure)
            .configure(campaigns::configure)
            .configure(audience::configure)
            .configure(sends::configure)
            .configure(events::configure)
            .configure(webhooks::configure),
    );
}

/// The OpenAPI document, generated from the handlers; needs no database.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    openapi::finish(&mut document);
    document
}

/// The one application, used by `main` and by the tests.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let rate_limits = state.rate_limits.clone();
    let cors = cors::policy(&state.config.cors_origins);
    let (app, mut document) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .app_data(state)
        .app_data(rate_limits)
        .configure(routes)
        .split_for_parts();
    openapi::finish(&mut document);
    // No validator badge: it would send the document's address to validator.swagger.io.
    let swagger_ui = SwaggerUi::new("/swagger-ui/{_:.*}")
        .url("/api-docs/openapi.json", document)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    app.service(swagger_ui)
        .service(web::redirect("/swagger-ui", "/swagger-ui/"))
        .default_service(web::to(not_found))
        // Innermost: a replayed answer does no work, but it counts against the rate limit.
        .wrap(from_fn(idempotency::replay_or_keep))
        .wrap(from_fn(rate_limit::limit_requests))
        .wrap(from_fn(ops::track_requests))
        .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
        // Preflights are answered before rate limits and credentials are looked at.
        .wrap(cors)
        .wrap(tracing_actix_web::TracingLogger::<RequestLog>::new())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute)
}

/// Forgets rate-limit state of callers quiet for a while, every minute.
pub fn keep_rate_limits_small(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(std::time::Duration::from_secs(60));
        loop {
            ticks.tick().await;
            state.rate_limits.forget_idle();
        }
    });
}

/// Forgets idempotency keys past their 24 hours, every minute (in batches, so one run
/// stays short whatever piled up).
pub fn keep_idempotency_keys_trimmed(env: service::Env) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(std::time::Duration::from_secs(60));
        loop {
            ticks.tick().await;
            if let Err(error) = service::idempotency::forget_expired(&env).await {
                tracing::warn!(%error, "could not forget expired idempotency keys");
            }
        }
    });
}

/// Deletes events past their retention, every ten minutes; a backlog in calls of a few
/// batches each, so the pooled connection goes back between calls.
pub fn keep_events_trimmed(env: service::Env, retention_days: u32) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(std::time::Duration::from_secs(600));
        loop {
            ticks.tick().await;
            loop {
                match service::events::purge(&env, retention_days).await {
                    Ok(purged) if purged.more => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "could not delete expired events");
                        break;
                    }
                }
            }
        }
    });
}

/// Keeps sends' day partitions made ahead and drops those past retention: at start,
/// then every ten minutes.
pub fn keep_send_partitions(env: service::Env, retention_days: u32) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(std::time::Duration::from_secs(600));
        loop {
            ticks.tick().await;
            match service::sends::upkeep(&env, retention_days).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "sends past retention kept their counts"),
                Err(error) => tracing::warn!(%error, "could not keep send partitions"),
            }
        }
    });
}

/// How often the evaluation job looks for dynamic segments to bring up to date.
const EVALUATE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps dynamic segments current where no write does it: those never evaluated (e.g.
/// from before their members were stored) and, once a day, those depending on the date.
pub fn keep_dynamic_segments_current(env: service::Env) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(EVALUATE_EVERY);
        loop {
            ticks.tick().await;
            if let Err(error) = service::dynamic::evaluate_all_due(&env).await {
                tracing::warn!(%error, "could not evaluate dynamic segments");
            }
        }
    });
}
