//! One worker process: opens its design's store, waits for the start
//! signal, runs its task and reports each call (see `fleet` for the lines).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::baseline::{original::Original, row_lock::RowLock, uncoordinated::Uncoordinated};
use crate::capi::{CStore, Compute};
use crate::data::BenchKey;
use crate::fleet;

/// Gets an entry, computing it on a miss, the way one design does.
pub trait Access {
    /// Returns the rows read or computed.
    fn get_or_compute(&mut self, key: &BenchKey, compute: &mut Compute) -> Result<usize, String>;
}

impl Access for CStore {
    fn get_or_compute(&mut self, key: &BenchKey, compute: &mut Compute) -> Result<usize, String> {
        CStore::get_or_compute(self, key, compute)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Design {
    /// libfstore through its C API.
    Libfstore,
    /// libfstore through the Python binding (a separate worker script).
    Python,
    Original,
    RowLock,
    Uncoordinated,
}

impl Design {
    pub fn label(self) -> &'static str {
        match self {
            Design::Libfstore => "libfstore",
            Design::Python => "libfstore (Python)",
            Design::Original => "original design",
            Design::RowLock => "row-lock design",
            Design::Uncoordinated => "no coordination",
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Task {
    /// One call on the first key.
    Herd,
    /// Passes over `keys` keys, each in the worker's own order: the first
    /// is the cold phase, the rest (for `steady_ms`) the steady state.
    Rounds,
}

/// Everything a worker needs; the same for every worker of a run but the index.
#[derive(clap::Args, Clone, Debug)]
pub struct WorkerSpec {
    #[arg(long, value_enum)]
    pub design: Design,
    #[arg(long, value_enum)]
    pub task: Task,
    #[arg(long)]
    pub cache_dir: PathBuf,
    /// PostgreSQL (libfstore's manifest and locks, or a baseline's); empty: embedded.
    #[arg(long, default_value = "")]
    pub dsn: String,
    /// libfstore's or the baseline's schema.
    #[arg(long, default_value = "")]
    pub schema: String,
    #[arg(long)]
    pub symbol: String,
    #[arg(long, default_value_t = 1)]
    pub keys: usize,
    /// How long the steady state lasts after the cold round.
    #[arg(long, default_value_t = 0)]
    pub steady_ms: u64,
    #[arg(long)]
    pub compute_ms: u64,
    #[arg(long, default_value_t = 64)]
    pub memory_cache_mb: u64,
    #[arg(long, default_value_t = 0)]
    pub index: u64,
    /// Worker i asks for symbol `<symbol><i>` (the spread scenario).
    #[arg(long)]
    pub symbol_per_worker: bool,
}

/// How to run the Python worker script.
pub struct PythonWorker {
    pub interpreter: PathBuf,
    pub script: PathBuf,
    /// Where the `fstore` package is.
    pub package_dir: PathBuf,
    /// libfstore.so
    pub library: PathBuf,
}

impl WorkerSpec {
    /// The command that runs worker `index` of this spec.
    pub fn command(&self, exe: &Path, python: Option<&PythonWorker>, index: usize) -> Command {
        let mut command = match (self.design, python) {
            (Design::Python, Some(python)) => {
                let mut c = Command::new(&python.interpreter);
                c.arg(&python.script).env("PYTHONPATH", &python.package_dir).env("FSTORE_LIBRARY", &python.library);
                c
            }
            _ => {
                let mut c = Command::new(exe);
                c.arg("worker").arg("--design").arg(self.design_arg());
                c
            }
        };
        command.arg("--task").arg(if self.task == Task::Herd { "herd" } else { "rounds" });
        command.arg("--cache-dir").arg(&self.cache_dir).args(["--dsn", &self.dsn, "--schema", &self.schema]);
        command.args(["--symbol", &self.symbol, "--keys", &self.keys.to_string(), "--steady-ms", &self.steady_ms.to_string()]);
        command.args(["--compute-ms", &self.compute_ms.to_string(), "--memory-cache-mb", &self.memory_cache_mb.to_string()]);
        command.args(["--index", &index.to_string()]);
        if self.symbol_per_worker {
            command.arg("--symbol-per-worker");
        }
        command
    }

    fn design_arg(&self) -> &'static str {
        match self.design {
            Design::Libfstore | Design::Python => "libfstore",
            Design::Original => "original",
            Design::RowLock => "row-lock",
            Design::Uncoordinated => "uncoordinated",
        }
    }

    /// libfstore's options for this spec.
    pub fn store_options(&self) -> Vec<(&'static str, String)> {
        let mut options =
            vec![("cache_dir", self.cache_dir.display().to_string()), ("memory_cache_mb", self.memory_cache_mb.to_string())];
        if self.dsn.is_empty() {
            options.push(("manifest", "duckdb".into()));
        } else {
            options.push(("manifest", "postgres".into()));
            options.push(("postgres.dsn", self.dsn.clone()));
            options.push(("postgres.schema", self.schema.clone()));
            options.push(("postgres.pool_min", "1".into()));
        }
        options
    }

    fn open(&self) -> Result<Box<dyn Access>, String> {
        Ok(match self.design {
            Design::Libfstore | Design::Python => Box::new(CStore::open(&self.store_options())?),
            Design::Original => Box::new(Original::open(&self.dsn, &self.schema, &self.cache_dir)?),
            Design::RowLock => Box::new(RowLock::open(&self.dsn, &self.schema, &self.cache_dir)?),
            Design::Uncoordinated => Box::new(Uncoordinated::open(&self.cache_dir)?),
        })
    }
}

/// The worker process's main: reports an error as an `ERROR` line and a failing exit.
pub fn main(spec: &WorkerSpec) -> ! {
    match work(spec) {
        Ok(lines) => {
            print!("{lines}");
            std::process::exit(0)
        }
        Err(why) => {
            println!("ERROR {}", why.replace('\n', " "));
            std::process::exit(1)
        }
    }
}

fn work(spec: &WorkerSpec) -> Result<String, String> {
    let mut access = spec.open()?;
    let symbol = if spec.symbol_per_worker { format!("{}{}", spec.symbol, spec.index) } else { spec.symbol.clone() };
    let keys: Vec<BenchKey> = (0..spec.keys.max(1)).map(|i| BenchKey::range(&symbol, i)).collect();
    let mut compute = Compute::new(spec.compute_ms);
    let mut lines = String::new();
    fleet::await_start();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut random = 0x9E37_79B9_7F4A_7C15u64 ^ (spec.index + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut steady_until = None;
    for round in 0.. {
        match (spec.task, round, steady_until) {
            (Task::Herd, 1.., _) => break,
            (Task::Rounds, 1, _) => steady_until = Some(Instant::now() + Duration::from_millis(spec.steady_ms)),
            (Task::Rounds, 2.., Some(until)) if Instant::now() >= until => break,
            _ => {}
        }
        if spec.task == Task::Rounds {
            shuffle(&mut order, &mut random);
        }
        let phase = match (spec.task, round) {
            (Task::Herd, _) => "herd",
            (Task::Rounds, 0) => "cold",
            _ => "warm",
        };
        for &i in &order {
            let cpu_start = if spec.task == Task::Herd { cpu_ns() } else { 0 };
            let start = fleet::now_ns();
            let rows = access.get_or_compute(&keys[i], &mut compute)?;
            let end = fleet::now_ns();
            if spec.task == Task::Herd {
                let _ = writeln!(lines, "CPU {}", cpu_ns().saturating_sub(cpu_start));
            }
            if rows != (keys[i].end_date - keys[i].start_date + 1) as usize {
                return Err(format!("read {rows} rows of key {i}"));
            }
            let _ = writeln!(lines, "CALL {phase} {start} {end}");
            if spec.task == Task::Herd {
                break;
            }
        }
    }
    for (start, end) in &compute.spans {
        let _ = writeln!(lines, "COMPUTE {start} {end}");
    }
    drop(access); // closes the store (flushes its manifest) before reporting
    Ok(lines)
}

/// CPU time (user and system) this process has used, in nanoseconds.
fn cpu_ns() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (micros(usage.ru_utime) + micros(usage.ru_stime)) * 1000
}

/// Fisher-Yates with xorshift: each worker its own order, reproducibly.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        order.swap(i, (*state % (i as u64 + 1)) as usize);
    }
}
