//! Pushing events to webhooks: at least once, in order per webhook, in signed batches.
//!
//! Every replica runs one dispatcher; the one that leads (a session lock, see
//! `db::leadership`) looks for due webhooks across tenants, so the cross-tenant read
//! runs once per poll whatever the number of replicas. It leases each due webhook in its
//! tenant (a row lease with a random token, so two dispatchers never deliver the same
//! batch at once and one that lost its lease cannot record an outcome), sends each its
//! next batch, and records the
//! outcome: delivered through the batch's last event, or the next attempt after a
//! growing delay; after [`RETRY_FOR`] of failures the webhook is disabled with the
//! reason. The batch being attempted is fixed before the first try, so a retry sends the
//! same events under the same `webhook-id`. Nothing is kept in memory between attempts:
//! a restart picks up where the database says.
//!
//! A slow or dead receiver costs one delivery slot for at most [`TIMEOUT`] per attempt,
//! and its webhook backs off; a replica runs at most [`SLOTS`] deliveries at once and a
//! tenant at most [`SLOTS_PER_TENANT`], so other tenants' deliveries keep going.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use rand::Rng;

use super::Env;
use crate::core::error::Error;
use crate::core::event::{retry_delay, Event, MAX_EVENTS_PER_DELIVERY, RETRY_FOR};
use crate::core::webhook::{check_url, signature};
use crate::db::locks::Lock;
use crate::db::webhook_delivery::{self as delivery, Attempt};
use crate::db::webhooks::WebhookRow;
use crate::db::{leadership, pool};

/// Longest wait for a receiver's answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries one replica runs at once.
pub const SLOTS: usize = 16;
/// Deliveries one tenant's webhooks hold at once, on one replica.
pub const SLOTS_PER_TENANT: usize = 2;
/// How long a lease lasts: the longest attempt, with room to record its outcome.
const LEASE_SECS: i64 = 60;
/// How often the dispatcher looks for due webhooks when it has nothing to do.
const POLL: Duration = Duration::from_millis(250);
/// How long a webhook that is behind may send batch after batch in its slot before it
/// goes back to the queue behind the others.
const KEEP_GOING_FOR: Duration = Duration::from_secs(20);

/// What sends a signed delivery: the HTTP client (`crate::webhook_client`), or a test's.
/// Deliveries run on the thread that spawned the dispatcher, so it need not be `Send`.
pub trait Sender {
    /// POSTs `body` to `url` with `headers`, answering within [`TIMEOUT`].
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> LocalBoxFuture<'a, Answer>;
}

/// What a receiver answered: its status, or why there was none.
pub enum Answer {
    Status(u16),
    Failed(String),
}

/// Webhooks in delivery on this replica, by tenant.
#[derive(Default)]
struct InFlight {
    by_tenant: HashMap<i64, usize>,
    total: usize,
}

/// Runs the dispatcher on the current thread (a `LocalSet`, as actix's runtime is) until
/// the process stops, sending with `sender`.
pub fn spawn(env: Env, sender: Rc<dyn Sender>, database_url: String) {
    let leadership = leadership::contend(database_url, Lock::WebhookDispatch);
    tokio::task::spawn_local(async move {
        let client = sender;
        let in_flight = Rc::new(RefCell::new(InFlight::default()));
        loop {
            if !leadership.is_leading() {
                tokio::time::sleep(POLL).await;
                continue;
            }
            let claimed = match claim(&env, &in_flight).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "could not look for due webhooks");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::time::sleep(POLL).await;
                continue;
            }
            for (webhook, lease) in claimed {
                let (env, client, in_flight) = (env.clone(), client.clone(), in_flight.clone());
                {
                    let mut in_flight = in_flight.borrow_mut();
                    *in_flight.by_tenant.entry(webhook.tenant_id).or_default() += 1;
                    in_flight.total += 1;
                }
                tokio::task::spawn_local(async move {
                    let tenant_id = webhook.tenant_id;
                    let started = Instant::now();
                    let mut next = Some(webhook);
                    while let Some(webhook) = next.take() {
                        // A webhook that is behind keeps its slot for a while, batch after
                        // batch, instead of waiting for the next poll between each.
                        let keep = started.elapsed() < KEEP_GOING_FOR;
                        match deliver(&env, &client, webhook, lease, keep).await {
                            Ok(more) => next = more,
                            Err(error) => {
                                tracing::warn!(%error, tenant_id, "webhook delivery could not be recorded")
                            }
                        }
                    }
                    let mut in_flight = in_flight.borrow_mut();
                    in_flight.total -= 1;
                    if let Some(count) = in_flight.by_tenant.get_mut(&tenant_id) {
                        *count -= 1;
                        if *count == 0 {
                            in_flight.by_tenant.remove(&tenant_id);
                        }
                    }
                });
            }
        }
    });
}

/// Leases as many due webhooks as there are free slots, skipping tenants at their share.
async fn claim(env: &Env, in_flight: &RefCell<InFlight>) -> Result<Vec<(WebhookRow, i64)>, Error> {
    let (free, busy) = {
        let in_flight = in_flight.borrow();
        let busy: Vec<i64> = in_flight
            .by_tenant
            .iter()
            .filter(|(_, count)| **count >= SLOTS_PER_TENANT)
            .map(|(tenant, _)| *tenant)
            .collect();
        (SLOTS.saturating_sub(in_flight.total), busy)
    };
    if free == 0 {
        return Ok(Vec::new());
    }
    let lease: i64 = rand::rng().random();
    let due = pool::run(&env.pool, move |conn| {
        delivery::due(conn, free as i64, &busy)
    })
    .await?;
    let mut claimed = Vec::with_capacity(due.len());
    for (tenant_id, id) in due {
        let leased = pool::run(&env.pool.tenant(tenant_id), move |conn| {
            let now = Utc::now();
            let until = now + chrono::TimeDelta::seconds(LEASE_SECS);
            delivery::lease(conn, tenant_id, id, lease, now, until)
        })
        .await?;
        claimed.extend(leased.map(|webhook| (webhook, lease)));
    }
    Ok(claimed)
}

