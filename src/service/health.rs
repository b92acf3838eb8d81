//! Whether the database answers, for readiness probes.

use std::time::Duration;

use crate::core::error::Error;
use crate::db::pool::{self, PgPool};

/// Ok when a pooled connection is available within `timeout` and answers.
pub async fn database_ready(pool: &PgPool, timeout: Duration) -> Result<(), Error> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut pooled = pool.get_timeout(timeout)?;
        pool::ping(&mut pooled)
    })
    .await
    .map_err(Error::internal)?
}
