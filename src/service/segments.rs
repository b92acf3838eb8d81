//! Segments: create, read, change, delete, list, and preview a filter.

use serde_json::Value;

use super::filters::{self, FilterReader};
use super::{endpoints, Env};
use crate::core::error::Error;
use crate::core::filter::{summary, Node};
use crate::core::segment::Sort;
use crate::core::tenant::Tenant;
use crate::core::types::{Channel, SegmentKind};
use crate::db::contacts::{self, ContactRow};
use crate::db::failure::on_unique;
use crate::db::segments::{self, NewSegment, SegmentChanges, SegmentFilters, SegmentRow};
use crate::db::{members, pool};
use diesel::PgConnection;

/// A segment with its filter read back as a sentence.
pub struct SegmentView {
    pub row: SegmentRow,
    pub filter_summary: String,
}

/// The segments with their filters read back as sentences, each attribute and segment
/// the filters name read once.
fn present(
    conn: &mut PgConnection,
    tenant_id: i64,
    rows: Vec<SegmentRow>,
) -> Result<Vec<SegmentView>, Error> {
    let mut reader = FilterReader::new(tenant_id);
    rows.into_iter()
        .map(|row| {
            let filter_summary = reader.summarize(conn, row.filter.as_ref(), row.id)?;
            Ok(SegmentView {
                row,
                filter_summary,
            })
        })
        .collect()
}

fn present_one(
    conn: &mut PgConnection,
    tenant_id: i64,
    row: SegmentRow,
) -> Result<SegmentView, Error> {
    present(conn, tenant_id, vec![row])?
        .pop()
        .ok_or_else(|| Error::internal("one segment in, one out"))
}

fn name_taken(name: &str) -> Error {
    Error::conflict(
        "segment_name_taken",
        format!("A segment named \"{name}\" already exists."),
    )
}

pub struct NewSegmentInput {
    pub name: String,
    pub description: Option<String>,
    pub kind: SegmentKind,
    pub channel: Channel,
    pub filter: Option<Value>,
}

pub struct SegmentUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub filter: Option<Value>,
}

pub async fn list(
    env: &Env,
    tenant: Tenant,
    filters: SegmentFilters,
    sort: Sort,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SegmentView>, i64), Error> {
    pool::run(&env.pool, move |conn| {
        let (rows, total) = segments::list(conn, tenant.id, &filters, sort, limit, offset)?;
        Ok::<_, Error>((present(conn, tenant.id, rows)?, total))
    })
    .await
}

/// A dynamic segment's filter checked against the endpoint limit before it is saved.
fn checked_filter(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: chrono::NaiveDate,
    channel: Channel,
    segment_id: Option<i64>,
    filter: &Value,
) -> Result<Node, Error> {
    let node = filters::parse_filter(conn, tenant.id, filter, "filter", segment_id)?;
    if tenant.endpoint_limit.is_some() {
        members::lock_tenant(conn, tenant.id)?;
        endpoints::check_dynamic_filter(conn, tenant, today, channel, segment_id, &node)?;
    }
    Ok(node)
}

fn no_filter_allowed() -> Error {
    Error::invalid_field("filter", "not_allowed", "a static segment has no filter")
}

pub async fn create(
    env: &Env,
    tenant: Tenant,
    input: NewSegmentInput,
) -> Result<SegmentView, Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool, move |conn| {
        let node = match (input.kind, &input.filter) {
            (SegmentKind::Static, Some(_)) => return Err(no_filter_allowed()),
            (SegmentKind::Dynamic, None) => {
                return Err(Error::invalid_field(
                    "filter",
                    "required",
                    "a dynamic segment needs a filter",
                ));
            }
            (SegmentKind::Dynamic, Some(filter)) => Some(checked_filter(
                conn,
                &tenant,
                today,
                input.channel,
                None,
                filter,
            )?),
            (SegmentKind::Static, None) => None,
        };
        let name = input.name.clone();
        let new_segment = NewSegment {
            tenant_id: tenant.id,
            name: input.name,
            description: input.description,
            kind: input.kind,
            channel: input.channel,
            filter: input.filter,
        };
        let id = segments::insert(conn, &new_segment)
            .map_err(|e| on_unique(e, &["segments_name_key"], |_| name_taken(&name)))?
            .id;
        if let Some(node) = node {
            filters::refresh_count(conn, tenant.id, today, id, &node)?;
        }
        let row = segments::get(conn, tenant.id, id)?;
        present_one(conn, tenant.id, row)
    })
    .await
}

