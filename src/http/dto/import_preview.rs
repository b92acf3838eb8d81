//! An import's preview as the API writes it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::dto::imports::RowProblem;

/// How a column of the file reads.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnHow {
    /// Its header is one the service knows (see the import's description).
    Recognised,
    /// The request's `mapping` named it.
    Mapped,
    /// Nothing is read from it.
    Ignored,
}

/// One column of the file.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewColumn {
    #[schema(example = "Cellulare")]
    pub header: String,
    /// `phone`, `name`, `first_name`, `last_name`, `email`, `tags` or
    /// `attributes.<key>`; null when ignored.
    #[schema(example = "phone")]
    pub field: Option<String>,
    pub how: ColumnHow,
    /// Up to three non-empty values of the column, as written.
    #[schema(example = json!(["333 123 4567", "+39 347 765 4321"]))]
    pub samples: Vec<String>,
}

/// A data row as the import would read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewRow {
    #[schema(example = 2)]
    pub line: u64,
    #[schema(example = "Giulia Rossi")]
    pub name: Option<String>,
    /// As written.
    #[schema(example = "333 123 4567")]
    pub phone: Option<String>,
    #[schema(example = "+393331234567")]
    pub phone_e164: Option<String>,
    /// Whether the phone is valid.
    pub phone_valid: bool,
    #[schema(example = "giulia@example.com")]
    pub email: Option<String>,
    #[schema(example = json!(["vip"]))]
    pub tags: Vec<String>,
    #[schema(value_type = Object, example = json!({"city": "Milan"}))]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Why the import would skip the row; null when it would import it.
    pub problem: Option<RowProblem>,
}

/// How the file reads, before anything is written.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportPreview {
    #[schema(example = "csv")]
    pub format: String,
    #[schema(example = "windows-1252")]
    pub encoding: String,
    #[schema(example = ";")]
    pub delimiter: Option<String>,
    /// About how many data rows the file has.
    #[schema(example = 1200)]
    pub rows_estimate: u64,
    pub columns: Vec<PreviewColumn>,
    /// The first 20 data rows.
    pub sample_rows: Vec<PreviewRow>,
}

impl From<crate::service::imports::Preview> for ImportPreview {
    fn from(preview: crate::service::imports::Preview) -> Self {
        use crate::core::import::file::How;
        Self {
            format: preview.format,
            encoding: preview.encoding,
            delimiter: preview.delimiter,
            rows_estimate: preview.rows_estimate,
            columns: preview
                .columns
                .into_iter()
                .map(|c| PreviewColumn {
                    header: c.column.header,
                    field: c.column.field,
                    how: match c.column.how {
                        How::Recognised => ColumnHow::Recognised,
                        How::Mapped => ColumnHow::Mapped,
                        How::Ignored => ColumnHow::Ignored,
                    },
                    samples: c.samples,
                })
                .collect(),
            sample_rows: preview
                .sample_rows
                .into_iter()
                .map(|sample| match sample.row {
                    Some(row) => PreviewRow {
                        line: sample.line,
                        name: Some(row.name).filter(|n| !n.is_empty()),
                        phone: Some(row.phone_as_written).filter(|p| !p.is_empty()),
                        phone_valid: row.phone.is_some(),
                        phone_e164: row.phone.map(|p| p.e164),
                        email: row.email,
                        tags: row.tags,
                        attributes: row.attributes,
                        problem: None,
                    },
                    None => PreviewRow {
                        line: sample.line,
                        name: None,
                        phone: None,
                        phone_e164: None,
                        phone_valid: false,
                        email: None,
                        tags: Vec::new(),
                        attributes: serde_json::Map::new(),
                        problem: sample.problem.map(Into::into),
                    },
                })
                .collect(),
        }
    }
}
