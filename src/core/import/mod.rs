//! Imports of contact files into a static segment: reading the upload as a table
//! ([`source`], [`workbook`]), recognising its columns ([`headers`]), reading each row
//! ([`file`]), and what the import reports.

mod cells;
pub mod file;
pub mod headers;
pub mod mapping;
pub mod row;
pub mod source;
pub mod unreadable;
pub mod workbook;

use serde::{Deserialize, Serialize};

use super::membership::Warning;

/// The largest file accepted.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// How an import treats contacts that exist already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpdateMode {
    /// Fill only what is empty.
    #[default]
    Fill,
    /// The file's values win, but an empty cell never clears one.
    Overwrite,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    /// The physical line in the file; the header is line 1.
    pub line: u64,
    pub code: String,
    pub message: String,
    /// The offending value as written.
    pub value: String,
}

impl From<row::RowError> for RowProblem {
    fn from(error: row::RowError) -> Self {
        Self {
            line: error.line,
            code: error.code.to_owned(),
            message: error.message,
            value: error.value,
        }
    }
}

/// A row naming a phone an earlier row named too, in this or another spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRow {
    pub line: u64,
    /// The line whose contact this row is.
    pub first_line: u64,
    pub value: String,
}

/// What happened to every row: `rows` = `added` + `already_members` + `rejected` +
/// `duplicates_in_file` + `invalid_rows`. Stored with an asynchronous job, so its JSON
/// form is the API's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The import, to poll or revert; none for a dry run.
    #[serde(default)]
    pub import_id: Option<i64>,
    /// What was read: `csv` or `xlsx`, the text's encoding, a CSV's delimiter.
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub delimiter: Option<String>,
    pub rows: i64,
    pub added: i64,
    pub already_members: i64,
    pub rejected: i64,
    pub contacts_created: i64,
    pub contacts_updated: i64,
    pub duplicates_in_file: i64,
    pub invalid_rows: i64,
    pub errors: Vec<RowProblem>,
    pub duplicates: Vec<DuplicateRow>,
    pub ignored_columns: Vec<String>,
    pub warnings: Vec<Warning>,
    pub recipients: i64,
}
