//! Each scenario drives the service over loopback HTTP and, in the same run, a reference
//! doing the same work directly in PostgreSQL.

use std::process::Command;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use serde_json::{json, Value};

use crate::data::{DataSet, API_KEY};
use crate::report::{median, Row};
use crate::service::Service;
use crate::Settings;

pub struct Context<'a> {
    pub settings: &'a Settings,
    pub data: &'a DataSet,
    pub database_url: &'a str,
    pub conn: &'a mut PgConnection,
}

impl Context<'_> {
    pub async fn call(&self, method: &str, base: &str, path: &str, body: Option<Value>) -> Value {
        call_as(API_KEY, method, base, path, body).await
    }
}

/// A page read with `client` (one for every page: building one per call, its TLS
/// context included, cost more than the page): its milliseconds until its last byte
/// arrived, and its body. The client's own parsing of the JSON is not the service's
/// time (wrk's figures do not include it either), so it is timed out.
pub async fn timed_page(client: &awc::Client, url: &str) -> (f64, Value) {
    let started = Instant::now();
    let mut response = client
        .get(url)
        .insert_header(("Authorization", format!("Bearer {API_KEY}")))
        .send()
        .await
        .expect("a page");
    let bytes = response
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .expect("the page");
    let took = started.elapsed().as_secs_f64() * 1000.0;
    (took, serde_json::from_slice(&bytes).expect("a JSON page"))
}

/// A call with `key`; panics on anything but success.
pub async fn call_as(
    key: &str,
    method: &str,
    base: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    // A client per call: awc's pooled connector does not survive the long synchronous
    // reference statements that block this thread between calls.
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .finish();
    let request = client
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {key}")));
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let bytes = response
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .expect("read body");
    assert!(
        response.status().is_success(),
        "{method} {path}: {} {}",
        response.status(),
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Run numbers: a warm-up first (`WARM_UP`, not counted) unless quick, then the measured runs.
pub const WARM_UP: usize = usize::MAX;

pub fn run_numbers(settings: &Settings) -> Vec<usize> {
    let warm_up = (!settings.quick).then_some(WARM_UP);
    warm_up.into_iter().chain(0..settings.runs).collect()
}

fn tool(name: &str) -> String {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_owned())
}

/// `wrk` at 64 connections: requests/s, p50 and p99 in ms.
fn wrk(url: &str, seconds: u64) -> (f64, f64, f64) {
    let output = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Authorization: Bearer {API_KEY}"),
            url,
        ])
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let non_2xx = text.lines().any(|l| l.contains("Non-2xx"));
    assert!(!non_2xx, "wrk saw errors:\n{text}");
    let percentile = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p).map(str::trim).map(str::to_owned))
            .map_or(0.0, |v| to_ms(&v))
    };
    (rate, percentile("50%"), percentile("99%"))
}

pub fn to_ms(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    match unit {
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        _ => number,
    }
}

