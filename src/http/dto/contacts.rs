//! Contacts as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::core::contact::{is_valid_email, tags_fit, ContactChanges, MAX_TAG_LENGTH};
use crate::core::push::ContactPush;
use crate::db::contacts::ContactRow;
use crate::http::error::Problem;
use crate::http::input::{nullable, patch_opt, trimmed, trimmed_opt, trimmed_some};

fn check_tags(tags: &[String]) -> Result<(), ValidationError> {
    if tags_fit(tags) {
        Ok(())
    } else {
        Err(ValidationError::new("invalid_tag")
            .with_message(format!("every tag must be 1 to {MAX_TAG_LENGTH} characters").into()))
    }
}

fn check_email(address: &str) -> Result<(), ValidationError> {
    if is_valid_email(address) {
        Ok(())
    } else {
        Err(ValidationError::new("email").with_message("must be a valid email address".into()))
    }
}

/// A contact (candidate, customer).
#[derive(Debug, Serialize, ToSchema)]
pub struct Contact {
    #[schema(example = 42)]
    pub id: i64,
    /// The id in the system that pushed the contact (CRM, ATS), unique per tenant.
    #[schema(example = "crm-1001")]
    pub external_id: Option<String>,
    #[schema(example = "Giulia Rossi")]
    pub name: String,
    /// The phone as it was given.
    #[schema(example = "333 123 4567")]
    pub phone: Option<String>,
    /// The validated phone in E.164; null when missing or invalid.
    #[schema(example = "+393331234567")]
    pub phone_e164: Option<String>,
    /// Whether `phone` is a valid number (`phone_e164` is set).
    #[schema(example = true)]
    pub phone_valid: bool,
    /// ISO 3166 alpha-2 region of the validated phone.
    #[schema(example = "IT")]
    pub phone_country: Option<String>,
    #[schema(example = "giulia.rossi@example.com")]
    pub email: Option<String>,
    /// Values of the tenant's defined attributes, by key: a string (`text`), a number, a
    /// boolean, or a `YYYY-MM-DD` string (`date`), as the definition says.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>, additional_properties = true, example = json!({"city": "Milan", "premium": true, "birthdate": "1994-05-17"}))]
    pub attributes: Value,
    #[schema(example = json!(["vip"]))]
    pub tags: Vec<String>,
    /// Opted out of messaging: kept in segments, left out of every audience.
    #[schema(example = false)]
    pub opted_out: bool,
    /// Gave privacy consent; a tenant with `require_privacy_consent` only adds contacts
    /// that did to segments and audiences.
    #[schema(example = true)]
    pub privacy_consent: bool,
    #[schema(example = "2026-01-20T14:05:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-02-03T08:12:00Z")]
    pub updated_at: DateTime<Utc>,
    /// When a campaign send last reported a message to this contact as sent (delivered
    /// or read), null before the first. Filters read it as `last_messaged_at`.
    #[schema(example = "2026-02-10T09:30:00Z")]
    pub last_messaged_at: Option<DateTime<Utc>>,
}

impl From<ContactRow> for Contact {
    fn from(row: ContactRow) -> Self {
        Self {
            id: row.id,
            external_id: row.external_id,
            name: row.name,
            phone_valid: row.phone_e164.is_some(),
            phone: row.phone,
            phone_e164: row.phone_e164,
            phone_country: row.phone_country,
            email: row.email,
            attributes: row.attributes,
            tags: row.tags,
            opted_out: row.opted_out,
            privacy_consent: row.privacy_consent,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_messaged_at: row.last_messaged_at,
        }
    }
}

/// A new contact. A phone that is not a valid number is stored all the same, with
/// `phone_valid: false`.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    #[serde(default, deserialize_with = "trimmed_opt::<200, _>")]
    #[validate(length(max = 200))]
    #[schema(example = "crm-1001", max_length = 200)]
    pub external_id: Option<String>,
    #[serde(deserialize_with = "trimmed::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Giulia Rossi", min_length = 1, max_length = 200)]
    pub name: String,
    /// Any common spelling; numbers without a country prefix are read with the tenant's
    /// `default_region`.
    #[serde(default, deserialize_with = "trimmed_opt::<64, _>")]
    #[validate(length(max = 64))]
    #[schema(example = "333 123 4567", max_length = 64)]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "trimmed_opt::<254, _>")]
    #[validate(email, length(max = 254))]
    #[schema(example = "giulia.rossi@example.com", max_length = 254)]
    pub email: Option<String>,
    /// Values for defined attributes only, each of its definition's type (`date` as
    /// `YYYY-MM-DD`). A key with no definition is refused.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>, additional_properties = true, example = json!({"city": "Milan", "premium": true}))]
    pub attributes: Map<String, Value>,
    /// At most 100 tags of at most 100 characters; trimmed, duplicates dropped.
    #[serde(default)]
    #[validate(length(max = 100), custom(function = "check_tags"))]
    #[schema(example = json!(["vip", "milan"]), max_items = 100)]
    pub tags: Vec<String>,
    /// Default false. On an upsert, `true` opts an existing contact out; `false` leaves
    /// it as it is.
    #[serde(default)]
    #[schema(example = false)]
    pub opted_out: bool,
    /// Default false. On an upsert, `true` records consent; `false` leaves it as it is.
    #[serde(default)]
    #[schema(example = true)]
    pub privacy_consent: bool,
}

