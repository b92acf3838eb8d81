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

/// How long the cache trusts itself after it last heard from its listening connection:
/// past this, a revocation might be going unheard, so every key is looked up again.
const TRUST_WINDOW: Duration = Duration::from_secs(5);

/// How long a key the database does not know is refused without asking it again, and
/// how many such keys are kept.
const UNKNOWN_TTL: Duration = Duration::from_secs(30);
const MAX_UNKNOWN: usize = 10_000;

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
    by_hash: HashMap<Vec<u8>, (Authenticated, Instant)>,
    /// Bumped by every clear: a lookup that started before a clear must not be cached
    /// after it, or a key revoked meanwhile would live on.
    generation: u64,
    listening: bool,
    /// When the listening connection last answered.
    heard_at: Option<Instant>,
    /// Keys the database did not know, by hash, with when it said so.
    unknown: HashMap<Vec<u8>, Instant>,
}

impl Entries {
    fn trusted(&self) -> bool {
        self.listening && self.heard_at.is_some_and(|at| at.elapsed() < TRUST_WINDOW)
    }
}

impl KeyCache {
    pub fn get(&self, key_hash: &[u8]) -> Option<Authenticated> {
        let entries = self.entries.read().ok()?;
        let (tenant, cached_at) = entries
            .by_hash
            .get(key_hash)
            .filter(|_| entries.trusted())?;
        (cached_at.elapsed() < CACHE_TTL).then(|| tenant.clone())
    }

    /// Take before looking a key up in the database; pass to [`KeyCache::insert`].
    pub fn generation(&self) -> u64 {
        self.entries.read().map_or(0, |entries| entries.generation)
    }

    pub fn insert(&self, key_hash: Vec<u8>, tenant: Authenticated, generation: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.trusted() && entries.generation == generation {
                entries.by_hash.insert(key_hash, (tenant, Instant::now()));
            }
        }
    }

    /// Whether the database said lately that it does not know this key.
    pub fn is_known_unknown(&self, key_hash: &[u8]) -> bool {
        self.entries.read().is_ok_and(|entries| {
            entries
                .unknown
                .get(key_hash)
                .is_some_and(|at| at.elapsed() < UNKNOWN_TTL)
        })
    }

    fn remember_unknown(&self, key_hash: Vec<u8>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.unknown.len() >= MAX_UNKNOWN {
                entries.unknown.retain(|_, at| at.elapsed() < UNKNOWN_TTL);
                if entries.unknown.len() >= MAX_UNKNOWN {
                    entries.unknown.clear();
                }
            }
            entries.unknown.insert(key_hash, Instant::now());
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.by_hash.clear();
            entries.unknown.clear();
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
            entries.heard_at = listening.then(Instant::now);
        }
    }

    fn changed(&self) {
        self.clear();
    }

    fn heard(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.heard_at = Some(Instant::now());
        }
    }
}

/// Keeps `cache` true to the database for as long as the returned handle lives.
pub fn keep_fresh(database_url: &str, cache: Arc<KeyCache>) -> Listening {
    listen_for_changes(database_url.to_owned(), cache)
}

/// Who a key authenticates: its tenant, and which of the tenant's keys it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub tenant: Tenant,
    pub key_id: i64,
}

/// The tenant `key` belongs to, from the cache; `None` when it must be looked up.
pub fn cached(cache: &KeyCache, key: &str) -> Option<Authenticated> {
    cache.get(&hash_api_key(key))
}

/// Whether `key` is known not to exist (a lookup of it lately found nothing).
pub fn known_unknown(cache: &KeyCache, key: &str) -> bool {
    cache.is_known_unknown(&hash_api_key(key))
}

/// Looks the key up in the database (recording that it was used, to the minute); the
/// answer is cached either way. `None` for an unknown or revoked key.
pub async fn look_up(
    env: &Env,
    cache: &KeyCache,
    key: &str,
) -> Result<Option<Authenticated>, Error> {
    let key_hash = hash_api_key(key);
    let generation = cache.generation();
    let lookup = key_hash.clone();
    let tenant = pool::run(&env.pool, move |conn| {
        let tenant = tenants::find_by_key_hash(conn, &lookup)?;
        if tenant.is_some() {
            tenants::touch_api_key(conn, &lookup)?;
        }
        Ok::<_, Error>(tenant)
    })
    .await?
    .map(|(row, key_id)| Authenticated {
        tenant: Tenant::from(row),
        key_id,
    });
    match &tenant {
        Some(tenant) => cache.insert(key_hash, tenant.clone(), generation),
        None => cache.remember_unknown(key_hash),
    }
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Authenticated {
        Authenticated {
            tenant: Tenant {
                id: 1,
                name: "T".into(),
                endpoint_limit: None,
                default_region: None,
                require_privacy_consent: false,
            },
            key_id: 1,
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
        // Not heard from for longer than the trust window: nothing is served.
        cache.entries.write().unwrap().heard_at = Some(Instant::now() - TRUST_WINDOW);
        assert!(
            cache.get(b"k").is_none(),
            "a silent listener is not trusted"
        );
        cache.heard();
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
