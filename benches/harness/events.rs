//! Events: what recording them costs an import in the worst case we reason about (a
//! segment named by ten dynamic segments) and how fast a burst of membership events
//! reaches a local webhook receiver; and what fifty dynamic segments cost the CRM batch
//! upsert (`dynamic-writes`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse, HttpServer};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{json, Value};

use crate::batches::contacts_batch;
use crate::data::API_KEY;
use crate::import::{file_rows, last_contact, undo};
use crate::report::Row;
use crate::scenarios::{drop_bench_segments, Context};
use crate::service::Service;

#[derive(QueryableByName)]
struct LastEvent {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The tenant's latest event id (its counter: earlier runs' events may have been deleted).
fn last_event(ctx: &mut Context<'_>) -> i64 {
    diesel::sql_query(
        "SELECT coalesce((SELECT last_id FROM event_counters WHERE tenant_id = $1), 0) AS id",
    )
    .bind::<BigInt, _>(ctx.data.tenant_id)
    .get_result::<LastEvent>(ctx.conn)
    .expect("last event")
    .id
}

/// Uploads `csv` into `segment`; returns the seconds the import took.
async fn upload(base: &str, segment: i64, csv: String) -> f64 {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(900))
        .finish();
    let started = Instant::now();
    let mut response = client
        .post(format!("{base}/v1/segments/{segment}/import"))
        .insert_header(("Authorization", format!("Bearer {API_KEY}")))
        .insert_header(("Content-Type", "text/csv"))
        .send_body(csv)
        .await
        .expect("upload the file");
    let body = response.body().limit(64 << 20).await.expect("the report");
    assert!(
        response.status().is_success(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    started.elapsed().as_secs_f64()
}

fn csv_of(ctx: &mut Context<'_>, rows: i64, tag: &str) -> String {
    std::iter::once("phone,name,tags,city\n".to_owned())
        .chain(file_rows(ctx, rows, tag).into_iter().map(|r| r.csv))
        .collect()
}

/// A receiver that counts the events it is sent about one segment and remembers when
/// the last came.
struct Receiver {
    segment: AtomicI64,
    events: AtomicI64,
    last_at: Mutex<Option<Instant>>,
}

fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver {
        segment: AtomicI64::new(0),
        events: AtomicI64::new(0),
        last_at: Mutex::new(None),
    });
    let shared = web::Data::new(receiver.clone());
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(shared.clone())
            .app_data(web::PayloadConfig::new(32 << 20))
            .route(
                "/hook",
                web::post().to(
                    |body: web::Bytes, receiver: web::Data<Arc<Receiver>>| async move {
                        let batch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let segment = receiver.segment.load(Ordering::SeqCst);
                        let n = batch["events"].as_array().map_or(0, |events| {
                            events
                                .iter()
                                .filter(|event| {
                                    event["data"]["segment_id"].as_i64() == Some(segment)
                                })
                                .count()
                        }) as i64;
                        receiver.events.fetch_add(n, Ordering::SeqCst);
                        *receiver.last_at.lock().expect("lock") = Some(Instant::now());
                        HttpResponse::Ok().finish()
                    },
                ),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind the receiver");
    let address = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (receiver, format!("http://{address}/hook"))
}

