//! CSV import into a static segment: the upload, the template, and asynchronous jobs.

pub mod dto;
pub mod file;
pub mod queries;
pub mod run;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

pub use dto::*;
use run::{ImportRequest, Progress, MAX_FILE_BYTES};

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::{declared_length, read_limited, Path, Query};
use crate::members::write::lock_static_segments;
use crate::segments::SegmentPath;
use crate::{db, phone, AppState};

const NOT_FOUND: &str = "`not_found`: no such segment.";
const TEMPLATE: &str = "phone,name,email,tags\n\
                        +39 333 123 4567,Giulia Rossi,giulia.rossi@example.com,lead|milan\n\
                        +44 7400 123456,Oliver Smith,,\n\
                        333 765 4321,Marco Bianchi,,vip\n";

/// Progress is written this often while an asynchronous import runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

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
        (status = 400, description = "`unreadable_body`: the multipart upload cannot be read; or `invalid_query` / `invalid_path_parameter`, as on every route.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The segment is dynamic (`dynamic_segment_read_only`).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than 10 MB.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither `multipart/form-data` nor `text/csv`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file cannot be read (`not_utf8`, `unsupported_encoding`, `empty_file`, `missing_phone_column`, `missing_file_field`), a parameter is invalid, or the import would pass the endpoint limit (`endpoint_limit_exceeded`). Nothing was written.", body = Problem, content_type = "application/problem+json"),
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
    if let Some(region) = &params.default_region {
        if !phone::is_known_region(region) {
            return Err(ApiError::invalid_field(
                "default_region",
                "unknown_region",
                "must be an ISO 3166 region code the phone library knows, e.g. IT",
            ));
        }
    }
    let asynchronous = wants_async(
        request
            .headers()
            .get("Prefer")
            .and_then(|value| value.to_str().ok()),
    );
    let file = read_upload(&request, payload).await?;
    let request = Arc::new(ImportRequest {
        tenant,
        segment_id: path.0.id,
        file,
        region: params.default_region,
        mode: params.update.unwrap_or_default().into(),
    });
    if asynchronous {
        return start_job(state, request).await;
    }
    let report = import(&state.pool, request, Arc::new(Progress::default())).await?;
    Ok(HttpResponse::Ok().json(report))
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
    while let Some(field) = multipart.next().await {
        let field = field.map_err(unreadable_body)?;
        if field.name() == Some("file") {
            return read_limited(field, MAX_FILE_BYTES).await;
        }
        read_limited(field, MAX_FILE_BYTES).await?;
    }
    Err(ApiError::unprocessable(
        "missing_file_field",
        "The form has no `file` field: send the CSV as the form field named `file`.",
    ))
}

fn unreadable_body(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "unreadable_body",
        format!("Could not read the upload: {error}"),
    )
}

/// `Prefer: respond-async` (RFC 7240), possibly among other preferences.
fn wants_async(prefer: Option<&str>) -> bool {
    prefer.is_some_and(|p| {
        p.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("respond-async"))
    })
}

async fn import(
    pool: &db::PgPool,
    request: Arc<ImportRequest>,
    progress: Arc<Progress>,
) -> Result<ImportReport, ApiError> {
    db::retrying_transaction(pool, move |conn| run::import(conn, &request, &progress)).await
}

/// Records the job, answers 202, and runs the import in the background, writing progress
/// as it goes.
async fn start_job(
    state: web::Data<AppState>,
    request: Arc<ImportRequest>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, segment_id, bytes) = (
        request.tenant.id,
        request.segment_id,
        request.file.len() as i64,
    );
    let checked = request.clone();
    let job = db::transaction(&state.pool, move |conn| {
        // 404 or 409 now, as the synchronous import would answer.
        lock_static_segments(conn, &checked.tenant, &[segment_id])?;
        Ok(queries::insert_job(conn, tenant_id, segment_id, bytes)?)
    })
    .await?;
    let id = job.id;
    let pool = state.pool.clone();
    actix_web::rt::spawn(async move {
        let progress = Arc::new(Progress::default());
        let reporter = {
            let (pool, progress) = (pool.clone(), progress.clone());
            actix_web::rt::spawn(async move {
                let mut ticks = tokio::time::interval(PROGRESS_EVERY);
                loop {
                    ticks.tick().await;
                    let (bytes, rows) = (
                        progress.bytes.load(Ordering::Relaxed) as i64,
                        progress.rows.load(Ordering::Relaxed) as i64,
                    );
                    let _ = db::run(&pool, move |conn| {
                        queries::record_progress(conn, tenant_id, id, bytes, rows)
                    })
                    .await;
                }
            })
        };
        let outcome = import(&pool, request, progress.clone()).await;
        reporter.abort();
        let rows = progress.rows.load(Ordering::Relaxed) as i64;
        let outcome = match outcome {
            Ok(report) => Ok(serde_json::to_value(report).unwrap_or_default()),
            Err(error) => {
                tracing::warn!(%error, import = id, "import failed");
                Err(serde_json::to_value(error.to_problem()).unwrap_or_default())
            }
        };
        let finished = db::run(&pool, move |conn| {
            queries::finish_job(conn, tenant_id, id, outcome, rows)
        })
        .await;
        if let Err(error) = finished {
            tracing::error!(%error, import = id, "could not record the end of an import");
        }
    });
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/v1/imports/{id}")))
        .json(ImportJob::from(job)))
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
        (status = 404, description = "`not_found`: no such import.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/imports/{id}")]
async fn get_import(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<ImportPath>,
) -> Result<web::Json<ImportJob>, ApiError> {
    let id = path.0.id;
    let job = db::run(&state.pool, move |conn| {
        queries::fail_if_abandoned(conn, tenant.id, id, &abandoned_problem())?;
        queries::find_job(conn, tenant.id, id).map_err(|e| ApiError::from(e).or_not_found("import"))
    })
    .await?;
    Ok(web::Json(job.into()))
}

/// Why a job whose process died failed: its transaction was rolled back with it.
pub fn abandoned_problem() -> serde_json::Value {
    serde_json::to_value(
        ApiError::unprocessable(
            "import_interrupted",
            "The service stopped during the import; nothing was written. Upload the file again.",
        )
        .to_problem(),
    )
    .unwrap_or_default()
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
