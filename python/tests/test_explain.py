"""explain: AlternatingLeastSquares.explain (implicit 0.7's semantics and
return shape) and the native Model.explain / recommend(explain=True),
compared with a NumPy reference of Hu, Koren, Volinsky's section 5, with
recalculate_user and with `cofi recommend --explain --json`."""
import json
import pickle
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp

import cofi
from conftest import random_csr


def graded_csr(users=50, items=30, density=0.2, seed=1):
    """Values 1..6 (not all equal), so a wrong confidence conversion shows."""
    X = random_csr(users, items, density, seed)
    rng = np.random.default_rng(seed + 100)
    X.data[:] = rng.integers(1, 7, size=X.nnz).astype(np.float32)
    return X


@pytest.fixture(params=["cg", "cholesky"])
def fitted(request):
    X = graded_csr()
    m = cofi.AlternatingLeastSquares(factors=6, iterations=10, regularization=0.1, alpha=2.0,
                                     use_cg=request.param == "cg", random_state=7,
                                     num_threads=1)
    m.fit(X, show_progress=False)
    return m, X


def reference(m, X, u, item):
    """implicit's explain in NumPy (float64): A = Y^T Y + reg I + sum (c-1) y y^T
    over the row, c = alpha * value; contribution_j = c_j (A^-1 y_i) . y_j."""
    Y = m.item_factors.astype(np.float64)
    row = X[u]
    c = m.alpha * row.data.astype(np.float64)
    A = Y.T @ Y + m.regularization * np.eye(Y.shape[1])
    for j, cj in zip(row.indices, c):
        A += (cj - 1) * np.outer(Y[j], Y[j])
    z = np.linalg.solve(A, Y[item])
    contrib = {int(j): cj * z.dot(Y[j]) for j, cj in zip(row.indices, c)}
    return sum(contrib.values()), contrib


def test_contributions_sum_to_the_recalculated_score(fitted):
    m, X = fitted
    checked = 0
    for u in range(0, X.shape[0], 3):
        if X[u].nnz == 0:
            continue
        ids, scores = m.recommend(u, X[u], N=5, recalculate_user=True)
        vec = m.recalculate_user(u, X[u])
        w = None
        for item, rec_score in zip(ids.tolist(), scores.tolist()):
            score, top, w = m.explain(u, X, item, user_weights=w, N=X[u].nnz)
            assert isinstance(score, float) and len(top) == X[u].nnz
            assert sorted(i for i, _ in top) == sorted(X[u].indices.tolist())
            assert sum(c for _, c in top) == pytest.approx(score, rel=1e-4)
            assert score == pytest.approx(rec_score, rel=1e-4)
            assert score == pytest.approx(float(m.item_factors[item] @ vec), rel=1e-4)
            contribs = [c for _, c in top]
            assert contribs == sorted(contribs, reverse=True)
            checked += 1
    assert checked >= 40


def test_matches_the_numpy_reference(fitted):
    m, X = fitted
    for u in (0, 5, 11):
        for item in (0, 7, 29):
            score, top, _ = m.explain(u, X, item, N=100)
            want_score, want = reference(m, X, u, item)
            assert score == pytest.approx(want_score, rel=1e-4, abs=1e-6)
            assert len(top) == len(want)
            for i, c in top:
                assert c == pytest.approx(want[i], rel=1e-3, abs=1e-6)


def test_n_handling(fitted):
    m, X = fitted
    u = int(np.argmax(np.diff(X.indptr)))
    nnz = X[u].nnz
    assert nnz >= 4
    full_score, full, w = m.explain(u, X, 3, N=nnz)
    assert m.explain(u, X, 3)[1] == full[:10]  # N defaults to 10
    for n in (0, 1, 2, nnz - 1, nnz, nnz + 5, 10**6):
        score, top, _ = m.explain(u, X, 3, user_weights=w, N=n)
        assert score == full_score  # the score does not depend on N
        assert top == full[:n]
    with pytest.raises(ValueError):
        m.explain(u, X, 3, N=-1)
    with pytest.raises(ValueError):
        m.explain(u, X, 3, N=2.5)


def test_user_items_row_given_not_trained(fitted):
    m, X = fitted
    u = 4
    # one row or the whole matrix: the same history
    assert m.explain(u, X[u], 2)[:2] == m.explain(u, X, 2)[:2]
    # another history for the same user: its own items, its own score
    other = sp.csr_matrix(([3.0, 1.0], ([0, 0], [1, 8])), shape=(1, X.shape[1]))
    score, top, _ = m.explain(u, other, 2)
    assert sorted(i for i, _ in top) == [1, 8]
    assert score == pytest.approx(float(m.item_factors[2] @ m.recalculate_user(u, other)),
                                  rel=1e-4)
    # an empty row: the zero vector, as recalculate_user
    empty = sp.csr_matrix((1, X.shape[1]), dtype=np.float32)
    score, top, w = m.explain(u, empty, 2)
    assert (score, top) == (0.0, [])
    assert m.explain(u, empty, 5, user_weights=w)[:2] == (0.0, [])
    # values as fit reads them: alpha * value >= 1
    bad = sp.csr_matrix(([0.25], ([0], [1])), shape=(1, X.shape[1]))
    with pytest.raises(ValueError, match="confidence"):
        m.explain(u, bad, 2)


