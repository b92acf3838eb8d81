//! CRM workers pushing the same people at once, double clicks, saves racing deletes and
//! import jobs racing their polls: many rounds each, asserting the end state.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// The tenant's contacts whose `column` is `value`.
fn contacts_with(conn: &mut PgConnection, tenant_id: i64, column: &str, value: &str) -> i64 {
    diesel::sql_query(format!(
        "SELECT count(*) AS count FROM contacts WHERE tenant_id = $1 AND {column} = $2"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<Text, _>(value)
    .get_result::<Count>(conn)
    .unwrap()
    .count
}

pub(crate) fn count(conn: &mut PgConnection, sql: &str, tenant_id: i64) -> i64 {
    diesel::sql_query(sql)
        .bind::<BigInt, _>(tenant_id)
        .get_result::<Count>(conn)
        .unwrap()
        .count
}

#[actix_web::test]
async fn twenty_identical_pushes_at_once_all_succeed_with_one_contact() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    let mut conn = app.database.connection();
    for round in 0..12 {
        let external_id = format!("crm-{round}");
        let body = json!({"name": format!("Round {round}"), "external_id": external_id,
                          "phone": format!("333 100 {round:04}"), "tags": ["crm"]});
        let path = format!("/v1/contacts/by-external-id/{external_id}");
        let replies = join_all((0..20).map(|_| app.put(&path, &key, body.clone()))).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 201),
            "round {round}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "round {round}: one push creates, the others update: {statuses:?}"
        );
        let ids: Vec<i64> = replies.iter().map(|r| id(&r.body)).collect();
        assert!(ids.iter().all(|i| *i == ids[0]), "round {round}: {ids:?}");
        assert_eq!(
            contacts_with(&mut conn, tenant_id, "external_id", &external_id),
            1
        );
    }
}

/// `count` people, each with an external id (or, every fifth, only a phone) and a phone
/// from one of ten countries.
fn people(round: usize, count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let unique = round * 1000 + n;
            // Mobile numbers as people write them in international form, one country in ten.
            let phone = match n % 10 {
                0 => format!("+39 333 1{unique:06}"),
                1 => format!("+44 7400 1{unique:05}"),
                2 => format!("+49 151 1{unique:07}"),
                3 => format!("+33 6 12 {unique:06}"),
                4 => format!("+34 612 {unique:06}"),
                5 => format!("+1 415 2{unique:06}"),
                6 => format!("+31 6 1{unique:07}"),
                7 => format!("+41 79 1{unique:06}"),
                8 => format!("+43 664 1{unique:06}"),
                _ => format!("+32 470 1{unique:05}"),
            };
            if n % 5 == 4 {
                json!({"name": format!("Walk-in {unique}"), "phone": phone})
            } else {
                json!({"name": format!("Person {unique}"), "external_id": format!("p-{unique}"),
                       "phone": phone, "email": format!("p{unique}@example.com")})
            }
        })
        .collect()
}

#[actix_web::test]
async fn overlapping_batches_from_four_workers_never_deadlock_nor_duplicate() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    let mut conn = app.database.connection();
    let mut expected = 0;
    for round in 0..6 {
        let everyone = people(round, 150);
        expected += everyone.len() as i64;
        // Each worker pushes an overlapping window of the same people, in its own order.
        let batches: Vec<Vec<Value>> = (0..4)
            .map(|worker| {
                let mut batch: Vec<Value> = everyone
                    .iter()
                    .skip(worker * 20)
                    .chain(everyone.iter().take(worker * 20))
                    .cloned()
                    .collect();
                if worker % 2 == 1 {
                    batch.reverse();
                }
                batch
            })
            .collect();
        let replies = join_all(
            batches
                .iter()
                .map(|batch| app.post("/v1/contacts/batch", &key, json!({"contacts": batch}))),
        )
        .await;
        for (worker, reply) in replies.into_iter().enumerate() {
            let body = reply.expect(200);
            let errors: Vec<&Value> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| item["status"] == "error")
                .collect();
            assert!(
                errors.is_empty(),
                "round {round}, worker {worker}: {errors:?}"
            );
        }
        assert_eq!(
            count(
                &mut conn,
                "SELECT count(*) AS count FROM contacts WHERE tenant_id = $1",
                tenant_id
            ),
            expected,
            "round {round}: each person once"
        );
        for person in &everyone {
            let phone = person["phone"].as_str().unwrap().replace(' ', "");
            assert_eq!(
                contacts_with(&mut conn, tenant_id, "phone_e164", &phone),
                1,
                "{person}"
            );
        }
    }
}

