//! Static segment membership: add, remove, list, export.

use std::collections::BTreeSet;

use actix_web::{delete, get, post, web, HttpResponse};
use futures_util::stream;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::core::error::Error;
use crate::http::auth::Caller;
use crate::http::dto::contacts::Contact;
use crate::http::dto::members::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::pagination::{Page, PageParams};
use crate::http::segments::SegmentPath;
use crate::http::state::AppState;
use crate::service::membership;

const NOT_FOUND: &str = "`not_found`: no such segment.";
const READ_ONLY: &str =
    "`dynamic_segment_read_only`: the segment is dynamic; its members follow its filter.";
const LIMIT: &str = "`endpoint_limit_exceeded` (with `used`, `limit` and `requested`): the write would take the tenant past its endpoint limit; nothing was added. Or `validation_failed`: e.g. `contact_ids` is empty or has more than 10,000 ids.";

/// Add contacts to a static segment
///
/// Up to 10,000 ids; repeats count once. The report counts every id once: `added`,
/// `already_members`, or in `rejected` with its code. The rules, by the segment's channel:
/// - whatsapp: a contact without a validated phone is added all the same, with the warning
///   `no_validated_mobile` ("You have added recipient candidates to the segment who do not
///   have a validated mobile number and therefore cannot be contacted via WhatsApp");
/// - sms: a contact without a validated phone is rejected (`no_validated_mobile`);
/// - email: a contact without a valid email is rejected (`no_email`);
/// - a tenant with `require_privacy_consent` rejects contacts without consent
///   (`no_privacy_consent`), on every channel;
/// - unknown ids and other tenants' contacts are rejected (`contact_not_found`).
///
/// Opted-out contacts are added (audiences leave them out). Endpoint limit: an endpoint is
/// a distinct (contact, channel) pair over all of the tenant's segments; a write that
/// would take the tenant past `endpoint_limit` is refused whole with 422
/// `endpoint_limit_exceeded`, and nothing is added.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    request_body = MemberIds,
    responses(
        (status = 200, description = "The membership report.", body = MembershipReport),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = READ_ONLY),
        (status = 422, description = LIMIT),
    )
)]
#[post("/segments/{id}/members")]
async fn add_segment_members(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Json(input): Json<MemberIds>,
) -> Result<web::Json<MembershipReport>, ApiError> {
    let mut reports =
        membership::add_by_ids(&state.env, tenant, vec![path.0.id], input.contact_ids).await?;
    let (_, report) = reports
        .pop()
        .ok_or_else(|| Error::internal("one segment, one report"))?;
    Ok(web::Json(report.into()))
}

/// Add all search results to a static segment
///
/// Every contact matching `search`, `tag`, `opted_out` and `filter` (all optional,
/// combined with AND; none given selects every contact of the tenant), whatever their
/// number, in one set-based write: the "select all results" of a contact screen. The
/// rules of adding by id apply (channel rules, consent, endpoint limit, all or nothing);
/// `rejected` and the warnings' `contact_ids` list the first 1,000, their totals count
/// all.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    request_body = SearchSelection,
    responses(
        (status = 200, description = "The membership report.", body = MembershipReport),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = READ_ONLY),
        (status = 422, description = "`endpoint_limit_exceeded` (with `used`, `limit` and `requested`): the write would take the tenant past its endpoint limit; nothing was added. Or `validation_failed`: the filter does not read (each problem with its JSON path, as in `POST /v1/segments/preview`)."),
    )
)]
#[post("/segments/{id}/members/from-search")]
async fn add_segment_members_from_search(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Json(input): Json<SearchSelection>,
) -> Result<web::Json<MembershipReport>, ApiError> {
    let report = membership::add_selection(&state.env, tenant, path.0.id, input.into()).await?;
    Ok(web::Json(report.into()))
}

/// Add contacts to several static segments at once
///
/// Many to many: every contact of `contact_ids` is added to every segment of
/// `segment_ids`, each under its own channel's rules (see adding by id), with one
/// membership report per segment. All or nothing: one unknown or dynamic segment, or
/// the endpoint limit for the whole write, refuses it and nothing is added.
#[utoipa::path(
    tag = "segments",
    request_body = MembershipsRequest,
    responses(
        (status = 200, description = "One membership report per segment.", body = MembershipsReport),
        (status = 404, description = "`not_found`: a segment named does not exist; nothing was added."),
        (status = 409, description = "`dynamic_segment_read_only`: a segment named is dynamic; nothing was added."),
        (status = 422, description = LIMIT),
    )
)]
#[post("/segments/memberships")]
async fn add_memberships(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<MembershipsRequest>,
) -> Result<web::Json<MembershipsReport>, ApiError> {
    let segment_ids: Vec<i64> = input
        .segment_ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let reports =
        membership::add_by_ids(&state.env, tenant, segment_ids, input.contact_ids).await?;
    let reports = reports
        .into_iter()
        .map(|(segment_id, report)| SegmentReport {
            segment_id,
            report: report.into(),
        })
        .collect();
    Ok(web::Json(MembershipsReport { reports }))
}

/// Remove contacts from a static segment
///
/// Up to 10,000 ids; ids that are not members (or not contacts) are ignored. The
/// contacts themselves stay. The answer says how many were removed and the segment's
/// member count after.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    request_body = MemberIds,
    responses(
        (status = 200, description = "How many were removed.", body = RemovedMembers),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = READ_ONLY),
        (status = 422, description = "`validation_failed`: `contact_ids` is empty or has more than 10,000 ids."),
    )
)]
#[delete("/segments/{id}/members")]
async fn remove_segment_members(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Json(input): Json<MemberIds>,
) -> Result<web::Json<RemovedMembers>, ApiError> {
    let removed = membership::remove(&state.env, tenant, path.0.id, input.contact_ids).await?;
    Ok(web::Json(removed.into()))
}

