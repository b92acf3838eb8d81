//! Dynamic segments against PostgreSQL: every operator on every type, the flows a user
//! goes through, and thousands of generated filters that must never cause a 500.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

async fn define_attributes<S, B>(app: &crate::harness::TestApp<S>, key: &str)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    for (attribute, label, kind) in [
        ("city", "City", "text"),
        ("score", "Score", "number"),
        ("premium", "Premium customer", "boolean"),
        ("birthdate", "Birth date", "date"),
    ] {
        app.post(
            "/v1/attributes",
            key,
            json!({"key": attribute, "label": label, "type": kind}),
        )
        .await
        .expect(201);
    }
}

#[actix_web::test]
async fn every_operator_on_every_type_selects_the_right_contacts() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    define_attributes(&app, &key).await;
    let today = Utc::now().date_naive();
    let twenty_days_ago = today - Duration::days(20);
    // 1992 is a leap year, so today's month and day exist in it whatever today is.
    let anna_birth = NaiveDate::from_ymd_opt(1992, today.month(), today.day()).unwrap();
    let bruno_birth = NaiveDate::from_ymd_opt(2000, 2, 29).unwrap();
    let anna = app
        .contact(&key, json!({"name": "Anna Rossi", "email": "anna@example.com", "phone": "333 000 0001", "privacy_consent": true,
            "tags": ["vip", "lead"], "attributes": {"city": "Milan", "score": 10, "premium": true, "birthdate": anna_birth.to_string()}}))
        .await;
    app.contact(
        &key,
        json!({"name": "Bruno", "phone": "+44 7400 123456", "opted_out": true, "tags": ["lead"],
        "attributes": {"city": "Rome", "score": 5.5, "premium": false, "birthdate": bruno_birth.to_string()}}),
    )
    .await;
    let carla = app
        .contact(&key, json!({"name": "Carla", "email": "c@x.it"}))
        .await;
    app.contact(
        &key,
        json!({"name": "Dario 100%", "phone": "12", "tags": ["vip"],
        "attributes": {"city": "Milano", "score": 0, "birthdate": twenty_days_ago.to_string()}}),
    )
    .await;
    let vip = app.segment(&key, "VIP", "whatsapp").await;
    app.post(
        &format!("/v1/segments/{}/members", id(&vip)),
        &key,
        json!({"contact_ids": [id(&anna), id(&carla)]}),
    )
    .await
    .expect(200);
    let milan = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Milan", "channel": "whatsapp", "kind": "dynamic",
            "filter": {"field": "attributes.city", "op": "eq", "value": "Milan"}}),
        )
        .await
        .expect(201);

    let births = [
        ("A", anna_birth),
        ("B", bruno_birth),
        ("D", twenty_days_ago),
    ];
    let born = |rule: &dyn Fn(NaiveDate) -> bool| -> Vec<&str> {
        births
            .iter()
            .filter(|(_, birth)| rule(*birth))
            .map(|(name, _)| *name)
            .collect()
    };
    let anniversary_today = born(&|birth| crate::date_rules::anniversary_on(birth, today));
    let this_month = born(&|birth| birth.month() == today.month());
    let condition = |field: &str, op: &str, value: Value| {
        let mut condition = json!({"field": field, "op": op});
        if !value.is_null() {
            condition["value"] = value;
        }
        condition
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (condition("name", "eq", json!("Carla")), vec!["C"]),
        (
            condition("name", "neq", json!("Carla")),
            vec!["A", "B", "D"],
        ),
        (
            condition("name", "in", json!(["Anna Rossi", "Bruno"])),
            vec!["A", "B"],
        ),
        (
            condition("name", "not_in", json!(["Anna Rossi"])),
            vec!["B", "C", "D"],
        ),
        (condition("name", "contains", json!("ROSS")), vec!["A"]),
        (condition("name", "contains", json!("0%")), vec!["D"]),
        (condition("name", "not_contains", json!("a")), vec!["B"]),
        (condition("name", "starts_with", json!("car")), vec!["C"]),
        (
            condition("name", "exists", Value::Null),
            vec!["A", "B", "C", "D"],
        ),
        (condition("email", "exists", Value::Null), vec!["A", "C"]),
        (
            condition("email", "not_exists", Value::Null),
            vec!["B", "D"],
        ),
        (
            condition("email", "eq", json!("anna@example.com")),
            vec!["A"],
        ),
        (
            condition("email", "neq", json!("anna@example.com")),
            vec!["B", "C", "D"],
        ),
        (condition("phone", "starts_with", json!("+39")), vec!["A"]),
        (condition("phone", "exists", Value::Null), vec!["A", "B"]),
        (condition("phone_country", "eq", json!("GB")), vec!["B"]),
        (
            condition("phone_country", "not_in", json!(["GB"])),
            vec!["A", "C", "D"],
        ),
        (
            condition("attributes.city", "eq", json!("Milan")),
            vec!["A"],
        ),
        (
            condition("attributes.city", "neq", json!("Milan")),
            vec!["B", "C", "D"],
        ),
        (
            condition("attributes.city", "in", json!(["Milan", "Rome"])),
            vec!["A", "B"],
        ),
        (
            condition("attributes.city", "not_in", json!(["Milan", "Rome"])),
            vec!["C", "D"],
        ),
        (
            condition("attributes.city", "contains", json!("mila")),
            vec!["A", "D"],
        ),
        (
            condition("attributes.city", "not_contains", json!("mila")),
            vec!["B", "C"],
        ),
        (
            condition("attributes.city", "starts_with", json!("Ro")),
            vec!["B"],
        ),
        (
            condition("attributes.city", "exists", Value::Null),
            vec!["A", "B", "D"],
        ),
        (
            condition("attributes.city", "not_exists", Value::Null),
            vec!["C"],
        ),
        (condition("attributes.score", "eq", json!(10)), vec!["A"]),
        (
            condition("attributes.score", "neq", json!(10)),
            vec!["B", "C", "D"],
        ),
        (
            condition("attributes.score", "gt", json!(5)),
            vec!["A", "B"],
        ),
        (
            condition("attributes.score", "gte", json!(5.5)),
            vec!["A", "B"],
        ),
        (condition("attributes.score", "lt", json!(5.5)), vec!["D"]),
        (
            condition("attributes.score", "lte", json!(5.5)),
            vec!["B", "D"],
        ),
        (
            condition("attributes.score", "between", json!([0, 5.5])),
            vec!["B", "D"],
        ),
        (
            condition("attributes.score", "in", json!([0, 10])),
            vec!["A", "D"],
        ),
        (
            condition("attributes.score", "exists", Value::Null),
            vec!["A", "B", "D"],
        ),
        (
            condition("attributes.score", "not_exists", Value::Null),
            vec!["C"],
        ),
        (
            condition("attributes.premium", "eq", json!(true)),
            vec!["A"],
        ),
        (
            condition("attributes.premium", "eq", json!(false)),
            vec!["B"],
        ),
        (
            condition("attributes.premium", "exists", Value::Null),
            vec!["A", "B"],
        ),
        (
            condition("attributes.premium", "not_exists", Value::Null),
            vec!["C", "D"],
        ),
        (condition("opted_out", "eq", json!(true)), vec!["B"]),
        (condition("privacy_consent", "eq", json!(true)), vec!["A"]),
        (
            condition("privacy_consent", "exists", Value::Null),
            vec!["A", "B", "C", "D"],
        ),
        (
            condition("attributes.birthdate", "eq", json!("2000-02-29")),
            vec!["B"],
        ),
        (
            condition("attributes.birthdate", "before", json!("1995-01-01")),
            vec!["A"],
        ),
        (
            condition("attributes.birthdate", "after", json!("1995-01-01")),
            vec!["B", "D"],
        ),
        (
            condition(
                "attributes.birthdate",
                "between",
                json!(["1999-01-01", "2001-01-01"]),
            ),
            vec!["B"],
        ),
        (
            condition("attributes.birthdate", "in_last_days", json!(30)),
            vec!["D"],
        ),
        (
            condition("attributes.birthdate", "not_in_last_days", json!(30)),
            vec!["A", "B", "C"],
        ),
        (
            condition("attributes.birthdate", "in_next_days", json!(30)),
            vec![],
        ),
        (
            condition("attributes.birthdate", "anniversary_today", Value::Null),
            anniversary_today,
        ),
        (
            condition(
                "attributes.birthdate",
                "anniversary_this_month",
                Value::Null,
            ),
            this_month.clone(),
        ),
        (
            condition("attributes.birthdate", "exists", Value::Null),
            vec!["A", "B", "D"],
        ),
        (
            condition("attributes.birthdate", "not_exists", Value::Null),
            vec!["C"],
        ),
        (
            condition("created_at", "in_last_days", json!(1)),
            vec!["A", "B", "C", "D"],
        ),
        (
            condition("created_at", "before", json!("2000-01-01")),
            vec![],
        ),
        (
            condition("created_at", "eq", json!(today.to_string())),
            vec!["A", "B", "C", "D"],
        ),
        (condition("tags", "contains", json!("vip")), vec!["A", "D"]),
        (
            condition("tags", "not_contains", json!("vip")),
            vec!["B", "C"],
        ),
        (
            condition("tags", "contains_any", json!(["lead", "x"])),
            vec!["A", "B"],
        ),
        (
            condition("tags", "contains_all", json!(["vip", "lead"])),
            vec!["A"],
        ),
        (condition("tags", "is_empty", Value::Null), vec!["C"]),
        (condition("segment", "in", json!(id(&vip))), vec!["A", "C"]),
        (
            condition("segment", "not_in", json!(id(&vip))),
            vec!["B", "D"],
        ),
        (condition("segment", "in", json!(id(&milan))), vec!["A"]),
        (
            condition("segment", "not_in", json!(id(&milan))),
            vec!["B", "C", "D"],
        ),
        (json!({"all": []}), vec!["A", "B", "C", "D"]),
        (json!({"any": []}), vec![]),
        (
            json!({"not": {"field": "tags", "op": "contains", "value": "vip"}}),
            vec!["B", "C"],
        ),
        (
            json!({"all": [condition("attributes.city", "contains", json!("mil")), {"not": condition("attributes.premium", "eq", json!(true))}]}),
            vec!["D"],
        ),
        (
            json!({"any": [condition("email", "exists", Value::Null), condition("opted_out", "eq", json!(true))]}),
            vec!["A", "B", "C"],
        ),
    ];
    for (filter, expected) in cases {
        let preview = app
            .post(
                "/v1/segments/preview",
                &key,
                json!({"channel": "whatsapp", "filter": filter}),
            )
            .await
            .expect(200);
        let got: BTreeSet<String> = preview["sample"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap()[..1].to_owned())
            .collect();
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            got, expected,
            "filter {filter} ({})",
            preview["filter_summary"]
        );
        assert_eq!(
            preview["count"].as_u64().unwrap() as usize,
            expected.len(),
            "count of {filter}"
        );
    }
}

