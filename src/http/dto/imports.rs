//! Imports as the API reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::core::import::{self, UpdateMode};
use crate::db::import_jobs::ImportRow;
use crate::http::dto::members::Warning;
use crate::http::error::Problem;

/// How an import updates contacts that exist already (matched by validated phone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdateParam {
    /// Fill only a contact's empty name and email; add tags and missing attributes.
    #[default]
    Fill,
    /// The file's non-empty values replace the contact's.
    Overwrite,
}

impl From<UpdateParam> for UpdateMode {
    fn from(param: UpdateParam) -> Self {
        match param {
            UpdateParam::Fill => Self::Fill,
            UpdateParam::Overwrite => Self::Overwrite,
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Region for numbers written without a country prefix (ISO 3166, e.g. `IT`); the
    /// tenant's `default_region` when absent.
    #[param(example = "IT")]
    pub default_region: Option<String>,
    /// How existing contacts (matched by validated phone) are updated: `fill` (default)
    /// fills only empty values, `overwrite` lets the file's non-empty values win. Opt-out
    /// and consent are never changed by an import.
    #[param(inline, example = "fill")]
    pub update: Option<UpdateParam>,
    // No examples on the parameters that change how the file reads: Swagger UI fills
    // examples in on "Try it out", and every file would then be read against them.
    /// The text's encoding when the file does not say (no BOM): `utf-8`, `windows-1252`,
    /// `iso-8859-15`, `utf-16le`... (a WHATWG label). Wins over the body's `charset`.
    /// Without either, the service detects it.
    #[validate(length(min = 1, max = 40))]
    #[param(min_length = 1, max_length = 40)]
    pub encoding: Option<String>,
    /// The workbook's sheet to read (`.xlsx`), e.g. `Contacts`; the first sheet when
    /// absent.
    #[validate(length(min = 1, max = 100))]
    #[param(min_length = 1, max_length = 100)]
    pub sheet: Option<String>,
    /// JSON: which header holds which field, overriding recognition, e.g.
    /// `{"phone": "Cell", "name": ["Nome", "Cognome"], "email": "Posta", "tags":
    /// "Etichette", "attributes.city": "Città"}`. A header the file lacks is 422
    /// `mapped_column_missing`. May also be sent as the multipart field `mapping`.
    #[validate(length(min = 2, max = 4000))]
    #[param(min_length = 2, max_length = 4000)]
    pub mapping: Option<String>,
    /// `true`: answer the exact report the import would produce, and write nothing (no
    /// `import_id`).
    pub dry_run: Option<bool>,
}

/// A preview's parameters: those of the import that change how the file reads.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewParams {
    /// As for the import.
    #[param(example = "IT")]
    pub default_region: Option<String>,
    /// As for the import.
    #[validate(length(min = 1, max = 40))]
    #[param(min_length = 1, max_length = 40)]
    pub encoding: Option<String>,
    /// As for the import.
    #[validate(length(min = 1, max = 100))]
    #[param(min_length = 1, max_length = 100)]
    pub sheet: Option<String>,
    /// As for the import.
    #[validate(length(min = 2, max = 4000))]
    #[param(min_length = 2, max_length = 4000)]
    pub mapping: Option<String>,
}

/// The upload, as `multipart/form-data`: the part `file`, and optionally `mapping`; any
/// other part is refused (422 `unexpected_form_field`).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ImportUpload {
    /// The CSV file or Excel workbook (`.xlsx`), at most 10 MB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// As the `mapping` query parameter (which wins when both are given).
    #[schema(max_length = 4000)]
    pub mapping: Option<String>,
}

/// A row that was not imported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowProblem {
    /// The physical line in the file; the header is line 1.
    #[schema(example = 7)]
    pub line: u64,
    /// Invalid rows: `missing_phone`, `invalid_phone`, `invalid_name`, `invalid_email`,
    /// `invalid_tags`, `invalid_attribute_value`, `unreadable_row`. Rows the channel rules
    /// refuse: the membership codes (`no_validated_mobile`, `no_email`,
    /// `no_privacy_consent`).
    #[schema(example = "invalid_phone")]
    pub code: String,
    #[schema(
        example = "Not a valid phone number (numbers without a country prefix are read as IT)."
    )]
    pub message: String,
    /// The offending value as written.
    #[schema(example = "333 12")]
    pub value: String,
}

/// A row naming a phone an earlier row named too, in this or another spelling.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DuplicateRow {
    #[schema(example = 9)]
    pub line: u64,
    /// The line whose contact this row is.
    #[schema(example = 2)]
    pub first_line: u64,
    #[schema(example = "+39 333 123 4567")]
    pub value: String,
}

