"""cofi's native Python API: string IDs, titles, model files, evaluation.

    ds = cofi.read("ratings.csv", format="movielens", min_value=4, items="movies.csv")
    model = cofi.train(ds, factors=64, regularization=0.02, alpha=20, iterations=20)
    model.save("ml.cofi")
    model = cofi.open("ml.cofi")                 # memory-mapped
    model.recommend("1", k=10)                   # [{"item_id", "score", "title"}, ...]
    model.similar_items("1", k=5)
    model.explain("1", "318", n=3)               # {"score", "because": [{"item_id", ...}]}
    model.recommend("1", k=10, explain=True)     # each row with "because" (the CLI's --explain)
    cofi.evaluate("ratings.csv", format="movielens", min_value=4, factors=64, ...)
"""
import os

import numpy as np

from . import _cofi

Dataset = _cofi.Dataset

_FORMATS = {"csv": 0, "tsv": 0, "movielens": 1}
_PROTOCOLS = {"leave_last_out": 0, "random": 1, "users": 2}
_SOLVERS = {"cg": 0, "cholesky": 1}
# cofi_part values
_TRAIN, _VALIDATION, _TEST, _VALIDATION_FOLDIN, _TEST_FOLDIN = range(5)


def read(path, format="csv", user_col=None, item_col=None, value_col=None, event_col=None,
         time_col=None, delimiter=None, event_weights=None, min_value=None, items=None,
         items_id_col=None):
    """Reads interactions (CSV/TSV with a header, or MovieLens ratings) into a
    Dataset; items= joins item metadata (titles) by item ID. Errors name the
    file and line (cofi.ParseError, cofi.IOError, ...)."""
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {sorted(_FORMATS)}, got {format!r}")
    ds = _cofi.read(os.fspath(path), _FORMATS[format], user_col, item_col, value_col, event_col,
                    time_col, delimiter, event_weights, min_value)
    if items is not None:
        ds.read_items(os.fspath(items), items_id_col)
    return ds


def _params(factors=64, regularization=0.01, alpha=1.0, iterations=15, seed=42, solver="cg",
            cg_steps=3, threads=0, reg_exponent=0.0, unobserved_weight=1.0, compute_loss=False,
            callback=None):
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be 'cg' or 'cholesky', got {solver!r}")
    return dict(factors=int(factors), regularization=float(regularization), alpha=float(alpha),
                iterations=int(iterations), seed=int(seed), solver=_SOLVERS[solver],
                cg_steps=int(cg_steps), threads=int(threads), reg_exponent=float(reg_exponent),
                unobserved_weight=float(unobserved_weight), compute_loss=bool(compute_loss),
                callback=callback)


def train(dataset, **params):
    """Trains implicit ALS (cofi's parameters: factors=64, regularization=0.01,
    alpha=1.0 with confidence 1 + alpha * value, iterations=15, seed=42,
    solver='cg', cg_steps=3, threads=0, reg_exponent=0, unobserved_weight=1,
    compute_loss=False, callback=None) on a Dataset or a path (read with the
    defaults). callback(iteration, seconds, loss) runs after each iteration;
    returning False stops training (cofi.CancelledError). The GIL is released
    while training; Ctrl-C stops it (KeyboardInterrupt)."""
    if not isinstance(dataset, Dataset):
        dataset = read(dataset)
    return Model(_cofi.train(dataset, **_params(**params)))


def open(path, private_copy=False):  # noqa: A001 (the package's verb)
    """Opens a model file: validated, then memory-mapped (private_copy=True
    reads it into memory instead, immune to the file being rewritten)."""
    return Model(_cofi.open(os.fspath(path), private_copy))


def _because_count(explain):
    """recommend's explain=: False/0 none, True 3 (the CLI's), an int n."""
    if isinstance(explain, (bool, np.bool_)):
        return 3 if explain else 0
    if isinstance(explain, (int, np.integer)) and explain >= 0:
        return int(explain)
    raise ValueError(f"explain must be True/False or a count >= 0, got {explain!r}")


