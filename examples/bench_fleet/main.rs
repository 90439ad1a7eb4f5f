//! The fleet benchmark: libfstore against the designs it replaces, measured
//! in the same run on the same server, through real processes.
//!
//!     cargo run --release --example bench_fleet -- --runs 3 [--postgres DSN] [--python PYTHON]
//!     cargo run --release --example bench_fleet -- --smoke [--postgres DSN] [--python PYTHON]
//!
//! Scenarios, for each mode (embedded; PostgreSQL with `--postgres`):
//! - herd: N processes released together on one missing key (compute 200 ms),
//!   through the C API: waiter latency beyond the compute, and computes;
//! - original: the original scenario, 32 processes, one symbol, 4 keys of
//!   50 ms, round after round: cold-phase p99, steady-state throughput and
//!   p99; also through Python (`--python`);
//! - spread: W processes on W symbols, cold and steady;
//! - hot: hits only, memory cache on, throughput from 2 threads;
//! - scale: hit and miss latency with 1k, 100k and 1M manifest rows, and
//!   the time list, summary and maintenance take at 1M;
//! - memory: idle resident memory of an open store.
//!
//! With PostgreSQL, herd and original also run the baselines (`baseline/`):
//! the original design, the row-lock design and no coordination.
//! Prints each run's figures, then the median of the runs with ratios
//! against the baselines and the targets.

mod baseline;
mod capi;
mod data;
mod fleet;
mod herd;
mod hot;
mod memory;
mod report;
mod rounds;
mod scale;
mod setup;
mod stats;
mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use setup::Mode;
use stats::Figures;
use worker::{Design, PythonWorker, WorkerSpec};

#[derive(Parser, Clone, Debug)]
#[command(about = "The fleet benchmark: libfstore against the designs it replaces")]
pub struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Runs of each scenario; figures are the median of the runs.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// A quick check that every scenario works (tiny sizes, one run, < 30 s).
    #[arg(long)]
    pub smoke: bool,
    /// Also run with a PostgreSQL manifest and advisory locks on this server,
    /// and run the baselines there.
    #[arg(long)]
    pub postgres: Option<String>,
    /// A Python interpreter with pyarrow, for the original scenario through
    /// the Python binding (skipped without it).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Modes to run: embedded, postgres (needs --postgres).
    #[arg(long, value_delimiter = ',', default_values_t = ["embedded", "postgres"].map(String::from))]
    pub modes: Vec<String>,
    /// Scenarios to run (default: all).
    #[arg(long, value_delimiter = ',', default_values_t = ["herd", "original", "spread", "hot", "scale", "memory"].map(String::from))]
    pub scenarios: Vec<String>,
    #[arg(long, value_delimiter = ',', default_values_t = [32, 64])]
    pub herd_sizes: Vec<usize>,
    #[arg(long, default_value_t = 200)]
    pub herd_compute_ms: u64,
    /// Processes of the original scenario.
    #[arg(long, default_value_t = 32)]
    pub workers: usize,
    /// Keys (date ranges) per symbol.
    #[arg(long, default_value_t = 4)]
    pub keys: usize,
    /// How long the steady state lasts, after the cold round over the keys.
    #[arg(long, default_value_t = 1500)]
    pub steady_ms: u64,
    #[arg(long, default_value_t = 50)]
    pub compute_ms: u64,
    #[arg(long, default_value_t = 8)]
    pub spread_workers: usize,
    #[arg(long, default_value_t = 2)]
    pub hot_threads: usize,
    /// How long the hot threads run.
    #[arg(long, default_value_t = 1000)]
    pub hot_ms: u64,
    /// Single-thread hits timed in the hot scenario.
    #[arg(long, default_value_t = 2000)]
    pub hot_calls: usize,
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 100_000, 1_000_000])]
    pub scale_sizes: Vec<usize>,
    /// Hits timed at each scale size.
    #[arg(long, default_value_t = 2000)]
    pub scale_calls: usize,
    /// Rows without files that the timed real maintenance run removes.
    #[arg(long, default_value_t = 100_000)]
    pub maintenance_rows: usize,
    /// Misses timed at each scale size.
    #[arg(long, default_value_t = 20)]
    pub scale_misses: usize,
}

#[derive(Subcommand, Clone, Debug)]
enum Role {
    /// One worker process (started by the benchmark).
    #[command(hide = true)]
    Worker(WorkerSpec),
    /// The memory probe (started by the benchmark).
    #[command(hide = true)]
    Rss(WorkerSpec),
}

/// What every scenario needs.
pub struct Context {
    pub args: Args,
    pub exe: PathBuf,
    pub python: Option<PythonWorker>,
}

impl Context {
    /// The bound on one run's workers.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(if self.args.smoke { 60 } else { 300 })
    }
}

