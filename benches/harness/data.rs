//! The data set: one tenant with N contacts loaded at COPY speed, deterministic for a seed.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::ExecuteCopyFromDsl;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use segments::core::keys::hash_api_key;
use segments::db::schema::contacts;

/// A key of the service's shape (`sk_` and 64 hex digits): others are refused unread.
pub const API_KEY: &str = "sk_be0c4a1100000000000000000000000000000000000000000000000000000000";
/// Bump when the generated data changes shape, so an old data set is not reused.
const DATA_VERSION: i64 = 2;

const FIRST: &[&str] = &[
    "Giulia", "Marco", "Anna", "Luca", "Sofia", "Matteo", "Emma", "Paul", "Lena", "Hugo", "Lucía",
    "Raj",
];
const LAST: &[&str] = &[
    "Rossi", "Bianchi", "Smith", "Müller", "Martin", "García", "Sharma", "Silva", "Ferrari",
    "Jones",
];
const CITIES: &[&str] = &[
    "Milan",
    "Rome",
    "Turin",
    "Naples",
    "London",
    "Berlin",
    "Paris",
    "Madrid",
    "Mumbai",
    "São Paulo",
];
const PLANS: &[&str] = &["free", "pro", "enterprise"];
const LANGUAGES: &[&str] = &["it", "en", "de", "fr", "es"];
const TAGS: &[&str] = &["vip", "newsletter", "fair-2026", "churn-risk", "referral"];

pub struct DataSet {
    pub tenant_id: i64,
    pub contacts: i64,
    pub first_contact_id: i64,
}

#[derive(QueryableByName)]
struct Marker {
    #[diesel(sql_type = BigInt)]
    contacts: i64,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = BigInt)]
    tenant_id: i64,
    #[diesel(sql_type = BigInt)]
    first_contact_id: i64,
}

