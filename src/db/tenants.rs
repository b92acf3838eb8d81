//! Tenants (company accounts) and their API keys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{api_keys, tenants};
use crate::core::tenant::Tenant;

/// A tenant as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    pub id: i64,
    pub name: String,
    pub endpoint_limit: Option<i64>,
    pub default_region: Option<String>,
    pub require_privacy_consent: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant {
    pub name: String,
    pub endpoint_limit: Option<i64>,
    pub default_region: Option<String>,
    pub require_privacy_consent: bool,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = tenants)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub endpoint_limit: Option<Option<i64>>,
    pub default_region: Option<Option<String>>,
    pub require_privacy_consent: Option<bool>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: i64,
    pub prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The tenant a key belongs to, with the key's id.
pub fn find_by_key_hash(
    conn: &mut PgConnection,
    key_hash: &[u8],
) -> QueryResult<Option<(TenantRow, i64)>> {
    tenants::table
        .inner_join(api_keys::table)
        .filter(api_keys::key_hash.eq(key_hash))
        .select((TenantRow::as_select(), api_keys::id))
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut PgConnection, tenant: &NewTenant) -> QueryResult<TenantRow> {
    diesel::insert_into(tenants::table)
        .values(tenant)
        .returning(TenantRow::as_returning())
        .get_result(conn)
}

pub fn get(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<TenantRow> {
    tenants::table
        .find(tenant_id)
        .select(TenantRow::as_select())
        .first(conn)
}

pub fn update(
    conn: &mut PgConnection,
    tenant_id: i64,
    changes: &TenantChanges,
) -> QueryResult<TenantRow> {
    diesel::update(tenants::table.find(tenant_id))
        .set((changes, tenants::updated_at.eq(diesel::dsl::now)))
        .returning(TenantRow::as_returning())
        .get_result(conn)
}

pub fn insert_api_key(
    conn: &mut PgConnection,
    tenant_id: i64,
    key_hash: &[u8],
    prefix: &str,
) -> QueryResult<ApiKeyRow> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::tenant_id.eq(tenant_id),
            api_keys::key_hash.eq(key_hash),
            api_keys::prefix.eq(prefix),
        ))
        .returning(ApiKeyRow::as_returning())
        .get_result(conn)
}

/// Number of keys deleted: 0 when the key does not exist or belongs to another tenant.
pub fn delete_api_key(conn: &mut PgConnection, tenant_id: i64, key_id: i64) -> QueryResult<usize> {
    diesel::delete(
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant_id))
            .filter(api_keys::id.eq(key_id)),
    )
    .execute(conn)
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            endpoint_limit: row.endpoint_limit,
            default_region: row.default_region,
            require_privacy_consent: row.require_privacy_consent,
        }
    }
}

/// The tenant's live keys, oldest first.
pub fn api_keys(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .order(api_keys::id)
        .select(ApiKeyRow::as_select())
        .load(conn)
}

/// Records that the key was used, at most once a minute (readers are told it may lag).
pub fn touch_api_key(conn: &mut PgConnection, key_hash: &[u8]) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1 \
         AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind::<diesel::sql_types::Bytea, _>(key_hash)
    .execute(conn)
    .map(drop)
}
