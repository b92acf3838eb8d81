//! Import jobs: rows any replica can answer a poll for, updated only while pending.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde_json::Value;

use super::events;
use super::schema::imports;
use crate::core::event::EventType;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = imports)]
pub struct ImportRow {
    pub id: i64,
    pub segment_id: i64,
    pub status: String,
    pub bytes_total: i64,
    pub bytes_read: i64,
    pub rows_read: i64,
    pub report: Option<Value>,
    pub error: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A job still `queued` this long after it was recorded, with its lease free, never
/// started: its process stopped first.
const NEVER_STARTED_AFTER: &str = "30 seconds";

/// The statuses a job may still leave; `succeeded` and `failed` are final, and every
/// update below is guarded by these.
const PENDING: [&str; 2] = ["queued", "running"];

pub fn insert_job(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: i64,
    bytes_total: i64,
) -> QueryResult<ImportRow> {
    diesel::insert_into(imports::table)
        .values((
            imports::tenant_id.eq(tenant_id),
            imports::segment_id.eq(segment_id),
            imports::status.eq("queued"),
            imports::bytes_total.eq(bytes_total),
        ))
        .returning(ImportRow::as_returning())
        .get_result(conn)
}

/// Whether the job may still run (neither succeeded nor failed).
pub fn is_pending(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        imports::table
            .find((tenant_id, id))
            .filter(imports::status.eq_any(PENDING)),
    ))
    .get_result(conn)
}

/// Records progress of a running job.
pub fn record_progress(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    bytes_read: i64,
    rows_read: i64,
) -> QueryResult<()> {
    diesel::update(imports::table.find((tenant_id, id)))
        .filter(imports::status.eq_any(PENDING))
        .set((
            imports::status.eq("running"),
            imports::bytes_read.eq(bytes_read),
            imports::rows_read.eq(rows_read),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .map(drop)
}

/// Ends a job still pending: `succeeded` with its report, or `failed` with its problem.
pub fn finish_job(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    outcome: Result<Value, Value>,
    rows_read: i64,
) -> QueryResult<()> {
    let details = finished(id, &outcome);
    let (status, report, error) = match outcome {
        Ok(report) => ("succeeded", Some(report), None),
        Err(problem) => ("failed", None, Some(problem)),
    };
    let target = imports::table.find((tenant_id, id));
    let bytes_total = imports::bytes_total;
    let segment_id: Option<i64> = diesel::update(target)
        .filter(imports::status.eq_any(PENDING))
        .set((
            imports::status.eq(status),
            imports::report.eq(report),
            imports::error.eq(error),
            imports::rows_read.eq(rows_read),
            imports::bytes_read.eq(bytes_total),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .returning(imports::segment_id)
        .get_result(conn)
        .optional()?;
    stage_finished(conn, tenant_id, segment_id, &details)
}

/// `import.finished`'s data: the import, how it ended and its counts (or its error's code).
fn finished(id: i64, outcome: &Result<Value, Value>) -> Value {
    const COUNTS: [&str; 7] = [
        "rows",
        "added",
        "already_members",
        "rejected",
        "contacts_created",
        "contacts_updated",
        "invalid_rows",
    ];
    let mut details = serde_json::Map::new();
    details.insert("import_id".into(), id.into());
    match outcome {
        Ok(report) => {
            details.insert("status".into(), "succeeded".into());
            for count in COUNTS {
                details.insert(count.into(), report.get(count).cloned().unwrap_or(0.into()));
            }
        }
        Err(problem) => {
            details.insert("status".into(), "failed".into());
            details.insert(
                "error_code".into(),
                problem.get("code").cloned().unwrap_or(Value::Null),
            );
        }
    }
    Value::Object(details)
}

/// Stages `import.finished` for a job that just ended (`segment_id` is `None` when it had
/// already ended and nothing changed).
fn stage_finished(
    conn: &mut PgConnection,
    tenant_id: i64,
    segment_id: Option<i64>,
    details: &Value,
) -> QueryResult<()> {
    match segment_id {
        Some(segment_id) => events::stage_details(
            conn,
            tenant_id,
            EventType::ImportFinished,
            Some(segment_id),
            details,
        ),
        None => Ok(()),
    }
}

/// Marks the job failed if no process runs it: call holding its lease (so it is not
/// running now). A `running` job whose lease is free ended with its process or
/// connection (its transaction rolled back); a `queued` one had long enough to start.
pub fn fail_if_abandoned(
    conn: &mut PgConnection,
    tenant_id: i64,
    id: i64,
    problem: &Value,
) -> QueryResult<usize> {
    let segment_id: Option<i64> = diesel::update(imports::table.find((tenant_id, id)))
        .filter(sql::<Bool>(&format!(
            "(imports.status = 'running' OR (imports.status = 'queued' \
             AND imports.created_at < now() - interval '{NEVER_STARTED_AFTER}'))"
        )))
        .set((
            imports::status.eq("failed"),
            imports::error.eq(Some(problem.clone())),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .returning(imports::segment_id)
        .get_result(conn)
        .optional()?;
    stage_finished(
        conn,
        tenant_id,
        segment_id,
        &finished(id, &Err(problem.clone())),
    )?;
    Ok(usize::from(segment_id.is_some()))
}

pub fn find_job(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<ImportRow> {
    imports::table
        .find((tenant_id, id))
        .select(ImportRow::as_select())
        .get_result(conn)
}
