//! Segments: reusable audiences, static or dynamic, for one channel.

mod dto;
pub mod dynamic;
pub mod queries;

use actix_web::{delete, get, patch, post, web, HttpResponse};
use diesel::PgConnection;
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

/// The segment as the API shows it, its filter read back as a sentence.
pub fn present(
    conn: &mut PgConnection,
    tenant_id: i64,
    row: queries::SegmentRow,
) -> Result<Segment, ApiError> {
    let summary = dynamic::summarize(conn, tenant_id, row.filter.as_ref(), row.id)?;
    let mut segment = Segment::from(row);
    segment.filter_summary = summary;
    Ok(segment)
}

/// List segments
///
/// The tenant's segments, paged with `page` and `per_page` (1 to 500, default 25).
/// `search` matches part of the name, ignoring case; `kind` and `channel` narrow the
/// list; `sort` orders it by `name`, `created_at`, `updated_at` or `recipients`, `-`
/// first for descending (default `-created_at`, newest first). Each segment shows its
/// `filter_summary` and `recipients`; a dynamic segment's `recipients` here is at most
/// 60 s old (see `recipients_computed_at`).
#[utoipa::path(
    tag = "segments",
    params(SegmentListParams, PageParams),
    responses((status = 200, description = "A page of segments.", body = Page<Segment>))
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
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) =
            queries::list(conn, tenant.id, &filters, sort, page.limit(), page.offset())?;
        let items = rows
            .into_iter()
            .map(|row| present(conn, tenant.id, row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ApiError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(items, &page, total)))
}

/// Create a segment
///
/// A segment is a reusable audience for one `channel` (`whatsapp`, `sms`, `email`); its
/// `kind` and `channel` are fixed at creation. A `static` segment (the default) starts
/// empty: add members with the `/members` routes or a CSV import. A `dynamic` segment
/// needs a `filter` (see the filter language under `POST /v1/segments/preview`): its
/// members are the contacts the filter matches at read time, counted at once. The name
/// is trimmed and unique per tenant, ignoring case.
#[utoipa::path(
    tag = "segments",
    request_body = CreateSegment,
    responses(
        (status = 201, description = "The segment, created.", body = Segment),
        (status = 409, description = "`segment_name_taken`: another segment of the tenant has this name (ignoring case).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, each problem in `errors` with its JSON path (e.g. `filter.all[1].op`): a filter on a static segment (`not_allowed`), none on a dynamic one (`required`), or a filter that does not read (`unknown_field`, `undefined_attribute`, `invalid_operator`, `invalid_value`, `too_deep`, `too_many_conditions`, `segment_cycle`, ...); or `endpoint_limit_exceeded` (with `used`, `limit`, `requested`): the dynamic segment's members would take the tenant past its endpoint limit.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/segments")]
async fn create_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateSegment>,
) -> Result<HttpResponse, ApiError> {
    let segment = db::transaction(&state.pool, move |conn| {
        let node = match (input.kind, &input.filter) {
            (SegmentKind::Static, Some(_)) => {
                return Err(ApiError::invalid_field(
                    "filter",
                    "not_allowed",
                    "a static segment has no filter",
                ));
            }
            (SegmentKind::Dynamic, None) => {
                return Err(ApiError::invalid_field(
                    "filter",
                    "required",
                    "a dynamic segment needs a filter",
                ));
            }
            (SegmentKind::Dynamic, Some(filter)) => {
                let node = dynamic::parse_filter(conn, tenant.id, filter, "filter", None)?;
                if tenant.endpoint_limit.is_some() {
                    crate::members::queries::lock_tenant(conn, tenant.id)?;
                    crate::endpoints::check_dynamic_filter(
                        conn,
                        &tenant,
                        input.channel.as_str(),
                        None,
                        &node,
                    )?;
                }
                Some(node)
            }
            (SegmentKind::Static, None) => None,
        };
        let name = input.name.clone();
        let new_segment = queries::NewSegment {
            tenant_id: tenant.id,
            name: input.name,
            description: input.description,
            kind: input.kind.as_str().to_owned(),
            channel: input.channel.as_str().to_owned(),
            filter: input.filter,
        };
        let id = queries::insert(conn, &new_segment)
            .map_err(map_write_error(Some(name)))?
            .id;
        if let Some(node) = node {
            dynamic::refresh_count(conn, tenant.id, id, &node)?;
        }
        let row = queries::get(conn, tenant.id, id)?;
        present(conn, tenant.id, row)
    })
    .await?;
    Ok(HttpResponse::Created().json(segment))
}

