//! A filter tree as one SQL condition on `contacts`, every value bound.
//!
//! Equality and containment on attributes and tags compile to `@>`, which the GIN
//! indexes serve; numbers and dates compare as numbers and dates, not text. Relative
//! dates use the database's current date in UTC. Every condition is TRUE or FALSE, never
//! NULL, so a negation is the exact complement of its positive form: it matches the
//! contacts that lack the value.

use chrono::NaiveDate;
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::Query;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Date, Double, Jsonb, Nullable, Text};
use diesel::{AppearsOnTable, Expression, PgConnection, QueryResult, RunQueryDsl};
use serde_json::{json, Value};
use std::marker::PhantomData;

use super::{Condition, Field, FlagColumn, Node, SegmentRef, Test, TextColumn};
use crate::attributes::AttributeType;
use crate::db::escape_like;

/// A piece of the condition: trusted SQL text (column names, operators), or a value that
/// is sent as a bind parameter.
#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Text(String),
    Number(f64),
    Integer(i64),
    /// `None`: the database's own date.
    Today(Option<NaiveDate>),
    Day(NaiveDate),
    Json(Value),
    Texts(Vec<String>),
    Integers(Vec<i64>),
    Flag(bool),
}

/// A compiled filter: a boolean SQL expression over `contacts`.
#[derive(Debug, Clone, Default)]
pub struct SqlCondition {
    parts: Vec<Part>,
}

impl SqlCondition {
    fn sql(mut self, text: &str) -> Self {
        self.parts.push(Part::Sql(text.to_owned()));
        self
    }

    fn value(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }

    fn append(mut self, other: SqlCondition) -> Self {
        self.parts.extend(other.parts);
        self
    }

    fn of(text: &str) -> Self {
        Self::default().sql(text)
    }

    /// Matches every contact.
    pub fn always() -> Self {
        Self::of("TRUE")
    }

    /// Matches the contacts any of `conditions` matches.
    pub fn any(conditions: Vec<SqlCondition>) -> Self {
        let mut any = Self::of("(FALSE");
        for condition in conditions {
            any = any.sql(" OR ").append(condition);
        }
        any.sql(")")
    }

    /// Matches the contacts all of `conditions` match.
    pub fn all(conditions: Vec<SqlCondition>) -> Self {
        let mut all = Self::of("(TRUE");
        for condition in conditions {
            all = all.sql(" AND ").append(condition);
        }
        all.sql(")")
    }

    /// Not a condition but an integer: the 1-based position of the first of `conditions`
    /// a contact matches, 0 when it matches none.
    pub fn when_first(conditions: Vec<SqlCondition>) -> Self {
        let mut case = Self::of("(CASE");
        for (index, condition) in conditions.into_iter().enumerate() {
            case = case
                .sql(" WHEN ")
                .append(condition)
                .sql(&format!(" THEN {}", index + 1));
        }
        case.sql(" ELSE 0 END)")
    }

    /// Matches the contacts this does not.
    pub fn negated(self) -> Self {
        negate(self)
    }

    /// Contacts whose nullable `column` (a trusted column name) has a value.
    pub fn column_is_set(column: &str) -> Self {
        Self::of(column).sql(" IS NOT NULL")
    }

    /// Contacts whose boolean `column` (a trusted column name) is true.
    pub fn column_is_true(column: &str) -> Self {
        Self::of(column)
    }

    /// Contacts that are members of one of these static segments, probed per contact
    /// through the (tenant_id, contact_id) index: for conditions evaluated row by row.
    pub fn static_member_of(tenant_id: i64, segment_ids: Vec<i64>) -> Self {
        Self::of("EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = ")
            .value(Part::Integer(tenant_id))
            .sql(" AND m.contact_id = contacts.id AND m.segment_id = ANY(")
            .value(Part::Integers(segment_ids))
            .sql("))")
    }

