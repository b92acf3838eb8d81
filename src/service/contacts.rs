//! Contacts: the candidates and customers segments are made of.

use diesel::{Connection, OptionalExtension, PgConnection};

use chrono::NaiveDate;

use super::{check, dynamic, Env, Precondition};
use crate::core::contact::{apply_changes, ContactChanges, ContactValues};
use crate::core::error::Error;
use crate::core::event::EventType;
use crate::core::phone;
use crate::core::push::{
    external_id_taken, phone_taken, push_target, Candidate, ContactPush, EXTERNAL_ID_TAKEN,
    PHONE_TAKEN,
};
use crate::core::tenant::Tenant;
use crate::db::contacts::{self, ContactFilters, ContactRow, EXTERNAL_ID_KEY, PHONE_KEY};
use crate::db::failure::on_unique;
use crate::db::{attributes, events, pool};

/// Applies `changes` to `current` (or to a new contact) and stores the result, with its
/// event; dynamic segments follow. Changes that change nothing write nothing (a retried
/// push records no second `contact.updated`). Call after [`dynamic::begin_write`].
fn save(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    current: Option<ContactRow>,
    changes: ContactChanges,
) -> Result<ContactRow, Error> {
    let definitions = attributes::definitions(conn, tenant.id)?;
    let id = current.as_ref().map(|row| row.id);
    let before: Option<ContactValues> = current.clone().map(Into::into);
    let values = apply_changes(
        before.clone(),
        changes,
        tenant.default_region.as_deref(),
        &definitions,
    )
    .map_err(Error::Validation)?;
    if let Some(current) = current.filter(|_| before.as_ref() == Some(&values)) {
        return Ok(current);
    }
    let saved = match id {
        Some(id) => contacts::update(conn, tenant.id, id, &values),
        None => contacts::insert(conn, tenant.id, &values),
    };
    let row = saved.map_err(|error| {
        on_unique(error, &[PHONE_KEY, EXTERNAL_ID_KEY], |constraint| {
            if constraint == PHONE_KEY {
                phone_taken(values.phone_e164.as_deref().unwrap_or_default())
            } else {
                external_id_taken(values.external_id.as_deref().unwrap_or_default())
            }
        })
    })?;
    let kind = match id {
        Some(_) => EventType::ContactUpdated,
        None => EventType::ContactCreated,
    };
    events::stage_contacts(conn, tenant.id, kind, &[row.id])?;
    dynamic::contacts_written(conn, tenant.id, today, &|_| Ok(vec![row.id]))?;
    Ok(row)
}

/// Attempts at a push whose phone or external id a concurrent push took between its
/// lookup and its write. The unique index makes the write wait for the other push's
/// transaction, so the next attempt finds the contact it created: identical pushes
/// converge on one contact instead of answering 409.
const PUSH_ATTEMPTS: usize = 3;

/// Creates the contact a push names (by external id, else by validated phone), or
/// updates it with what the push carries. True when created. Call after
/// [`dynamic::begin_write`].
pub fn upsert(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    push: &ContactPush,
) -> Result<(ContactRow, bool), Error> {
    let mut attempt = 1;
    loop {
        // Each attempt in a savepoint: a unique violation leaves the transaction usable.
        match conn.transaction(|conn| upsert_once(conn, tenant, today, push.clone())) {
            Err(Error::Conflict { code, .. })
                if attempt < PUSH_ATTEMPTS && [PHONE_TAKEN, EXTERNAL_ID_TAKEN].contains(&code) =>
            {
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

fn upsert_once(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    push: ContactPush,
) -> Result<(ContactRow, bool), Error> {
    let phone_e164 = push
        .phone
        .as_deref()
        .and_then(|p| phone::normalize(p, tenant.default_region.as_deref()))
        .map(|phone| phone.e164);
    let matches = contacts::find_push_matches(
        conn,
        tenant.id,
        push.external_id.as_deref(),
        phone_e164.as_deref(),
    )?;
    let found = |wanted: &dyn Fn(&ContactRow) -> bool| matches.iter().find(|row| wanted(row));
    let by_external_id = push
        .external_id
        .as_deref()
        .and_then(|key| found(&|row| row.external_id.as_deref() == Some(key)));
    let by_phone = phone_e164
        .as_deref()
        .and_then(|phone| found(&|row| row.phone_e164.as_deref() == Some(phone)));
    fn candidate(row: &ContactRow) -> Candidate<'_> {
        Candidate {
            id: row.id,
            external_id: row.external_id.as_deref(),
        }
    }
    let target = push_target(
        push.external_id.as_deref(),
        phone_e164.as_deref(),
        by_external_id.map(candidate),
        by_phone.map(candidate),
    )?;
    let existing = matches.into_iter().find(|row| Some(row.id) == target);
    let created = existing.is_none();
    save(conn, tenant, today, existing, push.changes(!created)).map(|row| (row, created))
}

pub async fn list(
    env: &Env,
    tenant: Tenant,
    filters: ContactFilters,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ContactRow>, i64), Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        contacts::list(conn, tenant.id, &filters, limit, offset)
    })
    .await
}

pub async fn create(env: &Env, tenant: Tenant, push: ContactPush) -> Result<ContactRow, Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        save(conn, &tenant, today, None, push.changes(false))
    })
    .await
}

pub async fn get(env: &Env, tenant: Tenant, id: i64) -> Result<ContactRow, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        contacts::get(conn, tenant.id, id)
    })
    .await
    .map_err(|e| e.or_not_found("contact"))
}

pub async fn update(
    env: &Env,
    tenant: Tenant,
    id: i64,
    changes: ContactChanges,
    precondition: Option<Precondition<ContactRow>>,
) -> Result<ContactRow, Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        let current = contacts::get_for_change(conn, tenant.id, id)
            .map_err(|e| Error::from(e).or_not_found("contact"))?;
        check(&precondition, &current)?;
        save(conn, &tenant, today, Some(current), changes)
    })
    .await
}

pub async fn delete(
    env: &Env,
    tenant: Tenant,
    id: i64,
    precondition: Option<Precondition<ContactRow>>,
) -> Result<(), Error> {
    let deleted = pool::retrying_transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        if precondition.is_some() {
            match contacts::get_for_delete(conn, tenant.id, id).optional()? {
                Some(current) => check(&precondition, &current)?,
                None => return Ok(false),
            }
        }
        Ok(contacts::delete(conn, tenant.id, id)?)
    })
    .await?;
    if deleted {
        Ok(())
    } else {
        Err(Error::NotFound("contact"))
    }
}

/// The idempotent push for CRM integrations; true when the contact was created.
pub async fn push(
    env: &Env,
    tenant: Tenant,
    push: ContactPush,
) -> Result<(ContactRow, bool), Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        upsert(conn, &tenant, today, &push)
    })
    .await
}
