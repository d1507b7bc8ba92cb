"""Regime changes of the world: the market moves at a date, and the truth records how.

A drift is ``KIND@DATE[:MAGNITUDE]`` (``airfare generate --drift``, ``airfare replay --drift``,
``generate_world(drifts=...)``). From its date on (searches made that UTC day or later) the
world changes; nothing before the date changes, so a world with a drift is byte-identical to the
world without it up to the day before onset. What each kind does (``MAGNITUDE`` default in brackets):

- ``fare-hike`` (0.15): a fuel surcharge: noise-free fares rise by MAGNITUDE (x1.15) on a share
  (``FARE_HIKE_ROUTE_SHARE``) of the routes, drawn from the seed;
- ``new-route`` (0.75): a new low-cost airline (``NEW_AIRLINE``, price level MAGNITUDE) starts flying
  a few of the busiest routes: new schedules, a new ``airline`` category, new flights in the outcomes;
- ``mix-shift`` (0.5): the traveller mix shifts: a share MAGNITUDE of sessions are business travellers
  (business cabin, one way, departing within a week);
- ``currency-units`` (100): one point-of-sale currency's feed switches units: its amounts arrive
  multiplied by MAGNITUDE (100: cents instead of units). The fares themselves do not change;
- ``demand-collapse`` (0.6): demand collapses in a region (routes touching ``COLLAPSE_REGION``
  countries): a share MAGNITUDE of their searches disappears and the flights' remaining bookings
  shrink by the same share (lower load factors, more seats left, cheaper fare buckets). The
  searches are gone, not moved: the day's search volume falls by MAGNITUDE x the region's share
  of searches (``search_volume_factor``). Before this was made explicit, the world kept exactly
  ``searches_per_day`` searches a day and handed the region's lost searches to the other routes,
  as if travellers who stopped flying to Europe searched Denver instead; a collapse then left
  the traffic volume unchanged, the one signal a real collapse sends first.

Each drift's resolved details (routes, currency, airline...) go into ``truth/world.json``
(``regime_changes``): the answer key, never read by a production path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

DEFAULT_MAGNITUDE = {"fare-hike": 0.15, "new-route": 0.75, "mix-shift": 0.5, "currency-units": 100.0, "demand-collapse": 0.6}
KINDS = tuple(DEFAULT_MAGNITUDE)
FARE_HIKE_ROUTE_SHARE = 0.5
NEW_AIRLINE = "ZX"  # not an IATA code of the network's airlines
NEW_AIRLINE_ROUTES = 12  # the busiest routes (both directions count as two) the entrant flies
COLLAPSE_REGION = ("GB", "FR", "DE", "NL", "ES")  # Europe: the network's transatlantic routes
CURRENCY_CANDIDATES = ("CAD", "MXN", "GBP", "EUR")  # non-USD points of sale with real traffic


@dataclass(frozen=True)
class Drift:
    kind: str
    date: dt.date
    magnitude: float

    def __str__(self) -> str:
        return f"{self.kind}@{self.date.isoformat()}:{self.magnitude:g}"


def parse_drift(text: str) -> Drift:
    """``KIND@YYYY-MM-DD[:MAGNITUDE]`` -> Drift; ValueError naming what is wrong."""
    kind, sep, rest = str(text).strip().partition("@")
    if not sep:
        raise ValueError(f"{text!r} is not KIND@YYYY-MM-DD[:MAGNITUDE]")
    if kind not in DEFAULT_MAGNITUDE:
        raise ValueError(f"unknown drift kind {kind!r}; kinds: {', '.join(KINDS)}")
    day, _, mag = rest.partition(":")
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"drift {text!r}: {day!r} is not a date (YYYY-MM-DD)") from None
    magnitude = DEFAULT_MAGNITUDE[kind]
    if mag:
        try:
            magnitude = float(mag)
        except ValueError:
            raise ValueError(f"drift {text!r}: magnitude {mag!r} is not a number") from None
    return check(Drift(kind, date, magnitude))


def check(d: Drift) -> Drift:
    m = d.magnitude
    if not np.isfinite(m):
        raise ValueError(f"drift {d}: magnitude must be finite")
    if d.kind == "fare-hike" and not -0.9 <= m <= 10:
        raise ValueError(f"drift {d}: a fare hike is a relative change within -0.9..10 (0.15 = +15 %)")
    if d.kind in ("mix-shift", "demand-collapse") and not 0 < m <= 1:
        raise ValueError(f"drift {d}: {d.kind} magnitude is a share within (0, 1]")
    if d.kind == "new-route" and not 0.1 <= m <= 5:
        raise ValueError(f"drift {d}: new-route magnitude is the new airline's price level within 0.1..5")
    if d.kind == "currency-units" and (m <= 0 or m == 1):
        raise ValueError(f"drift {d}: currency-units magnitude is the unit factor (> 0, not 1; 100 = cents)")
    return d


def parse_drifts(texts) -> tuple[Drift, ...]:
    return tuple(sorted((parse_drift(t) if isinstance(t, str) else check(t) for t in texts or ()), key=lambda d: (d.date, d.kind)))


def _rng(seed: int, index: int) -> np.random.Generator:
    """A stream of its own (stream 30 + drift index), so drifts never move the world's draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, 30 + index]))


