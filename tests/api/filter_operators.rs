//! Every operator on every type, through the preview, against four contacts: today, and
//! with "today" set to the days where date arithmetic goes wrong (month and year ends,
//! 29 February in leap and common years).

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use segments::core::clock::Clock;
use serde_json::{json, Value};

use crate::date_rules::anniversary_on;
use crate::harness::{id, spawn_app_with_clock, App, TestApp};

/// The four contacts (Anna, Bruno, Carla, Dario), a static segment of Anna and Carla, and
/// a dynamic one of the Milanese.
struct Fixture {
    today: NaiveDate,
    /// Birth dates of Anna, Bruno and Dario.
    births: [(&'static str, NaiveDate); 3],
    /// The day the contacts were created (the database's clock, not the service's).
    created: NaiveDate,
    vip: i64,
    milan: i64,
}

async fn fixture<S: App>(app: &TestApp<S>, key: &str, today: NaiveDate) -> Fixture {
    app.attributes(
        key,
        &[
            ("city", "City", "text"),
            ("score", "Score", "number"),
            ("premium", "Premium customer", "boolean"),
            ("birthdate", "Birth date", "date"),
        ],
    )
    .await;
    let twenty_days_ago = today - Duration::days(20);
    // 1992 is a leap year, so today's month and day exist in it whatever today is.
    let anna_birth = NaiveDate::from_ymd_opt(1992, today.month(), today.day()).unwrap();
    let bruno_birth = NaiveDate::from_ymd_opt(2000, 2, 29).unwrap();
    let anna = app
        .contact(key, json!({"name": "Anna Rossi", "email": "anna@example.com", "phone": "333 000 0001", "privacy_consent": true,
            "tags": ["vip", "lead"], "attributes": {"city": "Milan", "score": 10, "premium": true, "birthdate": anna_birth.to_string()}}))
        .await;
    app.contact(
        key,
        json!({"name": "Bruno", "phone": "+44 7400 123456", "opted_out": true, "tags": ["lead"],
        "attributes": {"city": "Rome", "score": 5.5, "premium": false, "birthdate": bruno_birth.to_string()}}),
    )
    .await;
    let carla = app
        .contact(key, json!({"name": "Carla", "email": "c@x.it"}))
        .await;
    app.contact(
        key,
        json!({"name": "Dario 100%", "phone": "12", "tags": ["vip"],
        "attributes": {"city": "Milano", "score": 0, "birthdate": twenty_days_ago.to_string()}}),
    )
    .await;
    let vip = app.segment(key, "VIP", "whatsapp").await;
    app.post(
        &format!("/v1/segments/{}/members", id(&vip)),
        key,
        json!({"contact_ids": [id(&anna), id(&carla)]}),
    )
    .await
    .expect(200);
    let milan = app
        .post(
            "/v1/segments",
            key,
            json!({"name": "Milan", "channel": "whatsapp", "kind": "dynamic",
            "filter": {"field": "attributes.city", "op": "eq", "value": "Milan"}}),
        )
        .await
        .expect(201);
    let created = chrono::DateTime::parse_from_rfc3339(anna["created_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
        .date_naive();
    Fixture {
        today,
        births: [
            ("A", anna_birth),
            ("B", bruno_birth),
            ("D", twenty_days_ago),
        ],
        created,
        vip: id(&vip),
        milan: id(&milan),
    }
}

fn condition(field: &str, op: &str, value: Value) -> Value {
    let mut condition = json!({"field": field, "op": op});
    if !value.is_null() {
        condition["value"] = value;
    }
    condition
}

/// Each filter with the contacts it must match (by initial), the date rules' expectations
/// computed from the fixture's dates.
fn cases(f: &Fixture) -> Vec<(Value, Vec<&'static str>)> {
    let today = f.today;
    let born = |rule: &dyn Fn(NaiveDate) -> bool| -> Vec<&'static str> {
        f.births
            .iter()
            .filter(|(_, birth)| rule(*birth))
            .map(|(name, _)| *name)
            .collect()
    };
    let created = |matches: bool| -> Vec<&'static str> {
        if matches {
            vec!["A", "B", "C", "D"]
        } else {
            vec![]
        }
    };
    vec![
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
            born(&|birth| anniversary_on(birth, today)),
        ),
        (
            condition(
                "attributes.birthdate",
                "anniversary_this_month",
                Value::Null,
            ),
            born(&|birth| birth.month() == today.month()),
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
            created(f.created >= today - Duration::days(1) && f.created <= today),
        ),
        (
            condition("created_at", "before", json!("2000-01-01")),
            vec![],
        ),
        (
            condition("created_at", "eq", json!(today.to_string())),
            created(f.created == today),
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
        (condition("segment", "in", json!(f.vip)), vec!["A", "C"]),
        (condition("segment", "not_in", json!(f.vip)), vec!["B", "D"]),
        (condition("segment", "in", json!(f.milan)), vec!["A"]),
        (
            condition("segment", "not_in", json!(f.milan)),
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
    ]
}

async fn expect_cases<S: App>(app: &TestApp<S>, key: &str, cases: Vec<(Value, Vec<&str>)>) {
    for (filter, expected) in cases {
        let preview = app
            .post(
                "/v1/segments/preview",
                key,
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
async fn every_operator_on_every_type_selects_the_right_contacts() {
    let app = spawn_app_with_clock(Clock::System).await;
    let key = app.tenant_key().await;
    let fixture = fixture(&app, &key, Utc::now().date_naive()).await;
    expect_cases(&app, &key, cases(&fixture)).await;
}

/// The same table with the service's "today" set to each day where calendars go wrong:
/// month ends, year ends, and 29 February in a leap year and around it.
#[actix_web::test]
async fn every_operator_is_right_on_the_days_calendars_go_wrong() {
    let days = [
        "2027-02-28",
        "2028-02-28",
        "2028-02-29",
        "2028-03-01",
        "2026-04-30",
        "2026-12-31",
        "2027-01-01",
    ];
    for day in days {
        let today = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        let app = spawn_app_with_clock(Clock::Fixed(today)).await;
        let key = app.tenant_key().await;
        let fixture = fixture(&app, &key, today).await;
        expect_cases(&app, &key, cases(&fixture)).await;
    }
}
