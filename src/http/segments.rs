//! Segments: reusable audiences, static or dynamic, for one channel.

use actix_web::http::header;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::core::segment::Sort;
use crate::db::segments::SegmentFilters;
use crate::http::auth::Caller;
use crate::http::dto::segments::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::{Page, PageParams};
use crate::http::state::AppState;
use crate::http::versions::{self, IfMatch};
use crate::service::{filters, segments};

#[derive(serde::Deserialize)]
pub struct SegmentPath {
    pub id: i64,
}

/// List segments
///
/// The tenant's segments, paged with `page` and `per_page` (1 to 500, default 25).
/// `search` matches part of the name, ignoring case; `kind` and `channel` narrow the
/// list; `sort` orders it by `name`, `created_at`, `updated_at` or `recipients`, `-`
/// first for descending (default `-created_at`, newest first). Each segment shows its
/// `filter_summary` and `recipients`, exact for static and dynamic segments alike.
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
        .and_then(Sort::parse)
        .unwrap_or_default();
    let filters = SegmentFilters {
        search: params
            .search
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        kind: params.kind,
        channel: params.channel,
    };
    let (items, total) = segments::list(
        &state.env,
        tenant,
        filters,
        sort,
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(web::Json(Page::new(items, &page, total)))
}

/// Create a segment
///
/// A segment is a reusable audience for one `channel` (`whatsapp`, `sms`, `email`); its
/// `kind` and `channel` are fixed at creation. A `static` segment (the default) starts
/// empty, or with the contacts `contact_ids` names (picked before saving; added in the
/// same transaction under the membership rules and the endpoint limit, the answer then
/// carrying their `membership` report); add more with the `/members` routes or an import. A `dynamic` segment
/// needs a `filter` (see the filter language under `POST /v1/segments/preview`): its
/// members are the contacts the filter matches at read time, counted at once. The name
/// is trimmed and unique per tenant, ignoring case.
#[utoipa::path(
    tag = "segments",
    request_body = CreateSegment,
    responses(
        (status = 201, description = "The segment, created.", body = Segment),
        (status = 409, description = "`segment_name_taken`: another segment of the tenant has this name (ignoring case)."),
        (status = 422, description = "`validation_failed`, each problem in `errors` with its JSON path (e.g. `filter.all[1].op`): a filter on a static segment (`not_allowed`), none on a dynamic one (`required`), or a filter that does not read (`unknown_field`, `undefined_attribute`, `invalid_operator`, `invalid_value`, `too_deep`, `too_many_conditions`, `too_many_nodes`, `segment_not_found`, `segment_cycle`, `references_too_deep`, `filter_too_large` (this filter or one naming this segment would pass the bounds; the message names it), ...); or `endpoint_limit_exceeded` (with `used`, `limit`, `requested`): the dynamic segment's members would take the tenant past its endpoint limit."),
    )
)]
#[post("/segments")]
async fn create_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateSegment>,
) -> Result<HttpResponse, ApiError> {
    let (view, membership) = segments::create(&state.env, tenant, input.into()).await?;
    let mut segment = Segment::from(view);
    let etag = versions::etag(&segment);
    segment.membership = membership.map(Into::into);
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag))
        .json(segment))
}

