//! Explicit migrations: the PostgreSQL schema (for deployments whose workers
//! hold no DDL rights), an embedded DuckDB manifest into PostgreSQL, and
//! rebinding a cache directory to other coordination settings.

use std::path::PathBuf;
use std::sync::Arc;

use crate::binding::{self, Binding};
use crate::cache_dir::CacheDir;
use crate::error::{Error, Result};
use crate::manifest::{duckdb_rows_for_migration, Backend, PostgresManifest};
use crate::options::{ManifestChoice, Options};
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
    PgPool::connect(config, target, &options.postgres)
}

fn open_postgres(options: &Options) -> Result<PostgresManifest> {
    PostgresManifest::open(connect(options)?, &options.postgres.schema, options.postgres.auto_migrate, options.wait_timeout)
}

/// Creates or upgrades libfstore's PostgreSQL schema; returns the versions applied.
pub fn migrate_schema(options: &Options) -> Result<Vec<i32>> {
    PostgresManifest::unchecked(connect(options)?, &options.postgres.schema, options.wait_timeout)?.migrate()
}

/// Records `options`' coordination settings as the cache directory's own,
/// replacing what it was bound to: every process on the directory must use
/// them from now on. Returns a description of the new binding.
pub fn rebind(options: &Options) -> Result<String> {
    let CacheDir { path: cache_dir, modes } = CacheDir::open(options)?;
    let embedded = options.manifest == ManifestChoice::DuckDb
        || (options.manifest == ManifestChoice::Auto && resolve_config(&options.postgres)?.is_none());
    let binding = if embedded {
        Binding::new(options, Backend::DuckDb, None)
    } else {
        Binding::new(options, Backend::Postgres, Some(open_postgres(options)?.identity()?))
    };
    binding::rebind(&cache_dir, &binding, modes)?;
    Ok(binding.to_string())
}

/// Copies the rows of the cache directory's embedded manifest into
/// PostgreSQL and binds the directory to PostgreSQL, so that stores opened
/// from then on use it (an embedded store is refused). Idempotent (rows
/// already there are kept) and loses nothing while workers run: it only adds
/// rows, hits never depend on the manifest, and a file whose row was written
/// to the embedded manifest after the copy is re-indexed by maintenance. The
/// DuckDB file is backed up first and otherwise left as it was.
pub fn migrate_manifest(options: &Options) -> Result<MigrationReport> {
    use crate::manifest::Manifest;
    let CacheDir { path: cache_dir, modes } = CacheDir::open(options)?;
    let manifest = open_postgres(options)?;
    let target = Binding::new(options, Backend::Postgres, Some(manifest.identity()?));
    match binding::read(&cache_dir)? {
        Some(bound) if bound != target && (bound.backend != Backend::DuckDb || !same_locks(&bound, &target)) => {
            return Err(binding::mismatch(&cache_dir, &bound, &target));
        }
        _ => {}
    }
    let Some((rows, backup)) = duckdb_rows_for_migration(&cache_dir, options.wait_timeout, modes)? else {
        binding::rebind(&cache_dir, &target, modes)?;
        return Ok(MigrationReport::default());
    };
    let inserted = manifest.insert_missing(&rows)?;
    binding::rebind(&cache_dir, &target, modes)?;
    Ok(MigrationReport {
        rows_read: rows.len() as u64,
        inserted,
        already_present: rows.len() as u64 - inserted,
        backup: Some(backup),
    })
}

fn same_locks(a: &Binding, b: &Binding) -> bool {
    a.granularity == b.granularity && a.namespace == b.namespace
}
