"""cofi.AlternatingLeastSquares against implicit 0.7's documented behaviour
on small matrices: shapes, filtering, N beyond the catalog, unknown ids,
empty rows, input types, parameter refusals, persistence, zero copy."""
import os
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import cofi
from conftest import random_csr


def brute_top(uf, itf, u, N, exclude=()):
    s = itf @ uf[u]
    s[list(exclude)] = -np.inf
    order = np.lexsort((np.arange(len(s)), -s))
    order = [i for i in order if np.isfinite(s[i])]
    return np.array(order[:N])


def test_shapes_and_types(small):
    m, X = small
    assert m.user_factors.shape == (60, 8) and m.item_factors.shape == (40, 8)
    assert m.user_factors.dtype == np.float32
    ids, scores = m.recommend(0, X[0], N=5)
    assert ids.shape == (5,) and scores.shape == (5,)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    b_ids, b_scores = m.recommend(np.arange(7), X[:7], N=5)
    assert b_ids.shape == (7, 5) and b_scores.shape == (7, 5)


def test_recommend_matches_brute_force(small):
    m, X = small
    for u in range(0, 60, 7):
        ids, scores = m.recommend(u, X[u], N=6)
        want = brute_top(m.user_factors, m.item_factors, u, 6, X[u].indices)
        assert ids.tolist() == want.tolist()
        np.testing.assert_allclose(scores, (m.item_factors @ m.user_factors[u])[ids], rtol=1e-5)
        assert np.all(np.diff(scores) <= 0)


def test_filtering(small):
    m, X = small
    u = int(np.argmax(np.diff(X.indptr)))
    liked = set(X[u].indices.tolist())
    ids, _ = m.recommend(u, X[u], N=40)
    assert not liked & set(ids.tolist())
    assert len(ids) == 40 - len(liked)  # fewer candidates: a shorter answer
    ids2, _ = m.recommend(u, X[u], N=40, filter_already_liked_items=False)
    assert len(ids2) == 40 and liked <= set(ids2.tolist())
    # user_items is not needed without filtering or recalculation
    ids3, _ = m.recommend(u, None, N=5, filter_already_liked_items=False)
    assert ids3.tolist() == ids2[:5].tolist()
    # filter_items
    ban = ids[:3]
    ids4, _ = m.recommend(u, X[u], N=5, filter_items=ban)
    assert not set(ban.tolist()) & set(ids4.tolist())
    assert ids4.tolist() == [i for i in ids.tolist() if i not in ban][:5]


def test_items_restricts_candidates(small):
    m, X = small
    items = [3, 9, 1, 20, 33]
    ids, scores = m.recommend(5, X[5], N=10, items=items, filter_already_liked_items=False)
    assert len(ids) == 5 and set(ids.tolist()) == set(items)
    s = m.item_factors[items] @ m.user_factors[5]
    assert scores[0] == pytest.approx(s.max(), rel=1e-5)
    with pytest.raises(ValueError):
        m.recommend(5, X[5], items=items, filter_items=[1])
    with pytest.raises(IndexError):
        m.recommend(5, X[5], items=[1, 400])


def test_n_larger_than_catalog(small):
    m, X = small
    ids, _ = m.recommend(1, X[1], N=1000, filter_already_liked_items=False)
    assert len(ids) == 40 and sorted(ids.tolist()) == list(range(40))
    b_ids, b_sc = m.recommend(np.arange(3), X[:3], N=1000)
    assert b_ids.shape == (3, 40)
    for r in range(3):
        n_liked = X[r].nnz
        assert np.all(b_ids[r, 40 - n_liked:] == -1) and np.all(np.isneginf(b_sc[r, 40 - n_liked:]))
        assert np.all(b_ids[r, :40 - n_liked] >= 0)
    s_ids, _ = m.similar_items(0, N=1000)
    assert len(s_ids) == 40 and s_ids[0] == 0


def test_batch_equals_single(small):
    m, X = small
    users = np.array([4, 0, 59, 4])
    b_ids, b_sc = m.recommend(users, X[users], N=8)
    for row, u in enumerate(users):
        ids, sc = m.recommend(int(u), X[u], N=8)
        assert b_ids[row].tolist() == ids.tolist()
        np.testing.assert_array_equal(b_sc[row], sc)
    # batch with recalculate_user equals single with it
    r_ids, _ = m.recommend(users, X[users], N=8, recalculate_user=True)
    assert r_ids[1].tolist() == m.recommend(0, X[0], N=8, recalculate_user=True)[0].tolist()


