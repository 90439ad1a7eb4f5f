//! What every measured run gets: a fresh cache directory, and for
//! PostgreSQL a schema of its own, created before the workers start (so
//! that they measure coordination, not DDL) and dropped after.

use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

use crate::baseline::{self, original, row_lock};
use crate::capi::CStore;
use crate::worker::{Design, Task, WorkerSpec};

/// A way of running libfstore: embedded, or with PostgreSQL at `dsn`.
#[derive(Clone)]
pub struct Mode {
    pub name: &'static str,
    pub dsn: Option<String>,
}

pub struct RunDir {
    pub dir: TempDir,
    pub schema: String,
    dsn: Option<String>,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl RunDir {
    /// Prepares a run of `design`; the baselines need PostgreSQL.
    pub fn new(design: Design, mode: &Mode) -> Result<RunDir, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let schema = format!("bench_fleet_{}_{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
        let run = RunDir { dir, schema, dsn: mode.dsn.clone() };
        let dsn = mode.dsn.as_deref();
        match (design, dsn) {
            (Design::Libfstore | Design::Python, _) => {
                drop(CStore::open(&run.spec(design, Task::Herd, "X", 0).store_options())?);
            }
            (Design::Original, Some(dsn)) => baseline::create_table(dsn, &run.schema, original::COLUMNS)?,
            (Design::RowLock, Some(dsn)) => baseline::create_table(dsn, &run.schema, row_lock::COLUMNS)?,
            (Design::Uncoordinated, _) => {}
            (_, None) => return Err(format!("the {} needs PostgreSQL (--postgres DSN)", design.label())),
        }
        Ok(run)
    }

    /// A worker spec on this run's directory and schema.
    pub fn spec(&self, design: Design, task: Task, symbol: &str, compute_ms: u64) -> WorkerSpec {
        WorkerSpec {
            design,
            task,
            cache_dir: self.dir.path().to_path_buf(),
            dsn: self.dsn.clone().unwrap_or_default(),
            schema: self.schema.clone(),
            symbol: symbol.to_string(),
            keys: 1,
            steady_ms: 0,
            compute_ms,
            memory_cache_mb: 64,
            index: 0,
            symbol_per_worker: false,
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Some(dsn) = &self.dsn {
            if let Err(why) = baseline::drop_schema(dsn, &self.schema) {
                eprintln!("warning: {why}");
            }
        }
    }
}
