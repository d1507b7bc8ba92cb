"""A Model Monitor-compatible data-quality analyzer: statistics, suggested constraints, violations.

It writes what SageMaker Model Monitor's analyzer image (``sagemaker-model-monitor-analyzer``)
writes, in its documented formats (Developer Guide: "Schema for Statistics", "Schema for
Constraints", "Schema for Violations"):

- ``statistics.json``: ``version``, ``dataset.item_count`` and per feature ``name``,
  ``inferred_type`` (Integral / Fractional / String / Unknown), ``numerical_statistics`` (``common``
  counts, mean, sum, std_dev, min, max and a KLL quantile sketch under ``distribution.kll``, with
  10 materialised buckets) or ``string_statistics`` (``common``, ``distinct_count``, categorical
  buckets);
- ``constraints.json``: per feature ``completeness``, ``num_constraints.is_non_negative``,
  ``string_constraints.domains`` (small-cardinality strings) and ``monitoringConfigOverrides``,
  plus the ``monitoring_config`` thresholds;
- ``constraint_violations.json``: ``violations[]`` of ``feature_name``, ``constraint_check_type``
  and ``description``.

Baseline drift is the distance between the current and the baseline distribution: for numbers the
L-infinity distance between the two KLL sketches' CDFs (the Kolmogorov-Smirnov statistic), for
strings the L-infinity distance between the category frequencies. ``comparison_method`` "Simple"
flags a distance above the threshold; "Robust" also requires it to exceed the two-sample critical
value at a family-wise alpha of 0.01 over the compared features (Bonferroni), so that a small
window's sampling noise alone cannot raise an alarm. That critical value counts *independent*
records: captured records arrive in bursts that share a value (the offers of one search share its
days to departure and departure date), so a window's records are weighed as
:func:`effective_count` says, from how often consecutive records repeat a value beyond chance,
or as :func:`apply_units` says, from the groups the data contract names (``SHARED_VALUE_UNITS``).

The KLL sketch is Apache DataSketches' ``kll_floats_sketch``; its retained items are written per
level (level i items carry weight 2^i), which is what ``sketch.data`` holds, so a baseline written
by AWS's analyzer can be read back and compared the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Iterable

import numpy as np
import pandas as pd

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"

INTEGRAL, FRACTIONAL, STRING, UNKNOWN = "Integral", "Fractional", "String", "Unknown"
CHECK_TYPES = (
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
)
KLL_K = 512  # rank error about 0.5 %: far below any drift threshold, and statistics.json stays small
KLL_C = 2.0 / 3.0  # DataSketches' KLL compactor capacity decay (the paper's c)
N_BUCKETS = 10  # Model Monitor materialises distributions in 10 buckets
MAX_DOMAIN = 50  # string features with at most this many distinct values get a domain constraint
MAX_CATEGORICAL_BUCKETS = 1000
ROBUST_ALPHA = 0.01  # family-wise over a window's compared features (Bonferroni): at most ~1 % of quiet windows alarm

DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}

# Per-value kinds (vectorised classification of a column).
_MISSING, _INT, _FRAC, _STR = 0, 1, 2, 3


# ---------------------------------------------------------------------------------------------
# Classifying values
# ---------------------------------------------------------------------------------------------
def classify(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kind per value, numeric value per value (NaN if not numeric), string per value or None).

    A value's type is how it is written, as the analyzer reads CSV text or JSON: ``3`` (a JSON or
    Python int, an integer column, the text "3") is Integral; ``3980.0`` (a float, a float column,
    the text "3980.0") is Fractional even when whole, since that is how a float column reaches a
    CSV file or a JSON body; booleans are Integral (1/0 in CSV). A whole-number float is therefore
    Fractional in the baseline and in every capture shape alike. A Fractional baseline accepts
    Integral values (``_conforming``), so an integer column that pandas widened to float for its
    missing values still matches requests that send integers.
    """
    s = pd.Series(values)
    n = len(s)
    if pd.api.types.is_bool_dtype(s.dtype):
        kinds = np.where(s.isna().to_numpy(), _MISSING, _INT).astype(np.int8)
        return kinds, s.astype("float64").to_numpy(), np.full(n, None, dtype=object)
    if pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        finite = np.isfinite(num)
        kind = _INT if pd.api.types.is_integer_dtype(s.dtype) else _FRAC
        kinds = np.where(~finite, _MISSING, kind).astype(np.int8)
        return kinds, num, np.full(n, None, dtype=object)
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype) and s.map(type, na_action="ignore").isin([str]).all():
        # Text columns (a Parquet baseline): vectorised; numeric-looking text is numeric, as in CSV,
        # and an empty cell is a missing value, as a CSV reader has it.
        s = s.where(s.isna() | (s.astype(str).str.strip() != ""), None)
        missing = s.isna().to_numpy()
        text = s.astype(object).where(~s.isna(), None).to_numpy(dtype=object)
        num = pd.to_numeric(pd.Series(text), errors="coerce").astype("float64").to_numpy()
        finite = np.isfinite(num)
        integral = finite & (np.floor(np.where(finite, num, 0)) == num) & ~pd.Series(text).astype(str).str.contains(r"[.eE]").to_numpy()
        kinds = np.where(missing, _MISSING, np.where(~finite, _STR, np.where(integral, _INT, _FRAC))).astype(np.int8)
        num = np.where(finite, num, np.nan)
        return kinds, num, text
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    if inferred in ("integer", "floating", "boolean"):  # object column of JSON numbers (a capture): one kind each
        num = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        kind = _FRAC if inferred == "floating" else _INT
        return np.where(np.isfinite(num), kind, _MISSING).astype(np.int8), num, np.full(n, None, dtype=object)
    kinds = np.zeros(n, dtype=np.int8)
    num = np.full(n, np.nan)
    text = np.full(n, None, dtype=object)
    for i, v in enumerate(s.to_numpy(dtype=object)):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            continue
        if isinstance(v, (bool, np.bool_)):
            kinds[i], num[i] = _INT, float(v)
            continue
        if isinstance(v, (int, float, np.integer, np.floating)):
            f = float(v)
            if not math.isfinite(f):
                continue
            kinds[i], num[i] = (_INT if isinstance(v, (int, np.integer)) else _FRAC), f
            continue
        t = str(v)
        if not t.strip():
            continue  # an empty CSV cell: missing
        try:
            f = float(t)
        except ValueError:
            kinds[i], text[i] = _STR, t
            continue
        if not math.isfinite(f):
            kinds[i], text[i] = _STR, t
        else:
            kinds[i], num[i] = (_INT if f.is_integer() and "." not in t and "e" not in t.lower() else _FRAC), f
            text[i] = t
    return kinds, num, text


