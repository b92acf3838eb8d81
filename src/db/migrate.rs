//! Migrations, embedded in the binary and applied at start.

use diesel::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Applies the pending migrations; returns the names of those applied.
pub fn run_migrations(connection: &mut PgConnection) -> Result<Vec<String>, String> {
    connection
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(ToString::to_string).collect())
        .map_err(|error| error.to_string())
}
