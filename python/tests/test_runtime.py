"""Runtime behaviour: Ctrl-C during fit, the GIL released while training
and batch-recommending, two threads recommending at once, no leak over
10,000 calls (tracemalloc and RSS)."""
import os
import signal
import threading
import time
import tracemalloc

import numpy as np
import pytest

import cofi
from conftest import random_csr


@pytest.fixture(scope="module")
def medium():
    X = random_csr(4000, 2000, density=0.02, seed=11)
    return X


def test_keyboard_interrupt_stops_fit(medium):
    m = cofi.AlternatingLeastSquares(factors=32, iterations=100000, random_state=1)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        m.fit(medium, show_progress=False)
    elapsed = time.monotonic() - t0
    timer.cancel()
    assert elapsed < 10, f"fit took {elapsed:.1f}s to notice Ctrl-C"
    assert m.user_factors is None  # nothing half-trained is installed
    m.iterations = 2  # and the object still works
    m.fit(medium, show_progress=False)
    assert m.user_factors.shape == (4000, 32)


def _longest_stall(fn):
    """Runs fn() while another Python thread stamps the time in a loop;
    returns (seconds fn took, the longest gap between two stamps). A call
    that holds the GIL stalls the other thread for its whole length; one
    that releases it lets the thread run (gaps of the switch interval)."""
    stop = threading.Event()
    stamps = []

    def spin():
        while not stop.is_set():
            stamps.append(time.monotonic())
            for _ in range(200):
                pass

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    try:
        fn()
    finally:
        t1 = time.monotonic()
        stop.set()
        t.join()
    inside = [x for x in stamps if t0 <= x <= t1]
    edges = [t0] + inside + [t1]
    return t1 - t0, max(b - a for a, b in zip(edges, edges[1:]))


def test_gil_released_during_fit_and_batch():
    X = random_csr(8000, 4000, density=0.02, seed=11)
    its = 4
    m = cofi.AlternatingLeastSquares(factors=128, iterations=its, random_state=1,
                                     num_threads=1)
    took, stall = _longest_stall(lambda: m.fit(X, show_progress=False))
    assert stall < 0.5 * took / its, (took, stall)
    m.num_threads = 1
    users = np.arange(8000)
    took, stall = _longest_stall(lambda: m.recommend(users, X, N=50))
    assert stall < 0.5 * took, (took, stall)
    # control: a C call known to hold the GIL (sorting a list of ints) does
    # stall the other thread, so the measure above can fail
    data = list(range(3_000_000, 0, -1))
    data[::7] = range(len(data[::7]))
    took, stall = _longest_stall(lambda: sorted(data))
    assert stall > 0.5 * took, (took, stall)


def test_two_threads_recommending(small):
    m, X = small
    want = {u: m.recommend(u, X[u], N=10)[0].tolist() for u in range(60)}
    want_b = m.recommend(np.arange(60), X, N=10)[0]
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(2000):
                u = int(rng.integers(60))
                if m.recommend(u, X[u], N=10)[0].tolist() != want[u]:
                    errors.append(("single", u))
                if u % 50 == 0 and not np.array_equal(m.recommend(np.arange(60), X, N=10)[0],
                                                      want_b):
                    errors.append(("batch", u))
                if u % 7 == 0:
                    m.similar_items(u % 40, N=5)
                    m.recalculate_user(u, X[u])
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_no_leak_over_10000_calls(small):
    m, X = small
    rows = [X[u] for u in range(60)]
    users = np.arange(60)

    def calls(n):
        for i in range(n):
            u = i % 60
            m.recommend(u, rows[u], N=10)
            _, _, w = m.explain(u, rows[u], i % 40, N=3)  # a new explainer each call
            m.explain(u, rows[u], (i + 1) % 40, user_weights=w, N=3)
            if i % 10 == 0:
                m.recommend(users[:8], X[:8], N=5)
                m.similar_items(u % 40, N=5)
                m.recalculate_user(u, rows[u])
                _ = m.item_factors[u % 40]
            try:
                m.recommend(1000, rows[u], N=5)
            except IndexError:
                pass

    calls(2000)  # warm up caches, the shared workspace, numpy's pools
    rss0 = _rss_kb()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    calls(10000)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    rss1 = _rss_kb()
    assert grown < 64 * 1024, f"Python allocations grew by {grown} bytes over 10,000 calls"
    assert rss1 - rss0 < 2048, f"RSS grew by {rss1 - rss0} kB over 10,000 calls"


def test_native_model_threads(small, tmp_path):
    m, X = small
    p = tmp_path / "t.cofi"
    m.save(p)
    nm = cofi.open(p)
    want = nm.recommend("3", k=5)
    out = []

    def worker():
        for _ in range(500):
            out.append(nm.recommend("3", k=5) == want)

    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(out) and len(out) == 1000


def test_fit_leaves_openblas_threads_as_they_were():
    import ctypes
    import cofi._cofi as ext
    try:
        lib = ctypes.CDLL(ext.__file__)  # the extension's OpenBLAS symbols
        get, put = lib.openblas_get_num_threads, lib.openblas_set_num_threads
    except (OSError, AttributeError):
        pytest.skip("OpenBLAS symbols not reachable")
    put(2)
    assert get() == 2
    m = cofi.AlternatingLeastSquares(factors=4, iterations=2, random_state=0)
    m.fit(random_csr(20, 10), show_progress=False)
    assert get() == 2


def test_keyboard_interrupt_without_a_python_callback(medium):
    """The native train() with no callback: only the extension's signal
    check between iterations can notice Ctrl-C."""
    from cofi import _cofi
    ds = _cofi.from_csr(medium.shape[0], medium.shape[1], medium.indptr, medium.indices,
                        medium.data)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _cofi.train(ds, factors=32, iterations=100000)
    timer.cancel()
    assert time.monotonic() - t0 < 10
