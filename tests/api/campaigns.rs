use std::collections::BTreeSet;

use segments::core::types::Channel;
use segments::db::audience::Audience;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app};

/// One contact of the fixture and what the audience should make of it.
struct Person {
    name: &'static str,
    phone: Option<&'static str>,
    consent: bool,
    opted_out: bool,
    fair: bool,
    segments: &'static [&'static str],
}

const PEOPLE: &[Person] = &[
    Person {
        name: "c1",
        phone: Some("333 000 0001"),
        consent: true,
        opted_out: false,
        fair: false,
        segments: &["s1"],
    },
    Person {
        name: "c2",
        phone: Some("333 000 0002"),
        consent: true,
        opted_out: false,
        fair: false,
        segments: &["s1", "s2"],
    },
    Person {
        name: "c3",
        phone: Some("333 000 0003"),
        consent: true,
        opted_out: true,
        fair: false,
        segments: &["s2"],
    },
    Person {
        name: "c4",
        phone: None,
        consent: true,
        opted_out: false,
        fair: false,
        segments: &["s1"],
    },
    Person {
        name: "c5",
        phone: Some("333 000 0005"),
        consent: false,
        opted_out: false,
        fair: true,
        segments: &[],
    },
    Person {
        name: "c6",
        phone: Some("333 000 0006"),
        consent: true,
        opted_out: false,
        fair: false,
        segments: &["s1", "x"],
    },
    Person {
        name: "c7",
        phone: Some("333 000 0007"),
        consent: true,
        opted_out: true,
        fair: true,
        segments: &["x"],
    },
    Person {
        name: "c8",
        phone: Some("333 000 0008"),
        consent: true,
        opted_out: false,
        fair: true,
        segments: &[],
    },
    Person {
        name: "c9",
        phone: Some("333 000 0009"),
        consent: true,
        opted_out: false,
        fair: false,
        segments: &[],
    },
];

/// The audience computed here, from the fixture alone: included = s1 ∪ s2 ∪ (tag fair),
/// minus x, minus opted out, no consent and no phone, in that order of reasons.
fn expected() -> (BTreeSet<&'static str>, [i64; 5]) {
    let mut eligible = BTreeSet::new();
    let mut counts = [0; 5]; // total, by_exclusion, opted_out, no_consent, no_address
    for person in PEOPLE {
        let included = person.fair || person.segments.iter().any(|s| *s == "s1" || *s == "s2");
        if !included {
            continue;
        }
        counts[0] += 1;
        if person.segments.contains(&"x") {
            counts[1] += 1;
        } else if person.opted_out {
            counts[2] += 1;
        } else if !person.consent {
            counts[3] += 1;
        } else if person.phone.is_none() {
            counts[4] += 1;
        } else {
            eligible.insert(person.name);
        }
    }
    (eligible, counts)
}

