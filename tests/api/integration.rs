//! What front-ends and CRM integrations rely on: CORS, versions (`ETag`, `If-Match`),
//! idempotent retries, the filter language described, contacts picked before a segment
//! is saved.

use actix_web::http::Method;
use actix_web::test::TestRequest;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, spawn_app_with_config, App, Reply, TestApp};

pub(crate) fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[actix_web::test]
async fn browser_apps_on_the_configured_origins_may_call() {
    let app = spawn_app_with_config(|config| {
        config.cors_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let key = app.tenant_key().await;
    let preflight = |origin: &str| {
        TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/v1/segments/1")
            .insert_header(("Origin", origin.to_owned()))
            .insert_header(("Access-Control-Request-Method", "PATCH"))
            .insert_header((
                "Access-Control-Request-Headers",
                "authorization, content-type, if-match, idempotency-key, x-request-id",
            ))
            .to_request()
    };
    let allowed = app.send(preflight("https://app.example.com")).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    let headers = header(&allowed, "access-control-allow-headers").unwrap_or_default();
    for wanted in [
        "if-match",
        "idempotency-key",
        "authorization",
        "x-request-id",
    ] {
        assert!(headers.contains(wanted), "{wanted} in {headers}");
    }
    let refused = app.send(preflight("https://evil.example.net")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    // The real request: allowed, with the headers a front-end reads exposed.
    let listed = app
        .send(
            TestRequest::get()
                .uri("/v1/segments")
                .insert_header(("Origin", "https://app.example.com"))
                .insert_header(("Authorization", format!("Bearer {key}")))
                .to_request(),
        )
        .await;
    assert_eq!(listed.status, 200);
    let exposed = header(&listed, "access-control-expose-headers").unwrap_or_default();
    for wanted in [
        "etag",
        "location",
        "retry-after",
        "ratelimit-remaining",
        "x-request-id",
    ] {
        assert!(exposed.contains(wanted), "{wanted} in {exposed}");
    }
    // Error answers carry them too, so the page can read the problem.
    let missing = app
        .send(
            TestRequest::get()
                .uri("/v1/segments/999999")
                .insert_header(("Origin", "https://app.example.com"))
                .insert_header(("Authorization", format!("Bearer {key}")))
                .to_request(),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert!(header(&missing, "access-control-allow-origin").is_some());
}

#[actix_web::test]
async fn without_configured_origins_no_cross_origin_call_is_allowed() {
    let app = spawn_app().await;
    let reply = app
        .send(
            TestRequest::default()
                .method(Method::OPTIONS)
                .uri("/v1/segments")
                .insert_header(("Origin", "https://app.example.com"))
                .insert_header(("Access-Control-Request-Method", "GET"))
                .to_request(),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(header(&reply, "access-control-allow-origin"), None);
}

#[actix_web::test]
async fn a_filter_editor_builds_its_menus_from_filter_fields() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(
        &key,
        &[
            ("city", "City", "text"),
            ("birthdate", "Birth date", "date"),
        ],
    )
    .await;
    let described = app
        .get("/v1/segments/filter-fields", &key)
        .await
        .expect(200);
    let fields = described["fields"].as_array().unwrap();
    let names: Vec<&str> = fields
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "name",
            "email",
            "phone",
            "phone_country",
            "tags",
            "created_at",
            "last_messaged_at",
            "opted_out",
            "privacy_consent",
            "segment",
            "attributes.birthdate",
            "attributes.city"
        ]
    );
    let birthdate = &fields[10];
    assert_eq!(
        (birthdate["label"].as_str(), birthdate["type"].as_str()),
        (Some("Birth date"), Some("date"))
    );
    let in_last_days = birthdate["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["op"] == "in_last_days")
        .unwrap();
    assert_eq!(in_last_days["value"], "days");
    // Every operator as described is one the parser accepts, through the API.
    let segment = id(&app.segment(&key, "Named", "whatsapp").await);
    for field in fields {
        for operator in field["operators"].as_array().unwrap() {
            let one = match field["type"].as_str().unwrap() {
                "number" => json!(1),
                "boolean" => json!(true),
                "date" => json!("2024-01-31"),
                "segment" => json!(segment),
                _ => json!("x"),
            };
            let value = match operator["value"].as_str().unwrap() {
                "none" => Value::Null,
                "two" => json!([one, one]),
                "list" => json!([one]),
                "days" => json!(30),
                _ => one,
            };
            let mut condition = json!({"field": field["field"], "op": operator["op"]});
            if !value.is_null() {
                condition["value"] = value;
            }
            app.post(
                "/v1/segments/preview",
                &key,
                json!({"channel": "whatsapp", "filter": condition}),
            )
            .await
            .expect(200);
        }
    }
    // Another tenant sees its own attributes only.
    let other = app.tenant_key().await;
    let theirs = app
        .get("/v1/segments/filter-fields", &other)
        .await
        .expect(200);
    assert_eq!(theirs["fields"].as_array().unwrap().len(), 10);
}

#[actix_web::test]
async fn a_static_segment_is_created_with_its_first_members_in_one_call() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"endpoint_limit": 2})).await;
    let a = id(&app
        .contact(&key, json!({"name": "A", "phone": "3331110001"}))
        .await);
    let b = id(&app
        .contact(&key, json!({"name": "B", "phone": "3331110002"}))
        .await);
    let c = id(&app
        .contact(&key, json!({"name": "C", "phone": "3331110003"}))
        .await);
    let created = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Picked", "channel": "whatsapp", "contact_ids": [a, b, b, 999999]}),
        )
        .await
        .expect(201);
    assert_eq!(created["recipients"], 2);
    assert_eq!(created["membership"]["added"], 2);
    assert_eq!(created["membership"]["rejected"][0]["contact_id"], 999999);
    let members = app
        .get(&format!("/v1/segments/{}/members", id(&created)), &key)
        .await
        .expect(200);
    assert_eq!(members["total"], 2);
    // Past the endpoint limit: refused whole, no segment left behind.
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "Too many", "channel": "sms", "contact_ids": [a, b, c]}),
    )
    .await
    .expect_problem(422, "endpoint_limit_exceeded");
    let listed = app.get("/v1/segments?search=Too", &key).await.expect(200);
    assert_eq!(listed["total"], 0);
    // A dynamic segment's members are its filter's.
    let refused = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Dyn", "channel": "sms", "kind": "dynamic",
                   "filter": {"field": "name", "op": "exists"}, "contact_ids": [a]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["field"], "contact_ids");
    // Without contact_ids, no membership in the answer.
    let plain = app.segment(&key, "Plain", "sms").await;
    assert!(plain.get("membership").is_none(), "{plain}");
}

