//! Endpoints: the distinct (contact, channel) pairs over all of a tenant's segments,
//! static and dynamic, which `endpoint_limit` caps.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::sql::{Bound, Condition as Sql};
use crate::core::types::Channel;

/// The contacts that hold an endpoint on `channel`: members of one of the tenant's
/// segments of the channel, but `except` (the segment being edited).
pub fn holders(tenant_id: i64, channel: Channel, except: Option<i64>) -> Sql {
    Sql::of(
        "EXISTS (SELECT 1 FROM segment_members m JOIN segments s \
         ON s.tenant_id = m.tenant_id AND s.id = m.segment_id WHERE m.tenant_id = ",
    )
    .value(Bound::Integer(tenant_id))
    .sql(" AND m.contact_id = contacts.id AND s.channel = ")
    .value(Bound::Text(channel.as_str().to_owned()))
    .sql(" AND s.id <> ")
    .value(Bound::Integer(except.unwrap_or(0)))
    .sql(")")
}

#[derive(QueryableByName)]
struct Used {
    #[diesel(sql_type = BigInt)]
    used: i64,
}

/// Endpoints the tenant holds now: distinct (contact, channel) pairs over its members.
pub fn used(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<i64> {
    diesel::sql_query(
        "SELECT count(*) AS used FROM (SELECT DISTINCT m.contact_id, s.channel \
         FROM segment_members m JOIN segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id \
         WHERE m.tenant_id = $1 AND s.tenant_id = $1) AS endpoints",
    )
    .bind::<BigInt, _>(tenant_id)
    .get_result::<Used>(conn)
    .map(|row| row.used)
}
