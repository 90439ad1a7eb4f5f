//! Maintenance: expire old entries and repair drift between files and the
//! manifest.
//!
//! The file is the proof of an entry; the manifest is an index that may lag
//! or lose rows (a process killed between publishing and recording, a
//! failed manifest write, a migration). So maintenance never deletes a valid
//! entry for want of a row: a verified file without a row is re-indexed from
//! its own footer. Only files that fail verification, stale temporary files
//! and rows whose file is gone are removed, and expired entries are removed
//! under the entry's lock, so that a republish racing the scan survives.
//! Nothing modified within the grace period is touched.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result, Status};
use crate::key::is_entry_id;
use crate::lock::Plan;
use crate::manifest::{now_us, ManifestRow};
use crate::memory_cache::FileStamp;
use crate::request::Request;
use crate::storage::{Inspected, TEMP_SUFFIX};
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct MaintainOptions {
    /// Remove entries created longer ago than this; `None` keeps them all.
    pub max_age: Option<Duration>,
    /// Never remove a file modified more recently than this.
    pub grace: Duration,
    /// Count what would be done, change nothing.
    pub dry_run: bool,
    /// Also re-read every file the manifest lists and remove those that
    /// fail verification (with their rows). Without it, a listed file is
    /// trusted: reading every entry is costly on a large cache, and a
    /// worker that meets a damaged one computes it again anyway.
    pub verify: bool,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions { max_age: None, grace: Duration::from_secs(3600), dry_run: false, verify: false }
    }
}

/// What a maintenance run did (or would have done, in a dry run).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Entries older than `max_age`: file and row.
    pub expired_entries: u64,
    /// Rows whose file is gone.
    pub rows_without_file: u64,
    /// Entry files that failed verification (corrupt, or not named by their
    /// own key), removed.
    pub corrupt_files: u64,
    /// Temporary files left by writers that died.
    pub temp_files: u64,
    pub bytes_freed: u64,
    /// Verified entry files whose row was missing, indexed again.
    pub reindexed_files: u64,
    /// Rows whose entry id is malformed (never turned into a path), removed.
    pub invalid_rows: u64,
    /// Lock files nobody held, removed.
    pub lock_files: u64,
}

struct Run<'a> {
    store: &'a Store,
    options: &'a MaintainOptions,
    now: SystemTime,
    /// Entries created before this (microseconds since the epoch) expire.
    cutoff_us: Option<i64>,
    report: MaintainReport,
}

pub(crate) fn run(store: &Store, options: &MaintainOptions) -> Result<MaintainReport> {
    let mut run = Run { store, options, now: SystemTime::now(), cutoff_us: cutoff_us(options.max_age), report: Default::default() };
    let indexed = run.rows()?;
    run.files(&indexed)?;
    if !options.dry_run {
        if let Some(locks) = store.cache_dir_locks() {
            run.report.lock_files = locks.sweep()?;
        }
    }
    Ok(run.report)
}

/// The creation time before which entries expire. A huge age saturates
/// (it never wraps around to "everything"); `None` keeps everything.
fn cutoff_us(max_age: Option<Duration>) -> Option<i64> {
    let age_us = i64::try_from(max_age?.as_micros()).unwrap_or(i64::MAX);
    Some(now_us().saturating_sub(age_us))
}

