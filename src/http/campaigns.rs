//! Campaigns: which segments a send reaches and which it leaves out.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::auth::Caller;
use crate::http::dto::campaigns::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::{Page, PageParams};
use crate::http::state::AppState;
use crate::http::versions::{self, IfMatch};
use crate::service::campaigns;

#[derive(serde::Deserialize)]
pub struct CampaignPath {
    pub id: i64,
}

const NOT_FOUND: &str = "`not_found`: no such campaign.";

/// List campaigns
///
/// The tenant's campaigns, newest first, paged with `page` and `per_page` (1 to 500,
/// default 25). A page past the end has no items.
#[utoipa::path(
    tag = "campaigns",
    params(PageParams),
    responses((status = 200, description = "A page of campaigns.", body = Page<Campaign>))
)]
#[get("/campaigns")]
async fn list_campaigns(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<Campaign>>, ApiError> {
    let (rows, total) = campaigns::list(&state.env, tenant, page.limit(), page.offset()).await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// Create a campaign
///
/// A campaign names the segments whose members it reaches (`segment_ids`) and those whose
/// members it leaves out (`exclude_segment_ids`). Every segment must exist in the tenant
/// and have the campaign's channel; a segment cannot be both included and excluded.
/// Repeated ids count once. The channel is fixed at creation. Read who it reaches with
/// `GET /v1/campaigns/{id}/audience/summary`.
#[utoipa::path(
    tag = "campaigns",
    request_body = CreateCampaign,
    responses(
        (status = 201, description = "The campaign, created.", body = Campaign),
        (status = 422, description = "`validation_failed`: a segment named does not exist (`segment_not_found`), has another channel (`channel_mismatch`), or is both included and excluded (`included_and_excluded`); each entry names its place, e.g. `segment_ids[1]`."),
    )
)]
#[post("/campaigns")]
async fn create_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateCampaign>,
) -> Result<HttpResponse, ApiError> {
    let campaign = Campaign::from(campaigns::create(&state.env, tenant, input.into()).await?);
    Ok(versions::tagged(HttpResponse::Created(), &campaign).json(campaign))
}

/// Read a campaign
///
/// Its name, channel, and the segments it includes and excludes.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign.", body = Campaign),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/campaigns/{id}")]
async fn get_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    let campaign = Campaign::from(campaigns::get(&state.env, tenant, path.0.id).await?);
    Ok(versions::tagged(HttpResponse::Ok(), &campaign).json(campaign))
}

/// Rename a campaign or change its segments
///
/// Fields left out keep their value; a list given replaces the old one whole. The
/// resulting lists are checked as on create: every segment must exist and have the
/// campaign's channel, and none may be both included and excluded. The channel is fixed.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    request_body = UpdateCampaign,
    responses(
        (status = 200, description = "The campaign, changed.", body = Campaign),
        (status = 404, description = NOT_FOUND),
        (status = 422, description = "`validation_failed`: a segment named does not exist (`segment_not_found`), has another channel (`channel_mismatch`), or is both included and excluded (`included_and_excluded`); each entry names its place, e.g. `segment_ids[1]`."),
    )
)]
#[patch("/campaigns/{id}")]
async fn update_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
    if_match: IfMatch,
    Json(input): Json<UpdateCampaign>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Campaign::from);
    let campaign = campaigns::update(&state.env, tenant, path.0.id, input.into(), precondition);
    let campaign = Campaign::from(campaign.await?);
    Ok(versions::tagged(HttpResponse::Ok(), &campaign).json(campaign))
}

/// Delete a campaign
///
/// Only the campaign goes: its segments and their contacts stay. A campaign with sends
/// cannot be deleted: its sends are the record of what was sent.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = "`campaign_has_sends`: the campaign has sends."),
    )
)]
#[delete("/campaigns/{id}")]
async fn delete_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Campaign::from);
    campaigns::delete(&state.env, tenant, path.0.id, precondition).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_campaigns)
        .service(create_campaign)
        .service(get_campaign)
        .service(update_campaign)
        .service(delete_campaign);
}
