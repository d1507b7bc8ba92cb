"""Monitors on the search stream beside Model Monitor's: traffic volume and each price feed's level.

Model Monitor compares one window of a model's inputs with its training baseline, feature by
feature. Two regime changes barely touch a price model's inputs and labels, and show in the
traffic instead:

- **Volume.** When demand collapses in a region, its searches disappear. Each remaining request
  still looks normal, but the day carries fewer searches. On AWS this is a CloudWatch
  anomaly-detection alarm on the search stream's ``IncomingRecords`` (or an endpoint's
  ``Invocations``), the band fitted on the metric's own history. Here the band is the
  prediction interval that the previous days' counts give. Its scale is never below Poisson
  noise (``sqrt(mean)``): a stream of independent searches varies at least that much, even
  where the history happens to be flatter.
- **Price feed level.** When a point-of-sale currency's feed switches units (cents for units), the
  amounts arrive x100 in that currency. A price model sees this only in the labels of that
  market's booked quotes, a handful a week in a small market. The search stream carries every
  quote in its currency. Each currency's daily price level (the median over its searches of each
  search's median log USD price) is compared with the same level on previous days. The route and
  cabin mix makes the level of a small market jump from day to day, and the scale of its history
  absorbs that. A unit switch moves the level by log(100) = 4.6, far beyond it.

Both are plain functions of counts and frames. ``pipelines.replay`` feeds them the curated
partitions of the search stream, one per day.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

VOLUME_ALPHA = 0.002  # two-sided, per datapoint (a 2-day sum, alarmed on its own): at most ~6 % of quiet months alarm once
VOLUME_WINDOW_DAYS = 2
PRICE_LEVEL_ALPHA = 0.01  # family-wise over the currencies checked on a day (Bonferroni)
HISTORY_DAYS = 14  # CloudWatch anomaly detection trains on up to two weeks of the metric
MIN_HISTORY = 5  # fewer days with data: no band yet (reported, not judged)


@dataclass
class BandCheck:
    """One metric's datapoint against the band its history gives."""

    metric: str
    value: float
    center: float | None = None
    scale: float | None = None
    z: float | None = None
    critical: float | None = None
    history: int = 0
    violation: str | None = None  # "low" / "high" / None

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def band_check(metric: str, value: float, history: Sequence[float], alpha: float, *, floor: float = 0.0,
               min_history: int = MIN_HISTORY) -> BandCheck:
    """``value`` against the two-sided ``alpha`` prediction interval that ``history`` gives.

    The interval of a new observation from n past ones: mean +- t(n-1) x sd x sqrt(1 + 1/n),
    Student's t since the scale is estimated from a few days. When ``floor`` (a known noise
    level, below which the scale never goes) sets the scale, the normal quantile applies. The
    caller leaves datapoints that were themselves violations out of ``history``, as a band is
    fitted on normal behaviour (CloudWatch anomaly detection lets you exclude such periods): the
    day after a change is then judged against the days before it, not against the change.
    """
    check = BandCheck(metric=metric, value=float(value), history=len(history))
    n = len(history)
    if n < min_history:
        return check
    h = np.asarray(history, dtype=float)
    center, estimated = float(h.mean()), float(h.std(ddof=1)) * math.sqrt(1.0 + 1.0 / n)
    scale = max(estimated, floor, 1e-9)
    check.center, check.scale = center, scale
    check.z = (float(value) - center) / scale
    known = floor >= estimated
    check.critical = float(stats.norm.ppf(1.0 - alpha / 2.0) if known else stats.t.ppf(1.0 - alpha / 2.0, df=n - 1))
    if abs(check.z) > check.critical:
        check.violation = "low" if check.z < 0 else "high"
    return check


