//! The manifest: an index of entries (listing, statistics, maintenance,
//! migration). Never on the hit path: a file is published before its row, so
//! the file is the truth and the manifest may briefly lag behind it.

mod duckdb;
mod postgres;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

pub(crate) use self::duckdb::DuckDbManifest;
pub(crate) use self::postgres::{Identity, PostgresManifest};
use crate::data::Data;
use crate::error::{Error, Result};
use crate::key::ResolvedKey;
use crate::lock::Held;

/// One manifest row: an entry and where its file is.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestRow {
    pub entry_id: String,
    pub feature_set: String,
    pub symbol: String,
    pub start_date: i32,
    pub end_date: i32,
    /// Canonical (RFC 8785) config JSON.
    pub config: String,
    /// Relative to the cache directory, so hosts may mount it anywhere.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    /// Microseconds since the Unix epoch.
    pub created_at_us: i64,
}

impl ManifestRow {
    /// The row of the entry of `key`, whose file is `path` in `cache_dir`.
    pub(crate) fn new(
        key: &ResolvedKey,
        path: &Path,
        cache_dir: &Path,
        rows: u64,
        bytes: u64,
        checksum: String,
        created_at_us: i64,
    ) -> ManifestRow {
        ManifestRow {
            entry_id: key.entry_id.clone(),
            feature_set: key.key.feature_set.clone(),
            symbol: key.key.symbol.clone(),
            start_date: key.key.start_date,
            end_date: key.key.end_date,
            config: key.canonical_config.clone(),
            path: path.strip_prefix(cache_dir).unwrap_or(path).display().to_string(),
            rows,
            bytes,
            checksum,
            created_at_us,
        }
    }
}

/// Where the manifest lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    DuckDb,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::DuckDb => "duckdb",
            Backend::Postgres => "postgres",
        }
    }
}

pub(crate) trait Manifest: Send + Sync {
    fn backend(&self) -> Backend;
    /// Records (or replaces) a row, in the lock's transaction when `held`
    /// has one. May be applied asynchronously; `flush` waits.
    fn record(&self, row: &ManifestRow, held: Option<&mut dyn Held>) -> Result<()>;
    /// Removes an entry's row, in the lock's transaction when `held` has one.
    fn forget(&self, entry_id: &str, held: Option<&mut dyn Held>) -> Result<()>;
    /// Removes each `(entry_id, created_at_us)` row only if it still has that
    /// creation time: a row republished meanwhile stays.
    fn forget_unchanged(&self, rows: &[(String, i64)]) -> Result<()>;
    /// The row of `entry_id` where the backend knows it at once (PostgreSQL,
    /// whose rows commit with the lock); `None` where rows lag behind files.
    fn find(&self, entry_id: &str, held: Option<&mut dyn Held>) -> Result<Option<ManifestRow>>;
    /// Adds the rows whose entries have none; returns how many were added
    /// (or queued, where writes are asynchronous).
    fn insert_missing(&self, rows: &[ManifestRow]) -> Result<u64>;
    /// Every row, after a flush.
    fn rows(&self) -> Result<Vec<ManifestRow>>;
    /// Every row, after a flush, shared: a backend may hand out a snapshot
    /// it can prove is still current (for scans, which list often).
    fn rows_shared(&self) -> Result<Arc<Vec<ManifestRow>>> {
        Ok(Arc::new(self.rows()?))
    }
    /// Waits (bounded) until every change made so far is applied; reports
    /// a failure since the last flush.
    fn flush(&self) -> Result<()>;
    /// Flushes and stops background work. Not called in a forked child.
    fn shutdown(&self) -> Result<()>;
}

/// The schema of `Store::entries`, the same for every backend.
pub(crate) fn rows_to_arrow(rows: &[ManifestRow]) -> Result<Data> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("entry_id", DataType::Utf8, false),
        Field::new("feature_set", DataType::Utf8, false),
        Field::new("symbol", DataType::Utf8, false),
        Field::new("start_date", DataType::Date32, false),
        Field::new("end_date", DataType::Date32, false),
        Field::new("config", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("checksum", DataType::Utf8, false),
        Field::new("created_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]));
    let strings = |f: fn(&ManifestRow) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(rows.iter().map(f))) };
    let columns: Vec<ArrayRef> = vec![
        strings(|r| r.entry_id.as_str()),
        strings(|r| r.feature_set.as_str()),
        strings(|r| r.symbol.as_str()),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.start_date))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.end_date))),
        strings(|r| r.config.as_str()),
        strings(|r| r.path.as_str()),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.rows))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.bytes))),
        strings(|r| r.checksum.as_str()),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.created_at_us)).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Data { schema, batches: vec![batch] })
}

/// Totals of one (feature set, symbol) group.
struct Group {
    entries: u64,
    rows: u64,
    bytes: u64,
    oldest_us: i64,
    newest_us: i64,
}

/// Entries, rows and bytes per (feature set, symbol), from the manifest.
pub(crate) fn summary(rows: &[ManifestRow]) -> Result<Data> {
    let mut groups: std::collections::BTreeMap<(&str, &str), Group> = Default::default();
    for r in rows {
        let g = groups.entry((r.feature_set.as_str(), r.symbol.as_str())).or_insert(Group {
            entries: 0,
            rows: 0,
            bytes: 0,
            oldest_us: i64::MAX,
            newest_us: i64::MIN,
        });
        g.entries += 1;
        g.rows += r.rows;
        g.bytes += r.bytes;
        g.oldest_us = g.oldest_us.min(r.created_at_us);
        g.newest_us = g.newest_us.max(r.created_at_us);
    }
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("feature_set", DataType::Utf8, false),
        Field::new("symbol", DataType::Utf8, false),
        Field::new("entries", DataType::UInt64, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("oldest", ts(), false),
        Field::new("newest", ts(), false),
    ]));
    let counts = |f: fn(&Group) -> u64| -> ArrayRef { Arc::new(UInt64Array::from_iter_values(groups.values().map(f))) };
    let times = |f: fn(&Group) -> i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter_values(groups.values().map(f)).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(groups.keys().map(|k| k.0))),
        Arc::new(StringArray::from_iter_values(groups.keys().map(|k| k.1))),
        counts(|g| g.entries),
        counts(|g| g.rows),
        counts(|g| g.bytes),
        times(|g| g.oldest_us),
        times(|g| g.newest_us),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Data { schema, batches: vec![batch] })
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub(crate) use self::duckdb::copy_rows_out_of as duckdb_rows_for_migration;
pub(crate) use self::duckdb::restore_for_rollback as restore_duckdb_for_rollback;
pub(crate) use self::duckdb::DATABASE_FILE as DUCKDB_FILE;
