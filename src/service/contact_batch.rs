//! CRM batch upserts: set-based for the whole batch; items the fast path cannot take
//! (two items naming the same contact) go through the one-by-one path afterwards, in
//! order.

use diesel::prelude::*;

use super::contacts::upsert;
use chrono::NaiveDate;

use super::{dynamic, Env};
use crate::core::error::Error;
use crate::core::push::{push_target, Candidate, CheckedPush, ContactPush};
use crate::core::tenant::Tenant;
use crate::db::contact_batch::{self, Existing};
use crate::db::failure::unique_violation;
use crate::db::{attributes, pool};

/// What became of one item: its contact's id and whether it was created.
pub type ItemOutcome = Result<(i64, bool), Error>;

enum Plan {
    Update(i64),
    Insert,
    /// Names a contact an earlier item of the batch names too.
    OneByOne,
}

/// Upserts the batch; items that failed to read arrive as errors and stay errors.
pub async fn upsert_batch(
    env: &Env,
    tenant: Tenant,
    items: Vec<Result<ContactPush, Error>>,
) -> Result<Vec<ItemOutcome>, Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        run(conn, &tenant, today, items)
    })
    .await
}

fn run(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    items: Vec<Result<ContactPush, Error>>,
) -> Result<Vec<ItemOutcome>, Error> {
    dynamic::begin_write(conn, tenant.id)?;
    let definitions = attributes::definitions(conn, tenant.id)?;
    let mut outcomes: Vec<Option<ItemOutcome>> = (0..items.len()).map(|_| None).collect();
    let mut checked = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let item = item.and_then(|push| {
            CheckedPush::check(push, tenant.default_region.as_deref(), &definitions)
        });
        match item {
            Ok(item) => checked.push((index, item)),
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }
    let all: Vec<&CheckedPush> = checked.iter().map(|(_, item)| item).collect();
    let existing = contact_batch::find_existing(conn, tenant.id, &all)?;
    let mut claimed: Vec<i64> = Vec::new();
    let mut new_keys: Vec<String> = Vec::new();
    let (mut updates, mut inserts, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for (index, item) in &checked {
        match plan(item, &existing, &mut claimed, &mut new_keys) {
            Ok(Plan::Update(id)) => updates.push((*index, id, item)),
            Ok(Plan::Insert) => inserts.push((*index, item)),
            Ok(Plan::OneByOne) => later.push((*index, item)),
            Err(error) => outcomes[*index] = Some(Err(error)),
        }
    }
    // A concurrent writer may take a phone or external id between the lookup and the
    // writes: then the whole batch goes one by one, each item in its own savepoint.
    let fast = conn.transaction(|conn| {
        let rows: Vec<(i64, &CheckedPush)> =
            updates.iter().map(|(_, id, item)| (*id, *item)).collect();
        contact_batch::update_all(conn, tenant.id, &rows)?;
        let rows: Vec<&CheckedPush> = inserts.iter().map(|(_, item)| *item).collect();
        contact_batch::insert_all(conn, tenant.id, &rows)
    });
    let slow: Vec<(usize, &CheckedPush)> = match fast {
        Ok(inserted) => {
            let mut written = Vec::with_capacity(updates.len() + inserted.len());
            for (index, id, _) in &updates {
                outcomes[*index] = Some(Ok((*id, false)));
                written.push(*id);
            }
            for ((index, _), id) in inserts.iter().zip(inserted) {
                outcomes[*index] = Some(Ok((id, true)));
                written.push(id);
            }
            dynamic::contacts_written(conn, tenant.id, today, &|_| Ok(written.clone()))?;
            later
        }
        Err(error)
            if unique_violation(
                &error,
                &["contacts_phone_e164_key", "contacts_external_id_key"],
            )
            .is_some() =>
        {
            let mut all: Vec<(usize, &CheckedPush)> = updates
                .iter()
                .map(|(index, _, item)| (*index, *item))
                .chain(inserts)
                .chain(later)
                .collect();
            all.sort_by_key(|(index, _)| *index);
            all
        }
        Err(error) => return Err(error.into()),
    };
    for (index, item) in slow {
        let outcome = conn.transaction(|conn| upsert(conn, tenant, today, item.push.clone()));
        outcomes[index] = Some(match outcome {
            Ok((row, created)) => Ok((row.id, created)),
            Err(
                error @ (Error::Internal(_)
                | Error::Unavailable(_)
                | Error::TimedOut(_)
                | Error::Contention(_)),
            ) => return Err(error),
            Err(error) => Err(error),
        });
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.ok_or_else(|| Error::internal("an item was left unanswered")))
        .collect()
}

/// The same matching as one-by-one upserts ([`push_target`]), plus what the batch
/// itself names twice.
fn plan(
    item: &CheckedPush,
    existing: &Existing,
    claimed: &mut Vec<i64>,
    new_keys: &mut Vec<String>,
) -> Result<Plan, Error> {
    let external_id = item.push.external_id.as_deref();
    let phone = item.phone.as_ref().map(|p| p.e164.as_str());
    fn candidate((id, external_id): &(i64, Option<String>)) -> Candidate<'_> {
        Candidate {
            id: *id,
            external_id: external_id.as_deref(),
        }
    }
    let target = push_target(
        external_id,
        phone,
        external_id
            .and_then(|key| existing.by_external_id.get(key))
            .map(candidate),
        phone.and_then(|p| existing.by_phone.get(p)).map(candidate),
    )?;
    let keys: Vec<String> = [
        external_id.map(|k| format!("x:{k}")),
        phone.map(|p| format!("p:{p}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let repeated = keys.iter().any(|key| new_keys.contains(key))
        || target.is_some_and(|id| claimed.contains(&id));
    new_keys.extend(keys);
    if let Some(id) = target {
        claimed.push(id);
    }
    Ok(match (repeated, target) {
        (true, _) => Plan::OneByOne,
        (false, Some(id)) => Plan::Update(id),
        (false, None) => Plan::Insert,
    })
}
