use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::Value;

use super::dto::{SegmentSort, SortColumn};
use crate::db::like_pattern;
use crate::db::schema::{segment_members, segments};

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

#[derive(Insertable)]
#[diesel(table_name = segments)]
pub struct NewSegment {
    pub tenant_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub kind: String,
    pub channel: String,
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
    pub kind: Option<String>,
    pub channel: Option<String>,
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
    if let Some(kind) = &filters.kind {
        query = query.filter(segments::kind.eq(kind.clone()));
    }
    if let Some(channel) = &filters.channel {
        query = query.filter(segments::channel.eq(channel.clone()));
    }
    query
}

pub fn list(
    conn: &mut PgConnection,
    tenant_id: i64,
    filters: &SegmentFilters,
    sort: SegmentSort,
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
pub fn find(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
) -> Result<SegmentRow, crate::error::ApiError> {
    get(conn, tenant_id, id).map_err(|e| crate::error::ApiError::from(e).or_not_found("segment"))
}

pub fn get(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<SegmentRow> {
    segments::table
        .find((tenant_id, id))
        .select(SegmentRow::as_select())
        .first(conn)
}

pub fn insert(conn: &mut PgConnection, segment: &NewSegment) -> QueryResult<SegmentRow> {
    diesel::insert_into(segments::table)
        .values(segment)
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
