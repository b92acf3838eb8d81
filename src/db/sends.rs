//! Sends and their frozen recipients. Every statement on `send_recipients` names the
//! send's day (`created_on`), its partition key, so it reads one partition.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Date, Nullable, SmallInt, Text, Timestamptz};

use super::audience::Audience;
use super::events;
use super::schema::sends;
use super::sql::Statement;
use crate::core::audience::Counts;
use crate::core::event::EventType;
use crate::core::send::{Applied, Outcome, OutcomeError, Progress, SendRecipient, Status};
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
    let large = large(conn, tenant_id, &audience.included)?;
    if large {
        diesel::sql_query(format!("SET LOCAL work_mem = '{FREEZE_WORK_MEM}'")).execute(conn)?;
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

/// Runs `work` with the planner's nested loops off: for set-based statements whose
/// every table access is bounded by its own index condition, so that whatever the
/// statistics say (a partition just filled, members just written), rows are matched with
/// hashes and never by rescanning one side for each row of the other.
fn hashed<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    diesel::sql_query("SET LOCAL enable_nestloop = off").execute(conn)?;
    let outcome = work(conn)?;
    diesel::sql_query("SET LOCAL enable_nestloop TO DEFAULT").execute(conn)?;
    Ok(outcome)
}

/// Members (counted once per segment) from which a freeze is read with hashes.
const LARGE_AUDIENCE: i64 = 20_000;

/// Memory a large freeze's hashes may take (per hash, for the one statement).
const FREEZE_WORK_MEM: &str = "64MB";

/// Whether the included segments hold, together, a large audience.
fn large(conn: &mut PgConnection, tenant_id: i64, included: &[i64]) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Members {
        #[diesel(sql_type = BigInt)]
        members: i64,
    }
    let counted: Members = diesel::sql_query(
        "SELECT coalesce(sum(recipients), 0)::bigint AS members FROM segments \
         WHERE tenant_id = $1 AND id = ANY($2)",
    )
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<BigInt>, _>(included)
    .get_result(conn)?;
    Ok(counted.members >= LARGE_AUDIENCE)
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
    let rows = mine()
        .order(sends::id.desc())
        .limit(limit)
        .offset(offset)
        .select(SendRow::as_select())
        .load(conn)?;
    Ok((rows, mine().count().get_result(conn)?))
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
const ONE_SEND: &str = "r.tenant_id = $1 AND r.send_id = $2 AND r.created_on = $3";

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

#[derive(QueryableByName)]
struct RecipientRow {
    #[diesel(sql_type = BigInt)]
    contact_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = SmallInt)]
    status: i16,
    #[diesel(sql_type = Bool)]
    opted_out_since: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    status_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    error_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    error_message: Option<String>,
}

impl From<RecipientRow> for SendRecipient {
    fn from(row: RecipientRow) -> Self {
        let error = row.error_code.map(|code| OutcomeError {
            code,
            message: row.error_message.unwrap_or_default(),
        });
        let (status, error) = SendRecipient::status_as_read(
            Status::from_code(row.status),
            row.opted_out_since,
            error,
        );
        Self {
            contact_id: row.contact_id,
            name: row.name,
            address: row.address,
            status,
            status_at: row.status_at,
            error,
        }
    }
}

