//! Import jobs racing their polls: a running job is never reported failed, a job reported
//! failed writes nothing, a job no process runs is failed by the next poll, and final
//! states stay final.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{json, Value};

use segments::db::locks::{self, Lock};

use crate::harness::{id, spawn_app};
use crate::write_races::count;

/// Polls the job until it is `succeeded` or `failed` (at most ~10 s).
async fn poll_to_the_end<S: crate::harness::App>(
    app: &crate::harness::TestApp<S>,
    key: &str,
    job: i64,
) -> Value {
    for _ in 0..200 {
        let polled = app
            .get(&format!("/v1/imports/{job}"), key)
            .await
            .expect(200);
        if polled["status"] == "succeeded" || polled["status"] == "failed" {
            return polled;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("import {job} did not end");
}

async fn start_import<S: crate::harness::App>(
    app: &crate::harness::TestApp<S>,
    key: &str,
    segment: i64,
    csv: &str,
) -> Value {
    app.send(
        actix_web::test::TestRequest::post()
            .uri(&format!("/v1/segments/{segment}/import"))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", "text/csv"))
            .insert_header(("Prefer", "respond-async"))
            .set_payload(csv.to_owned())
            .to_request(),
    )
    .await
    .expect(202)
}

#[actix_web::test]
async fn a_running_import_is_never_reported_failed_however_long_it_waits() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    for round in 0..3 {
        let segment = id(&app
            .segment(&key, &format!("Slow {round}"), "whatsapp")
            .await);
        // The job takes its lease, then waits for the tenant's evaluation lock.
        let mut blocker = app.database.connection();
        blocker.batch_execute("BEGIN").unwrap();
        locks::exclusive(&mut blocker, Lock::Evaluation(tenant_id)).unwrap();
        let job = id(&start_import(&app, &key, segment, "phone\n3334440000\n").await);
        let mut running = false;
        for _ in 0..60 {
            let polled = app
                .get(&format!("/v1/imports/{job}"), &key)
                .await
                .expect(200);
            running = polled["status"] == "running";
            if running {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(running, "round {round}: the job reports itself running");
        let mut conn = app.database.connection();
        for _ in 0..10 {
            // However old its record looks, a job holding its lease is running.
            diesel::sql_query(
                "UPDATE imports SET created_at = now() - interval '1 hour', \
                 updated_at = now() - interval '1 hour' WHERE tenant_id = $1 AND id = $2",
            )
            .bind::<BigInt, _>(tenant_id)
            .bind::<BigInt, _>(job)
            .execute(&mut conn)
            .unwrap();
            let polled = app
                .get(&format!("/v1/imports/{job}"), &key)
                .await
                .expect(200);
            assert_ne!(polled["status"], "failed", "round {round}: {polled}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        drop(blocker);
        let done = poll_to_the_end(&app, &key, job).await;
        assert_eq!(done["status"], "succeeded", "round {round}: {done}");
        assert_eq!(done["report"]["added"], 1);
    }
}

#[actix_web::test]
async fn a_job_reported_failed_writes_nothing_and_stays_failed() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    let segment = id(&app.segment(&key, "Never", "whatsapp").await);
    let mut conn = app.database.connection();
    for round in 0..3 {
        // A poll on another replica holds the lease of the job about to be recorded...
        #[derive(QueryableByName)]
        struct Next {
            #[diesel(sql_type = BigInt)]
            next: i64,
        }
        let next = diesel::sql_query(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS next \
             FROM imports_id_seq",
        )
        .get_result::<Next>(&mut conn)
        .unwrap()
        .next;
        let mut poll = app.database.connection();
        poll.batch_execute("BEGIN").unwrap();
        for candidate in next..next + 3 {
            locks::exclusive(
                &mut poll,
                Lock::ImportJob {
                    tenant_id,
                    id: candidate,
                },
            )
            .unwrap();
        }
        let job =
            id(&start_import(&app, &key, segment, &format!("phone\n33355{round:05}\n")).await);
        assert!((next..next + 3).contains(&job));
        // ... and reports it failed (its process looked gone), then lets go.
        diesel::sql_query(
            "UPDATE imports SET status = 'failed', error = '{\"code\": \"import_interrupted\"}' \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind::<BigInt, _>(tenant_id)
        .bind::<BigInt, _>(job)
        .execute(&mut poll)
        .unwrap();
        poll.batch_execute("COMMIT").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let polled = app
            .get(&format!("/v1/imports/{job}"), &key)
            .await
            .expect(200);
        assert_eq!(polled["status"], "failed", "round {round}: {polled}");
        assert_eq!(
            count(
                &mut conn,
                "SELECT count(*) AS count FROM contacts WHERE tenant_id = $1",
                tenant_id
            ),
            0,
            "round {round}: the job wrote nothing"
        );
    }
}

#[actix_web::test]
async fn a_job_no_process_runs_is_failed_by_the_next_poll() {
    let app = spawn_app().await;
    let (tenant_id, key) = app.tenant(json!({})).await;
    let segment = id(&app.segment(&key, "Orphans", "whatsapp").await);
    let mut conn = app.database.connection();
    // As a replica that died mid-import leaves them: running, and queued for a while.
    let orphan = |status: &str, age: &str| -> i64 {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query(format!(
            "INSERT INTO imports (tenant_id, segment_id, status, bytes_total, created_at) \
             VALUES ($1, $2, $3, 10, now() - interval '{age}') RETURNING id"
        ))
        .bind::<BigInt, _>(tenant_id)
        .bind::<BigInt, _>(segment)
        .bind::<Text, _>(status)
        .get_result::<Id>(&mut app.database.connection())
        .unwrap()
        .id
    };
    let running = orphan("running", "1 second");
    let queued_long = orphan("queued", "5 minutes");
    let queued_now = orphan("queued", "1 second");
    let status = |body: Value| body["status"].as_str().unwrap().to_owned();
    let polled = app
        .get(&format!("/v1/imports/{running}"), &key)
        .await
        .expect(200);
    assert_eq!(status(polled.clone()), "failed");
    assert_eq!(polled["error"]["code"], "import_interrupted");
    let polled = app
        .get(&format!("/v1/imports/{queued_long}"), &key)
        .await
        .expect(200);
    assert_eq!(status(polled), "failed");
    let polled = app
        .get(&format!("/v1/imports/{queued_now}"), &key)
        .await
        .expect(200);
    assert_eq!(status(polled), "queued", "it may still start");
    // Final states stay final: a late verdict changes nothing.
    segments::db::import_jobs::finish_job(&mut conn, tenant_id, running, Ok(json!({})), 1).unwrap();
    let polled = app
        .get(&format!("/v1/imports/{running}"), &key)
        .await
        .expect(200);
    assert_eq!(status(polled), "failed");
}
