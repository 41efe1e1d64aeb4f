#!/usr/bin/env python3
"""Python layer benchmarks (results and commands: python/README.md, and
docs/performance.md's Python section).

1. fit from Python (a scipy CSR, cofi.AlternatingLeastSquares) against
   `cofi train` on the same matrix, same parameters, interleaved runs;
2. recommend for one user: the implicit-style call, the index-based native
   call and the string-ID call, against the C call they make
   (cofi_recommend_vector, timed in a loop in C in the same process);
3. batch recommend for all users in one call, against one call per user.

usage: bench.py COFI_BINARY [--ml DIR] [--synth-rows N] [--reps 3]
Run with the venv's python where the cofi package is installed.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

import cofi


def load_avg():
    return os.getloadavg()[0]


def csr_from_csv(path, value_of):
    """A users x items CSR in the order cofi interns IDs (first appearance),
    duplicate pairs summed; value_of(row) gives a row's value."""
    users, items, rows, cols, vals = {}, {}, [], [], []
    with open(path) as f:
        for r in csv.DictReader(f):
            v = value_of(r)
            if v is None:
                continue
            rows.append(users.setdefault(r[UCOL], len(users)))
            cols.append(items.setdefault(r[ICOL], len(items)))
            vals.append(v)
    X = sp.coo_matrix((np.array(vals, np.float32), (rows, cols)),
                      shape=(len(users), len(items))).tocsr()
    X.sum_duplicates()
    return X


UCOL, ICOL = "userId", "movieId"


def time_fit(X, alpha, params, threads):
    # implicit's convention: the values are confidences; cofi's 1 + alpha r
    Xc = X.copy()
    Xc.data = (1.0 + alpha * Xc.data).astype(np.float32)
    m = cofi.AlternatingLeastSquares(factors=params["factors"],
                                     regularization=params["regularization"],
                                     iterations=params["iterations"], random_state=42,
                                     num_threads=threads)
    t0 = time.perf_counter()
    m.fit(Xc, show_progress=False)
    wall = time.perf_counter() - t0
    return wall, m._model.info()["train_seconds"], m


