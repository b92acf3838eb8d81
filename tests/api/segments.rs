use serde_json::{json, Value};

use crate::harness::spawn_app;

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_static_segment_is_created_empty_read_renamed_and_deleted() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = app
        .post("/v1/segments", &key, json!({"name": "  Milan candidates ", "channel": "whatsapp", "description": "From the fair"}))
        .await
        .expect(201);
    assert_eq!(segment["name"], "Milan candidates");
    assert_eq!(segment["kind"], "static");
    assert_eq!(segment["recipients"], 0);
    assert_eq!(segment["filter"], Value::Null);
    assert_eq!(segment["filter_summary"], "No filters");
    let path = format!("/v1/segments/{}", segment["id"]);
    assert_eq!(app.get(&path, &key).await.expect(200), segment);
    let renamed = app
        .patch(
            &path,
            &key,
            json!({"name": "Milan 2026", "description": null}),
        )
        .await
        .expect(200);
    assert_eq!(renamed["name"], "Milan 2026");
    assert_eq!(renamed["description"], Value::Null);
    assert!(renamed["updated_at"].as_str() > segment["updated_at"].as_str());
    app.patch(&path, &key, json!({"channel": "sms"}))
        .await
        .expect_problem(422, "validation_failed");
    app.delete(&path, &key).await.expect(204);
    app.get(&path, &key).await.expect_problem(404, "not_found");
    app.delete(&path, &key)
        .await
        .expect_problem(404, "not_found");
}

#[actix_web::test]
async fn names_are_unique_per_tenant_ignoring_case() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.segment(&key, "VIP", "sms").await;
    app.post(
        "/v1/segments",
        &key,
        json!({"name": " vip ", "channel": "email"}),
    )
    .await
    .expect_problem(409, "segment_name_taken");
    let other = app.segment(&key, "Other", "sms").await;
    app.patch(
        &format!("/v1/segments/{}", other["id"]),
        &key,
        json!({"name": "Vip"}),
    )
    .await
    .expect_problem(409, "segment_name_taken");
    // Renaming a segment to its own name in another case is fine.
    let second = app.get("/v1/segments?search=vip", &key).await.expect(200);
    let id = second["items"][0]["id"].clone();
    app.patch(&format!("/v1/segments/{id}"), &key, json!({"name": "vip"}))
        .await
        .expect(200);
    let tenant_b = app.tenant_key().await;
    app.segment(&tenant_b, "VIP", "sms").await;
}

#[actix_web::test]
async fn list_searches_filters_sorts_and_pages() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for (name, channel) in [
        ("Bravo", "sms"),
        ("alpha", "whatsapp"),
        ("Charlie 50%", "email"),
        ("delta", "whatsapp"),
    ] {
        app.segment(&key, name, channel).await;
    }
    let default = app.get("/v1/segments", &key).await.expect(200);
    assert_eq!(names(&default), ["delta", "Charlie 50%", "alpha", "Bravo"]);
    assert_eq!(default["total"], 4);
    assert_eq!(
        names(&app.get("/v1/segments?sort=name", &key).await.expect(200)),
        ["alpha", "Bravo", "Charlie 50%", "delta"]
    );
    assert_eq!(
        names(&app.get("/v1/segments?sort=-name", &key).await.expect(200)),
        ["delta", "Charlie 50%", "Bravo", "alpha"]
    );
    assert_eq!(
        names(&app.get("/v1/segments?search=ALP", &key).await.expect(200)),
        ["alpha"]
    );
    assert_eq!(
        names(&app.get("/v1/segments?search=0%25", &key).await.expect(200)),
        ["Charlie 50%"]
    );
    assert_eq!(
        names(
            &app.get("/v1/segments?channel=whatsapp&sort=name", &key)
                .await
                .expect(200)
        ),
        ["alpha", "delta"]
    );
    assert_eq!(
        app.get("/v1/segments?kind=dynamic", &key).await.expect(200)["total"],
        0
    );
    let page = app
        .get("/v1/segments?sort=name&per_page=3&page=2", &key)
        .await
        .expect(200);
    assert_eq!(names(&page), ["delta"]);
    assert_eq!(page["total"], 4);
    // Past the end, no row carries the total: it is still counted.
    let past_end = app
        .get("/v1/segments?sort=name&per_page=3&page=3", &key)
        .await
        .expect(200);
    assert_eq!(names(&past_end), Vec::<String>::new());
    assert_eq!(past_end["total"], 4);
    // The total counts what the filters keep, not the page nor the tenant.
    let narrowed = app
        .get("/v1/segments?channel=whatsapp&per_page=1", &key)
        .await
        .expect(200);
    assert_eq!(names(&narrowed).len(), 1);
    assert_eq!(narrowed["total"], 2);
    app.get("/v1/segments?sort=size", &key)
        .await
        .expect_problem(400, "invalid_query");
    app.get("/v1/segments?channel=fax", &key)
        .await
        .expect_problem(400, "invalid_query");
    app.get("/v1/segments?page=0", &key)
        .await
        .expect_problem(400, "invalid_query");
    app.get("/v1/segments?per_page=501", &key)
        .await
        .expect_problem(400, "invalid_query");
    app.get("/v1/segments?per_page=abc", &key)
        .await
        .expect_problem(400, "invalid_query");
    let other = app.tenant_key().await;
    assert_eq!(
        app.get("/v1/segments", &other).await.expect(200)["total"],
        0
    );
}

#[actix_web::test]
async fn another_tenants_segment_is_not_found() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let other = app.tenant_key().await;
    let segment = app.segment(&key, "Mine", "whatsapp").await;
    let path = format!("/v1/segments/{}", segment["id"]);
    app.get(&path, &other)
        .await
        .expect_problem(404, "not_found");
    app.patch(&path, &other, json!({"name": "Theirs"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&path, &other)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(app.get(&path, &key).await.expect(200)["name"], "Mine");
}

#[actix_web::test]
async fn creation_refuses_bad_kind_channel_and_filters_on_static() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let problem = app
        .post("/v1/segments", &key, json!({"name": "x"}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "channel");
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "x", "channel": "sms", "kind": "smart"}),
    )
    .await
    .expect_problem(422, "validation_failed");
    let problem = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "x", "channel": "sms", "filter": {"all": []}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "filter");
    let long = "n".repeat(201);
    app.post(
        "/v1/segments",
        &key,
        json!({"name": long, "channel": "sms"}),
    )
    .await
    .expect_problem(422, "validation_failed");
}
