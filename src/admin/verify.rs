//! Re-reads every entry file against its checksums.
//!
//! Unlike maintenance, which removes what fails, this only reports: an
//! operator decides (`fstore gc --verify` removes corrupt files, a worker
//! recomputes one it meets).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::key::is_entry_id;
use crate::storage::{Storage, TEMP_SUFFIX};
use crate::store::Store;

/// An entry that failed verification, or a row whose file is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEntry {
    pub entry_id: String,
    /// Relative to the cache directory.
    pub path: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entry files read.
    pub checked: u64,
    pub bytes_checked: u64,
    pub bad: Vec<BadEntry>,
}

impl Store {
    /// Reads every entry file and checks its footer, key and data checksums
    /// (always, whatever `verify_checksums` says), and every manifest row
    /// against its file. `progress(done, total)` is called once per file.
    pub fn verify_entries(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport> {
        let verifying = Storage::open(self.cache_dir(), true, self.storage.modes())?;
        let files = entry_files(verifying.data_dir())?;
        let relative = |p: &Path| p.strip_prefix(self.cache_dir()).unwrap_or(p).display().to_string();
        let mut report = VerifyReport::default();
        let total = files.len() as u64;
        let mut present = HashSet::new();
        for (done, (entry_id, path)) in files.into_iter().enumerate() {
            match verifying.inspect(&path) {
                Ok(found) => report.bytes_checked += found.bytes,
                Err(e) => report.bad.push(BadEntry { entry_id: entry_id.clone(), path: relative(&path), reason: e.to_string() }),
            }
            report.checked += 1;
            present.insert(entry_id);
            progress(done as u64 + 1, total);
        }
        for row in self.manifest_rows()? {
            if !present.contains(&row.entry_id) {
                report.bad.push(BadEntry {
                    entry_id: row.entry_id,
                    path: row.path,
                    reason: "the manifest lists it, but its file is missing".into(),
                });
            }
        }
        Ok(report)
    }
}

/// `(entry id, path)` of every published entry file, sorted.
pub(super) fn entry_files(data_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for shard in list(data_dir)? {
        let shard_name = shard.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if shard_name.len() != 2 || !shard.is_dir() {
            continue;
        }
        for path in list(&shard)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(TEMP_SUFFIX) {
                continue; // a write in progress, or maintenance's to remove
            }
            if let Some(id) = name.strip_suffix(".parquet").filter(|id| is_entry_id(id) && id.starts_with(&shard_name)) {
                files.push((id.to_string(), path.clone()));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
}
