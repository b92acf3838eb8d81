//! Campaign sends as a messaging platform uses them: freeze, page, report, crash, resume.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, App, TestApp};

/// Contacts `name-0..n` with phones, all in one static WhatsApp segment; a campaign on
/// it. Returns the campaign id and the contact ids in id order.
async fn campaign_of(
    app: &crate::harness::TestApp<impl crate::harness::App>,
    key: &str,
    n: usize,
) -> (i64, Vec<i64>) {
    let segment = id(&app.segment(key, "Everyone", "whatsapp").await);
    let mut ids = Vec::new();
    for i in 0..n {
        let contact = app
            .contact(
                key,
                json!({"name": format!("name-{i}"), "phone": format!("333 200 {i:04}")}),
            )
            .await;
        ids.push(id(&contact));
    }
    app.post(
        &format!("/v1/segments/{segment}/members"),
        key,
        json!({"contact_ids": ids}),
    )
    .await
    .expect(200);
    let campaign = app
        .post(
            "/v1/campaigns",
            key,
            json!({"name": "Launch", "channel": "whatsapp", "segment_ids": [segment]}),
        )
        .await
        .expect(201);
    (id(&campaign), ids)
}

fn progress_adds_up(send: &Value) {
    let p = &send["progress"];
    let sum: i64 = ["pending", "sent", "delivered", "read", "failed", "skipped"]
        .iter()
        .map(|k| p[k].as_i64().unwrap())
        .sum();
    assert_eq!(sum, p["total"].as_i64().unwrap(), "progress: {p}");
}

/// Freezes the campaign's audience into a send; returns the send's id.
async fn freeze<S: App>(app: &TestApp<S>, key: &str, campaign: i64) -> i64 {
    id(&app
        .post(&format!("/v1/campaigns/{campaign}/sends"), key, json!({}))
        .await
        .expect(201))
}

async fn all_recipients(
    app: &crate::harness::TestApp<impl crate::harness::App>,
    key: &str,
    send: i64,
    query: &str,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(
                &format!("/v1/sends/{send}/recipients?limit=3&after={after}{query}"),
                key,
            )
            .await
            .expect(200);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return items,
        }
    }
}

