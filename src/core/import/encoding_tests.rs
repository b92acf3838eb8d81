//! Files in every encoding, line ending and delimiter spreadsheets write, read the same.
use super::tests::{e164, read_with};
use super::Required;
use crate::core::import::source::{self, ReadOptions};

#[test]
fn every_encoding_line_ending_and_delimiter_reads_the_same_rows() {
    let header = ["Cellulare", "Nome", "Cognome", "E-mail", "Città"];
    let rows = [
        [
            "333 123 4567",
            "José",
            "Müller",
            "jose@example.com",
            "Forlì",
        ],
        ["+44 7400 123456", "Zoë", "Ødegård", "", "Zürich"],
    ];
    let encodings: [(&str, Option<&str>); 7] = [
        ("UTF-8", None),
        ("UTF-8 BOM", None),
        ("UTF-16LE", None),
        ("UTF-16BE", None),
        ("windows-1252", None),
        ("windows-1252", Some("windows-1252")),
        ("ISO-8859-15", Some("iso-8859-15")),
    ];
    for (encoding, declared) in encodings {
        for ending in ["\n", "\r\n", "\r"] {
            for delimiter in [",", ";", "\t"] {
                let mut text = String::new();
                text.push_str(&header.join(delimiter));
                text.push_str(ending);
                // A blank line in between: skipped, yet counted.
                text.push_str(ending);
                for row in &rows {
                    text.push_str(&row.join(delimiter));
                    text.push_str(ending);
                }
                let bytes: Vec<u8> = match encoding {
                    "UTF-8" => text.clone().into_bytes(),
                    "UTF-8 BOM" => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
                    "UTF-16LE" => [0xFF, 0xFE]
                        .into_iter()
                        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
                        .collect(),
                    "UTF-16BE" => [0xFE, 0xFF]
                        .into_iter()
                        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
                        .collect(),
                    label => {
                        let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
                        let (bytes, _, errors) = encoding.encode(&text);
                        assert!(!errors);
                        bytes.into_owned()
                    }
                };
                let case = format!("{encoding} {declared:?} {ending:?} {delimiter:?}");
                let options = ReadOptions {
                    encoding: declared.map(str::to_owned),
                    sheet: None,
                };
                let (_, read) = read_with(&bytes, &options, Required::Phone, None)
                    .unwrap_or_else(|e| panic!("{case}: {e:?}"));
                let names: Vec<(u64, String, String, Option<String>)> = read
                    .iter()
                    .map(|r| {
                        let r = r.as_ref().unwrap_or_else(|e| panic!("{case}: {e:?}"));
                        (r.line, r.name.clone(), e164(r).to_owned(), r.email.clone())
                    })
                    .collect();
                assert_eq!(
                    names,
                    [
                        (
                            3,
                            "José Müller".to_owned(),
                            "+393331234567".to_owned(),
                            Some("jose@example.com".to_owned())
                        ),
                        (
                            4,
                            "Zoë Ødegård".to_owned(),
                            "+447400123456".to_owned(),
                            None
                        ),
                    ],
                    "{case}"
                );
                let city = &read[0].as_ref().unwrap().attributes["city"];
                assert_eq!(city, "Forlì", "{case}");
            }
        }
    }
}

#[test]
fn the_report_says_what_was_read() {
    let latin = b"phone;name\n3331234567;Jos\xe9\n";
    let table = source::open(latin, &ReadOptions::default()).unwrap();
    assert_eq!(
        (table.format().as_str(), table.encoding(), table.delimiter()),
        ("csv", "windows-1252", Some(";".to_owned()))
    );
    let table = source::open(b"phone\tname\n1\tA\n", &ReadOptions::default()).unwrap();
    assert_eq!(table.delimiter(), Some("\t".to_owned()));
}

#[test]
fn delimiters_are_sniffed_from_the_header_outside_quotes() {
    assert_eq!(source::sniff_delimiter("phone,name\n"), b',');
    assert_eq!(source::sniff_delimiter("phone;name;\"a,b,c\"\n"), b';');
    assert_eq!(source::sniff_delimiter("phone\tname\n"), b'\t');
    assert_eq!(source::sniff_delimiter("phone\n"), b',');
}
