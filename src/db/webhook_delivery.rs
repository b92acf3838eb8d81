//! What the webhook dispatcher reads and records: leases on due webhooks, their next
//! batch, and each attempt's outcome with its entry in the delivery log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, SmallInt, Text, Timestamptz};

use super::events::EventRow;
use super::webhooks::{WebhookRow, COLUMNS};

/// Up to `limit` webhooks that are due and have events after what they delivered, none
/// of tenants in `busy`, most overdue first, as (tenant, id). Runs over every tenant: the
/// dispatcher's one cross-tenant read, done by one replica (the leader). A plain read:
/// each is then leased by [`lease`], in its own tenant, since a cross-tenant
/// `FOR UPDATE SKIP LOCKED` is what a sharded PostgreSQL (Citus) cannot run.
pub fn due(conn: &mut PgConnection, limit: i64, busy: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = BigInt)]
        tenant_id: i64,
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let due: Vec<Due> = diesel::sql_query(
        "SELECT d.tenant_id, d.id FROM webhooks d \
         WHERE d.enabled AND d.next_attempt_at <= now() \
           AND (d.leased_until IS NULL OR d.leased_until < now()) \
           AND d.tenant_id <> ALL($2) \
           AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = d.tenant_id \
                       AND e.id > d.delivered_through) \
         ORDER BY d.next_attempt_at LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Array<BigInt>, _>(busy)
    .load(conn)?;
    Ok(due.into_iter().map(|d| (d.tenant_id, d.id)).collect())
}

/// Leases the webhook until `until` under `lease` if it is still due and unleased at
/// `now` (another replica may have taken it since [`due`] read it): the webhook, or
/// `None`. Times are bound, as in every write here: Citus refuses `now()` inside the
/// `CASE` and `coalesce` of a distributed write, so none is ever written.
pub fn lease(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    lease: i64,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> QueryResult<Option<WebhookRow>> {
    diesel::sql_query(format!(
        "UPDATE webhooks SET leased_until = $5, lease = $3 \
         WHERE tenant_id = $1 AND id = $2 AND enabled AND next_attempt_at <= $4 \
           AND (leased_until IS NULL OR leased_until < $4) RETURNING {COLUMNS}"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(lease)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(until)
    .get_result(conn)
    .optional()
}

/// Events the webhook's next delivery looks at, at most.
const WINDOW: i64 = 5_000;

/// The webhook's next batch: up to `max` events of its types after `delivered_through`
/// (through `batch_through` when a batch was already fixed), and the last event id it
/// looked at, which it may mark delivered once the batch is acknowledged (events of
/// other types in between included).
pub fn next_batch(
    conn: &mut PgConnection,
    webhook: &WebhookRow,
    max: i64,
) -> QueryResult<(Vec<EventRow>, i64)> {
    let through = webhook.batch_through.unwrap_or(i64::MAX);
    let window: Vec<EventRow> = diesel::sql_query(
        "SELECT id, type, occurred_at, segment_id, contact_id, details FROM events \
         WHERE tenant_id = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4",
    )
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.delivered_through)
    .bind::<BigInt, _>(through)
    .bind::<BigInt, _>(WINDOW)
    .load(conn)?;
    let window_end = window.last().map_or(webhook.delivered_through, |e| e.id);
    let batch: Vec<EventRow> = window
        .into_iter()
        .filter(|event| webhook.event_types.contains(&event.r#type))
        .take(max as usize)
        .collect();
    let seen = match (webhook.batch_through, batch.last()) {
        (Some(through), _) => through,
        (None, Some(last)) if batch.len() as i64 == max => last.id,
        _ => window_end,
    };
    Ok((batch, seen))
}

/// Fixes the batch being attempted, so retries send the same events under one id.
pub fn fix_batch(
    conn: &mut PgConnection,
    webhook: &WebhookRow,
    lease: i64,
    through: i64,
) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE webhooks SET batch_through = $4 WHERE tenant_id = $1 AND id = $2 AND lease = $3",
    )
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.id)
    .bind::<BigInt, _>(lease)
    .bind::<BigInt, _>(through)
    .execute(conn)
    .map(|updated| updated == 1)
}

/// How one delivery attempt ended.
pub struct Attempt<'a> {
    pub event_ids: &'a [i64],
    pub attempt: i32,
    pub status_code: Option<i16>,
    pub error: Option<&'a str>,
}