#[actix_web::test]
async fn the_frozen_list_does_not_move_while_statuses_do() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let (campaign, ids) = campaign_of(&app, &key, 6).await;
    // One opted out before the freeze: never a recipient.
    app.patch(
        &format!("/v1/contacts/{}", ids[5]),
        &key,
        json!({"opted_out": true}),
    )
    .await
    .expect(200);
    let created = app
        .post(&format!("/v1/campaigns/{campaign}/sends"), &key, json!({}))
        .await;
    assert_eq!(
        created.headers.get("location").unwrap().to_str().unwrap(),
        format!("/v1/sends/{}", id(&created.body))
    );
    let send = created.expect(201);
    let send_id = id(&send);
    assert_eq!(send["summary"]["eligible"], 5);
    assert_eq!(send["summary"]["excluded"]["opted_out"], 1);
    assert_eq!(send["progress"]["total"], 5);
    assert_eq!(send["progress"]["pending"], 5);
    let frozen = all_recipients(&app, &key, send_id, "").await;
    assert_eq!(frozen.len(), 5);
    assert_eq!(frozen[0]["name"], "name-0");
    assert_eq!(frozen[0]["address"], "+393332000000");
    assert_eq!(frozen[0]["status"], "pending");

    // Everything around the send changes: names, phones, members, a new contact, an
    // opt-out, a deleted contact.
    app.patch(
        &format!("/v1/contacts/{}", ids[0]),
        &key,
        json!({"name": "Renamed", "phone": "333 999 0000"}),
    )
    .await
    .expect(200);
    let segment = app
        .get(&format!("/v1/campaigns/{campaign}"), &key)
        .await
        .expect(200)["segment_ids"][0]
        .as_i64()
        .unwrap();
    app.send(
        actix_web::test::TestRequest::delete()
            .uri(&format!("/v1/segments/{segment}/members"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .set_json(json!({"contact_ids": [ids[1]]}))
            .to_request(),
    )
    .await
    .expect(200);
    let newcomer = id(&app
        .contact(&key, json!({"name": "New", "phone": "333 777 0000"}))
        .await);
    app.post(
        &format!("/v1/segments/{segment}/members"),
        &key,
        json!({"contact_ids": [newcomer]}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/v1/contacts/{}", ids[2]),
        &key,
        json!({"opted_out": true}),
    )
    .await
    .expect(200);
    app.delete(&format!("/v1/contacts/{}", ids[3]), &key)
        .await
        .expect(204);
    // Outcomes move statuses.
    let report = app
        .post(
            &format!("/v1/sends/{send_id}/outcomes"),
            &key,
            json!({"outcomes": [
                {"contact_id": ids[0], "status": "delivered"},
                {"contact_id": ids[4], "status": "failed", "error": {"code": "blocked", "message": "Blocked the sender"}},
            ]}),
        )
        .await
        .expect(200);
    assert_eq!(
        report,
        json!({"updated": 2, "unchanged": 0, "rejected": []})
    );

    let after = all_recipients(&app, &key, send_id, "").await;
    let names: Vec<(&str, &str)> = after
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["address"].as_str().unwrap()))
        .collect();
    let names_before: Vec<(&str, &str)> = frozen
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["address"].as_str().unwrap()))
        .collect();
    assert_eq!(names, names_before, "the frozen list never moves");
    let statuses: Vec<&str> = after
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["delivered", "pending", "skipped", "pending", "failed"]
    );
    assert_eq!(after[2]["error"]["code"], "opted_out_after_freeze");
    assert_eq!(
        after[4]["error"],
        json!({"code": "blocked", "message": "Blocked the sender"})
    );
    assert!(after[0]["status_at"].is_string());

    let send = app
        .get(&format!("/v1/sends/{send_id}"), &key)
        .await
        .expect(200);
    assert_eq!(
        send["progress"],
        json!({"total": 5, "pending": 2, "sent": 0, "delivered": 1, "read": 0, "failed": 1, "skipped": 1})
    );
    progress_adds_up(&send);
    // Who is left: never the opted out.
    let pending = all_recipients(&app, &key, send_id, "&status=pending").await;
    let pending: Vec<i64> = pending
        .iter()
        .map(|r| r["contact_id"].as_i64().unwrap())
        .collect();
    assert_eq!(pending, [ids[1], ids[3]]);
    let skipped = all_recipients(&app, &key, send_id, "&status=skipped").await;
    assert_eq!(skipped.len(), 1);
    // The campaign is the record's owner now.
    app.delete(&format!("/v1/campaigns/{campaign}"), &key)
        .await
        .expect_problem(409, "campaign_has_sends");
    let list = app
        .get(&format!("/v1/campaigns/{campaign}/sends"), &key)
        .await
        .expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], send_id);
    let past = app
        .get(&format!("/v1/campaigns/{campaign}/sends?page=2"), &key)
        .await
        .expect(200);
    assert_eq!(
        (
            past["items"].as_array().unwrap().len(),
            past["total"].as_i64()
        ),
        (0, Some(1))
    );
    assert_eq!(list["items"][0]["summary"]["eligible"], 5);
}

#[actix_web::test]
async fn outcomes_move_forward_only_and_retries_change_nothing() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let (campaign, ids) = campaign_of(&app, &key, 3).await;
    let send = freeze(&app, &key, campaign).await;
    let path = format!("/v1/sends/{send}/outcomes");
    let report = |outcomes: Value| {
        let app = &app;
        let key = &key;
        let path = &path;
        async move {
            app.post(path, key, json!({ "outcomes": outcomes }))
                .await
                .expect(200)
        }
    };
    let batch = json!([
        {"contact_id": ids[0], "status": "sent", "at": "2026-03-02T10:00:00Z"},
        {"contact_id": ids[1], "status": "read"},
        {"contact_id": 999999, "status": "sent"},
    ]);
    assert_eq!(
        report(batch.clone()).await,
        json!({"updated": 2, "unchanged": 0, "rejected": [{"contact_id": 999999, "code": "not_a_recipient"}]})
    );
    // The same batch again: a safe retry.
    assert_eq!(
        report(batch).await,
        json!({"updated": 0, "unchanged": 2, "rejected": [{"contact_id": 999999, "code": "not_a_recipient"}]})
    );
    // Backwards, or failed after delivery: nothing moves. Forward: it does.
    assert_eq!(
        report(json!([
            {"contact_id": ids[1], "status": "delivered"},
            {"contact_id": ids[1], "status": "failed"},
            {"contact_id": ids[0], "status": "delivered"},
            {"contact_id": ids[2], "status": "failed"},
        ]))
        .await,
        json!({"updated": 2, "unchanged": 2, "rejected": []})
    );
    assert_eq!(
        report(json!([{"contact_id": ids[2], "status": "sent"}])).await["unchanged"],
        1,
        "nothing leaves failed"
    );
    // last_messaged_at: set by the message that went out, never by a failure.
    let contact = app
        .get(&format!("/v1/contacts/{}", ids[0]), &key)
        .await
        .expect(200);
    assert_eq!(contact["last_messaged_at"], "2026-03-02T10:00:00Z");
    let failed = app
        .get(&format!("/v1/contacts/{}", ids[2]), &key)
        .await
        .expect(200);
    assert_eq!(failed["last_messaged_at"], Value::Null);
    // What cannot be reported.
    let refused = app
        .post(
            &path,
            &key,
            json!({"outcomes": [{"contact_id": ids[0], "status": "pending"}]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["field"], "outcomes[0].status");
    app.post(&path, &key, json!({"outcomes": []}))
        .await
        .expect_problem(422, "validation_failed");
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"contact_id": i + 1, "status": "sent"}))
        .collect();
    app.post(&path, &key, json!({ "outcomes": too_many }))
        .await
        .expect_problem(422, "validation_failed");
    let send = app
        .get(&format!("/v1/sends/{send}"), &key)
        .await
        .expect(200);
    assert_eq!(
        send["progress"],
        json!({"total": 3, "pending": 0, "sent": 0, "delivered": 1, "read": 1, "failed": 1, "skipped": 0})
    );
}

