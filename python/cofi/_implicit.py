"""implicit 0.7's AlternatingLeastSquares, backed by libcofi.

The confidence of a stored entry: implicit uses c = alpha * value (its
``alpha`` scales the CSR values, which are themselves confidences); cofi
uses c = 1 + alpha_cofi * r. This class trains cofi with alpha_cofi = 1 and
r = alpha * value - 1, so c is the same number: the seeds' data = 21.0 with
implicit's default alpha = 1.0 is exactly cofi's alpha = 20 on binary data
(bit-identical factors). cofi cannot weigh a stored entry below an unseen
one, so alpha * value must be >= 1 (implicit also accepts negative values
as dislikes and values in [0, 1)); anything else is refused with a
ValueError naming the value.
"""
import logging
import os
import tempfile
import warnings

import numpy as np

from . import _cofi

log = logging.getLogger("cofi")

_SOLVER_CG, _SOLVER_CHOLESKY = 0, 1


def _as_csr(user_items, what="user_items"):
    """CSR as implicit's check_csr: other sparse formats converted with a
    warning; anything else refused."""
    fmt = getattr(user_items, "format", None)
    if fmt == "csr":
        return user_items
    if fmt is not None and hasattr(user_items, "tocsr"):
        warnings.warn(f"Method expects CSR input, and was passed {type(user_items).__name__} "
                      "instead. Converting to CSR.", stacklevel=3)
        return user_items.tocsr()
    raise TypeError(f"{what} must be a scipy.sparse CSR matrix (users x items), got "
                    f"{type(user_items).__name__}: build one with scipy.sparse.csr_matrix")


def _seed_from(random_state):
    """cofi needs an integer seed: an int is used as is; None draws one (a
    new model each fit, as implicit); a RandomState/Generator draws one."""
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy RandomState/Generator, "
                     f"got {type(random_state).__name__}")


