//! The filter language: the fields a filter may name, the operators that apply to each,
//! the value each takes, and their labels. The one table the parser checks filters
//! against and `GET /v1/segments/filter-fields` describes, so the two cannot drift.

use super::{Field, FlagColumn, TextColumn};
use crate::core::attributes::Definition;
use crate::core::types::AttributeType;

/// The fields every tenant's filters may name besides its attributes, in the order a
/// filter editor lists them.
pub const BUILT_IN: [(&str, Field); 10] = [
    ("name", Field::Text(TextColumn::Name)),
    ("email", Field::Text(TextColumn::Email)),
    ("phone", Field::Text(TextColumn::Phone)),
    ("phone_country", Field::Text(TextColumn::PhoneCountry)),
    ("tags", Field::Tags),
    ("created_at", Field::CreatedAt),
    ("last_messaged_at", Field::LastMessagedAt),
    ("opted_out", Field::Flag(FlagColumn::OptedOut)),
    ("privacy_consent", Field::Flag(FlagColumn::PrivacyConsent)),
    ("segment", Field::Segment),
];

/// The built-in field of that name.
pub fn built_in(name: &str) -> Option<Field> {
    BUILT_IN
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, field)| field.clone())
}

/// What an operator's `value` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueShape {
    /// No `value`.
    None,
    /// One value of the field's type.
    One,
    /// `[low, high]`.
    Two,
    /// A list of values of the field's type.
    List,
    /// A whole number of days.
    Days,
    /// A segment id.
    Segment,
}

impl ValueShape {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::One => "one",
            Self::Two => "two",
            Self::List => "list",
            Self::Days => "days",
            Self::Segment => "segment",
        }
    }
}

/// What `op` takes as its value on a field of `kind`.
pub fn value_shape(kind: Kind, op: &str) -> ValueShape {
    match (kind, op) {
        (
            _,
            "exists" | "not_exists" | "anniversary_this_month" | "anniversary_today" | "is_empty",
        ) => ValueShape::None,
        (Kind::Segment, _) => ValueShape::Segment,
        (_, "between") => ValueShape::Two,
        (_, "in" | "not_in" | "contains_any" | "contains_all") => ValueShape::List,
        (_, "in_last_days" | "not_in_last_days" | "in_next_days") => ValueShape::Days,
        _ => ValueShape::One,
    }
}

/// How a filter editor labels `op` on a field of `kind`.
pub fn operator_label(kind: Kind, op: &str) -> &'static str {
    match (kind, op) {
        (Kind::Boolean, "eq") => "is",
        (Kind::Segment, "in") => "is in segment",
        (Kind::Segment, "not_in") => "is not in segment",
        (Kind::Date, "eq") => "is on",
        (Kind::Tags, "contains") => "include",
        (Kind::Tags, "not_contains") => "do not include",
        (_, "eq") => "equals",
        (_, "neq") => "does not equal",
        (_, "in") => "is one of",
        (_, "not_in") => "is not one of",
        (_, "contains") => "contains",
        (_, "not_contains") => "does not contain",
        (_, "starts_with") => "starts with",
        (_, "gt") => "is greater than",
        (_, "gte") => "is at least",
        (_, "lt") => "is less than",
        (_, "lte") => "is at most",
        (_, "between") => "is between",
        (_, "before") => "is before",
        (_, "after") => "is after",
        (_, "in_last_days") => "is within the last ... days",
        (_, "not_in_last_days") => "is not within the last ... days",
        (_, "in_next_days") => "is within the next ... days",
        (_, "anniversary_this_month") => "has its anniversary this month",
        (_, "anniversary_today") => "has its anniversary today",
        (_, "contains_any") => "include any of",
        (_, "contains_all") => "include all of",
        (_, "is_empty") => "are empty",
        (_, "exists") => "is set",
        (_, "not_exists") => "is not set",
        _ => "",
    }
}

/// One operator as a filter editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDescription {
    pub op: &'static str,
    pub label: &'static str,
    pub value: ValueShape,
}

/// One field as a filter editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// As a filter names it: `name`, `attributes.city`...
    pub field: String,
    pub label: String,
    pub kind: Kind,
    pub operators: Vec<OperatorDescription>,
}

/// The tenant's filter language: the built-in fields, then its attributes in the order
/// given.
pub fn describe_fields(attributes: &[Definition]) -> Vec<FieldDescription> {
    let built_in = BUILT_IN
        .iter()
        .map(|(name, field)| ((*name).to_owned(), field.clone()));
    let defined = attributes.iter().map(|a| {
        (
            format!("attributes.{}", a.key),
            Field::Attribute {
                key: a.key.clone(),
                label: a.label.clone(),
                value_type: a.value_type,
            },
        )
    });
    built_in
        .chain(defined)
        .map(|(name, field)| {
            let kind = Kind::of(&field);
            FieldDescription {
                field: name,
                label: field.label().to_owned(),
                kind,
                operators: kind
                    .operators()
                    .iter()
                    .map(|op| OperatorDescription {
                        op,
                        label: operator_label(kind, op),
                        value: value_shape(kind, op),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The type a field's operators are chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Boolean,
    Date,
    Tags,
    Segment,
}

impl Kind {
    pub fn of(field: &Field) -> Self {
        match field {
            Field::Text(_) => Self::Text,
            Field::Flag(_) => Self::Boolean,
            Field::CreatedAt | Field::LastMessagedAt => Self::Date,
            Field::Tags => Self::Tags,
            Field::Segment => Self::Segment,
            Field::Attribute { value_type, .. } => match value_type {
                AttributeType::Text => Self::Text,
                AttributeType::Number => Self::Number,
                AttributeType::Boolean => Self::Boolean,
                AttributeType::Date => Self::Date,
            },
        }
    }

    pub fn operators(self) -> &'static [&'static str] {
        match self {
            Self::Text => &[
                "eq",
                "neq",
                "in",
                "not_in",
                "contains",
                "not_contains",
                "starts_with",
                "exists",
                "not_exists",
            ],
            Self::Number => &[
                "eq",
                "neq",
                "gt",
                "gte",
                "lt",
                "lte",
                "between",
                "in",
                "exists",
                "not_exists",
            ],
            Self::Boolean => &["eq", "exists", "not_exists"],
            Self::Date => &[
                "eq",
                "before",
                "after",
                "between",
                "in_last_days",
                "not_in_last_days",
                "in_next_days",
                "anniversary_this_month",
                "anniversary_today",
                "exists",
                "not_exists",
            ],
            Self::Tags => &[
                "contains",
                "not_contains",
                "contains_any",
                "contains_all",
                "is_empty",
            ],
            Self::Segment => &["in", "not_in"],
        }
    }

    /// The field type as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Tags => "tags",
            Self::Segment => "segment",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Text => "a text field",
            Self::Number => "a number field",
            Self::Boolean => "a boolean field",
            Self::Date => "a date field",
            Self::Tags => "tags",
            Self::Segment => "segment membership",
        }
    }
}
