//! Static segment membership: one routine adds members for every route that does, so the
//! eligibility rule and the endpoint limit apply the same way everywhere.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use diesel::prelude::*;

use super::{dynamic, endpoints, filters, Env};
use crate::core::eligibility::{
    Requirements, Verdict, CONTACT_NOT_FOUND, NO_VALIDATED_MOBILE_WARNING,
};
use crate::core::error::Error;
use crate::core::membership::{Rejection, Removed, Report, Warning, MAX_LISTED};
use crate::core::tenant::Tenant;
use crate::core::types::SegmentKind;
use crate::db::contacts::{selected, with_ids, ContactFilters, ContactRow};
use crate::db::member_reads::{self, MemberRow};
use crate::db::members::{self, ContactSource};
use crate::db::pool;
use crate::db::segments::{self, SegmentRow};

/// 409 for writes to a dynamic segment's members.
pub fn read_only(segment_id: i64) -> Error {
    Error::conflict(
        "dynamic_segment_read_only",
        format!(
            "Segment {segment_id} is dynamic: its members follow its filter and cannot be written."
        ),
    )
}

/// Locks and returns the static segments named, in the order named; 404 for a missing
/// one, 409 for a dynamic one.
pub fn lock_static_segments(
    conn: &mut PgConnection,
    tenant: &Tenant,
    ids: &[i64],
) -> Result<Vec<SegmentRow>, Error> {
    let unique: Vec<i64> = ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let locked = members::lock_segments(conn, tenant.id, &unique)?;
    ids.iter()
        .map(|id| {
            let segment = locked
                .iter()
                .find(|s| s.id == *id)
                .ok_or(Error::NotFound("segment"))?;
            if segment.kind() == SegmentKind::Dynamic {
                return Err(read_only(*id));
            }
            Ok(segment.clone())
        })
        .collect()
}

fn rules(tenant: &Tenant, segment: &SegmentRow) -> Requirements {
    Requirements::for_channel(segment.channel(), tenant.require_privacy_consent)
}

/// Adds the contacts of `source` to each segment, all or nothing for the endpoint limit.
/// `named_ids` are the ids the caller listed, so unknown ones can be reported;
/// `import_id` the import adding them, if one is.
pub fn add_members(
    conn: &mut PgConnection,
    tenant: &Tenant,
    today: NaiveDate,
    segment_ids: &[i64],
    source: ContactSource,
    named_ids: Option<&BTreeSet<i64>>,
    import_id: Option<i64>,
) -> Result<Vec<(i64, Report)>, Error> {
    dynamic::begin_write(conn, tenant.id)?;
    if tenant.endpoint_limit.is_some() {
        members::lock_tenant(conn, tenant.id)?;
    }
    let segments = lock_static_segments(conn, tenant, segment_ids)?;
    // Segments of one channel share endpoints: each channel counts once.
    let mut channels = Vec::new();
    for segment in &segments {
        if !channels.iter().any(|(c, _)| *c == segment.channel()) {
            channels.push((segment.channel(), rules(tenant, segment)));
        }
    }
    endpoints::check_members(conn, tenant, &channels, source)?;
    let mut reports = Vec::with_capacity(segments.len());
    let mut missing: Option<Vec<i64>> = None;
    for segment in &segments {
        let requirements = rules(tenant, segment);
        let addition = members::add_eligible(
            conn,
            tenant.id,
            segment.id,
            source,
            requirements,
            import_id,
            MAX_LISTED,
        )?;
        let (added, tally) = (addition.added, addition.tally);
        // Ids named that matched no contact of the tenant: looked up only when some did not.
        let missing = match (named_ids, &missing) {
            (_, Some(missing)) => missing.clone(),
            (Some(named), None) if (named.len() as i64) > tally.eligible + tally.refused => {
                let found: BTreeSet<i64> =
                    members::existing_ids(conn, source)?.into_iter().collect();
                missing
                    .insert(named.difference(&found).copied().collect())
                    .clone()
            }
            _ => Vec::new(),
        };
        let mut rejected: Vec<Rejection> = missing
            .iter()
            .map(|id| Rejection {
                contact_id: *id,
                code: CONTACT_NOT_FOUND.code.into(),
                message: CONTACT_NOT_FOUND.message.into(),
            })
            .collect();
        rejected.extend(
            addition
                .refused
                .into_iter()
                .filter_map(|(contact_id, facts)| match requirements.verdict(facts) {
                    Verdict::Rejected(issue) => Some(Rejection {
                        contact_id,
                        code: issue.code.into(),
                        message: issue.message.into(),
                    }),
                    _ => None,
                }),
        );
        rejected.truncate(MAX_LISTED as usize);
        let mut warnings = Vec::new();
        if requirements.warn_without_phone && tally.eligible_without_phone > 0 {
            warnings.push(Warning {
                code: NO_VALIDATED_MOBILE_WARNING.code.into(),
                message: NO_VALIDATED_MOBILE_WARNING.message.into(),
                contact_ids: addition.without_phone,
                count: tally.eligible_without_phone,
            });
        }
        let recipients = members::adjust_recipients(conn, tenant.id, segment.id, added)?;
        reports.push((
            segment.id,
            Report {
                added,
                already_members: tally.eligible - added,
                rejected,
                rejected_total: tally.refused + missing.len() as i64,
                warnings,
                recipients,
            },
        ));
    }
    // Segments whose filters name these ones follow, for the contacts written.
    let written: Vec<i64> = segments.iter().map(|s| s.id).collect();
    dynamic::members_written(conn, tenant.id, today, &written, &|conn| {
        Ok(members::existing_ids(conn, source)?)
    })?;
    Ok(reports)
}

