//! Reading an uploaded CSV the way spreadsheets write them: a UTF-8 BOM, `,` `;` or tab
//! between fields (guessed from the header line), quoted fields, CRLF, and header names
//! in the spellings people use. No database here: rows come out validated and typed, or
//! as errors that name their line.

use csv::StringRecord;
use serde_json::{Map, Value};

use crate::core::attributes::{from_cell, Definition};
use crate::core::contact::{
    is_valid_email, normalize_tags, MAX_NAME_LENGTH, MAX_TAGS, MAX_TAG_LENGTH,
};
use crate::core::phone::{self, Phone};

pub const PHONE_ALIASES: [&str; 4] = ["phone", "phone_number", "mobile", "msisdn"];
const NAME_ALIASES: [&str; 2] = ["name", "full_name"];

/// Why a whole file cannot be read: answered 422, nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub code: &'static str,
    pub message: String,
}

/// Why one row cannot be imported; the row is skipped and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The physical line the row starts on; the header is line 1.
    pub line: u64,
    pub code: &'static str,
    pub message: String,
    /// The offending cell as written.
    pub value: String,
}

/// A row that can be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub phone: Phone,
    /// The phone as the file wrote it.
    pub phone_as_written: String,
    /// Empty when the file gives none.
    pub name: String,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Phone,
    Name,
    Email,
    Tags,
    /// Index into the tenant's attribute definitions.
    Attribute(usize),
    Ignored,
}

/// What each column of a file holds.
#[derive(Debug)]
pub struct Layout {
    delimiter: u8,
    columns: Vec<Column>,
    /// Header names that matched nothing, or a column already taken by an earlier one.
    pub ignored: Vec<String>,
}

/// The file as text: UTF-8, with any BOM removed. Anything else is refused, never
/// guessed at, so no name is ever stored mangled.
pub fn decode(bytes: &[u8]) -> Result<&str, Unreadable> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Unreadable {
            code: "unsupported_encoding",
            message: "The file is UTF-16 text. Save it as \"CSV UTF-8\" and upload it again."
                .into(),
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let at = error.valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count();
        Unreadable {
            code: "not_utf8",
            message: format!(
                "The file is not UTF-8 text: line {line} has the byte 0x{:02X}, as in a \
                 Windows-1252 (Excel \"CSV\") export. Save it as \"CSV UTF-8\" and upload it \
                 again.",
                bytes[at]
            ),
        }
    })?;
    if text.trim().is_empty() {
        return Err(Unreadable {
            code: "empty_file",
            message: "The file is empty: it needs a header row naming a phone column, then one \
                      row per contact."
                .into(),
        });
    }
    Ok(text)
}

/// The delimiter the header line uses most, outside quotes: `,`, `;` or tab.
pub fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    let mut counts = [(b',', 0), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for byte in header.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(entry) = counts.iter_mut().find(|(d, _)| *d == byte) {
                entry.1 += 1;
            }
        }
    }
    counts
        .iter()
        .fold(
            (b',', 0),
            |best, &entry| if entry.1 > best.1 { entry } else { best },
        )
        .0
}

