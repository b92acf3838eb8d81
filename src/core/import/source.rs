//! An upload read as a table, whatever people saved it as: CSV text in UTF-8 (with or
//! without BOM), UTF-16 or a legacy single-byte encoding, with LF, CRLF or lone CR line
//! endings and `,` `;` or tab between fields; or an Excel workbook's sheet. The format is
//! told from the bytes, never from a file name; the encoding from a BOM, else from what
//! the client declared, else from the bytes themselves (valid UTF-8, or the guess a
//! browser would make).

use std::borrow::Cow;

use csv::StringRecord;
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};

use super::unreadable::Unreadable;
use super::workbook::{self, Workbook};

/// How the client asked for the file to be read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// An encoding label (`windows-1252`, `latin1`, `utf-16le`...): from `?encoding=` or
    /// the body's `charset`.
    pub encoding: Option<String>,
    /// The workbook's sheet to read; the first when absent.
    pub sheet: Option<String>,
}

/// The file's format, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// A data row, with the line (or sheet row) it starts on.
pub struct Record {
    /// The physical line of a CSV (the header being line 1), or the sheet's row number.
    pub line: u64,
    /// How far into the file the row starts, in bytes (estimated for a workbook): for
    /// progress.
    pub offset: u64,
    pub cells: Result<StringRecord, String>,
}

/// The upload as a table.
pub enum Table<'a> {
    Csv {
        text: Cow<'a, str>,
        encoding: &'static Encoding,
        delimiter: u8,
    },
    Xlsx {
        workbook: Box<Workbook<'a>>,
        bytes: u64,
    },
}

/// Reads the upload's format and text; refuses what cannot be read, saying why.
pub fn open<'a>(bytes: &'a [u8], options: &ReadOptions) -> Result<Table<'a>, Unreadable> {
    match workbook::kind(bytes)? {
        workbook::Kind::Workbook => {
            workbook::check_unpacked_size(bytes)?;
            let workbook = Workbook::open(bytes, options.sheet.as_deref())?;
            Ok(Table::Xlsx {
                workbook: Box::new(workbook),
                bytes: bytes.len() as u64,
            })
        }
        workbook::Kind::Text => {
            let (text, encoding) = decode(bytes, options.encoding.as_deref())?;
            let text = with_line_feeds(text);
            if text.trim().is_empty() {
                return Err(Unreadable::new(
                    "empty_file",
                    "The file is empty: it needs a header row naming a phone column, then one \
                     row per contact.",
                ));
            }
            let delimiter = sniff_delimiter(&text);
            Ok(Table::Csv {
                text,
                encoding,
                delimiter,
            })
        }
    }
}

/// The text and the encoding it was read with.
pub fn decode<'a>(
    bytes: &'a [u8],
    declared: Option<&str>,
) -> Result<(Cow<'a, str>, &'static Encoding), Unreadable> {
    // A byte order mark says it all (as browsers read it, it wins over a label).
    let (encoding, body) = match Encoding::for_bom(bytes) {
        Some((encoding, length)) => (Some(encoding), &bytes[length..]),
        None => (None, bytes),
    };
    let encoding = match (encoding, declared) {
        (Some(encoding), _) => encoding,
        (None, Some(label)) => Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
            Unreadable::new(
                "unknown_encoding",
                format!(
                    "\"{label}\" is not an encoding this service knows; use e.g. utf-8, \
                     windows-1252, iso-8859-15 or utf-16le."
                ),
            )
        })?,
        (None, None) => match std::str::from_utf8(body) {
            Ok(text) => return Ok((Cow::Borrowed(text), UTF_8)),
            Err(_) => guess(body),
        },
    };
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| undecodable(body, encoding, declared.is_some()))?;
    Ok((text, encoding))
}

