//! Campaign sends over the audience of `audience.rs` (~900k recipients at 1M contacts):
//! the freeze against the fastest hand-written `INSERT ... SELECT` of the same audience,
//! a page of pending recipients, a report of 10,000 outcomes against the hand-written
//! `UPDATE`, and the pending stream against `COPY ... TO STDOUT` of the same rows.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date};
use serde_json::{json, Value};

use crate::audience::{audience_setup, REFERENCE_AUDIENCE};
use crate::report::{median, Row};
use crate::scenarios::{
    bigint_array, copy_lines, run_numbers, stream_lines, timed_page, Context, WARM_UP,
};
use crate::service::Service;

/// Sends and their recipients from earlier runs go first: the campaign they name is
/// dropped and remade by the audience setup.
fn drop_sends(conn: &mut PgConnection, tenant: i64) {
    conn.batch_execute("TRUNCATE send_recipients")
        .expect("empty the recipients");
    diesel::sql_query("DELETE FROM sends WHERE tenant_id = $1")
        .bind::<BigInt, _>(tenant)
        .execute(conn)
        .expect("drop the sends");
}

/// The eligible audience, written by hand in two shapes; the faster is the reference.
fn reference_shapes(tenant: i64, statics: &[i64]) -> [String; 2] {
    let audience = REFERENCE_AUDIENCE
        .replace("$1", &tenant.to_string())
        .replace("$2", &bigint_array(statics));
    let columns = "$2::bigint, $3::date, c.id, c.name, c.phone_e164";
    let eligible = "NOT c.opted_out AND c.phone_e164 IS NOT NULL";
    [
        format!(
            "INSERT INTO send_recipients (tenant_id, send_id, created_on, contact_id, name, address)
             SELECT $1, {columns} FROM contacts c
             WHERE c.tenant_id = $1 AND {eligible} AND c.id IN ({audience})"
        ),
        format!(
            "INSERT INTO send_recipients (tenant_id, send_id, created_on, contact_id, name, address)
             SELECT $1, {columns} FROM ({audience}) a JOIN contacts c ON c.tenant_id = $1 AND c.id = a.id
             WHERE {eligible}"
        ),
    ]
}

/// A sends row for the reference to fill, as the service makes one.
fn reference_send(conn: &mut PgConnection, tenant: i64, campaign: i64) -> (i64, chrono::NaiveDate) {
    #[derive(QueryableByName)]
    struct Made {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Date)]
        created_on: chrono::NaiveDate,
    }
    let made: Made = diesel::sql_query(
        "INSERT INTO sends (tenant_id, campaign_id, channel, created_at, created_on, total_unique,
           by_exclusion, opted_out, no_consent, no_address)
         VALUES ($1, $2, 'whatsapp', now(), (now() AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0)
         RETURNING id, created_on",
    )
    .bind::<BigInt, _>(tenant)
    .bind::<BigInt, _>(campaign)
    .get_result(conn)
    .expect("a reference send");
    (made.id, made.created_on)
}

