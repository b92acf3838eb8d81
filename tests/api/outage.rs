//! The database goes away under load and comes back: clients get 503 problem+json with
//! `Retry-After` (never a 500), the service recovers without a restart, and every write it
//! acknowledged is in the database.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::future::join_all;
use serde_json::json;

use crate::harness::spawn_app;

const WRITERS: usize = 6;
const OUTAGE_STARTS: Duration = Duration::from_millis(700);
const OUTAGE_ENDS: Duration = Duration::from_millis(3500);
const LOAD_ENDS: Duration = Duration::from_millis(7000);

#[actix_web::test]
async fn an_outage_answers_503_and_loses_no_acknowledged_write() {
    let app = spawn_app().await;
    let key = app.tenant_key().await;
    let started = Instant::now();
    let writer = |writer: usize| {
        let (app, key) = (&app, &key);
        async move {
            // (when, status, created contact id)
            let mut outcomes = Vec::new();
            let mut n = 0;
            while started.elapsed() < LOAD_ENDS {
                n += 1;
                let phone = format!("+39 333 {writer}{n:06}");
                let reply = app
                    .post(
                        "/v1/contacts",
                        key,
                        json!({"name": format!("W{writer}-{n}"), "phone": phone}),
                    )
                    .await;
                let status = reply.status.as_u16();
                if status == 503 {
                    assert_eq!(reply.headers.get("retry-after").unwrap(), "5");
                    reply.expect_problem(503, "database_unavailable");
                    outcomes.push((started.elapsed(), status, None));
                } else {
                    let body = reply.expect(201);
                    outcomes.push((started.elapsed(), status, body["id"].as_i64()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outcomes
        }
    };
    let outage = async {
        tokio::time::sleep(OUTAGE_STARTS).await;
        app.database.set_reachable(false);
        let mut ready = 200;
        while ready != 503 {
            ready = app
                .call(actix_web::http::Method::GET, "/readyz", None, None)
                .await
                .status
                .as_u16();
        }
        let detected = started.elapsed() - OUTAGE_STARTS;
        tokio::time::sleep(OUTAGE_ENDS.saturating_sub(started.elapsed())).await;
        app.database.set_reachable(true);
        detected
    };
    let (outcomes, detected) = tokio::join!(join_all((0..WRITERS).map(writer)), outage);
    let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();

    let refused = outcomes
        .iter()
        .filter(|(_, status, _)| *status == 503)
        .count();
    assert!(refused > 0, "no request saw the outage");
    assert!(
        detected < Duration::from_secs(5),
        "/readyz took {detected:?} to notice"
    );
    let first_after = outcomes
        .iter()
        .filter(|(at, status, _)| *at > OUTAGE_ENDS && *status == 201)
        .map(|(at, ..)| *at)
        .min()
        .expect("writes succeed again after the outage, without a restart");
    let recovery = first_after - OUTAGE_ENDS;
    assert!(
        recovery < Duration::from_secs(5),
        "recovered after {recovery:?}"
    );
    let ready = app
        .call(actix_web::http::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 200);

    let acknowledged: Vec<i64> = outcomes.iter().filter_map(|(_, _, id)| *id).collect();
    use segments::db::schema::contacts;
    let stored: i64 = contacts::table
        .filter(contacts::id.eq_any(&acknowledged))
        .count()
        .get_result(&mut app.database.connection())
        .unwrap();
    assert_eq!(
        stored,
        acknowledged.len() as i64,
        "an acknowledged write was lost"
    );
    eprintln!(
        "outage: {} writes acknowledged, {refused} refused with 503; /readyz noticed in {detected:?}; \
         first write after the database came back: {recovery:?}",
        acknowledged.len()
    );
}

#[actix_web::test]
async fn a_statement_past_the_timeout_is_cancelled_and_answers_503() {
    use crate::harness::TestDatabase;
    use actix_web::ResponseError;
    let database = TestDatabase::new();
    let mut config = segments::config::Config::for_database(&database.url);
    config.statement_timeout_secs = 1;
    let state = segments::AppState::new(config);
    let started = Instant::now();
    let outcome = segments::db::pool::run(&state.env.pool, |conn| {
        diesel::sql_query("SELECT pg_sleep(5)").execute(conn)
    })
    .await;
    let error =
        segments::http::error::ApiError::from(outcome.expect_err("cancelled by PostgreSQL"));
    assert!(started.elapsed() < Duration::from_secs(4));
    let response = error.error_response();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").unwrap(), "5");
    assert_eq!(error.to_problem().code, "query_timeout");
}
