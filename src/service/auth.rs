//! Who is calling: the tenant an API key belongs to, from a cache that every replica
//! empties when keys or tenants change.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::Env;
use crate::core::error::Error;
use crate::core::keys::hash_api_key;
use crate::core::tenant::Tenant;
use crate::db::notify::{listen_for_changes, ChangeListener, Listening};
use crate::db::{pool, tenants};

/// How long a cached key is trusted even if a change announcement were lost.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// Tenants by API key hash, so authenticating a request costs no database round trip.
/// Emptied on every change to keys or tenants: by this process directly, and by every
/// replica when PostgreSQL relays the change (see [`crate::db::notify`]). Used only
/// while that relay is listening, since otherwise a revocation could be missed.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<Vec<u8>, (Tenant, Instant)>,
    /// Bumped by every clear: a lookup that started before a clear must not be cached
    /// after it, or a key revoked meanwhile would live on.
    generation: u64,
    listening: bool,
}

impl KeyCache {
    pub fn get(&self, key_hash: &[u8]) -> Option<Tenant> {
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

    pub fn insert(&self, key_hash: Vec<u8>, tenant: Tenant, generation: u64) {
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
}

impl ChangeListener for KeyCache {
    /// Entries from before a (re)connection could have missed a revocation: dropped.
    fn listening(&self, listening: bool) {
        if let Ok(mut entries) = self.entries.write() {
            entries.by_hash.clear();
            entries.generation += 1;
            entries.listening = listening;
        }
    }

    fn changed(&self) {
        self.clear();
    }
}

/// Keeps `cache` true to the database for as long as the returned handle lives.
pub fn keep_fresh(database_url: &str, cache: Arc<KeyCache>) -> Listening {
    listen_for_changes(database_url.to_owned(), cache)
}

/// The tenant `key` belongs to; `None` for an unknown or revoked key.
pub async fn authenticate(env: &Env, cache: &KeyCache, key: &str) -> Result<Option<Tenant>, Error> {
    let key_hash = hash_api_key(key);
    if let Some(tenant) = cache.get(&key_hash) {
        return Ok(Some(tenant));
    }
    let generation = cache.generation();
    let lookup = key_hash.clone();
    let tenant = pool::run(&env.pool, move |conn| {
        tenants::find_by_key_hash(conn, &lookup)
    })
    .await?
    .map(Tenant::from);
    if let Some(tenant) = &tenant {
        cache.insert(key_hash, tenant.clone(), generation);
    }
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            id: 1,
            name: "T".into(),
            endpoint_limit: None,
            default_region: None,
            require_privacy_consent: false,
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
        cache.listening(true);
        cache.insert(b"k".to_vec(), tenant(), cache.generation());
        assert!(cache.get(b"k").is_some());
        // A lookup that began before a revocation cleared the cache is not kept.
        let before = cache.generation();
        cache.clear();
        cache.insert(b"k".to_vec(), tenant(), before);
        assert!(cache.get(b"k").is_none());
        cache.insert(b"k".to_vec(), tenant(), cache.generation());
        cache.listening(false);
        assert!(
            cache.get(b"k").is_none(),
            "a lost listener drops every entry"
        );
    }
}
