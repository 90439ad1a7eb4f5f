//! Herd: N worker processes, released together, ask for one missing key
//! whose compute takes `compute_ms`. One computes; the figure is how long
//! each of the others returns after that compute ended (for a worker that
//! computed itself, after its own compute ended), and how many computed.

use crate::fleet::{self, Report};
use crate::setup::{Mode, RunDir};
use crate::stats::{percentile, Figures, Unit};
use crate::worker::{Design, Task};
use crate::Context;

pub fn run(ctx: &Context, mode: &Mode, design: Design, workers: usize, figures: &mut Figures) -> Result<(), String> {
    let run = RunDir::new(design, mode)?;
    let spec = run.spec(design, Task::Herd, "AAPL", ctx.args.herd_compute_ms);
    let commands = (0..workers).map(|i| spec.command(&ctx.exe, ctx.python.as_ref(), i)).collect();
    let reports = fleet::run(commands, ctx.timeout())?;
    let (beyond, computes, publish) = beyond_compute(&reports)?;
    let name = |what: &str| format!("herd {workers} | {} | {} | {what}", mode.name, design.label());
    figures.add(&name("beyond compute min"), Unit::Millis, percentile(&beyond, 0.0));
    figures.add(&name("beyond compute p50"), Unit::Millis, percentile(&beyond, 0.5));
    figures.add(&name("beyond compute p99"), Unit::Millis, percentile(&beyond, 0.99));
    figures.add(&name("beyond compute max"), Unit::Millis, percentile(&beyond, 1.0));
    figures.add(&name("leader's publish"), Unit::Millis, publish);
    // CPU time of a waiter's whole call: the wait (embedded: polling the
    // lock file) and the read after the publish. It grows with the compute's
    // length when waiting costs CPU.
    let waiter_cpu: Vec<f64> = reports.iter().filter(|r| r.computes.is_empty()).filter_map(|r| r.cpu_ns).map(|ns| ns as f64 / 1e6).collect();
    figures.add(&name("waiter CPU p50"), Unit::Millis, percentile(&waiter_cpu, 0.5));
    figures.add(&name("computes"), Unit::Count, computes as f64);
    println!(
        "  herd {workers} {} {}: computes {computes}, leader's publish {publish:.1} ms, waiter CPU p50 {:.2} ms, beyond the compute p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        mode.name,
        design.label(),
        percentile(&waiter_cpu, 0.5),
        percentile(&beyond, 0.5),
        percentile(&beyond, 0.99),
        percentile(&beyond, 1.0)
    );
    if design != Design::Uncoordinated && computes != 1 {
        return Err(format!("herd of {workers} ({}, {}): {computes} computes, expected exactly 1", mode.name, design.label()));
    }
    Ok(())
}

/// Milliseconds from the end of the compute each worker waited for (the
/// first one, or its own) to its return, for every worker but the first to
/// compute; the number of computes; and the milliseconds from the first
/// compute's end to its caller's return (what publishing took: no waiter
/// can read the entry before).
fn beyond_compute(reports: &[Report]) -> Result<(Vec<f64>, usize, f64), String> {
    let computes: usize = reports.iter().map(|r| r.computes.len()).sum();
    let leader = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.computes.first().map(|c| (c.1, i)))
        .min()
        .ok_or("nobody computed the missing key")?;
    let mut beyond = Vec::new();
    let mut publish = 0.0;
    for (i, report) in reports.iter().enumerate() {
        let call = report.calls_in("herd").next().ok_or_else(|| format!("worker {i} reported no call"))?;
        if i == leader.1 {
            publish = (call.end as i64 - leader.0 as i64) as f64 / 1e6;
            continue;
        }
        let compute_end = report.computes.first().map_or(leader.0, |c| c.1);
        beyond.push((call.end as i64 - compute_end as i64) as f64 / 1e6);
    }
    Ok((beyond, computes, publish))
}
