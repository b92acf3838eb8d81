//! Idempotent retries: a POST sent again with the same `Idempotency-Key` and body gets the
//! first answer again, without the work being done twice.

use super::Env;
use crate::core::error::Error;
use crate::db::idempotency::{self, Stored};
use crate::db::locks::{self, Lock};
use crate::db::pool;

/// What a request with a key is to do.
pub enum Claim {
    /// Do the work, then [`finish`] (or [`release`] on a server error).
    Proceed,
    /// Answer this, stored from the first request.
    Replay(Stored),
    /// The first request with this key is still running.
    InUse,
    /// The key was used with another request.
    Reused,
}

/// The keys of the admin API, which has no tenant.
pub const ADMIN: i64 = 0;

pub async fn claim(env: &Env, tenant_id: i64, key: String, hash: Vec<u8>) -> Result<Claim, Error> {
    pool::run(&env.pool.tenant(tenant_id), move |conn| {
        if idempotency::claim(conn, tenant_id, &key, &hash, chrono::Utc::now())? {
            return Ok::<_, Error>(Claim::Proceed);
        }
        Ok(match idempotency::find(conn, tenant_id, &key)? {
            // Expired and forgotten between the two statements: the caller may retry.
            None => Claim::InUse,
            Some(stored) if stored.request_hash != hash => Claim::Reused,
            Some(stored) if stored.status.is_none() => Claim::InUse,
            Some(stored) => Claim::Replay(stored),
        })
    })
    .await
}

pub async fn finish(env: &Env, tenant_id: i64, key: String, answer: Stored) -> Result<(), Error> {
    pool::run(&env.pool.tenant(tenant_id), move |conn| {
        idempotency::finish(conn, tenant_id, &key, &answer)
    })
    .await
}

pub async fn release(env: &Env, tenant_id: i64, key: String) -> Result<(), Error> {
    pool::run(&env.pool.tenant(tenant_id), move |conn| {
        idempotency::release(conn, tenant_id, &key)
    })
    .await
}

/// Forgets the keys past their 24 hours, in batches.
pub async fn forget_expired(env: &Env) -> Result<usize, Error> {
    pool::run(&env.pool, |conn| {
        locks::on_one_replica(conn, Lock::IdempotencyTrim, |conn| {
            idempotency::forget_expired(conn, chrono::Utc::now(), 10_000)
        })
        .map(Option::unwrap_or_default)
    })
    .await
}