fn main() {
    let mut args = Args::parse();
    match &args.role {
        Some(Role::Worker(spec)) => worker::main(spec),
        Some(Role::Rss(spec)) => {
            if let Err(why) = memory::probe(spec) {
                println!("ERROR {why}");
                std::process::exit(1);
            }
            return;
        }
        None => {}
    }
    if args.smoke {
        args.runs = 1;
        args.herd_sizes = vec![6];
        args.herd_compute_ms = 100;
        args.workers = 4;
        args.steady_ms = 200;
        args.spread_workers = 3;
        args.hot_ms = 150;
        args.hot_calls = 200;
        args.scale_sizes = vec![1_000, 5_000];
        args.scale_calls = 100;
        args.scale_misses = 5;
        args.maintenance_rows = 1_000;
    }
    let started = Instant::now();
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let python = args.python.as_ref().map(|interpreter| python_worker(interpreter, &exe));
    let ctx = Context { args: args.clone(), exe, python };
    report::header(&ctx);
    let mut figures = Figures::default();
    let mut modes = vec![Mode { name: "embedded", dsn: None }];
    if let Some(dsn) = &args.postgres {
        modes.push(Mode { name: "postgres", dsn: Some(dsn.clone()) });
    }
    modes.retain(|m| args.modes.iter().any(|wanted| wanted == m.name));
    let mut failures = Vec::new();
    let mut attempt = |what: String, result: Result<(), String>| {
        if let Err(why) = result {
            println!("  FAILED {what}: {why}");
            failures.push(format!("{what}: {why}"));
        }
    };
    for run in 1..=args.runs {
        println!("run {run} of {}", args.runs);
        for mode in &modes {
            let designs = designs(&ctx, mode);
            if ctx.wants("herd") {
                for &n in &args.herd_sizes {
                    for &design in designs.iter().filter(|d| **d != Design::Python) {
                        attempt(format!("herd {n} {} {}", mode.name, design.label()), herd::run(&ctx, mode, design, n, &mut figures));
                    }
                }
            }
            if ctx.wants("original") {
                for &design in &designs {
                    let shape = rounds::Shape::OneSymbol;
                    attempt(format!("original {} {}", mode.name, design.label()), rounds::run(&ctx, mode, design, shape, &mut figures));
                }
            }
            if ctx.wants("spread") {
                let shape = rounds::Shape::Spread;
                attempt(format!("spread {}", mode.name), rounds::run(&ctx, mode, Design::Libfstore, shape, &mut figures));
            }
            if ctx.wants("hot") {
                attempt(format!("hot {}", mode.name), hot::run(&ctx, mode, &mut figures));
            }
            // Once: they measure sizes and memory, not contention.
            if run == 1 && ctx.wants("scale") {
                attempt(format!("scale {}", mode.name), scale::run(&ctx, mode, &mut figures));
            }
            if run == 1 && ctx.wants("memory") {
                attempt(format!("memory {}", mode.name), memory::run(&ctx, mode, &mut figures));
            }
        }
    }
    report::summary(&ctx, &figures);
    println!("\nwall time {:.0} s; load average at the end {}", started.elapsed().as_secs_f64(), report::load_average());
    if !failures.is_empty() {
        println!("{} failure(s):", failures.len());
        for failure in &failures {
            println!("  {failure}");
        }
        std::process::exit(1);
    }
}

impl Context {
    pub fn wants(&self, scenario: &str) -> bool {
        self.args.scenarios.iter().any(|s| s == scenario)
    }
}

/// libfstore (and through Python when an interpreter is given); with
/// PostgreSQL, the baselines too.
fn designs(ctx: &Context, mode: &Mode) -> Vec<Design> {
    let mut designs = vec![Design::Libfstore];
    if ctx.python.is_some() {
        designs.push(Design::Python);
    }
    if mode.dsn.is_some() {
        designs.extend([Design::Original, Design::RowLock, Design::Uncoordinated]);
    }
    designs
}

/// The worker script and the package beside this repository's sources, and
/// the libfstore.so built with this benchmark (or `FSTORE_LIB_DIR`'s).
fn python_worker(interpreter: &std::path::Path, exe: &std::path::Path) -> PythonWorker {
    let package_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bindings/python");
    let lib_dir = std::env::var_os("FSTORE_LIB_DIR")
        .map(PathBuf::from)
        .or_else(|| exe.parent().and_then(|examples| examples.parent()).map(PathBuf::from))
        .unwrap_or_default();
    PythonWorker {
        interpreter: interpreter.to_path_buf(),
        script: package_dir.join("bench/fleet_worker.py"),
        package_dir,
        library: lib_dir.join("libfstore.so"),
    }
}
