//! Imports into a static segment: the upload, the template, and asynchronous jobs.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::core::import::source::ReadOptions;
use crate::core::import::UpdateMode;
use crate::core::phone;
use crate::core::tenant::Tenant;
use crate::http::auth::Caller;
use crate::http::dto::import_preview::ImportPreview;
use crate::http::dto::imports::*;
use crate::http::dto::members::RemovedMembers;
use crate::http::error::{problem_json, ApiError};
use crate::http::extract::{Path, Query};
use crate::http::segments::SegmentPath;
use crate::http::state::AppState;
use crate::http::upload::{mapping_of, read_upload};
use crate::service::imports::{self, ImportRequest};

const NOT_FOUND: &str = "`not_found`: no such segment.";
const TEMPLATE: &str = "phone,name,email,tags\n\
                        +39 333 123 4567,Giulia Rossi,giulia.rossi@example.com,lead|milan\n\
                        +44 7400 123456,Oliver Smith,,\n\
                        333 765 4321,Marco Bianchi,,vip\n";

/// Import a contact file into a static segment
///
/// Send the file as `multipart/form-data` (field `file`, and optionally `mapping`) or as
/// the raw body (`text/csv`, `text/plain`, `application/octet-stream` or the `.xlsx`
/// media type), at most 10 MB (413 beyond, refused while reading).
///
/// Files as people have them: CSV in UTF-8 (with or without BOM), UTF-16 with BOM (Excel's
/// "Unicode Text") or a legacy encoding such as Windows-1252, detected from the bytes
/// unless the body's `charset` or `?encoding=` says; `,` `;` or tab between fields;
/// LF, CRLF or lone CR line endings; quotes. Excel workbooks (`.xlsx`, told by content):
/// the first sheet or `?sheet=`, cells as Excel shows them; a workbook that would unpack
/// past 200 MB is refused (413 `workbook_too_large`). The report says what was read
/// (`format`, `encoding`, `delimiter`).
///
/// The header row is required. Columns are recognised by header (the table below),
/// compared without case, accents or punctuation; `mapping` overrides it. A phone column
/// is required (for an email segment, an e-mail column); among several phone columns a
/// mobile one wins, and a cell with several numbers gives its first valid mobile. First
/// and last names are joined into `name`; tags are `|`-separated, or a quoted comma list
/// as Mailchimp writes it; a defined attribute is recognised by key or label. Other
/// columns are listed in `ignored_columns`.
///
/// Each row's phone is validated and normalised (with `default_region`, else the tenant's);
/// the contact with that phone (in an email segment, without a valid phone: with that
/// e-mail, ignoring case; `ambiguous_email` when two contacts share it) is created or
/// updated (`update=fill`, the default, fills only empty values; `overwrite` lets the
/// file's non-empty values win) and added to the segment under its channel's rules and
/// the endpoint limit. Opt-out and consent are never changed. Two spellings of one number
/// are one contact (`duplicates_in_file`). Every row is counted in exactly one of `added`,
/// `already_members`, `rejected`, `duplicates_in_file` and `invalid_rows`.
///
/// All or nothing: a file that cannot be read, or a write that fails, changes nothing;
/// invalid rows are reported and skipped. `dry_run=true` answers the exact report and
/// writes nothing. Every import has an `import_id` (`POST /v1/imports/{id}/revert` undoes
/// its additions). With `Prefer: respond-async` the answer is 202 and a job to poll at
/// `GET /v1/imports/{id}` (its `Location`): only the segment is checked before
/// answering; a file that cannot be read, or the endpoint limit, then ends the job
/// `failed` with the problem in its `error`.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id"), ImportParams,
        ("Prefer" = Option<String>, Header, description = "`respond-async` to get 202 and a job to poll")),
    request_body(content((ImportUpload = "multipart/form-data"), (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "application/octet-stream")),
        description = "The file: a header row, then one contact per row."),
    responses(
        (status = 200, description = "The import is done (or, with `dry_run`, what it would do).", body = ImportReport),
        (status = 202, description = "The import runs in the background; poll the `Location`.", body = ImportJob,
            headers(("Location" = String, description = "`/v1/imports/{id}`"))),
        (status = 400, description = "`unreadable_body`: the multipart upload cannot be read; or `invalid_query` / `invalid_path_parameter`, as on every route."),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = "The segment is dynamic (`dynamic_segment_read_only`)."),
        (status = 413, description = "The file is larger than 10 MB (`payload_too_large`), or a workbook would unpack past 200 MB (`workbook_too_large`)."),
        (status = 415, description = "Not multipart, CSV, text, a workbook or octet-stream."),
        (status = 422, description = "The file cannot be read (`undecodable_text`, `unknown_encoding`, `unsupported_format`, `unreadable_workbook`, `sheet_not_found`, `too_many_columns`, `empty_file`, `missing_phone_column`, `missing_email_column`, `mapped_column_missing`, `missing_file_field`), `mapping` or a parameter is invalid, or the import would pass the endpoint limit (`endpoint_limit_exceeded`). Nothing was written."),
    )
)]
#[post("/segments/{id}/import")]
async fn import_segment_csv(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Query(params): Query<ImportParams>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let dry_run = params.dry_run.unwrap_or(false);
    let asynchronous = wants_async(&request) && !dry_run;
    let reading = Reading {
        region: params.default_region,
        encoding: params.encoding,
        sheet: params.sheet,
        mapping: params.mapping,
    };
    let mut request = import_request(tenant, path.0.id, reading, &request, payload).await?;
    request.mode = params.update.unwrap_or_default().into();
    request.dry_run = dry_run;
    if asynchronous {
        let job = imports::start_job(&state.env, request, problem_json).await?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, format!("/v1/imports/{}", job.id)))
            .json(ImportJob::from(job)));
    }
    let report = imports::import(&state.env, request).await?;
    Ok(HttpResponse::Ok().json(ImportReport::from(report)))
}

