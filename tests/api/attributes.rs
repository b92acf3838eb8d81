use serde_json::json;

use crate::harness::spawn_app;

#[actix_web::test]
async fn definitions_are_listed_by_key_and_unique() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let created = app
        .post(
            "/v1/attributes",
            &key,
            json!({"key": "plan", "label": " Plan ", "type": "text"}),
        )
        .await
        .expect(201);
    assert_eq!(created["label"], "Plan");
    app.post(
        "/v1/attributes",
        &key,
        json!({"key": "birthdate", "label": "Birth date", "type": "date"}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/attributes",
        &key,
        json!({"key": "plan", "label": "Again", "type": "number"}),
    )
    .await
    .expect_problem(409, "attribute_exists");
    let list = app.get("/v1/attributes", &key).await.expect(200);
    let keys: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["birthdate", "plan"]);
    // Another tenant has its own definitions.
    let other = app.tenant_key().await;
    assert_eq!(
        app.get("/v1/attributes", &other).await.expect(200)["items"],
        json!([])
    );
}

#[actix_web::test]
async fn bad_definitions_name_the_field() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let problem = app
        .post(
            "/v1/attributes",
            &key,
            json!({"key": "Bad Key", "label": "", "type": "text"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let codes: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["invalid_key", "length"]);
    let problem = app
        .post(
            "/v1/attributes",
            &key,
            json!({"key": "ok", "label": "Ok", "type": "color"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "type");
}

#[actix_web::test]
async fn deleting_a_definition_removes_contact_values() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.post(
        "/v1/attributes",
        &key,
        json!({"key": "city", "label": "City", "type": "text"}),
    )
    .await
    .expect(201);
    let contact = app
        .contact(&key, json!({"name": "X", "attributes": {"city": "Rome"}}))
        .await;
    app.delete("/v1/attributes/city", &key).await.expect(204);
    let read = app
        .get(&format!("/v1/contacts/{}", contact["id"]), &key)
        .await
        .expect(200);
    assert_eq!(read["attributes"], json!({}));
    app.delete("/v1/attributes/city", &key)
        .await
        .expect_problem(404, "not_found");
}

#[actix_web::test]
async fn a_tenant_may_define_at_most_one_hundred_attributes() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for index in 0..100 {
        app.post(
            "/v1/attributes",
            &key,
            json!({"key": format!("a{index}"), "label": "A", "type": "text"}),
        )
        .await
        .expect(201);
    }
    app.post(
        "/v1/attributes",
        &key,
        json!({"key": "one_more", "label": "A", "type": "text"}),
    )
    .await
    .expect_problem(422, "too_many_attributes");
}
