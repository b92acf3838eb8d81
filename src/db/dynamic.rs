//! Dynamic segments' stored members: evaluated for the contacts a write touched, or in
//! full when a filter changes or the date moves on, each change counted.
//!
//! Who may run at once is decided by one lock per tenant ([`super::locks::Lock::Evaluation`]):
//! writes that change what filters read (contacts, static members) hold it shared, so
//! they run side by side; a full evaluation holds it exclusively, so no write it cannot
//! see slips past it.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date};

use super::events;
use super::schema::segments;
use super::sql::{Condition as Sql, Statement};
use crate::core::types::SegmentKind;

/// Most bind parameters in one evaluation statement (PostgreSQL allows 65,535): the
/// segments of a level are evaluated in groups that fit.
const MAX_BINDS: usize = 30_000;

/// How many contacts entered a segment and how many left it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable)]
pub struct Moves {
    pub segment_id: i64,
    pub entered: i64,
    pub exited: i64,
}

type MovesRow = (BigInt, BigInt, BigInt);

/// Evaluates `segments` (each with its compiled filter; none naming another of them) for
/// the contacts `contact_ids`: those that match become members, those that no longer
/// match stop being. Returns the moves of each segment that changed.
pub fn evaluate_for(
    conn: &mut PgConnection,
    tenant_id: i64,
    segments: &[(i64, Sql)],
    contact_ids: &[i64],
) -> QueryResult<Vec<Moves>> {
    let mut moves = Vec::new();
    if contact_ids.is_empty() {
        return Ok(moves);
    }
    for group in groups(segments) {
        moves.extend(evaluate_group(conn, tenant_id, group, contact_ids)?);
    }
    Ok(moves)
}

/// Consecutive runs of `segments` whose conditions together stay under [`MAX_BINDS`].
fn groups(segments: &[(i64, Sql)]) -> Vec<&[(i64, Sql)]> {
    let mut groups = Vec::new();
    let (mut start, mut binds) = (0, 0);
    for (index, (_, condition)) in segments.iter().enumerate() {
        let cost = condition.binds() + 1;
        if binds + cost > MAX_BINDS && index > start {
            groups.push(&segments[start..index]);
            (start, binds) = (index, 0);
        }
        binds += cost;
    }
    if start < segments.len() {
        groups.push(&segments[start..]);
    }
    groups
}

fn evaluate_group(
    conn: &mut PgConnection,
    tenant_id: i64,
    segments: &[(i64, Sql)],
    contact_ids: &[i64],
) -> QueryResult<Vec<Moves>> {
    let ids: Vec<i64> = segments.iter().map(|(id, _)| *id).collect();
    // The touched contacts are read once; each filter is then tested on them alone.
    let mut statement = Statement::<MovesRow>::new(
        "WITH touched AS MATERIALIZED (SELECT * FROM contacts WHERE contacts.tenant_id = ",
    )
    .integer(tenant_id)
    .sql(" AND contacts.id = ANY(")
    .integers(contact_ids.to_vec())
    .sql(")), wanted AS (");
    for (index, (id, condition)) in segments.iter().enumerate() {
        if index > 0 {
            statement = statement.sql(" UNION ALL ");
        }
        statement = statement
            .sql("SELECT ")
            .integer(*id)
            .sql(
                "::bigint AS segment_id, contacts.id AS contact_id FROM touched AS contacts WHERE ",
            )
            .condition(condition.clone());
    }
    let statement = statement
        .sql("), entered AS (INSERT INTO segment_members (tenant_id, segment_id, contact_id) SELECT ")
        .integer(tenant_id)
        .sql(
            ", segment_id, contact_id FROM wanted ON CONFLICT DO NOTHING \
             RETURNING segment_id, contact_id), left_ AS (DELETE FROM segment_members m WHERE m.tenant_id = ",
        )
        .integer(tenant_id)
        .sql(" AND m.segment_id = ANY(")
        .integers(ids)
        .sql(") AND m.contact_id = ANY(")
        .integers(contact_ids.to_vec())
        .sql(
            ") AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.segment_id = m.segment_id \
             AND w.contact_id = m.contact_id) RETURNING m.segment_id, m.contact_id), ",
        );
    let statement = events::stage_moves(statement, tenant_id, "entered", "left_").sql(
        " SELECT segment_id, count(*) FILTER (WHERE entered) AS entered, \
             count(*) FILTER (WHERE NOT entered) AS exited FROM \
             (SELECT segment_id, TRUE AS entered FROM entered \
              UNION ALL SELECT segment_id, FALSE FROM left_) AS moves GROUP BY segment_id",
    );
    statement.load::<Moves>(conn)
}

