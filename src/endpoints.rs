//! Endpoints: the distinct (contact, channel) pairs over all of a tenant's segments,
//! static and dynamic, which `endpoint_limit` caps.

use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::db::schema::{contacts, segments};
use crate::error::ApiError;
use crate::filter::sql::SqlCondition;
use crate::filter::Node;
use crate::segments::dynamic;
use crate::tenants::TenantRow;

pub const CHANNELS: [&str; 3] = ["whatsapp", "sms", "email"];

/// The contacts that hold an endpoint on `channel`: members of a static segment of the
/// channel, or matched by the filter of a dynamic one. `except` leaves one segment out
/// (the one being edited).
pub fn holders(
    conn: &mut PgConnection,
    tenant_id: i64,
    channel: &str,
    except: Option<i64>,
) -> Result<SqlCondition, ApiError> {
    let filters: Vec<(i64, Option<Value>)> = segments::table
        .filter(segments::tenant_id.eq(tenant_id))
        .filter(segments::kind.eq("dynamic"))
        .filter(segments::channel.eq(channel.to_owned()))
        .select((segments::id, segments::filter))
        .load(conn)?;
    let mut conditions = vec![SqlCondition::static_member_on_channel(tenant_id, channel)];
    for (id, filter) in filters {
        if Some(id) == except {
            continue;
        }
        let Some(filter) = filter else { continue };
        match dynamic::parse_filter(conn, tenant_id, &filter, "filter", Some(id)) {
            Ok(node) => conditions.push(dynamic::compile(tenant_id, &node)),
            // A filter that no longer reads matches nobody until it is fixed.
            Err(ApiError::Validation(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(SqlCondition::any(conditions))
}

/// Endpoints the tenant holds now.
pub fn used(conn: &mut PgConnection, tenant_id: i64) -> Result<i64, ApiError> {
    let mut total = 0;
    for channel in CHANNELS {
        let condition = holders(conn, tenant_id, channel, None)?;
        total += contacts::table
            .filter(contacts::tenant_id.eq(tenant_id))
            .filter(condition)
            .count()
            .get_result::<i64>(conn)?;
    }
    Ok(total)
}

fn count(
    conn: &mut PgConnection,
    tenant_id: i64,
    condition: SqlCondition,
) -> Result<i64, ApiError> {
    Ok(contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(condition)
        .count()
        .get_result(conn)?)
}

/// Refuses saving a dynamic segment (new, or `segment_id` with a new filter) whose filter
/// would take the tenant past its endpoint limit. Call with the tenant row locked.
pub fn check_dynamic_filter(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    channel: &str,
    segment_id: Option<i64>,
    filter: &Node,
) -> Result<(), ApiError> {
    let Some(limit) = tenant.endpoint_limit else {
        return Ok(());
    };
    let others = holders(conn, tenant.id, channel, segment_id)?;
    let with_filter = SqlCondition::any(vec![others, dynamic::compile(tenant.id, filter)]);
    let after = count(conn, tenant.id, with_filter)?;
    let current = holders(conn, tenant.id, channel, None)?;
    let now = count(conn, tenant.id, current)?;
    let requested = after - now;
    if requested <= 0 {
        return Ok(());
    }
    let used = used(conn, tenant.id)?;
    if used + requested <= limit {
        Ok(())
    } else {
        Err(limit_exceeded(used, limit, requested))
    }
}

/// 422 `endpoint_limit_exceeded`, with the figures a screen needs to explain it.
pub fn limit_exceeded(used: i64, limit: i64, requested: i64) -> ApiError {
    let mut extra = Map::new();
    extra.insert("used".into(), Value::from(used));
    extra.insert("limit".into(), Value::from(limit));
    extra.insert("requested".into(), Value::from(requested));
    ApiError::Unprocessable {
        code: "endpoint_limit_exceeded",
        detail: format!(
            "This write would add {requested} endpoints to the {used} in use, past the limit of {limit}; nothing was added."
        ),
        extra,
    }
}
