//! Segments: lookups, lists and writes (what their filters name is in
//! [`super::segment_graph`]).

use chrono::{DateTime, Utc};
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::Value;

use super::attributes;
use super::paging::with_total;
use super::schema::{contacts, segment_members, segments};
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
    /// The longest chain of references from the segment, itself included.
    pub depth: i16,
    /// The day a dynamic segment's members were last evaluated in full.
    pub evaluated_on: Option<chrono::NaiveDate>,
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

diesel::define_sql_function! {
    /// PostgreSQL's `lower()`, as an expression Diesel can keep prepared (an `sql()`
    /// literal made every page sorted by name a statement planned at each call).
    fn lower(text: Text) -> Text;
}

/// `query` in the order `sort` asks for; the id breaks ties, so pages never repeat or
/// skip a row.
fn ordered(
    query: segments::BoxedQuery<'static, diesel::pg::Pg>,
    sort: Sort,
) -> segments::BoxedQuery<'static, diesel::pg::Pg> {
    match (sort.column, sort.descending) {
        (SortColumn::Name, false) => query.order((lower(segments::name).asc(), segments::id.asc())),
        (SortColumn::Name, true) => {
            query.order((lower(segments::name).desc(), segments::id.desc()))
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
    }
}

/// A page of the tenant's segments.
pub struct SegmentPage {
    pub rows: Vec<SegmentRow>,
    /// Of the whole list.
    pub total: i64,
    /// The version of the tenant's attribute definitions, read with the rows, so that
    /// definitions kept at that version can summarise their filters (see
    /// [`attributes::version`]; `None`: version 0, or no row with a filter).
    pub definitions_version: Option<i64>,
}

pub fn list(
    conn: &mut PgConnection,
    tenant_id: i64,
    filters: &SegmentFilters,
    sort: Sort,
    limit: i64,
    offset: i64,
) -> QueryResult<SegmentPage> {
    let total = filtered(tenant_id, filters).count().single_value();
    let page = ordered(filtered(tenant_id, filters), sort)
        .limit(limit)
        .offset(offset)
        .select((
            SegmentRow::as_select(),
            total,
            definitions_version(tenant_id),
        ))
        .load::<(SegmentRow, Option<i64>, Option<i64>)>(conn)?;
    let definitions_version = page.iter().find_map(|(_, _, version)| *version);
    let page = page
        .into_iter()
        .map(|(row, total, _)| (row, total))
        .collect();
    let (rows, total) = with_total(page, offset, || {
        filtered(tenant_id, filters).count().get_result(conn)
    })?;
    Ok(SegmentPage {
        rows,
        total,
        definitions_version,
    })
}

/// The segment, or a 404 naming it.
pub fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> Result<SegmentRow, Error> {
    get(conn, tenant_id, id).map_err(|e| Error::from(e).or_not_found("segment"))
}

/// The segment, with the version of the tenant's attribute definitions when it has a
/// filter (read in the same statement, so that definitions kept at that version can
/// summarise it; `None` for version 0 too); or a 404 naming it.
pub fn find_with_definitions_version(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
) -> Result<(SegmentRow, Option<i64>), Error> {
    segments::table
        .find((tenant_id, id))
        .select((SegmentRow::as_select(), definitions_version(tenant_id)))
        .first(conn)
        .map_err(|e| Error::from(e).or_not_found("segment"))
}

/// The version of the tenant's attribute definitions on a row with a filter, the rows
/// that need them: NULL on the others, which then never read it. (Nullable, so that a
/// left join's segments can carry it too.)
#[diesel::dsl::auto_type(no_type_alias)]
fn definitions_version(tenant_id: i64) -> _ {
    let version: attributes::version = attributes::version(tenant_id);
    case_when(segments::filter.nullable().is_not_null(), version)
}

pub fn get(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<SegmentRow> {
    segments::table
        .find((tenant_id, id))
        .select(SegmentRow::as_select())
        .first(conn)
}

/// The tenant's segments among `ids`, those that exist, in one read.
pub fn get_many(
    conn: &mut PgConnection,
    tenant_id: i64,
    ids: &[i64],
) -> QueryResult<Vec<SegmentRow>> {
    segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::id.eq_any(ids))
        .select(SegmentRow::as_select())
        .load(conn)
}

/// Keeps the segments from being deleted until the transaction ends (`FOR KEY SHARE`, in
/// id order): what a campaign saved meanwhile names still exists when it commits, and a
/// deletion waiting for it then removes the segment from the campaign too.
pub fn hold(conn: &mut PgConnection, tenant_id: i64, ids: &[i64]) -> QueryResult<()> {
    segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::id.eq_any(ids))
        .order(segments::id)
        .select(segments::id)
        .for_key_share()
        .load::<i64>(conn)
        .map(drop)
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

/// The segments a contact is a member of, by name; `None` when the tenant has no such
/// contact. One statement, the contact's row on the left of the joins, where two read
/// the contact, then its segments.
pub fn of_contact(
    conn: &mut PgConnection,
    tenant_id: i64,
    contact_id: i64,
) -> QueryResult<Option<(Vec<SegmentRow>, Option<i64>)>> {
    let rows: Vec<(Option<SegmentRow>, Option<i64>)> = contacts::table
        .left_join(
            segment_members::table.on(segment_members::tenant_id
                .eq(contacts::tenant_id)
                .and(segment_members::contact_id.eq(contacts::id))),
        )
        .left_join(
            segments::table.on(segments::tenant_id
                .eq(segment_members::tenant_id)
                .and(segments::id.eq(segment_members::segment_id))),
        )
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(contacts::id.eq(contact_id))
        .order((segments::name, segments::id))
        .select((
            Option::<SegmentRow>::as_select(),
            definitions_version(tenant_id),
        ))
        .load(conn)?;
    let version = rows.iter().find_map(|(_, version)| *version);
    Ok((!rows.is_empty()).then(|| {
        let rows = rows.into_iter().filter_map(|(row, _)| row).collect();
        (rows, version)
    }))
}

/// The tenant's dynamic segments in evaluation order: by depth, so a segment comes
/// after every segment it names.
pub fn dynamic_by_depth(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<SegmentRow>> {
    segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::kind.eq(SegmentKind::Dynamic.as_str()))
        .order((segments::depth, segments::id))
        .select(SegmentRow::as_select())
        .load(conn)
}

/// The dynamic segments (of every tenant) whose members need a full evaluation: never
/// evaluated, or depending on the date and last evaluated before `today`; oldest first.
pub fn due_for_evaluation(
    conn: &mut PgConnection,
    today: chrono::NaiveDate,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    segments::table
        .filter(segments::kind.eq(SegmentKind::Dynamic.as_str()))
        .filter(
            segments::evaluated_on
                .is_null()
                .or(segments::date_relative.and(segments::evaluated_on.lt(today))),
        )
        .order((
            segments::evaluated_on.asc().nulls_first(),
            segments::depth,
            segments::id,
        ))
        .limit(limit)
        .select((segments::tenant_id, segments::id))
        .load(conn)
}
