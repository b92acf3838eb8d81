//! Audience resolution: who a campaign reaches, why the others are left out, and the
//! recipients themselves, paged or streamed.

use actix_web::{get, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::core::error::Error;
use crate::core::tenant::Tenant;
use crate::http::auth::Caller;
use crate::http::campaigns::CampaignPath;
use crate::http::dto::audience::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::next_after;
use crate::http::state::AppState;
use crate::http::streaming;
use crate::service::audience;

const NOT_FOUND: &str = "`not_found`: no such campaign.";

/// Summarise a campaign's audience
///
/// How many contacts the campaign reaches now, and why the others are left out. The
/// audience is the union of the members of `segment_ids` (each contact once), minus the
/// members of `exclude_segment_ids`, minus contacts that are opted out, lack privacy
/// consent on a tenant that requires it, or have no address for the channel (a validated
/// phone for WhatsApp and SMS, an email for email). Each excluded contact is counted once,
/// under the first reason in that order, so `eligible` plus the `excluded` counts equals
/// `total_unique`. Dynamic segments are evaluated at this moment.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The audience's counts.", body = AudienceSummary),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/campaigns/{id}/audience/summary")]
async fn get_audience_summary(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<web::Json<AudienceSummary>, ApiError> {
    let counts = audience::campaign_counts(&state.env, tenant, path.0.id).await?;
    Ok(web::Json(counts.into()))
}

/// Summarise an audience without a campaign
///
/// The same counts as a campaign's audience summary, for a channel and segments given
/// in the request: nothing is saved. Repeated ids count once. Every segment must exist
/// in the tenant and have the channel.
#[utoipa::path(
    tag = "campaigns",
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "The audience's counts.", body = AudienceSummary),
        (status = 422, description = "`validation_failed`: a segment named does not exist (`segment_not_found`), has another channel (`channel_mismatch`), or is both included and excluded (`included_and_excluded`); each entry names its place, e.g. `segment_ids[1]`."),
    )
)]
#[post("/audiences/resolve")]
async fn resolve_audience(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<ResolveRequest>,
) -> Result<web::Json<AudienceSummary>, ApiError> {
    let counts = audience::counts(
        &state.env,
        tenant,
        input.channel,
        input.segment_ids,
        input.exclude_segment_ids,
    )
    .await?;
    Ok(web::Json(counts.into()))
}

/// List a campaign's recipients, a keyset page at a time
///
/// The eligible contacts (see the audience summary for who is left out), each once, in
/// contact id order, with the address to send to: the E.164 phone for WhatsApp and SMS,
/// the email for email. Start without `after`; pass each answer's `next_after` as
/// `after` for the next page, until it is null. `limit` is 1 to 10,000 (default 1,000).
/// For the whole audience in one response, use `audience.ndjson`.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id"), KeysetParams),
    responses(
        (status = 200, description = "A page of recipients.", body = AudiencePage),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/campaigns/{id}/audience")]
async fn list_audience(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
    Query(params): Query<KeysetParams>,
) -> Result<web::Json<AudiencePage>, ApiError> {
    let limit = params.limit.unwrap_or(1000);
    let after = params.after.unwrap_or(0);
    let recipients = audience::page(&state.env, tenant, path.0.id, after, limit).await?;
    let next_after = next_after(&recipients, limit, |r| r.contact_id);
    let items = recipients
        .into_iter()
        .map(AudienceRecipient::from)
        .collect();
    Ok(web::Json(AudiencePage { items, next_after }))
}

/// Streams every recipient, each batch encoded by `encode`, after `header`.
async fn stream_audience(
    state: web::Data<AppState>,
    tenant: Tenant,
    id: i64,
    content_type: &'static str,
    header: &'static str,
    encode: fn(&[AudienceRecipient]) -> Result<Vec<u8>, Error>,
) -> Result<HttpResponse, ApiError> {
    let batches = audience::stream(&state.env, tenant, id).await?;
    Ok(streaming::response(
        batches,
        content_type,
        header,
        move |recipients| {
            let recipients: Vec<AudienceRecipient> = recipients
                .into_iter()
                .map(AudienceRecipient::from)
                .collect();
            encode(&recipients)
        },
    ))
}

/// Stream a campaign's whole audience as NDJSON
///
/// Every recipient, one JSON object per line (`{"contact_id", "name", "address"}`, as in
/// the paged list), in contact id order, streamed with constant memory whatever the
/// audience's size. A failure midway aborts the transfer (the chunked body never ends
/// properly), so a response that completes holds the whole audience.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "One recipient per line.", content_type = "application/x-ndjson", body = String),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/campaigns/{id}/audience.ndjson")]
async fn stream_audience_ndjson(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    stream_audience(
        state,
        tenant,
        path.0.id,
        "application/x-ndjson",
        "",
        streaming::ndjson,
    )
    .await
}

/// Stream a campaign's whole audience as CSV
///
/// For people and spreadsheets: a `contact_id,name,address` header, then one recipient
/// per row in contact id order, streamed with constant memory.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "`contact_id,name,address`, one recipient per row.", content_type = "text/csv", body = String),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/campaigns/{id}/audience.csv")]
async fn stream_audience_csv(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    stream_audience(
        state,
        tenant,
        path.0.id,
        "text/csv; charset=utf-8",
        "contact_id,name,address\n",
        |recipients| {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::with_capacity(recipients.len() * 48));
            for recipient in recipients {
                writer.serialize(recipient).map_err(Error::internal)?;
            }
            writer.into_inner().map_err(Error::internal)
        },
    )
    .await
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(get_audience_summary)
        .service(stream_audience_ndjson)
        .service(stream_audience_csv)
        .service(list_audience)
        .service(resolve_audience);
}
