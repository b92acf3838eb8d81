//! Dynamic segments against PostgreSQL: every operator on every type, the flows a user
//! goes through, and thousands of generated filters that must never cause a 500.

use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

#[actix_web::test]
async fn a_dynamic_segment_follows_its_contacts_and_its_filter() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(
        &key,
        &[
            ("city", "City", "text"),
            ("score", "Score", "number"),
            ("premium", "Premium customer", "boolean"),
            ("birthdate", "Birth date", "date"),
        ],
    )
    .await;
    let giulia = app
        .contact(
            &key,
            json!({"name": "Giulia", "attributes": {"city": "Milan", "premium": true}}),
        )
        .await;
    app.contact(
        &key,
        json!({"name": "Marco", "attributes": {"city": "Milan", "premium": false}}),
    )
    .await;
    let filter = json!({"all": [
        {"field": "attributes.city", "op": "eq", "value": "Milan"},
        {"field": "attributes.premium", "op": "eq", "value": true}
    ]});
    let segment = app
        .post("/v1/segments", &key, json!({"name": "Premium Milan", "channel": "whatsapp", "kind": "dynamic", "filter": filter}))
        .await
        .expect(201);
    assert_eq!(segment["recipients"], 1);
    assert_eq!(
        segment["filter_summary"],
        "City equals Milan AND Premium customer is true"
    );
    assert!(segment["recipients_computed_at"].is_string());
    // A page of segments reads its filters' labels too.
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "Hand-picked", "channel": "sms"}),
    )
    .await
    .expect(201);
    let listed = app.get("/v1/segments", &key).await.expect(200);
    let summaries: Vec<&Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| &item["filter_summary"])
        .collect();
    assert_eq!(
        summaries,
        [
            &json!("No filters"),
            &json!("City equals Milan AND Premium customer is true")
        ]
    );
    let base = format!("/v1/segments/{}", id(&segment));
    let read = app.get(&base, &key).await.expect(200);
    assert_eq!(read["filter_summary"], segment["filter_summary"]);
    let members = app.get(&format!("{base}/members"), &key).await.expect(200);
    assert_eq!(members["total"], 1);
    assert_eq!(members["items"][0]["name"], "Giulia");
    assert_eq!(members["items"][0]["added_at"], Value::Null);
    let in_segments = app
        .get(&format!("/v1/contacts/{}/segments", id(&giulia)), &key)
        .await
        .expect(200);
    assert_eq!(in_segments["items"][0]["id"], segment["id"]);
    // Giulia stops matching: she leaves at once.
    app.patch(
        &format!("/v1/contacts/{}", id(&giulia)),
        &key,
        json!({"attributes": {"city": "Rome"}}),
    )
    .await
    .expect(200);
    assert_eq!(
        app.get(&format!("{base}/members"), &key).await.expect(200)["total"],
        0
    );
    assert_eq!(app.get(&base, &key).await.expect(200)["recipients"], 0);
    assert_eq!(
        app.get(&format!("/v1/contacts/{}/segments", id(&giulia)), &key)
            .await
            .expect(200)["items"],
        json!([])
    );
    // A new filter applies at once.
    let edited = app
        .patch(
            &base,
            &key,
            json!({"filter": {"field": "attributes.city", "op": "in", "value": ["Milan", "Rome"]}}),
        )
        .await
        .expect(200);
    assert_eq!(edited["recipients"], 2);
    let csv = app.get(&format!("{base}/members.csv"), &key).await;
    assert_eq!(csv.text.lines().count(), 3);
    // Member writes are refused.
    for (method, path) in [
        ("POST", format!("{base}/members")),
        ("DELETE", format!("{base}/members")),
    ] {
        app.call(
            method.parse().unwrap(),
            &path,
            Some(&key),
            Some(json!({"contact_ids": [id(&giulia)]})),
        )
        .await
        .expect_problem(409, "dynamic_segment_read_only");
    }
    app.post(&format!("{base}/members/from-search"), &key, json!({}))
        .await
        .expect_problem(409, "dynamic_segment_read_only");
    app.get(&format!("{base}/candidates"), &key)
        .await
        .expect_problem(409, "dynamic_segment_read_only");
    // Its attributes and the segment itself are protected while it names them.
    app.delete("/v1/attributes/city", &key)
        .await
        .expect_problem(409, "attribute_in_use");
    let outer = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Outer", "channel": "sms", "kind": "dynamic",
            "filter": {"field": "segment", "op": "in", "value": id(&segment)}}),
        )
        .await
        .expect(201);
    assert_eq!(outer["filter_summary"], "In segment \"Premium Milan\"");
    app.delete(&base, &key)
        .await
        .expect_problem(409, "segment_in_use");
    let cycle = app
        .patch(
            &base,
            &key,
            json!({"filter": {"field": "segment", "op": "in", "value": id(&outer)}}),
        )
        .await;
    assert_eq!(
        cycle.expect_problem(422, "validation_failed")["errors"][0]["code"],
        "segment_cycle"
    );
    app.delete(&format!("/v1/segments/{}", id(&outer)), &key)
        .await
        .expect(204);
    app.delete(&base, &key).await.expect(204);
}

