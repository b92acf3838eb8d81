//! The events outbox. A transaction stages its events (in `staged_events`, a temporary
//! table every pooled connection has) as it changes things, and [`flush`] moves them into
//! `events` as its last statement, numbered from the tenant's counter. The counter's row
//! stays locked until commit, so a tenant's events become visible in id order: a reader
//! that follows the feed with `after=` never skips an event that committed late. Only
//! the end of each writing transaction is serialised per tenant, never its work.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz};
use serde_json::Value;

use super::sql::Statement;
use crate::core::event::{Event, EventType};

/// Created on every pooled connection (see [`super::pool`]); it lives as long as the
/// connection, is emptied by every [`flush`], and truncated at every commit, so the
/// space of a big import's events is given back at once (autovacuum never visits
/// temporary tables).
pub const STAGING_TABLE: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS staged_events ( \
     seq bigserial, tenant_id bigint NOT NULL, type text NOT NULL, \
     segment_id bigint, contact_id bigint, details jsonb) ON COMMIT DELETE ROWS";

/// Stages one event per contact.
pub fn stage_contacts(
    conn: &mut PgConnection,
    tenant_id: i64,
    kind: EventType,
    contact_ids: &[i64],
) -> QueryResult<()> {
    if contact_ids.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO staged_events (tenant_id, type, contact_id) \
         SELECT $1, $2, id FROM unnest($3::bigint[]) AS id",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(kind.as_str())
    .bind::<Array<BigInt>, _>(contact_ids)
    .execute(conn)
    .map(drop)
}

/// Stages a membership event per contact that joined (`added`) or left the segment.
pub fn stage_members(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    contact_ids: &[i64],
    added: bool,
) -> QueryResult<()> {
    if contact_ids.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO staged_events (tenant_id, type, segment_id, contact_id) \
         SELECT $1, $2, $3, id FROM unnest($4::bigint[]) AS id",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(EventType::membership(added).as_str())
    .bind::<BigInt, _>(segment_id)
    .bind::<Array<BigInt>, _>(contact_ids)
    .execute(conn)
    .map(drop)
}

/// Stages an event that carries its own details (an import's report).
pub fn stage_details(
    conn: &mut PgConnection,
    tenant_id: i64,
    kind: EventType,
    segment_id: Option<i64>,
    details: &Value,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO staged_events (tenant_id, type, segment_id, details) VALUES ($1, $2, $3, $4)",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(kind.as_str())
    .bind::<Nullable<BigInt>, _>(segment_id)
    .bind::<Jsonb, _>(details)
    .execute(conn)
    .map(drop)
}

/// Appends a data-modifying `WITH` item, `staged`, that stages membership events from two
/// earlier items of `statement`, each yielding `segment_id, contact_id`: the contacts that
/// joined and those that left.
pub fn stage_moves<Row>(
    statement: Statement<Row>,
    tenant_id: i64,
    joined: &str,
    left: &str,
) -> Statement<Row> {
    let added = EventType::MemberAdded.as_str();
    let removed = EventType::MemberRemoved.as_str();
    statement
        .sql("staged AS (INSERT INTO staged_events (tenant_id, type, segment_id, contact_id) SELECT ")
        .integer(tenant_id)
        .sql(&format!(
            "::bigint, '{added}', segment_id, contact_id FROM {joined} UNION ALL SELECT "
        ))
        .integer(tenant_id)
        .sql(&format!(
            "::bigint, '{removed}', segment_id, contact_id FROM {left})"
        ))
}

/// Moves the staged events into `events`, numbered from each tenant's counter, as having
/// occurred at `now`; does nothing (and locks nothing) when none were staged. Call last
/// in every transaction that writes ([`super::pool::transaction`] does).
pub fn flush(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::sql_query(
        "WITH staged AS (DELETE FROM staged_events RETURNING *), \
         totals AS (SELECT tenant_id, count(*) AS n FROM staged GROUP BY tenant_id), \
         counted AS (INSERT INTO event_counters AS c (tenant_id, last_id) \
                     SELECT tenant_id, n FROM totals \
                     ON CONFLICT (tenant_id) DO UPDATE SET last_id = c.last_id + excluded.last_id \
                     RETURNING c.tenant_id, c.last_id) \
         INSERT INTO events (tenant_id, id, type, occurred_at, segment_id, contact_id, details) \
         SELECT s.tenant_id, \
                c.last_id - t.n + row_number() OVER (PARTITION BY s.tenant_id ORDER BY s.seq), \
                s.type, $1, s.segment_id, s.contact_id, s.details \
         FROM staged s JOIN totals t USING (tenant_id) JOIN counted c USING (tenant_id)",
    )
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .map(drop)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub segment_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub contact_id: Option<i64>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub details: Option<Value>,
}

impl EventRow {
    /// The event as the API carries it; `None` for a type this build does not know.
    pub fn into_event(self) -> Option<Event> {
        Some(Event {
            id: self.id,
            kind: EventType::parse(&self.r#type)?,
            occurred_at: self.occurred_at,
            data: Event::data(self.details, self.segment_id, self.contact_id),
        })
    }
}

/// Up to `limit` of the tenant's events after `after`, in id order; only `types`, when
/// given.
pub fn after(
    conn: &mut PgConnection,
    tenant_id: i64,
    after: i64,
    limit: i64,
    types: Option<&[String]>,
) -> QueryResult<Vec<EventRow>> {
    diesel::sql_query(
        "SELECT id, type, occurred_at, segment_id, contact_id, details FROM events \
         WHERE tenant_id = $1 AND id > $2 AND ($3::text[] IS NULL OR type = ANY($3)) \
         ORDER BY id LIMIT $4",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(after)
    .bind::<Nullable<Array<Text>>, _>(types)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

#[derive(QueryableByName)]
struct LastId {
    #[diesel(sql_type = BigInt)]
    last_id: i64,
}

/// The id of the tenant's latest event (0 before the first).
pub fn last_id(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<i64> {
    diesel::sql_query(
        "SELECT coalesce((SELECT last_id FROM event_counters WHERE tenant_id = $1), 0) AS last_id",
    )
    .bind::<BigInt, _>(tenant_id)
    .get_result::<LastId>(conn)
    .map(|row| row.last_id)
}

/// Deletes up to `batch` events that occurred before `cutoff`; returns how many.
pub fn delete_before(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM events WHERE (tenant_id, id) IN \
         (SELECT tenant_id, id FROM events WHERE occurred_at < $1 LIMIT $2)",
    )
    .bind::<Timestamptz, _>(cutoff)
    .bind::<BigInt, _>(batch)
    .execute(conn)
}
