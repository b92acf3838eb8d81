//! CSV import: a 200,000-row file (mixed countries, 5% invalid, 25% already contacts)
//! uploaded into a static segment over HTTP, against COPY into the same staging table plus
//! the same upsert and membership insert, on the same rows, in the same run.

use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use segments::core::import::row::Row as ParsedRow;
use segments::core::import::UpdateMode;
use segments::core::phone::Phone;
use segments::db::imports as import_sql;
use serde_json::{json, Map, Value};

use crate::data::{phone_for, API_KEY};
use crate::report::{median, Row};
use crate::scenarios::{
    drop_bench_segments, reference_segment, rss_row, run_numbers, Context, WARM_UP,
};
use crate::service::Service;

/// A row of the file, and what the reference stages for it (`None`: invalid).
pub struct FileRow {
    pub csv: String,
    staged: Option<ParsedRow>,
}

pub fn file_rows(ctx: &mut Context<'_>, rows: i64, tag: &str) -> Vec<FileRow> {
    #[derive(QueryableByName)]
    struct Existing {
        #[diesel(sql_type = Text)]
        phone: String,
        #[diesel(sql_type = Text)]
        phone_e164: String,
        #[diesel(sql_type = Text)]
        phone_country: String,
    }
    let existing: Vec<Existing> = diesel::sql_query(
        "SELECT phone, phone_e164, phone_country FROM contacts
         WHERE tenant_id = $1 AND phone_e164 IS NOT NULL ORDER BY id LIMIT $2",
    )
    .bind::<BigInt, _>(ctx.data.tenant_id)
    .bind::<BigInt, _>(rows / 4)
    .load(ctx.conn)
    .expect("existing contacts");
    let invalid = rows / 20;
    let new = rows - existing.len() as i64 - invalid;
    let row = |spelled: String, e164: String, country: String, name: String| {
        let city = "Naples";
        FileRow {
            csv: format!("{spelled},{name},{tag},{city}\n"),
            staged: Some(ParsedRow {
                line: 0,
                phone: Some(Phone { e164, country }),
                phone_as_written: spelled,
                name,
                email: None,
                tags: vec![tag.to_owned()],
                attributes: Map::from_iter([("city".to_owned(), json!(city))]),
            }),
        }
    };
    let mut all: Vec<FileRow> = existing
        .into_iter()
        .map(|e| row(e.phone, e.phone_e164, e.phone_country, String::new()))
        .collect();
    for k in 0..new {
        let index = 5_000_000 + k;
        let (spelled, e164, country) = phone_for(index, false);
        all.push(row(
            spelled,
            e164.expect("valid"),
            country.expect("valid"),
            format!("Imported {index}"),
        ));
    }
    for k in 0..invalid {
        all.push(FileRow {
            csv: format!("{},Broken {k},{tag},\n", 100 + k % 900),
            staged: None,
        });
    }
    all.shuffle(&mut StdRng::seed_from_u64(7));
    for (index, row) in all.iter_mut().enumerate() {
        if let Some(staged) = &mut row.staged {
            staged.line = index as u64 + 2;
        }
    }
    all
}

