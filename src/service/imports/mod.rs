//! An import, start to end, inside one transaction: all or nothing. Asynchronous imports:
//! jobs any replica can answer a poll for. Previews and dry runs, which write nothing; and
//! reverts.
//!
//! A parser thread reads, validates and de-duplicates rows while the connection copies
//! what it has parsed into the staging table, so phone validation overlaps the database
//! work. Then one upsert writes the contacts and the membership routine adds them,
//! with the segment's rules and the tenant's endpoint limit applied to the whole file.

mod jobs;
mod preview;
mod request;
mod run;

use std::sync::Arc;

use crate::core::error::Error;
use crate::core::import::Report;
use crate::core::membership::Removed;
use crate::core::tenant::Tenant;
use crate::db::import_jobs as imports;
use crate::db::{members, pool};
use crate::service::membership::lock_static_segments;
use crate::service::{dynamic, Env};

pub use jobs::{job, start_job, RenderProblem};
pub use preview::{preview, Preview, PreviewColumn, SampleRow};
pub use request::{ImportRequest, Progress};

/// Imports the file synchronously (or, as a dry run, answers what it would do).
pub async fn import(env: &Env, request: ImportRequest) -> Result<Report, Error> {
    let today = env.clock.today();
    let request = Arc::new(request);
    let progress = Arc::new(Progress::default());
    pool::run(&env.pool.tenant(request.tenant.id), move |conn| {
        let mut attempt = 1;
        loop {
            let outcome = pool::writing(conn, |conn| {
                let job = if request.dry_run {
                    None
                } else {
                    let bytes = request.file.len() as i64;
                    let job =
                        imports::insert_job(conn, request.tenant.id, request.segment_id, bytes)?;
                    Some(job.id)
                };
                let report = run::import_in(conn, &request, today, &progress, job)?;
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
