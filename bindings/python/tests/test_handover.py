"""A caller that gives up during its own compute hands the compute over to
the calls waiting for the same entry, instead of failing them all."""

from __future__ import annotations

import threading
import time

import pytest

import fstore
from conftest import make_table

pa = pytest.importorskip("pyarrow")


def wait_for_waiters(store, count: int) -> None:
    deadline = time.monotonic() + 10
    while store.stats().waits < count:
        assert time.monotonic() < deadline, f"only {store.stats().waits} of {count} callers are waiting"
        time.sleep(0.005)


def start_waiters(store, key, count: int):
    """`count` threads asking for `key`; each computes 6 rows if it must."""
    computed: list = []
    results: list = [None] * count
    errors: list = []

    def compute(k):
        computed.append(threading.get_ident())
        time.sleep(0.05)
        return make_table(6)

    def wait(i):
        try:
            results[i] = pa.table(store.get_or_compute(key, compute))
        except BaseException as e:  # reported by the test
            errors.append(e)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    return threads, computed, results, errors


def check_taken_over(threads, computed, results, errors):
    for t in threads:
        t.join(30)
    assert not errors, [str(e) for e in errors]
    assert len(computed) == 1, f"{len(computed)} waiters computed"
    assert all(r is not None and r.equals(make_table(6)) for r in results)


@pytest.mark.parametrize("leaving", [KeyboardInterrupt, SystemExit])
def test_a_leader_interrupted_in_its_compute_hands_it_over(store, key, leaving):
    computing, release = threading.Event(), threading.Event()
    outcome: list = []

    def interrupted(k):
        computing.set()
        release.wait(10)
        raise leaving()

    def run_leader():
        try:
            store.get_or_compute(key, interrupted)
        except BaseException as e:
            outcome.append(e)

    leader = threading.Thread(target=run_leader)
    leader.start()
    assert computing.wait(10)
    waiters = start_waiters(store, key, 5)
    wait_for_waiters(store, 5)
    release.set()
    leader.join(10)
    assert len(outcome) == 1 and type(outcome[0]) is leaving
    check_taken_over(*waiters)
    s = store.stats()
    assert s.computes == 2 and s.cancellations == 1


def test_a_cancel_token_during_the_compute_hands_it_over(store, key):
    token = fstore.CancelToken()
    computing = threading.Event()
    outcome: list = []

    def gives_up_when_cancelled(k):
        computing.set()
        deadline = time.monotonic() + 10
        while not token.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("stopped: the token was cancelled")

    def run_leader():
        try:
            store.get_or_compute(key, gives_up_when_cancelled, cancel=token)
        except BaseException as e:
            outcome.append(e)

    leader = threading.Thread(target=run_leader)
    leader.start()
    assert computing.wait(10)
    waiters = start_waiters(store, key, 4)
    wait_for_waiters(store, 4)
    token.cancel()
    leader.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], fstore.Cancelled), repr(outcome[0])
    assert "the caller gave up during its compute: RuntimeError: stopped" in str(outcome[0])
    assert isinstance(outcome[0].__cause__, RuntimeError)
    check_taken_over(*waiters)


def test_a_compute_failing_with_its_token_alive_still_fails_every_waiter(store, key):
    token = fstore.CancelToken()
    computing, release = threading.Event(), threading.Event()

    def failing(k):
        computing.set()
        release.wait(10)
        raise RuntimeError("upstream is down")

    outcome: list = []
    leader = threading.Thread(target=lambda: outcome.append(_raised(lambda: store.get_or_compute(key, failing, cancel=token))))
    leader.start()
    assert computing.wait(10)
    threads, computed, results, errors = start_waiters(store, key, 3)
    wait_for_waiters(store, 3)
    release.set()
    leader.join(10)
    for t in threads:
        t.join(10)
    assert isinstance(outcome[0], fstore.CallbackFailed)
    assert not computed
    assert len(errors) == 3 and all(isinstance(e, fstore.CallbackFailed) and "upstream is down" in str(e) for e in errors)


def _raised(call):
    try:
        call()
    except BaseException as e:
        return e
    return None
