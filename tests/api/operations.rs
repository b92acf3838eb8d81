use actix_web::http::Method;
use actix_web::test as actix_test;
use actix_web::web;
use segments::config::Config;
use segments::{build_app, AppState};
use serde_json::json;

use crate::harness::spawn_app;

#[actix_web::test]
async fn health_and_readiness_answer_ok_with_a_database() {
    let app = spawn_app().await;
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None)
            .await
            .expect(200),
        json!({"status": "ok"})
    );
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None)
            .await
            .expect(200),
        json!({"status": "ok"})
    );
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.get("/v1/segments/12345", &key)
        .await
        .expect_problem(404, "not_found");
    let reply = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.text.contains(
            r#"http_requests_total{method="GET",route="/v1/segments/{id}",status="404"} 1"#
        ),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("http_request_duration_seconds_bucket"));
    assert!(reply.text.contains("db_pool_max_connections 4"));
    assert_eq!(
        reply.headers.get("x-request-id").unwrap().len(),
        36,
        "a UUID request id"
    );
}

#[actix_web::test]
async fn without_a_database_requests_answer_503_with_retry_after() {
    // Nothing listens on port 1: the pool never gets a connection.
    let url = "postgres://nobody@127.0.0.1:1/none";
    let state = web::Data::new(AppState::new(Config::for_database(url)));
    let app = actix_test::init_service(build_app(state)).await;
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/readyz").to_request(),
    )
    .await;
    assert_eq!(response.status(), 503);
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get()
            .uri("/v1/segments")
            .insert_header(("Authorization", format!("Bearer sk_{}", "0".repeat(64))))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "5");
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = actix_test::read_body_json(response).await;
    assert_eq!(body["code"], "database_unavailable");
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/healthz").to_request(),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn without_an_admin_token_the_admin_api_does_not_exist() {
    let url = "postgres://nobody@127.0.0.1:1/none";
    let state = web::Data::new(AppState::new(Config::for_database(url)));
    let app = actix_test::init_service(build_app(state)).await;
    let request = actix_test::TestRequest::post()
        .uri("/v1/admin/tenants")
        .insert_header(("Authorization", "Bearer anything"))
        .set_json(json!({"name": "x"}))
        .to_request();
    let response = actix_test::call_service(&app, request).await;
    assert_eq!(response.status(), 404);
}

#[actix_web::test]
async fn swagger_ui_is_served_from_vendored_assets() {
    let app = spawn_app().await;
    let reply = app.call(Method::GET, "/swagger-ui/", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.text.contains("swagger-ui"));
    let reply = app
        .call(Method::GET, "/swagger-ui/swagger-ui-bundle.js", None, None)
        .await;
    assert_eq!(reply.status, 200);
    let reply = app.call(Method::GET, "/swagger-ui", None, None).await;
    assert!(reply.status.is_redirection());
}

#[actix_web::test]
async fn a_sane_client_request_id_is_kept_and_answered() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let with_id = |id: &str| {
        actix_web::test::TestRequest::get()
            .uri("/v1/segments")
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("X-Request-Id", id.to_owned()))
            .to_request()
    };
    let kept = app.send(with_id("web-7f3a.checkout:42")).await;
    assert_eq!(
        kept.headers.get("x-request-id").unwrap(),
        "web-7f3a.checkout:42"
    );
    for insane in ["has space", &"x".repeat(129), "new\\nline"] {
        let replaced = app.send(with_id(insane)).await;
        let id = replaced
            .headers
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(id.len(), 36, "{insane:?} replaced by a UUID, got {id}");
    }
}
