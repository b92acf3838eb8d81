//! Audiences as the API shows them.

use crate::http::input::positive_ids;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::core::audience::{Counts, Recipient};
use crate::core::types::Channel;

/// Contacts left out, each counted once, under the first reason that applies, in this
/// order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Excluded {
    /// Members of an exclusion segment.
    #[schema(example = 40)]
    pub by_exclusion: i64,
    /// Opted out of messaging.
    #[schema(example = 12)]
    pub opted_out: i64,
    /// Without privacy consent, on a tenant that requires it.
    #[schema(example = 0)]
    pub no_consent: i64,
    /// Without an address for the channel: a validated phone for WhatsApp and SMS, an
    /// email for email.
    #[schema(example = 18)]
    pub no_address: i64,
}

/// Why the campaign reaches fewer people than its segments hold:
/// `eligible` + every `excluded` count = `total_unique`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceSummary {
    /// Contacts the campaign reaches.
    #[schema(example = 1180)]
    pub eligible: i64,
    /// Distinct members of the included segments.
    #[schema(example = 1250)]
    pub total_unique: i64,
    pub excluded: Excluded,
}

impl From<Counts> for AudienceSummary {
    fn from(counts: Counts) -> Self {
        Self {
            eligible: counts.eligible(),
            total_unique: counts.total_unique,
            excluded: Excluded {
                by_exclusion: counts.by_exclusion,
                opted_out: counts.opted_out,
                no_consent: counts.no_consent,
                no_address: counts.no_address,
            },
        }
    }
}

/// One contact the campaign reaches, with its address on the campaign's channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceRecipient {
    #[schema(example = 42)]
    pub contact_id: i64,
    #[schema(example = "Giulia Rossi")]
    pub name: String,
    /// The E.164 phone (WhatsApp, SMS) or the email (email).
    #[schema(example = "+393331234567")]
    pub address: String,
}

impl From<Recipient> for AudienceRecipient {
    fn from(recipient: Recipient) -> Self {
        Self {
            contact_id: recipient.contact_id,
            name: recipient.name,
            address: recipient.address,
        }
    }
}

/// A keyset page of recipients, in contact id order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudiencePage {
    pub items: Vec<AudienceRecipient>,
    /// Pass as `after` for the next page; null at the end.
    #[schema(required = true, example = 42)]
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeysetParams {
    /// The `next_after` of the previous page; absent for the first.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Recipients per page, 1 to 10,000 (default 1,000).
    #[validate(range(min = 1, max = 10000))]
    #[param(minimum = 1, maximum = 10000, default = 1000)]
    pub limit: Option<i64>,
}

/// Segments to resolve as an audience without saving a campaign. Every segment named
/// must exist in the tenant and have `channel`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub channel: Channel,
    /// 1 to 100 segments whose members the audience reaches.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 100, message = "must list 1 to 100 segment ids")
    )]
    #[schema(example = json!([7, 8]), min_items = 1, max_items = 100)]
    pub segment_ids: Vec<i64>,
    /// Up to 100 segments whose members are left out. Default none.
    #[serde(default)]
    #[validate(
        custom(function = "positive_ids"),
        length(max = 100, message = "must list at most 100 segment ids")
    )]
    #[schema(example = json!([9]), max_items = 100)]
    pub exclude_segment_ids: Vec<i64>,
}
