//! Which operators apply to which fields: the one table the parser checks filters
//! against.

use super::Field;
use crate::core::types::AttributeType;

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
            Field::CreatedAt => Self::Date,
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
