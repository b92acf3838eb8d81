//! Reading files the way spreadsheets and exports write them.
use csv::StringRecord;
use serde_json::json;

use super::*;
use crate::core::import::cells::split_tags;
use crate::core::import::mapping::Mapping;
use crate::core::import::row::{Row, RowError};
use crate::core::import::source::{self, ReadOptions, RowOrHeader};
use crate::core::import::unreadable::Unreadable;
use crate::core::types::AttributeType;

fn definitions() -> Vec<Definition> {
    [
        ("city", "Città", AttributeType::Text),
        ("score", "Score", AttributeType::Number),
    ]
    .into_iter()
    .map(|(key, label, value_type)| Definition {
        key: key.into(),
        label: label.into(),
        value_type,
    })
    .collect()
}

/// The header and the rows of a file, read as the import reads them.
pub(super) fn read_with(
    bytes: &[u8],
    options: &ReadOptions,
    required: Required,
    mapping: Option<&Mapping>,
) -> Result<(Layout, Vec<Result<Row, RowError>>), Unreadable> {
    let mut table = source::open(bytes, options)?;
    let mut header = StringRecord::new();
    let mut records = Vec::new();
    table.each_row(&mut |row| {
        match row {
            RowOrHeader::Header(record) => header = record,
            RowOrHeader::Row(record) => records.push(record),
        }
        true
    })?;
    let layout = Layout::of(&header, &definitions(), required, mapping)?;
    let rows = records
        .into_iter()
        .map(|record| layout.read(record, Some("IT"), &definitions()))
        .collect();
    Ok((layout, rows))
}

fn read_all(bytes: &[u8]) -> Vec<Result<Row, RowError>> {
    read_with(bytes, &ReadOptions::default(), Required::Phone, None)
        .expect("readable")
        .1
}

fn ok(rows: &[Result<Row, RowError>], index: usize) -> &Row {
    rows[index].as_ref().expect("a valid row")
}

pub(super) fn e164(row: &Row) -> &str {
    row.phone
        .as_ref()
        .map(|p| p.e164.as_str())
        .unwrap_or_default()
}

#[test]
fn a_spreadsheet_export_with_bom_semicolons_quotes_and_crlf_reads() {
    let file = "\u{feff}Phone Number;Full Name;E-mail;Tags;City;Score;Notes\r\n\
                333 123 4567;\"Rossi; Giulia\";giulia@example.com;vip | lead;Milan;4,5;x\r\n\
                +44 7400 123456;\"Line\r\nbreak\";;;;;\r\n";
    let rows = read_all(file.as_bytes());
    assert_eq!(rows.len(), 2);
    let first = ok(&rows, 0);
    assert_eq!(first.line, 2);
    assert_eq!(e164(first), "+393331234567");
    assert_eq!(first.name, "Rossi; Giulia");
    assert_eq!(first.email.as_deref(), Some("giulia@example.com"));
    assert_eq!(first.tags, ["vip", "lead"]);
    assert_eq!(
        json!(first.attributes),
        json!({"city": "Milan", "score": 4.5})
    );
    let second = ok(&rows, 1);
    assert_eq!(
        (second.line, second.phone.as_ref().unwrap().country.as_str()),
        (3, "GB")
    );
    assert_eq!(second.name, "Line\r\nbreak");
}

#[test]
fn bad_rows_name_their_line_code_and_value() {
    let file = "phone,name,email,score\n\
                12,A,,\n\
                ,B,,\n\
                3331234567,C,not-an-email,\n\
                3331234568,D,,high\n\
                ,,,\n\
                3331234569,E,,7\n";
    let rows = read_all(file.as_bytes());
    let outcome: Vec<_> = rows
        .iter()
        .map(|r| match r {
            Ok(row) => (row.line, "ok", String::new()),
            Err(e) => (e.line, e.code, e.value.clone()),
        })
        .collect();
    assert_eq!(
        outcome,
        [
            (2, "invalid_phone", "12".to_owned()),
            (3, "missing_phone", String::new()),
            (4, "invalid_email", "not-an-email".to_owned()),
            (5, "invalid_attribute_value", "high".to_owned()),
            (7, "ok", String::new()),
        ]
    );
}

