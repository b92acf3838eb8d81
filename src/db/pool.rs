//! The connection pool, and the bridge from async use cases to synchronous Diesel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::events;
use crate::core::error::Error;

/// The connection pool, and as many permits as it has connections: a request waits for a
/// permit without holding a thread, so the blocking threads that run Diesel never queue
/// on the pool itself (which, at 64 concurrent requests, spent more CPU on contention
/// than on queries).
///
/// No tenant holds more than its share of the connections: work done for a tenant
/// ([`PgPool::tenant`]) first takes one of that tenant's permits, so one tenant's slow
/// work leaves the rest of the pool to the others.
#[derive(Clone)]
pub struct PgPool {
    connections: Pool<Manager>,
    permits: Arc<Semaphore>,
    shares: Arc<TenantShares>,
    /// The tenant this handle works for, if any.
    tenant: Option<i64>,
}

/// Each tenant's permits, made when the tenant first needs one and dropped when idle.
struct TenantShares {
    per_tenant: usize,
    semaphores: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

/// Idle tenants' semaphores are dropped once this many are kept.
const KEPT_TENANTS: usize = 1024;

impl TenantShares {
    fn semaphore(&self, tenant_id: i64) -> Arc<Semaphore> {
        let Ok(mut semaphores) = self.semaphores.lock() else {
            // A poisoned map: every tenant gets a fresh semaphore rather than none.
            return Arc::new(Semaphore::new(self.per_tenant));
        };
        if semaphores.len() >= KEPT_TENANTS {
            let full = self.per_tenant;
            semaphores.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
        }
        semaphores
            .entry(tenant_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone()
    }
}

impl PgPool {
    /// A handle whose work counts against `tenant_id`'s share of the connections.
    pub fn tenant(&self, tenant_id: i64) -> PgPool {
        PgPool {
            tenant: Some(tenant_id),
            ..self.clone()
        }
    }

    /// The permits one tenant may hold at once.
    pub fn per_tenant(&self) -> usize {
        self.shares.per_tenant
    }

    /// A connection within `timeout`, for checks that must answer quickly.
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> Result<r2d2::PooledConnection<Manager>, r2d2::PoolError> {
        self.connections.get_timeout(timeout)
    }

    pub fn state(&self) -> r2d2::State {
        self.connections.state()
    }

    pub fn max_size(&self) -> u32 {
        self.connections.max_size()
    }
}

/// A pooled connection that remembers losing its server, so the pool discards it instead
/// of handing it out again. (Diesel cannot tell such a connection from a healthy one, and
/// pinging on every checkout would cost a round trip per request.)
pub struct PooledPg {
    pub connection: PgConnection,
    lost: bool,
}

pub struct Manager {
    database_url: String,
    statement_timeout_secs: u64,
}

impl ManageConnection for Manager {
    type Connection = PooledPg;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PooledPg, r2d2::Error> {
        let mut connection =
            PgConnection::establish(&self.database_url).map_err(r2d2::Error::ConnectionError)?;
        // No statement runs, no lock is waited for and no transaction sits idle for
        // longer than this: whatever a request does, its connection comes back.
        connection
            .batch_execute(&format!(
                "SET statement_timeout = '{}s'; SET lock_timeout = '{LOCK_TIMEOUT_SECS}s'; \
                 SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECS}s'",
                self.statement_timeout_secs
            ))
            .map_err(r2d2::Error::QueryError)?;
        // Server messages in English where the role may choose, so the few failures
        // diesel does not classify read the same everywhere (see `failure`).
        let _ = diesel::sql_query("SET lc_messages = 'C'").execute(&mut connection);
        connection
            .batch_execute(events::STAGING_TABLE)
            .map_err(r2d2::Error::QueryError)?;
        Ok(PooledPg {
            connection,
            lost: false,
        })
    }

