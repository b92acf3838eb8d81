//! The reads of a static segment's members and candidates, in pages and for exports.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::contact_rows::{contact_columns, ContactRow};
use super::members::ContactSource;
use super::schema::{contacts, segment_members};
use super::sql::Condition as Sql;

/// A subquery: is `contacts.id` a member of the segment?
#[diesel::dsl::auto_type]
fn is_member(tenant_id: i64, segment_id: i64) -> _ {
    exists(
        segment_members::table
            .filter(segment_members::tenant_id.eq(tenant_id))
            .filter(segment_members::segment_id.eq(segment_id))
            .filter(segment_members::contact_id.eq(contacts::id)),
    )
}

/// A member's contact and when it was added.
pub type MemberRow = (ContactRow, Option<DateTime<Utc>>);

/// A page of members of `source` (already filtered by search), with when each was added.
pub fn list_members(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    source: ContactSource,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<MemberRow>, i64)> {
    let rows: Vec<ContactRow> = source()
        .filter(is_member(tenant_id, segment_id))
        .order(contacts::id)
        .limit(limit)
        .offset(offset)
        .select(contact_columns(tenant_id))
        .load(conn)?;
    let total = source()
        .filter(is_member(tenant_id, segment_id))
        .count()
        .get_result(conn)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let added: Vec<(i64, DateTime<Utc>)> = segment_members::table
        .filter(segment_members::tenant_id.eq(tenant_id))
        .filter(segment_members::segment_id.eq(segment_id))
        .filter(Sql::one_of("segment_members.contact_id", ids))
        .select((segment_members::contact_id, segment_members::added_at))
        .load(conn)?;
    let rows = rows
        .into_iter()
        .map(|row| {
            let added_at = added
                .iter()
                .find(|(id, _)| *id == row.id)
                .map(|(_, at)| *at);
            (row, added_at)
        })
        .collect();
    Ok((rows, total))
}

/// A page of contacts of `source` that are not members of the segment.
pub fn list_candidates(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    source: ContactSource,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<ContactRow>, i64)> {
    let rows = source()
        .filter(not(is_member(tenant_id, segment_id)))
        .order(contacts::id)
        .limit(limit)
        .offset(offset)
        .select(contact_columns(tenant_id))
        .load(conn)?;
    let total = source()
        .filter(not(is_member(tenant_id, segment_id)))
        .count()
        .get_result(conn)?;
    Ok((rows, total))
}

/// Members after `after` in contact id order, for exports.
pub fn members_after(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<MemberRow>> {
    let rows: Vec<(ContactRow, DateTime<Utc>)> = contacts::table
        .inner_join(
            segment_members::table.on(segment_members::tenant_id
                .eq(contacts::tenant_id)
                .and(segment_members::contact_id.eq(contacts::id))),
        )
        .filter(segment_members::tenant_id.eq(tenant_id))
        .filter(segment_members::segment_id.eq(segment_id))
        .filter(segment_members::contact_id.gt(after))
        .order(segment_members::contact_id)
        .limit(limit)
        .select((contact_columns(tenant_id), segment_members::added_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(row, added_at)| (row, Some(added_at)))
        .collect())
}
