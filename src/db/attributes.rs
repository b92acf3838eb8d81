//! Attribute definitions.

use chrono::{DateTime, Utc};
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};

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

/// A column for statements over `segments`: the definitions of the attributes the
/// row's filter names (as `filter_attributes` records them, which deletion protection
/// already relies on), as JSON text; NULL for a segment without a filter. Carried with
/// the rows (see [`parse_carried`]), it saves a round trip that cost the service as
/// much CPU as the segments' statement itself; each row carries what its own filter
/// names, so a page carries no more than its filters already name.
pub fn named_by_filter(tenant_id: i64) -> NamedByFilter {
    NamedByFilter { tenant_id }
}

/// See [`named_by_filter`]. Its own expression rather than an `sql()` literal, which
/// Diesel never keeps prepared: planning the page's statement at every call cost more
/// than the round trip saved.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct NamedByFilter {
    tenant_id: i64,
}

impl Expression for NamedByFilter {
    type SqlType = Nullable<Text>;
}

impl<Source> AppearsOnTable<Source> for NamedByFilter {}

impl<Source> SelectableExpression<Source> for NamedByFilter {}

impl ValidGrouping<()> for NamedByFilter {
    type IsAggregate = is_aggregate::Never;
}

impl QueryFragment<Pg> for NamedByFilter {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "CASE WHEN segments.filter IS NULL THEN NULL ELSE \
             (SELECT coalesce(json_agg(json_build_array(d.key, d.label, d.type)), '[]')::text \
              FROM filter_attributes f JOIN attribute_definitions d \
                ON d.tenant_id = f.tenant_id AND d.key = f.attribute_key \
              WHERE f.tenant_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.tenant_id)?;
        out.push_sql(" AND f.segment_id = segments.id) END");
        Ok(())
    }
}

/// The definitions the rows carried (see [`named_by_filter`]), each once, by key;
/// `None` when no row carried any (no row has a filter).
pub fn parse_carried<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> QueryResult<Option<Vec<Definition>>> {
    let mut definitions: Option<Vec<Definition>> = None;
    for text in texts {
        let rows: Vec<(String, String, String)> = serde_json::from_str(text)
            .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))?;
        definitions.get_or_insert_with(Vec::new).extend(
            rows.into_iter()
                .map(|(key, label, value_type)| definition(key, label, &value_type)),
        );
    }
    if let Some(definitions) = &mut definitions {
        definitions.sort_by(|a, b| a.key.cmp(&b.key));
        definitions.dedup_by(|a, b| a.key == b.key);
    }
    Ok(definitions)
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
    fn carried_definitions_read_back_with_their_types_each_once() {
        let read = parse_carried([
            r#"[["score", "Score", "number"], ["city", "City", "text"]]"#,
            r#"[["city", "City", "text"]]"#,
            "[]",
        ])
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
        assert!(parse_carried(["[[\"city\", \"City\"]]"]).is_err());
        assert_eq!(parse_carried([]).expect("nothing carried"), None);
    }
}