/// Evaluates one segment over all of the tenant's contacts; returns the contacts that
/// entered or left it.
pub fn evaluate_all(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    condition: Sql,
) -> QueryResult<(Moves, Vec<i64>)> {
    let statement = Statement::<(BigInt, diesel::sql_types::Bool)>::new(
        "WITH wanted AS (SELECT contacts.id FROM contacts WHERE contacts.tenant_id = ",
    )
    .integer(tenant_id)
    .sql(" AND ")
    .condition(condition)
    .sql("), entered AS (INSERT INTO segment_members (tenant_id, segment_id, contact_id) SELECT ")
    .integer(tenant_id)
    .sql(", ")
    .integer(segment_id)
    .sql(
        ", id FROM wanted ON CONFLICT DO NOTHING RETURNING segment_id, contact_id), \
         left_ AS (DELETE FROM segment_members m WHERE m.tenant_id = ",
    )
    .integer(tenant_id)
    .sql(" AND m.segment_id = ")
    .integer(segment_id)
    .sql(
        " AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.id = m.contact_id) \
         RETURNING m.segment_id, m.contact_id), ",
    );
    let moved: Vec<(i64, bool)> = events::stage_moves(statement, tenant_id, "entered", "left_")
        .sql(" SELECT contact_id, TRUE FROM entered UNION ALL SELECT contact_id, FALSE FROM left_")
        .load(conn)?;
    let entered = moved.iter().filter(|(_, entered)| *entered).count() as i64;
    let moves = Moves {
        segment_id,
        entered,
        exited: moved.len() as i64 - entered,
    };
    Ok((moves, moved.into_iter().map(|(id, _)| id).collect()))
}

/// Moves each segment's member count by what entered and left, in segment id order (so
/// concurrent writers take the rows in one order), and its `updated_at`.
pub fn apply_moves(conn: &mut PgConnection, tenant_id: i64, moves: &[Moves]) -> QueryResult<()> {
    let mut changed: Vec<&Moves> = moves.iter().filter(|m| m.entered != m.exited).collect();
    changed.sort_by_key(|m| m.segment_id);
    for moves in changed {
        diesel::update(segments::table.find((tenant_id, moves.segment_id)))
            .set((
                segments::recipients.eq(segments::recipients + (moves.entered - moves.exited)),
                segments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records a full evaluation: the exact count, and the day it counted from.
pub fn mark_evaluated(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    today: chrono::NaiveDate,
) -> QueryResult<i64> {
    diesel::sql_query(
        "UPDATE segments SET evaluated_on = $3, recipients_computed_at = now(), \
         recipients = (SELECT count(*) FROM segment_members m \
                       WHERE m.tenant_id = $1 AND m.segment_id = $2) \
         WHERE tenant_id = $1 AND id = $2 RETURNING recipients",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(segment_id)
    .bind::<Date, _>(today)
    .get_result::<Recipients>(conn)
    .map(|row| row.recipients)
}

#[derive(QueryableByName)]
struct Recipients {
    #[diesel(sql_type = BigInt)]
    recipients: i64,
}

/// Locks the contacts (in id order, so writers never deadlock on them) against changes
/// by others until the transaction ends: filters that read them are evaluated next.
pub fn lock_contacts(
    conn: &mut PgConnection,
    tenant_id: i64,
    contact_ids: &[i64],
) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT 1 AS locked FROM contacts WHERE tenant_id = $1 AND id = ANY($2) \
         ORDER BY id FOR NO KEY UPDATE",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<diesel::sql_types::Array<BigInt>, _>(contact_ids)
    .load::<Locked>(conn)
    .map(drop)
}

#[derive(QueryableByName)]
struct Locked {
    #[allow(dead_code)]
    #[diesel(sql_type = diesel::sql_types::Integer)]
    locked: i32,
}

/// Whether the tenant has dynamic segments at all (most writes need do nothing more).
pub fn tenant_has_dynamic(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        segments::table
            .filter(segments::tenant_id.eq(tenant_id))
            .filter(segments::kind.eq(SegmentKind::Dynamic.as_str())),
    ))
    .get_result(conn)
}
