use actix_web::http::Method;
use serde_json::json;

use crate::harness::{spawn_app, ADMIN_TOKEN};

#[actix_web::test]
async fn admin_creates_a_tenant_whose_key_works_and_reads_it_back() {
    let app = spawn_app().await;
    let (id, key) = app
        .tenant(json!({"name": "  Acme  ", "endpoint_limit": 3, "require_privacy_consent": true}))
        .await;
    let tenant = app
        .get(&format!("/v1/admin/tenants/{id}"), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(tenant["name"], "Acme");
    assert_eq!(tenant["endpoint_limit"], 3);
    assert_eq!(tenant["default_region"], "IT");
    let own = app.get("/v1/tenant", &key).await.expect(200);
    assert_eq!(own["id"], id);
    assert_eq!(own["require_privacy_consent"], true);
    assert_eq!(
        own["usage"],
        json!({"endpoints_used": 0, "endpoint_limit": 3})
    );
}

#[actix_web::test]
async fn admin_patches_settings_and_null_clears() {
    let app = spawn_app().await;
    let (id, _) = app.tenant(json!({"endpoint_limit": 10})).await;
    let path = format!("/v1/admin/tenants/{id}");
    let patched = app
        .patch(
            &path,
            ADMIN_TOKEN,
            json!({"endpoint_limit": null, "default_region": "GB", "name": "Renamed"}),
        )
        .await
        .expect(200);
    assert_eq!(patched["endpoint_limit"], serde_json::Value::Null);
    assert_eq!(patched["default_region"], "GB");
    assert_eq!(patched["name"], "Renamed");
    let untouched = app.patch(&path, ADMIN_TOKEN, json!({})).await.expect(200);
    assert_eq!(untouched["default_region"], "GB");
    for refused in ["XX", "", "gb"] {
        let problem = app
            .patch(&path, ADMIN_TOKEN, json!({"default_region": refused}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(
            problem["errors"][0]["field"], "default_region",
            "{refused:?}"
        );
    }
    let cleared = app
        .patch(&path, ADMIN_TOKEN, json!({"default_region": null}))
        .await
        .expect(200);
    assert_eq!(cleared["default_region"], serde_json::Value::Null);
    app.patch(&path, ADMIN_TOKEN, json!({"default_region": "GB"}))
        .await
        .expect(200);
    app.patch(
        "/v1/admin/tenants/999999",
        ADMIN_TOKEN,
        json!({"name": "x"}),
    )
    .await
    .expect_problem(404, "not_found");
}

#[actix_web::test]
async fn tenant_creation_validates_every_field() {
    let app = spawn_app().await;
    let problem = app
        .post(
            "/v1/admin/tenants",
            ADMIN_TOKEN,
            json!({"name": " ", "endpoint_limit": -1, "default_region": "Italy"}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["default_region", "endpoint_limit", "name"]);
}

#[actix_web::test]
async fn admin_routes_need_the_admin_token() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.post("/v1/admin/tenants", "wrong", json!({"name": "x"}))
        .await
        .expect_problem(401, "unauthorized");
    app.post("/v1/admin/tenants", &key, json!({"name": "x"}))
        .await
        .expect_problem(401, "unauthorized");
    let reply = app
        .call(
            Method::POST,
            "/v1/admin/tenants",
            None,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Bearer");
    reply.expect_problem(401, "unauthorized");
}

#[actix_web::test]
async fn a_new_key_works_and_a_revoked_key_stops_at_once() {
    let app = spawn_app().await;
    let (id, first_key) = app.tenant(json!({})).await;
    let created = app
        .post(
            &format!("/v1/admin/tenants/{id}/api-keys"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await
        .expect(201);
    let second_key = created["api_key"].as_str().unwrap().to_owned();
    assert_ne!(second_key, first_key);
    app.get("/v1/tenant", &second_key).await.expect(200);
    let key_id = created["id"].as_i64().unwrap();
    app.delete(
        &format!("/v1/admin/tenants/{id}/api-keys/{key_id}"),
        ADMIN_TOKEN,
    )
    .await
    .expect(204);
    app.get("/v1/tenant", &second_key)
        .await
        .expect_problem(401, "unauthorized");
    app.get("/v1/tenant", &first_key).await.expect(200);
    app.delete(
        &format!("/v1/admin/tenants/{id}/api-keys/{key_id}"),
        ADMIN_TOKEN,
    )
    .await
    .expect_problem(404, "not_found");
    // A key id of one tenant cannot be revoked through another.
    let (other, _) = app.tenant(json!({})).await;
    let other_key_id = app
        .post(
            &format!("/v1/admin/tenants/{other}/api-keys"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    app.delete(
        &format!("/v1/admin/tenants/{id}/api-keys/{other_key_id}"),
        ADMIN_TOKEN,
    )
    .await
    .expect_problem(404, "not_found");
}

#[actix_web::test]
async fn keys_are_stored_hashed() {
    use diesel::prelude::*;
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({})).await;
    let mut connection = app.database.connection();
    let stored: Vec<Vec<u8>> = segments::db::schema::api_keys::table
        .select(segments::db::schema::api_keys::key_hash)
        .load(&mut connection)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], key.as_bytes());
    assert_eq!(stored[0], segments::core::keys::hash_api_key(&key));
}

#[actix_web::test]
async fn tenant_routes_need_a_valid_key() {
    let app = spawn_app().await;
    app.call(Method::GET, "/v1/tenant", None, None)
        .await
        .expect_problem(401, "unauthorized");
    app.get("/v1/tenant", "sk_not_a_key")
        .await
        .expect_problem(401, "unauthorized");
    app.get("/v1/segments", ADMIN_TOKEN)
        .await
        .expect_problem(401, "unauthorized");
}

#[actix_web::test]
async fn a_revoked_key_stops_working_on_every_replica() {
    use actix_web::test::{call_service, TestRequest};
    let app = spawn_app().await;
    let (id, _) = app.tenant(json!({})).await;
    let created = app
        .post(
            &format!("/v1/admin/tenants/{id}/api-keys"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await
        .expect(201);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let replica = crate::harness::replica_of(&app).await;
    let ask_replica = || {
        TestRequest::get()
            .uri("/v1/tenant")
            .insert_header(("Authorization", format!("Bearer {key}")))
            .to_request()
    };
    // The replica caches the key on first use.
    assert_eq!(call_service(&replica, ask_replica()).await.status(), 200);
    app.delete(
        &format!("/v1/admin/tenants/{id}/api-keys/{}", created["id"]),
        ADMIN_TOKEN,
    )
    .await
    .expect(204);
    let started = std::time::Instant::now();
    loop {
        let status = call_service(&replica, ask_replica()).await.status();
        if status == 401 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "the replica still accepts a revoked key"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
