//! Every limit answers problem+json with the right status and names what was too big.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

fn field_codes(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap().to_owned(),
                        e["code"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn every_limit_is_a_problem_with_the_right_status() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Limits", "whatsapp").await);

    // JSON body size (1 MiB by default): 413 before parsing.
    let huge = json!({"name": "x".repeat(1_100_000)});
    app.post("/v1/contacts", &key, huge)
        .await
        .expect_problem(413, "payload_too_large");

    // Ids per call: at most 10,000.
    let ids: Vec<i64> = (1..=10_001).collect();
    let problem = app
        .post(
            &format!("/v1/segments/{segment}/members"),
            &key,
            json!({ "contact_ids": ids }),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(field_codes(&problem)[0].0, "contact_ids");

    // Page sizes: at most 500 a page (a bad query string is a 400).
    let problem = app
        .get("/v1/contacts?per_page=501", &key)
        .await
        .expect_problem(400, "invalid_query");
    assert_eq!(field_codes(&problem)[0].0, "per_page");

    // String lengths: names, attribute values.
    let problem = app
        .post("/v1/contacts", &key, json!({"name": "x".repeat(201)}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(field_codes(&problem)[0].0, "name");
    let problem = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "x".repeat(201), "channel": "sms"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(field_codes(&problem)[0].0, "name");
    app.attributes(&key, &[("notes", "Notes", "text")]).await;
    let problem = app
        .post(
            "/v1/contacts",
            &key,
            json!({"name": "Long", "attributes": {"notes": "x".repeat(1001)}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(
        field_codes(&problem),
        [(
            "attributes.notes".to_owned(),
            "invalid_attribute_value".to_owned()
        )]
    );

    // Filter depth (5) and size (50 conditions).
    let mut deep = json!({"field": "tags", "op": "contains", "value": "a"});
    for _ in 0..6 {
        deep = json!({ "all": [deep] });
    }
    let problem = app
        .post(
            "/v1/segments/preview",
            &key,
            json!({"channel": "whatsapp", "filter": deep}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert!(field_codes(&problem)[0].0.starts_with("filter"));
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"field": "tags", "op": "contains", "value": format!("t{i}")}))
        .collect();
    let problem = app
        .post(
            "/v1/segments/preview",
            &key,
            json!({"channel": "whatsapp", "filter": {"any": many}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(
        field_codes(&problem)[0],
        ("filter".to_owned(), "too_many_conditions".to_owned())
    );

    // Attribute definitions per tenant: 100.
    for n in 1..100 {
        app.post(
            "/v1/attributes",
            &key,
            json!({"key": format!("a{n}"), "label": "A", "type": "text"}),
        )
        .await
        .expect(201);
    }
    app.post(
        "/v1/attributes",
        &key,
        json!({"key": "one_too_many", "label": "A", "type": "text"}),
    )
    .await
    .expect_problem(422, "too_many_attributes");

    // CSV size: 10 MB, refused while reading.
    let reply = app
        .send(
            TestRequest::post()
                .uri(&format!("/v1/segments/{segment}/import"))
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "text/csv"))
                .set_payload(vec![b'7'; 10 * 1024 * 1024 + 1])
                .to_request(),
        )
        .await;
    reply.expect_problem(413, "payload_too_large");
}
