//! Contacts: lookups, lists with search, and single writes.

use std::sync::OnceLock;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde_json::Value;

pub use super::contact_rows::ContactRow;
use super::contact_rows::{contact_columns, new_contact_columns};
use super::events;
use super::schema::{contacts, segment_members, segments};
use super::sql::{like_pattern, Condition as Sql};
use crate::core::contact::ContactValues;
use crate::core::event::EventType;
use crate::core::phone;

/// The unique constraints a contact's write can break: one validated phone, one external
/// id per tenant.
pub const PHONE_KEY: &str = "contacts_phone_e164_key";
pub const EXTERNAL_ID_KEY: &str = "contacts_external_id_key";

impl From<ContactRow> for ContactValues {
    fn from(row: ContactRow) -> Self {
        Self {
            external_id: row.external_id,
            name: row.name,
            phone: row.phone,
            phone_e164: row.phone_e164,
            phone_country: row.phone_country,
            email: row.email,
            attributes: row.attributes,
            tags: row.tags,
            opted_out: row.opted_out,
            privacy_consent: row.privacy_consent,
        }
    }
}

/// Every stored field of `values` as column assignments, for inserts and updates alike
/// (`None` writes NULL).
#[allow(clippy::type_complexity)]
fn columns(
    values: &ContactValues,
) -> (
    diesel::dsl::Eq<contacts::external_id, &Option<String>>,
    diesel::dsl::Eq<contacts::name, &String>,
    diesel::dsl::Eq<contacts::phone, &Option<String>>,
    diesel::dsl::Eq<contacts::phone_e164, &Option<String>>,
    diesel::dsl::Eq<contacts::phone_country, &Option<String>>,
    diesel::dsl::Eq<contacts::email, &Option<String>>,
    diesel::dsl::Eq<contacts::attributes, &Value>,
    diesel::dsl::Eq<contacts::tags, &Vec<String>>,
    diesel::dsl::Eq<contacts::opted_out, bool>,
    diesel::dsl::Eq<contacts::privacy_consent, bool>,
) {
    (
        contacts::external_id.eq(&values.external_id),
        contacts::name.eq(&values.name),
        contacts::phone.eq(&values.phone),
        contacts::phone_e164.eq(&values.phone_e164),
        contacts::phone_country.eq(&values.phone_country),
        contacts::email.eq(&values.email),
        contacts::attributes.eq(&values.attributes),
        contacts::tags.eq(&values.tags),
        contacts::opted_out.eq(values.opted_out),
        contacts::privacy_consent.eq(values.privacy_consent),
    )
}

#[derive(Debug, Default)]
pub struct ContactFilters {
    pub search: Option<String>,
    /// The tenant's region, to read the search text as a phone number.
    region: Option<String>,
    /// The search text read as a phone number, matched exactly against the validated
    /// phone. Read where the query is built, on a blocking thread: numbers are read on
    /// the phone thread, which a request's async side must not wait for.
    search_phone: OnceLock<Option<String>>,
    pub tag: Option<String>,
    pub opted_out: Option<bool>,
}

impl ContactFilters {
    /// Blank search text means no search; text that reads as a phone number also matches
    /// that number however it was spelled.
    pub fn new(
        search: Option<&str>,
        tag: Option<String>,
        opted_out: Option<bool>,
        default_region: Option<&str>,
    ) -> Self {
        let search = search
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Self {
            search,
            region: default_region.map(str::to_owned),
            search_phone: OnceLock::new(),
            tag: tag.filter(|t| !t.trim().is_empty()),
            opted_out,
        }
    }

    fn search_phone(&self) -> Option<&str> {
        self.search_phone
            .get_or_init(|| {
                let search = self.search.as_deref()?;
                phone::normalize(search, self.region.as_deref()).map(|phone| phone.e164)
            })
            .as_deref()
    }
}

/// The text the search box looks through; the same expression as `contacts_search_idx`.
const SEARCH_TEXT: &str =
    "(name || ' ' || coalesce(phone, '') || ' ' || coalesce(phone_e164, '') || ' ' || \
                           coalesce(email, '') || ' ' || coalesce(external_id, ''))";

/// A query over some of the tenant's contacts, rebuilt for each statement that reads it.
pub type Selected = contacts::BoxedQuery<'static, diesel::pg::Pg>;

/// The tenant's contacts with these ids.
pub fn with_ids(tenant_id: i64, ids: Vec<i64>) -> impl Fn() -> Selected {
    move || {
        contacts::table
            .filter(contacts::tenant_id.eq(tenant_id))
            .filter(Sql::one_of("contacts.id", ids.clone()))
            .into_boxed()
    }
}

/// The tenant's contacts matching `filters` and `condition`.
pub fn selected(
    tenant_id: i64,
    filters: &ContactFilters,
    condition: Option<Sql>,
) -> impl Fn() -> Selected + '_ {
    move || match &condition {
        Some(condition) => filtered(tenant_id, filters).filter(condition.clone()),
        None => filtered(tenant_id, filters),
    }
}

