//! Attribute definitions.

use chrono::{DateTime, Utc};
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Text};

use super::schema::{attribute_definitions, attribute_versions};
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

/// The tenant's definitions as JSON text (see [`parse_carried`]), a column: one
/// statement reads them with their version.
fn carried(tenant_id: i64) -> Carried {
    Carried { tenant_id }
}

/// See [`carried`]. Its own expression rather than an `sql()` literal, which Diesel
/// never keeps prepared (the statement would be planned at every call).
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

/// The definitions [`carried`] wrote.
fn parse_carried(text: &str) -> QueryResult<Vec<Definition>> {
    let rows: Vec<(String, String, String)> = serde_json::from_str(text)
        .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))?;
    Ok(rows
        .into_iter()
        .map(|(key, label, value_type)| definition(key, label, &value_type))
        .collect())
}

/// The version of the tenant's definitions (see the `attribute_versions` migration), as
/// a column another statement can carry: `None` for a tenant whose definitions never
/// changed, the same as version 0.
#[diesel::dsl::auto_type]
pub fn version(tenant_id: i64) -> _ {
    attribute_versions::table
        .filter(attribute_versions::tenant_id.eq(tenant_id))
        .select(attribute_versions::version)
        .single_value()
}

/// The tenant's definitions with their version, read in one statement (one snapshot).
pub fn versioned_definitions(
    conn: &mut PgConnection,
    tenant_id: i64,
) -> QueryResult<(i64, Vec<Definition>)> {
    let (version, carried): (Option<i64>, String) =
        diesel::select((version(tenant_id), carried(tenant_id))).get_result(conn)?;
    Ok((version.unwrap_or_default(), parse_carried(&carried)?))
}

/// A new version of the tenant's definitions: part of every transaction that changes
/// them. (A deletion alone could not mislead a cached copy today, since no stored filter
/// names a deleted attribute; it bumps too, so that a version always names one set.)
fn bump_version(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<()> {
    diesel::insert_into(attribute_versions::table)
        .values((
            attribute_versions::tenant_id.eq(tenant_id),
            attribute_versions::version.eq(1),
        ))
        .on_conflict(attribute_versions::tenant_id)
        .do_update()
        .set(attribute_versions::version.eq(attribute_versions::version + 1))
        .execute(conn)
        .map(drop)
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
    let inserted = diesel::insert_into(attribute_definitions::table)
        .values((
            attribute_definitions::tenant_id.eq(tenant_id),
            attribute_definitions::key.eq(key),
            attribute_definitions::label.eq(label),
            attribute_definitions::value_type.eq(value_type.as_str()),
        ))
        .on_conflict_do_nothing()
        .returning(DefinitionRow::as_returning())
        .get_result(conn)
        .optional()?;
    if inserted.is_some() {
        bump_version(conn, tenant_id)?;
    }
    Ok(inserted)
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
        bump_version(conn, tenant_id)?;
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
        let read = parse_carried(r#"[["city", "City", "text"], ["score", "Score", "number"]]"#)
            .expect("carried JSON");
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
        assert!(parse_carried("[[\"city\", \"City\"]]").is_err());
    }
}
