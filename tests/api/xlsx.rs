//! Excel workbooks made byte by byte as Excel writes them (Office Open XML, ECMA-376):
//! shared strings, numbers, dates as serial numbers with a date style, several sheets.
//! (The benchmark harness builds its workbooks with this file too.)

use std::collections::HashMap;
use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A cell as typed in Excel.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Number(f64),
    /// Days since 1899-12-30, shown as a date.
    Date(f64),
    Empty,
}

pub fn text(text: &str) -> Cell {
    Cell::Text(text.to_owned())
}

fn column(mut index: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const RELS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const DOC_RELS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

/// A workbook with `sheets`, each `(name, rows)`.
pub fn workbook<'a>(sheets: &'a [(&str, Vec<Vec<Cell>>)]) -> Vec<u8> {
    let mut strings: Vec<&str> = Vec::new();
    let mut indexes: HashMap<&str, usize> = HashMap::new();
    let mut string_index = |text: &'a str| {
        *indexes.entry(text).or_insert_with(|| {
            strings.push(text);
            strings.len() - 1
        })
    };
    let mut sheet_xml = Vec::new();
    for (_, rows) in sheets {
        let width = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<worksheet xmlns=\"{MAIN}\" xmlns:r=\"{DOC_RELS}\"><dimension ref=\"A1:{}{}\"/><sheetData>",
            column(width - 1),
            rows.len().max(1)
        );
        for (r, row) in rows.iter().enumerate() {
            xml.push_str(&format!("<row r=\"{}\">", r + 1));
            for (c, cell) in row.iter().enumerate() {
                let at = format!("{}{}", column(c), r + 1);
                match cell {
                    Cell::Text(text) => xml.push_str(&format!(
                        "<c r=\"{at}\" t=\"s\"><v>{}</v></c>",
                        string_index(text)
                    )),
                    Cell::Number(n) => xml.push_str(&format!("<c r=\"{at}\"><v>{n}</v></c>")),
                    Cell::Date(n) => xml.push_str(&format!("<c r=\"{at}\" s=\"1\"><v>{n}</v></c>")),
                    Cell::Empty => {}
                }
            }
            xml.push_str("</row>");
        }
        xml.push_str("</sheetData></worksheet>");
        sheet_xml.push(xml);
    }
    let shared = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<sst xmlns=\"{MAIN}\" count=\"{0}\" uniqueCount=\"{0}\">{1}</sst>",
        strings.len(),
        strings
            .iter()
            .map(|s| format!("<si><t xml:space=\"preserve\">{}</t></si>", escape(s)))
            .collect::<String>()
    );
    let mut parts: Vec<(String, String)> = vec![
        ("[Content_Types].xml".into(), content_types(sheets.len())),
        (
            "_rels/.rels".into(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<Relationships xmlns=\"{RELS}\"><Relationship Id=\"rId1\" Type=\"{DOC_RELS}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
            ),
        ),
        (
            "xl/workbook.xml".into(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<workbook xmlns=\"{MAIN}\" xmlns:r=\"{DOC_RELS}\"><sheets>{}</sheets></workbook>",
                sheets
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| format!(
                        "<sheet name=\"{}\" sheetId=\"{}\" r:id=\"rId{}\"/>",
                        escape(name),
                        i + 1,
                        i + 1
                    ))
                    .collect::<String>()
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels".into(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<Relationships xmlns=\"{RELS}\">{}<Relationship Id=\"rIdS\" Type=\"{DOC_RELS}/styles\" Target=\"styles.xml\"/><Relationship Id=\"rIdT\" Type=\"{DOC_RELS}/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>",
                (0..sheets.len())
                    .map(|i| format!(
                        "<Relationship Id=\"rId{}\" Type=\"{DOC_RELS}/worksheet\" Target=\"worksheets/sheet{}.xml\"/>",
                        i + 1,
                        i + 1
                    ))
                    .collect::<String>()
            ),
        ),
        (
            "xl/styles.xml".into(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<styleSheet xmlns=\"{MAIN}\"><fonts count=\"1\"><font/></fonts><fills count=\"1\"><fill/></fills><borders count=\"1\"><border/></borders><cellStyleXfs count=\"1\"><xf numFmtId=\"0\"/></cellStyleXfs><cellXfs count=\"2\"><xf numFmtId=\"0\" xfId=\"0\"/><xf numFmtId=\"14\" xfId=\"0\" applyNumberFormat=\"1\"/></cellXfs></styleSheet>"
            ),
        ),
        ("xl/sharedStrings.xml".into(), shared),
    ];
    for (i, xml) in sheet_xml.into_iter().enumerate() {
        parts.push((format!("xl/worksheets/sheet{}.xml", i + 1), xml));
    }
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, xml) in parts {
        zip.start_file(name, options).unwrap();
        zip.write_all(xml.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn content_types(sheets: usize) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>{}<Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/><Override PartName=\"/xl/sharedStrings.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml\"/></Types>",
        (1..=sheets)
            .map(|i| format!("<Override PartName=\"/xl/worksheets/sheet{i}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"))
            .collect::<String>()
    )
}

/// A workbook whose one sheet unpacks to `megabytes` MB of rows (a few hundred KB packed).
pub fn bomb(megabytes: usize) -> Vec<u8> {
    let small = workbook(&[("Sheet1", vec![vec![text("phone")]])]);
    let mut archive = zip::ZipArchive::new(Cursor::new(small)).unwrap();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true);
    for index in 0..archive.len() {
        let mut part = archive.by_index(index).unwrap();
        let name = part.name().unwrap().into_owned();
        zip.start_file(&name, options).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            zip.write_all(format!("<worksheet xmlns=\"{MAIN}\"><sheetData>").as_bytes())
                .unwrap();
            let row = "<row><c t=\"s\"><v>0</v></c></row>".repeat(1024);
            for _ in 0..(megabytes * 1024 * 1024 / row.len() + 1) {
                zip.write_all(row.as_bytes()).unwrap();
            }
            zip.write_all(b"</sheetData></worksheet>").unwrap();
        } else {
            std::io::copy(&mut part, &mut zip).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}
