//! No coordination: a worker reads the entry's file if it exists, and
//! otherwise computes it and publishes the file itself (DuckDB `COPY` to a
//! temporary file, renamed into place). No lock, no manifest: every worker
//! that misses computes, so a herd computes once per worker.

use std::path::Path;

use super::{entry_id, EntryFiles};
use crate::capi::Compute;
use crate::data::{BenchKey, DAYS};
use crate::worker::Access;

pub struct Uncoordinated {
    files: EntryFiles,
}

impl Uncoordinated {
    pub fn open(cache_dir: &Path) -> Result<Self, String> {
        Ok(Uncoordinated { files: EntryFiles::open(cache_dir)? })
    }
}

impl Access for Uncoordinated {
    fn get_or_compute(&mut self, key: &BenchKey, compute: &mut Compute) -> Result<usize, String> {
        let path = self.files.path(&entry_id(key));
        if path.exists() {
            return self.files.read(&path.display().to_string());
        }
        compute.run();
        self.files.write(key, &path)?;
        Ok(DAYS as usize)
    }
}