def inferred_type(kinds: np.ndarray) -> str:
    """The column's type as the analyzer infers it: String if any value is text, else Fractional
    if any value has a fraction, else Integral; Unknown when every value is missing."""
    present = kinds[kinds != _MISSING]
    if present.size == 0:
        return UNKNOWN
    if (present == _STR).any():
        return STRING
    if (present == _FRAC).any():
        return FRACTIONAL
    return INTEGRAL


def _conforming(kinds: np.ndarray, baseline_type: str) -> tuple[int, int]:
    """(values that fit ``baseline_type``, present values)."""
    present = kinds[kinds != _MISSING]
    if baseline_type == STRING or baseline_type == UNKNOWN:
        return int(present.size), int(present.size)
    if baseline_type == FRACTIONAL:
        return int(((present == _INT) | (present == _FRAC)).sum()), int(present.size)
    return int((present == _INT).sum()), int(present.size)


# ---------------------------------------------------------------------------------------------
# KLL sketches
# ---------------------------------------------------------------------------------------------
def kll_sketch(values: np.ndarray, k: int = KLL_K):
    from datasketches import kll_floats_sketch

    sketch = kll_floats_sketch(k)
    if values.size:
        sketch.update(np.ascontiguousarray(values, dtype=np.float32))
    return sketch


def sketch_levels(sketch) -> list[list[float]]:
    """Retained items grouped by level (weight 2^level), lowest level first: ``sketch.data``."""
    levels: dict[int, list[float]] = {}
    for item, weight in sketch:
        levels.setdefault(int(round(math.log2(weight))), []).append(float(item))
    if not levels:
        return []
    return [sorted(levels.get(i, [])) for i in range(max(levels) + 1)]


def weighted_items(kll: dict) -> tuple[np.ndarray, np.ndarray]:
    """(sorted items, weights) from a statistics.json ``distribution.kll`` block."""
    data = ((kll or {}).get("sketch") or {}).get("data") or []
    items, weights = [], []
    for level, values in enumerate(data):
        items.extend(values)
        weights.extend([2.0**level] * len(values))
    if not items:
        return np.empty(0), np.empty(0)
    x, w = np.asarray(items, dtype=float), np.asarray(weights, dtype=float)
    order = np.argsort(x, kind="stable")
    return x[order], w[order]


