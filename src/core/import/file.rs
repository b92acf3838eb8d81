//! What each column of an upload holds: the header read against the recognised names
//! ([`super::headers`]) and the client's [`Mapping`]. Rows are read in [`super::row`].

use csv::StringRecord;

use super::headers::{self, Field};
use super::mapping::Mapping;
use super::unreadable::Unreadable;
use crate::core::attributes::Definition;

/// The column a row cannot do without: the phone, or the e-mail for an email segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Phone,
    Email,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Phone {
        mobile: bool,
    },
    Name,
    FirstName,
    LastName,
    Email,
    Tags,
    /// Index into the tenant's attribute definitions.
    Attribute(usize),
    Ignored,
}

/// How a column's meaning was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Recognised,
    Mapped,
    Ignored,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Recognised => "recognised",
            How::Mapped => "mapped",
            How::Ignored => "ignored",
        }
    }
}

/// One column as the preview shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub header: String,
    /// `phone`, `name`, `first_name`, `last_name`, `email`, `tags`, `attributes.<key>`;
    /// none for an ignored column.
    pub field: Option<String>,
    pub how: How,
}

/// What each column of a file holds.
#[derive(Debug)]
pub struct Layout {
    pub(super) columns: Vec<Column>,
    info: Vec<ColumnInfo>,
    /// The phone columns, mobile ones first, each in file order.
    pub(super) phones: Vec<usize>,
    pub(super) required: Required,
    /// Header names that matched nothing, or a column already taken by an earlier one.
    pub ignored: Vec<String>,
}

/// The header as a message quotes it: its first 20 names, each cut at 100 characters.
fn listed(header: &StringRecord) -> String {
    let mut names: Vec<String> = header
        .iter()
        .take(20)
        .map(|name| name.trim().chars().take(100).collect())
        .collect();
    if header.len() > 20 {
        names.push(format!("and {} more", header.len() - 20));
    }
    names.join(", ")
}

/// Where a mapping's header is in the file, by exact name or folded.
fn find_header(header: &StringRecord, name: &str) -> Option<usize> {
    let folded = headers::fold(name);
    header
        .iter()
        .position(|h| h.trim() == name.trim())
        .or_else(|| header.iter().position(|h| headers::fold(h) == folded))
}

