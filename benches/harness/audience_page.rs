//! A campaign audience's keyset page of 1,000 recipients: the service's page over HTTP
//! against the same rows read by the fastest hand-written statement.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

use crate::report::{median, Row};
use crate::scenarios::{bigint_array, timed_page, vacuum_memberships, Context};

/// A keyset page of 1,000 recipients, in two hand-written shapes, each reading what the
/// service's page holds: the id, the name and the address on the channel.
const REFERENCE_PAGES: [&str; 2] = [
    // Contacts in key order, each probed for a membership.
    "SELECT c.id, c.name, c.phone_e164 FROM contacts c WHERE c.tenant_id = $1 AND c.id > $2 AND NOT c.opted_out
       AND c.phone_e164 IS NOT NULL AND EXISTS (SELECT 1 FROM segment_members m
         WHERE m.tenant_id = $1 AND m.contact_id = c.id AND m.segment_id = ANY($3))
     ORDER BY c.id LIMIT 1000",
    // The key bound pushed into the membership test.
    "SELECT c.id, c.name, c.phone_e164 FROM contacts c WHERE c.tenant_id = $1 AND c.id > $2 AND NOT c.opted_out
       AND c.phone_e164 IS NOT NULL AND c.id IN (SELECT m.contact_id FROM segment_members m
         WHERE m.tenant_id = $1 AND m.segment_id = ANY($3) AND m.contact_id > $2)
     ORDER BY c.id LIMIT 1000",
];

/// Pages of 1,000 recipients from across the list: the service's against the fastest of
/// [`REFERENCE_PAGES`] (their medians), each planned per call and prepared, with the
/// memberships vacuumed and statistics taken first so that the references get their best
/// plans.
pub async fn audience_page(
    ctx: &mut Context<'_>,
    base: &str,
    campaign: i64,
    segments: &[i64],
) -> Row {
    #[derive(QueryableByName, PartialEq, Debug)]
    struct Recipient {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        phone_e164: String,
    }
    vacuum_memberships(ctx.conn);
    ctx.conn
        .batch_execute("ANALYZE segment_members")
        .expect("analyze");
    let (tenant, first, contacts) = (
        ctx.data.tenant_id,
        ctx.data.first_contact_id,
        ctx.data.contacts,
    );
    // Each shape planned at every call and prepared (after five executions PostgreSQL
    // keeps a generic plan where it costs no more): whichever is faster.
    type Reference<'a> = Box<
        dyn Fn(
                i64,
            ) -> diesel::query_builder::BoxedSqlQuery<
                'a,
                diesel::pg::Pg,
                diesel::query_builder::SqlQuery,
            > + 'a,
    >;
    let mut reference_statements: Vec<Reference> = Vec::new();
    for (n, shape) in REFERENCE_PAGES.iter().enumerate() {
        reference_statements.push(Box::new(move |after| {
            diesel::sql_query(*shape)
                .into_boxed()
                .bind::<BigInt, _>(tenant)
                .bind::<BigInt, _>(after)
                .bind::<Array<BigInt>, _>(segments)
        }));
        ctx.conn
            .batch_execute(&format!(
                "PREPARE reference_page_{n} (bigint, bigint, bigint[]) AS {shape}"
            ))
            .expect("prepare a reference");
        // EXECUTE takes no bind parameters: the harness's own integers are spelled out.
        let segments = bigint_array(segments);
        reference_statements.push(Box::new(move |after| {
            diesel::sql_query(format!(
                "EXECUTE reference_page_{n} ({tenant}, {after}, {segments})"
            ))
            .into_boxed()
        }));
    }
    let pages = if ctx.settings.quick { 2 } else { 30 };
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish();
    let (mut service_ms, mut reference_ms) =
        (Vec::new(), vec![Vec::new(); reference_statements.len()]);
    for page in 0..pages {
        let after = first + (contacts / 7 + page * contacts / 37) % contacts;
        let url = format!("{base}/v1/campaigns/{campaign}/audience?limit=1000&after={after}");
        let (took, body) = timed_page(&client, &url).await;
        service_ms.push(took);
        let served: Vec<Recipient> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| Recipient {
                id: item["contact_id"].as_i64().expect("contact id"),
                name: item["name"].as_str().expect("name").to_owned(),
                phone_e164: item["address"].as_str().expect("address").to_owned(),
            })
            .collect();
        for (statement, times) in reference_statements.iter().zip(&mut reference_ms) {
            let started = Instant::now();
            let rows: Vec<Recipient> = statement(after).load(ctx.conn).expect("reference page");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(
                served, rows,
                "the service's page and the reference's disagree"
            );
        }
    }
    ctx.conn
        .batch_execute("DEALLOCATE ALL")
        .expect("drop the prepared references");
    let service_page = median(&mut service_ms);
    let reference_page = reference_ms
        .iter_mut()
        .map(|times| median(times))
        .fold(f64::MAX, f64::min);
    Row {
        scenario: "audience-stream",
        metric: "keyset page of 1,000 recipients (HTTP vs SQL)".into(),
        service: service_page,
        reference: Some(reference_page),
        unit: "ms",
        higher_is_better: false,
        target: "<= 1.5x raw SQL".into(),
        met: Some(service_page <= 1.5 * reference_page),
    }
}
