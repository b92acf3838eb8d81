//! Static membership: set-based writes that keep `segments.recipients` exact, and the
//! reads of members and candidates.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable};

use super::contacts::ContactRow;
use super::events;
use super::locks::{self, Lock};
use super::schema::{contacts, segment_members, segments};
use super::segments::SegmentRow;
use super::sql::{Bound, Condition as Sql};
use crate::core::eligibility::{ContactFacts, Requirements};
use crate::core::types::Channel;

/// A set of the tenant's contacts, rebuilt for each statement that reads it.
pub type ContactSource<'a> = &'a dyn Fn() -> contacts::BoxedQuery<'static, Pg>;

/// A boolean expression over `contacts`, typed for Diesel's DSL.
pub type Predicate = Box<dyn BoxableExpression<contacts::table, Pg, SqlType = Bool>>;

/// Contacts that are members of one of these static segments, probed per contact
/// through the (tenant_id, contact_id) index: for conditions evaluated row by row.
pub fn member_of_any(tenant_id: i64, segment_ids: Vec<i64>) -> Sql {
    Sql::of("EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = ")
        .value(Bound::Integer(tenant_id))
        .sql(" AND m.contact_id = contacts.id AND m.segment_id = ANY(")
        .value(Bound::Integers(segment_ids))
        .sql("))")
}

/// Contacts that are members of one of the tenant's static segments of `channel`.
pub fn member_on_channel(tenant_id: i64, channel: Channel) -> Sql {
    Sql::of("EXISTS (SELECT 1 FROM segment_members m JOIN segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id WHERE m.tenant_id = ")
        .value(Bound::Integer(tenant_id))
        .sql(" AND m.contact_id = contacts.id AND s.channel = ")
        .value(Bound::Text(channel.as_str().to_owned()))
        .sql(")")
}

/// The SQL form of the eligibility rule ([`Requirements::verdict`] is its Rust form;
/// `tests/api/eligibility.rs` holds one to the other on every combination).
pub fn eligible(requirements: Requirements) -> Predicate {
    let mut condition: Predicate = Box::new(sql::<Bool>("TRUE"));
    if requirements.validated_phone {
        condition = Box::new(condition.and(contacts::phone_e164.is_not_null()));
    }
    if requirements.email {
        condition = Box::new(condition.and(contacts::email.is_not_null()));
    }
    if requirements.privacy_consent {
        condition = Box::new(condition.and(contacts::privacy_consent));
    }
    condition
}

/// Serialises the tenant's membership writes, so that two of them cannot together pass
/// the endpoint limit. An advisory lock, not the tenant's row: a row lock would block
/// every foreign-key check on the tenant meanwhile.
pub fn lock_tenant(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<()> {
    locks::exclusive(conn, Lock::Endpoints(tenant_id))
}

/// Removes from the segment the members `import_id` added that are still members, with
/// their events; returns their contact ids.
pub fn remove_imported(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    import_id: i64,
) -> QueryResult<Vec<i64>> {
    let removed: Vec<i64> = diesel::delete(
        segment_members::table
            .filter(segment_members::tenant_id.eq(tenant_id))
            .filter(segment_members::segment_id.eq(segment_id))
            .filter(segment_members::import_id.eq(import_id)),
    )
    .returning(segment_members::contact_id)
    .get_results(conn)?;
    events::stage_members(conn, tenant_id, segment_id, &removed, false)?;
    Ok(removed)
}

/// Locks the segments (in id order, so concurrent writers never deadlock on them). `FOR
/// NO KEY UPDATE`: their keys stay, so members can still be added to them meanwhile
/// (foreign-key checks take `FOR KEY SHARE`, which this does not block).
pub fn lock_segments(
    conn: &mut PgConnection,
    tenant_id: i64,
    ids: &[i64],
) -> QueryResult<Vec<SegmentRow>> {
    segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::id.eq_any(ids))
        .order(segments::id)
        .select(SegmentRow::as_select())
        .for_no_key_update()
        .load(conn)
}

/// Ids of `source` that exist.
pub fn existing_ids(conn: &mut PgConnection, source: ContactSource) -> QueryResult<Vec<i64>> {
    source().select(contacts::id).load(conn)
}

/// Eligible contacts of `source` that are not in `holders` (see [`crate::endpoints`]).
pub fn new_endpoints(
    conn: &mut PgConnection,
    source: ContactSource,
    requirements: Requirements,
    holders: Sql,
) -> QueryResult<i64> {
    source()
        .filter(eligible(requirements))
        .filter(holders.negated())
        .count()
        .get_result(conn)
}