impl Layout {
    /// Maps the header row to columns: the mapping first, then recognition; refuses a
    /// file without the required column, or a mapping naming a header the file lacks.
    pub fn of(
        header: &StringRecord,
        definitions: &[Definition],
        required: Required,
        mapping: Option<&Mapping>,
    ) -> Result<Self, Unreadable> {
        let mut columns = vec![Column::Ignored; header.len()];
        let mut how = vec![How::Ignored; header.len()];
        let mut mapped_fields: Vec<&str> = Vec::new();
        if let Some(mapping) = mapping {
            let mut assign = |name: &str, column: Column, field: &'static str| {
                let index = find_header(header, name).ok_or_else(|| {
                    let found = listed(header);
                    Unreadable::new(
                        "mapped_column_missing",
                        format!(
                            "The mapping names the column \"{name}\" for {field}, but the file has no such \
                             column; its header reads: {}.",
                            found
                        ),
                    )
                })?;
                columns[index] = column;
                how[index] = How::Mapped;
                Ok::<_, Unreadable>(())
            };
            for name in &mapping.phone {
                assign(name, Column::Phone { mobile: true }, "phone")?;
            }
            match mapping.name.as_slice() {
                [] => {}
                [full] => assign(full, Column::Name, "name")?,
                [first, rest @ ..] => {
                    assign(first, Column::FirstName, "name")?;
                    for last in rest {
                        assign(last, Column::LastName, "name")?;
                    }
                }
            }
            if let Some(name) = &mapping.email {
                assign(name, Column::Email, "email")?;
            }
            if let Some(name) = &mapping.tags {
                assign(name, Column::Tags, "tags")?;
            }
            for (key, name) in &mapping.attributes {
                let index = definitions
                    .iter()
                    .position(|d| &d.key == key)
                    .unwrap_or_default();
                assign(name, Column::Attribute(index), "an attribute")?;
            }
            for (field, given) in [
                ("phone", !mapping.phone.is_empty()),
                ("name", !mapping.name.is_empty()),
                ("email", mapping.email.is_some()),
                ("tags", mapping.tags.is_some()),
            ] {
                if given {
                    mapped_fields.push(field);
                }
            }
        }
        let mapped_attributes: Vec<&str> = mapping
            .map(|m| m.attributes.iter().map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        // Recognition for every column the mapping left alone.
        let mut recognised: Vec<(usize, Field)> = Vec::new();
        for (index, name) in header.iter().enumerate() {
            if how[index] == How::Mapped {
                continue;
            }
            if let Some(field) = headers::recognise(name) {
                let taken = match field {
                    Field::Mobile | Field::Phone => mapped_fields.contains(&"phone"),
                    Field::Name | Field::NameOrPart | Field::FirstName | Field::LastName => {
                        mapped_fields.contains(&"name")
                    }
                    Field::Email => mapped_fields.contains(&"email"),
                    Field::Tags => mapped_fields.contains(&"tags"),
                };
                if !taken {
                    recognised.push((index, field));
                }
                continue;
            }
            let folded = headers::fold(name);
            if folded.is_empty() {
                continue;
            }
            if let Some(attribute) = definitions.iter().position(|d| {
                !mapped_attributes.contains(&d.key.as_str())
                    && (headers::fold(&d.key) == folded || headers::fold(&d.label) == folded)
            }) {
                columns[index] = Column::Attribute(attribute);
                how[index] = How::Recognised;
            }
        }
        // `Name` beside a first or a last name is the other half.
        let has = |wanted: Field| recognised.iter().any(|(_, f)| *f == wanted);
        let name_or_part = match (has(Field::FirstName), has(Field::LastName)) {
            (true, false) => Column::LastName,
            (false, true) => Column::FirstName,
            _ => Column::Name,
        };
        for (index, field) in recognised {
            columns[index] = match field {
                Field::Mobile => Column::Phone { mobile: true },
                Field::Phone => Column::Phone { mobile: false },
                Field::Name => Column::Name,
                Field::NameOrPart => name_or_part,
                Field::FirstName => Column::FirstName,
                Field::LastName => Column::LastName,
                Field::Email => Column::Email,
                Field::Tags => Column::Tags,
            };
            how[index] = How::Recognised;
        }
        // One column per field but the phone (several are tried, mobile first); a full name
        // wins over first and last names.
        let has_full_name = columns.contains(&Column::Name);
        let mut seen: Vec<Column> = Vec::new();
        for index in 0..columns.len() {
            let column = columns[index];
            let repeated = match column {
                Column::Ignored | Column::Phone { .. } => false,
                Column::FirstName | Column::LastName if has_full_name => true,
                // Mapped last names may be several columns, joined in order.
                Column::LastName if how[index] == How::Mapped => false,
                other => seen.contains(&other),
            };
            if repeated {
                columns[index] = Column::Ignored;
                how[index] = How::Ignored;
            } else {
                seen.push(column);
            }
        }
        let mut phones: Vec<usize> = Vec::new();
        for mobile in [true, false] {
            phones.extend(
                columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == Column::Phone { mobile })
                    .map(|(i, _)| i),
            );
        }
        let found = listed(header);
        match required {
            Required::Phone if phones.is_empty() => {
                return Err(Unreadable::new(
                    "missing_phone_column",
                    format!(
                        "No column holds phone numbers: the header row should name one (phone, mobile, \
                         cell, whatsapp, telefono, cellulare, movil, telephone, handy, telemovel... or \
                         map it with `mapping`); it reads: {}.",
                        found
                    ),
                ))
            }
            Required::Email if !columns.contains(&Column::Email) => {
                return Err(Unreadable::new(
                    "missing_email_column",
                    format!(
                        "An email segment's file needs an e-mail column (email, e-mail address, \
                         correo, courriel... or map it with `mapping`); its header reads: {}.",
                        found
                    ),
                ))
            }
            _ => {}
        }
        let info = header
            .iter()
            .zip(&columns)
            .zip(&how)
            .map(|((name, column), how)| ColumnInfo {
                header: name.trim().to_owned(),
                field: field_name(*column, definitions),
                how: *how,
            })
            .collect();
        let ignored = header
            .iter()
            .zip(&columns)
            .filter(|(name, column)| **column == Column::Ignored && !name.trim().is_empty())
            .map(|(name, _)| name.trim().to_owned())
            .collect();
        Ok(Self {
            columns,
            info,
            phones,
            required,
            ignored,
        })
    }

    /// Every column: its header, the field it fills, and how that was decided.
    pub fn columns(&self) -> &[ColumnInfo] {
        &self.info
    }
}

/// The field a column fills, as the preview names it.
fn field_name(column: Column, definitions: &[Definition]) -> Option<String> {
    Some(match column {
        Column::Phone { .. } => "phone".to_owned(),
        Column::Name => "name".to_owned(),
        Column::FirstName => "first_name".to_owned(),
        Column::LastName => "last_name".to_owned(),
        Column::Email => "email".to_owned(),
        Column::Tags => "tags".to_owned(),
        Column::Attribute(index) => format!("attributes.{}", definitions.get(index)?.key),
        Column::Ignored => return None,
    })
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "encoding_tests.rs"]
mod encoding_tests;
