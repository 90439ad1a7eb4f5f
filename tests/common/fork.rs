//! Children made with fork(2), for the fork tests: run a closure in the
//! child, learn through a pipe how far it got, wait for it with a bound, and
//! describe a child that did not finish (its threads, their kernel stacks and
//! CPU use, the locks on its open files).
//!
//! A child runs code inherited mid-flight from a multi-threaded parent, so it
//! never touches the parent's stdout or stderr (their locks may have been held
//! at the fork), never returns into the test harness, and leaves with
//! `libc::_exit`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where a child writes its progress: one line per step, raw `write(2)`.
pub struct Progress {
    fd: libc::c_int,
}

impl Progress {
    pub fn step(&self, text: &str) {
        let line = format!("{text}\n");
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            // SAFETY: writes from a live buffer to a descriptor this child owns.
            let n = unsafe { libc::write(self.fd, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                return; // the parent is gone or the pipe is full: nothing to do
            }
            rest = &rest[n as usize..];
        }
    }
}

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
    /// Still running at its deadline: described, then killed.
    Hung { report: String },
}

/// A forked child; killed and reaped on drop if still running.
pub struct Forked {
    pub pid: libc::pid_t,
    pub forked_at: Instant,
    progress_fd: libc::c_int,
    progress: Vec<u8>,
    reaped: bool,
}

/// Forks; the child runs `body` and exits with the code it returns (101 if it
/// panics, with the panic's message as its last progress line).
pub fn fork_child(body: impl FnOnce(&Progress) -> i32) -> Forked {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2 failed");
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: fork has no preconditions; the child only runs `body` and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: the child's copy of the read end is not used.
        unsafe { libc::close(read_fd) };
        let progress = Progress { fd: write_fd };
        // The default hook prints to stderr, whose lock another thread may have held at the fork.
        std::panic::set_hook(Box::new(move |info| Progress { fd: write_fd }.step(&format!("panicked: {info}"))));
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&progress))).unwrap_or(101);
        // SAFETY: leave without running the harness's or anyone's exit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent's copy of the write end; the read end polls.
    unsafe {
        libc::close(write_fd);
        libc::fcntl(read_fd, libc::F_SETFL, libc::O_NONBLOCK);
    }
    Forked { pid, forked_at: Instant::now(), progress_fd: read_fd, progress: Vec::new(), reaped: false }
}

impl Forked {
    /// The child's progress lines so far.
    pub fn progress(&mut self) -> String {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a live buffer from a descriptor we own.
            let n = unsafe { libc::read(self.progress_fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            self.progress.extend_from_slice(&buf[..n as usize]);
        }
        String::from_utf8_lossy(&self.progress).into_owned()
    }

    /// The last progress line: what the child was doing.
    pub fn last_step(&mut self) -> String {
        self.progress().lines().last().unwrap_or("(nothing reported: before its first step)").to_string()
    }

    /// `Some` once the child has ended; never blocks.
    pub fn poll(&mut self) -> Option<Ended> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        // SAFETY: waits for our own child without blocking.
        let got = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if got != self.pid {
            return None;
        }
        self.reaped = true;
        Some(decode(status))
    }

    /// Waits until `deadline`; a child still running then is described,
    /// killed and reported as hung.
    pub fn wait_until(&mut self, deadline: Instant) -> Ended {
        loop {
            if let Some(ended) = self.poll() {
                return ended;
            }
            if Instant::now() >= deadline {
                return self.kill_hung(true);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Describes the running child (with user-space stacks if asked), then
    /// kills and reaps it.
    pub fn kill_hung(&mut self, user_stacks: bool) -> Ended {
        let last_step = self.last_step();
        let mut report = format!(
            "pid {} still running {:.1} s after fork; its last step: {last_step}\n",
            self.pid,
            self.forked_at.elapsed().as_secs_f64(),
        );
        report.push_str(&describe_process(self.pid));
        if user_stacks {
            report.push_str(&describe_user_stacks(self.pid));
        }
        self.kill();
        Ended::Hung { report }
    }

    pub fn alive(&mut self) -> bool {
        !self.reaped && self.poll().is_none()
    }

    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: signals and reaps our own child. A killed process ends
        // promptly; the bound only keeps a test from hanging on a stuck one.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.poll().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        self.kill();
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.progress_fd) };
    }
}

fn decode(status: libc::c_int) -> Ended {
    if libc::WIFEXITED(status) {
        Ended::Exited(libc::WEXITSTATUS(status))
    } else {
        Ended::Signalled(libc::WTERMSIG(status))
    }
}

