//! Audience resolution: who a campaign reaches, why the others are left out, and the
//! recipients themselves, paged or streamed.

use diesel::prelude::*;

use super::streams::{self, Keys};
use super::Env;
use crate::core::audience::{unique, Counts, Recipient};
use crate::core::error::{Error, FieldError};
use crate::core::tenant::Tenant;
use crate::core::types::Channel;
use crate::db::audience::{Audience, RangeRecipients};
use crate::db::segments::{self, SegmentRow};
use crate::db::{campaigns, pool};

/// Checks that every segment named exists in the tenant and has the channel (422
/// naming the offending entry otherwise), and builds the audience.
pub fn resolve(
    conn: &mut PgConnection,
    tenant: &Tenant,
    channel: Channel,
    segment_ids: &[i64],
    exclude_segment_ids: &[i64],
) -> Result<Audience, Error> {
    let named = [segment_ids, exclude_segment_ids].concat();
    let found = segments::get_many(conn, tenant.id, &named)?;
    audience_of(tenant, channel, &found, segment_ids, exclude_segment_ids)
}

/// As [`resolve`], with the segments named already read (`found`).
fn audience_of(
    tenant: &Tenant,
    channel: Channel,
    found: &[SegmentRow],
    segment_ids: &[i64],
    exclude_segment_ids: &[i64],
) -> Result<Audience, Error> {
    let mut errors = Vec::new();
    let (included, members_estimate) =
        members(found, channel, segment_ids, "segment_ids", &mut errors);
    let (excluded, excluded_members) = members(
        found,
        channel,
        exclude_segment_ids,
        "exclude_segment_ids",
        &mut errors,
    );
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
        members_estimate: members_estimate.saturating_add(excluded_members),
    })
}

/// The segments named, each checked against those `found`: one that is missing or of
/// another channel is an error at `field[i]`. Returns their ids and their member counts
/// added up.
fn members(
    found: &[SegmentRow],
    channel: Channel,
    ids: &[i64],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> (Vec<i64>, i64) {
    let (mut named, mut recipients) = (Vec::new(), 0_i64);
    for (index, id) in ids.iter().enumerate() {
        let path = format!("{field}[{index}]");
        let Some(segment) = found.iter().find(|segment| segment.id == *id) else {
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
        named.push(segment.id);
        recipients = recipients.saturating_add(segment.recipients);
    }
    (named, recipients)
}

/// The campaign's audience, its segments checked as [`resolve`] does, and the tenant's
/// lowest and highest contact id (see [`keys_after`]).
pub fn campaign_audience(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: i64,
) -> Result<(Audience, Option<(i64, i64)>), Error> {
    let setup = campaigns::audience_setup(conn, tenant.id, id)?;
    let named = &setup.campaign;
    let audience = audience_of(
        tenant,
        named.campaign.channel(),
        &setup.segments,
        &named.segment_ids,
        &named.exclude_segment_ids,
    )?;
    Ok((audience, setup.contact_ids))
}

/// The audience summary of a campaign.
pub async fn campaign_counts(env: &Env, tenant: Tenant, id: i64) -> Result<Counts, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let (audience, _) = campaign_audience(conn, &tenant, id)?;
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
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let (included, excluded) = (unique(&segment_ids), unique(&exclude_segment_ids));
        let audience = resolve(conn, &tenant, channel, &included, &excluded)?;
        Ok::<_, Error>(audience.counts(conn)?)
    })
    .await
}

/// The contact ids the audience's reads split into ranges, past `after`, and about how
/// many members lie among them.
fn keys_after(audience: &Audience, contact_ids: Option<(i64, i64)>, after: i64) -> Option<Keys> {
    contact_ids
        .and_then(|(first, last)| Keys::new(first, last, audience.members_estimate).after(after))
}

/// The most members a page's read examines: where nearly every member is left out
/// (opted out, unreachable), a page reads on in steps up to this size.
const PAGE_READ_MOST: i64 = 20_000;

/// Up to `limit` recipients after contact id `after`, read as the stream reads them (see
/// [`streams::first_rows`]).
pub async fn page(
    env: &Env,
    tenant: Tenant,
    id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Recipient>, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let (audience, contact_ids) = campaign_audience(conn, &tenant, id)?;
        let keys = keys_after(&audience, contact_ids, after);
        // A dense audience's page reads contacts and memberships in one statement: at
        // 1M contacts, about 1.8 ms of the database's time against 3.5-4.5 ms for the
        // members, then their contacts by id.
        let dense = keys.is_some_and(|keys| keys.is_dense());
        // `ask` bounds the members a read examines; the dense read stops at its rows,
        // which no read needs more of than the page holds.
        let read = |conn: &mut PgConnection, after, through, ask: i64| {
            range_read(if dense {
                audience.dense_recipients_in(conn, (after, through), ask.min(limit))?
            } else {
                audience.recipients_in(conn, (after, through), ask)?
            })
        };
        streams::first_rows(conn, keys, (limit, PAGE_READ_MOST), read)
    })
    .await
}

/// Members a stream's range aims to hold: the reads are bounded by their range and their
/// limit whatever the statistics (see [`Audience::recipients_in`]), so they can be large.
const STREAM_BATCH: i64 = 20_000;

fn range_read(read: RangeRecipients) -> Result<streams::Read<Recipient>, Error> {
    Ok(streams::Read {
        rows: read.recipients,
        examined: read.examined,
        cut: read.next,
    })
}

/// Every recipient, in batches in contact id order (see [`streams::ranges`]).
pub async fn stream(
    env: &Env,
    tenant: Tenant,
    id: i64,
) -> Result<streams::Batches<Recipient>, Error> {
    let pool = env.pool.tenant(tenant.id);
    let (audience, keys) = pool::run(&pool, move |conn| {
        let (audience, contact_ids) = campaign_audience(conn, &tenant, id)?;
        let keys = keys_after(&audience, contact_ids, 0);
        Ok::<_, Error>((audience, keys))
    })
    .await?;
    let fetch = move |conn: &mut PgConnection, after, through, limit| {
        range_read(audience.recipients_in(conn, (after, through), limit)?)
    };
    Ok(streams::ranges(pool, keys, STREAM_BATCH, fetch))
}
