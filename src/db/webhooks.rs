//! Webhooks and their delivery log (what the dispatcher reads and records:
//! [`super::webhook_delivery`]).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, SmallInt, Text, Timestamptz};

#[derive(Debug, Clone, QueryableByName)]
pub struct WebhookRow {
    #[diesel(sql_type = BigInt)]
    pub tenant_id: i64,
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Array<Text>)]
    pub event_types: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub disabled_reason: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub delivered_through: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub batch_through: Option<i64>,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub failing_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

pub(super) const COLUMNS: &str = "tenant_id, id, url, event_types, description, secret, enabled, \
     disabled_reason, delivered_through, batch_through, attempt, failing_since, \
     next_attempt_at, created_at, updated_at";

/// A new webhook, delivering the events recorded after `delivered_through`.
pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub event_types: &'a [String],
    pub description: Option<&'a str>,
    pub secret: &'a str,
    pub delivered_through: i64,
}

pub fn insert(
    conn: &mut PgConnection,
    tenant_id: i64,
    new: &NewWebhook<'_>,
) -> QueryResult<WebhookRow> {
    diesel::sql_query(format!(
        "INSERT INTO webhooks (tenant_id, url, event_types, description, secret, delivered_through) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(new.url)
    .bind::<Array<Text>, _>(new.event_types)
    .bind::<Nullable<Text>, _>(new.description)
    .bind::<Text, _>(new.secret)
    .bind::<BigInt, _>(new.delivered_through)
    .get_result(conn)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

pub fn count(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<i64> {
    diesel::sql_query("SELECT count(*) AS count FROM webhooks WHERE tenant_id = $1")
        .bind::<BigInt, _>(tenant_id)
        .get_result::<Count>(conn)
        .map(|row| row.count)
}

/// A page of the tenant's webhooks, oldest first, and how many there are.
pub fn list(
    conn: &mut PgConnection,
    tenant_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<WebhookRow>, i64)> {
    let rows = diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(conn)?;
    Ok((rows, count(conn, tenant_id)?))
}

pub fn get(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<WebhookRow> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(id)
    .get_result(conn)
}

/// The webhook, locked against other changes until the transaction ends.
pub fn get_for_change(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<WebhookRow> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(id)
    .get_result(conn)
}

/// What a change to a webhook sets (every field, already merged with the current ones).
pub struct WebhookChanges<'a> {
    pub url: &'a str,
    pub event_types: &'a [String],
    pub description: Option<&'a str>,
    pub enabled: bool,
}

/// Saves a change at `now`. A webhook enabled again starts afresh: no failure history,
/// due now. (`now` is bound: Citus refuses `now()` inside a distributed write's `CASE`.)
pub fn update(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    changes: &WebhookChanges<'_>,
    now: DateTime<Utc>,
) -> QueryResult<WebhookRow> {
    diesel::sql_query(format!(
        "UPDATE webhooks SET url = $3, event_types = $4, description = $5, \
           disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END, \
           attempt = CASE WHEN $6 AND NOT enabled THEN 0 ELSE attempt END, \
           failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END, \
           next_attempt_at = CASE WHEN $6 AND NOT enabled THEN $7 ELSE next_attempt_at END, \
           enabled = $6, updated_at = $7 \
         WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(changes.url)
    .bind::<Array<Text>, _>(changes.event_types)
    .bind::<Nullable<Text>, _>(changes.description)
    .bind::<Bool, _>(changes.enabled)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
}

pub fn delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<bool> {
    diesel::sql_query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
        .bind::<BigInt, _>(tenant_id)
        .bind::<BigInt, _>(id)
        .execute(conn)
        .map(|deleted| deleted > 0)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Array<BigInt>)]
    pub event_ids: Vec<i64>,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub status_code: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The webhook's latest delivery attempts, newest first.
pub fn deliveries(
    conn: &mut PgConnection,
    tenant_id: i64,
    webhook_id: i64,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    diesel::sql_query(
        "SELECT id, event_ids, attempt, status_code, error, at, \
                next_attempt_at \
         FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 \
         ORDER BY id DESC LIMIT $3",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(webhook_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}