/// What each thread of `pid` is doing (state, wait channel, system call, CPU
/// time over a short interval, kernel stack) and the locks it holds on open
/// files, from /proc. Parts /proc does not show are marked so.
pub fn describe_process(pid: libc::pid_t) -> String {
    let proc_dir = format!("/proc/{pid}");
    let tids = thread_ids(&proc_dir);
    // Two CPU samples tell a thread that spins from one that sleeps.
    let before: Vec<u64> = tids.iter().map(|t| cpu_ticks(&format!("{proc_dir}/task/{t}"))).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut out = String::new();
    for (tid, cpu_before) in tids.iter().zip(before) {
        let task = format!("{proc_dir}/task/{tid}");
        let cpu_after = cpu_ticks(&task);
        let _ = writeln!(
            out,
            "  thread {tid} '{}': {}, wchan {}, syscall {}, cpu {} ticks (+{} in 0.3 s)",
            read_trimmed(&format!("{task}/comm")),
            status_field(&task, "State:"),
            read_trimmed(&format!("{task}/wchan")),
            read_trimmed(&format!("{task}/syscall")).split(' ').next().unwrap_or("?"),
            cpu_after,
            cpu_after.saturating_sub(cpu_before)
        );
        for frame in read_trimmed(&format!("{task}/stack")).lines().take(12) {
            let _ = writeln!(out, "      {frame}");
        }
    }
    out.push_str(&describe_locked_files(&proc_dir));
    out
}

/// Every thread's user-space stack, from gdb when it is installed (it is
/// optional: /proc already tells where each thread waits).
pub fn describe_user_stacks(pid: libc::pid_t) -> String {
    let gdb = std::process::Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx", "-ex", "thread apply all bt 30"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut gdb) = gdb else {
        return "  (user-space stacks: install gdb to see them here)\n".into();
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while gdb.try_wait().ok().flatten().is_none() {
        if Instant::now() >= deadline {
            let _ = gdb.kill();
            let _ = gdb.wait();
            return "  (gdb took too long)\n".into();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(gdb.stdout.as_mut().unwrap(), &mut text);
    let frames: Vec<&str> = text.lines().filter(|l| l.starts_with("Thread ") || l.starts_with('#')).collect();
    format!("  user-space stacks (gdb):\n{}\n", frames.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"))
}

fn thread_ids(proc_dir: &str) -> Vec<String> {
    let mut tids: Vec<String> = std::fs::read_dir(format!("{proc_dir}/task"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    tids.sort_by_key(|t| t.parse::<u64>().unwrap_or(0));
    tids
}

/// utime + stime, in clock ticks (fields 14 and 15 of stat, counted after
/// the parenthesised command name, which may hold spaces).
fn cpu_ticks(task: &str) -> u64 {
    let stat = read_trimmed(&format!("{task}/stat"));
    let Some(after_name) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn status_field(task: &str, name: &str) -> String {
    read_trimmed(&format!("{task}/status"))
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "state ?".into())
}

/// Open files that hold a lock (flock or POSIX), and every open `.lock` file,
/// from /proc/<pid>/fd and fdinfo: an inherited lock shows up here.
fn describe_locked_files(proc_dir: &str) -> String {
    let mut out = String::new();
    let Ok(fds) = std::fs::read_dir(format!("{proc_dir}/fd")) else {
        return "  open files: unreadable\n".into();
    };
    let mut fds: Vec<String> = fds.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    fds.sort_by_key(|f| f.parse::<u64>().unwrap_or(0));
    for fd in fds {
        let target = std::fs::read_link(format!("{proc_dir}/fd/{fd}")).map(|p| p.display().to_string()).unwrap_or_default();
        let locks: Vec<String> = read_trimmed(&format!("{proc_dir}/fdinfo/{fd}"))
            .lines()
            .filter(|l| l.starts_with("lock:"))
            .map(|l| l.trim_start_matches("lock:").trim().to_string())
            .collect();
        if locks.is_empty() && !target.ends_with(".lock") {
            continue;
        }
        let name = Path::new(&target).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(target.clone());
        let held = if locks.is_empty() { "no lock on it".to_string() } else { format!("LOCKED: {}", locks.join("; ")) };
        let _ = writeln!(out, "  fd {fd} -> {name}: {held}");
    }
    out
}

fn read_trimmed(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().to_string(),
        Err(e) => format!("(unreadable: {e})"),
    }
}

/// A small deterministic generator for fork moments and compute durations,
/// seeded so that a failing run can be repeated.
pub struct Rng(u64);

impl Rng {
    /// Seeded from FSTORE_TEST_SEED if set, else from the clock; says which.
    pub fn from_env_or_clock() -> Rng {
        let seed = std::env::var("FSTORE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        eprintln!("random seed {seed} (set FSTORE_TEST_SEED={seed} to repeat)");
        Rng::seeded(seed)
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }

    pub fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}
