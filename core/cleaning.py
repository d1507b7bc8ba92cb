"""The one rule that says which observed prices are glitches, using no truth.

Training must not learn from injected spikes and mistake fares, and evaluation must score the
price model on the same "clean" population, so both call :func:`price_outlier_mask`.

The rule is relative, not absolute: a 4,000 USD fare is normal in first class and absurd in
economy on a short hop. Within one search every offer is for the same route, departure date,
cabin and days to departure, so the ratio to the competitors' median in that search
(``price_vs_competitor_median``) removes almost all structure; real anomalies are a factor of
2-10 off (WORLD.md), legitimate spreads between carriers much less. When a search has no
competitor, the ratio to the route+cabin median of the day is used with wider bounds, since it
still carries the days-to-departure curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# |log(price / competitor median)| above this is a glitch (a factor of 1.8 either way).
MAX_COMPETITOR_RATIO = 1.8
# Without competitors: |log(price / route+cabin median of the day)| above this (factor 3.5).
MAX_ROUTE_RATIO = 3.5

REQUIRED_COLUMNS = ("price_usd", "price_vs_route_median", "price_vs_competitor_median")


def price_outlier_mask(
    df: pd.DataFrame,
    max_competitor_ratio: float = MAX_COMPETITOR_RATIO,
    max_route_ratio: float = MAX_ROUTE_RATIO,
) -> pd.Series:
    """True for rows whose observed price looks like a glitch (to drop from training/scoring).

    Rows with a missing or non-positive price are outliers too. The index of ``df`` is kept.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"price_outlier_mask needs columns {missing}")
    if max_competitor_ratio <= 1 or max_route_ratio <= 1:
        raise ValueError("ratio bounds must be > 1")
    price = pd.to_numeric(df["price_usd"], errors="coerce").to_numpy(dtype=float)
    comp = pd.to_numeric(df["price_vs_competitor_median"], errors="coerce").to_numpy(dtype=float)
    route = pd.to_numeric(df["price_vs_route_median"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_comp = np.abs(np.log(comp))
        log_route = np.abs(np.log(route))
    bad_price = ~np.isfinite(price) | (price <= 0)
    has_comp = np.isfinite(log_comp)
    out_comp = has_comp & (log_comp > np.log(max_competitor_ratio))
    out_route = np.isfinite(log_route) & (log_route > np.log(max_route_ratio))
    return pd.Series(bad_price | out_comp | out_route, index=df.index, name="price_outlier")
