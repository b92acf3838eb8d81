//! Excel workbooks (`.xlsx`): one sheet read as rows of cells as people see them, cell by
//! cell as the sheet's XML streams, so memory stays flat however long the sheet.
//!
//! An upload is at most 10 MB, but a workbook is a ZIP archive whose parts can unpack to
//! gigabytes. Before anything is parsed, every part is decompressed once into nothing,
//! counting: past [`MAX_UNPACKED`] the file is refused (413) without being read.

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};

use super::unreadable::Unreadable;

/// The most a workbook may unpack to, all parts together.
pub const MAX_UNPACKED: u64 = 200 * 1024 * 1024;

/// The most columns a sheet's header may have; cells past the header's last column are
/// not read.
pub const MAX_COLUMNS: usize = 1000;

/// ZIP's local file header, the first bytes of every `.xlsx`.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// The compound file of Excel 97-2003 (`.xls`).
const CFB_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// What the bytes are, by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Workbook,
}

/// Tells a workbook from text; refuses the binary formats this service does not read.
pub fn kind(bytes: &[u8]) -> Result<Kind, Unreadable> {
    if bytes.starts_with(CFB_MAGIC) {
        return Err(Unreadable::new(
            "unsupported_format",
            "The file is an Excel 97-2003 workbook (.xls). Save it as .xlsx (Excel Workbook) \
             or as CSV UTF-8, and upload it again.",
        ));
    }
    if !bytes.starts_with(ZIP_MAGIC) {
        return Ok(Kind::Text);
    }
    let archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| {
        Unreadable::new(
            "unreadable_workbook",
            format!("The file starts like a ZIP archive (as .xlsx files do) but cannot be read: {error}."),
        )
    })?;
    if archive.index_for_name("xl/workbook.xml").is_none() {
        return Err(Unreadable::new(
            "unsupported_format",
            "The file is a ZIP archive but not an Excel workbook (.xlsx): upload the .xlsx or \
             CSV file itself.",
        ));
    }
    Ok(Kind::Workbook)
}

/// Decompresses every part once, counting, and refuses past [`MAX_UNPACKED`] (what the
/// archive declares is not trusted: the bytes are counted as they come out).
pub fn check_unpacked_size(bytes: &[u8]) -> Result<(), Unreadable> {
    let too_large = || {
        Unreadable::too_large(
            "workbook_too_large",
            format!(
                "The workbook would unpack to more than {} MB; save the sheet as CSV UTF-8, or \
                 split it.",
                MAX_UNPACKED / (1024 * 1024)
            ),
        )
    };
    let unreadable = |error: &dyn std::fmt::Display| {
        Unreadable::new(
            "unreadable_workbook",
            format!("The workbook cannot be read: {error}."),
        )
    };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| unreadable(&error))?;
    let mut left = MAX_UNPACKED;
    for index in 0..archive.len() {
        let part = archive
            .by_index(index)
            .map_err(|error| unreadable(&error))?;
        // One byte more than is left tells "past the limit" from "exactly at it".
        let read = std::io::copy(&mut part.take(left + 1), &mut std::io::sink())
            .map_err(|error| unreadable(&error))?;
        if read > left {
            return Err(too_large());
        }
        left -= read;
    }
    Ok(())
}

/// An opened workbook and the sheet to read.
pub struct Workbook<'a> {
    xlsx: Xlsx<Cursor<&'a [u8]>>,
    sheet: String,
}

impl<'a> Workbook<'a> {
    /// Opens the workbook (after [`check_unpacked_size`]) at its first sheet, or at
    /// `sheet`.
    pub fn open(bytes: &'a [u8], sheet: Option<&str>) -> Result<Self, Unreadable> {
        let xlsx = Xlsx::new(Cursor::new(bytes)).map_err(|error| {
            Unreadable::new(
                "unreadable_workbook",
                format!("The workbook cannot be read: {error}."),
            )
        })?;
        let names = xlsx.sheet_names();
        let sheet = match sheet {
            Some(wanted) => names
                .iter()
                .find(|name| name.as_str() == wanted)
                .cloned()
                .ok_or_else(|| {
                    Unreadable::new(
                        "sheet_not_found",
                        format!(
                            "The workbook has no sheet named \"{wanted}\"; its sheets: {}.",
                            names.join(", ")
                        ),
                    )
                })?,
            None => names
                .first()
                .cloned()
                .ok_or_else(|| Unreadable::new("empty_file", "The workbook has no sheet."))?,
        };
        Ok(Self { xlsx, sheet })
    }

