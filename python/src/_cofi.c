/*
 * _cofi.c — the CPython extension over libcofi (linked statically): the
 * types and functions cofi/__init__.py builds the implicit-compatible and
 * the native APIs from. Written against the CPython and numpy C APIs
 * directly (python/README.md says why).
 *
 *   _cofi.Model     a cofi_model (trained or opened); factor matrices are
 *                   read-only numpy views of its memory (base: the Model)
 *   _cofi.Dataset   a cofi_dataset (read from a file, from a CSR, a split part)
 *   _cofi.Explainer a cofi_explainer (one user's factored fold-in system; holds
 *                   a reference to its Model)
 *   train(ds, ...)  cofi_train with the GIL released; a progress callback
 *                   takes the GIL back after each iteration to run the Python
 *                   callback and check for signals (Ctrl-C cancels)
 *
 * Single queries hold the GIL (they take microseconds; the GIL also guards
 * the one shared workspace). Batch queries release it and run on OpenMP
 * threads, one workspace each.
 *
 * Errors become exceptions of the classes created here (cofi.Error and one
 * subclass per code, each also a builtin: InvalidError is a ValueError,
 * IOError an OSError...), carrying the library's message.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cofi.h"

/* OpenBLAS (linked with the library): cofi_train sets its thread count to 1
 * for the process; numpy in the same process may use the same OpenBLAS, so
 * train() puts the previous count back. */
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int num_threads);

/* ---- exceptions ---------------------------------------------------------- */

static PyObject *Error;           /* cofi.Error */
static PyObject *exc_by_code[16]; /* index -code */

static PyObject *exc_for(int code) {
  if (code < 0 && -code < 16 && exc_by_code[-code]) return exc_by_code[-code];
  return Error;
}

/* Raises the exception of code with the diag's message (file:line when
 * given), or the code's generic message. Returns NULL. */
static PyObject *raise_code(int code, const cofi_diag *d) {
  if (code == COFI_ERR_NOMEM && (!d || !d->message[0])) return PyErr_NoMemory();
  const char *msg = d && d->message[0] ? d->message : cofi_error_message(code);
  if (d && d->file[0] && d->line)
    PyErr_Format(exc_for(code), "%s:%llu: %s", d->file, (unsigned long long)d->line, msg);
  else if (d && d->file[0])
    PyErr_Format(exc_for(code), "%s: %s", d->file, msg);
  else
    PyErr_SetString(exc_for(code), msg);
  return NULL;
}

static int make_exceptions(PyObject *mod) {
  Error = PyErr_NewExceptionWithDoc("cofi.Error", "Base class of every error cofi raises.",
                                    NULL, NULL);
  if (!Error || PyModule_AddObjectRef(mod, "Error", Error) < 0) return -1;
  static const struct {
    int code;
    const char *name, *doc;
    PyObject **builtin;
  } table[] = {
      {COFI_ERR_NOMEM, "OutOfMemoryError", "The library ran out of memory.", &PyExc_MemoryError},
      {COFI_ERR_IO, "IOError", "A file could not be read or written.", &PyExc_OSError},
      {COFI_ERR_INVALID, "InvalidError", "An invalid argument or parameter.", &PyExc_ValueError},
      {COFI_ERR_PARSE, "ParseError", "Malformed input data (file and line in the message).",
       &PyExc_ValueError},
      {COFI_ERR_EMPTY, "EmptyError", "No usable data.", &PyExc_ValueError},
      {COFI_ERR_NOT_MODEL, "NotAModelError", "Not a cofi model file.", &PyExc_ValueError},
      {COFI_ERR_VERSION, "VersionError", "Model format version not supported.",
       &PyExc_ValueError},
      {COFI_ERR_CORRUPT, "CorruptError", "The model file is corrupted.", &PyExc_ValueError},
      {COFI_ERR_NOT_FOUND, "NotFoundError", "Unknown user or item.", &PyExc_KeyError},
      {COFI_ERR_NUMERIC, "NumericError", "Numerical failure (NaN or infinity).",
       &PyExc_ArithmeticError},
      {COFI_ERR_CANCELLED, "CancelledError", "Training was cancelled.", NULL},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    char full[64];
    snprintf(full, sizeof full, "cofi.%s", table[i].name);
    PyObject *bases = table[i].builtin ? PyTuple_Pack(2, Error, *table[i].builtin)
                                       : PyTuple_Pack(1, Error);
    if (!bases) return -1;
    PyObject *e = PyErr_NewExceptionWithDoc(full, table[i].doc, bases, NULL);
    Py_DECREF(bases);
    if (!e) return -1;
    exc_by_code[-table[i].code] = e;
    if (PyModule_AddObjectRef(mod, table[i].name, e) < 0) return -1;
  }
  return 0;
}

/* ---- index arrays ------------------------------------------------------------ */

/* A borrowed-or-owned uint32 index array from any integer sequence/array,
 * every value checked to be in [0, limit). */
typedef struct idx_array {
  const uint32_t *p;
  size_t n;
  PyObject *keep; /* the array p points into, or NULL */
} idx_array;

static void idx_release(idx_array *a) {
  Py_XDECREF(a->keep);
  a->keep = NULL;
  a->p = NULL;
  a->n = 0;
}

/* obj None -> empty. what names the argument in messages. */
static int idx_from(PyObject *obj, uint64_t limit, const char *what, idx_array *out) {
  out->p = NULL;
  out->n = 0;
  out->keep = NULL;
  if (obj == NULL || obj == Py_None) return 0;
  PyArrayObject *arr = NULL;
  if (PyArray_Check(obj) && PyArray_ISBOOL((PyArrayObject *)obj)) {
    PyErr_Format(PyExc_TypeError, "%s: expected integer indices, not a boolean mask", what);
    return -1;
  }
  if (PyArray_Check(obj) && PyArray_NDIM((PyArrayObject *)obj) == 1 &&
      PyArray_ISCARRAY_RO((PyArrayObject *)obj) && PyArray_ISNOTSWAPPED((PyArrayObject *)obj) &&
      (PyArray_TYPE((PyArrayObject *)obj) == NPY_INT32 ||
       PyArray_TYPE((PyArrayObject *)obj) == NPY_UINT32)) {
    arr = (PyArrayObject *)obj;
    Py_INCREF(arr);
  } else {
    PyObject *a = PyArray_FROMANY(obj, NPY_INT64, 0, 1, NPY_ARRAY_IN_ARRAY);
    if (!a) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "%s: expected a sequence of integer indices", what);
      return -1;
    }
    /* without FORCECAST, only safe casts happen: floats are refused above */
    PyArrayObject *a64 = (PyArrayObject *)a;
    npy_intp n = PyArray_SIZE(a64);
    PyObject *u = PyArray_SimpleNew(1, &n, NPY_UINT32);
    if (!u) { Py_DECREF(a); return -1; }
    const int64_t *src = PyArray_DATA(a64);
    uint32_t *dst = PyArray_DATA((PyArrayObject *)u);
    for (npy_intp i = 0; i < n; i++) {
      if (src[i] < 0 || (uint64_t)src[i] >= limit) {
        PyErr_Format(PyExc_IndexError, "%s: index %lld is out of range (0..%llu)", what,
                     (long long)src[i], (unsigned long long)(limit ? limit - 1 : 0));
        Py_DECREF(a);
        Py_DECREF(u);
        return -1;
      }
      dst[i] = (uint32_t)src[i];
    }
    Py_DECREF(a);
    out->keep = u;
    out->p = dst;
    out->n = (size_t)n;
    return 0;
  }
  out->keep = (PyObject *)arr;
  out->p = PyArray_DATA(arr);
  out->n = (size_t)PyArray_SIZE(arr);
  for (size_t i = 0; i < out->n; i++)
    if (out->p[i] >= limit) { /* int32 negatives are >= 2^31 here */
      long long v = PyArray_TYPE(arr) == NPY_INT32 ? (long long)(int32_t)out->p[i]
                                                   : (long long)out->p[i];
      PyErr_Format(PyExc_IndexError, "%s: index %lld is out of range (0..%llu)", what, v,
                   (unsigned long long)(limit ? limit - 1 : 0));
      idx_release(out);
      return -1;
    }
  return 0;
}

