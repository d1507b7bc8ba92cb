"""Tree models compiled to native code: treelite reads the model, tl2cgen turns it into C and gcc builds it.

The artifact stays the trained model (UBJ, LightGBM text, skops); its compiled form is built from it
deterministically and cached by content: the cache key is the SHA-256 of treelite's serialised model
plus the treelite/tl2cgen versions and the machine, so the same artifact always gives the same
library and a changed one can never reuse a stale build. ``serve`` builds every library once in the
parent process before it starts the workers (:func:`prepare`), which then only load them. Builds go to
a temporary name and are renamed into place, so concurrent builders never see a half-written file.

The cache folder is ``$AIRFARE_COMPILE_CACHE`` (default ``~/.cache/airfare/compiled``), outside the
model folder, which SageMaker mounts read-only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
_lock = threading.Lock()


class CompileUnavailable(RuntimeError):
    """No C compiler (or no treelite/tl2cgen): the caller falls back to the native backend."""


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    root = path or os.environ.get("AIRFARE_COMPILE_CACHE") or Path.home() / ".cache" / "airfare" / "compiled"
    return Path(root)


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "gcc"))


def to_treelite(model):
    """The treelite model of an XGBoost booster, a LightGBM booster or a scikit-learn IsolationForest."""
    import treelite

    kind = type(model).__module__.split(".", 1)[0]
    if kind == "xgboost":
        # A full-range slice drops the categorical re-coder XGBoost >= 3.1 saves with models trained on
        # pandas categoricals (treelite refuses it); the trees, categorical splits and base score stay.
        # Serving feeds level codes already (inference.fast.MatrixEncoder), which is what it maps to.
        return treelite.frontend.from_xgboost(model[0:model.num_boosted_rounds()])
    if kind == "lightgbm":
        return treelite.frontend.from_lightgbm(model)
    if kind == "sklearn":
        return treelite.sklearn.import_model(model)
    raise TypeError(f"cannot compile a {type(model).__name__}")


# gcc's optimisation level by model size (treelite's serialised bytes). Measured on this 2-core machine
# (README, "Serving speed"): tl2cgen's default -O3 buys nothing per request on a large model, whose
# one-row prediction is bound by cache and branch misses (the demand model: the same request handler
# time at -O1 as at -O3, rows in turn), and costs three times -O1's compile time (minutes for the demand
# model, paid by every new instance of an endpoint that scales out). On a small model -O3 is ~3 % faster
# per request (price) and compiles in seconds anyway.
O3_MAX_MODEL_BYTES = 2_000_000
OPT_LEVELS = ("O0", "O1", "O2", "O3", "Os")


def opt_level(model_bytes: int) -> str:
    """``$AIRFARE_COMPILE_OPT`` if set (one of ``OPT_LEVELS``), else -O3 for small models and -O1 above."""
    forced = os.environ.get("AIRFARE_COMPILE_OPT", "").strip().lstrip("-")
    if forced:
        if forced not in OPT_LEVELS:
            raise ValueError(f"AIRFARE_COMPILE_OPT must be one of {', '.join(OPT_LEVELS)}, not {forced!r}")
        return forced
    return "O3" if model_bytes <= O3_MAX_MODEL_BYTES else "O1"


def library_key(tl_model, level: str = "O3", serialized: bytes | None = None) -> str:
    import tl2cgen
    import treelite

    h = hashlib.sha256(serialized if serialized is not None else tl_model.serialize_bytes())
    h.update(f"treelite={treelite.__version__};tl2cgen={tl2cgen.__version__};{platform.machine()}".encode())
    if level != "O3":  # libraries built at tl2cgen's default level keep their earlier names
        h.update(f";opt={level}".encode())
    return h.hexdigest()[:32]


def build(model, cache: str | os.PathLike | None = None) -> tuple[Path, object]:
    """The compiled library of ``model`` (built unless cached) and its treelite model."""
    if compiler() is None:
        raise CompileUnavailable("no C compiler (gcc) on PATH")
    try:
        import tl2cgen
    except ImportError as e:  # pragma: no cover - both are in the runtime lock
        raise CompileUnavailable(str(e)) from e
    tl_model = to_treelite(model)
    serialized = tl_model.serialize_bytes()
    level = opt_level(len(serialized))
    folder = cache_dir(cache)
    lib = folder / f"{library_key(tl_model, level, serialized)}.so"
    with _lock:
        if not lib.exists():
            folder.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
                target = Path(tmp) / lib.name
                # tl2cgen's gcc command says -O3 first; a later -O option overrides it
                tl2cgen.export_lib(tl_model, toolchain=os.path.basename(compiler()), libpath=str(target),
                                   params={"parallel_comp": max(1, min(8, os.cpu_count() or 1))}, nthread=1,
                                   options=[f"-{level}"])
                os.replace(target, lib)
            log.info("compiled %s trees at -%s in %.1f s into %s", type(model).__name__, level,
                     time.perf_counter() - started, lib)
    return lib, tl_model


def unclash(entries: np.ndarray) -> np.ndarray:
    """``entries`` (float64, in place): a present value whose low four bytes are all ones moved one
    ulp toward zero; returns ``entries``.

    Why: tl2cgen's generated code reads ``union Entry { int missing; double fvalue; }`` and takes
    ``missing == -1`` for a missing value. For a double that int is the value's low four bytes, so a
    present value such as 168.87499999999997 (168.875 less one ulp: low bytes all ones) went down the
    missing branch: 10 of the default world's first 4,000 demand test rows differed from LightGBM's
    own prediction by up to 0.106 in probability. One ulp toward zero clears those bytes and changes
    a split only if a threshold lies exactly between the two values.
    """
    clash = (entries.view(np.int64) & 0xFFFFFFFF) == 0xFFFFFFFF
    if clash.any():
        clash &= ~np.isnan(entries)
        entries[clash] = np.nextafter(entries[clash], 0.0)
    return entries


class CompiledTrees:
    """Predictions of one compiled tree model on a float matrix; ``(n, outputs)`` float64.

    A few rows (the real-time case) call the library's ``predict(union Entry*, int, result*)``
    directly through ctypes, one row at a time: tl2cgen's own ``Predictor`` builds a DMatrix and goes
    through its thread pool, which costs more than the trees for one row. ``union Entry`` is the
    feature value, or ``missing == -1`` in its first four bytes: a NaN input is written as the integer
    -1 there (that bit pattern is itself a NaN, so no real value collides with it for float32; for
    float64 the whole word is set, and a present value whose low four bytes would read as -1 is
    moved by :func:`unclash`). Larger batches use tl2cgen's ``Predictor``.
    """

    name = "compiled"
    DIRECT_MAX_ROWS = 32

    def __init__(self, lib: Path, dtype: str):
        import ctypes

        import tl2cgen

        self.lib = lib
        self.dtype = np.float32 if dtype == "float32" else np.float64
        self._dtype_name = dtype
        self.predictor = tl2cgen.Predictor(str(lib), nthread=1)
        self._dmatrix = tl2cgen.DMatrix
        so = ctypes.CDLL(str(lib))
        so.get_leaf_output_type.restype = ctypes.c_char_p
        so.get_threshold_type.restype = ctypes.c_char_p
        n_target = so.get_num_target()
        classes = (ctypes.c_int32 * n_target)()
        so.get_num_class(classes)
        self.width = n_target * max(classes)
        self.n_features = so.get_num_feature()
        self._leaf = np.float32 if so.get_leaf_output_type() == b"float32" else np.float64
        self._entry = np.float32 if so.get_threshold_type() == b"float32" else np.float64
        self._missing = np.int32(-1) if self._entry == np.float32 else np.int64(-1)
        self._int_view = np.int32 if self._entry == np.float32 else np.int64
        self._predict = so.predict
        self._predict.restype = None
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._so = so  # keep the library loaded
        # One row (the real-time case) goes through buffers allocated once: no array is created per
        # request but the returned one. A worker calls this from its one event-loop thread only.
        self._row = np.zeros(self.n_features, dtype=self._entry)
        self._row_int = self._row.view(self._int_view)
        self._row_ptr = self._row.ctypes.data
        self._res = np.zeros(self.width, dtype=self._leaf)
        self._res_ptr = self._res.ctypes.data

    @classmethod
    def for_model(cls, model, role: str, model_dir, cache=None) -> CompiledTrees:
        lib, tl_model = build(model, cache)
        dtype = tl_model.input_type if hasattr(tl_model, "input_type") else "float32"
        return cls(lib, str(dtype))

    def predict_one(self, values) -> np.ndarray:
        """One row (any float sequence of ``n_features``, NaN = missing) -> ``(1, outputs)`` float64."""
        return np.asarray(self.predict_values(values), dtype=np.float64).reshape(1, -1)

    def predict_values(self, values) -> list[float]:
        """One row as a list (the real-time path: no array in, none out): the outputs as Python floats
        (exact for float32 and float64 leaves alike)."""
        row = self._row
        row[:] = values
        if self._entry is np.float64:
            unclash(row)
        missing = row != row
        if missing.any():
            self._row_int[missing] = self._missing
        self._res.fill(0)
        self._predict(self._row_ptr, 0, self._res_ptr)
        return self._res.tolist()

    def predict(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if n == 1:
            return self.predict_one(x[0])
        if n > self.DIRECT_MAX_ROWS:
            x = unclash(np.array(x, dtype=np.float64, order="C")) if self.dtype is np.float64 else np.ascontiguousarray(x, dtype=self.dtype)
            out = self.predictor.predict(self._dmatrix(x, dtype=self._dtype_name))
            return np.asarray(out, dtype=np.float64).reshape(n, -1)
        entries = np.array(x, dtype=self._entry, order="C", copy=True).reshape(n, self.n_features)
        if self._entry is np.float64:
            unclash(entries)
        missing = np.isnan(entries)
        if missing.any():
            entries.view(self._int_view)[missing] = self._missing
        result = np.zeros((n, self.width), dtype=self._leaf)
        data, res = entries.ctypes.data, result.ctypes.data
        row_bytes, res_bytes = entries.strides[0], result.strides[0]
        for i in range(n):
            self._predict(data + i * row_bytes, 0, res + i * res_bytes)
        return result.astype(np.float64)


def prepare(loaded, cache=None) -> list[Path]:
    """Build every library ``loaded`` (a ``LoadedModel``) needs; returns their paths (for ``serve``'s parent)."""
    models = dict(loaded._models)
    if "norm" in models:
        models["norm"] = models["norm"]._models["xgb"]
    return [build(m, cache)[0] for m in models.values()]
