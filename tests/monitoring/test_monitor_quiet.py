"""What keeps quiet traffic quiet without hiding a change: types as written, rare categories, and
the search-stream monitors (volume, price-feed level)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mon_support import write_capture

from monitoring import analyzer, capture, job, traffic


def _violations(base_dir, cur: pd.DataFrame):
    stats = analyzer.statistics(cur, profiles=(profiles := analyzer.profile(cur)))
    base_stats = json.loads((base_dir / "statistics.json").read_text())
    cons = json.loads((base_dir / "constraints.json").read_text())
    v, _ = analyzer.check(profiles, stats, base_stats, cons)
    return {(x["feature_name"], x["constraint_check_type"]) for x in v["violations"]}


def test_a_whole_number_float_is_fractional_in_the_baseline_and_in_every_capture_shape(tmp_path):
    """distance_km of a route can be a whole number of km: written by a float column it reads
    "3980.0" in the CSV baseline, in a CSV capture and 3980.0 in a JSON one, all Fractional. An
    integer column with gaps stays Integral when read from CSV text, and a capture that sends
    integers conforms to a float column's Fractional baseline."""
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"distance_km": rng.choice([3980.0, 5570.0, 812.5], n),
                          "seats_left": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
                          "searches": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 30, n).astype(float))})  # fmt: skip
    frame.to_csv(tmp_path / "baseline.csv", index=False)
    written = job.data_quality(job.read_dataset(tmp_path / "baseline.csv", {"csv": {"header": True}}, text=True), tmp_path / "base")
    types = {f["name"]: f["inferred_type"] for f in written["statistics"]["features"]}
    assert types == {"distance_km": "Fractional", "seats_left": "Integral", "searches": "Fractional"}
    assert (tmp_path / "baseline.csv").read_text().count("3980.0") > 0
    for shape in ("object", "csv"):
        root = write_capture(tmp_path / f"cap-{shape}", frame.assign(searches=frame["searches"].astype("Int64")).astype(object)
                             .where(frame.notna(), None), shapes=(shape,))  # fmt: skip
        cap = capture.read_capture(root, columns=list(frame.columns))
        flagged = _violations(tmp_path / "base", cap.inputs)
        assert not {f for f, kind in flagged if kind == "data_type_check"}, (shape, flagged)
        assert analyzer.profile_column("distance_km", cap.inputs["distance_km"]).statistics["inferred_type"] == "Fractional"
        assert analyzer.profile_column("seats_left", cap.inputs["seats_left"]).statistics["inferred_type"] == "Integral"
    # a whole-number float where an integer belongs is still a type violation
    bad = frame.assign(seats_left=frame["seats_left"].astype("float64"))
    assert ("seats_left", "data_type_check") in _violations(tmp_path / "base", bad)


def test_one_search_from_an_unseen_country_is_not_a_violation_a_new_carrier_is(tmp_path):
    """A category a 2-week baseline missed may exist at a rate below ~3/N (rule of three): one
    search's offers from it are chance. A carrier on a tenth of the traffic is not."""
    rng = np.random.default_rng(1)
    searches = 3000
    per = 10
    country = rng.choice(["US", "GB", "FR"], searches, p=[0.7, 0.2, 0.1])
    airline = rng.choice(["AA", "BA", "AF", "DL"], searches * per)
    base = pd.DataFrame({"user_country": np.repeat(country, per), "airline": airline})
    job.data_quality(base, tmp_path / "base")
    day = base.iloc[: 250 * per].copy().reset_index(drop=True)
    day.loc[:per - 1, "user_country"] = "JP"  # one search from Japan: its ten offers
    assert _violations(tmp_path / "base", day) == set()
    day.loc[day.sample(frac=0.1, random_state=2).index, "airline"] = "ZX"
    assert ("airline", "categorical_values_check") in _violations(tmp_path / "base", day)
    day.loc[: 40 * per - 1, "user_country"] = "JP"  # forty searches from a new market
    assert ("user_country", "categorical_values_check") in _violations(tmp_path / "base", day)


def test_search_volume_band_keeps_quiet_days_and_catches_a_collapse():
    rng = np.random.default_rng(2)
    history = list(rng.poisson(250, 15))
    quiet = [traffic.volume_check(history, a, b) for a, b in rng.poisson(250, (200, 2))]
    assert sum(bool(c.violation) for c in quiet) <= 1
    collapsed = traffic.volume_check(history, 205, 207)  # a region's searches gone (-18 %), two days
    assert collapsed.violation == "low" and collapsed.metric == "searches_2d"
    assert traffic.volume_check(history, 205, 250).violation is None  # one odd day is not enough
    flat = [248, 249, 247, 248, 250, 248, 249, 247, 248, 249]  # a flatter history than Poisson noise
    assert traffic.volume_check(flat, 240, 241).violation is None  # the Poisson floor: 16 fewer searches is noise
    assert traffic.volume_check(history[:3], 100, 100).z is None  # too little history: not judged


def test_price_level_of_a_feed_in_cents_is_caught_in_a_small_market():
    rng = np.random.default_rng(3)

    def day(seed, cents=False):
        r = np.random.default_rng(seed)
        rows = []
        for i, (cur, n) in enumerate((("USD", 170), ("EUR", 45), ("MXN", 2))):
            for s in range(n):
                level = r.normal(6.0, 0.8)  # route and cabin: a search's price level varies a lot
                prices = np.exp(level + r.normal(0, 0.2, 10)) * (100 if cents and cur == "MXN" else 1)
                rows += [{"event_id": f"{seed}-{i}-{s}", "currency": cur, "price_usd": p} for p in prices]
        return traffic.price_levels(pd.DataFrame(rows))

    history = [day(k) for k in range(14)]
    quiet = [traffic.price_level_checks(history, day(100 + k)) for k in range(20)]
    assert sum(bool(c.violation) for checks in quiet for c in checks) <= 1
    cents = {c.metric: c for c in traffic.price_level_checks(history, day(200, cents=True))}
    assert cents["price_level_MXN"].violation == "high" and not cents["price_level_USD"].violation
    assert rng is not None
