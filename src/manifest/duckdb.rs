//! The embedded manifest: a DuckDB file in the cache directory.
//!
//! DuckDB lets one process at a time open a database file read-write, and an
//! open costs tens of milliseconds. So no process keeps it open: a background
//! thread per store batches pending changes, takes an OS lock on
//! `manifest.lock`, opens the database, applies the batch in one transaction
//! and closes it again. Computing callers never wait for the manifest.
//!
//! Every wait for `manifest.lock` is bounded: a process stopped while holding
//! it delays the writer, and `flush`, `close` and `open` give up after the
//! store's wait timeout instead of hanging.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use duckdb::{params, AccessMode, Config, Connection};

use super::{Backend, Manifest, ManifestRow};
use crate::cache_dir::Modes;
use crate::error::{Error, Result, Status};
use crate::fork;
use crate::lock::file::FileLock;
use crate::lock::{poll, Held};
use crate::request::{Request, Wait};
use crate::sync::lock;

pub(crate) const SCHEMA_VERSION: i32 = 1;
pub(crate) const DATABASE_FILE: &str = "manifest.duckdb";
const LOCK_FILE: &str = "manifest.lock";
/// After writing a batch, a writer leaves `manifest.lock` alone at least this
/// long, and at least as long as the batch took (up to [`MAX_YIELD_AFTER_BATCH`]):
/// other processes poll for it, and a writer that took it back at once,
/// batch after batch, would starve them (their writers, `open`, `flush` and
/// `close`). Yielding as long as it held the lock keeps it free at least half
/// the time however slow the machine (a loaded host, valgrind).
const MIN_YIELD_AFTER_BATCH: Duration = Duration::from_millis(10);
const MAX_YIELD_AFTER_BATCH: Duration = Duration::from_secs(1);
/// `flush` and `close` wait for the writer at least this long, whatever the
/// store's wait timeout: a timeout chosen for waits on other processes'
/// computes (say 300 ms) should not make a busy host drop its own rows. A
/// writer held up longer is blocked by a stopped process, which is reported.
const MIN_FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Change {
    Upsert(ManifestRow),
    /// Adds a row unless the entry has one (re-indexing a file).
    InsertMissing(ManifestRow),
    Remove(String),
    /// Removes a row only if it still has this creation time.
    RemoveIfCreated(String, i64),
    Flush(Sender<Result<()>>),
}

pub(crate) struct DuckDbManifest {
    db_path: PathBuf,
    modes: Modes,
    lock_path: PathBuf,
    timeout: Duration,
    changes: Mutex<Option<Sender<Change>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Cancelling it makes the writer give up waiting for `manifest.lock`.
    writer_request: Request,
    /// The rows last read, for scans: an open costs tens of milliseconds.
    snapshot: Mutex<Option<Snapshot>>,
    /// Changes sent to the writer and not yet applied (or dropped), so that
    /// a scan skips the flush, a round trip to the writer thread, when
    /// there is nothing to wait for.
    unapplied: Arc<AtomicUsize>,
}

/// Rows read under `manifest.lock`, and what the database files looked
/// like then.
struct Snapshot {
    version: DbVersion,
    read_at: SystemTime,
    rows: Arc<Vec<ManifestRow>>,
}

/// A file's identity and last change; `None` when it does not exist.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct FileVersion {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

/// The database file and its write-ahead log.
type DbVersion = [Option<FileVersion>; 2];

/// A snapshot is reused only when its files were last changed this long
/// before it was read: file times tick coarsely (a clock tick, or a second
/// on some file systems), so a write right after the read might leave them
/// unchanged (git's "racily clean" problem).
const SNAPSHOT_SETTLED_AFTER: Duration = Duration::from_secs(1);

