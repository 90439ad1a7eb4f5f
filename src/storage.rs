//! Entry files: zstd Parquet at a content-addressed path, published by atomic
//! rename, carrying their key and checksums in the footer.
//!
//! A file is the proof of a hit, and it proves itself: its footer's
//! key-value metadata holds
//! - `fstore.key`, the canonical key, so a reader knows the file belongs to
//!   the key it asked for;
//! - `fstore.checksum`, SHA-256 of the file's first `fstore.checksum_bytes`
//!   bytes: the magic and every row group, which is everything before the
//!   footer (no page index is written);
//! - `fstore.footer_sha256`, SHA-256 of the footer itself (schema, types,
//!   offsets, statistics, key-value metadata) with this value's own 64
//!   characters read as zeros, so that a corrupt but parseable footer cannot
//!   rename or retype a column unnoticed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use crate::cache_dir::Modes;
use crate::data::{column_indices, Data};
use crate::error::{Error, Result, Status};
use crate::key::{hex, is_entry_id, Key, ResolvedKey};
use crate::memory_cache::FileStamp;

pub const KEY_METADATA: &str = "fstore.key";
pub const CHECKSUM_METADATA: &str = "fstore.checksum";
pub const CHECKSUM_BYTES_METADATA: &str = "fstore.checksum_bytes";
pub const FOOTER_DIGEST_METADATA: &str = "fstore.footer_sha256";
/// The footer entries the library writes, which are not the data's.
const FOOTER_METADATA: [&str; 4] = [KEY_METADATA, CHECKSUM_METADATA, CHECKSUM_BYTES_METADATA, FOOTER_DIGEST_METADATA];
const ZSTD_LEVEL: i32 = 3;
/// Temporary files end with this; maintenance removes stale ones.
pub const TEMP_SUFFIX: &str = ".tmp";
/// What the footer digest's value reads as while the footer is hashed.
const DIGEST_PLACEHOLDER: [u8; 64] = [b'0'; 64];
/// How long a reader that knows an entry exists (its manifest row says so)
/// keeps looking for a file that a network file system hides from it.
const REVALIDATE_FOR: Duration = Duration::from_secs(2);

/// What a successful write published.
#[derive(Clone, Debug)]
pub struct Published {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
    pub checksum: String,
}

impl Published {
    /// Makes the rename that published the file durable.
    pub fn sync_directory(&self) -> Result<()> {
        let dir = self.path.parent().expect("entry path has a directory");
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(format!("cannot sync {}", dir.display()), e))
    }
}

/// What a verified entry file says about itself.
#[derive(Clone, Debug)]
pub struct Inspected {
    pub key: ResolvedKey,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    pub modified: SystemTime,
}

/// A read entry, with the size of the file it came from.
pub struct EntryRead {
    pub data: Data,
    pub bytes: u64,
}

/// A verified entry file, read but not decoded.
pub struct OpenedEntry {
    path: PathBuf,
    builder: ParquetRecordBatchReaderBuilder<Bytes>,
    pub bytes: u64,
    pub stamp: FileStamp,
}

impl OpenedEntry {
    /// The size of the entry's data decoded, as its footer records it (the
    /// uncompressed size of every column chunk).
    pub fn decoded_bytes(&self) -> usize {
        let groups = self.builder.metadata().row_groups();
        groups.iter().map(|g| usize::try_from(g.total_byte_size()).unwrap_or(usize::MAX)).fold(0, usize::saturating_add)
    }

    /// Decodes `columns` (in the order asked; `None` or empty: all). Only
    /// the columns asked are decompressed and decoded.
    pub fn decode(self, columns: Option<&[String]>) -> Result<Data> {
        decode(&self.path, self.builder, columns)
    }
}

/// The entry files under one cache directory.
pub struct Storage {
    data_dir: PathBuf,
    verify_checksums: bool,
    modes: Modes,
}

