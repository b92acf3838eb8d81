//! Audience resolution: who a campaign reaches, why the others are left out, and the
//! recipients themselves, paged or streamed.

use diesel::prelude::*;
use tokio::sync::mpsc;

use super::Env;
use crate::core::audience::{unique, Counts, Recipient};
use crate::core::error::{Error, FieldError};
use crate::core::tenant::Tenant;
use crate::core::types::Channel;
use crate::db::audience::Audience;
use crate::db::{campaigns, pool, segments};

/// Checks that every segment named exists in the tenant and has the channel (422
/// naming the offending entry otherwise), and builds the audience.
pub fn resolve(
    conn: &mut PgConnection,
    tenant: &Tenant,
    channel: Channel,
    segment_ids: &[i64],
    exclude_segment_ids: &[i64],
) -> Result<Audience, Error> {
    let mut errors = Vec::new();
    let included = members(
        conn,
        tenant.id,
        channel,
        segment_ids,
        "segment_ids",
        &mut errors,
    )?;
    let excluded = members(
        conn,
        tenant.id,
        channel,
        exclude_segment_ids,
        "exclude_segment_ids",
        &mut errors,
    )?;
    for (index, id) in exclude_segment_ids.iter().enumerate() {
        if segment_ids.contains(id) {
            errors.push(FieldError::new(
                format!("exclude_segment_ids[{index}]"),
                "included_and_excluded",
                format!("segment {id} is both included and excluded"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(Audience {
        tenant_id: tenant.id,
        channel,
        included,
        excluded,
        consent_required: tenant.require_privacy_consent,
    })
}

/// The segments named, each checked: one that is missing or of another channel is an
/// error at `field[i]`.
fn members(
    conn: &mut PgConnection,
    tenant_id: i64,
    channel: Channel,
    ids: &[i64],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<i64>, Error> {
    let mut found = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let path = format!("{field}[{index}]");
        let Some(segment) = segments::get(conn, tenant_id, *id).optional()? else {
            errors.push(FieldError::new(
                path,
                "segment_not_found",
                format!("no segment {id} exists"),
            ));
            continue;
        };
        if segment.channel() != channel {
            errors.push(FieldError::new(
                path,
                "channel_mismatch",
                format!(
                    "segment {id} (\"{}\") is for {}, not {}",
                    segment.name,
                    segment.channel,
                    channel.as_str()
                ),
            ));
            continue;
        }
        found.push(segment.id);
    }
    Ok(found)
}

fn campaign_audience(conn: &mut PgConnection, tenant: &Tenant, id: i64) -> Result<Audience, Error> {
    let campaign = campaigns::find(conn, tenant.id, id)?;
    resolve(
        conn,
        tenant,
        campaign.campaign.channel(),
        &campaign.segment_ids,
        &campaign.exclude_segment_ids,
    )
}

/// The audience summary of a campaign.
pub async fn campaign_counts(env: &Env, tenant: Tenant, id: i64) -> Result<Counts, Error> {
    pool::run(&env.pool, move |conn| {
        let audience = campaign_audience(conn, &tenant, id)?;
        Ok::<_, Error>(audience.counts(conn)?)
    })
    .await
}

/// The audience summary of segments given, without a campaign.
pub async fn counts(
    env: &Env,
    tenant: Tenant,
    channel: Channel,
    segment_ids: Vec<i64>,
    exclude_segment_ids: Vec<i64>,
) -> Result<Counts, Error> {
    pool::run(&env.pool, move |conn| {
        let (included, excluded) = (unique(&segment_ids), unique(&exclude_segment_ids));
        let audience = resolve(conn, &tenant, channel, &included, &excluded)?;
        Ok::<_, Error>(audience.counts(conn)?)
    })
    .await
}

/// Up to `limit` recipients after contact id `after`, and the campaign's channel.
pub async fn page(
    env: &Env,
    tenant: Tenant,
    id: i64,
    after: i64,
    limit: i64,
) -> Result<(Vec<Recipient>, Channel), Error> {
    pool::run(&env.pool, move |conn| {
        let audience = campaign_audience(conn, &tenant, id)?;
        let recipients = audience.recipients_after(conn, after, limit)?;
        Ok::<_, Error>((recipients, audience.channel))
    })
    .await
}

/// Recipients fetched per database round trip while streaming.
const STREAM_BATCH: usize = 5000;

/// Batches waiting for a slow client; beyond this the database reads pause.
const STREAM_BUFFER: usize = 2;

/// A client that reads nothing for this long loses its stream, so a stalled download
/// cannot hold a database connection and its transaction forever.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(60);

/// Every recipient, in batches, read from one database cursor on a blocking thread. The
/// bounded channel is the backpressure: memory stays flat and a slow client slows the
/// reads; a client that goes away ends the transaction. An error ends the stream.
pub async fn stream(
    env: &Env,
    tenant: Tenant,
    id: i64,
) -> Result<(Channel, mpsc::Receiver<Result<Vec<Recipient>, Error>>), Error> {
    let audience = pool::run(&env.pool, move |conn| campaign_audience(conn, &tenant, id)).await?;
    let channel = audience.channel;
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let pool = env.pool.clone();
    tokio::spawn(async move {
        let failures = sender.clone();
        let read = pool::transaction(&pool, move |conn| {
            audience.open_cursor(conn)?;
            loop {
                let batch = Audience::fetch(conn, STREAM_BATCH)?;
                let done = batch.len() < STREAM_BATCH;
                if !deliver(&sender, batch) || done {
                    return Ok(());
                }
            }
        })
        .await;
        if let Err(error) = read {
            tracing::warn!(%error, "audience stream cut short");
            let _ = failures.send(Err(error)).await;
        }
    });
    Ok((channel, receiver))
}

/// Hands a batch to the response, waiting while the client is slow; false when the
/// client has gone or stalled.
fn deliver(sender: &mpsc::Sender<Result<Vec<Recipient>, Error>>, batch: Vec<Recipient>) -> bool {
    let runtime = tokio::runtime::Handle::current();
    matches!(
        runtime.block_on(tokio::time::timeout(STALLED_CLIENT, sender.send(Ok(batch)))),
        Ok(Ok(()))
    )
}