fn db_version(db_path: &Path) -> Result<DbVersion> {
    use std::os::unix::fs::MetadataExt;
    let of = |path: PathBuf| match std::fs::metadata(&path) {
        Ok(m) => Ok(Some(FileVersion {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot stat {}", path.display()), e)),
    };
    let mut wal = db_path.as_os_str().to_owned();
    wal.push(".wal");
    Ok([of(db_path.to_path_buf())?, of(PathBuf::from(wal))?])
}

impl Snapshot {
    /// Whether these rows are still the database's: its files are unchanged
    /// and were already settled when the rows were read.
    fn current(&self, now: &DbVersion) -> bool {
        let settled = |ns: i128| {
            let read_at = self.read_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
            ns + (SNAPSHOT_SETTLED_AFTER.as_nanos() as i128) <= read_at
        };
        self.version == *now && now.iter().flatten().all(|f| settled(f.mtime_ns) && settled(f.ctime_ns))
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fstore_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fstore_entries (
    entry_id    VARCHAR PRIMARY KEY,
    feature_set VARCHAR NOT NULL,
    symbol      VARCHAR NOT NULL,
    start_date  DATE NOT NULL,
    end_date    DATE NOT NULL,
    config      VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    rows        UBIGINT NOT NULL,
    bytes       UBIGINT NOT NULL,
    checksum    VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
";

extern "C" {
    /// Defined next to DuckDB's static-extension registration (a static
    /// initializer). Nothing else references that object, so a program that
    /// links libfstore.a would drop it, and with it DuckDB's built-in
    /// functions; referencing this symbol keeps it.
    static duckdb_rs_static_extension_autoregister: std::ffi::c_int;
}

fn keep_static_extensions() {
    // SAFETY: a plain int defined by the bundled DuckDB build.
    let _ = unsafe { std::ptr::read_volatile(&raw const duckdb_rs_static_extension_autoregister) };
}

impl DuckDbManifest {
    /// Creates the schema if needed (waiting at most `timeout` for
    /// `manifest.lock`) and starts the writer thread.
    pub fn open(cache_dir: &Path, timeout: Duration, modes: Modes) -> Result<Self> {
        keep_static_extensions();
        let db_path = cache_dir.join(DATABASE_FILE);
        let lock_path = cache_dir.join(LOCK_FILE);
        let request = Request::new();
        let wait = Wait::new(&request, timeout);
        with_connection(&db_path, &lock_path, modes, Access::Write, &wait, |conn| migrate(conn, &db_path))?;
        let (tx, rx) = mpsc::channel();
        let writer_request = Request::new();
        let (db, lk, stop) = (db_path.clone(), lock_path.clone(), writer_request.clone());
        let unapplied = Arc::new(AtomicUsize::new(0));
        let applied = Arc::clone(&unapplied);
        let writer = std::thread::Builder::new()
            .name("fstore-manifest".into())
            .spawn(move || write_loop(&db, &lk, modes, &stop, rx, &applied))
            .map_err(|e| Error::io("cannot start the manifest writer thread", e))?;
        Ok(DuckDbManifest {
            db_path,
            lock_path,
            modes,
            timeout,
            changes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            writer_request,
            snapshot: Mutex::new(None),
            unapplied,
        })
    }

    fn send(&self, change: Change) -> Result<()> {
        let edit = usize::from(!matches!(change, Change::Flush(_)));
        match lock(&self.changes).as_ref() {
            Some(tx) => {
                self.unapplied.fetch_add(edit, Ordering::AcqRel);
                tx.send(change).map_err(|_| {
                    self.unapplied.fetch_sub(edit, Ordering::AcqRel);
                    Error::invalid_state("the manifest writer has stopped")
                })
            }
            None => Err(Error::invalid_state("the manifest is closed")),
        }
    }
}

impl Manifest for DuckDbManifest {
    fn backend(&self) -> Backend {
        Backend::DuckDb
    }

    fn record(&self, row: &ManifestRow, _held: Option<&mut dyn Held>) -> Result<()> {
        self.send(Change::Upsert(row.clone()))
    }

    fn forget(&self, entry_id: &str, _held: Option<&mut dyn Held>) -> Result<()> {
        self.send(Change::Remove(entry_id.to_string()))
    }

    fn forget_unchanged(&self, rows: &[(String, i64)]) -> Result<()> {
        rows.iter().try_for_each(|(id, created)| self.send(Change::RemoveIfCreated(id.clone(), *created)))
    }

    fn find(&self, _entry_id: &str, _held: Option<&mut dyn Held>) -> Result<Option<ManifestRow>> {
        Ok(None) // rows lag behind files here; the file is checked instead
    }

    fn insert_missing(&self, rows: &[ManifestRow]) -> Result<u64> {
        rows.iter().try_for_each(|row| self.send(Change::InsertMissing(row.clone())))?;
        Ok(rows.len() as u64)
    }

    fn rows(&self) -> Result<Vec<ManifestRow>> {
        self.flush()?;
        let request = Request::new();
        let wait = Wait::new(&request, self.timeout);
        with_connection(&self.db_path, &self.lock_path, self.modes, Access::Read, &wait, read_rows)
    }

    /// After a flush, the last snapshot while the database files are
    /// unchanged since (a `stat` of each), else the rows read again.
    fn rows_shared(&self) -> Result<Arc<Vec<ManifestRow>>> {
        if self.unapplied.load(Ordering::Acquire) > 0 {
            self.flush()?;
        }
        let now = db_version(&self.db_path)?;
        if let Some(snapshot) = lock(&self.snapshot).as_ref().filter(|s| s.current(&now)) {
            return Ok(Arc::clone(&snapshot.rows));
        }
        let request = Request::new();
        let wait = Wait::new(&request, self.timeout);
        // Under the shared lock no writer changes the files: the version
        // names exactly these rows.
        let snapshot = with_connection(&self.db_path, &self.lock_path, self.modes, Access::Read, &wait, |conn| {
            let version = db_version(&self.db_path)?;
            let read_at = SystemTime::now();
            Ok(Snapshot { version, read_at, rows: Arc::new(read_rows(conn)?) })
        })?;
        let rows = Arc::clone(&snapshot.rows);
        *lock(&self.snapshot) = Some(snapshot);
        Ok(rows)
    }

    /// Waits (at most the store's wait timeout, and at least [`MIN_FLUSH_WAIT`])
    /// until every change sent so far is in the database; reports the first
    /// failure since the last flush.
    fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Change::Flush(tx))?;
        let bound = self.timeout.max(MIN_FLUSH_WAIT);
        match rx.recv_timeout(bound) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(Error::new(
                Status::Timeout,
                format!(
                    "gave up after {} ms waiting for the manifest writer: is {} held by a stopped process?",
                    bound.as_millis(),
                    self.lock_path.display()
                ),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(Error::invalid_state("the manifest writer has stopped")),
        }
    }

    /// Flushes (bounded) and stops the writer. Changes it could not apply in
    /// time are dropped, and reported: their entry files stay, and
    /// maintenance re-indexes them.
    fn shutdown(&self) -> Result<()> {
        let flushed = if lock(&self.changes).is_some() { self.flush() } else { Ok(()) };
        if flushed.is_err() {
            self.writer_request.cancel();
        }
        lock(&self.changes).take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
        flushed
    }
}

fn migrate(conn: &Connection, db_path: &Path) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    let version: Option<i32> = conn.query_row("SELECT max(version) FROM fstore_schema_version", [], |row| row.get(0))?;
    match version {
        None => {
            conn.execute("INSERT INTO fstore_schema_version VALUES (?)", params![SCHEMA_VERSION])?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(Error::database(format!(
                "manifest {} has schema version {v}; this libfstore knows up to {SCHEMA_VERSION}",
                db_path.display()
            )))
        }
        Some(_) => {}
    }
    Ok(())
}

fn write_loop(db_path: &Path, lock_path: &Path, modes: Modes, stop: &Request, changes: Receiver<Change>, unapplied: &AtomicUsize) {
    let mut failure: Option<Error> = None;
    // No deadline of its own: it waits for manifest.lock until shut down.
    let wait = Wait::new(stop, Duration::MAX);
    let mut carried = Vec::new();
    loop {
        if carried.is_empty() {
            match changes.recv() {
                Ok(first) => carried.push(first),
                Err(_) => return,
            }
        }
        let mut batch = std::mem::take(&mut carried);
        batch.extend(changes.try_iter());
        let (edits, flushes): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| !matches!(c, Change::Flush(_)));
        let started = Instant::now();
        if !edits.is_empty() {
            if let Err(e) = with_connection(db_path, lock_path, modes, Access::Write, &wait, |conn| apply(conn, &edits)) {
                log::warn!("libfstore: manifest update failed ({} changes dropped): {e}", edits.len());
                failure.get_or_insert(e);
            }
            unapplied.fetch_sub(edits.len(), Ordering::AcqRel);
        }
        for flush in flushes {
            if let Change::Flush(reply) = flush {
                let _ = reply.send(failure.take().map_or(Ok(()), Err));
            }
        }
        if !edits.is_empty() {
            let pause = started.elapsed().clamp(MIN_YIELD_AFTER_BATCH, MAX_YIELD_AFTER_BATCH);
            carried = pause_collecting(&changes, pause, &mut failure);
        }
    }
}

/// Leaves `manifest.lock` alone for `pause`, collecting the changes that
/// arrive meanwhile. A flush that arrives before any new edit is answered at
/// once (everything it waits for is written), so `flush` and `close` are not
/// held up by the pause.
fn pause_collecting(changes: &Receiver<Change>, pause: Duration, failure: &mut Option<Error>) -> Vec<Change> {
    let until = Instant::now() + pause;
    let mut carried = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match changes.recv_timeout(left) {
            Ok(Change::Flush(reply)) if carried.is_empty() => {
                let _ = reply.send(failure.take().map_or(Ok(()), Err));
            }
            Ok(change) => carried.push(change),
            // Timed out, or the store is gone: the caller's loop sees which.
            Err(_) => break,
        }
    }
    carried
}

/// Applies a batch in one transaction, set-based: one statement per kind of
/// change, whatever the batch's size (DuckDB runs a whole query per
/// statement, milliseconds for a single-row insert). If that fails, applies
/// the batch change by change, so that one bad row never costs the others.
/// Returns the first failure.
fn apply(conn: &Connection, edits: &[Change]) -> Result<()> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let batch = match fold(edits) {
        Some(changes) => apply_batch(conn, &changes),
        None => edits.iter().try_for_each(|edit| apply_one(conn, edit)),
    };
    match batch {
        Ok(()) => return conn.execute_batch("COMMIT").map_err(Error::from),
        Err(e) => {
            log::warn!("libfstore: manifest batch failed, applying it change by change: {e}");
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    let mut first = None;
    for edit in edits {
        if let Err(e) = apply_one(conn, edit) {
            log::warn!("libfstore: manifest change failed: {e}");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// What a batch does to one entry's row, once its changes are combined in order.
enum Net {
    Upsert(ManifestRow),
    InsertMissing(ManifestRow),
    Remove,
    RemoveIfCreated(i64),
}

/// Combines a batch's changes per entry, in order, into one net change
/// each; `None` when the net effect would depend on the rows already stored
/// (a conditional removal next to an insert-if-missing: rare), which the
/// change-by-change path handles.
fn fold(edits: &[Change]) -> Option<Vec<(String, Net)>> {
    let mut order: Vec<String> = Vec::new();
    let mut net: std::collections::HashMap<String, Net> = std::collections::HashMap::new();
    for edit in edits {
        let (id, change) = match edit {
            Change::Upsert(r) => (r.entry_id.clone(), Net::Upsert(r.clone())),
            Change::InsertMissing(r) => (r.entry_id.clone(), Net::InsertMissing(r.clone())),
            Change::Remove(id) => (id.clone(), Net::Remove),
            Change::RemoveIfCreated(id, created) => (id.clone(), Net::RemoveIfCreated(*created)),
            Change::Flush(_) => continue,
        };
        let combined = match (net.remove(&id), change) {
            (None, change) => {
                order.push(id.clone());
                change
            }
            (Some(_), change @ (Net::Upsert(_) | Net::Remove)) => change,
            (Some(Net::Upsert(r)), Net::InsertMissing(_)) => Net::Upsert(r),
            (Some(Net::Upsert(r)), Net::RemoveIfCreated(c)) => {
                if r.created_at_us == c {
                    Net::Remove
                } else {
                    Net::Upsert(r)
                }
            }
            (Some(Net::Remove), Net::InsertMissing(r)) => Net::Upsert(r),
            (Some(Net::Remove), Net::RemoveIfCreated(_)) => Net::Remove,
            (Some(first @ Net::InsertMissing(_)), Net::InsertMissing(_)) => first,
            (Some(Net::InsertMissing(_) | Net::RemoveIfCreated(_)), Net::RemoveIfCreated(_) | Net::InsertMissing(_)) => {
                return None
            }
        };
        net.insert(id, combined);
    }
    Some(order.into_iter().map(|id| net.remove(&id).map(|n| (id, n)).expect("one net change per id")).collect())
}

fn apply_batch(conn: &Connection, changes: &[(String, Net)]) -> Result<()> {
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE fstore_batch_rows (
             entry_id VARCHAR, feature_set VARCHAR, symbol VARCHAR, start_day INTEGER, end_day INTEGER,
             config VARCHAR, path VARCHAR, rows UBIGINT, bytes UBIGINT, checksum VARCHAR, created_us BIGINT,
             missing_only BOOLEAN);
         CREATE OR REPLACE TEMP TABLE fstore_batch_removals (entry_id VARCHAR, created_us BIGINT);",
    )?;
    {
        let mut rows = conn.appender_to_catalog_and_db("fstore_batch_rows", "temp", "main")?;
        let mut removals = conn.appender_to_catalog_and_db("fstore_batch_removals", "temp", "main")?;
        for (id, change) in changes {
            match change {
                Net::Upsert(r) | Net::InsertMissing(r) => rows.append_row(params![
                    r.entry_id, r.feature_set, r.symbol, r.start_date, r.end_date, r.config, r.path, r.rows, r.bytes,
                    r.checksum, r.created_at_us, matches!(change, Net::InsertMissing(_))
                ])?,
                Net::Remove => removals.append_row(params![id, None::<i64>])?,
                Net::RemoveIfCreated(created) => removals.append_row(params![id, created])?,
            }
        }
        rows.flush()?;
        removals.flush()?;
    }
    conn.execute_batch(
        "DELETE FROM fstore_entries e USING fstore_batch_removals d
             WHERE e.entry_id = d.entry_id AND (d.created_us IS NULL OR epoch_us(e.created_at) = d.created_us);
         DELETE FROM fstore_entries WHERE entry_id IN (SELECT entry_id FROM fstore_batch_rows WHERE NOT missing_only);
         INSERT OR IGNORE INTO fstore_entries
             SELECT entry_id, feature_set, symbol, DATE '1970-01-01' + start_day, DATE '1970-01-01' + end_day,
                    config, path, rows, bytes, checksum, make_timestamp(created_us)
             FROM fstore_batch_rows;
         DROP TABLE fstore_batch_rows;
         DROP TABLE fstore_batch_removals;",
    )?;
    Ok(())
}

const UPSERT: &str = "INSERT OR REPLACE INTO fstore_entries VALUES
    (?, ?, ?, DATE '1970-01-01' + CAST(? AS INTEGER), DATE '1970-01-01' + CAST(? AS INTEGER),
     ?, ?, ?, ?, ?, make_timestamp(CAST(? AS BIGINT)))";

fn apply_one(conn: &Connection, edit: &Change) -> Result<()> {
    let insert = |sql: &str, r: &ManifestRow| -> Result<()> {
        conn.prepare_cached(sql)?.execute(params![
            r.entry_id, r.feature_set, r.symbol, r.start_date, r.end_date, r.config, r.path, r.rows, r.bytes,
            r.checksum, r.created_at_us
        ])?;
        Ok(())
    };
    match edit {
        Change::Upsert(r) => insert(UPSERT, r)?,
        Change::InsertMissing(r) => insert(&UPSERT.replace("INSERT OR REPLACE", "INSERT OR IGNORE"), r)?,
        Change::Remove(id) => {
            conn.prepare_cached("DELETE FROM fstore_entries WHERE entry_id = ?")?.execute(params![id])?;
        }
        Change::RemoveIfCreated(id, created_at_us) => {
            conn.prepare_cached("DELETE FROM fstore_entries WHERE entry_id = ? AND epoch_us(created_at) = ?")?
                .execute(params![id, created_at_us])?;
        }
        Change::Flush(_) => {}
    }
    Ok(())
}

fn read_rows(conn: &Connection) -> Result<Vec<ManifestRow>> {
    let mut stmt = conn.prepare(
        "SELECT entry_id, feature_set, symbol,
                CAST(start_date - DATE '1970-01-01' AS INTEGER), CAST(end_date - DATE '1970-01-01' AS INTEGER),
                config, path, rows, bytes, checksum, epoch_us(created_at)
         FROM fstore_entries ORDER BY feature_set, symbol, start_date, end_date, entry_id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(ManifestRow {
            entry_id: row.get(0)?,
            feature_set: row.get(1)?,
            symbol: row.get(2)?,
            start_date: row.get(3)?,
            end_date: row.get(4)?,
            config: row.get(5)?,
            path: row.get(6)?,
            rows: row.get(7)?,
            bytes: row.get(8)?,
            checksum: row.get(9)?,
            created_at_us: row.get(10)?,
        })
    })?;
    rows.collect::<Result<Vec<_>, _>>().map_err(Error::from)
}

/// For migration: under the manifest's exclusive lock (waiting at most
/// `timeout`), copies the database to a timestamped backup beside it and
/// reads every row. `Ok(None)` when the cache directory has no embedded
/// manifest.
pub(crate) fn copy_rows_out_of(
    cache_dir: &Path,
    timeout: Duration,
    modes: Modes,
) -> Result<Option<(Vec<ManifestRow>, PathBuf)>> {
    let db_path = cache_dir.join(DATABASE_FILE);
    if !db_path.exists() {
        return Ok(None);
    }
    let lock_path = cache_dir.join(LOCK_FILE);
    let request = Request::new();
    let wait = Wait::new(&request, timeout);
    let _lock = lock_manifest(&lock_path, modes, libc::LOCK_EX, &wait)?;
    let backup = cache_dir.join(format!("{DATABASE_FILE}.backup-{}", super::now_us()));
    std::fs::copy(&db_path, &backup)
        .and_then(|_| modes.apply_to_file_path(&backup))
        .map_err(|e| Error::io(format!("cannot back up {} to {}", db_path.display(), backup.display()), e))?;
    let _quiet = fork::quiet();
    let conn = open_connection(&db_path, Access::Read)?;
    let rows = read_rows(&conn)?;
    Ok(Some((rows, backup)))
}

/// For rolling a migration back: under the manifest's exclusive lock
/// (waiting at most `timeout`), sets the current DuckDB file aside as
/// `manifest.duckdb.before-rollback-<time>`, puts a copy of `backup` in its
/// place (an empty manifest without one), and applies what `decide` makes of
/// the restored rows: rows to upsert and entry ids to remove. Returns the
/// file set aside, if there was one.
pub(crate) fn restore_for_rollback(
    cache_dir: &Path,
    backup: Option<&Path>,
    timeout: Duration,
    modes: Modes,
    decide: impl FnOnce(&[ManifestRow]) -> Result<(Vec<ManifestRow>, Vec<String>)>,
) -> Result<Option<PathBuf>> {
    keep_static_extensions();
    let db_path = cache_dir.join(DATABASE_FILE);
    let request = Request::new();
    let wait = Wait::new(&request, timeout);
    let _lock = lock_manifest(&cache_dir.join(LOCK_FILE), modes, libc::LOCK_EX, &wait)?;
    let set_aside = db_path.exists().then(|| cache_dir.join(format!("{DATABASE_FILE}.before-rollback-{}", super::now_us())));
    if let Some(aside) = &set_aside {
        // The write-ahead log, if any, belongs to the file set aside: it goes with it.
        let with_wal = |p: &Path| {
            let mut wal = p.as_os_str().to_owned();
            wal.push(".wal");
            PathBuf::from(wal)
        };
        for (from, to) in [(with_wal(&db_path), with_wal(aside)), (db_path.clone(), aside.clone())] {
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("cannot set {} aside as {}", from.display(), to.display()), e))
                }
                _ => {}
            }
        }
    }
    if let Some(backup) = backup {
        std::fs::copy(backup, &db_path)
            .and_then(|_| modes.apply_to_file_path(&db_path))
            .map_err(|e| Error::io(format!("cannot restore {} to {}", backup.display(), db_path.display()), e))?;
    }
    let _quiet = fork::quiet();
    let existed = existing(&db_path);
    let conn = open_connection(&db_path, Access::Write)?;
    migrate(&conn, &db_path)?;
    let (upserts, removals) = decide(&read_rows(&conn)?)?;
    let changes: Vec<Change> =
        removals.into_iter().map(Change::Remove).chain(upserts.into_iter().map(Change::Upsert)).collect();
    apply(&conn, &changes)?;
    drop(conn);
    tighten_created(&db_path, modes, existed)?;
    Ok(set_aside)
}

