//! Segments: lookups, lists, writes, and which filters name a segment.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::Value;

use super::schema::{segment_members, segments};
use super::sql::like_pattern;
use crate::core::error::Error;
use crate::core::segment::{Sort, SortColumn};
use crate::core::types::{Channel, SegmentKind};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = segments)]
pub struct SegmentRow {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub kind: String,
    pub channel: String,
    pub filter: Option<Value>,
    pub recipients: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub recipients_computed_at: Option<DateTime<Utc>>,
}

impl SegmentRow {
    pub fn kind(&self) -> SegmentKind {
        // The CHECK constraint allows only the two kinds.
        SegmentKind::parse(&self.kind).unwrap_or(SegmentKind::Static)
    }

    pub fn channel(&self) -> Channel {
        // The CHECK constraint allows only the three channels.
        Channel::parse(&self.channel).unwrap_or(Channel::Whatsapp)
    }
}

pub struct NewSegment {
    pub tenant_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub kind: SegmentKind,
    pub channel: Channel,
    pub filter: Option<Value>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = segments)]
pub struct SegmentChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub filter: Option<Option<Value>>,
}

#[derive(Debug, Default)]
pub struct SegmentFilters {
    pub search: Option<String>,
    pub kind: Option<SegmentKind>,
    pub channel: Option<Channel>,
}

fn filtered(
    tenant_id: i64,
    filters: &SegmentFilters,
) -> segments::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(search) = &filters.search {
        query = query.filter(segments::name.ilike(like_pattern(search)));
    }
    if let Some(kind) = filters.kind {
        query = query.filter(segments::kind.eq(kind.as_str()));
    }
    if let Some(channel) = filters.channel {
        query = query.filter(segments::channel.eq(channel.as_str()));
    }
    query
}

pub fn list(
    conn: &mut PgConnection,
    tenant_id: i64,
    filters: &SegmentFilters,
    sort: Sort,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<SegmentRow>, i64)> {
    let query = filtered(tenant_id, filters);
    // The id breaks ties, so pages never repeat or skip a row.
    let query = match (sort.column, sort.descending) {
        (SortColumn::Name, false) => {
            query.order((sql::<Text>("lower(name)").asc(), segments::id.asc()))
        }
        (SortColumn::Name, true) => {
            query.order((sql::<Text>("lower(name)").desc(), segments::id.desc()))
        }
        (SortColumn::CreatedAt, false) => {
            query.order((segments::created_at.asc(), segments::id.asc()))
        }
        (SortColumn::CreatedAt, true) => {
            query.order((segments::created_at.desc(), segments::id.desc()))
        }
        (SortColumn::UpdatedAt, false) => {
            query.order((segments::updated_at.asc(), segments::id.asc()))
        }
        (SortColumn::UpdatedAt, true) => {
            query.order((segments::updated_at.desc(), segments::id.desc()))
        }
        (SortColumn::Recipients, false) => {
            query.order((segments::recipients.asc(), segments::id.asc()))
        }
        (SortColumn::Recipients, true) => {
            query.order((segments::recipients.desc(), segments::id.desc()))
        }
    };
    let rows = query
        .limit(limit)
        .offset(offset)
        .select(SegmentRow::as_select())
        .load(conn)?;
    let total = filtered(tenant_id, filters).count().get_result(conn)?;
    Ok((rows, total))
}

/// The segment, or a 404 naming it.
pub fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> Result<SegmentRow, Error> {
    get(conn, tenant_id, id).map_err(|e| Error::from(e).or_not_found("segment"))
}

pub fn get(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<SegmentRow> {
    segments::table
        .find((tenant_id, id))
        .select(SegmentRow::as_select())
        .first(conn)
}

pub fn insert(conn: &mut PgConnection, segment: &NewSegment) -> QueryResult<SegmentRow> {
    diesel::insert_into(segments::table)
        .values((
            segments::tenant_id.eq(segment.tenant_id),
            segments::name.eq(&segment.name),
            segments::description.eq(&segment.description),
            segments::kind.eq(segment.kind.as_str()),
            segments::channel.eq(segment.channel.as_str()),
            segments::filter.eq(&segment.filter),
        ))
        .returning(SegmentRow::as_returning())
        .get_result(conn)
}

pub fn update(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    changes: &SegmentChanges,
) -> QueryResult<SegmentRow> {
    diesel::update(segments::table.find((tenant_id, id)))
        .set((changes, segments::updated_at.eq(diesel::dsl::now)))
        .returning(SegmentRow::as_returning())
        .get_result(conn)
}

/// False when there was no such segment. Members go with it; contacts stay.
pub fn delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<bool> {
    diesel::delete(segments::table.find((tenant_id, id)))
        .execute(conn)
        .map(|deleted| deleted > 0)
}

/// The static segments a contact is a member of, by name.
pub fn of_contact(
    conn: &mut PgConnection,
    tenant_id: i64,
    contact_id: i64,
) -> QueryResult<Vec<SegmentRow>> {
    segments::table
        .inner_join(
            segment_members::table.on(segment_members::tenant_id
                .eq(segments::tenant_id)
                .and(segment_members::segment_id.eq(segments::id))),
        )
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segment_members::contact_id.eq(contact_id))
        .order((segments::name, segments::id))
        .select(SegmentRow::as_select())
        .load(conn)
}

/// A dynamic segment whose filter names segment `id`, if any.
pub fn named_by_a_filter(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
) -> QueryResult<Option<i64>> {
    #[derive(QueryableByName)]
    struct User {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    diesel::sql_query(
        "SELECT id FROM segments
         WHERE tenant_id = $1 AND kind = 'dynamic' AND id <> $2
           AND jsonb_path_exists(filter, '$.** ? (@.field == \"segment\" && @.value == $id)',
                                 jsonb_build_object('id', $2))
         LIMIT 1",
    )
    .bind::<diesel::sql_types::BigInt, _>(tenant_id)
    .bind::<diesel::sql_types::BigInt, _>(id)
    .get_result::<User>(conn)
    .optional()
    .map(|user| user.map(|u| u.id))
}

/// Stores a dynamic segment's member count with the time it was counted.
pub fn set_count(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    recipients: i64,
) -> QueryResult<(i64, DateTime<Utc>)> {
    diesel::update(segments::table.find((tenant_id, id)))
        .set((
            segments::recipients.eq(recipients),
            segments::recipients_computed_at.eq(diesel::dsl::now),
        ))
        .returning((
            segments::recipients,
            segments::recipients_computed_at.assume_not_null(),
        ))
        .get_result(conn)
}

/// Dynamic segments (of every tenant) counted before `cutoff`, with their filters.
pub fn stale_dynamic(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<Vec<(i64, i64, Option<Value>)>> {
    segments::table
        .filter(segments::kind.eq(SegmentKind::Dynamic.as_str()))
        .filter(
            segments::recipients_computed_at
                .is_null()
                .or(segments::recipients_computed_at.lt(cutoff)),
        )
        .select((segments::tenant_id, segments::id, segments::filter))
        .load(conn)
}

/// The tenant's dynamic segments, by name.
pub fn dynamic_of_tenant(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<SegmentRow>> {
    segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::kind.eq(SegmentKind::Dynamic.as_str()))
        .order((segments::name, segments::id))
        .select(SegmentRow::as_select())
        .load(conn)
}
