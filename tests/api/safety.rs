//! One tenant cannot slow, starve or crash the service for the others: rate limits, pool
//! shares, downloads that hold nothing, bounded metrics, values PostgreSQL cannot hold,
//! keys refused before the database is asked, and background work that survives bad data.

use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::test as actix_test;
use actix_web::web;
use diesel::prelude::*;
use futures_util::future::join_all;
use futures_util::StreamExt;
use segments::config::Config;
use segments::{build_app, AppState};
use serde_json::json;

use crate::harness::{id, spawn_app, TestApp, TestDatabase, ADMIN_TOKEN};

/// The application on a fresh database, with settings changed by `configure`.
async fn app_with(
    configure: impl FnOnce(&mut Config),
) -> TestApp<
    impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let database = TestDatabase::new();
    let mut config = Config::for_database(&database.url);
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    configure(&mut config);
    let state = web::Data::new(AppState::new(config));
    let service = actix_test::init_service(build_app(state)).await;
    TestApp { service, database }
}

#[actix_web::test]
async fn a_key_past_its_rate_limit_gets_429_and_others_do_not() {
    let app = app_with(|config| {
        config.rate_limit = 2;
        config.rate_burst = 5;
    })
    .await;
    let (noisy, quiet) = (app.tenant_key().await, app.tenant_key().await);
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let reply = app.get("/v1/segments", &noisy).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers.get("ratelimit-limit").unwrap(), "5");
        remaining.push(
            reply
                .headers
                .get("ratelimit-remaining")
                .unwrap()
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    assert!(remaining.windows(2).all(|w| w[1] <= w[0]), "{remaining:?}");
    let limited = app.get("/v1/segments", &noisy).await;
    assert!(limited.headers.get("retry-after").is_some());
    assert_eq!(limited.headers.get("ratelimit-remaining").unwrap(), "0");
    limited.expect_problem(429, "rate_limited");
    app.get("/v1/segments", &quiet).await.expect(200);
}

/// Holds a tenant's evaluation lock from outside the service until released: the
/// tenant's writes wait on it, each holding a connection.
fn hold_evaluation_lock(
    url: &str,
    tenant_id: i64,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let url = url.to_owned();
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction(|conn| {
            diesel::sql_query(format!(
                "SELECT pg_advisory_xact_lock(hashtextextended('segments.evaluation.' || {tenant_id}::text, 0))"
            ))
            .execute(conn)?;
            locked.send(()).unwrap();
            let _ = released.recv();
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    });
    is_locked.recv().unwrap();
    (release, holder)
}

#[actix_web::test]
async fn a_tenant_holding_its_share_of_the_pool_leaves_the_rest_to_others() {
    // Four connections, half for any one tenant.
    let app = app_with(|config| {
        config.db_pool_size = 4;
        config.tenant_pool_share = 50;
    })
    .await;
    let (noisy_id, noisy) = app.tenant(json!({})).await;
    let quiet = app.tenant_key().await;
    let (release, holder) = hold_evaluation_lock(&app.database.url, noisy_id);
    let stuck = join_all((0..4).map(|n| {
        app.post(
            "/v1/contacts",
            &noisy,
            json!({"name": format!("Stuck {n}")}),
        )
    }));
    let quiet_reads = async {
        // The noisy writes take what they can first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let replies = join_all((0..6).map(|_| app.get("/v1/segments", &quiet))).await;
        let took = started.elapsed();
        // The noisy tenant's extra writes have given up by now; let the others finish.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        release.send(()).unwrap();
        (
            replies
                .iter()
                .map(|r| r.status.as_u16())
                .collect::<Vec<_>>(),
            took,
        )
    };
    let (stuck, (quiet_statuses, quiet_took)) = tokio::join!(stuck, quiet_reads);
    holder.join().unwrap();
    assert!(
        quiet_statuses.iter().all(|s| *s == 200),
        "{quiet_statuses:?}"
    );
    assert!(quiet_took < Duration::from_secs(2), "{quiet_took:?}");
    let mut statuses: Vec<u16> = stuck.iter().map(|reply| reply.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [201, 201, 503, 503],
        "two within the share, two told to come back"
    );
    let busy = stuck.into_iter().find(|reply| reply.status == 503).unwrap();
    assert!(busy.headers.get("retry-after").is_some());
    busy.expect_problem(503, "tenant_busy");
}

