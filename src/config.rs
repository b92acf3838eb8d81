//! Configuration, read once from the environment (and `.env`) or from flags.

use std::path::PathBuf;

/// Every setting has an environment variable; see the README's configuration table.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// `DATABASE_URL`: PostgreSQL URL; when unset, a private PostgreSQL is started under
    /// the data directory. Read from the environment only, so it never shows in `ps`.
    #[arg(skip = std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty()))]
    pub database_url: Option<String>,

    /// Address to listen on.
    #[arg(long, env = "SEGMENTS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// `SEGMENTS_ADMIN_TOKEN`: the token for `/v1/admin`; without one the admin API answers
    /// 404. Read from the environment only.
    #[arg(skip = std::env::var("SEGMENTS_ADMIN_TOKEN").ok().filter(|token| !token.is_empty()))]
    pub admin_token: Option<String>,

    /// Largest JSON body accepted, in bytes.
    #[arg(long, env = "SEGMENTS_JSON_LIMIT", default_value_t = 1024 * 1024)]
    pub json_limit: usize,

    /// Database connections kept by the pool.
    #[arg(long, env = "SEGMENTS_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,

    /// Most of the pool one tenant may hold at once, in percent (at least one
    /// connection), so one tenant's slow work never starves the others.
    #[arg(long, env = "SEGMENTS_TENANT_POOL_SHARE", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub tenant_pool_share: u32,

    /// Requests a second each API key may make (0: no limit); see `rate_burst`.
    #[arg(long, env = "SEGMENTS_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,

    /// Requests a key may make at once before `rate_limit` paces it.
    #[arg(long, env = "SEGMENTS_RATE_BURST", default_value_t = 5000)]
    pub rate_burst: u32,

    /// Longest a single SQL statement may run, in seconds, before PostgreSQL cancels it and
    /// the client gets 503 `query_timeout` (0: no limit). A query a client abandoned stops
    /// here at the latest.
    #[arg(long, env = "SEGMENTS_STATEMENT_TIMEOUT", default_value_t = 60)]
    pub statement_timeout_secs: u64,

    /// Where the embedded PostgreSQL and its development credentials live.
    #[arg(long, env = "SEGMENTS_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "SEGMENTS_WORKERS")]
    pub workers: Option<usize>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "SEGMENTS_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Origins browser apps may call the API from, comma-separated
    /// (`https://app.example.com,https://admin.example.com`), or `*` for any. Empty (the
    /// default): no cross-origin calls.
    #[arg(
        long,
        env = "SEGMENTS_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Days events are kept for the feed and for webhooks that are behind (at least 7).
    #[arg(long, env = "SEGMENTS_EVENT_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(7..=365))]
    pub event_retention_days: u32,

    /// Days a send's recipients are kept (at least 7); then their day is dropped whole
    /// and each send keeps only its final count per status.
    #[arg(long, env = "SEGMENTS_SEND_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(7..=3650))]
    pub send_retention_days: u32,

    /// Lets webhooks deliver to private, loopback and link-local addresses (a receiver on
    /// the same host or network, as in development). Off by default: a tenant must not
    /// make the service call into its own network.
    #[arg(long, env = "SEGMENTS_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Refuses settings the service must not start with.
    pub fn check(&self) -> Result<(), String> {
        let min = crate::core::keys::MIN_ADMIN_TOKEN_LENGTH;
        match &self.admin_token {
            Some(token) if token.chars().count() < min => Err(format!(
                "SEGMENTS_ADMIN_TOKEN must be at least {min} characters (e.g. `openssl rand -hex 32`); \
                 unset it to turn the admin API off"
            )),
            _ => Ok(()),
        }?;
        self.cors_origins
            .iter()
            .try_for_each(|origin| check_origin(origin))
    }

    /// The configuration tests and tools start from: no admin token, defaults elsewhere.
    pub fn for_database(database_url: &str) -> Self {
        Self {
            database_url: Some(database_url.to_owned()),
            bind: "127.0.0.1:0".to_owned(),
            admin_token: None,
            json_limit: 1024 * 1024,
            db_pool_size: 4,
            tenant_pool_share: 100,
            rate_limit: 1000,
            rate_burst: 5000,
            statement_timeout_secs: 60,
            data_dir: PathBuf::from(".data"),
            workers: None,
            log_format: LogFormat::Text,
            cors_origins: Vec::new(),
            event_retention_days: 7,
            send_retention_days: 90,
            webhook_allow_private: false,
        }
    }
}

/// Why an origin setting cannot be used, if it cannot.
fn check_origin(origin: &str) -> Result<(), String> {
    let origin = origin.trim();
    if origin.is_empty() || origin == "*" {
        return Ok(());
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("CORS origin {origin:?} must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace) {
        return Err(format!(
            "CORS origin {origin:?} must be a scheme and a host (and port), without a path"
        ));
    }
    Ok(())
}
