//! `segments`: serve (the default), `migrate`, `distribute` (on Citus), or print the
//! OpenAPI document.

use std::process::ExitCode;

use actix_web::{web, HttpServer};
use clap::{Parser, Subcommand};
use diesel::{Connection, PgConnection};
use segments::app::{
    keep_dynamic_segments_current, keep_events_trimmed, keep_idempotency_keys_trimmed,
    keep_rate_limits_small, keep_send_partitions,
};
use segments::config::Config;
use segments::core::phone;
use segments::db::embedded::EmbeddedPostgres;
use segments::db::migrate::run_migrations;
use segments::{build_app, openapi_document, telemetry, AppState};

#[derive(Parser)]
#[command(version, about = "Audiences for bulk messaging campaigns.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations and serve the API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Apply pending migrations, then place every table on a Citus cluster (run against
    /// the coordinator; safe to repeat) and exit. See docs/operations.md.
    Distribute,
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
    /// Exit 0 when the running service answers `/healthz` (for container health checks).
    Healthcheck,
}

/// glibc keeps what a busy process freed: every thread that allocates gets its own heap
/// ("arena", up to 8 per core), and once a large block is freed it stops giving large
/// blocks their own mappings, so they stay in the heaps after use. Measured on imports
/// of 200,000 rows, alternating CSV and `.xlsx`: the process grew to 131 MB and stayed
/// there; with one arena per core and large blocks always mapped (and returned), it
/// peaked at 103 MB and fell back between imports. Either setting yields to the
/// operator's `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let settings = [
        (
            "MALLOC_ARENA_MAX",
            libc::M_ARENA_MAX,
            i32::try_from(cores).unwrap_or(2).max(2),
        ),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024),
    ];
    for (variable, parameter, value) in settings {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only changes an allocator setting; called first thing in
            // `main`, before any other thread exists.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> ExitCode {
    tune_malloc();
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        let document = openapi_document()
            .to_pretty_json()
            .expect("the document serialises");
        println!("{document}");
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Healthcheck) = cli.command {
        return healthcheck(&cli.config.bind);
    }
    telemetry::init(cli.config.log_format);
    let then = match cli.command {
        Some(Command::Migrate) => Then::Exit,
        Some(Command::Distribute) => Then::Distribute,
        _ => Then::Serve,
    };
    match run(cli.config, then) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// A bare HTTP/1.0 request: slim images carry no curl.
fn healthcheck(bind: &str) -> ExitCode {
    use std::io::{Read, Write};
    let address = bind.replace("0.0.0.0", "127.0.0.1");
    let answered = std::net::TcpStream::connect(&address).and_then(|mut stream| {
        stream.set_read_timeout(Some(std::time::Duration::from_secs(3)))?;
        stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"))
    });
    if matches!(answered, Ok(true)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What follows the migrations.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    Serve,
    Exit,
    Distribute,
}

fn run(mut config: Config, then: Then) -> Result<(), String> {
    config.check()?;
    let embedded = match &config.database_url {
        Some(_) => None,
        None => {
            let cluster = EmbeddedPostgres::start(&config.data_dir)?;
            config.database_url = Some(cluster.database_url());
            Some(cluster)
        }
    };
    let outcome = migrate_and_serve(&mut config, embedded.is_some(), then);
    if let Some(cluster) = embedded {
        cluster.stop();
    }
    outcome
}

fn migrate_and_serve(config: &mut Config, embedded: bool, then: Then) -> Result<(), String> {
    let url = config.database_url.clone().unwrap_or_default();
    let mut connection = PgConnection::establish(&url)
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    for migration in run_migrations(&mut connection)? {
        tracing::info!(%migration, "applied migration");
    }
    match then {
        Then::Exit => return Ok(()),
        Then::Distribute => {
            return segments::db::citus::distribute(&mut connection)
                .map_err(|e| format!("could not distribute the tables: {e}"));
        }
        Then::Serve => {}
    }
    if embedded {
        segments::dev::announce(config, &mut connection)?;
    }
    drop(connection);
    phone::warm_up();
    serve(config.clone()).map_err(|e| format!("server error: {e}"))
}

#[actix_web::main]
async fn serve(config: Config) -> std::io::Result<()> {
    let bind = config.bind.clone();
    let workers = config.workers;
    let retention_days = config.event_retention_days;
    let send_retention_days = config.send_retention_days;
    let database_url = config.database_url.clone().unwrap_or_default();
    let state = web::Data::new(AppState::new(config));
    keep_dynamic_segments_current(state.env.clone());
    keep_rate_limits_small(state.clone());
    keep_idempotency_keys_trimmed(state.env.clone());
    keep_events_trimmed(state.env.clone(), retention_days);
    keep_send_partitions(state.env.clone(), send_retention_days);
    let sender = segments::webhook_client::WebhookClient::new(state.env.webhooks_may_reach_private);
    segments::service::webhook_delivery::spawn(
        state.env.clone(),
        std::rc::Rc::new(sender),
        database_url,
    );
    let mut server = HttpServer::new(move || build_app(state.clone())).shutdown_timeout(30);
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    let server = server.bind(&bind)?;
    for address in server.addrs() {
        tracing::info!("listening on http://{address} (Swagger UI: http://{address}/swagger-ui/)");
    }
    // actix stops accepting on SIGTERM and drains in-flight requests (SIGINT: at once).
    server.run().await
}
