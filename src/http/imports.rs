//! Imports into a static segment: the upload, the template, and asynchronous jobs.

use actix_web::http::header;
use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::core::error::Error;
use crate::core::import::MAX_FILE_BYTES;
use crate::core::phone;
use crate::http::auth::Caller;
use crate::http::dto::imports::*;
use crate::http::error::{problem_json, ApiError};
use crate::http::extract::{declared_length, read_limited, Path, Query};
use crate::http::segments::SegmentPath;
use crate::http::state::AppState;
use crate::service::imports::{self, ImportRequest};

const NOT_FOUND: &str = "`not_found`: no such segment.";
const TEMPLATE: &str = "phone,name,email,tags\n\
                        +39 333 123 4567,Giulia Rossi,giulia.rossi@example.com,lead|milan\n\
                        +44 7400 123456,Oliver Smith,,\n\
                        333 765 4321,Marco Bianchi,,vip\n";

/// Import a CSV file into a static segment
///
/// Send the file as `multipart/form-data` (field `file`) or as a raw `text/csv` body, at
/// most 10 MB (413 beyond, refused while reading). The header row is required; columns are
/// matched case-insensitively: `phone` (or `phone_number`, `mobile`, `msisdn`) is required;
/// `name` (`full_name`), `email`, `tags` (separated by `|`) and any defined attribute key
/// are optional; other columns are listed in `ignored_columns`. `,` `;` and tab
/// delimiters, a UTF-8 BOM, quotes and CRLF are accepted; a file that is not UTF-8 is
/// refused (422 `not_utf8`), never guessed at.
///
/// Each row's phone is validated and normalised (with `default_region`, else the tenant's);
/// the contact with that phone is created or updated (`update=fill`, the default, fills
/// only empty values; `overwrite` lets the file's non-empty values win) and added to the
/// segment under its channel's rules and the endpoint limit. Opt-out and consent are never
/// changed. Two spellings of one number are one contact (`duplicates_in_file`). Every row
/// is counted in exactly one of `added`, `already_members`, `rejected`,
/// `duplicates_in_file` and `invalid_rows`.
///
/// All or nothing: a file that cannot be read, or a write that fails, changes nothing;
/// invalid rows are reported and skipped. With `Prefer: respond-async` the answer is 202
/// and a job to poll at `GET /v1/imports/{id}` (its `Location`): only the segment is
/// checked before answering; a file that cannot be read, or the endpoint limit, then ends
/// the job `failed` with the problem in its `error`.
#[utoipa::path(
    tag = "segments",
    params(("id" = i64, Path, description = "Segment id"), ImportParams,
        ("Prefer" = Option<String>, Header, description = "`respond-async` to get 202 and a job to poll")),
    request_body(content((ImportUpload = "multipart/form-data"), (String = "text/csv")),
        description = "The CSV file: a header row, then one contact per row."),
    responses(
        (status = 200, description = "The import is done.", body = ImportReport),
        (status = 202, description = "The import runs in the background; poll the `Location`.", body = ImportJob,
            headers(("Location" = String, description = "`/v1/imports/{id}`"))),
        (status = 400, description = "`unreadable_body`: the multipart upload cannot be read; or `invalid_query` / `invalid_path_parameter`, as on every route."),
        (status = 404, description = NOT_FOUND),
        (status = 409, description = "The segment is dynamic (`dynamic_segment_read_only`)."),
        (status = 413, description = "The file is larger than 10 MB."),
        (status = 415, description = "Neither `multipart/form-data` nor `text/csv`."),
        (status = 422, description = "The file cannot be read (`not_utf8`, `unsupported_encoding`, `empty_file`, `missing_phone_column`, `missing_file_field`), a parameter is invalid, or the import would pass the endpoint limit (`endpoint_limit_exceeded`). Nothing was written."),
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
    let region = known_region(params.default_region)?;
    let asynchronous = wants_async(&request);
    let file = read_upload(&request, payload).await?;
    let request = ImportRequest {
        tenant,
        segment_id: path.0.id,
        file,
        region,
        mode: params.update.unwrap_or_default().into(),
    };
    if asynchronous {
        let job = imports::start_job(&state.env, request, problem_json).await?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, format!("/v1/imports/{}", job.id)))
            .json(ImportJob::from(job)));
    }
    let report = imports::import(&state.env, request).await?;
    Ok(HttpResponse::Ok().json(ImportReport::from(report)))
}

/// The CSV's bytes, from a multipart `file` field or a raw body, refused (413) as soon as
/// they pass the limit.
async fn read_upload(request: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let declared = declared_length(request);
    let mime = request.mime_type().ok().flatten();
    let is_multipart = mime
        .as_ref()
        .is_some_and(|m| m.type_() == "multipart" && m.subtype() == "form-data");
    let is_csv = mime.as_ref().is_some_and(|m| {
        (m.type_() == "text" && (m.subtype() == "csv" || m.subtype() == "plain"))
            || (m.type_() == "application" && m.subtype() == "octet-stream")
    });
    if !is_multipart && !is_csv {
        return Err(ApiError::UnsupportedMediaType(
            "Send the file as `multipart/form-data` (field `file`) or as a `text/csv` body."
                .to_owned(),
        ));
    }
    // Multipart framing adds a little to the file itself.
    let framing = if is_multipart { 64 * 1024 } else { 0 };
    if declared.is_some_and(|length| length > MAX_FILE_BYTES + framing) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_FILE_BYTES,
        });
    }
    if !is_multipart {
        return read_limited(payload, MAX_FILE_BYTES).await;
    }
    let mut multipart = actix_multipart::Multipart::new(request.headers(), payload);
    let first = tokio::time::timeout(STALLED_PART, multipart.next())
        .await
        .map_err(|_| ApiError::BodyStalled)?;
    let Some(field) = first else {
        return Err(Error::unprocessable(
            "missing_file_field",
            "The form has no `file` field: send the CSV as the form field named `file`.",
        )
        .into());
    };
    let field = field.map_err(unreadable_body)?;
    let file = match field.name() {
        Some("file") => read_limited(field, MAX_FILE_BYTES).await?,
        name => return Err(unexpected_field(name)),
    };
    // The form ends there: a further part is refused, not ignored.
    let next = tokio::time::timeout(STALLED_PART, multipart.next())
        .await
        .map_err(|_| ApiError::BodyStalled)?;
    match next {
        None => Ok(file),
        Some(Ok(field)) => Err(unexpected_field(field.name())),
        Some(Err(error)) => Err(unreadable_body(error)),
    }
}

fn unexpected_field(name: Option<&str>) -> ApiError {
    ApiError::invalid_field(
        name.unwrap_or_default(),
        "unexpected_form_field",
        "the form takes one field, `file`",
    )
}

/// A multipart upload that sends nothing for this long is cut off (408).
const STALLED_PART: std::time::Duration = std::time::Duration::from_secs(30);

fn unreadable_body(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "unreadable_body",
        format!("Could not read the upload: {error}"),
    )
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
        .service(get_import);
}
