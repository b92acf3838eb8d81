//! The dynamic-segment filter language: a typed tree parsed from JSON and checked against
//! the tenant's attributes and segments ([`parse`]) and read back as a sentence
//! ([`summary`]). The data layer compiles it to SQL (`crate::db::filter`).

pub mod graph;
pub mod operators;
pub mod parse;
pub mod size;
pub mod summary;

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::core::types::AttributeType;

/// Deepest nesting of groups and conditions.
pub const MAX_DEPTH: usize = 5;
/// Most conditions in one filter.
pub const MAX_CONDITIONS: usize = 50;
/// Most groups and conditions in one filter.
pub const MAX_NODES: usize = 200;
/// Most conditions in a filter together with every segment it names, directly or
/// through others (each counted once).
pub const MAX_TOTAL_CONDITIONS: usize = 200;
/// Longest chain of references: a segment naming one that names a third.
pub const MAX_CHAIN: usize = 3;
/// Most values in an `in`, `not_in`, `contains_any` or `contains_all` list.
pub const MAX_LIST_VALUES: usize = 100;
/// Largest day count of `in_last_days` and the like (100 years).
pub const MAX_DAYS: i64 = 36_500;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Condition(Condition),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub test: Test,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A text column of contacts.
    Text(TextColumn),
    /// A boolean column of contacts.
    Flag(FlagColumn),
    CreatedAt,
    /// When the contact was last messaged (a send's `sent` outcome); unset until then.
    LastMessagedAt,
    Tags,
    Attribute {
        key: String,
        label: String,
        value_type: AttributeType,
    },
    /// Membership of another segment.
    Segment,
}

impl Field {
    /// The field as people read it, in summaries and filter editors.
    pub fn label(&self) -> &str {
        match self {
            Field::Text(TextColumn::Name) => "Name",
            Field::Text(TextColumn::Email) => "Email",
            Field::Text(TextColumn::Phone) => "Phone",
            Field::Text(TextColumn::PhoneCountry) => "Phone country",
            Field::Flag(FlagColumn::OptedOut) => "Opted out",
            Field::Flag(FlagColumn::PrivacyConsent) => "Privacy consent",
            Field::CreatedAt => "Created",
            Field::LastMessagedAt => "Last messaged",
            Field::Tags => "Tags",
            Field::Segment => "Segment",
            Field::Attribute { label, .. } => label,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextColumn {
    Name,
    Email,
    Phone,
    PhoneCountry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagColumn {
    OptedOut,
    PrivacyConsent,
}

/// An operator with its value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    TextEq(String),
    TextNeq(String),
    TextIn(Vec<String>),
    TextNotIn(Vec<String>),
    Contains(String),
    NotContains(String),
    StartsWith(String),
    NumberEq(f64),
    NumberNeq(f64),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    NumberBetween(f64, f64),
    NumberIn(Vec<f64>),
    BoolEq(bool),
    DateEq(NaiveDate),
    Before(NaiveDate),
    After(NaiveDate),
    DateBetween(NaiveDate, NaiveDate),
    InLastDays(i64),
    NotInLastDays(i64),
    InNextDays(i64),
    AnniversaryThisMonth,
    AnniversaryToday,
    TagContains(String),
    TagNotContains(String),
    TagsContainAny(Vec<String>),
    TagsContainAll(Vec<String>),
    TagsEmpty,
    InSegment(SegmentRef),
    NotInSegment(SegmentRef),
    Exists,
    NotExists,
}

/// A segment a filter names, resolved when the filter was parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRef {
    pub id: i64,
    pub name: String,
}

impl Node {
    /// "No filters": a group with nothing in it matches every contact.
    pub fn is_empty(&self) -> bool {
        matches!(self, Node::All(nodes) if nodes.is_empty())
    }

    /// Every condition of the tree, depth first.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut found = Vec::new();
        self.collect(&mut found);
        found
    }

    fn collect<'a>(&'a self, found: &mut Vec<&'a Condition>) {
        match self {
            Node::All(nodes) | Node::Any(nodes) => {
                nodes.iter().for_each(|node| node.collect(found))
            }
            Node::Not(node) => node.collect(found),
            Node::Condition(condition) => found.push(condition),
        }
    }

    /// The segments the filter names.
    pub fn references(&self) -> BTreeSet<i64> {
        self.conditions()
            .into_iter()
            .filter_map(|condition| match &condition.test {
                Test::InSegment(segment) | Test::NotInSegment(segment) => Some(segment.id),
                _ => None,
            })
            .collect()
    }

    /// The attributes the filter names.
    pub fn attribute_keys(&self) -> BTreeSet<String> {
        self.conditions()
            .into_iter()
            .filter_map(|condition| match &condition.field {
                Field::Attribute { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether any condition of the filter looks at `field`.
    pub fn reads(&self, field: &Field) -> bool {
        self.conditions()
            .into_iter()
            .any(|condition| condition.field == *field)
    }

    /// Whether the filter's own conditions depend on the date (relative dates,
    /// anniversaries), so that its members change from one day to the next.
    pub fn is_date_relative(&self) -> bool {
        self.conditions().into_iter().any(|condition| {
            matches!(
                condition.test,
                Test::InLastDays(_)
                    | Test::NotInLastDays(_)
                    | Test::InNextDays(_)
                    | Test::AnniversaryThisMonth
                    | Test::AnniversaryToday
            )
        })
    }
}

#[cfg(test)]
mod tests;
