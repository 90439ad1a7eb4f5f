//! libfstore: a feature cache for ML training fleets.
//!
//! Workers ask for the features of a [`Key`]; a hit returns the stored Arrow
//! data, a miss runs the caller's compute exactly once per entry across the
//! threads and processes that share the cache, and everyone else waits for
//! that result. Entries are zstd Parquet files, published atomically and
//! self-verifying; a DuckDB manifest indexes them.
//!
//! The C API (`include/fstore.h`) is a thin layer over this crate in [`ffi`].

pub mod admin;
mod binding;
mod cache_dir;
mod clock_cache;
mod data;
mod error;
mod flight;
mod fork;
mod jcs;
mod key;
mod key_cache;
mod lock;
pub mod maintenance;
mod manifest;
mod memory_cache;
mod metrics;
mod migration;
mod options;
mod pg;
mod request;
mod scan;
mod storage;
mod store;
mod sync;

pub mod ffi;

#[cfg(test)]
mod test_support;

pub use arrow;
pub use data::Data;
pub use error::{Error, Result, Status};
pub use key::{lock_key, Key, MAX_DATE, MAX_NAME_BYTES, MIN_DATE};
pub use manifest::{Backend, ManifestRow};
pub use migration::{migrate_manifest, migrate_schema, rebind, MigrationReport};
pub use options::{LockGranularity, ManifestChoice, Options, PostgresOptions, OPTION_NAMES};
pub use pg::{LockStats, PoolStats};
pub use request::Request;
pub use scan::{MissingEntry, Scan, ScanRequest, END_DATE_COLUMN, START_DATE_COLUMN, SYMBOL_COLUMN};
pub use store::{Stats, Store};

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Canonical JSON (RFC 8785) of `config`, as used in entry ids.
pub fn canonical_config(config: &str) -> Result<String> {
    jcs::canonicalize(config)
}
