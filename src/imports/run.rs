//! One import, start to end, inside the caller's transaction: all or nothing.
//!
//! A parser thread reads, validates and de-duplicates rows while the connection copies
//! what it has parsed into the staging table, so phone validation overlaps the database
//! work. Then one upsert writes the contacts and the membership routine adds them,
//! with the segment's rules and the tenant's endpoint limit applied to the whole file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use diesel::PgConnection;
use serde_json::Map;

use super::dto::{DuplicateRow, ImportReport, RowProblem};
use super::file::{self, Layout, RowError};
use super::queries::{self, UpdateMode};
use crate::attributes::values::Definition;
use crate::attributes::{self, AttributeType};
use crate::error::ApiError;
use crate::members::{queries::lock_tenant, write};
use crate::members::{Warning, MAX_LISTED};
use crate::tenants::TenantRow;

/// The largest file accepted.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// Encoded rows handed to COPY at a time, and how many may wait.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

pub struct ImportRequest {
    pub tenant: TenantRow,
    pub segment_id: i64,
    pub file: actix_web::web::Bytes,
    /// Falls back to the tenant's region.
    pub region: Option<String>,
    pub mode: UpdateMode,
}

/// How far the parser has read, for progress reports.
#[derive(Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub rows: AtomicU64,
}

/// What reading the file found, besides the rows staged.
#[derive(Default)]
struct FileTally {
    rows: i64,
    invalid: i64,
    duplicates: i64,
    errors: Vec<RowError>,
    duplicate_rows: Vec<DuplicateRow>,
    /// The first line naming each validated phone.
    first_lines: HashMap<String, u64>,
}

pub fn import(
    conn: &mut PgConnection,
    request: &ImportRequest,
    progress: &Progress,
) -> Result<ImportReport, ApiError> {
    let tenant = &request.tenant;
    // Tenant, then segment, then contacts in phone order: every writer locks in this
    // order, so concurrent imports wait for each other instead of deadlocking.
    if tenant.endpoint_limit.is_some() {
        lock_tenant(conn, tenant.id)?;
    }
    write::lock_static_segments(conn, tenant, &[request.segment_id])?;
    let definition_rows = attributes::queries::list(conn, tenant.id)?;
    let definitions: Vec<Definition<'_>> = definition_rows
        .iter()
        .map(|row| Definition {
            key: &row.key,
            value_type: AttributeType::from_db(&row.value_type),
        })
        .collect();
    let text = file::decode(&request.file).map_err(unreadable)?;
    let layout = Layout::of(text, &definitions).map_err(unreadable)?;
    let region = request
        .region
        .as_deref()
        .or(tenant.default_region.as_deref());

    queries::create_staging(conn)?;
    progress.rows.store(0, Ordering::Relaxed);
    let (tally, staged) = std::thread::scope(|scope| {
        let (chunks, received) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let parser = scope.spawn(|| parse(text, &layout, region, &definitions, progress, chunks));
        let staged = queries::copy_into_staging(conn, &|| received.recv().ok());
        drop(received);
        let tally = parser.join().expect("the parser thread does not panic");
        (tally, staged)
    });
    let staged = staged? as i64;

    let (contacts_created, contacts_updated) =
        queries::upsert_contacts(conn, tenant.id, request.mode)?;
    let tenant_id = tenant.id;
    let (_, membership) = write::add_members(
        conn,
        tenant,
        &[request.segment_id],
        &|| queries::staged_contacts(tenant_id),
        None,
    )?
    .pop()
    .expect("one report per segment");

    let mut errors: Vec<RowProblem> = tally.errors.into_iter().map(RowProblem::from).collect();
    let refused_ids: Vec<i64> = membership.rejected.iter().map(|r| r.contact_id).collect();
    let phones: HashMap<i64, String> = queries::phones_of(conn, tenant.id, &refused_ids)?
        .into_iter()
        .filter_map(|(id, phone)| Some((id, phone?)))
        .collect();
    for rejection in &membership.rejected {
        let phone = phones
            .get(&rejection.contact_id)
            .cloned()
            .unwrap_or_default();
        errors.push(RowProblem {
            line: tally.first_lines.get(&phone).copied().unwrap_or_default(),
            code: rejection.code.clone(),
            message: rejection.message.clone(),
            value: phone,
        });
    }
    errors.sort_by_key(|e| e.line);
    errors.truncate(MAX_LISTED as usize);

    let mut warnings = membership.warnings;
    let (opted_out, opted_out_ids) = queries::opted_out(conn, tenant.id, MAX_LISTED)?;
    if opted_out > 0 {
        warnings.push(Warning {
            code: "opted_out".into(),
            message: "Some contacts in the file have opted out: they are in the segment but \
                      stay opted out and receive no messages."
                .into(),
            contact_ids: opted_out_ids,
            count: opted_out,
        });
    }
    debug_assert_eq!(
        staged,
        membership.added + membership.already_members + membership.rejected_total
    );
    Ok(ImportReport {
        rows: tally.rows,
        added: membership.added,
        already_members: membership.already_members,
        rejected: membership.rejected_total,
        contacts_created,
        contacts_updated,
        duplicates_in_file: tally.duplicates,
        invalid_rows: tally.invalid,
        errors,
        duplicates: tally.duplicate_rows,
        ignored_columns: layout.ignored,
        warnings,
        recipients: membership.recipients,
    })
}

/// Reads every row; sends the valid, first-seen ones to `chunks` in COPY format.
fn parse(
    text: &str,
    layout: &Layout,
    region: Option<&str>,
    definitions: &[Definition<'_>],
    progress: &Progress,
    chunks: mpsc::SyncSender<Vec<u8>>,
) -> FileTally {
    let mut tally = FileTally::default();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    for record in layout.records(text) {
        tally.rows += 1;
        progress.bytes.store(record.offset, Ordering::Relaxed);
        progress.rows.store(tally.rows as u64, Ordering::Relaxed);
        match layout.read(record, region, definitions) {
            Ok(row) => {
                if let Some(first_line) = tally.first_lines.get(&row.phone.e164) {
                    tally.duplicates += 1;
                    if tally.duplicate_rows.len() < MAX_LISTED as usize {
                        tally.duplicate_rows.push(DuplicateRow {
                            line: row.line,
                            first_line: *first_line,
                            value: row.phone_as_written,
                        });
                    }
                    continue;
                }
                tally.first_lines.insert(row.phone.e164.clone(), row.line);
                queries::encode_staged(&mut chunk, &row);
                if chunk.len() >= CHUNK_BYTES {
                    let full =
                        std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
                    if chunks.send(full).is_err() {
                        // The copy failed; its error is what the caller reports.
                        return tally;
                    }
                }
            }
            Err(error) => {
                tally.invalid += 1;
                if tally.errors.len() < MAX_LISTED as usize {
                    tally.errors.push(error);
                }
            }
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.send(chunk);
    }
    progress.bytes.store(text.len() as u64, Ordering::Relaxed);
    tally
}

fn unreadable(error: file::Unreadable) -> ApiError {
    ApiError::Unprocessable {
        code: error.code,
        detail: error.message,
        extra: Map::new(),
    }
}

impl From<RowError> for RowProblem {
    fn from(error: RowError) -> Self {
        Self {
            line: error.line,
            code: error.code.to_owned(),
            message: error.message,
            value: error.value,
        }
    }
}
