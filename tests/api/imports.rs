use actix_web::test::TestRequest;
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, App, Reply, TestApp};

fn upload(segment: i64, key: &str, query: &str, content_type: &str, body: Vec<u8>) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/v1/segments/{segment}/import{query}"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", content_type.to_owned()))
        .set_payload(body)
}

/// Uploads `csv` into the segment (`query`: the import's options, e.g. `?dry_run=true`).
pub async fn import_csv<S: App>(
    app: &TestApp<S>,
    segment: i64,
    key: &str,
    query: &str,
    csv: &[u8],
) -> Reply {
    app.send(upload(segment, key, query, "text/csv", csv.to_vec()).to_request())
        .await
}

/// Every row in exactly one bucket.
fn assert_accounted(report: &Value) {
    let buckets = [
        "added",
        "already_members",
        "rejected",
        "duplicates_in_file",
        "invalid_rows",
    ];
    let sum: i64 = buckets.iter().map(|b| report[b].as_i64().unwrap()).sum();
    assert_eq!(report["rows"].as_i64().unwrap(), sum, "report: {report}");
}

#[actix_web::test]
async fn a_spreadsheet_export_is_imported_and_every_line_accounted_for() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("city", "City", "text")]).await;
    let existing = app
        .contact(&key, json!({"name": "Old Name", "phone": "+39 333 000 0001", "opted_out": true, "privacy_consent": true}))
        .await;
    let segment = id(&app.segment(&key, "Imported", "whatsapp").await);
    let file = "\u{feff}Phone Number;Full Name;E-mail;Tags;City;Notes\r\n\
                333 123 4567;\"Rossi; Giulia\";giulia@example.com;lead|milan;Milan;x\r\n\
                not a phone;Broken;;;;\r\n\
                +39 333 1234567;Giulia again;;;;\r\n\
                0039 333 000 0001;New Name;old@example.com;;Rome;\r\n\
                ;;;;;\r\n\
                +44 7400 123456;Oliver;not-an-email;;;\r\n\
                +44 7400 654321;;;;;\r\n";
    let report = import_csv(&app, segment, &key, "", file.as_bytes())
        .await
        .expect(200);
    assert_accounted(&report);
    assert_eq!(
        report["rows"], 6,
        "the wholly empty line is not a row: {report}"
    );
    assert_eq!(report["added"], 3);
    assert_eq!(report["contacts_created"], 2);
    assert_eq!(report["contacts_updated"], 1);
    assert_eq!(report["duplicates_in_file"], 1);
    assert_eq!(
        report["duplicates"],
        json!([{"line": 4, "first_line": 2, "value": "+39 333 1234567"}])
    );
    assert_eq!(report["invalid_rows"], 2);
    let errors: Vec<(i64, &str, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["code"].as_str().unwrap(),
                e["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (3, "invalid_phone", "not a phone"),
            (7, "invalid_email", "not-an-email")
        ]
    );
    assert_eq!(report["ignored_columns"], json!(["Notes"]));
    assert_eq!(report["recipients"], 3);
    assert_eq!(report["warnings"][0]["code"], "opted_out");
    assert_eq!(report["warnings"][0]["contact_ids"], json!([id(&existing)]));

    // Fill: the existing contact keeps its name, gains the email and the city, and stays
    // opted out with its consent.
    let updated = app
        .get(&format!("/v1/contacts/{}", id(&existing)), &key)
        .await
        .expect(200);
    assert_eq!(updated["name"], "Old Name");
    assert_eq!(updated["email"], "old@example.com");
    assert_eq!(updated["attributes"], json!({"city": "Rome"}));
    assert_eq!(
        (
            updated["opted_out"].as_bool(),
            updated["privacy_consent"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let members = app
        .get(
            &format!("/v1/segments/{segment}/members?search=Rossi"),
            &key,
        )
        .await
        .expect(200);
    let giulia = &members["items"][0];
    assert_eq!(giulia["name"], "Rossi; Giulia");
    assert_eq!(giulia["phone_e164"], "+393331234567");
    assert_eq!(giulia["tags"], json!(["lead", "milan"]));

    // The same file again: nothing new, every line still accounted for.
    let again = import_csv(&app, segment, &key, "?update=overwrite", file.as_bytes())
        .await
        .expect(200);
    assert_accounted(&again);
    assert_eq!(
        (again["added"].as_i64(), again["already_members"].as_i64()),
        (Some(0), Some(3))
    );
    assert_eq!(again["contacts_created"], 0);
    let overwritten = app
        .get(&format!("/v1/contacts/{}", id(&existing)), &key)
        .await
        .expect(200);
    assert_eq!(overwritten["name"], "New Name");
    assert_eq!(overwritten["opted_out"], true);
}

#[actix_web::test]
async fn multipart_uploads_and_the_template_work() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "From form", "sms").await);
    let template = app
        .send(
            TestRequest::get()
                .uri("/v1/segments/import-template.csv")
                .insert_header(("Authorization", format!("Bearer {key}")))
                .to_request(),
        )
        .await;
    assert_eq!(template.status, 200);
    assert!(template.content_type.starts_with("text/csv"));
    assert!(template.text.starts_with("phone,name"));
    let boundary = "XyZbOuNdArY";
    let form = |extra: &str| {
        let mut body = format!(
            "{extra}--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(template.text.as_bytes());
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    };
    // A part the contract does not name is refused, naming it; nothing is written.
    let refused = app
        .send(
            upload(
                segment,
                &key,
                "",
                &format!("multipart/form-data; boundary={boundary}"),
                form(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n"
                )),
            )
            .to_request(),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["field"], "note");
    // After the file too: a further part is refused, not ignored.
    let mut trailing = form("");
    trailing.truncate(trailing.len() - format!("--{boundary}--\r\n").len());
    trailing.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"extra\"\r\n\r\nx\r\n--{boundary}--\r\n")
            .as_bytes(),
    );
    let refused = app
        .send(
            upload(
                segment,
                &key,
                "",
                &format!("multipart/form-data; boundary={boundary}"),
                trailing,
            )
            .to_request(),
        )
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(refused["errors"][0]["field"], "extra");
    let members = app
        .get(&format!("/v1/segments/{segment}"), &key)
        .await
        .expect(200);
    assert_eq!(members["recipients"], 0, "refused forms write nothing");
    let body = form("");
    let report = app
        .send(
            upload(
                segment,
                &key,
                "",
                &format!("multipart/form-data; boundary={boundary}"),
                body,
            )
            .to_request(),
        )
        .await
        .expect(200);
    assert_accounted(&report);
    assert_eq!(
        (report["rows"].as_i64(), report["added"].as_i64()),
        (Some(3), Some(3))
    );
}