def time_cli(cofi_bin, args, params, alpha, threads, out):
    cmd = [cofi_bin, "train"] + args + [
        "--factors", str(params["factors"]), "--regularization", str(params["regularization"]),
        "--iterations", str(params["iterations"]), "--alpha", str(alpha), "--seed", "42",
        "--threads", str(threads), "-o", out, "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    return wall, cofi.open(out).info()["train_seconds"]


def bench_fit(name, cofi_bin, X, cli_args, alpha, params, threads, reps, tmp):
    py_wall, py_train, cli_wall, cli_train = [], [], [], []
    m = None
    for _ in range(reps):  # interleaved: machine noise hits both alike
        w, t, m = time_fit(X, alpha, params, threads)
        py_wall.append(w)
        py_train.append(t)
        w, t = time_cli(cofi_bin, cli_args, params, alpha, threads, os.path.join(tmp, "m.cofi"))
        cli_wall.append(w)
        cli_train.append(t)
    cm = cofi.open(os.path.join(tmp, "m.cofi"))
    same = np.array_equal(cm.item_factors, m.item_factors)
    med = statistics.median
    print(f"\n## fit: {name} ({X.shape[0]} x {X.shape[1]}, {X.nnz} nonzeros, "
          f"{params['factors']} factors, {params['iterations']} iterations, {threads} threads)")
    print("| | median | runs |")
    print("| --- | ---: | --- |")
    for label, xs in (("Python fit() wall (CSR -> dataset -> train -> model)", py_wall),
                      ("  of which training (model train_seconds)", py_train),
                      ("`cofi train` training (model train_seconds)", cli_train),
                      ("`cofi train` wall (incl. parse, save, process)", cli_wall)):
        print(f"| {label} | {med(xs):.3f} s | {', '.join(f'{x:.3f}' for x in xs)} |")
    print(f"fit wall / cofi train training time: {med(py_wall) / med(cli_train):.3f}; "
          f"factors identical to cofi train's: {same}")
    return m


def bench_single(m, X, reps):
    raw = m._model
    n = X.shape[0]
    users = np.arange(n)
    rows = [X[u] for u in range(n)]
    k = 10
    for u in range(min(n, 200)):  # warm up
        m.recommend(u, rows[u], N=k)
    res = {}
    for rep in range(reps):
        c = raw._time_recommend(users.astype(np.uint32), k, 3, True)
        t0 = time.perf_counter()
        for _ in range(3):
            for u in range(n):
                m.recommend(u, rows[u], N=k)
        imp = (time.perf_counter() - t0) / (3 * n)
        t0 = time.perf_counter()
        for _ in range(3):
            for u in range(n):
                raw.recommend(u, k, None, None, None, True)
        nat = (time.perf_counter() - t0) / (3 * n)
        for key, v in (("c", c), ("implicit", imp), ("raw", nat)):
            res.setdefault(key, []).append(v)
    med = statistics.median
    c = med(res["c"])
    print(f"\n## recommend one user (k = {k}, {n} users, seen items filtered; "
          "seconds per call, median of the runs)")
    print("| call | per call | overhead over C |")
    print("| --- | ---: | ---: |")
    print(f"| C: cofi_recommend_vector (loop in C) | {c * 1e6:.2f} us | |")
    print(f"| m.recommend(u, X[u] pre-sliced, N=10) (implicit API) | "
          f"{med(res['implicit']) * 1e6:.2f} us | {(med(res['implicit']) - c) * 1e6:.2f} us |")
    print(f"| model.raw.recommend(u, 10, ...) (index API) | {med(res['raw']) * 1e6:.2f} us | "
          f"{(med(res['raw']) - c) * 1e6:.2f} us |")
    t0 = time.perf_counter()
    for u in range(200):
        X[u]
    print(f"(for scale: slicing X[u] from a scipy CSR costs "
          f"{(time.perf_counter() - t0) / 200 * 1e6:.1f} us per row)")


def bench_batch(m, X, reps):
    n = X.shape[0]
    users = np.arange(n)
    rows = [X[u] for u in range(n)]
    batch, loop = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        ids, _ = m.recommend(users, X, N=10)
        batch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for u in range(n):
            m.recommend(u, rows[u], N=10)
        loop.append(time.perf_counter() - t0)
    med = statistics.median
    print(f"\n## recommend for all {n} users (k = 10, seen filtered, num_threads = "
          f"{m.num_threads or 'all'})")
    print(f"| one call, m.recommend(np.arange({n}), X) | {med(batch) * 1e3:.2f} ms | "
          f"{n / med(batch):,.0f} users/s |")
    print(f"| {n} calls, m.recommend(u, X[u]) | {med(loop) * 1e3:.2f} ms | "
          f"{n / med(loop):,.0f} users/s |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cofi")
    ap.add_argument("--ml", default=os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                 "shared", "data", "ml-latest-small"))
    ap.add_argument("--synth-rows", type=int, default=1000209)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    cpu = [line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines()
        if line.startswith("Model name")]
    print(f"# cofi Python benchmarks: {cpu[0] if cpu else '?'}, {os.cpu_count()} CPUs, "
          f"load average {load_avg():.2f} at start; cofi {cofi.__version__}, "
          f"Python {sys.version.split()[0]}, numpy {np.__version__}")
    params = dict(factors=64, regularization=0.02, iterations=20)
    with tempfile.TemporaryDirectory() as tmp:
        global UCOL, ICOL
        ml = os.path.abspath(a.ml)
        m = None
        if os.path.exists(os.path.join(ml, "ratings.csv")):
            UCOL, ICOL = "userId", "movieId"
            X = csr_from_csv(os.path.join(ml, "ratings.csv"),
                             lambda r: 1.0 if float(r["rating"]) >= 4 else None)
            m = bench_fit("ml-latest-small, ratings >= 4", a.cofi, X,
                          [os.path.join(ml, "ratings.csv"), "--format", "movielens",
                           "--min-value", "4"], 20.0, params, a.threads, a.reps, tmp)
            m.num_threads = a.threads
            bench_single(m, X, a.reps)
            bench_batch(m, X, a.reps)
        # a MovieLens-1M-shaped synthetic log (bench/gen_data.sh's synth1m)
        d = os.path.join(tmp, "synth")
        subprocess.run([a.cofi, "synth", "--users", "6040", "--items", "3706", "--interactions",
                        str(a.synth_rows), "--seed", "1", "-o", d], check=True,
                       capture_output=True)
        UCOL, ICOL = "user_id", "item_id"
        w = {"watch": 1.0, "like": 2.0, "complete": 3.0}
        X = csr_from_csv(os.path.join(d, "interactions.csv"), lambda r: w[r["event"]])
        m2 = bench_fit("synth1m (cofi synth, MovieLens-1M shape)", a.cofi, X,
                       [os.path.join(d, "interactions.csv")],
                       1.0, dict(factors=64, regularization=0.01, iterations=15), a.threads,
                       a.reps, tmp)
        m2.num_threads = a.threads
        bench_single(m2, X, a.reps)
        bench_batch(m2, X, a.reps)
    print(f"\nload average {load_avg():.2f} at the end")


if __name__ == "__main__":
    main()
