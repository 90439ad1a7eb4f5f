//! Worker processes that are followed line by line while they run: re-executions
//! of the test binary, optionally inside a wrapper (`ip netns exec NS`,
//! `unshare --mount`), killed if the test ends before they do.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// One worker: its `FSTORE_` lines (see [`emit`]) arrive as it prints them,
/// without that prefix.
pub struct Worker {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl Worker {
    /// Runs test `entry` of this binary with FSTORE_TEST_CHILD and `env` set,
    /// under `wrapper` (a command and its arguments, or nothing).
    pub fn spawn(name: &str, entry: &str, env: &[(String, String)], wrapper: &[String]) -> Worker {
        let mut child = super::child_command(entry, env, wrapper)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start worker {name} ({wrapper:?}): {e}"));
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print "test NAME ... " in front of a line.
                if let Some(at) = line.find("FSTORE_") {
                    if sender.send(line[at + "FSTORE_".len()..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        Worker { name: name.to_string(), stdin: child.stdin.take(), child, lines, seen: Vec::new() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one line to the worker's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).unwrap_or_else(|e| panic!("worker {}: {e}", self.name));
    }

    /// Closes the worker's stdin (a barrier it may be waiting on).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits up to `timeout` for a line starting with `prefix`; returns it.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        if let Some(line) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits up to `timeout` for the worker to exit (then kills it); returns
    /// whether it exited successfully and all its lines.
    pub fn finish(mut self, timeout: Duration) -> (bool, Vec<String>) {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let ok = loop {
            match self.child.try_wait().unwrap() {
                Some(status) => break status.success(),
                None if Instant::now() >= deadline => {
                    eprintln!("worker {} still running after {timeout:?}: killed", self.name);
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break false;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        // The reader thread ends at end of output; collect what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (ok, std::mem::take(&mut self.seen))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In a worker: prints one `FSTORE_` line at once.
pub fn emit(line: &str) {
    println!("FSTORE_{line}");
    std::io::stdout().flush().unwrap();
}

/// In a worker: blocks until the parent sends a line (or closes stdin).
pub fn wait_for_parent() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// In a worker: blocks until the parent closes stdin.
pub fn wait_for_stdin_to_close() {
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}
