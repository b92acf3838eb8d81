//! The connection pool, migrations and the bridge from async handlers to sync Diesel.

pub mod embedded;
pub mod schema;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The connection pool, and as many permits as it has connections: a request waits for a
/// permit without holding a thread, so the blocking threads that run Diesel never queue
/// on the pool itself (which, at 64 concurrent requests, spent more CPU on contention
/// than on queries).
#[derive(Clone)]
pub struct PgPool {
    connections: Pool<Manager>,
    permits: Arc<Semaphore>,
}

impl PgPool {
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
        diesel::sql_query(format!(
            "SET statement_timeout = '{}s'",
            self.statement_timeout_secs
        ))
        .execute(&mut connection)
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

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a request waits for a connection before answering 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the pool without connecting, so the service starts (and answers `/readyz` 503)
/// while the database is still down.
pub fn pool(database_url: &str, size: u32, statement_timeout_secs: u64) -> PgPool {
    let connections = Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(false)
        .build_unchecked(Manager {
            database_url: database_url.to_owned(),
            statement_timeout_secs,
        });
    PgPool {
        connections,
        permits: Arc::new(Semaphore::new(size as usize)),
    }
}

pub fn run_migrations(connection: &mut PgConnection) -> Result<Vec<String>, String> {
    connection
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(ToString::to_string).collect())
        .map_err(|error| error.to_string())
}

/// Checks a pooled connection: any failure means the database is unavailable.
pub fn ping(pooled: &mut PooledPg) -> Result<(), ApiError> {
    pooled.connection.ping().map_err(|error| {
        pooled.lost = true;
        ApiError::Unavailable(error.to_string())
    })
}

/// Runs `work` on a pooled connection on the blocking thread pool.
pub async fn run<T, E, F>(pool: &PgPool, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    let permit = tokio::time::timeout(CHECKOUT_TIMEOUT, pool.permits.clone().acquire_owned())
        .await
        .map_err(|_| {
            ApiError::Unavailable("no database connection became free in time".to_owned())
        })?
        .map_err(ApiError::internal)?;
    let connections = pool.connections.clone();
    web::block(move || {
        let _permit = permit;
        let mut pooled = connections.get()?;
        let outcome = work(&mut pooled.connection).map_err(Into::into);
        if matches!(outcome, Err(ApiError::Unavailable(_))) {
            pooled.lost = true;
        }
        outcome
    })
    .await?
}

/// Attempts at a transaction that PostgreSQL aborted to break a deadlock.
const DEADLOCK_ATTEMPTS: usize = 3;

/// As [`run`], inside one transaction.
pub async fn transaction<T, F>(pool: &PgPool, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |connection| connection.transaction(work)).await
}

/// As [`transaction`], run again when PostgreSQL picks it as a deadlock victim:
/// membership writes and contact deletions can lock the same rows in opposite orders,
/// and the loser's work is safe to repeat.
pub async fn retrying_transaction<T, F>(pool: &PgPool, work: F) -> Result<T, ApiError>
where
    F: Fn(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |connection| {
        let mut attempt = 1;
        loop {
            match connection.transaction(&work) {
                Err(ApiError::Deadlock(_)) if attempt < DEADLOCK_ATTEMPTS => attempt += 1,
                Err(ApiError::Deadlock(cause)) => return Err(ApiError::internal(cause)),
                outcome => return outcome,
            }
        }
    })
    .await
}

/// `%` and `_` in user search text match themselves, not any text.
pub fn like_pattern(search: &str) -> String {
    format!("%{}%", escape_like(search))
}

/// `text` with LIKE's wildcards and escape character taken literally.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(super::like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
