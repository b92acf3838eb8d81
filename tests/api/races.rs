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