/// One attempt at the webhook's next batch, and its outcome recorded. When the batch was
/// full and acknowledged and `keep` allows, the lease is renewed and the webhook as it
/// now is returned, to send its next batch at once.
async fn deliver(
    env: &Env,
    client: &Rc<dyn Sender>,
    webhook: WebhookRow,
    lease: i64,
    keep: bool,
) -> Result<Option<WebhookRow>, Error> {
    let pool = env.pool.tenant(webhook.tenant_id);
    let leased = webhook.clone();
    let (rows, seen) = pool::run(&pool, move |conn| {
        delivery::next_batch(conn, &leased, MAX_EVENTS_PER_DELIVERY as i64)
    })
    .await?;
    let events: Vec<Event> = rows
        .into_iter()
        .filter_map(|row| row.into_event())
        .collect();
    if events.is_empty() {
        let leased = webhook.clone();
        return pool::run(&pool, move |conn| {
            delivery::release(conn, &leased, lease, seen)
        })
        .await
        .map(|()| None);
    }
    if webhook.batch_through.is_none() {
        let leased = webhook.clone();
        let fixed = pool::run(&pool, move |conn| {
            delivery::fix_batch(conn, &leased, lease, seen)
        })
        .await?;
        if !fixed {
            return Ok(None);
        }
    }
    let event_ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    let (first, last) = (event_ids[0], event_ids[event_ids.len() - 1]);
    let body =
        serde_json::to_vec(&serde_json::json!({ "events": events })).map_err(Error::internal)?;
    let message_id = format!("msg_{}_{}_{}", webhook.id, first, last);
    let outcome = send(env, client, &webhook, &message_id, body).await;
    let attempt = Attempt {
        event_ids: &event_ids,
        attempt: webhook.attempt + 1,
        status_code: outcome.status,
        error: outcome.error.as_deref(),
    };
    let now = Utc::now();
    let (acknowledged, next, disable) = if outcome.acknowledged {
        (true, now, None)
    } else {
        let failing_for = webhook
            .failing_since
            .map_or(chrono::TimeDelta::zero(), |since| now - since);
        let disable = (failing_for >= RETRY_FOR).then(|| {
            format!(
                "Deliveries failed for over {} hours (last: {}); enable the webhook again once the receiver works.",
                RETRY_FOR.num_hours(),
                outcome.describe()
            )
        });
        (false, now + retry_delay(attempt.attempt as u32), disable)
    };
    let full = event_ids.len() == MAX_EVENTS_PER_DELIVERY;
    let keep_until = (keep && full).then(|| now + chrono::TimeDelta::seconds(LEASE_SECS));
    let attempt = OwnedAttempt::from(&attempt);
    pool::transaction(&pool, move |conn| {
        let attempt = attempt.borrowed();
        if acknowledged {
            Ok(
                delivery::delivered(conn, &webhook, lease, seen, &attempt, now, keep_until)?
                    .filter(|_| keep_until.is_some()),
            )
        } else {
            delivery::failed(
                conn,
                &webhook,
                lease,
                &attempt,
                now,
                next,
                disable.as_deref(),
            )?;
            Ok(None)
        }
    })
    .await
}

/// [`Attempt`] with what it borrows owned, to cross to the database thread.
struct OwnedAttempt {
    event_ids: Vec<i64>,
    attempt: i32,
    status_code: Option<i16>,
    error: Option<String>,
}

impl OwnedAttempt {
    fn from(attempt: &Attempt<'_>) -> Self {
        Self {
            event_ids: attempt.event_ids.to_vec(),
            attempt: attempt.attempt,
            status_code: attempt.status_code,
            error: attempt.error.map(str::to_owned),
        }
    }

    fn borrowed(&self) -> Attempt<'_> {
        Attempt {
            event_ids: &self.event_ids,
            attempt: self.attempt,
            status_code: self.status_code,
            error: self.error.as_deref(),
        }
    }
}

/// What a receiver answered.
struct Outcome {
    acknowledged: bool,
    status: Option<i16>,
    error: Option<String>,
}

impl Outcome {
    fn describe(&self) -> String {
        match (&self.status, &self.error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// Most characters of an error kept in the delivery log.
const MAX_ERROR: usize = 500;

async fn send(
    env: &Env,
    client: &Rc<dyn Sender>,
    webhook: &WebhookRow,
    id: &str,
    body: Vec<u8>,
) -> Outcome {
    let failed = |error: String| Outcome {
        acknowledged: false,
        status: None,
        error: Some(error.chars().take(MAX_ERROR).collect()),
    };
    // The address is checked again: settings change, and IP literals skip the resolver.
    if let Err(error) = check_url(&webhook.url, env.webhooks_may_reach_private) {
        return failed(format!("url refused: {}", error.message));
    }
    let timestamp = Utc::now().timestamp();
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            signature(&webhook.secret, id, timestamp, &body),
        ),
    ];
    match client.post(&webhook.url, headers, body).await {
        Answer::Status(status) => Outcome {
            acknowledged: (200..300).contains(&status),
            status: Some(status as i16),
            error: (!(200..300).contains(&status))
                .then(|| format!("the receiver answered {status}")),
        },
        Answer::Failed(error) => failed(error),
    }
}
