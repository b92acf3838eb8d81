//! Tenants and their API keys (admin), and the caller's own tenant with its usage.

use super::{endpoints, Env};
use crate::core::error::Error;
use crate::core::keys::{generate_api_key, hash_api_key, shown_part};
use crate::core::tenant::Tenant;
use crate::db::tenants::{self, ApiKeyRow, NewTenant, TenantChanges, TenantRow};
use crate::db::{notify, pool};

/// A new tenant and its first key (shown only now) with the key's row.
pub async fn create(env: &Env, tenant: NewTenant) -> Result<(TenantRow, ApiKeyRow, String), Error> {
    let api_key = generate_api_key();
    let (key_hash, prefix) = (hash_api_key(&api_key), shown_part(&api_key));
    let (row, key) = pool::transaction(&env.pool, move |conn| {
        let row = tenants::insert(conn, &tenant)?;
        let key = tenants::insert_api_key(conn, row.id, &key_hash, &prefix)?;
        Ok((row, key))
    })
    .await?;
    Ok((row, key, api_key))
}

/// The tenant's live keys (never the keys themselves).
pub async fn keys(env: &Env, id: i64) -> Result<Vec<ApiKeyRow>, Error> {
    pool::run(&env.pool, move |conn| {
        tenants::get(conn, id)?;
        Ok::<_, Error>(tenants::api_keys(conn, id)?)
    })
    .await
}

pub async fn get(env: &Env, id: i64) -> Result<TenantRow, Error> {
    pool::run(&env.pool, move |conn| tenants::get(conn, id)).await
}

/// Changes the settings and tells every replica, so keys cached with the old settings go.
pub async fn update(env: &Env, id: i64, changes: TenantChanges) -> Result<TenantRow, Error> {
    pool::transaction(&env.pool, move |conn| {
        let row = tenants::update(conn, id, &changes)?;
        notify::announce_change(conn)?;
        Ok(row)
    })
    .await
}

/// Another key for the tenant, shown only now.
pub async fn create_key(env: &Env, id: i64) -> Result<(ApiKeyRow, String), Error> {
    let api_key = generate_api_key();
    let (key_hash, prefix) = (hash_api_key(&api_key), shown_part(&api_key));
    let row = pool::run(&env.pool, move |conn| {
        tenants::get(conn, id)?;
        tenants::insert_api_key(conn, id, &key_hash, &prefix)
    })
    .await?;
    Ok((row, api_key))
}

/// Revokes a key on every replica (at commit).
pub async fn revoke_key(env: &Env, id: i64, key_id: i64) -> Result<(), Error> {
    pool::transaction(&env.pool, move |conn| {
        if tenants::delete_api_key(conn, id, key_id)? == 0 {
            return Err(Error::NotFound("API key"));
        }
        Ok(notify::announce_change(conn)?)
    })
    .await
}

/// The endpoints the tenant's segments hold now.
pub async fn endpoints_used(env: &Env, tenant: &Tenant) -> Result<i64, Error> {
    let tenant_id = tenant.id;
    pool::run(&env.pool.tenant(tenant_id), move |conn| {
        endpoints::used(conn, tenant_id)
    })
    .await
}
