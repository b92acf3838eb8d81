//! Every advisory lock the service takes, in one place, so their keys cannot collide and
//! their order can be read at a glance.
//!
//! Advisory locks serialise work that has no row of its own to lock, and leave rows alone:
//! unlike `SELECT ... FOR UPDATE` on the tenant's row, they never block the `FOR KEY
//! SHARE` lock every foreign-key check takes on it. Transaction-scoped locks end with
//! their transaction, whatever happens to the process.
//!
//! Order, where one transaction takes several: `Evaluation` (shared or exclusive) first,
//! then `Endpoints`, then rows (segments, then contacts in id order).

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

/// What a lock serialises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// A tenant's dynamic membership: writes that change what filters read hold it
    /// shared; full evaluations and filter changes hold it exclusively.
    Evaluation(i64),
    /// A tenant's membership writes, while it has an endpoint limit: two of them cannot
    /// together pass the limit.
    Endpoints(i64),
    /// A tenant's attribute definitions: two definitions at once cannot pass the cap.
    Attributes(i64),
    /// A tenant's webhooks: two created at once cannot pass the cap.
    Webhooks(i64),
    /// An import job's lease: held by the transaction running the job, so a poll can tell
    /// a running job from one whose process died.
    ImportJob { tenant_id: i64, id: i64 },
    /// The dynamic evaluation job: one replica runs it at a time (a session lock).
    EvaluationJob,
    /// The upkeep of sends' day partitions: one replica at a time (a session lock).
    SendUpkeep,
    /// Forgetting expired idempotency keys: one replica at a time (a session lock).
    IdempotencyTrim,
    /// Deleting events past retention: one replica at a time (a session lock).
    EventsTrim,
    /// Looking for due webhooks across tenants: the replica holding it, on a connection
    /// of its own, does it for all (the leadership module).
    WebhookDispatch,
}

impl Lock {
    /// The lock's name; its key is the name's 64-bit hash.
    fn name(self) -> String {
        match self {
            Lock::Evaluation(tenant_id) => format!("segments.evaluation.{tenant_id}"),
            Lock::Endpoints(tenant_id) => format!("segments.endpoints.{tenant_id}"),
            Lock::Attributes(tenant_id) => format!("segments.attributes.{tenant_id}"),
            Lock::Webhooks(tenant_id) => format!("segments.webhooks.{tenant_id}"),
            Lock::ImportJob { tenant_id, id } => format!("segments.import.{tenant_id}.{id}"),
            Lock::EvaluationJob => "segments.evaluation-job".to_owned(),
            Lock::SendUpkeep => "segments.send-upkeep".to_owned(),
            Lock::IdempotencyTrim => "segments.idempotency-trim".to_owned(),
            Lock::EventsTrim => "segments.events-trim".to_owned(),
            Lock::WebhookDispatch => "segments.webhook-dispatch".to_owned(),
        }
    }
}

const KEY: &str = "hashtextextended($1, 0)";

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Bool)]
    acquired: bool,
}

fn run(conn: &mut PgConnection, function: &str, lock: Lock) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT {function}({KEY})"))
        .bind::<Text, _>(lock.name())
        .execute(conn)
        .map(drop)
}

fn try_run(conn: &mut PgConnection, function: &str, lock: Lock) -> QueryResult<bool> {
    diesel::sql_query(format!("SELECT {function}({KEY}) AS acquired"))
        .bind::<Text, _>(lock.name())
        .get_result::<Acquired>(conn)
        .map(|row| row.acquired)
}

/// Waits for the lock, exclusively, until the transaction ends.
pub fn exclusive(conn: &mut PgConnection, lock: Lock) -> QueryResult<()> {
    run(conn, "pg_advisory_xact_lock", lock)
}

/// Waits for the lock, shared with other shared holders, until the transaction ends.
pub fn shared(conn: &mut PgConnection, lock: Lock) -> QueryResult<()> {
    run(conn, "pg_advisory_xact_lock_shared", lock)
}

/// Takes the lock until the transaction ends if nobody holds it; false otherwise.
pub fn try_exclusive(conn: &mut PgConnection, lock: Lock) -> QueryResult<bool> {
    try_run(conn, "pg_try_advisory_xact_lock", lock)
}

/// Takes the lock for the session if nobody holds it; false otherwise. Released when the
/// connection closes (or by `pg_advisory_unlock`).
pub fn try_session(conn: &mut PgConnection, lock: Lock) -> QueryResult<bool> {
    try_run(conn, "pg_try_advisory_lock", lock)
}

/// Runs `work` holding `lock` for the session, or returns `None` at once when another
/// session holds it: background work that one replica at a time does (a scan across
/// tenants run by every replica would, on Citus, fan out to every shard from each).
pub fn on_one_replica<T, E: From<diesel::result::Error>>(
    conn: &mut PgConnection,
    lock: Lock,
    work: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<Option<T>, E> {
    if !try_session(conn, lock)? {
        return Ok(None);
    }
    let outcome = work(conn);
    // Released with the connection too, should this fail.
    try_run(conn, "pg_advisory_unlock", lock)?;
    outcome.map(Some)
}
