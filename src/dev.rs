//! Development conveniences of the embedded mode: an admin token and a ready tenant key,
//! kept under the data directory so they survive restarts, and printed at start.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use diesel::PgConnection;

use crate::config::Config;
use crate::core::keys::{generate_api_key, hash_api_key, shown_part};
use crate::db::tenants as queries;

/// Ensures the embedded mode has an admin token and a development tenant, and prints
/// how to reach them.
pub fn announce(config: &mut Config, connection: &mut PgConnection) -> Result<(), String> {
    let admin_token = match &config.admin_token {
        // The operator's own token is never printed.
        Some(_) => "(as set in SEGMENTS_ADMIN_TOKEN)".to_owned(),
        None => {
            let token = read_or_create(&config.data_dir.join("admin-token"), || {
                Ok(generate_api_key())
            })?;
            config.admin_token = Some(token.clone());
            token
        }
    };
    let key_file = config.data_dir.join("dev-api-key");
    let existing = fs::read_to_string(&key_file)
        .ok()
        .map(|key| key.trim().to_owned());
    let known = match &existing {
        Some(key) => queries::find_by_key_hash(connection, &hash_api_key(key))
            .map_err(|e| e.to_string())?
            .is_some(),
        None => false,
    };
    let api_key = match existing {
        Some(key) if known => key,
        _ => {
            let key = generate_api_key();
            let tenant = queries::insert(
                connection,
                &queries::NewTenant {
                    name: "Development".to_owned(),
                    endpoint_limit: None,
                    default_region: Some("IT".to_owned()),
                    require_privacy_consent: false,
                },
            )
            .map_err(|e| e.to_string())?;
            queries::insert_api_key(
                connection,
                tenant.id,
                &hash_api_key(&key),
                &shown_part(&key),
            )
            .map_err(|e| e.to_string())?;
            write_secret(&key_file, &key)?;
            key
        }
    };
    let address = &config.bind;
    println!(
        "\nSegments (embedded PostgreSQL under {data})\n  Swagger UI:  http://{address}/swagger-ui/\n  \
         Admin token: {admin_token}\n  API key of tenant \"Development\" (region IT): {api_key}\n",
        data = config.data_dir.display()
    );
    Ok(())
}

fn read_or_create(
    path: &Path,
    create: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    if let Ok(text) = fs::read_to_string(path) {
        return Ok(text.trim().to_owned());
    }
    let value = create()?;
    write_secret(path, &value)?;
    Ok(value)
}

fn write_secret(path: &Path, value: &str) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    writeln!(file, "{value}").map_err(|e| e.to_string())
}