/// Read a segment
///
/// The segment with its `filter_summary` (the filter as a sentence, "No filters" when
/// there is none) and `recipients`. A dynamic segment's `recipients` is counted now, so
/// this is the place for an exact figure.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses(
        (status = 200, description = "The segment.", body = Segment),
        (status = 404, description = "`not_found`: no such segment.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/segments/{id}")]
async fn get_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
) -> Result<web::Json<Segment>, ApiError> {
    let id = path.0.id;
    let segment = db::run(&state.pool, move |conn| {
        let mut row = queries::find(conn, tenant.id, id)?;
        if let Some(filter) = &row.filter {
            let node = dynamic::parse_filter(conn, tenant.id, filter, "filter", Some(id))?;
            let (recipients, at) = dynamic::refresh_count(conn, tenant.id, id, &node)?;
            (row.recipients, row.recipients_computed_at) = (recipients, Some(at));
        }
        present(conn, tenant.id, row)
    })
    .await?;
    Ok(web::Json(segment))
}

/// Change a segment
///
/// Rename it, change its description, or (dynamic only) replace its filter; fields left
/// out keep their value and `description: null` clears it. `kind` and `channel` are
/// fixed. A new filter is checked as on create, and the members follow it at once.
/// `updated_at` moves.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    request_body = UpdateSegment,
    responses(
        (status = 200, description = "The segment, changed.", body = Segment),
        (status = 404, description = "`not_found`: no such segment.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`segment_name_taken`: another segment of the tenant has this name (ignoring case).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, each problem in `errors` with its JSON path (e.g. `filter.all[1].op`): a filter on a static segment (`not_allowed`), none on a dynamic one (`required`), or a filter that does not read (`unknown_field`, `undefined_attribute`, `invalid_operator`, `invalid_value`, `too_deep`, `too_many_conditions`, `segment_cycle`, ...); or `endpoint_limit_exceeded` (with `used`, `limit`, `requested`): the dynamic segment's members would take the tenant past its endpoint limit.", body = Problem, content_type = "application/problem+json"),
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
    let segment = db::transaction(&state.pool, move |conn| {
        let current = queries::find(conn, tenant.id, id)?;
        let node = match &input.filter {
            Some(_) if SegmentKind::from_db(&current.kind) == SegmentKind::Static => {
                return Err(ApiError::invalid_field(
                    "filter",
                    "not_allowed",
                    "a static segment has no filter",
                ));
            }
            Some(filter) => {
                let node = dynamic::parse_filter(conn, tenant.id, filter, "filter", Some(id))?;
                if tenant.endpoint_limit.is_some() {
                    crate::members::queries::lock_tenant(conn, tenant.id)?;
                    crate::endpoints::check_dynamic_filter(
                        conn,
                        &tenant,
                        &current.channel,
                        Some(id),
                        &node,
                    )?;
                }
                Some(node)
            }
            None => None,
        };
        let changes = queries::SegmentChanges {
            name: input.name,
            description: input.description,
            filter: input.filter.map(Some),
        };
        queries::update(conn, tenant.id, id, &changes).map_err(map_write_error(name))?;
        if let Some(node) = node {
            dynamic::refresh_count(conn, tenant.id, id, &node)?;
        }
        let row = queries::get(conn, tenant.id, id)?;
        present(conn, tenant.id, row)
    })
    .await?;
    Ok(web::Json(segment))
}

