//! The endpoint limit, applied the same way by every write that adds endpoints:
//! membership writes and dynamic filters.

use chrono::NaiveDate;
use diesel::PgConnection;

use super::filters::{self, FilterReader};
use crate::core::eligibility::Requirements;
use crate::core::error::Error;
use crate::core::filter::Node;
use crate::core::tenant::{check_endpoint_limit, Tenant};
use crate::core::types::Channel;
use crate::db::members::{self, ContactSource};
use crate::db::sql::Condition as Sql;
use crate::db::{contacts, endpoints};

/// The contacts that hold an endpoint on `channel`; `except` leaves one segment out (the
/// one being edited).
pub fn holders(
    conn: &mut PgConnection,
    tenant_id: i64,
    today: NaiveDate,
    channel: Channel,
    except: Option<i64>,
) -> Result<Sql, Error> {
    let mut dynamic = Vec::new();
    let mut reader = FilterReader::new(tenant_id);
    for (id, filter) in endpoints::dynamic_filters(conn, tenant_id, channel)? {
        if Some(id) == except {
            continue;
        }
        let Some(filter) = filter else { continue };
        match reader.parse(conn, &filter, "filter", Some(id)) {
            Ok(node) => dynamic.push(filters::compile(tenant_id, today, &node)),
            // A filter that no longer reads matches nobody until it is fixed.
            Err(Error::Validation(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(endpoints::holders(tenant_id, channel, dynamic))
}

/// Endpoints the tenant holds now.
pub fn used(conn: &mut PgConnection, tenant_id: i64, today: NaiveDate) -> Result<i64, Error> {
    let mut total = 0;
    for channel in Channel::ALL {
        let condition = holders(conn, tenant_id, today, channel, None)?;
        total += contacts::count_matching(conn, tenant_id, condition)?;
    }
    Ok(total)
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
    let others = holders(conn, tenant.id, today, channel, segment_id)?;
    let with_filter = Sql::any(vec![others, filters::compile(tenant.id, today, filter)]);
    let after = contacts::count_matching(conn, tenant.id, with_filter)?;
    let current = holders(conn, tenant.id, today, channel, None)?;
    let now = contacts::count_matching(conn, tenant.id, current)?;
    let requested = after - now;
    if requested <= 0 {
        return Ok(());
    }
    check_endpoint_limit(used(conn, tenant.id, today)?, requested, limit)
}

/// Refuses a membership write whole if the endpoints it adds would take the tenant past
/// its limit. `channels` are the channels written to, each with its rule. Call with the
/// tenant locked.
pub fn check_members(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    channels: &[(Channel, Requirements)],
    source: ContactSource,
) -> Result<(), Error> {
    let Some(limit) = tenant.endpoint_limit else {
        return Ok(());
    };
    let mut requested = 0;
    for (channel, requirements) in channels {
        let holders = holders(conn, tenant.id, today, *channel, None)?;
        requested += members::new_endpoints(conn, source, *requirements, holders)?;
    }
    if requested == 0 {
        return Ok(());
    }
    check_endpoint_limit(used(conn, tenant.id, today)?, requested, limit)
}