/* ---- Dataset ----------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  cofi_dataset *ds;
} DatasetObject;

static PyTypeObject DatasetType;

static void Dataset_dealloc(DatasetObject *self) {
  cofi_dataset_free(self->ds);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *dataset_wrap(cofi_dataset *ds) {
  DatasetObject *o = PyObject_New(DatasetObject, &DatasetType);
  if (!o) {
    cofi_dataset_free(ds);
    return NULL;
  }
  o->ds = ds;
  return (PyObject *)o;
}

static PyObject *Dataset_get_n_users(DatasetObject *self, void *c) {
  return PyLong_FromSize_t(cofi_dataset_n_users(self->ds));
}
static PyObject *Dataset_get_n_items(DatasetObject *self, void *c) {
  return PyLong_FromSize_t(cofi_dataset_n_items(self->ds));
}
static Py_ssize_t Dataset_len(DatasetObject *self) {
  return (Py_ssize_t)cofi_dataset_n_interactions(self->ds);
}

static PyObject *Dataset_read_items(DatasetObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "id_col", NULL};
  PyObject *path = NULL;
  const char *id_col = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|z", kwlist, PyUnicode_FSConverter, &path,
                                   &id_col))
    return NULL;
  cofi_diag d = {0};
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = cofi_dataset_read_items(self->ds, PyBytes_AS_STRING(path), id_col, &d);
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  if (rc) return raise_code(rc, &d);
  Py_RETURN_NONE;
}

/* split(protocol, holdout, heldout_users, foldin_fraction, seed) -> parts (uint8 array) */
static PyObject *Dataset_split(DatasetObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"protocol", "holdout", "heldout_users", "foldin_fraction", "seed",
                           NULL};
  cofi_split_options o = cofi_split_options_default();
  int protocol = (int)o.protocol;
  unsigned int heldout = o.heldout_users;
  unsigned long long seed = o.seed;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|idIdK", kwlist, &protocol, &o.holdout,
                                   &heldout, &o.foldin_fraction, &seed))
    return NULL;
  o.protocol = (cofi_protocol)protocol;
  o.heldout_users = heldout;
  o.seed = seed;
  npy_intp n = (npy_intp)cofi_dataset_n_interactions(self->ds);
  PyObject *parts = PyArray_SimpleNew(1, &n, NPY_UINT8);
  if (!parts) return NULL;
  cofi_diag d = {0};
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = cofi_split(self->ds, &o, PyArray_DATA((PyArrayObject *)parts), NULL, &d);
  Py_END_ALLOW_THREADS
  if (rc) {
    Py_DECREF(parts);
    return raise_code(rc, &d);
  }
  return parts;
}

/* select(parts, mask) -> Dataset */
static PyObject *Dataset_select(DatasetObject *self, PyObject *args) {
  PyObject *parts_obj;
  unsigned int mask;
  if (!PyArg_ParseTuple(args, "OI", &parts_obj, &mask)) return NULL;
  PyArrayObject *parts =
      (PyArrayObject *)PyArray_FROMANY(parts_obj, NPY_UINT8, 1, 1, NPY_ARRAY_IN_ARRAY);
  if (!parts) return NULL;
  if ((size_t)PyArray_SIZE(parts) != cofi_dataset_n_interactions(self->ds)) {
    Py_DECREF(parts);
    PyErr_SetString(PyExc_ValueError, "parts must have one entry per interaction");
    return NULL;
  }
  cofi_dataset *out = NULL;
  cofi_diag d = {0};
  int rc = cofi_dataset_select(self->ds, PyArray_DATA(parts), mask, &out, &d);
  Py_DECREF(parts);
  if (rc) return raise_code(rc, &d);
  return dataset_wrap(out);
}

static PyMethodDef Dataset_methods[] = {
    {"read_items", (PyCFunction)(void (*)(void))Dataset_read_items, METH_VARARGS | METH_KEYWORDS,
     "read_items(path, id_col=None): join item metadata (titles) by item ID."},
    {"split", (PyCFunction)(void (*)(void))Dataset_split, METH_VARARGS | METH_KEYWORDS,
     "split(protocol, holdout, heldout_users, foldin_fraction, seed) -> parts (uint8)."},
    {"select", (PyCFunction)Dataset_select, METH_VARARGS,
     "select(parts, mask) -> Dataset of the rows whose part bit is in mask."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Dataset_getset[] = {
    {"n_users", (getter)Dataset_get_n_users, NULL, "distinct users", NULL},
    {"n_items", (getter)Dataset_get_n_items, NULL, "distinct items", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods Dataset_as_sequence = {.sq_length = (lenfunc)Dataset_len};

static PyTypeObject DatasetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cofi._cofi.Dataset",
    .tp_basicsize = sizeof(DatasetObject),
    .tp_dealloc = (destructor)Dataset_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Interactions (a cofi_dataset): from cofi.read() or a CSR matrix.",
    .tp_methods = Dataset_methods,
    .tp_getset = Dataset_getset,
    .tp_as_sequence = &Dataset_as_sequence,
};

/* read(path, format, user_col, item_col, value_col, event_col, time_col,
 *      delimiter, event_weights (dict or None), min_value (float or None)) */
static PyObject *mod_read(PyObject *m, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "format", "user_col", "item_col", "value_col", "event_col",
                           "time_col", "delimiter", "event_weights", "min_value", NULL};
  PyObject *path = NULL, *weights = Py_None, *min_value = Py_None;
  cofi_read_options o = cofi_read_options_default();
  int format = (int)o.format;
  const char *delim = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|izzzzzzOO", kwlist, PyUnicode_FSConverter,
                                   &path, &format, &o.user_col, &o.item_col, &o.value_col,
                                   &o.event_col, &o.time_col, &delim, &weights, &min_value))
    return NULL;
  o.format = (cofi_format)format;
  cofi_event_weight *ew = NULL;
  PyObject *keys = NULL;
  PyObject *result = NULL;
  if (delim) {
    if (strlen(delim) != 1) {
      PyErr_SetString(PyExc_ValueError, "delimiter must be one character");
      goto done;
    }
    o.delimiter = delim[0];
  }
  if (min_value != Py_None) {
    o.has_min_value = 1;
    o.min_value = PyFloat_AsDouble(min_value);
    if (o.min_value == -1.0 && PyErr_Occurred()) goto done;
  }
  if (weights != Py_None) {
    if (!PyDict_Check(weights)) {
      PyErr_SetString(PyExc_TypeError, "event_weights must be a dict {event: weight}");
      goto done;
    }
    Py_ssize_t n = PyDict_Size(weights), pos = 0, i = 0;
    ew = calloc(n ? (size_t)n : 1, sizeof *ew);
    keys = PyList_New(0); /* keeps the UTF-8 buffers alive */
    if (!ew || !keys) {
      PyErr_NoMemory();
      goto done;
    }
    PyObject *k, *v;
    while (PyDict_Next(weights, &pos, &k, &v)) {
      const char *s = PyUnicode_AsUTF8(k);
      if (!s) goto done;
      if (PyList_Append(keys, k) < 0) goto done;
      double w = PyFloat_AsDouble(v);
      if (w == -1.0 && PyErr_Occurred()) goto done;
      ew[i].event = s;
      ew[i].weight = (float)w;
      i++;
    }
    o.event_weights = ew;
    o.n_event_weights = (size_t)n;
  }
  {
    cofi_dataset *ds = NULL;
    cofi_diag d = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cofi_dataset_read(PyBytes_AS_STRING(path), &o, &ds, &d);
    Py_END_ALLOW_THREADS
    if (rc) {
      raise_code(rc, &d);
      goto done;
    }
    result = dataset_wrap(ds);
  }
done:
  free(ew);
  Py_XDECREF(keys);
  Py_XDECREF(path);
  return result;
}

/* from_csr(n_rows, n_cols, indptr, indices, values) -> Dataset. The arrays
 * are converted to uint64 / uint32 / float32 (no copy when already so). */