#[actix_web::test]
async fn concurrent_outcome_batches_converge_to_the_furthest_status() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let (campaign, ids) = campaign_of(&app, &key, 30).await;
    let ladder = ["sent", "delivered", "read"];
    for round in 0..8 {
        let send = freeze(&app, &key, campaign).await;
        let path = format!("/v1/sends/{send}/outcomes");
        // Six senders report overlapping batches, each in its own order, at once.
        let batches: Vec<Value> = (0..6)
            .map(|sender: usize| {
                let mut outcomes: Vec<Value> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, contact)| {
                        json!({"contact_id": contact, "status": ladder[(i + sender + round) % 3]})
                    })
                    .collect();
                if sender % 2 == 1 {
                    outcomes.reverse();
                }
                json!({ "outcomes": outcomes })
            })
            .collect();
        let replies = join_all(batches.iter().map(|b| app.post(&path, &key, b.clone()))).await;
        let mut updated = 0;
        for reply in replies {
            let body = reply.expect(200);
            updated += body["updated"].as_i64().unwrap();
            assert_eq!(
                body["updated"].as_i64().unwrap() + body["unchanged"].as_i64().unwrap(),
                30
            );
        }
        assert!(updated >= 30, "round {round}: {updated} moves");
        let send = app
            .get(&format!("/v1/sends/{send}"), &key)
            .await
            .expect(200);
        assert_eq!(
            send["progress"]["read"], 30,
            "round {round}: {}",
            send["progress"]
        );
        progress_adds_up(&send);
    }
}

#[actix_web::test]
async fn a_sender_killed_halfway_resumes_from_pending_and_the_counts_add_up() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let (campaign, _) = campaign_of(&app, &key, 25).await;
    let send = freeze(&app, &key, campaign).await;
    // The first sender takes a page of 10, messages them, reports, then dies after
    // messaging 4 of the next page without reporting them.
    let page = app
        .get(
            &format!("/v1/sends/{send}/recipients?status=pending&limit=10"),
            &key,
        )
        .await
        .expect(200);
    let outcomes: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"contact_id": r["contact_id"], "status": "sent"}))
        .collect();
    app.post(
        &format!("/v1/sends/{send}/outcomes"),
        &key,
        json!({ "outcomes": outcomes }),
    )
    .await
    .expect(200);
    // The new sender streams who is left and finishes the job.
    let left = app
        .get(
            &format!("/v1/sends/{send}/recipients.ndjson?status=pending"),
            &key,
        )
        .await;
    assert_eq!(left.status, 200);
    assert_eq!(left.content_type, "application/x-ndjson");
    let left: Vec<Value> = left
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(left.len(), 15);
    assert!(left.iter().all(|r| r["status"] == "pending"));
    let outcomes: Vec<Value> = left
        .iter()
        .map(|r| json!({"contact_id": r["contact_id"], "status": "delivered"}))
        .collect();
    let report = app
        .post(
            &format!("/v1/sends/{send}/outcomes"),
            &key,
            json!({ "outcomes": outcomes }),
        )
        .await
        .expect(200);
    assert_eq!(report["updated"], 15);
    let send = app
        .get(&format!("/v1/sends/{send}"), &key)
        .await
        .expect(200);
    assert_eq!(
        send["progress"],
        json!({"total": 25, "pending": 0, "sent": 10, "delivered": 15, "read": 0, "failed": 0, "skipped": 0})
    );
    let everyone = app
        .get(&format!("/v1/sends/{}/recipients.ndjson", id(&send)), &key)
        .await;
    assert_eq!(everyone.text.lines().count(), 25);
}

