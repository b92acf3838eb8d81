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
            if let Some(tenant) = state.keys.get(&key_hash) {
                return Ok(Caller(tenant));
            }
            let generation = state.keys.generation();
            let lookup = key_hash.clone();
            let tenant = db::run(&state.pool, move |conn| {
                queries::find_by_key_hash(conn, &lookup)
            })
            .await?
            .ok_or(ApiError::Unauthorized)?;
            state.keys.insert(key_hash, tenant.clone(), generation);
            Ok(Caller(tenant))
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
/// replica when PostgreSQL relays the change (see [`listen_for_changes`]). Used only
/// while that relay is listening, since otherwise a revocation could be missed.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<Vec<u8>, (TenantRow, Instant)>,
    /// Bumped by every clear: a lookup that started before a clear must not be cached
    /// after it, or a key revoked meanwhile would live on.
    generation: u64,
    listening: bool,
}

impl KeyCache {
    pub fn get(&self, key_hash: &[u8]) -> Option<TenantRow> {
        let entries = self.entries.read().ok()?;
        let (tenant, cached_at) = entries
            .by_hash
            .get(key_hash)
            .filter(|_| entries.listening)?;
        (cached_at.elapsed() < CACHE_TTL).then(|| tenant.clone())
    }

    /// Take before looking a key up in the database; pass to [`KeyCache::insert`].
    pub fn generation(&self) -> u64 {
        self.entries.read().map_or(0, |entries| entries.generation)
    }

    pub fn insert(&self, key_hash: Vec<u8>, tenant: TenantRow, generation: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.listening && entries.generation == generation {
                entries.by_hash.insert(key_hash, (tenant, Instant::now()));
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.by_hash.clear();
            entries.generation += 1;
        }
    }

    /// Entries from before a (re)connection could have missed a revocation: dropped.
    fn set_listening(&self, listening: bool) {
        if let Ok(mut entries) = self.entries.write() {
            entries.by_hash.clear();
            entries.generation += 1;
            entries.listening = listening;
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
        cache.set_listening(listening.is_some());
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
        // Changes made while reconnecting would go unheard.
        cache.set_listening(false);
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

    fn tenant() -> TenantRow {
        TenantRow {
            id: 1,
            name: "T".into(),
            endpoint_limit: None,
            default_region: None,
            require_privacy_consent: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_key_cache_serves_only_while_listening_and_never_what_a_clear_overtook() {
        let cache = KeyCache::default();
        cache.insert(b"k".to_vec(), tenant(), cache.generation());
        assert!(
            cache.get(b"k").is_none(),
            "not listening: nothing is cached"
        );
        cache.set_listening(true);
        cache.insert(b"k".to_vec(), tenant(), cache.generation());
        assert!(cache.get(b"k").is_some());
        // A lookup that began before a revocation cleared the cache is not kept.
        let before = cache.generation();
        cache.clear();
        cache.insert(b"k".to_vec(), tenant(), before);
        assert!(cache.get(b"k").is_none());
        cache.insert(b"k".to_vec(), tenant(), cache.generation());
        cache.set_listening(false);
        assert!(
            cache.get(b"k").is_none(),
            "a lost listener drops every entry"
        );
    }

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