#[actix_web::test]
async fn two_pushes_racing_for_one_phone_leave_one_contact_and_a_precise_409() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    let mut conn = app.database.connection();
    for round in 0..15 {
        let phone = format!("+39 333 200 {round:04}");
        let replies = join_all(["a", "b"].map(|who| {
            let (app, key, phone) = (&app, &key, &phone);
            async move {
                app.put(
                    &format!("/v1/contacts/by-external-id/{who}-{round}"),
                    key,
                    json!({"name": who, "external_id": format!("{who}-{round}"), "phone": phone}),
                )
                .await
            }
        }))
        .await;
        let mut statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
        let refused = replies.iter().find(|r| r.status == 409).unwrap();
        assert_eq!(refused.body["code"], "phone_taken");
        assert_eq!(
            contacts_with(&mut conn, tenant_id, "phone_e164", &phone.replace(' ', "")),
            1
        );
    }
}

#[actix_web::test]
async fn a_campaign_saved_while_its_segment_is_deleted_never_names_a_missing_segment() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for round in 0..20 {
        let segment = id(&app.segment(&key, &format!("S{round}"), "sms").await);
        let segment_path = format!("/v1/segments/{segment}");
        let (saved, deleted) = tokio::join!(
            app.post(
                "/v1/campaigns",
                &key,
                json!({"name": format!("C{round}"), "channel": "sms", "segment_ids": [segment]})
            ),
            app.delete(&segment_path, &key)
        );
        assert_eq!(deleted.status, 204, "round {round}");
        match saved.status.as_u16() {
            201 => {
                let campaign = app
                    .get(&format!("/v1/campaigns/{}", id(&saved.body)), &key)
                    .await
                    .expect(200);
                assert_eq!(
                    campaign["segment_ids"],
                    json!([]),
                    "round {round}: the deletion removed it"
                );
            }
            422 => assert_eq!(
                saved.body["errors"][0]["code"], "segment_not_found",
                "round {round}"
            ),
            other => panic!("round {round}: {other} {}", saved.body),
        }
    }
}

#[actix_web::test]
async fn attributes_defined_at_once_never_pass_the_cap() {
    let app = spawn_app().await;
    for round in 0..5 {
        let (tenant_id, key) = app.tenant(json!({})).await;
        let mut conn = app.database.connection();
        diesel::sql_query(
            "INSERT INTO attribute_definitions (tenant_id, key, label, type) \
             SELECT $1, 'a' || n, 'A' || n, 'text' FROM generate_series(1, 98) AS n",
        )
        .bind::<BigInt, _>(tenant_id)
        .execute(&mut conn)
        .unwrap();
        let replies = join_all((0..10).map(|n| {
            app.post(
                "/v1/attributes",
                &key,
                json!({"key": format!("late{n}"), "label": "Late", "type": "text"}),
            )
        }))
        .await;
        let created = replies.iter().filter(|r| r.status == 201).count();
        assert_eq!(created, 2, "round {round}");
        assert!(replies
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.status == 422 && r.body["code"] == "too_many_attributes"));
        assert_eq!(
            count(
                &mut conn,
                "SELECT count(*) AS count FROM attribute_definitions WHERE tenant_id = $1",
                tenant_id
            ),
            100
        );
    }
}

#[actix_web::test]
async fn the_endpoint_lock_does_not_hold_up_the_tenants_other_writes() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({"endpoint_limit": 1000})).await;
    let segment = id(&app.segment(&key, "Held", "whatsapp").await);
    // What a long import holds for its whole transaction.
    let mut holder = app.database.connection();
    holder.batch_execute("BEGIN").unwrap();
    segments::db::members::lock_tenant(&mut holder, tenant_id).unwrap();
    let started = std::time::Instant::now();
    app.contact(&key, json!({"name": "Not held up", "phone": "3331112222"}))
        .await;
    app.send(
        actix_web::test::TestRequest::post()
            .uri(&format!("/v1/segments/{segment}/import"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", "text/csv"))
            .insert_header(("Prefer", "respond-async"))
            .set_payload("phone\n3331113333\n")
            .to_request(),
    )
    .await
    .expect(202);
    // A foreign-key check on the tenant waited for a lock on its row until the holder
    // ended (or 20 s); now nothing waits.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(holder);
}
