//! SQL assembled from trusted text and bound values, for the statements Diesel's DSL
//! cannot shape (filters compiled from a tree, joins to a `UNION`, cursors). Values are
//! always bind parameters; only text written in this crate is ever spliced.

use std::marker::PhantomData;

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Date, Double, Jsonb, Text};
use diesel::{AppearsOnTable, Connection, Expression, PgConnection, QueryResult, RunQueryDsl};

/// A value sent as a bind parameter.
#[derive(Debug, Clone)]
pub enum Bound {
    Text(String),
    Number(f64),
    Integer(i64),
    Day(NaiveDate),
    Json(serde_json::Value),
    Texts(Vec<String>),
    Integers(Vec<i64>),
    Flag(bool),
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Value(Bound),
}

/// A boolean SQL expression (over `contacts`, where a filter made it), usable in
/// Diesel's `.filter()` and inside [`Statement`]s.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    parts: Vec<Part>,
}

impl Condition {
    /// Starts with trusted SQL text.
    pub fn of(text: &str) -> Self {
        Self::default().sql(text)
    }

    /// Appends trusted SQL text.
    pub fn sql(mut self, text: &str) -> Self {
        self.parts.push(Part::Sql(text.to_owned()));
        self
    }

    /// Appends a bound value.
    pub fn value(mut self, value: Bound) -> Self {
        self.parts.push(Part::Value(value));
        self
    }

    pub fn append(mut self, other: Condition) -> Self {
        self.parts.extend(other.parts);
        self
    }

    /// Matches every row.
    pub fn always() -> Self {
        Self::of("TRUE")
    }

    /// Matches the rows any of `conditions` matches.
    pub fn any(conditions: Vec<Condition>) -> Self {
        let mut any = Self::of("(FALSE");
        for condition in conditions {
            any = any.sql(" OR ").append(condition);
        }
        any.sql(")")
    }

    /// Matches the rows all of `conditions` match.
    pub fn all(conditions: Vec<Condition>) -> Self {
        let mut all = Self::of("(TRUE");
        for condition in conditions {
            all = all.sql(" AND ").append(condition);
        }
        all.sql(")")
    }

    /// Not a condition but an integer: the 1-based position of the first of `conditions`
    /// a row matches, 0 when it matches none.
    pub fn when_first(conditions: Vec<Condition>) -> Self {
        let mut case = Self::of("(CASE");
        for (index, condition) in conditions.into_iter().enumerate() {
            case = case
                .sql(" WHEN ")
                .append(condition)
                .sql(&format!(" THEN {}", index + 1));
        }
        case.sql(" ELSE 0 END)")
    }

    /// Matches the rows this does not (never NULL: conditions here are TRUE or FALSE).
    pub fn negated(self) -> Self {
        Self::of("(NOT ").append(self).sql(")")
    }

    /// NULL (a missing value) counts as not matching.
    pub fn or_false(self) -> Self {
        Self::of("COALESCE(").append(self).sql(", FALSE)")
    }

    /// Rows whose nullable `column` (a trusted column name) has a value.
    pub fn column_is_set(column: &str) -> Self {
        Self::of(column).sql(" IS NOT NULL")
    }

    /// Rows whose boolean `column` (a trusted column name) is true.
    pub fn column_is_true(column: &str) -> Self {
        Self::of(column)
    }

    /// How many bind parameters the condition sends.
    pub fn binds(&self) -> usize {
        self.parts
            .iter()
            .filter(|part| matches!(part, Part::Value(_)))
            .count()
    }

    /// Rows whose `column` (a trusted column name) equals one of `ids`.
    pub fn one_of(column: &str, ids: Vec<i64>) -> Self {
        Self::of(column)
            .sql(" = ANY(")
            .value(Bound::Integers(ids))
            .sql(")")
    }

    fn binds_a_list(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Value(Bound::Texts(_) | Bound::Integers(_))))
    }

    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // A statement binding a list of values is planned for those values at every
        // execution, never kept as a prepared statement: a kept one is planned once for
        // any values after a few executions, and the list then becomes a filter searched
        // from end to end for every row (20,000 ids against a range of 20,000 contacts:
        // 0.4-0.8 s instead of 45 ms), or a 1,000-id batch is read as the whole tenant.
        if self.binds_a_list() {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Sql(text) => out.push_sql(text),
                Part::Value(Bound::Text(value)) => out.push_bind_param::<Text, _>(value)?,
                Part::Value(Bound::Number(value)) => out.push_bind_param::<Double, _>(value)?,
                Part::Value(Bound::Integer(value)) => out.push_bind_param::<BigInt, _>(value)?,
                Part::Value(Bound::Day(value)) => out.push_bind_param::<Date, _>(value)?,
                Part::Value(Bound::Json(value)) => out.push_bind_param::<Jsonb, _>(value)?,
                Part::Value(Bound::Texts(values)) => {
                    out.push_bind_param::<Array<Text>, _>(values)?
                }
                Part::Value(Bound::Integers(values)) => {
                    out.push_bind_param::<Array<BigInt>, _>(values)?
                }
                Part::Value(Bound::Flag(value)) => out.push_bind_param::<Bool, _>(value)?,
            }
        }
        Ok(())
    }
}

