use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

const WHATSAPP_WARNING: &str =
    "You have added recipient candidates to the segment who do not have a validated \
                                mobile number and therefore cannot be contacted via WhatsApp";

#[actix_web::test]
async fn whatsapp_adds_a_contact_without_a_valid_phone_with_the_warning() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let valid = app
        .contact(&key, json!({"name": "Valid", "phone": "333 123 4567"}))
        .await;
    let invalid = app
        .contact(&key, json!({"name": "Invalid", "phone": "12"}))
        .await;
    let segment = app.segment(&key, "WA", "whatsapp").await;
    let report = app
        .post(
            &format!("/v1/segments/{}/members", id(&segment)),
            &key,
            json!({"contact_ids": [id(&valid), id(&invalid), id(&valid)]}),
        )
        .await
        .expect(200);
    assert_eq!(report["added"], 2);
    assert_eq!(report["already_members"], 0);
    assert_eq!(report["rejected"], json!([]));
    assert_eq!(report["recipients"], 2);
    assert_eq!(
        report["warnings"],
        json!([{"code": "no_validated_mobile", "message": WHATSAPP_WARNING, "contact_ids": [id(&invalid)], "count": 1}])
    );
    let again = app
        .post(
            &format!("/v1/segments/{}/members", id(&segment)),
            &key,
            json!({"contact_ids": [id(&valid)]}),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            again["added"].as_i64(),
            again["already_members"].as_i64(),
            again["recipients"].as_i64()
        ),
        (Some(0), Some(1), Some(2))
    );
    let read = app
        .get(&format!("/v1/segments/{}", id(&segment)), &key)
        .await
        .expect(200);
    assert_eq!(read["recipients"], 2);
    assert!(read["updated_at"].as_str() > segment["updated_at"].as_str());
}

#[actix_web::test]
async fn sms_email_and_consent_rules_reject_with_their_codes() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"require_privacy_consent": true})).await;
    let no_phone = app
        .contact(
            &key,
            json!({"name": "A", "email": "a@example.com", "privacy_consent": true}),
        )
        .await;
    let no_email = app
        .contact(
            &key,
            json!({"name": "B", "phone": "333 000 0001", "privacy_consent": true}),
        )
        .await;
    let no_consent = app
        .contact(
            &key,
            json!({"name": "C", "phone": "333 000 0002", "email": "c@example.com"}),
        )
        .await;
    let foreign = {
        let other = app.tenant_key().await;
        app.contact(&other, json!({"name": "Other tenant's"})).await
    };
    let ids = json!({"contact_ids": [id(&no_phone), id(&no_email), id(&no_consent), id(&foreign), 999_999_999]});
    let codes = |report: &Value| -> Vec<(i64, String)> {
        report["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["contact_id"].as_i64().unwrap(),
                    r["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let sms = app.segment(&key, "SMS", "sms").await;
    let report = app
        .post(
            &format!("/v1/segments/{}/members", id(&sms)),
            &key,
            ids.clone(),
        )
        .await
        .expect(200);
    assert_eq!(report["added"], 1);
    let mut rejected = codes(&report);
    rejected.sort();
    let mut expected = vec![
        (id(&no_phone), "no_validated_mobile".to_owned()),
        (id(&no_consent), "no_privacy_consent".to_owned()),
        (id(&foreign), "contact_not_found".to_owned()),
        (999_999_999, "contact_not_found".to_owned()),
    ];
    expected.sort();
    assert_eq!(rejected, expected);
    assert_eq!(report["rejected_total"], 4);
    let email = app.segment(&key, "Email", "email").await;
    let report = app
        .post(
            &format!("/v1/segments/{}/members", id(&email)),
            &key,
            ids.clone(),
        )
        .await
        .expect(200);
    assert_eq!(report["added"], 1);
    assert!(codes(&report).contains(&(id(&no_email), "no_email".to_owned())));
    let whatsapp = app.segment(&key, "WA", "whatsapp").await;
    let report = app
        .post(
            &format!("/v1/segments/{}/members", id(&whatsapp)),
            &key,
            ids,
        )
        .await
        .expect(200);
    // With consent required, WhatsApp refuses the contact without it, and warns for the one without a phone.
    assert_eq!(report["added"], 2);
    assert!(codes(&report).contains(&(id(&no_consent), "no_privacy_consent".to_owned())));
    assert_eq!(report["warnings"][0]["contact_ids"], json!([id(&no_phone)]));
}

#[actix_web::test]
async fn id_lists_are_limited_to_ten_thousand() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = app.segment(&key, "Big", "whatsapp").await;
    let ids: Vec<i64> = (1..=10_001).collect();
    let problem = app
        .post(
            &format!("/v1/segments/{}/members", id(&segment)),
            &key,
            json!({"contact_ids": ids}),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "contact_ids");
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("10000"));
    app.post(
        &format!("/v1/segments/{}/members", id(&segment)),
        &key,
        json!({"contact_ids": []}),
    )
    .await
    .expect_problem(422, "validation_failed");
}

