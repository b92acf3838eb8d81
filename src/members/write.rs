//! Adding members: one routine for every route that adds them, so the eligibility rule
//! and the endpoint limit apply the same way everywhere.

use std::collections::BTreeSet;

use diesel::PgConnection;

use super::dto::{MembershipReport, Rejection, Warning, MAX_LISTED};
use super::queries::{self, ContactSource};
use crate::eligibility::{Requirements, Verdict, CONTACT_NOT_FOUND, NO_VALIDATED_MOBILE_WARNING};
use crate::error::ApiError;
use crate::segments::queries::SegmentRow;
use crate::segments::{Channel, SegmentKind};
use crate::tenants::TenantRow;

/// Locks and returns the static segments named, in the order named; 404 for a missing
/// one, 409 for a dynamic one.
pub fn lock_static_segments(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    ids: &[i64],
) -> Result<Vec<SegmentRow>, ApiError> {
    let unique: Vec<i64> = ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let locked = queries::lock_segments(conn, tenant.id, &unique)?;
    ids.iter()
        .map(|id| {
            let segment = locked
                .iter()
                .find(|s| s.id == *id)
                .ok_or(ApiError::NotFound("segment"))?;
            if SegmentKind::from_db(&segment.kind) == SegmentKind::Dynamic {
                return Err(super::read_only(*id));
            }
            Ok(segment.clone())
        })
        .collect()
}

/// Adds the contacts of `source` to each segment, all or nothing for the endpoint limit.
/// `named_ids` are the ids the caller listed, so unknown ones can be reported.
pub fn add_members(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    segment_ids: &[i64],
    source: ContactSource,
    named_ids: Option<&BTreeSet<i64>>,
) -> Result<Vec<(i64, MembershipReport)>, ApiError> {
    if tenant.endpoint_limit.is_some() {
        queries::lock_tenant(conn, tenant.id)?;
    }
    let segments = lock_static_segments(conn, tenant, segment_ids)?;
    let rules = |segment: &SegmentRow| {
        Requirements::for_channel(
            Channel::from_db(&segment.channel),
            tenant.require_privacy_consent,
        )
    };
    if let Some(limit) = tenant.endpoint_limit {
        check_endpoint_limit(conn, tenant, limit, &segments, source, &rules)?;
    }
    let mut reports = Vec::with_capacity(segments.len());
    let mut missing: Option<Vec<i64>> = None;
    for segment in &segments {
        let requirements = rules(segment);
        let added = queries::insert_eligible(conn, segment.id, source, requirements)? as i64;
        let tally = queries::tally(conn, source, requirements)?;
        // Ids named that matched no contact of the tenant: looked up only when some did not.
        let missing = match (named_ids, &missing) {
            (_, Some(missing)) => missing.clone(),
            (Some(named), None) if (named.len() as i64) > tally.eligible + tally.refused => {
                let found: BTreeSet<i64> =
                    queries::existing_ids(conn, source)?.into_iter().collect();
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
        if tally.refused > 0 {
            let refused = queries::refused(conn, source, requirements, MAX_LISTED)?;
            rejected.extend(refused.into_iter().filter_map(|(contact_id, facts)| {
                match requirements.verdict(facts) {
                    Verdict::Rejected(issue) => Some(Rejection {
                        contact_id,
                        code: issue.code.into(),
                        message: issue.message.into(),
                    }),
                    _ => None,
                }
            }));
        }
        rejected.truncate(MAX_LISTED as usize);
        let mut warnings = Vec::new();
        if requirements.warn_without_phone && tally.eligible_without_phone > 0 {
            warnings.push(Warning {
                code: NO_VALIDATED_MOBILE_WARNING.code.into(),
                message: NO_VALIDATED_MOBILE_WARNING.message.into(),
                contact_ids: queries::eligible_without_phone(
                    conn,
                    source,
                    requirements,
                    MAX_LISTED,
                )?,
                count: tally.eligible_without_phone,
            });
        }
        let recipients = queries::adjust_recipients(conn, tenant.id, segment.id, added)?;
        reports.push((
            segment.id,
            MembershipReport {
                added,
                already_members: tally.eligible - added,
                rejected,
                rejected_total: tally.refused + missing.len() as i64,
                warnings,
                recipients,
            },
        ));
    }
    Ok(reports)
}

/// Refuses the write whole if the endpoints it adds would take the tenant past its limit.
fn check_endpoint_limit(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    limit: i64,
    segments: &[SegmentRow],
    source: ContactSource,
    rules: &dyn Fn(&SegmentRow) -> Requirements,
) -> Result<(), ApiError> {
    // Segments of one channel share endpoints: count each channel once, with the
    // loosest rule among its segments (they differ only by channel here).
    let mut channels: Vec<&SegmentRow> = Vec::new();
    for segment in segments {
        if !channels.iter().any(|s| s.channel == segment.channel) {
            channels.push(segment);
        }
    }
    let mut requested = 0;
    for segment in channels {
        let holders = crate::endpoints::holders(conn, tenant.id, &segment.channel, None)?;
        requested += queries::new_endpoints(conn, source, rules(segment), holders)?;
    }
    if requested == 0 {
        return Ok(());
    }
    let used = crate::endpoints::used(conn, tenant.id)?;
    if used + requested <= limit {
        return Ok(());
    }
    Err(crate::endpoints::limit_exceeded(used, limit, requested))
}
