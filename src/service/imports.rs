//! An import, start to end, inside one transaction: all or nothing. Asynchronous imports:
//! jobs any replica can answer a poll for. Previews and dry runs, which write nothing; and
//! reverts.
//!
//! A parser thread reads, validates and de-duplicates rows while the connection copies
//! what it has parsed into the staging table, so phone validation overlaps the database
//! work. Then one upsert writes the contacts and the membership routine adds them,
//! with the segment's rules and the tenant's endpoint limit applied to the whole file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use csv::StringRecord;
use diesel::{Connection, PgConnection};
use serde_json::Value;

use super::membership::{add_members, lock_static_segments};
use super::{dynamic, Env};
use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::import::file::{self, Layout, Mapping, Required, RowError};
use crate::core::import::source::{self, ReadOptions, RowOrHeader, Table};
use crate::core::import::unreadable::Unreadable;
use crate::core::import::{DuplicateRow, Report, RowProblem, UpdateMode};
use crate::core::membership::{Removed, Warning, MAX_LISTED};
use crate::core::tenant::Tenant;
use crate::core::types::Channel;
use crate::db::imports::{self, ImportRow};
use crate::db::locks::{self, Lock};
use crate::db::{attributes, members, pool};

/// Encoded rows handed to COPY at a time, and how many may wait.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Progress is written this often while an asynchronous import runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Data rows a preview shows.
const PREVIEW_ROWS: usize = 20;
/// Sample values a preview shows per column.
const PREVIEW_SAMPLES: usize = 3;

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

/// What reading the file found, besides the rows staged.
#[derive(Default)]
struct FileTally {
    rows: i64,
    invalid: i64,
    duplicates: i64,
    errors: Vec<RowError>,
    duplicate_rows: Vec<DuplicateRow>,
    /// The first line naming each contact (by validated phone, else by e-mail).
    first_lines: HashMap<String, u64>,
    /// Rows staged without a validated phone, matched by e-mail.
    by_email: bool,
}

/// Imports the file synchronously (or, as a dry run, answers what it would do).
pub async fn import(env: &Env, request: ImportRequest) -> Result<Report, Error> {
    let today = env.clock.today();
    let request = Arc::new(request);
    let progress = Arc::new(Progress::default());
    pool::run(&env.pool.tenant(request.tenant.id), move |conn| {
        let mut attempt = 1;
        loop {
            let outcome = conn.transaction(|conn| {
                let job = if request.dry_run {
                    None
                } else {
                    let bytes = request.file.len() as i64;
                    let job =
                        imports::insert_job(conn, request.tenant.id, request.segment_id, bytes)?;
                    Some(job.id)
                };
                let report = import_in(conn, &request, today, &progress, job)?;
                if request.dry_run {
                    // Everything undone: the report is what the import would have done.
                    return Err(Outcome::DryRun(Box::new(report)));
                }
                if let Some(id) = job {
                    let stored = serde_json::to_value(&report).map_err(Error::internal)?;
                    imports::finish_job(conn, request.tenant.id, id, Ok(stored), report.rows)?;
                }
                Ok(report)
            });
            match outcome {
                Ok(report) => return Ok(report),
                Err(Outcome::DryRun(report)) => return Ok(*report),
                Err(Outcome::Failed(Error::Contention(_))) if attempt < pool::ATTEMPTS => {
                    attempt += 1
                }
                Err(Outcome::Failed(error)) => return Err(error),
            }
        }
    })
    .await
}

/// How a synchronous import's transaction ends besides committing.
enum Outcome {
    /// A dry run's report, its transaction rolled back.
    DryRun(Box<Report>),
    Failed(Error),
}

impl From<Error> for Outcome {
    fn from(error: Error) -> Self {
        Outcome::Failed(error)
    }
}

impl From<diesel::result::Error> for Outcome {
    fn from(error: diesel::result::Error) -> Self {
        Outcome::Failed(error.into())
    }
}

/// The column a segment's file cannot do without.
fn required_for(channel: Channel) -> Required {
    match channel {
        Channel::Email => Required::Email,
        Channel::Whatsapp | Channel::Sms => Required::Phone,
    }
}

