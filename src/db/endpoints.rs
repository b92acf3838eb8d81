//! Endpoints: the distinct (contact, channel) pairs over all of a tenant's segments,
//! static and dynamic, which `endpoint_limit` caps.

use diesel::prelude::*;
use serde_json::Value;

use super::members::member_on_channel;
use super::schema::segments;
use super::sql::Condition as Sql;
use crate::core::types::{Channel, SegmentKind};

/// The dynamic segments of `channel` with their filters, by id.
pub fn dynamic_filters(
    conn: &mut PgConnection,
    tenant_id: i64,
    channel: Channel,
) -> QueryResult<Vec<(i64, Option<Value>)>> {
    segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::kind.eq(SegmentKind::Dynamic.as_str()))
        .filter(segments::channel.eq(channel.as_str()))
        .select((segments::id, segments::filter))
        .load(conn)
}

/// The contacts that hold an endpoint on `channel`: members of a static segment of the
/// channel, or matched by one of the `dynamic` filters of its dynamic segments.
pub fn holders(tenant_id: i64, channel: Channel, dynamic: Vec<Sql>) -> Sql {
    let mut conditions = vec![member_on_channel(tenant_id, channel)];
    conditions.extend(dynamic);
    Sql::any(conditions)
}
