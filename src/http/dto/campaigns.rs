//! Campaigns as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::core::types::Channel;
use crate::db::campaigns::CampaignWithSegments;
use crate::http::input::{positive_ids, trimmed, trimmed_some};
use crate::service::campaigns::{CampaignUpdate, NewCampaign};

/// A campaign: the segments whose members it reaches, and those it leaves out.
#[derive(Debug, Serialize, ToSchema)]
pub struct Campaign {
    #[schema(example = 3)]
    pub id: i64,
    #[schema(example = "Spring hiring day")]
    pub name: String,
    pub channel: Channel,
    #[schema(example = json!([7, 8]))]
    pub segment_ids: Vec<i64>,
    #[schema(example = json!([9]))]
    pub exclude_segment_ids: Vec<i64>,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub updated_at: DateTime<Utc>,
}

impl From<CampaignWithSegments> for Campaign {
    fn from(row: CampaignWithSegments) -> Self {
        let channel = row.campaign.channel();
        Self {
            id: row.campaign.id,
            name: row.campaign.name,
            channel,
            segment_ids: row.segment_ids,
            exclude_segment_ids: row.exclude_segment_ids,
            created_at: row.campaign.created_at,
            updated_at: row.campaign.updated_at,
        }
    }
}

/// Every segment named must exist in the tenant and have the campaign's channel.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    #[serde(deserialize_with = "trimmed::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Spring hiring day", min_length = 1, max_length = 200)]
    pub name: String,
    pub channel: Channel,
    /// 1 to 100 segments whose members the campaign reaches.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 100, message = "must list 1 to 100 segment ids")
    )]
    #[schema(example = json!([7, 8]), min_items = 1, max_items = 100)]
    pub segment_ids: Vec<i64>,
    /// Up to 100 segments whose members are left out.
    #[serde(default)]
    #[validate(
        custom(function = "positive_ids"),
        length(max = 100, message = "must list at most 100 segment ids")
    )]
    #[schema(example = json!([9]), max_items = 100)]
    pub exclude_segment_ids: Vec<i64>,
}

/// Fields left out keep their value; the channel is fixed.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaign {
    #[serde(default, deserialize_with = "trimmed_some::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(
        example = "Spring hiring day (Milan)",
        min_length = 1,
        max_length = 200
    )]
    pub name: Option<String>,
    /// Replaces the included segments: 1 to 100.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 100, message = "must list 1 to 100 segment ids")
    )]
    #[schema(example = json!([7, 8, 10]), min_items = 1, max_items = 100)]
    pub segment_ids: Option<Vec<i64>>,
    /// Replaces the excluded segments: up to 100; `[]` excludes none.
    #[validate(
        custom(function = "positive_ids"),
        length(max = 100, message = "must list at most 100 segment ids")
    )]
    #[schema(example = json!([]), max_items = 100)]
    pub exclude_segment_ids: Option<Vec<i64>>,
}

impl From<CreateCampaign> for NewCampaign {
    fn from(input: CreateCampaign) -> Self {
        Self {
            name: input.name,
            channel: input.channel,
            segment_ids: input.segment_ids,
            exclude_segment_ids: input.exclude_segment_ids,
        }
    }
}

impl From<UpdateCampaign> for CampaignUpdate {
    fn from(input: UpdateCampaign) -> Self {
        Self {
            name: input.name,
            segment_ids: input.segment_ids,
            exclude_segment_ids: input.exclude_segment_ids,
        }
    }
}