/// The tenant's newest contact id: what a run adds comes after it.
pub fn last_contact(ctx: &mut Context<'_>) -> i64 {
    #[derive(QueryableByName)]
    struct Last {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query("SELECT coalesce(max(id), 0) AS id FROM contacts WHERE tenant_id = $1")
        .bind::<BigInt, _>(ctx.data.tenant_id)
        .get_result::<Last>(ctx.conn)
        .expect("last contact")
        .id
}

/// Removes what a run added (members, new contacts, and `tag` from the contacts it
/// updated), so every run, and every later invocation on the same data, does the same
/// work.
pub fn undo(ctx: &mut Context<'_>, last_contact_before: i64, segment: i64, tag: &str) {
    let tenant = ctx.data.tenant_id;
    diesel::sql_query(
        "UPDATE contacts SET tags = array_remove(tags, $2) WHERE tenant_id = $1 AND $2 = ANY(tags)",
    )
    .bind::<BigInt, _>(tenant)
    .bind::<Text, _>(tag)
    .execute(ctx.conn)
    .expect("take the run's tag back");
    diesel::sql_query("DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2")
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(segment)
        .execute(ctx.conn)
        .expect("empty the segment");
    diesel::sql_query("UPDATE segments SET recipients = 0 WHERE tenant_id = $1 AND id = $2")
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(segment)
        .execute(ctx.conn)
        .expect("reset its count");
    // Events too (the bench tenant's are of no use), so the table stays small.
    diesel::sql_query("DELETE FROM events WHERE tenant_id = $1")
        .bind::<BigInt, _>(tenant)
        .execute(ctx.conn)
        .expect("drop the run's events");
    diesel::sql_query("DELETE FROM contacts WHERE tenant_id = $1 AND id > $2")
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(last_contact_before)
        .execute(ctx.conn)
        .expect("drop the imported contacts");
}

/// The raw-SQL reference: COPY, the same upsert, one membership insert, and the same
/// events (staged by the upsert and beside the insert, then numbered into `events`).
fn reference(conn: &mut PgConnection, tenant: i64, segment: i64, rows: &[FileRow]) -> i64 {
    conn.transaction(|conn| {
        import_sql::create_staging(conn)?;
        let mut copy = Vec::new();
        for staged in rows.iter().filter_map(|r| r.staged.as_ref()) {
            import_sql::encode_staged(&mut copy, staged);
        }
        let pending = std::cell::RefCell::new(Some(copy));
        import_sql::copy_into_staging(conn, &|| pending.borrow_mut().take())?;
        import_sql::upsert_contacts(conn, tenant, UpdateMode::Fill, chrono::Utc::now())?;
        let added = diesel::sql_query(
            "WITH added AS (INSERT INTO segment_members (tenant_id, segment_id, contact_id)
               SELECT $1, $2, c.id FROM contacts c
               WHERE c.tenant_id = $1 AND c.phone_e164 IN (SELECT phone_e164 FROM import_rows)
               ON CONFLICT DO NOTHING RETURNING contact_id)
             INSERT INTO staged_events (tenant_id, type, segment_id, contact_id)
             SELECT $1, 'segment.member_added', $2, contact_id FROM added",
        )
        .bind::<BigInt, _>(tenant)
        .bind::<BigInt, _>(segment)
        .execute(conn)?;
        segments::db::events::flush(conn, chrono::Utc::now())?;
        Ok::<_, diesel::result::Error>(added as i64)
    })
    .expect("reference import")
}

pub async fn csv_import(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    let rows = (ctx.data.contacts / 5).min(200_000);
    drop_bench_segments(ctx.conn, tenant, "bench-import");
    let service_segment = reference_segment(ctx.conn, tenant, "bench-import-service");
    let reference_segment_id = reference_segment(ctx.conn, tenant, "bench-import-reference");
    let last_contact = last_contact(ctx);
    let service = Service::start(ctx.database_url);
    let rss_before = service.peak_rss_mib();
    let (mut service_seconds, mut reference_seconds) = (Vec::new(), Vec::new());
    let mut report = Value::Null;
    let mut file_bytes = 0;
    for run in run_numbers(ctx.settings) {
        // A tag per run, so existing contacts are really updated every time.
        let tag = format!("import-{}", if run == WARM_UP { 99 } else { run });
        let file = file_rows(ctx, rows, &tag);
        let reference_file = file_rows(ctx, rows, &format!("{tag}-reference"));
        let csv: String = std::iter::once("phone,name,tags,city\n".to_owned())
            .chain(file.iter().map(|r| r.csv.clone()))
            .collect();
        file_bytes = csv.len();

        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .finish();
        let started = Instant::now();
        let mut response = client
            .post(format!(
                "{}/v1/segments/{service_segment}/import",
                service.base
            ))
            .insert_header(("Authorization", format!("Bearer {API_KEY}")))
            .insert_header(("Content-Type", "text/csv"))
            .send_body(csv)
            .await
            .expect("upload the file");
        let body = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .expect("read the report");
        let service_time = started.elapsed().as_secs_f64();
        assert!(
            response.status().is_success(),
            "{}",
            String::from_utf8_lossy(&body)
        );
        report = serde_json::from_slice(&body).expect("a report");

        let started = Instant::now();
        let added = reference(ctx.conn, tenant, reference_segment_id, &reference_file);
        let reference_time = started.elapsed().as_secs_f64();
        assert_eq!(
            report["added"].as_i64(),
            Some(added),
            "service and reference disagree: {report}"
        );
        assert_eq!(report["rows"].as_i64(), Some(rows));
        undo(ctx, last_contact, service_segment, &tag);
        undo(
            ctx,
            last_contact,
            reference_segment_id,
            &format!("{tag}-reference"),
        );
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
        }
    }
    let (service_time, reference_time) =
        (median(&mut service_seconds), median(&mut reference_seconds));
    let growth = service.peak_rss_mib() - rss_before;
    vec![
        Row {
            scenario: "csv-import",
            metric: format!(
                "{rows}-row file ({:.1} MB; {} added, {} created, {} updated, {} invalid)",
                file_bytes as f64 / 1e6,
                report["added"],
                report["contacts_created"],
                report["contacts_updated"],
                report["invalid_rows"]
            ),
            service: service_time * 1000.0,
            reference: Some(reference_time * 1000.0),
            unit: "ms",
            higher_is_better: false,
            target: "<= 1.25x raw SQL".into(),
            met: Some(service_time <= 1.25 * reference_time),
        },
        Row {
            scenario: "csv-import",
            metric: "service peak RSS growth".into(),
            service: growth,
            reference: None,
            unit: "MiB",
            higher_is_better: false,
            target: "< 150 MiB".into(),
            met: Some(growth < 150.0),
        },
        rss_row("csv-import", &service),
    ]
}

