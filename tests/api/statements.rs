//! Every statement the service sends is one a sharded PostgreSQL can run on one shard.
//! On Citus, distributed by `tenant_id` (docs/operations.md, "Running on Citus"), a
//! statement routes to one shard only when it pins every tenant-owned table it reads
//! to one tenant, and an upsert may not call a function that is not immutable in its
//! `DO UPDATE`. This test records every statement the service sends to its database
//! (diesel's instrumentation, by connection) through a tour of the API and the
//! background jobs, then checks each. The few statements that read across tenants on
//! purpose (background work, run on one replica at a time) are listed below with the
//! reason; a listed one no longer sent is a failure too, so the list cannot go stale.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, Once, OnceLock};

use actix_web::test::TestRequest;
use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::sql_types::Text;
use segments::config::Config;
use segments::core::clock::Clock;
use segments::service::{self, Env};
use serde_json::json;

use crate::harness::{id, spawn_app_with_config, App, TestApp};
use crate::isolation::tenant_a;
use crate::webhooks::{start_dispatcher, start_receiver, subscribe, wait_for};

/// The database whose statements are recorded (one test's own).
static AUDITED: OnceLock<String> = OnceLock::new();
static RECORDED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
/// The statements of [`AUDITED`] that diesel kept as prepared statements.
static PREPARED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Installed for every connection of the test process; records only the statements of
/// connections to [`AUDITED`].
fn recorder() -> Option<Box<dyn Instrumentation>> {
    let mut database = String::new();
    Some(Box::new(
        move |event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                database = url.rsplit('/').next().unwrap_or_default().to_owned();
            }
            InstrumentationEvent::StartQuery { query, .. }
                if AUDITED.get().is_some_and(|audited| *audited == database) =>
            {
                let text = query.to_string();
                let sql = text.split(" -- binds: ").next().unwrap_or_default();
                RECORDED.lock().unwrap().insert(normalise(sql));
            }
            InstrumentationEvent::CacheQuery { sql, .. }
                if AUDITED.get().is_some_and(|audited| *audited == database) =>
            {
                PREPARED.lock().unwrap().insert(normalise(sql));
            }
            _ => {}
        },
    ))
}

/// Lower case, no quotes, single spaces.
fn normalise(sql: &str) -> String {
    sql.replace('"', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Statements that read across tenants on purpose: (a part that identifies it, why).
const ACROSS_TENANTS: &[(&str, &str)] = &[
    (
        "from segments where ((segments.kind = $1) and ((segments.evaluated_on is null)",
        "the evaluation job's search for due segments (one replica, once a minute)",
    ),
    (
        "delete from idempotency_keys where (tenant_id, key) in",
        "forgetting expired idempotency keys (one replica, once a minute)",
    ),
    (
        "delete from events where (tenant_id, id) in",
        "deleting events past retention (one replica, every ten minutes)",
    ),
    (
        "from webhooks d where d.enabled",
        "the webhook dispatcher's search for due webhooks (the leading replica)",
    ),
    (
        "update sends s set expired_at",
        "retention keeping an expired day's final counts (one replica, once a day)",
    ),
];

/// Prepared statements that bind a list on purpose: (a part that identifies it, why its
/// plan cannot depend on the list). Any other statement binding a list must be planned
/// for its values at every execution (`db::sql::Condition::one_of`): a prepared one is
/// planned once for any list after a few executions, and a list of ids then becomes a
/// filter searched for every row (an audience range: 0.4-0.8 s instead of 45 ms).
const LISTS_PREPARED: &[(&str, &str)] = &[
    (
        "segments.id = any($",
        "a request's or a campaign's few segments, each found by its primary key",
    ),
    (
        "campaign_segments.campaign_id = any($",
        "the segments of a page of campaigns (at most 100), read by the key",
    ),
    (
        "imports.status = any($",
        "the two statuses of a pending import, the import found by its primary key",
    ),
];

/// Whether `sql` (normalised) binds a list of values.
fn binds_a_list(sql: &str) -> bool {
    ["any($", "all($", "unnest($"]
        .iter()
        .any(|call| sql.contains(call))
}

/// The tenant-owned tables: those with a `tenant_id`, but for the reference tables.
fn tenant_tables(conn: &mut PgConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = Text)]
        table_name: String,
    }
    diesel::sql_query(
        "SELECT DISTINCT c.table_name::text AS table_name FROM information_schema.columns c \
         JOIN pg_class t ON t.relname = c.table_name AND NOT t.relispartition \
         WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' \
           AND c.table_name NOT IN ('tenants', 'api_keys')",
    )
    .load::<Table>(conn)
    .expect("list tables")
    .into_iter()
    .map(|t| t.table_name)
    .collect()
}