def test_bad_ids_raise(fitted):
    m, X = fitted
    for uid in (-1, X.shape[0], 10**9):
        with pytest.raises(IndexError):
            m.explain(uid, X, 0)
    for iid in (-1, X.shape[1], 10**9):
        with pytest.raises(IndexError):
            m.explain(0, X, iid)
    with pytest.raises(ValueError):
        m.explain(np.arange(2), X, 0)
    with pytest.raises(ValueError):
        m.explain(0, X, [1, 2])
    with pytest.raises(IndexError):
        m.explain(5, X[:3], 0)  # no row 5 in a 3-row matrix
    with pytest.raises(ValueError):
        m.explain(0, X[:, :10], 0)  # wrong number of items
    with pytest.raises(TypeError):
        m.explain(0, X.toarray(), 0)
    with pytest.raises(ValueError, match="not fitted"):
        cofi.AlternatingLeastSquares().explain(0, X, 0)


def test_user_weights_reuse(fitted):
    m, X = fitted
    u = 9
    first = {}
    score0, top0, w = m.explain(u, X, 0, N=4)
    assert isinstance(w, cofi.UserWeights)
    for item in range(X.shape[1]):
        first[item] = m.explain(u, X, item, N=4)[:2]
    for item in reversed(range(X.shape[1])):
        score, top, w2 = m.explain(u, X, item, user_weights=w, N=4)
        assert (score, top) == first[item]  # identical, not just close
        assert w2 is w
    assert first[0] == (score0, top0)
    with pytest.raises(ValueError, match="userid"):
        m.explain(u + 1, X, 0, user_weights=w)
    other = X.copy()
    other.data = other.data * 2
    with pytest.raises(ValueError, match="row"):
        m.explain(u, other, 0, user_weights=w)
    with pytest.raises(ValueError, match="UserWeights"):
        m.explain(u, X, 0, user_weights=np.eye(6))
    m2 = cofi.AlternatingLeastSquares(factors=6, iterations=2, random_state=1, num_threads=1)
    m2.fit(X, show_progress=False)
    with pytest.raises(ValueError, match="another model"):
        m2.explain(u, X, 0, user_weights=w)
    m.fit(X, show_progress=False)  # a new model in the same object
    with pytest.raises(ValueError, match="another model"):
        m.explain(u, X, 0, user_weights=w)
    with pytest.raises(TypeError):
        pickle.dumps(w)


def test_loaded_model_reads_values_as_confidences(fitted, tmp_path):
    m, X = fitted
    p = tmp_path / "m.cofi"
    m.save(p)
    loaded = cofi.load(p)  # alpha 1.0: the values are confidences
    assert loaded.alpha == 1.0
    conf = X.copy()
    conf.data = conf.data * np.float32(m.alpha)
    for u in (1, 2):
        a = m.explain(u, X, 5, N=50)
        b = loaded.explain(u, conf, 5, N=50)
        assert b[0] == pytest.approx(a[0], rel=1e-5)
        assert [i for i, _ in b[1]] == [i for i, _ in a[1]]


# ---- the native API -------------------------------------------------------

LOG = """user_id,item_id,event,timestamp
u1,a,watch,1
u1,b,like,2
u1,c,watch,3
u2,a,watch,4
u2,d,complete,5
u3,b,watch,6
u3,c,like,7
u3,e,watch,8
u4,d,watch,9
u4,e,watch,10
u5,a,like,11
u5,e,complete,12
"""
ITEMS = "item_id,title\na,Alpha\nb,Beta\nc,Gamma\nd,Delta\ne,Epsilon\n"


