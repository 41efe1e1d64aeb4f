"""The native API: read (options, errors with file and line), train,
open, string IDs and titles, cold start, similar items/users, evaluate."""
import os

import numpy as np
import pytest

import cofi

LOG = """user_id,item_id,event,timestamp
u001,v001,watch,1
u001,v002,like,2
u002,v003,complete,3
u003,v004,watch,4
u004,v005,complete,5
u005,v001,watch,6
u001,v001,like,7
u002,v001,watch,8
u003,v002,watch,9
u005,v003,like,10
"""
ITEMS = """item_id,title,category
v001,How Python Works,tech
v002,"Cooking, Fast",food
v003,Travel Vlog Paris,travel
v004,Guitar Basics,music
v005,Yoga for Beginners,health
"""


@pytest.fixture
def files(tmp_path):
    log = tmp_path / "interactions.csv"
    log.write_text(LOG)
    items = tmp_path / "items.csv"
    items.write_text(ITEMS)
    return log, items


def test_read_train_recommend_with_titles(files, tmp_path):
    log, items = files
    ds = cofi.read(log, items=items)
    assert (ds.n_users, ds.n_items, len(ds)) == (5, 5, 10)
    model = cofi.train(ds, factors=4, iterations=10, alpha=10, seed=1)
    recs = model.recommend("u002", k=3)
    assert 1 <= len(recs) <= 3
    assert set(recs[0]) == {"item_id", "score", "title"}
    seen = {"v003", "v001"}
    assert not seen & {r["item_id"] for r in recs}
    assert all(a["score"] >= b["score"] for a, b in zip(recs, recs[1:]))
    titles = dict(line.split(",", 1)[0:2] for line in ITEMS.splitlines()[1:] if '"' not in line)
    for r in recs:
        if r["item_id"] in titles:
            assert r["title"] == titles[r["item_id"]].split(",")[0]
    all5 = model.recommend("u002", k=10, filter_seen=False, fields=True)
    assert len(all5) == 5 and all5[0]["fields"]["category"]
    assert {r["item_id"] for r in model.recommend("u002", k=10, exclude=["v002"])} <= {"v004", "v005"}
    p = tmp_path / "m.cofi"
    model.save(p)
    m2 = cofi.open(p)
    assert m2.recommend("u002", k=3) == recs
    assert cofi.open(p, private_copy=True).recommend("u002", k=3) == recs
    np.testing.assert_array_equal(m2.item_factors, model.item_factors)
    assert m2.history("u001") == [{"item_id": "v001", "value": 3.0}, {"item_id": "v002", "value": 2.0}]


def test_unknown_ids_and_cold_start(files):
    log, items = files
    model = cofi.train(cofi.read(log, items=items), factors=4, iterations=5)
    with pytest.raises(cofi.NotFoundError, match="cold start") as e:
        model.recommend("nobody")
    assert isinstance(e.value, KeyError)
    with pytest.raises(KeyError):
        model.similar_items("v999")
    cold = model.recommend_for_items(["v001", "v999"], k=10)
    assert "v001" not in {r["item_id"] for r in cold} and len(cold) == 4
    with pytest.raises(cofi.NotFoundError):
        model.recommend_for_items(["v999"])
    sim = model.similar_items("v001", k=2)
    assert len(sim) == 2 and all(r["item_id"] != "v001" for r in sim)
    su = model.similar_users("u001", k=10)
    assert len(su) == 4 and {"user_id", "score"} == set(su[0])
    allrec = model.recommend_all(k=2)
    assert set(allrec) == {"u001", "u002", "u003", "u004", "u005"}
    assert allrec["u002"] == [r["item_id"] for r in model.recommend("u002", k=2)]


def test_read_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,value\nu1,i1,1\nu2,i2,abc\n")
    with pytest.raises(cofi.ParseError) as e:
        cofi.read(bad, value_col="value")
    msg = str(e.value)
    assert "bad.csv:3" in msg and isinstance(e.value, ValueError)
    with pytest.raises(cofi.IOError):
        cofi.read(tmp_path / "missing.csv")
    nohdr = tmp_path / "cols.csv"
    nohdr.write_text("a,b\n1,2\n")
    with pytest.raises(cofi.Error):
        cofi.read(nohdr)
    with pytest.raises(ValueError):
        cofi.read(bad, format="parquet")


