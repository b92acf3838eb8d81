//! What each column of an upload holds, and each row read into a contact: validated and
//! typed, or an error that names its line. No database here. The table comes from
//! [`super::source`]; the headers it recognises from [`super::headers`].

use csv::StringRecord;
use serde_json::{Map, Value};

use super::headers::{self, Field};
use super::source::Record;
use super::unreadable::Unreadable;
use crate::core::attributes::{from_cell, Definition};
use crate::core::contact::{
    is_valid_email, normalize_tags, MAX_NAME_LENGTH, MAX_TAGS, MAX_TAG_LENGTH,
};
use crate::core::error::FieldError;
use crate::core::phone::{self, Phone};

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

/// The client's own reading of the header: each field, the header(s) holding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub phone: Vec<String>,
    /// One header (a full name), or several joined with a space (first, then last).
    pub name: Vec<String>,
    pub email: Option<String>,
    pub tags: Option<String>,
    /// (attribute key, header).
    pub attributes: Vec<(String, String)>,
}

impl Mapping {
    /// Reads `{"phone": "Cell", "name": ["Nome", "Cognome"], "email": "Posta", "tags":
    /// "Etichette", "attributes.city": "Città"}`; every problem names its key.
    pub fn parse(value: &Value, definitions: &[Definition]) -> Result<Self, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new(
                "mapping",
                "invalid_mapping",
                "a JSON object from field (phone, name, email, tags, attributes.<key>) to header",
            )]);
        };
        let mut mapping = Mapping::default();
        let mut errors = Vec::new();
        for (key, headers) in object {
            let path = format!("mapping.{key}");
            let names: Vec<String> = match headers {
                Value::String(header) => vec![header.clone()],
                Value::Array(items) if !items.is_empty() && items.len() <= 5 => items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            let single = names.len() == 1 && headers.is_string();
            if names.is_empty() || names.iter().any(|n| n.trim().is_empty() || n.len() > 200) {
                errors.push(FieldError::new(
                    path,
                    "invalid_mapping",
                    "a header name, or a list of 1 to 5 header names",
                ));
                continue;
            }
            match key.as_str() {
                "phone" => mapping.phone = names,
                "name" => mapping.name = names,
                "email" | "tags" if !single => {
                    errors.push(FieldError::new(path, "invalid_mapping", "one header name"))
                }
                "email" => mapping.email = names.into_iter().next(),
                "tags" => mapping.tags = names.into_iter().next(),
                other => match other.strip_prefix("attributes.") {
                    Some(attribute) if single && definitions.iter().any(|d| d.key == attribute) => {
                        mapping.attributes.push((
                            attribute.to_owned(),
                            names.into_iter().next().unwrap_or_default(),
                        ));
                    }
                    Some(_) if !single => {
                        errors.push(FieldError::new(path, "invalid_mapping", "one header name"))
                    }
                    Some(attribute) => errors.push(FieldError::new(
                        path,
                        "undefined_attribute",
                        format!("no attribute `{attribute}` is defined"),
                    )),
                    None => errors.push(FieldError::new(
                        path,
                        "unknown_field",
                        "map phone, name, email, tags or attributes.<key>",
                    )),
                },
            }
        }
        if errors.is_empty() {
            Ok(mapping)
        } else {
            Err(errors)
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
    columns: Vec<Column>,
    info: Vec<ColumnInfo>,
    /// The phone columns, mobile ones first, each in file order.
    phones: Vec<usize>,
    required: Required,
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

/// The number a row's phone cells give, with the text it came from: the first valid one
/// of a mobile column, else the first valid mobile number, else the first valid number.
/// `cells` are (cell, from a mobile column), mobile columns first; a cell may hold several
/// numbers (Google writes ` ::: ` between them).
fn best_number(cells: &[(&str, bool)], region: Option<&str>) -> Option<(Phone, String)> {
    let valid: Vec<(Phone, String, bool)> = cells
        .iter()
        .flat_map(|(cell, mobile)| cell.split(":::").map(move |part| (part.trim(), *mobile)))
        .filter(|(part, _)| !part.is_empty())
        .filter_map(|(part, mobile)| {
            read_number(part, region).map(|phone| (phone, part.to_owned(), mobile))
        })
        .collect();
    let chosen = match valid.len() {
        0 | 1 => 0,
        _ => valid
            .iter()
            .position(|(_, _, mobile)| *mobile)
            .or_else(|| {
                valid
                    .iter()
                    .position(|(phone, _, _)| phone::is_mobile(phone))
            })
            .unwrap_or(0),
    };
    valid
        .into_iter()
        .nth(chosen)
        .map(|(phone, text, _)| (phone, text))
}

/// A number as written; one a spreadsheet stored as digits lost its `+`: digits long
/// enough to carry a country code are tried again with it.
fn read_number(text: &str, region: Option<&str>) -> Option<Phone> {
    phone::normalize(text, region).or_else(|| {
        let digits = text.len() >= 11 && text.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| phone::normalize(&format!("+{text}"), None))
            .flatten()
    })
}

/// Tags as people write them: `|`-separated; a quoted comma list as Mailchimp writes it
/// (`"VIP","Clienti Milano"`); Google's groups (`* myContacts ::: Friends`, its system
/// group left out).
pub fn split_tags(cell: &str) -> Vec<String> {
    let mut tags = split_tag_cell(cell.trim());
    tags.retain(|tag| !tag.trim().is_empty());
    tags
}

fn split_tag_cell(cell: &str) -> Vec<String> {
    if cell.starts_with('"') {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(cell.as_bytes());
        if let Some(Ok(record)) = reader.records().next() {
            return record.iter().map(str::to_owned).collect();
        }
    }
    if cell.contains(":::") || cell.starts_with("* ") {
        return cell
            .split(":::")
            .map(str::trim)
            .filter(|group| *group != "* myContacts" && *group != "* starred")
            .map(|group| group.trim_start_matches("* ").to_owned())
            .collect();
    }
    cell.split('|').map(str::to_owned).collect()
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
