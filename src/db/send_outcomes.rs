//! The outcomes a sender reports for a send's recipients, recorded forward only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Nullable, SmallInt, Text, Timestamptz};

use super::sends::{SendRow, ONE_SEND};
use super::sql::hashed;
use crate::core::send::{Applied, Outcome, OutcomeError, Status};

#[derive(QueryableByName)]
struct AppliedRow {
    #[diesel(sql_type = BigInt)]
    updated: i64,
    #[diesel(sql_type = Array<BigInt>)]
    messaged: Vec<i64>,
}

/// Records `outcomes` (one per recipient, in contact id order): each recipient's row is
/// moved where the rules allow it, the rule checked again on the row's latest version
/// if another report changed it meanwhile, so concurrent reports converge; a move out of
/// pending to a status that means the message went out sets the contact's
/// `last_messaged_at` (never backwards; not for a contact deleted since the freeze: each
/// contact is locked against deletion as it is checked, so a delete running meanwhile
/// either goes first, and the contact is skipped, or waits, and removes the row with it).
/// Returns what was done and the contacts whose `last_messaged_at` was written.
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
    let (lowest, highest) = id_range(&ids);
    let went_out: Vec<i16> = Status::WENT_OUT.iter().filter_map(|s| s.code()).collect();
    // Every table is read through its key with the batch's ids, and joined by hashes
    // (see [`hashed`]): a send's partition filled minutes ago has no statistics yet, and
    // a plan that believed it empty took 60 s for 10,000 outcomes. The ids' range bounds
    // the recipients' key scan too: the planner costs 10,000 probes of the id list above
    // reading the whole send (900k rows, 130-370 ms), while a sender's batch usually
    // spans a narrow range of the send. `previous_status` keeps the status a move left,
    // which `RETURNING` (new values only) cannot show.
    let statement = diesel::sql_query(format!(
        "WITH input AS (SELECT * FROM unnest($4::bigint[], $5::smallint[], $6::timestamptz[], \
           $7::text[], $8::text[]) AS i(contact_id, status, at, error_code, error_message)), \
         moved AS (UPDATE send_recipients r SET previous_status = r.status, status = i.status, \
           status_at = i.at, error_code = i.error_code, error_message = i.error_message \
           FROM input i WHERE {ONE_SEND} AND r.contact_id = ANY($4) \
           AND r.contact_id BETWEEN $11 AND $12 \
           AND r.contact_id = i.contact_id AND (r.status * 8 + i.status)::int = ANY($9) \
           RETURNING r.contact_id, r.previous_status AS was, i.status AS now, i.at), \
         messaged AS (INSERT INTO contact_last_messaged (tenant_id, contact_id, last_messaged_at) \
           SELECT $1, m.contact_id, m.at FROM moved m WHERE m.was = 0 AND m.now = ANY($10) \
           AND EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = $1 \
                       AND c.id = m.contact_id FOR KEY SHARE) \
           ORDER BY m.contact_id \
           ON CONFLICT (tenant_id, contact_id) DO UPDATE SET last_messaged_at = \
           GREATEST(contact_last_messaged.last_messaged_at, excluded.last_messaged_at) \
           RETURNING contact_id) \
         SELECT (SELECT count(*) FROM moved) AS updated, \
         ARRAY(SELECT contact_id FROM messaged ORDER BY contact_id) AS messaged"
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
    .bind::<Array<SmallInt>, _>(&went_out)
    .bind::<BigInt, _>(lowest)
    .bind::<BigInt, _>(highest);
    let row: AppliedRow = hashed(conn, |conn| statement.get_result(conn))?;
    // Only a report that did not move everything can name strangers: most do not.
    let not_recipients = if row.updated < outcomes.len() as i64 {
        not_recipients(conn, tenant_id, send, &ids)?
    } else {
        Vec::new()
    };
    let applied = Applied {
        updated: row.updated,
        unchanged: outcomes.len() as i64 - row.updated - not_recipients.len() as i64,
        not_recipients,
    };
    Ok((applied, row.messaged))
}

#[derive(QueryableByName)]
struct Strangers {
    #[diesel(sql_type = Array<BigInt>)]
    ids: Vec<i64>,
}

/// The contacts of `ids` that are not recipients of the send, in the order given.
fn not_recipients(
    conn: &mut PgConnection,
    tenant_id: i64,
    send: &SendRow,
    ids: &[i64],
) -> QueryResult<Vec<i64>> {
    let (lowest, highest) = id_range(ids);
    let statement = diesel::sql_query(format!(
        "SELECT ARRAY(SELECT i.id FROM unnest($4::bigint[]) WITH ORDINALITY AS i(id, n) \
         WHERE NOT EXISTS (SELECT 1 FROM send_recipients r WHERE {ONE_SEND} \
           AND r.contact_id = ANY($4) AND r.contact_id BETWEEN $5 AND $6 \
           AND r.contact_id = i.id) ORDER BY i.n) AS ids"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<BigInt, _>(send.id)
    .bind::<Date, _>(send.created_on)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<BigInt, _>(lowest)
    .bind::<BigInt, _>(highest);
    Ok(hashed(conn, |conn| statement.get_result::<Strangers>(conn))?.ids)
}

/// The lowest and highest of `ids`, which bound the recipients' key scan (see [`record`]).
fn id_range(ids: &[i64]) -> (i64, i64) {
    let lowest = ids.iter().min().copied().unwrap_or_default();
    let highest = ids.iter().max().copied().unwrap_or_default();
    (lowest, highest)
}
