//! CRM batch upserts: four clients pushing 1,000 contacts a call, half of them new,
//! against the same upserts written by hand on four connections; then the service's
//! memory with every region's numbers.

use std::io::Write;
use std::time::Instant;

use diesel::pg::CopyFormat;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use phonenumber::metadata::DATABASE;
use serde_json::{json, Value};

use crate::data::{phone_for, DataSet};
use crate::report::{median, Row};
use crate::scenarios::{rss_row, run_numbers, Context, WARM_UP};
use crate::service::Service;

const BATCH: i64 = 1000;
const CLIENTS: i64 = 4;

/// One contact of a batch: external id, name, phone as written, its E.164 and country
/// (as the service would validate it), e-mail.
type BatchRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A CRM batch: half updates of existing contacts, half new ones.
fn crm_batch(data: &DataSet, first_new: i64, first_existing: i64) -> Vec<BatchRow> {
    (0..BATCH)
        .map(|i| {
            let (index, external_id) = if i % 2 == 0 {
                let index = (first_existing + i) % data.contacts;
                (index, format!("crm-{index}"))
            } else {
                let index = first_new + i;
                (index, format!("new-{index}"))
            };
            let (phone, e164, country) = phone_for(index, false);
            (
                external_id,
                format!("Batch contact {index}"),
                phone,
                e164,
                country,
                Some(format!("c{index}@example.com")),
            )
        })
        .collect()
}

/// The batches of each client in a run: disjoint contacts, so clients never wait on
/// each other's rows. `new_from` keeps the service's new contacts apart from the
/// reference's, `existing_from` their updated ones.
fn client_batches(
    data: &DataSet,
    batches: i64,
    new_from: i64,
    existing_from: i64,
) -> Vec<Vec<Vec<BatchRow>>> {
    (0..CLIENTS)
        .map(|client| {
            (0..batches)
                .map(|b| {
                    let at = (client * batches + b) * BATCH;
                    crm_batch(data, new_from + at, existing_from + at)
                })
                .collect()
        })
        .collect()
}

fn as_json(batch: &[BatchRow]) -> Value {
    let contacts: Vec<Value> = batch
        .iter()
        .map(|(external_id, name, phone, _, _, email)| {
            json!({"external_id": external_id, "name": name, "phone": phone, "email": email})
        })
        .collect();
    json!({ "contacts": contacts })
}

/// Every client's batches through the service at once; seconds until the last answer.
async fn push_all(base: &str, work: Vec<Vec<Vec<BatchRow>>>) -> f64 {
    let started = Instant::now();
    let clients: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let base = base.to_owned();
            actix_web::rt::spawn(async move {
                for batch in batches {
                    let result = crate::scenarios::call_as(
                        crate::data::API_KEY,
                        "POST",
                        &base,
                        "/v1/contacts/batch",
                        Some(as_json(&batch)),
                    )
                    .await;
                    let errors = result["items"].as_array().map_or(0, |items| {
                        items.iter().filter(|i| i["status"] == "error").count()
                    });
                    assert_eq!(errors, 0, "batch items failed: {result}");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("a client");
    }
    started.elapsed().as_secs_f64()
}

/// The hand-written upserts, each client on its own connection (opened before the
/// clock starts); the faster of two shapes, each timed over all clients on its own work:
/// one statement over `unnest` of the columns, and COPY into a temporary table then one
/// statement from it.
fn reference_all(
    database_url: &str,
    tenant_id: i64,
    [unnest_work, copy_work]: [&[Vec<Vec<BatchRow>>]; 2],
) -> f64 {
    let mut connections: Vec<PgConnection> = (0..CLIENTS)
        .map(|_| {
            let mut conn = PgConnection::establish(database_url).expect("connect");
            diesel::sql_query(
                "CREATE TEMPORARY TABLE ref_batch (external_id text, name text, phone text, \
                 phone_e164 text, phone_country text, email text)",
            )
            .execute(&mut conn)
            .expect("staging table");
            conn
        })
        .collect();
    let mut time = |shape: fn(&mut PgConnection, i64, &[BatchRow]), work: &[Vec<Vec<BatchRow>>]| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for (conn, batches) in connections.iter_mut().zip(work) {
                scope.spawn(move || {
                    for batch in batches {
                        shape(conn, tenant_id, batch);
                    }
                });
            }
        });
        started.elapsed().as_secs_f64()
    };
    let unnest = time(upsert_from_arrays, unnest_work);
    let copied = time(upsert_from_copy, copy_work);
    unnest.min(copied)
}

const UPSERT_SET: &str = "ON CONFLICT (tenant_id, external_id) DO UPDATE SET \
     name = EXCLUDED.name, phone = EXCLUDED.phone, phone_e164 = EXCLUDED.phone_e164, \
     phone_country = EXCLUDED.phone_country, email = EXCLUDED.email, updated_at = now()";

