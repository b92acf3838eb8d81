//! Events: the changes an integration may follow, pulled from the feed or pushed to
//! webhooks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What changed. Membership events are recorded for dynamic segments too, when a contact
/// starts or stops matching the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
    #[serde(rename = "segment.member_added")]
    MemberAdded,
    #[serde(rename = "segment.member_removed")]
    MemberRemoved,
    #[serde(rename = "import.finished")]
    ImportFinished,
    #[serde(rename = "send.created")]
    SendCreated,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        Self::ContactCreated,
        Self::ContactUpdated,
        Self::ContactDeleted,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::ImportFinished,
        Self::SendCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactCreated => "contact.created",
            Self::ContactUpdated => "contact.updated",
            Self::ContactDeleted => "contact.deleted",
            Self::MemberAdded => "segment.member_added",
            Self::MemberRemoved => "segment.member_removed",
            Self::ImportFinished => "import.finished",
            Self::SendCreated => "send.created",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The event for a membership that began (`true`) or ended.
    pub fn membership(added: bool) -> Self {
        if added {
            Self::MemberAdded
        } else {
            Self::MemberRemoved
        }
    }
}

/// An event as the feed and webhooks carry it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Increasing per tenant, in the order the changes committed.
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    /// `segment_id` and `contact_id` where the event is about them, plus any details
    /// (an import's counts).
    pub data: Value,
}

impl Event {
    /// The event's `data`: `details` (an object, or nothing) with the segment and contact
    /// it is about.
    pub fn data(details: Option<Value>, segment_id: Option<i64>, contact_id: Option<i64>) -> Value {
        let mut data = match details {
            Some(Value::Object(details)) => details,
            _ => serde_json::Map::new(),
        };
        if let Some(id) = segment_id {
            data.insert("segment_id".into(), id.into());
        }
        if let Some(id) = contact_id {
            data.insert("contact_id".into(), id.into());
        }
        Value::Object(data)
    }
}

/// Most events in one webhook delivery: a 200,000-row import is a few hundred calls.
pub const MAX_EVENTS_PER_DELIVERY: usize = 500;

/// How long a failing webhook is retried before it is disabled.
pub const RETRY_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(25);

/// The wait before attempt `attempt + 1` after `attempt` failures: seconds at first, then
/// minutes, then hours (capped at one hour), so a receiver that is down for a day is
/// tried about thirty times, and one back after a blip gets its events within seconds.
pub fn retry_delay(attempt: u32) -> chrono::TimeDelta {
    let seconds = 5_i64.saturating_mul(1_i64 << attempt.min(20).saturating_sub(1));
    chrono::TimeDelta::seconds(seconds.clamp(5, 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(EventType::parse("contact.merged"), None);
    }

    #[test]
    fn retries_grow_from_seconds_to_an_hour_and_last_over_a_day() {
        let delays: Vec<i64> = (1..=12).map(|a| retry_delay(a).num_seconds()).collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert!(delays.windows(2).all(|pair| pair[0] <= pair[1]));
        // Attempts until the webhook gives up: enough to span RETRY_FOR, not thousands.
        let mut elapsed = chrono::TimeDelta::zero();
        let mut attempts = 0;
        while elapsed < RETRY_FOR {
            attempts += 1;
            elapsed += retry_delay(attempts);
        }
        assert!((25..=40).contains(&attempts), "{attempts} attempts");
    }
}
