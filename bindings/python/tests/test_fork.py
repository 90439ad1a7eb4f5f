"""The data-loader pattern: a process that opened and used a store forks
workers (a multiprocessing pool with the fork start method, or os.fork()),
and each worker opens its own store and works.

Every wait is bounded: a worker still running at its bound is described
from /proc (threads, wait channels, kernel stacks, locks on its open files),
killed, and fails the test. Forked children report through a pipe and their
exit code, never through the parent's stdout.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import random
import signal
import threading
import time

import pytest

import fstore
from conftest import make_table

pa = pytest.importorskip("pyarrow")

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
    # The parent has threads at the fork on purpose: that is the case under test.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILD_BOUND = 30.0  # seconds from fork to exit
CHILD_WAIT_MS = 10_000  # a worker's wait.timeout_ms: a lock it never gets ends as Timeout
PARENT_WAIT_MS = 20_000
SYMBOLS = ("PYFORK0", "PYFORK1", "PYFORK2")
FORKS = 20
MAX_LIVE_CHILDREN = 6


@pytest.fixture(params=["embedded", "postgres"])
def mode_options(request):
    """Options for each coordination mode; PostgreSQL needs FSTORE_TEST_PG_DSN
    (the test command starts a throwaway server and sets it)."""
    if request.param == "embedded":
        return {"manifest": "duckdb"}
    dsn = os.environ.get("FSTORE_TEST_PG_DSN")
    if not dsn:
        pytest.skip("set FSTORE_TEST_PG_DSN to a PostgreSQL server (tests/run_all.sh starts one)")
    return {"manifest": "postgres", "postgres.dsn": dsn, "postgres.schema": f"t_pyfork_{os.getpid()}"}


def with_wait(options: dict, wait_ms: int) -> dict:
    return {**options, "wait.timeout_ms": wait_ms}


def shared_key() -> fstore.Key:
    return fstore.Key("fork", "SHARED", 19000, 19030, config={"n": 1})


def child_key(n: int) -> fstore.Key:
    start = 500_000 + 10 * n
    return fstore.Key("fork", SYMBOLS[n % len(SYMBOLS)], start, start + 5, config={"n": 1})


# --- what a worker does --------------------------------------------------


def work_in_child(cache_dir: str, options: dict, n: int, step=lambda text: None) -> dict:
    """Opens its own store, computes a key of its own, reads the parent's
    entry, closes. Returns what it saw."""
    step("open its own store")
    with fstore.Store(cache_dir, options=options) as store:
        step("compute its own key")
        own = pa.table(store.get_or_compute(child_key(n), lambda k: make_table(6, offset=1000 * n)))
        step("read the parent's entry")
        found = store.get(shared_key())
        shared = pa.table(found) if found is not None else None
        step("close")
    step("done")
    return {
        "pid": os.getpid(),
        "own_ok": own.equals(make_table(6, offset=1000 * n)),
        "shared_ok": shared is not None and shared.equals(make_table(10)),
    }


def pool_worker(args) -> dict:
    cache_dir, options, n = args
    return work_in_child(cache_dir, options, n)


# --- describing a process that did not finish ----------------------------


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"(unreadable: {e.strerror})"


def describe_process(pid: int) -> str:
    """Each thread's state, wait channel and kernel stack, and the locks on
    the process's open files (an inherited lock shows up there)."""
    lines = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as e:
        return f"  /proc/{pid} unreadable: {e.strerror}\n"
    for tid in tids:
        task = f"/proc/{pid}/task/{tid}"
        state = next((l.split(":", 1)[1].strip() for l in _read(f"{task}/status").splitlines() if l.startswith("State:")), "?")
        lines.append(f"  thread {tid} '{_read(task + '/comm')}': {state}, wchan {_read(task + '/wchan')}")
        lines.extend(f"      {frame}" for frame in _read(f"{task}/stack").splitlines()[:12])
    try:
        fds = sorted(os.listdir(f"/proc/{pid}/fd"), key=int)
    except OSError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        locks = [l[5:].strip() for l in _read(f"/proc/{pid}/fdinfo/{fd}").splitlines() if l.startswith("lock:")]
        if locks or target.endswith(".lock"):
            held = "LOCKED: " + "; ".join(locks) if locks else "no lock on it"
            lines.append(f"  fd {fd} -> {os.path.basename(target)}: {held}")
    return "\n".join(lines) + "\n"


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return  # not ours to reap (a pool's worker), or already reaped
        time.sleep(0.01)


