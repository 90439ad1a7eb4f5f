//! The original scenario and its spread variant: workers, released
//! together, each ask for every key of their symbol in their own order,
//! round after round. The first round is the cold phase (every key computed
//! once in the fleet while the others wait), the rest the steady state.
//!
//! - original: all workers on one symbol (`keys` date ranges);
//! - spread: worker i on symbol i alone, so nothing is shared.

use crate::fleet::{self, Report};
use crate::setup::{Mode, RunDir};
use crate::stats::{percentile, Figures, Unit};
use crate::worker::{Design, Task};
use crate::Context;

#[derive(Copy, Clone, PartialEq, Eq)]
pub enum Shape {
    OneSymbol,
    Spread,
}

pub fn run(ctx: &Context, mode: &Mode, design: Design, shape: Shape, figures: &mut Figures) -> Result<(), String> {
    let args = &ctx.args;
    let (scenario, workers) = match shape {
        Shape::OneSymbol => (format!("original {}x{}", args.workers, args.keys), args.workers),
        Shape::Spread => (format!("spread {}", args.spread_workers), args.spread_workers),
    };
    let run = RunDir::new(design, mode)?;
    let mut spec = run.spec(design, Task::Rounds, if shape == Shape::Spread { "S" } else { "AAPL" }, args.compute_ms);
    spec.keys = args.keys;
    spec.steady_ms = args.steady_ms;
    spec.symbol_per_worker = shape == Shape::Spread;
    let commands = (0..workers).map(|i| spec.command(&ctx.exe, ctx.python.as_ref(), i)).collect();
    let reports = fleet::run(commands, ctx.timeout())?;
    let cold: Vec<f64> = calls(&reports, "cold").iter().map(|c| c.millis()).collect();
    let warm = calls(&reports, "warm");
    let warm_ms: Vec<f64> = warm.iter().map(|c| c.millis()).collect();
    let throughput = steady_throughput(&reports, args.steady_ms);
    let computes: usize = reports.iter().map(|r| r.computes.len()).sum();
    let name = |what: &str| format!("{scenario} | {} | {} | {what}", mode.name, design.label());
    figures.add(&name("cold p50"), Unit::Millis, percentile(&cold, 0.5));
    figures.add(&name("cold p99"), Unit::Millis, percentile(&cold, 0.99));
    figures.add(&name("steady p50"), Unit::Millis, percentile(&warm_ms, 0.5));
    figures.add(&name("steady p99"), Unit::Millis, percentile(&warm_ms, 0.99));
    figures.add(&name("steady throughput"), Unit::PerSecond, throughput);
    figures.add(&name("computes"), Unit::Count, computes as f64);
    println!(
        "  {scenario} {} {}: computes {computes}, cold p99 {:.1} ms, steady p50 {:.3} ms p99 {:.3} ms, {:.0} calls/s",
        mode.name,
        design.label(),
        percentile(&cold, 0.99),
        percentile(&warm_ms, 0.5),
        percentile(&warm_ms, 0.99),
        throughput
    );
    let expected = match shape {
        Shape::OneSymbol => args.keys,
        Shape::Spread => args.keys * workers,
    };
    if design != Design::Uncoordinated && computes != expected {
        return Err(format!("{scenario} ({}, {}): {computes} computes, expected {expected}", mode.name, design.label()));
    }
    if warm.is_empty() {
        return Err(format!("{scenario} ({}, {}): no steady-state calls reported", mode.name, design.label()));
    }
    Ok(())
}

/// Calls per second while every worker was in its steady state: from the
/// last worker's first steady call to the first worker's last, so that the
/// stragglers of the cold phase do not count as idle time. When workers
/// spent so long in the cold phase that those windows hardly overlap (a
/// design that serialises every call), over all the steady calls instead.
fn steady_throughput(reports: &[Report], steady_ms: u64) -> f64 {
    let warm = calls(reports, "warm");
    let firsts: Vec<u64> = reports.iter().filter_map(|r| r.calls_in("warm").map(|c| c.start).min()).collect();
    let lasts: Vec<u64> = reports.iter().filter_map(|r| r.calls_in("warm").map(|c| c.end).max()).collect();
    let (Some(&last_first), Some(&first_last)) = (firsts.iter().max(), lasts.iter().min()) else { return 0.0 };
    let (Some(&first_first), Some(&last_last)) = (firsts.iter().min(), lasts.iter().max()) else { return 0.0 };
    let (from, to) = if first_last.saturating_sub(last_first) >= steady_ms * 1_000_000 / 2 {
        (last_first, first_last)
    } else {
        (first_first, last_last)
    };
    let inside = warm.iter().filter(|c| c.start >= from && c.end <= to).count();
    if to <= from {
        return 0.0;
    }
    inside as f64 / ((to - from) as f64 / 1e9)
}

fn calls<'a>(reports: &'a [Report], phase: &'a str) -> Vec<&'a fleet::Call> {
    reports.iter().flat_map(|r| r.calls_in(phase)).collect()
}
