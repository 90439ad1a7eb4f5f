//! One entry as stored: its key, file, checksum and schema.

use std::fs::File;
use std::path::PathBuf;
use std::time::SystemTime;

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result, Status};
use crate::key::Key;
use crate::manifest::ManifestRow;
use crate::storage::Storage;
use crate::store::Store;

/// What an entry's file says about itself, verified.
#[derive(Clone, Debug)]
pub struct EntryDetails {
    pub entry_id: String,
    /// The key from the file's footer, its config in canonical form.
    pub key: Key,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    pub schema: SchemaRef,
    pub modified: SystemTime,
    /// The manifest's row, when it has one.
    pub row: Option<ManifestRow>,
}

impl Store {
    /// Reads and verifies the file of `entry_id` (checksums always, whatever
    /// `verify_checksums` says); `NotFound` when there is no such file.
    pub fn entry_details(&self, entry_id: &str) -> Result<EntryDetails> {
        let path = self.storage.entry_path(entry_id).map_err(|_| {
            Error::invalid_argument(format!("'{entry_id}' is not an entry id (64 lowercase hex digits)"))
        })?;
        if !path.exists() {
            return Err(Error::not_found(format!("no entry {entry_id} (no file {})", path.display())));
        }
        let verifying = Storage::open(self.cache_dir(), true, self.storage.modes())?;
        let inspected = verifying.inspect(&path)?;
        let file = File::open(&path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        let schema = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::new(Status::Corrupt, format!("{} is not readable Parquet: {e}", path.display())))?
            .schema()
            .clone();
        let row = self.manifest_rows()?.into_iter().find(|r| r.entry_id == entry_id);
        let mut key = inspected.key.key.clone();
        key.config = inspected.key.canonical_config.clone();
        Ok(EntryDetails {
            entry_id: entry_id.to_string(),
            key,
            path,
            rows: inspected.rows,
            bytes: inspected.bytes,
            checksum: inspected.checksum,
            schema,
            modified: inspected.modified,
            row,
        })
    }
}