/// List a segment's members
///
/// Each member is a contact with `added_at` (null for a dynamic segment, whose members are
/// the contacts its filter matches now). Members include opted-out and unreachable
/// contacts, shown with their status (`opted_out`, `phone_valid`, `email`); they are left
/// out only when an audience is resolved. `search` matches part of the name, phone, email
/// or external id. Paged with `page` and `per_page` (1 to 500, default 25).
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id"), MemberListParams, PageParams),
    responses(
        (status = 200, description = "A page of members.", body = Page<Member>),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/segments/{id}/members")]
async fn list_segment_members(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Query(params): Query<MemberListParams>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<Member>>, ApiError> {
    let (rows, total) = membership::list(
        &state.env,
        tenant,
        path.0.id,
        params.search,
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// List contacts not yet in a static segment
///
/// The tenant's contacts that are not members of this segment, to pick from when adding
/// members; `search` matches part of the name, phone, email or external id. Paged with
/// `page` and `per_page` (1 to 500, default 25). A dynamic segment has no candidates:
/// its members follow its filter.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id"), MemberListParams, PageParams),
    responses(
        (status = 200, description = "A page of contacts.", body = Page<Contact>),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = READ_ONLY),
    )
)]
#[get("/segments/{id}/candidates")]
async fn list_segment_candidates(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Query(params): Query<MemberListParams>,
    Query(page): Query<PageParams>,
) -> Result<web::Json<Page<Contact>>, ApiError> {
    let (rows, total) = membership::candidates(
        &state.env,
        tenant,
        path.0.id,
        params.search,
        page.limit(),
        page.offset(),
    )
    .await?;
    Ok(web::Json(Page::new(rows, &page, total)))
}

/// Rows fetched per database round trip while exporting.
const EXPORT_BATCH: i64 = 5000;

/// Export a segment's members as CSV
///
/// Every member, static or dynamic, with its contact fields and `added_at`, streamed in
/// contact id order: memory stays flat whatever the size. Sent as an attachment named
/// `segment-{id}-members.csv`. Members include opted-out and unreachable contacts.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id")),
    responses(
        (status = 200, description = "`contact_id,external_id,name,phone,phone_e164,phone_valid,phone_country,email,opted_out,privacy_consent,tags,attributes,added_at`; tags joined with `|`, attributes as JSON.", content_type = "text/csv", body = String),
        (status = 404, description = NOT_FOUND),
    )
)]
#[get("/segments/{id}/members.csv")]
async fn export_segment_members(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
) -> Result<HttpResponse, ApiError> {
    let segment_id = path.0.id;
    let export = membership::export(&state.env, tenant, segment_id).await?;
    let env = state.env.clone();
    let header = stream::once(async { Ok::<_, ApiError>(web::Bytes::from(csv_export::header())) });
    // State: the last contact id sent, or None once the end was reached.
    let rows = stream::try_unfold(Some(0_i64), move |after| {
        let (env, export) = (env.clone(), export.clone());
        async move {
            let Some(after) = after else { return Ok(None) };
            let batch = export.batch(&env, after, EXPORT_BATCH).await?;
            if batch.is_empty() {
                return Ok(None);
            }
            let next = (batch.len() as i64 == EXPORT_BATCH)
                .then(|| batch.last().map(|(row, _)| row.id))
                .flatten();
            Ok(Some((web::Bytes::from(csv_export::rows(&batch)?), next)))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"segment-{segment_id}-members.csv\""),
        ))
        .streaming(futures_util::StreamExt::chain(header, rows)))
}

mod csv_export {
    use chrono::{DateTime, SecondsFormat, Utc};

    use crate::core::error::Error;
    use crate::db::contacts::ContactRow;

    const COLUMNS: [&str; 13] = [
        "contact_id",
        "external_id",
        "name",
        "phone",
        "phone_e164",
        "phone_valid",
        "phone_country",
        "email",
        "opted_out",
        "privacy_consent",
        "tags",
        "attributes",
        "added_at",
    ];

    pub fn header() -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(COLUMNS);
        writer.into_inner().unwrap_or_default()
    }

    pub fn rows(batch: &[(ContactRow, Option<DateTime<Utc>>)]) -> Result<Vec<u8>, Error> {
        let mut writer = csv::Writer::from_writer(Vec::with_capacity(batch.len() * 128));
        for (row, added_at) in batch {
            let text = |value: &Option<String>| value.clone().unwrap_or_default();
            writer
                .write_record([
                    row.id.to_string(),
                    text(&row.external_id),
                    row.name.clone(),
                    text(&row.phone),
                    text(&row.phone_e164),
                    row.phone_e164.is_some().to_string(),
                    text(&row.phone_country),
                    text(&row.email),
                    row.opted_out.to_string(),
                    row.privacy_consent.to_string(),
                    row.tags.join("|"),
                    row.attributes.to_string(),
                    added_at
                        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                ])
                .map_err(Error::internal)?;
        }
        writer.into_inner().map_err(Error::internal)
    }
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(add_memberships)
        .service(export_segment_members)
        .service(list_segment_members)
        .service(add_segment_members)
        .service(add_segment_members_from_search)
        .service(remove_segment_members)
        .service(list_segment_candidates);
}
