//! What front-ends and CRM integrations rely on: CORS, versions (`ETag`, `If-Match`),
//! idempotent retries, the filter language described, contacts picked before a segment
//! is saved.

use actix_web::http::Method;
use actix_web::test::TestRequest;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, spawn_app_with_config, App, Reply, TestApp};

fn header(reply: &Reply, name: &str) -> Option<String> {
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
