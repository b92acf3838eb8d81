//! Retries made safe: a POST sent again with its `Idempotency-Key` gets the first answer,
//! and the work is done once, also when the copies arrive at once.

use actix_web::test::TestRequest;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, App, Reply, TestApp};
use crate::integration::header;

async fn post_with_key<S: App>(
    app: &TestApp<S>,
    path: &str,
    key: &str,
    idempotency_key: &str,
    body: Value,
) -> Reply {
    app.send(
        TestRequest::post()
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Idempotency-Key", idempotency_key.to_owned()))
            .set_json(body)
            .to_request(),
    )
    .await
}

#[actix_web::test]
async fn a_retried_post_gets_the_first_answer_and_does_the_work_once() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let body = json!({"name": "Retried", "channel": "sms"});
    let first = post_with_key(&app, "/v1/segments", &key, "create-1", body.clone()).await;
    assert_eq!(first.status, 201);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let again = post_with_key(&app, "/v1/segments", &key, "create-1", body.clone()).await;
    assert_eq!(again.status, 201);
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(again.body, first.body, "the first answer, byte for byte");
    let listed = app
        .get("/v1/segments?search=Retried", &key)
        .await
        .expect(200);
    assert_eq!(listed["total"], 1, "created once");
    // The same key with another request is a mistake the client must hear about.
    let other = post_with_key(
        &app,
        "/v1/segments",
        &key,
        "create-1",
        json!({"name": "Something else", "channel": "sms"}),
    )
    .await;
    assert_eq!(
        (other.status.as_u16(), other.body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // Keys are per tenant: another tenant's same key is its own.
    let someone = app.tenant_key().await;
    let theirs = post_with_key(&app, "/v1/segments", &someone, "create-1", body).await;
    assert_eq!(theirs.status, 201);
    assert_eq!(header(&theirs, "idempotent-replayed"), None);
    assert_ne!(theirs.body["id"], first.body["id"]);
    // Membership reports replay as first given: not "already members" the second time.
    let contact = id(&app
        .contact(&key, json!({"name": "M", "phone": "3331112233"}))
        .await);
    let members = format!("/v1/segments/{}/members", first.body["id"]);
    let added = post_with_key(
        &app,
        &members,
        &key,
        "members-1",
        json!({"contact_ids": [contact]}),
    )
    .await;
    let replayed = post_with_key(
        &app,
        &members,
        &key,
        "members-1",
        json!({"contact_ids": [contact]}),
    )
    .await;
    assert_eq!(
        (
            added.body["added"].as_i64(),
            replayed.body["added"].as_i64()
        ),
        (Some(1), Some(1))
    );
    // A key of the wrong shape is refused.
    let long = "k".repeat(256);
    let refused = post_with_key(&app, "/v1/segments", &key, &long, json!({})).await;
    assert_eq!(refused.status, 400);
}

#[actix_web::test]
async fn a_retried_import_is_replayed_not_imported_twice() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Imported once", "whatsapp").await);
    let upload = || {
        TestRequest::post()
            .uri(&format!("/v1/segments/{segment}/import"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", "text/csv"))
            .insert_header(("Idempotency-Key", "file-2026-02-12"))
            .set_payload("phone,name\n3331234567,Giulia\n3337654321,Marco\n")
            .to_request()
    };
    let first = app.send(upload()).await;
    let second = app.send(upload()).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_eq!(second.body, first.body);
    assert_eq!(first.body["added"], 2);
    assert_eq!(
        header(&second, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let imports = app
        .get(&format!("/v1/segments/{segment}"), &key)
        .await
        .expect(200);
    assert_eq!(imports["recipients"], 2);
}

#[actix_web::test]
async fn posts_sent_at_once_with_one_key_do_the_work_once() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "For campaigns", "sms").await);
    for round in 0..8 {
        let name = format!("Launch {round}");
        let idempotency_key = format!("launch-{round}");
        let replies = join_all((0..5).map(|_| {
            post_with_key(
                &app,
                "/v1/campaigns",
                &key,
                &idempotency_key,
                json!({"name": name, "channel": "sms", "segment_ids": [segment]}),
            )
        }))
        .await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "round {round}: {statuses:?}"
        );
        let fresh = replies
            .iter()
            .filter(|r| r.status == 201 && header(r, "idempotent-replayed").is_none())
            .count();
        assert_eq!(fresh, 1, "round {round}: the work done once: {statuses:?}");
        for reply in replies.iter().filter(|r| r.status == 409) {
            assert_eq!(reply.body["code"], "idempotency_key_in_use");
        }
        let campaigns = app
            .get("/v1/campaigns?per_page=100", &key)
            .await
            .expect(200);
        let named = campaigns["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] == name.as_str())
            .count();
        assert_eq!(named, 1, "round {round}");
    }
}
