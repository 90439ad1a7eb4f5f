//! The store: get, get-or-compute, put, invalidate, contains and stats over
//! one cache directory.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::record_batch::RecordBatchReader;

use crate::data::Data;
use crate::error::{Error, Result, Status};
use crate::file_lock::FileLocks;
use crate::flight::{Flights, Role};
use crate::key::{namespaced, Key, ResolvedKey};
use crate::manifest::{self, Backend, DuckDbManifest, Manifest, ManifestRow, PostgresManifest};
use crate::memory_cache::{FileStamp, MemoryCache};
use crate::options::{LockGranularity, ManifestChoice, Options};
use crate::pg::{LockStats, PgLocks, PgPool, PoolStats};
use crate::shared_lock::{SharedLockGuard, SharedLocks};
use crate::request::{Request, Wait};
use crate::storage::{Published, Storage};

/// Counters since the store was opened.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls answered from an existing entry without waiting.
    pub hits: u64,
    /// Calls that found no entry at first look.
    pub misses: u64,
    /// Compute callbacks run by this store.
    pub computes: u64,
    /// Compute callbacks that failed (or produced invalid data).
    pub compute_failures: u64,
    /// Calls that waited for another caller's compute (thread or process).
    pub waits: u64,
    /// Calls that gave up waiting: timed out or cancelled.
    pub timeouts: u64,
    pub cancellations: u64,
    /// Bytes of entry files written and read.
    pub bytes_written: u64,
    pub bytes_read: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    computes: AtomicU64,
    compute_failures: AtomicU64,
    waits: AtomicU64,
    timeouts: AtomicU64,
    cancellations: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A feature cache over one directory. `Sync`: share it between threads.
pub struct Store {
    options: Options,
    cache_dir: PathBuf,
    storage: Storage,
    memory: MemoryCache,
    flights: Flights,
    // These three own threads (the manifest writer, the pool's), which a
    // forked child does not have: it must neither join nor drop them.
    locks: ManuallyDrop<SharedLocks>,
    manifest: ManuallyDrop<Box<dyn Manifest>>,
    postgres: ManuallyDrop<Option<Arc<PgPool>>>,
    /// Why the store runs differently than configured (e.g. a fallback).
    warnings: Vec<String>,
    counters: Counters,
    /// The process that opened the store; a forked child must open its own.
    owner_pid: u32,
}

