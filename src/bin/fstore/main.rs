//! fstore: inspect and operate a libfstore feature cache.
//!
//! Options are the store's own (`-o name=value`, repeatable), with the same
//! environment fallbacks (FSTORE_CACHE_DIR, PG_MANIFEST_DSN, PG_HOST, ...).
//! Every command prints a table for people or, with `--json`, one JSON
//! document for scripts; a failure prints one line on stderr,
//! `fstore: <reason> (<status>)`, and exits non-zero.

mod args;
mod dates;
mod entries;
mod keys;
mod metrics;
mod migration;
mod output;
mod postgres;
mod stats;
mod upkeep;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use fstore::{Error, Options, Result, Status, Store};

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print(); // `fstore` alone: the help, on stderr
            return ExitCode::from(2);
        }
        Err(e) => {
            // clap's own report spans lines (usage, hints): keep its first.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            eprintln!("fstore: {first} (see fstore --help) ({})", Status::InvalidArgument.name());
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let reason = e.to_string().replace('\n', " ");
            eprintln!("fstore: {reason} ({})", e.status().name());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let options = options(&cli.options)?;
    let json = cli.json;
    match cli.command {
        Command::Stats => with_store(options, |s| stats::stats(s, json)),
        Command::Ls(filter) => with_store(options, |s| entries::ls(s, &filter, json)),
        Command::Show(key) => with_store(options, |s| entries::show(s, &key, json)),
        Command::Get { key, output, format } => with_store(options, |s| entries::get(s, &key, &output, format, json)),
        Command::Invalidate(key) => with_store(options, |s| entries::invalidate(s, &key, json)),
        Command::Gc { max_age, grace, dry_run, verify } => with_store(options, |s| upkeep::gc(s, max_age, grace, dry_run, verify, json)),
        Command::Verify => with_store(options, |s| upkeep::verify(s, json)),
        Command::Locks { symbols } => with_store(options, |s| postgres::locks(s, &symbols, json)),
        Command::Pool => with_store(options, |s| postgres::pool(s, json)),
        Command::Metrics { listen } => with_store(options, |s| metrics::metrics(s, listen.as_deref(), json)),
        Command::Migrate { schema, manifest } => migration::migrate(&options, schema, manifest, json),
        Command::Rollback => migration::rollback(&options, json),
        Command::Rebind => migration::rebind(&options, json),
    }
}

/// Runs `command` on the store of an existing cache directory (inspecting a
/// mistyped path must not create and bind a new cache there), then closes
/// it, so that a manifest change that failed is reported.
fn with_store(options: Options, command: impl FnOnce(&Store) -> Result<()>) -> Result<()> {
    let dir = options.resolved_cache_dir()?;
    if !dir.is_dir() {
        return Err(Error::not_found(format!(
            "cache directory {} does not exist (set -o cache_dir=... or FSTORE_CACHE_DIR)",
            dir.display()
        )));
    }
    let store = Store::open(options)?;
    let result = command(&store);
    let closed = store.close();
    result.and(closed)
}

fn options(pairs: &[String]) -> Result<Options> {
    let mut options = Options::default();
    for pair in pairs {
        let (name, value) =
            pair.split_once('=').ok_or_else(|| Error::invalid_argument(format!("option '{pair}' is not NAME=VALUE")))?;
        options.set(name, value)?;
    }
    Ok(options)
}