/// The tables `sql` reads or writes (named after FROM, JOIN, UPDATE or INTO), with
/// repeats.
fn tables_named(sql: &str) -> Vec<&str> {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|pair| matches!(pair[0], "from" | "join" | "update" | "into"))
        .map(|pair| pair[1].rsplit('.').next().unwrap_or(pair[1]))
        .collect()
}

/// How many times `sql` pins `tenant_id` to one value (a bound parameter or a number),
/// names it first in an INSERT's columns, or joins it to another table's `tenant_id` in
/// a JOIN's `ON`. A subquery matched to the outer row by `tenant_id` alone does not
/// count: on a Citus cluster a contact's read with its last-messaged time as such a
/// subquery in the select list ran on all 32 shards, an `IN` subquery did too, and in
/// an INSERT's `RETURNING` it was refused. A subquery pins its own tenant.
fn tenant_pins(sql: &str) -> (usize, usize) {
    let mut pinned = sql.matches("(tenant_id,").count() + sql.matches("(tenant_id)").count();
    let mut joined = 0;
    for (at, _) in sql.match_indices("tenant_id = ") {
        let value = &sql[at + "tenant_id = ".len()..];
        if value.starts_with('$') || value.starts_with(|c: char| c.is_ascii_digit()) {
            pinned += 1;
        } else if value
            .split([' ', ')'])
            .next()
            .is_some_and(|v| v.ends_with("tenant_id"))
            && in_join_condition(&sql[..at])
        {
            joined += 1;
        }
    }
    (pinned, joined)
}

/// Whether what follows `before` is in a JOIN's `ON` (its nearest clause keyword is `ON`,
/// not `SELECT` or `WHERE`).
fn in_join_condition(before: &str) -> bool {
    let last = |keyword: &str| before.rfind(keyword);
    let on = last(" on ");
    on.is_some()
        && [last("select "), last(" where ")]
            .iter()
            .all(|other| *other < on)
}

/// What is not immutable: Citus refuses it in an upsert's `ON CONFLICT` and inside the
/// `CASE` or `coalesce` of a write (the service binds the time instead).
const NOT_IMMUTABLE: &[&str] = &[
    "now()",
    "current_timestamp",
    "clock_timestamp()",
    "random()",
    // `timestamptz +/- interval` depends on the time zone setting: stable.
    "interval '",
    "make_interval(",
];

/// Why `sql` could not run on one shard, if it could not.
fn single_shard_problem(sql: &str, tenant_tables: &[String]) -> Option<String> {
    let named = tables_named(sql)
        .into_iter()
        .filter(|table| tenant_tables.iter().any(|t| t == table))
        .count();
    let writes = ["insert into", "update ", "delete from"]
        .iter()
        .any(|verb| sql.contains(verb));
    let guarded = ["on conflict", "case when", "coalesce("]
        .iter()
        .find(|clause| sql.contains(*clause));
    if let (true, true, Some(clause)) = (named > 0, writes, guarded) {
        if let Some(function) = NOT_IMMUTABLE.iter().find(|f| sql.contains(*f)) {
            return Some(format!(
                "`{function}` in a write with `{clause}`, where Citus wants immutable functions"
            ));
        }
    }
    let (pinned, joined) = tenant_pins(sql);
    if named > 0 && (pinned == 0 || pinned + joined < named) {
        return Some(format!(
            "{named} tenant-owned table(s), {pinned} pinned to a tenant, {joined} joined on tenant_id"
        ));
    }
    None
}

