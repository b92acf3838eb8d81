//! Who is calling: a tenant's API key, or the admin token.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::tenants::{queries, TenantRow};
use crate::{db, AppState};

/// Every key starts with this, so a leaked one is easy to recognise in a scan.
const KEY_PREFIX: &str = "sk_";

/// A new API key: 256 random bits. Only its hash is stored.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Keys carry 256 bits of entropy, so one SHA-256 round is enough: there is nothing to
/// brute-force that a slow hash would protect.
pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The tenant whose API key authenticated the request. Every tenant-scoped query takes
/// its id.
pub struct Caller(pub TenantRow);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let key_hash = bearer_token(request).map(hash_api_key);
        Box::pin(async move {
            let (Some(state), Some(key_hash)) = (state, key_hash) else {
                return Err(ApiError::Unauthorized);
            };
            let tenant = db::run(&state.pool, move |conn| {
                queries::find_by_key_hash(conn, &key_hash)
            })
            .await?;
            tenant.map(Caller).ok_or(ApiError::Unauthorized)
        })
    }
}

/// The channel on which every change to keys or tenants is announced (`NOTIFY`), so every
/// replica empties its [`KeyCache`] at once.
pub const CHANGES_CHANNEL: &str = "segments_auth_changed";

/// How long a cached key is trusted even if a change announcement were lost.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// Tenants by API key hash, so authenticating a request costs no database round trip.
/// Emptied on every change to keys or tenants: by this process directly, and by every
/// replica when PostgreSQL relays the change (see [`listen_for_changes`]).
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<Vec<u8>, (TenantRow, Instant)>>,
}

impl KeyCache {
    pub fn get(&self, key_hash: &[u8]) -> Option<TenantRow> {
        let entries = self.entries.read().ok()?;
        let (tenant, cached_at) = entries.get(key_hash)?;
        (cached_at.elapsed() < CACHE_TTL).then(|| tenant.clone())
    }

    pub fn insert(&self, key_hash: Vec<u8>, tenant: TenantRow) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(key_hash, (tenant, Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

/// Empties `cache` whenever another process announces a key or tenant change, for as long
/// as the process runs; while the database is unreachable nothing is cached at all.
pub fn listen_for_changes(database_url: String, cache: std::sync::Arc<KeyCache>) {
    use diesel::prelude::*;
    std::thread::spawn(move || loop {
        let listening = PgConnection::establish(&database_url)
            .ok()
            .and_then(|mut connection| {
                diesel::sql_query(format!("LISTEN {CHANGES_CHANNEL}"))
                    .execute(&mut connection)
                    .ok()?;
                Some(connection)
            });
        // Entries cached while not listening could miss a revocation.
        cache.clear();
        let Some(mut connection) = listening else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        let mut last_ping = Instant::now();
        'listening: loop {
            for notification in connection.notifications_iter() {
                cache.clear();
                if notification.is_err() {
                    break 'listening;
                }
            }
            if last_ping.elapsed() > Duration::from_secs(5) {
                if diesel::sql_query("SELECT 1")
                    .execute(&mut connection)
                    .is_err()
                {
                    break 'listening;
                }
                last_ping = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// A request carrying the configured admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let configured = request
            .app_data::<web::Data<AppState>>()
            .and_then(|state| state.config.admin_token.clone());
        ready(match configured {
            // Without a token the admin API does not exist.
            None => Err(ApiError::NotFound("route")),
            Some(expected) => {
                let given = bearer_token(request).unwrap_or_default();
                // Comparing digests keeps the time independent of where the strings differ.
                let matches: bool = Sha256::digest(given.as_bytes())
                    .ct_eq(&Sha256::digest(expected.as_bytes()))
                    .into();
                if matches {
                    Ok(Admin)
                } else {
                    Err(ApiError::Unauthorized)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hash_stably() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
    }
}