#[actix_web::test]
async fn unread_downloads_hold_no_connection_and_no_transaction() {
    // Two connections in all: three stalled downloads would have starved everyone.
    let app = app_with(|config| config.db_pool_size = 2).await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Everyone", "whatsapp").await);
    let file: String = std::iter::once("phone,name\n".to_owned())
        .chain((0..12_000).map(|i| format!("+39 333 {i:07},C{i}\n")))
        .collect();
    let request = actix_test::TestRequest::post()
        .uri(&format!("/v1/segments/{segment}/import"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "text/csv"))
        .set_payload(file)
        .to_request();
    app.send(request).await.expect(200);
    let campaign = id(&app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "Spring", "channel": "whatsapp", "segment_ids": [segment]}),
        )
        .await
        .expect(201));
    let mut unread = Vec::new();
    for _ in 0..3 {
        let request = actix_test::TestRequest::get()
            .uri(&format!("/v1/campaigns/{campaign}/audience.ndjson"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .to_request();
        let response = actix_test::call_service(&app.service, request).await;
        assert_eq!(response.status(), 200);
        unread.push(response);
    }
    // The streams have read what their buffers hold and wait for their clients.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = app.tenant_key().await;
    let started = Instant::now();
    app.get("/v1/segments", &other).await.expect(200);
    assert!(started.elapsed() < Duration::from_secs(1));
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let in_transaction: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
    )
    .get_result(&mut app.database.connection())
    .unwrap();
    assert_eq!(in_transaction.n, 0);
    // Read one stream to the end: it is whole.
    let body = actix_test::read_body(unread.pop().unwrap()).await;
    assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 12_000);
}

#[actix_web::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for n in 0..50 {
        let request = actix_test::TestRequest::default()
            .method(Method::from_bytes(format!("BREW{n}").as_bytes()).unwrap())
            .uri(&format!("/made/up/{n}"))
            .to_request();
        app.send(request).await;
    }
    let metrics = app
        .send(actix_test::TestRequest::get().uri("/metrics").to_request())
        .await
        .text;
    assert!(!metrics.contains("BREW"), "made-up methods became labels");
    assert!(metrics.contains("method=\"OTHER\""));
    let series = metrics
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .count();
    assert!(series < 10, "{series} series");
}

