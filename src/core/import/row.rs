//! Each row of an upload read into a contact: validated and typed, or an error that
//! names its line. No database here.

use csv::StringRecord;
use serde_json::Map;
use serde_json::Value;

use super::cells::{best_number, split_tags};
use super::file::{Column, Layout, Required};
use super::source::Record;
use crate::core::attributes::{from_cell, Definition};
use crate::core::contact::{
    is_valid_email, normalize_tags, MAX_NAME_LENGTH, MAX_TAGS, MAX_TAG_LENGTH,
};
use crate::core::phone::Phone;

/// Why one row cannot be imported; the row is skipped and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The physical line the row starts on (the sheet's row number in a workbook); the
    /// header is line 1.
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
    /// The validated phone; always present in a phone segment's import.
    pub phone: Option<Phone>,
    /// The phone as the file wrote it (empty when none).
    pub phone_as_written: String,
    /// Empty when the file gives none.
    pub name: String,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Map<String, Value>,
}

impl Row {
    /// What identifies the row's contact within the file: its validated phone, else its
    /// e-mail (ignoring case).
    pub fn key(&self) -> String {
        match (&self.phone, &self.email) {
            (Some(phone), _) => format!("p:{}", phone.e164),
            (None, Some(email)) => format!("e:{}", email.to_lowercase()),
            (None, None) => String::new(),
        }
    }
}

impl Layout {
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
        let at = |index: usize| cells.get(index).map(str::trim).unwrap_or_default();
        let cell = |wanted: Column| {
            self.columns
                .iter()
                .position(|c| *c == wanted)
                .map(at)
                .unwrap_or_default()
        };
        let mobile_columns = self
            .phones
            .iter()
            .filter(|i| self.columns[**i] == Column::Phone { mobile: true })
            .count();
        let written: Vec<(&str, bool)> = self
            .phones
            .iter()
            .enumerate()
            .map(|(rank, i)| (at(*i), rank < mobile_columns))
            .filter(|(c, _)| !c.is_empty())
            .collect();
        let phone = best_number(&written, region);
        let phone_as_written = match &phone {
            Some((_, as_written)) => as_written.clone(),
            None => written
                .first()
                .map(|(c, _)| (*c).to_owned())
                .unwrap_or_default(),
        };
        let phone = phone.map(|(phone, _)| phone);
        if self.required == Required::Phone && phone.is_none() {
            return Err(match written.first() {
                None => error("missing_phone", "The row has no phone number.".into(), ""),
                Some((first, _)) => {
                    let hint = match region {
                        Some(region) => {
                            format!("numbers without a country prefix are read as {region}")
                        }
                        None => "write it with its country prefix, e.g. +39".to_owned(),
                    };
                    error(
                        "invalid_phone",
                        format!("Not a valid phone number ({hint})."),
                        first,
                    )
                }
            });
        }
        let name = self.name(&cells);
        if name.chars().count() > MAX_NAME_LENGTH {
            return Err(error(
                "invalid_name",
                format!("The name is longer than {MAX_NAME_LENGTH} characters."),
                &name,
            ));
        }
        let email = Some(cell(Column::Email)).filter(|e| !e.is_empty());
        match email {
            Some(email) if !is_valid_email(email) => {
                return Err(error(
                    "invalid_email",
                    "Not a valid email address.".into(),
                    email,
                ))
            }
            // In an email segment a row is matched by its phone when it has a valid one
            // (the contact may have an e-mail already), else by its e-mail.
            None if self.required == Required::Email && phone.is_none() => {
                return Err(error(
                    "missing_email",
                    "The row has neither an e-mail address nor a valid phone.".into(),
                    "",
                ))
            }
            _ => {}
        }
        let written_tags = cell(Column::Tags);
        let tags = normalize_tags(split_tags(written_tags));
        if tags.len() > MAX_TAGS || tags.iter().any(|t| t.chars().count() > MAX_TAG_LENGTH) {
            return Err(error(
                "invalid_tags",
                format!(
                    "At most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters, separated by |."
                ),
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
            phone_as_written,
            name,
            email: email.map(str::to_owned),
            tags,
            attributes,
        })
    }

    /// The full name, or the first and last names joined.
    fn name(&self, cells: &StringRecord) -> String {
        let parts = |wanted: Column| {
            self.columns
                .iter()
                .enumerate()
                .filter(move |(_, c)| **c == wanted)
                .filter_map(|(i, _)| cells.get(i).map(str::trim))
                .filter(|part| !part.is_empty())
        };
        if let Some(full) = parts(Column::Name).next() {
            return full.to_owned();
        }
        parts(Column::FirstName)
            .chain(parts(Column::LastName))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
