//! The benchmark harness: generates its own data, drives the real server over loopback
//! HTTP and, in the same run, a raw-PostgreSQL reference doing the same work; prints
//! medians, the service/reference ratio and the service's peak RSS.
//!
//! `cargo bench --bench harness -- [SCENARIO ...] [--contacts N] [--runs N] [--quick]`
//! Scenarios: api, contacts-batch, members-add, from-search, dynamic-count, segments-list,
//! audience-summary, audience-stream, csv-import, import-and-writes, xlsx-import, noisy-neighbour,
//! events, dynamic-writes, sends (default: all).

mod audience;
mod audience_page;
mod batches;
mod data;
mod events;
mod files;
mod import;
mod noisy;
mod report;
mod scenarios;
mod sends;
mod service;
// The workbooks the API tests upload, built by the same code (not all of it used here).
#[path = "../../tests/api/xlsx.rs"]
#[allow(dead_code)]
mod xlsx;

use clap::Parser;
use diesel::prelude::*;
use segments::db::embedded::EmbeddedPostgres;

#[derive(Parser)]
#[command(about = "Measures the Segments service against PostgreSQL itself.")]
pub struct Settings {
    /// Scenarios to run (default: all).
    scenarios: Vec<String>,
    /// Contacts in the generated tenant.
    #[arg(long, default_value_t = 1_000_000)]
    contacts: i64,
    /// Measured runs per scenario (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Tiny data, one run, no warm-up: proves the harness works (CI).
    #[arg(long)]
    quick: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const DATABASE: &str = "segments_bench";
const ALL: &[&str] = &[
    "api",
    "contacts-batch",
    "members-add",
    "from-search",
    "dynamic-count",
    "segments-list",
    "audience-summary",
    "audience-stream",
    "csv-import",
    "import-and-writes",
    "xlsx-import",
    "noisy-neighbour",
    "events",
    "dynamic-writes",
    "sends",
];

#[actix_web::main]
async fn main() {
    let mut settings = Settings::parse();
    if settings.quick {
        settings.contacts = settings.contacts.min(2_000);
        settings.runs = 1;
    }
    let scenarios: Vec<String> = if settings.scenarios.is_empty() {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        settings.scenarios.clone()
    };
    if let Some(unknown) = scenarios.iter().find(|s| !ALL.contains(&s.as_str())) {
        eprintln!("unknown scenario {unknown}; known: {}", ALL.join(", "));
        std::process::exit(2);
    }
    let database_url = prepare_database(settings.quick);
    let mut conn = PgConnection::establish(&database_url).expect("connect to the bench database");
    segments::db::migrate::run_migrations(&mut conn).expect("migrate");
    // References record events as the service does: they stage them here first.
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        segments::db::events::STAGING_TABLE,
    )
    .expect("the events staging table");
    let data = data::ensure(&mut conn, settings.contacts);
    let mut ctx = scenarios::Context {
        settings: &settings,
        data: &data,
        database_url: &database_url,
        conn: &mut conn,
    };
    let mut rows = Vec::new();
    for scenario in &scenarios {
        eprintln!("running {scenario} ...");
        rows.extend(match scenario.as_str() {
            "api" => scenarios::api(&mut ctx).await,
            "contacts-batch" => batches::contacts_batch(&mut ctx).await,
            "members-add" => scenarios::members_add(&mut ctx).await,
            "dynamic-count" => scenarios::dynamic_count(&mut ctx).await,
            "segments-list" => scenarios::segments_list(&mut ctx).await,
            "audience-summary" => audience::audience_summary(&mut ctx).await,
            "audience-stream" => audience::audience_stream(&mut ctx).await,
            "csv-import" => import::csv_import(&mut ctx).await,
            "import-and-writes" => import::import_and_writes(&mut ctx).await,
            "xlsx-import" => files::xlsx_import(&mut ctx).await,
            "noisy-neighbour" => noisy::noisy_neighbour(&mut ctx).await,
            "events" => events::events(&mut ctx).await,
            "dynamic-writes" => events::dynamic_writes(&mut ctx).await,
            "sends" => sends::sends(&mut ctx).await,
            _ => scenarios::from_search(&mut ctx).await,
        });
    }
    println!(
        "\n{} contacts, median of {} run(s){}, {} cores\n",
        settings.contacts,
        settings.runs,
        if settings.quick {
            " (quick: figures mean nothing)"
        } else {
            " after a warm-up"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    report::print(&rows);
}

/// The bench database on `DATABASE_URL`'s server, else on the embedded PostgreSQL; a quick
/// run always starts from an empty one.
fn prepare_database(quick: bool) -> String {
    let server = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => EmbeddedPostgres::start(std::path::Path::new(".data"))
            .expect("start PostgreSQL")
            .admin_url(),
    };
    let (prefix, _) = server.rsplit_once('/').expect("a URL with a database name");
    let database = if quick {
        format!("{DATABASE}_quick")
    } else {
        DATABASE.to_owned()
    };
    let mut admin = PgConnection::establish(&server).expect("connect to PostgreSQL");
    if quick {
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .execute(&mut admin)
            .expect("drop");
    }
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let exists: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found")
            .bind::<diesel::sql_types::Text, _>(&database)
            .get_result(&mut admin)
            .expect("look up the database");
    if !exists.found {
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .expect("create the bench database");
    }
    format!("{prefix}/{database}")
}
