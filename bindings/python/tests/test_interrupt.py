"""Ctrl-C (a real SIGINT) ends a waiting get_or_compute promptly, and the
caller that computes carries on."""

from __future__ import annotations

import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("pyarrow")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")

WORKERS = pathlib.Path(__file__).with_name("workers.py")


class Program:
    """A worker program whose output lines are read as they come."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKERS), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line starting {prefix!r}; got {self.output}; stderr: {self.stderr()}")
            self.output.append(line)
            if line.startswith(prefix):
                return line

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def programs():
    started: list[Program] = []

    def start(*args):
        program = Program(*args)
        started.append(program)
        return program

    yield start
    for program in started:
        program.kill()


def interrupt(program: Program, settle: float = 0.5) -> float:
    """Sends SIGINT once the program has been waiting a while; returns how long it took to exit."""
    time.sleep(settle)
    assert program.proc.poll() is None, "the program ended before it was interrupted"
    sent = time.monotonic()
    program.proc.send_signal(signal.SIGINT)
    program.proc.wait(timeout=10)
    return time.monotonic() - sent


def test_ctrl_c_ends_a_wait_on_another_process(programs, cache_dir):
    leader = programs("leader", str(cache_dir), "5")
    leader.expect("computing")
    follower = programs("follower", str(cache_dir))
    follower.expect("waiting")
    took = interrupt(follower)
    assert leader.proc.poll() is None, "the follower only ended once the leader had"
    line = follower.expect("interrupted")
    assert follower.proc.returncode == 0, follower.stderr()
    assert took < 2.0, f"exit took {took:.2f}s after SIGINT (the leader still had seconds to go)"
    assert line.endswith("cancellations=1")
    # The leader is unaffected and publishes its entry.
    assert leader.expect("done", timeout=20) == "done rows=4"
    assert leader.proc.wait(timeout=20) == 0


def test_ctrl_c_ends_a_wait_on_another_thread(programs, cache_dir):
    program = programs("thread-leader", str(cache_dir))
    program.expect("waiting")
    time.sleep(0.3)
    sent = time.monotonic()
    program.proc.send_signal(signal.SIGINT)
    line = program.expect("interrupted", timeout=5)
    took = time.monotonic() - sent
    assert took < 1.5, f"the interrupt took {took:.2f}s"
    assert line == "interrupted cancellations=1"
    assert program.expect("leader finished", timeout=20) == "leader finished rows=[7] stored=7"
    assert program.proc.wait(timeout=20) == 0, program.stderr()


def test_ctrl_c_during_our_own_compute_stores_nothing_and_a_retry_works(programs, cache_dir):
    program = programs("own-compute", str(cache_dir))
    program.expect("waiting")
    time.sleep(0.3)
    sent = time.monotonic()
    program.proc.send_signal(signal.SIGINT)
    assert program.expect("interrupted", timeout=5) == "interrupted stored=False"
    took = time.monotonic() - sent
    assert took < 1.5, f"the interrupt took {took:.2f}s"
    assert program.expect("retried", timeout=20) == "retried rows=3 computes=2"
    assert program.proc.wait(timeout=20) == 0, program.stderr()


def test_ctrl_c_during_the_leaders_compute_hands_it_to_a_waiting_thread(programs, cache_dir):
    program = programs("interrupted-leader", str(cache_dir))
    program.expect("waiting")
    time.sleep(0.2)
    program.proc.send_signal(signal.SIGINT)
    line = program.expect("handed over", timeout=20)
    # One waiter computed; every waiter got its data; none saw a failure.
    assert line == "handed over computed=1 outcomes=[5, 5, 5, 5]", line
    assert program.proc.wait(timeout=20) == 0, program.stderr()


def test_two_ctrl_c_as_the_compute_is_handed_over_leave_the_store_usable(programs, cache_dir):
    import fstore
    import pyarrow as pa
    from workers import KEY

    program = programs("handover-window", str(cache_dir))
    # No call is left in flight: no worker holds the store.
    assert program.expect("interrupted twice", timeout=20) == "interrupted twice calls-in-flight=0"
    # The key's lock is free: another process computes it at once.
    with fstore.Store(cache_dir) as other:
        got = pa.table(other.get_or_compute(KEY, lambda k: pa.table({"n": [1, 2]}), timeout=5))
    assert got.num_rows == 2
    program.proc.stdin.write("go\n")
    program.proc.stdin.flush()
    assert program.expect("retried", timeout=20) == "retried rows=2"
    program.expect("closed", timeout=20)
    assert program.proc.wait(timeout=20) == 0, program.stderr()