/// What happened to every row: `rows` = `added` + `already_members` + `rejected` +
/// `duplicates_in_file` + `invalid_rows`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    /// The import, for `GET /v1/imports/{id}` and `POST /v1/imports/{id}/revert`; null
    /// for a dry run.
    #[schema(example = 31)]
    pub import_id: Option<i64>,
    /// What was read: `csv` or `xlsx`.
    #[schema(example = "csv")]
    pub format: String,
    /// The text's encoding as read (`UTF-8`, `windows-1252`, `UTF-16LE`...).
    #[schema(example = "UTF-8")]
    pub encoding: String,
    /// A CSV's delimiter (`,` `;` or a tab); null for a workbook.
    #[schema(example = ";")]
    pub delimiter: Option<String>,
    /// Data rows read (the header and wholly empty lines are not rows).
    #[schema(example = 120)]
    pub rows: i64,
    /// Rows whose contact joined the segment.
    #[schema(example = 100)]
    pub added: i64,
    /// Rows whose contact was a member already.
    #[schema(example = 10)]
    pub already_members: i64,
    /// Rows whose contact the segment's channel rules refuse (listed in `errors`).
    #[schema(example = 2)]
    pub rejected: i64,
    /// Contacts the file created.
    #[schema(example = 80)]
    pub contacts_created: i64,
    /// Existing contacts the file changed.
    #[schema(example = 12)]
    pub contacts_updated: i64,
    /// Rows naming a phone an earlier row named (listed in `duplicates`).
    #[schema(example = 3)]
    pub duplicates_in_file: i64,
    /// Rows skipped as invalid, e.g. an empty or invalid phone (listed in `errors`).
    #[schema(example = 5)]
    pub invalid_rows: i64,
    /// Invalid and rejected rows, in line order (the first 1000).
    pub errors: Vec<RowProblem>,
    /// Duplicate rows (the first 1000).
    pub duplicates: Vec<DuplicateRow>,
    /// Header names that are neither a known column nor a defined attribute.
    #[schema(example = json!(["Notes"]))]
    pub ignored_columns: Vec<String>,
    /// As in a membership report (`no_validated_mobile` on WhatsApp), plus `opted_out`
    /// for contacts of the file that stay opted out.
    pub warnings: Vec<Warning>,
    /// The segment's members after the import.
    #[schema(example = 1250)]
    pub recipients: i64,
}

/// Where an asynchronous import stands: `queued` and `running` move on to `succeeded`
/// or `failed`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(example = "running")]
pub enum ImportStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// An import started with `Prefer: respond-async`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportJob {
    #[schema(example = 31)]
    pub id: i64,
    #[schema(example = 7)]
    pub segment_id: i64,
    pub status: ImportStatus,
    /// The file's size.
    #[schema(example = 10485760)]
    pub bytes_total: i64,
    /// How far the import has read: `bytes_read` / `bytes_total` is the progress.
    #[schema(example = 5242880)]
    pub bytes_read: i64,
    /// Data rows read so far.
    #[schema(example = 100000)]
    pub rows_read: i64,
    /// When `succeeded`.
    pub report: Option<ImportReport>,
    /// When `failed`: why; nothing was written.
    pub error: Option<Problem>,
    #[schema(example = "2026-02-12T09:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// Moves as progress is recorded.
    #[schema(example = "2026-02-12T09:00:04Z")]
    pub updated_at: DateTime<Utc>,
}

impl From<ImportRow> for ImportJob {
    fn from(row: ImportRow) -> Self {
        let status = match row.status.as_str() {
            "queued" => ImportStatus::Queued,
            "running" => ImportStatus::Running,
            "succeeded" => ImportStatus::Succeeded,
            _ => ImportStatus::Failed,
        };
        Self {
            id: row.id,
            segment_id: row.segment_id,
            status,
            bytes_total: row.bytes_total,
            bytes_read: row.bytes_read,
            rows_read: row.rows_read,
            report: row
                .report
                .and_then(|r| serde_json::from_value::<import::Report>(r).ok())
                .map(Into::into),
            error: row.error.and_then(|e| serde_json::from_value(e).ok()),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl From<import::RowProblem> for RowProblem {
    fn from(problem: import::RowProblem) -> Self {
        Self {
            line: problem.line,
            code: problem.code,
            message: problem.message,
            value: problem.value,
        }
    }
}

impl From<import::DuplicateRow> for DuplicateRow {
    fn from(row: import::DuplicateRow) -> Self {
        Self {
            line: row.line,
            first_line: row.first_line,
            value: row.value,
        }
    }
}

impl From<import::Report> for ImportReport {
    fn from(report: import::Report) -> Self {
        Self {
            import_id: report.import_id,
            format: report.format,
            encoding: report.encoding,
            delimiter: report.delimiter,
            rows: report.rows,
            added: report.added,
            already_members: report.already_members,
            rejected: report.rejected,
            contacts_created: report.contacts_created,
            contacts_updated: report.contacts_updated,
            duplicates_in_file: report.duplicates_in_file,
            invalid_rows: report.invalid_rows,
            errors: report.errors.into_iter().map(Into::into).collect(),
            duplicates: report.duplicates.into_iter().map(Into::into).collect(),
            ignored_columns: report.ignored_columns,
            warnings: report.warnings.into_iter().map(Into::into).collect(),
            recipients: report.recipients,
        }
    }
}
