//! Entry files: zstd Parquet at a content-addressed path, published by atomic
//! rename, carrying their key and checksum in the footer.
//!
//! A file is the proof of a hit. Its footer's key-value metadata holds
//! `fstore.key` (the canonical key), `fstore.checksum` (SHA-256 of the file's
//! first `fstore.checksum_bytes` bytes: the magic and every row group) so a
//! reader needs nothing but the file to know that it is complete,
//! uncorrupted and belongs to the key it asked for. (The page indexes that
//! the writer appends after the row groups are not covered: they are written
//! after the checksum is known, and readers here do not use them.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::record_batch::RecordBatchReader;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use crate::data::{column_indices, Data};
use crate::error::{Error, Result, Status};
use crate::key::{hex, ResolvedKey};

pub const KEY_METADATA: &str = "fstore.key";
pub const CHECKSUM_METADATA: &str = "fstore.checksum";
pub const CHECKSUM_BYTES_METADATA: &str = "fstore.checksum_bytes";
const ZSTD_LEVEL: i32 = 3;
/// Temporary files end with this; maintenance removes stale ones.
pub const TEMP_SUFFIX: &str = ".tmp";

/// What a successful write published.
#[derive(Clone, Debug)]
pub struct Published {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
    pub checksum: String,
}

/// The entry files under one cache directory.
pub struct Storage {
    data_dir: PathBuf,
    verify_checksums: bool,
}