#[derive(Copy, Clone, PartialEq)]
enum Access {
    Read,
    Write,
}

fn lock_manifest(lock_path: &Path, modes: Modes, mode: libc::c_int, wait: &Wait) -> Result<FileLock> {
    let what = || format!("{} (held by another process)", lock_path.display());
    poll(wait, &what, || FileLock::try_take(lock_path, mode, modes))
}

/// The database file and its write-ahead log.
fn db_files(db_path: &Path) -> [PathBuf; 2] {
    let mut wal = db_path.as_os_str().to_owned();
    wal.push(".wal");
    [db_path.to_path_buf(), PathBuf::from(wal)]
}

/// Which of the database's files exist now.
fn existing(db_path: &Path) -> [bool; 2] {
    db_files(db_path).map(|p| p.exists())
}

/// Gives the files DuckDB created since `existed` was taken (with the
/// umask's modes) the cache's modes: under the manifest's lock, by the
/// process that created them, the only one allowed to. Files that were
/// there before are the user's to change.
fn tighten_created(db_path: &Path, modes: Modes, existed: [bool; 2]) -> Result<()> {
    for (path, existed) in db_files(db_path).into_iter().zip(existed) {
        if !existed {
            modes.apply_to_file_path(&path).map_err(|e| Error::io(format!("cannot set the mode of {}", path.display()), e))?;
        }
    }
    Ok(())
}

