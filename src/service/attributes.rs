//! Attribute definitions: the typed custom fields contacts carry and filters name.

use super::Env;
use crate::core::attributes::MAX_DEFINITIONS;
use crate::core::error::Error;
use crate::core::tenant::Tenant;
use crate::core::types::AttributeType;
use crate::db::attributes::{self, DefinitionRow};
use crate::db::locks::{self, Lock};
use crate::db::pool;

pub async fn list(env: &Env, tenant: Tenant) -> Result<Vec<DefinitionRow>, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        attributes::list(conn, tenant.id)
    })
    .await
}

pub async fn define(
    env: &Env,
    tenant: Tenant,
    key: String,
    label: String,
    value_type: AttributeType,
) -> Result<DefinitionRow, Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        // Counted under the tenant's attributes lock: two definitions at once cannot
        // together pass the cap.
        locks::exclusive(conn, Lock::Attributes(tenant.id))?;
        if attributes::count(conn, tenant.id)? >= MAX_DEFINITIONS {
            return Err(Error::unprocessable(
                "too_many_attributes",
                format!("A tenant may define at most {MAX_DEFINITIONS} attributes."),
            ));
        }
        attributes::insert(conn, tenant.id, &key, &label, value_type)?.ok_or_else(|| {
            Error::conflict(
                "attribute_exists",
                format!("Attribute `{key}` is already defined."),
            )
        })
    })
    .await
}

/// Deletes the definition and every contact's value for it; refused while a filter
/// names it (the filters' foreign key decides, so a filter saved concurrently cannot end
/// up naming a deleted attribute).
pub async fn delete(env: &Env, tenant: Tenant, key: String) -> Result<(), Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| match attributes::delete(conn, tenant.id, &key) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NotFound("attribute")),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )) => Err(Error::conflict(
            "attribute_in_use",
            format!("Attribute `{key}` is used by a dynamic segment's filter; change that filter first."),
        )),
        Err(other) => Err(other.into()),
    })
    .await
}