#[actix_web::test]
async fn the_audience_adds_up_and_pages_and_streams_agree() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"require_privacy_consent": true})).await;
    let mut segments = std::collections::HashMap::new();
    for name in ["s1", "s2", "x"] {
        segments.insert(name, id(&app.segment(&key, name, "whatsapp").await));
    }
    let mut names = std::collections::HashMap::new();
    for person in PEOPLE {
        let contact = app
            .contact(&key, json!({"name": person.name, "phone": person.phone, "privacy_consent": person.consent,
                "opted_out": person.opted_out, "tags": if person.fair { json!(["fair"]) } else { json!([]) }}))
            .await;
        names.insert(id(&contact), person.name);
        for segment in person.segments {
            app.post(
                &format!("/v1/segments/{}/members", segments[segment]),
                &key,
                json!({"contact_ids": [id(&contact)]}),
            )
            .await
            .expect(200);
        }
    }
    let fair = app
        .post(
            "/v1/segments",
            &key,
            json!({"name": "Fair", "channel": "whatsapp", "kind": "dynamic",
            "filter": {"field": "tags", "op": "contains", "value": "fair"}}),
        )
        .await
        .expect(201);
    let campaign = app
        .post("/v1/campaigns", &key, json!({"name": "Spring", "channel": "whatsapp",
            "segment_ids": [segments["s1"], segments["s2"], id(&fair), segments["s1"]], "exclude_segment_ids": [segments["x"]]}))
        .await
        .expect(201);
    assert_eq!(
        campaign["segment_ids"],
        json!([segments["s1"], segments["s2"], id(&fair)])
    );
    let base = format!("/v1/campaigns/{}", id(&campaign));

    let (eligible, [total, by_exclusion, opted_out, no_consent, no_address]) = expected();
    let summary = app
        .get(&format!("{base}/audience/summary"), &key)
        .await
        .expect(200);
    assert_eq!(
        summary,
        json!({"eligible": eligible.len(), "total_unique": total,
            "excluded": {"by_exclusion": by_exclusion, "opted_out": opted_out, "no_consent": no_consent, "no_address": no_address}})
    );
    let resolved = app
        .post("/v1/audiences/resolve", &key, json!({"channel": "whatsapp",
            "segment_ids": [segments["s1"], segments["s2"], id(&fair)], "exclude_segment_ids": [segments["x"]]}))
        .await
        .expect(200);
    assert_eq!(resolved, summary);

    // Walk the pages to the end.
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = app
            .get(&format!("{base}/audience?limit=2{after}"), &key)
            .await
            .expect(200);
        for item in page["items"].as_array().unwrap() {
            paged.push((
                item["contact_id"].as_i64().unwrap(),
                item["address"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_after"].as_i64() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    let paged_names: BTreeSet<&str> = paged.iter().map(|(id, _)| names[id]).collect();
    assert_eq!(paged_names, eligible);
    assert!(
        paged.windows(2).all(|w| w[0].0 < w[1].0),
        "pages are in contact id order"
    );
    assert!(paged.iter().all(|(_, address)| address.starts_with("+39")));

    let ndjson = app.get(&format!("{base}/audience.ndjson"), &key).await;
    assert_eq!(ndjson.content_type, "application/x-ndjson");
    let streamed: Vec<(i64, String)> = ndjson
        .text
        .lines()
        .map(|line| {
            let item: Value = serde_json::from_str(line).unwrap();
            (
                item["contact_id"].as_i64().unwrap(),
                item["address"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(streamed, paged);
    let csv = app.get(&format!("{base}/audience.csv"), &key).await;
    assert_eq!(csv.text.lines().next(), Some("contact_id,name,address"));
    assert_eq!(csv.text.lines().count(), eligible.len() + 1);

    // Deleting a segment removes it from the campaign.
    app.delete(&format!("/v1/segments/{}", segments["x"]), &key)
        .await
        .expect(204);
    let after_delete = app.get(&base, &key).await.expect(200);
    assert_eq!(after_delete["exclude_segment_ids"], json!([]));
    assert_eq!(
        app.get(&format!("{base}/audience/summary"), &key)
            .await
            .expect(200)["excluded"]["by_exclusion"],
        0
    );
}

#[actix_web::test]
async fn campaigns_name_only_existing_segments_of_their_channel() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let wa = app.segment(&key, "WA", "whatsapp").await;
    let email = app.segment(&key, "Mail", "email").await;
    let other = app.tenant_key().await;
    let foreign = app.segment(&other, "Theirs", "whatsapp").await;
    let problem = app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "C", "channel": "whatsapp",
            "segment_ids": [id(&wa), id(&email), id(&foreign)], "exclude_segment_ids": [id(&wa)]}),
        )
        .await
        .expect_problem(422, "validation_failed");
    let errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("segment_ids[1]".to_owned(), "channel_mismatch".to_owned()),
            ("segment_ids[2]".to_owned(), "segment_not_found".to_owned()),
            (
                "exclude_segment_ids[0]".to_owned(),
                "included_and_excluded".to_owned()
            ),
        ]
    );
    assert_eq!(
        app.get("/v1/campaigns", &key).await.expect(200)["total"],
        0,
        "nothing was saved"
    );
    let campaign = app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "C", "channel": "whatsapp", "segment_ids": [id(&wa)]}),
        )
        .await
        .expect(201);
    let listed = app.get("/v1/campaigns", &key).await.expect(200);
    assert_eq!(
        (listed["items"][0]["id"].clone(), listed["total"].clone()),
        (campaign["id"].clone(), json!(1))
    );
    let past = app.get("/v1/campaigns?page=2", &key).await.expect(200);
    assert_eq!(
        (past["items"].clone(), past["total"].clone()),
        (json!([]), json!(1))
    );
    let path = format!("/v1/campaigns/{}", id(&campaign));
    let renamed = app
        .patch(&path, &key, json!({"name": "Renamed"}))
        .await
        .expect(200);
    assert_eq!(
        (renamed["name"].as_str(), renamed["segment_ids"].clone()),
        (Some("Renamed"), json!([id(&wa)]))
    );
    app.patch(&path, &key, json!({"segment_ids": [id(&email)]}))
        .await
        .expect_problem(422, "validation_failed");
    app.post(
        "/v1/campaigns",
        &key,
        json!({"name": "C", "channel": "whatsapp", "segment_ids": []}),
    )
    .await
    .expect_problem(422, "validation_failed");
    for path in [
        path.clone(),
        format!("{path}/audience/summary"),
        format!("{path}/audience"),
        format!("{path}/audience.ndjson"),
    ] {
        app.get(&path, &other)
            .await
            .expect_problem(404, "not_found");
    }
    app.get(&format!("{path}/audience?limit=10001"), &key)
        .await
        .expect_problem(400, "invalid_query");
    app.delete(&path, &other)
        .await
        .expect_problem(404, "not_found");
    app.delete(&path, &key).await.expect(204);
    app.get(&path, &key).await.expect_problem(404, "not_found");
}