/// Opens the database under the manifest's OS lock (shared to read,
/// exclusive to write; waiting within `wait`), runs `f`, and closes it
/// again. No fork splits the time DuckDB is open.
fn with_connection<T>(
    db_path: &Path,
    lock_path: &Path,
    modes: Modes,
    access: Access,
    wait: &Wait,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let mode = if access == Access::Write { libc::LOCK_EX } else { libc::LOCK_SH };
    let lock = lock_manifest(lock_path, modes, mode, wait)?;
    let existed = existing(db_path);
    let quiet = fork::quiet();
    let conn = open_connection(db_path, access)?;
    let result = f(&conn);
    drop(conn);
    drop(quiet);
    let result = match (result, access) {
        (Ok(value), Access::Write) => tighten_created(db_path, modes, existed).map(|_| value),
        (result, _) => result,
    };
    drop(lock); // after DuckDB let go of the file
    result
}

fn open_connection(db_path: &Path, access: Access) -> Result<Connection> {
    let config = Config::default()
        .access_mode(if access == Access::Write { AccessMode::ReadWrite } else { AccessMode::ReadOnly })
        .and_then(|c| c.threads(1))?;
    Connection::open_with_flags(db_path, config)
        .map_err(|e| Error::database(format!("cannot open manifest {}: {e}", db_path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, created_at_us: i64) -> ManifestRow {
        ManifestRow {
            entry_id: format!("{id:064x}"),
            feature_set: "f".into(),
            symbol: "S".into(),
            start_date: 1,
            end_date: 2,
            config: "{}".into(),
            path: format!("data/{id}"),
            rows: 1,
            bytes: 1,
            checksum: "c".into(),
            created_at_us,
        }
    }

    fn stored(db: &Path) -> Vec<(String, String, i64)> {
        let conn = open_connection(db, Access::Read).unwrap();
        read_rows(&conn).unwrap().into_iter().map(|r| (r.entry_id, r.path, r.created_at_us)).collect()
    }

    fn with_db(f: impl FnOnce(&Path, &Connection)) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DATABASE_FILE);
        let conn = open_connection(&db, Access::Write).unwrap();
        migrate(&conn, &db).unwrap();
        f(&db, &conn);
    }

    /// The set-based batch must do exactly what the changes do one by one.
    #[test]
    fn a_batch_applies_like_its_changes_in_order() {
        let scripts: Vec<Vec<Change>> = vec![
            vec![Change::Upsert(row(1, 10)), Change::Upsert(row(1, 11)), Change::Upsert(row(2, 20))],
            vec![Change::Upsert(row(1, 10)), Change::Remove(row(1, 0).entry_id), Change::InsertMissing(row(1, 12))],
            vec![Change::Upsert(row(1, 10)), Change::RemoveIfCreated(row(1, 0).entry_id, 10)],
            vec![Change::Upsert(row(1, 10)), Change::RemoveIfCreated(row(1, 0).entry_id, 9)],
            vec![Change::InsertMissing(row(3, 30)), Change::InsertMissing(row(3, 31)), Change::InsertMissing(row(4, 40))],
            vec![Change::InsertMissing(row(5, 50)), Change::RemoveIfCreated(row(5, 0).entry_id, 50)],
            vec![Change::Remove(row(6, 0).entry_id), Change::RemoveIfCreated(row(7, 0).entry_id, 70)],
        ];
        let existing = [row(1, 5), row(3, 3), row(5, 50), row(6, 60), row(7, 70)];
        for script in scripts {
            let (mut batched, mut one_by_one) = (Vec::new(), Vec::new());
            for (fold_it, out) in [(true, &mut batched), (false, &mut one_by_one)] {
                with_db(|db, conn| {
                    for r in &existing {
                        apply_one(conn, &Change::Upsert(r.clone())).unwrap();
                    }
                    if fold_it {
                        apply(conn, &script).unwrap();
                    } else {
                        script.iter().for_each(|c| apply_one(conn, c).unwrap());
                    }
                    *out = stored(db);
                });
            }
            assert_eq!(batched, one_by_one);
        }
    }

    /// One row that cannot be stored costs no other row of its batch.
    #[test]
    fn a_bad_row_costs_no_other_row() {
        with_db(|db, conn| {
            let mut bad = row(2, 20);
            bad.end_date = i32::MAX;
            let batch = [Change::Upsert(row(1, 10)), Change::Upsert(bad), Change::Upsert(row(3, 30))];
            let err = apply(conn, &batch).unwrap_err();
            assert!(err.message().contains("ut of"), "{err}");
            let ids: Vec<String> = stored(db).into_iter().map(|r| r.0).collect();
            assert_eq!(ids, [row(1, 0).entry_id, row(3, 0).entry_id]);
        });
    }

    #[test]
    fn a_large_batch_is_stored_whole() {
        with_db(|db, conn| {
            let batch: Vec<Change> = (0..2000).map(|i| Change::Upsert(row(i, i as i64))).collect();
            let started = std::time::Instant::now();
            apply(conn, &batch).unwrap();
            eprintln!("2000-row batch applied in {:?}", started.elapsed());
            assert_eq!(stored(db).len(), 2000);
        });
    }
}