impl Run<'_> {
    fn settled(&self, modified: SystemTime) -> bool {
        self.now.duration_since(modified).unwrap_or_default() >= self.options.grace
    }

    fn expired(&self, created_us: i64) -> bool {
        self.cutoff_us.is_some_and(|cutoff| created_us < cutoff)
    }

    /// Checks every row against its file; returns the entry ids whose rows
    /// point at a file (so that the file walk leaves those files alone).
    fn rows(&mut self) -> Result<HashSet<String>> {
        let mut indexed = HashSet::new();
        let mut stale = Vec::new();
        for row in self.store.manifest.rows()? {
            if !is_entry_id(&row.entry_id) {
                // A crafted or damaged row: it never becomes a path.
                self.report.invalid_rows += 1;
                stale.push((row.entry_id.clone(), row.created_at_us));
                continue;
            }
            let path = self.store.storage.entry_path(&row.entry_id)?;
            match fs::metadata(&path) {
                Ok(meta) => {
                    let modified = meta.modified().unwrap_or(self.now);
                    if self.expired(row.created_at_us) && self.settled(modified) {
                        self.expire(&path, &meta, &row.symbol, &row.entry_id, Some(&row))?;
                    } else if self.options.verify && self.settled(modified) {
                        self.verify_listed(&path, &meta, &row)?;
                    }
                    // Accounted for by its row (removed, or kept): the file walk skips it.
                    indexed.insert(row.entry_id);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.report.rows_without_file += 1;
                    stale.push((row.entry_id, row.created_at_us));
                }
                Err(e) => return Err(Error::io(format!("cannot stat {}", path.display()), e)),
            }
        }
        if !self.options.dry_run && !stale.is_empty() {
            // Conditional: a row republished since the scan stays.
            self.store.manifest.forget_unchanged(&stale)?;
        }
        Ok(indexed)
    }

    /// Walks the entry files: temporary files, files without rows.
    fn files(&mut self, indexed: &HashSet<String>) -> Result<()> {
        let mut reindex: Vec<ManifestRow> = Vec::new();
        for shard in read_dir(self.store.storage.data_dir())? {
            let shard_name = file_name(&shard);
            if !shard.is_dir() || shard_name.len() != 2 {
                continue;
            }
            for path in read_dir(&shard)? {
                let name = file_name(&path);
                let Ok(meta) = fs::symlink_metadata(&path) else { continue };
                if !meta.is_file() || !self.settled(meta.modified().unwrap_or(self.now)) {
                    continue;
                }
                if name.ends_with(TEMP_SUFFIX) {
                    if self.remove(&path, meta.len())? {
                        self.report.temp_files += 1;
                    }
                    continue;
                }
                let Some(entry_id) = name.strip_suffix(".parquet").filter(|id| is_entry_id(id) && id.starts_with(&shard_name))
                else {
                    continue; // not ours: leave it alone
                };
                if indexed.contains(entry_id) {
                    continue;
                }
                match self.store.storage.inspect(&path) {
                    Ok(found) => {
                        let created_us = micros_since_epoch(found.modified);
                        if self.expired(created_us) {
                            self.expire(&path, &meta, &found.key.key.symbol, entry_id, None)?;
                        } else {
                            self.report.reindexed_files += 1;
                            reindex.push(row_of(self.store, &path, &found, created_us));
                        }
                    }
                    Err(e) if e.status() == Status::Corrupt => {
                        log::warn!("libfstore: maintenance removes {e}");
                        if self.remove_locked(&path, &meta, entry_id, None)? {
                            self.report.corrupt_files += 1;
                        }
                    }
                    Err(e) => log::warn!("libfstore: maintenance skips {}: {e}", path.display()),
                }
            }
        }
        if !self.options.dry_run && !reindex.is_empty() {
            self.store.manifest.insert_missing(&reindex)?;
        }
        Ok(())
    }

    /// Re-reads a listed file; one that fails verification goes, with its
    /// row, under the entry's lock (unless republished since the scan).
    fn verify_listed(&mut self, path: &Path, scanned: &fs::Metadata, row: &ManifestRow) -> Result<()> {
        match self.store.storage.inspect(path) {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Status::Corrupt => {
                log::warn!("libfstore: maintenance removes {e}");
                if self.remove_locked(path, scanned, &row.entry_id, Some(&row.symbol))? {
                    self.report.corrupt_files += 1;
                    if !self.options.dry_run {
                        self.store.manifest.forget_unchanged(&[(row.entry_id.clone(), row.created_at_us)])?;
                    }
                }
                Ok(())
            }
            Err(e) => {
                log::warn!("libfstore: maintenance skips {}: {e}", path.display());
                Ok(())
            }
        }
    }

    /// Removes an expired entry under its lock, unless its file changed
    /// since the scan (republished meanwhile).
    fn expire(&mut self, path: &Path, scanned: &fs::Metadata, symbol: &str, entry_id: &str, row: Option<&ManifestRow>) -> Result<()> {
        if !self.remove_locked(path, scanned, entry_id, Some(symbol))? {
            return Ok(());
        }
        self.report.expired_entries += 1;
        if let (Some(row), false) = (row, self.options.dry_run) {
            self.store.manifest.forget_unchanged(&[(row.entry_id.clone(), row.created_at_us)])?;
        }
        Ok(())
    }

    /// Removes `path` under the entry's lock if it is still the file the
    /// scan looked at: a publish since then replaced it, and it stays.
    fn remove_locked(&mut self, path: &Path, scanned: &fs::Metadata, entry_id: &str, symbol: Option<&str>) -> Result<bool> {
        let size = scanned.len();
        if self.options.dry_run {
            self.report.bytes_freed += size;
            return Ok(true);
        }
        let plan = match symbol {
            Some(symbol) => self.store.plan_of(symbol, entry_id),
            // An unreadable file's symbol is unknown; the entry's own lock
            // still excludes its computes.
            None => Plan { outer: None, ..self.store.plan_of("-", entry_id) },
        };
        let request = Request::new();
        let wait = self.store.default_wait(&request);
        let held = self.store.acquire(&plan, &wait)?;
        let unchanged = FileStamp::of(path)? == Some(FileStamp::from_metadata(scanned));
        let removed = unchanged && self.remove(path, size)?;
        drop(held);
        Ok(removed)
    }

    fn remove(&mut self, path: &Path, size: u64) -> Result<bool> {
        if !self.options.dry_run {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
            }
        }
        self.report.bytes_freed += size;
        Ok(true)
    }
}

fn row_of(store: &Store, path: &Path, found: &Inspected, created_at_us: i64) -> ManifestRow {
    let (rows, bytes, checksum) = (found.rows, found.bytes, found.checksum.clone());
    ManifestRow::new(&found.key, path, store.cache_dir(), rows, bytes, checksum, created_at_us)
}

fn micros_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

fn file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string()
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_max_age_never_wraps_around() {
        assert!(cutoff_us(None).is_none());
        for age in [Duration::MAX, Duration::from_millis(i64::MAX as u64), Duration::from_millis(u64::MAX)] {
            let cutoff = cutoff_us(Some(age)).unwrap();
            assert!(cutoff < 0, "{age:?} gave {cutoff}: entries would expire");
        }
        let day = cutoff_us(Some(Duration::from_secs(86_400))).unwrap();
        assert!((now_us() - day - 86_400_000_000).abs() < 60_000_000);
    }
}
