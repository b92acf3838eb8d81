//! Excel workbooks through the API: previewed, dry-run, imported and reverted; mapped
//! columns; a workbook that would unpack too far; the fixture the browser test uploads.

use serde_json::{json, Value};

use crate::harness::{id, spawn_app};
use crate::import_files::{send_file, stored};
use crate::xlsx::{self, text, Cell};

fn excel_date(year: i32, month: u32, day: u32) -> f64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
    (chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap() - epoch).num_days() as f64
}

fn italian_workbook() -> Vec<u8> {
    xlsx::workbook(&[
        (
            "Contatti",
            vec![
                vec![
                    text("Nome"),
                    text("Cognome"),
                    text("Cellulare"),
                    text("Email"),
                    text("Nato il"),
                ],
                vec![
                    text("Giulia"),
                    text("Rossi"),
                    // Typed as a number: the cell keeps its digits, not 3.93331E+11.
                    Cell::Number(393331234567.0),
                    text("giulia@example.com"),
                    Cell::Date(excel_date(1990, 5, 17)),
                ],
                vec![
                    text("Marco"),
                    text("Bianchi"),
                    text("347 765 4321"),
                    Cell::Empty,
                    Cell::Empty,
                ],
                vec![text("Senza"), text("Numero")],
            ],
        ),
        ("Note", vec![vec![text("Appunti")], vec![text("niente")]]),
    ])
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[actix_web::test]
async fn an_excel_workbook_is_previewed_dry_run_imported_and_reverted() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    app.attributes(&key, &[("birth", "Nato il", "date")]).await;
    let segment = id(&app.segment(&key, "Da Excel", "whatsapp").await);
    let file = italian_workbook();
    let path = |tail: &str| format!("/v1/segments/{segment}/import{tail}");

    let preview = send_file(&app, &path("/preview"), &key, XLSX, file.clone())
        .await
        .expect(200);
    assert_eq!(
        (preview["format"].as_str(), preview["delimiter"].clone()),
        (Some("xlsx"), Value::Null)
    );
    assert_eq!(preview["rows_estimate"], 3, "{preview}");
    let columns: Vec<(String, Value, String)> = preview["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["header"].as_str().unwrap().to_owned(),
                c["field"].clone(),
                c["how"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            (
                "Nome".to_owned(),
                json!("first_name"),
                "recognised".to_owned()
            ),
            (
                "Cognome".to_owned(),
                json!("last_name"),
                "recognised".to_owned()
            ),
            (
                "Cellulare".to_owned(),
                json!("phone"),
                "recognised".to_owned()
            ),
            ("Email".to_owned(), json!("email"), "recognised".to_owned()),
            (
                "Nato il".to_owned(),
                json!("attributes.birth"),
                "recognised".to_owned()
            ),
        ]
    );
    assert_eq!(
        preview["columns"][2]["samples"],
        json!(["393331234567", "347 765 4321"])
    );
    let first = &preview["sample_rows"][0];
    assert_eq!(
        (
            first["line"].as_i64(),
            first["name"].as_str(),
            first["phone_e164"].as_str(),
            first["phone_valid"].as_bool()
        ),
        (
            Some(2),
            Some("Giulia Rossi"),
            Some("+393331234567"),
            Some(true)
        )
    );
    assert_eq!(first["attributes"], json!({"birth": "1990-05-17"}));
    assert_eq!(
        preview["sample_rows"][2]["problem"]["code"],
        "missing_phone"
    );

    let dry = send_file(&app, &path("?dry_run=true"), &key, XLSX, file.clone())
        .await
        .expect(200);
    assert_eq!(
        (dry["added"].as_i64(), dry["invalid_rows"].as_i64()),
        (Some(2), Some(1)),
        "{dry}"
    );
    assert_eq!(dry["import_id"], Value::Null);
    let nothing = app.get("/v1/contacts", &key).await.expect(200);
    assert_eq!(nothing["total"], 0, "a dry run writes nothing");

    let report = send_file(&app, &path(""), &key, XLSX, file.clone())
        .await
        .expect(200);
    let mut without_id = report.clone();
    without_id["import_id"] = Value::Null;
    assert_eq!(without_id, dry, "the dry run's report is the import's");
    let import_id = report["import_id"].as_i64().expect("an import id");
    let people = stored(&app, &key, segment).await;
    assert_eq!(
        people
            .iter()
            .map(|p| (p.0.as_str(), p.1.clone(), p.2.clone()))
            .collect::<Vec<_>>(),
        [
            (
                "Giulia Rossi",
                json!("+393331234567"),
                json!("giulia@example.com")
            ),
            ("Marco Bianchi", json!("+393477654321"), Value::Null),
        ]
    );
    let contacts = app
        .get("/v1/contacts?search=Giulia", &key)
        .await
        .expect(200);
    assert_eq!(
        contacts["items"][0]["attributes"],
        json!({"birth": "1990-05-17"})
    );
    let job = app
        .get(&format!("/v1/imports/{import_id}"), &key)
        .await
        .expect(200);
    assert_eq!(job["status"], "succeeded");

    // A member added by hand meanwhile stays; the import's own go.
    let other = app
        .contact(&key, json!({"name": "By hand", "phone": "3339990000"}))
        .await;
    app.post(
        &format!("/v1/segments/{segment}/members"),
        &key,
        json!({"contact_ids": [id(&other)]}),
    )
    .await
    .expect(200);
    let reverted = app
        .post(&format!("/v1/imports/{import_id}/revert"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(
        (
            reverted["removed"].as_i64(),
            reverted["recipients"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let again = app
        .post(&format!("/v1/imports/{import_id}/revert"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(again["removed"], 0);
    assert_eq!(stored(&app, &key, segment).await[0].0, "By hand");
    let contacts = app.get("/v1/contacts", &key).await.expect(200);
    assert_eq!(contacts["total"], 3, "contacts stay");
    let other_tenant = app.tenant_key().await;
    app.post(
        &format!("/v1/imports/{import_id}/revert"),
        &other_tenant,
        json!({}),
    )
    .await
    .expect_problem(404, "not_found");

    // Another sheet by name; one that does not exist is named with the ones that do.
    let note = send_file(&app, &path("/preview?sheet=Note"), &key, XLSX, file.clone())
        .await
        .expect_problem(422, "missing_phone_column");
    assert!(
        note["detail"].as_str().unwrap().contains("Appunti"),
        "{note}"
    );
    let missing = send_file(&app, &path("?sheet=Nope"), &key, XLSX, file)
        .await
        .expect_problem(422, "sheet_not_found");
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains("Contatti, Note"),
        "{missing}"
    );
}

#[actix_web::test]
async fn a_mapping_overrides_recognition_in_query_or_form() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Mapped", "whatsapp").await);
    let file = "Numero;Chi;Posta\n3331234567;Giulia Rossi;g@example.com\n";
    let mapping = r#"{"phone": "Numero", "name": "Chi", "email": "Posta"}"#;
    let query = format!(
        "?mapping={}",
        form_urlencoded::byte_serialize(mapping.as_bytes()).collect::<String>()
    );
    let preview = send_file(
        &app,
        &format!("/v1/segments/{segment}/import/preview{query}"),
        &key,
        "text/csv",
        file.as_bytes().to_vec(),
    )
    .await
    .expect(200);
    assert!(
        preview["columns"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["how"] == "mapped"),
        "{preview}"
    );
    // The same mapping as a form field.
    let boundary = "MaPpInG";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"mapping\"\r\n\r\n{mapping}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
    );
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        &format!("multipart/form-data; boundary={boundary}"),
        form.into_bytes(),
    )
    .await
    .expect(200);
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(
        stored(&app, &key, segment).await[0],
        (
            "Giulia Rossi".to_owned(),
            json!("+393331234567"),
            json!("g@example.com"),
            json!([])
        )
    );
    let wrong = send_file(
        &app,
        &format!("/v1/segments/{segment}/import?mapping=%7B%22phone%22%3A%22Cell%22%7D"),
        &key,
        "text/csv",
        file.as_bytes().to_vec(),
    )
    .await
    .expect_problem(422, "mapped_column_missing");
    assert!(
        wrong["detail"].as_str().unwrap().contains("\"Cell\""),
        "{wrong}"
    );
    send_file(
        &app,
        &format!("/v1/segments/{segment}/import?mapping=nope"),
        &key,
        "text/csv",
        file.as_bytes().to_vec(),
    )
    .await
    .expect_problem(422, "validation_failed");
}

#[actix_web::test]
async fn a_workbook_that_would_unpack_past_200_mb_is_refused_unread() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Bomb", "whatsapp").await);
    let bomb = xlsx::bomb(210);
    assert!(bomb.len() < 10 * 1024 * 1024, "{} bytes packed", bomb.len());
    send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        XLSX,
        bomb,
    )
    .await
    .expect_problem(413, "workbook_too_large");
    let contacts = app.get("/v1/contacts", &key).await.expect(200);
    assert_eq!(contacts["total"], 0);
}

/// The workbook the Swagger UI browser test uploads (`tests/browser/swagger-ui.mjs`):
/// committed, and kept the one this file builds. `UPDATE_FIXTURES=1` rewrites it.
#[test]
fn the_browser_tests_workbook_is_the_one_built_here() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/contacts.xlsx");
    let built = italian_workbook();
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(path, &built).unwrap();
    }
    let committed = std::fs::read(path).expect("tests/fixtures/contacts.xlsx");
    assert!(
        committed == built,
        "tests/fixtures/contacts.xlsx differs from italian_workbook(): run \
         `UPDATE_FIXTURES=1 cargo test --test api the_browser_tests_workbook` and commit it"
    );
}
