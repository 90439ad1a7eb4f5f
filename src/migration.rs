//! Explicit migrations: the PostgreSQL schema (for deployments whose workers
//! hold no DDL rights) and an embedded DuckDB manifest into PostgreSQL.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::manifest::{duckdb_rows_for_migration, PostgresManifest};
use crate::options::Options;
use crate::pg::{resolve_config, PgPool};

/// What a manifest migration did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Rows found in the embedded manifest.
    pub rows_read: u64,
    /// Rows added to PostgreSQL.
    pub inserted: u64,
    /// Rows PostgreSQL already had (from a previous run, or published there since).
    pub already_present: u64,
    /// The copy of the DuckDB file taken before reading it.
    pub backup: Option<PathBuf>,
}

fn connect(options: &Options) -> Result<Arc<PgPool>> {
    let (config, target) = resolve_config(&options.postgres)?.ok_or_else(|| {
        Error::invalid_argument("no PostgreSQL server configured: set postgres.dsn or PG_MANIFEST_DSN (or PG_HOST, ...)")
    })?;
    Ok(Arc::new(PgPool::connect(config, target, &options.postgres)?))
}

/// Creates or upgrades libfstore's PostgreSQL schema; returns the versions applied.
pub fn migrate_schema(options: &Options) -> Result<Vec<i32>> {
    PostgresManifest::unchecked(connect(options)?, &options.postgres.schema).migrate()
}

/// Copies the rows of the cache directory's embedded manifest into
/// PostgreSQL. Idempotent (rows already there are kept) and safe while
/// workers run: it only adds rows, and hits never depend on the manifest.
/// The DuckDB file is backed up first and otherwise left as it was.
pub fn migrate_manifest(options: &Options) -> Result<MigrationReport> {
    let cache_dir = options.resolved_cache_dir()?;
    let manifest = PostgresManifest::open(connect(options)?, &options.postgres.schema, options.postgres.auto_migrate)?;
    let Some((rows, backup)) = duckdb_rows_for_migration(&cache_dir)? else {
        return Ok(MigrationReport::default());
    };
    let inserted = manifest.insert_missing(&rows)?;
    Ok(MigrationReport {
        rows_read: rows.len() as u64,
        inserted,
        already_present: rows.len() as u64 - inserted,
        backup: Some(backup),
    })
}
