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

/// The segment list keeps each tenant's definitions between requests, as of a version
/// of them that every definition made or deleted bumps: a page never summarises with
/// labels a change replaced, nor misses a definition made since.
#[actix_web::test]
async fn the_segment_list_summarises_with_the_definitions_as_they_are_now() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    // An attribute defined, a dynamic segment naming it, then the first page's summaries.
    let step = |key: String, (attribute, label, kind): (&str, &str, &str), name: &str, filter| {
        let app = &app;
        let definition = json!({"key": attribute, "label": label, "type": kind});
        let segment = json!({"name": name, "channel": "sms", "kind": "dynamic", "filter": filter});
        async move {
            app.post("/v1/attributes", &key, definition)
                .await
                .expect(201);
            let segment = app.post("/v1/segments", &key, segment).await.expect(201);
            let listed = app.get("/v1/segments", &key).await.expect(200);
            let summaries: Vec<String> = listed["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| item["filter_summary"].as_str().expect("summary").to_owned())
                .collect();
            (segment, summaries)
        }
    };
    let milan = json!({"field": "attributes.city", "op": "eq", "value": "Milan"});
    let (first, summaries) = step(
        key.clone(),
        ("city", "City", "text"),
        "Milan",
        milan.clone(),
    )
    .await;
    assert_eq!(summaries, ["City equals Milan"]);

    // The attribute, freed, deleted and defined again with another label.
    app.delete(&format!("/v1/segments/{}", first["id"]), &key)
        .await
        .expect(204);
    app.delete("/v1/attributes/city", &key).await.expect(204);
    let (again, summaries) = step(
        key.clone(),
        ("city", "Town", "text"),
        "Again",
        milan.clone(),
    )
    .await;
    assert_eq!(summaries, ["Town equals Milan"]);
    // A segment read alone, and a contact's segments, read them the same way.
    let path = format!("/v1/segments/{}", again["id"]);
    let read = app.get(&path, &key).await.expect(200);
    assert_eq!(read["filter_summary"], "Town equals Milan");
    let ada = json!({"name": "Ada", "attributes": {"city": "Milan"}});
    let contact = app.contact(&key, ada).await;
    let path = format!("/v1/contacts/{}/segments", contact["id"]);
    let of_contact = app.get(&path, &key).await.expect(200);
    assert_eq!(
        of_contact["items"][0]["filter_summary"],
        "Town equals Milan"
    );

    // A definition made since the last page.
    let high = json!({"field": "attributes.score", "op": "gt", "value": 5});
    let (_, summaries) = step(key, ("score", "Score", "number"), "High", high).await;
    assert_eq!(summaries, ["Score is greater than 5", "Town equals Milan"]);

    // Another tenant's definitions of the same key are its own.
    let other = app.tenant_key().await;
    let (_, summaries) = step(other, ("city", "Ciudad", "text"), "Milan", milan).await;
    assert_eq!(summaries, ["Ciudad equals Milan"]);
}
