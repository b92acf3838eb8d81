use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{api_keys, tenants};

/// A tenant as stored; also the context every tenant-scoped request runs in.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
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
    pub created_at: DateTime<Utc>,
}

pub fn find_by_key_hash(conn: &mut PgConnection, key_hash: &[u8]) -> QueryResult<Option<Tenant>> {
    tenants::table
        .inner_join(api_keys::table)
        .filter(api_keys::key_hash.eq(key_hash))
        .select(Tenant::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut PgConnection, tenant: &NewTenant) -> QueryResult<Tenant> {
    diesel::insert_into(tenants::table)
        .values(tenant)
        .returning(Tenant::as_returning())
        .get_result(conn)
}

pub fn get(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Tenant> {
    tenants::table
        .find(tenant_id)
        .select(Tenant::as_select())
        .first(conn)
}

pub fn update(
    conn: &mut PgConnection,
    tenant_id: i64,
    changes: &TenantChanges,
) -> QueryResult<Tenant> {
    diesel::update(tenants::table.find(tenant_id))
        .set((changes, tenants::updated_at.eq(diesel::dsl::now)))
        .returning(Tenant::as_returning())
        .get_result(conn)
}

pub fn insert_api_key(
    conn: &mut PgConnection,
    tenant_id: i64,
    key_hash: &[u8],
) -> QueryResult<ApiKeyRow> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::tenant_id.eq(tenant_id),
            api_keys::key_hash.eq(key_hash),
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

/// Tells every replica to forget its cached keys and tenants (delivered at commit).
pub fn announce_change(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, '')")
        .bind::<diesel::sql_types::Text, _>(crate::auth::CHANGES_CHANNEL)
        .execute(conn)
        .map(drop)
}