# --- a multiprocessing pool (fork) ----------------------------------------


def end_pool(pool) -> None:
    """terminate() ends hung workers too (SIGTERM interrupts a blocking
    flock), but only after idle workers gave back the task queue's lock, so
    it must not be preceded by SIGKILL; it is bounded should it hang anyway."""
    closer = threading.Thread(target=pool.terminate, daemon=True)
    closer.start()
    closer.join(CHILD_BOUND)
    if closer.is_alive():
        for p in pool._pool:
            kill_and_reap(p.pid)
        pytest.fail(f"the pool did not terminate within {CHILD_BOUND:.0f} s")


def test_a_fork_pool_of_workers_opens_their_own_stores(cache_dir, mode_options):
    with fstore.Store(cache_dir, options=with_wait(mode_options, PARENT_WAIT_MS)) as store:
        store.get_or_compute(shared_key(), lambda k: make_table(10))
        for i in range(5):
            store.put(fstore.Key("fork", "PUT", 19000 + 10 * i, 19005 + 10 * i), make_table(3, offset=i))
        for i in range(3):
            store.get_or_compute(fstore.Key("fork", SYMBOLS[i], 19000, 19005), lambda k: make_table(4))
        pool = multiprocessing.get_context("fork").Pool(4)
        try:
            pending = pool.map_async(pool_worker, [(str(cache_dir), with_wait(mode_options, CHILD_WAIT_MS), n) for n in range(4)])
            try:
                results = pending.get(timeout=CHILD_BOUND)
            except multiprocessing.TimeoutError:
                report = "".join(f"worker pid {p.pid}:\n{describe_process(p.pid)}" for p in pool._pool)
                pytest.fail(f"the pool's 4 workers did not finish within {CHILD_BOUND:.0f} s:\n{report}")
        finally:
            end_pool(pool)
        assert len(results) == 4
        assert all(r["pid"] != os.getpid() for r in results)
        assert all(r["own_ok"] for r in results), results
        assert all(r["shared_ok"] for r in results), results
        # the parent's store still works, and sees the workers' entries
        assert pa.table(store.get(shared_key())).equals(make_table(10))
        for n in range(4):
            assert pa.table(store.get(child_key(n))).equals(make_table(6, offset=1000 * n))


# --- os.fork() at random moments while threads compute --------------------