@dataclass
class Resolved:
    """A drift with its concrete targets in one world (what world.json records)."""

    drift: Drift
    onset_day: int  # search-day index of the onset (may be < 0 or >= days)
    routes: np.ndarray | None = None  # route indices affected (fare-hike, new-route, demand-collapse)
    currency: int | None = None  # index into generator.CURRENCY_CODES (currency-units)
    airline: int | None = None  # new airline index (new-route)
    schedules: np.ndarray | None = None  # new schedules (new-route)

    def active(self, day: int) -> bool:
        return day >= self.onset_day


def resolve(drifts, world) -> list[Resolved]:
    """Concrete targets of each drift in ``world`` (deterministic per seed); may extend the network
    (new-route appends an airline and its schedules after every existing one, so no index moves)."""
    out = []
    for i, d in enumerate(drifts):
        r = Resolved(d, (d.date - world.start_date).days)
        rng = _rng(world.seed, i)
        net = world.net
        if d.kind == "fare-hike":
            k = max(1, int(round(FARE_HIKE_ROUTE_SHARE * net.n_routes)))
            r.routes = np.sort(rng.choice(net.n_routes, size=k, replace=False))
        elif d.kind == "demand-collapse":
            region = np.array([c in COLLAPSE_REGION for c in net.country])
            r.routes = np.flatnonzero(region[net.route_o] | region[net.route_d])
        elif d.kind == "currency-units":
            present = [c for c in CURRENCY_CANDIDATES if c in set(world.currency)]
            code = present[int(rng.integers(len(present)))] if present else "USD"
            r.currency = int(np.searchsorted(world.currency_codes, code))
        elif d.kind == "new-route":
            r.routes, r.airline, r.schedules = _add_airline(net, rng, d.magnitude)
        out.append(r)
    return out


