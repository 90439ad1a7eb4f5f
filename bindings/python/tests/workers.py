"""Code that runs in other processes: multiprocessing targets (spawn) and a
small command-line program for the Ctrl-C tests.

    python workers.py leader CACHE_DIR SECONDS      compute slowly, print "computing", then "done"
    python workers.py follower CACHE_DIR            wait for the leader's entry; expect Ctrl-C
    python workers.py thread-leader CACHE_DIR       a leader thread computes; the main thread waits
    python workers.py own-compute CACHE_DIR         the main thread computes (sleeping); expect Ctrl-C
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

    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