static PyObject *mod_from_csr(PyObject *m, PyObject *args) {
  Py_ssize_t n_rows, n_cols;
  PyObject *ip_o, *ix_o, *v_o;
  if (!PyArg_ParseTuple(args, "nnOOO", &n_rows, &n_cols, &ip_o, &ix_o, &v_o)) return NULL;
  if (n_rows < 0 || n_cols < 0 || n_rows >= (Py_ssize_t)UINT32_MAX ||
      n_cols >= (Py_ssize_t)UINT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "matrix shape out of range");
    return NULL;
  }
  PyArrayObject *ip = NULL, *ix = NULL, *v = NULL;
  PyObject *result = NULL;
  ip = (PyArrayObject *)PyArray_FROMANY(ip_o, NPY_INT64, 1, 1, NPY_ARRAY_IN_ARRAY);
  /* scipy's int32 indices are read in place (checked below); other integer
   * types are converted to int64 first */
  int ix32_in_place = PyArray_Check(ix_o) && PyArray_NDIM((PyArrayObject *)ix_o) == 1 &&
                      PyArray_ISCARRAY_RO((PyArrayObject *)ix_o) &&
                      PyArray_ISNOTSWAPPED((PyArrayObject *)ix_o) &&
                      PyArray_TYPE((PyArrayObject *)ix_o) == NPY_INT32;
  if (ip) {
    if (ix32_in_place) {
      ix = (PyArrayObject *)ix_o;
      Py_INCREF(ix);
    } else {
      ix = (PyArrayObject *)PyArray_FROMANY(ix_o, NPY_INT64, 1, 1, NPY_ARRAY_IN_ARRAY);
    }
  }
  v = ix ? (PyArrayObject *)PyArray_FROMANY(v_o, NPY_FLOAT32, 1, 1,
                                            NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST)
         : NULL;
  if (!v) goto done;
  if (PyArray_SIZE(ip) != n_rows + 1) {
    PyErr_SetString(PyExc_ValueError, "indptr must have n_rows + 1 entries");
    goto done;
  }
  npy_intp nnz = PyArray_SIZE(ix);
  if (PyArray_SIZE(v) != nnz) {
    PyErr_SetString(PyExc_ValueError, "indices and data differ in length");
    goto done;
  }
  {
    /* negative or oversized values would be wrapped: check before casting */
    const int64_t *ipp = PyArray_DATA(ip);
    uint32_t *ix32 = NULL;
    const uint32_t *ixu;
    for (npy_intp i = 0; i <= n_rows; i++)
      if (ipp[i] < 0) {
        PyErr_Format(PyExc_ValueError, "indptr[%zd] is negative", (Py_ssize_t)i);
        goto done;
      }
    if (ipp[n_rows] != (int64_t)nnz) {
      PyErr_Format(PyExc_ValueError, "indptr[-1] is %lld but there are %zd entries",
                   (long long)ipp[n_rows], (Py_ssize_t)nnz);
      goto done;
    }
    if (ix32_in_place) {
      const int32_t *p32 = PyArray_DATA(ix);
      for (npy_intp i = 0; i < nnz; i++)
        if (p32[i] < 0 || p32[i] >= n_cols) {
          PyErr_Format(PyExc_ValueError,
                       "column index %d of entry %zd is out of range (%zd columns)", p32[i],
                       (Py_ssize_t)i, n_cols);
          goto done;
        }
      ixu = (const uint32_t *)p32;
    } else {
      const int64_t *ixp = PyArray_DATA(ix);
      ix32 = malloc((size_t)(nnz ? nnz : 1) * sizeof *ix32);
      if (!ix32) {
        PyErr_NoMemory();
        goto done;
      }
      for (npy_intp i = 0; i < nnz; i++) {
        if (ixp[i] < 0 || ixp[i] >= n_cols) {
          free(ix32);
          PyErr_Format(PyExc_ValueError,
                       "column index %lld of entry %zd is out of range (%zd columns)",
                       (long long)ixp[i], (Py_ssize_t)i, n_cols);
          goto done;
        }
        ix32[i] = (uint32_t)ixp[i];
      }
      ixu = ix32;
    }
    cofi_dataset *ds = NULL;
    cofi_diag d = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = cofi_dataset_from_csr((uint32_t)n_rows, (uint32_t)n_cols, (const uint64_t *)ipp, ixu,
                               PyArray_DATA(v), &ds, &d);
    Py_END_ALLOW_THREADS
    free(ix32);
    if (rc) {
      raise_code(rc, &d);
      goto done;
    }
    result = dataset_wrap(ds);
  }
done:
  Py_XDECREF(ip);
  Py_XDECREF(ix);
  Py_XDECREF(v);
  return result;
}

/* ---- Model ------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  cofi_model *m;
  cofi_model_info info;
} ModelObject;

static PyTypeObject ModelType;

/* One workspace for the single-query calls, used only with the GIL held. */
static cofi_workspace *shared_ws;

static cofi_workspace *get_ws(void) {
  if (!shared_ws) shared_ws = cofi_workspace_new();
  if (!shared_ws) PyErr_NoMemory();
  return shared_ws;
}

static void Model_dealloc(ModelObject *self) {
  cofi_model_close(self->m);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *model_wrap(cofi_model *mdl) {
  /* The binding's methods work on factors: EASE and item-kNN models are
   * for the CLI, the server and the C API. */
  if (cofi_model_kind_of(mdl) != COFI_MODEL_ALS) {
    PyErr_SetString(exc_for(COFI_ERR_INVALID), cofi_model_kind_error(mdl, "the Python binding"));
    cofi_model_close(mdl);
    return NULL;
  }
  ModelObject *o = PyObject_New(ModelObject, &ModelType);
  if (!o) {
    cofi_model_close(mdl);
    return NULL;
  }
  o->m = mdl;
  cofi_model_get_info(mdl, &o->info);
  return (PyObject *)o;
}

static PyObject *mod_open(PyObject *mod, PyObject *args) {
  PyObject *path;
  int private_copy = 0;
  if (!PyArg_ParseTuple(args, "O&|p", PyUnicode_FSConverter, &path, &private_copy)) return NULL;
  cofi_model *mdl = NULL;
  cofi_diag d = {0};
  int rc;
  Py_BEGIN_ALLOW_THREADS
  if (private_copy) {
    FILE *f = fopen(PyBytes_AS_STRING(path), "rb");
    if (!f) {
      rc = COFI_ERR_IO;
      snprintf(d.message, sizeof d.message, "%s: cannot open: %s", PyBytes_AS_STRING(path),
               strerror(errno));
    } else {
      rc = cofi_model_read_fd(fileno(f), PyBytes_AS_STRING(path), &mdl, &d);
      fclose(f);
    }
  } else {
    rc = cofi_model_open(PyBytes_AS_STRING(path), &mdl, &d);
  }
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  if (rc) return raise_code(rc, &d);
  return model_wrap(mdl);
}

static PyObject *mod_open_bytes(PyObject *mod, PyObject *args) {
  Py_buffer buf;
  if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
  cofi_model *mdl = NULL;
  cofi_diag d = {0};
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = cofi_model_open_memory(buf.buf, (size_t)buf.len, &mdl, &d);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&buf);
  if (rc) return raise_code(rc, &d);
  return model_wrap(mdl);
}

/* Training: the progress callback runs on the thread that called
 * cofi_train (between iterations, outside any parallel region). */
typedef struct train_ctx {
  PyObject *callback;
  int failed; /* a Python exception is pending */
} train_ctx;

static int on_progress(const cofi_progress *p, void *vctx) {
  train_ctx *c = vctx;
  PyGILState_STATE g = PyGILState_Ensure();
  int stop = 0;
  if (PyErr_CheckSignals() < 0) {
    stop = 1;
  } else if (c->callback && c->callback != Py_None) {
    PyObject *loss = isnan(p->loss) ? Py_NewRef(Py_None) : PyFloat_FromDouble(p->loss);
    PyObject *r = loss ? PyObject_CallFunction(c->callback, "IdN", p->iteration - 1,
                                               p->seconds, loss)
                       : NULL;
    if (!r) stop = 1;
    else if (r != Py_None && PyObject_IsTrue(r) == 0) {
      /* a callback returning False stops training, like early stopping */
      Py_DECREF(r);
      PyErr_SetString(exc_by_code[-COFI_ERR_CANCELLED], "stopped by the callback");
      stop = 1;
    } else
      Py_DECREF(r);
  }
  c->failed = stop;
  PyGILState_Release(g);
  return stop;
}

/* train(dataset, factors, regularization, alpha, iterations, seed, solver,
 *       cg_steps, threads, reg_exponent, unobserved_weight, compute_loss,
 *       callback) -> Model */
