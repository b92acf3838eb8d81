//! The files people really have, each made byte for byte as its exporter writes it (the
//! headers and encodings their documentation and exports show), imported through the API:
//! names, phones, e-mails and tags as stored. Then preview, dry run, import and revert,
//! as a new user would.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::harness::{id, spawn_app, App, Reply, TestApp};

pub(crate) async fn send_file<S: App>(
    app: &TestApp<S>,
    path: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Reply {
    app.send(
        TestRequest::post()
            .uri(path)
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", content_type.to_owned()))
            .set_payload(body)
            .to_request(),
    )
    .await
}

/// The segment's contacts, by name: (name, phone_e164, email, tags).
pub(crate) async fn stored<S: App>(
    app: &TestApp<S>,
    key: &str,
    segment: i64,
) -> Vec<(String, Value, Value, Value)> {
    let members = app
        .get(&format!("/v1/segments/{segment}/members?per_page=100"), key)
        .await
        .expect(200);
    let mut rows: Vec<_> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["phone_e164"].clone(),
                m["email"].clone(),
                m["tags"].clone(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn windows_1252(text: &str) -> Vec<u8> {
    let (bytes, _, errors) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!errors);
    bytes.into_owned()
}

#[actix_web::test]
async fn google_contacts_export() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Google", "whatsapp").await);
    // Google Contacts' "Google CSV": UTF-8, CRLF, several numbers in one cell.
    let file = "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value\r\n\
        Giulia,,Rossi,,,,,,,,,,,,,,* myContacts ::: Clienti,* Home,giulia.rossi@example.com,Mobile,+39 333 123 4567 ::: +39 02 1234567,,\r\n\
        Marco,,Bianchi,,,,,,,,ACME,,,,,,* myContacts,,,Work,+39 02 7654321,Mobile,+39 347 765 4321\r\n";
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv",
        file.as_bytes().to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(
        (report["rows"].as_i64(), report["added"].as_i64()),
        (Some(2), Some(2)),
        "{report}"
    );
    assert_eq!(report["format"], "csv");
    assert_eq!(report["encoding"], "UTF-8");
    assert_eq!(report["delimiter"], ",");
    assert_eq!(
        stored(&app, &key, segment).await,
        [
            (
                "Giulia Rossi".to_owned(),
                json!("+393331234567"),
                json!("giulia.rossi@example.com"),
                json!(["Clienti"])
            ),
            (
                "Marco Bianchi".to_owned(),
                json!("+393477654321"),
                Value::Null,
                json!([])
            ),
        ]
    );
}

#[actix_web::test]
async fn outlook_export_in_windows_1252() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Outlook", "whatsapp").await);
    let header = "First Name,Middle Name,Last Name,Title,Suffix,Initials,Web Page,Gender,Birthday,Anniversary,Location,Language,Internet Free Busy,Notes,E-mail Address,E-mail 2 Address,E-mail 3 Address,Primary Phone,Home Phone,Home Phone 2,Mobile Phone,Pager,Home Fax,Home Address,Home Street,Home Street 2,Home Street 3,Home Address PO Box,Home City,Home State,Home Postal Code,Home Country,Spouse,Children,Manager's Name,Assistant's Name,Referred By,Company Main Phone,Business Phone,Business Phone 2,Business Fax,Assistant's Phone,Company,Job Title,Department,Office Location,Organizational ID Number,Profession,Account,Business Address,Business Street,Business Street 2,Business Street 3,Business Address PO Box,Business City,Business State,Business Postal Code,Business Country,Other Phone,Other Fax,Other Address,Other Street,Other Street 2,Other Street 3,Other Address PO Box,Other City,Other State,Other Postal Code,Other Country,Callback,Car Phone,ISDN,Radio Phone,TTY/TDD Phone,Telex,User 1,User 2,User 3,User 4,Keywords,Mileage,Hobby,Billing Information,Directory Server,Sensitivity,Priority,Private,Categories";
    let columns: Vec<&str> = header.split(',').collect();
    let row = |values: &[(&str, &str)]| -> String {
        columns
            .iter()
            .map(|column| {
                values
                    .iter()
                    .find(|(name, _)| name == column)
                    .map_or(String::new(), |(_, value)| format!("\"{value}\""))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let file = format!(
        "{header}\r\n{}\r\n{}\r\n",
        row(&[
            ("First Name", "Renée"),
            ("Last Name", "Léger"),
            ("E-mail Address", "renee@example.com"),
            ("Business Phone", "+33 1 42 68 53 00"),
            ("Mobile Phone", "+33 6 12 34 56 78"),
            ("Categories", "Clients;VIP"),
        ]),
        row(&[
            ("First Name", "Søren"),
            ("Last Name", "Ærø"),
            ("Home Phone", "+45 32 12 34 56"),
        ]),
    );
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv",
        windows_1252(&file),
    )
    .await
    .expect(200);
    assert_eq!(report["encoding"], "windows-1252", "{report}");
    assert_eq!(report["added"], 2, "{report}");
    let people = stored(&app, &key, segment).await;
    assert_eq!(people[0].0, "Renée Léger");
    assert_eq!(people[0].1, json!("+33612345678"), "the mobile column wins");
    assert_eq!(people[0].2, json!("renee@example.com"));
    assert_eq!(people[1].0, "Søren Ærø");
    assert_eq!(people[1].1, json!("+4532123456"));
}

#[actix_web::test]
async fn hubspot_export_with_names_in_two_columns_and_a_mobile_only_contact() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "HubSpot", "sms").await);
    let file = "Record ID,First Name,Last Name,Email,Phone Number,Mobile Phone Number,Lead Status,Contact owner,Create Date\n\
                101,Anna,Verdi,anna@example.com,+39 02 1234567,,New,,2026-01-10 09:00\n\
                102,Luca,Neri,luca@example.com,,+39 333 999 8888,,,2026-01-11 10:00\n";
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv",
        file.as_bytes().to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(report["invalid_rows"], 0, "{report}");
    let people = stored(&app, &key, segment).await;
    assert_eq!(
        people
            .iter()
            .map(|p| (p.0.as_str(), p.1.clone(), p.2.clone()))
            .collect::<Vec<_>>(),
        [
            (
                "Anna Verdi",
                json!("+39021234567"),
                json!("anna@example.com")
            ),
            (
                "Luca Neri",
                json!("+393339998888"),
                json!("luca@example.com")
            ),
        ]
    );
}

