//! The store: get, get-or-compute, put, invalidate, contains and stats over
//! one cache directory.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatchReader;

use crate::binding::{self, Binding};
use crate::cache_dir::CacheDir;
use crate::data::Data;
use crate::error::{Error, Result, Status};
use crate::flight::{Flights, Role};
use crate::fork;
use crate::key::{namespaced, Key, KeyRef, ResolvedKey};
use crate::key_cache::{CachedKey, KeyCache, KEY_CACHE_CAPACITY};
use crate::lock::file::FileLocks;
use crate::lock::local::LocalLocks;
use crate::lock::{Attempt, Held, Locks, Plan};
use crate::manifest::{self, Backend, DuckDbManifest, Manifest, ManifestRow, PostgresManifest};
use crate::memory_cache::MemoryCache;
use crate::metrics::{Metrics, StoreFigures};
use crate::options::{LockGranularity, ManifestChoice, Options};
use crate::pg::{LockStats, PgLocks, PgPool, PoolStats};
use crate::request::{Request, Wait};
use crate::scan::{Scan, ScanRequest};
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
    pub(crate) storage: Storage,
    memory: MemoryCache,
    keys: KeyCache,
    flights: Flights,
    // These own threads or connections (the manifest writer, the pool's),
    // which a forked child must neither join nor close: it leaks them.
    locks: ManuallyDrop<Box<dyn Locks>>,
    pub(crate) manifest: ManuallyDrop<Box<dyn Manifest>>,
    postgres: ManuallyDrop<Option<Arc<PgPool>>>,
    /// Why the store runs differently than configured (e.g. a fallback).
    warnings: Vec<String>,
    counters: Counters,
    /// The process that opened the store; a forked child must open its own.
    owner_pid: u32,
    /// `fork::generation()` when the store was opened: a cheaper check than
    /// the process id, which costs a system call.
    fork_generation: u64,
    /// Set by `begin_close`: ends every wait of calls in flight.
    closing: AtomicBool,
    metrics: Metrics,
}

/// How a lock attempt for a compute ended.
enum Locked {
    Held(Box<dyn Held>),
    /// Another caller published the entry while this one waited.
    Found(Data),
}

/// Why an entry is published: a compute may hand back its data unpublished
/// when its lock is gone for good; a put must fail then.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Publish {
    Computed,
    Put,
}

