//! Segments: create, read, change, delete, list, and preview a filter.

use serde_json::Value;

use super::filters::{self, FilterReader};
use std::collections::BTreeSet;
use std::slice;
use std::sync::Arc;

use super::definition_cache::DefinitionCache;
use super::membership::add_members;
use super::{check, dynamic, endpoints, Env, Precondition};
use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::filter::{summary, Node};
use crate::core::membership;
use crate::core::segment::Sort;
use crate::core::tenant::Tenant;
use crate::core::types::{Channel, SegmentKind};
use crate::db::contacts::{self, with_ids, ContactRow};
use crate::db::failure::on_unique;
use crate::db::segments::{self, NewSegment, SegmentChanges, SegmentFilters, SegmentRow};
use crate::db::{members, pool};
use diesel::PgConnection;

/// A segment with its filter read back as a sentence.
#[derive(Clone)]
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
    definitions: Option<Arc<[Definition]>>,
) -> Result<Vec<SegmentView>, Error> {
    let mut reader = FilterReader::with_definitions(tenant_id, definitions);
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

/// The definitions `rows`' filters need (none when no row has a filter), kept or read,
/// as of `version`, read with the rows (`None`: version 0).
fn definitions_for(
    cache: &DefinitionCache,
    conn: &mut PgConnection,
    tenant_id: i64,
    rows: &[SegmentRow],
    version: Option<i64>,
) -> Result<Option<Arc<[Definition]>>, Error> {
    if !rows.iter().any(|row| row.filter.is_some()) {
        return Ok(None);
    }
    cache
        .at_version(conn, tenant_id, version.unwrap_or_default())
        .map(Some)
}

fn present_one(
    conn: &mut PgConnection,
    tenant_id: i64,
    row: SegmentRow,
    definitions: Option<Arc<[Definition]>>,
) -> Result<SegmentView, Error> {
    present(conn, tenant_id, vec![row], definitions)?
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
    /// A static segment's first members.
    pub contact_ids: Option<Vec<i64>>,
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
    let cache = env.definitions.clone();
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let page = segments::list(conn, tenant.id, &filters, sort, limit, offset)?;
        let definitions = definitions_for(
            &cache,
            conn,
            tenant.id,
            &page.rows,
            page.definitions_version,
        )?;
        let views = present(conn, tenant.id, page.rows, definitions)?;
        Ok::<_, Error>((views, page.total))
    })
    .await
}

/// A dynamic segment's filter, read and checked against the endpoint limit.
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

/// A name taken, or a segment or attribute the filter names deleted meanwhile.
fn write_failed(name: &str) -> impl FnOnce(diesel::result::Error) -> Error + '_ {
    move |error| match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        ) => Error::invalid_field(
            "filter",
            "segment_not_found",
            "a segment or attribute the filter names was just deleted",
        ),
        error => on_unique(error, &["segments_name_key"], |_| name_taken(name)),
    }
}

/// Creates the segment, with its first members if the input names some: one
/// transaction; their membership report comes back with the segment.
pub async fn create(
    env: &Env,
    tenant: Tenant,
    input: NewSegmentInput,
) -> Result<(SegmentView, Option<membership::Report>), Error> {
    if let Some(filter) = &input.filter {
        filters::check_size(filter)?;
    }
    if input.kind == SegmentKind::Dynamic && input.contact_ids.is_some() {
        return Err(Error::invalid_field(
            "contact_ids",
            "not_allowed",
            "a dynamic segment's members are the contacts its filter matches",
        ));
    }
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_change(conn, tenant.id)?;
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
            .map_err(write_failed(&name))?
            .id;
        if let Some(node) = node {
            dynamic::save_filter(conn, tenant.id, id, &name, &node)?;
            dynamic::evaluate_segment(conn, tenant.id, today, id, &node)?;
        }
        let report = match input.contact_ids {
            Some(ids) => {
                let named: BTreeSet<i64> = ids.into_iter().collect();
                let source = with_ids(tenant.id, named.iter().copied().collect());
                let added = add_members(conn, &tenant, today, &[id], &source, Some(&named), None)?;
                added.into_iter().next().map(|(_, report)| report)
            }
            None => None,
        };
        let row = segments::get(conn, tenant.id, id)?;
        Ok((present_one(conn, tenant.id, row, None)?, report))
    })
    .await
}

pub async fn get(env: &Env, tenant: Tenant, id: i64) -> Result<SegmentView, Error> {
    let cache = env.definitions.clone();
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let (row, version) = segments::find_with_definitions_version(conn, tenant.id, id)?;
        let definitions = definitions_for(&cache, conn, tenant.id, slice::from_ref(&row), version)?;
        present_one(conn, tenant.id, row, definitions)
    })
    .await
}

pub async fn update(
    env: &Env,
    tenant: Tenant,
    id: i64,
    input: SegmentUpdate,
    precondition: Option<Precondition<SegmentView>>,
) -> Result<SegmentView, Error> {
    if let Some(filter) = &input.filter {
        filters::check_size(filter)?;
    }
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        // The evaluation lock, exclusive, serialises every change to the tenant's
        // segments: the segment read here is the one the update changes.
        dynamic::begin_change(conn, tenant.id)?;
        let current = segments::find(conn, tenant.id, id)?;
        check(
            &precondition,
            &present_one(conn, tenant.id, current.clone(), None)?,
        )?;
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
        let name = input.name.clone().unwrap_or_else(|| current.name.clone());
        let changes = SegmentChanges {
            name: input.name,
            description: input.description,
            filter: input.filter.map(Some),
        };
        segments::update(conn, tenant.id, id, &changes).map_err(write_failed(&name))?;
        if let Some(node) = node {
            dynamic::save_filter(conn, tenant.id, id, &name, &node)?;
            dynamic::evaluate_segment(conn, tenant.id, today, id, &node)?;
        }
        let row = segments::get(conn, tenant.id, id)?;
        present_one(conn, tenant.id, row, None)
    })
    .await
}

/// Deletes the segment; refused while a filter names it (the references' foreign key
/// decides, so a filter saved concurrently cannot end up naming a deleted segment).
pub async fn delete(
    env: &Env,
    tenant: Tenant,
    id: i64,
    precondition: Option<Precondition<SegmentView>>,
) -> Result<(), Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_change(conn, tenant.id)?;
        if precondition.is_some() {
            let current = segments::find(conn, tenant.id, id)?;
            check(&precondition, &present_one(conn, tenant.id, current, None)?)?;
        }
        match segments::delete(conn, tenant.id, id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::NotFound("segment")),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => Err(Error::conflict(
                "segment_in_use",
                "Another segment's filter names this segment; change that filter first.",
            )),
            Err(other) => Err(other.into()),
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
    filters::check_size(&filter)?;
    let today = env.clock.today();
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
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

/// The segments the contact is a member of, static and dynamic, by name.
pub async fn of_contact(
    env: &Env,
    tenant: Tenant,
    contact_id: i64,
) -> Result<Vec<SegmentView>, Error> {
    let cache = env.definitions.clone();
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let (rows, version) =
            segments::of_contact(conn, tenant.id, contact_id)?.ok_or(Error::NotFound("contact"))?;
        let definitions = definitions_for(&cache, conn, tenant.id, &rows, version)?;
        present(conn, tenant.id, rows, definitions)
    })
    .await
}
