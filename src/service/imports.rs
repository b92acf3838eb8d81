//! An import, start to end, inside one transaction: all or nothing. And asynchronous
//! imports: jobs any replica can answer a poll for.
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
use diesel::{Connection, PgConnection};
use serde_json::Value;

use super::membership::{add_members, lock_static_segments};
use super::{dynamic, Env};
use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::import::file::{self, Layout, RowError};
use crate::core::import::{DuplicateRow, Report, RowProblem, UpdateMode};
use crate::core::membership::{Warning, MAX_LISTED};
use crate::core::tenant::Tenant;
use crate::db::imports::{self, ImportRow};
use crate::db::locks::{self, Lock};
use crate::db::{attributes, members, pool};

/// Encoded rows handed to COPY at a time, and how many may wait.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Progress is written this often while an asynchronous import runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub struct ImportRequest {
    pub tenant: Tenant,
    pub segment_id: i64,
    pub file: Bytes,
    /// Falls back to the tenant's region.
    pub region: Option<String>,
    pub mode: UpdateMode,
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
    /// The first line naming each validated phone.
    first_lines: HashMap<String, u64>,
}

/// Imports the file synchronously.
pub async fn import(env: &Env, request: ImportRequest) -> Result<Report, Error> {
    run(env, Arc::new(request), Arc::new(Progress::default())).await
}

async fn run(
    env: &Env,
    request: Arc<ImportRequest>,
    progress: Arc<Progress>,
) -> Result<Report, Error> {
    let today = env.clock.today();
    let pool = env.pool.tenant(request.tenant.id);
    pool::retrying_transaction(&pool, move |conn| {
        import_in(conn, &request, today, &progress)
    })
    .await
}

fn import_in(
    conn: &mut PgConnection,
    request: &ImportRequest,
    today: NaiveDate,
    progress: &Progress,
) -> Result<Report, Error> {
    let tenant = &request.tenant;
    dynamic::begin_write(conn, tenant.id)?;
    // Tenant, then segment, then contacts in phone order: every writer locks in this
    // order, so concurrent imports wait for each other instead of deadlocking.
    if tenant.endpoint_limit.is_some() {
        members::lock_tenant(conn, tenant.id)?;
    }
    lock_static_segments(conn, tenant, &[request.segment_id])?;
    let definitions = attributes::definitions(conn, tenant.id)?;
    let text = file::decode(&request.file).map_err(unreadable)?;
    let layout = Layout::of(text, &definitions).map_err(unreadable)?;
    let region = request
        .region
        .as_deref()
        .or(tenant.default_region.as_deref());

    imports::create_staging(conn)?;
    progress.rows.store(0, Ordering::Relaxed);
    let (tally, staged) = std::thread::scope(|scope| {
        let (chunks, received) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let parser = scope.spawn(|| parse(text, &layout, region, &definitions, progress, chunks));
        let staged = imports::copy_into_staging(conn, &|| received.recv().ok());
        drop(received);
        let tally = parser
            .join()
            .map_err(|_| Error::internal("the file parser panicked"));
        (tally, staged)
    });
    let (tally, staged) = (tally?, staged? as i64);

    let (contacts_created, contacts_updated) =
        imports::upsert_contacts(conn, tenant.id, request.mode)?;
    dynamic::contacts_written(conn, tenant.id, today, &|conn| {
        Ok(imports::staged_contact_ids(conn, tenant.id)?)
    })?;
    let tenant_id = tenant.id;
    let (_, membership) = add_members(
        conn,
        tenant,
        today,
        &[request.segment_id],
        &|| imports::staged_contacts(tenant_id),
        None,
    )?
    .pop()
    .ok_or_else(|| Error::internal("one segment, one report"))?;

    let mut errors: Vec<RowProblem> = tally.errors.into_iter().map(RowProblem::from).collect();
    let refused_ids: Vec<i64> = membership.rejected.iter().map(|r| r.contact_id).collect();
    let phones: HashMap<i64, String> = imports::phones_of(conn, tenant.id, &refused_ids)?
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
    let (opted_out, opted_out_ids) = imports::opted_out(conn, tenant.id, MAX_LISTED)?;
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
    Ok(Report {
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
    definitions: &[Definition],
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
                imports::encode_staged(&mut chunk, &row);
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

fn unreadable(error: file::Unreadable) -> Error {
    Error::unprocessable(error.code, error.message)
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
                match conn.transaction(|conn| import_in(conn, &request, today, &progress)) {
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