/// The file opened as a table, its header and its layout.
fn read_layout<'a>(
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
fn header_of(table: &mut Table<'_>) -> Result<StringRecord, Error> {
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

fn import_in(
    conn: &mut PgConnection,
    request: &ImportRequest,
    today: NaiveDate,
    progress: &Progress,
    import_id: Option<i64>,
) -> Result<Report, Error> {
    let tenant = &request.tenant;
    dynamic::begin_write(conn, tenant.id)?;
    // Tenant, then segment, then contacts in phone order: every writer locks in this
    // order, so concurrent imports wait for each other instead of deadlocking.
    if tenant.endpoint_limit.is_some() {
        members::lock_tenant(conn, tenant.id)?;
    }
    let segment = lock_static_segments(conn, tenant, &[request.segment_id])?
        .pop()
        .ok_or(Error::NotFound("segment"))?;
    let definitions = attributes::definitions(conn, tenant.id)?;
    let (mut table, layout) = read_layout(request, &definitions, required_for(segment.channel()))?;
    let (format, encoding, delimiter) = (
        table.format().as_str().to_owned(),
        table.encoding().to_owned(),
        table.delimiter(),
    );
    let region = request
        .region
        .as_deref()
        .or(tenant.default_region.as_deref());

    imports::create_staging(conn)?;
    progress.rows.store(0, Ordering::Relaxed);
    let (tally, staged) = std::thread::scope(|scope| {
        let (chunks, received) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let parser =
            scope.spawn(|| parse(&mut table, &layout, region, &definitions, progress, chunks));
        let staged = imports::copy_into_staging(conn, &|| received.recv().ok());
        drop(received);
        let tally = parser
            .join()
            .map_err(|_| Error::internal("the file parser panicked"));
        (tally, staged)
    });
    let (mut tally, staged) = (tally??, staged? as i64);

    let (mut contacts_created, mut contacts_updated) =
        imports::upsert_contacts(conn, tenant.id, request.mode)?;
    let mut ambiguous_rows = 0;
    if tally.by_email {
        let by_email = imports::upsert_by_email(conn, tenant.id, request.mode)?;
        contacts_created += by_email.created;
        contacts_updated += by_email.updated;
        ambiguous_rows = by_email.ambiguous.len() as i64;
        tally.invalid += ambiguous_rows;
        for row in by_email.ambiguous {
            tally.errors.push(RowError {
                line: row.line as u64,
                code: "ambiguous_email",
                message: "Two or more contacts have this e-mail and the row has no phone to tell \
                          them apart; add the phone, or merge the contacts."
                    .into(),
                value: row.email,
            });
        }
    }
    let by_email = tally.by_email;
    dynamic::contacts_written(conn, tenant.id, today, &|conn| {
        Ok(imports::staged_contact_ids(conn, tenant.id, by_email)?)
    })?;
    let tenant_id = tenant.id;
    let (_, membership) = add_members(
        conn,
        tenant,
        today,
        &[request.segment_id],
        &|| imports::staged_contacts(tenant_id, by_email),
        None,
        import_id,
    )?
    .pop()
    .ok_or_else(|| Error::internal("one segment, one report"))?;

    let mut errors: Vec<RowProblem> = tally.errors.into_iter().map(RowProblem::from).collect();
    let refused_ids: Vec<i64> = membership.rejected.iter().map(|r| r.contact_id).collect();
    let keys: HashMap<i64, (String, String)> = imports::keys_of(conn, tenant.id, &refused_ids)?
        .into_iter()
        .map(|contact| {
            let key = match (&contact.phone_e164, &contact.email) {
                (Some(phone), _) => format!("p:{phone}"),
                (None, Some(email)) => format!("e:{}", email.to_lowercase()),
                (None, None) => String::new(),
            };
            let value = contact.phone_e164.or(contact.email).unwrap_or_default();
            (contact.id, (key, value))
        })
        .collect();
    for rejection in &membership.rejected {
        let (key, value) = keys.get(&rejection.contact_id).cloned().unwrap_or_default();
        errors.push(RowProblem {
            line: tally.first_lines.get(&key).copied().unwrap_or_default(),
            code: rejection.code.clone(),
            message: rejection.message.clone(),
            value,
        });
    }
    errors.sort_by_key(|e| e.line);
    errors.truncate(MAX_LISTED as usize);

    let mut warnings = membership.warnings;
    let (opted_out, opted_out_ids) = imports::opted_out(conn, tenant.id, by_email, MAX_LISTED)?;
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
        staged - ambiguous_rows,
        membership.added + membership.already_members + membership.rejected_total
    );
    Ok(Report {
        import_id,
        format,
        encoding,
        delimiter,
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
    table: &mut Table<'_>,
    layout: &Layout,
    region: Option<&str>,
    definitions: &[Definition],
    progress: &Progress,
    chunks: mpsc::SyncSender<Vec<u8>>,
) -> Result<FileTally, Error> {
    let mut tally = FileTally::default();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    let mut copy_failed = false;
    table
        .each_row(&mut |row| {
            let RowOrHeader::Row(record) = row else {
                return true;
            };
            tally.rows += 1;
            progress.bytes.store(record.offset, Ordering::Relaxed);
            progress.rows.store(tally.rows as u64, Ordering::Relaxed);
            match layout.read(record, region, definitions) {
                Ok(row) => {
                    let key = row.key();
                    if let Some(first_line) = tally.first_lines.get(&key) {
                        tally.duplicates += 1;
                        if tally.duplicate_rows.len() < MAX_LISTED as usize {
                            tally.duplicate_rows.push(DuplicateRow {
                                line: row.line,
                                first_line: *first_line,
                                value: match &row.phone {
                                    Some(_) => row.phone_as_written,
                                    None => row.email.unwrap_or_default(),
                                },
                            });
                        }
                        return true;
                    }
                    tally.by_email |= row.phone.is_none();
                    tally.first_lines.insert(key, row.line);
                    imports::encode_staged(&mut chunk, &row);
                    if chunk.len() >= CHUNK_BYTES {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
                        if chunks.send(full).is_err() {
                            // The copy failed; its error is what the caller reports.
                            copy_failed = true;
                            return false;
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
            true
        })
        .map_err(unreadable)?;
    if !chunk.is_empty() && !copy_failed {
        let _ = chunks.send(chunk);
    }
    progress.bytes.store(table.len(), Ordering::Relaxed);
    Ok(tally)
}

/// What a preview shows: how the file reads, before anything is written.
pub struct Preview {
    pub format: String,
    pub encoding: String,
    pub delimiter: Option<String>,
    pub rows_estimate: u64,
    pub columns: Vec<PreviewColumn>,
    pub sample_rows: Vec<SampleRow>,
}

pub struct PreviewColumn {
    pub column: file::ColumnInfo,
    pub samples: Vec<String>,
}

/// A data row as the import would read it, or why it would not.
pub struct SampleRow {
    pub line: u64,
    pub row: Option<file::Row>,
    pub problem: Option<RowProblem>,
}

/// Reads the header and the first rows the way the import would; writes nothing.
pub async fn preview(env: &Env, request: ImportRequest) -> Result<Preview, Error> {
    let tenant = request.tenant.clone();
    let (segment, definitions) = pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let segment = crate::db::segments::find(conn, tenant.id, request.segment_id)?;
        let definitions = attributes::definitions(conn, tenant.id)?;
        Ok::<_, Error>((segment, (definitions, request)))
    })
    .await?;
    let (definitions, request) = definitions;
    if segment.kind() == crate::core::types::SegmentKind::Dynamic {
        return Err(super::membership::read_only(segment.id));
    }
    // Parsing is CPU work: off the async threads.
    let required = required_for(segment.channel());
    tokio::task::spawn_blocking(move || preview_of(&request, &definitions, required))
        .await
        .map_err(Error::internal)?
}

fn preview_of(
    request: &ImportRequest,
    definitions: &[Definition],
    required: Required,
) -> Result<Preview, Error> {
    let (mut table, layout) = read_layout(request, definitions, required)?;
    let region = request
        .region
        .as_deref()
        .or(request.tenant.default_region.as_deref());
    let mut samples: Vec<Vec<String>> = vec![Vec::new(); layout.columns().len()];
    let mut sample_rows = Vec::new();
    table
        .each_row(&mut |row| {
            let RowOrHeader::Row(record) = row else {
                return true;
            };
            if let Ok(cells) = &record.cells {
                for (index, cell) in cells.iter().enumerate() {
                    let cell = cell.trim();
                    if let Some(list) = samples.get_mut(index) {
                        if !cell.is_empty() && list.len() < PREVIEW_SAMPLES {
                            list.push(cell.chars().take(200).collect());
                        }
                    }
                }
            }
            let line = record.line;
            sample_rows.push(match layout.read(record, region, definitions) {
                Ok(row) => SampleRow {
                    line,
                    row: Some(row),
                    problem: None,
                },
                Err(error) => SampleRow {
                    line,
                    row: None,
                    problem: Some(error.into()),
                },
            });
            sample_rows.len() < PREVIEW_ROWS
        })
        .map_err(unreadable)?;
    let columns = layout
        .columns()
        .iter()
        .cloned()
        .zip(samples)
        .map(|(column, samples)| PreviewColumn { column, samples })
        .collect();
    Ok(Preview {
        format: table.format().as_str().to_owned(),
        encoding: table.encoding().to_owned(),
        delimiter: table.delimiter(),
        // A workbook without a dimension says nothing: at least the rows seen, then.
        rows_estimate: table.rows_estimate().max(sample_rows.len() as u64),
        columns,
        sample_rows,
    })
}

/// Removes from the segment the members the import added that are still members;
/// contacts stay. Again, it removes nothing. An import still running cannot be reverted.
pub async fn revert(env: &Env, tenant: Tenant, id: i64) -> Result<Removed, Error> {
    let today = env.clock.today();
    pool::retrying_transaction(&env.pool.tenant(tenant.id), move |conn| {
        dynamic::begin_write(conn, tenant.id)?;
        let job = imports::find_job(conn, tenant.id, id)
            .map_err(|e| Error::from(e).or_not_found("import"))?;
        if job.status == "queued" || job.status == "running" {
            return Err(Error::conflict(
                "import_not_finished",
                "The import is still running; revert it once it has succeeded.",
            ));
        }
        lock_static_segments(conn, &tenant, &[job.segment_id])?;
        let removed = members::remove_imported(conn, tenant.id, job.segment_id, id)?;
        let count = removed.len() as i64;
        let recipients = members::adjust_recipients(conn, tenant.id, job.segment_id, -count)?;
        dynamic::members_written(conn, tenant.id, today, &[job.segment_id], &|_| {
            Ok(removed.clone())
        })?;
        Ok(Removed {
            removed: count,
            recipients,
        })
    })
    .await
}

fn unreadable(error: Unreadable) -> Error {
    if error.too_large {
        Error::TooLarge {
            code: error.code,
            detail: error.message,
        }
    } else {
        Error::unprocessable(error.code, error.message)
    }
}

/// How a failed job's problem is stored: the API's problem document for the error.
pub type RenderProblem = fn(&Error) -> Value;

/// Records the job and runs the import in the background, writing progress as it goes;
/// returns the job as recorded. Only the segment is checked before.
pub async fn start_job(
    env: &Env,
    request: ImportRequest,
    render: RenderProblem,
) -> Result<ImportRow, Error> {
    let (tenant, segment_id, bytes) = (
        request.tenant.clone(),
        request.segment_id,
        request.file.len() as i64,
    );
    let job = pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        // 404 or 409 now, as the synchronous import would answer.
        lock_static_segments(conn, &tenant, &[segment_id])?;
        Ok(imports::insert_job(conn, tenant.id, segment_id, bytes)?)
    })
    .await?;
    let (id, tenant_id) = (job.id, request.tenant.id);
    let env = env.clone();
    tokio::spawn(async move {
        let progress = Arc::new(Progress::default());
        let reporter = tokio::spawn(report_progress(
            env.pool.tenant(tenant_id),
            tenant_id,
            id,
            progress.clone(),
        ));
        let finished = run_job(&env, request, id, progress, render).await;
        reporter.abort();
        if let Err(error) = finished {
            // The job's transaction did not commit (no connection, the database gone):
            // nothing was written. Its verdict, if it can be recorded now; otherwise a
            // poll reports the job interrupted.
            tracing::warn!(%error, import = id, "import failed");
            let problem = render(&error);
            let recorded = pool::transaction(&env.pool.tenant(tenant_id), move |conn| {
                if locks::try_exclusive(conn, Lock::ImportJob { tenant_id, id })? {
                    imports::finish_job(conn, tenant_id, id, Err(problem), 0)?;
                }
                Ok(())
            })
            .await;
            if let Err(error) = recorded {
                tracing::error!(%error, import = id, "could not record an import's failure");
            }
        }
    });
    Ok(job)
}

/// Writes the job's progress every [`PROGRESS_EVERY`] once it runs, each time in its own
/// short statement; a failure only delays the progress bar.
async fn report_progress(pool: pool::PgPool, tenant_id: i64, id: i64, progress: Arc<Progress>) {
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    loop {
        ticks.tick().await;
        if !progress.started.load(Ordering::Relaxed) {
            continue;
        }
        let (bytes, rows) = (
            progress.bytes.load(Ordering::Relaxed) as i64,
            progress.rows.load(Ordering::Relaxed) as i64,
        );
        let _ = pool::run(&pool, move |conn| {
            imports::record_progress(conn, tenant_id, id, bytes, rows)
        })
        .await;
    }
}

/// Runs the job under its lease: one transaction holds the job's lock from before it
/// reads the job's status until its verdict is committed with the import's writes. A
/// poll fails a job only when it can take that lock itself, so a job is never reported
/// failed while it runs, and a job reported failed finds itself so and writes nothing.
async fn run_job(
    env: &Env,
    request: ImportRequest,
    id: i64,
    progress: Arc<Progress>,
    render: RenderProblem,
) -> Result<(), Error> {
    let today = env.clock.today();
    let tenant_id = request.tenant.id;
    pool::run(&env.pool.tenant(tenant_id), move |conn| {
        conn.transaction::<_, Error, _>(|conn| {
            locks::exclusive(conn, Lock::ImportJob { tenant_id, id })?;
            if !imports::is_pending(conn, tenant_id, id)? {
                return Ok(());
            }
            progress.started.store(true, Ordering::Relaxed);
            let mut attempt = 1;
            let outcome = loop {
                // The import in a savepoint: undone alone when it fails, the verdict kept.
                let import =
                    |conn: &mut PgConnection| import_in(conn, &request, today, &progress, Some(id));
                match conn.transaction(import) {
                    Err(Error::Contention(_)) if attempt < pool::ATTEMPTS => attempt += 1,
                    outcome => break outcome,
                }
            };
            let rows = progress.rows.load(Ordering::Relaxed) as i64;
            let verdict = match outcome {
                Ok(report) => Ok(serde_json::to_value(report).map_err(Error::internal)?),
                Err(error) => {
                    tracing::warn!(%error, import = id, "import failed");
                    Err(render(&error))
                }
            };
            imports::finish_job(conn, tenant_id, id, verdict, rows)?;
            Ok(())
        })
    })
    .await
}

/// Why a job whose process died failed: its transaction was rolled back with it.
fn interrupted() -> Error {
    Error::unprocessable(
        "import_interrupted",
        "The service stopped during the import; nothing was written. Upload the file again.",
    )
}

/// The job; one that no process runs any more is failed first: when its lease is free
/// (its transaction ended with its process or connection) while it is `running`, or
/// while it is still `queued` a while after it was recorded.
pub async fn job(
    env: &Env,
    tenant: Tenant,
    id: i64,
    render: RenderProblem,
) -> Result<ImportRow, Error> {
    let problem = render(&interrupted());
    let tenant_id = tenant.id;
    pool::transaction(&env.pool.tenant(tenant_id), move |conn| {
        if locks::try_exclusive(conn, Lock::ImportJob { tenant_id, id })? {
            imports::fail_if_abandoned(conn, tenant_id, id, &problem)?;
        }
        imports::find_job(conn, tenant_id, id).map_err(|e| Error::from(e).or_not_found("import"))
    })
    .await
}
