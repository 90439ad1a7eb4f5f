//! The command line: global options, commands and their arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "fstore", version, about = "Inspect and operate a libfstore feature cache")]
pub struct Cli {
    /// A store option, as the library takes it, e.g. -o cache_dir=/data/features
    /// -o manifest=postgres (repeatable; the environment fills in the rest:
    /// FSTORE_CACHE_DIR, PG_MANIFEST_DSN, PG_HOST, ...)
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE", global = true)]
    pub options: Vec<String>,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Backend, warnings, and entries, rows and bytes per feature set and symbol.
    Stats,
    /// List entries, with sizes and ages.
    Ls(Filter),
    /// One entry: key, file, rows, checksum and schema (verified).
    Show(KeyArgs),
    /// Write an entry's data to a file (Parquet, Arrow IPC or CSV).
    Get {
        #[command(flatten)]
        key: KeyArgs,
        /// Where to write it.
        #[arg(long, short = 'O', value_name = "FILE")]
        output: std::path::PathBuf,
        /// The file's format; by default from its extension (.parquet, .arrow/.ipc/.feather, .csv).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Remove an entry (waits for a compute of it in progress).
    Invalidate(KeyArgs),
    /// Expire old entries and repair drift between files and the manifest.
    Gc {
        /// Remove entries created longer ago than this (e.g. 30d, 12h, 90m, 3600s).
        #[arg(long, value_name = "AGE", value_parser = crate::dates::parse_duration)]
        max_age: Option<std::time::Duration>,
        /// Never touch files modified more recently than this.
        #[arg(long, value_name = "AGE", default_value = "1h", value_parser = crate::dates::parse_duration)]
        grace: std::time::Duration,
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Also re-read every listed entry and remove those that fail
        /// verification (reads the whole cache).
        #[arg(long)]
        verify: bool,
    },
    /// Re-read every entry against its checksums and report the bad ones
    /// (exits non-zero when there is any).
    Verify,
    /// Create or upgrade the PostgreSQL schema, and/or move the embedded
    /// manifest into PostgreSQL (keeping a backup of the DuckDB file).
    Migrate {
        /// Create or upgrade the PostgreSQL schema (for workers without DDL rights).
        #[arg(long)]
        schema: bool,
        /// Copy the embedded manifest into PostgreSQL and bind the cache directory to it.
        #[arg(long)]
        manifest: bool,
    },
    /// Move the cache directory back to the embedded manifest: restores the
    /// migration's backup and adds every entry published since.
    Rollback,
    /// Advisory locks held and waited for in PostgreSQL, per symbol where known.
    Locks {
        /// Also name the locks of these symbols (the manifest's are named already).
        #[arg(long = "symbol", value_name = "SYMBOL")]
        symbols: Vec<String>,
    },
    /// Connection pool and the server's libfstore connections.
    Pool,
    /// The store's metrics in the Prometheus text format: printed, or
    /// served over HTTP at /metrics with --listen.
    Metrics {
        /// Serve them at http://ADDR/metrics (e.g. 127.0.0.1:9464) until stopped.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Bind the cache directory to these options' coordination settings
    /// (manifest backend and server, lock granularity and namespace).
    Rebind,
}

/// Which entries `ls` lists; dates are YYYY-MM-DD.
#[derive(Args)]
pub struct Filter {
    #[arg(long)]
    pub feature_set: Option<String>,
    #[arg(long)]
    pub symbol: Option<String>,
    /// Only entries that end on or after this date.
    #[arg(long, value_name = "DATE", value_parser = crate::dates::parse_date)]
    pub from: Option<i32>,
    /// Only entries that start on or before this date.
    #[arg(long, value_name = "DATE", value_parser = crate::dates::parse_date)]
    pub to: Option<i32>,
}

/// An entry: its id (or a unique prefix of it, as `ls` shows), or its key.
#[derive(Args)]
pub struct KeyArgs {
    /// The entry id, or a unique prefix of it (at least 6 hex digits).
    pub id: Option<String>,
    #[arg(long)]
    pub feature_set: Option<String>,
    #[arg(long)]
    pub symbol: Option<String>,
    #[arg(long, value_name = "DATE", value_parser = crate::dates::parse_date)]
    pub start: Option<i32>,
    #[arg(long, value_name = "DATE", value_parser = crate::dates::parse_date)]
    pub end: Option<i32>,
    /// The config JSON (any spelling: it is canonicalised).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub config: String,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Parquet,
    Arrow,
    Csv,
}
