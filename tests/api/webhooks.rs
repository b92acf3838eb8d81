//! Webhooks against a real HTTP receiver that verifies every signature with the Standard
//! Webhooks project's own library: batches in order, retries that resend the same batch,
//! a receiver that fails and recovers, a restart, two replicas, and the address guard.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse, HttpServer};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use segments::config::Config;
use segments::service::webhook_delivery;
use segments::webhook_client::WebhookClient;
use segments::AppState;

use crate::events::events_after;
use crate::harness::{id, spawn_app, spawn_app_with_config, App, TestApp};
use crate::imports::import_csv;

/// One call the receiver got.
#[derive(Debug, Clone)]
pub struct Call {
    message_id: String,
    events: Vec<Value>,
    verified: bool,
    status: u16,
}

/// A webhook receiver on a local port.
#[derive(Default)]
pub struct Receiver {
    secret: Mutex<Option<String>>,
    calls: Mutex<Vec<Call>>,
    /// Calls still to answer 500.
    pub failures: AtomicUsize,
    /// How long each answer takes, in milliseconds.
    delay_ms: AtomicU64,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl Receiver {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The events of every acknowledged call, in the order they arrived.
    pub fn acknowledged(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|call| call.status == 200)
            .flat_map(|call| call.events)
            .collect()
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    receiver: web::Data<Arc<Receiver>>,
) -> HttpResponse {
    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    receiver.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = receiver.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(value) = request.headers().get(name) {
            headers.insert(
                name,
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
    }
    let secret = receiver.secret.lock().unwrap().clone().unwrap_or_default();
    let verified = standardwebhooks::Webhook::new(&secret)
        .and_then(|webhook| webhook.verify(&body, &headers))
        .is_ok();
    let failing = receiver
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing || !verified { 500 } else { 200 };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    receiver.calls.lock().unwrap().push(Call {
        message_id: request
            .headers()
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        events: parsed["events"].as_array().cloned().unwrap_or_default(),
        verified,
        status,
    });
    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

/// Starts a receiver; returns it and its URL.
pub fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let shared = web::Data::new(receiver.clone());
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(shared.clone())
            .route("/hook", web::post().to(receive))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (receiver, format!("http://{address}/hook"))
}

/// Runs a dispatcher (a replica's) against the app's database.
pub fn start_dispatcher<S>(app: &TestApp<S>, allow_private: bool) {
    let mut config = Config::for_database(&app.database.url);
    config.webhook_allow_private = allow_private;
    let state = AppState::new(config);
    webhook_delivery::spawn(
        state.env.clone(),
        Rc::new(WebhookClient::new(allow_private)),
        app.database.url.clone(),
    );
}

/// Lets time pass for retries: every webhook waiting for its next attempt is due now.
pub fn hurry<S>(app: &TestApp<S>) {
    diesel::sql_query("UPDATE webhooks SET next_attempt_at = now() WHERE next_attempt_at > now()")
        .execute(&mut app.database.connection())
        .unwrap();
}

pub async fn wait_for<S>(app: &TestApp<S>, what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        hurry(app);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

const TYPES: [&str; 4] = [
    "contact.created",
    "segment.member_added",
    "segment.member_removed",
    "import.finished",
];

pub async fn subscribe<S: App>(
    app: &TestApp<S>,
    key: &str,
    receiver: &Receiver,
    url: &str,
) -> Value {
    let created = app
        .post(
            "/v1/webhooks",
            key,
            json!({"url": url, "event_types": TYPES, "description": "CRM"}),
        )
        .await
        .expect(201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    *receiver.secret.lock().unwrap() = Some(secret);
    created
}

/// An import of `rows` new contacts into a new static segment: `2 * rows + 1` events of
/// the subscribed types.
async fn import<S: App>(app: &TestApp<S>, key: &str, rows: usize, first_phone: u64) {
    let segment = id(&app
        .segment(key, &format!("List {first_phone}"), "whatsapp")
        .await);
    let mut csv = String::from("phone,name\n");
    for n in 0..rows as u64 {
        csv.push_str(&format!("{},Person {n}\n", first_phone + n));
    }
    import_csv(app, segment, key, "", csv.as_bytes())
        .await
        .expect(200);
}

/// The feed's events of the subscribed types.
async fn subscribed<S: App>(app: &TestApp<S>, key: &str, after: i64) -> Vec<Value> {
    events_after(app, key, after)
        .await
        .into_iter()
        .filter(|event| TYPES.contains(&event["type"].as_str().unwrap()))
        .collect()
}

#[actix_web::test]
async fn batches_arrive_signed_in_order_and_a_failing_receiver_gets_the_same_batch_again() {
    let app = spawn_app_with_config(|config| config.webhook_allow_private = true).await;
    let key = app.tenant_key().await;
    let (receiver, url) = start_receiver();
    let webhook = subscribe(&app, &key, &receiver, &url).await;
    let hook = id(&webhook);
    assert_eq!(webhook["enabled"], true);
    import(&app, &key, 700, 3_331_000_000).await;
    // An event of a type it does not want, in the middle.
    let someone = app.get("/v1/contacts?per_page=1", &key).await.expect(200);
    app.patch(
        &format!("/v1/contacts/{}", id(&someone["items"][0])),
        &key,
        json!({"name": "Renamed"}),
    )
    .await
    .expect(200);
    import(&app, &key, 300, 3_332_000_000).await;
    let expected = subscribed(&app, &key, 0).await;
    assert_eq!(expected.len(), 2 * 1000 + 2);

    receiver.failures.store(2, Ordering::SeqCst);
    start_dispatcher(&app, true);
    wait_for(&app, "every event", || {
        receiver.acknowledged().len() >= expected.len()
    })
    .await;

    let calls = receiver.calls();
    assert!(
        calls.iter().all(|call| call.verified),
        "a signature did not verify"
    );
    assert!(calls.iter().all(|call| call.events.len() <= 500));
    // The two failures and the success carried the same batch under one message id.
    assert_eq!(calls[0].status, 500);
    assert_eq!(calls[1].status, 500);
    assert_eq!(calls[2].status, 200);
    for retry in &calls[1..3] {
        assert_eq!(retry.message_id, calls[0].message_id);
        assert_eq!(retry.events, calls[0].events);
    }
    assert_eq!(calls[0].events.len(), 500);
    // Exactly the feed's events of its types, in order, each once.
    assert_eq!(receiver.acknowledged(), expected);
    assert!(calls.len() <= 3 + 2 + expected.len() / 500);

    // The delivery log, newest first.
    let log = app
        .get(&format!("/v1/webhooks/{hook}/deliveries?limit=100"), &key)
        .await
        .expect(200);
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), calls.len());
    let oldest = &items[items.len() - 1];
    assert_eq!(oldest["status_code"], 500);
    assert_eq!(oldest["attempt"], 1);
    assert!(oldest["next_attempt_at"].is_string());
    assert_eq!(items[items.len() - 3]["status_code"], 200);
    assert_eq!(items[items.len() - 3]["attempt"], 3);
    let first_batch: Vec<i64> = calls[0].events.iter().map(id).collect();
    assert_eq!(oldest["event_ids"], json!(first_batch));
    let read = app
        .get(&format!("/v1/webhooks/{hook}"), &key)
        .await
        .expect(200);
    assert_eq!(read["failed_attempts"], 0);
    assert_eq!(read["failing_since"], Value::Null);
    assert!(read.get("secret").is_none());
    assert!(read["delivered_through"].as_i64().unwrap() >= id(expected.last().unwrap()));
}

#[actix_web::test]
async fn a_restart_loses_nothing_and_two_replicas_never_send_a_batch_at_once() {
    let app = spawn_app_with_config(|config| config.webhook_allow_private = true).await;
    let key = app.tenant_key().await;
    let (receiver, url) = start_receiver();
    let hook = id(&subscribe(&app, &key, &receiver, &url).await);
    // Recorded while no replica delivers (the service is down, or restarting).
    import(&app, &key, 600, 3_333_000_000).await;
    // A replica died holding the webhook's lease: nobody delivers until it runs out.
    diesel::sql_query(
        "UPDATE webhooks SET leased_until = now() + interval '1 hour', lease = 42 WHERE id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(hook)
    .execute(&mut app.database.connection())
    .unwrap();
    receiver.delay_ms.store(30, Ordering::SeqCst);
    start_dispatcher(&app, true);
    start_dispatcher(&app, true);
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    assert!(receiver.calls().is_empty());
    diesel::sql_query(
        "UPDATE webhooks SET leased_until = now() - interval '1 second' WHERE id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(hook)
    .execute(&mut app.database.connection())
    .unwrap();
    // More changes while deliveries run.
    import(&app, &key, 400, 3_334_000_000).await;
    let expected = subscribed(&app, &key, 0).await;
    wait_for(&app, "every event", || {
        receiver.acknowledged().len() >= expected.len()
    })
    .await;
    assert_eq!(receiver.acknowledged(), expected);
    assert_eq!(receiver.most_in_flight.load(Ordering::SeqCst), 1);
    let calls = receiver.calls();
    let distinct: std::collections::BTreeSet<&String> =
        calls.iter().map(|call| &call.message_id).collect();
    assert_eq!(distinct.len(), calls.len(), "a batch was sent twice");
}

#[actix_web::test]
async fn a_webhook_failing_for_a_day_is_disabled_and_resumes_when_enabled() {
    let app = spawn_app_with_config(|config| config.webhook_allow_private = true).await;
    let key = app.tenant_key().await;
    let (receiver, url) = start_receiver();
    let hook = id(&subscribe(&app, &key, &receiver, &url).await);
    app.contact(&key, json!({"name": "First", "phone": "333 400 0001"}))
        .await;
    receiver.failures.store(usize::MAX, Ordering::SeqCst);
    start_dispatcher(&app, true);
    wait_for(&app, "a failure", || !receiver.calls().is_empty()).await;
    // A day of failures later.
    diesel::sql_query(
        "UPDATE webhooks SET failing_since = now() - interval '26 hours', next_attempt_at = now()",
    )
    .execute(&mut app.database.connection())
    .unwrap();
    let disabled = || async {
        app.get(&format!("/v1/webhooks/{hook}"), &key)
            .await
            .expect(200)
    };
    let started = Instant::now();
    let read = loop {
        let read = disabled().await;
        if read["enabled"] == false {
            break read;
        }
        assert!(started.elapsed() < Duration::from_secs(20));
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = read["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 500"), "{reason}");
    // Events keep being recorded meanwhile; enabling again delivers them all, in order.
    app.contact(&key, json!({"name": "Second", "phone": "333 400 0002"}))
        .await;
    receiver.failures.store(0, Ordering::SeqCst);
    let tried = receiver.calls().len();
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        receiver.calls().len(),
        tried,
        "a disabled webhook was called"
    );
    let enabled = app
        .patch(
            &format!("/v1/webhooks/{hook}"),
            &key,
            json!({"enabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(enabled["disabled_reason"], Value::Null);
    let expected = subscribed(&app, &key, 0).await;
    assert_eq!(expected.len(), 2);
    wait_for(&app, "the missed events", || {
        receiver.acknowledged().len() >= 2
    })
    .await;
    assert_eq!(receiver.acknowledged(), expected);
}

#[actix_web::test]
async fn private_addresses_are_refused_when_saved_and_when_delivering() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for (url, code) in [
        ("http://127.0.0.1:9/hook", "private_address"),
        ("http://localhost:8080/", "private_address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "private_address",
        ),
        ("http://[::1]/", "private_address"),
        ("http://10.0.0.7/", "private_address"),
        ("ftp://example.com/", "invalid_url"),
        ("not a url", "invalid_url"),
    ] {
        let problem = app
            .post(
                "/v1/webhooks",
                &key,
                json!({"url": url, "event_types": ["contact.created"]}),
            )
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["code"], code, "{url}");
        assert_eq!(problem["errors"][0]["field"], "url");
    }
    app.post(
        "/v1/webhooks",
        &key,
        json!({"url": "https://example.com/", "event_types": []}),
    )
    .await
    .expect_problem(422, "validation_failed");
    // Saved while private addresses were allowed, delivered by a replica that refuses
    // them: the attempt fails without connecting.
    let (receiver, url) = start_receiver();
    let hook = id(&app
        .post(
            "/v1/webhooks",
            &key,
            json!({"url": "https://example.com/", "event_types": ["contact.created"]}),
        )
        .await
        .expect(201));
    diesel::sql_query("UPDATE webhooks SET url = $1")
        .bind::<diesel::sql_types::Text, _>(&url)
        .execute(&mut app.database.connection())
        .unwrap();
    app.contact(&key, json!({"name": "Someone", "phone": "333 500 0001"}))
        .await;
    start_dispatcher(&app, false);
    let started = Instant::now();
    let log = loop {
        let log = app
            .get(&format!("/v1/webhooks/{hook}/deliveries"), &key)
            .await
            .expect(200);
        if !log["items"].as_array().unwrap().is_empty() {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(20));
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(log["items"][0]["error"]
        .as_str()
        .unwrap()
        .contains("private"));
    assert_eq!(log["items"][0]["status_code"], Value::Null);
    assert!(receiver.calls().is_empty());
    // At most ten webhooks per tenant.
    for n in 1..10 {
        app.post(
            "/v1/webhooks",
            &key,
            json!({"url": format!("https://example.com/{n}"), "event_types": ["contact.created"]}),
        )
        .await
        .expect(201);
    }
    app.post(
        "/v1/webhooks",
        &key,
        json!({"url": "https://example.com/11", "event_types": ["contact.created"]}),
    )
    .await
    .expect_problem(422, "too_many_webhooks");
}

#[actix_web::test]
async fn webhooks_created_at_once_never_pass_the_cap() {
    let app = spawn_app().await;
    for round in 0..5 {
        let key = app.tenant_key().await;
        let creates = (0..14).map(|n| {
            app.post(
                "/v1/webhooks",
                &key,
                json!({"url": format!("https://example.com/{round}/{n}"), "event_types": ["contact.created"]}),
            )
        });
        let replies = futures_util::future::join_all(creates).await;
        let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
        assert_eq!(created, 10, "round {round}");
        let listed = app.get("/v1/webhooks?per_page=100", &key).await.expect(200);
        assert_eq!(listed["total"], 10, "round {round}");
    }
}