    fn is_valid(&self, pooled: &mut PooledPg) -> Result<(), r2d2::Error> {
        pooled.connection.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut PooledPg) -> bool {
        pooled.lost || pooled.connection.is_broken()
    }
}

/// Longest wait for a lock (a row, a tenant's evaluation lock) before the statement
/// gives up and the request answers 503 with `Retry-After`.
const LOCK_TIMEOUT_SECS: u64 = 20;
/// Longest a transaction may sit idle: the service never leaves one so, but a bug would.
const IDLE_IN_TRANSACTION_SECS: u64 = 60;

/// How long a request waits for a connection before answering 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the pool without connecting, so the service starts (and answers `/readyz` 503)
/// while the database is still down. A tenant may hold `tenant_share_percent` of its
/// connections (at least one).
pub fn pool(
    database_url: &str,
    size: u32,
    statement_timeout_secs: u64,
    tenant_share_percent: u32,
) -> PgPool {
    let connections = Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(false)
        .build_unchecked(Manager {
            database_url: database_url.to_owned(),
            statement_timeout_secs,
        });
    let per_tenant = (size as usize * tenant_share_percent.min(100) as usize / 100).max(1);
    PgPool {
        connections,
        permits: Arc::new(Semaphore::new(size as usize)),
        shares: Arc::new(TenantShares {
            per_tenant,
            semaphores: Mutex::new(HashMap::new()),
        }),
        tenant: None,
    }
}

/// Waits for one of the tenant's permits, if the handle works for one: 503
/// `tenant_busy` when the tenant's share stays taken.
async fn tenant_permit(pool: &PgPool) -> Result<Option<OwnedSemaphorePermit>, Error> {
    let Some(tenant_id) = pool.tenant else {
        return Ok(None);
    };
    let semaphore = pool.shares.semaphore(tenant_id);
    tokio::time::timeout(CHECKOUT_TIMEOUT, semaphore.acquire_owned())
        .await
        .map_err(|_| Error::Busy)?
        .map(Some)
        .map_err(Error::internal)
}

/// Checks a pooled connection: any failure means the database is unavailable.
pub fn ping(pooled: &mut PooledPg) -> Result<(), Error> {
    pooled.connection.ping().map_err(|error| {
        pooled.lost = true;
        Error::Unavailable(Box::new(error))
    })
}

/// Runs `work` on a pooled connection on the blocking thread pool.
pub async fn run<T, E, F>(pool: &PgPool, work: F) -> Result<T, Error>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<Error> + Send + 'static,
{
    let tenant_permit = tenant_permit(pool).await?;
    let permit = tokio::time::timeout(CHECKOUT_TIMEOUT, pool.permits.clone().acquire_owned())
        .await
        .map_err(|_| Error::Unavailable("no database connection became free in time".into()))?
        .map_err(Error::internal)?;
    let connections = pool.connections.clone();
    tokio::task::spawn_blocking(move || {
        let _permits = (tenant_permit, permit);
        let mut pooled = connections.get()?;
        let outcome = work(&mut pooled.connection).map_err(Into::into);
        if matches!(outcome, Err(Error::Unavailable(_))) {
            pooled.lost = true;
        }
        outcome
    })
    .await
    .map_err(Error::internal)?
}

/// Runs `work` in a transaction that records, last, the events it staged (see
/// [`events`]): every transaction that writes starts here or in [`transaction`].
pub fn writing<T, E>(
    connection: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    connection.transaction(|connection| {
        let outcome = work(connection)?;
        events::flush(connection, chrono::Utc::now())?;
        Ok(outcome)
    })
}

/// As [`run`], inside one transaction (see [`writing`]).
pub async fn transaction<T, F>(pool: &PgPool, work: F) -> Result<T, Error>
where
    F: FnOnce(&mut PgConnection) -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |connection| writing(connection, work)).await
}

/// Attempts at a transaction that lost a race (a deadlock, a serialization failure).
pub const ATTEMPTS: usize = 3;

/// As [`transaction`], run again when it loses a race: membership writes and contact
/// deletions can lock the same rows in opposite orders, and the loser's work is safe to
/// repeat.
pub async fn retrying_transaction<T, F>(pool: &PgPool, work: F) -> Result<T, Error>
where
    F: Fn(&mut PgConnection) -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |connection| {
        let mut attempt = 1;
        loop {
            match writing(connection, &work) {
                Err(Error::Contention(_)) if attempt < ATTEMPTS => attempt += 1,
                outcome => return outcome,
            }
        }
    })
    .await
}
