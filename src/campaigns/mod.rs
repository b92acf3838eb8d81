//! Campaigns: which segments a send reaches and which it leaves out.

mod dto;
pub mod queries;

use actix_web::{delete, get, patch, post, web, HttpResponse};
use diesel::PgConnection;
use utoipa_actix_web::service_config::ServiceConfig;

pub use dto::*;

use crate::audience::query::Audience;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query};
use crate::pagination::{Page, PageParams};
use crate::segments::Channel;
use crate::tenants::TenantRow;
use crate::{db, AppState};

#[derive(serde::Deserialize)]
pub struct CampaignPath {
    pub id: i64,
}

/// Ids in the order given, each once.
pub fn unique(ids: &[i64]) -> Vec<i64> {
    let mut seen = Vec::with_capacity(ids.len());
    for id in ids {
        if !seen.contains(id) {
            seen.push(*id);
        }
    }
    seen
}

/// The campaign and its segments, or a 404 naming it.
pub fn find(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
) -> Result<queries::CampaignWithSegments, ApiError> {
    let row = queries::get(conn, tenant_id, id)
        .map_err(|e| ApiError::from(e).or_not_found("campaign"))?;
    let mut rows = queries::with_segments(conn, tenant_id, vec![row])?;
    Ok(rows.pop().expect("one campaign in, one out"))
}

fn save_segments(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    id: i64,
    channel: Channel,
    included: &[i64],
    excluded: &[i64],
) -> Result<(), ApiError> {
    let (included, excluded) = (unique(included), unique(excluded));
    Audience::resolve(conn, tenant, channel, &included, &excluded)?;
    Ok(queries::set_segments(
        conn, tenant.id, id, &included, &excluded,
    )?)
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
    let (rows, total) = db::run(&state.pool, move |conn| {
        let (rows, total) = queries::list(conn, tenant.id, page.limit(), page.offset())?;
        Ok::<_, ApiError>((queries::with_segments(conn, tenant.id, rows)?, total))
    })
    .await?;
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
        (status = 422, description = "`validation_failed`: a segment named does not exist (`segment_not_found`), has another channel (`channel_mismatch`), or is both included and excluded (`included_and_excluded`); each entry names its place, e.g. `segment_ids[1]`.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/campaigns")]
async fn create_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateCampaign>,
) -> Result<HttpResponse, ApiError> {
    let campaign = db::transaction(&state.pool, move |conn| {
        let row = queries::insert(conn, tenant.id, &input.name, input.channel.as_str())?;
        save_segments(
            conn,
            &tenant,
            row.id,
            input.channel,
            &input.segment_ids,
            &input.exclude_segment_ids,
        )?;
        find(conn, tenant.id, row.id)
    })
    .await?;
    Ok(HttpResponse::Created().json(Campaign::from(campaign)))
}

/// Read a campaign
///
/// Its name, channel, and the segments it includes and excludes.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign.", body = Campaign),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/campaigns/{id}")]
async fn get_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<web::Json<Campaign>, ApiError> {
    let id = path.0.id;
    let campaign = db::run(&state.pool, move |conn| find(conn, tenant.id, id)).await?;
    Ok(web::Json(campaign.into()))
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
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a segment named does not exist (`segment_not_found`), has another channel (`channel_mismatch`), or is both included and excluded (`included_and_excluded`); each entry names its place, e.g. `segment_ids[1]`.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/campaigns/{id}")]
async fn update_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
    Json(input): Json<UpdateCampaign>,
) -> Result<web::Json<Campaign>, ApiError> {
    let id = path.0.id;
    let campaign = db::transaction(&state.pool, move |conn| {
        let current = find(conn, tenant.id, id)?;
        if input.segment_ids.is_some() || input.exclude_segment_ids.is_some() {
            let included = input.segment_ids.unwrap_or(current.segment_ids);
            let excluded = input
                .exclude_segment_ids
                .unwrap_or(current.exclude_segment_ids);
            let channel = Channel::from_db(&current.campaign.channel);
            save_segments(conn, &tenant, id, channel, &included, &excluded)?;
        }
        queries::update(
            conn,
            tenant.id,
            id,
            &queries::CampaignChanges { name: input.name },
        )?;
        find(conn, tenant.id, id)
    })
    .await?;
    Ok(web::Json(campaign.into()))
}

/// Delete a campaign
///
/// Only the campaign goes: its segments and their contacts stay.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses((status = 204, description = "Deleted."), (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/campaigns/{id}")]
async fn delete_campaign(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.0.id;
    if !db::run(&state.pool, move |conn| {
        queries::delete(conn, tenant.id, id)
    })
    .await?
    {
        return Err(ApiError::NotFound("campaign"));
    }
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
