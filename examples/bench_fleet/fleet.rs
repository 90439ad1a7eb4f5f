//! Runs worker processes released together, and reads what they report.
//!
//! Every worker opens its store, prints `READY`, and blocks reading its
//! stdin: one pipe whose read end all of them share. When every worker is
//! ready the parent closes the write end, and all of them see end-of-file
//! at the same moment. Workers then report on stdout, one line each:
//!
//!     CALL <phase> <start ns> <end ns>     one get-or-compute (wall clock)
//!     COMPUTE <start ns> <end ns>          one compute this worker ran
//!     CPU <ns>                             CPU time the herd's call used
//!     ERROR <message>                      the worker failed
//!
//! Times are nanoseconds since the epoch, so that the parent can line up
//! one worker's compute with another's return.

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the epoch: comparable between processes on one host.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Clone, Debug)]
pub struct Call {
    pub phase: String,
    pub start: u64,
    pub end: u64,
}

impl Call {
    pub fn millis(&self) -> f64 {
        self.end.saturating_sub(self.start) as f64 / 1e6
    }
}

/// What one worker reported.
#[derive(Default, Debug)]
pub struct Report {
    pub calls: Vec<Call>,
    /// (start, end) of each compute it ran.
    pub computes: Vec<(u64, u64)>,
    /// CPU time of its herd call (user and system), in nanoseconds.
    pub cpu_ns: Option<u64>,
}

impl Report {
    pub fn calls_in<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls.iter().filter(move |c| c.phase == phase)
    }
}

/// Every worker's report, in the order of `commands`.
pub fn run(commands: Vec<Command>, timeout: Duration) -> Result<Vec<Report>, String> {
    let deadline = Instant::now() + timeout;
    let (read_end, write_end) = barrier_pipe()?;
    let (lines_tx, lines_rx) = mpsc::channel::<(usize, Option<String>)>();
    let mut children: Vec<Child> = Vec::new();
    let mut readers = Vec::new();
    for (index, mut command) in commands.into_iter().enumerate() {
        let stdin = read_end.try_clone().map_err(|e| format!("cannot share the start pipe: {e}"))?;
        let spawned = command.stdin(Stdio::from(stdin)).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                kill_all(&mut children);
                return Err(format!("cannot start worker {index} ({:?}): {e}", command.get_program()));
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = lines_tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((index, Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send((index, None));
        }));
        children.push(child);
    }
    drop(read_end);
    drop(lines_tx);
    let count = children.len();
    let mut reports: Vec<Report> = (0..count).map(|_| Report::default()).collect();
    let mut ready = 0;
    let mut finished = 0;
    let mut write_end = Some(write_end);
    let mut failure = None;
    while finished < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, line) = match lines_rx.recv_timeout(left) {
            Ok(message) => message,
            Err(_) => {
                failure = Some(format!("workers did not finish within {} s", timeout.as_secs()));
                break;
            }
        };
        let Some(line) = line else {
            finished += 1;
            if write_end.is_some() {
                // The others would wait for the start signal forever.
                failure = Some(format!("worker {index} ended before the start"));
                break;
            }
            continue;
        };
        if line == "READY" {
            ready += 1;
            if ready == count {
                drop(write_end.take()); // the start signal
            }
        } else if let Err(why) = parse(&line, &mut reports[index]) {
            failure = Some(format!("worker {index}: {why}"));
            break;
        }
    }
    if failure.is_some() {
        kill_all(&mut children);
    }
    for (index, child) in children.iter_mut().enumerate() {
        match child.wait() {
            Ok(status) if !status.success() && failure.is_none() => {
                failure = Some(format!("worker {index} exited with {status}"));
            }
            Err(e) if failure.is_none() => failure = Some(format!("cannot wait for worker {index}: {e}")),
            _ => {}
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    match failure {
        Some(why) => Err(why),
        None if ready < count => Err(format!("only {ready} of {count} workers got ready")),
        None => Ok(reports),
    }
}

fn parse(line: &str, report: &mut Report) -> Result<(), String> {
    let mut parts = line.split(' ');
    let number = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| format!("malformed line '{line}'"));
    match parts.next() {
        Some("CALL") => {
            let phase = parts.next().ok_or_else(|| format!("malformed line '{line}'"))?.to_string();
            let (start, end) = (number(parts.next())?, number(parts.next())?);
            report.calls.push(Call { phase, start, end });
        }
        Some("COMPUTE") => report.computes.push((number(parts.next())?, number(parts.next())?)),
        Some("CPU") => report.cpu_ns = Some(number(parts.next())?),
        Some("ERROR") => return Err(line["ERROR ".len().min(line.len())..].to_string()),
        _ => {} // anything else a worker prints (a warning) is not a figure
    }
    Ok(())
}

fn barrier_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("cannot create the start pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn kill_all(children: &mut [Child]) {
    for child in children {
        let _ = child.kill();
    }
}

/// What a worker does between opening its store and working: report ready,
/// then wait for the start signal (end-of-file on stdin).
pub fn await_start() {
    use std::io::{Read, Write};
    println!("READY");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
