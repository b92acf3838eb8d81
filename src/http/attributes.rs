//! Attribute definitions: the typed custom fields contacts carry and filters name.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::http::auth::Caller;
use crate::http::dto::attributes::*;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::state::AppState;
use crate::service::attributes;

#[derive(Deserialize)]
struct AttributePath {
    key: String,
}

/// List attribute definitions
///
/// Every custom attribute the tenant has defined (at most 100), ordered by key, not
/// paged.
#[utoipa::path(
    tag = "attributes",
    responses((status = 200, description = "The tenant's attribute definitions.", body = AttributeList))
)]
#[get("/attributes")]
async fn list_attributes(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
) -> Result<web::Json<AttributeList>, ApiError> {
    let rows = attributes::list(&state.env, tenant).await?;
    Ok(web::Json(AttributeList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Define a custom attribute
///
/// Contacts then carry values under `key` in their `attributes`, and filters can name
/// it as `attributes.<key>`. The type is fixed: every contact value is checked against
/// it (422 naming the attribute on a mismatch), and a key with no definition is
/// refused. A tenant may define at most 100 attributes.
#[utoipa::path(
    tag = "attributes",
    request_body = CreateAttribute,
    responses(
        (status = 201, description = "The attribute, defined.", body = Attribute),
        (status = 409, description = "`attribute_exists`: the key is already defined."),
        (status = 422, description = "`validation_failed` (e.g. `invalid_key`), or `too_many_attributes`: the tenant has 100 already."),
    )
)]
#[post("/attributes")]
async fn create_attribute(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateAttribute>,
) -> Result<HttpResponse, ApiError> {
    let row = attributes::define(&state.env, tenant, input.key, input.label, input.r#type).await?;
    Ok(HttpResponse::Created().json(Attribute::from(row)))
}

/// Delete an attribute definition
///
/// Every contact's value for it goes too. Refused with 409 `attribute_in_use` while a
/// dynamic segment's filter names it: change that filter first.
#[utoipa::path(
    tag = "attributes",
    params(("key" = String, Path, description = "Attribute key")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such attribute."),
        (status = 409, description = "`attribute_in_use`: a segment's filter names it; change that filter first."),
    )
)]
#[delete("/attributes/{key}")]
async fn delete_attribute(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<AttributePath>,
) -> Result<HttpResponse, ApiError> {
    attributes::delete(&state.env, tenant, path.0.key).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_attributes)
        .service(create_attribute)
        .service(delete_attribute);
}
