//! The events feed: every change an integration may follow, in order.

use actix_web::{get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::auth::Caller;
use crate::http::dto::events::*;
use crate::http::error::ApiError;
use crate::http::extract::Query;
use crate::http::pagination::next_after;
use crate::http::state::AppState;
use crate::service::events;

/// Follow the events feed
///
/// The tenant's events after `after`, oldest first: `contact.created`, `contact.updated`
/// and `contact.deleted` (`data: {contact_id}`), `segment.member_added` and
/// `segment.member_removed` (`data: {segment_id, contact_id}`; for dynamic segments too,
/// when a contact starts or stops matching because the contact, the filter, a segment it
/// names or the date changed; deleting a contact removes it from each of its segments
/// first), `import.finished` (`data: {segment_id, import_id, status, rows, added, ...}`)
/// and `send.created` (`data: {send_id, campaign_id, total}`).
/// Each event is recorded in the transaction of its change. Ids increase per tenant in
/// the order changes committed, so a client that keeps the id of the last event it
/// handled and asks again with `after=` that id never misses one. `next_after` is the last
/// id of a full page (more may follow at once) and null when the feed is caught up; poll
/// again later with the last id you handled. Events are kept at least 7 days
/// (`SEGMENTS_EVENT_RETENTION_DAYS`). `limit` is 1 to 1,000 (default 100).
#[utoipa::path(
    tag = "events",
    params(EventParams),
    responses((status = 200, description = "A page of events.", body = EventPage))
)]
#[get("/events")]
async fn list_events(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Query(params): Query<EventParams>,
) -> Result<web::Json<EventPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    let after = params.after.unwrap_or(0);
    let items = events::after(&state.env, tenant, after, limit, params.kind).await?;
    let next_after = next_after(&items, limit, |event| event.id);
    Ok(web::Json(EventPage {
        items: items.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

pub fn configure(config: &mut ServiceConfig) {
    config.service(list_events);
}
