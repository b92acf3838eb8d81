//! Segment members and membership reports as the API reads and writes them.

use crate::http::input::{json_object, positive_ids};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::core::membership;
use crate::db::member_reads::MemberRow;
use crate::http::dto::contacts::Contact;
use crate::service::membership::Selection;

/// Contacts to add to or remove from a segment.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberIds {
    /// 1 to 10,000 contact ids; repeats count once.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 10000, message = "must list 1 to 10000 contact ids")
    )]
    #[schema(example = json!([1, 2, 3]), min_items = 1, max_items = 10000)]
    pub contact_ids: Vec<i64>,
}

/// Contacts to add to several segments: every contact to every segment.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipsRequest {
    /// 1 to 100 static segments; repeats count once.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 100, message = "must list 1 to 100 segment ids")
    )]
    #[schema(example = json!([7, 8]), min_items = 1, max_items = 100)]
    pub segment_ids: Vec<i64>,
    /// 1 to 10,000 contact ids; repeats count once.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 10000, message = "must list 1 to 10000 contact ids")
    )]
    #[schema(example = json!([1, 2, 3]), min_items = 1, max_items = 10000)]
    pub contact_ids: Vec<i64>,
}

/// "All search results": every contact matching these, whatever their number. Criteria
/// combine with AND; an empty object selects every contact of the tenant.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSelection {
    /// As the contact list's `search`: part of the name, phone, email or external id,
    /// case-insensitive.
    #[validate(length(max = 200))]
    #[schema(example = "rossi", max_length = 200)]
    pub search: Option<String>,
    /// Only contacts carrying this tag.
    #[validate(length(max = 100))]
    #[schema(example = "vip", max_length = 100)]
    pub tag: Option<String>,
    /// Only opted-out (true) or not opted-out (false) contacts.
    #[schema(example = false)]
    pub opted_out: Option<bool>,
    /// Only contacts this filter matches (the language of dynamic segments, described
    /// under `POST /v1/segments/preview`).
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, additional_properties = true, example = json!({"all": [{"field": "attributes.city", "op": "eq", "value": "Milan"}]}))]
    #[validate(custom(function = "json_object"))]
    pub filter: Option<serde_json::Value>,
}

/// A contact that was not added, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejection {
    #[schema(example = 42)]
    pub contact_id: i64,
    /// `no_validated_mobile` (SMS), `no_email` (email), `no_privacy_consent` (tenant
    /// requires consent) or `contact_not_found` (unknown or another tenant's id).
    #[schema(example = "no_validated_mobile")]
    pub code: String,
    #[schema(example = "The contact has no validated mobile number, so it cannot receive SMS.")]
    pub message: String,
}

/// Contacts that were accepted but deserve a look.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Warning {
    /// `no_validated_mobile`: WhatsApp members without a validated phone; after an
    /// import also `opted_out`: members from the file that stay opted out.
    #[schema(example = "no_validated_mobile")]
    pub code: String,
    #[schema(
        example = "You have added recipient candidates to the segment who do not have a validated mobile number and therefore cannot be contacted via WhatsApp"
    )]
    pub message: String,
    /// The contacts concerned (the first 1000).
    #[schema(example = json!([43, 57]))]
    pub contact_ids: Vec<i64>,
    /// How many contacts are concerned in all.
    #[schema(example = 2)]
    pub count: i64,
}

/// What a write to a segment's members did. Every contact named is counted once: in
/// `added`, `already_members` or `rejected`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MembershipReport {
    /// Contacts that became members.
    #[schema(example = 2)]
    pub added: i64,
    /// Eligible contacts that were members already.
    #[schema(example = 1)]
    pub already_members: i64,
    /// Contacts refused, with the reason (the first 1000).
    pub rejected: Vec<Rejection>,
    /// How many contacts were refused in all.
    #[schema(example = 0)]
    pub rejected_total: i64,
    /// Accepted contacts worth a look, e.g. WhatsApp members without a validated phone.
    pub warnings: Vec<Warning>,
    /// The segment's member count after the write.
    #[schema(example = 1250)]
    pub recipients: i64,
}

/// One segment's membership report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentReport {
    #[schema(example = 7)]
    pub segment_id: i64,
    #[serde(flatten)]
    pub report: MembershipReport,
}

/// What adding to several segments did, segment by segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipsReport {
    /// One report per segment, in the order of `segment_ids`.
    pub reports: Vec<SegmentReport>,
}

/// What removing members did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedMembers {
    /// Contacts that were members and no longer are.
    #[schema(example = 2)]
    pub removed: i64,
    /// The segment's member count after the write.
    #[schema(example = 1248)]
    pub recipients: i64,
}

/// A member: the contact, and when it joined (null for a dynamic segment).
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub contact: Contact,
    #[schema(example = "2026-02-11T16:20:00Z")]
    pub added_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberListParams {
    /// Part of the name, phone, email or external id; case-insensitive.
    #[validate(length(max = 200))]
    // No example: Swagger UI pre-fills examples into "Try it out", hiding rows.
    #[param(max_length = 200)]
    pub search: Option<String>,
}

impl From<membership::Rejection> for Rejection {
    fn from(rejection: membership::Rejection) -> Self {
        Self {
            contact_id: rejection.contact_id,
            code: rejection.code,
            message: rejection.message,
        }
    }
}

impl From<membership::Warning> for Warning {
    fn from(warning: membership::Warning) -> Self {
        Self {
            code: warning.code,
            message: warning.message,
            contact_ids: warning.contact_ids,
            count: warning.count,
        }
    }
}

impl From<membership::Report> for MembershipReport {
    fn from(report: membership::Report) -> Self {
        Self {
            added: report.added,
            already_members: report.already_members,
            rejected: report.rejected.into_iter().map(Into::into).collect(),
            rejected_total: report.rejected_total,
            warnings: report.warnings.into_iter().map(Into::into).collect(),
            recipients: report.recipients,
        }
    }
}

impl From<membership::Removed> for RemovedMembers {
    fn from(removed: membership::Removed) -> Self {
        Self {
            removed: removed.removed,
            recipients: removed.recipients,
        }
    }
}

impl From<MemberRow> for Member {
    fn from((row, added_at): MemberRow) -> Self {
        Self {
            contact: Contact::from(row),
            added_at,
        }
    }
}

impl From<SearchSelection> for Selection {
    fn from(input: SearchSelection) -> Self {
        Self {
            search: input.search,
            tag: input.tag,
            opted_out: input.opted_out,
            filter: input.filter,
        }
    }
}
