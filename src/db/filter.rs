//! A filter tree as one SQL condition on `contacts`, every value bound.
//!
//! Equality and containment on attributes and tags compile to `@>`, which the GIN
//! indexes serve; numbers and dates compare as numbers and dates, not text. Relative
//! dates count from the service's clock (UTC). Every condition is TRUE or FALSE, never
//! NULL, so a negation is the exact complement of its positive form: it matches the
//! contacts that lack the value.

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::contact_rows::last_messaged_at;
use super::sql::{escape_like, Bound, Condition as Sql};
use crate::core::filter::{Condition, Field, FlagColumn, Node, SegmentRef, Test, TextColumn};
use crate::core::types::AttributeType;

/// Compiles filters for one tenant.
pub struct Compiler {
    pub tenant_id: i64,
    /// The day relative dates and anniversaries count from (the service's clock, UTC).
    pub today: NaiveDate,
}

impl Compiler {
    pub fn compile(&self, node: &Node) -> Sql {
        match node {
            Node::All(nodes) => self.join(nodes, " AND ", "TRUE"),
            Node::Any(nodes) => self.join(nodes, " OR ", "FALSE"),
            Node::Not(inner) => Sql::of("(NOT ").append(self.compile(inner)).sql(")"),
            Node::Condition(condition) => self.condition(condition),
        }
    }

    fn join(&self, nodes: &[Node], joiner: &str, empty: &str) -> Sql {
        if nodes.is_empty() {
            return Sql::of(empty);
        }
        let mut condition = Sql::of("(");
        for (index, node) in nodes.iter().enumerate() {
            if index > 0 {
                condition = condition.sql(joiner);
            }
            condition = condition.append(self.compile(node));
        }
        condition.sql(")")
    }

    fn condition(&self, condition: &Condition) -> Sql {
        let test = &condition.test;
        match &condition.field {
            Field::Attribute {
                key, value_type, ..
            } => self.attribute(key, *value_type, test),
            Field::Text(column) => text(text_column(*column), test),
            Field::Flag(column) => flag(*column, test),
            Field::CreatedAt => self.date(
                Sql::of("(contacts.created_at AT TIME ZONE 'UTC')::date"),
                test,
            ),
            Field::LastMessagedAt => self.date(
                Sql::of("(")
                    .append(last_messaged_at(self.tenant_id))
                    .sql(" AT TIME ZONE 'UTC')::date"),
                test,
            ),
            Field::Tags => tags(test),
            Field::Segment => match test {
                Test::InSegment(segment) => self.membership(segment),
                Test::NotInSegment(segment) => negate(self.membership(segment)),
                other => unreachable!("segment membership has no {other:?}"),
            },
        }
    }

    /// A static segment's members are rows; a dynamic one's are its own filter.
    /// A segment's members are rows, static or dynamic alike (a dynamic segment's are
    /// kept up to date as contacts change): naming a segment costs one index probe,
    /// never an evaluation of its filter.
    fn membership(&self, segment: &SegmentRef) -> Sql {
        Sql::of("EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = ")
            .value(Bound::Integer(self.tenant_id))
            .sql(" AND m.segment_id = ")
            .value(Bound::Integer(segment.id))
            .sql(" AND m.contact_id = contacts.id)")
    }

