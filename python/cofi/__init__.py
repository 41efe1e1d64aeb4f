"""cofi: implicit-feedback ALS recommendations from a C library.

Two APIs over the same engine (libcofi, linked into cofi._cofi):

* implicit-compatible: ``cofi.AlternatingLeastSquares`` (implicit 0.7's
  ``implicit.als.AlternatingLeastSquares``: fit on a scipy CSR, recommend,
  similar_items, recalculate_user, explain, ...) and ``cofi.load(path)``;
* native, with string IDs and titles: ``cofi.read``, ``cofi.train``,
  ``cofi.open``, ``cofi.evaluate``.

Every error is a ``cofi.Error``; each kind is also a builtin exception
(``cofi.InvalidError`` is a ``ValueError``, ``cofi.IOError`` an ``OSError``,
``cofi.NotFoundError`` a ``KeyError``...). python/README.md lists every
difference from implicit.
"""
from ._cofi import (  # noqa: F401
    CancelledError,
    CorruptError,
    EmptyError,
    Error,
    InvalidError,
    IOError,
    NotAModelError,
    NotFoundError,
    NumericError,
    OutOfMemoryError,
    ParseError,
    VersionError,
    library_version,
)
from ._implicit import AlternatingLeastSquares, UserWeights, load  # noqa: F401
from ._native import Dataset, EvalResult, Model, evaluate, open, read, train  # noqa: F401

__version__ = library_version

__all__ = [
    "AlternatingLeastSquares", "UserWeights", "load", "read", "train", "open", "evaluate",
    "Model", "Dataset", "EvalResult", "Error", "InvalidError", "IOError", "ParseError",
    "EmptyError", "NotAModelError", "VersionError", "CorruptError", "NotFoundError", "NumericError",
    "CancelledError", "OutOfMemoryError",
]
