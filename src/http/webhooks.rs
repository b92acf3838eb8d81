//! Webhooks: push the tenant's events to a receiver, signed, in order, at least once.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::auth::Caller;
use crate::http::dto::webhooks::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::{Page, PageParams};
use crate::http::state::AppState;
use crate::http::versions::{self, IfMatch};
use crate::service::webhooks;

#[derive(serde::Deserialize)]
pub struct WebhookPath {
    pub id: i64,
}

const NOT_FOUND: &str = "`not_found`: no such webhook.";

/// List webhooks
///
/// The tenant's webhooks, oldest first, paged with `page` and `per_page`, each with how
/// its deliveries fare.
#[utoipa::path(
    tag = "events",
    params(PageParams),
    responses((status = 200, description = "A page of webhooks.", body = Page<Webhook>))
)]
#[get("/webhooks")]
async fn list_webhooks(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<Webhook>>, ApiError> {
    let (rows, total) = webhooks::list(&state.env, tenant, page.limit(), page.offset()).await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// Subscribe a webhook
///
/// The events of `event_types` recorded from now on are POSTed to `url` in batches of up
/// to 500, in order, as `{"events": [...]}` (each event as the feed shows it), following
/// the Standard Webhooks specification: headers `webhook-id` (the same on every retry of
/// a batch), `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,` and the
/// base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the secret). Any 2xx within 10
/// seconds acknowledges a batch; anything else is retried with growing delays (seconds,
/// then minutes, then hourly) for 25 hours, after which the webhook is disabled and says
/// why. Delivery is at least once: deduplicate on event ids. The answer carries the
/// signing `secret`, shown only here. At most 10 webhooks per tenant. The URL must be
/// `http` or `https` and not on a private, loopback or link-local network (unless the
/// service runs with `SEGMENTS_WEBHOOK_ALLOW_PRIVATE=true`).
#[utoipa::path(
    tag = "events",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook, with its secret.", body = CreatedWebhook),
        (status = 422, description = "`validation_failed`: the URL is not http(s) (`invalid_url`) or points to a private address (`private_address`); `too_many_webhooks`: the tenant has 10 already."),
    )
)]
#[post("/webhooks")]
async fn create_webhook(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let row = webhooks::create(&state.env, tenant, input.into()).await?;
    let secret = row.secret.clone();
    let webhook = Webhook::from(row);
    Ok(
        versions::tagged(HttpResponse::Created(), &webhook)
            .json(CreatedWebhook { webhook, secret }),
    )
}

/// Read a webhook
///
/// Its settings and how its deliveries fare; never its secret.
#[utoipa::path(
    tag = "events",
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook.", body = Webhook),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/webhooks/{id}")]
async fn get_webhook(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<WebhookPath>,
) -> Result<HttpResponse, ApiError> {
    let webhook = Webhook::from(webhooks::get(&state.env, tenant, path.0.id).await?);
    Ok(versions::tagged(HttpResponse::Ok(), &webhook).json(webhook))
}

/// Change, pause or enable a webhook
///
/// Fields left out keep their value. `enabled: false` pauses deliveries (events keep
/// being recorded); `enabled: true` resumes them, retries starting afresh, from the first
/// event not yet delivered, if it is still kept.
#[utoipa::path(
    tag = "events",
    params(("id" = i64, Path, description = "Webhook id")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The webhook, changed.", body = Webhook),
        (status = 404, description = NOT_FOUND),
        (status = 422, description = "`validation_failed`: the URL is not http(s) (`invalid_url`) or points to a private address (`private_address`)."),
    )
)]
#[patch("/webhooks/{id}")]
async fn update_webhook(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<WebhookPath>,
    if_match: IfMatch,
    Json(input): Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Webhook::from);
    let row = webhooks::update(&state.env, tenant, path.0.id, input.into(), precondition);
    let webhook = Webhook::from(row.await?);
    Ok(versions::tagged(HttpResponse::Ok(), &webhook).json(webhook))
}

/// Delete a webhook
///
/// Deliveries stop; a batch in flight may still arrive.
#[utoipa::path(
    tag = "events",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted."), (status = 404, description = NOT_FOUND))
)]
#[delete("/webhooks/{id}")]
async fn delete_webhook(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<WebhookPath>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Webhook::from);
    webhooks::delete(&state.env, tenant, path.0.id, precondition).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List a webhook's recent deliveries
///
/// Its latest delivery attempts, newest first (the last 100 are kept): the events each
/// carried, the receiver's status code or the error, and when a failed batch is tried
/// again.
#[utoipa::path(
    tag = "events",
    params(("id" = i64, Path, description = "Webhook id"), DeliveryParams),
    responses(
        (status = 200, description = "The delivery log.", body = DeliveryLog),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/webhooks/{id}/deliveries")]
async fn list_deliveries(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<WebhookPath>,
    Query(params): Query<DeliveryParams>,
) -> Result<web::Json<DeliveryLog>, ApiError> {
    let limit = params.limit.unwrap_or(20);
    let rows = webhooks::deliveries(&state.env, tenant, path.0.id, limit).await?;
    Ok(web::Json(DeliveryLog {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_webhooks)
        .service(create_webhook)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(list_deliveries);
}