#[test]
fn files_the_service_cannot_read_are_refused_whole_saying_why() {
    let refused = |bytes: &[u8], options: &ReadOptions| {
        read_with(bytes, options, Required::Phone, None).unwrap_err()
    };
    let no_phone = refused(
        b"name,email\nGiulia,g@example.com\n",
        &ReadOptions::default(),
    );
    assert_eq!(no_phone.code, "missing_phone_column");
    assert!(
        no_phone.message.contains("name, email"),
        "{}",
        no_phone.message
    );
    // A header-less file: its first data row is taken as the header, which names no phone.
    let headerless = refused(b"+393331234567,Giulia\n", &ReadOptions::default());
    assert_eq!(headerless.code, "missing_phone_column");
    let declared = |label: &str| ReadOptions {
        encoding: Some(label.to_owned()),
        sheet: None,
    };
    let unknown = refused(b"phone\n1\n", &declared("klingon"));
    assert_eq!(unknown.code, "unknown_encoding");
    // Declared UTF-8, but it is not: the line and byte are named.
    let wrong = refused(b"phone,name\n3331234567,Jos\xe9\n", &declared("utf-8"));
    assert_eq!(wrong.code, "undecodable_text");
    assert!(wrong.message.contains("line 2"), "{}", wrong.message);
    assert!(wrong.message.contains("0xE9"), "{}", wrong.message);
    assert_eq!(
        refused(b"\xEF\xBB\xBF \r\n", &ReadOptions::default()).code,
        "empty_file"
    );
    let xls = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0];
    assert_eq!(
        refused(&xls, &ReadOptions::default()).code,
        "unsupported_format"
    );
    let not_a_zip = refused(b"PK\x03\x04 not really", &ReadOptions::default());
    assert_eq!(not_a_zip.code, "unreadable_workbook");
}

#[test]
fn several_phone_columns_and_numbers_give_the_first_valid_mobile() {
    let file = "Name,Phone Number,Mobile Phone Number,Phone 1 - Value\n\
                Anna,02 1234567,,\n\
                Bea,02 1234567,333 111 2222,\n\
                Carla,,,+39 02 1234567 ::: +39 333 444 5555\n\
                Dora,,,393335556666\n\
                Elsa,not a phone,,\n";
    let rows = read_all(file.as_bytes());
    let phones: Vec<&str> = rows
        .iter()
        .map(|r| r.as_ref().map_or("error", e164))
        .collect();
    assert_eq!(
        phones,
        [
            "+39021234567",
            "+393331112222",
            "+393334445555",
            "+393335556666",
            "error"
        ]
    );
    assert_eq!(ok(&rows, 2).phone_as_written, "+39 333 444 5555");
}

#[test]
fn names_are_joined_from_their_parts_in_every_language() {
    let name_of = |file: &str| ok(&read_all(file.as_bytes()), 0).name.clone();
    assert_eq!(
        name_of("Nome;Cognome;Cellulare\nGiulia;Rossi;3331234567\n"),
        "Giulia Rossi"
    );
    assert_eq!(
        name_of("Vorname;Name;Handy\nAnna;Schmidt;3331234567\n"),
        "Anna Schmidt"
    );
    assert_eq!(
        name_of("First Name,Last Name,Phone\nOliver,Smith,3331234567\n"),
        "Oliver Smith"
    );
    assert_eq!(
        name_of("Nombre,Apellidos,Móvil\nLucía,García López,3331234567\n"),
        "Lucía García López"
    );
    assert_eq!(
        name_of("Prénom;Nom;Portable\nÉlodie;Martin;3331234567\n"),
        "Élodie Martin"
    );
    // A full name wins over the parts.
    assert_eq!(
        name_of("Name,Given Name,Family Name,Phone 1 - Value\nG. Rossi,Giulia,Rossi,3331234567\n"),
        "G. Rossi"
    );
    // Only a first name: that is the name.
    assert_eq!(name_of("first name,phone\nGiulia,3331234567\n"), "Giulia");
}

#[test]
fn tags_are_read_as_each_export_writes_them() {
    assert_eq!(split_tags("vip | lead"), ["vip ", " lead"]);
    assert_eq!(
        split_tags("\"VIP\",\"Clienti Milano\""),
        ["VIP", "Clienti Milano"]
    );
    assert_eq!(
        split_tags("* myContacts ::: Friends ::: Clienti"),
        ["Friends", "Clienti"]
    );
    assert!(split_tags("").is_empty());
    let file = "Email Address,Phone Number,TAGS\n\
                a@example.com,3331234567,\"\"\"VIP\"\",\"\"Clienti Milano\"\"\"\n";
    assert_eq!(
        ok(&read_all(file.as_bytes()), 0).tags,
        ["VIP", "Clienti Milano"]
    );
}