#[actix_web::test]
async fn a_frequency_cap_is_an_exclusion_segment_on_last_messaged_at() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let (campaign, ids) = campaign_of(&app, &key, 4).await;
    let recent = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Messaged this week", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"field": "last_messaged_at", "op": "in_last_days", "value": 7}}),
        )
        .await
        .expect(201);
    assert_eq!(recent["recipients"], 0);
    let send = freeze(&app, &key, campaign).await;
    app.post(
        &format!("/v1/sends/{send}/outcomes"),
        &key,
        json!({"outcomes": [{"contact_id": ids[0], "status": "sent"}, {"contact_id": ids[1], "status": "read"}]}),
    )
    .await
    .expect(200);
    // The dynamic segment followed the outcomes in the same transaction.
    let recent = app
        .get(&format!("/v1/segments/{}", id(&recent)), &key)
        .await
        .expect(200);
    assert_eq!(recent["recipients"], 2);
    let segment = app
        .get(&format!("/v1/campaigns/{campaign}"), &key)
        .await
        .expect(200)["segment_ids"][0]
        .clone();
    let summary = app
        .post(
            "/v1/audiences/resolve",
            &key,
            json!({"channel": "whatsapp", "segment_ids": [segment], "exclude_segment_ids": [id(&recent)]}),
        )
        .await
        .expect(200);
    assert_eq!(summary["eligible"], 2);
    assert_eq!(summary["excluded"]["by_exclusion"], 2);
    // The freeze is an event.
    let events = app
        .get("/v1/events?type=send.created", &key)
        .await
        .expect(200);
    assert_eq!(events["items"][0]["data"]["send_id"], send);
    assert_eq!(events["items"][0]["data"]["total"], 4);
}

#[actix_web::test]
async fn another_tenants_send_is_not_found() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let other = app.tenant_key().await;
    let (campaign, ids) = campaign_of(&app, &key, 2).await;
    let send = freeze(&app, &key, campaign).await;
    for path in [
        format!("/v1/sends/{send}"),
        format!("/v1/sends/{send}/recipients"),
        format!("/v1/sends/{send}/recipients.ndjson"),
        format!("/v1/campaigns/{campaign}/sends"),
    ] {
        app.get(&path, &other)
            .await
            .expect_problem(404, "not_found");
    }
    app.post(
        &format!("/v1/campaigns/{campaign}/sends"),
        &other,
        json!({}),
    )
    .await
    .expect_problem(404, "not_found");
    app.post(
        &format!("/v1/sends/{send}/outcomes"),
        &other,
        json!({"outcomes": [{"contact_id": ids[0], "status": "sent"}]}),
    )
    .await
    .expect_problem(404, "not_found");
    // The other tenant's same contact ids are not recipients of its own sends either.
    let (other_campaign, _) = campaign_of(&app, &other, 1).await;
    let other_send = id(&app
        .post(
            &format!("/v1/campaigns/{other_campaign}/sends"),
            &other,
            json!({}),
        )
        .await
        .expect(201));
    let report = app
        .post(
            &format!("/v1/sends/{other_send}/outcomes"),
            &other,
            json!({"outcomes": [{"contact_id": ids[0], "status": "sent"}]}),
        )
        .await
        .expect(200);
    assert_eq!(report["rejected"][0]["code"], "not_a_recipient");
    let mine = app
        .get(&format!("/v1/sends/{send}"), &key)
        .await
        .expect(200);
    assert_eq!(mine["progress"]["pending"], 2);
}