impl Store {
    pub fn open(options: Options) -> Result<Store> {
        let cache_dir = options.resolved_cache_dir()?;
        let storage = Storage::open(&cache_dir, options.verify_checksums)?;
        let mut warnings = Vec::new();
        let postgres = connect_postgres(&options, &mut warnings)?;
        let (manifest, locks): (Box<dyn Manifest>, SharedLocks) = match &postgres {
            Some(pool) => (
                Box::new(PostgresManifest::open(
                    Arc::clone(pool),
                    &options.postgres.schema,
                    options.postgres.auto_migrate,
                )?),
                SharedLocks::new(Box::new(PgLocks::new(Arc::clone(pool)))),
            ),
            None => (
                Box::new(DuckDbManifest::open(&cache_dir)?),
                SharedLocks::new(Box::new(FileLocks::open(&cache_dir)?)),
            ),
        };
        for warning in &warnings {
            log::warn!("libfstore: {warning}");
            if std::env::var_os("FSTORE_QUIET").is_none() {
                eprintln!("libfstore: warning: {warning}");
            }
        }
        let memory = MemoryCache::new(options.memory_cache_bytes);
        Ok(Store {
            options,
            cache_dir,
            storage,
            memory,
            flights: Flights::default(),
            locks: ManuallyDrop::new(locks),
            manifest: ManuallyDrop::new(manifest),
            postgres: ManuallyDrop::new(postgres),
            warnings,
            counters: Counters::default(),
            owner_pid: std::process::id(),
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The manifest backend in use (which also decides how processes lock).
    pub fn manifest_backend(&self) -> Backend {
        self.manifest.backend()
    }

    /// Warnings from opening the store, such as a fallback to the embedded
    /// manifest and why.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Connection pool figures; `None` without PostgreSQL.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.postgres.as_ref().map(|p| p.stats())
    }

    /// Advisory locks held and waited for in the manifest database (from
    /// `pg_locks`); `None` without PostgreSQL.
    pub fn lock_stats(&self) -> Result<Option<LockStats>> {
        self.check_process()?;
        self.postgres.as_ref().map(|p| p.lock_stats()).transpose()
    }

    /// The entry of `key`, or `Ok(None)`. Never computes and never waits.
    pub fn get(&self, key: &Key, request: &Request) -> Result<Option<Data>> {
        self.check_process()?;
        let key = ResolvedKey::resolve(key)?;
        match self.read(&key, request) {
            Ok(Some(data)) => {
                bump(&self.counters.hits, 1);
                Ok(Some(data))
            }
            Ok(None) => {
                bump(&self.counters.misses, 1);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The entry of `key`, computing it with `compute` if it does not exist.
    ///
    /// Exactly one caller per entry runs `compute` at a time: within the
    /// process through single flight, across processes through a lock per
    /// symbol (or per entry). Waiters get the same data or the same error. A
    /// failed compute stores nothing; the next call tries again.
    pub fn get_or_compute<F>(&self, key: &Key, request: &Request, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        self.check_process()?;
        let key = ResolvedKey::resolve(key)?;
        let result = self.get_or_compute_resolved(&key, request, compute);
        if let Err(e) = &result {
            match e.status() {
                Status::Timeout => bump(&self.counters.timeouts, 1),
                Status::Cancelled => bump(&self.counters.cancellations, 1),
                _ => {}
            }
        }
        result
    }

    fn get_or_compute_resolved<F>(&self, key: &ResolvedKey, request: &Request, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        if let Some(data) = self.read_or_recover(key, request)? {
            bump(&self.counters.hits, 1);
            return Ok(data);
        }
        bump(&self.counters.misses, 1);
        let wait = Wait::new(request, self.options.wait_timeout);
        let what = || format!("the compute of {}", describe(&key.key));
        let mut compute = Some(compute);
        loop {
            match self.flights.join(&key.entry_id) {
                Role::Follower(flight) => {
                    bump(&self.counters.waits, 1);
                    match flight.wait(&wait, &what)? {
                        Ok(data) => return data.project(request.columns.as_deref()),
                        // The leader gave up on its own deadline; our own may allow more.
                        Err(e) if matches!(e.status(), Status::Timeout | Status::Cancelled) => {
                            wait.check(&what)?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Role::Leader(leader) => {
                    let compute = compute.take().expect("a caller leads at most once");
                    let outcome = self.lead(key, &wait, compute).map(Arc::new);
                    leader.finish(outcome.clone());
                    return outcome?.project(request.columns.as_deref());
                }
            }
        }
    }

    /// Runs under the cross-process lock: re-check, compute, publish.
    fn lead<F>(&self, key: &ResolvedKey, wait: &Wait, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        let _lock = self.cross_process_lock(key, wait)?;
        // Another process, or an earlier leader here, may have published it meanwhile.
        if let Some(data) = self.read_or_recover(key, &Request::new())? {
            return Ok(data);
        }
        bump(&self.counters.computes, 1);
        let computed = compute(&key.key).and_then(|mut reader| self.publish(key, reader.as_mut()));
        if computed.is_err() {
            bump(&self.counters.compute_failures, 1);
        }
        computed
    }

    fn cross_process_lock(&self, key: &ResolvedKey, wait: &Wait) -> Result<Option<SharedLockGuard<'_>>> {
        if !self.options.cross_process_lock {
            return Ok(None);
        }
        let (guard, waited) = self.locks.acquire(self.lock_key(key), wait)?;
        if waited {
            bump(&self.counters.waits, 1);
        }
        Ok(Some(guard))
    }

    /// The advisory lock key of `key` under this store's granularity and namespace.
    pub fn lock_key(&self, key: &ResolvedKey) -> i64 {
        let plain = match self.options.lock_granularity {
            LockGranularity::Symbol => key.symbol_lock_key,
            LockGranularity::Entry => key.entry_lock_key(),
        };
        namespaced(plain, &self.options.lock_namespace)
    }

    /// Stores data computed elsewhere, replacing any entry of `key`.
    pub fn put(&self, key: &Key, reader: &mut dyn RecordBatchReader) -> Result<()> {
        self.check_process()?;
        let key = ResolvedKey::resolve(key)?;
        self.publish(&key, reader).map(|_| ())
    }

    /// Removes the entry of `key`; `NotFound` if there was none.
    pub fn invalidate(&self, key: &Key) -> Result<()> {
        self.check_process()?;
        let key = ResolvedKey::resolve(key)?;
        self.memory.remove(&key.entry_id);
        let existed = self.storage.remove(&key.entry_id)?;
        self.manifest.remove(std::slice::from_ref(&key.entry_id))?;
        if existed {
            Ok(())
        } else {
            Err(Error::not_found(format!("no entry for {}", describe(&key.key))))
        }
    }

    pub fn contains(&self, key: &Key) -> Result<bool> {
        self.check_process()?;
        self.storage.contains(&ResolvedKey::resolve(key)?)
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            computes: get(&c.computes),
            compute_failures: get(&c.compute_failures),
            waits: get(&c.waits),
            timeouts: get(&c.timeouts),
            cancellations: get(&c.cancellations),
            bytes_written: get(&c.bytes_written),
            bytes_read: get(&c.bytes_read),
        }
    }

    /// Every manifest row, as Arrow.
    pub fn entries(&self) -> Result<Data> {
        self.check_process()?;
        manifest::rows_to_arrow(&self.manifest.rows()?)
    }

    /// Every manifest row.
    pub fn manifest_rows(&self) -> Result<Vec<ManifestRow>> {
        self.check_process()?;
        self.manifest.rows()
    }

    /// Entries, rows, bytes and age per feature set and symbol, as Arrow.
    pub fn summary(&self) -> Result<Data> {
        self.check_process()?;
        manifest::summary(&self.manifest.rows()?)
    }

    /// Removes expired entries, rows whose files are gone, files no row
    /// points to and stale temporary files. See [`crate::maintenance`].
    pub fn maintain(&self, options: &crate::maintenance::MaintainOptions) -> Result<crate::maintenance::MaintainReport> {
        self.check_process()?;
        crate::maintenance::run(&self.storage, self.manifest.as_ref(), options)
    }

    /// Waits until the manifest holds every entry published so far.
    pub fn flush(&self) -> Result<()> {
        self.check_process()?;
        self.manifest.flush()
    }

    /// Flushes the manifest and closes the store, reporting a manifest failure.
    pub fn close(self) -> Result<()> {
        self.check_process()?;
        self.manifest.shutdown()
    }

    fn check_process(&self) -> Result<()> {
        let pid = std::process::id();
        if pid == self.owner_pid {
            Ok(())
        } else {
            Err(Error::invalid_state(format!(
                "this store was opened by process {} and cannot be used in process {pid} after fork(); open a new store in the child",
                self.owner_pid
            )))
        }
    }

    fn read(&self, key: &ResolvedKey, request: &Request) -> Result<Option<Data>> {
        let columns = request.columns.as_deref();
        if !self.memory.enabled() {
            let found = self.storage.read(key, columns)?;
            return Ok(found.map(|(data, bytes)| {
                bump(&self.counters.bytes_read, bytes);
                data
            }));
        }
        // The file proves the hit; memory only saves decoding it again.
        let Some(stamp) = FileStamp::of(&self.storage.entry_path(&key.entry_id)) else {
            return Ok(None);
        };
        if let Some(data) = self.memory.get(&key.entry_id, stamp) {
            return data.project(columns).map(Some);
        }
        let Some((data, bytes)) = self.storage.read(key, None)? else {
            return Ok(None);
        };
        bump(&self.counters.bytes_read, bytes);
        let data = Arc::new(data);
        self.memory.insert(&key.entry_id, stamp, Arc::clone(&data));
        data.project(columns).map(Some)
    }

    /// Like `read`, but a corrupt file counts as missing so that it is computed again.
    fn read_or_recover(&self, key: &ResolvedKey, request: &Request) -> Result<Option<Data>> {
        match self.read(key, request) {
            Err(e) if e.status() == Status::Corrupt => {
                log::warn!("libfstore: recomputing: {e}");
                Ok(None)
            }
            other => other,
        }
    }

    fn publish(&self, key: &ResolvedKey, reader: &mut dyn RecordBatchReader) -> Result<Data> {
        let (data, published) = self.storage.write(key, reader)?;
        bump(&self.counters.bytes_written, published.bytes);
        // Not kept in the memory cache: its buffers belong to the producer
        // (a C, Go or Python allocator), which must get them back now, not at
        // some later eviction on another thread. The first hit decodes the file.
        // The file is already the proof of the entry: a manifest failure is
        // reported (flush) and repaired by maintenance, not failed here.
        if let Err(e) = self.manifest.record(manifest_row(key, &published, &self.cache_dir)) {
            log::warn!("libfstore: {e}");
        }
        Ok(data)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // In a forked child the threads do not exist: leak what owns them.
        if std::process::id() != self.owner_pid {
            return;
        }
        let _ = self.manifest.shutdown();
        // SAFETY: dropped exactly once, here, and never used afterwards.
        unsafe {
            ManuallyDrop::drop(&mut self.locks);
            ManuallyDrop::drop(&mut self.manifest);
            ManuallyDrop::drop(&mut self.postgres);
        }
    }
}

/// Opens the PostgreSQL pool that the options ask for, if any; under
/// `manifest=auto` an unreachable server becomes a warning and `None`.
fn connect_postgres(options: &Options, warnings: &mut Vec<String>) -> Result<Option<Arc<PgPool>>> {
    if options.manifest == ManifestChoice::DuckDb {
        return Ok(None);
    }
    let Some((config, target)) = crate::pg::resolve_config(&options.postgres)? else {
        if options.manifest == ManifestChoice::Postgres {
            return Err(Error::invalid_argument(
                "manifest=postgres, but no server is configured: set postgres.dsn (or postgres.host, ...) \
                 or PG_MANIFEST_DSN (or PG_HOST, ...)",
            ));
        }
        return Ok(None);
    };
    match PgPool::connect(config, target, &options.postgres) {
        Ok(pool) => Ok(Some(Arc::new(pool))),
        Err(e) if options.manifest == ManifestChoice::Auto && e.status() == Status::Unavailable => {
            warnings.push(format!("{e}; using the embedded DuckDB manifest and host-local locks instead"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn manifest_row(key: &ResolvedKey, published: &Published, cache_dir: &Path) -> ManifestRow {
    let created_at_us = manifest::now_us();
    ManifestRow {
        entry_id: key.entry_id.clone(),
        feature_set: key.key.feature_set.clone(),
        symbol: key.key.symbol.clone(),
        start_date: key.key.start_date,
        end_date: key.key.end_date,
        config: key.canonical_config.clone(),
        path: published.path.strip_prefix(cache_dir).unwrap_or(&published.path).display().to_string(),
        rows: published.rows,
        bytes: published.bytes,
        checksum: published.checksum.clone(),
        created_at_us,
    }
}

pub(crate) fn describe(key: &Key) -> String {
    format!("{}/{} [{}, {}]", key.feature_set, key.symbol, key.start_date, key.end_date)
}
