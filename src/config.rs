//! Configuration, read once from the environment (and `.env`) or from flags.

use std::path::PathBuf;

/// Every setting has an environment variable; see the README's configuration table.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// PostgreSQL URL. When unset, a private PostgreSQL is started under the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address to listen on.
    #[arg(long, env = "SEGMENTS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Token for `/v1/admin`; the admin API answers 404 without one.
    #[arg(long, env = "SEGMENTS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Largest JSON body accepted, in bytes.
    #[arg(long, env = "SEGMENTS_JSON_LIMIT", default_value_t = 1024 * 1024)]
    pub json_limit: usize,

    /// Database connections kept by the pool.
    #[arg(long, env = "SEGMENTS_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// Where the embedded PostgreSQL and its development credentials live.
    #[arg(long, env = "SEGMENTS_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "SEGMENTS_WORKERS")]
    pub workers: Option<usize>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "SEGMENTS_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The configuration tests and tools start from: no admin token, defaults elsewhere.
    pub fn for_database(database_url: &str) -> Self {
        Self {
            database_url: Some(database_url.to_owned()),
            bind: "127.0.0.1:0".to_owned(),
            admin_token: None,
            json_limit: 1024 * 1024,
            db_pool_size: 4,
            data_dir: PathBuf::from(".data"),
            workers: None,
            log_format: LogFormat::Text,
        }
    }
}