#[actix_web::test]
async fn the_endpoint_limit_refuses_a_write_whole_and_counts_channels() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"endpoint_limit": 3})).await;
    let mut contacts = Vec::new();
    for n in 0..4 {
        contacts.push(id(&app
            .contact(
                &key,
                json!({"name": format!("C{n}"), "phone": format!("333 000 000{n}")}),
            )
            .await));
    }
    let first = app.segment(&key, "First", "whatsapp").await;
    let second = app.segment(&key, "Second", "whatsapp").await;
    let sms = app.segment(&key, "Texts", "sms").await;
    let add = |segment: &Value, ids: &[i64]| {
        let path = format!("/v1/segments/{}/members", id(segment));
        let body = json!({"contact_ids": ids});
        let key = key.clone();
        let app = &app;
        async move { app.post(&path, &key, body).await }
    };
    add(&first, &contacts[..2]).await.expect(200);
    // The same contacts in another segment of the same channel are no new endpoints.
    add(&second, &contacts[..2]).await.expect(200);
    let problem = add(&second, &contacts[1..4])
        .await
        .expect_problem(422, "endpoint_limit_exceeded");
    assert_eq!(
        (
            problem["used"].as_i64(),
            problem["limit"].as_i64(),
            problem["requested"].as_i64()
        ),
        (Some(2), Some(3), Some(2))
    );
    let second_now = app
        .get(&format!("/v1/segments/{}", id(&second)), &key)
        .await
        .expect(200);
    assert_eq!(second_now["recipients"], 2, "nothing was added");
    add(&second, &contacts[2..3]).await.expect(200);
    // Another channel is another endpoint.
    add(&sms, &contacts[..1])
        .await
        .expect_problem(422, "endpoint_limit_exceeded");
    let usage = app.get("/v1/tenant", &key).await.expect(200)["usage"].clone();
    assert_eq!(usage, json!({"endpoints_used": 3, "endpoint_limit": 3}));
}

#[actix_web::test]
async fn from_search_adds_every_match_under_the_same_rules() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    for n in 0..25 {
        let phone = if n % 5 == 0 {
            "bad".to_owned()
        } else {
            format!("333 100 00{n:02}")
        };
        app.contact(
            &key,
            json!({"name": format!("Lead {n}"), "phone": phone, "tags": ["fair"]}),
        )
        .await;
    }
    app.contact(&key, json!({"name": "Not tagged", "phone": "333 200 0000"}))
        .await;
    let sms = app.segment(&key, "Fair SMS", "sms").await;
    let report = app
        .post(
            &format!("/v1/segments/{}/members/from-search", id(&sms)),
            &key,
            json!({"tag": "fair"}),
        )
        .await
        .expect(200);
    assert_eq!(report["added"], 20);
    assert_eq!(report["rejected_total"], 5);
    assert!(report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["code"] == "no_validated_mobile"));
    assert_eq!(report["recipients"], 20);
    let whatsapp = app.segment(&key, "Leads WA", "whatsapp").await;
    let report = app
        .post(
            &format!("/v1/segments/{}/members/from-search", id(&whatsapp)),
            &key,
            json!({"search": "lead 1"}),
        )
        .await
        .expect(200);
    // "Lead 1" and "Lead 10".."Lead 19": 11 contacts, "Lead 10" and "Lead 15" without a valid phone.
    assert_eq!(report["added"], 11);
    assert_eq!(report["warnings"][0]["count"], 2);
    let dynamic_free = app
        .post(
            &format!("/v1/segments/{}/members/from-search", id(&whatsapp)),
            &key,
            json!({"filter": {}}),
        )
        .await;
    assert_eq!(dynamic_free.status, 422);
}