def test_event_weights_and_columns(tmp_path):
    f = tmp_path / "e.tsv"
    f.write_text("who\twhat\tkind\nA\tx\tbuy\nA\ty\tview\nB\tx\tview\n")
    ds = cofi.read(f, user_col="who", item_col="what", event_col="kind",
                   event_weights={"buy": 5, "view": 1})
    m = cofi.train(ds, factors=2, iterations=3)
    assert m.history("A") == [{"item_id": "x", "value": 5.0}, {"item_id": "y", "value": 1.0}]
    with pytest.raises(cofi.ParseError, match="buy"):
        cofi.read(f, user_col="who", item_col="what", event_col="kind",
                  event_weights={"view": 1})


def test_train_parameters_and_callback(files):
    log, _ = files
    ds = cofi.read(log)
    its = []
    cofi.train(ds, factors=3, iterations=4, compute_loss=True,
               callback=lambda i, s, loss: its.append((i, loss)))
    assert [i for i, _ in its] == [0, 1, 2, 3] and all(loss > 0 for _, loss in its)
    with pytest.raises(cofi.CancelledError):
        cofi.train(ds, factors=3, iterations=10, callback=lambda i, s, loss: i < 2)
    with pytest.raises(cofi.InvalidError, match="factors"):
        cofi.train(ds, factors=0)
    with pytest.raises(ValueError, match="solver"):
        cofi.train(ds, solver="sgd")
    with pytest.raises(TypeError):
        cofi.train(ds, learning_rate=0.1)
    a = cofi.train(ds, factors=3, iterations=3, seed=5, solver="cholesky")
    b = cofi.train(ds, factors=3, iterations=3, seed=5, solver="cholesky")
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    assert a.info()["params"]["solver"] == "cholesky"
    m = cofi.train(str(log), factors=3, iterations=2)  # a path is read with the defaults
    assert m.n_users == 5


def test_evaluate_on_ml(ml_dir):
    r = cofi.evaluate(ml_dir + "/ratings.csv", format="movielens", min_value=4, k=[5, 10],
                      factors=16, iterations=5)
    assert set(r) == {"als", "popularity", "random", "n_users", "skipped"}
    assert len(r["als"]) == 14 and "long_tail@10" in r["als"] and r["als"]["recall@10"] > r["popularity"]["recall@10"]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            r.to_frame()
    else:
        df = r.to_frame()
        assert list(df.index) == ["als", "popularity", "random"]
    rr = cofi.evaluate(ml_dir + "/ratings.csv", format="movielens", min_value=4,
                       protocol="users", heldout_users=30, factors=8, iterations=3,
                       baselines=False)
    assert set(rr) == {"als", "n_users", "skipped"} and 20 <= rr["n_users"] <= 30
    with pytest.raises(ValueError):
        cofi.evaluate(ml_dir + "/ratings.csv", protocol="nope")


def test_native_open_of_cli_model(ml_dir, cofi_bin, tmp_path):
    import subprocess
    out = tmp_path / "ml.cofi"
    subprocess.run([cofi_bin, "train", ml_dir + "/ratings.csv", "--format", "movielens",
                    "--min-value", "4", "--items", ml_dir + "/movies.csv", "--factors", "16",
                    "--iterations", "3", "-o", str(out), "--quiet"], check=True)
    nm = cofi.open(out)
    recs = nm.recommend("1", k=10)
    assert len(recs) == 10 and all(r["title"] for r in recs)
    import json
    cli = json.loads(subprocess.run([cofi_bin, "recommend", str(out), "--user", "1", "-k", "10",
                                     "--json"], check=True, capture_output=True, text=True).stdout)
    assert [r["item_id"] for r in recs] == [r["item_id"] for r in cli["recommendations"]]
    np.testing.assert_allclose([r["score"] for r in recs],
                               [r["score"] for r in cli["recommendations"]], rtol=1e-6)
    cold = nm.recommend_for_items(["1", "2", "3"], k=5)
    cli = json.loads(subprocess.run([cofi_bin, "recommend", str(out), "--liked", "1,2,3", "-k",
                                     "5", "--json"], check=True, capture_output=True,
                                    text=True).stdout)
    assert [r["item_id"] for r in cold] == [r["item_id"] for r in cli["recommendations"]]
    als = cofi.load(out)  # the implicit-style class opens CLI models too
    assert als.item_factors.shape == (nm.n_items, 16)
    assert os.path.getsize(out) > 0
