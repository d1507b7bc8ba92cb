"""The price cleaning rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.cleaning import price_outlier_mask


def _frame(prices, comp, route):
    return pd.DataFrame({"price_usd": prices, "price_vs_competitor_median": comp, "price_vs_route_median": route})


def test_removes_obvious_glitches_and_keeps_normal_prices():
    df = _frame(
        [300, 310, 1200, 60, 280, 0.0, 900, 250],
        [1.0, 1.1, 4.0, 0.2, np.nan, 1.0, np.nan, 0.75],
        [1.0, 1.05, 4.1, 0.2, 0.95, 1.0, 5.0, 1.6],
    )
    mask = price_outlier_mask(df)
    assert mask.tolist() == [False, False, True, True, False, True, True, False]
    assert mask.index.equals(df.index)


def test_on_synthetic_world_catches_glitches_and_few_normals(world):
    offers, _, truth = world
    mask = price_outlier_mask(offers).to_numpy()
    anomalous = truth["is_anomaly"].to_numpy()
    assert mask[anomalous].mean() > 0.9
    assert mask[~anomalous].mean() < 0.03


def test_bad_input():
    with pytest.raises(ValueError, match="needs columns"):
        price_outlier_mask(pd.DataFrame({"price_usd": [1.0]}))
    with pytest.raises(ValueError):
        price_outlier_mask(_frame([1.0], [1.0], [1.0]), max_competitor_ratio=0.5)