static PyObject *mod_train(PyObject *mod, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"dataset", "factors", "regularization", "alpha", "iterations",
                           "seed", "solver", "cg_steps", "threads", "reg_exponent",
                           "unobserved_weight", "compute_loss", "callback", NULL};
  cofi_params p = cofi_params_default();
  PyObject *ds_o, *callback = Py_None;
  unsigned long long seed = p.seed;
  int solver = (int)p.solver, compute_loss = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|IffIKiIIffpO", kwlist, &DatasetType, &ds_o,
                                   &p.factors, &p.regularization, &p.alpha, &p.iterations,
                                   &seed, &solver, &p.cg_steps, &p.threads, &p.reg_exponent,
                                   &p.unobserved_weight, &compute_loss, &callback))
    return NULL;
  p.seed = seed;
  p.solver = (cofi_solver)solver;
  p.compute_loss = compute_loss;
  train_ctx ctx = {.callback = callback};
  p.progress = on_progress;
  p.progress_ctx = &ctx;
  cofi_diag d = {0};
  int rc = cofi_params_check(&p, &d);
  if (rc) return raise_code(rc, &d);
  cofi_model *mdl = NULL;
  int blas_threads = openblas_get_num_threads();
  Py_BEGIN_ALLOW_THREADS
  rc = cofi_train(((DatasetObject *)ds_o)->ds, &p, &mdl, &d);
  Py_END_ALLOW_THREADS
  openblas_set_num_threads(blas_threads);
  if (rc) {
    if (ctx.failed && PyErr_Occurred()) return NULL; /* KeyboardInterrupt, callback error */
    return raise_code(rc, &d);
  }
  return model_wrap(mdl);
}

static PyObject *factors_view(ModelObject *self, const float *data, uint32_t rows) {
  npy_intp dims[2] = {rows, self->info.factors};
  PyObject *arr = PyArray_New(&PyArray_Type, 2, dims, NPY_FLOAT32, NULL, (void *)data, 0,
                              NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
  if (!arr) return NULL;
  Py_INCREF(self);
  if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
    Py_DECREF(arr);
    return NULL;
  }
  return arr;
}

static PyObject *Model_user_factors(ModelObject *self, PyObject *unused) {
  return factors_view(self, cofi_model_user_factors(self->m), self->info.n_users);
}
static PyObject *Model_item_factors(ModelObject *self, PyObject *unused) {
  return factors_view(self, cofi_model_item_factors(self->m), self->info.n_items);
}

static PyObject *Model_save(ModelObject *self, PyObject *args) {
  PyObject *path;
  if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path)) return NULL;
  cofi_diag d = {0};
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = cofi_model_save(self->m, PyBytes_AS_STRING(path), &d);
  Py_END_ALLOW_THREADS
  Py_DECREF(path);
  if (rc) return raise_code(rc, &d);
  Py_RETURN_NONE;
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
  cofi_model_info *i = &self->info;
  const cofi_params *p = &i->params;
  return Py_BuildValue(
      "{s:I,s:I,s:I,s:K,s:K,s:K,s:K,s:d,s:d,s:s,s:I,"
      "s:{s:I,s:d,s:d,s:I,s:K,s:s,s:I,s:d,s:d}}",
      "n_users", i->n_users, "n_items", i->n_items, "factors", i->factors, "nnz",
      (unsigned long long)i->nnz, "created_unix", (unsigned long long)i->created_unix,
      "file_bytes", (unsigned long long)i->file_bytes, "checksum",
      (unsigned long long)i->checksum, "train_seconds", i->train_seconds, "train_loss",
      i->train_loss, "cofi_version", i->cofi_version, "n_item_fields", i->n_item_fields,
      "params", "factors", p->factors, "regularization", (double)p->regularization, "alpha",
      (double)p->alpha, "iterations", p->iterations, "seed", (unsigned long long)p->seed,
      "solver", p->solver == COFI_SOLVER_CG ? "cg" : "cholesky", "cg_steps", p->cg_steps,
      "reg_exponent", (double)p->reg_exponent, "unobserved_weight",
      (double)p->unobserved_weight);
}

/* Two new 1-D arrays (int32 ids, float32 scores) of n entries from out. */
static PyObject *scored_pair(const cofi_scored *out, size_t n, const uint32_t *remap) {
  npy_intp dim = (npy_intp)n;
  PyObject *ids = PyArray_SimpleNew(1, &dim, NPY_INT32);
  PyObject *scores = PyArray_SimpleNew(1, &dim, NPY_FLOAT32);
  if (!ids || !scores) {
    Py_XDECREF(ids);
    Py_XDECREF(scores);
    return NULL;
  }
  int32_t *ip = PyArray_DATA((PyArrayObject *)ids);
  float *sp = PyArray_DATA((PyArrayObject *)scores);
  for (size_t i = 0; i < n; i++) {
    ip[i] = (int32_t)(remap ? remap[out[i].index] : out[i].index);
    sp[i] = out[i].score;
  }
  return Py_BuildValue("(NN)", ids, scores);
}

/* A float32 vector of exactly `factors` entries. */
static int vec_from(PyObject *obj, uint32_t factors, PyArrayObject **out) {
  *out = (PyArrayObject *)PyArray_FROMANY(obj, NPY_FLOAT32, 1, 1,
                                          NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
  if (!*out) return -1;
  if (PyArray_SIZE(*out) != (npy_intp)factors) {
    PyErr_Format(PyExc_ValueError, "the user vector has %zd entries, the model %u factors",
                 (Py_ssize_t)PyArray_SIZE(*out), factors);
    Py_CLEAR(*out);
    return -1;
  }
  return 0;
}

/* recommend(user, k, seen=None, exclude=None, vector=None, filter_training=False)
 *   user: index (ignored when vector is given); seen: item indices to drop
 *   (the caller's user_items row); exclude: more items to drop;
 *   filter_training: also drop the user's items of the training matrix.
 * -> (ids int32[n], scores float32[n]), n = min(k, candidates). */
static PyObject *Model_recommend(ModelObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"user", "k", "seen", "exclude", "vector", "filter_training", NULL};
  long long user;
  unsigned int k;
  PyObject *seen_o = Py_None, *excl_o = Py_None, *vec_o = Py_None;
  int filter_training = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "LI|OOOp", kwlist, &user, &k, &seen_o, &excl_o,
                                   &vec_o, &filter_training))
    return NULL;
  uint32_t ni = self->info.n_items;
  PyArrayObject *vec = NULL;
  const float *v;
  if (vec_o != Py_None) {
    if (vec_from(vec_o, self->info.factors, &vec) < 0) return NULL;
    v = PyArray_DATA(vec);
  } else {
    if (user < 0 || user >= (long long)self->info.n_users) {
      PyErr_Format(PyExc_IndexError, "user index %lld is out of range (the model has %u users)",
                   user, self->info.n_users);
      return NULL;
    }
    v = cofi_model_user_factors(self->m) + (size_t)user * self->info.factors;
  }
  idx_array seen, excl;
  if (idx_from(seen_o, ni, "user_items", &seen) < 0) {
    Py_XDECREF(vec);
    return NULL;
  }
  if (idx_from(excl_o, ni, "filter_items", &excl) < 0) {
    idx_release(&seen);
    Py_XDECREF(vec);
    return NULL;
  }
  PyObject *result = NULL;
  uint32_t *merged = NULL;
  const uint32_t *sp = seen.p;
  size_t ns = seen.n;
  if (filter_training && vec_o == Py_None) {
    const uint32_t *tr;
    size_t nt = cofi_model_user_items(self->m, (uint32_t)user, &tr, NULL);
    if (ns == 0) {
      sp = tr;
      ns = nt;
    } else {
      merged = malloc((ns + nt) * sizeof *merged);
      if (!merged) {
        PyErr_NoMemory();
        goto done;
      }
      memcpy(merged, seen.p, ns * sizeof *merged);
      memcpy(merged + ns, tr, nt * sizeof *merged);
      sp = merged;
      ns += nt;
    }
  }
  if (k == 0) {
    result = scored_pair(NULL, 0, NULL);
    goto done;
  }
  {
    uint32_t kk = k < ni ? k : ni;
    cofi_scored stack[64], *out = kk <= 64 ? stack : malloc(kk * sizeof *out);
    cofi_workspace *ws = get_ws();
    if (!out || !ws) {
      if (!out) PyErr_NoMemory();
      goto done;
    }
    cofi_recommend_options o = cofi_recommend_options_default();
    o.k = kk;
    o.exclude = excl.p;
    o.n_exclude = excl.n;
    size_t n = 0;
    int rc = cofi_recommend_vector(self->m, ws, v, sp, ns, &o, out, &n);
    if (rc) raise_code(rc, NULL);
    else result = scored_pair(out, n, NULL);
    if (out != stack) free(out);
  }