/// Reuses the data set in this database when it was made for the same size; else makes it.
pub fn ensure(conn: &mut PgConnection, contacts: i64) -> DataSet {
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS bench_meta (contacts BIGINT, version BIGINT, tenant_id BIGINT, first_contact_id BIGINT)",
    )
    .execute(conn)
    .expect("create bench_meta");
    let marker: Option<Marker> = diesel::sql_query("SELECT * FROM bench_meta")
        .get_result(conn)
        .optional()
        .expect("read bench_meta");
    if let Some(marker) = marker.filter(|m| m.contacts == contacts && m.version == DATA_VERSION) {
        eprintln!("reusing the data set of {} contacts", marker.contacts);
        return DataSet {
            tenant_id: marker.tenant_id,
            contacts,
            first_contact_id: marker.first_contact_id,
        };
    }
    diesel::sql_query("TRUNCATE tenants, api_keys, contacts, attribute_definitions, segments, segment_members, bench_meta CASCADE")
        .execute(conn)
        .expect("truncate");
    let started = std::time::Instant::now();
    let data = generate(conn, contacts);
    diesel::sql_query("INSERT INTO bench_meta VALUES ($1, $2, $3, $4)")
        .bind::<BigInt, _>(contacts)
        .bind::<BigInt, _>(DATA_VERSION)
        .bind::<BigInt, _>(data.tenant_id)
        .bind::<BigInt, _>(data.first_contact_id)
        .execute(conn)
        .expect("write bench_meta");
    diesel::sql_query("VACUUM ANALYZE contacts")
        .execute(conn)
        .expect("analyze");
    eprintln!(
        "generated {contacts} contacts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    data
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn generate(conn: &mut PgConnection, count: i64) -> DataSet {
    let tenant: Id = diesel::sql_query(
        "INSERT INTO tenants (name, default_region) VALUES ('Benchmark', 'IT') RETURNING id",
    )
    .get_result(conn)
    .expect("insert tenant");
    diesel::sql_query("INSERT INTO api_keys (tenant_id, key_hash) VALUES ($1, $2)")
        .bind::<BigInt, _>(tenant.id)
        .bind::<diesel::sql_types::Bytea, _>(hash_api_key(API_KEY))
        .execute(conn)
        .expect("insert key");
    for (key, label, kind) in [
        ("city", "City", "text"),
        ("plan", "Plan", "text"),
        ("premium", "Premium customer", "boolean"),
        ("score", "Score", "number"),
        ("birthdate", "Birth date", "date"),
        ("signup_date", "Signup date", "date"),
        ("language", "Language", "text"),
    ] {
        diesel::sql_query("INSERT INTO attribute_definitions (tenant_id, key, label, type) VALUES ($1, $2, $3, $4)")
            .bind::<BigInt, _>(tenant.id)
            .bind::<Text, _>(key)
            .bind::<Text, _>(label)
            .bind::<Text, _>(kind)
            .execute(conn)
            .expect("define attribute");
    }
    let first: Id = diesel::sql_query("SELECT nextval('contacts_id_seq') AS id")
        .get_result(conn)
        .expect("sequence");
    let tenant_id = tenant.id;
    diesel::copy_from(contacts::table)
        .from_raw_data(
            (
                contacts::tenant_id,
                contacts::id,
                contacts::external_id,
                contacts::name,
                contacts::phone,
                contacts::phone_e164,
                contacts::phone_country,
                contacts::email,
                contacts::attributes,
                contacts::tags,
                contacts::opted_out,
                contacts::privacy_consent,
            ),
            |out: &mut dyn std::io::Write| -> Result<(), diesel::result::Error> {
                let failed = |e: csv::Error| diesel::result::Error::SerializationError(Box::new(e));
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                let mut rng = StdRng::seed_from_u64(42);
                for index in 0..count {
                    writer
                        .write_record(contact_record(&mut rng, tenant_id, first.id + index, index))
                        .map_err(failed)?;
                }
                writer.flush().map_err(|e| failed(e.into()))
            },
        )
        .with_format(diesel::pg::CopyFormat::Csv)
        .execute(conn)
        .expect("COPY contacts");
    diesel::sql_query("SELECT setval('contacts_id_seq', $1) AS id")
        .bind::<BigInt, _>(first.id + count)
        .get_result::<Id>(conn)
        .expect("advance sequence");
    DataSet {
        tenant_id,
        contacts: count,
        first_contact_id: first.id,
    }
}

/// One contact. Every other contact carries the tag `lead`, so "all search results" for it
/// match half of the tenant; ~3% are opted out, ~3% have an invalid phone.
fn contact_record(rng: &mut StdRng, tenant_id: i64, id: i64, index: i64) -> Vec<String> {
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    let (phone, e164, country) = phone_for(index, rng.random_range(0..100) < 3);
    let email = (rng.random_range(0..10) < 8).then(|| {
        format!(
            "{}.{}{index}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        )
    });
    let birth_year = rng.random_range(1955..2006);
    let attributes = serde_json::json!({
        "city": CITIES[rng.random_range(0..CITIES.len())],
        "plan": PLANS[rng.random_range(0..PLANS.len())],
        "premium": rng.random_range(0..4) == 0,
        "score": rng.random_range(0..1000) as f64 / 10.0,
        "birthdate": format!("{birth_year}-{:02}-{:02}", rng.random_range(1..13), rng.random_range(1..29)),
        "signup_date": format!("{}-{:02}-{:02}", rng.random_range(2019..2027), rng.random_range(1..13), rng.random_range(1..29)),
        "language": LANGUAGES[rng.random_range(0..LANGUAGES.len())],
    });
    let mut tags: Vec<&str> = Vec::new();
    if index % 2 == 0 {
        tags.push("lead");
    }
    for _ in 0..rng.random_range(0..3) {
        let tag = TAGS[rng.random_range(0..TAGS.len())];
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    vec![
        tenant_id.to_string(),
        id.to_string(),
        format!("crm-{index}"),
        format!("{first} {last}"),
        phone,
        e164.unwrap_or_default(),
        country.unwrap_or_default(),
        email.unwrap_or_default(),
        attributes.to_string(),
        format!("{{{}}}", tags.join(",")),
        (rng.random_range(0..100) < 3).to_string(),
        (rng.random_range(0..10) < 9).to_string(),
    ]
}

/// A phone from one of six countries, unique by index, spelled as people write them.
pub fn phone_for(index: i64, invalid: bool) -> (String, Option<String>, Option<String>) {
    if invalid {
        return (format!("{}", 100 + index % 900), None, None);
    }
    let n = index;
    let (spelled, e164, country) = match index % 6 {
        0 => (
            format!("3{:09}", 200_000_000 + n),
            format!("+393{:09}", 200_000_000 + n),
            "IT",
        ),
        1 => (
            format!("+44 7{:09}", 400_000_000 + n),
            format!("+447{:09}", 400_000_000 + n),
            "GB",
        ),
        2 => (
            format!("+49 151 {:08}", 10_000_000 + n),
            format!("+49151{:08}", 10_000_000 + n),
            "DE",
        ),
        3 => (
            format!("0033 6{:08}", 10_000_000 + n),
            format!("+336{:08}", 10_000_000 + n),
            "FR",
        ),
        4 => (
            format!("+34 6{:08}", 10_000_000 + n),
            format!("+346{:08}", 10_000_000 + n),
            "ES",
        ),
        _ => (
            format!("+1 201 {:07}", 2_000_000 + n),
            format!("+1201{:07}", 2_000_000 + n),
            "US",
        ),
    };
    (spelled, Some(e164), Some(country.to_owned()))
}