def volume_check(history: Sequence[float], today: float, yesterday: float | None = None, alpha: float = VOLUME_ALPHA,
                 window: int = VOLUME_WINDOW_DAYS) -> BandCheck:
    """The searches of the last ``window`` days (``yesterday`` and ``today`` for 2) against the
    same sums over the previous days' counts ``history`` (oldest first, None for a day left out),
    with a Poisson floor.

    Why two days in one datapoint: at a few hundred searches a day, Poisson noise alone is about
    6 % of a day, so the drop a regional collapse causes (15-20 %) is under 3 sigma in one day, and
    two such days in a row (the other alarms' 2-of-2 rule) are unlikely even when it is real.
    Pooled over two days, the same drop stands about 3.7 sigma out. One datapoint over a 2-day
    window is as robust to one odd day as two daily datapoints are, so its alarm needs no
    second one."""
    if window == 2 and yesterday is None:
        return BandCheck(metric=f"searches_{window}d", value=float(today))
    value = float(today) + (float(yesterday) if window == 2 else 0.0)
    h = np.asarray([np.nan if x is None else x for x in history], dtype=float)  # None: a day left out
    sums = h[1:] + h[:-1] if window == 2 else h
    sums = sums[np.isfinite(sums)]
    center = float(np.mean(sums)) if len(sums) else 0.0
    return band_check(f"searches_{window}d", value, list(sums), alpha, floor=math.sqrt(max(center, 1.0)))


def price_levels(offers: pd.DataFrame, price: str = "price_usd", currency: str = "currency", search: str = "event_id") -> dict[str, tuple[float, int]]:
    """Per currency: (median over its searches of each search's median log price, searches)."""
    if offers.empty:
        return {}
    frame = offers[[search, currency, price]].dropna()
    frame = frame.loc[frame[price] > 0]
    per_search = frame.assign(_log=np.log(frame[price].astype(float))).groupby([currency, search], observed=True)["_log"].median()
    out = {}
    for cur, levels in per_search.groupby(level=0, observed=True):
        out[str(cur)] = (float(levels.median()), int(len(levels)))
    return out


def price_level_checks(history: Sequence[dict[str, tuple[float, int]]], today: dict[str, tuple[float, int]],
                       alpha: float = PRICE_LEVEL_ALPHA) -> list[BandCheck]:
    """Each currency's price level today against its levels on the history days that had searches
    in it (Bonferroni over the currencies judged today)."""
    series = {cur: [day[cur][0] for day in history if cur in day] for cur in today}
    judged = [cur for cur in today if len(series[cur]) >= MIN_HISTORY]
    out = []
    for cur in sorted(today):
        a = alpha / max(len(judged), 1)
        out.append(band_check(f"price_level_{cur}", today[cur][0], series[cur], a))
    return out


class StreamMonitor:
    """The search stream's daily metrics and their alarms' datapoints, day by day.

    ``add`` records a day (searches, price levels); ``check`` judges a day against the
    ``HISTORY_DAYS`` before it and leaves a datapoint in violation out of later days' bands."""

    def __init__(self, history_days: int = HISTORY_DAYS) -> None:
        self.history_days = history_days
        self.days: dict = {}  # day -> {"searches": n, "levels": {...}, "left_out": bool}

    def add(self, day, searches: int, levels: dict[str, tuple[float, int]]) -> None:
        self.days[day] = {"searches": int(searches), "levels": dict(levels), "left_out": False}

    def check(self, day) -> list[BandCheck]:
        import datetime as dt

        today = self.days.get(day)
        if today is None:
            return []
        past = [self.days.get(day - dt.timedelta(days=k)) for k in range(self.history_days, 0, -1)]
        yesterday = past[-1]
        checks = [volume_check([p["searches"] if p and not p["left_out"] else None for p in past[:-1]], today["searches"],
                               yesterday["searches"] if yesterday else None)]  # fmt: skip
        checks += price_level_checks([p["levels"] for p in past if p], today["levels"])
        for c in checks:  # bands are fitted on normal days
            if c.violation and c.metric.startswith("price_level_"):
                today["levels"].pop(c.metric.removeprefix("price_level_"), None)
            elif c.violation:
                today["left_out"] = True
        return checks


class StreamAlarm:
    """The stream metrics' alarms: a price level out of its band in the same direction on its last
    two datapoints, the 2-day search volume on its last one.

    A day without a datapoint (no search in a small market, or too little history) is skipped, as
    CloudWatch does with ``TreatMissingData: ignore``: a market with a search every other day
    raises the alarm on its second violating datapoint, not never."""

    def __init__(self) -> None:
        self.points: dict[str, list[str | None]] = {}

    def update(self, checks: list[dict]) -> list[str]:
        reasons = []
        for c in checks:
            if c.get("z") is None:
                continue
            points = self.points.setdefault(c["metric"], [])
            points.append(c.get("violation"))
            need = 1 if c["metric"].startswith("searches_") else 2
            last = points[-need:]
            if len(last) == need and last[0] and all(v == last[0] for v in last):
                reasons.append(f"{c['metric']}:{last[0]}")
        return reasons
