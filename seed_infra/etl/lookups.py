"""Small reference tables built in Python and broadcast to Spark: airports, public holidays, FX.

They are tiny (thousands of rows) next to the event data, so building them on the driver and
broadcasting them beats any distributed lookup; they are plain functions so they test without Spark.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from functools import lru_cache

import airportsdata
import holidays

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius
HOLIDAY_WINDOW_DAYS = 3
# Holidays are looked up this many years around the departure dates so the nearest one is found
# even across New Year.
_YEAR_MARGIN = 1


@lru_cache(maxsize=1)
def airports() -> dict[str, tuple[float, float, str]]:
    """IATA code -> (lat, lon, ISO country) for every airport airportsdata knows."""
    return {code: (a["lat"], a["lon"], a["country"]) for code, a in airportsdata.load("IATA").items() if code}


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance; the reference the Spark expression is tested against."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def country_holidays(country: str, years: range) -> list[dt.date]:
    """Sorted public holidays of ``country`` (empty when the holidays package does not cover it)."""
    try:
        return sorted(holidays.country_holidays(country, years=list(years)))
    except NotImplementedError:
        return []


def days_to_nearest(day: dt.date, sorted_days: list[dt.date]) -> int | None:
    """|day - nearest date in sorted_days| in days, or None for an empty list."""
    if not sorted_days:
        return None
    i = bisect.bisect_left(sorted_days, day)
    near = [abs((sorted_days[j] - day).days) for j in (i - 1, i) if 0 <= j < len(sorted_days)]
    return min(near)


def holiday_distance_rows(countries: list[str], start: dt.date, end: dt.date) -> list[tuple[str, dt.date, int | None]]:
    """(country, date, days to the nearest public holiday) for every country and date in [start, end]."""
    years = range(start.year - _YEAR_MARGIN, end.year + _YEAR_MARGIN + 1)
    rows: list[tuple[str, dt.date, int | None]] = []
    n_days = (end - start).days + 1
    for country in sorted(set(countries)):
        days = country_holidays(country, years)
        for k in range(n_days):
            d = start + dt.timedelta(days=k)
            rows.append((country, d, days_to_nearest(d, days)))
    return rows