done:
  free(merged);
  idx_release(&seen);
  idx_release(&excl);
  Py_XDECREF(vec);
  return result;
}

/* recommend_batch(users, k, seen_indptr=None, seen_indices=None, exclude=None,
 *                 vectors=None, threads=0, filter_training=False)
 *   users: item... user indices [n] (or None with vectors [n x factors]);
 *   seen_indptr/indices: a CSR whose row i lists the items to drop for
 *   query i. Runs without the GIL on OpenMP threads.
 * -> (ids int32[n, w], scores float32[n, w]), w = min(k, n_items); rows
 *    with fewer candidates are padded with id -1 and score -inf. */
static PyObject *Model_recommend_batch(ModelObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"users",   "k",       "seen_indptr",     "seen_indices", "exclude",
                           "vectors", "threads", "filter_training", NULL};
  PyObject *users_o, *sip_o = Py_None, *six_o = Py_None, *excl_o = Py_None, *vec_o = Py_None;
  unsigned int k, threads = 0;
  int filter_training = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OI|OOOOIp", kwlist, &users_o, &k, &sip_o, &six_o,
                                   &excl_o, &vec_o, &threads, &filter_training))
    return NULL;
  const uint32_t ni = self->info.n_items, nf = self->info.factors;
  idx_array users = {0}, six = {0}, excl = {0};
  PyArrayObject *sip = NULL, *vecs = NULL;
  PyObject *ids = NULL, *scores = NULL, *result = NULL;
  size_t n;
  if (vec_o != Py_None) {
    vecs = (PyArrayObject *)PyArray_FROMANY(vec_o, NPY_FLOAT32, 2, 2,
                                            NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!vecs) goto done;
    if (PyArray_DIM(vecs, 1) != (npy_intp)nf) {
      PyErr_Format(PyExc_ValueError, "the user vectors have %zd columns, the model %u factors",
                   (Py_ssize_t)PyArray_DIM(vecs, 1), nf);
      goto done;
    }
    n = (size_t)PyArray_DIM(vecs, 0);
    if (filter_training) {
      PyErr_SetString(PyExc_ValueError, "filter_training needs user indices, not vectors");
      goto done;
    }
  } else {
    if (idx_from(users_o, self->info.n_users, "userid", &users) < 0) goto done;
    n = users.n;
  }
  if (sip_o != Py_None) {
    sip = (PyArrayObject *)PyArray_FROMANY(sip_o, NPY_INT64, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (!sip) goto done;
    if ((size_t)PyArray_SIZE(sip) != n + 1) {
      PyErr_Format(PyExc_ValueError, "user_items must have one row per user (%zu rows for %zu users)",
                   (size_t)PyArray_SIZE(sip) - 1, n);
      goto done;
    }
    if (idx_from(six_o, ni, "user_items", &six) < 0) goto done;
    const int64_t *p = PyArray_DATA(sip);
    if (p[0] != 0 || (size_t)p[n] != six.n) {
      PyErr_SetString(PyExc_ValueError, "user_items: inconsistent indptr");
      goto done;
    }
    for (size_t i = 0; i < n; i++)
      if (p[i + 1] < p[i]) {
        PyErr_SetString(PyExc_ValueError, "user_items: indptr decreases");
        goto done;
      }
  }
  if (idx_from(excl_o, ni, "filter_items", &excl) < 0) goto done;
  uint32_t w = k < ni ? k : ni;
  npy_intp dims[2] = {(npy_intp)n, (npy_intp)w};
  ids = PyArray_SimpleNew(2, dims, NPY_INT32);
  scores = PyArray_SimpleNew(2, dims, NPY_FLOAT32);
  if (!ids || !scores) goto done;
  if (n == 0 || w == 0) {
    result = Py_BuildValue("(OO)", ids, scores);
    goto done;
  }
  {
    int32_t *idp = PyArray_DATA((PyArrayObject *)ids);
    float *scp = PyArray_DATA((PyArrayObject *)scores);
    const int64_t *ipp = sip ? PyArray_DATA(sip) : NULL;
    const float *vp = vecs ? PyArray_DATA(vecs) : NULL;
    const float *uf = cofi_model_user_factors(self->m);
    const cofi_model *mdl = self->m;
    int err = COFI_OK;
    int nthreads = threads ? (int)threads : omp_get_num_procs();
    Py_BEGIN_ALLOW_THREADS
#pragma omp parallel num_threads(nthreads)
    {
      cofi_workspace *ws = cofi_workspace_new();
      cofi_scored *out = malloc(w * sizeof *out);
      uint32_t *merged = NULL;
      size_t merged_cap = 0;
      if (!ws || !out) {
#pragma omp atomic write
        err = COFI_ERR_NOMEM;
      }
#pragma omp for schedule(dynamic, 16)
      for (size_t i = 0; i < n; i++) {
        if (!ws || !out) continue;
        int local_err;
#pragma omp atomic read
        local_err = err;
        if (local_err) continue;
        const float *v = vp ? vp + i * nf : uf + (size_t)users.p[i] * nf;
        const uint32_t *sp = ipp ? six.p + ipp[i] : NULL;
        size_t ns = ipp ? (size_t)(ipp[i + 1] - ipp[i]) : 0;
        if (filter_training) {
          const uint32_t *tr;
          size_t nt = cofi_model_user_items(mdl, users.p[i], &tr, NULL);
          if (ns == 0) {
            sp = tr;
            ns = nt;
          } else {
            if (ns + nt > merged_cap) {
              uint32_t *nm = realloc(merged, (ns + nt) * sizeof *nm);
              if (!nm) {
#pragma omp atomic write
                err = COFI_ERR_NOMEM;
                continue;
              }
              merged = nm;
              merged_cap = ns + nt;
            }
            memcpy(merged, sp, ns * sizeof *merged);
            memcpy(merged + ns, tr, nt * sizeof *merged);
            sp = merged;
            ns += nt;
          }
        }
        cofi_recommend_options o = cofi_recommend_options_default();
        o.k = w;
        o.exclude = excl.p;
        o.n_exclude = excl.n;
        size_t got = 0;
        int rc = cofi_recommend_vector(mdl, ws, v, sp, ns, &o, out, &got);
        if (rc) {
#pragma omp atomic write
          err = rc;
          continue;
        }
        int32_t *ir = idp + i * w;
        float *sr = scp + i * w;
        for (size_t j = 0; j < got; j++) {
          ir[j] = (int32_t)out[j].index;
          sr[j] = out[j].score;
        }
        for (size_t j = got; j < w; j++) {
          ir[j] = -1;
          sr[j] = -INFINITY;
        }
      }
      free(merged);
      free(out);
      cofi_workspace_free(ws);
    }
    Py_END_ALLOW_THREADS
    if (err) {
      raise_code(err, NULL);
      goto done;
    }
    result = Py_BuildValue("(OO)", ids, scores);
  }
done:
  Py_XDECREF(ids);
  Py_XDECREF(scores);
  Py_XDECREF(sip);
  Py_XDECREF(vecs);
  idx_release(&users);
  idx_release(&six);
  idx_release(&excl);
  return result;
}

/* _time_recommend(users, k, reps, filter_training=True) -> seconds per call:
 * the C call the single-user path makes (cofi_recommend_vector with the
 * user's factor row and training items, the shared workspace), timed in a
 * loop in C, for bench/python to measure the Python layer's overhead in
 * the same process. Not part of the API. */
static PyObject *Model_time_recommend(ModelObject *self, PyObject *args) {
  PyObject *users_o;
  unsigned int k, reps;
  int filter_training = 1;
  if (!PyArg_ParseTuple(args, "OII|p", &users_o, &k, &reps, &filter_training)) return NULL;
  idx_array users;
  if (idx_from(users_o, self->info.n_users, "users", &users) < 0) return NULL;
  uint32_t kk = k < self->info.n_items ? k : self->info.n_items;
  cofi_scored *out = malloc((kk ? kk : 1) * sizeof *out);
  cofi_workspace *ws = get_ws();
  if (!out || !ws || kk == 0 || users.n == 0) {
    free(out);
    idx_release(&users);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "need users and k >= 1");
    return NULL;
  }
  cofi_recommend_options o = cofi_recommend_options_default();
  o.k = kk;
  const float *uf = cofi_model_user_factors(self->m);
  double t0 = 0, t1 = 0;
  struct timespec ts;
  int rc = COFI_OK;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t0 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  for (unsigned int r = 0; r < reps && rc == COFI_OK; r++)
    for (size_t i = 0; i < users.n && rc == COFI_OK; i++) {
      const uint32_t *seen = NULL;
      size_t ns = filter_training ? cofi_model_user_items(self->m, users.p[i], &seen, NULL) : 0;
      size_t got;
      rc = cofi_recommend_vector(self->m, ws, uf + (size_t)users.p[i] * self->info.factors,
                                 seen, ns, &o, out, &got);
    }
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t1 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  size_t calls = (size_t)reps * users.n;
  free(out);
  idx_release(&users);
  if (rc) return raise_code(rc, NULL);
  return PyFloat_FromDouble((t1 - t0) / (double)calls);
}