/// Changes to a contact: fields left out keep their value; `null` clears `external_id`,
/// `phone` and `email`. `attributes` are merged (a `null` value removes that attribute);
/// `tags` replace the list.
#[derive(Debug, Clone, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    #[serde(default, deserialize_with = "patch_opt::<200, _>")]
    #[validate(length(max = 200))]
    #[schema(value_type = Option<String>, example = "crm-1001", max_length = 200)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "trimmed_some::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Giulia Bianchi", min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Validated again, as on create.
    #[serde(default, deserialize_with = "patch_opt::<64, _>")]
    #[validate(length(max = 64))]
    #[schema(value_type = Option<String>, example = "+39 333 765 4321", max_length = 64)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_opt::<254, _>")]
    #[validate(custom(function = "check_email"))]
    #[schema(value_type = Option<String>, example = "giulia.bianchi@example.com", max_length = 254)]
    pub email: Option<Option<String>>,
    /// Merged into the contact's: a key set to `null` removes that attribute; keys left
    /// out stay.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, additional_properties = true, example = json!({"city": "Rome", "premium": null}))]
    pub attributes: Option<Option<Map<String, Value>>>,
    /// Replaces the whole list: at most 100 tags of at most 100 characters.
    #[validate(length(max = 100), custom(function = "check_tags"))]
    #[schema(example = json!(["vip"]), max_items = 100)]
    pub tags: Option<Vec<String>>,
    #[schema(example = true)]
    pub opted_out: Option<bool>,
    #[schema(example = true)]
    pub privacy_consent: Option<bool>,
}

impl From<CreateContact> for ContactPush {
    fn from(input: CreateContact) -> Self {
        Self {
            external_id: input.external_id,
            name: input.name,
            phone: input.phone,
            email: input.email,
            attributes: input.attributes,
            tags: input.tags,
            opted_out: input.opted_out,
            privacy_consent: input.privacy_consent,
        }
    }
}

impl From<UpdateContact> for ContactChanges {
    fn from(input: UpdateContact) -> Self {
        Self {
            external_id: input.external_id,
            name: input.name,
            phone: input.phone,
            email: input.email,
            attributes: input.attributes,
            tags: input.tags,
            opted_out: input.opted_out,
            privacy_consent: input.privacy_consent,
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListParams {
    /// Part of the name, phone (as given or validated), email or external id,
    /// case-insensitive; a phone number also matches its other spellings.
    #[validate(length(max = 200))]
    // No example: Swagger UI pre-fills examples into "Try it out", hiding rows.
    #[param(max_length = 200)]
    pub search: Option<String>,
    /// Only contacts carrying this tag.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub tag: Option<String>,
    /// Only opted-out (true) or not opted-out (false) contacts.
    pub opted_out: Option<bool>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBatch {
    /// 1 to 1000 contacts. Each is matched by `external_id`, else by validated phone:
    /// an existing contact is updated with the fields given, otherwise one is created.
    /// Every item must match this schema (lengths, e-mail, tags), or the whole batch is
    /// refused with 422 naming each offending field (`contacts[3].name`).
    #[validate(length(min = 1, max = 1000), nested)]
    #[schema(min_items = 1, max_items = 1000, example = json!([
        {"external_id": "crm-1001", "name": "Giulia Rossi", "phone": "333 123 4567", "tags": ["vip"]},
        {"external_id": "crm-1002", "name": "Oliver Smith", "phone": "+44 7400 123456", "email": "oliver@example.com"}
    ]))]
    pub contacts: Vec<CreateContact>,
}

/// What happened to one item of a batch.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(example = "created")]
pub enum BatchItemStatus {
    Created,
    Updated,
    Error,
}

/// The outcome of one item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position in the request's `contacts`, from 0.
    #[schema(example = 0)]
    pub index: usize,
    pub status: BatchItemStatus,
    /// The contact's id; absent when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 42)]
    pub id: Option<i64>,
    /// Why the item failed; present only when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// One result per item, in the order of the request's `contacts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    #[schema(example = json!([
        {"index": 0, "status": "created", "id": 42},
        {"index": 1, "status": "updated", "id": 43}
    ]))]
    pub items: Vec<BatchItem>,
}

impl BatchResult {
    /// Each item's outcome, `(id, created)` or its error, in request order.
    pub fn from_outcomes(outcomes: Vec<Result<(i64, bool), crate::core::error::Error>>) -> Self {
        let items = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| match outcome {
                Ok((id, created)) => BatchItem {
                    index,
                    status: if created {
                        BatchItemStatus::Created
                    } else {
                        BatchItemStatus::Updated
                    },
                    id: Some(id),
                    error: None,
                },
                Err(error) => BatchItem {
                    index,
                    status: BatchItemStatus::Error,
                    id: None,
                    error: Some(crate::http::error::problem_of(&error)),
                },
            })
            .collect();
        Self { items }
    }
}
