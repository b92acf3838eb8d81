//! Running on Citus: the step that distributes a migrated database (see
//! `citus_distribute.sql` for the rule it follows, and docs/operations.md).

use diesel::connection::SimpleConnection;
use diesel::PgConnection;

/// Places every table on the cluster: reference tables for `tenants` and `api_keys`,
/// the others distributed by `tenant_id`. Tables already placed are left alone.
pub fn distribute(conn: &mut PgConnection) -> diesel::QueryResult<()> {
    conn.batch_execute(include_str!("citus_distribute.sql"))
}
