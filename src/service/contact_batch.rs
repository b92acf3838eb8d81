//! CRM batch upserts: set-based for the whole batch; items the fast path cannot take
//! (two items naming the same contact) go through the one-by-one path afterwards, in
//! order.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;

use super::contacts::upsert;
use super::{dynamic, Env};
use crate::core::error::Error;
use crate::core::phone;
use crate::core::push::{
    push_target, Candidate, CheckedPush, ContactPush, EXTERNAL_ID_TAKEN, PHONE_TAKEN,
};
use crate::core::tenant::Tenant;
use crate::db::contact_batch::{self, Existing};
use crate::db::contacts::{EXTERNAL_ID_KEY, PHONE_KEY};
use crate::db::failure::on_unique;
use crate::db::{attributes, pool};

/// What became of one item: its contact's id and whether it was created.
pub type ItemOutcome = Result<(i64, bool), Error>;

enum Plan {
    Update(i64),
    Insert,
    /// Names a contact an earlier item of the batch names too.
    OneByOne,
}

/// Upserts the batch: one outcome per item, in order.
pub async fn upsert_batch(
    env: &Env,
    tenant: Tenant,
    items: Vec<ContactPush>,
) -> Result<Vec<ItemOutcome>, Error> {
    let today = env.clock.today();
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        run(conn, &tenant, today, items)
    })
    .await
}

/// Attempts at the set-based path when a concurrent writer takes a phone or external id
/// between the lookup and the writes. Each attempt sees what the others committed (the
/// unique index made the write wait for them), so it rarely takes a second; past the
/// last, the items go one by one.
const FAST_ATTEMPTS: usize = 3;

/// The set-based path's answer: items done, and items left for one by one (they name a
/// contact an earlier item of the batch names too).
struct FastPath {
    done: Vec<(usize, ItemOutcome)>,
    later: Vec<usize>,
}

