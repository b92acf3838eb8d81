//! Campaigns: which segments a send reaches and which it leaves out.

use diesel::PgConnection;

use super::{audience, check, Env, Precondition};
use crate::core::audience::unique;
use crate::core::error::Error;
use crate::core::tenant::Tenant;
use crate::core::types::Channel;
use crate::db::campaigns::{self, CampaignChanges, CampaignWithSegments};
use crate::db::{pool, segments, sends};

/// Checks the segments (as an audience would read them) and stores them. The segments
/// are held first, so one deleted at the same moment is either gone before the check
/// (422 naming it) or deleted after the campaign is saved (and then removed from it).
fn save_segments(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: i64,
    channel: Channel,
    included: &[i64],
    excluded: &[i64],
) -> Result<(), Error> {
    let (included, excluded) = (unique(included), unique(excluded));
    let named: Vec<i64> = included.iter().chain(&excluded).copied().collect();
    segments::hold(conn, tenant.id, &named)?;
    audience::resolve(conn, tenant, channel, &included, &excluded)?;
    Ok(campaigns::set_segments(
        conn, tenant.id, id, &included, &excluded,
    )?)
}

pub struct NewCampaign {
    pub name: String,
    pub channel: Channel,
    pub segment_ids: Vec<i64>,
    pub exclude_segment_ids: Vec<i64>,
}

pub struct CampaignUpdate {
    pub name: Option<String>,
    pub segment_ids: Option<Vec<i64>>,
    pub exclude_segment_ids: Option<Vec<i64>>,
}

pub async fn list(
    env: &Env,
    tenant: Tenant,
    limit: i64,
    offset: i64,
) -> Result<(Vec<CampaignWithSegments>, i64), Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let (rows, total) = campaigns::list(conn, tenant.id, limit, offset)?;
        Ok::<_, Error>((campaigns::with_segments(conn, tenant.id, rows)?, total))
    })
    .await
}

pub async fn create(
    env: &Env,
    tenant: Tenant,
    input: NewCampaign,
) -> Result<CampaignWithSegments, Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        let row = campaigns::insert(conn, tenant.id, &input.name, input.channel)?;
        save_segments(
            conn,
            &tenant,
            row.id,
            input.channel,
            &input.segment_ids,
            &input.exclude_segment_ids,
        )?;
        campaigns::find(conn, tenant.id, row.id)
    })
    .await
}

pub async fn get(env: &Env, tenant: Tenant, id: i64) -> Result<CampaignWithSegments, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        campaigns::find(conn, tenant.id, id)
    })
    .await
}

pub async fn update(
    env: &Env,
    tenant: Tenant,
    id: i64,
    input: CampaignUpdate,
    precondition: Option<Precondition<CampaignWithSegments>>,
) -> Result<CampaignWithSegments, Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        campaigns::lock(conn, tenant.id, id)?;
        let current = campaigns::find(conn, tenant.id, id)?;
        check(&precondition, &current)?;
        if input.segment_ids.is_some() || input.exclude_segment_ids.is_some() {
            let included = input.segment_ids.unwrap_or(current.segment_ids);
            let excluded = input
                .exclude_segment_ids
                .unwrap_or(current.exclude_segment_ids);
            let channel = current.campaign.channel();
            save_segments(conn, &tenant, id, channel, &included, &excluded)?;
        }
        campaigns::update(conn, tenant.id, id, &CampaignChanges { name: input.name })?;
        campaigns::find(conn, tenant.id, id)
    })
    .await
}

pub async fn delete(
    env: &Env,
    tenant: Tenant,
    id: i64,
    precondition: Option<Precondition<CampaignWithSegments>>,
) -> Result<(), Error> {
    // Locked first: a send freezing at this moment (which locks it too) either finishes
    // first, and is seen here, or waits and finds the campaign gone.
    let deleted = pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        if !campaigns::lock(conn, tenant.id, id)? {
            return Ok(false);
        }
        check(&precondition, &campaigns::find(conn, tenant.id, id)?)?;
        if sends::campaign_has_sends(conn, tenant.id, id)? {
            return Err(Error::Conflict {
                code: "campaign_has_sends",
                detail: format!(
                    "campaign {id} has sends, the record of what was sent; it cannot be deleted"
                ),
            });
        }
        Ok(campaigns::delete(conn, tenant.id, id)?)
    })
    .await?;
    if deleted {
        Ok(())
    } else {
        Err(Error::NotFound("campaign"))
    }
}
