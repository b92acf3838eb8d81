//! Tenants' attribute definitions, kept between requests: segments summarise their
//! filters with them, and reading them at every page cost a round trip (15% of the
//! service's CPU serving pages of 25 segments).
//!
//! No replica has to be told of a change: an entry is the definitions as of a version of
//! them, and the statement reading the segments reads the tenant's current version with them
//! (every change bumps it in the change's transaction), so a stale entry is never used.
//! Entries also expire after a minute, for changes made without a bump: by a replica
//! still running a version from before the bump existed, during a rolling upgrade, or
//! by hand in SQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::PgConnection;

use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::db::attributes;

/// Entries kept: at most 100 definitions each (`MAX_DEFINITIONS`), a few MB at worst.
const KEPT_TENANTS: usize = 256;

/// How long an entry serves at most.
const MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct DefinitionCache {
    by_tenant: Mutex<HashMap<i64, Kept>>,
}

/// A tenant's definitions as of a version of them.
struct Kept {
    version: i64,
    definitions: Arc<[Definition]>,
    kept_at: Instant,
}

impl DefinitionCache {
    /// The tenant's definitions at `version`: kept ones if kept at that version, else
    /// read (and kept at the version read, which a change since `version` made newer).
    pub fn at_version(
        &self,
        conn: &mut PgConnection,
        tenant_id: i64,
        version: i64,
    ) -> Result<Arc<[Definition]>, Error> {
        if let Some(kept) = self.kept(tenant_id, version) {
            return Ok(kept);
        }
        let (read_version, definitions) = attributes::versioned_definitions(conn, tenant_id)?;
        let definitions: Arc<[Definition]> = definitions.into();
        self.keep(tenant_id, read_version, definitions.clone());
        Ok(definitions)
    }

    fn kept(&self, tenant_id: i64, version: i64) -> Option<Arc<[Definition]>> {
        let by_tenant = self.by_tenant.lock().ok()?;
        let kept = by_tenant.get(&tenant_id)?;
        (kept.version == version && kept.kept_at.elapsed() < MAX_AGE)
            .then(|| kept.definitions.clone())
    }

    fn keep(&self, tenant_id: i64, version: i64, definitions: Arc<[Definition]>) {
        let Ok(mut by_tenant) = self.by_tenant.lock() else {
            return;
        };
        if by_tenant.len() >= KEPT_TENANTS && !by_tenant.contains_key(&tenant_id) {
            // Any one goes: a tenant that lost its entry pays one read to get it back.
            if let Some(&evicted) = by_tenant.keys().next() {
                by_tenant.remove(&evicted);
            }
        }
        // Two readers of different versions: the newer one stays.
        let newer = by_tenant
            .get(&tenant_id)
            .is_none_or(|kept| kept.version <= version);
        if newer {
            by_tenant.insert(
                tenant_id,
                Kept {
                    version,
                    definitions,
                    kept_at: Instant::now(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::AttributeType;

    fn definitions(label: &str) -> Arc<[Definition]> {
        vec![Definition {
            key: "city".into(),
            label: label.into(),
            value_type: AttributeType::Text,
        }]
        .into()
    }

    #[test]
    fn a_kept_copy_serves_only_its_own_version_and_the_newer_one_stays() {
        let cache = DefinitionCache::default();
        cache.keep(1, 2, definitions("City"));
        assert_eq!(cache.kept(1, 2).expect("kept")[0].label, "City");
        assert!(cache.kept(1, 3).is_none());
        assert!(cache.kept(2, 2).is_none());
        // A reader that read before a change finishes after it: the newer copy stays.
        cache.keep(1, 3, definitions("Town"));
        cache.keep(1, 2, definitions("City"));
        assert!(cache.kept(1, 2).is_none());
        assert_eq!(cache.kept(1, 3).expect("kept")[0].label, "Town");
    }

    #[test]
    fn an_entry_expires() {
        let cache = DefinitionCache::default();
        cache.keep(1, 2, definitions("City"));
        let long_ago = Instant::now().checked_sub(MAX_AGE + Duration::from_secs(1));
        if let Some(kept) = cache.by_tenant.lock().expect("lock").get_mut(&1) {
            kept.kept_at = long_ago.expect("a minute ago");
        }
        assert!(cache.kept(1, 2).is_none());
    }

    #[test]
    fn at_most_so_many_tenants_are_kept() {
        let cache = DefinitionCache::default();
        for tenant in 0..(KEPT_TENANTS as i64 + 10) {
            cache.keep(tenant, 1, definitions("City"));
        }
        let kept = cache.by_tenant.lock().expect("lock").len();
        assert_eq!(kept, KEPT_TENANTS);
        assert!(cache.kept(KEPT_TENANTS as i64 + 9, 1).is_some());
    }
}
