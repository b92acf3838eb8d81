use serde_json::{json, Value};

use crate::harness::spawn_app;

#[actix_web::test]
async fn a_national_phone_is_validated_with_the_tenant_region() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let contact = app
        .contact(
            &key,
            json!({"name": " Giulia Rossi ", "phone": "333 123 4567"}),
        )
        .await;
    assert_eq!(contact["name"], "Giulia Rossi");
    assert_eq!(contact["phone"], "333 123 4567");
    assert_eq!(contact["phone_e164"], "+393331234567");
    assert_eq!(contact["phone_valid"], true);
    assert_eq!(contact["phone_country"], "IT");
    let read = app
        .get(&format!("/v1/contacts/{}", contact["id"]), &key)
        .await
        .expect(200);
    assert_eq!(read, contact);
}

#[actix_web::test]
async fn an_invalid_phone_is_stored_unvalidated() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let contact = app
        .contact(&key, json!({"name": "No phone", "phone": "12"}))
        .await;
    assert_eq!(contact["phone"], "12");
    assert_eq!(contact["phone_e164"], Value::Null);
    assert_eq!(contact["phone_valid"], false);
}

#[actix_web::test]
async fn the_validated_phone_and_external_id_are_unique_per_tenant() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.contact(
        &key,
        json!({"name": "A", "phone": "+39 333 123 4567", "external_id": "crm-1"}),
    )
    .await;
    app.post(
        "/v1/contacts",
        &key,
        json!({"name": "B", "phone": "0039 3331234567"}),
    )
    .await
    .expect_problem(409, "phone_taken");
    app.post(
        "/v1/contacts",
        &key,
        json!({"name": "C", "external_id": "crm-1"}),
    )
    .await
    .expect_problem(409, "external_id_taken");
    // Another tenant may hold the same number.
    let other = app.tenant_key().await;
    app.contact(
        &other,
        json!({"name": "A", "phone": "+39 333 123 4567", "external_id": "crm-1"}),
    )
    .await;
}