/// Inserts the eligible contacts of `source` that are not members yet, recording the
/// import that added them, if one did, and their events; returns how many.
pub fn insert_eligible(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    source: ContactSource,
    requirements: Requirements,
    import_id: Option<i64>,
) -> QueryResult<usize> {
    let rows = source().filter(eligible(requirements)).select((
        contacts::tenant_id,
        segment_id.into_sql::<BigInt>(),
        contacts::id,
        import_id.into_sql::<Nullable<BigInt>>(),
    ));
    let added = diesel::insert_into(segment_members::table)
        .values(rows)
        .into_columns((
            segment_members::tenant_id,
            segment_members::segment_id,
            segment_members::contact_id,
            segment_members::import_id,
        ))
        .on_conflict_do_nothing()
        .returning(segment_members::contact_id)
        .get_results::<i64>(conn)?;
    events::stage_members(conn, tenant_id, segment_id, &added, true)?;
    Ok(added.len())
}

/// How the contacts of `source` fare under the rule, counted in one pass.
pub struct Tally {
    pub eligible: i64,
    pub refused: i64,
    /// Eligible, but without a validated phone.
    pub eligible_without_phone: i64,
}

pub fn tally(
    conn: &mut PgConnection,
    source: ContactSource,
    requirements: Requirements,
) -> QueryResult<Tally> {
    use diesel::dsl::{case_when, count};
    let (eligible_count, refused, eligible_without_phone) = source()
        .select((
            count(case_when(eligible(requirements), contacts::id)),
            count(case_when(not(eligible(requirements)), contacts::id)),
            count(case_when(
                eligible(requirements).and(contacts::phone_e164.is_null()),
                contacts::id,
            )),
        ))
        .get_result::<(i64, i64, i64)>(conn)?;
    Ok(Tally {
        eligible: eligible_count,
        refused,
        eligible_without_phone,
    })
}

/// The first `limit` refused contacts of `source`, with the facts that explain why.
pub fn refused(
    conn: &mut PgConnection,
    source: ContactSource,
    requirements: Requirements,
    limit: i64,
) -> QueryResult<Vec<(i64, ContactFacts)>> {
    let rows: Vec<(i64, bool, bool, bool)> = source()
        .filter(not(eligible(requirements)))
        .order(contacts::id)
        .limit(limit)
        .select((
            contacts::id,
            contacts::phone_e164.is_not_null(),
            contacts::email.is_not_null(),
            contacts::privacy_consent,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, phone, email, consent)| {
            (
                id,
                ContactFacts {
                    has_validated_phone: phone,
                    has_email: email,
                    has_privacy_consent: consent,
                },
            )
        })
        .collect())
}

/// The first `limit` eligible contacts of `source` without a validated phone.
pub fn eligible_without_phone(
    conn: &mut PgConnection,
    source: ContactSource,
    requirements: Requirements,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    source()
        .filter(eligible(requirements))
        .filter(contacts::phone_e164.is_null())
        .order(contacts::id)
        .limit(limit)
        .select(contacts::id)
        .load(conn)
}

/// Removes the listed members, with their events; returns how many were members.
pub fn remove(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    contact_ids: &[i64],
) -> QueryResult<usize> {
    let removed: Vec<i64> = diesel::delete(
        segment_members::table
            .filter(segment_members::tenant_id.eq(tenant_id))
            .filter(segment_members::segment_id.eq(segment_id))
            .filter(Sql::one_of(
                "segment_members.contact_id",
                contact_ids.to_vec(),
            )),
    )
    .returning(segment_members::contact_id)
    .get_results(conn)?;
    events::stage_members(conn, tenant_id, segment_id, &removed, false)?;
    Ok(removed.len())
}

/// Moves the member count by `delta` and `updated_at` to now; returns the new count.
pub fn adjust_recipients(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    delta: i64,
) -> QueryResult<i64> {
    diesel::update(segments::table.find((tenant_id, segment_id)))
        .set((
            segments::recipients.eq(segments::recipients + delta),
            segments::updated_at.eq(diesel::dsl::now),
        ))
        .returning(segments::recipients)
        .get_result(conn)
}

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
        .select(ContactRow::as_select())
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
        .select(ContactRow::as_select())
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
        .select((ContactRow::as_select(), segment_members::added_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(row, added_at)| (row, Some(added_at)))
        .collect())
}