/// The segment, its dynamic member count taken now.
pub async fn get(env: &Env, tenant: Tenant, id: i64) -> Result<SegmentView, Error> {
    let today = env.clock.today();
    pool::run(&env.pool, move |conn| {
        let mut row = segments::find(conn, tenant.id, id)?;
        if let Some(filter) = &row.filter {
            let node = filters::parse_filter(conn, tenant.id, filter, "filter", Some(id))?;
            let (recipients, at) = filters::refresh_count(conn, tenant.id, today, id, &node)?;
            (row.recipients, row.recipients_computed_at) = (recipients, Some(at));
        }
        present_one(conn, tenant.id, row)
    })
    .await
}

pub async fn update(
    env: &Env,
    tenant: Tenant,
    id: i64,
    input: SegmentUpdate,
) -> Result<SegmentView, Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool, move |conn| {
        let current = segments::find(conn, tenant.id, id)?;
        let node = match &input.filter {
            Some(_) if current.kind() == SegmentKind::Static => return Err(no_filter_allowed()),
            Some(filter) => Some(checked_filter(
                conn,
                &tenant,
                today,
                current.channel(),
                Some(id),
                filter,
            )?),
            None => None,
        };
        let name = input.name.clone();
        let changes = SegmentChanges {
            name: input.name,
            description: input.description,
            filter: input.filter.map(Some),
        };
        segments::update(conn, tenant.id, id, &changes).map_err(|e| {
            on_unique(e, &["segments_name_key"], |_| {
                name_taken(name.as_deref().unwrap_or_default())
            })
        })?;
        if let Some(node) = node {
            filters::refresh_count(conn, tenant.id, today, id, &node)?;
        }
        let row = segments::get(conn, tenant.id, id)?;
        present_one(conn, tenant.id, row)
    })
    .await
}

pub async fn delete(env: &Env, tenant: Tenant, id: i64) -> Result<(), Error> {
    pool::transaction(&env.pool, move |conn| {
        if let Some(user) = segments::named_by_a_filter(conn, tenant.id, id)? {
            return Err(Error::conflict(
                "segment_in_use",
                format!(
                    "Segment {user} uses this segment in its filter; change that filter first."
                ),
            ));
        }
        if segments::delete(conn, tenant.id, id)? {
            Ok(())
        } else {
            Err(Error::NotFound("segment"))
        }
    })
    .await
}

/// What a filter matches now.
pub struct Preview {
    pub count: i64,
    pub sample: Vec<ContactRow>,
    pub filter_summary: String,
}

/// How many contacts a filter matches, the first `sample` of them, and how it reads.
pub async fn preview(
    env: &Env,
    tenant: Tenant,
    filter: Value,
    sample: i64,
) -> Result<Preview, Error> {
    let today = env.clock.today();
    pool::run(&env.pool, move |conn| {
        let node = filters::parse_filter(conn, tenant.id, &filter, "filter", None)?;
        let condition = filters::compile(tenant.id, today, &node);
        Ok::<_, Error>(Preview {
            count: contacts::count_matching(conn, tenant.id, condition.clone())?,
            sample: contacts::first_matching(conn, tenant.id, condition, sample)?,
            filter_summary: summary::summarize(&node),
        })
    })
    .await
}

/// The static segments the contact was added to (by name), then the dynamic ones
/// matching it now (by name).
pub async fn of_contact(
    env: &Env,
    tenant: Tenant,
    contact_id: i64,
) -> Result<Vec<SegmentView>, Error> {
    let today = env.clock.today();
    pool::run(&env.pool, move |conn| {
        contacts::get(conn, tenant.id, contact_id)
            .map_err(|e| Error::from(e).or_not_found("contact"))?;
        let mut rows = segments::of_contact(conn, tenant.id, contact_id)?;
        rows.extend(filters::containing(conn, tenant.id, today, contact_id)?);
        present(conn, tenant.id, rows)
    })
    .await
}

/// Keeps the list's dynamic counts at most a minute old: recounts those older than
/// `max_age_seconds`.
pub async fn refresh_stale_counts(env: &Env, max_age_seconds: i64) -> Result<usize, Error> {
    let today = env.clock.today();
    pool::run(&env.pool, move |conn| {
        filters::refresh_stale(conn, today, max_age_seconds)
    })
    .await
}
