//! Events as the feed and webhooks carry them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::core::event::EventType;

/// A change: what happened, when, and to what.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// Increasing per tenant, in the order the changes committed.
    #[schema(example = 1042, minimum = 1)]
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub occurred_at: DateTime<Utc>,
    /// `segment_id` and `contact_id` where the event is about them; `import.finished`
    /// adds the import's id, status and counts; `send.created` carries `send_id`,
    /// `campaign_id` and `total`.
    #[schema(value_type = Object, example = json!({"segment_id": 7, "contact_id": 42}))]
    pub data: Value,
}

impl From<crate::core::event::Event> for Event {
    fn from(event: crate::core::event::Event) -> Self {
        Self {
            id: event.id,
            kind: event.kind,
            occurred_at: event.occurred_at,
            data: event.data,
        }
    }
}

/// A page of events; `next_after` is null when the feed is caught up.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    #[schema(max_items = 1000)]
    pub items: Vec<Event>,
    #[schema(example = 1042)]
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// The id of the last event handled; absent to start from the oldest kept.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Events per page, 1 to 1,000 (default 100).
    #[validate(range(min = 1, max = 1000))]
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// Only events of this type.
    #[serde(rename = "type")]
    pub kind: Option<EventType>,
}
