//! Static membership: set-based writes that keep `segments.recipients` exact (the reads
//! of members and candidates are in [`super::member_reads`]).

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool};

use super::events;
use super::locks::{self, Lock};
use super::schema::{contacts, segment_members, segments};
use super::segments::SegmentRow;
use super::sql::{Bound, Condition as Sql, Statement};
use crate::core::eligibility::{ContactFacts, Requirements};
use crate::core::event::EventType;
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

/// How the contacts of a source fare under the rule.
pub struct Tally {
    pub eligible: i64,
    pub refused: i64,
    /// Eligible, but without a validated phone.
    pub eligible_without_phone: i64,
}

/// What adding the eligible contacts of a source did, and what the report lists.
pub struct Addition {
    /// Eligible contacts that were not members yet.
    pub added: i64,
    pub tally: Tally,
    /// The first `listed` refused contacts, with the facts that explain why.
    pub refused: Vec<(i64, ContactFacts)>,
    /// The first `listed` eligible contacts without a validated phone.
    pub without_phone: Vec<i64>,
}

type AdditionRow = (
    i64,
    i64,
    i64,
    i64,
    Vec<i64>,
    Vec<bool>,
    Vec<bool>,
    Vec<bool>,
    Vec<i64>,
);
type AdditionSql = (
    BigInt,
    BigInt,
    BigInt,
    BigInt,
    Array<BigInt>,
    Array<Bool>,
    Array<Bool>,
    Array<Bool>,
    Array<BigInt>,
);

/// Inserts the eligible contacts of `source` that are not members yet, recording the
/// import that added them, if one did, and stages their events; counts and lists the
/// rest for the report. One statement: the source is read once and nothing travels
/// back and forth (10,000 contacts: four statements binding the same 10,000 ids
/// before).
pub fn add_eligible(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    source: ContactSource,
    requirements: Requirements,
    import_id: Option<i64>,
    listed: i64,
) -> QueryResult<Addition> {
    let rows = source().select((
        contacts::id,
        eligible(requirements),
        contacts::phone_e164.is_not_null(),
        contacts::email.is_not_null(),
        contacts::privacy_consent,
    ));
    let import = match import_id {
        Some(id) => Statement::<()>::new("").integer(id),
        None => Statement::new("NULL::bigint"),
    };
    let joined = EventType::MemberAdded.as_str();
    let tail = Statement::<()>::new(
        "), added AS (INSERT INTO segment_members (tenant_id, segment_id, contact_id, import_id) SELECT ",
    )
    .integer(tenant_id)
    .sql(", ")
    .integer(segment_id)
    .sql(", id, ")
    .statement(import)
    .sql(
        " FROM source WHERE eligible ON CONFLICT DO NOTHING RETURNING contact_id), \
         staged AS (INSERT INTO staged_events (tenant_id, type, segment_id, contact_id) SELECT ",
    )
    .integer(tenant_id)
    .sql(&format!(", '{joined}', "))
    .integer(segment_id)
    .sql(
        ", contact_id FROM added) \
         SELECT (SELECT count(*) FROM added), tally.*, refused.*, without_phone.* FROM \
         (SELECT count(*) FILTER (WHERE eligible), count(*) FILTER (WHERE NOT eligible), \
                 count(*) FILTER (WHERE eligible AND NOT has_phone) FROM source) tally, \
         (SELECT coalesce(array_agg(id ORDER BY id), '{}'), \
                 coalesce(array_agg(has_phone ORDER BY id), '{}'), \
                 coalesce(array_agg(has_email ORDER BY id), '{}'), \
                 coalesce(array_agg(consent ORDER BY id), '{}') \
            FROM (SELECT * FROM source WHERE NOT eligible ORDER BY id LIMIT ",
    )
    .integer(listed)
    .sql(
        ") first) refused, \
         (SELECT coalesce(array_agg(id ORDER BY id), '{}') \
            FROM (SELECT id FROM source WHERE eligible AND NOT has_phone ORDER BY id LIMIT ",
    )
    .integer(listed)
    .sql(") first) without_phone");
    let (
        added,
        eligible,
        refused,
        eligible_without_phone,
        ids,
        phones,
        emails,
        consents,
        without_phone,
    ) = Statement::<AdditionSql>::new(
        "WITH source (id, eligible, has_phone, has_email, consent) AS MATERIALIZED (",
    )
    .around(rows, tail)
    .get_result::<AdditionRow>(conn)?;
    let refused_listed = ids
        .into_iter()
        .zip(phones)
        .zip(emails.into_iter().zip(consents))
        .map(|((id, phone), (email, consent))| {
            (
                id,
                ContactFacts {
                    has_validated_phone: phone,
                    has_email: email,
                    has_privacy_consent: consent,
                },
            )
        })
        .collect();
    Ok(Addition {
        added,
        tally: Tally {
            eligible,
            refused,
            eligible_without_phone,
        },
        refused: refused_listed,
        without_phone,
    })
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