impl Storage {
    /// Creates the data directory if needed and proves it writable, so that a
    /// read-only cache fails at open, not at the first miss.
    /// What it creates gets `modes`.
    pub fn open(cache_dir: &Path, verify_checksums: bool, modes: Modes) -> Result<Self> {
        let data_dir = cache_dir.join("data");
        modes
            .create_dir_all(&data_dir)
            .map_err(|e| Error::io(format!("cannot create cache directory {}", data_dir.display()), e))?;
        let probe = data_dir.join(format!(".probe.{}.{}{TEMP_SUFFIX}", std::process::id(), random_hex()));
        modes
            .create_new_file(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| Error::io(format!("cache directory {} is not writable", data_dir.display()), e))?;
        Ok(Storage { data_dir, verify_checksums, modes })
    }

    /// The modes of what this storage creates.
    pub fn modes(&self) -> Modes {
        self.modes
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `data/<first two hex digits>/<entry id>.parquet`. Only a well-formed
    /// id (64 lowercase hex digits) becomes a path: ids also come from
    /// manifest rows, which must never name a file outside the cache.
    pub fn entry_path(&self, entry_id: &str) -> Result<PathBuf> {
        if !is_entry_id(entry_id) {
            return Err(Error::invalid_data(format!("'{entry_id}' is not an entry id (64 lowercase hex digits)")));
        }
        // Built in one allocation: this runs on every hit.
        let dir = self.data_dir.as_os_str().as_encoded_bytes();
        let mut path = Vec::with_capacity(dir.len() + 4 + entry_id.len() + ".parquet".len());
        path.extend_from_slice(dir);
        path.push(b'/');
        path.extend_from_slice(&entry_id.as_bytes()[..2]);
        path.push(b'/');
        path.extend_from_slice(entry_id.as_bytes());
        path.extend_from_slice(b".parquet");
        Ok(PathBuf::from(std::ffi::OsString::from_vec(path)))
    }

    /// The identity of the entry's file now; `None` when there is none.
    pub fn stamp(&self, entry_id: &str) -> Result<Option<FileStamp>> {
        FileStamp::of(&self.entry_path(entry_id)?)
    }

    /// Reads an entry; `Ok(None)` when there is no file. A file that fails its
    /// checks is a `Corrupt` error.
    pub fn read(&self, key: &ResolvedKey, columns: Option<&[String]>) -> Result<Option<EntryRead>> {
        let Some(opened) = self.open_entry(key)? else {
            return Ok(None);
        };
        let bytes = opened.bytes;
        Ok(Some(EntryRead { data: opened.decode(columns)?, bytes }))
    }

    /// Reads an entry's file and verifies it, without decoding its data yet;
    /// `Ok(None)` when there is no file.
    pub fn open_entry(&self, key: &ResolvedKey) -> Result<Option<OpenedEntry>> {
        let path = self.entry_path(&key.entry_id)?;
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        // The stamp comes from the descriptor read, so it names these bytes
        // even if the path is replaced meanwhile.
        let meta = file.metadata().map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
        let stamp = FileStamp::from_metadata(&meta);
        let mut raw = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut raw).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let raw = Bytes::from(raw);
        let (builder, _) = self.open_verified(&path, raw)?;
        if lookup(&builder, KEY_METADATA).as_deref() != Some(key.footer_json().as_str()) {
            return Err(corrupt(&path, "its footer names a different key"));
        }
        Ok(Some(OpenedEntry { path, builder, bytes: meta.len(), stamp }))
    }

