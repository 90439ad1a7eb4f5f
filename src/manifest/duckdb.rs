//! The embedded manifest: a DuckDB file in the cache directory.
//!
//! DuckDB lets one process at a time open a database file read-write, and an
//! open costs tens of milliseconds. So no process keeps it open: a background
//! thread per store batches pending changes, takes an OS lock on
//! `manifest.lock`, opens the database, applies the batch in one transaction
//! and closes it again. Computing callers never wait for the manifest.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use duckdb::{params, AccessMode, Config, Connection};

use super::{Backend, Manifest, ManifestRow};
use crate::error::{Error, Result};
use crate::sync::lock;

pub(crate) const SCHEMA_VERSION: i32 = 1;
pub(crate) const DATABASE_FILE: &str = "manifest.duckdb";
const LOCK_FILE: &str = "manifest.lock";

enum Change {
    Upsert(ManifestRow),
    Remove(Vec<String>),
    Flush(Sender<Result<()>>),
}

pub(crate) struct DuckDbManifest {
    db_path: PathBuf,
    lock_path: PathBuf,
    changes: Mutex<Option<Sender<Change>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
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
    /// Creates the schema if needed and starts the writer thread.
    pub fn open(cache_dir: &Path) -> Result<Self> {
        keep_static_extensions();
        let db_path = cache_dir.join(DATABASE_FILE);
        let lock_path = cache_dir.join(LOCK_FILE);
        with_connection(&db_path, &lock_path, Access::Write, |conn| migrate(conn, &db_path))?;
        let (tx, rx) = mpsc::channel();
        let (db, lk) = (db_path.clone(), lock_path.clone());
        let writer = std::thread::Builder::new()
            .name("fstore-manifest".into())
            .spawn(move || write_loop(&db, &lk, rx))
            .map_err(|e| Error::io("cannot start the manifest writer thread", e))?;
        Ok(DuckDbManifest { db_path, lock_path, changes: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)) })
    }

    fn send(&self, change: Change) -> Result<()> {
        match lock(&self.changes).as_ref() {
            Some(tx) => tx.send(change).map_err(|_| Error::invalid_state("the manifest writer has stopped")),
            None => Err(Error::invalid_state("the manifest is closed")),
        }
    }
}

impl Manifest for DuckDbManifest {
    fn backend(&self) -> Backend {
        Backend::DuckDb
    }

    fn record(&self, row: ManifestRow) -> Result<()> {
        self.send(Change::Upsert(row))
    }

    fn remove(&self, entry_ids: &[String]) -> Result<()> {
        self.send(Change::Remove(entry_ids.to_vec()))
    }

    fn rows(&self) -> Result<Vec<ManifestRow>> {
        self.flush()?;
        with_connection(&self.db_path, &self.lock_path, Access::Read, read_rows)
    }

    /// Waits until every change sent so far is in the database; reports the
    /// first failure since the last flush.
    fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Change::Flush(tx))?;
        rx.recv().unwrap_or_else(|_| Err(Error::invalid_state("the manifest writer has stopped")))
    }

    fn shutdown(&self) -> Result<()> {
        let flushed = if lock(&self.changes).is_some() { self.flush() } else { Ok(()) };
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

fn write_loop(db_path: &Path, lock_path: &Path, changes: Receiver<Change>) {
    let mut failure: Option<Error> = None;
    while let Ok(first) = changes.recv() {
        let mut batch = vec![first];
        batch.extend(changes.try_iter());
        let (edits, flushes): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| !matches!(c, Change::Flush(_)));
        if !edits.is_empty() {
            if let Err(e) = with_connection(db_path, lock_path, Access::Write, |conn| apply(conn, &edits)) {
                log::warn!("libfstore: manifest update failed: {e}");
                failure.get_or_insert(e);
            }
        }
        for flush in flushes {
            if let Change::Flush(reply) = flush {
                let _ = reply.send(failure.take().map_or(Ok(()), Err));
            }
        }
    }
}

fn apply(conn: &Connection, edits: &[Change]) -> Result<()> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = (|| {
        let mut upsert = conn.prepare(
            "INSERT OR REPLACE INTO fstore_entries VALUES
             (?, ?, ?, DATE '1970-01-01' + CAST(? AS INTEGER), DATE '1970-01-01' + CAST(? AS INTEGER),
              ?, ?, ?, ?, ?, make_timestamp(CAST(? AS BIGINT)))",
        )?;
        let mut remove = conn.prepare("DELETE FROM fstore_entries WHERE entry_id = ?")?;
        for edit in edits {
            match edit {
                Change::Upsert(r) => {
                    upsert.execute(params![
                        r.entry_id, r.feature_set, r.symbol, r.start_date, r.end_date, r.config, r.path, r.rows,
                        r.bytes, r.checksum, r.created_at_us
                    ])?;
                }
                Change::Remove(ids) => {
                    for id in ids {
                        remove.execute(params![id])?;
                    }
                }
                Change::Flush(_) => {}
            }
        }
        Ok::<_, Error>(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(Error::from),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
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

/// For migration: under the manifest's exclusive lock, copies the database
/// to a timestamped backup beside it and reads every row. `Ok(None)` when the
/// cache directory has no embedded manifest.
pub(crate) fn copy_rows_out_of(cache_dir: &Path) -> Result<Option<(Vec<ManifestRow>, PathBuf)>> {
    let db_path = cache_dir.join(DATABASE_FILE);
    if !db_path.exists() {
        return Ok(None);
    }
    let lock_path = cache_dir.join(LOCK_FILE);
    let _lock = lock_file(&lock_path, libc::LOCK_EX)?;
    let backup = cache_dir.join(format!("{DATABASE_FILE}.backup-{}", super::now_us()));
    std::fs::copy(&db_path, &backup)
        .map_err(|e| Error::io(format!("cannot back up {} to {}", db_path.display(), backup.display()), e))?;
    let conn = open_connection(&db_path, Access::Read)?;
    let rows = read_rows(&conn)?;
    Ok(Some((rows, backup)))
}

#[derive(Copy, Clone, PartialEq)]
enum Access {
    Read,
    Write,
}

/// Opens the database under the manifest's OS lock (shared to read,
/// exclusive to write), runs `f`, and closes it again.
fn with_connection<T>(db_path: &Path, lock_path: &Path, access: Access, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let lock = lock_file(lock_path, if access == Access::Write { libc::LOCK_EX } else { libc::LOCK_SH })?;
    let conn = open_connection(db_path, access)?;
    let result = f(&conn);
    drop(conn);
    drop(lock); // closing releases the lock, after DuckDB let go of the file
    result
}

fn open_connection(db_path: &Path, access: Access) -> Result<Connection> {
    let config = Config::default()
        .access_mode(if access == Access::Write { AccessMode::ReadWrite } else { AccessMode::ReadOnly })
        .and_then(|c| c.threads(1))?;
    Connection::open_with_flags(db_path, config)
        .map_err(|e| Error::database(format!("cannot open manifest {}: {e}", db_path.display())))
}

fn lock_file(path: &Path, operation: libc::c_int) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io(format!("cannot lock {}", path.display()), err));
        }
    }
}