/// Single contact writes of the same tenant while a 200,000-row import runs: each must
/// wait for nothing the import holds (before, a foreign-key check on the tenant waited
/// for the import's lock on the tenant's row, i.e. for the whole import). The tenant has
/// an endpoint limit here, so the import takes the tenant-wide lock.
pub async fn import_and_writes(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    let rows = (ctx.data.contacts / 5).min(200_000);
    drop_bench_segments(ctx.conn, tenant, "bench-import");
    let segment = reference_segment(ctx.conn, tenant, "bench-import-writes");
    let last_contact = last_contact(ctx);
    diesel::sql_query("UPDATE tenants SET endpoint_limit = 100000000 WHERE id = $1")
        .bind::<BigInt, _>(tenant)
        .execute(ctx.conn)
        .expect("an endpoint limit");
    let service = Service::start(ctx.database_url);
    let base = service.base.clone();
    // One write: a new contact without a phone, so it never meets the file's contacts.
    let write = |n: usize| {
        let base = base.clone();
        async move {
            let started = Instant::now();
            crate::scenarios::call_as(
                API_KEY,
                "POST",
                &base,
                "/v1/contacts",
                Some(json!({"name": format!("bench-writer {n}")})),
            )
            .await;
            started.elapsed().as_secs_f64() * 1000.0
        }
    };
    let mut alone = Vec::new();
    for n in 0..100 {
        alone.push(write(n).await);
    }
    let file = file_rows(ctx, rows, "import-writes");
    let csv: String = std::iter::once("phone,name,tags,city\n".to_owned())
        .chain(file.iter().map(|r| r.csv.clone()))
        .collect();
    let import_base = base.clone();
    let import = tokio::task::spawn_local(async move {
        let started = Instant::now();
        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .finish();
        let response = client
            .post(format!("{import_base}/v1/segments/{segment}/import"))
            .insert_header(("Authorization", format!("Bearer {API_KEY}")))
            .insert_header(("Content-Type", "text/csv"))
            .send_body(csv)
            .await
            .expect("upload the file");
        assert!(response.status().is_success(), "{}", response.status());
        started.elapsed()
    });
    // Writes start once the import is under way, and stop when it ends.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut during = Vec::new();
    let mut n = 1000;
    loop {
        during.push(write(n).await);
        n += 1;
        if import.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let import_time = import.await.expect("the import");
    undo(ctx, last_contact, segment, "import-writes");
    diesel::sql_query("UPDATE tenants SET endpoint_limit = NULL WHERE id = $1")
        .bind::<BigInt, _>(tenant)
        .execute(ctx.conn)
        .expect("no endpoint limit");
    let p99 = |values: &mut Vec<f64>| {
        values.sort_by(|a, b| a.total_cmp(b));
        values
            .get(((values.len().max(1) - 1) as f64 * 0.99).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let slowest = during.iter().copied().fold(0.0, f64::max);
    let (alone_p99, during_p99) = (p99(&mut alone), p99(&mut during));
    vec![
        Row {
            scenario: "import-and-writes",
            metric: format!(
                "POST /v1/contacts p99 while a {rows}-row import runs ({:.1} s; {} writes, slowest {slowest:.0} ms); alone: p99 {alone_p99:.1} ms",
                import_time.as_secs_f64(),
                during.len()
            ),
            service: during_p99,
            reference: None,
            unit: "ms",
            higher_is_better: false,
            target: "no write waits for the import: slowest < 1 s".into(),
            met: Some(slowest < 1000.0 && !during.is_empty()),
        },
        rss_row("import-and-writes", &service),
    ]
}