class AlternatingLeastSquares:
    """Implicit ALS (Hu, Koren, Volinsky 2008) with implicit 0.7's API.

    Parameters are implicit's; those cofi does not have raise at once:
    use_gpu=True (NotImplementedError), dtype other than float32 and
    use_native=False (ValueError). Unknown keywords are a TypeError.
    """

    def __init__(self, factors=100, regularization=0.01, alpha=1.0, dtype=np.float32,
                 use_native=True, use_cg=True, iterations=15, calculate_training_loss=False,
                 num_threads=0, random_state=None, use_gpu=False):
        if use_gpu:
            raise NotImplementedError(
                "use_gpu=True: cofi has no GPU solver; it trains on the CPU (use_gpu=False)")
        if np.dtype(dtype) != np.float32:
            raise ValueError(f"dtype={np.dtype(dtype)}: cofi's factors are float32 only")
        if not use_native:
            raise ValueError("use_native=False: cofi has no pure-Python solver")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.dtype = np.dtype(np.float32)
        self.use_native = True
        self.use_cg = use_cg
        self.iterations = iterations
        self.calculate_training_loss = calculate_training_loss
        self.num_threads = num_threads
        self.random_state = random_state
        self.cg_steps = 3
        self.fit_callback = None
        self._model = None
        self._uf = self._if = None

    # ---- the model --------------------------------------------------------

    def _set_model(self, model):
        self._model = model
        self._uf = model.user_factors()
        self._if = model.item_factors()

    @property
    def user_factors(self):
        """float32 [users x factors]: a read-only view of the model's memory."""
        return self._uf

    @property
    def item_factors(self):
        """float32 [items x factors]: a read-only view of the model's memory."""
        return self._if

    @user_factors.setter
    def user_factors(self, value):
        raise AttributeError("cofi models are immutable: factors come from fit() or "
                             "cofi.load(path), they cannot be assigned")

    @item_factors.setter
    def item_factors(self, value):
        raise AttributeError("cofi models are immutable: factors come from fit() or "
                             "cofi.load(path), they cannot be assigned")

    def _fitted(self):
        if self._model is None:
            raise ValueError("the model is not fitted: call fit(user_items) or cofi.load(path)")
        return self._model

    def _confidence_values(self, data, model_alpha=1.0):
        """implicit's values (confidence alpha * value) as cofi's r for a
        model trained with cofi alpha model_alpha (confidence 1 + alpha r)."""
        c = np.asarray(data, dtype=np.float32)
        if self.alpha != 1.0:
            c = c * np.float32(self.alpha)
        if c.size and not np.isfinite(c).all():
            raise ValueError("user_items holds NaN or infinite values")
        if c.size and c.min() < 1.0:
            bad = float(c.min())
            raise ValueError(
                f"user_items: a stored entry has confidence alpha * value = {bad:g}; cofi's "
                "confidence is 1 + alpha * r >= 1 (an observed item never weighs less than an "
                "unobserved one), so alpha * value must be >= 1: scale the values (or alpha) "
                "up, or drop zero and negative entries (eliminate_zeros())")
        model_alpha = np.float32(model_alpha)
        if model_alpha == 0:
            return np.zeros_like(c)
        r = c - np.float32(1.0)
        if model_alpha != 1.0:
            r = r / np.float32(model_alpha)
        return r

    # ---- training ---------------------------------------------------------

    def fit(self, user_items, show_progress=True, callback=None):
        """Factorizes user_items (a CSR users x items of confidences). The
        GIL is released while training; Ctrl-C stops it after the current
        iteration (KeyboardInterrupt; the model keeps its previous state).
        callback(iteration, elapsed, loss) runs after each iteration."""
        Cui = _as_csr(user_items)
        n_users, n_items = Cui.shape
        if n_users == 0 or n_items == 0:
            raise ValueError(f"user_items is {n_users} x {n_items}: nothing to fit")
        data = np.asarray(Cui.data)
        if data.dtype.kind not in "biuf":
            raise TypeError(f"user_items has values of type {data.dtype}, expected numbers")
        r = self._confidence_values(data)  # trained with cofi alpha 1
        ds = _cofi.from_csr(n_users, n_items, Cui.indptr, Cui.indices, r)
        callback = callback or self.fit_callback
        bar = None
        if show_progress:
            try:
                from tqdm.auto import tqdm
                bar = tqdm(total=self.iterations)
            except ImportError:
                bar = None

        def progress(iteration, elapsed, loss):
            if bar is not None:
                bar.update(1)
                if loss is not None:
                    bar.set_postfix({"loss": loss})
            if loss is not None and not show_progress:
                log.info("loss %.4f", loss)
            if callback is not None:
                callback(iteration, elapsed, loss)

        try:
            model = _cofi.train(
                ds, factors=int(self.factors), regularization=float(self.regularization),
                alpha=1.0, iterations=int(self.iterations), seed=_seed_from(self.random_state),
                solver=_SOLVER_CG if self.use_cg else _SOLVER_CHOLESKY,
                cg_steps=int(self.cg_steps), threads=int(self.num_threads),
                compute_loss=bool(self.calculate_training_loss), callback=progress)
        finally:
            if bar is not None:
                bar.close()
        self._set_model(model)
        if self.calculate_training_loss:
            log.info("Final training loss %.4f", model.info()["train_loss"])

    # ---- recommending -----------------------------------------------------

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True,
                  filter_items=None, recalculate_user=False, items=None):
        """Top N items for one user id (-> ids [n], scores [n]) or an array of
        ids (-> ids [len, N'], scores [len, N']), best first. user_items holds
        one CSR row per user id (needed to filter liked items or to
        recalculate). Fewer than N candidates: a single answer is shorter, a
        batch row is padded with id -1 and score -inf."""
        m = self._fitted()
        if N < 0:
            raise ValueError(f"N must be >= 0, got {N}")
        scalar = np.isscalar(userid)
        count = 1 if scalar else len(userid)
        if filter_already_liked_items or recalculate_user:
            if getattr(user_items, "format", None) != "csr":  # as implicit 0.7
                raise ValueError("user_items needs to be a CSR sparse matrix (one row per "
                                 f"user id), got {type(user_items).__name__}")
            if user_items.shape[0] != count:
                raise ValueError("user_items must contain 1 row for every user in userids")
        exclude = None
        if items is not None:
            if filter_items is not None and len(filter_items):
                raise ValueError("Can't set both items and filter_items in recommend call")
            items = np.unique(np.asarray(items, dtype=np.int64))
            if items.size and (items.max() >= m.n_items or items.min() < 0):
                raise IndexError("Some itemids in the items parameter in are not in the model")
            N = min(N, len(items))
            exclude = np.setdiff1d(np.arange(m.n_items, dtype=np.int64), items)
        elif filter_items is not None:
            exclude = np.asarray(filter_items)
        if scalar:
            seen = None
            if filter_already_liked_items:
                ip = user_items.indptr
                seen = user_items.indices[ip[0]:ip[1]]
            vec = self.recalculate_user(userid, user_items) if recalculate_user else None
            return m.recommend(int(userid), int(N), seen, exclude, vec)
        userid = np.asarray(userid)
        kw = {}
        if filter_already_liked_items:
            ip = user_items.indptr
            kw["seen_indptr"] = ip
            kw["seen_indices"] = user_items.indices[:ip[-1]]
        if recalculate_user:
            kw["vectors"] = self.recalculate_user(userid, user_items)
        return m.recommend_batch(userid, int(N), exclude=exclude,
                                 threads=int(self.num_threads), **kw)

    def recalculate_user(self, userid, user_items):
        """The user vector(s) solved from user_items (one CSR row per id)
        against the fixed item factors, not stored: implicit's
        recalculate_user (exact least squares)."""
        m = self._fitted()
        user_items = _as_csr(user_items)
        scalar = np.isscalar(userid)
        count = 1 if scalar else len(userid)
        if user_items.shape[0] != count:
            raise ValueError("user_items should have one row for every item in user")
        out = np.zeros((count, m.factors), dtype=np.float32)
        ip, ix = user_items.indptr, user_items.indices
        r = self._confidence_values(user_items.data, m.info()["params"]["alpha"])
        for i in range(count):
            a, b = ip[i], ip[i + 1]
            if b > a:
                out[i] = m.fold_in(ix[a:b], r[a:b])
        return out[0] if scalar else out

    def explain(self, userid, user_items, itemid, user_weights=None, N=10):
        """Why itemid is recommended to userid: implicit 0.7's explain (Hu,
        Koren, Volinsky 2008, section 5). The score of the user vector
        recalculated from the user's row of user_items (as
        recalculate_user; not the trained vector) is split exactly into one
        contribution per item of that row.

        user_items: a CSR whose row userid is the user's history (implicit's
        convention, the whole users x items matrix), or a single row
        (1 x items). Values are converted as for fit (confidence alpha *
        value, which must be >= 1).

        Returns (score, top_contributions, user_weights): the explained
        score (float), the N largest contributions [(itemid, contribution)],
        largest first (equal ones by lower itemid), which sum to the score
        when N covers the row, and a UserWeights holding the user's factored
        system. Passing user_weights back skips the factorization; it is
        valid only for this fitted model and this user's history (anything
        else raises ValueError)."""
        m = self._fitted()
        if not isinstance(userid, (int, np.integer)) or isinstance(userid, (bool, np.bool_)):
            raise ValueError("explain only supports a single userid (an int)")
        userid = int(userid)
        if userid < 0 or userid >= m.n_users:
            raise IndexError(f"userid {userid} is out of range (the model has {m.n_users} users)")
        if not isinstance(itemid, (int, np.integer)) or isinstance(itemid, (bool, np.bool_)):
            raise ValueError("explain only supports a single itemid (an int)")
        itemid = int(itemid)
        if itemid < 0 or itemid >= m.n_items:
            raise IndexError(f"itemid {itemid} is out of range (the model has {m.n_items} items)")
        if not isinstance(N, (int, np.integer)) or N < 0:
            raise ValueError(f"N must be an int >= 0, got {N!r}")
        user_items = _as_csr(user_items)
        if user_items.shape[1] != m.n_items:
            raise ValueError(f"user_items has {user_items.shape[1]} columns, the model "
                             f"{m.n_items} items")
        row = 0 if user_items.shape[0] == 1 else userid
        if row >= user_items.shape[0]:
            raise IndexError(f"user_items has {user_items.shape[0]} rows: no row for userid "
                             f"{userid} (pass the users x items matrix or the user's row)")
        ip = user_items.indptr
        items = np.asarray(user_items.indices[ip[row]:ip[row + 1]], dtype=np.int64)
        r = self._confidence_values(user_items.data[ip[row]:ip[row + 1]],
                                    m.info()["params"]["alpha"])
        if user_weights is None:
            user_weights = UserWeights(m, userid, items, r)
        else:
            if not isinstance(user_weights, UserWeights):
                raise ValueError("user_weights must be the UserWeights a previous explain "
                                 f"returned, got {type(user_weights).__name__}")
            user_weights._check(m, userid, items, r)
        score, ids, contributions = user_weights._explain(itemid, int(N))
        return score, list(zip(ids.tolist(), contributions.tolist())), user_weights

    def _similar(self, query, N, filter_ids, subset, users):
        m = self._fitted()
        if N < 0:
            raise ValueError(f"N must be >= 0, got {N}")
        n = m.n_users if users else m.n_items
        F = self._uf if users else self._if
        what = "userid" if users else "itemid"
        scalar = np.isscalar(query)
        queries = [query] if scalar else list(np.asarray(query))
        if subset is not None and filter_ids is not None and len(filter_ids):
            raise ValueError(f"Can't set both {'users' if users else 'items'} and "
                             f"filter_{'users' if users else 'items'}")
        rows = []
        for q in queries:
            q = int(q)
            if q < 0 or q >= n:
                raise IndexError(f"{what} {q} is out of range (the model has {n})")
            if subset is not None:
                sub = np.asarray(subset, dtype=np.int64)
                if sub.size and (sub.max() >= n or sub.min() < 0):
                    raise IndexError(f"Some ids in the {'users' if users else 'items'} "
                                     "parameter are not in the model")
                norms = np.linalg.norm(F[sub], axis=1)
                norms[norms == 0] = 1e-10
                qn = np.linalg.norm(F[q]) or 1e-10
                sc = (F[sub] @ F[q]) / norms / qn
                order = np.lexsort((sub, -sc))[:N]
                rows.append((sub[order].astype(np.int32), sc[order].astype(np.float32)))
                continue
            drop = set() if filter_ids is None else {int(x) for x in np.asarray(filter_ids)}
            want = max(0, min(N, n) - (0 if q in drop else 1))
            ids, sc = (m.similar_users if users else m.similar_items)(q, want + len(drop))
            keep = np.array([int(i) not in drop for i in ids], dtype=bool)
            ids, sc = ids[keep][:want], sc[keep][:want]
            if q not in drop and N > 0:
                f = F[q]
                nn = np.float32(np.dot(f, f))
                self_score = np.float32(1.0) if nn > 0 else np.float32(0.0)
                ids = np.concatenate([np.array([q], np.int32), ids])
                sc = np.concatenate([np.array([self_score], np.float32), sc])
            rows.append((ids, sc))
        if scalar:
            return rows[0]
        width = max((len(r[0]) for r in rows), default=0)
        out_i = np.full((len(rows), width), -1, np.int32)
        out_s = np.full((len(rows), width), -np.inf, np.float32)
        for j, (ids, sc) in enumerate(rows):
            out_i[j, :len(ids)] = ids
            out_s[j, :len(sc)] = sc
        return out_i, out_s

    def similar_items(self, itemid, N=10, recalculate_item=False, item_users=None,
                      filter_items=None, items=None):
        """The N items most similar to itemid by cosine, the item itself
        first (as implicit)."""
        if recalculate_item:
            raise NotImplementedError("recalculate_item=True: cofi has no item fold-in")
        return self._similar(itemid, N, filter_items, items, users=False)

    def similar_users(self, userid, N=10, filter_users=None, users=None):
        """The N users most similar to userid by cosine, the user first."""
        return self._similar(userid, N, filter_users, users, users=True)

    # ---- persistence ------------------------------------------------------

    def save(self, path):
        """Writes the cofi model file (atomic; not implicit's .npz): readable
        by cofi.load, cofi.open, and the cofi CLI and server."""
        self._fitted().save(os.fspath(path))

    def _params(self):
        return {k: getattr(self, k) for k in (
            "factors", "regularization", "alpha", "use_cg", "iterations",
            "calculate_training_loss", "num_threads", "random_state")}

    def __getstate__(self):
        state = {"params": self._params(), "cg_steps": self.cg_steps, "model": None}
        if self._model is not None:
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "model.cofi")
                self._model.save(p)
                with open(p, "rb") as f:
                    state["model"] = f.read()
        return state

    def __setstate__(self, state):
        self.__init__(**state["params"])
        self.cg_steps = state["cg_steps"]
        if state["model"] is not None:
            self._set_model(_cofi.open_bytes(state["model"]))

    def __repr__(self):
        fitted = "fitted" if self._model is not None else "not fitted"
        return (f"cofi.AlternatingLeastSquares(factors={self.factors}, "
                f"regularization={self.regularization}, alpha={self.alpha}, "
                f"iterations={self.iterations}; {fitted})")


