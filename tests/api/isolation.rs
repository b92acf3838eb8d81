//! Tenant isolation, swept over the OpenAPI document: every operation that takes a resource
//! id is called with tenant B's key on tenant A's ids. A new operation fails this test
//! until it is added here.

use std::collections::BTreeSet;

use actix_web::http::Method;
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, App, Reply, TestApp};

/// Tenant A's resources, by the path parameter that names them.
pub struct Resources {
    pub contact: i64,
    pub segment: i64,
    pub campaign: i64,
    pub import: i64,
    pub webhook: i64,
    pub send: i64,
}

impl Resources {
    /// The document's path with A's ids in it.
    fn fill(&self, template: &str) -> String {
        let id = if template.starts_with("/v1/campaigns") {
            self.campaign
        } else if template.starts_with("/v1/contacts") {
            self.contact
        } else if template.starts_with("/v1/imports") {
            self.import
        } else if template.starts_with("/v1/webhooks") {
            self.webhook
        } else if template.starts_with("/v1/sends") {
            self.send
        } else {
            self.segment
        };
        template
            .replace("{id}", &id.to_string())
            .replace("{key}", "city")
            .replace("{external_id}", "crm-1")
    }
}

/// Tenant A's resources: one of each kind, an import done and a send frozen.
pub async fn tenant_a<S: App>(app: &TestApp<S>, key: &str) -> Resources {
    app.attributes(key, &[("city", "City", "text")]).await;
    let contact = app
        .contact(
            key,
            json!({"name": "A's contact", "phone": "333 123 4567", "external_id": "crm-1", "attributes": {"city": "Milan"}}),
        )
        .await;
    let segment = app.segment(key, "A's segment", "whatsapp").await;
    app.post(
        &format!("/v1/segments/{}/members", id(&segment)),
        key,
        json!({"contact_ids": [id(&contact)]}),
    )
    .await
    .expect(200);
    let campaign = app
        .post(
            "/v1/campaigns",
            key,
            json!({"name": "A's campaign", "channel": "whatsapp", "segment_ids": [id(&segment)]}),
        )
        .await
        .expect(201);
    let job = app
        .send(
            TestRequest::post()
                .uri(&format!("/v1/segments/{}/import", id(&segment)))
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "text/csv"))
                .insert_header(("Prefer", "respond-async"))
                .set_payload("phone\n3331234568\n")
                .to_request(),
        )
        .await
        .expect(202);
    for _ in 0..100 {
        let polled = app
            .get(&format!("/v1/imports/{}", id(&job)), key)
            .await
            .expect(200);
        if polled["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let webhook = app
        .post(
            "/v1/webhooks",
            key,
            json!({"url": "https://hooks.example.com/a", "event_types": ["contact.created"]}),
        )
        .await
        .expect(201);
    let send = app
        .post(
            &format!("/v1/campaigns/{}/sends", id(&campaign)),
            key,
            json!({}),
        )
        .await
        .expect(201);
    Resources {
        send: id(&send),
        contact: id(&contact),
        segment: id(&segment),
        campaign: id(&campaign),
        import: id(&job),
        webhook: id(&webhook),
    }
}

/// Everything tenant A can read, to compare before and after.
async fn snapshot<S: App>(app: &TestApp<S>, key: &str, a: &Resources) -> Vec<Value> {
    let mut reads = vec![
        "/v1/contacts".to_owned(),
        "/v1/segments".to_owned(),
        "/v1/campaigns".to_owned(),
        "/v1/attributes".to_owned(),
        format!("/v1/segments/{}/members", a.segment),
        format!("/v1/campaigns/{}/audience/summary", a.campaign),
        format!("/v1/imports/{}", a.import),
        format!("/v1/webhooks/{}", a.webhook),
        format!("/v1/webhooks/{}/deliveries", a.webhook),
        "/v1/webhooks".to_owned(),
        "/v1/events?limit=1000".to_owned(),
        format!("/v1/sends/{}", a.send),
        format!("/v1/sends/{}/recipients", a.send),
        format!("/v1/campaigns/{}/sends", a.campaign),
    ];
    reads.push(format!("/v1/contacts/{}", a.contact));
    let mut values = Vec::new();
    for path in reads {
        values.push(app.get(&path, key).await.expect(200));
    }
    values
}

#[actix_web::test]
async fn another_tenant_gets_404_on_every_operation_and_changes_nothing() {
    let app = spawn_app().await;
    let key_a = app.tenant_key().await;
    let key_b = app.tenant_key().await;
    let a = tenant_a(&app, &key_a).await;
    let b_contact = app
        .contact(
            &key_b,
            json!({"name": "B's contact", "phone": "333 765 4321"}),
        )
        .await;
    let before = snapshot(&app, &key_a, &a).await;

    // (method, path in the document, body, expected status)
    let csv = || Body::Csv("phone\n3339999999\n");
    let json = Body::Json;
    let calls: Vec<(Method, &str, Body, u16)> = vec![
        (Method::DELETE, "/v1/attributes/{key}", Body::None, 404),
        (Method::GET, "/v1/campaigns/{id}", Body::None, 404),
        (
            Method::PATCH,
            "/v1/campaigns/{id}",
            json(json!({"name": "hijacked"})),
            404,
        ),
        (Method::DELETE, "/v1/campaigns/{id}", Body::None, 404),
        (Method::GET, "/v1/campaigns/{id}/audience", Body::None, 404),
        (
            Method::GET,
            "/v1/campaigns/{id}/audience.csv",
            Body::None,
            404,
        ),
        (
            Method::GET,
            "/v1/campaigns/{id}/audience.ndjson",
            Body::None,
            404,
        ),
        (
            Method::GET,
            "/v1/campaigns/{id}/audience/summary",
            Body::None,
            404,
        ),
        (Method::GET, "/v1/campaigns/{id}/sends", Body::None, 404),
        (Method::POST, "/v1/campaigns/{id}/sends", Body::None, 404),
        (Method::GET, "/v1/sends/{id}", Body::None, 404),
        (Method::GET, "/v1/sends/{id}/recipients", Body::None, 404),
        (
            Method::GET,
            "/v1/sends/{id}/recipients.ndjson",
            Body::None,
            404,
        ),
        (
            Method::POST,
            "/v1/sends/{id}/outcomes",
            json(json!({"outcomes": [{"contact_id": a.contact, "status": "read"}]})),
            404,
        ),
        (Method::GET, "/v1/contacts/{id}", Body::None, 404),
        (
            Method::PATCH,
            "/v1/contacts/{id}",
            json(json!({"opted_out": true})),
            404,
        ),
        (Method::DELETE, "/v1/contacts/{id}", Body::None, 404),
        (Method::GET, "/v1/contacts/{id}/segments", Body::None, 404),
        // An upsert by external id writes B's own contact, never A's.
        (
            Method::PUT,
            "/v1/contacts/by-external-id/{external_id}",
            json(json!({"name": "B"})),
            201,
        ),
        (Method::GET, "/v1/imports/{id}", Body::None, 404),
        (Method::GET, "/v1/webhooks/{id}", Body::None, 404),
        (
            Method::PATCH,
            "/v1/webhooks/{id}",
            json(json!({"url": "https://evil.example.com/"})),
            404,
        ),
        (Method::DELETE, "/v1/webhooks/{id}", Body::None, 404),
        (Method::GET, "/v1/webhooks/{id}/deliveries", Body::None, 404),
        (Method::POST, "/v1/imports/{id}/revert", Body::None, 404),
        (Method::GET, "/v1/segments/{id}", Body::None, 404),
        (
            Method::PATCH,
            "/v1/segments/{id}",
            json(json!({"name": "hijacked"})),
            404,
        ),
        (Method::DELETE, "/v1/segments/{id}", Body::None, 404),
        (Method::GET, "/v1/segments/{id}/candidates", Body::None, 404),
        (Method::POST, "/v1/segments/{id}/import", csv(), 404),
        (Method::POST, "/v1/segments/{id}/import/preview", csv(), 404),
        (Method::GET, "/v1/segments/{id}/members", Body::None, 404),
        (
            Method::POST,
            "/v1/segments/{id}/members",
            json(json!({"contact_ids": [id(&b_contact)]})),
            404,
        ),
        (
            Method::DELETE,
            "/v1/segments/{id}/members",
            json(json!({"contact_ids": [a.contact]})),
            404,
        ),
        (
            Method::GET,
            "/v1/segments/{id}/members.csv",
            Body::None,
            404,
        ),
        (
            Method::POST,
            "/v1/segments/{id}/members/from-search",
            json(json!({})),
            404,
        ),
        // Ids in bodies: A's segment is unknown to B.
        (
            Method::POST,
            "/v1/segments/memberships",
            json(json!({"segment_ids": [a.segment], "contact_ids": [a.contact]})),
            404,
        ),
        (
            Method::POST,
            "/v1/audiences/resolve",
            json(json!({"channel": "whatsapp", "segment_ids": [a.segment]})),
            422,
        ),
        (
            Method::POST,
            "/v1/campaigns",
            json(json!({"name": "B", "channel": "whatsapp", "segment_ids": [a.segment]})),
            422,
        ),
    ];
    for (method, template, body, status) in &calls {
        let path = a.fill(template);
        let reply = send(&app, method.clone(), &path, &key_b, body).await;
        assert_eq!(
            reply.status.as_u16(),
            *status,
            "{method} {path} with another tenant's key: {}",
            reply.text
        );
    }

    // Every operation of the document that names a resource is covered.
    let document = serde_json::to_value(segments::openapi_document()).unwrap();
    let named: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.contains('{') && !path.starts_with("/v1/admin"))
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let swept: BTreeSet<String> = calls
        .iter()
        .map(|(method, template, ..)| format!("{method} {template}"))
        .collect();
    let missing: Vec<_> = named.difference(&swept).collect();
    assert!(missing.is_empty(), "not swept: {missing:?}");

    assert_eq!(snapshot(&app, &key_a, &a).await, before, "tenant A changed");
}

enum Body {
    None,
    Json(Value),
    Csv(&'static str),
}

async fn send<S: App>(
    app: &TestApp<S>,
    method: Method,
    path: &str,
    key: &str,
    body: &Body,
) -> Reply {
    match body {
        Body::None => app.call(method, path, Some(key), None).await,
        Body::Json(value) => app.call(method, path, Some(key), Some(value.clone())).await,
        Body::Csv(text) => {
            let request = TestRequest::default()
                .method(method)
                .uri(path)
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "text/csv"))
                .set_payload(*text);
            app.send(request.to_request()).await
        }
    }
}
