//! Campaign audiences over 10 static and 5 dynamic segments: the summary against the
//! hand-written UNION + JOIN, and the NDJSON stream against `COPY (SELECT ...) TO STDOUT`
//! of the same rows.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use serde_json::{json, Value};

use crate::audience_page::audience_page;
use crate::report::{median, Row};
use crate::scenarios::{
    copy_lines, drop_bench_segments, reference_segment, rss_row, run_numbers, stream_lines,
    vacuum_memberships, Context, WARM_UP,
};
use crate::service::Service;

/// Ten static segments of 100k-280k overlapping members and five dynamic ones, all
/// WhatsApp, and a campaign including the fifteen; returns (campaign id, static ids,
/// all fifteen ids).
pub async fn audience_setup(ctx: &mut Context<'_>, base: &str) -> (i64, Vec<i64>, Vec<i64>) {
    let (tenant, first, contacts) = (
        ctx.data.tenant_id,
        ctx.data.first_contact_id,
        ctx.data.contacts,
    );
    drop_bench_segments(ctx.conn, tenant, "bench-aud");
    // Earlier scenarios' writes (batches, imports) leave dead contact versions, which
    // the audience's reads would step over, the service's and the references' alike.
    diesel::sql_query("VACUUM contacts")
        .execute(ctx.conn)
        .expect("vacuum contacts");
    diesel::sql_query("DELETE FROM campaigns WHERE tenant_id = $1 AND name = 'bench-aud'")
        .bind::<BigInt, _>(tenant)
        .execute(ctx.conn)
        .expect("drop the bench campaign");
    let mut ids = Vec::new();
    for i in 0..10_i64 {
        let id = reference_segment(ctx.conn, tenant, &format!("bench-aud-static-{i}"));
        let start = first + (i * contacts * 7 / 100) % contacts;
        let size = contacts * (10 + 2 * i) / 100;
        let added = diesel::sql_query(
            "INSERT INTO segment_members (tenant_id, segment_id, contact_id)
             SELECT $1, $2, c.id FROM contacts c WHERE c.tenant_id = $1 AND c.id >= $3 AND c.id < $4",
        )
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(start)
        .bind::<BigInt, _>(start + size)
        .execute(ctx.conn)
        .expect("fill a static segment");
        diesel::sql_query("UPDATE segments SET recipients = $3 WHERE tenant_id = $1 AND id = $2")
            .bind::<BigInt, _>(tenant)
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(added as i64)
            .execute(ctx.conn)
            .expect("count a static segment");
        ids.push(id);
    }
    for (n, filter) in dynamic_filters().into_iter().enumerate() {
        let segment = ctx
            .call("POST", base, "/v1/segments", Some(json!({"name": format!("bench-aud-dynamic-{n}"), "channel": "whatsapp", "kind": "dynamic", "filter": filter})))
            .await;
        ids.push(segment["id"].as_i64().expect("segment id"));
    }
    let campaign = ctx
        .call(
            "POST",
            base,
            "/v1/campaigns",
            Some(json!({"name": "bench-aud", "channel": "whatsapp", "segment_ids": ids})),
        )
        .await;
    (
        campaign["id"].as_i64().expect("campaign id"),
        ids[..10].to_vec(),
        ids,
    )
}

fn dynamic_filters() -> Vec<Value> {
    vec![
        json!({"field": "attributes.city", "op": "eq", "value": "Naples"}),
        json!({"all": [{"field": "attributes.premium", "op": "eq", "value": true}, {"field": "attributes.score", "op": "gt", "value": 80}]}),
        json!({"field": "tags", "op": "contains", "value": "vip"}),
        json!({"field": "attributes.plan", "op": "eq", "value": "enterprise"}),
        json!({"field": "attributes.language", "op": "in", "value": ["de", "fr"]}),
    ]
}

/// The same audience as a DBA would write it.
pub const REFERENCE_AUDIENCE: &str = "
    SELECT contact_id AS id FROM segment_members WHERE tenant_id = $1 AND segment_id = ANY($2)
    UNION
    SELECT id FROM contacts WHERE tenant_id = $1 AND (
        attributes @> '{\"city\": \"Naples\"}'
        OR (attributes @> '{\"premium\": true}' AND (attributes ->> 'score')::float8 > 80)
        OR tags @> ARRAY['vip']
        OR attributes @> '{\"plan\": \"enterprise\"}'
        OR attributes @> '{\"language\": \"de\"}' OR attributes @> '{\"language\": \"fr\"}')";