/* fold_in(items, values=None) -> float32[factors]: the least-squares user
 * vector for these items (cofi_fold_in; values are cofi's r, confidence
 * 1 + alpha r). An empty list gives the zero vector. */
static PyObject *Model_fold_in(ModelObject *self, PyObject *args) {
  PyObject *items_o, *values_o = Py_None;
  if (!PyArg_ParseTuple(args, "O|O", &items_o, &values_o)) return NULL;
  idx_array items;
  if (idx_from(items_o, self->info.n_items, "items", &items) < 0) return NULL;
  PyArrayObject *vals = NULL;
  PyObject *vec = NULL;
  if (values_o != Py_None) {
    vals = (PyArrayObject *)PyArray_FROMANY(values_o, NPY_FLOAT32, 1, 1,
                                            NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!vals) goto done;
    if ((size_t)PyArray_SIZE(vals) != items.n) {
      PyErr_SetString(PyExc_ValueError, "items and values differ in length");
      goto done;
    }
    const float *vp = PyArray_DATA(vals);
    for (size_t i = 0; i < items.n; i++)
      if (!isfinite(vp[i]) || vp[i] < 0) {
        PyErr_Format(PyExc_ValueError, "value %g of item %u is not a finite number >= 0",
                     (double)vp[i], items.p[i]);
        goto done;
      }
  }
  npy_intp dim = self->info.factors;
  vec = PyArray_ZEROS(1, &dim, NPY_FLOAT32, 0);
  if (!vec) goto done;
  if (items.n > 0) {
    cofi_workspace *ws = get_ws();
    if (!ws) {
      Py_CLEAR(vec);
      goto done;
    }
    int rc = cofi_fold_in(self->m, ws, items.p, vals ? PyArray_DATA(vals) : NULL, items.n,
                          PyArray_DATA((PyArrayObject *)vec));
    if (rc) {
      Py_CLEAR(vec);
      raise_code(rc, NULL);
    }
  }
done:
  Py_XDECREF(vals);
  idx_release(&items);
  return vec;
}

static PyObject *similar(ModelObject *self, PyObject *args, int items) {
  long long q;
  unsigned int k;
  if (!PyArg_ParseTuple(args, "LI", &q, &k)) return NULL;
  uint32_t n = items ? self->info.n_items : self->info.n_users;
  if (q < 0 || q >= (long long)n) {
    PyErr_Format(PyExc_IndexError, "%s index %lld is out of range (the model has %u %s)",
                 items ? "item" : "user", q, n, items ? "items" : "users");
    return NULL;
  }
  uint32_t kk = k < n - 1 ? k : n - 1;
  if (kk == 0) return scored_pair(NULL, 0, NULL);
  cofi_scored stack[64], *out = kk <= 64 ? stack : malloc(kk * sizeof *out);
  cofi_workspace *ws = get_ws();
  PyObject *result = NULL;
  if (!out || !ws) {
    if (!out) PyErr_NoMemory();
  } else {
    size_t got = 0;
    int rc = items ? cofi_similar_items(self->m, ws, (uint32_t)q, kk, out, &got)
                   : cofi_similar_users(self->m, ws, (uint32_t)q, kk, out, &got);
    result = rc ? raise_code(rc, NULL) : scored_pair(out, got, NULL);
  }
  if (out != stack) free(out);
  return result;
}

static PyObject *Model_similar_items(ModelObject *self, PyObject *args) {
  return similar(self, args, 1);
}
static PyObject *Model_similar_users(ModelObject *self, PyObject *args) {
  return similar(self, args, 0);
}

static PyObject *Model_find_user(ModelObject *self, PyObject *arg) {
  Py_ssize_t len;
  const char *s = PyUnicode_AsUTF8AndSize(arg, &len);
  if (!s) return NULL;
  return PyLong_FromLongLong(cofi_model_find_user(self->m, s, (size_t)len));
}
static PyObject *Model_find_item(ModelObject *self, PyObject *arg) {
  Py_ssize_t len;
  const char *s = PyUnicode_AsUTF8AndSize(arg, &len);
  if (!s) return NULL;
  return PyLong_FromLongLong(cofi_model_find_item(self->m, s, (size_t)len));
}

static int index_arg(PyObject *arg, uint32_t n, const char *what, uint32_t *out) {
  long long i = PyLong_AsLongLong(arg);
  if (i == -1 && PyErr_Occurred()) return -1;
  if (i < 0 || i >= (long long)n) {
    PyErr_Format(PyExc_IndexError, "%s index %lld is out of range (0..%u)", what, i, n - 1);
    return -1;
  }
  *out = (uint32_t)i;
  return 0;
}

static PyObject *Model_user_id(ModelObject *self, PyObject *arg) {
  uint32_t i;
  if (index_arg(arg, self->info.n_users, "user", &i) < 0) return NULL;
  size_t len;
  const char *s = cofi_model_user_id(self->m, i, &len);
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "replace");
}
static PyObject *Model_item_id(ModelObject *self, PyObject *arg) {
  uint32_t i;
  if (index_arg(arg, self->info.n_items, "item", &i) < 0) return NULL;
  size_t len;
  const char *s = cofi_model_item_id(self->m, i, &len);
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "replace");
}

/* item_fields(i) -> dict {field name: value} (title included), {} without metadata */
static PyObject *Model_item_fields(ModelObject *self, PyObject *arg) {
  uint32_t i;
  if (index_arg(arg, self->info.n_items, "item", &i) < 0) return NULL;
  PyObject *d = PyDict_New();
  if (!d) return NULL;
  for (uint32_t f = 0; f < self->info.n_item_fields; f++) {
    size_t nl, vl;
    const char *name = cofi_model_item_field_name(self->m, f, &nl);
    const char *val = cofi_model_item_field(self->m, i, f, &vl);
    PyObject *k = PyUnicode_DecodeUTF8(name, (Py_ssize_t)nl, "replace");
    PyObject *v = PyUnicode_DecodeUTF8(val, (Py_ssize_t)vl, "replace");
    if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
      Py_XDECREF(k);
      Py_XDECREF(v);
      Py_DECREF(d);
      return NULL;
    }
    Py_DECREF(k);
    Py_DECREF(v);
  }
  return d;
}

static PyObject *Model_item_title(ModelObject *self, PyObject *arg) {
  uint32_t i;
  if (index_arg(arg, self->info.n_items, "item", &i) < 0) return NULL;
  size_t len;
  const char *s = cofi_model_item_title(self->m, i, &len);
  if (!s) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "replace");
}

/* user_items(u) -> (indices uint32 copy, values float32 copy) */
static PyObject *Model_user_items(ModelObject *self, PyObject *arg) {
  uint32_t u;
  if (index_arg(arg, self->info.n_users, "user", &u) < 0) return NULL;
  const uint32_t *it;
  const float *vals;
  size_t n = cofi_model_user_items(self->m, u, &it, &vals);
  npy_intp dim = (npy_intp)n;
  PyObject *a = PyArray_SimpleNew(1, &dim, NPY_UINT32);
  PyObject *b = PyArray_SimpleNew(1, &dim, NPY_FLOAT32);
  if (!a || !b) {
    Py_XDECREF(a);
    Py_XDECREF(b);
    return NULL;
  }
  if (n) {
    memcpy(PyArray_DATA((PyArrayObject *)a), it, n * sizeof *it);
    memcpy(PyArray_DATA((PyArrayObject *)b), vals, n * sizeof *vals);
  }
  return Py_BuildValue("(NN)", a, b);
}

/* ---- Explainer --------------------------------------------------------------- */