class Model:
    """A trained or opened cofi model, addressed by string IDs. Immutable
    and safe to share between threads."""

    def __init__(self, raw):
        self._m = raw
        self._titles = raw.info()["n_item_fields"] > 0

    @property
    def raw(self):
        """The underlying cofi._cofi.Model (index-based calls)."""
        return self._m

    @property
    def n_users(self):
        return self._m.n_users

    @property
    def n_items(self):
        return self._m.n_items

    @property
    def user_factors(self):
        return self._m.user_factors()

    @property
    def item_factors(self):
        return self._m.item_factors()

    def info(self):
        return self._m.info()

    def save(self, path):
        self._m.save(os.fspath(path))

    def user_index(self, user_id):
        i = self._m.find_user(str(user_id))
        if i < 0:
            raise _cofi.NotFoundError(
                f"unknown user {str(user_id)[:40]!r}: not in the training data; "
                "use recommend_for_items(liked_item_ids) for a new user (cold start)")
        return i

    def item_index(self, item_id):
        i = self._m.find_item(str(item_id))
        if i < 0:
            raise _cofi.NotFoundError(f"unknown item {str(item_id)[:40]!r}: not in the model")
        return i

    def _rows(self, ids, scores, fields=False, explainer=None, because=0):
        out = []
        for i, s in zip(ids.tolist(), scores.tolist()):
            row = {"item_id": self._m.item_id(i), "score": s}
            if self._titles:
                t = self._m.item_title(i)
                if t is not None:
                    row["title"] = t
                if fields:
                    row["fields"] = self._m.item_fields(i)
            if explainer is not None:
                row["because"] = self._because(explainer, i, because)[1]
            out.append(row)
        return out

    def _because(self, explainer, item, n):
        """(score, [{"item_id", "title", "contribution"}]) of item, the n
        largest contributions first (`cofi recommend --explain`'s list)."""
        score, ids, contributions = explainer.explain(item, n)
        rows = []
        for j, c in zip(ids.tolist(), contributions.tolist()):
            row = {"item_id": self._m.item_id(j)}
            if self._titles:
                t = self._m.item_title(j)
                if t is not None:
                    row["title"] = t
            row["contribution"] = c
            rows.append(row)
        return score, rows

    def recommend(self, user_id, k=10, filter_seen=True, exclude=None, fields=False,
                  explain=False):
        """Top k items for a known user: [{"item_id", "score", "title"}],
        best first; the user's training items are left out unless
        filter_seen=False; exclude: item IDs to leave out too.
        explain=True adds to each row "because": the 3 training items that
        contribute most to its score, [{"item_id", "title", "contribution"}]
        (`cofi recommend --explain --json`); an int asks for that many."""
        n_because = _because_count(explain)
        u = self.user_index(user_id)
        ex = None if not exclude else [self.item_index(x) for x in exclude]
        ids, scores = self._m.recommend(u, int(k), None, ex, None, bool(filter_seen))
        explainer = self._m.explainer_user(u) if n_because and len(ids) else None
        return self._rows(ids, scores, fields, explainer, n_because)

    def recommend_for_items(self, liked, k=10, exclude=None, fields=False, explain=False):
        """Cold start: a new user given as the item IDs they like (unknown IDs
        are ignored); the user's vector is folded in by least squares and the
        liked items are not recommended back. explain=True: "because" lists
        of the liked items, as recommend's."""
        n_because = _because_count(explain)
        idx = self._liked(liked)
        vec = self._m.fold_in(idx)
        ex = None if not exclude else [self.item_index(x) for x in exclude]
        ids, scores = self._m.recommend(-1, int(k), idx, ex, vec)
        explainer = self._m.explainer(idx) if n_because and len(ids) else None
        return self._rows(ids, scores, fields, explainer, n_because)

    def _liked(self, liked):
        if isinstance(liked, (str, bytes)):
            raise TypeError("liked must be a list of item IDs, not one string")
        idx = []
        for i in (self._m.find_item(str(x)) for x in liked):
            if i >= 0 and i not in idx:  # unknown IDs skipped, duplicates once (as the CLI)
                idx.append(i)
        if not idx:
            raise _cofi.NotFoundError("none of the liked items is in the model")
        return idx

    def explain(self, user_id, item_id, n=3):
        """Why item_id is recommended to a known user: {"user_id", "item_id",
        "score", "because": [{"item_id", "title", "contribution"}]}, the n
        training items that contribute most, largest first. The score is
        that of the user's vector recalculated from their training history
        (a fold-in; the trained vector was solved against the previous
        iteration's item factors, so recommend's score may differ slightly);
        the contributions of the whole history sum to it."""
        return self._explain(self._m.explainer_user(self.user_index(user_id)), item_id, n,
                             {"user_id": str(user_id)})

    def explain_for_items(self, liked, item_id, n=3):
        """explain for a cold-start user given as liked item IDs (as
        recommend_for_items): {"item_id", "score", "because": [...]}."""
        return self._explain(self._m.explainer(self._liked(liked)), item_id, n, {})

    def _explain(self, explainer, item_id, n, head):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        i = self.item_index(item_id)
        score, because = self._because(explainer, i, int(n))
        out = dict(head)
        out["item_id"] = self._m.item_id(i)
        if self._titles:
            t = self._m.item_title(i)
            if t is not None:
                out["title"] = t
        out["score"] = score
        out["because"] = because
        return out

    def recommend_all(self, k=10, filter_seen=True, threads=0):
        """Top k for every user in one call (no GIL, all threads):
        {user_id: [item_id, ...]}."""
        users = np.arange(self.n_users, dtype=np.uint32)
        ids, _ = self._m.recommend_batch(users, int(k), threads=threads,
                                         filter_training=bool(filter_seen))
        item = self._m.item_id
        return {self._m.user_id(u): [item(i) for i in row if i >= 0]
                for u, row in zip(users.tolist(), ids.tolist())}

    def similar_items(self, item_id, k=10, fields=False):
        """The k items most similar to item_id (cosine), itself left out."""
        ids, scores = self._m.similar_items(self.item_index(item_id), int(k))
        return self._rows(ids, scores, fields)

    def similar_users(self, user_id, k=10):
        """The k users most similar to user_id (cosine), itself left out."""
        ids, scores = self._m.similar_users(self.user_index(user_id), int(k))
        return [{"user_id": self._m.user_id(i), "score": s}
                for i, s in zip(ids.tolist(), scores.tolist())]

    def history(self, user_id):
        """The user's training items: [{"item_id", "value"}]."""
        items, values = self._m.user_items(self.user_index(user_id))
        return [{"item_id": self._m.item_id(i), "value": v}
                for i, v in zip(items.tolist(), values.tolist())]

    def __repr__(self):
        i = self._m.info()
        return f"<cofi.Model {i['n_users']} users x {i['n_items']} items, {i['factors']} factors>"