/// The dynamic filters of [`REFERENCE_AUDIENCE`], over `c`.
const REFERENCE_DYNAMIC: &str = "
    c.attributes @> '{\"city\": \"Naples\"}'
    OR (c.attributes @> '{\"premium\": true}' AND (c.attributes ->> 'score')::float8 > 80)
    OR c.tags @> ARRAY['vip']
    OR c.attributes @> '{\"plan\": \"enterprise\"}'
    OR c.attributes @> '{\"language\": \"de\"}' OR c.attributes @> '{\"language\": \"fr\"}'";

/// Planner settings for a reference shape, in its own transaction.
const AS_PLANNED: &str = "";
const HASHED: &str = "SET LOCAL enable_nestloop = off; SET LOCAL work_mem = '64MB'";
const IN_CONTACT_ORDER: &str = "SET LOCAL enable_nestloop = off; SET LOCAL enable_sort = off;
    SET LOCAL enable_hashagg = off; SET LOCAL enable_hashjoin = off; SET LOCAL jit = off";

/// The summary's counts as a DBA would write them, in four shapes (`$1` the tenant,
/// `$2` the static segments, `$3` all fifteen), each with the planner settings it is
/// fastest with; each run keeps the fastest. Which wins swings with the data: the union
/// joined to contacts; contacts filtered by a static membership or the predicates; the
/// stored memberships of all fifteen (dynamic ones are stored too), each once, joined to
/// contacts by hashes with room for them; the same read in contact order from the index
/// by contact and merged with contacts.
fn reference_summaries() -> [(String, &'static str); 4] {
    let counts = "SELECT count(*) AS total,
                    count(*) FILTER (WHERE c.opted_out) AS opted_out,
                    count(*) FILTER (WHERE NOT c.opted_out AND c.phone_e164 IS NULL) AS no_address";
    let distinct_members = format!(
        "{counts} FROM (SELECT DISTINCT contact_id AS id FROM segment_members
         WHERE tenant_id = $1 AND segment_id = ANY($3)) a
         JOIN contacts c ON c.tenant_id = $1 AND c.id = a.id"
    );
    [
        (
            format!("{counts} FROM ({REFERENCE_AUDIENCE}) a JOIN contacts c ON c.tenant_id = $1 AND c.id = a.id"),
            AS_PLANNED,
        ),
        (
            format!(
                "{counts} FROM contacts c WHERE c.tenant_id = $1 AND (EXISTS (
                    SELECT 1 FROM segment_members m WHERE m.tenant_id = $1 AND m.segment_id = ANY($2)
                    AND m.contact_id = c.id) OR {REFERENCE_DYNAMIC})"
            ),
            AS_PLANNED,
        ),
        (distinct_members.clone(), HASHED),
        (distinct_members, IN_CONTACT_ORDER),
    ]
}

