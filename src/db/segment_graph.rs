//! What saved filters name: the segments as the bounds over references see them, and
//! the facts each filter records (protecting what it names from deletion).

use diesel::prelude::*;

use super::schema::{filter_attributes, segment_references, segments};
use crate::core::filter::graph::{Derived, Vertex};

/// Every segment of the tenant as the bounds over references see it.
pub fn graph(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<Vertex>> {
    let rows: Vec<(i64, String, i16, bool)> = segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .select((
            segments::id,
            segments::name,
            segments::conditions,
            segments::dated,
        ))
        .load(conn)?;
    let references: Vec<(i64, i64)> = segment_references::table
        .filter(segment_references::tenant_id.eq(tenant_id))
        .select((
            segment_references::segment_id,
            segment_references::referenced_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, conditions, dated)| Vertex {
            id,
            name,
            conditions: usize::try_from(conditions).unwrap_or_default(),
            references: references
                .iter()
                .filter(|(from, _)| *from == id)
                .map(|(_, to)| *to)
                .collect(),
            date_relative: dated,
        })
        .collect())
}

/// What a saved filter names and how it counts against the bounds.
pub struct FilterFacts<'a> {
    pub conditions: usize,
    pub dated: bool,
    pub references: &'a [i64],
    pub attributes: &'a [String],
}

/// Records what the segment's filter names (protecting those segments and attributes
/// from deletion) and its own facts.
pub fn save_filter_facts(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    facts: &FilterFacts<'_>,
) -> QueryResult<()> {
    diesel::update(segments::table.find((tenant_id, id)))
        .set((
            segments::conditions.eq(i16::try_from(facts.conditions).unwrap_or(i16::MAX)),
            segments::dated.eq(facts.dated),
        ))
        .execute(conn)?;
    diesel::delete(
        segment_references::table
            .filter(segment_references::tenant_id.eq(tenant_id))
            .filter(segment_references::segment_id.eq(id)),
    )
    .execute(conn)?;
    let references: Vec<_> = facts
        .references
        .iter()
        .map(|referenced| {
            (
                segment_references::tenant_id.eq(tenant_id),
                segment_references::segment_id.eq(id),
                segment_references::referenced_id.eq(*referenced),
            )
        })
        .collect();
    // Diesel sends an empty insert as `SELECT 1 FROM table WHERE 1=0`, which names no
    // tenant: on Citus, a read of every shard.
    if !references.is_empty() {
        diesel::insert_into(segment_references::table)
            .values(references)
            .execute(conn)?;
    }
    diesel::delete(
        filter_attributes::table
            .filter(filter_attributes::tenant_id.eq(tenant_id))
            .filter(filter_attributes::segment_id.eq(id)),
    )
    .execute(conn)?;
    let attributes: Vec<_> = facts
        .attributes
        .iter()
        .map(|key| {
            (
                filter_attributes::tenant_id.eq(tenant_id),
                filter_attributes::segment_id.eq(id),
                filter_attributes::attribute_key.eq(key),
            )
        })
        .collect();
    if !attributes.is_empty() {
        diesel::insert_into(filter_attributes::table)
            .values(attributes)
            .execute(conn)?;
    }
    Ok(())
}

/// Stores what the bounds derived for segments: their depth and date-relativity.
pub fn save_derived(
    conn: &mut PgConnection,
    tenant_id: i64,
    derived: &[Derived],
) -> QueryResult<()> {
    for facts in derived {
        diesel::update(segments::table.find((tenant_id, facts.id)))
            .set((
                segments::depth.eq(i16::try_from(facts.depth).unwrap_or(i16::MAX)),
                segments::date_relative.eq(facts.date_relative),
            ))
            .execute(conn)?;
    }
    Ok(())
}
