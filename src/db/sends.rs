//! Sends and their frozen recipients. Every statement on `send_recipients` names the
//! send's day (`created_on`), its partition key, so it reads one partition.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date};

use super::audience::Audience;
use super::events;
use super::paging::with_total;
use super::schema::sends;
use super::sql::{hashed, Statement};
use crate::core::audience::Counts;
use crate::core::event::EventType;
use crate::core::send::Progress;
use crate::core::types::Channel;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sends)]
pub struct SendRow {
    pub id: i64,
    pub campaign_id: i64,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub created_on: NaiveDate,
    pub total_unique: i64,
    pub by_exclusion: i64,
    pub opted_out: i64,
    pub no_consent: i64,
    pub no_address: i64,
    pub expired_at: Option<DateTime<Utc>>,
    pub final_progress: Option<serde_json::Value>,
}

impl SendRow {
    pub fn channel(&self) -> Channel {
        // The CHECK constraint allows only the three channels.
        Channel::parse(&self.channel).unwrap_or(Channel::Whatsapp)
    }

    /// The audience summary of the moment it froze.
    pub fn summary(&self) -> Counts {
        Counts {
            total_unique: self.total_unique,
            by_exclusion: self.by_exclusion,
            opted_out: self.opted_out,
            no_consent: self.no_consent,
            no_address: self.no_address,
        }
    }

    /// What each status counted when its recipients were dropped, if they were.
    pub fn final_progress(&self) -> Option<Progress> {
        self.final_progress
            .clone()
            .and_then(|value| serde_json::from_value(value).ok())
    }
}

type CountsRow = (BigInt, BigInt, BigInt, BigInt, BigInt);

/// Creates the send and freezes `audience` into it, in one statement that reads each
/// member once: the eligible are written with the name and address they have now, and
/// every member is counted under its reason, so the summary and the frozen list are of
/// the same instant. Records `send.created`.
pub fn freeze(
    conn: &mut PgConnection,
    tenant_id: i64,
    campaign_id: i64,
    audience: &Audience,
) -> QueryResult<SendRow> {
    // The planner's statistics can lag a bulk write to the members by minutes, and then
    // it estimates a handful of rows and probes contacts one by one (13 s for 900k
    // recipients instead of 4.6). The segments' own counts do not lag: a large audience
    // is read with hashes, in memory.
    let large = audience.is_large();
    if large {
        audience.give_hashes_room(conn)?;
    }
    let (id, created_on): (i64, NaiveDate) = diesel::insert_into(sends::table)
        .values((
            sends::tenant_id.eq(tenant_id),
            sends::campaign_id.eq(campaign_id),
            sends::channel.eq(audience.channel.as_str()),
            sends::created_at.eq(diesel::dsl::now),
            sends::created_on.eq(diesel::dsl::sql::<Date>("(now() AT TIME ZONE 'UTC')::date")),
            sends::total_unique.eq(0),
            sends::by_exclusion.eq(0),
            sends::opted_out.eq(0),
            sends::no_consent.eq(0),
            sends::no_address.eq(0),
        ))
        .returning((sends::id, sends::created_on))
        .get_result(conn)?;
    let frozen = Statement::<CountsRow>::new("WITH members AS MATERIALIZED (")
        .statement(audience.members_with_reasons())
        .sql(
            "), frozen AS (INSERT INTO send_recipients \
                 (tenant_id, send_id, created_on, contact_id, name, address) SELECT ",
        )
        .integer(tenant_id)
        .sql(", ")
        .integer(id)
        .sql(", ")
        .day(created_on)
        .sql(
            ", id, name, address FROM members WHERE reason = 0) \
                 SELECT count(*), count(*) FILTER (WHERE reason = 1), \
                 count(*) FILTER (WHERE reason = 2), count(*) FILTER (WHERE reason = 3), \
                 count(*) FILTER (WHERE reason = 4) FROM members",
        );
    let (total_unique, by_exclusion, opted_out, no_consent, no_address) = if large {
        hashed(conn, |conn| {
            frozen.get_result::<(i64, i64, i64, i64, i64)>(conn)
        })?
    } else {
        frozen.get_result::<(i64, i64, i64, i64, i64)>(conn)?
    };
    let eligible = total_unique - by_exclusion - opted_out - no_consent - no_address;
    let details = serde_json::json!({"send_id": id, "campaign_id": campaign_id, "total": eligible});
    events::stage_details(conn, tenant_id, EventType::SendCreated, None, &details)?;
    diesel::update(sends::table.find((tenant_id, id)))
        .set((
            sends::total_unique.eq(total_unique),
            sends::by_exclusion.eq(by_exclusion),
            sends::opted_out.eq(opted_out),
            sends::no_consent.eq(no_consent),
            sends::no_address.eq(no_address),
        ))
        .returning(SendRow::as_returning())
        .get_result(conn)
}

pub fn get(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<SendRow> {
    sends::table
        .find((tenant_id, id))
        .select(SendRow::as_select())
        .first(conn)
}

/// A campaign's sends, newest first, and how many it has.
pub fn of_campaign(
    conn: &mut PgConnection,
    tenant_id: i64,
    campaign_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<SendRow>, i64)> {
    let mine = || {
        sends::table
            .filter(sends::tenant_id.eq(tenant_id))
            .filter(sends::campaign_id.eq(campaign_id))
    };
    let page = mine()
        .order(sends::id.desc())
        .limit(limit)
        .offset(offset)
        .select((
            SendRow::as_select(),
            mine().into_boxed().count().single_value(),
        ))
        .load(conn)?;
    with_total(page, offset, || mine().count().get_result(conn))
}

pub fn campaign_has_sends(
    conn: &mut PgConnection,
    tenant_id: i64,
    campaign_id: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sends::table
            .filter(sends::tenant_id.eq(tenant_id))
            .filter(sends::campaign_id.eq(campaign_id)),
    ))
    .get_result(conn)
}

/// The part of a statement that picks one send's recipients, as `r`.
pub(super) const ONE_SEND: &str = "r.tenant_id = $1 AND r.send_id = $2 AND r.created_on = $3";

#[derive(QueryableByName)]
struct ProgressRow {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
    #[diesel(sql_type = BigInt)]
    sent: i64,
    #[diesel(sql_type = BigInt)]
    delivered: i64,
    #[diesel(sql_type = BigInt)]
    read: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    skipped: i64,
}

/// How many recipients are in each status now. Those still waiting who opted out since
/// the freeze count as skipped, never as pending.
pub fn progress(conn: &mut PgConnection, tenant_id: i64, send: &SendRow) -> QueryResult<Progress> {
    let row: ProgressRow = diesel::sql_query(format!(
        "SELECT count(*) AS total, count(*) FILTER (WHERE r.status = 0) AS waiting, \
         count(*) FILTER (WHERE r.status = 1) AS sent, \
         count(*) FILTER (WHERE r.status = 2) AS delivered, \
         count(*) FILTER (WHERE r.status = 3) AS read, \
         count(*) FILTER (WHERE r.status = 4) AS failed, \
         (SELECT count(*) FROM send_recipients r JOIN contacts c ON c.tenant_id = $1 \
          AND c.id = r.contact_id WHERE {ONE_SEND} AND r.status = 0 AND c.opted_out) AS skipped \
         FROM send_recipients r WHERE {ONE_SEND}"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(send.id)
    .bind::<Date, _>(send.created_on)
    .get_result(conn)?;
    Ok(Progress {
        total: row.total,
        pending: row.waiting - row.skipped,
        sent: row.sent,
        delivered: row.delivered,
        read: row.read,
        failed: row.failed,
        skipped: row.skipped,
    })
}
