//! What an import is asked to do, and how its file reads: the request, its progress,
//! and the layout of the file's table.

use std::sync::atomic::{AtomicBool, AtomicU64};

use bytes::Bytes;
use csv::StringRecord;
use serde_json::Value;

use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::import::file::{Layout, Required};
use crate::core::import::mapping::Mapping;
use crate::core::import::source::{self, ReadOptions, RowOrHeader, Table};
use crate::core::import::unreadable::Unreadable;
use crate::core::import::UpdateMode;
use crate::core::tenant::Tenant;
use crate::core::types::Channel;

pub struct ImportRequest {
    pub tenant: Tenant,
    pub segment_id: i64,
    pub file: Bytes,
    /// How to read the file: a declared encoding, a workbook's sheet.
    pub read: ReadOptions,
    /// The client's reading of the header, as sent (checked against the attributes).
    pub mapping: Option<Value>,
    /// Falls back to the tenant's region.
    pub region: Option<String>,
    pub mode: UpdateMode,
    /// The exact report, nothing written.
    pub dry_run: bool,
}

/// How far the parser has read, for progress reports.
#[derive(Default)]
pub struct Progress {
    /// Set once the job holds its lease: only then may it be reported `running`.
    pub started: AtomicBool,
    pub bytes: AtomicU64,
    pub rows: AtomicU64,
}

/// The column a segment's file cannot do without.
pub(super) fn required_for(channel: Channel) -> Required {
    match channel {
        Channel::Email => Required::Email,
        Channel::Whatsapp | Channel::Sms => Required::Phone,
    }
}

/// The file opened as a table, its header and its layout.
pub(super) fn read_layout<'a>(
    request: &'a ImportRequest,
    definitions: &[Definition],
    required: Required,
) -> Result<(Table<'a>, Layout), Error> {
    let mut table = source::open(&request.file, &request.read).map_err(unreadable)?;
    let header = header_of(&mut table)?;
    let mapping = request
        .mapping
        .as_ref()
        .map(|mapping| Mapping::parse(mapping, definitions))
        .transpose()
        .map_err(Error::Validation)?;
    let layout =
        Layout::of(&header, definitions, required, mapping.as_ref()).map_err(unreadable)?;
    Ok((table, layout))
}

/// The table's first row.
pub(super) fn header_of(table: &mut Table<'_>) -> Result<StringRecord, Error> {
    let mut header = None;
    table
        .each_row(&mut |row| {
            if let RowOrHeader::Header(record) = row {
                header = Some(record);
            }
            false
        })
        .map_err(unreadable)?;
    header.ok_or_else(|| {
        Error::unprocessable(
            "empty_file",
            "The file is empty: it needs a header row, then one row per contact.",
        )
    })
}

pub(super) fn unreadable(error: Unreadable) -> Error {
    if error.too_large {
        Error::TooLarge {
            code: error.code,
            detail: error.message,
        }
    } else {
        Error::unprocessable(error.code, error.message)
    }
}