/// Records an acknowledged batch at `now`: delivered through `through`, no failure.
/// With `keep_until`, the lease is renewed until then for the next batch (the webhook as
/// it now is is returned); otherwise it is freed. `None` (nothing recorded) when the
/// lease was lost.
pub fn delivered(
    conn: &mut PgConnection,
    webhook: &WebhookRow,
    lease: i64,
    through: i64,
    attempt: &Attempt<'_>,
    now: DateTime<Utc>,
    keep_until: Option<DateTime<Utc>>,
) -> QueryResult<Option<WebhookRow>> {
    let updated: Option<WebhookRow> = diesel::sql_query(format!(
        "UPDATE webhooks SET delivered_through = $4, batch_through = NULL, attempt = 0, \
           failing_since = NULL, next_attempt_at = $6, leased_until = $5, \
           lease = CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE lease END \
         WHERE tenant_id = $1 AND id = $2 AND lease = $3 RETURNING {COLUMNS}"
    ))
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.id)
    .bind::<BigInt, _>(lease)
    .bind::<BigInt, _>(through)
    .bind::<Nullable<Timestamptz>, _>(keep_until)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .optional()?;
    if updated.is_some() {
        log(conn, webhook, attempt, None)?;
    }
    Ok(updated)
}

/// Records a failed attempt at `now`: the next one at `next_attempt_at`, or, when
/// `disable` says why, the webhook disabled. False (nothing recorded) when the lease was
/// lost.
pub fn failed(
    conn: &mut PgConnection,
    webhook: &WebhookRow,
    lease: i64,
    attempt: &Attempt<'_>,
    now: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    disable: Option<&str>,
) -> QueryResult<bool> {
    let updated = diesel::sql_query(
        "UPDATE webhooks SET attempt = $4, failing_since = coalesce(failing_since, $7), \
           next_attempt_at = $5, enabled = enabled AND $6::text IS NULL, \
           disabled_reason = coalesce($6, disabled_reason), leased_until = NULL, lease = NULL, \
           updated_at = CASE WHEN $6::text IS NULL THEN updated_at ELSE $7 END \
         WHERE tenant_id = $1 AND id = $2 AND lease = $3",
    )
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.id)
    .bind::<BigInt, _>(lease)
    .bind::<Integer, _>(attempt.attempt)
    .bind::<Timestamptz, _>(next_attempt_at)
    .bind::<Nullable<Text>, _>(disable)
    .bind::<Timestamptz, _>(now)
    .execute(conn)?;
    if updated == 1 {
        let next = disable.is_none().then_some(next_attempt_at);
        log(conn, webhook, attempt, next)?;
    }
    Ok(updated == 1)
}

/// Attempts kept per webhook in its delivery log.
const LOGGED: i64 = 100;

fn log(
    conn: &mut PgConnection,
    webhook: &WebhookRow,
    attempt: &Attempt<'_>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_ids, attempt, \
           status_code, error, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.id)
    .bind::<Array<BigInt>, _>(attempt.event_ids)
    .bind::<Integer, _>(attempt.attempt)
    .bind::<Nullable<SmallInt>, _>(attempt.status_code)
    .bind::<Nullable<Text>, _>(attempt.error)
    .bind::<Nullable<Timestamptz>, _>(next_attempt_at)
    .execute(conn)?;
    diesel::sql_query(
        "DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND id <= \
         (SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 \
          ORDER BY id DESC OFFSET $3 LIMIT 1)",
    )
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.id)
    .bind::<BigInt, _>(LOGGED)
    .execute(conn)
    .map(drop)
}

/// Frees the webhook's lease without recording an attempt: nothing of its types to
/// deliver through `seen` (events of other types, or a fixed batch whose events outlived
/// their retention), so it moves past them.
pub fn release(
    conn: &mut PgConnection,
    webhook: &WebhookRow,
    lease: i64,
    seen: i64,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE webhooks SET delivered_through = greatest(delivered_through, $4), \
           batch_through = NULL, leased_until = NULL, lease = NULL \
         WHERE tenant_id = $1 AND id = $2 AND lease = $3",
    )
    .bind::<BigInt, _>(webhook.tenant_id)
    .bind::<BigInt, _>(webhook.id)
    .bind::<BigInt, _>(lease)
    .bind::<BigInt, _>(seen)
    .execute(conn)
    .map(drop)
}