    /// Contacts that are members of one of the tenant's static segments of `channel`.
    pub fn static_member_on_channel(tenant_id: i64, channel: &str) -> Self {
        Self::of("EXISTS (SELECT 1 FROM segment_members m JOIN segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id WHERE m.tenant_id = ")
            .value(Part::Integer(tenant_id))
            .sql(" AND m.contact_id = contacts.id AND s.channel = ")
            .value(Part::Text(channel.to_owned()))
            .sql(")")
    }
}

impl Expression for SqlCondition {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for SqlCondition {}

impl<QS> diesel::SelectableExpression<QS> for SqlCondition {}

impl ValidGrouping<()> for SqlCondition {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for SqlCondition {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for SqlCondition {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(text) => out.push_sql(text),
                Part::Text(value) => out.push_bind_param::<Text, _>(value)?,
                Part::Number(value) => out.push_bind_param::<Double, _>(value)?,
                Part::Integer(value) => out.push_bind_param::<BigInt, _>(value)?,
                Part::Today(value) => {
                    out.push_sql("COALESCE(");
                    out.push_bind_param::<Nullable<Date>, _>(value)?;
                    out.push_sql(", (now() AT TIME ZONE 'UTC')::date)");
                }
                Part::Day(value) => out.push_bind_param::<Date, _>(value)?,
                Part::Json(value) => out.push_bind_param::<Jsonb, _>(value)?,
                Part::Texts(values) => out.push_bind_param::<Array<Text>, _>(values)?,
                Part::Integers(values) => out.push_bind_param::<Array<BigInt>, _>(values)?,
                Part::Flag(value) => out.push_bind_param::<Bool, _>(value)?,
            }
        }
        Ok(())
    }
}

/// A whole statement built from trusted SQL text and bound conditions and values, whose
/// rows have the SQL type `Row`: for queries Diesel's DSL cannot shape, such as a join to
/// a `UNION` subquery.
pub struct Statement<Row> {
    body: SqlCondition,
    row: PhantomData<Row>,
}

impl<Row> Statement<Row> {
    /// Starts with trusted SQL text.
    pub fn new(text: &str) -> Self {
        Self {
            body: SqlCondition::of(text),
            row: PhantomData,
        }
    }

    /// Appends trusted SQL text.
    pub fn sql(mut self, text: &str) -> Self {
        self.body = self.body.sql(text);
        self
    }

    pub fn condition(mut self, condition: SqlCondition) -> Self {
        self.body = self.body.append(condition);
        self
    }

    /// Appends another statement's text and values, as a subquery.
    pub fn statement<Other>(mut self, other: Statement<Other>) -> Self {
        self.body = self.body.append(other.body);
        self
    }

    pub fn integer(mut self, value: i64) -> Self {
        self.body = self.body.value(Part::Integer(value));
        self
    }

    pub fn integers(mut self, values: Vec<i64>) -> Self {
        self.body = self.body.value(Part::Integers(values));
        self
    }
}

impl<Row> QueryId for Statement<Row> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Row> QueryFragment<Pg> for Statement<Row> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.body.walk_ast(out)
    }
}

impl<Row> Query for Statement<Row> {
    type SqlType = Row;
}

impl<Row> RunQueryDsl<PgConnection> for Statement<Row> {}

/// Compiles filters for one tenant.
pub struct Compiler {
    pub tenant_id: i64,
    /// `None`: relative dates use the database's current date (UTC). Tests fix a day.
    pub today: Option<NaiveDate>,
}

impl Compiler {
    pub fn compile(&self, node: &Node) -> SqlCondition {
        match node {
            Node::All(nodes) => self.join(nodes, " AND ", "TRUE"),
            Node::Any(nodes) => self.join(nodes, " OR ", "FALSE"),
            Node::Not(inner) => SqlCondition::of("(NOT ")
                .append(self.compile(inner))
                .sql(")"),
            Node::Condition(condition) => self.condition(condition),
        }
    }

    fn join(&self, nodes: &[Node], joiner: &str, empty: &str) -> SqlCondition {
        if nodes.is_empty() {
            return SqlCondition::of(empty);
        }
        let mut condition = SqlCondition::of("(");
        for (index, node) in nodes.iter().enumerate() {
            if index > 0 {
                condition = condition.sql(joiner);
            }
            condition = condition.append(self.compile(node));
        }
        condition.sql(")")
    }