/* A cofi_explainer: one user's history and its factored fold-in system, so
 * explaining several items costs one factorization. It borrows the model,
 * so it holds a reference to the Model object. Used with the GIL held (the
 * C explainer has scratch memory and belongs to one thread at a time). */
typedef struct {
  PyObject_HEAD
  cofi_explainer *e;
  ModelObject *model;
  size_t n; /* history length */
} ExplainerObject;

static PyTypeObject ExplainerType;

static void Explainer_dealloc(ExplainerObject *self) {
  cofi_explainer_free(self->e);
  Py_XDECREF(self->model);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *explainer_wrap(ModelObject *model, cofi_explainer *e, size_t n) {
  ExplainerObject *o = PyObject_New(ExplainerObject, &ExplainerType);
  if (!o) {
    cofi_explainer_free(e);
    return NULL;
  }
  o->e = e;
  o->n = n;
  Py_INCREF(model);
  o->model = model;
  return (PyObject *)o;
}

/* explain(item, top) -> (score float, items int32[n], contributions float64[n]):
 * the explained score (the recalculated user's) and the top largest
 * contributions, largest first (ties by item index), n = min(top, history). */
static PyObject *Explainer_explain(ExplainerObject *self, PyObject *args) {
  long long item;
  Py_ssize_t top;
  if (!PyArg_ParseTuple(args, "Ln", &item, &top)) return NULL;
  uint32_t ni = self->model->info.n_items;
  if (item < 0 || item >= (long long)ni) {
    PyErr_Format(PyExc_IndexError, "item index %lld is out of range (the model has %u items)",
                 item, ni);
    return NULL;
  }
  if (top < 0) {
    PyErr_Format(PyExc_ValueError, "top must be >= 0, got %zd", top);
    return NULL;
  }
  size_t want = (size_t)top < self->n ? (size_t)top : self->n;
  cofi_contribution stack[16], *out = want <= 16 ? stack : malloc(want * sizeof *out);
  if (!out) return PyErr_NoMemory();
  size_t got = 0;
  double score = 0.0;
  PyObject *result = NULL;
  int rc = cofi_explain(self->e, (uint32_t)item, want, out, &got, &score);
  if (rc) {
    raise_code(rc, NULL);
  } else {
    npy_intp dim = (npy_intp)got;
    PyObject *ids = PyArray_SimpleNew(1, &dim, NPY_INT32);
    PyObject *con = PyArray_SimpleNew(1, &dim, NPY_FLOAT64);
    if (ids && con) {
      int32_t *ip = PyArray_DATA((PyArrayObject *)ids);
      double *cp = PyArray_DATA((PyArrayObject *)con);
      for (size_t i = 0; i < got; i++) {
        ip[i] = (int32_t)out[i].item;
        cp[i] = out[i].contribution;
      }
      result = Py_BuildValue("(dNN)", score, ids, con);
    } else {
      Py_XDECREF(ids);
      Py_XDECREF(con);
    }
  }
  if (out != stack) free(out);
  return result;
}

static PyObject *Explainer_get_model(ExplainerObject *self, void *c) {
  return Py_NewRef((PyObject *)self->model);
}
static Py_ssize_t Explainer_len(ExplainerObject *self) { return (Py_ssize_t)self->n; }

static PyMethodDef Explainer_methods[] = {
    {"explain", (PyCFunction)Explainer_explain, METH_VARARGS,
     "explain(item, top) -> (score, items int32[n], contributions float64[n]), largest first"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Explainer_getset[] = {
    {"model", (getter)Explainer_get_model, NULL, "the Model it explains", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods Explainer_as_sequence = {.sq_length = (lenfunc)Explainer_len};

static PyTypeObject ExplainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cofi._cofi.Explainer",
    .tp_basicsize = sizeof(ExplainerObject),
    .tp_dealloc = (destructor)Explainer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One user's factored fold-in system (a cofi_explainer), from Model.explainer() "
              "or Model.explainer_user(); len() is the history length.",
    .tp_methods = Explainer_methods,
    .tp_getset = Explainer_getset,
    .tp_as_sequence = &Explainer_as_sequence,
};

/* explainer(items, values=None) -> Explainer for a history given as item
 * indices with cofi's r values (confidence 1 + alpha r; None = 1 each), as
 * fold_in. An empty history is an InvalidError. */
static PyObject *Model_explainer(ModelObject *self, PyObject *args) {
  PyObject *items_o, *values_o = Py_None;
  if (!PyArg_ParseTuple(args, "O|O", &items_o, &values_o)) return NULL;
  idx_array items;
  if (idx_from(items_o, self->info.n_items, "items", &items) < 0) return NULL;
  PyArrayObject *vals = NULL;
  PyObject *result = NULL;
  if (values_o != Py_None) {
    vals = (PyArrayObject *)PyArray_FROMANY(values_o, NPY_FLOAT32, 1, 1,
                                            NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!vals) goto done;
    if ((size_t)PyArray_SIZE(vals) != items.n) {
      PyErr_SetString(PyExc_ValueError, "items and values differ in length");
      goto done;
    }
    const float *vp = PyArray_DATA(vals);
    for (size_t i = 0; i < items.n; i++)
      if (!isfinite(vp[i]) || vp[i] < 0) {
        PyErr_Format(PyExc_ValueError, "value %g of item %u is not a finite number >= 0",
                     (double)vp[i], items.p[i]);
        goto done;
      }
  }
  if (items.n == 0) {
    PyErr_SetString(exc_for(COFI_ERR_INVALID), "an explanation needs a non-empty history");
    goto done;
  }
  {
    cofi_explainer *e = NULL;
    int rc = cofi_explainer_new_history(self->m, items.p, vals ? PyArray_DATA(vals) : NULL,
                                        items.n, &e);
    result = rc ? raise_code(rc, NULL) : explainer_wrap(self, e, items.n);
  }
done:
  Py_XDECREF(vals);
  idx_release(&items);
  return result;
}

/* explainer_user(u) -> Explainer from the user's training history. */
static PyObject *Model_explainer_user(ModelObject *self, PyObject *arg) {
  uint32_t u;
  if (index_arg(arg, self->info.n_users, "user", &u) < 0) return NULL;
  const uint32_t *it;
  size_t n = cofi_model_user_items(self->m, u, &it, NULL);
  if (n == 0) {
    PyErr_SetString(exc_for(COFI_ERR_INVALID),
                    "the user has no training history to explain from");
    return NULL;
  }
  cofi_explainer *e = NULL;
  int rc = cofi_explainer_new_user(self->m, u, &e);
  if (rc) return raise_code(rc, NULL);
  return explainer_wrap(self, e, n);
}

static const char *scorer_names[] = {"model", "popularity", "random"};

/* evaluate(test, foldin=None, scorer="model", ks=(10,), seed=0, threads=0) -> dict */
static PyObject *Model_evaluate(ModelObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"test", "foldin", "scorer", "ks", "seed", "threads", NULL};
  PyObject *test, *foldin = Py_None, *ks_o = NULL;
  const char *scorer_s = "model";
  unsigned long long seed = 0;
  unsigned int threads = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|OsOKI", kwlist, &DatasetType, &test, &foldin,
                                   &scorer_s, &ks_o, &seed, &threads))
    return NULL;
  if (foldin != Py_None && !PyObject_TypeCheck(foldin, &DatasetType)) {
    PyErr_SetString(PyExc_TypeError, "foldin must be a Dataset or None");
    return NULL;
  }
  int scorer = -1;
  for (int s = 0; s < 3; s++)
    if (!strcmp(scorer_s, scorer_names[s])) scorer = s;
  if (scorer < 0) {
    PyErr_Format(PyExc_ValueError, "scorer must be model, popularity or random, got '%s'",
                 scorer_s);
    return NULL;
  }
  cofi_eval_options o = cofi_eval_options_default();
  o.seed = seed;
  o.threads = threads;
  if (ks_o) {
    PyObject *seq = PySequence_Fast(ks_o, "ks must be a sequence of cutoffs");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > COFI_EVAL_MAX_KS) {
      Py_DECREF(seq);
      PyErr_Format(PyExc_ValueError, "between 1 and %d cutoffs", COFI_EVAL_MAX_KS);
      return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
      long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
      if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(seq);
        return NULL;
      }
      if (v < 1 || v > COFI_EVAL_MAX_K) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "a cutoff must be in 1..%d, got %ld", COFI_EVAL_MAX_K, v);
        return NULL;
      }
      o.ks[i] = (uint32_t)v;
    }
    o.n_ks = (uint32_t)n;
    Py_DECREF(seq);
  }
  cofi_eval_result r;
  cofi_diag d = {0};
  int rc;
  const cofi_dataset *fd = foldin == Py_None ? NULL : ((DatasetObject *)foldin)->ds;
  Py_BEGIN_ALLOW_THREADS
  rc = cofi_evaluate(self->m, (cofi_scorer)scorer, ((DatasetObject *)test)->ds, fd, &o, &r, &d);
  Py_END_ALLOW_THREADS
  if (rc) return raise_code(rc, &d);
  PyObject *metrics = PyDict_New();
  if (!metrics) return NULL;
  for (uint32_t c = 0; c < r.n_ks; c++)
    for (int mt = 0; mt < COFI_METRIC_COUNT; mt++) {
      char key[48];
      snprintf(key, sizeof key, "%s@%u", cofi_metric_name(mt), r.ks[c]);
      PyObject *v = PyFloat_FromDouble(r.metrics[c][mt]);
      if (!v || PyDict_SetItemString(metrics, key, v) < 0) {
        Py_XDECREF(v);
        Py_DECREF(metrics);
        return NULL;
      }
      Py_DECREF(v);
    }
  for (uint32_t c = 0; c < r.n_ks; c++) { /* as cofi eval --json: long_tail@K */
    char key[48];
    snprintf(key, sizeof key, "long_tail@%u", r.ks[c]);
    PyObject *v = PyFloat_FromDouble(r.long_tail[c]);
    if (!v || PyDict_SetItemString(metrics, key, v) < 0) {
      Py_XDECREF(v);
      Py_DECREF(metrics);
      return NULL;
    }
    Py_DECREF(v);
  }
  return Py_BuildValue("{s:N,s:K,s:K,s:{s:K,s:K},s:K,s:K,s:d}", "metrics", metrics, "n_users",
                       (unsigned long long)r.n_users, "n_items", (unsigned long long)r.n_items,
                       "skipped", cofi_skip_name(COFI_SKIP_USER_UNKNOWN),
                       (unsigned long long)r.skipped[COFI_SKIP_USER_UNKNOWN],
                       cofi_skip_name(COFI_SKIP_ITEMS_UNKNOWN),
                       (unsigned long long)r.skipped[COFI_SKIP_ITEMS_UNKNOWN], "n_test_items",
                       (unsigned long long)r.n_test_items, "unknown_items",
                       (unsigned long long)r.unknown_items, "seconds", r.seconds);
}

