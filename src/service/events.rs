//! The events feed, and keeping it to its retention.

use chrono::Utc;

use super::Env;
use crate::core::error::Error;
use crate::core::event::{Event, EventType};
use crate::core::tenant::Tenant;
use crate::db::locks::{self, Lock};
use crate::db::{events, pool};

/// Up to `limit` of the tenant's events after `after`, in id order; only `kind`, when
/// given. A transaction still running when this reads has its events numbered later
/// than every event returned (see [`crate::db::events`]), so following the feed with
/// the last id seen never skips one.
pub async fn after(
    env: &Env,
    tenant: Tenant,
    after: i64,
    limit: i64,
    kind: Option<EventType>,
) -> Result<Vec<Event>, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let types = kind.map(|kind| vec![kind.as_str().to_owned()]);
        events::after(conn, tenant.id, after, limit, types.as_deref())
    })
    .await
    .map(|rows| {
        rows.into_iter()
            .filter_map(|row| row.into_event())
            .collect()
    })
}

/// Events deleted per statement by [`purge`], so no one statement runs long.
const PURGE_BATCH: i64 = 10_000;

/// Statements per [`purge`] call, so one call holds its pooled connection briefly
/// whatever piled up (after an outage, say): the caller calls again while some remain.
const PURGE_BATCHES_PER_CALL: usize = 10;

/// How far one [`purge`] call got.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub deleted: usize,
    /// Whether expired events remain for another call.
    pub more: bool,
}

/// Deletes events older than `retention_days`, a batch at a time, at most
/// [`PURGE_BATCHES_PER_CALL`] batches.
pub async fn purge(env: &Env, retention_days: u32) -> Result<Purged, Error> {
    let cutoff = Utc::now() - chrono::TimeDelta::days(i64::from(retention_days));
    pool::run(&env.pool, move |conn| {
        locks::on_one_replica(conn, Lock::EventsTrim, |conn| {
            let mut purged = Purged::default();
            for _ in 0..PURGE_BATCHES_PER_CALL {
                let deleted = events::delete_before(conn, cutoff, PURGE_BATCH)?;
                purged.deleted += deleted;
                purged.more = deleted as i64 == PURGE_BATCH;
                if !purged.more {
                    break;
                }
            }
            Ok::<_, Error>(purged)
        })
        .map(Option::unwrap_or_default)
    })
    .await
}