/// Adds the contacts named (each once) to every segment named; one report per segment,
/// in the order of `segment_ids`.
pub async fn add_by_ids(
    env: &Env,
    tenant: Tenant,
    segment_ids: Vec<i64>,
    contact_ids: Vec<i64>,
) -> Result<Vec<(i64, Report)>, Error> {
    let named: BTreeSet<i64> = contact_ids.into_iter().collect();
    let today = env.clock.today();
    pool::retrying_transaction(&env.pool.tenant(tenant.id), move |conn| {
        let source = with_ids(tenant.id, named.iter().copied().collect());
        add_members(
            conn,
            &tenant,
            today,
            &segment_ids,
            &source,
            Some(&named),
            None,
        )
    })
    .await
}

/// "All search results": every contact matching the search, tag, opt-out and filter.
pub struct Selection {
    pub search: Option<String>,
    pub tag: Option<String>,
    pub opted_out: Option<bool>,
    pub filter: Option<serde_json::Value>,
}

pub async fn add_selection(
    env: &Env,
    tenant: Tenant,
    segment_id: i64,
    selection: Selection,
) -> Result<Report, Error> {
    if let Some(filter) = &selection.filter {
        filters::check_size(filter)?;
    }
    let filters = ContactFilters::new(
        selection.search.as_deref(),
        selection.tag,
        selection.opted_out,
        tenant.default_region.as_deref(),
    );
    let today = env.clock.today();
    let mut reports = pool::retrying_transaction(&env.pool.tenant(tenant.id), move |conn| {
        let condition = match &selection.filter {
            Some(filter) => {
                let node = filters::parse_filter(conn, tenant.id, filter, "filter", None)?;
                Some(filters::compile(tenant.id, today, &node))
            }
            None => None,
        };
        let source = selected(tenant.id, &filters, condition);
        add_members(conn, &tenant, today, &[segment_id], &source, None, None)
    })
    .await?;
    reports
        .pop()
        .map(|(_, report)| report)
        .ok_or_else(|| Error::internal("one segment, one report"))
}

pub async fn remove(
    env: &Env,
    tenant: Tenant,
    segment_id: i64,
    contact_ids: Vec<i64>,
) -> Result<Removed, Error> {
    let ids: Vec<i64> = contact_ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let today = env.clock.today();
    pool::retrying_transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        lock_static_segments(conn, &tenant, &[segment_id])?;
        let removed = members::remove(conn, tenant.id, segment_id, &ids)? as i64;
        let recipients = members::adjust_recipients(conn, tenant.id, segment_id, -removed)?;
        dynamic::members_written(conn, tenant.id, today, &[segment_id], &|_| Ok(ids.clone()))?;
        Ok(Removed {
            removed,
            recipients,
        })
    })
    .await
}

/// A page of a segment's members matching `search`, and their total.
pub async fn list(
    env: &Env,
    tenant: Tenant,
    segment_id: i64,
    search: Option<String>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MemberRow>, i64), Error> {
    let filters = ContactFilters::new(
        search.as_deref(),
        None,
        None,
        tenant.default_region.as_deref(),
    );
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let segment = segments::find(conn, tenant.id, segment_id)?;
        let source = selected(tenant.id, &filters, None);
        let (rows, total) =
            member_reads::list_members(conn, tenant.id, segment_id, &source, limit, offset)?;
        Ok::<_, Error>((joined_at(&segment, rows), total))
    })
    .await
}

/// A dynamic segment's members have no time they were added: they match its filter.
fn joined_at(segment: &SegmentRow, rows: Vec<MemberRow>) -> Vec<MemberRow> {
    match segment.kind() {
        SegmentKind::Static => rows,
        SegmentKind::Dynamic => rows.into_iter().map(|(row, _)| (row, None)).collect(),
    }
}

/// A page of the contacts not yet in a static segment, and their total.
pub async fn candidates(
    env: &Env,
    tenant: Tenant,
    segment_id: i64,
    search: Option<String>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ContactRow>, i64), Error> {
    let filters = ContactFilters::new(
        search.as_deref(),
        None,
        None,
        tenant.default_region.as_deref(),
    );
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let segment = segments::find(conn, tenant.id, segment_id)?;
        if segment.kind() == SegmentKind::Dynamic {
            return Err(read_only(segment_id));
        }
        let source = selected(tenant.id, &filters, None);
        Ok(member_reads::list_candidates(
            conn, tenant.id, segment_id, &source, limit, offset,
        )?)
    })
    .await
}

/// How to read a segment's members batch by batch, for an export.
#[derive(Clone)]
pub struct Export {
    tenant_id: i64,
    segment: SegmentRow,
}

/// Checks the segment exists and prepares its export.
pub async fn export(env: &Env, tenant: Tenant, segment_id: i64) -> Result<Export, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let segment = segments::find(conn, tenant.id, segment_id)?;
        Ok::<_, Error>(Export {
            tenant_id: tenant.id,
            segment,
        })
    })
    .await
}

impl Export {
    /// Up to `limit` members after contact id `after`, in contact id order.
    pub async fn batch(&self, env: &Env, after: i64, limit: i64) -> Result<Vec<MemberRow>, Error> {
        let export = self.clone();
        pool::run(&env.pool.tenant(export.tenant_id), move |conn| {
            let rows = member_reads::members_after(
                conn,
                export.tenant_id,
                export.segment.id,
                after,
                limit,
            )?;
            Ok::<_, Error>(joined_at(&export.segment, rows))
        })
        .await
    }
}
