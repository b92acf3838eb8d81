//! Tenants and keys as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::core::phone;
use crate::db::tenants::{ApiKeyRow, NewTenant, TenantChanges, TenantRow};
use crate::http::input::{nullable, trimmed, trimmed_some};

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[serde(deserialize_with = "trimmed::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Acme Recruiting", min_length = 1, max_length = 200)]
    pub name: String,
    /// Most distinct (contact, channel) pairs the tenant's segments may hold; null or
    /// absent means unlimited.
    #[validate(range(min = 0))]
    #[schema(example = 10000, minimum = 0)]
    pub endpoint_limit: Option<i64>,
    /// ISO 3166 alpha-2 region used to read phone numbers written without a country prefix.
    #[validate(custom(function = "known_region"))]
    #[schema(example = "IT", pattern = "^[A-Z]{2}$")]
    pub default_region: Option<String>,
    /// When true, contacts without privacy consent cannot join segments or audiences.
    /// Default false.
    #[serde(default)]
    #[schema(example = false)]
    pub require_privacy_consent: bool,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[serde(default, deserialize_with = "trimmed_some::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Acme Recruiting Ltd", min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// null removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "non_negative_limit"))]
    #[schema(value_type = Option<i64>, example = 20000, minimum = 0)]
    pub endpoint_limit: Option<Option<i64>>,
    /// null removes the default region.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "known_region"))]
    #[schema(value_type = Option<String>, example = "GB", pattern = "^[A-Z]{2}$")]
    pub default_region: Option<Option<String>>,
    #[schema(example = true)]
    pub require_privacy_consent: Option<bool>,
}

fn known_region(code: &str) -> Result<(), ValidationError> {
    if phone::is_known_region(code) {
        Ok(())
    } else {
        Err(ValidationError::new("unknown_region")
            .with_message("must be an ISO 3166 alpha-2 region code such as IT or GB".into()))
    }
}

fn non_negative_limit(limit: i64) -> Result<(), ValidationError> {
    if limit < 0 {
        Err(ValidationError::new("range").with_message("must be at least 0".into()))
    } else {
        Ok(())
    }
}

/// A tenant (company account) and its settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Acme Recruiting")]
    pub name: String,
    #[schema(example = 10000)]
    pub endpoint_limit: Option<i64>,
    #[schema(example = "IT")]
    pub default_region: Option<String>,
    #[schema(example = false)]
    pub require_privacy_consent: bool,
    #[schema(example = "2026-01-15T09:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-01-15T09:30:00Z")]
    pub updated_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            endpoint_limit: row.endpoint_limit,
            default_region: row.default_region,
            require_privacy_consent: row.require_privacy_consent,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    /// The tenant's first API key. Shown only now: store it.
    #[schema(example = "sk_4f1c...")]
    pub api_key: String,
    /// The key's id, to revoke it with `DELETE /v1/admin/tenants/{id}/api-keys/{key_id}`.
    #[schema(example = 7)]
    pub api_key_id: i64,
}

/// One of a tenant's live API keys; the key itself is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    #[schema(example = 7)]
    pub id: i64,
    /// The key's first 10 characters, to tell keys apart; null for keys made before
    /// prefixes were kept.
    #[schema(example = "sk_4f1c9a2")]
    pub prefix: Option<String>,
    #[schema(example = "2026-02-01T08:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When the key last authenticated a request; may lag by a minute; null if never.
    #[schema(example = "2026-02-03T10:12:00Z")]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A tenant's live API keys, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[schema(example = 7)]
    pub id: i64,
    /// Shown only now: store it.
    #[schema(example = "sk_4f1c...")]
    pub api_key: String,
    #[schema(example = "2026-02-01T08:00:00Z")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    /// Distinct (contact, channel) pairs over all of the tenant's segments.
    #[schema(example = 1250)]
    pub endpoints_used: i64,
    /// null when unlimited.
    #[schema(example = 10000)]
    pub endpoint_limit: Option<i64>,
}

/// The caller's tenant, with its usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentTenant {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub usage: Usage,
}

impl From<CreateTenant> for NewTenant {
    fn from(input: CreateTenant) -> Self {
        Self {
            name: input.name,
            endpoint_limit: input.endpoint_limit,
            default_region: input.default_region,
            require_privacy_consent: input.require_privacy_consent,
        }
    }
}

impl From<UpdateTenant> for TenantChanges {
    fn from(input: UpdateTenant) -> Self {
        Self {
            name: input.name,
            endpoint_limit: input.endpoint_limit,
            default_region: input.default_region,
            require_privacy_consent: input.require_privacy_consent,
        }
    }
}
