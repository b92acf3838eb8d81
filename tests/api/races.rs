//! Writes that race: many rounds at once, each asserting the end state.

use diesel::prelude::*;
use futures_util::future::join_all;
use serde_json::json;

use crate::harness::{id, spawn_app};

#[actix_web::test]
async fn concurrent_writes_cannot_together_pass_the_endpoint_limit() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"endpoint_limit": 3})).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(id(&app
            .contact(&key, json!({"name": format!("C{n}")}))
            .await));
    }
    let a = app.segment(&key, "A", "whatsapp").await;
    let b = app.segment(&key, "B", "whatsapp").await;
    let replies = join_all([
        app.post(
            &format!("/v1/segments/{}/members", id(&a)),
            &key,
            json!({"contact_ids": &ids[..2]}),
        ),
        app.post(
            &format!("/v1/segments/{}/members", id(&b)),
            &key,
            json!({"contact_ids": &ids[2..]}),
        ),
    ])
    .await;
    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status.as_u16()).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&422),
        "{statuses:?}"
    );
    assert!(
        app.get("/v1/tenant", &key).await.expect(200)["usage"]["endpoints_used"]
            .as_i64()
            .unwrap()
            <= 3
    );
}

#[actix_web::test]
async fn forty_concurrent_writers_leave_an_exact_member_count() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(id(&app
            .contact(&key, json!({"name": format!("C{n}")}))
            .await));
    }
    let segment = app.segment(&key, "Busy", "whatsapp").await;
    let path = format!("/v1/segments/{}/members", id(&segment));
    let writes = (0..40).map(|writer| {
        // Overlapping windows of ids; every third writer removes instead of adding.
        let window: Vec<i64> = ids
            .iter()
            .cycle()
            .skip(writer * 7 % 30)
            .take(12)
            .copied()
            .collect();
        let method = if writer % 3 == 0 {
            actix_web::http::Method::DELETE
        } else {
            actix_web::http::Method::POST
        };
        let (app, key, path) = (&app, key.clone(), path.clone());
        async move {
            app.call(
                method,
                &path,
                Some(&key),
                Some(json!({"contact_ids": window})),
            )
            .await
            .expect(200)
        }
    });
    join_all(writes).await;
    let mut connection = app.database.connection();
    use segments::db::schema::segment_members::dsl as m;
    let in_table: i64 = m::segment_members
        .filter(m::segment_id.eq(id(&segment)))
        .count()
        .get_result(&mut connection)
        .unwrap();
    let read = app
        .get(&format!("/v1/segments/{}", id(&segment)), &key)
        .await
        .expect(200);
    assert_eq!(read["recipients"].as_i64().unwrap(), in_table);
    assert!(in_table > 0);
}

/// The segment's stored members are exactly the contacts its filter matches now.
fn assert_members_exact(conn: &mut PgConnection, tenant_id: i64, segment_id: i64) {
    use segments::db::schema::{contacts, segment_members, segments as segments_table};
    let filter: serde_json::Value = segments_table::table
        .find((tenant_id, segment_id))
        .select(segments_table::filter.assume_not_null())
        .first(conn)
        .unwrap();
    let node = segments::service::filters::parse_filter(
        conn,
        tenant_id,
        &filter,
        "filter",
        Some(segment_id),
    )
    .unwrap();
    let today = chrono::Utc::now().date_naive();
    let condition = segments::db::filter::Compiler { tenant_id, today }.compile(&node);
    let mut matching: Vec<i64> = contacts::table
        .filter(contacts::tenant_id.eq(tenant_id))
        .filter(condition)
        .select(contacts::id)
        .order(contacts::id)
        .load(conn)
        .unwrap();
    let mut stored: Vec<i64> = segment_members::table
        .filter(segment_members::tenant_id.eq(tenant_id))
        .filter(segment_members::segment_id.eq(segment_id))
        .select(segment_members::contact_id)
        .load(conn)
        .unwrap();
    stored.sort_unstable();
    matching.sort_unstable();
    assert_eq!(stored, matching, "members of segment {segment_id}");
    let recipients: i64 = segments_table::table
        .find((tenant_id, segment_id))
        .select(segments_table::recipients)
        .first(conn)
        .unwrap();
    assert_eq!(
        recipients as usize,
        stored.len(),
        "count of segment {segment_id}"
    );
}