#[actix_web::test]
async fn attributes_are_checked_against_their_definitions() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(
        &key,
        &[("city", "City", "text"), ("score", "Score", "number")],
    )
    .await;
    let problem = app
        .post(
            "/v1/contacts",
            &key,
            json!({"name": "X", "attributes": {"city": 3, "unknown": "y"}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["attributes.city", "attributes.unknown"]);
    let contact = app
        .contact(
            &key,
            json!({"name": "X", "attributes": {"city": "Milan", "score": 7}}),
        )
        .await;
    let path = format!("/v1/contacts/{}", contact["id"]);
    let patched = app
        .patch(
            &path,
            &key,
            json!({"attributes": {"score": null}, "tags": ["vip", " vip", "lead"]}),
        )
        .await
        .expect(200);
    assert_eq!(patched["attributes"], json!({"city": "Milan"}));
    assert_eq!(patched["tags"], json!(["vip", "lead"]));
}

#[actix_web::test]
async fn patch_changes_only_what_it_names_and_null_clears() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let contact = app
        .contact(&key, json!({"name": "Anna", "phone": "333 123 4567", "email": "anna@example.com", "tags": ["a"]}))
        .await;
    let path = format!("/v1/contacts/{}", contact["id"]);
    let patched = app
        .patch(&path, &key, json!({"email": null, "opted_out": true}))
        .await
        .expect(200);
    assert_eq!(patched["email"], Value::Null);
    assert_eq!(patched["opted_out"], true);
    assert_eq!(patched["phone_e164"], "+393331234567");
    assert_eq!(patched["tags"], json!(["a"]));
    let patched = app
        .patch(&path, &key, json!({"phone": "+44 7400 123456"}))
        .await
        .expect(200);
    assert_eq!(patched["phone_e164"], "+447400123456");
    assert_eq!(patched["phone_country"], "GB");
    let problem = app
        .patch(&path, &key, json!({"email": "not-an-email", "name": ""}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    app.patch(&path, &key, json!({"nmae": "typo"}))
        .await
        .expect_problem(422, "validation_failed");
}

#[actix_web::test]
async fn list_searches_name_phone_email_and_external_id() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.contact(
        &key,
        json!({"name": "Mario Bianchi", "phone": "333 111 2222", "tags": ["vip"]}),
    )
    .await;
    app.contact(&key, json!({"name": "Luca Verdi", "email": "luca@verdi.it", "external_id": "ATS-77", "opted_out": true})).await;
    app.contact(&key, json!({"name": "100%_literal"})).await;
    let total = |body: Value| body["total"].as_i64().unwrap();
    assert_eq!(total(app.get("/v1/contacts", &key).await.expect(200)), 3);
    // The total rides on the page's rows; past the end, and narrowed, it is still true.
    let sized = |body: Value| (body["items"].as_array().map_or(0, Vec::len), total(body));
    for (query, expected) in [
        ("per_page=2&page=2", (1, 3)),
        ("per_page=2&page=5", (0, 3)),
        ("search=bianchi&per_page=1&page=3", (0, 1)),
    ] {
        let body = app.get(&format!("/v1/contacts?{query}"), &key).await;
        assert_eq!(sized(body.expect(200)), expected, "{query}");
    }
    assert_eq!(
        total(
            app.get("/v1/contacts?search=bianchi", &key)
                .await
                .expect(200)
        ),
        1
    );
    assert_eq!(
        total(
            app.get("/v1/contacts?search=VERDI.IT", &key)
                .await
                .expect(200)
        ),
        1
    );
    assert_eq!(
        total(
            app.get("/v1/contacts?search=ats-77", &key)
                .await
                .expect(200)
        ),
        1
    );
    // A phone typed in another spelling finds the validated number.
    assert_eq!(
        total(
            app.get("/v1/contacts?search=%2B39%20333%201112222", &key)
                .await
                .expect(200)
        ),
        1
    );
    assert_eq!(
        total(app.get("/v1/contacts?search=0%25_", &key).await.expect(200)),
        1
    );
    assert_eq!(
        total(app.get("/v1/contacts?search=%25", &key).await.expect(200)),
        1
    );
    assert_eq!(
        total(app.get("/v1/contacts?tag=vip", &key).await.expect(200)),
        1
    );
    assert_eq!(
        total(
            app.get("/v1/contacts?opted_out=true", &key)
                .await
                .expect(200)
        ),
        1
    );
    let page = app
        .get("/v1/contacts?per_page=2&page=2", &key)
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            page["page"].as_i64(),
            page["per_page"].as_i64(),
            total(page)
        ),
        (Some(2), Some(2), 3)
    );
    let past_end = app.get("/v1/contacts?page=9", &key).await.expect(200);
    assert_eq!(past_end["items"], json!([]));
    app.get("/v1/contacts?opted_out=maybe", &key)
        .await
        .expect_problem(400, "invalid_query");
}

#[actix_web::test]
async fn put_by_external_id_creates_then_updates_without_clearing_opt_out() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let created = app
        .put(
            "/v1/contacts/by-external-id/crm-9",
            &key,
            json!({"name": "Eva", "phone": "333 999 0000", "opted_out": true, "tags": ["x"]}),
        )
        .await
        .expect(201);
    assert_eq!(created["external_id"], "crm-9");
    let updated = app
        .put(
            "/v1/contacts/by-external-id/crm-9",
            &key,
            json!({"name": "Eva Neri"}),
        )
        .await
        .expect(200);
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"], "Eva Neri");
    assert_eq!(updated["opted_out"], true);
    assert_eq!(updated["tags"], json!(["x"]));
    assert_eq!(updated["phone_e164"], "+393339990000");
    app.put(
        "/v1/contacts/by-external-id/crm-9",
        &key,
        json!({"name": "E", "external_id": "other"}),
    )
    .await
    .expect_problem(422, "validation_failed");
}

