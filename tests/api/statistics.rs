//! Bulk writes whatever the planner's statistics say. They are taken when autovacuum
//! gets to a table: on a new database, or a tenant grown since, they describe a handful
//! of contacts while a request writes or reads tens of thousands. A plan that believed
//! them and rescanned one side for each row of the other took minutes; these tests run
//! with a statement timeout far above each request's own time (seconds, in a debug
//! build) and far below such a plan's, so a plan that depends on luck fails them.

use std::collections::BTreeSet;

use diesel::RunQueryDsl;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app_with_config, App, TestApp};
use crate::imports::import_csv;

const ROWS: i64 = 50_000;

/// A service whose database has statistics on tiny tables: three small tenants written,
/// then everything analysed.
async fn after_statistics_on_tiny_tables() -> TestApp<impl App> {
    let app = spawn_app_with_config(|config| config.statement_timeout_secs = 20).await;
    for tenant in 0..3 {
        let key = app.tenant_key().await;
        for n in 0..5 {
            app.contact(
                &key,
                json!({"name": "Small", "phone": format!("+39 333 {tenant}00 000{n}"),
                       "email": format!("small{n}@example.com")}),
            )
            .await;
        }
    }
    diesel::sql_query("ANALYZE")
        .execute(&mut app.database.connection())
        .unwrap();
    app
}

/// Imports `ROWS` contacts by phone into a new WhatsApp segment; returns it.
async fn imported<S: App>(app: &TestApp<S>, key: &str) -> i64 {
    let segment = id(&app.segment(key, "By phone", "whatsapp").await);
    let mut file = String::from("phone,name,email\n");
    for n in 0..ROWS {
        file.push_str(&format!("+39 334 {n:07},Name {n},p{n}@example.com\n"));
    }
    let report = import_csv(app, segment, key, "", file.as_bytes())
        .await
        .expect(200);
    assert_eq!(
        (
            report["added"].as_i64(),
            report["contacts_created"].as_i64()
        ),
        (Some(ROWS), Some(ROWS)),
        "{report}"
    );
    segment
}

/// The segment's members' contact ids, in order, read from the database.
fn members<S: App>(app: &TestApp<S>, segment: i64) -> Vec<i64> {
    #[derive(diesel::QueryableByName)]
    struct Member {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        contact_id: i64,
    }
    diesel::sql_query(
        "SELECT contact_id FROM segment_members WHERE segment_id = $1 ORDER BY contact_id",
    )
    .bind::<diesel::sql_types::BigInt, _>(segment)
    .load::<Member>(&mut app.database.connection())
    .unwrap()
    .into_iter()
    .map(|member| member.contact_id)
    .collect()
}

#[actix_web::test]
async fn a_large_import_by_phone_then_by_email() {
    let app = after_statistics_on_tiny_tables().await;
    let key = app.tenant_key().await;
    imported(&app, &key).await;

    // The same people by e-mail alone, into an e-mail segment: matched, not created.
    let by_email = id(&app.segment(&key, "By e-mail", "email").await);
    let mut file = String::from("email,name\n");
    for n in 0..ROWS {
        file.push_str(&format!("P{n}@example.com,Name {n}\n"));
    }
    let report = import_csv(&app, by_email, &key, "", file.as_bytes())
        .await
        .expect(200);
    assert_eq!(
        (
            report["added"].as_i64(),
            report["contacts_created"].as_i64()
        ),
        (Some(ROWS), Some(0)),
        "{report}"
    );
    let segment = app
        .get(&format!("/v1/segments/{by_email}"), &key)
        .await
        .expect(200);
    assert_eq!(segment["recipients"], ROWS, "{segment}");
}

