//! Campaign sends: freeze an audience, page or stream it by status, report outcomes.

use actix_web::{get, post, web, HttpResponse};
use chrono::Utc;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::auth::Caller;
use crate::http::campaigns::CampaignPath;
use crate::http::dto::sends::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::{next_after, Page, PageParams};
use crate::http::state::AppState;
use crate::http::streaming;
use crate::service::sends;

#[derive(serde::Deserialize)]
pub struct SendPath {
    pub id: i64,
}

const NO_CAMPAIGN: &str = "`not_found`: no such campaign.";
const NO_SEND: &str = "`not_found`: no such send.";
const EXPIRED: &str = "`send_expired`: the send's recipients were dropped past the retention horizon (`SEGMENTS_SEND_RETENTION_DAYS`); its final counts remain on `GET /v1/sends/{id}`.";

/// Outcome bodies are large by design: 10,000 outcomes with error messages.
const OUTCOMES_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Freeze a campaign's audience into a send
///
/// Resolves the audience as the summary does and keeps it: every eligible contact
/// becomes a recipient, with the name and address it has now, whatever happens to the
/// contact or the segments later (a contact deleted afterwards stays listed). The body is
/// empty (or `{}`). `summary` is the audience summary of that same instant, so
/// `progress.total` equals its `eligible`. Set-based: a million recipients take seconds.
/// Then page through `GET /v1/sends/{id}/recipients?status=pending`, message them, and
/// report outcomes. Records a `send.created` event.
#[utoipa::path(
    tag = "sends",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 201, description = "The send, frozen; every recipient pending.", body = Send),
        (status = 404, description = NO_CAMPAIGN),
    )
)]
#[post("/campaigns/{id}/sends")]
async fn create_send(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    let send = Send::from(sends::create(&state.env, tenant, path.0.id).await?);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/sends/{}", send.id)))
        .json(send))
}

/// List a campaign's sends
///
/// Newest first, paged with `page` and `per_page` (1 to 500, default 25); each with the
/// summary it froze. Read a send's progress with `GET /v1/sends/{id}`.
#[utoipa::path(
    tag = "sends",
    params(("id" = i64, Path, description = "Campaign id"), PageParams),
    responses(
        (status = 200, description = "A page of sends.", body = Page<SendOverview>),
        (status = 404, description = NO_CAMPAIGN),
    )
)]
#[get("/campaigns/{id}/sends")]
async fn list_sends(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<SendOverview>>, ApiError> {
    let (rows, total) =
        sends::list(&state.env, tenant, path.0.id, page.limit(), page.offset()).await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// Read a send and its progress
///
/// `progress` counts the recipients in each status now; the counts add up to `total`,
/// which never changes. A pending recipient who opted out after the freeze counts as
/// `skipped`. Once the recipients pass the retention horizon, `progress` holds their
/// final counts and `expired_at` says when they were dropped.
#[utoipa::path(
    tag = "sends",
    params(("id" = i64, Path, description = "Send id")),
    responses(
        (status = 200, description = "The send.", body = Send),
        (status = 404, description = NO_SEND),
    )
)]
#[get("/sends/{id}")]
async fn get_send(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SendPath>,
) -> Result<web::Json<Send>, ApiError> {
    Ok(web::Json(
        sends::get(&state.env, tenant, path.0.id).await?.into(),
    ))
}

/// List a send's recipients, a keyset page at a time
///
/// In contact id order, each with the name and address frozen and its status now;
/// `?status=pending` is who is left (never a contact who opted out since: they read as
/// `skipped`). Start without `after`; pass each answer's `next_after` as `after` until it
/// is null. `limit` is 1 to 10,000 (default 1,000).
#[utoipa::path(
    tag = "sends",
    params(("id" = i64, Path, description = "Send id"), RecipientParams),
    responses(
        (status = 200, description = "A page of recipients.", body = RecipientPage),
        (status = 404, description = NO_SEND),
        (status = 410, description = EXPIRED),
    )
)]
#[get("/sends/{id}/recipients")]
async fn list_recipients(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SendPath>,
    Query(params): Query<RecipientParams>,
) -> Result<web::Json<RecipientPage>, ApiError> {
    let limit = params.limit.unwrap_or(1000);
    let after = params.after.unwrap_or(0);
    let recipients =
        sends::page(&state.env, tenant, path.0.id, params.status, after, limit).await?;
    let next_after = next_after(&recipients, limit, |r| r.contact_id);
    let items = recipients.into_iter().map(Recipient::from).collect();
    Ok(web::Json(RecipientPage { items, next_after }))
}

/// Stream a send's recipients as NDJSON
///
/// The same recipients as the paged list (one JSON object per line, in contact id
/// order), streamed with constant memory; `?status=pending` is who is left, e.g. to
/// resume after a crash. A failure midway aborts the transfer, so a response that
/// completes holds every recipient asked for.
#[utoipa::path(
    tag = "sends",
    params(("id" = i64, Path, description = "Send id"), StreamParams),
    responses(
        (status = 200, description = "One recipient per line.", content_type = "application/x-ndjson", body = String),
        (status = 404, description = NO_SEND),
        (status = 410, description = EXPIRED),
    )
)]
#[get("/sends/{id}/recipients.ndjson")]
async fn stream_recipients(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SendPath>,
    Query(params): Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let batches = sends::stream(&state.env, tenant, path.0.id, params.status).await?;
    Ok(streaming::response(
        batches,
        "application/x-ndjson",
        "",
        |batch| {
            let recipients: Vec<Recipient> = batch.into_iter().map(Recipient::from).collect();
            streaming::ndjson(&recipients)
        },
    ))
}

/// Report what became of recipients
///
/// 1 to 10,000 outcomes (a body of up to 8 MB). A status only moves forward: pending ->
/// sent -> delivered -> read, or failed from pending or sent. An outcome already
/// reported, or behind the recipient's status, changes nothing (`unchanged`), so a
/// sender can retry a batch safely; a contact that is not a recipient of the send is
/// `rejected` (`not_a_recipient`). `at` defaults to now. A message that went out (sent,
/// delivered or read, from pending) sets the contact's `last_messaged_at`, which filters
/// read. `updated + unchanged + rejected` is the number of outcomes sent.
#[utoipa::path(
    tag = "sends",
    params(("id" = i64, Path, description = "Send id")),
    request_body = OutcomesRequest,
    responses(
        (status = 200, description = "What the report did.", body = OutcomesReport),
        (status = 404, description = NO_SEND),
        (status = 410, description = EXPIRED),
        (status = 422, description = "`validation_failed`: e.g. a status that cannot be reported (`not_reportable`: pending, skipped), more than 10,000 outcomes."),
    )
)]
#[post("/sends/{id}/outcomes")]
async fn report_outcomes(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SendPath>,
    Json(input): Json<OutcomesRequest, OUTCOMES_BODY_LIMIT>,
) -> Result<web::Json<OutcomesReport>, ApiError> {
    let outcomes = input.into_outcomes(Utc::now())?;
    let applied = sends::record(&state.env, tenant, path.0.id, outcomes).await?;
    Ok(web::Json(applied.into()))
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(create_send)
        .service(list_sends)
        .service(get_send)
        .service(stream_recipients)
        .service(list_recipients)
        .service(report_outcomes);
}
