//! Attribute definitions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
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
        Definition {
            key: self.key.clone(),
            label: self.label.clone(),
            // The CHECK constraint allows only the four types.
            value_type: AttributeType::parse(&self.value_type).unwrap_or(AttributeType::Text),
        }
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
