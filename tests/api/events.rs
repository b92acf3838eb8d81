//! Events: each kind of write records exactly its changes, dynamic segments' enters and
//! leaves included, and a reader following the feed never misses one.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde_json::{json, Value};

use segments::config::Config;
use segments::core::clock::Clock;
use segments::service::dynamic::evaluate_all_due;
use segments::service::{self, events::Purged, Env};
use segments::AppState;

use crate::harness::{id, spawn_app, spawn_app_with_clock, App, TestApp};
use crate::imports::import_csv;

/// Every event after `after`, following the pages.
pub async fn events_after<S: App>(app: &TestApp<S>, key: &str, mut after: i64) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let page = app
            .get(&format!("/v1/events?after={after}&limit=1000"), key)
            .await
            .expect(200);
        let items = page["items"].as_array().unwrap().clone();
        if let Some(last) = items.last() {
            after = id(last);
        }
        events.extend(items);
        if page["next_after"].is_null() {
            return events;
        }
    }
}

/// The last event's id (0 before the first).
async fn cursor<S: App>(app: &TestApp<S>, key: &str) -> i64 {
    events_after(app, key, 0).await.last().map_or(0, id)
}

/// Events as `(type, segment_id, contact_id)`, segment and contact as given or null.
fn summary(events: &[Value]) -> Vec<(String, Value, Value)> {
    events
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap().to_owned(),
                event["data"]["segment_id"].clone(),
                event["data"]["contact_id"].clone(),
            )
        })
        .collect()
}

fn event(kind: &str, segment: Option<i64>, contact: Option<i64>) -> (String, Value, Value) {
    (kind.to_owned(), json!(segment), json!(contact))
}

#[actix_web::test]
async fn each_write_records_its_changes_and_nothing_else() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    let milan = app
        .dynamic_segment(
            &key,
            "Milan",
            json!({"field": "attributes.city", "op": "eq", "value": "Milan"}),
        )
        .await;
    let start = cursor(&app, &key).await;

    // Created, matching: created, then entering.
    let anna = id(&app
        .contact(
            &key,
            json!({"name": "Anna", "phone": "333 100 0001", "attributes": {"city": "Milan"}}),
        )
        .await);
    // Edited without a change: nothing at all.
    app.patch(
        &format!("/v1/contacts/{anna}"),
        &key,
        json!({"name": "Anna"}),
    )
    .await
    .expect(200);
    app.put(
        "/v1/contacts/by-external-id/none",
        &key,
        json!({"name": "Bruno", "phone": "333 100 0002"}),
    )
    .await
    .expect(201);
    let bruno = id(&app.get("/v1/contacts?search=Bruno", &key).await.expect(200)["items"][0]);
    app.put(
        "/v1/contacts/by-external-id/none",
        &key,
        json!({"name": "Bruno", "phone": "333 100 0002"}),
    )
    .await
    .expect(200);
    // Moving away: updated, then leaving.
    app.patch(
        &format!("/v1/contacts/{anna}"),
        &key,
        json!({"attributes": {"city": "Rome"}}),
    )
    .await
    .expect(200);
    // A batch: one changed, one unchanged, one new and matching.
    app.post(
        "/v1/contacts/batch",
        &key,
        json!({"contacts": [
            {"external_id": "none", "name": "Bruno", "phone": "333 100 0002", "attributes": {"city": "Milan"}},
            {"name": "Anna", "phone": "333 100 0001"},
            {"name": "Carla", "phone": "333 100 0003", "attributes": {"city": "Milan"}}
        ]}),
    )
    .await
    .expect(200);
    let carla = id(&app.get("/v1/contacts?search=Carla", &key).await.expect(200)["items"][0]);
    // Static members: added, added again (nothing), removed.
    let list = id(&app.segment(&key, "Shortlist", "whatsapp").await);
    for _ in 0..2 {
        app.post(
            &format!("/v1/segments/{list}/members"),
            &key,
            json!({"contact_ids": [anna]}),
        )
        .await
        .expect(200);
    }
    app.call(
        actix_web::http::Method::DELETE,
        &format!("/v1/segments/{list}/members"),
        Some(&key),
        Some(json!({"contact_ids": [anna, bruno]})),
    )
    .await
    .expect(200);
    // Deleting a member: it leaves every segment, then is deleted.
    app.delete(&format!("/v1/contacts/{carla}"), &key)
        .await
        .expect(204);

    let events = events_after(&app, &key, start).await;
    let (a, b, c) = (Some(anna), Some(bruno), Some(carla));
    assert_eq!(
        summary(&events),
        vec![
            event("contact.created", None, a),
            event("segment.member_added", Some(milan), a),
            event("contact.created", None, b),
            event("contact.updated", None, a),
            event("segment.member_removed", Some(milan), a),
            event("contact.updated", None, b),
            event("contact.created", None, c),
            event("segment.member_added", Some(milan), b),
            event("segment.member_added", Some(milan), c),
            event("segment.member_added", Some(list), a),
            event("segment.member_removed", Some(list), a),
            event("segment.member_removed", Some(milan), c),
            event("contact.deleted", None, c),
        ]
    );
    let ids: Vec<i64> = events.iter().map(id).collect();
    assert_eq!(ids, (start + 1..=start + 13).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e["occurred_at"].is_string()));

    // Filtered by type.
    let removed = app
        .get(
            &format!("/v1/events?after={start}&type=segment.member_removed"),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(removed["items"].as_array().unwrap().len(), 3);
    assert_eq!(removed["next_after"], Value::Null);
    app.get("/v1/events?type=contact.merged", &key)
        .await
        .expect(400);
    // Deleting an attribute changes the contacts that held a value for it. (The dynamic
    // segment naming it goes first: a named attribute cannot be deleted.)
    app.delete(&format!("/v1/segments/{milan}"), &key)
        .await
        .expect(204);
    let start = cursor(&app, &key).await;
    app.delete("/v1/attributes/city", &key).await.expect(204);
    let mut updated = summary(&events_after(&app, &key, start).await);
    updated.sort_by_key(|moved| format!("{moved:?}"));
    assert_eq!(
        updated,
        vec![
            event("contact.updated", None, a),
            event("contact.updated", None, b)
        ]
    );
    // Another tenant sees none of it.
    let other = app.tenant_key().await;
    assert!(events_after(&app, &other, 0).await.is_empty());
}

