//! A contact as the service reads it: its stored columns, and when it was last messaged
//! (kept in a narrow table of its own so that a send's outcomes do not rewrite contacts;
//! see its migration).
//!
//! The last-messaged subquery names its tenant itself, bound, rather than through
//! `contacts.tenant_id`: on Citus a subquery correlated to the contact by that column
//! alone is not routed to the contact's shard. Reads then ran on every shard (a 32-task
//! query for one contact) and inserts were refused ("subqueries are not supported
//! within INSERT queries"), so a new contact could not be created. An insert returns NULL
//! instead: a contact just made was never messaged.

use chrono::{DateTime, Utc};
use diesel::dsl::AsExprOf;
use diesel::expression::{is_aggregate, ValidGrouping};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use serde_json::Value;

use super::schema::contacts;
use super::sql::{Bound, Condition as Sql};

#[derive(Debug, Clone, Queryable)]
pub struct ContactRow {
    pub id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub phone_e164: Option<String>,
    pub phone_country: Option<String>,
    pub email: Option<String>,
    pub attributes: Value,
    pub tags: Vec<String>,
    pub opted_out: bool,
    pub privacy_consent: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_messaged_at: Option<DateTime<Utc>>,
}

/// What a statement selects (or returns) for [`ContactRow`]s: the stored columns, then
/// `last_messaged` (the type alias of the same name is Diesel's, for signatures).
#[diesel::dsl::auto_type]
fn columns_with<LastMessaged>(last_messaged: LastMessaged) -> _ {
    (
        contacts::id,
        contacts::external_id,
        contacts::name,
        contacts::phone,
        contacts::phone_e164,
        contacts::phone_country,
        contacts::email,
        contacts::attributes,
        contacts::tags,
        contacts::opted_out,
        contacts::privacy_consent,
        contacts::created_at,
        contacts::updated_at,
        last_messaged,
    )
}

/// The columns of contacts of `tenant_id` as they are now, for reads and updates.
pub fn contact_columns(tenant_id: i64) -> columns_with<LastMessagedAt> {
    columns_with(LastMessagedAt { tenant_id })
}

/// When a contact just inserted was last messaged: never (NULL, bound).
pub type NeverMessaged = AsExprOf<Option<DateTime<Utc>>, Nullable<Timestamptz>>;

/// The columns of a contact just inserted.
pub fn new_contact_columns() -> columns_with<NeverMessaged> {
    columns_with(None.into_sql::<Nullable<Timestamptz>>())
}

const LAST_MESSAGED_IN_TENANT: &str =
    "(SELECT m.last_messaged_at FROM contact_last_messaged m WHERE m.tenant_id = ";
const OF_THE_CONTACT: &str = " AND m.contact_id = contacts.id)";

/// When the contact (the row of `contacts` in scope) was last messaged, as a condition's
/// operand: one probe of its key, NULL when never messaged.
pub fn last_messaged_at(tenant_id: i64) -> Sql {
    Sql::of(LAST_MESSAGED_IN_TENANT)
        .value(Bound::Integer(tenant_id))
        .sql(OF_THE_CONTACT)
}

/// [`last_messaged_at`] as an expression of its own rather than an `sql()` literal:
/// Diesel never keeps a statement holding a literal prepared, so every read of contacts
/// was planned at each call (`GET /v1/contacts/{id}` served half the rate of a
/// segment's). Its SQL is the same whatever the tenant, which is bound.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct LastMessagedAt {
    tenant_id: i64,
}

impl QueryFragment<Pg> for LastMessagedAt {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(LAST_MESSAGED_IN_TENANT);
        out.push_bind_param::<BigInt, _>(&self.tenant_id)?;
        out.push_sql(OF_THE_CONTACT);
        Ok(())
    }
}

impl Expression for LastMessagedAt {
    type SqlType = Nullable<Timestamptz>;
}

impl<Source> AppearsOnTable<Source> for LastMessagedAt {}

impl<Source> SelectableExpression<Source> for LastMessagedAt {}

impl ValidGrouping<()> for LastMessagedAt {
    type IsAggregate = is_aggregate::Never;
}