static PyObject *Model_get_n_users(ModelObject *self, void *c) {
  return PyLong_FromUnsignedLong(self->info.n_users);
}
static PyObject *Model_get_n_items(ModelObject *self, void *c) {
  return PyLong_FromUnsignedLong(self->info.n_items);
}
static PyObject *Model_get_factors(ModelObject *self, void *c) {
  return PyLong_FromUnsignedLong(self->info.factors);
}

static PyMethodDef Model_methods[] = {
    {"user_factors", (PyCFunction)Model_user_factors, METH_NOARGS,
     "Read-only float32 view [n_users x factors] of the model's memory."},
    {"item_factors", (PyCFunction)Model_item_factors, METH_NOARGS,
     "Read-only float32 view [n_items x factors] of the model's memory."},
    {"save", (PyCFunction)Model_save, METH_VARARGS, "save(path): atomic write of the model file."},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "Model metadata and training parameters."},
    {"recommend", (PyCFunction)(void (*)(void))Model_recommend, METH_VARARGS | METH_KEYWORDS,
     "recommend(user, k, seen=None, exclude=None, vector=None, filter_training=False)"},
    {"recommend_batch", (PyCFunction)(void (*)(void))Model_recommend_batch,
     METH_VARARGS | METH_KEYWORDS,
     "recommend_batch(users, k, seen_indptr=None, seen_indices=None, exclude=None, "
     "vectors=None, threads=0, filter_training=False)"},
    {"fold_in", (PyCFunction)Model_fold_in, METH_VARARGS, "fold_in(items, values=None)"},
    {"_time_recommend", (PyCFunction)Model_time_recommend, METH_VARARGS,
     "_time_recommend(users, k, reps, filter_training=True) -> seconds per C call (bench)"},
    {"similar_items", (PyCFunction)Model_similar_items, METH_VARARGS,
     "similar_items(item, k): cosine, the item itself left out"},
    {"similar_users", (PyCFunction)Model_similar_users, METH_VARARGS,
     "similar_users(user, k): cosine, the user itself left out"},
    {"find_user", (PyCFunction)Model_find_user, METH_O, "index of a user ID, or -1"},
    {"find_item", (PyCFunction)Model_find_item, METH_O, "index of an item ID, or -1"},
    {"user_id", (PyCFunction)Model_user_id, METH_O, "ID of a user index"},
    {"item_id", (PyCFunction)Model_item_id, METH_O, "ID of an item index"},
    {"item_title", (PyCFunction)Model_item_title, METH_O, "title of an item, or None"},
    {"item_fields", (PyCFunction)Model_item_fields, METH_O, "metadata of an item as a dict"},
    {"user_items", (PyCFunction)Model_user_items, METH_O,
     "(items, values) of a user in the training matrix"},
    {"explainer", (PyCFunction)Model_explainer, METH_VARARGS,
     "explainer(items, values=None) -> Explainer for this history (values: cofi's r)"},
    {"explainer_user", (PyCFunction)Model_explainer_user, METH_O,
     "explainer_user(u) -> Explainer from the user's training history"},
    {"evaluate", (PyCFunction)(void (*)(void))Model_evaluate, METH_VARARGS | METH_KEYWORDS,
     "evaluate(test, foldin=None, scorer='model', ks=(10,), seed=0, threads=0) -> dict"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Model_getset[] = {
    {"n_users", (getter)Model_get_n_users, NULL, "users", NULL},
    {"n_items", (getter)Model_get_n_items, NULL, "items", NULL},
    {"factors", (getter)Model_get_factors, NULL, "latent dimension", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cofi._cofi.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A cofi model (trained, or opened from a model file): immutable.",
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

/* ---- module ------------------------------------------------------------------ */

static PyMethodDef module_methods[] = {
    {"read", (PyCFunction)(void (*)(void))mod_read, METH_VARARGS | METH_KEYWORDS,
     "read(path, format=0, user_col=None, item_col=None, value_col=None, event_col=None, "
     "time_col=None, delimiter=None, event_weights=None, min_value=None) -> Dataset"},
    {"from_csr", (PyCFunction)mod_from_csr, METH_VARARGS,
     "from_csr(n_rows, n_cols, indptr, indices, values) -> Dataset"},
    {"train", (PyCFunction)(void (*)(void))mod_train, METH_VARARGS | METH_KEYWORDS,
     "train(dataset, factors, regularization, alpha, iterations, seed, solver, cg_steps, "
     "threads, reg_exponent, unobserved_weight, compute_loss, callback) -> Model"},
    {"open", (PyCFunction)mod_open, METH_VARARGS,
     "open(path, private_copy=False) -> Model (mapped, or read into memory)"},
    {"open_bytes", (PyCFunction)mod_open_bytes, METH_VARARGS,
     "open_bytes(data) -> Model from the bytes of a model file"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, .m_name = "cofi._cofi",
    .m_doc = "The CPython extension over libcofi (use the cofi package).", .m_size = -1,
    .m_methods = module_methods};

PyMODINIT_FUNC PyInit__cofi(void) {
  import_array();
  if (PyType_Ready(&DatasetType) < 0 || PyType_Ready(&ModelType) < 0 ||
      PyType_Ready(&ExplainerType) < 0)
    return NULL;
  PyObject *mod = PyModule_Create(&moduledef);
  if (!mod) return NULL;
  if (PyModule_AddObjectRef(mod, "Dataset", (PyObject *)&DatasetType) < 0 ||
      PyModule_AddObjectRef(mod, "Model", (PyObject *)&ModelType) < 0 ||
      PyModule_AddObjectRef(mod, "Explainer", (PyObject *)&ExplainerType) < 0 ||
      PyModule_AddStringConstant(mod, "library_version", cofi_version()) < 0 ||
      make_exceptions(mod) < 0) {
    Py_DECREF(mod);
    return NULL;
  }
  return mod;
}