@pytest.fixture
def native(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(LOG)
    items = tmp_path / "items.csv"
    items.write_text(ITEMS)
    return cofi.train(cofi.read(log, items=items), factors=3, iterations=8, alpha=5,
                      regularization=0.1, seed=2)


def test_native_explain(native):
    m = native
    e = m.explain("u1", "d", n=3)
    assert set(e) == {"user_id", "item_id", "title", "score", "because"}
    assert (e["user_id"], e["item_id"], e["title"]) == ("u1", "d", "Delta")
    assert [set(b) for b in e["because"]] == [{"item_id", "title", "contribution"}] * 3
    full = m.explain("u1", "d", n=100)
    assert len(full["because"]) == 3 and full["because"] == e["because"]
    assert sum(b["contribution"] for b in full["because"]) == pytest.approx(e["score"], rel=1e-4)
    # the score of the user folded in from their training history
    hist = m.history("u1")
    idx = [m.item_index(h["item_id"]) for h in hist]
    vec = m.raw.fold_in(idx, [h["value"] for h in hist])
    assert e["score"] == pytest.approx(float(m.item_factors[m.item_index("d")] @ vec), rel=1e-4)
    assert len(m.explain("u1", "d", n=1)["because"]) == 1
    assert m.explain("u1", "d", n=0)["because"] == []
    with pytest.raises(cofi.NotFoundError):
        m.explain("nobody", "a")
    with pytest.raises(cofi.NotFoundError):
        m.explain("u1", "zzz")
    with pytest.raises(ValueError):
        m.explain("u1", "a", n=-1)
    cold = m.explain_for_items(["a", "b", "nope"], "e", n=5)
    assert {b["item_id"] for b in cold["because"]} == {"a", "b"}
    assert sum(b["contribution"] for b in cold["because"]) == pytest.approx(cold["score"],
                                                                          rel=1e-4)


def test_native_recommend_explain(native):
    m = native
    plain = m.recommend("u2", k=3)
    recs = m.recommend("u2", k=3, explain=True)
    assert [{k: v for k, v in r.items() if k != "because"} for r in recs] == plain
    hist = {h["item_id"] for h in m.history("u2")}
    for r in recs:
        assert 1 <= len(r["because"]) <= 3
        assert {b["item_id"] for b in r["because"]} <= hist
        assert r["because"] == m.explain("u2", r["item_id"])["because"]
        cs = [b["contribution"] for b in r["because"]]
        assert cs == sorted(cs, reverse=True)
    assert all("because" not in r for r in m.recommend("u2", k=3, explain=False))
    one = m.recommend("u2", k=3, explain=1)
    assert all(len(r["because"]) == 1 for r in one)
    with pytest.raises(ValueError):
        m.recommend("u2", explain=-2)
    cold = m.recommend_for_items(["a", "b"], k=2, explain=True)
    assert all({b["item_id"] for b in r["because"]} <= {"a", "b"} for r in cold)


def _cli_json(cofi_bin, *args):
    out = subprocess.run([cofi_bin, "recommend", *args, "--explain", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["recommendations"]


def _same_as_cli(py, cli):
    assert [r["item_id"] for r in py] == [r["item_id"] for r in cli]
    for p, c in zip(py, cli):
        assert p.get("title") == c.get("title")
        assert p["score"] == pytest.approx(c["score"], rel=1e-6)
        assert [b["item_id"] for b in p["because"]] == [b["item_id"] for b in c["because"]]
        assert [b.get("title") for b in p["because"]] == [b.get("title") for b in c["because"]]
        np.testing.assert_allclose([b["contribution"] for b in p["because"]],
                                   [b["contribution"] for b in c["because"]], rtol=1e-7,
                                   atol=1e-12)


def test_native_explain_matches_cli(ml_dir, cofi_bin, tmp_path):
    out = tmp_path / "ml.cofi"
    subprocess.run([cofi_bin, "train", ml_dir + "/ratings.csv", "--format", "movielens",
                    "--min-value", "4", "--items", ml_dir + "/movies.csv", "--factors", "16",
                    "--iterations", "4", "--alpha", "10", "-o", str(out), "--quiet"],
                   check=True)
    nm = cofi.open(out)
    for user in ("1", "42", "599"):
        _same_as_cli(nm.recommend(user, k=10, explain=True),
                     _cli_json(cofi_bin, str(out), "--user", user, "-k", "10"))
    _same_as_cli(nm.recommend_for_items(["1", "2", "3", "50"], k=8, explain=True),
                 _cli_json(cofi_bin, str(out), "--liked", "1,2,3,50", "-k", "8"))
    # the implicit-style class on the same file: the user's training row,
    # values as cofi's r (alpha 10), gives the CLI's contributions
    als = cofi.load(out)
    u = nm.user_index("42")
    hist = nm.raw.user_items(u)
    row = sp.csr_matrix((1.0 + 10.0 * hist[1], (np.zeros(len(hist[0]), int), hist[0])),
                        shape=(1, nm.n_items), dtype=np.float32)
    cli = _cli_json(cofi_bin, str(out), "--user", "42", "-k", "3")
    for r in cli:
        _, top, _ = als.explain(u, row, nm.item_index(r["item_id"]), N=3)
        assert [nm.raw.item_id(i) for i, _ in top] == [b["item_id"] for b in r["because"]]
        np.testing.assert_allclose([c for _, c in top],
                                   [b["contribution"] for b in r["because"]], rtol=1e-5)
