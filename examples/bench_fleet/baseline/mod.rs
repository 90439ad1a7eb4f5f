//! The designs libfstore replaces, rebuilt to be measured in the same run
//! on the same server: each gets or computes an entry the way that design
//! did. They share how entries are stored (a zstd Parquet file per entry,
//! written with DuckDB's `COPY` and read with DuckDB's `read_parquet`) and
//! differ in how workers coordinate. Their tables live in schemas of their
//! own, never libfstore's. They run in Rust, faster than the Python original
//! they stand for, so comparing libfstore's Python workers with them
//! favours the baselines.

pub mod original;
pub mod row_lock;
pub mod uncoordinated;

use std::path::{Path, PathBuf};

use duckdb::Connection;
use sha2::{Digest, Sha256};

use crate::data::{BenchKey, COLUMNS};

/// Entry ids of the baselines: SHA-256 of the key's text.
pub fn entry_id(key: &BenchKey) -> String {
    Sha256::digest(key.text().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Entry files through DuckDB, as the original design read and wrote them.
pub struct EntryFiles {
    duck: Connection,
    dir: PathBuf,
}

impl EntryFiles {
    pub fn open(cache_dir: &Path) -> Result<Self, String> {
        let dir = cache_dir.join("baseline");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let duck = Connection::open_in_memory().map_err(|e| format!("cannot open DuckDB: {e}"))?;
        Ok(EntryFiles { duck, dir })
    }

    pub fn path(&self, entry_id: &str) -> PathBuf {
        self.dir.join(format!("{entry_id}.parquet"))
    }

    /// Reads the whole entry into Arrow; returns its rows.
    pub fn read(&self, path: &str) -> Result<usize, String> {
        let mut statement =
            self.duck.prepare_cached("SELECT * FROM read_parquet(?)").map_err(|e| format!("cannot prepare a read: {e}"))?;
        let batches = statement.query_arrow([path]).map_err(|e| format!("cannot read {path}: {e}"))?;
        Ok(batches.map(|b| b.num_rows()).sum())
    }

    /// Writes the features of `key` to `path` (a temporary file renamed into
    /// place, so that a reader never sees half a file).
    pub fn write(&self, key: &BenchKey, path: &Path) -> Result<(), String> {
        let temp = path.with_extension(format!("{}.tmp", std::process::id()));
        let columns: Vec<String> = (0..COLUMNS).map(|c| format!("sin(d * {}) AS f{c}", c + 1)).collect();
        let sql = format!(
            "COPY (SELECT DATE '1970-01-01' + d::INTEGER AS date, {} FROM range({}, {}) t(d))
             TO '{}' (FORMAT parquet, COMPRESSION zstd)",
            columns.join(", "),
            key.start_date,
            key.end_date + 1,
            temp.display()
        );
        self.duck.execute_batch(&sql).map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
        std::fs::rename(&temp, path).map_err(|e| format!("cannot publish {}: {e}", path.display()))
    }
}

/// A connection to the baselines' server.
pub fn connect(dsn: &str) -> Result<postgres::Client, String> {
    postgres::Client::connect(dsn, postgres::NoTls).map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
}

/// Creates `schema` with the table `entries` of the given columns.
pub fn create_table(dsn: &str, schema: &str, columns: &str) -> Result<(), String> {
    connect(dsn)?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; CREATE TABLE {schema}.entries ({columns});"))
        .map_err(|e| format!("cannot create {schema}.entries: {e}"))
}

pub fn drop_schema(dsn: &str, schema: &str) -> Result<(), String> {
    connect(dsn)?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .map_err(|e| format!("cannot drop schema {schema}: {e}"))
}

pub fn db_error(what: &str) -> impl Fn(postgres::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}