    /// Like `read`, but for an entry known to exist (its manifest row was
    /// committed with its lock): a missing file is looked for again, for a
    /// short while, after refreshing the directory, because a network file
    /// system may hide a file another host has just renamed into place
    /// (negative lookup caching).
    pub fn read_expected(&self, key: &ResolvedKey, columns: Option<&[String]>) -> Result<Option<EntryRead>> {
        let started = Instant::now();
        let path = self.entry_path(&key.entry_id)?;
        let dir = path.parent().expect("entry path has a directory").to_path_buf();
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(found) = self.read(key, columns)? {
                return Ok(Some(found));
            }
            if started.elapsed() >= REVALIDATE_FOR {
                return Ok(None);
            }
            // Opening and listing the directory makes an NFS client revalidate it.
            let _ = fs::read_dir(&dir).map(|entries| entries.count());
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Reads and verifies a whole entry file without knowing its key: for
    /// re-indexing a file whose manifest row is missing. The key comes from
    /// the footer and must name the file's own path.
    pub fn inspect(&self, path: &Path) -> Result<Inspected> {
        let raw = fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let meta = fs::metadata(path).map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
        let bytes = raw.len() as u64;
        let (builder, checksum) = self.open_verified(path, Bytes::from(raw))?;
        let key_json = lookup(&builder, KEY_METADATA).ok_or_else(|| corrupt(path, "its footer has no fstore.key"))?;
        let key = key_from_footer(&key_json).map_err(|why| corrupt(path, &format!("its footer's key is unreadable: {why}")))?;
        let key = ResolvedKey::resolve(&key).map_err(|e| corrupt(path, &format!("its footer's key is invalid: {e}")))?;
        if key.footer_json() != key_json || Some(format!("{}.parquet", key.entry_id).as_str()) != path.file_name().and_then(|n| n.to_str()) {
            return Err(corrupt(path, "its footer's key does not name this file"));
        }
        let rows = builder.metadata().file_metadata().num_rows() as u64;
        Ok(Inspected { key, rows, bytes, checksum, modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH) })
    }

    /// Parses the footer and verifies both checksums (the data checksum only
    /// when `verify_checksums` is on); returns the reader and the checksum.
    fn open_verified(&self, path: &Path, raw: Bytes) -> Result<(ParquetRecordBatchReaderBuilder<Bytes>, String)> {
        let footer_start = footer_start(&raw).ok_or_else(|| corrupt(path, "not a complete Parquet file"))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(raw.clone()).map_err(|e| corrupt(path, &e.to_string()))?;
        let digest = lookup(&builder, FOOTER_DIGEST_METADATA)
            .ok_or_else(|| corrupt(path, "its footer has no fstore.footer_sha256 (written by an older libfstore)"))?;
        let footer = &raw[footer_start..raw.len() - 8];
        if footer_digest(footer, digest.as_bytes()).as_deref() != Some(digest.as_str()) {
            return Err(corrupt(path, "its footer does not match fstore.footer_sha256"));
        }
        let expected = lookup(&builder, CHECKSUM_METADATA).unwrap_or_default();
        if self.verify_checksums {
            let covered = lookup(&builder, CHECKSUM_BYTES_METADATA)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n == footer_start)
                .ok_or_else(|| corrupt(path, "its footer lacks a valid fstore.checksum_bytes"))?;
            let actual = checksum_string(&Sha256::digest(&raw[..covered]));
            if expected != actual {
                return Err(corrupt(path, &format!("checksum mismatch: footer says {expected}, data hashes to {actual}")));
            }
        }
        Ok((builder, expected))
    }

    /// Whether a complete file for `key` is in place (footer checked, data not read).
    pub fn contains(&self, key: &ResolvedKey) -> Result<bool> {
        let path = self.entry_path(&key.entry_id)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(file) else {
            return Ok(false);
        };
        Ok(lookup(&builder, KEY_METADATA).is_some_and(|v| v == key.footer_json()))
    }

    /// Writes `data` as the entry of `key` into a temporary file beside its
    /// final place, flushed to disk; [`TempEntry::publish`] renames it into
    /// place. A temporary file that is never published is removed.
    pub fn write_temp(&self, key: &ResolvedKey, data: &Data) -> Result<TempEntry> {
        let path = self.entry_path(&key.entry_id)?;
        let dir = path.parent().expect("entry path has a directory");
        self.modes.create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        // The random part keeps names unique across hosts and containers
        // sharing the directory, where process ids repeat.
        let temp = dir.join(format!(".{}.{}.{}{TEMP_SUFFIX}", key.entry_id, std::process::id(), random_hex()));
        let file = self.modes.create_new_file(&temp).map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;
        // From here on the temporary file is ours to remove on failure.
        let mut entry = TempEntry { temp, path, pending: None, published: false };
        let (bytes, checksum) = write_parquet(file, &entry.temp, key, data)?;
        entry.pending = Some(Published { path: entry.path.clone(), bytes, rows: data.num_rows() as u64, checksum });
        Ok(entry)
    }

    /// Removes the entry's file; returns whether there was one.
    pub fn remove(&self, entry_id: &str) -> Result<bool> {
        let path = self.entry_path(entry_id)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
    }
}