fn run(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    items: Vec<ContactPush>,
) -> Result<Vec<ItemOutcome>, Error> {
    dynamic::begin_write(conn, tenant.id)?;
    let definitions = attributes::definitions(conn, tenant.id)?;
    let mut outcomes: Vec<Option<ItemOutcome>> = (0..items.len()).map(|_| None).collect();
    let region = tenant.default_region.clone();
    // The batch's numbers handed to the phone thread at once, not one by one.
    let results: Vec<Result<CheckedPush, Error>> = phone::on_phone_thread(move || {
        items
            .into_iter()
            .map(|item| CheckedPush::check(item, region.as_deref(), &definitions))
            .collect()
    });
    let mut checked = Vec::with_capacity(results.len());
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(item) => checked.push((index, item)),
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }
    let mut attempt = 1;
    let later: Vec<usize> = loop {
        // In a savepoint: a lost race undoes the attempt and releases its row locks.
        match conn.transaction(|conn| fast_path(conn, tenant, today, &checked)) {
            Ok(fast) => {
                for (index, outcome) in fast.done {
                    outcomes[index] = Some(outcome);
                }
                break fast.later;
            }
            Err(Error::Conflict { code, .. })
                if [PHONE_TAKEN, EXTERNAL_ID_TAKEN].contains(&code) =>
            {
                if attempt == FAST_ATTEMPTS {
                    break checked.iter().map(|(index, _)| *index).collect();
                }
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    };
    let by_index: HashMap<usize, &CheckedPush> =
        checked.iter().map(|(index, item)| (*index, item)).collect();
    for index in later {
        let push = &by_index[&index].push;
        outcomes[index] = Some(match upsert(conn, tenant, today, push) {
            Ok((row, created)) => Ok((row.id, created)),
            Err(
                error @ (Error::Internal(_)
                | Error::Unavailable(_)
                | Error::TimedOut(_)
                | Error::Contention(_)
                | Error::Busy),
            ) => return Err(error),
            Err(error) => Err(error),
        });
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.ok_or_else(|| Error::internal("an item was left unanswered")))
        .collect()
}

/// One lookup (locking the contacts found, in id order), one UPDATE and one INSERT for
/// every item that names a contact no other item names. New contacts are inserted in
/// external id and phone order, so two batches creating the same people wait for each
/// other in one order instead of deadlocking.
fn fast_path(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    checked: &[(usize, CheckedPush)],
) -> Result<FastPath, Error> {
    let all: Vec<&CheckedPush> = checked.iter().map(|(_, item)| item).collect();
    let existing = contact_batch::find_existing(conn, tenant.id, &all)?;
    let mut named = Named::default();
    let mut fast = FastPath {
        done: Vec::new(),
        later: Vec::new(),
    };
    let (mut updates, mut inserts) = (Vec::new(), Vec::new());
    for (index, item) in checked {
        match plan(item, &existing, &mut named) {
            Ok(Plan::Update(id)) => updates.push((*index, id, item)),
            Ok(Plan::Insert) => inserts.push((*index, item)),
            Ok(Plan::OneByOne) => fast.later.push(*index),
            Err(error) => fast.done.push((*index, Err(error))),
        }
    }
    inserts.sort_by(|(_, a), (_, b)| insertion_order(a).cmp(&insertion_order(b)));
    let taken = |error| {
        on_unique(error, &[PHONE_KEY, EXTERNAL_ID_KEY], |constraint| {
            Error::conflict(
                if constraint == PHONE_KEY {
                    PHONE_TAKEN
                } else {
                    EXTERNAL_ID_TAKEN
                },
                "taken by a concurrent write",
            )
        })
    };
    let rows: Vec<(i64, &CheckedPush)> = updates.iter().map(|(_, id, item)| (*id, *item)).collect();
    // Only contacts that changed can enter or leave a dynamic segment.
    let mut written =
        contact_batch::update_all(conn, tenant.id, &rows, chrono::Utc::now()).map_err(taken)?;
    let rows: Vec<&CheckedPush> = inserts.iter().map(|(_, item)| *item).collect();
    let inserted = contact_batch::insert_all(conn, tenant.id, &rows).map_err(taken)?;
    for (index, id, _) in &updates {
        fast.done.push((*index, Ok((*id, false))));
    }
    for ((index, _), id) in inserts.iter().zip(inserted) {
        fast.done.push((*index, Ok((id, true))));
        written.push(id);
    }
    dynamic::contacts_written(conn, tenant.id, today, &|_| Ok(written.clone()))?;
    Ok(fast)
}

/// The order new contacts are inserted in: by external id, then by validated phone.
fn insertion_order(item: &CheckedPush) -> (Option<&str>, Option<&str>) {
    (
        item.push.external_id.as_deref(),
        item.phone.as_ref().map(|p| p.e164.as_str()),
    )
}

/// What the batch's earlier items named: external ids, phones and the contacts they
/// matched. Sets, not lists: a batch of 1,000 searched lists about a million times
/// (~9% of the service's CPU under four clients' batches).
#[derive(Default)]
struct Named<'a> {
    external_ids: HashSet<&'a str>,
    phones: HashSet<&'a str>,
    contacts: HashSet<i64>,
}

/// The same matching as one-by-one upserts ([`push_target`]), plus what the batch
/// itself names twice.
fn plan<'a>(
    item: &'a CheckedPush,
    existing: &Existing,
    named: &mut Named<'a>,
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
    // Every key is recorded, whether or not an earlier item named another.
    let external_id_named = external_id.is_some_and(|key| !named.external_ids.insert(key));
    let phone_named = phone.is_some_and(|p| !named.phones.insert(p));
    let contact_named = target.is_some_and(|id| !named.contacts.insert(id));
    let repeated = external_id_named | phone_named | contact_named;
    Ok(match (repeated, target) {
        (true, _) => Plan::OneByOne,
        (false, Some(id)) => Plan::Update(id),
        (false, None) => Plan::Insert,
    })
}