#[actix_web::test]
async fn memberships_add_many_contacts_to_many_segments() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let a = app
        .contact(&key, json!({"name": "A", "phone": "333 000 0001"}))
        .await;
    let b = app.contact(&key, json!({"name": "B"})).await;
    let wa = app.segment(&key, "WA", "whatsapp").await;
    let sms = app.segment(&key, "SMS", "sms").await;
    let result = app
        .post(
            "/v1/segments/memberships",
            &key,
            json!({"segment_ids": [id(&wa), id(&sms)], "contact_ids": [id(&a), id(&b)]}),
        )
        .await
        .expect(200);
    let reports = result["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    let report_of = |segment: &Value| {
        reports
            .iter()
            .find(|r| r["segment_id"] == segment["id"])
            .unwrap()
            .clone()
    };
    assert_eq!(report_of(&wa)["added"], 2);
    assert_eq!(report_of(&sms)["added"], 1);
    assert_eq!(report_of(&sms)["rejected"][0]["contact_id"], id(&b));
    let segments_of_a = app
        .get(&format!("/v1/contacts/{}/segments", id(&a)), &key)
        .await
        .expect(200);
    assert_eq!(segments_of_a["items"].as_array().unwrap().len(), 2);
    app.post(
        "/v1/segments/memberships",
        &key,
        json!({"segment_ids": [id(&wa), 987654], "contact_ids": [id(&a)]}),
    )
    .await
    .expect_problem(404, "not_found");
}

#[actix_web::test]
async fn deleting_contacts_fixes_counts_and_deleting_segments_keeps_contacts() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let contact = app.contact(&key, json!({"name": "Leaving"})).await;
    let stays = app.contact(&key, json!({"name": "Staying"})).await;
    let one = app.segment(&key, "One", "whatsapp").await;
    let two = app.segment(&key, "Two", "email").await;
    app.post(
        &format!("/v1/segments/{}/members", id(&one)),
        &key,
        json!({"contact_ids": [id(&contact), id(&stays)]}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/v1/contacts/{}", id(&contact)),
        &key,
        json!({"email": "l@example.com"}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/segments/{}/members", id(&two)),
        &key,
        json!({"contact_ids": [id(&contact)]}),
    )
    .await
    .expect(200);
    app.delete(&format!("/v1/contacts/{}", id(&contact)), &key)
        .await
        .expect(204);
    assert_eq!(
        app.get(&format!("/v1/segments/{}", id(&one)), &key)
            .await
            .expect(200)["recipients"],
        1
    );
    assert_eq!(
        app.get(&format!("/v1/segments/{}", id(&two)), &key)
            .await
            .expect(200)["recipients"],
        0
    );
    app.delete(&format!("/v1/segments/{}", id(&one)), &key)
        .await
        .expect(204);
    app.get(&format!("/v1/contacts/{}", id(&stays)), &key)
        .await
        .expect(200);
}

#[actix_web::test]
async fn another_tenants_segment_cannot_be_written_or_read() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let other = app.tenant_key().await;
    let contact = app.contact(&other, json!({"name": "Theirs"})).await;
    let segment = app.segment(&key, "Mine", "whatsapp").await;
    let base = format!("/v1/segments/{}", id(&segment));
    app.post(
        &format!("{base}/members"),
        &other,
        json!({"contact_ids": [id(&contact)]}),
    )
    .await
    .expect_problem(404, "not_found");
    app.get(&format!("{base}/members"), &other)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("{base}/candidates"), &other)
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("{base}/members.csv"), &other)
        .await
        .expect_problem(404, "not_found");
    app.post(&format!("{base}/members/from-search"), &other, json!({}))
        .await
        .expect_problem(404, "not_found");
}