/// A written, synced, not yet published entry file. Dropped unpublished
/// (a failure, or a lost lock), it removes its temporary file: only ever
/// the one this call created.
pub struct TempEntry {
    temp: PathBuf,
    path: PathBuf,
    pending: Option<Published>,
    published: bool,
}

impl TempEntry {
    /// Renames the file into place: from here on every process sees it.
    /// The rename is made durable by [`Published::sync_directory`], which the
    /// caller runs after releasing the entry's lock, so that waiters do not
    /// wait for a directory `fsync` (milliseconds, tens of them on a busy
    /// disk) to read what they can already read. The file's own data was
    /// synced before the rename; should the host crash before the directory
    /// is, the entry is merely gone and is computed again.
    pub fn publish(mut self) -> Result<Published> {
        fs::rename(&self.temp, &self.path)
            .map_err(|e| Error::io(format!("cannot publish {} as {}", self.temp.display(), self.path.display()), e))?;
        self.published = true;
        Ok(self.pending.take().expect("written before published"))
    }
}

impl Drop for TempEntry {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn corrupt(path: &Path, why: &str) -> Error {
    Error::new(Status::Corrupt, format!("entry file {}: {why}", path.display()))
}

fn lookup<T: parquet::file::reader::ChunkReader>(builder: &ParquetRecordBatchReaderBuilder<T>, name: &str) -> Option<String> {
    builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == name))
        .and_then(|e| e.value.clone())
}

fn decode(path: &Path, builder: ParquetRecordBatchReaderBuilder<Bytes>, columns: Option<&[String]>) -> Result<Data> {
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
    let mut reader = builder.build().map_err(|e| corrupt(path, &e.to_string()))?;
    let mut data = Data::collect(&mut reader).map_err(|e| corrupt(path, e.message()))?;
    // The reader builds its schema from the fields alone: give back the
    // schema's metadata as written (pandas keeps a frame's index there),
    // without the footer entries that are the library's own.
    let mut labels = schema.metadata().clone();
    labels.retain(|name, _| !FOOTER_METADATA.contains(&name.as_str()));
    data.schema = Arc::new(data.schema.as_ref().clone().with_metadata(labels));
    // The Parquet projection keeps file order; give the caller the order asked.
    match columns {
        Some(columns) => data.project(Some(columns)),
        None => Ok(data),
    }
}

/// The key written in a footer, read back.
fn key_from_footer(json: &str) -> std::result::Result<Key, String> {
    let doc = crate::jcs::parse(json).map_err(|e| e.message().to_string())?;
    let text = |name: &str| doc.get(name).and_then(|v| v.as_str()).map(str::to_string).ok_or(format!("no '{name}'"));
    let date = |name: &str| {
        doc.get(name).and_then(|v| v.as_i64()).and_then(|d| i32::try_from(d).ok()).ok_or(format!("no '{name}'"))
    };
    let config = doc.get("config").map(crate::jcs::to_canonical).ok_or("no 'config'")?;
    Ok(Key::new(text("feature_set")?, text("symbol")?, date("start_date")?, date("end_date")?, config))
}

