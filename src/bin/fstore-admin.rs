//! fstore-admin: one-off operations on a feature cache: schema and manifest
//! migration, maintenance, and a summary of what is stored.
//!
//! Options are the store's own (`-o name=value`, repeatable), with the same
//! environment fallbacks (FSTORE_CACHE_DIR, PG_MANIFEST_DSN, PG_HOST, ...).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fstore::arrow::util::pretty::pretty_format_batches;
use fstore::maintenance::MaintainOptions;
use fstore::{Options, Store};

#[derive(Parser)]
#[command(name = "fstore-admin", version, about = "Operate a libfstore feature cache")]
struct Cli {
    /// A store option, e.g. -o cache_dir=/data/features -o manifest=postgres
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE", global = true)]
    options: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade the PostgreSQL schema (for workers without DDL rights).
    MigrateSchema,
    /// Copy the embedded DuckDB manifest into PostgreSQL (idempotent, backs it up first).
    MigrateManifest,
    /// Remove expired entries, rows without files, files without rows and stale temporary files.
    Maintain {
        /// Remove entries older than this many days.
        #[arg(long)]
        max_age_days: Option<f64>,
        /// Never remove files modified within this many seconds.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Entries, rows and bytes per feature set and symbol.
    Summary,
    /// Bind the cache directory to these options' coordination settings
    /// (manifest backend and server, lock granularity and namespace), for
    /// every process that uses it from now on.
    Rebind,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fstore-admin: {e} ({})", e.status().name());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> fstore::Result<()> {
    let mut options = Options::default();
    for pair in &cli.options {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| fstore::Error::invalid_argument(format!("option '{pair}' is not NAME=VALUE")))?;
        options.set(name, value)?;
    }
    match cli.command {
        Command::MigrateSchema => {
            let applied = fstore::migrate_schema(&options)?;
            println!("schema {}: applied versions {applied:?}", options.postgres.schema);
        }
        Command::MigrateManifest => {
            let r = fstore::migrate_manifest(&options)?;
            println!(
                "rows read {}, inserted {}, already present {}, backup {}",
                r.rows_read,
                r.inserted,
                r.already_present,
                r.backup.map(|b| b.display().to_string()).unwrap_or_else(|| "none (no embedded manifest)".into())
            );
        }
        Command::Maintain { max_age_days, grace_secs, dry_run } => {
            let store = Store::open(options)?;
            let max_age = max_age_days
                .map(|d| {
                    // Saturates: a huge age means never, not a panic or a wrap-around.
                    Duration::try_from_secs_f64(d * 86_400.0)
                        .or_else(|_| if d > 0.0 { Ok(Duration::MAX) } else { Err(()) })
                        .map_err(|_| fstore::Error::invalid_argument(format!("--max-age-days {d} is not a positive number")))
                })
                .transpose()?;
            let settings = MaintainOptions { max_age, grace: Duration::from_secs(grace_secs), dry_run };
            let r = store.maintain(&settings)?;
            println!(
                "{}expired {}, rows without file {}, corrupt files {}, temp files {}, re-indexed files {}, \
                 invalid rows {}, lock files {}, bytes freed {}",
                if dry_run { "dry run: " } else { "" },
                r.expired_entries,
                r.rows_without_file,
                r.corrupt_files,
                r.temp_files,
                r.reindexed_files,
                r.invalid_rows,
                r.lock_files,
                r.bytes_freed
            );
            store.close()?;
        }
        Command::Rebind => {
            println!("cache directory bound to {}", fstore::rebind(&options)?);
        }
        Command::Summary => {
            let store = Store::open(options)?;
            let summary = store.summary()?;
            let table = pretty_format_batches(&summary.batches).map_err(|e| fstore::Error::internal(e.to_string()))?;
            println!("manifest: {}\n{table}", store.manifest_backend().name());
            store.close()?;
        }
    }
    Ok(())
}