class EvalResult(dict):
    """cofi eval's result: {"als": {"recall@10": ...}, "popularity": {...},
    "random": {...}, "n_users": ..., "skipped": {...}}. to_frame() gives a
    pandas DataFrame (one row per model) when pandas is installed."""

    def to_frame(self):
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("to_frame() needs pandas (apt-get install python3-pandas)") from e
        models = [m for m in ("als", "popularity", "random") if m in self]
        return pd.DataFrame([self[m] for m in models], index=models)


def evaluate(data, protocol="leave_last_out", k=10, holdout=0.2, heldout_users=100,
             foldin_fraction=0.8, split_seed=0, on="test", baselines=True, as_frame=False,
             threads=0, format=None, min_value=None, **params):
    """`cofi eval` in Python: split data (a path, read with format/min_value,
    or a Dataset) by protocol ('leave_last_out', the seeds'; 'random';
    'users'), train ALS on the training part with **params (cofi.train's),
    and score it and the popularity and random baselines on the held-out
    part at the cutoffs k (an int or a list). Returns an EvalResult (a dict
    keyed like `cofi eval --json`), or a pandas DataFrame with as_frame=True."""
    if protocol not in _PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(_PROTOCOLS)}, got {protocol!r}")
    if on not in ("test", "validation"):
        raise ValueError(f"on must be 'test' or 'validation', got {on!r}")
    if not isinstance(data, Dataset):
        kw = {}
        if format is not None:
            kw["format"] = format
        if min_value is not None:
            kw["min_value"] = min_value
        data = read(data, **kw)
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    parts = data.split(_PROTOCOLS[protocol], float(holdout), int(heldout_users),
                       float(foldin_fraction), int(split_seed))
    target = _TEST if on == "test" else _VALIDATION
    target_foldin = _TEST_FOLDIN if on == "test" else _VALIDATION_FOLDIN
    train_set = data.select(parts, 1 << _TRAIN)
    if not np.any(parts == target):
        raise _cofi.EmptyError(f"the {on} part is empty: no user has enough items to hold one out")
    test = data.select(parts, 1 << target)
    foldin = data.select(parts, 1 << target_foldin) if protocol == "users" else None
    p = _params(**params)
    model = _cofi.train(train_set, **p)
    result = EvalResult()
    scorers = [("als", "model")] + ([("popularity", "popularity"), ("random", "random")]
                                    if baselines else [])
    for name, scorer in scorers:
        r = model.evaluate(test, foldin, scorer, ks, p["seed"], int(threads))
        result[name] = r["metrics"]
        result["n_users"] = r["n_users"]
        result["skipped"] = r["skipped"]
    if as_frame:
        return result.to_frame()
    return result


__all__ = ["read", "train", "open", "evaluate", "Model", "Dataset", "EvalResult"]