#[actix_web::test]
async fn imports_filters_references_and_the_date_move_dynamic_members_with_events() {
    let today = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();
    let app = spawn_app_with_clock(Clock::Fixed(today)).await;
    let key = app.tenant_key().await;
    app.attributes(
        &key,
        &[
            ("city", "City", "text"),
            ("birthdate", "Birth date", "date"),
        ],
    )
    .await;
    let list = id(&app.segment(&key, "Imported", "whatsapp").await);
    // Names the static list: members of the list who live in Milan.
    let named = id(&app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Imported in Milan", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"all": [{"field": "segment", "op": "in", "value": list},
                                      {"field": "attributes.city", "op": "eq", "value": "Milan"}]}}),
        )
        .await
        .expect(201));
    let birthday = id(&app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Birthday today", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"field": "attributes.birthdate", "op": "anniversary_today"}}),
        )
        .await
        .expect(201));
    let start = cursor(&app, &key).await;

    // An import: contacts created, added to the list, entering the segment naming it;
    // then `import.finished`.
    let csv = "phone,name,City,birthdate\n\
               3332000001,Dario,Milan,1990-03-14\n\
               3332000002,Elena,Rome,1985-03-15\n";
    let report = import_csv(&app, list, &key, "", csv.as_bytes())
        .await
        .expect(200);
    let contacts = app
        .get("/v1/contacts?sort=created_at", &key)
        .await
        .expect(200);
    let find = |name: &str| {
        contacts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(id)
            .unwrap()
    };
    let (dario, elena) = (find("Dario"), find("Elena"));
    let events = events_after(&app, &key, start).await;
    let kinds = summary(&events);
    let (d, e) = (Some(dario), Some(elena));
    for expected in [
        event("contact.created", None, d),
        event("contact.created", None, e),
        event("segment.member_added", Some(list), d),
        event("segment.member_added", Some(list), e),
        event("segment.member_added", Some(named), d),
        event("segment.member_added", Some(birthday), d),
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing from {kinds:?}"
        );
    }
    assert_eq!(kinds.len(), 7, "{kinds:?}");
    let finished = events.last().unwrap();
    assert_eq!(finished["type"], "import.finished");
    assert_eq!(finished["data"]["segment_id"], list);
    assert_eq!(finished["data"]["import_id"], report["import_id"]);
    assert_eq!(finished["data"]["status"], "succeeded");
    assert_eq!(finished["data"]["added"], 2);
    assert_eq!(finished["data"]["contacts_created"], 2);
    // Each contact's own events come before the memberships that follow from them.
    let position = |wanted: &(String, Value, Value)| kinds.iter().position(|k| k == wanted);
    assert!(
        position(&event("segment.member_added", Some(list), d))
            < position(&event("segment.member_added", Some(named), d))
    );

    // Leaving the list leaves the segment that names it.
    let start = cursor(&app, &key).await;
    app.call(
        actix_web::http::Method::DELETE,
        &format!("/v1/segments/{list}/members"),
        Some(&key),
        Some(json!({"contact_ids": [dario]})),
    )
    .await
    .expect(200);
    assert_eq!(
        summary(&events_after(&app, &key, start).await),
        vec![
            event("segment.member_removed", Some(list), d),
            event("segment.member_removed", Some(named), d),
        ]
    );

    // A filter change: Rome instead of Milan. Dario (no longer in the list) stays out;
    // Elena enters.
    let start = cursor(&app, &key).await;
    app.patch(
        &format!("/v1/segments/{named}"),
        &key,
        json!({"filter": {"all": [{"field": "segment", "op": "in", "value": list},
                                  {"field": "attributes.city", "op": "eq", "value": "Rome"}]}}),
    )
    .await
    .expect(200);
    assert_eq!(
        summary(&events_after(&app, &key, start).await),
        vec![event("segment.member_added", Some(named), e)]
    );

    // The next day, the daily evaluation moves the birthday segment: Dario leaves, Elena
    // enters.
    let start = cursor(&app, &key).await;
    let tomorrow = AppState::with_clock(
        Config::for_database(&app.database.url),
        Clock::Fixed(today.succ_opt().unwrap()),
    );
    assert!(evaluate_all_due(&tomorrow.env).await.unwrap() >= 1);
    let mut moved = summary(&events_after(&app, &key, start).await);
    moved.sort_by_key(|moved| format!("{moved:?}"));
    assert_eq!(
        moved,
        vec![
            event("segment.member_added", Some(birthday), e),
            event("segment.member_removed", Some(birthday), d),
        ]
    );
    // Run again the same day: nothing moves, nothing is recorded.
    let start = cursor(&app, &key).await;
    evaluate_all_due(&tomorrow.env).await.unwrap();
    assert!(events_after(&app, &key, start).await.is_empty());
}