def test_unknown_ids(small):
    m, X = small
    with pytest.raises(IndexError):
        m.recommend(60, X[0], N=3)
    with pytest.raises(IndexError):
        m.recommend(-1, X[0], N=3)
    with pytest.raises(IndexError):
        m.recommend(np.array([1, 99]), X[:2], N=3)
    with pytest.raises(IndexError):
        m.similar_items(40)
    with pytest.raises(IndexError):
        m.similar_users(1000)
    with pytest.raises(ValueError, match="1 row for every user"):
        m.recommend(0, X[:2], N=3)
    with pytest.raises(IndexError):
        m.recommend(0, X[0], N=3, filter_items=[77])


def test_empty_rows_and_columns():
    X = random_csr(30, 20, seed=4).tolil()
    X[5, :] = 0
    X[:, 7] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    m = cofi.AlternatingLeastSquares(factors=4, iterations=5, random_state=0)
    m.fit(X, show_progress=False)
    assert m.user_factors.shape == (30, 4) and m.item_factors.shape == (20, 4)
    assert np.abs(m.user_factors[5]).max() < 1e-2  # no data: stays near zero
    ids, _ = m.recommend(5, X[5], N=3)
    assert len(ids) == 3
    # recalculate_user of an empty row is the zero vector, as implicit's
    assert not m.recalculate_user(5, X[5]).any()


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32, np.float32])
def test_input_dtypes_give_the_same_model(dtype):
    X = random_csr(40, 30, seed=2, value=3)
    ref = cofi.AlternatingLeastSquares(factors=6, iterations=4, random_state=9)
    ref.fit(X, show_progress=False)
    m = cofi.AlternatingLeastSquares(factors=6, iterations=4, random_state=9)
    m.fit(X.astype(dtype), show_progress=False)
    np.testing.assert_array_equal(m.item_factors, ref.item_factors)
    # int64 index arrays (scipy uses them for big matrices) work too
    X64 = sp.csr_matrix((X.data.astype(dtype), X.indices.astype(np.int64),
                         X.indptr.astype(np.int64)), shape=X.shape)
    m.fit(X64, show_progress=False)
    np.testing.assert_array_equal(m.item_factors, ref.item_factors)


def test_non_csr_inputs():
    X = random_csr(20, 10, seed=1)
    m = cofi.AlternatingLeastSquares(factors=3, iterations=2, random_state=0)
    for other in (X.tocoo(), X.tocsc(), X.todok()):
        with pytest.warns(UserWarning, match="CSR"):
            m.fit(other, show_progress=False)
    with pytest.raises(TypeError, match="CSR"):
        m.fit(X.toarray(), show_progress=False)
    with pytest.raises(TypeError, match="CSR"):
        m.fit([[1, 0], [0, 1]], show_progress=False)
    m.fit(X, show_progress=False)
    with pytest.raises(ValueError, match="CSR"):  # implicit: user_items must be CSR
        m.recommend(0, X[0].toarray(), N=3)


def test_confidence_mapping_and_refusals():
    X = random_csr(20, 10, seed=1, value=1.0)
    # implicit's confidence is alpha * value: data 21 with alpha 1 equals data 1 with alpha 21
    a = cofi.AlternatingLeastSquares(factors=4, iterations=3, random_state=5)
    a.fit(X * 21.0, show_progress=False)
    b = cofi.AlternatingLeastSquares(factors=4, iterations=3, alpha=21.0, random_state=5)
    b.fit(X, show_progress=False)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    bad = X.copy()
    bad.data[0] = 0.5
    with pytest.raises(ValueError, match="alpha \\* value must be >= 1"):
        a.fit(bad, show_progress=False)
    bad.data[0] = -1
    with pytest.raises(ValueError):
        a.fit(bad, show_progress=False)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        a.fit(bad, show_progress=False)


def test_parameters_cofi_does_not_have():
    with pytest.raises(NotImplementedError, match="GPU"):
        cofi.AlternatingLeastSquares(use_gpu=True)
    with pytest.raises(ValueError, match="float32"):
        cofi.AlternatingLeastSquares(dtype=np.float64)
    with pytest.raises(ValueError):
        cofi.AlternatingLeastSquares(use_native=False)
    with pytest.raises(TypeError):
        cofi.AlternatingLeastSquares(no_such_parameter=1)
    for absent in ("partial_fit_users", "partial_fit_items", "recalculate_item", "to_gpu"):
        assert not hasattr(cofi.AlternatingLeastSquares(), absent)
    X = random_csr(10, 8)
    for bad in (dict(factors=0), dict(iterations=0), dict(regularization=-1.0)):
        with pytest.raises(cofi.InvalidError) as e:
            cofi.AlternatingLeastSquares(**bad).fit(X, show_progress=False)
        assert isinstance(e.value, ValueError) and isinstance(e.value, cofi.Error)


