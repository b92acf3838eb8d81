//! The API document's schemas for the core's shared vocabulary, written from the types
//! themselves (their `ALL` lists), so the document cannot drift from the code.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::core::error::FieldError;
use crate::core::event::EventType;
use crate::core::send::Status;
use crate::core::types::{AttributeType, Channel, SegmentKind};

// `example`, not `examples`: the document's schemas keep one example each.
#[allow(deprecated)]
fn string_enum<'a>(
    description: &str,
    values: impl IntoIterator<Item = &'a str>,
    example: Option<&str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(description))
        .enum_values(Some(values))
        .example(example.map(Into::into))
        .into()
}

impl PartialSchema for Channel {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "The messaging channel a segment or campaign is for. It decides which contacts may\n\
             join (see the membership rules) and which address an audience uses: the validated\n\
             phone for `whatsapp` and `sms`, the email for `email`.",
            Channel::ALL.map(Channel::as_str),
            None,
        )
    }
}

impl ToSchema for Channel {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Channel")
    }
}

impl PartialSchema for SegmentKind {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "How a segment's members are chosen; fixed at creation.",
            SegmentKind::ALL.map(SegmentKind::as_str),
            None,
        )
    }
}

impl ToSchema for SegmentKind {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SegmentKind")
    }
}

impl PartialSchema for AttributeType {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A custom attribute's value type: `text` (a string of at most 1000 characters),\n\
             `number`, `boolean`, or `date` (`YYYY-MM-DD`).",
            AttributeType::ALL.map(AttributeType::as_str),
            Some("text"),
        )
    }
}

impl ToSchema for AttributeType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AttributeType")
    }
}

impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "What changed: a contact created, updated or deleted; a contact added to or removed\n\
             from a segment (dynamic ones included); an import finished; a send created.",
            EventType::ALL.map(EventType::as_str),
            Some("segment.member_added"),
        )
    }
}

impl ToSchema for EventType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

impl PartialSchema for Status {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "Where a recipient of a send stands: `pending` (not reported yet), `sent`,\n\
             `delivered`, `read`, `failed`, or `skipped` (pending, but the contact opted out\n\
             after the freeze: never to be messaged).",
            Status::ALL.map(Status::as_str),
            Some("sent"),
        )
    }
}

impl ToSchema for Status {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RecipientStatus")
    }
}

/// What a sender may report: the statuses after pending, and failed.
pub fn reported_status() -> RefOr<Schema> {
    string_enum(
        "What became of the message: `sent`, `delivered`, `read` or `failed`. A status\n\
         only moves forward (pending -> sent -> delivered -> read, or failed from pending\n\
         or sent).",
        Status::REPORTED.map(Status::as_str),
        Some("delivered"),
    )
}

impl PartialSchema for FieldError {
    fn schema() -> RefOr<Schema> {
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::String))
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Object))
            .description(Some("One offending input field of a validation error."))
            .property(
                "field",
                text(
                    "Where the problem is: a dotted path into the request (`contacts[3].phone`,\n\
                     `filter.all[0].op`) or the name of a query or path parameter.",
                ),
            )
            .required("field")
            .property(
                "code",
                text("A stable machine code, e.g. `required`, `invalid_phone`, `too_long`."),
            )
            .required("code")
            .property("message", text("A sentence for a person."))
            .required("message")
            .into()
    }
}

impl ToSchema for FieldError {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FieldError")
    }
}