def _add_airline(net, rng: np.random.Generator, price_level: float):
    """Append a low-cost entrant and two daily nonstops on each of the busiest routes."""
    busiest = np.sort(np.argsort(-net.route_gravity, kind="stable")[:NEW_AIRLINE_ROUTES])
    al = len(net.airline_code)
    net.airline_code.append(NEW_AIRLINE)
    net.airline_kind.append("low_cost")
    net.airline_price = np.append(net.airline_price, price_level)
    net.airline_lf = np.append(net.airline_lf, 0.04)
    first = net.n_schedules
    rows = []
    number = int(rng.integers(100, 400))
    for r in busiest.tolist():
        km = float(net.route_km[r])
        wide = km > net.params.widebody_above_km
        for h in np.sort(rng.choice(np.arange(6, 22), size=2, replace=False)).tolist():
            number += int(rng.integers(1, 6))
            rows.append((r, f"{NEW_AIRLINE}{number}", h * 60 + int(rng.choice(np.arange(0, 60, 5))),
                         int(round(km / 800 * 60 + 30 + rng.integers(-5, 10))),
                         int(rng.choice(net.params.widebody_seats if wide else net.params.narrowbody_seats)), wide))
    net.s_route = np.append(net.s_route, [x[0] for x in rows]).astype(np.int64)
    net.s_airline = np.append(net.s_airline, [al] * len(rows)).astype(np.int64)
    net.s_number = list(net.s_number) + [x[1] for x in rows]
    net.s_stops = np.append(net.s_stops, [0] * len(rows)).astype(np.int64)
    net.s_via = np.append(net.s_via, [-1] * len(rows)).astype(np.int64)
    net.s_dep_minute = np.append(net.s_dep_minute, [x[2] for x in rows]).astype(np.int64)
    net.s_duration = np.append(net.s_duration, [x[3] for x in rows]).astype(np.int64)
    net.s_capacity = np.append(net.s_capacity, [x[4] for x in rows]).astype(np.int64)
    net.s_wide = np.append(net.s_wide, [x[5] for x in rows]).astype(bool)
    return busiest, al, np.arange(first, first + len(rows))


def search_volume_factor(resolved: list[Resolved], route_weight: np.ndarray, day: int) -> float:
    """The share of a day's searches that still happen: each active demand collapse removes
    MAGNITUDE of its region's searches (the region's share of ``route_weight``, the world's route
    search shares before any collapse; collapses compound)."""
    factor, w = 1.0, np.asarray(route_weight, dtype=float)
    for r in resolved:
        if r.drift.kind == "demand-collapse" and r.active(day):
            region = np.zeros(len(w), dtype=bool)
            region[r.routes] = True
            lost = r.drift.magnitude * w[region].sum() / w.sum()
            factor *= 1.0 - lost
            w = np.where(region, w * (1.0 - r.drift.magnitude), w)
    return factor


def describe(resolved: list[Resolved], world) -> list[dict]:
    """The ``regime_changes`` of truth/world.json."""
    net = world.net
    out = []
    for r in resolved:
        d = r.drift
        doc = {"kind": d.kind, "date": d.date.isoformat(), "magnitude": d.magnitude, "spec": str(d)}
        if d.kind == "fare-hike":
            doc["effect"] = f"noise-free fares x{1 + d.magnitude:g} on {len(r.routes)} routes"
        elif d.kind == "demand-collapse":
            doc["effect"] = (f"searches on routes touching {', '.join(COLLAPSE_REGION)} x{1 - d.magnitude:g} (gone: the day's "
                             f"search volume x{search_volume_factor([r], world.route_weight, r.onset_day):.3f}); "
                             f"their flights' remaining bookings x{1 - d.magnitude:g}")
            doc["region"] = list(COLLAPSE_REGION)
        elif d.kind == "currency-units":
            doc["currency"] = str(world.currency_codes[r.currency])
            doc["effect"] = f"{doc['currency']} amounts arrive multiplied by {d.magnitude:g} (fares unchanged)"
        elif d.kind == "new-route":
            doc["airline"] = NEW_AIRLINE
            doc["effect"] = f"new airline {NEW_AIRLINE} (price level {d.magnitude:g}) flies {len(r.schedules)} daily schedules"
            doc["flight_numbers"] = [net.s_number[s] for s in r.schedules.tolist()]
        elif d.kind == "mix-shift":
            doc["effect"] = f"{d.magnitude:.0%} of sessions are business travellers (business cabin, one way, departure within 7 days)"
        if r.routes is not None:
            doc["routes"] = [net.route_code[x] for x in r.routes.tolist()]
        out.append(doc)
    return out
