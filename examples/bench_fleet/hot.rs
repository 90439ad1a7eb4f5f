//! Hot: steady-state hits only, memory cache on, through the C API: hits
//! per second from `threads` threads sharing one store, and the latency of
//! one hit from one thread (both read the whole 252 x 16 entry).

use std::time::{Duration, Instant};

use crate::capi::{CStore, Compute};
use crate::data::BenchKey;
use crate::setup::{Mode, RunDir};
use crate::stats::{percentile, Figures, Unit};
use crate::worker::{Design, Task};
use crate::Context;

pub fn run(ctx: &Context, mode: &Mode, figures: &mut Figures) -> Result<(), String> {
    let run = RunDir::new(Design::Libfstore, mode)?;
    let store = CStore::open(&run.spec(Design::Libfstore, Task::Rounds, "AAPL", 0).store_options())?;
    let key = BenchKey::range("AAPL", 0);
    store.get_or_compute(&key, &mut Compute::new(0))?;
    let mut one = Vec::with_capacity(ctx.args.hot_calls);
    for _ in 0..ctx.args.hot_calls {
        let t = Instant::now();
        store.get(&key)?.ok_or("the hot entry is gone")?;
        one.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let threads = ctx.args.hot_threads;
    let duration = Duration::from_millis(ctx.args.hot_ms);
    let started = Instant::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let mut n = 0u64;
                    while started.elapsed() < duration {
                        store.get(&key)?.ok_or("the hot entry is gone")?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("a hot thread panicked".into()))).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut total = 0;
    for count in counts {
        total += count?;
    }
    let rate = total as f64 / elapsed;
    let name = |what: &str| format!("hot | {} | libfstore | {what}", mode.name);
    figures.add(&name(&format!("hits/s, {threads} threads")), Unit::PerSecond, rate);
    figures.add(&name("hit p50, 1 thread"), Unit::Millis, percentile(&one, 0.5));
    figures.add(&name("hit p99, 1 thread"), Unit::Millis, percentile(&one, 0.99));
    println!("  hot {}: {rate:.0} hits/s from {threads} threads; one hit p50 {:.1} us", mode.name, percentile(&one, 0.5) * 1e3);
    Ok(())
}