#[actix_web::test]
async fn batch_upserts_by_external_id_then_phone_and_reports_each_item() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let existing = app
        .contact(&key, json!({"name": "By phone", "phone": "333 123 4567"}))
        .await;
    let result = app
        .post(
            "/v1/contacts/batch",
            &key,
            json!({"contacts": [
                {"name": "New", "external_id": "e-1", "phone": "333 000 1111"},
                {"name": "By phone, renamed", "phone": "+393331234567"},
                {"name": "Unknown field", "external_id": "e-2", "attributes": {"nope": 1}},
                {"name": "Same phone as first", "phone": "3330001111"},
                {"name": "Again", "external_id": "e-1", "email": "again@example.com"}
            ]}),
        )
        .await
        .expect(200);
    let items = result["items"].as_array().unwrap();
    let statuses: Vec<_> = items
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["created", "updated", "error", "updated", "updated"]
    );
    assert_eq!(items[1]["id"], existing["id"]);
    assert_eq!(items[2]["error"]["code"], "validation_failed");
    assert_eq!(
        items[2]["error"]["errors"][0]["code"], "undefined_attribute",
        "{items:?}"
    );
    assert_eq!(items[3]["id"], items[0]["id"]);
    assert_eq!(items[4]["id"], items[0]["id"]);
    let contact = app
        .get(&format!("/v1/contacts/{}", items[0]["id"]), &key)
        .await
        .expect(200);
    assert_eq!(contact["email"], "again@example.com");
    assert_eq!(contact["name"], "Again");
    app.post("/v1/contacts/batch", &key, json!({"contacts": []}))
        .await
        .expect_problem(422, "validation_failed");
    // An item that breaks the schema refuses the whole batch, naming it; nothing written.
    let refused = app
        .post(
            "/v1/contacts/batch",
            &key,
            json!({"contacts": [
                {"name": "Fine", "external_id": "e-3"},
                {"name": "", "external_id": "e-4"},
                {"name": "Bad mail", "email": "not-an-email"}
            ]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["contacts[1].name", "contacts[2].email"]);
    let found = app.get("/v1/contacts?search=e-3", &key).await.expect(200);
    assert_eq!(found["total"], 0, "nothing of a refused batch is written");
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"name": format!("n{i}")}))
        .collect();
    app.post("/v1/contacts/batch", &key, json!({"contacts": too_many}))
        .await
        .expect_problem(422, "validation_failed");
}

#[actix_web::test]
async fn batch_items_naming_one_contact_by_different_keys_apply_in_order() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let existing = app
        .contact(
            &key,
            json!({"name": "Before", "external_id": "crm-9", "phone": "333 222 3333"}),
        )
        .await;
    let result = app
        .post(
            "/v1/contacts/batch",
            &key,
            json!({"contacts": [
                {"name": "By external id", "external_id": "crm-9"},
                {"name": "Other", "external_id": "crm-10"},
                {"name": "Same person by phone", "phone": "+39 333 222 3333"}
            ]}),
        )
        .await
        .expect(200);
    let items = result["items"].as_array().unwrap();
    let statuses: Vec<_> = items.iter().map(|i| i["status"].clone()).collect();
    assert_eq!(statuses, ["updated", "created", "updated"], "{items:?}");
    assert_eq!(items[0]["id"], existing["id"]);
    assert_eq!(items[2]["id"], existing["id"]);
    let contact = app
        .get(&format!("/v1/contacts/{}", existing["id"]), &key)
        .await
        .expect(200);
    assert_eq!(
        contact["name"], "Same person by phone",
        "the later item wins"
    );
    assert_eq!(contact["external_id"], "crm-9");
}

#[actix_web::test]
async fn deleting_a_contact_removes_it_and_another_tenant_sees_404() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let other = app.tenant_key().await;
    let contact = app.contact(&key, json!({"name": "Gone soon"})).await;
    let path = format!("/v1/contacts/{}", contact["id"]);
    app.get(&path, &other)
        .await
        .expect_problem(404, "not_found");
    app.patch(&path, &other, json!({"name": "hijack"}))
        .await
        .expect_problem(404, "not_found");
    app.delete(&path, &other)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("{path}/segments"), &other)
        .await
        .expect_problem(404, "not_found");
    assert_eq!(app.get(&path, &key).await.expect(200)["name"], "Gone soon");
    let none = app.get(&format!("{path}/segments"), &key).await.expect(200);
    assert_eq!(
        none["items"],
        json!([]),
        "a contact in no segment has an empty list"
    );
    app.delete(&path, &key).await.expect(204);
    app.get(&path, &key).await.expect_problem(404, "not_found");
    app.get(&format!("{path}/segments"), &key)
        .await
        .expect_problem(404, "not_found");
}
