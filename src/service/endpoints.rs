//! The endpoint limit, applied the same way by every write that adds endpoints:
//! membership writes and dynamic filters.

use chrono::NaiveDate;
use diesel::PgConnection;

use super::filters;
use crate::core::eligibility::Requirements;
use crate::core::error::Error;
use crate::core::filter::Node;
use crate::core::tenant::{check_endpoint_limit, Tenant};
use crate::core::types::Channel;
use crate::db::members::{self, ContactSource};
use crate::db::sql::Condition as Sql;
use crate::db::{contacts, endpoints};

/// Endpoints the tenant holds now.
pub fn used(conn: &mut PgConnection, tenant_id: i64) -> Result<i64, Error> {
    Ok(endpoints::used(conn, tenant_id)?)
}

/// Refuses saving a dynamic segment (new, or `segment_id` with a new filter) whose filter
/// would take the tenant past its endpoint limit. Call with the tenant locked.
pub fn check_dynamic_filter(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    channel: Channel,
    segment_id: Option<i64>,
    filter: &Node,
) -> Result<(), Error> {
    let Some(limit) = tenant.endpoint_limit else {
        return Ok(());
    };
    // Contacts the filter matches that hold no endpoint on the channel but through
    // this segment itself.
    let new_holders = Sql::all(vec![
        filters::compile(tenant.id, today, filter),
        endpoints::holders(tenant.id, channel, segment_id).negated(),
    ]);
    let after = contacts::count_matching(conn, tenant.id, new_holders)?;
    let now = contacts::count_matching(
        conn,
        tenant.id,
        endpoints::holders(tenant.id, channel, None),
    )?;
    let without_segment = contacts::count_matching(
        conn,
        tenant.id,
        endpoints::holders(tenant.id, channel, segment_id),
    )?;
    let requested = without_segment + after - now;
    if requested <= 0 {
        return Ok(());
    }
    check_endpoint_limit(used(conn, tenant.id)?, requested, limit)
}

/// Refuses a membership write whole if the endpoints it adds would take the tenant past
/// its limit. `channels` are the channels written to, each with its rule. Call with the
/// tenant locked.
pub fn check_members(
    conn: &mut PgConnection,
    tenant: &Tenant,
    channels: &[(Channel, Requirements)],
    source: ContactSource,
) -> Result<(), Error> {
    let Some(limit) = tenant.endpoint_limit else {
        return Ok(());
    };
    let mut requested = 0;
    for (channel, requirements) in channels {
        let holders = endpoints::holders(tenant.id, *channel, None);
        requested += members::new_endpoints(conn, source, *requirements, holders)?;
    }
    if requested == 0 {
        return Ok(());
    }
    check_endpoint_limit(used(conn, tenant.id)?, requested, limit)
}
