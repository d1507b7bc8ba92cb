"""Training/serving equivalence: the fast path (arrays, compiled or native trees) against the
training/evaluation DataFrame path of ``model_io.LoadedModel``, on every row of a test split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from inference_support import records, split_frame

from inference import compiled
from inference.fast import AnomalyEncoder, FastModel, MatrixEncoder, dtd_bucket_of
from inference.predict import Predictor
from core.features import anomaly_frame, dtd_bucket, model_matrix
from core import model_io

BACKENDS = ["compiled", "native"]


@pytest.fixture(scope="module")
def loaded(model_dirs):
    return {k: model_io.load(p) for k, p in model_dirs.items()}


def _rows(predictor, frame):
    return predictor.validate(records(frame, predictor.field_names))


def _predict(predictor, rows):
    """Every row through the one-record path (few rows: direct calls into the compiled library), and
    the whole split as one batch (tl2cgen's batch predictor): both must give the same answers."""
    small = [o for i in range(0, len(rows), 7) for o in predictor.predict(rows[i:i + 7])]
    batch = predictor.predict(rows)
    assert len(small) == len(batch) == len(rows)
    for a, b in zip(small, batch):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], dict):
                assert a[k] == pytest.approx(b[k], abs=1e-9)
            elif isinstance(a[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12)
            else:
                assert a[k] == b[k]
    return small


@pytest.mark.parametrize("backend", BACKENDS)
def test_price_equals_training_path_on_every_test_row(loaded, inference_splits, backend):
    m = loaded["price"]
    p = Predictor(m, backend)
    assert p.backend == backend
    test = split_frame(inference_splits, "price")
    got = np.array([o["price_usd"] for o in _predict(p, _rows(p, test))])
    want = m.predict_price(test)
    assert len(got) == len(test) > 100
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_demand_equals_training_path_on_every_test_row(loaded, inference_splits, backend):
    m = loaded["demand"]
    p = Predictor(m, backend)
    test = split_frame(inference_splits, "demand")
    out = _predict(p, _rows(p, test))
    assert [o["demand_class"] for o in out] == list(m.predict_demand(test))
    got = np.array([[o["probabilities"][c] for c in m.meta["classes"]] for o in out])
    np.testing.assert_allclose(got, m.predict_demand_proba(test), atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_anomaly_equals_training_path_on_every_test_row(loaded, inference_splits, backend):
    m = loaded["anomaly"]
    p = Predictor(m, backend)
    test = split_frame(inference_splits, "anomaly")
    out = _predict(p, _rows(p, test))
    assert [o["is_anomaly"] for o in out] == list(m.is_anomaly(test))
    assert any(o["is_anomaly"] for o in out), "the test split has flagged offers to compare"
    got, want = np.array([o["anomaly_score"] for o in out]), np.asarray(m.anomaly_score(test))
    if backend == "compiled":
        # The compiled library splits on float32 thresholds: a value within float32 rounding of one
        # isolation tree's cut takes the other branch, moving the mean path length of that row by a
        # fraction of one tree. The flag (what the issue pins) must not change; the scores may differ
        # on a handful of rows, and only by that much.
        off = ~np.isclose(got, want, rtol=0, atol=1e-6)
        assert off.mean() <= 0.01, f"{off.sum()} of {len(off)} scores differ"
        np.testing.assert_allclose(got, want, atol=0.01)
    else:
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("kind", ["price", "demand", "anomaly"])
def test_one_record_at_a_time_equals_the_batch(loaded, inference_splits, kind):
    """The one-record path (lists, no arrays) gives the batch path's answers to the bit, for a few
    rows (direct calls) and for more than ``DIRECT_MAX_ROWS`` (tl2cgen's batch predictor)."""
    p = Predictor(loaded[kind], "compiled")
    rows = _rows(p, split_frame(inference_splits, kind).head(60))
    one = [p.predict([r])[0] for r in rows]
    assert one == p.predict(rows[:20]) + p.predict(rows[20:])
    assert all(type(v) is float for o in one for v in o.values() if not isinstance(v, (str, bool, dict)))


def test_matrix_encoder_equals_model_matrix_with_unseen_and_null_values():
    levels = {"cabin": ["business", "economy"], "route": ["AAA-BBB"]}
    rows = [{"days": 3, "flag": True, "cabin": "economy", "route": "ZZZ-YYY"},
            {"days": None, "flag": False, "cabin": None, "route": "AAA-BBB"}]
    enc = MatrixEncoder(["days", "flag"], ["cabin", "route"], levels)
    got = enc.matrix(rows, np.float64)
    import pandas as pd

    frame = model_matrix(pd.DataFrame(rows), ["days", "flag"], ["cabin", "route"], levels)
    want = np.column_stack([frame["days"], frame["flag"], frame["cabin"].cat.codes.replace(-1, np.nan),
                            frame["route"].cat.codes.replace(-1, np.nan)]).astype(float)
    np.testing.assert_array_equal(got, want)  # unseen route and null cabin: NaN, the default branch


@pytest.mark.parametrize("days", [None, -1, 0, 2, 3, 6.5, 7, 59, 60, 239, 240, 5000])
def test_dtd_bucket_of_one_value_equals_the_vectorised_one(days):
    import pandas as pd

    assert dtd_bucket_of(days) == int(dtd_bucket(pd.Series([days], dtype="float64"))[0])


def test_anomaly_encoder_equals_anomaly_frame_on_edge_rows():
    import pandas as pd

    norms = {"route": {"economy|one_way|2": 0.1}, "competitor": {"XX|True": -0.2}}
    base = {"price_usd": 120.0, "price_vs_route_median": 1.3, "price_vs_competitor_median": 0.9,
            "competitor_min_price_usd": 100.0, "price_rank_in_search": 2, "num_offers_in_search": 5,
            "cabin": "economy", "trip_type": "one_way", "days_to_departure": 9, "airline": "XX", "is_nonstop": True}
    rows = [base, {**base, "competitor_min_price_usd": None, "price_vs_competitor_median": None},
            {**base, "num_offers_in_search": 1, "price_rank_in_search": 1}, {**base, "days_to_departure": None}]
    features = list(anomaly_frame(pd.DataFrame([base]), norms).columns)
    enc = AnomalyEncoder(features, norms)
    expected = np.array([4.5, 4.6, 4.7, 4.8])
    got = enc.matrix(rows, expected)
    want = anomaly_frame(pd.DataFrame(rows), norms, expected)[features].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert not math.isnan(got.sum())


def test_compiled_libraries_are_content_keyed_and_reused(loaded, tmp_path):
    booster = loaded["price"]._models["xgb"]
    lib1, _ = compiled.build(booster, tmp_path)
    stamp = lib1.stat().st_mtime_ns
    lib2, _ = compiled.build(booster, tmp_path)
    assert lib1 == lib2 and lib2.stat().st_mtime_ns == stamp  # not rebuilt
    other, _ = compiled.build(booster[0:5], tmp_path)
    assert other != lib1  # a different model never reuses a library
    assert not list(tmp_path.glob(".build-*"))


def test_the_optimisation_level_follows_model_size_and_keys_the_library(loaded, tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFARE_COMPILE_OPT", raising=False)
    assert compiled.opt_level(compiled.O3_MAX_MODEL_BYTES) == "O3"
    assert compiled.opt_level(compiled.O3_MAX_MODEL_BYTES + 1) == "O1"
    booster = loaded["price"]._models["xgb"]
    default, tl = compiled.build(booster, tmp_path)
    monkeypatch.setenv("AIRFARE_COMPILE_OPT", "-O1")
    assert compiled.opt_level(10) == "O1"
    o1, _ = compiled.build(booster, tmp_path)
    assert o1 != default  # another level is another library, never a stale one
    x = np.random.default_rng(0).uniform(0, 50, size=(7, booster.num_features())).astype(np.float32)
    a, b = compiled.CompiledTrees(default, str(tl.input_type)), compiled.CompiledTrees(o1, str(tl.input_type))
    np.testing.assert_array_equal(a.predict(x), b.predict(x))  # no fast-math: the same floats at any level
    np.testing.assert_array_equal(a.predict(x[:1]), b.predict(x[:1]))
    monkeypatch.setenv("AIRFARE_COMPILE_OPT", "O9")
    with pytest.raises(ValueError, match="AIRFARE_COMPILE_OPT"):
        compiled.opt_level(10)


def test_without_a_compiler_the_native_backend_serves(loaded, monkeypatch):
    monkeypatch.setattr(compiled, "compiler", lambda: None)
    with pytest.raises(compiled.CompileUnavailable):
        FastModel(loaded["price"], "compiled")
    p = Predictor(loaded["price"], "compiled")
    assert p.backend == "native"


def test_a_double_whose_low_bytes_read_as_missing_is_not_missing(tmp_path):
    """tl2cgen's ``union Entry`` takes ``int missing == -1`` for missing; for a double that int is its
    low four bytes. 168.87499999999997 (168.875 less one ulp) has them all ones: it went down the
    missing branch and LightGBM's own prediction differed (the default world's demand model: up to
    0.106 in probability on 10 of 4,000 test rows)."""
    import lightgbm as lgb

    from inference import compiled

    clash = 168.87499999999997
    assert np.array([clash]).view(np.int64)[0] & 0xFFFFFFFF == 0xFFFFFFFF
    moved = compiled.unclash(np.array([clash, 168.875, np.nan, -clash]))
    assert moved[0] == np.nextafter(clash, 0.0) and moved[1] == 168.875 and np.isnan(moved[2]) and moved[3] == -moved[0]
    assert not ((moved[[0, 1, 3]].view(np.int64) & 0xFFFFFFFF) == 0xFFFFFFFF).any()

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 300, (400, 1))
    booster = lgb.train({"objective": "binary", "num_leaves": 2, "min_data_in_leaf": 5, "verbose": -1},
                        lgb.Dataset(x, (x[:, 0] > 150).astype(int)), num_boost_round=1)
    lib, tl = compiled.build(booster, tmp_path)
    trees = compiled.CompiledTrees(lib, str(tl.input_type))
    rows = np.array([[clash], [100.0], [np.nan]] * 12)  # 36 rows: the batch goes through tl2cgen's Predictor
    native = booster.predict(rows)
    assert trees.predict_values([clash]) == [native[0]]
    np.testing.assert_array_equal(trees.predict(rows[:3])[:, 0], native[:3])
    np.testing.assert_array_equal(trees.predict(rows)[:, 0], native)