#[actix_web::test]
async fn a_contact_in_two_static_segments_is_one_recipient() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let both = app
        .contact(&key, json!({"name": "Both", "phone": "333 123 4567"}))
        .await;
    let one = app
        .contact(&key, json!({"name": "One", "phone": "333 123 4568"}))
        .await;
    let mut segment_ids = Vec::new();
    for (name, members) in [("A", vec![id(&both), id(&one)]), ("B", vec![id(&both)])] {
        let segment = app.segment(&key, name, "whatsapp").await;
        app.post(
            &format!("/v1/segments/{}/members", id(&segment)),
            &key,
            json!({ "contact_ids": members }),
        )
        .await
        .expect(200);
        segment_ids.push(id(&segment));
    }
    let campaign = app
        .post(
            "/v1/campaigns",
            &key,
            json!({"name": "Static only", "channel": "whatsapp", "segment_ids": segment_ids}),
        )
        .await
        .expect(201);
    let base = format!("/v1/campaigns/{}", id(&campaign));
    let summary = app
        .get(&format!("{base}/audience/summary"), &key)
        .await
        .expect(200);
    assert_eq!(
        (
            summary["total_unique"].as_i64(),
            summary["eligible"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let ids = app
        .get(&format!("{base}/audience.ndjson"), &key)
        .await
        .ndjson_contact_ids();
    assert_eq!(ids, [id(&both), id(&one)]);
}

#[actix_web::test]
async fn a_range_read_counts_the_excluded_members_it_examines() {
    let app = spawn_app().await;
    let (tenant, key) = app.tenant(json!({})).await;
    let (everyone, most) = (
        id(&app.segment(&key, "Everyone", "whatsapp").await),
        id(&app.segment(&key, "Most", "whatsapp").await),
    );
    let mut contacts = Vec::new();
    for n in 0..12 {
        let contact = app
            .contact(
                &key,
                json!({"name": "C", "phone": format!("+39 333 000 00{n:02}")}),
            )
            .await;
        contacts.push(id(&contact));
    }
    for (segment, members) in [(everyone, &contacts[..]), (most, &contacts[..11])] {
        app.post(
            &format!("/v1/segments/{segment}/members"),
            &key,
            json!({ "contact_ids": members }),
        )
        .await
        .expect(200);
    }
    let audience = Audience {
        tenant_id: tenant,
        channel: Channel::Whatsapp,
        included: vec![everyone],
        excluded: vec![most],
        consent_required: false,
        members_estimate: 23,
    };
    let mut conn = app.database.connection();
    // Ten members read, all excluded: nothing kept, yet ten examined (what sizes the
    // next range) and the read cut after the tenth.
    let first = audience
        .recipients_in(&mut conn, (0, i64::MAX), 10)
        .unwrap();
    assert_eq!(
        (first.recipients.len(), first.examined, first.next),
        (0, 10, Some(contacts[9]))
    );
    let rest = audience
        .recipients_in(&mut conn, (contacts[9], i64::MAX), 10)
        .unwrap();
    let kept: Vec<i64> = rest.recipients.iter().map(|r| r.contact_id).collect();
    assert_eq!(
        (kept, rest.examined, rest.next),
        (vec![contacts[11]], 2, None)
    );
}
