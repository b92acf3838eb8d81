//! Tenants and their API keys (admin), and the caller's own tenant.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::auth::{Admin, Caller};
use crate::http::dto::tenants::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::state::AppState;
use crate::service::tenants;

/// Answers carrying a key or a secret are never stored by a cache on the way.
fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    response
}

#[derive(serde::Deserialize)]
struct TenantPath {
    id: i64,
}

#[derive(serde::Deserialize)]
struct ApiKeyPath {
    id: i64,
    key_id: i64,
}

/// Create a tenant and its first API key
///
/// A tenant is a company account: every contact, segment and campaign belongs to one.
/// The answer carries the tenant and its first API key; the key is stored hashed and
/// shown only in this answer, so keep it. `endpoint_limit` absent or null means
/// unlimited; `default_region` (ISO 3166 alpha-2, e.g. `IT`) reads phone numbers written
/// without a country prefix. Admin token only; with no `SEGMENTS_ADMIN_TOKEN`
/// configured the admin API is off and answers 404.
#[utoipa::path(
    tag = "admin",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The tenant and its first key (shown once).", body = CreatedTenant),
        (status = 404, description = "`not_found`: the admin API is off (no admin token configured)."),
        (status = 422, description = "`validation_failed`: e.g. an empty `name` or an unknown `default_region` (`unknown_region`)."),
    )
)]
#[post("/admin/tenants")]
async fn create_tenant(
    _: Admin,
    state: web::Data<AppState>,
    Json(input): Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let (row, key, api_key) = tenants::create(&state.env, input.into()).await?;
    Ok(no_store(HttpResponse::Created()).json(CreatedTenant {
        tenant: row.into(),
        api_key,
        api_key_id: key.id,
    }))
}

/// Read a tenant's settings
///
/// The tenant's name, `endpoint_limit`, `default_region` and `require_privacy_consent`.
/// Admin token only.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant.", body = Tenant),
        (status = 404, description = "`not_found`: no such tenant, or the admin API is off."),
    )
)]
#[get("/admin/tenants/{id}")]
async fn get_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: Path<TenantPath>,
) -> Result<web::Json<Tenant>, ApiError> {
    let row = tenants::get(&state.env, path.0.id).await?;
    Ok(web::Json(row.into()))
}

/// Change a tenant's settings
///
/// Fields left out keep their value; `null` clears `endpoint_limit` (unlimited) and
/// `default_region`. The new settings apply to the tenant's next requests, on every
/// replica. Lowering `endpoint_limit` below the endpoints in use removes nothing: it
/// only refuses writes that would add more. Admin token only.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Tenant id")),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The tenant, changed.", body = Tenant),
        (status = 404, description = "`not_found`: no such tenant, or the admin API is off."),
        (status = 422, description = "`validation_failed`: e.g. an empty `name`, a negative `endpoint_limit` or an unknown `default_region` (`unknown_region`)."),
    )
)]
#[patch("/admin/tenants/{id}")]
async fn update_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: Path<TenantPath>,
    Json(input): Json<UpdateTenant>,
) -> Result<web::Json<Tenant>, ApiError> {
    let row = tenants::update(&state.env, path.0.id, input.into()).await?;
    // This process forgets at once; other replicas when the announcement reaches them.
    state.keys.clear();
    Ok(web::Json(row.into()))
}

/// Issue another API key for a tenant
///
/// For rotation: create a key, deploy it, then revoke the old one. A tenant may hold
/// several keys at once; each works until revoked. The key is stored hashed and shown
/// only in this answer. Admin token only.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Tenant id")),
    responses(
        (status = 201, description = "The key, shown once.", body = CreatedApiKey),
        (status = 404, description = "`not_found`: no such tenant, or the admin API is off."),
    )
)]
#[post("/admin/tenants/{id}/api-keys")]
async fn create_api_key(
    _: Admin,
    state: web::Data<AppState>,
    path: Path<TenantPath>,
) -> Result<HttpResponse, ApiError> {
    let (row, api_key) = tenants::create_key(&state.env, path.0.id).await?;
    Ok(no_store(HttpResponse::Created()).json(CreatedApiKey {
        id: row.id,
        api_key,
        created_at: row.created_at,
    }))
}

/// List a tenant's API keys
///
/// Every live key of the tenant, oldest first: its id (to revoke it), its first 10
/// characters (to tell keys apart; never enough to use one), when it was made and when
/// it last authenticated a request (kept to the minute). The keys themselves are never
/// shown again. Admin token only.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant's live keys.", body = ApiKeyList),
        (status = 404, description = "`not_found`: no such tenant, or the admin API is off."),
    )
)]
#[get("/admin/tenants/{id}/api-keys")]
async fn list_api_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: Path<TenantPath>,
) -> Result<web::Json<ApiKeyList>, ApiError> {
    let rows = tenants::keys(&state.env, path.0.id).await?;
    Ok(web::Json(ApiKeyList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke an API key
///
/// The key stops working at once, on every replica: requests carrying it answer 401.
/// The tenant and its data stay. Admin token only.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Tenant id"), ("key_id" = i64, Path, description = "API key id, as `id` in the answer that created it")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: no such key for this tenant, or the admin API is off."),
    )
)]
#[delete("/admin/tenants/{id}/api-keys/{key_id}")]
async fn revoke_api_key(
    _: Admin,
    state: web::Data<AppState>,
    path: Path<ApiKeyPath>,
) -> Result<HttpResponse, ApiError> {
    let ApiKeyPath { id, key_id } = path.0;
    tenants::revoke_key(&state.env, id, key_id).await?;
    // This process forgets at once; other replicas when the announcement reaches them.
    state.keys.clear();
    Ok(HttpResponse::NoContent().finish())
}

/// Read the caller's tenant: its settings and endpoint usage
///
/// The tenant the API key belongs to, with `usage`: `endpoints_used`, the distinct
/// (contact, channel) pairs over all of the tenant's segments, against
/// `endpoint_limit` (null when unlimited). A write that would take `endpoints_used`
/// past the limit is refused with 422 `endpoint_limit_exceeded`.
#[utoipa::path(
    tag = "tenant",
    responses((status = 200, description = "The caller's tenant and its usage.", body = CurrentTenant))
)]
#[get("/tenant")]
async fn get_current_tenant(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<CurrentTenant>, ApiError> {
    let endpoints_used = tenants::endpoints_used(&state.env, &tenant).await?;
    let row = tenants::get(&state.env, tenant.id).await?;
    Ok(web::Json(CurrentTenant {
        usage: Usage {
            endpoints_used,
            endpoint_limit: row.endpoint_limit,
        },
        tenant: row.into(),
    }))
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(create_tenant)
        .service(get_tenant)
        .service(update_tenant)
        .service(create_api_key)
        .service(list_api_keys)
        .service(revoke_api_key)
        .service(get_current_tenant);
}