/// Read a segment
///
/// The segment with its `filter_summary` (the filter as a sentence, "No filters" when
/// there is none) and `recipients`, the exact member count (a dynamic segment's members
/// follow its filter as contacts change).
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses(
        (status = 200, description = "The segment.", body = Segment),
        (status = 404, description = "`not_found`: no such segment."),
    )
)]
#[get("/segments/{id}")]
async fn get_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
) -> Result<HttpResponse, ApiError> {
    let segment = Segment::from(segments::get(&state.env, tenant, path.0.id).await?);
    Ok(versions::tagged(HttpResponse::Ok(), &segment).json(segment))
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
        (status = 404, description = "`not_found`: no such segment."),
        (status = 409, description = "`segment_name_taken`: another segment of the tenant has this name (ignoring case)."),
        (status = 422, description = "`validation_failed`, each problem in `errors` with its JSON path (e.g. `filter.all[1].op`): a filter on a static segment (`not_allowed`), none on a dynamic one (`required`), or a filter that does not read (`unknown_field`, `undefined_attribute`, `invalid_operator`, `invalid_value`, `too_deep`, `too_many_conditions`, `too_many_nodes`, `segment_not_found`, `segment_cycle`, `references_too_deep`, `filter_too_large` (this filter or one naming this segment would pass the bounds; the message names it), ...); or `endpoint_limit_exceeded` (with `used`, `limit`, `requested`): the dynamic segment's members would take the tenant past its endpoint limit."),
    )
)]
#[patch("/segments/{id}")]
async fn update_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    if_match: IfMatch,
    Json(input): Json<UpdateSegment>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Segment::from);
    let view = segments::update(&state.env, tenant, path.0.id, input.into(), precondition).await?;
    let segment = Segment::from(view);
    Ok(versions::tagged(HttpResponse::Ok(), &segment).json(segment))
}

/// Delete a segment
///
/// The segment and its memberships go; its contacts stay, and every campaign stops
/// naming it. Refused with 409 `segment_in_use` while another segment's filter names it
/// (`{"field": "segment", ...}`): change that filter first.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such segment."),
        (status = 409, description = "`segment_in_use`: another segment's filter names it; change that filter first."),
    )
)]
#[delete("/segments/{id}")]
async fn delete_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match.precondition(Segment::from);
    segments::delete(&state.env, tenant, path.0.id, precondition).await?;
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
/// `in_next_days`) and anniversaries count from the service's current date in UTC, today
/// included; a 29 February anniversary falls on 28 February in other years. A segment
/// named is read by its members (kept current as contacts change), never by expanding
/// its filter.
///
/// **Bounds.** A filter has at most 5 levels, 50 conditions and 200 groups and
/// conditions in all. A chain of segments naming segments is at most 3 deep, and a
/// filter with every segment it reaches (each counted once) at most 200 conditions; a
/// change that would take any segment naming this one past these bounds is refused,
/// naming that segment. A segment may not include itself. Every refusal is a 422
/// naming the JSON path of the offending node.
#[utoipa::path(
    tag = "segments",
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The count, a sample and the summary.", body = Preview),
        (status = 422, description = "`validation_failed`: the filter does not read; each problem in `errors` with its JSON path (e.g. `filter.all[1].op`) and code (`unknown_field`, `undefined_attribute`, `invalid_operator`, `invalid_value`, `too_deep`, `too_many_conditions`, `segment_not_found`, `segment_cycle`, ...)."),
    )
)]
#[post("/segments/preview")]
async fn preview_segment(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<PreviewRequest>,
) -> Result<web::Json<Preview>, ApiError> {
    const SAMPLE: i64 = 10;
    let preview = segments::preview(&state.env, tenant, input.filter, SAMPLE).await?;
    Ok(web::Json(Preview {
        count: preview.count,
        sample: preview.sample.into_iter().map(Into::into).collect(),
        filter_summary: preview.filter_summary,
    }))
}

/// Describe the filter language
///
/// Every field a dynamic segment's filter may name for this tenant (the built-in ones,
/// then its attributes), each with its type and the operators that apply, each with the
/// value it takes: what a filter editor builds its menus from. Generated from the table
/// the filter parser checks filters against, so it always says what the parser accepts.
#[utoipa::path(
    tag = "segments",
    responses((status = 200, description = "The fields and their operators.", body = FilterFields))
)]
#[get("/segments/filter-fields")]
async fn get_filter_fields(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<FilterFields>, ApiError> {
    let fields = filters::fields(&state.env, tenant).await?;
    Ok(web::Json(fields.into()))
}

pub fn configure(config: &mut ServiceConfig) {
    // Before `/segments/{id}`, which would take `filter-fields` for an id.
    config
        .service(get_filter_fields)
        .service(list_segments)
        .service(create_segment)
        .service(preview_segment)
        .service(get_segment)
        .service(update_segment)
        .service(delete_segment);
}