async fn patch_if_match<S: App>(
    app: &TestApp<S>,
    path: &str,
    key: &str,
    etag: &str,
    body: Value,
) -> Reply {
    app.send(
        TestRequest::patch()
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("If-Match", etag.to_owned()))
            .set_json(body)
            .to_request(),
    )
    .await
}

async fn delete_if_match<S: App>(app: &TestApp<S>, path: &str, key: &str, etag: &str) -> Reply {
    app.send(
        TestRequest::delete()
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("If-Match", etag.to_owned()))
            .to_request(),
    )
    .await
}

#[actix_web::test]
async fn two_editors_never_overwrite_each_other_silently() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Shared", "whatsapp").await);
    let contact = id(&app.contact(&key, json!({"name": "Giulia"})).await);
    let campaign = id(&app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "C", "channel": "whatsapp", "segment_ids": [segment]}),
        )
        .await
        .expect(201));
    let resources = [
        (
            format!("/v1/segments/{segment}"),
            json!({"name": "Renamed"}),
        ),
        (
            format!("/v1/contacts/{contact}"),
            json!({"name": "Giulia R."}),
        ),
        (format!("/v1/campaigns/{campaign}"), json!({"name": "C2"})),
    ];
    for (path, change) in resources {
        let read = app.get(&path, &key).await;
        let first = header(&read, "etag").expect("an ETag");
        assert_eq!(
            header(&app.get(&path, &key).await, "etag").as_deref(),
            Some(first.as_str()),
            "stable"
        );
        // The first editor's change goes through and moves the version...
        let changed = patch_if_match(&app, &path, &key, &first, change.clone()).await;
        assert_eq!(changed.status, 200, "{path}: {}", changed.text);
        let second = header(&changed, "etag").expect("an ETag");
        assert_ne!(first, second);
        assert_eq!(
            header(&app.get(&path, &key).await, "etag"),
            Some(second.clone())
        );
        // ... so the second editor, who read the first version, is told, and nothing changes.
        let stale = patch_if_match(&app, &path, &key, &first, json!({"name": "Overwritten"})).await;
        assert_eq!(stale.status, 412, "{path}: {}", stale.text);
        assert_eq!(stale.body["code"], "precondition_failed");
        assert_eq!(
            header(&app.get(&path, &key).await, "etag"),
            Some(second.clone()),
            "unchanged"
        );
        let gone = delete_if_match(&app, &path, &key, &first).await;
        assert_eq!(gone.status, 412);
        // Any version, or the current one.
        assert_eq!(
            patch_if_match(&app, &path, &key, "*", change).await.status,
            200
        );
        let current = header(&app.get(&path, &key).await, "etag").unwrap();
        assert_eq!(
            delete_if_match(&app, &path, &key, &current).await.status,
            204,
            "{path}"
        );
    }
    let malformed = patch_if_match(&app, "/v1/segments/1", &key, "", json!({"name": "x"})).await;
    assert_eq!(malformed.status, 400);
}

#[actix_web::test]
async fn of_two_edits_sent_at_once_with_one_version_exactly_one_wins() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for round in 0..10 {
        let contact = id(&app
            .contact(&key, json!({"name": format!("Round {round}")}))
            .await);
        let path = format!("/v1/contacts/{contact}");
        let etag = header(&app.get(&path, &key).await, "etag").unwrap();
        let replies = join_all((0..4).map(|editor| {
            patch_if_match(
                &app,
                &path,
                &key,
                &etag,
                json!({"name": format!("Editor {editor}")}),
            )
        }))
        .await;
        let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412, 412, 412], "round {round}");
        let winner = replies.iter().find(|r| r.status == 200).unwrap();
        let stored = app.get(&path, &key).await.expect(200);
        assert_eq!(
            stored["name"], winner.body["name"],
            "round {round}: the winner's change stands"
        );
    }
}
