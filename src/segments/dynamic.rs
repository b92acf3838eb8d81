//! Dynamic segments: their filters read against the tenant, compiled, and counted.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use serde_json::Value;

use super::queries;
use crate::attributes::{queries as attribute_queries, AttributeType};
use crate::db::schema::{contacts, segments};
use crate::error::ApiError;
use crate::filter::parse::{self, AttributeInfo, SegmentInfo};
use crate::filter::sql::{Compiler, SqlCondition};
use crate::filter::{summary, Node};

/// Parses a filter found at JSON path `path`; 422 naming every problem's path.
pub fn parse_filter(
    conn: &mut PgConnection,
    tenant_id: i64,
    filter: &Value,
    path: &str,
    own_id: Option<i64>,
) -> Result<Node, ApiError> {
    let attributes: Vec<AttributeInfo> = attribute_queries::list(conn, tenant_id)?
        .into_iter()
        .map(|row| AttributeInfo {
            value_type: AttributeType::from_db(&row.value_type),
            key: row.key,
            label: row.label,
        })
        .collect();
    let mut lookup_failed = None;
    let mut segment = |id: i64| match queries::get(conn, tenant_id, id).optional() {
        Ok(row) => row.map(|row| SegmentInfo {
            id: row.id,
            name: row.name,
            filter: row.filter,
        }),
        Err(error) => {
            lookup_failed = Some(error);
            None
        }
    };
    let mut context = parse::Context {
        attributes: &attributes,
        segment: &mut segment,
        own_id,
    };
    let parsed = parse::parse(filter, path, &mut context);
    if let Some(error) = lookup_failed {
        return Err(error.into());
    }
    parsed.map_err(ApiError::Validation)
}

/// The filter as a sentence; a stored filter that no longer reads (it cannot, while the
/// attributes and segments it names are protected) says so rather than failing the read.
pub fn summarize(
    conn: &mut PgConnection,
    tenant_id: i64,
    filter: Option<&Value>,
    own_id: i64,
) -> Result<String, ApiError> {
    let Some(filter) = filter else {
        return Ok(summary::NO_FILTERS.to_owned());
    };
    match parse_filter(conn, tenant_id, filter, "filter", Some(own_id)) {
        Ok(node) => Ok(summary::summarize(&node)),
        Err(ApiError::Validation(_)) => Ok("Invalid filter".to_owned()),
        Err(other) => Err(other),
    }
}

/// A dynamic segment's filter, compiled; `None` for a static segment.
pub fn condition_of(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment: &queries::SegmentRow,
) -> Result<Option<SqlCondition>, ApiError> {
    let Some(filter) = &segment.filter else {
        return Ok(None);
    };
    let node = parse_filter(conn, tenant_id, filter, "filter", Some(segment.id))?;
    Ok(Some(compile(tenant_id, &node)))
}

pub fn compile(tenant_id: i64, node: &Node) -> SqlCondition {
    Compiler {
        tenant_id,
        today: None,
    }
    .compile(node)
}

/// The tenant's contacts matching `condition`.
pub fn matching(
    tenant_id: i64,
    condition: SqlCondition,
) -> impl Fn() -> contacts::BoxedQuery<'static, Pg> {
    move || {
        contacts::table
            .filter(contacts::tenant_id.eq(tenant_id))
            .filter(condition.clone())
            .into_boxed()
    }
}

pub fn count(conn: &mut PgConnection, tenant_id: i64, node: &Node) -> QueryResult<i64> {
    matching(tenant_id, compile(tenant_id, node))()
        .count()
        .get_result(conn)
}

/// Counts the segment's members now and stores the count with its time.
pub fn refresh_count(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    node: &Node,
) -> QueryResult<(i64, DateTime<Utc>)> {
    let recipients = count(conn, tenant_id, node)?;
    diesel::update(segments::table.find((tenant_id, segment_id)))
        .set((
            segments::recipients.eq(recipients),
            segments::recipients_computed_at.eq(diesel::dsl::now),
        ))
        .returning((
            segments::recipients,
            segments::recipients_computed_at.assume_not_null(),
        ))
        .get_result(conn)
}

/// Recounts every dynamic segment (of every tenant) counted longer ago than `max_age`
/// seconds; returns how many were recounted.
pub fn refresh_stale(conn: &mut PgConnection, max_age_seconds: i64) -> Result<usize, ApiError> {
    let cutoff = Utc::now() - chrono::Duration::seconds(max_age_seconds);
    let stale: Vec<(i64, i64, Option<Value>)> = segments::table
        .filter(segments::kind.eq("dynamic"))
        .filter(
            segments::recipients_computed_at
                .is_null()
                .or(segments::recipients_computed_at.lt(cutoff)),
        )
        .select((segments::tenant_id, segments::id, segments::filter))
        .load(conn)?;
    let mut refreshed = 0;
    for (tenant_id, segment_id, filter) in stale {
        let Some(filter) = filter else { continue };
        match parse_filter(conn, tenant_id, &filter, "filter", Some(segment_id)) {
            Ok(node) => {
                refresh_count(conn, tenant_id, segment_id, &node)?;
                refreshed += 1;
            }
            Err(ApiError::Validation(errors)) => {
                tracing::warn!(segment_id, ?errors, "a stored filter no longer reads");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(refreshed)
}

/// The dynamic segments whose filters match the contact now.
pub fn containing(
    conn: &mut PgConnection,
    tenant_id: i64,
    contact_id: i64,
) -> Result<Vec<queries::SegmentRow>, ApiError> {
    let candidates: Vec<queries::SegmentRow> = segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::kind.eq("dynamic"))
        .order((segments::name, segments::id))
        .select(queries::SegmentRow::as_select())
        .load(conn)?;
    let mut matched = Vec::new();
    for segment in candidates {
        let Some(filter) = &segment.filter else {
            continue;
        };
        let node = match parse_filter(conn, tenant_id, filter, "filter", Some(segment.id)) {
            Ok(node) => node,
            Err(ApiError::Validation(_)) => continue,
            Err(other) => return Err(other),
        };
        let hits: i64 = matching(tenant_id, compile(tenant_id, &node))()
            .filter(contacts::id.eq(contact_id))
            .count()
            .get_result(conn)?;
        if hits > 0 {
            matched.push(segment);
        }
    }
    Ok(matched)
}
