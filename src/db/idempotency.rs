//! Idempotency keys: the first answer to a POST, kept per tenant for 24 hours.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, SmallInt, Text, Timestamptz};

/// A stored answer.
#[derive(Debug, Clone, QueryableByName)]
pub struct Stored {
    #[diesel(sql_type = Binary)]
    pub request_hash: Vec<u8>,
    /// None while the first request runs.
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub status: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub content_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub body: Option<Vec<u8>>,
}

/// How long a key keeps its answer.
const KEPT_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// A key whose request has not answered in this long was held by a process that died.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)]
    tenant_id: i64,
}

/// Claims `key` for a request: true when this request is to do the work (the key is
/// new, expired after 24 h, or held by a request that has been running for 5 minutes,
/// whose process died). One statement: of two requests with one key, one claims it.
/// `now` and the cutoffs are bound rather than computed by the statement: Citus refuses
/// functions (and `timestamptz - interval`) that are not immutable in an upsert's
/// `DO UPDATE`.
pub fn claim(
    conn: &mut PgConnection,
    tenant_id: i64,
    key: &str,
    hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let claimed: Option<Claimed> = diesel::sql_query(
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, key) DO UPDATE \
         SET request_hash = EXCLUDED.request_hash, status = NULL, content_type = NULL, \
             location = NULL, body = NULL, created_at = $4 \
         WHERE idempotency_keys.created_at < $5 \
            OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < $6) \
         RETURNING tenant_id",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(key)
    .bind::<Binary, _>(hash)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(now - KEPT_FOR)
    .bind::<Timestamptz, _>(now - ABANDONED_AFTER)
    .get_result(conn)
    .optional()?;
    Ok(claimed.is_some())
}

/// What is stored under `key`.
pub fn find(conn: &mut PgConnection, tenant_id: i64, key: &str) -> QueryResult<Option<Stored>> {
    diesel::sql_query(
        "SELECT request_hash, status, content_type, location, body FROM idempotency_keys \
         WHERE tenant_id = $1 AND key = $2",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(key)
    .get_result(conn)
    .optional()
}

/// Stores the first answer.
pub fn finish(
    conn: &mut PgConnection,
    tenant_id: i64,
    key: &str,
    answer: &Stored,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, body = $6 \
         WHERE tenant_id = $1 AND key = $2",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(key)
    .bind::<Nullable<SmallInt>, _>(answer.status)
    .bind::<Nullable<Text>, _>(&answer.content_type)
    .bind::<Nullable<Text>, _>(&answer.location)
    .bind::<Nullable<Binary>, _>(&answer.body)
    .execute(conn)
    .map(drop)
}

/// Forgets `key` (the work failed on the service's side: a retry may do it).
pub fn release(conn: &mut PgConnection, tenant_id: i64, key: &str) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2")
        .bind::<BigInt, _>(tenant_id)
        .bind::<Text, _>(key)
        .execute(conn)
        .map(drop)
}

/// Forgets keys older than 24 hours at `now`, at most `batch` of them; returns how
/// many. (A maintenance statement across tenants, run by one replica at a time.)
pub fn forget_expired(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN ( \
           SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $2 LIMIT $1)",
    )
    .bind::<BigInt, _>(batch)
    .bind::<Timestamptz, _>(now - KEPT_FOR)
    .execute(conn)
}
