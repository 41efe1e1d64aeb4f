#!/usr/bin/env python3
"""The Python layer's cost per single-user recommend: 9 interleaved rounds
of 20,000 calls each, the minimum of each kind (the round least disturbed
by other work on a shared machine), against the C call it makes, timed in
a loop in C in the same process (Model._time_recommend).

usage: overhead.py [ITEMS [FACTORS]]   (a random 600 x ITEMS model)
With a tiny catalog (overhead.py 16 4) the C call costs almost nothing and
the Python calls' time is the layer's fixed cost, which machine noise
cannot hide; with a real one (6000 64) the C call dominates.
"""
import sys
import timeit

import numpy as np
import scipy.sparse as sp

import cofi


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    factors = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    X = sp.random(600, items, density=max(0.01, 2.0 / items), format="csr", random_state=1, dtype=np.float32)
    X.data[:] = 5.0
    m = cofi.AlternatingLeastSquares(factors=factors, iterations=2, random_state=1)
    m.fit(X, show_progress=False)
    raw = m._model
    row = X[5]
    # the C loop filters the model's training row of user 5: the same items
    assert np.array_equal(raw.user_items(5)[0], row.indices)
    n = 20000

    g = dict(m=m, row=row, raw=raw, idx=row.indices)
    users = np.full(n, 5, np.uint32)
    c, imp, ix = [], [], []
    for _ in range(9):  # interleaved rounds; the minimum of each kind
        c.append(raw._time_recommend(users, 10, 1, True))
        imp.append(timeit.timeit("m.recommend(5, row, N=10)", globals=g, number=n) / n)
        ix.append(timeit.timeit("raw.recommend(5, 10, idx)", globals=g, number=n) / n)
    c, imp, ix = min(c), min(imp), min(ix)
    print(f"600 x {items}, {factors} factors, k = 10")
    print(f"C cofi_recommend_vector     {c * 1e6:6.2f} us")
    print(f"m.recommend(5, row, N=10)   {imp * 1e6:6.2f} us  (+{(imp - c) * 1e6:.2f} us)")
    print(f"raw.recommend(5, 10, seen)  {ix * 1e6:6.2f} us  (+{(ix - c) * 1e6:.2f} us)")


if __name__ == "__main__":
    main()