    pub fn sheet(&self) -> &str {
        &self.sheet
    }

    /// The sheet's last row number, as its dimension says (0 when it says nothing).
    pub fn last_row(&mut self) -> u64 {
        self.xlsx
            .worksheet_cells_reader(&self.sheet)
            .map(|reader| u64::from(reader.dimensions().end.0) + 1)
            .unwrap_or(0)
    }

    /// Calls `each` with every non-empty row, numbered as the sheet numbers it (from 1),
    /// with its cells as text, at most `columns` of them (all, for the first row, up to
    /// [`MAX_COLUMNS`]); stops when `each` returns false.
    pub fn each_row(
        &mut self,
        each: &mut dyn FnMut(u64, Vec<String>) -> bool,
    ) -> Result<(), Unreadable> {
        let mut reader = self
            .xlsx
            .worksheet_cells_reader(&self.sheet)
            .map_err(|error| {
                Unreadable::new(
                    "unreadable_workbook",
                    format!("The sheet \"{}\" cannot be read: {error}.", self.sheet),
                )
            })?;
        let mut width: Option<usize> = None;
        let mut row: Option<(u32, Vec<String>)> = None;
        let mut emit = |(index, cells): (u32, Vec<String>), width: &mut Option<usize>| {
            if cells.iter().all(|cell| cell.trim().is_empty()) {
                return true;
            }
            width.get_or_insert(cells.len());
            each(u64::from(index) + 1, cells)
        };
        loop {
            let cell = reader.next_cell().map_err(|error| {
                Unreadable::new(
                    "unreadable_workbook",
                    format!("The sheet \"{}\" cannot be read: {error}.", self.sheet),
                )
            })?;
            let Some(cell) = cell else {
                break;
            };
            let (row_index, column) = cell.get_position();
            if row.as_ref().is_some_and(|(index, _)| *index != row_index) {
                if let Some(done) = row.take() {
                    if !emit(done, &mut width) {
                        return Ok(());
                    }
                }
            }
            let limit = width.unwrap_or(MAX_COLUMNS);
            let column = column as usize;
            if column >= limit {
                if width.is_none() {
                    return Err(Unreadable::new(
                        "too_many_columns",
                        format!("The header row has more than {MAX_COLUMNS} columns."),
                    ));
                }
                continue;
            }
            let (_, cells) = row.get_or_insert_with(|| (row_index, Vec::new()));
            if cells.len() <= column {
                cells.resize(column + 1, String::new());
            }
            cells[column] = as_seen(cell.get_value());
        }
        if let Some(done) = row.take() {
            emit(done, &mut width);
        }
        Ok(())
    }
}

/// A cell as Excel shows it: whole numbers without a decimal point or an exponent (a
/// phone typed as a number stays its digits), dates as dates.
pub fn as_seen(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(text) => text.clone(),
        DataRef::SharedString(text) => (*text).to_owned(),
        DataRef::Int(number) => number.to_string(),
        DataRef::Float(number) => whole_or_decimal(*number),
        DataRef::Bool(true) => "TRUE".to_owned(),
        DataRef::Bool(false) => "FALSE".to_owned(),
        DataRef::DateTime(moment) => match moment.as_datetime() {
            Some(moment) if moment.time() == chrono::NaiveTime::MIN => {
                moment.date().format("%Y-%m-%d").to_string()
            }
            Some(moment) => moment.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => whole_or_decimal(moment.as_f64()),
        },
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => text.clone(),
        DataRef::Error(error) => error.to_string(),
    }
}

/// Rust's `Display` of a float never uses an exponent; whole numbers lose their `.0`.
fn whole_or_decimal(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}