def test_defaults_are_implicits():
    m = cofi.AlternatingLeastSquares()
    assert (m.factors, m.regularization, m.alpha, m.iterations, m.use_cg,
            m.calculate_training_loss, m.num_threads, m.random_state) == \
        (100, 0.01, 1.0, 15, True, False, 0, None)
    assert m.user_factors is None and m.item_factors is None
    with pytest.raises(ValueError, match="not fitted"):
        m.recommend(0, None, filter_already_liked_items=False)


def test_deterministic_and_cholesky():
    X = random_csr(30, 20, seed=7)
    a = cofi.AlternatingLeastSquares(factors=5, iterations=3, random_state=1, num_threads=1)
    b = cofi.AlternatingLeastSquares(factors=5, iterations=3, random_state=1, num_threads=2)
    a.fit(X, show_progress=False)
    b.fit(X, show_progress=False)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    c = cofi.AlternatingLeastSquares(factors=5, iterations=3, random_state=1, use_cg=False)
    c.fit(X, show_progress=False)
    assert not np.array_equal(a.user_factors, c.user_factors)
    assert np.corrcoef((a.user_factors @ a.item_factors.T).ravel(),
                       (c.user_factors @ c.item_factors.T).ravel())[0, 1] > 0.9


def test_callback_and_loss():
    X = random_csr(30, 20, seed=7)
    seen = []
    m = cofi.AlternatingLeastSquares(factors=5, iterations=4, random_state=1,
                                     calculate_training_loss=True)
    m.fit(X, show_progress=False, callback=lambda it, t, loss: seen.append((it, t, loss)))
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert all(s[2] is not None and s[2] > 0 for s in seen)
    assert seen[-1][2] <= seen[0][2]
    seen.clear()
    m2 = cofi.AlternatingLeastSquares(factors=5, iterations=2, random_state=1)
    m2.fit(X, show_progress=False, callback=lambda it, t, loss: seen.append(loss))
    assert seen == [None, None]


def test_callback_exception_stops_fit():
    X = random_csr(30, 20, seed=7)
    m = cofi.AlternatingLeastSquares(factors=5, iterations=50, random_state=1)

    def boom(it, t, loss):
        if it == 2:
            raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        m.fit(X, show_progress=False, callback=boom)
    assert m.user_factors is None  # the model keeps its previous state


def test_similar_items_and_users(small):
    m, X = small
    ids, scores = m.similar_items(3, N=6)
    assert ids[0] == 3 and scores[0] == pytest.approx(1.0)
    F = m.item_factors
    cos = F @ F[3] / np.linalg.norm(F, axis=1) / np.linalg.norm(F[3])
    cos[3] = np.inf
    want = np.argsort(-cos, kind="stable")[:6]
    assert ids.tolist() == want.tolist()
    np.testing.assert_allclose(scores[1:], cos[ids[1:]], rtol=1e-4)
    u_ids, _ = m.similar_users(2, N=4)
    assert u_ids[0] == 2 and len(u_ids) == 4
    f_ids, _ = m.similar_items(3, N=6, filter_items=[ids[1]])
    assert ids[1] not in f_ids and len(f_ids) == 6
    sub_ids, _ = m.similar_items(3, N=3, items=[3, 10, 11, 12])
    assert sub_ids[0] == 3 and set(sub_ids.tolist()) <= {3, 10, 11, 12}
    b_ids, b_sc = m.similar_items(np.array([3, 4]), N=5)
    assert b_ids.shape == (2, 5) and b_ids[0].tolist() == ids[:5].tolist()
    with pytest.raises(NotImplementedError):
        m.similar_items(3, recalculate_item=True)


def test_recalculate_user(small):
    m, X = small
    u = int(np.argmax(np.diff(X.indptr)))
    v = m.recalculate_user(u, X[u])
    assert v.shape == (8,) and v.dtype == np.float32
    # close to the trained vector (the same least-squares problem)
    assert np.corrcoef(v, m.user_factors[u])[0, 1] > 0.9
    V = m.recalculate_user(np.array([u, 0]), X[[u, 0]])
    assert V.shape == (2, 8)
    np.testing.assert_array_equal(V[0], v)
    with pytest.raises(ValueError):
        m.recalculate_user(u, X[:3])


