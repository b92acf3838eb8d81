//! The days of `send_recipients`: one partition per UTC day, made a few days ahead, and
//! dropped whole once past the retention horizon, after each of their sends has kept its
//! final count per status. Partition names and bounds are made here from dates, never
//! from input.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Date, Text};

/// The partition for `day`.
fn name(day: NaiveDate) -> String {
    format!("send_recipients_p{}", day.format("%Y%m%d"))
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
}

/// Makes the partition of `day` unless it exists. Fails when the default partition
/// already holds rows of that day (the caller logs it; the rows stay readable there).
pub fn ensure(conn: &mut PgConnection, day: NaiveDate) -> QueryResult<bool> {
    let table = name(day);
    let exists = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS found")
        .bind::<Text, _>(&table)
        .get_result::<Found>(conn)?
        .found;
    if exists {
        return Ok(false);
    }
    let next = day.succ_opt().unwrap_or(day);
    diesel::sql_query(format!(
        "CREATE TABLE IF NOT EXISTS {table} PARTITION OF send_recipients \
         FOR VALUES FROM ('{day}') TO ('{next}') WITH (fillfactor = 90)"
    ))
    .execute(conn)?;
    Ok(true)
}

#[derive(QueryableByName)]
struct Partition {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The day partitions holding days before `before`, oldest first.
pub fn before(conn: &mut PgConnection, before: NaiveDate) -> QueryResult<Vec<NaiveDate>> {
    let partitions: Vec<Partition> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'send_recipients'::regclass \
         AND c.relname ~ '^send_recipients_p[0-9]{8}$' ORDER BY 1",
    )
    .load(conn)?;
    Ok(partitions
        .iter()
        .filter_map(|p| {
            NaiveDate::parse_from_str(p.name.trim_start_matches("send_recipients_p"), "%Y%m%d").ok()
        })
        .filter(|day| *day < before)
        .collect())
}

/// Keeps on each send of the days in `[from, to)` that has not kept one yet its final
/// count per status (the same counts as [`super::sends::progress`]).
fn summarise(conn: &mut PgConnection, from: NaiveDate, to: NaiveDate) -> QueryResult<usize> {
    diesel::sql_query(
        "WITH counted AS ( \
           SELECT r.tenant_id, r.send_id, count(*) AS total, \
             count(*) FILTER (WHERE r.status = 0 AND NOT coalesce(c.opted_out, false)) AS pending, \
             count(*) FILTER (WHERE r.status = 1) AS sent, \
             count(*) FILTER (WHERE r.status = 2) AS delivered, \
             count(*) FILTER (WHERE r.status = 3) AS read, \
             count(*) FILTER (WHERE r.status = 4) AS failed, \
             count(*) FILTER (WHERE r.status = 0 AND coalesce(c.opted_out, false)) AS skipped \
           FROM send_recipients r LEFT JOIN contacts c \
             ON c.tenant_id = r.tenant_id AND c.id = r.contact_id \
           WHERE r.created_on >= $1 AND r.created_on < $2 GROUP BY r.tenant_id, r.send_id) \
         UPDATE sends s SET expired_at = now(), final_progress = jsonb_build_object( \
           'total', coalesce(k.total, 0), 'pending', coalesce(k.pending, 0), \
           'sent', coalesce(k.sent, 0), 'delivered', coalesce(k.delivered, 0), \
           'read', coalesce(k.read, 0), 'failed', coalesce(k.failed, 0), \
           'skipped', coalesce(k.skipped, 0)) \
         FROM sends x LEFT JOIN counted k ON k.tenant_id = x.tenant_id AND k.send_id = x.id \
         WHERE s.tenant_id = x.tenant_id AND s.id = x.id \
           AND x.created_on >= $1 AND x.created_on < $2 AND x.expired_at IS NULL",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .execute(conn)
}

/// Summarises the sends of `day`, then drops its partition.
pub fn expire_day(conn: &mut PgConnection, day: NaiveDate) -> QueryResult<usize> {
    // Outcomes wait from here on: none can land between the counts and the drop.
    conn.transaction(|conn| {
        diesel::sql_query(format!("LOCK TABLE {} IN SHARE MODE", name(day))).execute(conn)?;
        let sends = summarise(conn, day, day.succ_opt().unwrap_or(day))?;
        diesel::sql_query(format!("DROP TABLE IF EXISTS {}", name(day))).execute(conn)?;
        Ok(sends)
    })
}

/// Summarises the sends before `before` whose recipients fell into the default partition
/// (days whose partition could not be made in time), then deletes those rows.
pub fn expire_default(conn: &mut PgConnection, before: NaiveDate) -> QueryResult<usize> {
    conn.transaction(|conn| {
        diesel::sql_query("LOCK TABLE send_recipients_default IN SHARE MODE").execute(conn)?;
        let sends = summarise(
            conn,
            NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(before),
            before,
        )?;
        diesel::sql_query("DELETE FROM send_recipients_default WHERE created_on < $1")
            .bind::<Date, _>(before)
            .execute(conn)?;
        Ok(sends)
    })
}

/// Today's date where the database is (UTC), which decides a send's day.
pub fn today(conn: &mut PgConnection) -> QueryResult<NaiveDate> {
    #[derive(QueryableByName)]
    struct Today {
        #[diesel(sql_type = Date)]
        today: NaiveDate,
    }
    diesel::sql_query("SELECT (now() AT TIME ZONE 'UTC')::date AS today")
        .get_result::<Today>(conn)
        .map(|row| row.today)
}