#[actix_web::test]
async fn values_postgresql_cannot_hold_are_refused_where_they_enter() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("birthdate", "Birth date", "date")])
        .await;
    let refused = app
        .post(
            "/v1/contacts",
            &key,
            json!({"name": "Zero", "attributes": {"birthdate": "0000-01-01"}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["field"], "attributes.birthdate");
    let refused = app
        .post(
            "/v1/segments/preview",
            &key,
            json!({"channel": "whatsapp", "filter": {"field": "attributes.birthdate", "op": "before", "value": "0000-01-01"}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["field"], "filter.value");
}

#[actix_web::test]
async fn keys_are_listed_without_their_secret_and_bad_ones_never_reach_the_database() {
    let app = spawn_app().await;
    let created = app
        .post("/v1/admin/tenants", ADMIN_TOKEN, json!({"name": "Keys"}))
        .await;
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(
        created.headers.get("x-content-type-options").unwrap(),
        "nosniff"
    );
    let created = created.expect(201);
    let (tenant, key) = (
        created["tenant"]["id"].as_i64().unwrap(),
        created["api_key"].as_str().unwrap().to_owned(),
    );
    app.get("/v1/segments", &key).await.expect(200);
    let listed = app
        .get(&format!("/v1/admin/tenants/{tenant}/api-keys"), ADMIN_TOKEN)
        .await
        .expect(200);
    let item = &listed["items"][0];
    assert_eq!(item["id"], created["api_key_id"]);
    assert_eq!(item["prefix"], &key[..10]);
    assert!(item["last_used_at"].is_string(), "{item}");
    assert!(
        !listed.to_string().contains(&key[10..]),
        "the secret part is never shown"
    );
    // A key of the wrong shape, or one already found unknown, is refused without asking
    // the database: these answer 401 while it is unreachable.
    let unknown = format!("sk_{}", "ab".repeat(32));
    app.get("/v1/segments", &unknown)
        .await
        .expect_problem(401, "unauthorized");
    app.database.set_reachable(false);
    for bad in ["sk_short", "not-a-key", unknown.as_str()] {
        app.get("/v1/segments", bad)
            .await
            .expect_problem(401, "unauthorized");
    }
    app.database.set_reachable(true);
}

#[actix_web::test]
async fn the_evaluation_job_skips_what_fails_and_runs_on_one_replica_at_a_time() {
    use segments::service::dynamic::evaluate_all_due;
    let app = spawn_app().await;
    let (broken_tenant, broken) = app.tenant(json!({})).await;
    let healthy = app.tenant_key().await;
    for key in [&broken, &healthy] {
        app.attributes(key, &[("birthdate", "Birth date", "date")])
            .await;
        app.contact(
            key,
            json!({"name": "Someone", "attributes": {"birthdate": "1990-05-01"}}),
        )
        .await;
        app.post(
            "/v1/segments",
            key,
            json!({"name": "Born before 2000", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"field": "attributes.birthdate", "op": "before", "value": "2000-01-01"}}),
        )
        .await
        .expect(201);
    }
    let mut conn = app.database.connection();
    // Bad data that got in somehow (written before values were checked): evaluating the
    // broken tenant's filter fails in PostgreSQL.
    diesel::sql_query(
        "UPDATE contacts SET attributes = '{\"birthdate\": \"0000-01-01\"}' WHERE tenant_id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(broken_tenant)
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("UPDATE segments SET evaluated_on = NULL")
        .execute(&mut conn)
        .unwrap();
    let state = AppState::new(Config::for_database(&app.database.url));
    // While another replica runs the job, this one does nothing.
    diesel::sql_query("SELECT pg_advisory_lock(hashtextextended('segments.evaluation-job', 0))")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(evaluate_all_due(&state.env).await.unwrap(), 0);
    diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended('segments.evaluation-job', 0))")
        .execute(&mut conn)
        .unwrap();
    // The broken tenant's segment fails and is skipped; the other is evaluated.
    assert_eq!(evaluate_all_due(&state.env).await.unwrap(), 1);
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tenant_id: i64,
    }
    let still_due: Vec<Due> =
        diesel::sql_query("SELECT tenant_id FROM segments WHERE evaluated_on IS NULL")
            .load(&mut conn)
            .unwrap();
    assert_eq!(
        still_due.iter().map(|d| d.tenant_id).collect::<Vec<_>>(),
        [broken_tenant]
    );
}

#[actix_web::test]
async fn a_body_that_stops_arriving_is_cut_off_with_408() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Slow", "whatsapp").await);
    // One chunk, then nothing, forever.
    let trickle = futures_util::stream::once(async {
        Ok::<_, actix_web::error::PayloadError>(web::Bytes::from_static(b"phone,name\n"))
    })
    .chain(futures_util::stream::pending());
    let stream: actix_http::BoxedPayloadStream = Box::pin(trickle);
    let mut request = actix_http::Request::with_payload(actix_http::Payload::from(stream));
    let head = request.head_mut();
    head.method = Method::POST;
    head.uri = format!("/v1/segments/{segment}/import").parse().unwrap();
    head.headers.insert(
        actix_web::http::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    head.headers.insert(
        actix_web::http::header::CONTENT_TYPE,
        "text/csv".parse().unwrap(),
    );
    let started = Instant::now();
    let reply = app.send(request).await;
    assert!(started.elapsed() >= Duration::from_secs(29));
    reply.expect_problem(408, "request_timeout");
}

#[actix_web::test]
async fn the_change_listener_keeps_saying_it_hears_and_relays_changes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use segments::db::notify::{announce_change, listen_for_changes, ChangeListener};

    #[derive(Default)]
    struct Counting {
        heard: AtomicUsize,
        changed: AtomicUsize,
    }
    impl ChangeListener for Counting {
        fn listening(&self, _: bool) {}
        fn changed(&self) {
            self.changed.fetch_add(1, Ordering::Relaxed);
        }
        fn heard(&self) {
            self.heard.fetch_add(1, Ordering::Relaxed);
        }
    }
    let database = TestDatabase::new();
    let counting = Arc::new(Counting::default());
    let listening = listen_for_changes(database.url.clone(), counting.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    announce_change(&mut database.connection()).unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    drop(listening);
    // Pinged about once a second: a cache trusting it for 5 s never lapses while it runs.
    assert!(counting.heard.load(Ordering::Relaxed) >= 2);
    assert_eq!(counting.changed.load(Ordering::Relaxed), 1);
}