    fn attribute(&self, key: &str, value_type: AttributeType, test: &Test) -> Sql {
        let contains = |value: Value| {
            Sql::of("contacts.attributes @> ").value(Bound::Json(json!({ key: value })))
        };
        let any_contains = |values: Vec<Value>| {
            let mut condition = Sql::of("(FALSE");
            for value in values {
                condition = condition.sql(" OR ").append(contains(value));
            }
            condition.sql(")")
        };
        let present = || Sql::of("contacts.attributes ? ").value(Bound::Text(key.to_owned()));
        match (value_type, test) {
            (_, Test::Exists) => present(),
            (_, Test::NotExists) => negate(present()),
            (_, Test::TextEq(v)) => contains(json!(v)),
            (_, Test::TextNeq(v)) => negate(contains(json!(v))),
            (_, Test::TextIn(values)) => any_contains(values.iter().map(|v| json!(v)).collect()),
            (_, Test::TextNotIn(values)) => {
                negate(any_contains(values.iter().map(|v| json!(v)).collect()))
            }
            (_, Test::NumberEq(v)) => contains(json!(v)),
            (_, Test::NumberNeq(v)) => negate(contains(json!(v))),
            (_, Test::NumberIn(values)) => any_contains(values.iter().map(|v| json!(v)).collect()),
            (_, Test::BoolEq(v)) => contains(json!(v)),
            (AttributeType::Number, test) => {
                number(&typed_attribute(key, "number", "float8"), test)
            }
            (AttributeType::Date, test) => {
                self.date(Sql::of(&typed_attribute(key, "string", "date")), test)
            }
            (_, test) => text(&typed_attribute(key, "string", "text"), test),
        }
    }

    fn date(&self, value: Sql, test: &Test) -> Sql {
        let value = || value.clone();
        let today = || Bound::Day(self.today);
        let compare =
            |operator: &str, day: NaiveDate| coalesce(value().sql(operator).value(Bound::Day(day)));
        let within = |days: i64, past: bool| {
            let range = value().sql(" BETWEEN ");
            let range = if past {
                range
                    .value(today())
                    .sql(" - ")
                    .value(Bound::Integer(days))
                    .sql("::int AND ")
                    .value(today())
            } else {
                range
                    .value(today())
                    .sql(" AND ")
                    .value(today())
                    .sql(" + ")
                    .value(Bound::Integer(days))
                    .sql("::int")
            };
            coalesce(range)
        };
        match test {
            Test::Exists => value().sql(" IS NOT NULL"),
            Test::NotExists => value().sql(" IS NULL"),
            Test::DateEq(day) => compare(" = ", *day),
            Test::Before(day) => compare(" < ", *day),
            Test::After(day) => compare(" > ", *day),
            Test::DateBetween(low, high) => coalesce(
                value()
                    .sql(" BETWEEN ")
                    .value(Bound::Day(*low))
                    .sql(" AND ")
                    .value(Bound::Day(*high)),
            ),
            Test::InLastDays(days) => within(*days, true),
            Test::NotInLastDays(days) => negate(within(*days, true)),
            Test::InNextDays(days) => within(*days, false),
            Test::AnniversaryThisMonth => coalesce(
                Sql::of("EXTRACT(MONTH FROM ")
                    .append(value())
                    .sql(") = EXTRACT(MONTH FROM ")
                    .value(today())
                    .sql(")"),
            ),
            // In a year without 29 February, those born on it celebrate on the 28th.
            Test::AnniversaryToday => coalesce(
                Sql::of("(to_char(")
                    .append(value())
                    .sql(", 'MM-DD') = to_char(")
                    .value(today())
                    .sql(", 'MM-DD') OR (to_char(")
                    .append(value())
                    .sql(", 'MM-DD') = '02-29' AND to_char(")
                    .value(today())
                    .sql(", 'MM-DD') = '02-28' AND to_char(date_trunc('year', ")
                    .value(today())
                    .sql(") + interval '1 month 28 days', 'MM-DD') <> '02-29'))"),
            ),
            other => unreachable!("dates have no {other:?}"),
        }
    }
}

/// An attribute's value as SQL of `cast`, NULL when missing or of another JSON type.
/// Keys are spliced as literals: they are defined attribute keys, which may hold only
/// lowercase letters, digits and `_` (checked here again).
fn typed_attribute(key: &str, json_type: &str, cast: &str) -> String {
    assert!(
        key.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "attribute keys are validated identifiers"
    );
    format!("(CASE WHEN jsonb_typeof(contacts.attributes -> '{key}') = '{json_type}' THEN (contacts.attributes ->> '{key}')::{cast} END)")
}