const MAILCHIMP: &str = "Email Address,First Name,Last Name,Address,Phone Number,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS\n\
    sara@example.com,Sara,Galli,,+39 333 555 1212,,2,\"2026-01-10 09:00:00\",,\"2026-01-10 09:01:00\",,,,,,,,,\"2026-01-10 09:01:00\",12345,abc123,,\"\"\"VIP\"\",\"\"Clienti Milano\"\"\"\n\
    tom@example.com,Tom,Weber,,,,1,\"2026-01-11 09:00:00\",,\"2026-01-11 09:01:00\",,,,,,,,,\"2026-01-11 09:01:00\",12346,abc124,,\n";

#[actix_web::test]
async fn mailchimp_export_keeps_emails_names_and_quoted_tag_lists() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    // Into an email segment: e-mail is the required column; Tom has no phone at all.
    let segment = id(&app.segment(&key, "Newsletter", "email").await);
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv",
        MAILCHIMP.as_bytes().to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(
        (report["added"].as_i64(), report["invalid_rows"].as_i64()),
        (Some(2), Some(0)),
        "{report}"
    );
    assert_eq!(
        stored(&app, &key, segment).await,
        [
            (
                "Sara Galli".to_owned(),
                json!("+393335551212"),
                json!("sara@example.com"),
                json!(["VIP", "Clienti Milano"])
            ),
            (
                "Tom Weber".to_owned(),
                Value::Null,
                json!("tom@example.com"),
                json!([])
            ),
        ]
    );
    // Again: the same people, matched by phone, else by e-mail (ignoring case).
    let again = MAILCHIMP.replace("tom@example.com", "TOM@Example.com");
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv",
        again.into_bytes(),
    )
    .await
    .expect(200);
    assert_eq!(
        (
            report["already_members"].as_i64(),
            report["contacts_created"].as_i64()
        ),
        (Some(2), Some(0)),
        "{report}"
    );
    // Two contacts sharing an e-mail, and a row with only that e-mail: ambiguous.
    app.contact(&key, json!({"name": "Twin A", "email": "twin@example.com"}))
        .await;
    app.contact(&key, json!({"name": "Twin B", "email": "twin@example.com"}))
        .await;
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv",
        b"email,name\ntwin@example.com,Twin\nnew@example.com,New\n".to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(report["invalid_rows"], 1, "{report}");
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(report["errors"][0]["code"], "ambiguous_email");
    assert_eq!(report["errors"][0]["line"], 2);
}