/// Preview an import
///
/// Takes the same body and parameters as the import and writes nothing: how the file
/// reads (`format`, `encoding`, `delimiter`, about how many rows), each column with the
/// field it fills and how that was decided (`recognised`, `mapped`, `ignored`) and a few
/// of its values, and the first 20 data rows as the import would read them, each with
/// the problem that would skip it. For a mapping screen: show it, let the user change
/// `mapping`, preview again, then import.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id"), PreviewParams),
    request_body(content((ImportUpload = "multipart/form-data"), (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "application/octet-stream")),
        description = "The file, as for the import."),
    responses(
        (status = 200, description = "How the file reads.", body = ImportPreview),
        (status = 400, description = "`unreadable_body`: the multipart upload cannot be read."),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = "The segment is dynamic (`dynamic_segment_read_only`)."),
        (status = 413, description = "As for the import."),
        (status = 415, description = "As for the import."),
        (status = 422, description = "The file cannot be read, or `mapping` is invalid, as for the import."),
    )
)]
#[post("/segments/{id}/import/preview")]
async fn preview_segment_import(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<SegmentPath>,
    Query(params): Query<PreviewParams>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<web::Json<ImportPreview>, ApiError> {
    let reading = Reading {
        region: params.default_region,
        encoding: params.encoding,
        sheet: params.sheet,
        mapping: params.mapping,
    };
    let mut request = import_request(tenant, path.0.id, reading, &request, payload).await?;
    request.dry_run = true;
    let preview = imports::preview(&state.env, request).await?;
    Ok(web::Json(preview.into()))
}

/// Revert an import
///
/// Removes from the segment the members this import added that are still members;
/// contacts stay, and so do members added otherwise. Reverting again removes nothing
/// (`removed: 0`), as does reverting a failed import. An import still running is 409
/// `import_not_finished`.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Import id (`import_id` of the report)")),
    responses(
        (status = 200, description = "What was removed, and the segment's members now.", body = RemovedMembers),
        (status = 404, description = "`not_found`: no such import."),
        (status = 409, description = "`import_not_finished`: the import is still running."),
    )
)]
#[post("/imports/{id}/revert")]
async fn revert_import(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ImportPath>,
) -> Result<web::Json<RemovedMembers>, ApiError> {
    let removed = imports::revert(&state.env, tenant, path.0.id).await?;
    Ok(web::Json(removed.into()))
}

