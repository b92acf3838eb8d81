//! The connection pool, migrations and the bridge from async handlers to sync Diesel.

pub mod embedded;
pub mod schema;

use std::time::Duration;

use actix_web::web;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::ApiError;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a request waits for a connection before answering 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the pool without connecting, so the service starts (and answers `/readyz` 503)
/// while the database is still down.
pub fn pool(database_url: &str, size: u32) -> PgPool {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        // Diesel cannot tell a connection whose server went away from a healthy one, so
        // each checkout pings; this is what lets the pool heal after an outage.
        .test_on_check_out(true)
        .build_unchecked(ConnectionManager::new(database_url))
}

pub fn run_migrations(connection: &mut PgConnection) -> Result<Vec<String>, String> {
    connection
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(ToString::to_string).collect())
        .map_err(|error| error.to_string())
}

/// Runs `work` on a pooled connection on the blocking thread pool.
pub async fn run<T, E, F>(pool: &PgPool, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut connection = pool.get()?;
        work(&mut connection).map_err(Into::into)
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
    let escaped = search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(super::like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