#[actix_web::test]
async fn dynamic_members_stay_exact_while_contacts_and_static_members_change_at_once() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let city = if n % 2 == 0 { "Milan" } else { "Rome" };
        ids.push(id(&app
            .contact(
                &key,
                json!({"name": format!("C{n}"), "attributes": {"city": city}}),
            )
            .await));
    }
    let vip = id(&app.segment(&key, "VIP", "whatsapp").await);
    let milan_vip = id(&app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Milan VIP", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"all": [{"field": "segment", "op": "in", "value": vip},
                                      {"field": "attributes.city", "op": "eq", "value": "Milan"}]}}),
        )
        .await
        .expect(201));
    let not_milan_vip = id(&app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Not Milan VIP", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"not": {"field": "segment", "op": "in", "value": milan_vip}}}),
        )
        .await
        .expect(201));
    for round in 0..40 {
        let writes = (0..12).map(|writer| {
            let (app, key) = (&app, key.clone());
            let contact = ids[(writer * 7 + round * 3) % ids.len()];
            let others: Vec<i64> = ids
                .iter()
                .skip((writer + round) % 5)
                .step_by(3)
                .copied()
                .collect();
            async move {
                let reply = match writer % 3 {
                    0 => {
                        let city = if (writer + round) % 2 == 0 {
                            "Milan"
                        } else {
                            "Rome"
                        };
                        app.patch(
                            &format!("/v1/contacts/{contact}"),
                            &key,
                            json!({"attributes": {"city": city}}),
                        )
                        .await
                    }
                    1 => {
                        app.post(
                            &format!("/v1/segments/{vip}/members"),
                            &key,
                            json!({"contact_ids": others}),
                        )
                        .await
                    }
                    _ => {
                        app.call(
                            actix_web::http::Method::DELETE,
                            &format!("/v1/segments/{vip}/members"),
                            Some(&key),
                            Some(json!({"contact_ids": others})),
                        )
                        .await
                    }
                };
                reply.status.as_u16()
            }
        });
        let statuses = join_all(writes).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
        let mut conn = app.database.connection();
        assert_members_exact(&mut conn, tenant_id, milan_vip);
        assert_members_exact(&mut conn, tenant_id, not_milan_vip);
    }
}

#[actix_web::test]
async fn a_segment_being_named_and_deleted_at_once_never_leaves_a_dangling_reference() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    let user = id(&app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "User", "channel": "whatsapp", "kind": "dynamic",
                   "filter": {"field": "name", "op": "exists"}}),
        )
        .await
        .expect(201));
    let (mut named, mut deleted) = (0, 0);
    for round in 0..30 {
        let target = id(&app
            .segment(&key, &format!("Target {round}"), "whatsapp")
            .await);
        let (user_path, target_path) = (
            format!("/v1/segments/{user}"),
            format!("/v1/segments/{target}"),
        );
        let (patch, delete) = tokio::join!(
            app.patch(
                &user_path,
                &key,
                json!({"filter": {"field": "segment", "op": "in", "value": target}}),
            ),
            app.delete(&target_path, &key),
        );
        let (patch, delete) = (patch.status.as_u16(), delete.status.as_u16());
        let exists = app
            .get(&format!("/v1/segments/{target}"), &key)
            .await
            .status
            == 200;
        let filter = app
            .get(&format!("/v1/segments/{user}"), &key)
            .await
            .expect(200)["filter"]
            .clone();
        let names_target = filter["value"] == target;
        match (patch, delete) {
            (200, 409) => named += 1,
            (422, 204) => deleted += 1,
            other => panic!("round {round}: {other:?}"),
        }
        assert_eq!(exists, names_target, "round {round}: {filter}");
        assert!(
            !names_target || exists,
            "round {round}: a dangling reference"
        );
        // Free the target for the next round's reference.
        app.patch(
            &format!("/v1/segments/{user}"),
            &key,
            json!({"filter": {"field": "name", "op": "exists"}}),
        )
        .await
        .expect(200);
    }
    assert_eq!(named + deleted, 30);
}

#[actix_web::test]
async fn two_segments_saved_at_once_to_name_each_other_never_make_a_cycle() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for round in 0..20 {
        let mut pair = Vec::new();
        for side in ["A", "B"] {
            pair.push(id(&app
                .post(
                    "/v1/segments",
                    &key,
                    json!({"name": format!("{side}{round}"), "channel": "whatsapp", "kind": "dynamic",
                           "filter": {"field": "name", "op": "exists"}}),
                )
                .await
                .expect(201)));
        }
        let (path_a, path_b) = (
            format!("/v1/segments/{}", pair[0]),
            format!("/v1/segments/{}", pair[1]),
        );
        let (a, b) = tokio::join!(
            app.patch(
                &path_a,
                &key,
                json!({"filter": {"field": "segment", "op": "in", "value": pair[1]}}),
            ),
            app.patch(
                &path_b,
                &key,
                json!({"filter": {"field": "segment", "op": "in", "value": pair[0]}}),
            ),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 422], "round {round}");
    }
}