#[actix_web::test]
async fn a_reader_following_the_feed_during_concurrent_writes_misses_nothing() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let writers = 4;
    let per_writer = 15;
    for round in 0..5 {
        let start = cursor(&app, &key).await;
        let write = |writer: usize| {
            let (app, key) = (&app, key.clone());
            async move {
                for n in 0..per_writer {
                    let phone = format!("33{round}{writer}{n:06}");
                    app.post("/v1/contacts", &key, json!({"name": "W", "phone": phone}))
                        .await
                        .expect(201);
                }
            }
        };
        let read = async {
            let mut seen: Vec<i64> = Vec::new();
            let mut after = start;
            let wanted = (writers * per_writer) as usize;
            for _ in 0..2000 {
                let page = app
                    .get(&format!("/v1/events?after={after}&limit=7"), &key)
                    .await
                    .expect(200);
                for item in page["items"].as_array().unwrap() {
                    seen.push(id(item));
                    after = id(item);
                }
                if seen.len() >= wanted {
                    break;
                }
                actix_web::rt::task::yield_now().await;
            }
            seen
        };
        let (seen, ..) = tokio::join!(read, write(0), write(1), write(2), write(3));
        let expected: Vec<i64> = (start + 1..=start + (writers * per_writer) as i64).collect();
        assert_eq!(
            seen, expected,
            "round {round}: the reader skipped or repeated events"
        );
    }
}

#[actix_web::test]
async fn retention_drains_a_backlog_in_bounded_calls_and_keeps_recent_events() {
    let app = spawn_app().await;
    let mut conn = app.database.connection();
    // A backlog past retention (an outage's worth), and three events inside it.
    diesel::sql_query(
        "INSERT INTO events (tenant_id, id, type, occurred_at) \
         SELECT 1, n, 'contact.created', now() - interval '40 days' \
         FROM generate_series(1, 100005) AS n \
         UNION ALL SELECT 2, n, 'contact.created', now() - interval '1 day' \
         FROM generate_series(1, 3) AS n",
    )
    .execute(&mut conn)
    .unwrap();
    let env = Env::new(&Config::for_database(&app.database.url), Clock::System);

    let first = service::events::purge(&env, 30).await.unwrap();
    assert_eq!(
        first,
        Purged {
            deleted: 100_000,
            more: true
        }
    );
    let second = service::events::purge(&env, 30).await.unwrap();
    assert_eq!(
        second,
        Purged {
            deleted: 5,
            more: false
        }
    );
    #[derive(QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tenant_id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: Vec<Left> =
        diesel::sql_query("SELECT tenant_id, count(*) AS n FROM events GROUP BY tenant_id")
            .load(&mut conn)
            .unwrap();
    assert_eq!(
        left.iter().map(|l| (l.tenant_id, l.n)).collect::<Vec<_>>(),
        vec![(2, 3)]
    );
}
