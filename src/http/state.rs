//! What every handler can reach, built once from the configuration.

use std::sync::Arc;

use actix_web::web;

use crate::config::Config;
use crate::core::clock::Clock;
use crate::db::notify::Listening;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::RateLimits;
use crate::service::auth::{keep_fresh, KeyCache};
use crate::service::Env;

pub struct AppState {
    pub env: Env,
    pub config: Config,
    pub metrics: Metrics,
    pub keys: Arc<KeyCache>,
    /// Shared with the rate-limit middleware, which finds it as app data of its own.
    pub rate_limits: web::Data<RateLimits>,
    /// Empties `keys` when another replica changes keys or tenants; stops with the state.
    _listening: Listening,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        Self::with_clock(config, Clock::System)
    }

    /// As [`AppState::new`], with date filters counting from `clock`.
    pub fn with_clock(config: Config, clock: Clock) -> Self {
        let url = config.database_url.clone().unwrap_or_default();
        let keys = Arc::new(KeyCache::default());
        let rate_limits = web::Data::new(RateLimits::new(config.rate_limit, config.rate_burst));
        let listening = keep_fresh(&url, keys.clone());
        Self {
            env: Env::new(&config, clock),
            config,
            metrics: Metrics::new(),
            rate_limits,
            keys,
            _listening: listening,
        }
    }
}