/// The encoding of text that is not UTF-8: UTF-16 without a BOM when every other byte is
/// zero, else what a browser would guess for it (Windows-1252 for Western European
/// spreadsheets).
fn guess(bytes: &[u8]) -> &'static Encoding {
    let sample = &bytes[..bytes.len().min(4096)];
    let zeros_at = |parity: usize| {
        sample
            .iter()
            .skip(parity)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let half = sample.len() / 2;
    if half > 0 && zeros_at(1) * 10 > half * 9 {
        return UTF_16LE;
    }
    if half > 0 && zeros_at(0) * 10 > half * 9 {
        return UTF_16BE;
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    // Valid UTF-8 never gets here.
    detector.guess(None, chardetng::Utf8Detection::Deny)
}

/// Where decoding failed: the line and byte, and what to do.
fn undecodable(bytes: &[u8], encoding: &'static Encoding, declared: bool) -> Unreadable {
    // The first byte the decoder could not read.
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3 + 16);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
    let at = match result {
        encoding_rs::DecoderResult::Malformed(bad, _) => read.saturating_sub(bad as usize),
        _ => read,
    };
    let line = 1 + bytes[..at.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let hint = if declared {
        "check the encoding you declared, or leave it out to let the service detect it"
    } else {
        "save the file as \"CSV UTF-8\", or name its encoding with ?encoding="
    };
    Unreadable::new(
        "undecodable_text",
        format!(
            "The file is not valid {} text: line {line} has the byte 0x{:02X} (byte {at}); {hint}.",
            encoding.name(),
            bytes.get(at).copied().unwrap_or_default()
        ),
    )
}

/// Lone CRs (Excel for Mac) become line feeds, so lines count and split as everywhere
/// else; CRLF stays.
fn with_line_feeds(text: Cow<'_, str>) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let lone_cr = bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
    if !lone_cr {
        return text;
    }
    let mut fixed = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() != Some(&'\n') {
            fixed.push('\n');
        } else {
            fixed.push(c);
        }
    }
    Cow::Owned(fixed)
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

impl Table<'_> {
    pub fn format(&self) -> Format {
        match self {
            Table::Csv { .. } => Format::Csv,
            Table::Xlsx { .. } => Format::Xlsx,
        }
    }

    /// The encoding the text was read with (a workbook's XML is always UTF-8).
    pub fn encoding(&self) -> &'static str {
        match self {
            Table::Csv { encoding, .. } => encoding.name(),
            Table::Xlsx { .. } => UTF_8.name(),
        }
    }

    /// The CSV's delimiter, as text; none for a workbook.
    pub fn delimiter(&self) -> Option<String> {
        match self {
            Table::Csv { delimiter, .. } => Some(char::from(*delimiter).to_string()),
            Table::Xlsx { .. } => None,
        }
    }

    /// The file's length in bytes (of the text, for a CSV).
    pub fn len(&self) -> u64 {
        match self {
            Table::Csv { text, .. } => text.len() as u64,
            Table::Xlsx { bytes, .. } => *bytes,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// About how many data rows the file has, without reading them.
    pub fn rows_estimate(&mut self) -> u64 {
        match self {
            Table::Csv { text, .. } => {
                let lines = text.bytes().filter(|b| *b == b'\n').count() as u64;
                let last_line_open = !text.ends_with('\n');
                (lines + u64::from(last_line_open)).saturating_sub(1)
            }
            Table::Xlsx { workbook, .. } => workbook.last_row().saturating_sub(1),
        }
    }

    /// The header row and then every data row; `each` returns false to stop.
    pub fn each_row(
        &mut self,
        each: &mut dyn FnMut(RowOrHeader) -> bool,
    ) -> Result<(), Unreadable> {
        match self {
            Table::Csv {
                text, delimiter, ..
            } => {
                csv_rows(text, *delimiter, each);
                Ok(())
            }
            Table::Xlsx { workbook, bytes } => {
                let total = *bytes;
                let mut last = 0;
                let rows = workbook.last_row().max(1);
                let mut header = true;
                workbook.each_row(&mut |line, cells| {
                    let record = StringRecord::from(cells);
                    if std::mem::take(&mut header) {
                        return each(RowOrHeader::Header(record));
                    }
                    last = total * line.min(rows) / rows;
                    each(RowOrHeader::Row(Record {
                        line,
                        offset: last,
                        cells: Ok(record),
                    }))
                })
            }
        }
    }
}

/// The header, or a data row.
pub enum RowOrHeader {
    Header(StringRecord),
    Row(Record),
}

fn csv_rows(text: &str, delimiter: u8, each: &mut dyn FnMut(RowOrHeader) -> bool) {
    let mut lines = LineCounter::default();
    let mut header = true;
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for record in reader.into_records() {
        let (offset, cells) = match record {
            Ok(record) if record.iter().all(|cell| cell.trim().is_empty()) => continue,
            Ok(record) => (record.position().map_or(0, |p| p.byte()), Ok(record)),
            Err(error) => (
                error.position().map_or(0, |p| p.byte()),
                Err(error.to_string()),
            ),
        };
        let line = lines.line_at(text.as_bytes(), offset as usize);
        let keep_going = if std::mem::take(&mut header) {
            each(RowOrHeader::Header(cells.unwrap_or_default()))
        } else {
            each(RowOrHeader::Row(Record {
                line,
                offset,
                cells,
            }))
        };
        if !keep_going {
            return;
        }
    }
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