fn text_column(column: TextColumn) -> &'static str {
    match column {
        TextColumn::Name => "contacts.name",
        TextColumn::Email => "contacts.email",
        // The validated number: the one messages go to.
        TextColumn::Phone => "contacts.phone_e164",
        TextColumn::PhoneCountry => "contacts.phone_country",
    }
}

fn negate(condition: Sql) -> Sql {
    condition.negated()
}

/// NULL (a missing value) counts as not matching.
fn coalesce(condition: Sql) -> Sql {
    condition.or_false()
}

/// Comparisons of a text expression that may be NULL. `contains` and `starts_with` ignore
/// case and take `%` and `_` literally.
fn text(value: &str, test: &Test) -> Sql {
    let compare = |operator: &str, part: Bound| coalesce(Sql::of(value).sql(operator).value(part));
    let like = |pattern: String| compare(" ILIKE ", Bound::Text(pattern));
    match test {
        Test::Exists => Sql::of(value).sql(" IS NOT NULL"),
        Test::NotExists => Sql::of(value).sql(" IS NULL"),
        Test::TextEq(v) => compare(" = ", Bound::Text(v.clone())),
        Test::TextNeq(v) => negate(compare(" = ", Bound::Text(v.clone()))),
        Test::TextIn(values) => one_of(value, values),
        Test::TextNotIn(values) => negate(one_of(value, values)),
        Test::Contains(v) => like(format!("%{}%", escape_like(v))),
        Test::NotContains(v) => negate(like(format!("%{}%", escape_like(v)))),
        Test::StartsWith(v) => like(format!("{}%", escape_like(v))),
        other => unreachable!("text has no {other:?}"),
    }
}

fn one_of(value: &str, values: &[String]) -> Sql {
    coalesce(
        Sql::of(value)
            .sql(" = ANY(")
            .value(Bound::Texts(values.to_vec()))
            .sql(")"),
    )
}

fn number(value: &str, test: &Test) -> Sql {
    let compare = |operator: &str, number: f64| {
        coalesce(Sql::of(value).sql(operator).value(Bound::Number(number)))
    };
    match test {
        Test::Exists => Sql::of(value).sql(" IS NOT NULL"),
        Test::NotExists => Sql::of(value).sql(" IS NULL"),
        Test::Gt(v) => compare(" > ", *v),
        Test::Gte(v) => compare(" >= ", *v),
        Test::Lt(v) => compare(" < ", *v),
        Test::Lte(v) => compare(" <= ", *v),
        Test::NumberBetween(low, high) => coalesce(
            Sql::of(value)
                .sql(" BETWEEN ")
                .value(Bound::Number(*low))
                .sql(" AND ")
                .value(Bound::Number(*high)),
        ),
        other => unreachable!("numbers have no {other:?}"),
    }
}

fn flag(column: FlagColumn, test: &Test) -> Sql {
    let name = match column {
        FlagColumn::OptedOut => "contacts.opted_out",
        FlagColumn::PrivacyConsent => "contacts.privacy_consent",
    };
    match test {
        Test::BoolEq(value) => Sql::of(name).sql(" = ").value(Bound::Flag(*value)),
        Test::Exists => Sql::of("TRUE"),
        Test::NotExists => Sql::of("FALSE"),
        other => unreachable!("flags have no {other:?}"),
    }
}

fn tags(test: &Test) -> Sql {
    let tags = |operator: &str, values: Vec<String>| {
        Sql::of("contacts.tags")
            .sql(operator)
            .value(Bound::Texts(values))
    };
    match test {
        Test::TagContains(tag) => tags(" @> ", vec![tag.clone()]),
        Test::TagNotContains(tag) => negate(tags(" @> ", vec![tag.clone()])),
        Test::TagsContainAll(values) => tags(" @> ", values.clone()),
        Test::TagsContainAny(values) => tags(" && ", values.clone()),
        Test::TagsEmpty => Sql::of("cardinality(contacts.tags) = 0"),
        other => unreachable!("tags have no {other:?}"),
    }
}