#[actix_web::test]
async fn unreadable_files_are_refused_whole_and_change_nothing() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Refusals", "whatsapp").await);
    let cases: [(&[u8], &str, u16, &str); 5] = [
        (
            b"name,email\nGiulia,g@example.com\n",
            "",
            422,
            "missing_phone_column",
        ),
        (
            b"phone,name\n3331234567,Jos\xe9\n",
            "?encoding=utf-8",
            422,
            "undecodable_text",
        ),
        (b"phone\n1\n", "?encoding=klingon", 422, "unknown_encoding"),
        (b"", "", 422, "empty_file"),
        (b"phone\n3331234567\n", "", 404, "not_found"),
    ];
    for (index, (file, query, status, code)) in cases.into_iter().enumerate() {
        let target = if index == 4 { segment + 1000 } else { segment };
        let problem = import_csv(&app, target, &key, query, file)
            .await
            .expect_problem(status, code);
        assert!(problem["detail"].as_str().unwrap().len() > 10, "{problem}");
    }
    let too_big = vec![b'1'; 10 * 1024 * 1024 + 1];
    import_csv(&app, segment, &key, "", &too_big)
        .await
        .expect_problem(413, "payload_too_large");
    app.send(upload(segment, &key, "", "application/json", b"{}".to_vec()).to_request())
        .await
        .expect_problem(415, "unsupported_media_type");
    import_csv(&app, segment, &key, "?default_region=XX", b"phone\n1\n")
        .await
        .expect_problem(422, "validation_failed");
    let dynamic = app
        .post("/v1/segments", &key, json!({"name": "Dyn", "channel": "whatsapp", "kind": "dynamic", "filter": {"field": "tags", "op": "contains", "value": "x"}}))
        .await
        .expect(201);
    import_csv(&app, id(&dynamic), &key, "", b"phone\n3331234567\n")
        .await
        .expect_problem(409, "dynamic_segment_read_only");
    let contacts = app.get("/v1/contacts", &key).await.expect(200);
    assert_eq!(contacts["items"], json!([]), "nothing was written");
}