fn write_parquet(file: File, temp: &Path, key: &ResolvedKey, data: &Data) -> Result<(u64, String)> {
    let io_error = |e: io::Error| Error::io(format!("cannot write {}", temp.display()), e);
    let parquet_error = |e: parquet::errors::ParquetError| Error::io(format!("cannot write {}", temp.display()), io::Error::other(e));
    // No page index: everything before the footer is then covered by the checksum.
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level")))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_created_by(format!("libfstore {}", crate::VERSION))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&data.schema), Some(props)).map_err(parquet_error)?;
    for batch in &data.batches {
        writer.write(batch).map_err(parquet_error)?;
    }
    writer.flush().map_err(parquet_error)?;
    writer.sync().map_err(io_error)?; // from the writer's buffer into `inner`
    // Everything before the footer is written; its checksum goes in the footer.
    let covered = writer.inner().len();
    let checksum = checksum_string(&Sha256::digest(writer.inner()));
    writer.append_key_value_metadata(KeyValue::new(KEY_METADATA.to_string(), key.footer_json()));
    writer.append_key_value_metadata(KeyValue::new(CHECKSUM_METADATA.to_string(), checksum.clone()));
    writer.append_key_value_metadata(KeyValue::new(CHECKSUM_BYTES_METADATA.to_string(), covered.to_string()));
    let placeholder = String::from_utf8(DIGEST_PLACEHOLDER.to_vec()).expect("ASCII");
    writer.append_key_value_metadata(KeyValue::new(FOOTER_DIGEST_METADATA.to_string(), placeholder));
    let mut bytes = writer.into_inner().map_err(parquet_error)?;
    let footer_start = footer_start(&bytes).filter(|&s| s == covered).ok_or_else(|| {
        Error::internal(format!("the Parquet writer's footer does not start after the {covered} bytes it flushed"))
    })?;
    let footer_end = bytes.len() - 8;
    let digest = footer_digest(&bytes[footer_start..footer_end], &DIGEST_PLACEHOLDER)
        .ok_or_else(|| Error::internal("the footer digest's placeholder is missing from the footer"))?;
    let at = digest_value_at(&bytes[footer_start..footer_end], &DIGEST_PLACEHOLDER).expect("found just above");
    bytes[footer_start + at..footer_start + at + 64].copy_from_slice(digest.as_bytes());
    let mut file = file;
    file.write_all(&bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    Ok((bytes.len() as u64, checksum))
}

/// Where the footer's `fstore.footer_sha256` value lies, if it reads `value`.
fn digest_value_at(footer: &[u8], value: &[u8]) -> Option<usize> {
    let name = FOOTER_DIGEST_METADATA.as_bytes();
    let key_end = footer.windows(name.len()).position(|w| w == name)? + name.len();
    // In Thrift's compact encoding the value follows its field header and
    // length, a few bytes after the key.
    let search = &footer[key_end..footer.len().min(key_end + 8 + value.len())];
    search.windows(value.len()).position(|w| w == value).map(|p| key_end + p)
}

/// SHA-256 of `footer` with its digest value (`current`) read as the
/// placeholder; `None` if the footer does not hold `current` where the
/// digest belongs.
fn footer_digest(footer: &[u8], current: &[u8]) -> Option<String> {
    if current.len() != DIGEST_PLACEHOLDER.len() {
        return None;
    }
    let at = digest_value_at(footer, current)?;
    let mut hasher = Sha256::new();
    hasher.update(&footer[..at]);
    hasher.update(DIGEST_PLACEHOLDER);
    hasher.update(&footer[at + DIGEST_PLACEHOLDER.len()..]);
    Some(hex(&hasher.finalize()))
}

fn checksum_string(digest: &[u8]) -> String {
    format!("sha256:{}", hex(digest))
}

/// Where the footer begins, in a complete Parquet file.
fn footer_start(file: &[u8]) -> Option<usize> {
    let len = file.len();
    if len < 12 || &file[..4] != b"PAR1" || &file[len - 4..] != b"PAR1" {
        return None;
    }
    let footer_len = u32::from_le_bytes(file[len - 8..len - 4].try_into().ok()?) as usize;
    len.checked_sub(8 + footer_len).filter(|&end| end >= 4)
}

/// 16 random hex digits, for names that must not collide across hosts.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom fills the buffer it is given.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled != bytes.len() as isize {
        // No entropy source: still unique per process and moment.
        let seed = format!("{}:{:?}:{:?}", std::process::id(), std::thread::current().id(), SystemTime::now());
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes())[..8]);
    }
    hex(&bytes)
}
