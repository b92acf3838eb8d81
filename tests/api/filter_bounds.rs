//! Filters that name segments, bounded as a whole: the attacks that used to take the
//! service down are refused, or cost what a small filter costs.

use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

/// `n` conditions on the city, each naming a different city.
fn cities(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"field": "attributes.city", "op": "neq", "value": format!("City {i}")}))
        .collect()
}

fn naming(segment: i64, times: usize) -> Vec<Value> {
    (0..times)
        .map(|_| json!({"field": "segment", "op": "in", "value": segment}))
        .collect()
}

#[actix_web::test]
async fn a_filter_bomb_is_refused_or_costs_a_small_filter() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    let giulia = app
        .contact(
            &key,
            json!({"name": "Giulia", "attributes": {"city": "Milan"}}),
        )
        .await;
    // S0: 50 conditions; S1 names S0 50 times; S2 names S1 50 times. Each named
    // segment counts once: S2 reaches 150 conditions, and its members are right.
    let s0 = app
        .dynamic_segment(&key, "S0", json!({"all": cities(50)}))
        .await;
    let s1 = app
        .dynamic_segment(&key, "S1", json!({"all": naming(s0, 50)}))
        .await;
    let s2 = app
        .dynamic_segment(&key, "S2", json!({"all": naming(s1, 50)}))
        .await;
    for segment in [s0, s1, s2] {
        let read = app
            .get(&format!("/v1/segments/{segment}"), &key)
            .await
            .expect(200);
        assert_eq!(read["recipients"], 1, "segment {segment}: {read}");
    }
    // A preview naming S2 twelve times tests membership twelve times.
    let preview = app
        .post(
            "/v1/segments/preview",
            &key,
            json!({"channel": "whatsapp", "filter": {"any": naming(s2, 12)}}),
        )
        .await
        .expect(200);
    assert_eq!(preview["count"], 1);
    assert_eq!(preview["sample"][0]["id"], id(&giulia));
    // A fourth link is past the chain limit.
    let refused = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "S3", "channel": "whatsapp", "kind": "dynamic", "filter": {"all": naming(s2, 1)}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["code"], "references_too_deep");
    // More than 50 conditions in one filter, however they are spelled.
    let refused = app
        .post(
            "/v1/segments/preview",
            &key,
            json!({"channel": "whatsapp", "filter": {"any": naming(s2, 5000)}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["code"], "too_many_conditions");
}

#[actix_web::test]
async fn a_change_to_a_named_segment_is_checked_for_every_segment_naming_it() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    // T2 names T1a, T1b and T1c (50 conditions each) with 47 of its own: 200 in all.
    let t0 = app
        .dynamic_segment(&key, "T0", json!({"all": cities(50)}))
        .await;
    let mut named = Vec::new();
    for name in ["T1a", "T1b", "T1c"] {
        named.push(
            app.dynamic_segment(&key, name, json!({"all": cities(50)}))
                .await,
        );
    }
    let mut t2_filter: Vec<Value> = named
        .iter()
        .map(|s| json!({"field": "segment", "op": "in", "value": s}))
        .collect();
    t2_filter.extend(cities(47));
    let t2 = app
        .dynamic_segment(&key, "T2", json!({"all": t2_filter}))
        .await;
    // T1a starts naming T0: T2 would reach 250 conditions. Refused, naming T2.
    let mut t1a_filter = cities(49);
    t1a_filter.push(json!({"field": "segment", "op": "in", "value": t0}));
    let refused = app
        .patch(
            &format!("/v1/segments/{}", named[0]),
            &key,
            json!({"filter": {"all": t1a_filter}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["code"], "filter_too_large");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("segment {t2}")), "{message}");
    // Nothing changed: T1a's filter is the old one.
    let t1a = app
        .get(&format!("/v1/segments/{}", named[0]), &key)
        .await
        .expect(200);
    assert_eq!(t1a["filter"], json!({"all": cities(50)}));
    // T1a naming T2, which names T1a: a cycle.
    let refused = app
        .patch(
            &format!("/v1/segments/{}", named[0]),
            &key,
            json!({"filter": {"field": "segment", "op": "in", "value": t2}}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["code"], "segment_cycle");
}

#[actix_web::test]
async fn a_named_segment_or_attribute_cannot_be_deleted() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    let vip = id(&app.segment(&key, "VIP", "whatsapp").await);
    let milan = app
        .dynamic_segment(
            &key,
            "Milan VIP",
            json!({"all": [{"field": "segment", "op": "in", "value": vip},
                        {"field": "attributes.city", "op": "eq", "value": "Milan"}]}),
        )
        .await;
    app.delete(&format!("/v1/segments/{vip}"), &key)
        .await
        .expect_problem(409, "segment_in_use");
    app.delete("/v1/attributes/city", &key)
        .await
        .expect_problem(409, "attribute_in_use");
    // Once the filter names neither, both can go.
    app.patch(
        &format!("/v1/segments/{milan}"),
        &key,
        json!({"filter": {"field": "name", "op": "exists"}}),
    )
    .await
    .expect(200);
    app.delete(&format!("/v1/segments/{vip}"), &key)
        .await
        .expect(204);
    app.delete("/v1/attributes/city", &key).await.expect(204);
}
