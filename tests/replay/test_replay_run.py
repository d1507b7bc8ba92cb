"""`airfare replay` end to end on a small world: the real generator, Spark ETL, pipeline, serve app,
monitors, the stack's retraining rule and trigger, and the pipeline's champion/challenger step
(slow: a few pipeline runs).

One replay serves two tests: the week before the drift's onset is a drift-free replay (the world
changes nothing before a regime change's date, as its truth records), so the quiet test costs only
the days it adds, not a second world, ETL and initial model (a separate 30-day quiet replay costs
those again plus 30 days: several minutes, past the test budget)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.replay import ReplayOptions, replay

# the fixture (world, ETL, four pipeline runs, 13 days) takes 4-6 min on a quiet machine, past 15 under shared load
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(2400)]

START = dt.date(2026, 3, 2)
ONSET = "2026-03-09"  # a week of drift-free days first
# The small world's price model is not within the seed's $15 RMSE gate (too few searches a day):
# the absolute gates are pipeline parameters, loosened here as the e2e tests do.
GATES = {"PriceRmseMax": 100, "DemandAccuracyMin": 0, "AnomalyPrecisionMin": 0}


@pytest.fixture(scope="module")
def fare_hike(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "hike"
    opts = ReplayOptions(seed=7, start_date=START, days=13, out=out, drifts=(f"fare-hike@{ONSET}:0.4",), gates=GATES)
    return out, replay(opts)


# The drift-free week before the onset is the quiet replay: no alarm, no retraining (the monitors
# judge unseen categories by the rule of three and market-state features against a 0.2 threshold,
# docs/monitoring.md; before that, seats_left and origin raised a false alarm here on 03-04/05).
def test_a_drift_free_week_is_quiet(fare_hike):
    out, doc = fare_hike
    # the world is drift-free before the onset: its only regime change starts on it
    world = json.loads((out / "work" / "lake" / "airfare-lake" / "truth" / "world.json").read_text())
    assert [c["date"] for c in world["regime_changes"]] == [ONSET]
    quiet = [d for d in doc["timeline"] if d["date"] < ONSET]
    assert len(quiet) == 7
    assert [d["date"] for d in quiet if d["alarm"]["state"] == "ALARM"] == [], [d["alarm"]["reasons"] for d in quiet]
    assert not any(d["pipeline"] for d in quiet) and {d["serving_version"] for d in quiet} == {1}
    # the monitors did run and judge every quiet day (not quiet for want of data)
    assert all(d["data_quality"]["records"] > 1000 for d in quiet)
    assert sum(1 for d in quiet for w in d["model_quality"]["windows"] if w["rmse"] is not None) >= 5


def hindsight_scores(out, versions, first: dt.date, days: int) -> list[tuple[float, int]]:
    """(MAE, labelled quotes) of each price package version on the quotes captured from ``first`` for
    ``days`` days, against all the ground truth delivered, scored with the serving code."""
    import numpy as np

    from inference.model import load_model
    from inference.predict import Predictor
    from monitoring import capture
    from pipelines.registry import LocalRegistry

    lake = out / "work" / "lake" / "airfare-lake"
    since = dt.datetime.combine(first, dt.time(), dt.timezone.utc)
    until = since + dt.timedelta(days=days)
    cap = capture.read_capture(out / "work" / "capture", since=since, until=until)
    truth = capture.read_ground_truth(lake / "ground_truth" / "price", until=until + dt.timedelta(days=3))
    labels = dict(zip(truth["record_id"], truth["label"]))
    keep = [i for i, rid in enumerate(cap.events["record_id"]) if rid in labels]
    y = np.array([float(labels[cap.events["record_id"].iloc[i]]) for i in keep])
    rows = cap.inputs.iloc[keep].to_dict("records")
    scores = []
    for v in versions:
        predictor = Predictor(load_model(LocalRegistry(lake / "registry").get(f"airfare-price/{v}")["ModelDataUrl"]))
        pred = np.array([r["price_usd"] for r in predictor.predict(predictor.validate(rows))])
        scores.append((round(float(np.mean(np.abs(pred - y))), 3), len(y)))
    return scores


def test_a_fare_hike_is_detected_retrained_and_promoted(fare_hike):
    """Judged on the days from the onset (what happens before it is the quiet test's)."""
    out, doc = fare_hike
    days = doc["timeline"]
    (drift,) = doc["summary"]["drifts"]
    assert drift["days_to_alarm"] is not None and drift["days_to_alarm"] <= 2
    runs = [d for d in days if d["pipeline"]]
    assert [d for d in runs if d["date"] >= ONSET]
    # each run was started by the stack's rule for a price monitoring alarm, against the serving champion
    assert all(d["alarm"]["name"].startswith("airfare-dev-price-") and d["pipeline"]["champion"] for d in runs)
    promoted = [d for d in days if d["promotion"] and d["promotion"]["promoted"] and d["date"] >= ONSET]
    assert promoted, [(d["pipeline"], d["promotion"]) for d in runs]
    last = promoted[-1]
    # the pipeline's ComparePrice scored both on the same test day; CheckPriceChampion registered the
    # better. The last run's trainer found the new market's days in its window (PriceRegimeDays=auto,
    # from the stack's rule) and carried the older days over to it: it recovers most of the loss
    # (measured: RMSE 17.2 against the champion's 108.8; trained as they were, 117.9 and no promotion)
    assert last["promotion"]["challenger_rmse"] < 0.5 * last["promotion"]["champion_rmse"], last["promotion"]
    from inference.model import load_model
    from pipelines.registry import LocalRegistry

    package = LocalRegistry(out / "work" / "lake" / "airfare-lake" / "registry").get(f"airfare-price/{last['promotion']['challenger_version']}")
    search = load_model(package["ModelDataUrl"]).meta["search"]
    assert search["regime_days"] >= 1 and "additive+regime1" in search["candidates"], search
    later = [d for d in days if d["date"] > last["date"]]
    assert later and all(d["serving_version"] == last["promotion"]["challenger_version"] for d in later)
    # in hindsight, on the days after the promotion (never trained on, every label in), the promoted
    # model beats the champion it replaced on the same booked quotes
    scores = hindsight_scores(out, [last["promotion"]["champion_version"], last["promotion"]["challenger_version"]],
                              dt.date.fromisoformat(later[0]["date"]), len(later))  # fmt: skip
    (old, old_n), (new, new_n) = scores
    assert old_n == new_n >= 50 and new < old, scores
    # no champion is replaced by a worse challenger: every promotion beat its champion, and a
    # challenger that did not was stopped by the pipeline, not registered: by FailPriceChampion, or
    # earlier by the absolute gates (FailPrice), which CheckPriceGates applies first
    for d in runs:
        p = d["promotion"]
        if p and p["promoted"]:
            assert p["challenger_rmse"] < p["champion_rmse"] and d["pipeline"]["registered_version"] == p["challenger_version"]
        elif p and p["challenger_rmse"] >= p["champion_rmse"]:
            assert d["pipeline"]["failed_step"] in ("FailPrice", "FailPriceChampion") and d["pipeline"]["registered_version"] is None
    assert json.loads((out / "timeline.json").read_text())["timeline"] == days
    assert (out / "timeline.png").stat().st_size > 10_000
    # the capture is SageMaker's format, written by the serve app for every quote
    assert sum(d["traffic"]["requests"] for d in days) > 1000 and all(d["traffic"]["errors"] == 0 for d in days)
