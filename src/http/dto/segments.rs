//! Segments as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::core::segment::Sort;
use crate::core::types::{Channel, SegmentKind};
use crate::http::dto::contacts::Contact;
use crate::http::dto::members::MembershipReport;
use crate::http::input::{
    json_object, patch_opt, positive_ids, trimmed, trimmed_opt, trimmed_some,
};
use crate::service::segments::{NewSegmentInput, SegmentUpdate, SegmentView};

/// A segment: a reusable audience of contacts for one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct Segment {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = "Milan candidates")]
    pub name: String,
    #[schema(example = "Candidates who applied for jobs in Milan")]
    pub description: Option<String>,
    pub kind: SegmentKind,
    pub channel: Channel,
    /// The filter of a dynamic segment (see the filter language under
    /// `POST /v1/segments/preview`); null for a static one.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, additional_properties = true, example = json!(null))]
    pub filter: Option<Value>,
    /// The filter as a person would read it; "No filters" when there is none.
    #[schema(example = "No filters")]
    pub filter_summary: String,
    /// Number of members, exact at all times: a dynamic segment's members are kept
    /// current as contacts, memberships and its filter change.
    #[schema(example = 0)]
    pub recipients: i64,
    /// When a dynamic segment's members were last evaluated in full (its filter saved,
    /// or the daily re-evaluation of filters that depend on the date); null for a static
    /// segment.
    #[schema(example = json!(null))]
    pub recipients_computed_at: Option<DateTime<Utc>>,
    #[schema(example = "2026-02-10T11:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// Moves on every change to the segment, its members included.
    #[schema(example = "2026-02-10T11:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Only in the answer to a create with `contact_ids`: what became of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipReport>,
}

impl From<SegmentView> for Segment {
    fn from(
        SegmentView {
            row,
            filter_summary,
        }: SegmentView,
    ) -> Self {
        Self {
            id: row.id,
            kind: row.kind(),
            channel: row.channel(),
            name: row.name,
            description: row.description,
            filter: row.filter,
            filter_summary,
            recipients: row.recipients,
            recipients_computed_at: row.recipients_computed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            membership: None,
        }
    }
}

/// A new segment. A dynamic one needs `filter`; a static one must not have one.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    /// Unique per tenant, ignoring case; trimmed.
    #[serde(deserialize_with = "trimmed::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Milan candidates", min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default, deserialize_with = "trimmed_opt::<2000, _>")]
    #[validate(length(max = 2000))]
    #[schema(
        example = "Candidates who applied for jobs in Milan",
        max_length = 2000
    )]
    pub description: Option<String>,
    /// Fixed at creation. Default `static`.
    #[serde(default = "default_kind")]
    #[schema(example = "dynamic")]
    pub kind: SegmentKind,
    /// Fixed at creation.
    pub channel: Channel,
    /// Required for a dynamic segment, refused for a static one. See the filter language
    /// in the description of `POST /v1/segments/preview`.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, additional_properties = true, example = json!({"all": [{"field": "attributes.city", "op": "eq", "value": "Milan"}]}))]
    #[validate(custom(function = "json_object"))]
    pub filter: Option<Value>,
    /// A static segment's first members, picked before saving (1 to 10,000 contact ids;
    /// repeats count once): added in the same transaction under the membership rules,
    /// the answer then carrying their `membership` report. Refused for a dynamic segment.
    #[validate(
        custom(function = "positive_ids"),
        length(min = 1, max = 10000, message = "must list 1 to 10000 contact ids")
    )]
    #[schema(example = json!(null), min_items = 1, max_items = 10000)]
    pub contact_ids: Option<Vec<i64>>,
}

fn default_kind() -> SegmentKind {
    SegmentKind::Static
}

/// Fields left out keep their value; `description: null` clears it.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSegment {
    /// Unique per tenant, ignoring case; trimmed.
    #[serde(default, deserialize_with = "trimmed_some::<200, _>")]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "Milan candidates (2026)", min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "patch_opt::<2000, _>")]
    #[validate(custom(function = "description_fits"))]
    #[schema(value_type = Option<String>, example = "Candidates for spring openings in Milan", max_length = 2000)]
    pub description: Option<Option<String>>,
    /// A dynamic segment's new filter, replacing the old one; refused for a static
    /// segment.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, additional_properties = true, example = json!({"all": [{"field": "attributes.city", "op": "in", "value": ["Milan", "Monza"]}]}))]
    #[validate(custom(function = "json_object"))]
    pub filter: Option<Value>,
}