#[test]
fn attributes_are_recognised_by_key_or_label() {
    let file = "phone,Città,SCORE\n3331234567,Milano,7\n";
    let row = ok(&read_all(file.as_bytes()), 0).clone();
    assert_eq!(
        json!(row.attributes),
        json!({"city": "Milano", "score": 7.0})
    );
}

#[test]
fn unknown_and_repeated_columns_are_listed_as_ignored() {
    let (layout, _) = read_with(
        b"phone,mobile,Notes,city,email,e-mail\n",
        &ReadOptions::default(),
        Required::Phone,
        None,
    )
    .unwrap();
    assert_eq!(layout.ignored, ["Notes", "e-mail"]);
    let how: Vec<(&str, Option<&str>, How)> = layout
        .columns()
        .iter()
        .map(|c| (c.header.as_str(), c.field.as_deref(), c.how))
        .collect();
    assert_eq!(how[0], ("phone", Some("phone"), How::Recognised));
    assert_eq!(how[2], ("Notes", None, How::Ignored));
    assert_eq!(how[3], ("city", Some("attributes.city"), How::Recognised));
}

#[test]
fn a_mapping_overrides_recognition_and_names_what_is_missing() {
    let mapping = Mapping::parse(
        &json!({"phone": "Numero", "name": ["A", "B"], "email": "Posta", "tags": "Etichette",
                "attributes.city": "Dove"}),
        &definitions(),
    )
    .unwrap();
    let file = "Numero;A;B;Posta;Etichette;Dove;phone\n\
                3331234567;Giulia;Rossi;g@example.com;x|y;Roma;3470000000\n";
    let (layout, rows) = read_with(
        file.as_bytes(),
        &ReadOptions::default(),
        Required::Phone,
        Some(&mapping),
    )
    .unwrap();
    let row = ok(&rows, 0);
    assert_eq!(e164(row), "+393331234567", "the mapped column, not `phone`");
    assert_eq!(row.name, "Giulia Rossi");
    assert_eq!(row.email.as_deref(), Some("g@example.com"));
    assert_eq!(row.tags, ["x", "y"]);
    assert_eq!(json!(row.attributes), json!({"city": "Roma"}));
    assert_eq!(layout.columns()[0].how, How::Mapped);
    assert_eq!(layout.ignored, ["phone"]);
    let missing = read_with(
        b"Cell,Name\n1,2\n",
        &ReadOptions::default(),
        Required::Phone,
        Some(&Mapping::parse(&json!({"phone": "Mobile"}), &[]).unwrap()),
    )
    .unwrap_err();
    assert_eq!(missing.code, "mapped_column_missing");
    assert!(
        missing.message.contains("\"Mobile\""),
        "{}",
        missing.message
    );
    let errors = Mapping::parse(
        &json!({"fax": "F", "email": ["a", "b"], "attributes.nope": "N", "phone": 3}),
        &definitions(),
    )
    .unwrap_err();
    let codes: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            ("mapping.attributes.nope", "undefined_attribute"),
            ("mapping.email", "invalid_mapping"),
            ("mapping.fax", "unknown_field"),
            ("mapping.phone", "invalid_mapping"),
        ]
    );
}

#[test]
fn an_email_segments_file_needs_an_email_column_not_a_phone() {
    let file = "Email Address,First Name\nana@example.com,Ana\nbad-mail,Bo\n,Cy\n";
    let (_, rows) = read_with(
        file.as_bytes(),
        &ReadOptions::default(),
        Required::Email,
        None,
    )
    .unwrap();
    let first = ok(&rows, 0);
    assert_eq!(
        (first.phone.as_ref(), first.email.as_deref()),
        (None, Some("ana@example.com"))
    );
    assert_eq!(first.key(), "e:ana@example.com");
    let codes: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.as_ref().unwrap_err().code)
        .collect();
    assert_eq!(codes, ["invalid_email", "missing_email"]);
    let no_email = read_with(
        b"phone\n3331234567\n",
        &ReadOptions::default(),
        Required::Email,
        None,
    )
    .unwrap_err();
    assert_eq!(no_email.code, "missing_email_column");
}
