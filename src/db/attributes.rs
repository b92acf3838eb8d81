//! Attribute definitions.

use chrono::{DateTime, Utc};
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Text};

use super::schema::attribute_definitions;
use crate::core::attributes::Definition;
use crate::core::types::AttributeType;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attribute_definitions)]
pub struct DefinitionRow {
    pub key: String,
    pub label: String,
    pub value_type: String,
    pub created_at: DateTime<Utc>,
}

impl DefinitionRow {
    pub fn definition(&self) -> Definition {
        definition(self.key.clone(), self.label.clone(), &self.value_type)
    }
}

fn definition(key: String, label: String, value_type: &str) -> Definition {
    Definition {
        key,
        label,
        // The CHECK constraint allows only the four types.
        value_type: AttributeType::parse(value_type).unwrap_or(AttributeType::Text),
    }
}

/// The tenant's definitions with when each was made, ordered by key.
pub fn list(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<DefinitionRow>> {
    attribute_definitions::table
        .filter(attribute_definitions::tenant_id.eq(tenant_id))
        .order(attribute_definitions::key)
        .select(DefinitionRow::as_select())
        .load(conn)
}

/// The tenant's definitions as JSON text, a column another statement can carry where
/// its rows will need them (see [`parse_carried`]): an uncorrelated subquery, computed
/// once per statement, that saves a round trip costing the service as much CPU as the
/// statement itself. For a statement of one row: each row would carry a full copy.
pub fn carried(tenant_id: i64) -> Carried {
    Carried { tenant_id }
}

/// See [`carried`]. Its own expression rather than an `sql()` literal, which Diesel
/// never keeps prepared: planning the page's statement at every call cost more than the
/// round trip saved.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct Carried {
    tenant_id: i64,
}

impl Expression for Carried {
    type SqlType = Text;
}

impl<Source> AppearsOnTable<Source> for Carried {}

impl<Source> SelectableExpression<Source> for Carried {}

impl ValidGrouping<()> for Carried {
    type IsAggregate = is_aggregate::Never;
}

impl QueryFragment<Pg> for Carried {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "(SELECT coalesce(json_agg(json_build_array(d.key, d.label, d.type) ORDER BY d.key), '[]')::text \
             FROM attribute_definitions d WHERE d.tenant_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.tenant_id)?;
        out.push_sql(")");
        Ok(())
    }
}

/// The definitions [`carried`] wrote, if a row carried them.
pub fn parse_carried(text: Option<&str>) -> QueryResult<Option<Vec<Definition>>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let rows: Vec<(String, String, String)> = serde_json::from_str(text)
        .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))?;
    Ok(Some(
        rows.into_iter()
            .map(|(key, label, value_type)| definition(key, label, &value_type))
            .collect(),
    ))
}

/// The tenant's definitions, as value checks and filters read them.
pub fn definitions(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<Definition>> {
    Ok(list(conn, tenant_id)?
        .iter()
        .map(DefinitionRow::definition)
        .collect())
}

pub fn count(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<i64> {
    attribute_definitions::table
        .filter(attribute_definitions::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
}

/// `None` when the key is already defined.
pub fn insert(
    conn: &mut PgConnection,
    tenant_id: i64,
    key: &str,
    label: &str,
    value_type: AttributeType,
) -> QueryResult<Option<DefinitionRow>> {
    diesel::insert_into(attribute_definitions::table)
        .values((
            attribute_definitions::tenant_id.eq(tenant_id),
            attribute_definitions::key.eq(key),
            attribute_definitions::label.eq(label),
            attribute_definitions::value_type.eq(value_type.as_str()),
        ))
        .on_conflict_do_nothing()
        .returning(DefinitionRow::as_returning())
        .get_result(conn)
        .optional()
}

/// Deletes the definition and the values contacts hold for it (each such contact
/// recording `contact.updated`); false when not defined.
pub fn delete(conn: &mut PgConnection, tenant_id: i64, key: &str) -> QueryResult<bool> {
    let deleted = diesel::delete(
        attribute_definitions::table
            .filter(attribute_definitions::tenant_id.eq(tenant_id))
            .filter(attribute_definitions::key.eq(key)),
    )
    .execute(conn)?;
    if deleted > 0 {
        diesel::sql_query(format!(
            "WITH changed AS (UPDATE contacts SET attributes = attributes - $2, updated_at = now()
               WHERE tenant_id = $1 AND attributes ? $2 RETURNING id)
             INSERT INTO staged_events (tenant_id, type, contact_id)
             SELECT $1, '{updated}', id FROM changed",
            updated = crate::core::event::EventType::ContactUpdated.as_str()
        ))
        .bind::<BigInt, _>(tenant_id)
        .bind::<Text, _>(key)
        .execute(conn)?;
    }
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_definitions_read_back_with_their_types() {
        let read = parse_carried(Some(
            r#"[["city", "City", "text"], ["score", "Score", "number"]]"#,
        ))
        .expect("carried JSON")
        .expect("carried");
        assert_eq!(
            read,
            [
                Definition {
                    key: "city".into(),
                    label: "City".into(),
                    value_type: AttributeType::Text,
                },
                Definition {
                    key: "score".into(),
                    label: "Score".into(),
                    value_type: AttributeType::Number,
                },
            ]
        );
        assert!(parse_carried(Some("[[\"city\", \"City\"]]")).is_err());
        assert_eq!(parse_carried(None).expect("nothing carried"), None);
    }
}
