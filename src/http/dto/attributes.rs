//! Attribute definitions as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::core::attributes::is_valid_key;
use crate::core::types::AttributeType;
use crate::db::attributes::DefinitionRow;
use crate::http::input::trimmed;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAttribute {
    /// Lowercase letters, digits and `_`, starting with a letter; at most 50 characters.
    /// Contacts carry the value under this key; filters name it as `attributes.<key>`.
    #[validate(custom(function = "valid_key"))]
    #[schema(example = "city", pattern = "^[a-z][a-z0-9_]{0,49}$")]
    pub key: String,
    /// What people read, e.g. in filter summaries.
    #[serde(deserialize_with = "trimmed::<100, _>")]
    #[validate(length(min = 1, max = 100))]
    #[schema(example = "City", min_length = 1, max_length = 100)]
    pub label: String,
    pub r#type: AttributeType,
}

fn valid_key(key: &str) -> Result<(), validator::ValidationError> {
    if is_valid_key(key) {
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

impl From<DefinitionRow> for Attribute {
    fn from(row: DefinitionRow) -> Self {
        Self {
            r#type: row.definition().value_type,
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
