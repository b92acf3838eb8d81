//! Webhooks and their delivery log as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::core::event::EventType;
use crate::db::webhooks::{DeliveryRow, WebhookRow};
use crate::http::input::{patch_opt, trimmed, trimmed_opt};
use crate::service::webhooks::{WebhookSpec, WebhookUpdate};

/// Where a tenant's events are pushed, and how its deliveries fare.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    #[schema(example = 4)]
    pub id: i64,
    #[schema(example = "https://crm.example.com/hooks/segments")]
    pub url: String,
    #[schema(max_items = 6)]
    pub event_types: Vec<EventType>,
    #[schema(example = "CRM sync")]
    pub description: Option<String>,
    /// False once disabled, by the tenant or after a day of failed deliveries.
    pub enabled: bool,
    /// Why the service disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// The id of the last event delivered (or skipped as of another type).
    #[schema(example = 1042)]
    pub delivered_through: i64,
    /// Failed attempts at the current batch; 0 when deliveries succeed.
    #[schema(example = 0)]
    pub failed_attempts: i32,
    /// When the current run of failures began; null when deliveries succeed.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the next attempt is due, while deliveries fail.
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        let failing = row.failing_since.is_some();
        Self {
            id: row.id,
            url: row.url,
            event_types: row
                .event_types
                .iter()
                .filter_map(|name| EventType::parse(name))
                .collect(),
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            delivered_through: row.delivered_through,
            failed_attempts: row.attempt,
            failing_since: row.failing_since,
            next_attempt_at: (failing && row.enabled).then_some(row.next_attempt_at),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A webhook just created, with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Verifies deliveries (Standard Webhooks: `webhook-signature` is `v1,` and the base64
    /// HMAC-SHA256 of `webhook-id.webhook-timestamp.body`, keyed with the base64-decoded
    /// part after `whsec_`). Shown only in this answer.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq=")]
    pub secret: String,
}

/// A receiver for the tenant's events.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An `http` or `https` URL on a public address.
    #[serde(deserialize_with = "trimmed::<2000, _>")]
    #[validate(length(min = 1, max = 2000))]
    #[schema(
        example = "https://crm.example.com/hooks/segments",
        min_length = 1,
        max_length = 2000
    )]
    pub url: String,
    /// The types of event to deliver: 1 to 6.
    #[validate(length(min = 1, max = 6, message = "must list 1 to 6 event types"))]
    #[schema(example = json!(["segment.member_added", "segment.member_removed"]), min_items = 1, max_items = 6)]
    pub event_types: Vec<EventType>,
    #[serde(default, deserialize_with = "trimmed_opt::<2000, _>")]
    #[validate(length(max = 2000))]
    #[schema(example = "CRM sync", max_length = 2000)]
    pub description: Option<String>,
}

/// Fields left out keep their value; `description: null` clears it.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(
        default,
        deserialize_with = "crate::http::input::trimmed_some::<2000, _>"
    )]
    #[validate(length(min = 1, max = 2000))]
    #[schema(
        example = "https://crm.example.com/hooks/segments-v2",
        min_length = 1,
        max_length = 2000
    )]
    pub url: Option<String>,
    #[validate(length(min = 1, max = 6, message = "must list 1 to 6 event types"))]
    #[schema(example = json!(["contact.created"]), min_items = 1, max_items = 6)]
    pub event_types: Option<Vec<EventType>>,
    #[serde(default, deserialize_with = "patch_opt::<2000, _>")]
    #[schema(value_type = Option<String>, example = "CRM sync (new endpoint)", max_length = 2000)]
    pub description: Option<Option<String>>,
    /// `true` enables a disabled webhook again (its retries start afresh, and the events
    /// it missed, if still kept, are delivered first); `false` pauses it.
    pub enabled: Option<bool>,
}

impl From<CreateWebhook> for WebhookSpec {
    fn from(input: CreateWebhook) -> Self {
        Self {
            url: input.url,
            event_types: input.event_types,
            description: input.description,
        }
    }
}

impl From<UpdateWebhook> for WebhookUpdate {
    fn from(input: UpdateWebhook) -> Self {
        Self {
            url: input.url,
            event_types: input.event_types,
            description: input.description,
            enabled: input.enabled,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// The events the attempt carried, in order (a contiguous run of the webhook's types).
    #[schema(example = json!([1040, 1041, 1042]), max_items = 500)]
    pub event_ids: Vec<i64>,
    /// 1 for the first try of a batch.
    #[schema(example = 1)]
    pub attempt: i32,
    /// The receiver's status code; null when it did not answer.
    #[schema(example = 200)]
    pub status_code: Option<i16>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// When the batch is tried again, after a failure.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The webhook's latest delivery attempts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryLog {
    #[schema(max_items = 100)]
    pub items: Vec<Delivery>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            event_ids: row.event_ids,
            attempt: row.attempt,
            status_code: row.status_code,
            error: row.error,
            at: row.at,
            next_attempt_at: row.next_attempt_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Attempts to list, newest first: 1 to 100 (default 20).
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}