#[test]
fn the_rules_see_what_they_are_meant_to_see() {
    let tables = vec!["contacts".to_owned(), "segment_members".to_owned()];
    let ok = normalise(
        r#"SELECT "contacts"."id" FROM "contacts" WHERE "contacts"."tenant_id" = $1 AND id IN
           (SELECT contact_id FROM segment_members m WHERE m.tenant_id = $1)"#,
    );
    assert_eq!(single_shard_problem(&ok, &tables), None);
    let joined = normalise(
        "SELECT c.id FROM contacts c JOIN segment_members m ON m.tenant_id = c.tenant_id \
         AND m.contact_id = c.id WHERE m.tenant_id = $1",
    );
    assert_eq!(single_shard_problem(&joined, &tables), None);
    for correlated_only in [
        "SELECT c.id FROM contacts c WHERE c.tenant_id = $1 AND c.id IN \
         (SELECT contact_id FROM segment_members m WHERE m.tenant_id = c.tenant_id)",
        "SELECT c.id, (SELECT count(*) FROM segment_members m WHERE m.tenant_id = c.tenant_id \
         AND m.contact_id = c.id) FROM contacts c WHERE c.tenant_id = $1",
    ] {
        assert!(single_shard_problem(&normalise(correlated_only), &tables).is_some());
    }
    let fans_out = normalise("SELECT count(*) FROM contacts WHERE opted_out");
    assert!(single_shard_problem(&fans_out, &tables).is_some());
    let half_pinned = normalise(
        "SELECT 1 FROM contacts c JOIN segment_members m ON m.contact_id = c.id WHERE c.tenant_id = $1",
    );
    assert!(single_shard_problem(&half_pinned, &tables).is_some());
    let insert = normalise("INSERT INTO contacts (tenant_id, name) VALUES ($1, $2)");
    assert_eq!(single_shard_problem(&insert, &tables), None);
    let upsert = normalise(
        "INSERT INTO contacts (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id, phone_e164) \
         DO UPDATE SET name = excluded.name, updated_at = now() RETURNING id",
    );
    assert!(single_shard_problem(&upsert, &tables)
        .unwrap()
        .contains("now()"));
    let cutoff = normalise(
        "UPDATE contacts SET name = CASE WHEN $2 THEN name END WHERE tenant_id = $1 \
         AND updated_at < $3 - interval '5 minutes'",
    );
    assert!(single_shard_problem(&cutoff, &tables)
        .unwrap()
        .contains("interval"));
}