pub async fn events(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    let rows = (ctx.data.contacts / 5).min(200_000);
    drop_bench_segments(ctx.conn, tenant, "bench-events");
    let service = Service::start_with(
        ctx.database_url,
        &[
            ("SEGMENTS_RATE_LIMIT", "0"),
            ("SEGMENTS_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
    );
    let base = service.base.clone();
    let mut out = Vec::new();

    // The worst case: an import into a segment that ten dynamic segments name.
    let list = ctx
        .call(
            "POST",
            &base,
            "/v1/segments",
            Some(json!({"name": "bench-events-list", "channel": "whatsapp"})),
        )
        .await;
    let list_id = list["id"].as_i64().expect("id");
    for n in 0..10 {
        ctx.call(
            "POST",
            &base,
            "/v1/segments",
            Some(json!({"name": format!("bench-events-named-{n}"), "channel": "whatsapp", "kind": "dynamic",
                        "filter": {"all": [{"field": "segment", "op": "in", "value": list_id},
                                           {"field": "attributes.city", "op": "eq", "value": "Naples"}]}})),
        )
        .await;
    }
    let last = last_contact(ctx);
    let before = last_event(ctx);
    let csv = csv_of(ctx, rows, "events-worst");
    let import_seconds = upload(&base, list_id, csv).await;
    let recorded = last_event(ctx) - before;
    // The same number of events through the same path (staged, then numbered into
    // `events` with its index and keys), alone: what recording them costs.
    let started = Instant::now();
    ctx.conn
        .transaction(|conn| {
            diesel::sql_query(
                "INSERT INTO staged_events (tenant_id, type, segment_id, contact_id)
                 SELECT $1, $2, $3, g FROM generate_series(1, $4) AS g",
            )
            .bind::<BigInt, _>(tenant)
            .bind::<Text, _>("segment.member_added")
            .bind::<BigInt, _>(list_id)
            .bind::<BigInt, _>(recorded)
            .execute(conn)?;
            segments::db::events::flush(conn, chrono::Utc::now())
        })
        .expect("record the events alone");
    let events_seconds = started.elapsed().as_secs_f64();
    out.push(Row {
        scenario: "events",
        metric: format!(
            "{rows}-row import into a segment 10 dynamic segments name ({:.1} s): its {recorded} \
             events, recorded alone ({:.2} s), as a share of it",
            import_seconds, events_seconds
        ),
        service: 100.0 * events_seconds / import_seconds,
        reference: None,
        unit: "%",
        higher_is_better: false,
        target: "events <= 25% of the import".into(),
        met: Some(events_seconds <= 0.25 * import_seconds),
    });
    undo(ctx, last, list_id, "events-worst");
    drop_bench_segments(ctx.conn, tenant, "bench-events");

    // A burst: membership events of one import, pushed to a local receiver.
    let (receiver, url) = start_receiver();
    ctx.call(
        "POST",
        &base,
        "/v1/webhooks",
        Some(json!({"url": url, "event_types": ["segment.member_added"], "description": "bench"})),
    )
    .await;
    let plain = ctx
        .call(
            "POST",
            &base,
            "/v1/segments",
            Some(json!({"name": "bench-events-burst", "channel": "whatsapp"})),
        )
        .await;
    let plain_id = plain["id"].as_i64().expect("id");
    receiver.segment.store(plain_id, Ordering::SeqCst);
    let last = last_contact(ctx);
    let csv = csv_of(ctx, rows, "events-burst");
    upload(&base, plain_id, csv).await;
    let committed = Instant::now();
    let added =
        diesel::sql_query("SELECT recipients AS id FROM segments WHERE tenant_id = $1 AND id = $2")
            .bind::<BigInt, _>(tenant)
            .bind::<BigInt, _>(plain_id)
            .get_result::<LastEvent>(ctx.conn)
            .expect("members")
            .id;
    while receiver.events.load(Ordering::SeqCst) < added
        && committed.elapsed() < Duration::from_secs(300)
    {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = receiver.events.load(Ordering::SeqCst);
    let arrived = receiver
        .last_at
        .lock()
        .expect("lock")
        .map_or(f64::NAN, |at| at.duration_since(committed).as_secs_f64());
    out.push(Row {
        scenario: "events",
        metric: format!(
            "{added} member events from one import reach a local webhook ({delivered} arrived)"
        ),
        service: arrived,
        reference: None,
        unit: "s",
        higher_is_better: false,
        target: "< 30 s for 200,000".into(),
        met: Some(delivered == added && arrived < 30.0 * (added as f64 / 200_000.0).max(1.0)),
    });
    diesel::sql_query("DELETE FROM webhooks WHERE tenant_id = $1")
        .bind::<BigInt, _>(tenant)
        .execute(ctx.conn)
        .expect("drop the webhook");
    undo(ctx, last, plain_id, "events-burst");
    drop_bench_segments(ctx.conn, tenant, "bench-events");

    out
}

/// The CRM batch upsert with fifty dynamic segments defined, against none: every contact
/// written is tested against every filter, and enters or leaves with its events.
pub async fn dynamic_writes(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    drop_bench_segments(ctx.conn, tenant, "bench-events");
    let without = contacts_batch(ctx).await;
    let service = Service::start(ctx.database_url);
    // Filters of every shape, each also narrowed to about 0.5% of contacts: what a write
    // costs is testing them on the contacts written, while setting them up (a full
    // evaluation each, with an event per member) stays short.
    const CITIES: [&str; 5] = ["Milan", "Rome", "Naples", "Turin", "Bologna"];
    for n in 0..50 {
        let city = CITIES[n / 5 % 5];
        let shape = match n % 5 {
            0 => json!({"field": "attributes.city", "op": "eq", "value": city}),
            1 => json!({"field": "tags", "op": "contains", "value": "vip"}),
            2 => json!({"field": "attributes.premium", "op": "eq", "value": true}),
            3 => json!({"field": "name", "op": "starts_with", "value": "A"}),
            _ => json!({"any": [{"field": "email", "op": "exists"},
                                {"field": "attributes.signup_date", "op": "after", "value": "2024-01-01"}]}),
        };
        let filter =
            json!({"all": [shape, {"field": "attributes.score", "op": "gt", "value": 99.5}]});
        ctx.call(
            "POST",
            &service.base,
            "/v1/segments",
            Some(json!({"name": format!("bench-events-dynamic-{n}"), "channel": "whatsapp", "kind": "dynamic", "filter": filter})),
        )
        .await;
    }
    drop(service);
    let with = contacts_batch(ctx).await;
    drop_bench_segments(ctx.conn, tenant, "bench-events");
    let (rate_without, rate_with) = (without[0].service, with[0].service);
    vec![Row {
        scenario: "dynamic-writes",
        metric: "contacts-batch rate with 50 dynamic segments vs none".into(),
        service: rate_with,
        reference: Some(rate_without),
        unit: "contacts/s",
        higher_is_better: true,
        target: ">= 80% of the rate with none".into(),
        met: Some(rate_with >= 0.8 * rate_without),
    }]
}
