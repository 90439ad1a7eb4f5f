//! Rolling a cache directory back from PostgreSQL to the embedded manifest.
//!
//! A migration copies the DuckDB manifest to a backup beside it before it
//! moves the directory to PostgreSQL. Rolling back restores the newest
//! backup and brings it up to date, so that nothing published since the
//! migration is lost: every PostgreSQL row is copied in (entries published
//! or republished there), a restored row whose entry was removed since (its
//! file is gone) is dropped, and any valid entry file that still has no row
//! is indexed from its own footer. Then the directory is bound to the
//! embedded manifest again, with the same lock settings.
//!
//! Stop the workers first: one still running on PostgreSQL would record its
//! next entries there (they are files all the same, and `fstore gc`
//! re-indexes them into the embedded manifest).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::binding::{self, Binding};
use crate::cache_dir::CacheDir;
use crate::error::{Error, Result};
use crate::manifest::{restore_duckdb_for_rollback, Backend, Manifest, ManifestRow, PostgresManifest, DUCKDB_FILE};
use crate::options::Options;
use crate::pg::{resolve_config, PgPool};
use crate::storage::Storage;

use super::verify::entry_files;

/// What a rollback did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackReport {
    /// The backup restored; `None` when the migration left none (the
    /// embedded manifest is then rebuilt from PostgreSQL and the files).
    pub backup: Option<PathBuf>,
    /// Where the DuckDB file found in place was set aside, if there was one.
    pub set_aside: Option<PathBuf>,
    /// Rows copied from PostgreSQL.
    pub rows_from_postgres: u64,
    /// Restored rows dropped because their entry's file is gone.
    pub rows_dropped: u64,
    /// Entry files without any row, indexed from their footers.
    pub reindexed_files: u64,
    /// Rows in the embedded manifest afterwards.
    pub rows: u64,
    /// The directory's new binding.
    pub binding: String,
}

/// Moves the cache directory of `options` from its PostgreSQL manifest (the
/// one `options` name) back to the embedded manifest. See the module docs.
pub fn rollback_manifest(options: &Options) -> Result<RollbackReport> {
    let CacheDir { path: cache_dir, modes } = CacheDir::open(options)?;
    let bound = binding::read(&cache_dir)?.filter(|b| b.backend == Backend::Postgres).ok_or_else(|| {
        Error::invalid_state(format!(
            "cache directory {} is not bound to a PostgreSQL manifest: there is nothing to roll back",
            cache_dir.display()
        ))
    })?;
    let (config, target) = resolve_config(&options.postgres)?.ok_or_else(|| {
        Error::invalid_argument("no PostgreSQL server configured: set postgres.dsn or PG_MANIFEST_DSN (or PG_HOST, ...)")
    })?;
    let pool = PgPool::connect(config, target, &options.postgres)?;
    let postgres = PostgresManifest::open(pool, &options.postgres.schema, false, options.wait_timeout)?;
    if bound.postgres.as_ref() != Some(&postgres.identity()?) {
        let configured = Binding::new(options, Backend::Postgres, Some(postgres.identity()?));
        return Err(binding::mismatch(&cache_dir, &bound, &configured));
    }
    let pg_rows = postgres.rows()?;
    let backup = newest_backup(&cache_dir)?;
    let storage = Storage::open(&cache_dir, true, modes)?;
    let mut report = RollbackReport { backup: backup.clone(), rows_from_postgres: pg_rows.len() as u64, ..Default::default() };
    let set_aside = restore_duckdb_for_rollback(&cache_dir, backup.as_deref(), options.wait_timeout, modes, |restored| {
        let in_postgres: HashSet<&str> = pg_rows.iter().map(|r| r.entry_id.as_str()).collect();
        let mut removals = Vec::new();
        let mut known: HashSet<String> = in_postgres.iter().map(|id| id.to_string()).collect();
        for row in restored.iter().filter(|r| !in_postgres.contains(r.entry_id.as_str())) {
            let has_file = storage.entry_path(&row.entry_id).map(|p| p.exists()).unwrap_or(false);
            if has_file {
                known.insert(row.entry_id.clone());
            } else {
                removals.push(row.entry_id.clone());
            }
        }
        report.rows_dropped = removals.len() as u64;
        let mut upserts = pg_rows.clone();
        for (entry_id, path) in entry_files(storage.data_dir())? {
            if known.contains(&entry_id) {
                continue;
            }
            match storage.inspect(&path) {
                Ok(found) => {
                    let created = found.modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
                    upserts.push(ManifestRow::new(&found.key, &path, &cache_dir, found.rows, found.bytes, found.checksum, created));
                    report.reindexed_files += 1;
                }
                Err(e) => log::warn!("libfstore: rollback leaves {} unindexed: {e}", path.display()),
            }
        }
        let before: HashSet<&str> = restored.iter().map(|r| r.entry_id.as_str()).collect();
        report.rows = (restored.len() - removals.len()) as u64
            + upserts.iter().filter(|r| !before.contains(r.entry_id.as_str())).count() as u64;
        Ok((upserts, removals))
    })?;
    let embedded = Binding { backend: Backend::DuckDb, postgres: None, ..bound };
    binding::rebind(&cache_dir, &embedded, modes)?;
    report.set_aside = set_aside;
    report.binding = embedded.to_string();
    Ok(report)
}

/// The newest `manifest.duckdb.backup-<time>` in `cache_dir`.
fn newest_backup(cache_dir: &Path) -> Result<Option<PathBuf>> {
    let prefix = format!("{DUCKDB_FILE}.backup-");
    let entries = fs::read_dir(cache_dir).map_err(|e| Error::io(format!("cannot list {}", cache_dir.display()), e))?;
    let newest = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let stamp: i64 = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((stamp, e.path()))
        })
        .max();
    Ok(newest.map(|(_, path)| path))
}