#[actix_web::test]
async fn an_italian_spreadsheet_saved_by_excel_on_windows_and_on_a_mac() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let rows = "Nome;Cognome;Cellulare;E-mail\n\
                Niccolò;Fabbri;333 777 1111;niccolo@example.com\n\
                Lucia;D'Amico;;lucia@example.com\n\
                Gianluca;È-Bello;347 222 3333;\n";
    // Excel on Windows, "CSV (delimitato dal separatore di elenco)": Windows-1252, CRLF.
    let windows = windows_1252(&rows.replace('\n', "\r\n"));
    // Excel for Mac, "CSV UTF-8": a BOM, and lines ended by a lone CR.
    let mac = [
        b"\xEF\xBB\xBF".as_slice(),
        rows.replace('\n', "\r").as_bytes(),
    ]
    .concat();
    for (label, file, encoding) in [("windows", windows, "windows-1252"), ("mac", mac, "UTF-8")] {
        let segment = id(&app
            .segment(&key, &format!("Italiani {label}"), "whatsapp")
            .await);
        let report = send_file(
            &app,
            &format!("/v1/segments/{segment}/import"),
            &key,
            "text/csv",
            file,
        )
        .await
        .expect(200);
        assert_eq!(report["encoding"], encoding, "{label}: {report}");
        assert_eq!(report["delimiter"], ";", "{label}");
        assert_eq!(report["added"], 2, "{label}: {report}");
        assert_eq!(
            (
                report["errors"][0]["line"].as_i64(),
                report["errors"][0]["code"].as_str()
            ),
            (Some(3), Some("missing_phone")),
            "{label}: the physical line"
        );
        let people = stored(&app, &key, segment).await;
        assert_eq!(
            people
                .iter()
                .map(|p| (p.0.as_str(), p.1.clone()))
                .collect::<Vec<_>>(),
            [
                ("Gianluca È-Bello", json!("+393472223333")),
                ("Niccolò Fabbri", json!("+393337771111")),
            ],
            "{label}"
        );
    }
}

#[actix_web::test]
async fn excel_unicode_text_and_declared_charsets() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let segment = id(&app.segment(&key, "Unicode", "whatsapp").await);
    // Excel's "Unicode Text": UTF-16LE with a BOM, tabs, CRLF.
    let text = "Name\tMobile\r\nŁukasz Żółć\t+48 512 345 678\r\n";
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/plain",
        utf16,
    )
    .await
    .expect(200);
    assert_eq!(
        (report["encoding"].as_str(), report["delimiter"].as_str()),
        (Some("UTF-16LE"), Some("\t"))
    );
    assert_eq!(stored(&app, &key, segment).await[0].0, "Łukasz Żółć");
    // A charset declared on the body is honoured; ?encoding= wins over it.
    let latin9 = encoding_rs::ISO_8859_15
        .encode("phone,name\n3336665555,Ève €uro\n")
        .0
        .into_owned();
    let report = send_file(
        &app,
        &format!("/v1/segments/{segment}/import"),
        &key,
        "text/csv; charset=ISO-8859-15",
        latin9.clone(),
    )
    .await
    .expect(200);
    assert_eq!(report["encoding"], "ISO-8859-15", "{report}");
    let names: Vec<String> = stored(&app, &key, segment)
        .await
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert!(names.contains(&"Ève €uro".to_owned()), "{names:?}");
    send_file(
        &app,
        &format!("/v1/segments/{segment}/import?encoding=utf-8"),
        &key,
        "text/csv; charset=ISO-8859-15",
        latin9,
    )
    .await
    .expect_problem(422, "undecodable_text");
}
