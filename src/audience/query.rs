//! A campaign's audience as SQL: the union of the included segments (static members and
//! dynamic filters), minus the excluded ones, each contact once, minus the opted out, the
//! unreachable on the channel and, where the tenant requires it, those without consent.
//! Everything is evaluated in PostgreSQL, one statement per question.

use diesel::dsl::{case_when, count, count_star, not};
use diesel::prelude::*;

use crate::db::schema::contacts;
use crate::error::{ApiError, FieldError};
use crate::filter::sql::SqlCondition;
use crate::segments::queries::SegmentRow;
use crate::segments::{dynamic, Channel};
use crate::tenants::TenantRow;

#[derive(Clone)]
pub struct Audience {
    tenant_id: i64,
    channel: Channel,
    included: SqlCondition,
    excluded: SqlCondition,
    consent_required: bool,
}

/// The audience summary: `eligible` plus the excluded counts equals `total_unique`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub total_unique: i64,
    pub by_exclusion: i64,
    pub opted_out: i64,
    pub no_consent: i64,
    pub no_address: i64,
}

/// One recipient.
#[derive(Debug, Clone, Queryable)]
pub struct Recipient {
    pub contact_id: i64,
    pub name: String,
    pub phone_e164: Option<String>,
    pub email: Option<String>,
}

impl Recipient {
    /// The E.164 phone for WhatsApp and SMS, the email for email.
    pub fn address(&self, channel: Channel) -> String {
        let address = match channel {
            Channel::Email => &self.email,
            Channel::Whatsapp | Channel::Sms => &self.phone_e164,
        };
        address.clone().unwrap_or_default()
    }
}

impl Audience {
    /// Checks that every segment named exists in the tenant and has the channel (422
    /// naming the offending entry otherwise), and builds the audience's conditions.
    pub fn resolve(
        conn: &mut PgConnection,
        tenant: &TenantRow,
        channel: Channel,
        segment_ids: &[i64],
        exclude_segment_ids: &[i64],
    ) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let (static_ids, dynamic) = members(
            conn,
            tenant.id,
            channel,
            segment_ids,
            "segment_ids",
            &mut errors,
        )?;
        let included = SqlCondition::in_union(tenant.id, static_ids, dynamic);
        let (static_ids, mut dynamic) = members(
            conn,
            tenant.id,
            channel,
            exclude_segment_ids,
            "exclude_segment_ids",
            &mut errors,
        )?;
        if !static_ids.is_empty() {
            dynamic.push(SqlCondition::static_member_of(tenant.id, static_ids));
        }
        let excluded = SqlCondition::any(dynamic);
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
            return Err(ApiError::Validation(errors));
        }
        Ok(Self {
            tenant_id: tenant.id,
            channel,
            included,
            excluded,
            consent_required: tenant.require_privacy_consent,
        })
    }

    fn address(&self) -> SqlCondition {
        match self.channel {
            Channel::Email => SqlCondition::column_is_set("contacts.email"),
            Channel::Whatsapp | Channel::Sms => SqlCondition::column_is_set("contacts.phone_e164"),
        }
    }

    fn consent(&self) -> SqlCondition {
        if self.consent_required {
            SqlCondition::column_is_true("contacts.privacy_consent")
        } else {
            SqlCondition::always()
        }
    }

    fn members(&self) -> contacts::BoxedQuery<'static, diesel::pg::Pg> {
        contacts::table
            .filter(contacts::tenant_id.eq(self.tenant_id))
            .filter(self.included.clone())
            .into_boxed()
    }

    /// Each excluded contact is counted once, under the first reason in this order:
    /// exclusion segment, opted out, no consent, no address.
    pub fn counts(&self, conn: &mut PgConnection) -> QueryResult<Counts> {
        let kept = not(self.excluded.clone());
        let reachable = kept.clone().and(contacts::opted_out.eq(false));
        let consenting = reachable.clone().and(self.consent());
        let (total_unique, by_exclusion, opted_out, no_consent, no_address) = self
            .members()
            .select((
                count_star(),
                count(case_when(self.excluded.clone(), contacts::id)),
                count(case_when(kept.and(contacts::opted_out), contacts::id)),
                count(case_when(reachable.and(not(self.consent())), contacts::id)),
                count(case_when(consenting.and(not(self.address())), contacts::id)),
            ))
            .get_result::<(i64, i64, i64, i64, i64)>(conn)?;
        Ok(Counts {
            total_unique,
            by_exclusion,
            opted_out,
            no_consent,
            no_address,
        })
    }

    /// Up to `limit` recipients after contact id `after`, in contact id order.
    pub fn recipients_after(
        &self,
        conn: &mut PgConnection,
        after: i64,
        limit: i64,
    ) -> QueryResult<Vec<Recipient>> {
        self.members()
            .filter(not(self.excluded.clone()))
            .filter(contacts::opted_out.eq(false))
            .filter(self.consent())
            .filter(self.address())
            .filter(contacts::id.gt(after))
            .order(contacts::id)
            .limit(limit)
            .select((
                contacts::id,
                contacts::name,
                contacts::phone_e164,
                contacts::email,
            ))
            .load(conn)
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }
}

impl Counts {
    pub fn eligible(&self) -> i64 {
        self.total_unique - self.by_exclusion - self.opted_out - self.no_consent - self.no_address
    }
}

/// The segments' members: the static segments' ids, and the dynamic ones' compiled filters.
fn members(
    conn: &mut PgConnection,
    tenant_id: i64,
    channel: Channel,
    ids: &[i64],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Result<(Vec<i64>, Vec<SqlCondition>), ApiError> {
    let mut static_ids = Vec::new();
    let mut parts = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let path = format!("{field}[{index}]");
        let Some(segment): Option<SegmentRow> =
            crate::segments::queries::get(conn, tenant_id, *id).optional()?
        else {
            errors.push(FieldError::new(
                path,
                "segment_not_found",
                format!("no segment {id} exists"),
            ));
            continue;
        };
        if Channel::from_db(&segment.channel) != channel {
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
        match &segment.filter {
            Some(filter) => {
                let node =
                    dynamic::parse_filter(conn, tenant_id, filter, "filter", Some(segment.id))?;
                parts.push(dynamic::compile(tenant_id, &node));
            }
            None => static_ids.push(segment.id),
        }
    }
    Ok((static_ids, parts))
}