pub async fn sends(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    drop_sends(ctx.conn, tenant);
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let (campaign, statics, _) = audience_setup(ctx, &base).await;
    let shapes = reference_shapes(tenant, &statics);
    let mut rows = Vec::new();

    // The freeze.
    let (mut service_seconds, mut reference_seconds) = (Vec::new(), Vec::new());
    let mut send = Value::Null;
    for run in run_numbers(ctx.settings) {
        drop_sends(ctx.conn, tenant);
        let mut fastest = f64::MAX;
        // Each shape with the planner's defaults, and with the settings the service gives
        // a large freeze: the fastest of the four is the reference.
        let tunings = [
            "",
            "SET LOCAL enable_nestloop = off; SET LOCAL work_mem = '64MB';",
        ];
        for (shape, tuning) in shapes
            .iter()
            .flat_map(|s| tunings.iter().map(move |t| (s, t)))
        {
            let (id, day) = reference_send(ctx.conn, tenant, campaign);
            let started = Instant::now();
            let written = ctx
                .conn
                .transaction::<_, diesel::result::Error, _>(|conn| {
                    if !tuning.is_empty() {
                        conn.batch_execute(tuning)?;
                    }
                    diesel::sql_query(shape)
                        .bind::<BigInt, _>(tenant)
                        .bind::<BigInt, _>(id)
                        .bind::<Date, _>(day)
                        .execute(conn)
                })
                .expect("reference freeze");
            fastest = fastest.min(started.elapsed().as_secs_f64());
            ctx.conn
                .batch_execute("TRUNCATE send_recipients")
                .expect("empty");
            send = json!({"reference_written": written});
        }
        let written = send["reference_written"].as_i64();
        let started = Instant::now();
        send = ctx
            .call(
                "POST",
                &base,
                &format!("/v1/campaigns/{campaign}/sends"),
                None,
            )
            .await;
        let service_time = started.elapsed().as_secs_f64();
        assert_eq!(
            send["progress"]["total"].as_i64(),
            written,
            "service and reference froze different audiences"
        );
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(fastest);
        }
    }
    let total = send["progress"]["total"].as_i64().unwrap_or(0);
    let (service_time, reference_time) =
        (median(&mut service_seconds), median(&mut reference_seconds));
    rows.push(Row {
        scenario: "sends",
        metric: format!("freeze {total} recipients"),
        service: service_time * 1000.0,
        reference: Some(reference_time * 1000.0),
        unit: "ms",
        higher_is_better: false,
        target: "<= 1.5x INSERT ... SELECT".into(),
        met: Some(service_time <= 1.5 * reference_time),
    });
    let send_id = send["id"].as_i64().expect("send id");
    #[derive(QueryableByName)]
    struct Day {
        #[diesel(sql_type = Date)]
        created_on: chrono::NaiveDate,
    }
    let day = diesel::sql_query("SELECT created_on FROM sends WHERE tenant_id = $1 AND id = $2")
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(send_id)
        .get_result::<Day>(ctx.conn)
        .expect("the send's day")
        .created_on;
    ctx.conn
        .batch_execute("ANALYZE send_recipients")
        .expect("analyze");

    // A page of 1,000 pending recipients, from the middle of the list.
    let ids: Vec<i64> = diesel::sql_query(
        "SELECT contact_id AS id FROM send_recipients WHERE tenant_id = $1 AND send_id = $2 AND created_on = $3 ORDER BY contact_id",
    )
    .bind::<BigInt, _>(tenant)
    .bind::<BigInt, _>(send_id)
    .bind::<Date, _>(day)
    .load::<Id>(ctx.conn)
    .expect("the recipients")
    .into_iter()
    .map(|row| row.id)
    .collect();
    let pages = if ctx.settings.quick { 2 } else { 30 };
    let (mut service_ms, mut reference_ms) = (Vec::new(), Vec::new());
    // One client for every page: building one per call (its TLS context included) cost
    // more than the page.
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish();
    for page in 0..pages {
        let after = ids[(ids.len() / 3 + page * 997) % ids.len().max(1)];
        let url =
            format!("{base}/v1/sends/{send_id}/recipients?status=pending&limit=1000&after={after}");
        let fetch_page = || timed_page(&client, &url);
        // Whoever goes first reads the page's rows from disk: they take turns.
        let served = if page % 2 == 0 {
            Some(fetch_page().await)
        } else {
            None
        };
        let started = Instant::now();
        let reference = diesel::sql_query(
            "SELECT r.contact_id AS id FROM send_recipients r WHERE r.tenant_id = $1 AND r.send_id = $2
               AND r.created_on = $3 AND r.contact_id > $4 AND r.status = 0
               AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = $1 AND c.id = r.contact_id AND c.opted_out)
             ORDER BY r.contact_id LIMIT 1000",
        )
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(send_id)
        .bind::<Date, _>(day)
        .bind::<BigInt, _>(after)
        .load::<Id>(ctx.conn)
        .expect("reference page");
        reference_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let (took, body) = match served {
            Some(served) => served,
            None => fetch_page().await,
        };
        service_ms.push(took);
        assert_eq!(
            body["items"].as_array().map(Vec::len),
            Some(reference.len())
        );
    }
    let (service_page, reference_page) = (median(&mut service_ms), median(&mut reference_ms));
    rows.push(Row {
        scenario: "sends",
        metric: "page of 1,000 pending recipients (HTTP vs SQL)".into(),
        service: service_page,
        reference: Some(reference_page),
        unit: "ms",
        higher_is_better: false,
        target: "< 10 ms".into(),
        met: Some(service_page < 10.0),
    });

    // 10,000 outcomes a report, each run on recipients still pending.
    let (mut service_seconds, mut reference_seconds) = (Vec::new(), Vec::new());
    // Each run reports on recipients still pending: one batch for the service, one for
    // each variant of the reference.
    let batch = 10_000.min(ids.len() / 3 / (ctx.settings.runs + 1)).max(1);
    for (n_run, run) in run_numbers(ctx.settings).into_iter().enumerate() {
        let mine = &ids[3 * n_run * batch..(3 * n_run + 1) * batch];
        let outcomes: Vec<Value> = mine
            .iter()
            .map(|id| json!({"contact_id": id, "status": "sent"}))
            .collect();
        let started = Instant::now();
        let report = ctx
            .call(
                "POST",
                &base,
                &format!("/v1/sends/{send_id}/outcomes"),
                Some(json!({ "outcomes": outcomes })),
            )
            .await;
        let service_time = started.elapsed().as_secs_f64();
        assert_eq!(report["updated"].as_u64(), Some(batch as u64));
        // The hand-written statement (the moves, then the contacts' `last_messaged_at`,
        // with the ids' range bounding the key scan and no check that each contact still
        // exists), with the planner's defaults and with hash joins only (as the service
        // runs it); the faster of the two is the reference.
        let mut reference_time = f64::MAX;
        for (variant, tuning) in ["", "SET LOCAL enable_nestloop = off;"].iter().enumerate() {
            let offset = (3 * n_run + 1 + variant) * batch;
            let theirs = &ids[offset..offset + batch];
            let started = Instant::now();
            ctx.conn
                .transaction::<_, diesel::result::Error, _>(|conn| {
                    if !tuning.is_empty() {
                        conn.batch_execute(tuning)?;
                    }
                    diesel::sql_query(
                        "WITH moved AS (UPDATE send_recipients r SET status = 1, status_at = now()
                           FROM unnest($4::bigint[]) AS i(contact_id)
                           WHERE r.tenant_id = $1 AND r.send_id = $2 AND r.created_on = $3
                             AND r.contact_id = ANY($4) AND r.contact_id BETWEEN $5 AND $6
                             AND r.contact_id = i.contact_id AND r.status = 0
                           RETURNING r.contact_id)
                         INSERT INTO contact_last_messaged (tenant_id, contact_id, last_messaged_at)
                         SELECT $1, contact_id, now() FROM moved ORDER BY contact_id
                         ON CONFLICT (tenant_id, contact_id) DO UPDATE SET last_messaged_at =
                           GREATEST(contact_last_messaged.last_messaged_at, excluded.last_messaged_at)",
                    )
                    .bind::<BigInt, _>(tenant)
                    .bind::<BigInt, _>(send_id)
                    .bind::<Date, _>(day)
                    .bind::<Array<BigInt>, _>(theirs)
                    .bind::<BigInt, _>(theirs[0])
                    .bind::<BigInt, _>(theirs[theirs.len() - 1])
                    .execute(conn)
                })
                .expect("reference outcomes");
            reference_time = reference_time.min(started.elapsed().as_secs_f64());
        }

        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
        }
    }
    let (service_time, reference_time) =
        (median(&mut service_seconds), median(&mut reference_seconds));
    rows.push(Row {
        scenario: "sends",
        metric: format!("report {batch} outcomes"),
        service: service_time * 1000.0,
        reference: Some(reference_time * 1000.0),
        unit: "ms",
        higher_is_better: false,
        target: "< 1 s".into(),
        met: Some(service_time < 1.0),
    });

    // Who is left, streamed.
    let (mut service_rates, mut reference_rates) = (Vec::new(), Vec::new());
    let mut streamed = 0;
    for run in run_numbers(ctx.settings) {
        let (lines, service_time) = stream_lines(&format!(
            "{base}/v1/sends/{send_id}/recipients.ndjson?status=pending"
        ))
        .await;
        streamed = lines;
        let statement = format!(
            "COPY (SELECT r.contact_id, r.name, r.address, r.status FROM send_recipients r
                   WHERE r.tenant_id = {tenant} AND r.send_id = {send_id} AND r.created_on = '{day}' AND r.status = 0
                   AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = {tenant} AND c.id = r.contact_id AND c.opted_out)
                   ORDER BY r.contact_id) TO STDOUT"
        );
        let (copied, reference_time) = copy_lines(ctx.database_url, &statement);
        assert_eq!(copied, lines, "COPY and the stream disagree");
        if run != WARM_UP {
            service_rates.push(lines as f64 / service_time);
            reference_rates.push(copied as f64 / reference_time);
        }
    }
    let (service_rate, reference_rate) = (median(&mut service_rates), median(&mut reference_rates));
    rows.push(Row {
        scenario: "sends",
        metric: format!("stream {streamed} pending recipients as NDJSON"),
        service: service_rate,
        reference: Some(reference_rate),
        unit: "recipients/s",
        higher_is_better: true,
        target: ">= 70% of COPY".into(),
        met: Some(service_rate >= 0.7 * reference_rate),
    });
    let rss = service.peak_rss_mib();
    rows.push(Row {
        scenario: "sends",
        metric: "service peak RSS".into(),
        service: rss,
        reference: None,
        unit: "MiB",
        higher_is_better: false,
        target: "< 100 MiB".into(),
        met: Some(rss < 100.0),
    });
    drop(service);
    drop_sends(ctx.conn, tenant);
    rows
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}