#[actix_web::test]
async fn past_the_horizon_a_send_keeps_its_final_counts_and_its_day_is_dropped() {
    use diesel::connection::SimpleConnection;
    use segments::config::Config;
    use segments::service::sends::upkeep;
    use segments::AppState;

    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let state = AppState::new(Config::for_database(&app.database.url));
    upkeep(&state.env, 90).await.unwrap();
    let mut conn = app.database.connection();
    let today = chrono::Utc::now().date_naive();
    let partition = |day: chrono::NaiveDate| format!("send_recipients_p{}", day.format("%Y%m%d"));
    let exists = |conn: &mut diesel::PgConnection, table: &str| {
        crate::write_races::count(
            conn,
            &format!("SELECT count(*) AS count FROM pg_class WHERE relname = '{table}' AND $1 > 0"),
            1,
        ) == 1
    };
    assert!(
        exists(&mut conn, &partition(today)),
        "today's partition is made ahead"
    );
    assert!(exists(&mut conn, &partition(today + chrono::Days::new(3))));

    let (campaign, ids) = campaign_of(&app, &key, 3).await;
    let mut sends = Vec::new();
    for _ in 0..2 {
        let send = freeze(&app, &key, campaign).await;
        app.post(
            &format!("/v1/sends/{send}/outcomes"),
            &key,
            json!({"outcomes": [{"contact_id": ids[0], "status": "read"}]}),
        )
        .await
        .expect(200);
        sends.push(send);
    }
    // Age both sends by 100 days: one into a day that has its partition, one into the
    // default partition.
    let old = today - chrono::Days::new(100);
    conn.batch_execute(&format!(
        "CREATE TABLE {p} PARTITION OF send_recipients FOR VALUES FROM ('{old}') TO ('{next}');
         UPDATE sends SET created_on = '{old}' WHERE id = {a};
         UPDATE send_recipients SET created_on = '{old}' WHERE send_id = {a};
         UPDATE sends SET created_on = '{older}' WHERE id = {b};
         UPDATE send_recipients SET created_on = '{older}' WHERE send_id = {b};",
        p = partition(old),
        next = old + chrono::Days::new(1),
        older = old - chrono::Days::new(1),
        a = sends[0],
        b = sends[1],
    ))
    .unwrap();
    assert_eq!(upkeep(&state.env, 90).await.unwrap(), 2);
    assert!(
        !exists(&mut conn, &partition(old)),
        "the old day is dropped whole"
    );
    let left = crate::write_races::count(
        &mut conn,
        "SELECT count(*) AS count FROM send_recipients WHERE $1 > 0",
        1,
    );
    assert_eq!(left, 0, "the default partition's old rows are deleted too");
    for send in &sends {
        let read = app
            .get(&format!("/v1/sends/{send}"), &key)
            .await
            .expect(200);
        assert_eq!(
            read["progress"],
            json!({"total": 3, "pending": 2, "sent": 0, "delivered": 0, "read": 1, "failed": 0, "skipped": 0})
        );
        assert!(read["expired_at"].is_string());
        app.get(&format!("/v1/sends/{send}/recipients"), &key)
            .await
            .expect_problem(410, "send_expired");
        app.post(
            &format!("/v1/sends/{send}/outcomes"),
            &key,
            json!({"outcomes": [{"contact_id": ids[1], "status": "sent"}]}),
        )
        .await
        .expect_problem(410, "send_expired");
    }
    // Run again: nothing left to expire.
    assert_eq!(upkeep(&state.env, 90).await.unwrap(), 0);
}

/// `last_messaged_at` lives in a table of its own: a contact deleted after the freeze
/// still takes its outcome (the send is a record) but gets no row there, and a contact's
/// row goes with the contact.
#[actix_web::test]
async fn last_messaged_at_goes_with_its_contact() {
    use diesel::prelude::*;
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let (campaign, ids) = campaign_of(&app, &key, 3).await;
    let send = freeze(&app, &key, campaign).await;
    app.delete(&format!("/v1/contacts/{}", ids[2]), &key)
        .await
        .expect(204);
    let report = app
        .post(
            &format!("/v1/sends/{send}/outcomes"),
            &key,
            json!({"outcomes": [
                {"contact_id": ids[0], "status": "sent", "at": "2026-03-02T10:00:00Z"},
                {"contact_id": ids[1], "status": "sent", "at": "2026-03-02T10:00:00Z"},
                {"contact_id": ids[2], "status": "sent", "at": "2026-03-02T10:00:00Z"},
            ]}),
        )
        .await
        .expect(200);
    assert_eq!(
        report,
        json!({"updated": 3, "unchanged": 0, "rejected": []})
    );
    let messaged = || {
        diesel::sql_query("SELECT contact_id AS id FROM contact_last_messaged ORDER BY contact_id")
            .load::<Messaged>(&mut app.database.connection())
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect::<Vec<i64>>()
    };
    assert_eq!(messaged(), vec![ids[0], ids[1]]);
    app.delete(&format!("/v1/contacts/{}", ids[0]), &key)
        .await
        .expect(204);
    assert_eq!(messaged(), vec![ids[1]]);
    let kept = app
        .get(&format!("/v1/contacts/{}", ids[1]), &key)
        .await
        .expect(200);
    assert_eq!(kept["last_messaged_at"], "2026-03-02T10:00:00Z");
}

#[derive(diesel::QueryableByName)]
struct Messaged {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}