/// How the upload is to be read: the parameters the import and its preview share.
struct Reading {
    region: Option<String>,
    encoding: Option<String>,
    sheet: Option<String>,
    mapping: Option<String>,
}

/// The upload read and the request built: what the query says wins over the body's
/// charset and the form's `mapping`. A plain import (`fill`, not a dry run).
async fn import_request(
    tenant: Tenant,
    segment_id: i64,
    reading: Reading,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<ImportRequest, ApiError> {
    let region = known_region(reading.region)?;
    let upload = read_upload(request, payload).await?;
    Ok(ImportRequest {
        tenant,
        segment_id,
        read: ReadOptions {
            encoding: reading.encoding.or(upload.charset),
            sheet: reading.sheet,
        },
        mapping: mapping_of(reading.mapping.or(upload.mapping))?,
        file: upload.file,
        region,
        mode: UpdateMode::default(),
        dry_run: false,
    })
}

/// The region given to read national numbers with, if the phone library knows it.
fn known_region(region: Option<String>) -> Result<Option<String>, ApiError> {
    match region {
        Some(region) if !phone::is_known_region(&region) => Err(ApiError::invalid_field(
            "default_region",
            "unknown_region",
            "must be an ISO 3166 region code the phone library knows, e.g. IT",
        )),
        region => Ok(region),
    }
}

/// `Prefer: respond-async` (RFC 7240), possibly among other preferences.
fn wants_async(request: &HttpRequest) -> bool {
    let prefer = request
        .headers()
        .get("Prefer")
        .and_then(|value| value.to_str().ok());
    prefer.is_some_and(|p| {
        p.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("respond-async"))
    })
}

#[derive(Deserialize)]
pub struct ImportPath {
    pub id: i64,
}

/// Read an asynchronous import
///
/// The job an import with `Prefer: respond-async` started: `status` (`queued`,
/// `running`, `succeeded`, `failed`), progress (`bytes_read` of `bytes_total`,
/// `rows_read`) for a progress bar, and when done the import report (`succeeded`) or
/// the problem (`failed`; nothing was written). Progress is recorded about once a
/// second. A job cut off by a restart ends `failed` (`import_interrupted`), never stuck
/// `running`. Poll until `status` is `succeeded` or `failed`.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Import id, from the `Location` of the 202 answer")),
    responses(
        (status = 200, description = "The job.", body = ImportJob),
        (status = 404, description = "`not_found`: no such import."),
    )
)]
#[get("/imports/{id}")]
async fn get_import(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ImportPath>,
) -> Result<web::Json<ImportJob>, ApiError> {
    let job = imports::job(&state.env, tenant, path.0.id, problem_json).await?;
    Ok(web::Json(job.into()))
}

/// Download a CSV template for imports
///
/// A sample file to fill in: the header `phone,name,email,tags` and three example rows,
/// sent as the attachment `segment-import-template.csv`. Attribute keys may be added as
/// further columns.
#[utoipa::path(
    tag = "segments",
    responses((status = 200, description = "`phone,name,email,tags` and example rows.", content_type = "text/csv", body = String))
)]
#[get("/segments/import-template.csv")]
async fn get_import_template(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"segment-import-template.csv\"",
        ))
        .body(TEMPLATE)
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(get_import_template)
        .service(import_segment_csv)
        .service(preview_segment_import)
        .service(get_import)
        .service(revert_import);
}
