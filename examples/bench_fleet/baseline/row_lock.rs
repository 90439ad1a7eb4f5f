//! The row-lock design: every access locks the key's manifest row with
//! `SELECT ... FOR UPDATE` in a transaction, and reads the entry's file
//! through DuckDB while holding it. A miss inserts a placeholder row (not
//! ready), locks it, computes, writes the file through DuckDB `COPY`, marks
//! the row ready and commits. Workers of different keys do not queue behind
//! each other, but every access to one key does, hits included.

use std::path::Path;

use super::{db_error, entry_id, EntryFiles};
use crate::capi::Compute;
use crate::data::{BenchKey, DAYS};
use crate::worker::Access;

pub const COLUMNS: &str = "entry_id text PRIMARY KEY, path text NOT NULL, ready boolean NOT NULL";

pub struct RowLock {
    pg: postgres::Client,
    files: EntryFiles,
    table: String,
}

impl RowLock {
    pub fn open(dsn: &str, schema: &str, cache_dir: &Path) -> Result<Self, String> {
        Ok(RowLock { pg: super::connect(dsn)?, files: EntryFiles::open(cache_dir)?, table: format!("{schema}.entries") })
    }
}

impl Access for RowLock {
    fn get_or_compute(&mut self, key: &BenchKey, compute: &mut Compute) -> Result<usize, String> {
        let id = entry_id(key);
        let table = &self.table;
        let select = format!("SELECT path, ready FROM {table} WHERE entry_id = $1 FOR UPDATE");
        let mut tx = self.pg.transaction().map_err(db_error("cannot begin"))?;
        let mut row = tx.query_opt(select.as_str(), &[&id]).map_err(db_error("cannot lock the row"))?;
        if row.is_none() {
            // Waits for another placeholder of the key to commit, then adds nothing.
            tx.execute(format!("INSERT INTO {table} VALUES ($1, '', false) ON CONFLICT DO NOTHING").as_str(), &[&id])
                .map_err(db_error("cannot insert a placeholder"))?;
            row = tx.query_opt(select.as_str(), &[&id]).map_err(db_error("cannot lock the row"))?;
        }
        let row = row.ok_or_else(|| format!("the row of {id} vanished"))?;
        let rows = if row.get::<_, bool>(1) {
            self.files.read(row.get::<_, &str>(0))?
        } else {
            compute.run();
            let path = self.files.path(&id);
            self.files.write(key, &path)?;
            let path = path.display().to_string();
            tx.execute(format!("UPDATE {table} SET path = $2, ready = true WHERE entry_id = $1").as_str(), &[&id, &path])
                .map_err(db_error("cannot mark the entry ready"))?;
            DAYS as usize
        };
        tx.commit().map_err(db_error("cannot commit"))?;
        Ok(rows)
    }
}
