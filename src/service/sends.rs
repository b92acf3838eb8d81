//! Campaign sends: the audience frozen at one moment, paged and streamed by status, and
//! the outcomes a sender reports, recorded forward only.

use diesel::PgConnection;

use super::streams::{self, Keys};
use super::{audience, dynamic, Env};
use crate::core::error::Error;
use crate::core::send::{one_per_recipient, Applied, Outcome, Progress, SendRecipient, Status};
use crate::core::tenant::Tenant;
use crate::db::locks::{self, Lock};
use crate::db::sends::{self, SendRow};
use crate::db::{campaigns, pool, send_outcomes, send_partitions, send_recipients};

/// A send and where its recipients stand.
pub struct SendWithProgress {
    pub send: SendRow,
    pub progress: Progress,
}

/// Freezes the campaign's audience as it is now. The campaign is locked first, so its
/// segments cannot change (nor the campaign be deleted) while it freezes.
pub async fn create(
    env: &Env,
    tenant: Tenant,
    campaign_id: i64,
) -> Result<SendWithProgress, Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        if !campaigns::lock(conn, tenant.id, campaign_id)? {
            return Err(Error::NotFound("campaign"));
        }
        let (audience, _) = audience::campaign_audience(conn, &tenant, campaign_id)?;
        let send = sends::freeze(conn, tenant.id, campaign_id, &audience)?;
        let eligible = send.summary().eligible();
        let progress = Progress {
            total: eligible,
            pending: eligible,
            ..Progress::default()
        };
        Ok(SendWithProgress { send, progress })
    })
    .await
}

fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> Result<SendRow, Error> {
    sends::get(conn, tenant_id, id).map_err(|e| Error::from(e).or_not_found("send"))
}

/// The send, or 410 when its recipients are past the retention horizon.
fn find_live(conn: &mut PgConnection, tenant_id: i64, id: i64) -> Result<SendRow, Error> {
    let send = find(conn, tenant_id, id)?;
    match send.expired_at {
        Some(at) => Err(Error::Gone {
            code: "send_expired",
            detail: format!(
                "send {id}'s recipients were dropped on {} (past the retention horizon); its final counts remain on the send",
                at.format("%Y-%m-%d")
            ),
        }),
        None => Ok(send),
    }
}

pub async fn get(env: &Env, tenant: Tenant, id: i64) -> Result<SendWithProgress, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let send = find(conn, tenant.id, id)?;
        let progress = match send.final_progress() {
            Some(progress) => progress,
            None => sends::progress(conn, tenant.id, &send)?,
        };
        Ok::<_, Error>(SendWithProgress { send, progress })
    })
    .await
}

/// The campaign's sends, newest first, and how many it has.
pub async fn list(
    env: &Env,
    tenant: Tenant,
    campaign_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SendRow>, i64), Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        campaigns::get(conn, tenant.id, campaign_id)
            .map_err(|e| Error::from(e).or_not_found("campaign"))?;
        Ok::<_, Error>(sends::of_campaign(
            conn,
            tenant.id,
            campaign_id,
            limit,
            offset,
        )?)
    })
    .await
}

/// Up to `limit` recipients after contact id `after` (only those in `status` when given).
pub async fn page(
    env: &Env,
    tenant: Tenant,
    id: i64,
    status: Option<Status>,
    after: i64,
    limit: i64,
) -> Result<Vec<SendRecipient>, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let send = find_live(conn, tenant.id, id)?;
        Ok::<_, Error>(send_recipients::recipients_after(
            conn, tenant.id, &send, status, after, limit,
        )?)
    })
    .await
}

/// Recipients read per statement while streaming: a send's rows are one index range,
/// read in large steps.
const STREAM_BATCH: i64 = 20_000;

/// Every recipient (in `status`, when given), in batches (see [`streams::ranges`]).
pub async fn stream(
    env: &Env,
    tenant: Tenant,
    id: i64,
    status: Option<Status>,
) -> Result<streams::Batches<SendRecipient>, Error> {
    let pool = env.pool.tenant(tenant.id);
    let tenant_id = tenant.id;
    let (send, bounds) = pool::run(&pool, move |conn| {
        let send = find_live(conn, tenant_id, id)?;
        let bounds = send_recipients::contact_id_bounds(conn, tenant_id, &send)?;
        Ok::<_, Error>((send, bounds))
    })
    .await?;
    let keys = bounds.map(|(first, last)| Keys::new(first, last, send.summary().eligible()));
    let fetch = move |conn: &mut PgConnection, after, through, limit| {
        let (rows, cut) = send_recipients::recipients_streamed(
            conn,
            tenant_id,
            &send,
            status,
            (after, through),
            limit,
        )?;
        Ok(streams::Read::whole(rows, cut))
    };
    Ok(streams::ranges(pool, keys, STREAM_BATCH, fetch))
}

/// Records what became of recipients. Safe to repeat: a status only moves forward, so a
/// retried or late outcome changes nothing. Contacts whose message went out get their
/// `last_messaged_at`, and the dynamic segments that read it follow, in the same
/// transaction. Rows are locked in contact id order, and a lost race is run again.
pub async fn record(
    env: &Env,
    tenant: Tenant,
    id: i64,
    outcomes: Vec<Outcome>,
) -> Result<Applied, Error> {
    let today = env.clock.today();
    let total = outcomes.len() as i64;
    let kept = one_per_recipient(outcomes);
    let duplicates = total - kept.len() as i64;
    pool::retrying_transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        let send = find_live(conn, tenant.id, id)?;
        let (mut applied, messaged) = send_outcomes::record(conn, tenant.id, &send, &kept)?;
        dynamic::contacts_messaged(conn, tenant.id, today, &messaged)?;
        applied.unchanged += duplicates;
        Ok(applied)
    })
    .await
}

/// Days ahead whose partitions are made in advance.
const DAYS_AHEAD: u64 = 3;

/// Makes the partitions of today and the next days, and drops those past
/// `retention_days` after their sends kept their final counts. One replica at a time;
/// the others skip. Returns how many sends expired.
pub async fn upkeep(env: &Env, retention_days: u32) -> Result<usize, Error> {
    pool::run(&env.pool, move |conn| {
        locks::on_one_replica(conn, Lock::SendUpkeep, |conn| {
            upkeep_locked(conn, retention_days)
        })
        .map(Option::unwrap_or_default)
    })
    .await
}

fn upkeep_locked(conn: &mut PgConnection, retention_days: u32) -> Result<usize, Error> {
    let today = send_partitions::today(conn)?;
    for day in today.iter_days().take(DAYS_AHEAD as usize + 1) {
        if let Err(error) = send_partitions::ensure(conn, day) {
            // Rows of that day already sit in the default partition: they stay readable
            // there and go with retention.
            tracing::warn!(%day, %error, "could not make a send partition");
        }
    }
    let horizon = today - chrono::Days::new(u64::from(retention_days));
    let mut expired = 0;
    for day in send_partitions::before(conn, horizon)? {
        expired += send_partitions::expire_day(conn, day)?;
    }
    expired += send_partitions::expire_default(conn, horizon)?;
    Ok(expired)
}
