//! Reading a segment's members: pages, candidates and the CSV export.

use serde_json::json;

use crate::harness::{id, spawn_app};

#[actix_web::test]
async fn members_candidates_and_csv_export_show_the_right_contacts() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let mut ids = Vec::new();
    for (name, phone) in [
        ("Anna", "333 000 0001"),
        ("Bruno", "1"),
        ("Carla, \"CC\"", "333 000 0003"),
    ] {
        ids.push(id(&app.contact(&key, json!({"name": name, "phone": phone, "opted_out": name == "Bruno", "tags": ["a", "b"]})).await));
    }
    let outsider = app.contact(&key, json!({"name": "Outsider"})).await;
    let segment = app.segment(&key, "Team", "whatsapp").await;
    let base = format!("/v1/segments/{}", id(&segment));
    app.post(
        &format!("{base}/members"),
        &key,
        json!({"contact_ids": ids}),
    )
    .await
    .expect(200);
    let members = app.get(&format!("{base}/members"), &key).await.expect(200);
    assert_eq!(members["total"], 3);
    let bruno = &members["items"][1];
    assert_eq!(
        (
            bruno["name"].as_str(),
            bruno["opted_out"].as_bool(),
            bruno["phone_valid"].as_bool()
        ),
        (Some("Bruno"), Some(true), Some(false))
    );
    assert!(members["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|member| member["added_at"].is_string()));
    let last = app
        .get(&format!("{base}/members?per_page=2&page=2"), &key)
        .await
        .expect(200);
    assert_eq!(
        (last["items"][0]["id"].as_i64(), last["total"].as_i64()),
        (Some(ids[2]), Some(3))
    );
    assert!(last["items"][0]["added_at"].is_string(), "{last}");
    // Past the end: no rows, and still the total.
    for (list, total) in [("members", 3), ("candidates", 1)] {
        let past = app.get(&format!("{base}/{list}?page=9"), &key).await;
        let past = past.expect(200);
        assert_eq!(
            (past["items"].clone(), past["total"].clone()),
            (json!([]), json!(total)),
            "{list}"
        );
    }
    assert_eq!(
        app.get(&format!("{base}/members?search=carla"), &key)
            .await
            .expect(200)["total"],
        1
    );
    let candidates = app
        .get(&format!("{base}/candidates"), &key)
        .await
        .expect(200);
    assert_eq!(candidates["total"], 1);
    assert_eq!(candidates["items"][0]["id"], outsider["id"]);
    let csv = app.get(&format!("{base}/members.csv"), &key).await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type.starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[2][2], "Carla, \"CC\"");
    assert_eq!(&rows[0][4], "+393330000001");
    assert_eq!(&rows[0][10], "a|b");
    app.delete(&format!("{base}/members"), &key)
        .await
        .expect_problem(415, "unsupported_media_type");
    let removed = app
        .call(
            actix_web::http::Method::DELETE,
            &format!("{base}/members"),
            Some(&key),
            Some(json!({"contact_ids": [ids[0], id(&outsider)]})),
        )
        .await
        .expect(200);
    assert_eq!(removed, json!({"removed": 1, "recipients": 2}));
}