impl Store {
    pub fn open(options: Options) -> Result<Store> {
        fork::install();
        let CacheDir { path: cache_dir, modes } = CacheDir::open(&options)?;
        let storage = Storage::open(&cache_dir, options.verify_checksums, modes)?;
        let mut warnings = Vec::new();
        let bound = binding::read(&cache_dir)?;
        let postgres = connect_postgres(&options, &cache_dir, bound.as_ref(), &mut warnings)?;
        let manifest: Box<dyn Manifest> = match &postgres {
            Some(pool) => {
                let schema = &options.postgres.schema;
                let manifest =
                    PostgresManifest::open(Arc::clone(pool), schema, options.postgres.auto_migrate, options.wait_timeout)?;
                let wanted = Binding::new(&options, Backend::Postgres, Some(manifest.identity()?));
                binding::check_or_bind(&cache_dir, &wanted, modes)?;
                Box::new(manifest)
            }
            None => {
                // Checked before the embedded manifest is created in a directory that may belong to PostgreSQL.
                binding::check_or_bind(&cache_dir, &Binding::new(&options, Backend::DuckDb, None), modes)?;
                Box::new(DuckDbManifest::open(&cache_dir, options.wait_timeout, modes)?)
            }
        };
        let locks: Box<dyn Locks> = match &postgres {
            _ if !options.cross_process_lock => Box::new(LocalLocks::default()),
            Some(pool) => Box::new(PgLocks::new(Arc::clone(pool), &options.postgres)),
            None => Box::new(FileLocks::open(&cache_dir, modes)?),
        };
        for warning in &warnings {
            log::warn!("libfstore: {warning}");
        }
        let memory = MemoryCache::new(options.memory_cache_bytes);
        let metrics = Metrics::new(options.metrics_max_symbols, options.metrics_max_feature_sets);
        Ok(Store {
            options,
            cache_dir,
            storage,
            memory,
            keys: KeyCache::new(KEY_CACHE_CAPACITY),
            flights: Flights::default(),
            locks: ManuallyDrop::new(locks),
            manifest: ManuallyDrop::new(manifest),
            postgres: ManuallyDrop::new(postgres),
            warnings,
            counters: Counters::default(),
            owner_pid: std::process::id(),
            fork_generation: fork::generation(),
            closing: AtomicBool::new(false),
            metrics,
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

    /// The store's metrics in the Prometheus text exposition format (0.0.4):
    /// the `featurestore_*` series of the design libfstore replaces and its
    /// own (see the README's metrics table). With PostgreSQL this asks the
    /// server for its advisory locks.
    pub fn metrics(&self) -> Result<String> {
        self.check_process()?;
        let stats = self.stats();
        let (memory_bytes, memory_entries) = self.memory.usage();
        let figures = StoreFigures {
            backend: match self.manifest_backend() {
                Backend::Postgres => "postgres",
                Backend::DuckDb => "duckdb",
            },
            timeouts: stats.timeouts,
            cancellations: stats.cancellations,
            bytes_read: stats.bytes_read,
            bytes_written: stats.bytes_written,
            memory_bytes,
            memory_entries,
            pool: self.pool_stats(),
            locks: self.lock_stats()?,
        };
        Ok(self.metrics.render(&figures))
    }

    /// Connection pool figures; `None` without PostgreSQL.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.postgres.as_ref().map(|p| p.stats())
    }

    /// The PostgreSQL pool; `None` without PostgreSQL.
    pub(crate) fn pg_pool(&self) -> Option<&Arc<PgPool>> {
        self.postgres.as_ref()
    }

    /// Advisory locks held and waited for in the manifest database (from
    /// `pg_locks`); `None` without PostgreSQL.
    pub fn lock_stats(&self) -> Result<Option<LockStats>> {
        self.check_process()?;
        let Some(pool) = self.postgres.as_ref() else { return Ok(None) };
        let request = Request::new();
        crate::pg::lock_stats(pool, &self.wait(&request)).map(Some)
    }

    /// The entry of `key`, or `Ok(None)`. Never computes and never waits.
    pub fn get(&self, key: &Key, request: &Request) -> Result<Option<Data>> {
        self.get_borrowed(key.borrowed(), request)
    }

    /// [`Store::get`] of a key borrowed from the caller (the C API's strings).
    pub(crate) fn get_borrowed(&self, key: KeyRef<'_>, request: &Request) -> Result<Option<Data>> {
        let started = Instant::now();
        let (found, key) = self.counted(|| {
            self.check_process()?;
            let key = self.resolve(key)?;
            let found = self.read(&key, request.columns.as_deref())?;
            if found.is_some() {
                bump(&self.counters.hits, 1);
                bump(&key.series.symbol.hits, 1);
            } else {
                bump(&self.counters.misses, 1);
                bump(&key.series.symbol.misses, 1);
            }
            Ok((found, key))
        })?;
        key.series.feature_set.get_seconds.observe(started.elapsed());
        Ok(found)
    }

    /// `key` resolved, with the metric series its calls count in.
    fn resolve(&self, key: KeyRef<'_>) -> Result<Arc<CachedKey>> {
        self.keys.resolve(key, |k| self.metrics.key_series(&k.key.feature_set, &k.key.symbol))
    }

    /// `call`'s outcome, its failure counted by status.
    fn counted<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<T> {
        call().inspect_err(|e| self.metrics.error(e.status()))
    }

    /// What [`Store::get_or_compute`] answers without waiting or computing:
    /// the entry, or `Ok(None)` when that call would have to wait or compute
    /// (a corrupt file counts as missing, as there). Counts a hit but never
    /// a miss: the `get_or_compute` that follows a `None` counts that. Lets a
    /// binding answer a hit on the calling thread and hand only the rest to
    /// its interruptible path.
    pub fn try_get(&self, key: &Key, request: &Request) -> Result<Option<Data>> {
        self.try_get_borrowed(key.borrowed(), request)
    }

    /// [`Store::try_get`] of a key borrowed from the caller.
    pub(crate) fn try_get_borrowed(&self, key: KeyRef<'_>, request: &Request) -> Result<Option<Data>> {
        let started = Instant::now();
        self.counted(|| {
            self.check_process()?;
            let key = self.resolve(key)?;
            let found = self.first_look(&key, request.columns.as_deref())?;
            // Only a hit is a whole read; a miss goes on in get_or_compute, which times itself.
            if found.is_some() {
                key.series.feature_set.get_seconds.observe(started.elapsed());
            }
            Ok(found)
        })
    }

    /// Many entries of one feature set and config at once, as one stream
    /// with the key columns in front; never computes. See [`crate::scan`].
    pub fn scan(&self, request: &ScanRequest) -> Result<Scan> {
        self.check_process()?;
        crate::scan::run(self, request)
    }

    /// The entry of `key`, computing it with `compute` if it does not exist.
    ///
    /// Exactly one caller per entry runs `compute` at a time: within the
    /// process through single flight, across processes through the entry's
    /// lock. Waiters get the same data or the same error. A failed compute
    /// stores nothing; the next call tries again. A compute that reports
    /// `Cancelled` or `Timeout` (its own caller gave up) makes a waiter take
    /// it over instead.
    pub fn get_or_compute<F>(&self, key: &Key, request: &Request, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        self.get_or_compute_borrowed(key.borrowed(), request, compute)
    }

    /// [`Store::get_or_compute`] of a key borrowed from the caller.
    pub(crate) fn get_or_compute_borrowed<F>(&self, key: KeyRef<'_>, request: &Request, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        let started = Instant::now();
        self.check_process().inspect_err(|e| self.metrics.error(e.status()))?;
        let key = self.resolve(key).inspect_err(|e| self.metrics.error(e.status()))?;
        let result = self.get_or_compute_resolved(&key, request, compute);
        key.series.feature_set.get_seconds.observe(started.elapsed());
        if let Err(e) = &result {
            self.metrics.error(e.status());
            match e.status() {
                Status::Timeout => bump(&self.counters.timeouts, 1),
                Status::Cancelled => bump(&self.counters.cancellations, 1),
                _ => {}
            }
        }
        result
    }

    fn get_or_compute_resolved<F>(&self, key: &CachedKey, request: &Request, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        let columns = request.columns.as_deref();
        if let Some(data) = self.first_look(key, columns)? {
            return Ok(data);
        }
        bump(&self.counters.misses, 1);
        bump(&key.series.symbol.misses, 1);
        let wait = self.wait(request);
        let what = || format!("the compute of {}", describe(&key.key));
        let mut compute = Some(compute);
        loop {
            match self.flights.join(&key.entry_id) {
                Role::Follower(flight) => {
                    bump(&self.counters.waits, 1);
                    bump(&key.series.symbol.waits, 1);
                    match flight.wait(&wait, &what)? {
                        Ok(data) => return data.project(columns),
                        // The leader's caller gave up; ours may still wait: take over.
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
                    return outcome?.project(columns);
                }
            }
        }
    }

    /// The entry if it is there (counted as a hit), projected; a corrupt
    /// file counts as missing.
    fn first_look(&self, key: &CachedKey, columns: Option<&[String]>) -> Result<Option<Data>> {
        let found = recovering(self.read(key, columns))?;
        if found.is_some() {
            bump(&self.counters.hits, 1);
            bump(&key.series.symbol.hits, 1);
        }
        Ok(found)
    }

    /// Takes the entry's lock (or finds the entry published meanwhile),
    /// re-checks, computes and publishes.
    fn lead<F>(&self, key: &CachedKey, wait: &Wait, compute: F) -> Result<Data>
    where
        F: FnOnce(&Key) -> Result<Box<dyn RecordBatchReader>>,
    {
        let plan = self.plan(key);
        let locking = Instant::now();
        let locked = self.lock_or_find(key, &plan, wait);
        self.metrics.lock_waited(locking.elapsed());
        let mut held = match locked? {
            Locked::Held(held) => held,
            Locked::Found(data) => return Ok(data),
        };
        // Another process may have published it between our first look and the lock.
        if let Some(data) = self.recheck(key, Some(held.as_mut()))? {
            return Ok(data);
        }
        bump(&self.counters.computes, 1);
        let series = &key.series.feature_set;
        bump(&series.computes, 1);
        let computing = Instant::now();
        let data = compute(&key.key).and_then(|mut reader| Data::collect(reader.as_mut())).inspect_err(|e| {
            if !matches!(e.status(), Status::Timeout | Status::Cancelled) {
                bump(&self.counters.compute_failures, 1);
                bump(&series.compute_failures, 1);
            }
        });
        series.compute_seconds.observe(computing.elapsed());
        let data = data?;
        self.publish(key, &plan, held, data, wait, Publish::Computed)
    }

    /// Takes `plan` for a compute. While another caller computes the entry,
    /// waits for it (in shared mode: every waiter wakes at once) and looks
    /// for its result before trying again.
    fn lock_or_find(&self, key: &CachedKey, plan: &Plan, wait: &Wait) -> Result<Locked> {
        let mut counted = false;
        loop {
            match self.locks.try_lock(plan, wait)? {
                Attempt::Held(held) => return Ok(Locked::Held(held)),
                Attempt::Busy => {
                    if !counted {
                        bump(&self.counters.waits, 1);
                        bump(&key.series.symbol.waits, 1);
                        counted = true;
                    }
                    self.locks.wait_released(plan.entry, wait)?;
                    if let Some(data) = self.recheck(key, None)? {
                        return Ok(Locked::Found(data));
                    }
                }
            }
        }
    }

    /// Takes `plan` to change an entry (put, invalidate, maintenance).
    pub(crate) fn acquire(&self, plan: &Plan, wait: &Wait) -> Result<Box<dyn Held>> {
        loop {
            match self.locks.try_lock(plan, wait)? {
                Attempt::Held(held) => return Ok(held),
                Attempt::Busy => self.locks.wait_released(plan.entry, wait)?,
            }
        }
    }

    /// The locks a compute of `key` takes, under this store's granularity
    /// and namespace: the entry's key, and under `symbol` granularity the
    /// symbol's key (shared) around it.
    pub(crate) fn plan(&self, key: &ResolvedKey) -> Plan {
        self.plan_of(&key.key.symbol, &key.entry_id)
    }

    pub(crate) fn plan_of(&self, symbol: &str, entry_id: &str) -> Plan {
        let ns = |k: i64| namespaced(k, &self.options.lock_namespace);
        let outer = match self.options.lock_granularity {
            LockGranularity::Symbol => Some(ns(crate::key::symbol_lock_key(symbol))),
            LockGranularity::Entry => None,
        };
        Plan { outer, entry: ns(crate::key::entry_lock_key(entry_id)) }
    }

    /// The per-symbol lock key under this store's namespace: what another
    /// program takes (exclusively) to exclude every compute of the symbol.
    pub fn symbol_lock_key(&self, symbol: &str) -> Result<i64> {
        Ok(namespaced(crate::key::lock_key(symbol)?, &self.options.lock_namespace))
    }

    /// Looks for the entry again, after a wait or under its lock. Where the
    /// manifest commits rows with the lock (PostgreSQL), a row proves the
    /// entry even while a network file system still hides its file.
    fn recheck(&self, key: &ResolvedKey, held: Option<&mut dyn Held>) -> Result<Option<Data>> {
        if let Some(data) = recovering(self.read(key, None))? {
            return Ok(Some(data));
        }
        if self.manifest.find(&key.entry_id, held)?.is_none() {
            return Ok(None);
        }
        let found = recovering(self.storage.read_expected(key, None))?;
        Ok(found.map(|read| {
            bump(&self.counters.bytes_read, read.bytes);
            read.data
        }))
    }

    /// Writes `data` as the entry of `key` and publishes it while `held`,
    /// first making sure the lock is still ours: a lock lost mid-compute (a
    /// dropped connection, a server restart) is taken again, and a compute
    /// whose entry another caller published meanwhile returns that entry
    /// and publishes nothing.
    fn publish(
        &self,
        key: &ResolvedKey,
        plan: &Plan,
        mut held: Box<dyn Held>,
        data: Data,
        wait: &Wait,
        why: Publish,
    ) -> Result<Data> {
        let temp = self.storage.write_temp(key, &data)?;
        if let Err(lost) = held.verify() {
            log::warn!("libfstore: {lost}; taking the lock of {} again before publishing", describe(&key.key));
            drop(held);
            held = match self.acquire(plan, wait) {
                Ok(held) => held,
                Err(e) if why == Publish::Computed => {
                    // Publishing without the lock could race another
                    // worker's publish: hand the caller its data, store nothing.
                    log::warn!("libfstore: computed {} but did not publish it: {e}", describe(&key.key));
                    return Ok(data);
                }
                Err(e) => return Err(e),
            };
            if why == Publish::Computed {
                if let Some(existing) = self.recheck(key, Some(held.as_mut()))? {
                    return Ok(existing);
                }
            }
        }
        let published = temp.publish()?;
        self.memory.remove(&key.entry_id);
        bump(&self.counters.bytes_written, published.bytes);
        // The row commits with the lock's release. If that transaction fails
        // now (a dropped connection), the file is published all the same:
        // record the row on its own (an idempotent upsert). A manifest
        // failure is reported (flush, or the log) and repaired by
        // maintenance, which re-indexes the file.
        let row = manifest_row(key, &published, &self.cache_dir);
        let in_lock = self.manifest.record(&row, Some(held.as_mut()));
        let released = held.release();
        if let Err(e) = in_lock.and(released) {
            log::warn!("libfstore: recording {} outside its lock's transaction: {e}", describe(&key.key));
            if let Err(e) = self.manifest.record(&row, None) {
                log::warn!("libfstore: {} is published, but its manifest row is missing: {e}", describe(&key.key));
            }
        }
        // Waiters are reading it already; this only guards against a crash.
        published.sync_directory()?;
        Ok(data)
    }

    /// Stores data computed elsewhere, replacing any entry of `key`. Waits
    /// (within the store's wait timeout) for a compute of it in progress.
    pub fn put(&self, key: &Key, reader: &mut dyn RecordBatchReader) -> Result<()> {
        self.counted(|| {
            self.check_process()?;
            let key = ResolvedKey::resolve(key)?;
            let data = Data::collect(reader)?;
            let request = Request::new();
            let wait = self.wait(&request);
            let plan = self.plan(&key);
            let held = self.acquire(&plan, &wait)?;
            self.publish(&key, &plan, held, data, &wait, Publish::Put).map(drop)
        })
    }

    /// Removes the entry of `key`; `NotFound` if there was none. Waits
    /// (within the store's wait timeout) for a compute of it in progress, so
    /// that a compute started before the invalidation cannot publish after it.
    pub fn invalidate(&self, key: &Key) -> Result<()> {
        self.counted(|| self.invalidate_counted(key))
    }

    fn invalidate_counted(&self, key: &Key) -> Result<()> {
        self.check_process()?;
        let key = ResolvedKey::resolve(key)?;
        let request = Request::new();
        let wait = self.wait(&request);
        let mut held = self.acquire(&self.plan(&key), &wait)?;
        let existed = self.storage.remove(&key.entry_id)?;
        self.memory.remove(&key.entry_id);
        self.manifest.forget(&key.entry_id, Some(held.as_mut()))?;
        held.release()?;
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

    /// Removes expired entries, rows whose files are gone, stale temporary
    /// files, unreadable entry files and unused lock files, and re-indexes
    /// valid entry files whose row is missing. See [`crate::maintenance`].
    pub fn maintain(&self, options: &crate::maintenance::MaintainOptions) -> Result<crate::maintenance::MaintainReport> {
        self.check_process()?;
        crate::maintenance::run(self, options)
    }

    /// Waits (within the store's wait timeout) until the manifest holds
    /// every entry published so far.
    pub fn flush(&self) -> Result<()> {
        self.check_process()?;
        self.manifest.flush()
    }

    /// Flushes the manifest and closes the store, reporting a manifest
    /// failure. Bounded by the store's wait timeout.
    pub fn close(self) -> Result<()> {
        self.check_process()?;
        self.manifest.shutdown()
    }

    /// The wait bound of operations that have no request of their own.
    pub(crate) fn default_wait<'a>(&'a self, request: &'a Request) -> Wait<'a> {
        self.wait(request)
    }

    /// A call's wait: bounded by its request and the store's timeout, and
    /// ended by `begin_close`.
    fn wait<'a>(&'a self, request: &'a Request) -> Wait<'a> {
        Wait::new(request, self.options.wait_timeout).ending_when(&self.closing)
    }

    /// Ends the waits of calls in flight (they return `Cancelled`), and of
    /// calls that begin later, so that a close need not wait for them.
    /// Computes already running are not interrupted.
    pub fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    pub(crate) fn cache_dir_locks(&self) -> Option<FileLocks> {
        (self.manifest.backend() == Backend::DuckDb).then(|| FileLocks::open(&self.cache_dir, self.storage.modes()).ok()).flatten()
    }

    fn check_process(&self) -> Result<()> {
        if fork::generation() == self.fork_generation {
            return Ok(());
        }
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

    /// The entry's `columns` (`None`: all), from memory while its file is
    /// the one they were decoded from, else from the file; `Corrupt` for a
    /// file that fails its checks. An entry the memory cache would not keep
    /// is decoded only as far as the columns asked.
    pub(crate) fn read(&self, key: &ResolvedKey, columns: Option<&[String]>) -> Result<Option<Data>> {
        if self.memory.enabled() {
            let Some(stamp) = self.storage.stamp(&key.entry_id)? else {
                return Ok(None);
            };
            if let Some(data) = self.memory.get(&key.entry_id, stamp) {
                return data.project(columns).map(Some);
            }
        }
        let Some(opened) = self.storage.open_entry(key)? else {
            return Ok(None);
        };
        bump(&self.counters.bytes_read, opened.bytes);
        if !self.memory.would_keep(opened.decoded_bytes()) {
            return opened.decode(columns).map(Some);
        }
        let stamp = opened.stamp;
        let data = Arc::new(opened.decode(None)?);
        self.memory.insert(&key.entry_id, stamp, Arc::clone(&data));
        data.project(columns).map(Some)
    }
}

/// A corrupt entry file counts as missing, so that it is computed again.
fn recovering<T>(read: Result<Option<T>>) -> Result<Option<T>> {
    match read {
        Err(e) if e.status() == Status::Corrupt => {
            log::warn!("libfstore: recomputing: {e}");
            Ok(None)
        }
        other => other,
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

/// Opens the PostgreSQL pool that the options ask for, if any. Under
/// `manifest=auto` an unreachable server becomes a warning and `None`,
/// unless the cache directory is bound to PostgreSQL: then falling back
/// would split it, so the open fails.
fn connect_postgres(
    options: &Options,
    cache_dir: &Path,
    bound: Option<&Binding>,
    warnings: &mut Vec<String>,
) -> Result<Option<Arc<PgPool>>> {
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
        Ok(pool) => Ok(Some(pool)),
        Err(e) if options.manifest == ManifestChoice::Auto && e.status() == Status::Unavailable => {
            if let Some(bound) = bound.filter(|b| b.backend == Backend::Postgres) {
                return Err(e.context(format!(
                    "cache directory {} is bound to {bound}, so it cannot fall back to the embedded manifest",
                    cache_dir.display()
                )));
            }
            warnings.push(format!("{e}; using the embedded DuckDB manifest and host-local locks instead"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn manifest_row(key: &ResolvedKey, published: &Published, cache_dir: &Path) -> ManifestRow {
    let (rows, bytes, checksum) = (published.rows, published.bytes, published.checksum.clone());
    ManifestRow::new(key, &published.path, cache_dir, rows, bytes, checksum, manifest::now_us())
}

pub(crate) fn describe(key: &Key) -> String {
    format!("{}/{} [{}, {}]", key.feature_set, key.symbol, key.start_date, key.end_date)
}