/// `Phone Number`, `phone-number` and `PHONE_NUMBER` are one name.
fn header_key(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

impl Layout {
    /// Maps the header row to columns; refuses a file without a phone column.
    pub fn of(text: &str, definitions: &[Definition]) -> Result<Self, Unreadable> {
        let delimiter = sniff_delimiter(text);
        let mut reader = reader(text, delimiter, false);
        let header = reader
            .records()
            .next()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut columns = Vec::with_capacity(header.len());
        let mut ignored = Vec::new();
        for name in header.iter() {
            let key = header_key(name);
            let column = if PHONE_ALIASES.contains(&key.as_str()) {
                Column::Phone
            } else if NAME_ALIASES.contains(&key.as_str()) {
                Column::Name
            } else if key == "email" || key == "e_mail" {
                Column::Email
            } else if key == "tags" {
                Column::Tags
            } else if let Some(index) = definitions.iter().position(|d| d.key == key) {
                Column::Attribute(index)
            } else {
                Column::Ignored
            };
            let column = if column != Column::Ignored && columns.contains(&column) {
                Column::Ignored
            } else {
                column
            };
            if column == Column::Ignored && !name.trim().is_empty() {
                ignored.push(name.trim().to_owned());
            }
            columns.push(column);
        }
        if !columns.contains(&Column::Phone) {
            let found: Vec<&str> = header.iter().map(str::trim).collect();
            return Err(Unreadable {
                code: "missing_phone_column",
                message: format!(
                    "The first line must be a header row naming a phone column ({}); it reads: {}.",
                    PHONE_ALIASES.join(", "),
                    found.join(", ")
                ),
            });
        }
        Ok(Self {
            delimiter,
            columns,
            ignored,
        })
    }

    /// The data rows, after the header, each with the line it starts on.
    pub fn records<'a>(&self, text: &'a str) -> impl Iterator<Item = Record> + 'a {
        let mut lines = LineCounter::default();
        reader(text, self.delimiter, true)
            .into_records()
            .filter_map(move |record| {
                let (offset, cells) = match record {
                    Ok(record) if record.iter().all(|cell| cell.trim().is_empty()) => return None,
                    Ok(record) => (record.position().map_or(0, |p| p.byte()), Ok(record)),
                    Err(error) => (
                        error.position().map_or(0, |p| p.byte()),
                        Err(error.to_string()),
                    ),
                };
                Some(Record {
                    line: lines.line_at(text.as_bytes(), offset as usize),
                    offset,
                    cells,
                })
            })
    }

    /// Validates and types one record. `region` reads numbers without a country prefix.
    pub fn read(
        &self,
        record: Record,
        region: Option<&str>,
        definitions: &[Definition],
    ) -> Result<Row, RowError> {
        let line = record.line;
        let error = |code, message: String, value: &str| RowError {
            line,
            code,
            message,
            value: value.to_owned(),
        };
        let cells = record
            .cells
            .map_err(|message| error("unreadable_row", message, ""))?;
        // PostgreSQL stores no U+0000 in text.
        if let Some(cell) = cells.iter().find(|cell| cell.contains('\0')) {
            return Err(error(
                "invalid_character",
                "The row contains the NUL character (U+0000).".into(),
                &cell.replace('\0', ""),
            ));
        }
        let cell = |wanted: Column| {
            self.columns
                .iter()
                .position(|c| *c == wanted)
                .and_then(|index| cells.get(index))
                .map(str::trim)
                .unwrap_or_default()
        };
        let phone_as_written = cell(Column::Phone);
        if phone_as_written.is_empty() {
            return Err(error(
                "missing_phone",
                "The row has no phone number.".into(),
                "",
            ));
        }
        let phone = phone::normalize(phone_as_written, region).ok_or_else(|| {
            let hint = match region {
                Some(region) => format!("numbers without a country prefix are read as {region}"),
                None => "write it with its country prefix, e.g. +39".to_owned(),
            };
            error(
                "invalid_phone",
                format!("Not a valid phone number ({hint})."),
                phone_as_written,
            )
        })?;
        let name = cell(Column::Name);
        if name.chars().count() > MAX_NAME_LENGTH {
            return Err(error(
                "invalid_name",
                format!("The name is longer than {MAX_NAME_LENGTH} characters."),
                name,
            ));
        }
        let email = Some(cell(Column::Email)).filter(|e| !e.is_empty());
        if let Some(email) = email {
            if !is_valid_email(email) {
                return Err(error(
                    "invalid_email",
                    "Not a valid email address.".into(),
                    email,
                ));
            }
        }
        let written_tags = cell(Column::Tags);
        let tags = normalize_tags(
            written_tags
                .split('|')
                .filter(|t| !t.trim().is_empty())
                .map(str::to_owned)
                .collect(),
        );
        if tags.len() > MAX_TAGS || tags.iter().any(|t| t.chars().count() > MAX_TAG_LENGTH) {
            return Err(error(
                "invalid_tags",
                format!("At most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters, separated by |."),
                written_tags,
            ));
        }
        let mut attributes = Map::new();
        for (index, definition) in definitions.iter().enumerate() {
            let written = cell(Column::Attribute(index));
            if written.is_empty() {
                continue;
            }
            let value = from_cell(definition.value_type, written).map_err(|message| {
                error(
                    "invalid_attribute_value",
                    format!("`{}` {message}.", definition.key),
                    written,
                )
            })?;
            attributes.insert(definition.key.clone(), value);
        }
        Ok(Row {
            line,
            phone,
            phone_as_written: phone_as_written.to_owned(),
            name: name.to_owned(),
            email: email.map(str::to_owned),
            tags,
            attributes,
        })
    }
}

/// A data row as the CSV reader gave it.
pub struct Record {
    pub line: u64,
    /// Where the row starts in the file, in bytes: for progress.
    pub offset: u64,
    cells: Result<StringRecord, String>,
}

/// Physical line numbers from byte offsets, counted forward once. (The CSV reader's own
/// line numbers are one short after a CRLF.)
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    /// The line of the record at `offset`; offsets only grow.
    fn line_at(&mut self, text: &[u8], offset: usize) -> u64 {
        // A record's position may point at the line break that ended the previous one.
        let mut start = offset.min(text.len());
        while start < text.len() && (text[start] == b'\r' || text[start] == b'\n') {
            start += 1;
        }
        let start = start.max(self.offset);
        self.line += text[self.offset..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.offset = start;
        self.line + 1
    }
}

fn reader(text: &str, delimiter: u8, has_headers: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(has_headers)
        .flexible(true)
        .from_reader(text.as_bytes())
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
