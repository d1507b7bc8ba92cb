"""Regime changes (seed_infra/world/drift.py): each kind changes what it should from its date on,
and nothing before it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from seed_infra.world import World, generate_world
from seed_infra.world.drift import KINDS, NEW_AIRLINE, parse_drift
from seed_infra.world.generator import CURRENCY_CODES

START = dt.date(2026, 3, 2)
ONSET = 2  # day index of the onset
SPD = 500


def _world(*drifts, seed=3):
    return World(seed=seed, start_date=START, days=4, searches_per_day=SPD, drifts=drifts)


def _day(world: World, day: int):
    return [world.simulate(day, h, p, n) for h, p, n in world.chunks_of_day(day)]


def _drift(kind: str, magnitude: str = "") -> str:
    return f"{kind}@{(START + dt.timedelta(days=ONSET)).isoformat()}" + (f":{magnitude}" if magnitude else "")


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(x.columns, f), getattr(y.columns, f))
               for x, y in zip(a, b) for f in ("route", "dep", "cabin", "o_sched", "amount", "cur", "seats_left"))


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_changes_before_the_onset_and_something_after(kind):
    base, drifted = _world(), _world(_drift(kind))
    for day in range(ONSET):
        assert _same(_day(base, day), _day(drifted, day)), f"{kind} changed day {day}, before its onset"
    assert not _same(_day(base, ONSET), _day(drifted, ONSET)), f"{kind} changed nothing at its onset"


def test_fare_hike_raises_noise_free_fares_on_its_routes_only():
    base, hiked = _world(), _world(_drift("fare-hike", "0.2"))
    routes = set(hiked.regimes[0].routes.tolist())
    assert 0 < len(routes) < hiked.net.n_routes
    for b, h in zip(_day(base, ONSET), _day(hiked, ONSET)):
        on = np.isin(hiked.net.s_route[h.columns.o_sched], list(routes))
        bp = dict(zip(zip(b.columns.o_search, b.columns.o_sched), b.true_price_usd))
        ratio = np.array([p / bp[k] for k, p in zip(zip(h.columns.o_search, h.columns.o_sched), h.true_price_usd)])
        assert np.allclose(ratio[on], 1.2) and np.allclose(ratio[~on], 1.0)


def test_currency_units_scale_one_currencys_amounts_not_the_fares():
    base, cents = _world(), _world(_drift("currency-units"))
    cur = cents.regimes[0].currency
    assert CURRENCY_CODES[cur] != "USD"
    hits = 0
    for b, c in zip(_day(base, ONSET), _day(cents, ONSET)):
        assert np.array_equal(b.true_price_usd, c.true_price_usd) and np.array_equal(b.columns.cur, c.columns.cur)
        mine = c.columns.cur == cur
        hits += int(mine.sum())
        assert np.allclose(c.columns.amount[mine], b.columns.amount[mine] * 100, rtol=1e-6)
        assert np.array_equal(c.columns.amount[~mine], b.columns.amount[~mine])
    assert hits > 0


def test_mix_shift_brings_business_travellers():
    from core import contract

    base, shifted = _world(), _world(_drift("mix-shift", "0.5"))
    business = contract.CABINS.index("business")

    def share(chunks):
        cab = np.concatenate([c.columns.cabin for c in chunks])
        return (cab == business).mean()

    assert share(_day(shifted, ONSET)) > share(_day(base, ONSET)) + 0.3


def test_demand_collapse_moves_searches_away_and_empties_the_regions_flights():
    base, collapsed = _world(), _world(_drift("demand-collapse", "0.6"))
    region = set(collapsed.regimes[0].routes.tolist())

    def searches(chunks):
        r = np.concatenate([c.columns.route for c in chunks])
        return np.isin(r, list(region)).sum()

    assert searches(_day(collapsed, ONSET)) < 0.6 * searches(_day(base, ONSET))
    sched = np.flatnonzero(np.isin(collapsed.net.s_route, list(region)))[:20]
    before, after = np.full(20, ONSET + 1), np.full(20, ONSET + 2 + 5)  # departure-day indices
    assert np.array_equal(base.flight_load_factor(sched, before), collapsed.flight_load_factor(sched, before))
    assert np.allclose(collapsed.flight_load_factor(sched, after), 0.4 * base.flight_load_factor(sched, after))


def test_new_airline_flies_only_from_its_onset():
    base, entrant = _world(), _world(_drift("new-route"))
    new = set(entrant.regimes[0].schedules.tolist())
    assert entrant.net.n_schedules == base.net.n_schedules + len(new)
    assert entrant.net.airline_code[-1] == NEW_AIRLINE
    for day, expected in ((ONSET - 1, False), (ONSET, True)):
        seen = any(np.isin(c.columns.o_sched, list(new)).any() for c in _day(entrant, day))
        assert seen is expected


def test_generate_world_records_the_drift_in_the_truth_and_keeps_earlier_days(tmp_path):
    kw = dict(seed=9, start_date=START, days=3, searches_per_day=120, progress=False)
    generate_world(tmp_path / "base", **kw)
    generate_world(tmp_path / "drift", drifts=[_drift("fare-hike")], **kw)
    doc = json.loads((tmp_path / "drift" / "truth" / "world.json").read_text())
    (change,) = doc["regime_changes"]
    assert change["kind"] == "fare-hike" and change["date"] == (START + dt.timedelta(days=ONSET)).isoformat() and change["routes"]
    assert "regime_changes" not in json.loads((tmp_path / "base" / "truth" / "world.json").read_text())
    for day in range(3):
        folder = f"dt={(START + dt.timedelta(days=day)).isoformat()}"
        files = sorted((tmp_path / "base" / "raw" / folder).rglob("*.json.gz"))
        same = all(f.read_bytes() == (tmp_path / "drift" / f.relative_to(tmp_path / "base")).read_bytes() for f in files)
        assert same is (day < ONSET)


@pytest.mark.parametrize("text, needle", [("fare-hike", "KIND@"), ("price-war@2026-01-01", "unknown drift kind"),
                                          ("fare-hike@2026-13-01", "not a date"), ("mix-shift@2026-01-01:2", "share"),
                                          ("currency-units@2026-01-01:1", "unit factor"), ("fare-hike@2026-01-01:x", "not a number")])
def test_bad_drift_specs_are_refused_with_a_reason(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_drift(text)


def test_generate_cli_names_the_drift_flag(tmp_path):
    from typer.testing import CliRunner

    from seed_infra.world.cli import app

    result = CliRunner().invoke(app, ["--out", str(tmp_path / "w"), "--drift", "price-war@2026-01-01", "-q"])
    assert result.exit_code == 2 and "--drift" in result.output


def test_demand_collapse_searches_are_gone_not_moved():
    """The region's lost searches do not reappear on other routes: the day's volume falls by the
    magnitude x the region's search share, and the other routes keep their searches."""
    base, collapsed = _world(), _world(_drift("demand-collapse", "0.6"))
    region = collapsed.regimes[0].routes
    share = base.route_weight[region].sum()

    def searches(world, day):
        return sum(n for _, _, n in world.chunks_of_day(day))

    assert searches(collapsed, ONSET - 1) == searches(base, ONSET - 1) == SPD
    assert searches(collapsed, ONSET) == round(SPD * (1 - 0.6 * share)) < 0.9 * SPD
    outside = [np.isin(np.concatenate([c.columns.route for c in _day(w, ONSET)]), region, invert=True).sum()
               for w in (base, collapsed)]
    assert abs(outside[1] - outside[0]) < 0.15 * outside[0]  # the other routes' searches stay where they were