class Child:
    """A forked child: its pipe, and when it was forked."""

    def __init__(self, n: int, pid: int, pipe: int):
        self.n, self.pid, self.pipe = n, pid, pipe
        self.forked_at = time.monotonic()
        self.output = b""

    def steps(self) -> str:
        while True:
            try:
                chunk = os.read(self.pipe, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.output += chunk
        return self.output.decode("utf-8", "replace")

    def poll(self):
        """None while running, else ("exited", code) or ("signal", number)."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        if os.WIFEXITED(status):
            return ("exited", os.WEXITSTATUS(status))
        return ("signal", os.WTERMSIG(status))


def fork_worker(cache_dir: str, options: dict, n: int) -> Child:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)

            def step(text: str) -> None:
                os.write(write_end, (text + "\n").encode())

            # A hung child is sent SIGUSR1 and writes every thread's Python stack into its pipe.
            faulthandler.register(signal.SIGUSR1, file=open(write_end, "w", closefd=False), all_threads=True)

            seen = work_in_child(cache_dir, options, n, step)
            code = 0 if seen["own_ok"] and seen["shared_ok"] else 2
            if code:
                step(f"wrong data: {seen}")
        except BaseException as e:  # reported through the pipe
            try:
                os.write(write_end, f"failed: {type(e).__name__}: {e}\n".encode())
            except BaseException:
                pass
        finally:
            os._exit(code)
    os.close(write_end)
    os.set_blocking(read_end, False)
    return Child(n, pid, read_end)


def test_children_forked_while_threads_compute_open_their_own_stores(cache_dir, mode_options):
    seed = int(os.environ.get("FSTORE_TEST_SEED") or time.time_ns())
    rng = random.Random(seed)
    options = with_wait(mode_options, CHILD_WAIT_MS)
    stop = threading.Event()
    errors: list = []
    with fstore.Store(cache_dir, options=with_wait(mode_options, PARENT_WAIT_MS)) as store:
        store.get_or_compute(shared_key(), lambda k: make_table(10))

        def computer(t: int) -> None:
            pauses = random.Random(seed + t)
            i = 0
            while not stop.is_set() and len(errors) < 5:
                start = 1000 + 100_000 * t + 10 * i
                key = fstore.Key("fork", SYMBOLS[(i + t) % len(SYMBOLS)], start, start + 5)

                def compute(k, pause=pauses.random() * 0.015):
                    time.sleep(pause)
                    return make_table(5)

                try:
                    store.get_or_compute(key, compute)
                except Exception as e:
                    errors.append(f"compute {start}: {e!r}")
                i += 1

        def putter() -> None:
            i = 0
            while not stop.is_set() and len(errors) < 5:
                try:
                    store.put(fstore.Key("fork", "PUT", 10 * i, 10 * i + 5), make_table(3, offset=i))
                except Exception as e:
                    errors.append(f"put {i}: {e!r}")
                i += 1
                time.sleep(0.002)

        threads = [threading.Thread(target=computer, args=(t,), daemon=True) for t in range(2)]
        threads.append(threading.Thread(target=putter, daemon=True))
        for t in threads:
            t.start()
        live: list[Child] = []
        ended: list = []

        def reap() -> None:
            for child in list(live):
                outcome = child.poll()
                if outcome is None and time.monotonic() - child.forked_at >= CHILD_BOUND:
                    report = describe_process(child.pid)
                    os.kill(child.pid, signal.SIGUSR1)  # its Python stacks, into its pipe
                    time.sleep(0.5)
                    kill_and_reap(child.pid)
                    outcome = ("hung", report)
                if outcome is not None:
                    ended.append((child.n, outcome, child.steps()))
                    os.close(child.pipe)
                    live.remove(child)

        try:
            for n in range(FORKS):
                if any(o[0] == "hung" for _, o, _ in ended):
                    break  # already a failure; more children would only add their bounds
                time.sleep(rng.random() * 0.025)
                while len(live) >= MAX_LIVE_CHILDREN:
                    reap()
                    time.sleep(0.005)
                live.append(fork_worker(str(cache_dir), options, n))
                reap()
            stop.set()  # no more forks: the parent's work no longer matters
            while live:
                reap()
                time.sleep(0.005)
        finally:
            stop.set()
            for child in live:
                kill_and_reap(child.pid)
                os.close(child.pipe)
            for t in threads:
                t.join(PARENT_WAIT_MS / 1000 + 10)
        bad = [(n, o, steps) for n, o, steps in ended if o != ("exited", 0)]
        if bad:
            text = []
            for n, outcome, steps in bad:
                doing = " / ".join(steps.splitlines()) or "(nothing reported)"
                if outcome[0] == "hung":
                    text.append(f"child {n} HUNG past {CHILD_BOUND:.0f} s; its steps: {doing}\n{outcome[1]}")
                else:
                    text.append(f"child {n} {outcome[0]} {outcome[1]}; its steps: {doing}")
            pytest.fail(f"{len(bad)} of {len(ended)} children did not finish (seed {seed}):\n" + "\n".join(text))
        assert not [t for t in threads if t.is_alive()], "a parent thread did not stop"
        assert not errors, errors
        for n, _, _ in ended:
            assert pa.table(store.get(child_key(n))).equals(make_table(6, offset=1000 * n))
