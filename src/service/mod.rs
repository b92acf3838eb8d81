//! Use cases: what the API does, each in one transaction, in the words of the core.
//! They take the tenant the caller acts for and return core errors; the HTTP layer
//! reads requests into their arguments and renders their results.

pub mod attributes;
pub mod audience;
pub mod auth;
pub mod campaigns;
pub mod contact_batch;
pub mod contacts;
pub mod definition_cache;
pub mod dynamic;
pub mod endpoints;
pub mod events;
pub mod filters;
pub mod health;
pub mod idempotency;
pub mod imports;
pub mod membership;
pub mod segments;
pub mod sends;
pub mod streams;
pub mod tenants;
pub mod webhook_delivery;
pub mod webhooks;

use std::sync::Arc;

use crate::config::Config;
use crate::core::clock::Clock;
use crate::core::error::Error;
use crate::db::pool::{self, PgPool};

/// A condition a write checks on the resource it has locked, before changing it: the
/// caller's `If-Match`, which only the HTTP layer can render. False: 412, nothing changed.
pub type Precondition<T> = Box<dyn Fn(&T) -> bool + Send + Sync + 'static>;

/// Checks `precondition`, if any, against `current`.
pub fn check<T>(precondition: &Option<Precondition<T>>, current: &T) -> Result<(), Error> {
    match precondition {
        Some(holds) if !holds(current) => Err(Error::PreconditionFailed),
        _ => Ok(()),
    }
}

/// What every use case runs against: the database, the clock date filters count from,
/// whether webhooks may reach private networks, and the attribute definitions kept
/// between requests.
#[derive(Clone)]
pub struct Env {
    pub pool: PgPool,
    pub clock: Clock,
    pub webhooks_may_reach_private: bool,
    pub definitions: Arc<definition_cache::DefinitionCache>,
}

impl Env {
    /// A pool of connections to the configured database, made lazily.
    pub fn new(config: &Config, clock: Clock) -> Self {
        let url = config.database_url.clone().unwrap_or_default();
        Self {
            pool: pool::pool(
                &url,
                config.db_pool_size,
                config.statement_timeout_secs,
                config.tenant_pool_share,
            ),
            clock,
            webhooks_may_reach_private: config.webhook_allow_private,
            definitions: Arc::default(),
        }
    }
}
