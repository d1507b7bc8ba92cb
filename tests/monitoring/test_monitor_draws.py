"""How many independent draws a window holds: runs in arrival order, and groups the contract names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import contract
from monitoring import analyzer


def test_runs_of_equal_values_count_once():
    rng = np.random.default_rng(0)
    draws = rng.integers(1, 60, 400)
    assert analyzer.effective_count(draws) == pytest.approx(400, rel=0.1)  # independent: all of them
    clustered = np.repeat(draws, 5)  # five offers of one search in a row
    assert analyzer.effective_count(clustered) == pytest.approx(400, rel=0.1)
    assert analyzer.effective_count(rng.permutation(clustered)) == pytest.approx(2000, rel=0.1)  # shuffled: no runs
    words = np.repeat(rng.choice(["economy", "business", "first"], 300), 3).astype(object)
    assert analyzer.effective_count(words) == pytest.approx(300, rel=0.2)
    assert analyzer.effective_count(np.full(50, 7.0)) == 50  # one value: no evidence either way
    assert analyzer.effective_count(np.array([1.0, 2.0])) == 2


def test_groups_named_by_the_contract_count_once_whatever_the_order():
    frame = pd.DataFrame({
        "route": ["A-B"] * 4 + ["C-D"] * 4,
        "days_to_departure": [3, 3, 9, 9, 3, 3, 3, None],
        "route_searches_day": [12, 12, 12, 12, 40, 40, 40, 40],
    }).sample(frac=1, random_state=1)
    units = contract.SHARED_VALUE_UNITS
    assert analyzer.unit_count(frame, "route_searches_day", units["route_searches_day"]) == 2
    assert analyzer.unit_count(frame, "days_to_departure", units["days_to_departure"]) == 3  # (A-B,3) (A-B,9) (C-D,3)
    assert analyzer.unit_count(frame.drop(columns="route"), "days_to_departure", units["days_to_departure"]) is None
    profiles = analyzer.profile(frame)
    analyzer.apply_units(profiles, frame, units)
    by_name = {p.name: p.effective_count for p in profiles}
    assert by_name["route_searches_day"] == 2 and by_name["days_to_departure"] == 3
    assert by_name["route"] == 4  # the searches' route-dates, the one without days included


def test_calendar_and_unit_declarations_name_real_request_fields():
    known = set(contract.CURATED_COLUMNS) | set(contract.PRICE_FEATURES)
    from core.features import DEMAND_FEATURES

    known |= set(DEMAND_FEATURES)
    assert set(contract.CALENDAR_FEATURES) <= known
    for feature, keys in contract.SHARED_VALUE_UNITS.items():
        assert feature in known and set(keys) <= known, feature
    assert not set(contract.CALENDAR_FEATURES) & {"days_to_departure", "departure_weekday"}  # a quiet market keeps these