static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Storage {
    /// Creates the data directory if needed and proves it writable, so that a
    /// read-only cache fails at open, not at the first miss.
    pub fn open(cache_dir: &Path, verify_checksums: bool) -> Result<Self> {
        let data_dir = cache_dir.join("data");
        fs::create_dir_all(&data_dir)
            .map_err(|e| Error::io(format!("cannot create cache directory {}", data_dir.display()), e))?;
        let probe = data_dir.join(format!(".probe.{}{TEMP_SUFFIX}", std::process::id()));
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| Error::io(format!("cache directory {} is not writable", data_dir.display()), e))?;
        Ok(Storage { data_dir, verify_checksums })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `data/<first two hex digits>/<entry id>.parquet`
    pub fn entry_path(&self, entry_id: &str) -> PathBuf {
        self.data_dir.join(&entry_id[..2]).join(format!("{entry_id}.parquet"))
    }

    /// Reads an entry; `Ok(None)` when there is no file. A file that fails its
    /// checks is a `Corrupt` error.
    pub fn read(&self, key: &ResolvedKey, columns: Option<&[String]>) -> Result<Option<(Data, u64)>> {
        let path = self.entry_path(&key.entry_id);
        let raw = match fs::read(&path) {
            Ok(raw) => Bytes::from(raw),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let size = raw.len() as u64;
        let corrupt = |why: String| Error::new(Status::Corrupt, format!("entry file {}: {why}", path.display()));
        let data_end = data_region_end(&raw).ok_or_else(|| corrupt("not a complete Parquet file".into()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(raw.clone()).map_err(|e| corrupt(e.to_string()))?;
        let metadata = builder.metadata().file_metadata().key_value_metadata();
        let lookup = |name: &str| {
            metadata.and_then(|kv| kv.iter().find(|e| e.key == name)).and_then(|e| e.value.clone())
        };
        if lookup(KEY_METADATA).as_deref() != Some(key.footer_json().as_str()) {
            return Err(corrupt("its footer names a different key".into()));
        }
        if self.verify_checksums {
            let expected = lookup(CHECKSUM_METADATA).unwrap_or_default();
            let covered = lookup(CHECKSUM_BYTES_METADATA)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n <= data_end)
                .ok_or_else(|| corrupt("its footer lacks a valid fstore.checksum_bytes".into()))?;
            let actual = checksum_string(&Sha256::digest(&raw[..covered]));
            if expected != actual {
                return Err(corrupt(format!("checksum mismatch: footer says {expected}, data hashes to {actual}")));
            }
        }
        let schema = builder.schema().clone();
        let columns = columns.filter(|c| !c.is_empty());
        let builder = match columns {
            Some(columns) => {
                let mut roots = column_indices(&schema, columns)?;
                roots.sort_unstable();
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                builder.with_projection(mask)
            }
            None => builder,
        };
        let mut reader = builder.build().map_err(|e| corrupt(e.to_string()))?;
        let data = Data::collect(&mut reader).map_err(|e| corrupt(e.message().to_string()))?;
        // The Parquet projection keeps file order; give the caller the order asked.
        let data = match columns {
            Some(columns) => data.project(Some(columns))?,
            None => data,
        };
        Ok(Some((data, size)))
    }

    /// Whether a complete file for `key` is in place (footer checked, data not read).
    pub fn contains(&self, key: &ResolvedKey) -> Result<bool> {
        let path = self.entry_path(&key.entry_id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(file) else {
            return Ok(false);
        };
        let kv = builder.metadata().file_metadata().key_value_metadata();
        Ok(kv
            .and_then(|kv| kv.iter().find(|e| e.key == KEY_METADATA))
            .and_then(|e| e.value.as_deref())
            .is_some_and(|v| v == key.footer_json()))
    }

    /// Writes `reader` as the entry of `key`: to a temporary file in the final
    /// directory, flushed to disk, then renamed into place. Returns the data
    /// written (for the caller) and what was published.
    pub fn write(&self, key: &ResolvedKey, reader: &mut dyn RecordBatchReader) -> Result<(Data, Published)> {
        let data = Data::collect(reader)?;
        let published = self.write_data(key, &data)?;
        Ok((data, published))
    }

    pub fn write_data(&self, key: &ResolvedKey, data: &Data) -> Result<Published> {
        let path = self.entry_path(&key.entry_id);
        let dir = path.parent().expect("entry path has a directory");
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let temp = dir.join(format!(
            ".{}.{}.{}{TEMP_SUFFIX}",
            key.entry_id,
            std::process::id(),
            TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let result = write_parquet(&temp, key, data).and_then(|(bytes, checksum)| {
            fs::rename(&temp, &path)
                .map_err(|e| Error::io(format!("cannot publish {} as {}", temp.display(), path.display()), e))?;
            // The rename is durable once the directory is.
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(format!("cannot sync {}", dir.display()), e))?;
            Ok(Published { path: path.clone(), bytes, rows: data.num_rows() as u64, checksum })
        });
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Removes the entry's file; returns whether there was one.
    pub fn remove(&self, entry_id: &str) -> Result<bool> {
        let path = self.entry_path(entry_id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
    }
}

fn write_parquet(temp: &Path, key: &ResolvedKey, data: &Data) -> Result<(u64, String)> {
    let io_error = |e: io::Error| Error::io(format!("cannot write {}", temp.display()), e);
    let parquet_error = |e: parquet::errors::ParquetError| Error::io(format!("cannot write {}", temp.display()), io::Error::other(e));
    let file = OpenOptions::new().write(true).create_new(true).open(temp).map_err(io_error)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level")))
        .set_created_by(format!("libfstore {}", crate::VERSION))
        .build();
    let sink = HashingWriter { inner: BufWriter::new(file), hasher: Sha256::new(), hashed: 0 };
    let mut writer = ArrowWriter::try_new(sink, Arc::clone(&data.schema), Some(props)).map_err(parquet_error)?;
    for batch in &data.batches {
        writer.write(batch).map_err(parquet_error)?;
    }
    // Everything before the footer is now in the hasher; the checksum goes in the footer.
    writer.flush().map_err(parquet_error)?;
    writer.sync().map_err(io_error)?;
    let checksum = checksum_string(&writer.inner().hasher.clone().finalize());
    let covered = writer.inner().hashed;
    writer.append_key_value_metadata(KeyValue::new(KEY_METADATA.to_string(), key.footer_json()));
    writer.append_key_value_metadata(KeyValue::new(CHECKSUM_METADATA.to_string(), checksum.clone()));
    writer.append_key_value_metadata(KeyValue::new(CHECKSUM_BYTES_METADATA.to_string(), covered.to_string()));
    let sink = writer.into_inner().map_err(parquet_error)?;
    let file = sink.inner.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)?;
    let bytes = file.metadata().map_err(io_error)?.len();
    Ok((bytes, checksum))
}

fn checksum_string(digest: &[u8]) -> String {
    format!("sha256:{}", hex(digest))
}

/// Where the footer begins.
fn data_region_end(file: &[u8]) -> Option<usize> {
    let len = file.len();
    if len < 12 || &file[..4] != b"PAR1" || &file[len - 4..] != b"PAR1" {
        return None;
    }
    let footer_len = u32::from_le_bytes(file[len - 8..len - 4].try_into().ok()?) as usize;
    len.checked_sub(8 + footer_len).filter(|&end| end >= 4)
}

/// Hashes everything written through it.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
    hashed: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.hashed += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
