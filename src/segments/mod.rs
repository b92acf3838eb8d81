//! Segments: reusable audiences, static or dynamic, for one channel.

mod dto;
pub mod queries;

use actix_web::{delete, get, patch, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

pub use dto::*;

use crate::auth::Caller;
use crate::error::{violated_unique_constraint, ApiError, Problem};
use crate::extract::{Json, Path, Query};
use crate::pagination::{Page, PageParams};
use crate::{db, AppState};

#[derive(serde::Deserialize)]
pub struct SegmentPath {
    pub id: i64,
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        "segment_name_taken",
        format!("A segment named \"{name}\" already exists."),
    )
}

fn map_write_error(name: Option<String>) -> impl FnOnce(diesel::result::Error) -> ApiError {
    move |error| match (violated_unique_constraint(&error), name) {
        (Some("segments_name_key"), Some(name)) => name_taken(&name),
        (_, _) => error.into(),
    }
}

/// List segments: search by name, filter by kind and channel, sort, page.
#[utoipa::path(
    tag = "segments",
    params(SegmentListParams, PageParams),
    responses((status = 200, body = Page<Segment>))
)]
#[get("/segments")]
async fn list_segments(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Query(params): Query<SegmentListParams>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<Segment>>, ApiError> {
    let sort = params
        .sort
        .as_deref()
        .and_then(SegmentSort::parse)
        .unwrap_or_default();
    let filters = queries::SegmentFilters {
        search: params
            .search
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_owned()),
        kind: params.kind.map(|kind| kind.as_str().to_owned()),
        channel: params.channel.map(|channel| channel.as_str().to_owned()),
    };
    let (rows, total) = db::run(&state.pool, move |conn| {
        queries::list(conn, tenant.id, &filters, sort, page.limit(), page.offset())
    })
    .await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// Create a segment. A static segment starts empty.
#[utoipa::path(
    tag = "segments",
    request_body = CreateSegment,
    responses(
        (status = 201, body = Segment),
        (status = 409, description = "`segment_name_taken`: another segment has this name (ignoring case).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/segments")]
async fn create_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateSegment>,
) -> Result<HttpResponse, ApiError> {
    match (input.kind, &input.filter) {
        (SegmentKind::Static, Some(_)) => {
            return Err(ApiError::invalid_field(
                "filter",
                "not_allowed",
                "a static segment has no filter",
            ));
        }
        (SegmentKind::Dynamic, _) => {
            return Err(ApiError::invalid_field(
                "kind",
                "dynamic_segments_unavailable",
                "dynamic segments are not available yet on this server",
            ));
        }
        (SegmentKind::Static, None) => {}
    }
    let name = input.name.clone();
    let segment = queries::NewSegment {
        tenant_id: tenant.id,
        name: input.name,
        description: input.description,
        kind: input.kind.as_str().to_owned(),
        channel: input.channel.as_str().to_owned(),
        filter: input.filter,
    };
    let row = db::run(&state.pool, move |conn| {
        queries::insert(conn, &segment).map_err(map_write_error(Some(name)))
    })
    .await?;
    Ok(HttpResponse::Created().json(Segment::from(row)))
}

/// Read a segment.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses((status = 200, body = Segment), (status = 404, description = "No such segment.", body = Problem, content_type = "application/problem+json"))
)]
#[get("/segments/{id}")]
async fn get_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
) -> Result<web::Json<Segment>, ApiError> {
    let id = path.0.id;
    let row = db::run(&state.pool, move |conn| queries::get(conn, tenant.id, id))
        .await
        .map_err(|e| e.or_not_found("segment"))?;
    Ok(web::Json(row.into()))
}

/// Rename a segment, change its description, or (dynamic only) its filter. `kind` and
/// `channel` are fixed.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    request_body = UpdateSegment,
    responses(
        (status = 200, body = Segment),
        (status = 404, description = "No such segment.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`segment_name_taken`: another segment has this name (ignoring case).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/segments/{id}")]
async fn update_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Json(input): Json<UpdateSegment>,
) -> Result<web::Json<Segment>, ApiError> {
    let id = path.0.id;
    let name = input.name.clone();
    let row = db::transaction(&state.pool, move |conn| {
        let current = queries::get(conn, tenant.id, id)
            .map_err(|e| ApiError::from(e).or_not_found("segment"))?;
        if input.filter.is_some() && SegmentKind::from_db(&current.kind) == SegmentKind::Static {
            return Err(ApiError::invalid_field(
                "filter",
                "not_allowed",
                "a static segment has no filter",
            ));
        }
        let changes = queries::SegmentChanges {
            name: input.name,
            description: input.description,
            filter: input.filter.map(Some),
        };
        queries::update(conn, tenant.id, id, &changes).map_err(map_write_error(name))
    })
    .await?;
    Ok(web::Json(row.into()))
}

/// Delete a segment. Its contacts stay; campaigns stop naming it.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses((status = 204, description = "Deleted."), (status = 404, description = "No such segment.", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/segments/{id}")]
async fn delete_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.0.id;
    let deleted = db::run(&state.pool, move |conn| {
        queries::delete(conn, tenant.id, id)
    })
    .await?;
    if !deleted {
        return Err(ApiError::NotFound("segment"));
    }
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_segments)
        .service(create_segment)
        .service(get_segment)
        .service(update_segment)
        .service(delete_segment);
}