    fn condition(&self, condition: &Condition) -> SqlCondition {
        let test = &condition.test;
        match &condition.field {
            Field::Attribute {
                key, value_type, ..
            } => self.attribute(key, *value_type, test),
            Field::Text(column) => text(text_column(*column), test),
            Field::Flag(column) => flag(*column, test),
            Field::CreatedAt => self.date("(contacts.created_at AT TIME ZONE 'UTC')::date", test),
            Field::Tags => tags(test),
            Field::Segment => match test {
                Test::InSegment(segment) => self.membership(segment),
                Test::NotInSegment(segment) => negate(self.membership(segment)),
                other => unreachable!("segment membership has no {other:?}"),
            },
        }
    }

    /// A static segment's members are rows; a dynamic one's are its own filter.
    fn membership(&self, segment: &SegmentRef) -> SqlCondition {
        match &segment.filter {
            Some(filter) => self.compile(filter),
            None => {
                SqlCondition::of("EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = ")
                    .value(Part::Integer(self.tenant_id))
                    .sql(" AND m.segment_id = ")
                    .value(Part::Integer(segment.id))
                    .sql(" AND m.contact_id = contacts.id)")
            }
        }
    }

    fn attribute(&self, key: &str, value_type: AttributeType, test: &Test) -> SqlCondition {
        let contains = |value: Value| {
            SqlCondition::of("contacts.attributes @> ").value(Part::Json(json!({ key: value })))
        };
        let any_contains = |values: Vec<Value>| {
            let mut condition = SqlCondition::of("(FALSE");
            for value in values {
                condition = condition.sql(" OR ").append(contains(value));
            }
            condition.sql(")")
        };
        let present =
            || SqlCondition::of("contacts.attributes ? ").value(Part::Text(key.to_owned()));
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
            (AttributeType::Date, test) => self.date(&typed_attribute(key, "string", "date"), test),
            (_, test) => text(&typed_attribute(key, "string", "text"), test),
        }
    }

    fn date(&self, value: &str, test: &Test) -> SqlCondition {
        let today = || Part::Today(self.today);
        let compare = |operator: &str, day: NaiveDate| {
            coalesce(SqlCondition::of(value).sql(operator).value(Part::Day(day)))
        };
        let within = |days: i64, past: bool| {
            let range = SqlCondition::of(value).sql(" BETWEEN ");
            let range = if past {
                range
                    .value(today())
                    .sql(" - ")
                    .value(Part::Integer(days))
                    .sql("::int AND ")
                    .value(today())
            } else {
                range
                    .value(today())
                    .sql(" AND ")
                    .value(today())
                    .sql(" + ")
                    .value(Part::Integer(days))
                    .sql("::int")
            };
            coalesce(range)
        };
        match test {
            Test::Exists => SqlCondition::of(value).sql(" IS NOT NULL"),
            Test::NotExists => SqlCondition::of(value).sql(" IS NULL"),
            Test::DateEq(day) => compare(" = ", *day),
            Test::Before(day) => compare(" < ", *day),
            Test::After(day) => compare(" > ", *day),
            Test::DateBetween(low, high) => coalesce(
                SqlCondition::of(value)
                    .sql(" BETWEEN ")
                    .value(Part::Day(*low))
                    .sql(" AND ")
                    .value(Part::Day(*high)),
            ),
            Test::InLastDays(days) => within(*days, true),
            Test::NotInLastDays(days) => negate(within(*days, true)),
            Test::InNextDays(days) => within(*days, false),
            Test::AnniversaryThisMonth => coalesce(
                SqlCondition::of("EXTRACT(MONTH FROM ")
                    .sql(value)
                    .sql(") = EXTRACT(MONTH FROM ")
                    .value(today())
                    .sql(")"),
            ),
            // In a year without 29 February, those born on it celebrate on the 28th.
            Test::AnniversaryToday => coalesce(
                SqlCondition::of("(to_char(")
                    .sql(value)
                    .sql(", 'MM-DD') = to_char(")
                    .value(today())
                    .sql(", 'MM-DD') OR (to_char(")
                    .sql(value)
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

fn negate(condition: SqlCondition) -> SqlCondition {
    SqlCondition::of("(NOT ").append(condition).sql(")")
}

/// NULL (a missing value) counts as not matching.
fn coalesce(condition: SqlCondition) -> SqlCondition {
    SqlCondition::of("COALESCE(")
        .append(condition)
        .sql(", FALSE)")
}

/// Comparisons of a text expression that may be NULL. `contains` and `starts_with` ignore
/// case and take `%` and `_` literally.
fn text(value: &str, test: &Test) -> SqlCondition {
    let compare =
        |operator: &str, part: Part| coalesce(SqlCondition::of(value).sql(operator).value(part));
    let like = |pattern: String| compare(" ILIKE ", Part::Text(pattern));
    match test {
        Test::Exists => SqlCondition::of(value).sql(" IS NOT NULL"),
        Test::NotExists => SqlCondition::of(value).sql(" IS NULL"),
        Test::TextEq(v) => compare(" = ", Part::Text(v.clone())),
        Test::TextNeq(v) => negate(compare(" = ", Part::Text(v.clone()))),
        Test::TextIn(values) => one_of(value, values),
        Test::TextNotIn(values) => negate(one_of(value, values)),
        Test::Contains(v) => like(format!("%{}%", escape_like(v))),
        Test::NotContains(v) => negate(like(format!("%{}%", escape_like(v)))),
        Test::StartsWith(v) => like(format!("{}%", escape_like(v))),
        other => unreachable!("text has no {other:?}"),
    }
}

fn one_of(value: &str, values: &[String]) -> SqlCondition {
    coalesce(
        SqlCondition::of(value)
            .sql(" = ANY(")
            .value(Part::Texts(values.to_vec()))
            .sql(")"),
    )
}

fn number(value: &str, test: &Test) -> SqlCondition {
    let compare = |operator: &str, number: f64| {
        coalesce(
            SqlCondition::of(value)
                .sql(operator)
                .value(Part::Number(number)),
        )
    };
    match test {
        Test::Exists => SqlCondition::of(value).sql(" IS NOT NULL"),
        Test::NotExists => SqlCondition::of(value).sql(" IS NULL"),
        Test::Gt(v) => compare(" > ", *v),
        Test::Gte(v) => compare(" >= ", *v),
        Test::Lt(v) => compare(" < ", *v),
        Test::Lte(v) => compare(" <= ", *v),
        Test::NumberBetween(low, high) => coalesce(
            SqlCondition::of(value)
                .sql(" BETWEEN ")
                .value(Part::Number(*low))
                .sql(" AND ")
                .value(Part::Number(*high)),
        ),
        other => unreachable!("numbers have no {other:?}"),
    }
}

fn flag(column: FlagColumn, test: &Test) -> SqlCondition {
    let name = match column {
        FlagColumn::OptedOut => "contacts.opted_out",
        FlagColumn::PrivacyConsent => "contacts.privacy_consent",
    };
    match test {
        Test::BoolEq(value) => SqlCondition::of(name).sql(" = ").value(Part::Flag(*value)),
        Test::Exists => SqlCondition::of("TRUE"),
        Test::NotExists => SqlCondition::of("FALSE"),
        other => unreachable!("flags have no {other:?}"),
    }
}

fn tags(test: &Test) -> SqlCondition {
    let tags = |operator: &str, values: Vec<String>| {
        SqlCondition::of("contacts.tags")
            .sql(operator)
            .value(Part::Texts(values))
    };
    match test {
        Test::TagContains(tag) => tags(" @> ", vec![tag.clone()]),
        Test::TagNotContains(tag) => negate(tags(" @> ", vec![tag.clone()])),
        Test::TagsContainAll(values) => tags(" @> ", values.clone()),
        Test::TagsContainAny(values) => tags(" && ", values.clone()),
        Test::TagsEmpty => SqlCondition::of("cardinality(contacts.tags) = 0"),
        other => unreachable!("tags have no {other:?}"),
    }
}
