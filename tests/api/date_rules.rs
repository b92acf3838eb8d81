//! The date rules of the filter language, as PostgreSQL evaluates them, against an
//! independent computation in Rust: every day of a common year and of a leap year as
//! "today", over birth dates that cover month ends, year ends and 29 February.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date};
use serde_json::json;

use crate::harness::{id, spawn_app};

/// Whether someone born on `birth` has an anniversary on `day`: the same month and day,
/// and for those born on 29 February, 28 February in years without a 29th.
pub fn anniversary_on(birth: NaiveDate, day: NaiveDate) -> bool {
    let same_day = (birth.month(), birth.day()) == (day.month(), day.day());
    let leap_year = NaiveDate::from_ymd_opt(day.year(), 2, 29).is_some();
    let leapling_in_common_year = (birth.month(), birth.day()) == (2, 29)
        && (day.month(), day.day()) == (2, 28)
        && !leap_year;
    same_day || leapling_in_common_year
}

/// One rule, applied in Rust: `None` is a contact without the date.
type Rule = fn(Option<NaiveDate>, NaiveDate) -> bool;

const WINDOW: i64 = 7;

fn within(date: Option<NaiveDate>, from: NaiveDate, to: NaiveDate) -> bool {
    date.is_some_and(|d| from <= d && d <= to)
}

fn rules() -> Vec<(&'static str, Option<i64>, Rule)> {
    vec![
        ("anniversary_today", None, |d, today| {
            d.is_some_and(|d| anniversary_on(d, today))
        }),
        ("anniversary_this_month", None, |d, today| {
            d.is_some_and(|d| d.month() == today.month())
        }),
        ("in_last_days", Some(WINDOW), |d, today| {
            within(d, today - Duration::days(WINDOW), today)
        }),
        ("in_next_days", Some(WINDOW), |d, today| {
            within(d, today, today + Duration::days(WINDOW))
        }),
        ("not_in_last_days", Some(WINDOW), |d, today| {
            !within(d, today - Duration::days(WINDOW), today)
        }),
    ]
}

#[derive(QueryableByName)]
struct Dated {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<Date>)]
    birthdate: Option<NaiveDate>,
}

#[actix_web::test]
async fn date_rules_agree_with_an_independent_computation_on_every_day_of_two_years() {
    use segments::core::attributes::Definition;
    use segments::core::filter::parse;
    use segments::db::filter::Compiler;

    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    app.attributes(&key, &[("birthdate", "Birth date", "date")])
        .await;
    let mut conn = app.database.connection();
    // Every day from November 2022 to February 2025, the leap days of other years, and a
    // contact without the date.
    diesel::sql_query(
        "INSERT INTO contacts (tenant_id, name, attributes)
         SELECT $1, d::date::text, jsonb_build_object('birthdate', d::date::text)
         FROM (SELECT generate_series('2022-11-01'::date, '2025-02-28'::date, '1 day') AS d
               UNION ALL SELECT unnest(ARRAY['1996-02-29', '2000-02-29', '1999-02-28',
                                             '1999-03-01', '1990-12-31', '1991-01-01'])::date) AS days",
    )
    .bind::<BigInt, _>(tenant_id)
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("INSERT INTO contacts (tenant_id, name) VALUES ($1, 'no date')")
        .bind::<BigInt, _>(tenant_id)
        .execute(&mut conn)
        .unwrap();
    let contacts: Vec<Dated> = diesel::sql_query(
        "SELECT id, (attributes ->> 'birthdate')::date AS birthdate FROM contacts WHERE tenant_id = $1",
    )
    .bind::<BigInt, _>(tenant_id)
    .load(&mut conn)
    .unwrap();

    let attributes = [Definition {
        key: "birthdate".into(),
        label: "Birth date".into(),
        value_type: segments::core::types::AttributeType::Date,
    }];
    let mut no_segments = |_: i64| None;
    let mut checked = 0;
    let years = [
        NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    ];
    for first in years {
        for today in first.iter_days().take_while(|d| d.year() == first.year()) {
            for (op, days, rule) in rules() {
                let mut filter = json!({"field": "attributes.birthdate", "op": op});
                if let Some(days) = days {
                    filter["value"] = json!(days);
                }
                let mut context = parse::Context {
                    attributes: &attributes,
                    segment: &mut no_segments,
                    own_id: None,
                };
                let node = parse::parse(&filter, "filter", &mut context).unwrap();
                let condition = Compiler { tenant_id, today }.compile(&node);
                let got: BTreeSet<i64> = segments::db::schema::contacts::table
                    .filter(segments::db::schema::contacts::tenant_id.eq(tenant_id))
                    .filter(condition)
                    .select(segments::db::schema::contacts::id)
                    .load::<i64>(&mut conn)
                    .unwrap()
                    .into_iter()
                    .collect();
                let expected: BTreeSet<i64> = contacts
                    .iter()
                    .filter(|c| rule(c.birthdate, today))
                    .map(|c| c.id)
                    .collect();
                assert_eq!(got, expected, "{op} on {today}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, (365 + 366) * 5);
}

#[actix_web::test]
async fn anniversaries_of_29_february_fall_on_the_28th_in_other_years() {
    use diesel::prelude::*;
    use segments::core::filter::{Condition, Field, Node, Test};
    use segments::db::filter::Compiler;
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("birthdate", "Birth date", "date")])
        .await;
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
