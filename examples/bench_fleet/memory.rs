//! Idle memory: the resident set (VmRSS) of a process that has opened a
//! store and served one entry, against the same program before it opened
//! anything (the baseline process). Measured in a child process so that
//! nothing the benchmark itself holds counts.

use std::process::Command;

use crate::capi::{CStore, Compute};
use crate::data::BenchKey;
use crate::setup::{Mode, RunDir};
use crate::stats::{Figures, Unit};
use crate::worker::{Design, Task, WorkerSpec};
use crate::Context;

pub fn run(ctx: &Context, mode: &Mode, figures: &mut Figures) -> Result<(), String> {
    let run = RunDir::new(Design::Libfstore, mode)?;
    let spec = run.spec(Design::Libfstore, Task::Herd, "AAPL", 0);
    let mut command = Command::new(&ctx.exe);
    command.arg("rss").args(spec.command(&ctx.exe, None, 0).get_args().skip(1));
    let output = command.output().map_err(|e| format!("cannot run the memory probe: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.starts_with("RSS ")).ok_or_else(|| format!("the memory probe failed: {text}"))?;
    let kib: Vec<f64> = line.split(' ').skip(1).filter_map(|v| v.parse().ok()).collect();
    let [before, after] = kib[..] else { return Err(format!("malformed memory probe line '{line}'")) };
    let name = |what: &str| format!("memory | {} | libfstore | {what}", mode.name);
    figures.add(&name("idle RSS of an open store"), Unit::MiB, after / 1024.0);
    figures.add(&name("idle RSS minus the baseline process's"), Unit::MiB, (after - before) / 1024.0);
    println!("  memory {}: RSS {:.1} MiB with an open store, {:.1} MiB before opening it", mode.name, after / 1024.0, before / 1024.0);
    Ok(())
}

/// The probe process: prints `RSS <before KiB> <after KiB>`.
pub fn probe(spec: &WorkerSpec) -> Result<(), String> {
    let before = vm_rss_kib()?;
    let store = CStore::open(&spec.store_options())?;
    let key = BenchKey::range(&spec.symbol, 0);
    store.get_or_compute(&key, &mut Compute::new(0))?;
    store.get(&key)?.ok_or("the entry is gone")?;
    std::thread::sleep(std::time::Duration::from_millis(200)); // let the manifest writer settle
    println!("RSS {before} {}", vm_rss_kib()?);
    Ok(())
}

fn vm_rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_string())
}
