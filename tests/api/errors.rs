//! Malformed input of every kind answers a problem+json 4xx, never a 500 or plain text.

use actix_web::http::Method;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::harness::spawn_app;

#[actix_web::test]
async fn broken_json_is_400_and_wrong_types_are_422_with_the_path() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let request = TestRequest::post()
        .uri("/v1/segments")
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload("{\"name\": ")
        .to_request();
    app.send(request)
        .await
        .expect_problem(400, "malformed_json");
    let problem = app
        .post(
            "/v1/contacts/batch",
            &key,
            json!({"contacts": [{"name": "ok"}, {"name": 12}]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "contacts[1].name");
    let problem = app
        .post("/v1/segments", &key, json!([1, 2]))
        .await
        .expect_problem(422, "validation_failed");
    assert!(problem["detail"].as_str().unwrap().contains("expected"));
}

#[actix_web::test]
async fn a_body_without_json_content_type_is_415() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let request = TestRequest::post()
        .uri("/v1/segments")
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", "text/plain"))
        .set_payload(r#"{"name":"x","channel":"sms"}"#)
        .to_request();
    app.send(request)
        .await
        .expect_problem(415, "unsupported_media_type");
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let description = "x".repeat(1024 * 1024);
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "big", "channel": "sms", "description": description}),
    )
    .await
    .expect_problem(413, "payload_too_large");
}

#[actix_web::test]
async fn bad_path_and_query_parameters_name_the_parameter() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let problem = app
        .get("/v1/segments/not-a-number", &key)
        .await
        .expect_problem(400, "invalid_path_parameter");
    assert_eq!(problem["errors"][0]["field"], "id");
    let problem = app
        .get("/v1/segments/99999999999999999999", &key)
        .await
        .expect_problem(400, "invalid_path_parameter");
    assert_eq!(problem["errors"][0]["field"], "id");
    let problem = app
        .get("/v1/contacts?page=-1", &key)
        .await
        .expect_problem(400, "invalid_query");
    assert_eq!(problem["errors"][0]["field"], "page");
}

#[actix_web::test]
async fn unknown_routes_and_methods_are_404_problems() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.get("/v1/nothing-here", &key)
        .await
        .expect_problem(404, "not_found");
    app.call(Method::PUT, "/v1/segments", Some(&key), Some(json!({})))
        .await
        .expect_problem(404, "not_found");
    app.call(Method::GET, "/", None, None)
        .await
        .expect_problem(404, "not_found");
}

#[actix_web::test]
async fn the_nul_character_is_refused_where_it_enters_never_a_500() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let problem = app
        .post(
            "/v1/contacts",
            &key,
            json!({"name": "Giulia", "tags": ["ok", "b\u{0}d"]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "tags[1]");
    assert_eq!(problem["errors"][0]["code"], "invalid_character");
    // An escaped backslash followed by "u0000" is text, not NUL.
    app.post("/v1/contacts", &key, json!({"name": "back\\u0000slash"}))
        .await
        .expect(201);
    let problem = app
        .get("/v1/contacts?search=a%00b", &key)
        .await
        .expect_problem(400, "invalid_query");
    assert_eq!(problem["errors"][0]["field"], "search");
    app.call(
        actix_web::http::Method::PUT,
        "/v1/contacts/by-external-id/x%00y",
        Some(&key),
        Some(json!({"name": "X"})),
    )
    .await
    .expect_problem(400, "invalid_path_parameter");
    let segment = app.segment(&key, "Nul", "whatsapp").await;
    let reply = app
        .send(
            actix_web::test::TestRequest::post()
                .uri(&format!("/v1/segments/{}/import", segment["id"]))
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "text/csv"))
                .set_payload("phone,name\n3331234567,Gi\0ulia\n3331234568,Marco\n")
                .to_request(),
        )
        .await
        .expect(200);
    assert_eq!(
        (reply["invalid_rows"].as_i64(), reply["added"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(reply["errors"][0]["code"], "invalid_character");
}

#[actix_web::test]
async fn text_is_measured_as_sent_as_the_document_says() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    // 201 characters as sent: refused, though trimming would leave 200.
    let padded = format!("\r{}", "*".repeat(200));
    let problem = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": padded, "channel": "sms"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "name");
    // 200 as sent: accepted, and stored trimmed.
    let fits = format!(" {} ", "*".repeat(198));
    let segment = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": fits, "channel": "sms"}),
        )
        .await
        .expect(201);
    assert_eq!(segment["name"], "*".repeat(198));
}
