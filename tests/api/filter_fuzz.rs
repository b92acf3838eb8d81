//! Thousands of generated filters, valid and broken, that must never cause a 500.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

#[actix_web::test]
async fn generated_filters_never_cause_a_server_error() {
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
    for n in 0..20 {
        let city = if n % 2 == 0 { "Milan" } else { "Rome" };
        app.contact(&key, json!({"name": format!("C{n}"), "tags": if n % 2 == 0 { json!(["a"]) } else { json!([]) },
            "attributes": {"city": city, "score": n, "premium": n % 3 == 0, "birthdate": format!("19{:02}-0{}-1{}", 50 + n, 1 + n % 9, n % 10)}}))
            .await;
    }
    let static_segment = app.segment(&key, "S", "sms").await;
    let mut rng = StdRng::seed_from_u64(7);
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..3000 {
        let broken = round % 2 == 1;
        let filter = if broken {
            broken_node(&mut rng, id(&static_segment))
        } else {
            random_node(&mut rng, 1, id(&static_segment))
        };
        let reply = app
            .post(
                "/v1/segments/preview",
                &key,
                json!({"channel": "sms", "filter": filter}),
            )
            .await;
        match reply.status.as_u16() {
            200 => valid += 1,
            422 => invalid += 1,
            other => panic!("{other} for {filter}: {}", reply.text),
        }
        let expected = if broken { 422 } else { 200 };
        assert_eq!(reply.status.as_u16(), expected, "{filter}: {}", reply.text);
    }
    assert_eq!((valid, invalid), (1500, 1500));
}

fn random_node(rng: &mut StdRng, depth: usize, segment_id: i64) -> Value {
    if depth < 4 && rng.random_range(0..3) == 0 {
        let children: Vec<Value> = (0..rng.random_range(0..4))
            .map(|_| random_node(rng, depth + 1, segment_id))
            .collect();
        return match rng.random_range(0..3) {
            0 => json!({"all": children}),
            1 => json!({"any": children}),
            _ => json!({"not": random_node(rng, depth + 1, segment_id)}),
        };
    }
    let (field, op, value) = random_condition(rng, segment_id);
    let mut condition = json!({"field": field, "op": op});
    if !value.is_null() {
        condition["value"] = value;
    }
    condition
}

/// A valid filter with one mistake somewhere in it.
fn broken_node(rng: &mut StdRng, segment_id: i64) -> Value {
    let mut mistake = random_node(rng, 4, segment_id);
    match rng.random_range(0..7) {
        0 => mistake["field"] = json!("attributes.nope"),
        1 => mistake["op"] = json!("matches"),
        2 => mistake["value"] = json!({"x": [1]}),
        3 => mistake["field"] = json!(12),
        4 => mistake = json!({"all": [mistake], "any": []}),
        5 => mistake["value"] = json!([[]]),
        _ => mistake = (0..6).fold(mistake, |inner, _| json!({"any": [inner]})),
    }
    let valid = random_node(rng, 2, segment_id);
    if rng.random_range(0..2) == 0 {
        json!({"all": [valid, mistake]})
    } else {
        json!({"any": [mistake, valid]})
    }
}

fn random_condition(rng: &mut StdRng, segment_id: i64) -> (&'static str, &'static str, Value) {
    let text = [
        "Milan",
        "ro",
        "%",
        "_",
        "'; DROP TABLE contacts; --",
        "ünïcödé",
    ][rng.random_range(0..6)];
    let number = rng.random_range(-5.0..25.0_f64).round();
    let day = format!(
        "19{}-0{}-1{}",
        rng.random_range(50..99),
        rng.random_range(1..10),
        rng.random_range(0..10)
    );
    match rng.random_range(0..12) {
        0 => (
            "name",
            ["eq", "neq", "contains", "not_contains", "starts_with"][rng.random_range(0..5)],
            json!(text),
        ),
        1 => (
            "email",
            ["exists", "not_exists"][rng.random_range(0..2)],
            Value::Null,
        ),
        2 => (
            "attributes.city",
            ["in", "not_in"][rng.random_range(0..2)],
            json!([text, "Rome"]),
        ),
        3 => (
            "attributes.score",
            ["eq", "neq", "gt", "gte", "lt", "lte"][rng.random_range(0..6)],
            json!(number),
        ),
        4 => ("attributes.score", "between", json!([number, number + 3.0])),
        5 => (
            "attributes.premium",
            "eq",
            json!(rng.random_range(0..2) == 0),
        ),
        6 => (
            "attributes.birthdate",
            ["eq", "before", "after"][rng.random_range(0..3)],
            json!(day),
        ),
        7 => (
            "attributes.birthdate",
            ["in_last_days", "not_in_last_days", "in_next_days"][rng.random_range(0..3)],
            json!(rng.random_range(1..400)),
        ),
        8 => (
            "attributes.birthdate",
            ["anniversary_today", "anniversary_this_month", "exists"][rng.random_range(0..3)],
            Value::Null,
        ),
        9 => (
            "tags",
            ["contains", "not_contains"][rng.random_range(0..2)],
            json!("a"),
        ),
        10 => (
            "tags",
            ["contains_any", "contains_all"][rng.random_range(0..2)],
            json!(["a", text]),
        ),
        _ => (
            "segment",
            ["in", "not_in"][rng.random_range(0..2)],
            json!(segment_id),
        ),
    }
}