#[actix_web::test]
async fn batches_member_adds_and_a_freeze_on_a_tenant_grown_since() {
    let app = after_statistics_on_tiny_tables().await;
    let key = app.tenant_key().await;
    let everyone = imported(&app, &key).await;

    // A CRM batch updating 1,000 of them, found by phone.
    let contacts: Vec<Value> = (0..1_000)
        .map(|n| json!({"name": format!("Renamed {n}"), "phone": format!("+39 334 {:07}", n * 37)}))
        .collect();
    let batch = app
        .post("/v1/contacts/batch", &key, json!({ "contacts": contacts }))
        .await
        .expect(200);
    let updated = batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["status"] == "updated")
        .count();
    assert_eq!(updated, 1_000, "{batch}");

    // 10,000 of them added by id to another segment.
    let ids: Vec<i64> = members(&app, everyone).into_iter().take(10_000).collect();
    let other = id(&app.segment(&key, "Ten thousand", "whatsapp").await);
    let report = app
        .post(
            &format!("/v1/segments/{other}/members"),
            &key,
            json!({ "contact_ids": ids }),
        )
        .await
        .expect(200);
    assert_eq!(report["added"], 10_000, "{report}");

    // Every one of them frozen into a send.
    let campaign = id(&app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "All", "channel": "whatsapp", "segment_ids": [everyone, other]}),
        )
        .await
        .expect(201));
    let send = app
        .post(&format!("/v1/campaigns/{campaign}/sends"), &key, json!({}))
        .await
        .expect(201);
    assert_eq!(send["progress"]["total"], ROWS, "{send}");
}

#[actix_web::test]
async fn an_audience_summed_streamed_and_paged_on_a_tenant_grown_since() {
    let app = after_statistics_on_tiny_tables().await;
    let key = app.tenant_key().await;
    let everyone = imported(&app, &key).await;
    // Every tenth of them left out by an exclusion segment, and one opted out.
    let excluded = id(&app.segment(&key, "Left out", "whatsapp").await);
    let left_out: Vec<i64> = members(&app, everyone).into_iter().step_by(10).collect();
    app.post(
        &format!("/v1/segments/{excluded}/members"),
        &key,
        json!({ "contact_ids": left_out }),
    )
    .await
    .expect(200);
    let opted_out = members(&app, everyone)[1];
    app.patch(
        &format!("/v1/contacts/{opted_out}"),
        &key,
        json!({"opted_out": true}),
    )
    .await
    .expect(200);
    let campaign = id(&app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "All", "channel": "whatsapp", "segment_ids": [everyone],
                   "exclude_segment_ids": [excluded]}),
        )
        .await
        .expect(201));

    let streamed = app
        .get(&format!("/v1/campaigns/{campaign}/audience.ndjson"), &key)
        .await
        .ndjson_contact_ids();
    let left_out: BTreeSet<i64> = left_out.into_iter().collect();
    let expected: Vec<i64> = members(&app, everyone)
        .into_iter()
        .filter(|contact| !left_out.contains(contact) && *contact != opted_out)
        .collect();
    assert_eq!(streamed.len(), expected.len());
    assert!(
        streamed == expected,
        "every member not left out, once, in order"
    );

    let summary = app
        .get(&format!("/v1/campaigns/{campaign}/audience/summary"), &key)
        .await
        .expect(200);
    assert_eq!(summary["eligible"], expected.len(), "{summary}");
    assert_eq!(
        summary["excluded"]["by_exclusion"],
        left_out.len(),
        "{summary}"
    );
    assert_eq!(summary["excluded"]["opted_out"], 1, "{summary}");

    // The same audience a page of 10,000 at a time.
    let (mut paged, mut after) = (Vec::new(), 0);
    loop {
        let page = app
            .get(
                &format!("/v1/campaigns/{campaign}/audience?limit=10000&after={after}"),
                &key,
            )
            .await
            .expect(200);
        let items = page["items"].as_array().unwrap();
        paged.extend(
            items
                .iter()
                .map(|item| item["contact_id"].as_i64().unwrap()),
        );
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert!(paged == expected, "pages hold what the stream holds");
}
