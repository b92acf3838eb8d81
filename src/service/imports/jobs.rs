//! Asynchronous imports: jobs recorded in PostgreSQL, run in the background under a lease,
//! polled from any replica.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use diesel::{Connection, PgConnection};
use serde_json::Value;

use super::request::{ImportRequest, Progress};
use super::run::import_in;
use crate::core::error::Error;
use crate::core::tenant::Tenant;
use crate::db::import_jobs::{self as imports, ImportRow};
use crate::db::locks::{self, Lock};
use crate::db::pool;
use crate::service::membership::lock_static_segments;
use crate::service::Env;

/// Progress is written this often while an asynchronous import runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

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
        pool::writing::<_, Error>(conn, |conn| {
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