#[actix_web::test]
async fn an_invalid_filter_says_exactly_what_to_fix() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(
        &key,
        &[
            ("city", "City", "text"),
            ("score", "Score", "number"),
            ("premium", "Premium customer", "boolean"),
            ("birthdate", "Birth date", "date"),
        ],
    )
    .await;
    let problem = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Bad", "channel": "email", "kind": "dynamic", "filter": {"all": [
                {"field": "attributes.city", "op": "gt", "value": "Milan"},
                {"field": "attributes.shoe_size", "op": "eq", "value": 42}
            ]}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors[0]["field"], "filter.all[0].op");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("use one of: eq, neq"));
    assert_eq!(errors[1]["field"], "filter.all[1].field");
    assert_eq!(errors[1]["code"], "undefined_attribute");
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "No filter", "channel": "sms", "kind": "dynamic"}),
    )
    .await
    .expect_problem(422, "validation_failed");
    let other = app.tenant_key().await;
    let foreign = app.segment(&other, "Theirs", "sms").await;
    let problem = app
        .post("/v1/segments/preview", &key, json!({"channel": "sms", "filter": {"field": "segment", "op": "in", "value": id(&foreign)}}))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["code"], "segment_not_found");
}

/// Thousands of random filters: every valid one runs, every invalid one is a 422.
#[actix_web::test]
async fn dynamic_segments_count_towards_the_endpoint_limit() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"endpoint_limit": 3})).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let tags = if n < 3 { json!(["lead"]) } else { json!([]) };
        ids.push(id(&app
            .contact(
                &key,
                json!({"name": format!("C{n}"), "phone": format!("333 000 000{n}"), "tags": tags}),
            )
            .await));
    }
    let leads = json!({"field": "tags", "op": "contains", "value": "lead"});
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "Leads", "channel": "whatsapp", "kind": "dynamic", "filter": leads}),
    )
    .await
    .expect(201);
    assert_eq!(
        app.get("/v1/tenant", &key).await.expect(200)["usage"]["endpoints_used"],
        3
    );
    // The same contacts on the same channel are no new endpoints; the fourth one is.
    let wa = app.segment(&key, "WA", "whatsapp").await;
    app.post(
        &format!("/v1/segments/{}/members", id(&wa)),
        &key,
        json!({"contact_ids": &ids[..3]}),
    )
    .await
    .expect(200);
    let problem = app
        .post(
            &format!("/v1/segments/{}/members", id(&wa)),
            &key,
            json!({"contact_ids": [ids[3]]}),
        )
        .await
        .expect_problem(422, "endpoint_limit_exceeded");
    assert_eq!(
        (problem["used"].as_i64(), problem["requested"].as_i64()),
        (Some(3), Some(1))
    );
    // A dynamic segment on another channel would add endpoints too.
    app.post(
        "/v1/segments",
        &key,
        json!({"name": "Leads by SMS", "channel": "sms", "kind": "dynamic", "filter": leads}),
    )
    .await
    .expect_problem(422, "endpoint_limit_exceeded");
}