#[actix_web::test]
async fn the_endpoint_limit_applies_to_the_whole_file() {
    let app = spawn_app().await;
    let (_, key) = app.tenant(json!({"endpoint_limit": 2})).await;
    let segment = id(&app.segment(&key, "Limited", "whatsapp").await);
    let file = b"phone\n3331234561\n3331234562\n3331234563\n";
    let problem = import_csv(&app, segment, &key, "", file)
        .await
        .expect_problem(422, "endpoint_limit_exceeded");
    assert_eq!(
        (problem["used"].as_i64(), problem["requested"].as_i64()),
        (Some(0), Some(3))
    );
    let contacts = app.get("/v1/contacts", &key).await.expect(200);
    assert_eq!(
        contacts["items"],
        json!([]),
        "the contacts the import created were rolled back"
    );
}

#[actix_web::test]
async fn rows_the_channel_refuses_are_rejected_with_their_line() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Mail", "email").await);
    let report = import_csv(
        &app,
        segment,
        &key,
        "",
        b"phone,email\n3331234561,a@example.com\n3331234562,\n",
    )
    .await
    .expect(200);
    assert_accounted(&report);
    assert_eq!(
        (report["added"].as_i64(), report["rejected"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["errors"][0]["line"], 3);
    assert_eq!(report["errors"][0]["code"], "no_email");
}

#[actix_web::test]
async fn concurrent_imports_sharing_contacts_all_finish() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let first = id(&app.segment(&key, "First", "whatsapp").await);
    let second = id(&app.segment(&key, "Second", "whatsapp").await);
    // Overlapping phones, listed in opposite orders.
    let forward: String = (0..400).map(|i| format!("33312{i:05}\n")).collect();
    let backward: String = (0..400)
        .rev()
        .map(|i| format!("+39 33312{i:05}\n"))
        .collect();
    let files = [
        (first, format!("phone\n{forward}")),
        (first, format!("mobile\n{backward}")),
        (second, format!("phone\n{backward}")),
        (second, format!("msisdn\n{forward}")),
    ];
    let replies = join_all(
        files
            .iter()
            .map(|(segment, file)| import_csv(&app, *segment, &key, "", file.as_bytes())),
    )
    .await;
    let mut added = 0;
    for reply in replies {
        let report = reply.expect(200);
        assert_accounted(&report);
        added += report["added"].as_i64().unwrap();
    }
    assert_eq!(added, 800, "each segment gained each contact once");
    for segment in [first, second] {
        let read = app
            .get(&format!("/v1/segments/{segment}"), &key)
            .await
            .expect(200);
        assert_eq!(read["recipients"], 400);
    }
    let contacts = app.get("/v1/contacts?per_page=1", &key).await.expect(200);
    assert_eq!(contacts["total"], 400, "one contact per phone: {contacts}");
}

#[actix_web::test]
async fn an_async_import_is_polled_to_its_report() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Later", "whatsapp").await);
    let reply = app
        .send(
            upload(
                segment,
                &key,
                "",
                "text/csv",
                b"phone\n3331234567\n12\n".to_vec(),
            )
            .insert_header(("Prefer", "respond-async"))
            .to_request(),
        )
        .await;
    let location = reply
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let job = reply.expect(202);
    assert_eq!(location, format!("/v1/imports/{}", id(&job)));
    assert_eq!(job["bytes_total"], 20);
    let mut polled = Value::Null;
    for _ in 0..100 {
        polled = app.get(&location, &key).await.expect(200);
        if polled["status"] == "succeeded" || polled["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(polled["status"], "succeeded", "job: {polled}");
    assert_eq!(polled["report"]["added"], 1);
    assert_eq!(polled["report"]["invalid_rows"], 1);
    assert_eq!(polled["bytes_read"], 20);
    let other = app.tenant_key().await;
    app.get(&location, &other)
        .await
        .expect_problem(404, "not_found");
}