fn description_fits(text: &str) -> Result<(), ValidationError> {
    if text.chars().count() > 2000 {
        Err(ValidationError::new("length")
            .with_message("must be at most 2000 characters long".into()))
    } else {
        Ok(())
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentListParams {
    /// Part of the name, case-insensitive.
    #[validate(length(max = 200))]
    // No example: Swagger UI pre-fills examples into "Try it out", hiding rows.
    #[param(max_length = 200)]
    pub search: Option<String>,
    // `SegmentKind` and `Channel` carry no example: Swagger UI would pre-select it in
    // "Try it out" and hide the other segments.
    /// Only segments of this kind.
    pub kind: Option<SegmentKind>,
    /// Only segments for this channel.
    pub channel: Option<Channel>,
    /// `name`, `created_at`, `updated_at` or `recipients`; prefix `-` for descending.
    /// Default `-created_at`.
    #[validate(custom(function = "valid_sort"))]
    #[param(
        pattern = "^-?(name|created_at|updated_at|recipients)$",
        example = "-updated_at"
    )]
    pub sort: Option<String>,
}

fn valid_sort(text: &str) -> Result<(), ValidationError> {
    Sort::parse(text).map(drop).ok_or_else(|| {
        ValidationError::new("invalid_sort").with_message(
            "must be name, created_at, updated_at or recipients, with - first for descending"
                .into(),
        )
    })
}

/// Segments, not paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    pub items: Vec<Segment>,
}

/// A filter to try before saving a segment.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The channel the segment would be for.
    pub channel: Channel,
    /// A filter node: a group (`all`, `any`: a list of nodes; `not`: one node) or a
    /// condition `{field, op, value?}`.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>, additional_properties = true, example = json!({"all": [{"field": "attributes.city", "op": "eq", "value": "Milan"}, {"any": [{"field": "tags", "op": "contains", "value": "vip"}, {"field": "attributes.premium", "op": "eq", "value": true}]}]}))]
    #[validate(custom(function = "json_object"))]
    pub filter: Value,
}

/// What a filter matches now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// Contacts the filter matches now.
    #[schema(example = 1250)]
    pub count: i64,
    /// The first 10 of them, by id.
    pub sample: Vec<Contact>,
    /// The filter as a person would read it.
    #[schema(example = "City equals Milan AND (Tags contains vip OR Premium customer is true)")]
    pub filter_summary: String,
}

impl From<CreateSegment> for NewSegmentInput {
    fn from(input: CreateSegment) -> Self {
        Self {
            name: input.name,
            description: input.description,
            kind: input.kind,
            channel: input.channel,
            filter: input.filter,
            contact_ids: input.contact_ids,
        }
    }
}

impl From<UpdateSegment> for SegmentUpdate {
    fn from(input: UpdateSegment) -> Self {
        Self {
            name: input.name,
            description: input.description,
            filter: input.filter,
        }
    }
}

/// One operator of a field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilterOperator {
    /// As a filter's `op` names it.
    #[schema(example = "in_last_days")]
    pub op: &'static str,
    #[schema(example = "is within the last ... days")]
    pub label: &'static str,
    /// What `value` is: `none` (leave it out), `one` value of the field's type, `two`
    /// (`[low, high]`), a `list`, `days` (a whole number), or a `segment` id.
    #[schema(example = "days")]
    pub value: &'static str,
}

/// One field a filter may name.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilterField {
    /// As a condition's `field` names it.
    #[schema(example = "attributes.city")]
    pub field: String,
    #[schema(example = "City")]
    pub label: String,
    /// `text`, `number`, `boolean`, `date`, `tags` or `segment`.
    #[serde(rename = "type")]
    #[schema(example = "text")]
    pub kind: &'static str,
    pub operators: Vec<FilterOperator>,
}

/// The filter language for this tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilterFields {
    pub fields: Vec<FilterField>,
}

impl From<Vec<crate::core::filter::operators::FieldDescription>> for FilterFields {
    fn from(fields: Vec<crate::core::filter::operators::FieldDescription>) -> Self {
        Self {
            fields: fields
                .into_iter()
                .map(|field| FilterField {
                    field: field.field,
                    label: field.label,
                    kind: field.kind.as_str(),
                    operators: field
                        .operators
                        .into_iter()
                        .map(|op| FilterOperator {
                            op: op.op,
                            label: op.label,
                            value: op.value.as_str(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