#[actix_web::test]
async fn anniversaries_of_29_february_fall_on_the_28th_in_other_years() {
    use diesel::prelude::*;
    use segments::core::filter::{Condition, Field, Node, Test};
    use segments::db::filter::Compiler;
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    define_attributes(&app, &key).await;
    let leapling = app
        .contact(
            &key,
            json!({"name": "Leap", "attributes": {"birthdate": "2000-02-29"}}),
        )
        .await;
    let tenant_id: i64 = app.get("/v1/tenant", &key).await.expect(200)["id"]
        .as_i64()
        .unwrap();
    let node = Node::Condition(Condition {
        field: Field::Attribute {
            key: "birthdate".into(),
            label: "Birth date".into(),
            value_type: segments::core::types::AttributeType::Date,
        },
        test: Test::AnniversaryToday,
    });
    let mut conn = app.database.connection();
    let matches_on = |day: &str, conn: &mut PgConnection| -> bool {
        let today = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        let condition = Compiler { tenant_id, today }.compile(&node);
        let ids: Vec<i64> = segments::db::schema::contacts::table
            .filter(segments::db::schema::contacts::tenant_id.eq(tenant_id))
            .filter(condition)
            .select(segments::db::schema::contacts::id)
            .load(conn)
            .unwrap();
        ids == vec![id(&leapling)]
    };
    assert!(
        matches_on("2023-02-28", &mut conn),
        "no 29th in 2023: the 28th"
    );
    assert!(!matches_on("2024-02-28", &mut conn), "2024 has a 29th");
    assert!(matches_on("2024-02-29", &mut conn));
    assert!(!matches_on("2023-03-01", &mut conn));
}

#[actix_web::test]
async fn a_dynamic_segment_follows_its_contacts_and_its_filter() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    define_attributes(&app, &key).await;
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
    let base = format!("/v1/segments/{}", id(&segment));
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
    define_attributes(&app, &key).await;
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
async fn generated_filters_never_cause_a_server_error() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    define_attributes(&app, &key).await;
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