/// Up to `limit` recipients after contact id `after`, in contact id order; only those in
/// `status` (as read now) when given.
pub fn recipients_after(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
    status: Option<Status>,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<SendRecipient>> {
    // The join names only opted-out contacts, so each row costs one probe of their small
    // index (`contacts_opted_out_idx`), not a read of the contact.
    let only = match status.map(|s| (s, s.code())) {
        None => String::new(),
        Some((Status::Pending, _)) => " AND r.status = 0 AND c.id IS NULL".into(),
        Some((_, None)) => " AND r.status = 0 AND c.id IS NOT NULL".into(),
        Some((_, Some(code))) => format!(" AND r.status = {code}"),
    };
    let rows: Vec<RecipientRow> = diesel::sql_query(format!(
        "SELECT r.contact_id, r.name, r.address, r.status, \
         (r.status = 0 AND c.id IS NOT NULL) AS opted_out_since, \
         r.status_at, r.error_code, r.error_message FROM send_recipients r \
         LEFT JOIN contacts c ON c.tenant_id = $1 AND c.id = r.contact_id AND c.opted_out \
         WHERE {ONE_SEND} AND r.contact_id > $4{only} ORDER BY r.contact_id LIMIT $5"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(send.id)
    .bind::<Date, _>(send.created_on)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(rows.into_iter().map(SendRecipient::from).collect())
}

#[derive(QueryableByName)]
struct AppliedRow {
    #[diesel(sql_type = BigInt)]
    updated: i64,
    #[diesel(sql_type = Array<BigInt>)]
    not_recipients: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    messaged: Vec<i64>,
}

/// Records `outcomes` (one per recipient, in contact id order): each recipient's row is
/// locked, then moved where the rules allow it; a move out of pending to a status that
/// means the message went out sets the contact's `last_messaged_at` (never backwards).
/// Returns what was done and the contacts whose `last_messaged_at` moved.
pub fn record(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
    outcomes: &[Outcome],
) -> QueryResult<(Applied, Vec<i64>)> {
    let ids: Vec<i64> = outcomes.iter().map(|o| o.contact_id).collect();
    let statuses: Vec<i16> = outcomes
        .iter()
        .map(|o| o.status.code().unwrap_or(0))
        .collect();
    let ats: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.at).collect();
    let error = |part: fn(&OutcomeError) -> &String| -> Vec<Option<String>> {
        outcomes
            .iter()
            .map(|o| o.error.as_ref().map(|e| part(e).clone()))
            .collect()
    };
    let went_out: Vec<i16> = Status::WENT_OUT.iter().filter_map(|s| s.code()).collect();
    // Every table is read through its key with the batch's ids, and joined by hashes
    // (see [`hashed`]): a send's partition filled minutes ago has no statistics yet, and
    // a plan that believed it empty took 60 s for 10,000 outcomes.
    let statement = diesel::sql_query(format!(
        "WITH input AS (SELECT * FROM unnest($4::bigint[], $5::smallint[], $6::timestamptz[], \
           $7::text[], $8::text[]) AS i(contact_id, status, at, error_code, error_message)), \
         current AS (SELECT r.contact_id, r.status FROM send_recipients r WHERE {ONE_SEND} \
           AND r.contact_id = ANY($4) ORDER BY r.contact_id FOR UPDATE), \
         moved AS (UPDATE send_recipients r SET status = i.status, status_at = i.at, \
           error_code = i.error_code, error_message = i.error_message \
           FROM input i JOIN current o ON o.contact_id = i.contact_id \
           WHERE {ONE_SEND} AND r.contact_id = ANY($4) AND r.contact_id = i.contact_id \
           AND (o.status * 8 + i.status)::int = ANY($9) \
           RETURNING r.contact_id, o.status AS was, i.status AS now, i.at), \
         messaged AS (UPDATE contacts c SET last_messaged_at = \
           GREATEST(c.last_messaged_at, m.at) FROM moved m WHERE c.tenant_id = $1 \
           AND c.id = ANY($4) AND c.id = m.contact_id AND m.was = 0 AND m.now = ANY($10) RETURNING c.id) \
         SELECT (SELECT count(*) FROM moved) AS updated, \
         ARRAY(SELECT i.contact_id FROM input i WHERE NOT EXISTS \
           (SELECT 1 FROM current o WHERE o.contact_id = i.contact_id)) AS not_recipients, \
         ARRAY(SELECT id FROM messaged ORDER BY id) AS messaged"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(send.id)
    .bind::<Date, _>(send.created_on)
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<SmallInt>, _>(&statuses)
    .bind::<Array<Timestamptz>, _>(&ats)
    .bind::<Array<Nullable<Text>>, _>(error(|e| &e.code))
    .bind::<Array<Nullable<Text>>, _>(error(|e| &e.message))
    .bind::<Array<diesel::sql_types::Integer>, _>(Status::moves())
    .bind::<Array<SmallInt>, _>(&went_out);
    let row: AppliedRow = hashed(conn, |conn| statement.get_result(conn))?;
    let applied = Applied {
        updated: row.updated,
        unchanged: outcomes.len() as i64 - row.updated - row.not_recipients.len() as i64,
        not_recipients: row.not_recipients,
    };
    Ok((applied, row.messaged))
}