class UserWeights:
    """explain's user_weights: one user's factored least-squares system (a
    cofi_explainer, factored once, so explaining more items of the same
    user is a k x k solve each). Opaque; valid only for the model and the
    user (and history) it was made for: passing it with another model
    (including the same object after a new fit), userid or user_items row
    raises ValueError. It keeps its model alive. Like implicit's Cholesky
    factor it is not meant to be pickled."""

    __slots__ = ("_model", "_explainer", "userid", "_items", "_r")

    def __init__(self, model, userid, items, r):
        self._model = model
        self.userid = userid
        self._items = items
        self._r = r
        # an empty history gives the zero vector (score 0, no contributions)
        self._explainer = model.explainer(items, r) if len(items) else None

    def _check(self, model, userid, items, r):
        if model is not self._model:
            raise ValueError("user_weights belongs to another model (or to this one before "
                             "it was fitted again): call explain without user_weights")
        if userid != self.userid:
            raise ValueError(f"user_weights was made for userid {self.userid}, not {userid}")
        if not (np.array_equal(items, self._items) and np.array_equal(r, self._r)):
            raise ValueError(f"user_weights was made from another user_items row for userid "
                             f"{userid}: call explain without user_weights")

    def _explain(self, itemid, N):
        if self._explainer is None:
            return 0.0, np.zeros(0, np.int32), np.zeros(0, np.float64)
        return self._explainer.explain(itemid, N)

    def __getstate__(self):
        raise TypeError("UserWeights cannot be pickled: it is valid only for its model in "
                        "this process")

    def __repr__(self):
        return f"<cofi.UserWeights userid={self.userid}, {len(self._items)} items>"


def load(path, private_copy=False):
    """An AlternatingLeastSquares from a cofi model file (cofi train's, or
    AlternatingLeastSquares.save's). The file is memory-mapped (factors are
    views of the mapping) unless private_copy=True reads it into memory."""
    model = _cofi.open(os.fspath(path), private_copy)
    p = model.info()["params"]
    als = AlternatingLeastSquares(factors=p["factors"], regularization=p["regularization"],
                                  iterations=p["iterations"], use_cg=p["solver"] == "cg",
                                  random_state=p["seed"])
    als.cg_steps = p["cg_steps"]
    als._set_model(model)
    return als


__all__ = ["AlternatingLeastSquares", "UserWeights", "load"]
