"""The supply side of the world: airports, routes (gravity model), airlines and flight schedules.

Built once per seed as flat numpy arrays so that the generator can price thousands of offers in
one vectorised step. Nothing here depends on the simulated day: a schedule is a daily flight.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np

from seed_infra.world.params import AIRLINES, AIRPORTS, COUNTRY_CURRENCY, WorldParams

EARTH_RADIUS_KM = 6371.0088


def great_circle_km(lat1, lon1, lat2, lon2):
    """Haversine distance in km (vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


@dataclass
class Network:
    """Airports, directed routes and daily schedules (one row per scheduled itinerary)."""

    params: WorldParams
    # airports
    iata: list[str]
    size: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    country: list[str]
    tz: list[str]
    # airlines
    airline_code: list[str]
    airline_kind: list[str]
    airline_price: np.ndarray
    airline_lf: np.ndarray
    # directed routes
    route_o: np.ndarray
    route_d: np.ndarray
    route_km: np.ndarray
    route_gravity: np.ndarray  # search share weight
    route_lf: np.ndarray  # structural load-factor offset of the route
    route_carriers: np.ndarray  # distinct marketing carriers (competition)
    route_start: np.ndarray  # schedules of route r: [route_start[r], route_start[r + 1])
    # schedules (sorted by route)
    s_route: np.ndarray
    s_airline: np.ndarray
    s_number: list[str]  # marketing flight number of the first leg, e.g. 'AA123'
    s_stops: np.ndarray
    s_via: np.ndarray  # airport index of the connection (-1 for nonstop)
    s_dep_minute: np.ndarray  # local departure, minutes after midnight
    s_duration: np.ndarray  # minutes
    s_capacity: np.ndarray
    s_wide: np.ndarray  # wide body

    @property
    def n_routes(self) -> int:
        return len(self.route_o)

    @property
    def n_schedules(self) -> int:
        return len(self.s_route)

    @cached_property
    def route_code(self) -> list[str]:
        return [f"{self.iata[o]}-{self.iata[d]}" for o, d in zip(self.route_o, self.route_d)]

    @cached_property
    def airport_currency(self) -> list[str]:
        return [COUNTRY_CURRENCY.get(c, "USD") for c in self.country]

    def utc_offsets_minutes(self, first_day: dt.date, n_days: int) -> np.ndarray:
        """UTC offset of each airport on each day (DST aware), shape (airports, days)."""
        out = np.zeros((len(self.iata), n_days), dtype=np.int32)
        for a, name in enumerate(self.tz):
            zone = ZoneInfo(name)
            for k in range(n_days):
                day = first_day + dt.timedelta(days=k)
                off = dt.datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset()
                out[a, k] = int(off.total_seconds() // 60)
        return out

    def summary(self) -> dict:
        return {
            "airports": len(self.iata),
            "airlines": len(self.airline_code),
            "routes": self.n_routes,
            "schedules": self.n_schedules,
            "nonstop_schedules": int((self.s_stops == 0).sum()),
            "widebody_schedules": int(self.s_wide.sum()),
        }


def build_network(seed: int, params: WorldParams) -> Network:
    """Build the deterministic network of a seed: routes by gravity, carriers, frequencies, aircraft."""
    import airportsdata

    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    db = airportsdata.load("IATA")
    iata = [c for c, _ in AIRPORTS]
    size = np.array([s for _, s in AIRPORTS], dtype=float)
    lat = np.array([db[c]["lat"] for c in iata])
    lon = np.array([db[c]["lon"] for c in iata])
    country = [db[c]["country"] for c in iata]
    tz = [db[c]["tz"] for c in iata]
    n = len(iata)
    index = {c: i for i, c in enumerate(iata)}

    # gravity model over undirected pairs
    ii, jj = np.triu_indices(n, k=1)
    km = great_circle_km(lat[ii], lon[ii], lat[jj], lon[jj])
    grav = size[ii] * size[jj] / np.maximum(km, 1.0) ** params.gravity_distance_exponent
    grav = np.where(km < params.min_route_km, 0.0, grav)
    keep = set(np.argsort(-grav)[: params.n_routes].tolist())
    for a in range(n):  # every airport has at least two routes
        mine = np.flatnonzero(((ii == a) | (jj == a)) & (grav > 0))
        for p in mine[np.argsort(-grav[mine])][:2]:
            keep.add(int(p))
    pairs = sorted(keep)

    # airlines
    airline_code = [a[0] for a in AIRLINES]
    airline_country = [a[1] for a in AIRLINES]
    airline_kind = [a[2] for a in AIRLINES]
    airline_price = np.array([a[3] for a in AIRLINES])
    airline_lf = np.array([a[4] for a in AIRLINES])
    hubs = [{index[h] for h in a[5]} for a in AIRLINES]
    next_number = [int(rng.integers(100, 400)) for _ in AIRLINES]

    def new_number(al: int, step: int) -> str:
        next_number[al] += step
        return f"{airline_code[al]}{next_number[al]}"

    log_g = np.log(grav[pairs])
    z_g = (log_g - log_g.mean()) / log_g.std()
    route_rows: list[tuple[int, int, float, float, float]] = []
    sched: list[dict] = []
    for p_idx, p in enumerate(pairs):
        a, b = int(ii[p]), int(jj[p])
        dist = float(km[p])
        rnd_lf = float(rng.normal(0.0, params.lf_route_random_sd))
        route_lf = params.lf_route_gravity * float(z_g[p_idx]) + rnd_lf
        # cabotage: only carriers of an endpoint's country fly the route
        eligible = [k for k in range(len(AIRLINES)) if airline_country[k] in (country[a], country[b])]
        if not eligible:
            eligible = list(range(len(AIRLINES)))
        weight = np.array([1.0 + 4.0 * ((a in hubs[k]) + (b in hubs[k])) for k in eligible])
        n_carriers = int(np.clip(1 + round(1.2 * (z_g[p_idx] + 1.5)), 1, min(params.max_carriers_per_route, len(eligible))))
        carriers = rng.choice(eligible, size=n_carriers, replace=False, p=weight / weight.sum()).tolist()
        wide = dist > params.widebody_above_km
        base_freq = 1.0 + 1.3 * (z_g[p_idx] + 1.0)
        for o, d in ((a, b), (b, a)):
            r = len(route_rows)
            route_rows.append((o, d, dist, float(grav[p]), route_lf))
            for k in carriers:
                hub_bonus = 1.0 + 0.5 * ((o in hubs[k]) + (d in hubs[k]))
                freq = int(np.clip(round(base_freq * hub_bonus / n_carriers ** 0.3 + rng.normal(0, 0.4)), 1, 2 if wide else params.max_daily_frequency))
                hours = np.sort(rng.choice(np.arange(6, 22), size=freq, replace=False)) if not wide else np.sort(rng.choice([10, 13, 17, 19, 21, 22], size=freq, replace=False))
                cap = int(rng.choice(params.widebody_seats if wide else params.narrowbody_seats))
                for h in hours:
                    sched.append(dict(route=r, airline=k, number=new_number(k, int(rng.integers(1, 6))), stops=0, via=-1,
                                      dep=int(h) * 60 + int(rng.choice(np.arange(0, 60, 5))),
                                      dur=int(round(dist / 800 * 60 + 30 + rng.integers(-5, 10))), cap=cap, wide=wide))
            # connecting itineraries via another carrier's (or the same carrier's) hub
            for k in range(len(AIRLINES)):
                if airline_country[k] not in (country[o], country[d]):
                    continue
                vias = [h for h in hubs[k] if h not in (o, d)]
                if not vias:
                    continue
                leg1 = great_circle_km(lat[o], lon[o], lat[vias], lon[vias])
                leg2 = great_circle_km(lat[vias], lon[vias], lat[d], lon[d])
                detour = (leg1 + leg2) / dist
                best = int(np.argmin(detour))
                if detour[best] > 1.3 or rng.random() > 0.5:
                    continue
                h = vias[best]
                total = float(leg1[best] + leg2[best])
                leg_wide = bool(leg1[best] > params.widebody_above_km)
                sched.append(dict(route=r, airline=k, number=new_number(k, int(rng.integers(1, 6))), stops=1, via=h,
                                  dep=int(rng.choice(np.arange(6, 21))) * 60 + int(rng.choice(np.arange(0, 60, 5))),
                                  dur=int(round(total / 800 * 60 + 60 + rng.integers(45, 150))),
                                  cap=int(rng.choice(params.widebody_seats if leg_wide else params.narrowbody_seats)), wide=leg_wide))

    sched.sort(key=lambda s: (s["route"], s["dep"], s["number"]))
    s_route = np.array([s["route"] for s in sched], dtype=np.int64)
    n_routes = len(route_rows)
    route_start = np.searchsorted(s_route, np.arange(n_routes + 1))
    s_airline = np.array([s["airline"] for s in sched], dtype=np.int64)
    carriers_per_route = np.array([len(set(s_airline[route_start[r]:route_start[r + 1]].tolist())) for r in range(n_routes)])
    return Network(
        params=params,
        iata=iata,
        size=size,
        lat=lat,
        lon=lon,
        country=country,
        tz=tz,
        airline_code=airline_code,
        airline_kind=airline_kind,
        airline_price=airline_price,
        airline_lf=airline_lf,
        route_o=np.array([r[0] for r in route_rows], dtype=np.int64),
        route_d=np.array([r[1] for r in route_rows], dtype=np.int64),
        route_km=np.array([r[2] for r in route_rows]),
        route_gravity=np.array([r[3] for r in route_rows]),
        route_lf=np.array([r[4] for r in route_rows]),
        route_carriers=carriers_per_route,
        route_start=route_start,
        s_route=s_route,
        s_airline=s_airline,
        s_number=[s["number"] for s in sched],
        s_stops=np.array([s["stops"] for s in sched], dtype=np.int64),
        s_via=np.array([s["via"] for s in sched], dtype=np.int64),
        s_dep_minute=np.array([s["dep"] for s in sched], dtype=np.int64),
        s_duration=np.array([s["dur"] for s in sched], dtype=np.int64),
        s_capacity=np.array([s["cap"] for s in sched], dtype=np.int64),
        s_wide=np.array([s["wide"] for s in sched], dtype=bool),
    )