def cdf_at(items: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Right-continuous weighted empirical CDF of ``items`` at ``points``."""
    if items.size == 0:
        return np.zeros(len(points))
    cum = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return cum[np.searchsorted(items, points, side="right")]


def kll_distance(base_kll: dict, cur_kll: dict) -> float:
    """L-infinity distance between the CDFs of two KLL sketches (Kolmogorov-Smirnov statistic)."""
    bx, bw = weighted_items(base_kll)
    cx, cw = weighted_items(cur_kll)
    if bx.size == 0 or cx.size == 0:
        return 0.0 if bx.size == cx.size else 1.0
    points = np.union1d(bx, cx)
    return float(np.max(np.abs(cdf_at(bx, bw, points) - cdf_at(cx, cw, points))))


def _buckets(sketch, lo: float, hi: float, n: int) -> list[dict]:
    if n == 0:
        return []
    if hi <= lo:
        return [{"lower_bound": lo, "upper_bound": hi, "count": float(n)}]
    edges = np.linspace(lo, hi, N_BUCKETS + 1)
    cdf = np.asarray(sketch.get_cdf(edges[1:-1].astype(np.float32).tolist()), dtype=float)[:-1]
    cum = np.concatenate([[0.0], cdf, [1.0]]) * n
    counts = np.diff(cum)
    return [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(round(counts[i], 6))}
            for i in range(N_BUCKETS)]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# statistics.json
# ---------------------------------------------------------------------------------------------
@dataclass
class ColumnProfile:
    """What one column of a dataset holds, with the per-value kinds kept for the type check."""

    name: str
    kinds: np.ndarray
    statistics: dict[str, Any]
    type_counts: dict[str, int] = field(default_factory=dict)
    effective_count: float | None = None  # independent records among the present ones (None: all of them)


def effective_count(values: np.ndarray) -> float:
    """How many independent records ``values`` (in arrival order, missing ones dropped) are worth.

    Records come in runs that share a value (a search's offers share its query; a request's
    instances their context). With ``r`` the share of consecutive pairs that are equal and ``q``
    the chance two independent records are equal (sum of squared value shares), runs of mean
    length ``L`` give ``r = 1 - (1 - q) / L``, so ``n (1 - r) / (1 - q)`` counts the runs: the
    independent draws. Independent records give ``r ~ q`` and keep ``n``. Clipped to [1, n].
    """
    n = len(values)
    if n < 3:
        return float(n)
    codes = pd.factorize(pd.Series(values, dtype=object) if values.dtype == object else pd.Series(values))[0]
    shares = np.bincount(codes) / n
    q = float((shares**2).sum())
    if q >= 1.0 - 1e-9:
        return float(n)  # one value only: no evidence about dependence
    r = float((codes[1:] == codes[:-1]).mean())
    return float(min(max(n * (1.0 - r) / (1.0 - q), 1.0), n))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def profile_column(name: str, values: pd.Series, k: int = KLL_K) -> ColumnProfile:
    kinds, num, text = classify(values)
    n = len(kinds)
    ftype = inferred_type(kinds)
    present = int((kinds != _MISSING).sum())
    common = {"num_present": present, "num_missing": int(n - present)}
    type_counts = {
        INTEGRAL: int((kinds == _INT).sum()),
        FRACTIONAL: int((kinds == _FRAC).sum()),
        STRING: int((kinds == _STR).sum()),
        UNKNOWN: int(n - present),
    }
    feature: dict[str, Any] = {"name": name, "inferred_type": ftype}
    n_eff = None
    if ftype in (INTEGRAL, FRACTIONAL):
        x = num[np.isfinite(num)]
        n_eff = effective_count(x)
        sketch = kll_sketch(x, k)
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        feature["numerical_statistics"] = {
            "common": common,
            "mean": _finite_or_none(float(x.mean())) if x.size else 0.0,
            "sum": float(x.sum()),
            "std_dev": float(x.std()) if x.size else 0.0,  # population std, as Deequ's StandardDeviation
            "min": lo,
            "max": hi,
            "distribution": {
                "kll": {
                    "buckets": _buckets(sketch, lo, hi, x.size),
                    "sketch": {"parameters": {"c": KLL_C, "k": float(k)}, "data": sketch_levels(sketch)},
                }
            },
        }
    else:
        # Every present value as text (numbers that came as JSON numbers formatted back).
        strings = pd.Series([None if kd == _MISSING else (t if t is not None else _fmt(v))
                             for kd, t, v in zip(kinds, text, num)], dtype=object)  # fmt: skip
        counts = strings.dropna().value_counts()
        n_eff = effective_count(strings.dropna().to_numpy(dtype=object))
        feature["string_statistics"] = {
            "common": common,
            "distinct_count": float(len(counts)),
            "distribution": {
                "categorical": {
                    "buckets": [{"value": str(v), "count": float(c)} for v, c in counts.head(MAX_CATEGORICAL_BUCKETS).items()]
                }
            },
        }
    return ColumnProfile(name=name, kinds=kinds, statistics=feature, type_counts=type_counts, effective_count=n_eff)


def _fmt(v: float) -> str | None:
    if v is None or not math.isfinite(v):
        return None
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def profile(df: pd.DataFrame, columns: Iterable[str] | None = None, k: int = KLL_K) -> list[ColumnProfile]:
    cols = list(df.columns) if columns is None else list(columns)
    return [profile_column(c, df[c], k) for c in cols]


def unit_count(df: pd.DataFrame, feature: str, keys: Iterable[str]) -> float | None:
    """Distinct groups among the records with ``feature`` present: (``keys``..., value) combinations.

    For a feature whose value is shared by a group of records (``keys`` name the group within a
    day; the value tells days apart), the groups are the independent draws. None when a key is
    not among the columns.
    """
    cols = [feature, *keys]
    if any(c not in df.columns for c in cols):
        return None
    present = df.loc[df[feature].notna(), cols]
    return float(len(present.astype(str).drop_duplicates()))


def apply_units(profiles: list[ColumnProfile], df: pd.DataFrame, units: dict[str, Iterable[str]]) -> None:
    """Lower each profile's ``effective_count`` to its feature's group count (in place)."""
    for p in profiles:
        if p.name in units and p.effective_count is not None:
            groups = unit_count(df, p.name, units[p.name])
            if groups is not None:
                p.effective_count = max(min(p.effective_count, groups), 1.0)


def statistics(df: pd.DataFrame, columns: Iterable[str] | None = None, k: int = KLL_K,
               profiles: list[ColumnProfile] | None = None) -> dict[str, Any]:
    """``statistics.json`` of ``df`` (every column, or ``columns`` in that order)."""
    profiles = profiles if profiles is not None else profile(df, columns, k)
    return {"version": 0.0, "dataset": {"item_count": int(len(df))}, "features": [p.statistics for p in profiles]}


# ---------------------------------------------------------------------------------------------
# constraints.json
# ---------------------------------------------------------------------------------------------
def suggest_constraints(stats: dict[str, Any], monitoring_config: dict[str, Any] | None = None,
                        overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Constraints suggested from baseline ``stats``, as the analyzer's baselining job does.

    ``overrides`` maps a feature to its ``monitoringConfigOverrides`` (e.g. no distribution
    comparison for a feature that is a function of the clock).
    """
    config = _merge(DEFAULT_MONITORING_CONFIG, monitoring_config or {})
    features = []
    for f in stats["features"]:
        block = f.get("numerical_statistics") or f.get("string_statistics") or {}
        common = block.get("common") or {}
        total = (common.get("num_present") or 0) + (common.get("num_missing") or 0)
        entry: dict[str, Any] = {
            "name": f["name"],
            "inferred_type": f["inferred_type"],
            "completeness": float(common.get("num_present", 0) / total) if total else 0.0,
        }
        if "numerical_statistics" in f:
            entry["num_constraints"] = {"is_non_negative": bool((f["numerical_statistics"].get("min") or 0.0) >= 0)}
        elif "string_statistics" in f:
            buckets = f["string_statistics"]["distribution"]["categorical"]["buckets"]
            if 0 < f["string_statistics"]["distinct_count"] <= MAX_DOMAIN:
                entry["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
        entry["monitoringConfigOverrides"] = dict((overrides or {}).get(f["name"], {}))
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": config}


def _merge(base: dict, extra: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---------------------------------------------------------------------------------------------
# Checking a dataset against a baseline
# ---------------------------------------------------------------------------------------------
@dataclass
class FeatureCheck:
    """The measurements behind the violations of one feature (also what the metrics report)."""

    name: str
    baseline_type: str | None
    current_type: str | None
    completeness: float | None = None
    baseline_completeness: float | None = None
    drift: float | None = None
    drift_threshold: float | None = None
    drift_critical: float | None = None
    drift_method: str | None = None
    effective_records: float | None = None  # what the critical distance counted (see effective_count)
    unseen_fraction: float | None = None
    unseen_values: list[str] = field(default_factory=list)
    type_conforming: float | None = None
    violations: list[dict[str, str]] = field(default_factory=list)


def critical_distance(n: int, m: int, alpha: float = ROBUST_ALPHA) -> float:
    """Two-sample Kolmogorov-Smirnov critical value: larger distances are unlikely by chance."""
    if n <= 0 or m <= 0:
        return 1.0
    return math.sqrt(-0.5 * math.log(alpha / 2.0)) * math.sqrt((n + m) / (n * m))


def _count(f: dict) -> int:
    block = f.get("numerical_statistics") or f.get("string_statistics") or {}
    return int((block.get("common") or {}).get("num_present") or 0)


def _unseen_is_significant(unseen_fraction: float, prof: ColumnProfile, n_base: int, alpha: float) -> bool:
    """Whether a window's values outside the baseline's domain are more than rare categories give.

    A category absent from a baseline of ``N`` independent draws may still have a probability up
    to about 3/N (the rule of three: the 95 % bound for an event never seen in N trials). A rare
    airport or country that a 2-week baseline missed can then show up once in a quiet window.
    Under that bound, a window of ``m`` draws holds Poisson(3m/N) draws of unseen values. The
    check fires when the observed count is unlikely under it (``alpha``, the family-wise level).
    Draws are counted as the drift test counts them (``effective_count``). A new carrier on a
    share of the traffic is far beyond this; one search from a new country is not."""
    from scipy import stats

    m = int((prof.kinds != _MISSING).sum())
    if m == 0 or n_base <= 0:
        return unseen_fraction > 0
    ratio = (prof.effective_count / m) if prof.effective_count is not None else 1.0
    m_eff, n_eff = max(m * ratio, 1.0), max(n_base * ratio, 1.0)
    draws = unseen_fraction * m_eff
    if draws < 1.0 - 1e-9:
        return False
    return bool(stats.poisson.sf(math.ceil(draws - 1e-9) - 1, 3.0 * m_eff / n_eff) < alpha)


def _categorical_freqs(f: dict) -> dict[str, float]:
    buckets = (((f.get("string_statistics") or {}).get("distribution") or {}).get("categorical") or {}).get("buckets") or []
    total = sum(b["count"] for b in buckets)
    return {b["value"]: b["count"] / total for b in buckets} if total else {}


def _effective(config: dict, overrides: dict) -> dict:
    """monitoring_config with a feature's ``monitoringConfigOverrides`` applied (flat or nested keys)."""
    eff = _merge(config, {k: v for k, v in overrides.items() if k != "distribution_constraints"})
    dist = dict(eff.get("distribution_constraints") or {})
    dist.update(overrides.get("distribution_constraints") or {})
    for key in ("perform_comparison", "comparison_threshold", "comparison_method", "categorical_comparison_threshold"):
        if key in overrides:
            dist[key] = overrides[key]
    eff["distribution_constraints"] = dist
    return eff


def check(current: list[ColumnProfile], current_stats: dict, baseline_stats: dict, constraints: dict) -> tuple[dict, list[FeatureCheck]]:
    """Evaluate ``constraints`` (and drift against ``baseline_stats``) on the current dataset.

    Returns (``constraint_violations.json``, one :class:`FeatureCheck` per baseline feature).
    """
    config = constraints.get("monitoring_config") or DEFAULT_MONITORING_CONFIG
    base_feats = {f["name"]: f for f in baseline_stats.get("features") or []}
    cons_feats = {f["name"]: f for f in constraints.get("features") or []}
    cur_profiles = {p.name: p for p in current}
    cur_feats = {f["name"]: f for f in current_stats["features"]}
    violations: list[dict[str, str]] = []
    checks: list[FeatureCheck] = []
    if str(config.get("evaluate_constraints", "Enabled")) != "Enabled":
        return {"violations": []}, checks

    def add(fc: FeatureCheck | None, name: str, kind: str, text: str) -> None:
        v = {"feature_name": name, "constraint_check_type": kind, "description": text}
        violations.append(v)
        if fc is not None:
            fc.violations.append(v)

    names = list(dict.fromkeys([*cons_feats, *(n for n in base_feats if n not in cons_feats)]))
    compared = sum(
        1 for n in names
        if str(_effective(config, (cons_feats.get(n) or {}).get("monitoringConfigOverrides") or {})["distribution_constraints"]
               .get("perform_comparison", "Enabled")) == "Enabled"
    )  # fmt: skip
    alpha = ROBUST_ALPHA / max(compared, 1)
    for name in names:
        cons = cons_feats.get(name) or {}
        base = base_feats.get(name) or {}
        btype = cons.get("inferred_type") or base.get("inferred_type")
        fc = FeatureCheck(name=name, baseline_type=btype, current_type=None)
        checks.append(fc)
        if name not in cur_profiles:
            add(fc, name, "missing_column_check", f"There are missing columns in current dataset. Baseline column '{name}' "
                                                 "is not in the current dataset.")  # fmt: skip
            continue
        prof, cur = cur_profiles[name], cur_feats[name]
        fc.current_type = cur["inferred_type"]
        eff = _effective(config, cons.get("monitoringConfigOverrides") or {})
        n_total = len(prof.kinds)

        # data type
        if btype and fc.current_type != UNKNOWN:
            ok, present = _conforming(prof.kinds, btype)
            if present:
                fc.type_conforming = ok / present
                threshold = float(eff.get("datatype_check_threshold", 1.0))
                if fc.type_conforming < threshold:
                    add(fc, name, "data_type_check",
                        f"Data type match requirement is not met. Expected data type: {btype}, Expected match: "
                        f"{threshold * 100:g}%. Observed: Only {fc.type_conforming * 100:.4g}% of data is {btype}.")

        # completeness: one-sided, with a binomial allowance under "Robust"
        if "completeness" in cons and n_total:
            expected = float(cons["completeness"])
            fc.baseline_completeness = expected
            fc.completeness = _count(cur) / n_total
            allowance = 0.0
            base_common = ((base.get("numerical_statistics") or base.get("string_statistics") or {}).get("common") or {})
            base_total = (base_common.get("num_present") or 0) + (base_common.get("num_missing") or 0)
            # a constraint below the baseline's own completeness already carries the windows' margin
            # (calibrate_constraints): checked as written, as AWS's analyzer checks it
            widened = bool(base_total) and expected < (base_common.get("num_present") or 0) / base_total - 1e-9
            if eff["distribution_constraints"].get("comparison_method", "Robust") == "Robust" and not widened:
                # missing values come in runs where a group of requests lacks the field together (a
                # flight-day's economy fields when no economy search covered its route-date): the
                # allowance counts the runs, as the drift test counts draws
                n_missing_draws = effective_count((prof.kinds == _MISSING).astype(np.int8)) if n_total >= 3 else n_total
                allowance = 3.0 * math.sqrt(max(expected * (1 - expected), 1e-12) / max(n_missing_draws, 1.0))
            if fc.completeness < expected - allowance - 1e-12:
                add(fc, name, "completeness_check",
                    f"Data completeness requirement is not met. Expected: {expected:.4g}, observed: {fc.completeness:.4g} "
                    f"({n_total} records).")

        # categorical domain
        domain = (cons.get("string_constraints") or {}).get("domains")
        if domain is not None and "string_statistics" in cur:
            freqs = _categorical_freqs(cur)
            unseen = {v: p for v, p in freqs.items() if v not in set(domain)}
            fc.unseen_fraction = float(sum(unseen.values()))
            fc.unseen_values = sorted(unseen, key=lambda v: -unseen[v])[:10]
            threshold = float(eff.get("domain_content_threshold", 1.0))
            unseen = 1.0 - fc.unseen_fraction < threshold - 1e-12
            if unseen and eff["distribution_constraints"].get("comparison_method", "Robust") == "Robust" and base:
                unseen = _unseen_is_significant(fc.unseen_fraction, prof, _count(base), alpha)
            if unseen:
                add(fc, name, "categorical_values_check",
                    f"Data content requirement is not met. Expected: {threshold * 100:g}% of values in the baseline domain, "
                    f"observed {(1 - fc.unseen_fraction) * 100:.4g}%; unseen values: {', '.join(fc.unseen_values)}.")

        # distribution drift
        dist = eff["distribution_constraints"]
        if base and str(dist.get("perform_comparison", "Enabled")) == "Enabled":
            n, m = _count(base), _count(cur)
            if "numerical_statistics" in base and "numerical_statistics" in cur:
                fc.drift = kll_distance(base["numerical_statistics"]["distribution"]["kll"],
                                        cur["numerical_statistics"]["distribution"]["kll"])
                fc.drift_threshold = float(dist.get("comparison_threshold", 0.1))
            elif "string_statistics" in base and "string_statistics" in cur:
                bf, cf = _categorical_freqs(base), _categorical_freqs(cur)
                keys = set(bf) | set(cf)
                fc.drift = max((abs(bf.get(k_, 0.0) - cf.get(k_, 0.0)) for k_ in keys), default=0.0)
                fc.drift_threshold = float(dist.get("categorical_comparison_threshold", dist.get("comparison_threshold", 0.1)))
            if fc.drift is not None and m > 0:
                fc.drift_method = str(dist.get("comparison_method", "Robust"))
                # the baseline came from the same kind of traffic: its records run in the same bursts
                ratio = (prof.effective_count / m) if prof.effective_count is not None else 1.0
                fc.effective_records = m * ratio
                fc.drift_critical = (critical_distance(max(int(round(n * ratio)), 1), max(int(round(m * ratio)), 1), alpha)
                                     if fc.drift_method == "Robust" else 0.0)  # fmt: skip
                if fc.drift > fc.drift_threshold and fc.drift > fc.drift_critical:
                    add(fc, name, "baseline_drift_check",
                        f"Baseline drift distance: {fc.drift:.4g} exceeds threshold: {fc.drift_threshold:g}"
                        + (f" (and the critical distance {fc.drift_critical:.3g} for {m} values worth {fc.effective_records:.0f} "
                           f"independent ones vs {n})" if fc.drift_method == "Robust" else "")
                        + ".")  # fmt: skip

    extra = [n for n in cur_profiles if n not in cons_feats and n not in base_feats]
    for name in extra:
        add(None, name, "extra_column_check", f"There are extra columns in current dataset. Current column '{name}' is not in the baseline.")
    return {"violations": violations}, checks


# ---------------------------------------------------------------------------------------------
# Thresholds from the baseline's own monitoring windows
# ---------------------------------------------------------------------------------------------
CALIBRATION_MIN_WINDOWS = 7  # fewer windows say too little about day-to-day variation: keep the suggested constraints
_NULL_DRAWS = 40_000  # simulated windows per feature for the shape of the drift statistic's tail
_NULL_POINTS = 60  # numeric features with more distinct values (and no atom over _GRID) count as continuous; categories beyond, pooled
_GRID = 0.01  # the bridge is simulated at support points this far apart in probability


@dataclass
class WindowCalibration:
    """What one feature's baseline windows showed, and the thresholds written from it."""

    name: str
    windows: int
    distances: list[float] = field(default_factory=list)  # each window against the rest of the baseline
    tail_ratio: float | None = None  # the drift statistic's (1 - alpha) quantile over its median, by simulation
    threshold: float | None = None
    completeness: list[float] = field(default_factory=list)
    completeness_floor: float | None = None


def _window_distances_numeric(values: np.ndarray, window_ids: np.ndarray, n_windows: int) -> list[float]:
    """L-infinity distance between each window's empirical CDF and the rest of the baseline's (exact)."""
    ok = np.isfinite(values)
    x, w = values[ok], window_ids[ok]
    if x.size == 0:
        return []
    support, codes = np.unique(x, return_inverse=True)
    total = np.bincount(codes, minlength=support.size).astype(float)
    out = []
    for i in range(n_windows):
        mine = np.bincount(codes[w == i], minlength=support.size).astype(float)
        n_w, n_r = mine.sum(), total.sum() - mine.sum()
        if n_w == 0 or n_r == 0:
            continue
        out.append(float(np.max(np.abs(np.cumsum(mine) / n_w - np.cumsum(total - mine) / n_r))))
    return out


def _window_distances_categorical(values: np.ndarray, window_ids: np.ndarray, n_windows: int) -> list[float]:
    """L-infinity distance between each window's category frequencies and the rest of the baseline's."""
    present = pd.notna(values)
    codes, _ = pd.factorize(pd.Series(values[present], dtype=object).astype(str))
    w = window_ids[present]
    if codes.size == 0:
        return []
    k = int(codes.max()) + 1
    total = np.bincount(codes, minlength=k).astype(float)
    out = []
    for i in range(n_windows):
        mine = np.bincount(codes[w == i], minlength=k).astype(float)
        n_w, n_r = mine.sum(), total.sum() - mine.sum()
        if n_w == 0 or n_r == 0:
            continue
        out.append(float(np.max(np.abs(mine / n_w - (total - mine) / n_r))))
    return out


def null_tail_ratio(shares: np.ndarray, numeric: bool, alpha: float, seed: int = 0) -> float:
    """(1 - alpha) quantile over the median of the drift statistic for independent draws.

    The statistic's shape depends on the feature: for a continuous feature it is the Kolmogorov
    distribution (quantile/median about 2.6 at alpha 3e-4); for a binary one it is a half-normal
    (about 5.3). Independent draws of ``n`` from shares ``p`` give, for large ``n``, ``sqrt(n)``
    times the statistic distributed as the sup of a Brownian bridge at the CDF's support points
    (numeric) or the max of the multinomial's normal deviations (categorical). ``n`` cancels in the
    ratio. Simulated with a fixed seed, so a baseline is reproducible."""
    from scipy import stats as sps

    p = np.asarray(shares, dtype=float)
    p = p[p > 0] / p[p > 0].sum()
    if p.size < 2:
        return float("nan")
    if p.size == 2:  # one free share: |normal|, numeric or not
        return float(sps.norm.isf(alpha / 2) / sps.norm.isf(0.25))
    if numeric and p.size > _NULL_POINTS and p.max() <= _GRID:  # continuous, no atoms: the Kolmogorov distribution
        return float(sps.kstwobign.isf(alpha) / sps.kstwobign.median())
    rng = np.random.default_rng(seed)
    if numeric:
        cum = np.cumsum(p)[:-1]
        keep, last = [], -1.0
        for i, u in enumerate(cum):  # support points closer than _GRID in probability merge; atoms stay apart
            if u - last >= _GRID or i == len(cum) - 1:
                keep.append(i)
                last = u
        cum = cum[keep]
        steps = np.diff(np.concatenate([[0.0], cum, [1.0]]))
        walk = np.cumsum(rng.standard_normal((_NULL_DRAWS, steps.size), dtype=np.float32) * np.sqrt(steps).astype(np.float32), axis=1)
        bridge = walk[:, :-1] - cum.astype(np.float32) * walk[:, -1:]
        stat = np.abs(bridge).max(axis=1)
    else:
        kept = p.size
        if p.size > _NULL_POINTS:  # the rare categories (small deviations) seldom hold the max: pooled, not compared
            p = np.sort(p)[::-1]
            p, kept = np.concatenate([p[: _NULL_POINTS - 1], [p[_NULL_POINTS - 1:].sum()]]), _NULL_POINTS - 1
        g = rng.standard_normal((_NULL_DRAWS, p.size), dtype=np.float32)
        g *= np.sqrt(p).astype(np.float32)
        g -= np.outer(g.sum(axis=1), p.astype(np.float32))  # sqrt(p) g - p (sqrt(p) . g): the multinomial's deviations
        stat = np.abs(g[:, :kept]).max(axis=1)
    med = float(np.median(stat))
    return float(np.quantile(stat, 1.0 - alpha) / med) if med > 0 else float("nan")


def calibrate_constraints(df: pd.DataFrame, windows: Iterable, constraints: dict[str, Any],
                          profiles: list[ColumnProfile] | None = None,
                          alpha: float = ROBUST_ALPHA) -> tuple[dict[str, Any], list[WindowCalibration]]:
    """``constraints`` with each feature's thresholds set from the baseline's own monitoring windows.

    A monitoring window (a day of traffic) is not a random sample of the baseline's records: its
    records come in groups that share values (a search's offers), and whole days differ (a day's
    volume, its weekday, its routes). Both widen how far a quiet window lies from the baseline, by
    how much depends on the feature. The baseline itself shows it: ``windows`` names each record's
    window (its search date), and each window is compared with the rest of the baseline as a
    monitoring run would compare it.

    - **Drift threshold** (``monitoringConfigOverrides.comparison_threshold`` /
      ``categorical_comparison_threshold``): the larger of the configured one, the largest distance
      any baseline window showed (traffic from the training period gives no violation), and the
      median window distance times the statistic's tail ratio (:func:`null_tail_ratio`) at the
      family-wise ``alpha`` over the compared features: the critical distance for the number of
      independent draws a window really holds, measured rather than assumed.
    - **Completeness**: the lowest of the baseline's completeness, its lowest window's, and the
      windows' mean less ``z`` standard deviations (one-sided, same alpha): a day's completeness
      varies with which route-dates were searched. A widened constraint is then checked as
      written, with no binomial allowance on top.

    The result stays in Model Monitor's constraints format: AWS's analyzer applies the same
    per-feature thresholds. Features whose comparison is disabled keep their settings, and with
    fewer than ``CALIBRATION_MIN_WINDOWS`` windows nothing changes.
    """
    window_ids, labels = pd.factorize(pd.Series(list(windows)))
    if len(window_ids) != len(df):
        raise ValueError(f"{len(window_ids)} window labels for {len(df)} baseline records")
    n_windows = len(labels)
    out = json.loads(json.dumps(constraints))
    if n_windows < CALIBRATION_MIN_WINDOWS:
        return out, []
    config = out.get("monitoring_config") or DEFAULT_MONITORING_CONFIG
    compared = [f for f in out.get("features") or []
                if str(_effective(config, f.get("monitoringConfigOverrides") or {})["distribution_constraints"]
                       .get("perform_comparison", "Enabled")) == "Enabled"]  # fmt: skip
    a = alpha / max(len(compared), 1)
    z = float(NormalDist().inv_cdf(1.0 - a))  # one-sided: only a drop in completeness is a violation
    profiles = {p.name: p for p in (profiles if profiles is not None else profile(df, [f["name"] for f in out.get("features") or []]))}
    report = []
    for f in out.get("features") or []:
        prof = profiles.get(f["name"])
        if prof is None:
            continue
        cal = WindowCalibration(name=f["name"], windows=n_windows)
        report.append(cal)
        present = prof.kinds != _MISSING
        per_window = np.bincount(window_ids, minlength=n_windows).astype(float)
        comp = np.bincount(window_ids, weights=present.astype(float), minlength=n_windows) / np.maximum(per_window, 1)
        cal.completeness = [float(c) for c in comp[per_window > 0]]
        if "completeness" in f and cal.completeness:
            spread = float(np.std(cal.completeness, ddof=1)) if len(cal.completeness) > 1 else 0.0
            cal.completeness_floor = float(max(0.0, min(float(f["completeness"]), min(cal.completeness),
                                                        float(np.mean(cal.completeness)) - z * spread)))
            f["completeness"] = cal.completeness_floor
        if f not in compared:
            continue
        eff = _effective(config, f.get("monitoringConfigOverrides") or {})["distribution_constraints"]
        numeric = f.get("inferred_type") in (INTEGRAL, FRACTIONAL)
        _, num, text = classify(df[f["name"]])
        if numeric:
            cal.distances = _window_distances_numeric(num, window_ids, n_windows)
            _, counts = np.unique(num[np.isfinite(num)], return_counts=True)
            key = "comparison_threshold"
        else:
            values = np.where(present, text, None)
            cal.distances = _window_distances_categorical(values, window_ids, n_windows)
            counts = pd.Series(values[present], dtype=object).astype(str).value_counts().to_numpy()
            key = "categorical_comparison_threshold"
        if len(cal.distances) < CALIBRATION_MIN_WINDOWS or counts.size < 2:
            continue
        configured = float(eff.get(key, eff.get("comparison_threshold", 0.1)))
        cal.tail_ratio = null_tail_ratio(counts / counts.sum(), numeric, a)
        bound = float(np.median(cal.distances)) * cal.tail_ratio if math.isfinite(cal.tail_ratio) else 0.0
        cal.threshold = math.ceil(max(configured, max(cal.distances), bound) * 1e4) / 1e4  # no baseline window over it
        if cal.threshold > configured:
            overrides = f.setdefault("monitoringConfigOverrides", {})
            overrides["comparison_threshold"] = cal.threshold
            if not numeric:
                overrides["categorical_comparison_threshold"] = cal.threshold
    return out, report
