//! Attribute definitions: the typed custom fields contacts carry and filters name.

pub mod queries;
pub mod values;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{trimmed, Json, Path};
use crate::{db, AppState};

/// Most attribute definitions one tenant may have.
pub const MAX_DEFINITIONS: i64 = 100;

/// A custom attribute's value type: `text` (a string of at most 1000 characters),
/// `number`, `boolean`, or `date` (`YYYY-MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(example = "text")]
pub enum AttributeType {
    Text,
    Number,
    Boolean,
    Date,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
        }
    }

    pub fn from_db(text: &str) -> Self {
        match text {
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "date" => Self::Date,
            _ => Self::Text,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAttribute {
    /// Lowercase letters, digits and `_`, starting with a letter; at most 50 characters.
    /// Contacts carry the value under this key; filters name it as `attributes.<key>`.
    #[validate(custom(function = "valid_key"))]
    #[schema(example = "city", pattern = "^[a-z][a-z0-9_]{0,49}$")]
    pub key: String,
    /// What people read, e.g. in filter summaries.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 100))]
    #[schema(example = "City", min_length = 1, max_length = 100)]
    pub label: String,
    pub r#type: AttributeType,
}

fn valid_key(key: &str) -> Result<(), validator::ValidationError> {
    let mut chars = key.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_with_letter && rest_ok && key.len() <= 50 {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid_key").with_message(
            "must be lowercase letters, digits and _, starting with a letter, at most 50 characters".into(),
        ))
    }
}

/// A custom attribute definition: contacts carry values of its type under `key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attribute {
    #[schema(example = "city")]
    pub key: String,
    #[schema(example = "City")]
    pub label: String,
    pub r#type: AttributeType,
    #[schema(example = "2026-01-15T09:30:00Z")]
    pub created_at: DateTime<Utc>,
}

impl From<queries::DefinitionRow> for Attribute {
    fn from(row: queries::DefinitionRow) -> Self {
        Self {
            r#type: AttributeType::from_db(&row.value_type),
            key: row.key,
            label: row.label,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeList {
    pub items: Vec<Attribute>,
}

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
    let rows = db::run(&state.pool, move |conn| queries::list(conn, tenant.id)).await?;
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
        (status = 409, description = "`attribute_exists`: the key is already defined.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (e.g. `invalid_key`), or `too_many_attributes`: the tenant has 100 already.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/attributes")]
async fn create_attribute(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<CreateAttribute>,
) -> Result<HttpResponse, ApiError> {
    let row = db::transaction(&state.pool, move |conn| {
        if queries::count(conn, tenant.id)? >= MAX_DEFINITIONS {
            return Err(ApiError::unprocessable(
                "too_many_attributes",
                format!("A tenant may define at most {MAX_DEFINITIONS} attributes."),
            ));
        }
        queries::insert(
            conn,
            tenant.id,
            &input.key,
            &input.label,
            input.r#type.as_str(),
        )?
        .ok_or_else(|| {
            ApiError::conflict(
                "attribute_exists",
                format!("Attribute `{}` is already defined.", input.key),
            )
        })
    })
    .await?;
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
        (status = 404, description = "`not_found`: no such attribute.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`attribute_in_use`: a dynamic segment's filter names it.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/attributes/{key}")]
async fn delete_attribute(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<AttributePath>,
) -> Result<HttpResponse, ApiError> {
    let key = path.0.key;
    db::transaction(&state.pool, move |conn| {
        if queries::used_by_a_filter(conn, tenant.id, &key)? {
            return Err(ApiError::conflict(
                "attribute_in_use",
                format!("Attribute `{key}` is used by a dynamic segment's filter; change that filter first."),
            ));
        }
        if queries::delete(conn, tenant.id, &key)? {
            Ok(())
        } else {
            Err(ApiError::NotFound("attribute"))
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_attributes)
        .service(create_attribute)
        .service(delete_attribute);
}