impl Expression for Condition {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Condition {}

impl<QS> diesel::SelectableExpression<QS> for Condition {}

impl ValidGrouping<()> for Condition {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for Condition {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Condition {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(&mut out)
    }
}

/// A whole statement of trusted SQL text and bound values, whose rows have the SQL type
/// `Row`.
pub struct Statement<Row> {
    body: Condition,
    row: PhantomData<Row>,
}

impl<Row> Statement<Row> {
    /// Starts with trusted SQL text.
    pub fn new(text: &str) -> Self {
        Self {
            body: Condition::of(text),
            row: PhantomData,
        }
    }

    /// Appends trusted SQL text.
    pub fn sql(mut self, text: &str) -> Self {
        self.body = self.body.sql(text);
        self
    }

    pub fn condition(mut self, condition: Condition) -> Self {
        self.body = self.body.append(condition);
        self
    }

    /// Appends another statement's text and values, as a subquery.
    pub fn statement<Other>(mut self, other: Statement<Other>) -> Self {
        self.body = self.body.append(other.body);
        self
    }

    pub fn integer(mut self, value: i64) -> Self {
        self.body = self.body.value(Bound::Integer(value));
        self
    }

    pub fn integers(mut self, values: Vec<i64>) -> Self {
        self.body = self.body.value(Bound::Integers(values));
        self
    }

    pub fn day(mut self, value: chrono::NaiveDate) -> Self {
        self.body = self.body.value(Bound::Day(value));
        self
    }
}

impl<Row> QueryId for Statement<Row> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Row> QueryFragment<Pg> for Statement<Row> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.body.walk(&mut out)
    }
}

impl<Row> Query for Statement<Row> {
    type SqlType = Row;
}

impl<Row> RunQueryDsl<PgConnection> for Statement<Row> {}

/// A statement around a query Diesel built: trusted text and values, the query's own
/// text and values, then more; for a Diesel query used as a `WITH` item.
pub struct Around<Query, Row> {
    head: Condition,
    query: Query,
    tail: Condition,
    row: PhantomData<Row>,
}

impl<Row> Statement<Row> {
    /// This statement's text and values, then `query`'s, then `tail`'s.
    pub fn around<Inner, Other>(self, query: Inner, tail: Statement<Other>) -> Around<Inner, Row> {
        Around {
            head: self.body,
            query,
            tail: tail.body,
            row: PhantomData,
        }
    }
}

impl<Inner, Row> QueryId for Around<Inner, Row> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Inner: QueryFragment<Pg>, Row> QueryFragment<Pg> for Around<Inner, Row> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.head.walk(&mut out)?;
        self.query.walk_ast(out.reborrow())?;
        self.tail.walk(&mut out)
    }
}

impl<Inner, Row> Query for Around<Inner, Row> {
    type SqlType = Row;
}

impl<Inner, Row> RunQueryDsl<PgConnection> for Around<Inner, Row> {}

/// `%` and `_` in user search text match themselves, not any text.
pub fn like_pattern(search: &str) -> String {
    format!("%{}%", escape_like(search))
}

/// `text` with LIKE's wildcards and escape character taken literally.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Runs `work` with the planner's nested loops off: for set-based statements whose
/// every table access is bounded by its own index condition, so that whatever the
/// statistics say (a partition just filled, members just written), rows are matched with
/// hashes and never by rescanning one side for each row of the other.
pub(crate) fn hashed<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    diesel::sql_query("SET LOCAL enable_nestloop = off").execute(conn)?;
    let outcome = work(conn)?;
    diesel::sql_query("SET LOCAL enable_nestloop TO DEFAULT").execute(conn)?;
    Ok(outcome)
}

/// Runs `work` in a transaction of its own with nested loops and hash joins off, for
/// statements whose every input is bounded by its own index condition and read in the
/// order of the join's key: the inputs are merged, each read once and no further than
/// the statement's limit, whatever the statistics say. The settings end with the
/// transaction.
pub(crate) fn merged_transaction<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    conn.transaction(|conn| {
        conn.batch_execute("SET LOCAL enable_nestloop = off; SET LOCAL enable_hashjoin = off")?;
        work(conn)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(super::like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
