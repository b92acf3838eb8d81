//! Reading files the way spreadsheets write them.
use serde_json::json;

use super::*;
use crate::core::types::AttributeType;

fn definitions() -> Vec<Definition> {
    [
        ("city", AttributeType::Text),
        ("score", AttributeType::Number),
    ]
    .into_iter()
    .map(|(key, value_type)| Definition {
        key: key.into(),
        label: key.into(),
        value_type,
    })
    .collect()
}

fn read_all(bytes: &[u8]) -> Vec<Result<Row, RowError>> {
    let text = decode(bytes).expect("readable");
    let layout = Layout::of(text, &definitions()).expect("a layout");
    layout
        .records(text)
        .map(|record| layout.read(record, Some("IT"), &definitions()))
        .collect()
}

#[test]
fn a_spreadsheet_export_with_bom_semicolons_quotes_and_crlf_reads() {
    let file = "\u{feff}Phone Number;Full Name;E-mail;Tags;City;Score;Notes\r\n\
                333 123 4567;\"Rossi; Giulia\";giulia@example.com;vip | lead;Milan;4,5;x\r\n\
                +44 7400 123456;\"Line\r\nbreak\";;;;;\r\n";
    let rows = read_all(file.as_bytes());
    assert_eq!(rows.len(), 2);
    let first = rows[0].as_ref().expect("valid");
    assert_eq!(first.line, 2);
    assert_eq!(first.phone.e164, "+393331234567");
    assert_eq!(first.name, "Rossi; Giulia");
    assert_eq!(first.email.as_deref(), Some("giulia@example.com"));
    assert_eq!(first.tags, ["vip", "lead"]);
    assert_eq!(
        json!(first.attributes),
        json!({"city": "Milan", "score": 4.5})
    );
    let second = rows[1].as_ref().expect("valid");
    assert_eq!((second.line, second.phone.country.as_str()), (3, "GB"));
    assert_eq!(second.name, "Line\r\nbreak");
}

#[test]
fn delimiters_are_sniffed_from_the_header_outside_quotes() {
    assert_eq!(sniff_delimiter("phone,name\n"), b',');
    assert_eq!(sniff_delimiter("phone;name;\"a,b,c\"\n"), b';');
    assert_eq!(sniff_delimiter("phone\tname\n"), b'\t');
    assert_eq!(sniff_delimiter("phone\n"), b',');
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
fn files_without_a_phone_column_or_not_utf8_are_refused_whole() {
    let no_phone = Layout::of("name,email\nGiulia,g@example.com\n", &[]).unwrap_err();
    assert_eq!(no_phone.code, "missing_phone_column");
    assert!(
        no_phone.message.contains("name, email"),
        "{}",
        no_phone.message
    );
    // A header-less file: its first data row is taken as the header, which names no phone.
    let headerless = Layout::of("+393331234567,Giulia\n", &[]).unwrap_err();
    assert_eq!(headerless.code, "missing_phone_column");
    let latin1 = decode(b"phone,name\n3331234567,Jos\xe9\n").unwrap_err();
    assert_eq!(latin1.code, "not_utf8");
    assert!(latin1.message.contains("line 2"), "{}", latin1.message);
    assert_eq!(
        decode(b"\xff\xfep\x00").unwrap_err().code,
        "unsupported_encoding"
    );
    assert_eq!(decode(b"\xEF\xBB\xBF \r\n").unwrap_err().code, "empty_file");
}

#[test]
fn unknown_and_repeated_columns_are_listed_as_ignored() {
    let layout = Layout::of("phone,mobile,Notes,city\n", &definitions()).unwrap();
    assert_eq!(layout.ignored, ["mobile", "Notes"]);
}
