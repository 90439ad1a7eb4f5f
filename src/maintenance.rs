//! Maintenance: expire old entries and repair drift between files and the
//! manifest. A file is published before its manifest row, so nothing younger
//! than the grace period is ever removed.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::manifest::{now_us, Manifest};
use crate::storage::{Storage, TEMP_SUFFIX};

#[derive(Clone, Debug)]
pub struct MaintainOptions {
    /// Remove entries created longer ago than this; `None` keeps them all.
    pub max_age: Option<Duration>,
    /// Never remove a file modified more recently than this.
    pub grace: Duration,
    /// Count what would be removed, remove nothing.
    pub dry_run: bool,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions { max_age: None, grace: Duration::from_secs(3600), dry_run: false }
    }
}

/// What a maintenance run removed (or would have, in a dry run).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Entries older than `max_age`: file and row.
    pub expired_entries: u64,
    /// Rows whose file is gone.
    pub rows_without_file: u64,
    /// Entry files that no row points to.
    pub files_without_row: u64,
    /// Temporary files left by writers that died.
    pub temp_files: u64,
    pub bytes_freed: u64,
}

pub(crate) fn run(storage: &Storage, manifest: &dyn Manifest, options: &MaintainOptions) -> Result<MaintainReport> {
    let mut report = MaintainReport::default();
    let now = SystemTime::now();
    let settled = |path: &Path| -> bool {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .map(|modified| now.duration_since(modified).unwrap_or_default() >= options.grace)
            .unwrap_or(false)
    };
    let remove = |path: &Path, report: &mut MaintainReport| -> Result<bool> {
        let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if !options.dry_run {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
            }
        }
        report.bytes_freed += size;
        Ok(true)
    };

    let rows = manifest.rows()?;
    let expiry_us = options.max_age.map(|age| now_us() - age.as_micros() as i64);
    let mut dropped_rows = Vec::new();
    let mut live = HashSet::new();
    for row in &rows {
        let path = storage.entry_path(&row.entry_id);
        if !path.exists() {
            report.rows_without_file += 1;
            dropped_rows.push(row.entry_id.clone());
        } else if expiry_us.is_some_and(|cutoff| row.created_at_us < cutoff) && settled(&path) {
            remove(&path, &mut report)?;
            report.expired_entries += 1;
            dropped_rows.push(row.entry_id.clone());
        } else {
            live.insert(format!("{}.parquet", row.entry_id));
        }
    }
    if !options.dry_run && !dropped_rows.is_empty() {
        manifest.remove(&dropped_rows)?;
    }

    for shard in read_dir(storage.data_dir())? {
        if !shard.is_dir() {
            continue;
        }
        for file in read_dir(&shard)? {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if !settled(&file) {
                continue;
            }
            if name.ends_with(TEMP_SUFFIX) {
                if remove(&file, &mut report)? {
                    report.temp_files += 1;
                }
            } else if name.ends_with(".parquet") && !live.contains(&name) && remove(&file, &mut report)? {
                report.files_without_row += 1;
            }
        }
    }
    Ok(report)
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
}