def test_zero_copy_and_read_only(small, tmp_path):
    m, X = small
    for f in (m.user_factors, m.item_factors):
        assert not f.flags["OWNDATA"] and not f.flags["WRITEABLE"]
        b = f
        while isinstance(b, np.ndarray) and b.base is not None:
            b = b.base
        assert type(b).__name__ == "Model"
    with pytest.raises(ValueError):
        m.item_factors[0, 0] = 1.0
    with pytest.raises(AttributeError, match="immutable"):
        m.user_factors = np.zeros((60, 8), np.float32)
    # a view keeps the model alive after the wrapper is gone
    p = tmp_path / "m.cofi"
    m.save(p)
    f = cofi.load(p).item_factors
    np.testing.assert_array_equal(f, m.item_factors)


def test_save_load_pickle(small, tmp_path):
    m, X = small
    p = tmp_path / "model.cofi"
    m.save(str(p))
    m2 = cofi.load(p)
    np.testing.assert_array_equal(m2.user_factors, m.user_factors)
    assert m2.factors == 8 and m2.iterations == 8
    assert m2.recommend(3, X[3], N=5)[0].tolist() == m.recommend(3, X[3], N=5)[0].tolist()
    m3 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m3.item_factors, m.item_factors)
    assert m3.alpha == m.alpha and m3.random_state == m.random_state
    unfit = pickle.loads(pickle.dumps(cofi.AlternatingLeastSquares(factors=7)))
    assert unfit.factors == 7 and unfit.item_factors is None
    # the model file is cofi's: the native API opens it
    nm = cofi.open(p)
    assert nm.n_items == 40
    # and a non-model file is refused with the library's message
    junk = tmp_path / "junk.cofi"
    junk.write_bytes(b"not a model" * 20)
    with pytest.raises(cofi.NotAModelError) as e:
        cofi.load(junk)
    assert isinstance(e.value, ValueError) and "junk.cofi" in str(e.value)
    with pytest.raises(cofi.IOError) as e:
        cofi.load(tmp_path / "missing.cofi")
    assert isinstance(e.value, OSError)


def test_warning_free_normal_use(small):
    m, X = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.recommend(0, X[0], N=3)
        m.recommend(np.arange(3), X[:3], N=3)
        m.similar_items(1)


def test_negative_n_and_malformed_csr(small):
    m, X = small
    with pytest.raises(ValueError, match="N must be"):
        m.recommend(0, X[0], N=-1)
    with pytest.raises(ValueError, match="N must be"):
        m.similar_items(0, N=-3)
    assert len(m.recommend(0, X[0], N=0)[0]) == 0
    from cofi import _cofi
    for indices in (np.array([0, 5], np.int32), np.array([0, 5], np.int64),
                    np.array([0, -1], np.int32)):
        with pytest.raises(ValueError, match="out of range"):
            _cofi.from_csr(2, 3, np.array([0, 1, 2]), indices, np.ones(2))
    with pytest.raises(ValueError, match="indptr"):
        _cofi.from_csr(2, 3, np.array([0, 1, 3]), np.array([0, 1], np.int32), np.ones(2))
    with pytest.raises(ValueError, match="negative"):
        _cofi.from_csr(2, 3, np.array([0, -1, 2]), np.array([0, 1], np.int32), np.ones(2))
    with pytest.raises(cofi.InvalidError, match="decreases"):
        _cofi.from_csr(2, 3, np.array([0, 2, 1]), np.array([0], np.int32), np.ones(1))
    ds = _cofi.from_csr(2, 3, np.array([0, 1, 2]), np.array([2, 0], np.int32), np.ones(2))
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 3, 2)


def test_index_arguments_are_checked(small):
    m, X = small
    ref = m.recommend(0, X[0], N=5, filter_items=[1, 2])[0]
    for form in ([1, 2], (1, 2), np.array([1, 2], np.int64), np.array([1, 2], np.uint32),
                 np.array([1, 2], ">i4"), np.array([1, 2, 1, 2], np.int32)[::2]):
        assert m.recommend(0, X[0], N=5, filter_items=form)[0].tolist() == ref.tolist()
    with pytest.raises(TypeError, match="boolean"):
        m.recommend(0, X[0], N=5, filter_items=np.zeros(40, bool))
    with pytest.raises(TypeError, match="integer"):
        m.recommend(0, X[0], N=5, filter_items=np.array([1.5]))
    # a big-endian CSR trains the same model
    X2 = X.copy()
    X2.indices = X2.indices.astype(">i4")
    X2.indptr = X2.indptr.astype(">i8")
    X2.data = X2.data.astype(">f4")
    a = cofi.AlternatingLeastSquares(factors=4, iterations=2, random_state=1)
    a.fit(X, show_progress=False)
    b = cofi.AlternatingLeastSquares(factors=4, iterations=2, random_state=1)
    b.fit(X2, show_progress=False)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
