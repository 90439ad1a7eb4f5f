//! The original design: every access, hit or miss, opens a transaction,
//! takes `pg_advisory_xact_lock` on the symbol's key (the same key function
//! as libfstore's, `fstore::lock_key`), looks the key up in a manifest
//! table, and reads the entry's Parquet file through DuckDB while holding
//! the lock. On a miss it computes, writes the file through DuckDB `COPY`,
//! inserts the manifest row and commits, which releases the lock. So every
//! worker of a symbol queues behind every other, hits included.

use std::path::Path;

use super::{db_error, entry_id, EntryFiles};
use crate::capi::Compute;
use crate::data::{BenchKey, DAYS};
use crate::worker::Access;

pub const COLUMNS: &str = "entry_id text PRIMARY KEY, path text NOT NULL";

pub struct Original {
    pg: postgres::Client,
    files: EntryFiles,
    table: String,
}

impl Original {
    pub fn open(dsn: &str, schema: &str, cache_dir: &Path) -> Result<Self, String> {
        Ok(Original { pg: super::connect(dsn)?, files: EntryFiles::open(cache_dir)?, table: format!("{schema}.entries") })
    }
}

impl Access for Original {
    fn get_or_compute(&mut self, key: &BenchKey, compute: &mut Compute) -> Result<usize, String> {
        let lock = fstore::lock_key(key.symbol()).map_err(|e| e.to_string())?;
        let id = entry_id(key);
        let mut tx = self.pg.transaction().map_err(db_error("cannot begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock]).map_err(db_error("cannot lock the symbol"))?;
        let row = tx
            .query_opt(format!("SELECT path FROM {} WHERE entry_id = $1", self.table).as_str(), &[&id])
            .map_err(db_error("cannot look the key up"))?;
        let rows = match row {
            Some(row) => self.files.read(row.get::<_, &str>(0))?,
            None => {
                compute.run();
                let path = self.files.path(&id);
                self.files.write(key, &path)?;
                let path = path.display().to_string();
                tx.execute(format!("INSERT INTO {} (entry_id, path) VALUES ($1, $2)", self.table).as_str(), &[&id, &path])
                    .map_err(db_error("cannot record the entry"))?;
                DAYS as usize
            }
        };
        tx.commit().map_err(db_error("cannot commit"))?;
        Ok(rows)
    }
}