/// Delete a segment
///
/// The segment and its memberships go; its contacts stay, and every campaign stops
/// naming it. Refused with 409 `segment_in_use` while a dynamic segment's filter names it
/// (`{"field": "segment", ...}`): change that filter first.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such segment.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`segment_in_use`: a dynamic segment's filter names it.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/segments/{id}")]
async fn delete_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.0.id;
    db::transaction(&state.pool, move |conn| {
        if let Some(user) = queries::named_by_a_filter(conn, tenant.id, id)? {
            return Err(ApiError::conflict(
                "segment_in_use",
                format!(
                    "Segment {user} uses this segment in its filter; change that filter first."
                ),
            ));
        }
        if queries::delete(conn, tenant.id, id)? {
            Ok(())
        } else {
            Err(ApiError::NotFound("segment"))
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Preview a filter before saving it
///
/// How many contacts the filter matches now (the `recipients` a dynamic segment with it
/// would have: members include opted-out and unreachable contacts), the first 10 of them
/// by id, and how it reads (`filter_summary`). Nothing is saved.
///
/// **The filter language.** A node is a group (`{"all": [nodes]}`, `{"any": [nodes]}`,
/// `{"not": node}`) or a condition `{"field", "op", "value"}`. Fields: `name`, `email`,
/// `phone` (the validated E.164 number), `phone_country`, `tags`, `created_at`,
/// `opted_out`, `privacy_consent`, `attributes.<key>` of a defined attribute, and
/// `segment` (membership of another segment of the tenant, static or dynamic).
/// Operators by type: text `eq neq in not_in contains not_contains starts_with exists
/// not_exists`; number `eq neq gt gte lt lte between in exists not_exists`; boolean `eq
/// exists not_exists`; date (`YYYY-MM-DD`) `eq before after between in_last_days
/// not_in_last_days in_next_days anniversary_this_month anniversary_today exists
/// not_exists`; tags `contains not_contains contains_any contains_all is_empty`; segment
/// `in not_in` with a segment id.
///
/// Negative operators and `not` match exactly the contacts their positive form does not,
/// including those that lack the value. Text `eq`, `neq`, `in`, `not_in` compare exactly;
/// `contains`, `not_contains`, `starts_with` ignore case and take `%` and `_` literally.
/// `between` includes both ends. Relative dates (`in_last_days`, `not_in_last_days`,
/// `in_next_days`) and anniversaries use the database's current date in UTC, today
/// included; a 29 February anniversary falls on 28 February in other years. At most 5
/// levels deep and 50 conditions; a segment may not include itself through others. Every
/// refusal is a 422 naming the JSON path of the offending node.
#[utoipa::path(
    tag = "segments",
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The count, a sample and the summary.", body = Preview),
        (status = 422, description = "`validation_failed`: the filter does not read; each problem in `errors` with its JSON path (e.g. `filter.all[1].op`) and code (`unknown_field`, `undefined_attribute`, `invalid_operator`, `invalid_value`, `too_deep`, `too_many_conditions`, `segment_not_found`, `segment_cycle`, ...).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/segments/preview")]
async fn preview_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<PreviewRequest>,
) -> Result<web::Json<Preview>, ApiError> {
    const SAMPLE: i64 = 10;
    let preview = db::run(&state.pool, move |conn| {
        use diesel::prelude::*;
        let node = dynamic::parse_filter(conn, tenant.id, &input.filter, "filter", None)?;
        let matching = dynamic::matching(tenant.id, dynamic::compile(tenant.id, &node));
        let count = matching().count().get_result(conn)?;
        let sample: Vec<crate::contacts::queries::ContactRow> = matching()
            .order(crate::db::schema::contacts::id)
            .limit(SAMPLE)
            .select(crate::contacts::queries::ContactRow::as_select())
            .load(conn)?;
        Ok::<_, ApiError>(Preview {
            count,
            sample: sample.into_iter().map(Into::into).collect(),
            filter_summary: crate::filter::summary::summarize(&node),
        })
    })
    .await?;
    Ok(web::Json(preview))
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_segments)
        .service(create_segment)
        .service(preview_segment)
        .service(get_segment)
        .service(update_segment)
        .service(delete_segment);
}