#[actix_web::test]
async fn every_statement_of_the_api_and_its_jobs_runs_on_one_shard() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| set_default_instrumentation(recorder).expect("install the recorder"));
    // Private addresses allowed: the webhook receiver listens on loopback.
    let app = spawn_app_with_config(|config| config.webhook_allow_private = true).await;
    AUDITED
        .set(app.database.name.clone())
        .expect("one audited database");

    tour(&app).await;
    deliver_webhooks(&app).await;
    let env = Env::new(&Config::for_database(&app.database.url), Clock::System);
    service::dynamic::evaluate_all_due(&env).await.unwrap();
    service::sends::upkeep(&env, 90).await.unwrap();
    service::idempotency::forget_expired(&env).await.unwrap();
    service::events::purge(&env, 30).await.unwrap();
    {
        let mut conn = app.database.connection();
        diesel::sql_query("UPDATE sends SET created_on = created_on - 365")
            .execute(&mut conn)
            .unwrap();
        segments::db::webhook_delivery::due(&mut conn, 10, &[]).unwrap();
    }
    service::sends::upkeep(&env, 90).await.unwrap();

    let tables = tenant_tables(&mut app.database.connection());
    let recorded = RECORDED.lock().unwrap().clone();
    let mut problems = Vec::new();
    let mut seen_across = BTreeSet::new();
    for sql in &recorded {
        // The test's own statements (ageing sends, hurrying retries) and DDL (partitions
        // made ahead) are not the service's.
        if sql.starts_with("update sends set created_on")
            || sql.starts_with(
                "update webhooks set next_attempt_at = now() where next_attempt_at > now()",
            )
            || sql.starts_with("create ")
        {
            continue;
        }
        if let Some((part, _)) = ACROSS_TENANTS.iter().find(|(part, _)| sql.contains(part)) {
            seen_across.insert(*part);
            continue;
        }
        if let Some(problem) = single_shard_problem(sql, &tables) {
            problems.push(format!("{problem}:\n  {sql}"));
        }
    }
    assert!(
        recorded.len() > 100,
        "the tour sent only {} statements",
        recorded.len()
    );
    assert!(
        problems.is_empty(),
        "{} statement(s) would not run on one shard:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let unseen: Vec<_> = ACROSS_TENANTS
        .iter()
        .filter(|(part, _)| !seen_across.contains(part))
        .map(|(part, why)| format!("{part} ({why})"))
        .collect();
    assert!(unseen.is_empty(), "listed but never sent: {unseen:?}");

    let prepared = PREPARED.lock().unwrap().clone();
    assert!(prepared.len() > 20, "only {} prepared", prepared.len());
    let lists: Vec<&String> = prepared
        .iter()
        .filter(|sql| binds_a_list(sql))
        .filter(|sql| !LISTS_PREPARED.iter().any(|(part, _)| sql.contains(part)))
        .collect();
    assert!(
        lists.is_empty(),
        "{} prepared statement(s) bind a list:\n{}",
        lists.len(),
        lists
            .iter()
            .map(|sql| format!("  {sql}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let recorded_lists = recorded.iter().filter(|sql| binds_a_list(sql)).count();
    assert!(
        recorded_lists > 10,
        "the tour bound only {recorded_lists} lists"
    );
}

/// A webhook's delivery through the dispatcher: a failed attempt, then its retry.
async fn deliver_webhooks<S: App>(app: &TestApp<S>) {
    let key = app.tenant_key().await;
    let (receiver, url) = start_receiver();
    receiver.failures.store(1, Ordering::SeqCst);
    subscribe(app, &key, &receiver, &url).await;
    start_dispatcher(app, true);
    app.contact(&key, json!({"name": "Hooked", "phone": "333 444 5555"}))
        .await;
    wait_for(app, "a delivery after a failure", || {
        !receiver.acknowledged().is_empty()
    })
    .await;
}

/// Tenant A's resources, then most operations on them with A's own key.
async fn tour<S: App>(app: &TestApp<S>) {
    let key = app.tenant_key().await;
    let a = tenant_a(app, &key).await;
    let (contact, segment, campaign, send, webhook) =
        (a.contact, a.segment, a.campaign, a.send, a.webhook);
    let dynamic = app
        .dynamic_segment(
            &key,
            "Milan",
            json!({"field": "attributes.city", "op": "eq", "value": "Milan"}),
        )
        .await;
    let calls: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", "/v1/tenant".into(), None),
        (
            "GET",
            "/v1/contacts?search=A&tag=x&opted_out=false".into(),
            None,
        ),
        ("GET", format!("/v1/contacts/{contact}"), None),
        ("GET", format!("/v1/contacts/{contact}/segments"), None),
        (
            "PATCH",
            format!("/v1/contacts/{contact}"),
            Some(json!({"tags": ["vip"], "attributes": {"city": "Rome"}})),
        ),
        (
            "PUT",
            "/v1/contacts/by-external-id/crm-2".into(),
            Some(json!({"name": "CRM", "phone": "333 222 1111"})),
        ),
        (
            "POST",
            "/v1/contacts/batch".into(),
            Some(json!({"contacts": [
            {"name": "B1", "external_id": "b-1", "phone": "333 000 1111"},
            {"name": "B2", "phone": "+393331234567"},
            {"name": "B3", "email": "b3@example.com"}]})),
        ),
        (
            "POST",
            "/v1/contacts".into(),
            Some(json!({"name": "Dup", "phone": "333 000 1111"})),
        ),
        ("GET", "/v1/attributes".into(), None),
        ("GET", "/v1/segments?search=a&sort=name".into(), None),
        ("GET", format!("/v1/segments/{segment}"), None),
        (
            "PATCH",
            format!("/v1/segments/{segment}"),
            Some(json!({"description": "d"})),
        ),
        (
            "PATCH",
            format!("/v1/segments/{dynamic}"),
            Some(
                json!({"filter": {"field": "attributes.city", "op": "in", "value": ["Milan", "Rome"]}}),
            ),
        ),
        (
            "POST",
            "/v1/segments/preview".into(),
            Some(
                json!({"channel": "sms", "filter": {"field": "tags", "op": "contains", "value": "vip"}}),
            ),
        ),
        (
            "GET",
            format!("/v1/segments/{segment}/members?search=A"),
            None,
        ),
        ("GET", format!("/v1/segments/{dynamic}/members"), None),
        (
            "GET",
            format!("/v1/segments/{segment}/candidates?search=B"),
            None,
        ),
        (
            "POST",
            format!("/v1/segments/{segment}/members/from-search"),
            Some(json!({"search": "B"})),
        ),
        (
            "POST",
            "/v1/segments/memberships".into(),
            Some(json!({"segment_ids": [segment], "contact_ids": [contact]})),
        ),
        (
            "DELETE",
            format!("/v1/segments/{segment}/members"),
            Some(json!({"contact_ids": [contact]})),
        ),
        ("GET", format!("/v1/segments/{segment}/members.csv"), None),
        (
            "POST",
            format!("/v1/segments/{segment}/import?dry_run=true"),
            None,
        ),
        ("GET", "/v1/campaigns".into(), None),
        (
            "PATCH",
            format!("/v1/campaigns/{campaign}"),
            Some(json!({"segment_ids": [segment, dynamic]})),
        ),
        (
            "POST",
            "/v1/audiences/resolve".into(),
            Some(
                json!({"channel": "whatsapp", "segment_ids": [segment], "exclude_segment_ids": [dynamic]}),
            ),
        ),
        (
            "GET",
            format!("/v1/campaigns/{campaign}/audience/summary"),
            None,
        ),
        (
            "GET",
            format!("/v1/campaigns/{campaign}/audience?limit=10"),
            None,
        ),
        (
            "GET",
            format!("/v1/campaigns/{campaign}/audience.ndjson"),
            None,
        ),
        (
            "GET",
            format!("/v1/campaigns/{campaign}/audience.csv"),
            None,
        ),
        (
            "POST",
            format!("/v1/campaigns/{campaign}/sends"),
            Some(json!({})),
        ),
        ("GET", format!("/v1/campaigns/{campaign}/sends"), None),
        ("GET", format!("/v1/sends/{send}"), None),
        (
            "GET",
            format!("/v1/sends/{send}/recipients?status=pending"),
            None,
        ),
        ("GET", format!("/v1/sends/{send}/recipients.ndjson"), None),
        (
            "POST",
            format!("/v1/sends/{send}/outcomes"),
            Some(json!({"outcomes": [
            {"contact_id": contact, "status": "sent"}, {"contact_id": 999999, "status": "sent"}]})),
        ),
        (
            "GET",
            format!("/v1/sends/{send}/recipients?status=sent"),
            None,
        ),
        (
            "GET",
            "/v1/events?limit=100&type=contact.created".into(),
            None,
        ),
        ("GET", "/v1/webhooks".into(), None),
        (
            "PATCH",
            format!("/v1/webhooks/{webhook}"),
            Some(json!({"enabled": false})),
        ),
        ("GET", format!("/v1/webhooks/{webhook}/deliveries"), None),
        ("DELETE", "/v1/attributes/city".into(), None),
        ("DELETE", format!("/v1/webhooks/{webhook}"), None),
        ("DELETE", format!("/v1/segments/{dynamic}"), None),
        ("DELETE", format!("/v1/contacts/{contact}"), None),
    ];
    for (method, path, body) in calls {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let reply = app.call(method.clone(), &path, Some(&key), body).await;
        assert!(
            reply.status.as_u16() < 500,
            "{method} {path}: {}",
            reply.text
        );
    }
    let newsletter = id(&app.segment(&key, "Newsletter", "email").await);
    for _ in 0..2 {
        let reply = app
            .send(
                TestRequest::post()
                    .uri(&format!("/v1/segments/{newsletter}/import"))
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .insert_header(("Content-Type", "text/csv"))
                    .set_payload("email,name\nann@example.com,Ann\nb3@example.com,Bea\n")
                    .to_request(),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    for _ in 0..2 {
        let reply = app
            .send(
                TestRequest::post()
                    .uri("/v1/contacts")
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .insert_header(("Idempotency-Key", "crm-push-1"))
                    .set_json(json!({"name": "Once", "phone": "333 999 0000"}))
                    .to_request(),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    }
}