/// One upsert statement per batch, phones already normalised.
fn upsert_from_arrays(conn: &mut PgConnection, tenant_id: i64, batch: &[BatchRow]) {
    let column =
        |f: fn(&BatchRow) -> Option<String>| batch.iter().map(f).collect::<Vec<Option<String>>>();
    diesel::sql_query(format!(
        "INSERT INTO contacts (tenant_id, external_id, name, phone, phone_e164, phone_country, email) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
         {UPSERT_SET}"
    ))
    .bind::<BigInt, _>(tenant_id)
    .bind::<Array<Nullable<Text>>, _>(column(|r| Some(r.0.clone())))
    .bind::<Array<Nullable<Text>>, _>(column(|r| Some(r.1.clone())))
    .bind::<Array<Nullable<Text>>, _>(column(|r| Some(r.2.clone())))
    .bind::<Array<Nullable<Text>>, _>(column(|r| r.3.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(|r| r.4.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(|r| r.5.clone()))
    .execute(conn)
    .expect("reference upsert");
}

diesel::table! {
    ref_batch (external_id) {
        external_id -> Text,
        name -> Text,
        phone -> Text,
        phone_e164 -> Nullable<Text>,
        phone_country -> Nullable<Text>,
        email -> Nullable<Text>,
    }
}

/// COPY into a temporary table, then one upsert from it.
fn upsert_from_copy(conn: &mut PgConnection, tenant_id: i64, batch: &[BatchRow]) {
    conn.transaction(|conn| {
        diesel::sql_query("TRUNCATE ref_batch").execute(conn)?;
        diesel::copy_from(ref_batch::table)
            .from_raw_data(ref_batch::table, |out: &mut dyn Write| {
                for (external_id, name, phone, e164, country, email) in batch {
                    let cell = |value: &Option<String>| value.clone().unwrap_or("\\N".into());
                    writeln!(
                        out,
                        "{external_id}\t{name}\t{phone}\t{}\t{}\t{}",
                        cell(e164),
                        cell(country),
                        cell(email)
                    )
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .with_format(CopyFormat::Text)
            .execute(conn)?;
        diesel::sql_query(format!(
            "INSERT INTO contacts (tenant_id, external_id, name, phone, phone_e164, phone_country, email) \
             SELECT $1, * FROM ref_batch {UPSERT_SET}"
        ))
        .bind::<BigInt, _>(tenant_id)
        .execute(conn)
        .map(drop)
    })
    .expect("reference upsert through COPY");
}

pub async fn contacts_batch(ctx: &mut Context<'_>) -> Vec<Row> {
    // Contacts an earlier run created would turn this run's inserts into updates.
    diesel::sql_query(
        "DELETE FROM contacts WHERE tenant_id = $1 \
         AND (external_id LIKE 'new-%' OR external_id LIKE 'world-%')",
    )
    .bind::<BigInt, _>(ctx.data.tenant_id)
    .execute(ctx.conn)
    .expect("remove contacts of earlier runs");
    let service = Service::start(ctx.database_url);
    let batches: i64 = if ctx.settings.quick { 1 } else { 5 };
    let per_run = CLIENTS * batches * BATCH;
    let data = ctx.data;
    let (mut service_seconds, mut reference_seconds) = (Vec::new(), Vec::new());
    for run in run_numbers(ctx.settings) {
        // Each run its own new contacts, apart for service and reference.
        let slot = (run.min(99) as i64) * per_run;
        let service_work = client_batches(data, batches, data.contacts + slot, slot);
        // Each reference shape inserts new contacts of its own and updates the same
        // existing ones (an update writes a new version whatever its values).
        let reference_work = |new_from: i64| {
            client_batches(
                data,
                batches,
                data.contacts + new_from + slot,
                data.contacts / 2 + slot,
            )
        };
        let (unnest_work, copy_work) = (reference_work(20_000_000), reference_work(30_000_000));
        let service_time = push_all(&service.base, service_work).await;
        let reference_time =
            reference_all(ctx.database_url, data.tenant_id, [&unnest_work, &copy_work]);
        if run != WARM_UP {
            service_seconds.push(service_time);
            reference_seconds.push(reference_time);
        }
    }
    let contacts = per_run as f64;
    let service_rate = contacts / median(&mut service_seconds);
    let reference_rate = contacts / median(&mut reference_seconds);
    let mut rows = vec![Row {
        scenario: "contacts-batch",
        metric: format!("upsert {CLIENTS} clients x {batches} batches of {BATCH} (half new)"),
        service: service_rate,
        reference: Some(reference_rate),
        unit: "contacts/s",
        higher_is_better: true,
        target: "<= 1.2x the hand-written upsert".into(),
        met: Some(service_rate * 1.2 >= reference_rate),
    }];
    world_batches(&service).await;
    let mut rss = rss_row("contacts-batch", &service);
    rss.metric =
        "service peak RSS (the batches above, then 4 clients with every region's numbers)".into();
    rss.target = "< 100 MiB".into();
    rss.met = Some(rss.service < 100.0);
    rows.push(rss);
    rows
}

/// Four clients at once, each batch carrying a quarter of every region's example
/// numbers (phonenumber's metadata) among the usual ones: what a service whose tenants
/// call the whole world reads.
async fn world_batches(service: &Service) {
    let mut examples: Vec<String> = DATABASE
        .iter()
        .flat_map(|region| {
            let descriptors = region.descriptors();
            [descriptors.fixed_line(), descriptors.mobile()]
                .into_iter()
                .flatten()
                .filter_map(|descriptor| descriptor.example())
                .map(|example| format!("+{} {example}", region.country_code()))
                .collect::<Vec<_>>()
        })
        .collect();
    // Regions sharing a calling code may share an example: each number once, so that
    // no two clients race for one.
    examples.sort_unstable();
    examples.dedup();
    let shares = examples.len().div_ceil(CLIENTS as usize);
    let clients: Vec<_> = examples
        .chunks(shares)
        .enumerate()
        .map(|(client, numbers)| {
            let contacts: Vec<Value> = numbers
                .iter()
                .enumerate()
                .map(|(i, phone)| json!({"external_id": format!("world-{client}-{i}"), "name": "World", "phone": phone}))
                .collect();
            let base = service.base.clone();
            actix_web::rt::spawn(async move {
                // Items may fail (two regions' examples can be one number): only the
                // service's memory is measured here.
                crate::scenarios::call_as(
                    crate::data::API_KEY,
                    "POST",
                    &base,
                    "/v1/contacts/batch",
                    Some(json!({ "contacts": contacts })),
                )
                .await
            })
        })
        .collect();
    for client in clients {
        client.await.expect("a client");
    }
}
