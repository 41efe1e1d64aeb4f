"""Shared fixtures: small matrices, the ml-latest-small data and the cofi
binary (both optional: tests needing them skip when absent)."""
import os
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def shared_dir():
    env = os.environ.get("COFI_SHARED")
    for d in ([env] if env else []) + [os.path.join(REPO, "..", "shared")]:
        if d and os.path.isdir(os.path.join(d, "data")):
            return os.path.abspath(d)
    return None


@pytest.fixture(scope="session")
def ml_dir():
    d = shared_dir()
    path = os.path.join(d, "data", "ml-latest-small") if d else None
    if not path or not os.path.exists(os.path.join(path, "ratings.csv")):
        pytest.skip("ml-latest-small not found ($COFI_SHARED/data or ../shared/data)")
    return path


@pytest.fixture(scope="session")
def cofi_bin():
    cand = [os.environ.get("COFI"), os.path.join(REPO, "build", "cofi"), shutil.which("cofi")]
    for c in cand:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.skip("the cofi binary was not found (set COFI or build into build/)")


def random_csr(users=60, items=40, density=0.15, seed=0, value=5.0):
    rng = np.random.default_rng(seed)
    X = sp.random(users, items, density=density, format="csr", random_state=rng,
                  dtype=np.float32)
    X.data[:] = value
    return X


@pytest.fixture
def small():
    """A fitted model on a 60 x 40 matrix, and the matrix."""
    import cofi
    X = random_csr()
    m = cofi.AlternatingLeastSquares(factors=8, iterations=8, regularization=0.05,
                                     random_state=3, num_threads=1)
    m.fit(X, show_progress=False)
    return m, X
