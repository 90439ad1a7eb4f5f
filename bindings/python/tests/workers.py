"""Code that runs in other processes: multiprocessing targets (spawn) and a
small command-line program for the Ctrl-C tests.

    python workers.py leader CACHE_DIR SECONDS      compute slowly, print "computing", then "done"
    python workers.py follower CACHE_DIR            wait for the leader's entry; expect Ctrl-C
    python workers.py thread-leader CACHE_DIR       a leader thread computes; the main thread waits
    python workers.py own-compute CACHE_DIR         the main thread computes (sleeping); expect Ctrl-C
    python workers.py interrupted-leader CACHE_DIR  the main thread computes while threads wait; expect Ctrl-C
    python workers.py handover-window CACHE_DIR     two Ctrl-C land as the compute is handed over; then
                                                    wait for a line on stdin, retry and close
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fstore  # noqa: E402

KEY = fstore.Key("signals", "INTR", 19000, 19100, config={"kind": "slow"})


def table(rows: int = 4):
    import pyarrow as pa

    return pa.table({"n": list(range(rows)), "pid": [os.getpid()] * rows})


def append_line(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def compete(cache_dir, options, barrier, log_path, results) -> None:
    """One of several processes asking for the same missing key at once."""
    import pyarrow as pa

    with fstore.Store(cache_dir, options=options) as store:
        key = fstore.Key("race", "RACE", 19000, 19010, config={"n": 1})

        def compute(k):
            time.sleep(0.3)
            append_line(log_path, f"computed by {os.getpid()}")
            return pa.table({"x": list(range(100)), "who": ["first"] * 100})

        barrier.wait(timeout=60)
        data = store.get_or_compute(key, compute).to_pyarrow()
        results.put((os.getpid(), data.to_pydict()))


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str]) -> int:
    # A program started in the background inherits SIGINT ignored; these
    # tests send it on purpose, so take Python's usual handler back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode, cache_dir = argv[0], argv[1]
    store = fstore.Store(cache_dir)
    if mode == "leader":
        seconds = float(argv[2])

        def slow(k):
            say("computing")
            time.sleep(seconds)
            return table()

        data = store.get_or_compute(KEY, slow).to_pyarrow()
        say(f"done rows={data.num_rows}")
        return 0

    if mode == "follower":
        def unexpected(k):
            say("follower computed")
            return table()

        say("waiting")
        started = time.monotonic()
        try:
            store.get_or_compute(KEY, unexpected)
        except KeyboardInterrupt:
            say(f"interrupted after {time.monotonic() - started:.3f}s cancellations={store.stats().cancellations}")
            return 0
        say("finished without an interrupt")
        return 3

    if mode == "thread-leader":
        computing = threading.Event()
        outcome = []

        def slow(k):
            computing.set()
            time.sleep(3.0)
            return table(7)

        def lead():
            outcome.append(store.get_or_compute(KEY, slow).to_pyarrow().num_rows)

        leader = threading.Thread(target=lead)
        leader.start()
        computing.wait(10)
        say("waiting")
        try:
            store.get_or_compute(KEY, lambda k: table())
        except KeyboardInterrupt:
            say(f"interrupted cancellations={store.stats().cancellations}")
        else:
            say("finished without an interrupt")
            return 3
        leader.join(30)
        stored = store.get(KEY)
        say(f"leader finished rows={outcome} stored={stored is not None and stored.to_pyarrow().num_rows}")
        return 0

    if mode == "own-compute":
        def sleepy(k):
            say("waiting")
            time.sleep(30)
            return table()

        try:
            store.get_or_compute(KEY, sleepy)
        except KeyboardInterrupt:
            say(f"interrupted stored={store.contains(KEY)}")
        else:
            say("finished without an interrupt")
            return 3
        data = store.get_or_compute(KEY, lambda k: table(3)).to_pyarrow()
        say(f"retried rows={data.num_rows} computes={store.stats().computes}")
        return 0

    if mode == "interrupted-leader":
        return interrupted_leader(store)

    if mode == "handover-window":
        return handover_window(store)

    raise SystemExit(f"unknown mode {mode!r}")


def interrupted_leader(store) -> int:
    """Ctrl-C during the main thread's compute: the threads waiting for it
    take it over, and one of them computes."""
    computing = threading.Event()
    computed, outcomes = [], []

    def sleepy(k):
        computing.set()
        time.sleep(30)
        return table()

    def waiter():
        def compute(k):
            computed.append(threading.get_ident())
            return table(5)

        try:
            outcomes.append(store.get_or_compute(KEY, compute).to_pyarrow().num_rows)
        except BaseException as e:
            outcomes.append(f"{type(e).__name__}: {e}")

    waiters = [threading.Thread(target=waiter) for _ in range(4)]

    def start_waiters():
        computing.wait(10)
        for t in waiters:
            t.start()
        while store.stats().waits < len(waiters):
            time.sleep(0.005)
        say("waiting")

    threading.Thread(target=start_waiters, daemon=True).start()
    try:
        store.get_or_compute(KEY, sleepy)
    except KeyboardInterrupt:
        pass
    else:
        say("finished without an interrupt")
        return 3
    for t in waiters:
        t.join(30)
    say(f"handed over computed={len(computed)} outcomes={outcomes}")
    return 0


def handover_window(store) -> int:
    """A first Ctrl-C lands as the compute is handed to the calling thread
    (before it starts), a second one as the caller begins to give up: the
    caller leaves without ever telling the worker. The store must stay
    usable, and the key's lock free."""
    from fstore._store import _ComputeCall, _calls

    original_compute, original_abandon = _ComputeCall._compute, _ComputeCall.abandon

    def first_ctrl_c(self):
        _ComputeCall._compute = original_compute
        signal.raise_signal(signal.SIGINT)
        original_compute(self)

    def second_ctrl_c(self):
        _ComputeCall.abandon = original_abandon
        signal.raise_signal(signal.SIGINT)
        original_abandon(self)

    _ComputeCall._compute, _ComputeCall.abandon = first_ctrl_c, second_ctrl_c
    try:
        store.get_or_compute(KEY, lambda k: table())
    except KeyboardInterrupt:
        pass
    else:
        say("finished without an interrupt")
        return 3
    deadline = time.monotonic() + 5
    while _calls and time.monotonic() < deadline:
        time.sleep(0.01)
    say(f"interrupted twice calls-in-flight={len(_calls)}")
    sys.stdin.readline()  # another process uses the key meanwhile
    data = store.get_or_compute(KEY, lambda k: table(3), timeout=5).to_pyarrow()
    say(f"retried rows={data.num_rows}")
    store.close()
    say("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


METRICS_KEY = fstore.Key("metrics", "METR", 19000, 19010, config={"n": 1})


def metrics_worker(cache_dir, role, started, results) -> None:
    """`leader` computes METRICS_KEY slowly; `follower` waits for it from
    another process. Each then reads it again and reports its metrics."""
    with fstore.Store(cache_dir) as store:

        def compute(key):
            started.set()
            time.sleep(1.0)
            return table()

        def never(key):
            raise AssertionError(f"{role} must not compute")

        if role == "follower":
            started.wait(timeout=60)
            time.sleep(0.2)  # the leader holds the entry's lock
        store.get_or_compute(METRICS_KEY, compute if role == "leader" else never)
        store.get_or_compute(METRICS_KEY, never)
        results.put((role, store.metrics()))