pub async fn audience_summary(ctx: &mut Context<'_>) -> Vec<Row> {
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let (campaign, static_ids, all_ids) = audience_setup(ctx, &base).await;
    vacuum_memberships(ctx.conn);
    let tenant = ctx.data.tenant_id;
    let path = format!("/v1/campaigns/{campaign}/audience/summary");
    let (mut service_seconds, mut reference_seconds) = (Vec::new(), Vec::new());
    let mut summary = Value::Null;
    for run in run_numbers(ctx.settings) {
        let started = Instant::now();
        summary = ctx.call("GET", &base, &path, None).await;
        let service_time = started.elapsed().as_secs_f64();
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = BigInt)]
            total: i64,
            #[diesel(sql_type = BigInt)]
            opted_out: i64,
            #[diesel(sql_type = BigInt)]
            no_address: i64,
        }
        let mut reference_time = f64::MAX;
        for (statement, settings) in reference_summaries() {
            let started = Instant::now();
            let reference: Counts = ctx
                .conn
                .transaction(|conn| {
                    if !settings.is_empty() {
                        conn.batch_execute(settings)?;
                    }
                    diesel::sql_query(&statement)
                        .bind::<BigInt, _>(tenant)
                        .bind::<Array<BigInt>, _>(&static_ids)
                        .bind::<Array<BigInt>, _>(&all_ids)
                        .get_result(conn)
                })
                .expect("reference summary");
            reference_time = reference_time.min(started.elapsed().as_secs_f64());
            assert_eq!(
                summary["total_unique"].as_i64(),
                Some(reference.total),
                "service and reference disagree: {summary}"
            );
            assert_eq!(
                summary["excluded"]["opted_out"].as_i64(),
                Some(reference.opted_out)
            );
            assert_eq!(
                summary["excluded"]["no_address"].as_i64(),
                Some(reference.no_address)
            );
        }
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
        }
    }
    let (service_time, reference_time) =
        (median(&mut service_seconds), median(&mut reference_seconds));
    vec![
        Row {
            scenario: "audience-summary",
            metric: format!(
                "summary of 15 segments ({} unique, {} eligible)",
                summary["total_unique"], summary["eligible"]
            ),
            service: service_time * 1000.0,
            reference: Some(reference_time * 1000.0),
            unit: "ms",
            higher_is_better: false,
            target: "<= 1.2x the fastest SQL".into(),
            met: Some(service_time <= 1.2 * reference_time),
        },
        rss_row("audience-summary", &service),
    ]
}

pub async fn audience_stream(ctx: &mut Context<'_>) -> Vec<Row> {
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let (campaign, static_ids, all_ids) = audience_setup(ctx, &base).await;
    let tenant = ctx.data.tenant_id;
    let array = |ids: &[i64]| {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!("ARRAY[{}]::bigint[]", ids.join(","))
    };
    // The members as a DBA would write them: the static ones and the dynamic filters;
    // and the stored memberships of all fifteen (the service stores dynamic members too).
    let members = [
        REFERENCE_AUDIENCE
            .replace("$1", &tenant.to_string())
            .replace("$2", &array(&static_ids)),
        format!(
            "SELECT contact_id FROM segment_members WHERE tenant_id = {tenant} AND segment_id = ANY({})",
            array(&all_ids)
        ),
    ];
    let (mut service_rates, mut reference_rates) = (Vec::new(), Vec::new());
    let mut streamed = 0;
    for run in run_numbers(ctx.settings) {
        let (lines, service_time) =
            stream_lines(&format!("{base}/v1/campaigns/{campaign}/audience.ndjson")).await;
        streamed = lines;
        // Each shape copied; the faster is the reference.
        let mut fastest = f64::MAX;
        for members in &members {
            let statement = format!(
                "COPY (SELECT c.id, c.name, c.phone_e164 FROM contacts c WHERE c.tenant_id = {tenant} AND NOT c.opted_out
                       AND c.phone_e164 IS NOT NULL AND c.id IN ({members}) ORDER BY c.id) TO STDOUT"
            );
            let (copied, reference_time) = copy_lines(ctx.database_url, &statement);
            assert_eq!(copied, lines, "COPY and the stream disagree");
            fastest = fastest.min(reference_time);
        }
        if run != WARM_UP {
            service_rates.push(lines as f64 / service_time);
            reference_rates.push(lines as f64 / fastest);
        }
    }
    let (service_rate, reference_rate) = (median(&mut service_rates), median(&mut reference_rates));
    let page = audience_page(ctx, &base, campaign, &all_ids).await;
    let rss = service.peak_rss_mib();
    vec![
        page,
        Row {
            scenario: "audience-stream",
            metric: format!("stream {streamed} recipients as NDJSON"),
            service: service_rate,
            reference: Some(reference_rate),
            unit: "recipients/s",
            higher_is_better: true,
            target: ">= 80% of COPY".into(),
            met: Some(service_rate >= 0.8 * reference_rate),
        },
        Row {
            scenario: "audience-stream",
            metric: "service peak RSS".into(),
            service: rss,
            reference: None,
            unit: "MiB",
            higher_is_better: false,
            target: "< 100 MiB".into(),
            met: Some(rss < 100.0),
        },
    ]
}