/// `pgbench` at 64 connections running one statement: transactions/s.
fn pgbench(database_url: &str, statement: &str, seconds: u64) -> f64 {
    let script = std::env::temp_dir().join(format!("segments-bench-{}.sql", std::process::id()));
    std::fs::write(&script, format!("{statement}\n")).expect("write pgbench script");
    let output = Command::new(tool("pgbench"))
        .args([
            "-n",
            "-c",
            "64",
            "-j",
            "2",
            "-M",
            "prepared",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(database_url)
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench said:\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

pub async fn api(ctx: &mut Context<'_>) -> Vec<Row> {
    drop_bench_segments(ctx.conn, ctx.data.tenant_id, "bench-api");
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let segment = ctx
        .call(
            "POST",
            &base,
            "/v1/segments",
            Some(json!({"name": "bench-api", "channel": "whatsapp"})),
        )
        .await;
    for n in 0..40 {
        ctx.call(
            "POST",
            &base,
            "/v1/segments",
            Some(json!({"name": format!("bench-api-{n}"), "channel": "sms"})),
        )
        .await;
    }
    let segment_id = segment["id"].as_i64().expect("segment id");
    let contact_id = ctx.data.first_contact_id + ctx.data.contacts / 2;
    let tenant = ctx.data.tenant_id;
    let endpoints = [
        (
            format!("/v1/segments/{segment_id}"),
            format!("SELECT id, name, description, kind, channel, filter, recipients, created_at, updated_at FROM segments WHERE tenant_id = {tenant} AND id = {segment_id};"),
            true,
        ),
        (
            "/v1/segments?per_page=25".to_owned(),
            format!("SELECT id, name, description, kind, channel, filter, recipients, created_at, updated_at FROM segments WHERE tenant_id = {tenant} ORDER BY created_at DESC, id DESC LIMIT 25;"),
            false,
        ),
        (
            format!("/v1/contacts/{contact_id}"),
            format!("SELECT * FROM contacts WHERE tenant_id = {tenant} AND id = {contact_id};"),
            false,
        ),
    ];
    let seconds = if ctx.settings.quick { 1 } else { 10 };
    let mut rows = Vec::new();
    for (path, statement, has_target) in endpoints {
        let url = format!("{base}{path}");
        if !ctx.settings.quick {
            wrk(&url, 2);
        }
        let (mut rates, mut p50s, mut p99s, mut references) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ctx.settings.runs {
            let (rate, p50, p99) = wrk(&url, seconds);
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
            references.push(pgbench(ctx.database_url, &statement, seconds));
        }
        let (rate, reference, p99) = (
            median(&mut rates),
            median(&mut references),
            median(&mut p99s),
        );
        let ratio = rate / reference;
        rows.push(Row {
            scenario: "api",
            metric: format!("GET {path} (64 connections)"),
            service: rate,
            reference: Some(reference),
            unit: "req/s",
            higher_is_better: true,
            target: if has_target {
                ">= 60% of pgbench".into()
            } else {
                "-".into()
            },
            met: has_target.then_some(ratio >= 0.6),
        });
        rows.push(Row {
            scenario: "api",
            metric: format!("GET {path} p50 / p99 latency"),
            service: median(&mut p50s),
            reference: None,
            unit: "ms",
            higher_is_better: false,
            target: if has_target {
                format!("p99 < 20 ms (p99 {p99:.1} ms)")
            } else {
                format!("(p99 {p99:.1} ms)")
            },
            met: has_target.then_some(p99 < 20.0),
        });
    }
    rows.push(rss_row("api", &service));
    rows
}

pub fn rss_row(scenario: &'static str, service: &Service) -> Row {
    Row {
        scenario,
        metric: "service peak RSS".into(),
        service: service.peak_rss_mib(),
        reference: None,
        unit: "MiB",
        higher_is_better: false,
        target: "-".into(),
        met: None,
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

pub fn reference_segment(conn: &mut PgConnection, tenant_id: i64, name: &str) -> i64 {
    diesel::sql_query("INSERT INTO segments (tenant_id, name, kind, channel) VALUES ($1, $2, 'static', 'whatsapp') RETURNING id")
        .bind::<BigInt, _>(tenant_id)
        .bind::<Text, _>(name)
        .get_result::<Id>(conn)
        .expect("reference segment")
        .id
}

pub fn drop_bench_segments(conn: &mut PgConnection, tenant_id: i64, prefix: &str) {
    // Those naming others first: a segment a filter names cannot be deleted.
    for depth in (1..=3).rev() {
        diesel::sql_query(
            "DELETE FROM segments WHERE tenant_id = $1 AND name LIKE $2 AND depth = $3",
        )
        .bind::<BigInt, _>(tenant_id)
        .bind::<Text, _>(format!("{prefix}%"))
        .bind::<diesel::sql_types::SmallInt, _>(depth)
        .execute(conn)
        .expect("drop bench segments");
    }
    // Their memberships, now dead, go too: left in the indexes, every later run read
    // past millions of them and its figures drifted. No statistics are taken here: what
    // a scenario writes next, the planner has not seen until the scenario analyses it.
    vacuum_memberships(conn);
}

/// Vacuums the memberships as autovacuum would have by then; this server's is off. Dead
/// ones go, and the live ones are marked visible, so both the service and a reference
/// read them from an index alone. No statistics are taken.
/// `ids` spelled as a SQL array literal, for the harness's own statements that cannot
/// bind them (`EXECUTE`, shapes assembled as text).
pub fn bigint_array(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("ARRAY[{}]::bigint[]", ids.join(","))
}

pub fn vacuum_memberships(conn: &mut PgConnection) {
    conn.batch_execute("VACUUM segment_members")
        .expect("vacuum the memberships");
}

/// A batch of members added as the service adds them, each with its
/// `segment.member_added` event numbered from the tenant's counter, and the segment's
/// count: one statement, where the service stages its events and moves them at commit.
/// `$1` the tenant, `$2` the segment, `$3` the contact ids.
const REFERENCE_ADD_WITH_EVENTS: &str = "
    WITH added AS (
        INSERT INTO segment_members (tenant_id, segment_id, contact_id)
        SELECT $1, $2, c.id FROM contacts c WHERE c.tenant_id = $1 AND c.id = ANY($3)
        ON CONFLICT DO NOTHING RETURNING contact_id),
    numbered AS (SELECT contact_id, row_number() OVER () AS n,
                        count(*) OVER () AS total FROM added),
    counted AS (
        INSERT INTO event_counters AS c (tenant_id, last_id) SELECT $1, count(*) FROM added
        ON CONFLICT (tenant_id) DO UPDATE SET last_id = c.last_id + excluded.last_id
        RETURNING c.last_id),
    recorded AS (
        INSERT INTO events (tenant_id, id, type, occurred_at, segment_id, contact_id)
        SELECT $1, counted.last_id - numbered.total + numbered.n, 'segment.member_added',
               now(), $2, numbered.contact_id
        FROM numbered, counted)
    UPDATE segments SET recipients = recipients + (SELECT count(*) FROM added),
                        updated_at = now()
    WHERE tenant_id = $1 AND id = $2";

pub async fn members_add(ctx: &mut Context<'_>) -> Vec<Row> {
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let total = (ctx.data.contacts / 10).min(100_000);
    let batch = (total / 10).clamp(1, 10_000);
    let (tenant, first) = (ctx.data.tenant_id, ctx.data.first_contact_id);
    drop_bench_segments(ctx.conn, tenant, "bench-add");
    let ids_of = |run: usize, b: i64| -> Vec<i64> {
        let start = first
            + ((run.min(50) as i64) * 13_331) % (ctx.data.contacts - total).max(1)
            + b * batch;
        (start..start + batch).collect()
    };
    let mut service_seconds = Vec::new();
    let mut reference_seconds = Vec::new();
    let mut same_work_seconds = Vec::new();
    for run in run_numbers(ctx.settings) {
        let segment = ctx
            .call(
                "POST",
                &base,
                "/v1/segments",
                Some(json!({"name": format!("bench-add-service-{run}"), "channel": "whatsapp"})),
            )
            .await;
        let path = format!("/v1/segments/{}/members", segment["id"]);
        let started = Instant::now();
        for b in 0..total / batch {
            ctx.call(
                "POST",
                &base,
                &path,
                Some(json!({"contact_ids": ids_of(run, b)})),
            )
            .await;
        }
        let service_time = started.elapsed().as_secs_f64();
        let segment_id = reference_segment(ctx.conn, tenant, &format!("bench-add-reference-{run}"));
        let started = Instant::now();
        for b in 0..total / batch {
            ctx.conn
                .transaction(|conn| {
                    let added = diesel::sql_query(
                        "INSERT INTO segment_members (tenant_id, segment_id, contact_id)
                         SELECT $1, $2, c.id FROM contacts c WHERE c.tenant_id = $1 AND c.id = ANY($3)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind::<BigInt, _>(tenant)
                    .bind::<BigInt, _>(segment_id)
                    .bind::<Array<BigInt>, _>(ids_of(run, b))
                    .execute(conn)?;
                    diesel::sql_query("UPDATE segments SET recipients = recipients + $3, updated_at = now() WHERE tenant_id = $1 AND id = $2")
                        .bind::<BigInt, _>(tenant)
                        .bind::<BigInt, _>(segment_id)
                        .bind::<BigInt, _>(added as i64)
                        .execute(conn)
                })
                .expect("reference add");
        }
        let reference_time = started.elapsed().as_secs_f64();
        let segment_id = reference_segment(ctx.conn, tenant, &format!("bench-add-events-{run}"));
        let started = Instant::now();
        for b in 0..total / batch {
            diesel::sql_query(REFERENCE_ADD_WITH_EVENTS)
                .bind::<BigInt, _>(tenant)
                .bind::<BigInt, _>(segment_id)
                .bind::<Array<BigInt>, _>(ids_of(run, b))
                .execute(ctx.conn)
                .expect("reference add with events");
        }
        let same_work_time = started.elapsed().as_secs_f64();
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
            same_work_seconds.push(same_work_time);
        }
        drop_bench_segments(ctx.conn, tenant, "bench-add");
    }
    let (service_time, reference_time, same_work_time) = (
        median(&mut service_seconds),
        median(&mut reference_seconds),
        median(&mut same_work_seconds),
    );
    // The service's rate against a reference's, and the share of it the target asks for.
    let against = |metric: String, reference_time: f64, target: &str, share: f64| Row {
        scenario: "members-add",
        metric,
        service: total as f64 / service_time,
        reference: Some(total as f64 / reference_time),
        unit: "members/s",
        higher_is_better: true,
        target: target.into(),
        met: Some(reference_time / service_time >= share),
    };
    vec![
        against(
            format!("add {total} contacts in batches of {batch}"),
            reference_time,
            ">= 50% of raw SQL",
            0.5,
        ),
        against(
            format!("add {total} contacts in batches of {batch}, each with its event"),
            same_work_time,
            "<= 1.3x raw SQL",
            1.0 / 1.3,
        ),
        rss_row("members-add", &service),
    ]
}

pub async fn from_search(ctx: &mut Context<'_>) -> Vec<Row> {
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let tenant = ctx.data.tenant_id;
    drop_bench_segments(ctx.conn, tenant, "bench-search");
    let mut service_seconds = Vec::new();
    let mut reference_seconds = Vec::new();
    let mut matched = 0;
    for run in run_numbers(ctx.settings) {
        let segment = ctx
            .call(
                "POST",
                &base,
                "/v1/segments",
                Some(json!({"name": format!("bench-search-service-{run}"), "channel": "whatsapp"})),
            )
            .await;
        let started = Instant::now();
        let report = ctx
            .call(
                "POST",
                &base,
                &format!("/v1/segments/{}/members/from-search", segment["id"]),
                Some(json!({"tag": "lead"})),
            )
            .await;
        let service_time = started.elapsed().as_secs_f64();
        matched = report["added"].as_i64().unwrap_or(0);
        let segment_id =
            reference_segment(ctx.conn, tenant, &format!("bench-search-reference-{run}"));
        let started = Instant::now();
        ctx.conn
            .transaction(|conn| {
                let added = diesel::sql_query(
                    "INSERT INTO segment_members (tenant_id, segment_id, contact_id)
                     SELECT $1, $2, id FROM contacts WHERE tenant_id = $1 AND tags @> ARRAY['lead']
                     ON CONFLICT DO NOTHING",
                )
                .bind::<BigInt, _>(tenant)
                .bind::<BigInt, _>(segment_id)
                .execute(conn)?;
                diesel::sql_query("UPDATE segments SET recipients = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2")
                    .bind::<BigInt, _>(tenant)
                    .bind::<BigInt, _>(segment_id)
                    .bind::<BigInt, _>(added as i64)
                    .execute(conn)
            })
            .expect("reference from-search");
        let reference_time = started.elapsed().as_secs_f64();
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
        }
        drop_bench_segments(ctx.conn, tenant, "bench-search");
    }
    let (service_time, reference_time) =
        (median(&mut service_seconds), median(&mut reference_seconds));
    vec![
        Row {
            scenario: "from-search",
            metric: format!("add all {matched} contacts tagged `lead`"),
            service: service_time,
            reference: Some(reference_time),
            unit: "s",
            higher_is_better: false,
            target: ">= 50% of raw SQL".into(),
            met: Some(reference_time / service_time >= 0.5),
        },
        rss_row("from-search", &service),
    ]
}

/// The filter the dynamic scenarios use: three conditions on typed attributes.
fn three_conditions() -> Value {
    json!({"all": [
        {"field": "attributes.city", "op": "eq", "value": "Milan"},
        {"field": "attributes.premium", "op": "eq", "value": true},
        {"field": "attributes.score", "op": "gt", "value": 50}
    ]})
}

pub async fn dynamic_count(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    drop_bench_segments(ctx.conn, tenant, "bench-dynamic");
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    let segment = ctx
        .call("POST", &base, "/v1/segments", Some(json!({"name": "bench-dynamic-count", "channel": "whatsapp", "kind": "dynamic", "filter": three_conditions()})))
        .await;
    let path = format!("/v1/segments/{}", segment["id"]);
    let (mut service_seconds, mut reference_seconds) = (Vec::new(), Vec::new());
    let mut counted = 0;
    for run in run_numbers(ctx.settings) {
        let started = Instant::now();
        let read = ctx.call("GET", &base, &path, None).await;
        let service_time = started.elapsed().as_secs_f64();
        counted = read["recipients"].as_i64().unwrap_or(0);
        let started = Instant::now();
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        let reference: Count = diesel::sql_query(
            "SELECT count(*) AS count FROM contacts
             WHERE tenant_id = $1 AND attributes @> '{\"city\": \"Milan\", \"premium\": true}'
               AND (attributes ->> 'score')::float8 > 50",
        )
        .bind::<BigInt, _>(tenant)
        .get_result(ctx.conn)
        .expect("reference count");
        let reference_time = started.elapsed().as_secs_f64();
        assert_eq!(
            reference.count, counted,
            "the service and the reference disagree"
        );
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
        }
    }
    let (service_time, reference_time) =
        (median(&mut service_seconds), median(&mut reference_seconds));
    vec![
        Row {
            scenario: "dynamic-count",
            metric: format!(
                "count a 3-condition filter ({counted} of {}), GET /v1/segments/{{id}}",
                ctx.data.contacts
            ),
            service: service_time * 1000.0,
            reference: Some(reference_time * 1000.0),
            unit: "ms",
            higher_is_better: false,
            target: "<= 1.2x raw SQL".into(),
            met: Some(service_time <= 1.2 * reference_time),
        },
        rss_row("dynamic-count", &service),
    ]
}

pub async fn segments_list(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    drop_bench_segments(ctx.conn, tenant, "bench-");
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    for n in 0..25 {
        let body = if n % 3 == 0 {
            json!({"name": format!("bench-list-{n}"), "channel": "whatsapp", "kind": "dynamic", "filter": three_conditions()})
        } else {
            json!({"name": format!("bench-list-{n}"), "channel": "sms"})
        };
        ctx.call("POST", &base, "/v1/segments", Some(body)).await;
    }
    let url = format!("{base}/v1/segments?per_page=25");
    let seconds = if ctx.settings.quick { 1 } else { 10 };
    if !ctx.settings.quick {
        wrk(&url, 2);
    }
    // The reference reads the same page and its total (the answer carries both), the
    // fastest of three shapes in each run: the count as a subquery of the page, as a
    // window over it, or as a statement of its own.
    let columns =
        "id, name, description, kind, channel, filter, recipients, created_at, updated_at";
    let page = format!(
        "FROM segments WHERE tenant_id = {tenant} ORDER BY created_at DESC, id DESC LIMIT 25;"
    );
    let count = format!("SELECT count(*) FROM segments WHERE tenant_id = {tenant}");
    let shapes = [
        format!("SELECT {columns}, ({count}) {page}"),
        format!("SELECT {columns}, count(*) OVER () {page}"),
        format!("SELECT {columns} {page}\n{count};"),
    ];
    let (mut rates, mut p50s, mut p99s, mut references) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.settings.runs {
        let (rate, p50, p99) = wrk(&url, seconds);
        rates.push(rate);
        p50s.push(p50);
        p99s.push(p99);
        let fastest = shapes
            .iter()
            .map(|shape| pgbench(ctx.database_url, shape, seconds))
            .fold(0.0, f64::max);
        references.push(fastest);
    }
    let (p50, p99) = (median(&mut p50s), median(&mut p99s));
    let (rate, reference) = (median(&mut rates), median(&mut references));
    let rows = vec![
        Row {
            scenario: "segments-list",
            metric:
                "GET /v1/segments?per_page=25, 9 of 25 dynamic, with its total (64 connections)"
                    .into(),
            service: rate,
            reference: Some(reference),
            unit: "req/s",
            higher_is_better: true,
            target: format!(">= 50% of pgbench, p99 < 50 ms (p99 {p99:.1} ms)"),
            met: Some(rate >= 0.5 * reference && p99 < 50.0),
        },
        Row {
            scenario: "segments-list",
            metric: "GET /v1/segments?per_page=25, 9 of 25 dynamic: p50 latency (64 connections)"
                .into(),
            service: p50,
            reference: None,
            unit: "ms",
            higher_is_better: false,
            target: "p50 < 50 ms".into(),
            met: Some(p50 < 50.0),
        },
        rss_row("segments-list", &service),
    ];
    drop_bench_segments(ctx.conn, tenant, "bench-list");
    rows
}

/// Reads an NDJSON stream from the service to its end: (lines, seconds).
pub async fn stream_lines(url: &str) -> (usize, f64) {
    use futures_util::StreamExt;
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .finish();
    let started = std::time::Instant::now();
    let mut response = client
        .get(url)
        .insert_header(("Authorization", format!("Bearer {API_KEY}")))
        .send()
        .await
        .expect("open the stream");
    let mut lines = 0_usize;
    while let Some(chunk) = response.next().await {
        lines += chunk
            .expect("read the stream")
            .iter()
            .filter(|b| **b == b'\n')
            .count();
    }
    (lines, started.elapsed().as_secs_f64())
}

/// Runs `COPY (...) TO STDOUT` through psql, as a DBA would export the same rows:
/// (lines, seconds).
pub fn copy_lines(database_url: &str, statement: &str) -> (usize, f64) {
    let started = std::time::Instant::now();
    let output = std::process::Command::new("psql")
        .arg(database_url)
        .args(["-q", "-c", statement])
        .output()
        .expect("run psql");
    let seconds = started.elapsed().as_secs_f64();
    (
        output.stdout.iter().filter(|b| **b == b'\n').count(),
        seconds,
    )
}