/// The tenant's contacts matching `filters`: the source of every contact list and of
/// "add all search results".
pub fn filtered(
    tenant_id: i64,
    filters: &ContactFilters,
) -> contacts::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(search) = &filters.search {
        let text_match =
            sql::<Bool>(&format!("{SEARCH_TEXT} ILIKE ")).bind::<Text, _>(like_pattern(search));
        query = match filters.search_phone() {
            Some(phone) => query.filter(text_match.or(contacts::phone_e164.eq(phone.to_owned()))),
            None => query.filter(text_match),
        };
    }
    if let Some(tag) = &filters.tag {
        query = query.filter(contacts::tags.contains(vec![tag.clone()]));
    }
    if let Some(opted_out) = filters.opted_out {
        query = query.filter(contacts::opted_out.eq(opted_out));
    }
    query
}

pub fn list(
    conn: &mut PgConnection,
    tenant_id: i64,
    filters: &ContactFilters,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<ContactRow>, i64)> {
    // Counted in a statement of its own: at 1M contacts the count is most of a page's
    // time, and riding on the page's statement it made deep pages slower (81 -> 93 ms
    // at offset 10,000), where the round trip saved is not measurable.
    let rows = filtered(tenant_id, filters)
        .order(contacts::id)
        .limit(limit)
        .offset(offset)
        .select(contact_columns(tenant_id))
        .load(conn)?;
    let total = filtered(tenant_id, filters).count().get_result(conn)?;
    Ok((rows, total))
}

pub fn get(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<ContactRow> {
    contacts::table
        .find((tenant_id, id))
        .select(contact_columns(tenant_id))
        .first(conn)
}

/// Locks the row: read-modify-write of attributes must not lose a concurrent change.
/// `FOR NO KEY UPDATE`, so members can still be added to the contact meanwhile.
pub fn get_for_change(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<ContactRow> {
    contacts::table
        .find((tenant_id, id))
        .select(contact_columns(tenant_id))
        .for_no_key_update()
        .first(conn)
}

/// Locks the row for deletion (`FOR UPDATE`): the row is going away.
pub fn get_for_delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<ContactRow> {
    contacts::table
        .find((tenant_id, id))
        .select(contact_columns(tenant_id))
        .for_update()
        .first(conn)
}

/// The contacts a push may name, locked in id order (so two pushes never wait for each
/// other in opposite orders): the one with `external_id`, the one with `phone_e164`.
pub fn find_push_matches(
    conn: &mut PgConnection,
    tenant_id: i64,
    external_id: Option<&str>,
    phone_e164: Option<&str>,
) -> QueryResult<Vec<ContactRow>> {
    if external_id.is_none() && phone_e164.is_none() {
        return Ok(Vec::new());
    }
    // A key not given is bound as NULL, which equals nothing.
    contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(
            contacts::external_id
                .eq(external_id)
                .or(contacts::phone_e164.eq(phone_e164)),
        )
        .order(contacts::id)
        .select(contact_columns(tenant_id))
        .for_no_key_update()
        .load(conn)
}

pub fn insert(
    conn: &mut PgConnection,
    tenant_id: i64,
    values: &ContactValues,
) -> QueryResult<ContactRow> {
    diesel::insert_into(contacts::table)
        .values((contacts::tenant_id.eq(tenant_id), columns(values)))
        .returning(new_contact_columns())
        .get_result(conn)
}

pub fn update(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    values: &ContactValues,
) -> QueryResult<ContactRow> {
    diesel::update(contacts::table.find((tenant_id, id)))
        .set((columns(values), contacts::updated_at.eq(diesel::dsl::now)))
        .returning(contact_columns(tenant_id))
        .get_result(conn)
}

/// Deletes the contact and its memberships, fixing the member count of every segment it
/// was in, with their events: it leaves each segment, then is deleted. False when there
/// was no such contact.
pub fn delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<bool> {
    // Locking the contact first waits out any membership write that references it, so the
    // memberships removed below are all of them. `FOR UPDATE`: the row is going away.
    if get_for_delete(conn, tenant_id, id).optional()?.is_none() {
        return Ok(false);
    }
    let mut segment_ids: Vec<i64> = diesel::delete(
        segment_members::table
            .filter(segment_members::tenant_id.eq(tenant_id))
            .filter(segment_members::contact_id.eq(id)),
    )
    .returning(segment_members::segment_id)
    .get_results(conn)?;
    segment_ids.sort_unstable();
    for &segment_id in &segment_ids {
        events::stage_members(conn, tenant_id, segment_id, &[id], false)?;
        diesel::update(segments::table.find((tenant_id, segment_id)))
            .set((
                segments::recipients.eq(segments::recipients - 1),
                segments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
    }
    diesel::delete(contacts::table.find((tenant_id, id))).execute(conn)?;
    events::stage_contacts(conn, tenant_id, EventType::ContactDeleted, &[id])?;
    Ok(true)
}

/// The tenant's contacts `condition` matches, counted.
pub fn count_matching(conn: &mut PgConnection, tenant_id: i64, condition: Sql) -> QueryResult<i64> {
    contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(condition)
        .count()
        .get_result(conn)
}

/// The first `limit` contacts `condition` matches, by id.
pub fn first_matching(
    conn: &mut PgConnection,
    tenant_id: i64,
    condition: Sql,
    limit: i64,
) -> QueryResult<Vec<ContactRow>> {
    contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(condition)
        .order(contacts::id)
        .limit(limit)
        .select(contact_columns(tenant_id))
        .load(conn)
}
