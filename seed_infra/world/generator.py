"""The flight-search world generator: search events, flight outcomes and the truth behind them.

How it stays fast and lean: the network (routes, schedules) is built once; searches are generated
per (day, hour, part) chunk of at most ``chunk_size`` searches with numpy, each chunk seeded from
``(seed, day, hour, part)`` so the output does not depend on chunking across runs. Events are
encoded to JSON lines column-wise (Arrow string kernels over lookup tables of JSON fragments, no
per-event dicts), several small chunks at once, then written out. Per-flight hidden state (final
load factor, booking-curve jitter) is a counter-based hash of ``(seed, schedule, departure day)``:
no table of flights is kept, only the set of flight ids seen (a bitmap of schedules x departure
days) for the outcomes file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from core import contract
from seed_infra.world.network import build_network
from seed_infra.world.params import COUNTRY_CURRENCY, FARE_BUCKETS, FIRST_DATE, LAST_DATE, SEED_MAX, WorldParams

GENERATOR_VERSION = "1"
DEFAULT_START_DATE = dt.date(2026, 1, 5)
DEFAULT_DAYS = 60
DEFAULT_SEARCHES_PER_DAY = 1500
DEFAULT_ANOMALY_RATE = 0.005
DEFAULT_CHUNK_SIZE = 20_000
_NO_HOLIDAY_DAYS = 366  # "days to the nearest holiday" where the calendar knows none: far from any
_FLIGHT_CODE = 1_000_000  # flight id = schedule * _FLIGHT_CODE + departure-day index
_CABIN_INDEX = {c: i for i, c in enumerate(contract.CABINS)}
CURRENCY_CODES = np.array(sorted(contract.FX_PER_USD))  # prices carry an index into this table
_FX = np.array([contract.FX_PER_USD[c] for c in CURRENCY_CODES.tolist()])
_JPY = int(np.searchsorted(CURRENCY_CODES, "JPY"))  # quoted in whole yen


# ---------------------------------------------------------------------------------------------
# Counter-based randomness for per-flight hidden state
# ---------------------------------------------------------------------------------------------
def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))




def _seed_word(seed: int) -> int:
    """A 32-bit key for the counter-based hashes: the seed itself below 2^32 (so worlds of such
    seeds are unchanged), else 32 bits that SeedSequence derives from the whole seed."""
    if seed < 2**32:
        return seed
    return int(np.random.SeedSequence([seed, 3]).generate_state(1, np.uint32)[0])


def _user_salt(seed: int) -> np.uint64:
    """What user ids are salted with: ``seed << 40`` below 2^23 (the historical formula, so
    those worlds are unchanged), else a 64-bit word SeedSequence derives from the whole seed
    (a shift would overflow 64 bits)."""
    if seed < 2**23:
        return np.uint64(seed << 40)
    return np.random.SeedSequence([seed, 9]).generate_state(1, np.uint64)[0]


def _hash_uniform(seed: int, stream: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Uniform(0, 1) that depends only on (seed, stream, a, b)."""
    with np.errstate(over="ignore"):
        key = (
            np.uint64(_seed_word(seed) & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
            + np.uint64(stream) * np.uint64(0xD1B54A32D192ED03)
        )
        x = _mix64(_mix64(np.asarray(a, dtype=np.uint64) + key) ^ np.asarray(b, dtype=np.uint64))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _hash_normal(seed: int, stream: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    u1 = _hash_uniform(seed, stream, a, b)
    u2 = _hash_uniform(seed, stream + 1, a, b)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _hour_table(spec: dict, default: float) -> np.ndarray:
    out = np.full(24, default, dtype=float)
    for key, value in spec.items():
        lo, hi = (int(x) for x in key.split("-"))
        out[lo:hi] = value
    return out


def _weights(d: dict, keys) -> np.ndarray:
    w = np.array([d[k] for k in keys], dtype=float)
    return w / w.sum()


# ---------------------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------------------
@dataclass
class EventColumns:
    """What the search events of one chunk are made of: per-search and per-offer arrays.

    Per search (``n``, simulation order): session, route, dates, passengers, ``offs`` (seconds into
    the hour). Per offer (grouped by search, cheapest first): ``o_*``. ``event_bytes`` and
    ``sess_bytes`` are the random bytes of the event ids (16 per search) and session ids (8 each).
    """

    day: int
    hour: int
    n: int
    event_bytes: bytes
    sess_bytes: bytes
    sess: np.ndarray
    home: np.ndarray
    uid: np.ndarray
    offs: np.ndarray
    route: np.ndarray
    dep: np.ndarray
    rt: np.ndarray
    los: np.ndarray
    cabin: np.ndarray
    adults: np.ndarray
    children: np.ndarray
    infants: np.ndarray
    o_search: np.ndarray
    o_sched: np.ndarray
    o_dep: np.ndarray
    seats_left: np.ndarray
    bucket: np.ndarray
    o_cabin: np.ndarray
    amount: np.ndarray
    cur: np.ndarray  # index into CURRENCY_CODES

    @property
    def currency(self) -> np.ndarray:
        return CURRENCY_CODES[self.cur]


@dataclass
class Chunk:
    """One generated batch of searches: its JSON lines and the truth arrays (aligned per offer)."""

    lines: bytes  # SearchEvent documents as JSON lines ("\n"-terminated), in time order (after `World.encode`)
    n_events: int
    offer_id: pa.Array | None  # offer order (grouped by search), aligned with the arrays below (None until encoded)
    true_price_usd: np.ndarray
    observed_usd: np.ndarray
    is_anomaly: np.ndarray
    anomaly_factor: np.ndarray
    cabin: np.ndarray
    flight_index: np.ndarray  # flight (schedule * n_dep_days + departure-day index) of each offer
    columns: EventColumns
    part: int = 0  # the chunk's part within its (day, hour): with them, it names its random streams

    @property
    def events(self) -> list[dict]:
        """The SearchEvent documents as dicts (parsed from ``lines``: the same values)."""
        return [orjson.loads(line) for line in self.lines.splitlines()]


class World:
    """The world of one seed: network, calendar tables and the per-chunk search simulator."""

    def __init__(
        self,
        *,
        seed: int = 42,
        start_date: dt.date = DEFAULT_START_DATE,
        days: int = DEFAULT_DAYS,
        searches_per_day: int = DEFAULT_SEARCHES_PER_DAY,
        anomaly_rate: float = DEFAULT_ANOMALY_RATE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        params: WorldParams | None = None,
        drifts=(),
    ) -> None:
        validate_options(seed=seed, days=days, searches_per_day=searches_per_day, anomaly_rate=anomaly_rate, chunk_size=chunk_size,
                         start_date=start_date)
        self.seed, self.start_date, self.days = seed, start_date, days
        self.searches_per_day, self.anomaly_rate, self.chunk_size = searches_per_day, anomaly_rate, chunk_size
        self.p = p = params or WorldParams()
        self.user_salt = _user_salt(seed)
        self.net = net = build_network(seed, p)

        # departure-day calendar: index 0 = start_date; a margin of 2 days either side for arrivals
        self.n_dep_days = days + p.horizon_days + 4
        self._day0 = start_date - dt.timedelta(days=2)
        dates = [self._day0 + dt.timedelta(days=k) for k in range(self.n_dep_days)]
        self.date_str = [(self._day0 + dt.timedelta(days=k)).isoformat() for k in range(self.n_dep_days + 40)]  # + returns
        self.dep_month = np.array([d.month - 1 for d in dates])
        self.dep_weekday = np.array([d.weekday() for d in dates])
        self.hol_dist = self._holiday_distance(dates)  # (countries, days)
        self.utc_off = net.utc_offsets_minutes(self._day0, self.n_dep_days)
        self._hhmm = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]

        countries = sorted(set(net.country))
        self.country_idx = {c: i for i, c in enumerate(countries)}
        self.origin_country = np.array([self.country_idx[net.country[o]] for o in net.route_o])
        self.airport_country_idx = np.array([self.country_idx[c] for c in net.country])

        # price building blocks
        self.route_base = p.base_fare_usd + p.fare_per_km_coef * net.route_km ** p.distance_exponent
        self.route_comp = np.clip(p.competition_max - p.competition_slope * (net.route_carriers - 1), p.competition_min, p.competition_max)
        self.cabin_mult = np.array([p.cabin_multiplier[c] for c in contract.CABINS])
        self.month_mult = np.array(p.month_multiplier)
        self.weekday_mult = np.array(p.weekday_multiplier)
        self.hour_mult = _hour_table(p.hour_multiplier, 1.0)
        self.lf_hour = _hour_table(p.lf_hour, 0.0)
        self.lf_month = np.array(p.lf_month)
        self.lf_weekday = np.array(p.lf_weekday)
        self.seat_share = np.array([[p.cabin_seat_share[k][c] for c in contract.CABINS] for k in ("narrow", "wide")])
        self.buckets = [FARE_BUCKETS[c] for c in contract.CABINS]
        self.n_buckets = np.array([len(b) for b in self.buckets])
        self.bucket_letters = [np.array(b) for b in self.buckets]

        # search behaviour
        self.route_weight = net.route_gravity * np.exp(p.search_demand_sensitivity * net.route_lf)
        self.route_weight /= self.route_weight.sum()
        self.hour_weight = np.array(p.search_hour_weights, dtype=float) / sum(p.search_hour_weights)
        self.cabin_p = _weights(p.cabin_search_share, contract.CABINS)
        self.device_p = _weights(p.device_share, contract.DEVICES)
        self.loyalty_p = _weights(p.loyalty_share, contract.LOYALTY_TIERS)
        self.user_pool = np.maximum((net.size * 2000).astype(np.int64), 1000)
        self.currency = [self._currency(c) for c in net.country]
        self.home_cur = np.searchsorted(CURRENCY_CODES, self.currency)
        self.devices = np.array(contract.DEVICES)
        self.tiers = np.array(contract.LOYALTY_TIERS)
        self.currency_codes = CURRENCY_CODES
        self._tables: dict | None = None  # JSON fragments for the event encoder, built on first use

        # regime changes (seed_infra/world/drift.py): none by default, and then nothing below runs
        from seed_infra.world.drift import parse_drifts, resolve

        self.drifts = parse_drifts(drifts)
        self.regimes = resolve(self.drifts, self)
        self._collapse = [r for r in self.regimes if r.drift.kind == "demand-collapse"]
        if self._collapse:
            self._collapse_mask = [np.isin(np.arange(net.n_routes), r.routes) for r in self._collapse]

    def _route_weight(self, day: int) -> np.ndarray:
        """Route search shares on search day ``day`` (a demand collapse moves searches away from its region)."""
        w = self.route_weight
        for r, mask in zip(self._collapse, getattr(self, "_collapse_mask", ())):
            if r.active(day):
                w = np.where(mask, w * (1.0 - r.drift.magnitude), w)
        return w if w is self.route_weight else w / w.sum()

    # -- calendar -------------------------------------------------------------------------------
    def _holiday_distance(self, dates: list[dt.date]) -> np.ndarray:
        """Days from each date to the nearest public holiday of each airport country (`holidays`)."""
        import holidays

        countries = sorted(set(self.net.country))
        years = sorted({d.year for d in dates} | {dates[0].year - 1, dates[-1].year + 1})
        ords = np.array([d.toordinal() for d in dates])
        out = np.zeros((len(countries), len(dates)), dtype=np.int64)
        for i, c in enumerate(countries):
            hol = np.array(sorted(d.toordinal() for d in holidays.country_holidays(c, years=years)), dtype=np.int64)
            if len(hol) == 0:  # years the `holidays` package does not cover (e.g. after 2100): no holiday effect
                out[i] = _NO_HOLIDAY_DAYS
                continue
            pos = np.searchsorted(hol, ords)
            left, right = hol[np.clip(pos - 1, 0, len(hol) - 1)], hol[np.clip(pos, 0, len(hol) - 1)]
            out[i] = np.minimum(np.abs(ords - left), np.abs(right - ords))
        return out

    @staticmethod
    def _currency(country: str) -> str:
        return COUNTRY_CURRENCY.get(country, "USD")

    def holiday_window(self, route: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """1 within ``holiday_window_days`` of an origin-country holiday, fading linearly to 0."""
        d = self.hol_dist[self.origin_country[route], dep]
        return np.clip(1.0 - d / (self.p.holiday_window_days + 1), 0.0, 1.0)

    # -- demand ---------------------------------------------------------------------------------
    def route_date_lf(self, route: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """Structural load factor of a route on a departure day (what drives search volume)."""
        p = self.p
        return (
            p.lf_base
            + self.net.route_lf[route]
            + self.lf_month[self.dep_month[dep]]
            + self.lf_weekday[self.dep_weekday[dep]]
            + p.lf_holiday * self.holiday_window(route, dep)
        )

    def flight_load_factor(self, sched: np.ndarray, dep: np.ndarray, search_day: int | None = None) -> np.ndarray:
        """Final load factor of flight (schedule, departure day): structure + per-flight noise.

        A demand collapse scales it down on its region's routes: as seen by searches made on or
        after its onset (``search_day``), or, for the outcomes (``search_day`` None), for flights
        departing on or after the onset.
        """
        net, p = self.net, self.p
        lf = (
            self.route_date_lf(net.s_route[sched], dep)
            + net.airline_lf[net.s_airline[sched]]
            + self.lf_hour[net.s_dep_minute[sched] // 60]
            + p.lf_noise_sd * _hash_normal(self.seed, 10, sched, dep)
        )
        lf = np.clip(lf, p.lf_min, 1.0)
        for r, mask in zip(self._collapse, getattr(self, "_collapse_mask", ())):
            hit = mask[net.s_route[sched]] & ((dep >= r.onset_day + 2) if search_day is None else r.active(search_day))
            lf = np.where(hit, lf * (1.0 - r.drift.magnitude), lf)
        return lf

    def booked_fraction(self, dtd: np.ndarray, sched: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """Share of the final bookings already made ``dtd`` days before departure."""
        p = self.p
        jitter = np.exp(p.booking_jitter_sd * _hash_normal(self.seed, 20, sched, dep))
        return np.clip(jitter / (1.0 + (np.maximum(dtd, 0) / p.booking_half_days) ** p.booking_shape), 0.0, 1.0)

    # -- price ----------------------------------------------------------------------------------
    def dtd_curve(self, dtd: np.ndarray) -> np.ndarray:
        p = self.p
        d = np.asarray(dtd, dtype=float)
        f = 1.0 + p.dtd_near_amp * np.exp(-d / p.dtd_near_scale) + p.dtd_last_amp * np.exp(-d / p.dtd_last_scale)
        f += p.dtd_far_amp * np.clip((d - p.dtd_far_from) / (p.dtd_far_full - p.dtd_far_from), 0.0, 1.0)
        for days, amp in p.advance_purchase_fences.items():
            f += amp * (d < int(days))
        return f

    # -- sampling -------------------------------------------------------------------------------
    def _sample_dtd(self, rng: np.random.Generator, n: int) -> np.ndarray:
        p, mix = self.p, self.p.horizon_mix
        kind = rng.choice(3, size=n, p=[mix["near"], mix["mid"], mix["far"]])
        near = np.floor(rng.exponential(mix["near_mean_days"], size=n))
        mid = rng.integers(30, 181, size=n)
        far = rng.integers(181, p.horizon_days + 1, size=n)
        return np.clip(np.select([kind == 0, kind == 1], [near, mid], far), 0, p.horizon_days).astype(np.int64)

    def hour_counts(self, n: int) -> np.ndarray:
        """Searches per UTC hour for a day of ``n`` searches (largest remainder: exact total)."""
        raw = self.hour_weight * n
        base = np.floor(raw).astype(np.int64)
        rest = n - base.sum()
        base[np.argsort(-(raw - base), kind="stable")[:rest]] += 1
        return base

    def chunks_of_day(self, day: int) -> list[tuple[int, int, int]]:
        """(hour, part, searches) of simulated day ``day``, parts of at most ``chunk_size`` searches."""
        from seed_infra.world.drift import search_volume_factor

        out = []
        searches = self.searches_per_day
        if self._collapse:  # a demand collapse's searches are gone, not moved to other routes
            searches = int(round(searches * search_volume_factor(self._collapse, self.route_weight, day)))
        for hour, n in enumerate(self.hour_counts(searches)):
            parts = max(1, -(-int(n) // self.chunk_size))
            for part in range(parts):
                size = int(n) // parts + (1 if part < int(n) % parts else 0)
                if size:
                    out.append((hour, part, size))
        return out

    def chunk(self, day: int, hour: int, part: int, n: int) -> Chunk:
        """Simulate ``n`` searches made on day ``day`` (0-based) in UTC hour ``hour``, encoded."""
        chunk = self.simulate(day, hour, part, n)
        self.encode([chunk])
        return chunk

    def simulate(self, day: int, hour: int, part: int, n: int) -> Chunk:
        """`chunk` without the JSON encoding (``lines`` and ``offer_id`` are filled by `encode`)."""
        net, p = self.net, self.p
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 7, day, hour, part]))
        today = day + 2  # departure-day index of the search date

        # sessions: a user searches one route a few times (dates, passengers may vary)
        sizes = 1 + rng.geometric(1.0 / p.mean_session_searches, size=n) - 1
        sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
        sizes[-1] -= sizes.sum() - n
        n_sess = len(sizes)
        sess = np.repeat(np.arange(n_sess), sizes)
        first = np.r_[0, np.cumsum(sizes)[:-1]]

        s_route = rng.choice(net.n_routes, size=n_sess, p=self._route_weight(day))
        # departure date: candidates from the booking-horizon mix, picked with weight ~ route-date demand
        k = p.date_candidates
        cand = today + self._sample_dtd(rng, n_sess * k).reshape(n_sess, k)
        logw = p.search_demand_sensitivity * (self.route_date_lf(np.repeat(s_route, k).reshape(n_sess, k), cand) - 0.8)
        pick = np.argmax(logw + rng.gumbel(size=(n_sess, k)), axis=1)
        s_dep = cand[np.arange(n_sess), pick]
        s_trip_rt = rng.random(n_sess) < p.round_trip_share
        s_cabin = rng.choice(len(contract.CABINS), size=n_sess, p=self.cabin_p)
        s_home_is_origin = rng.random(n_sess) < p.user_home_is_origin
        s_home = np.where(s_home_is_origin, net.route_o[s_route], net.route_d[s_route])
        s_user = rng.integers(0, self.user_pool[s_home])
        s_start = rng.integers(0, 3600, size=n_sess)
        for r in self.regimes:
            if r.drift.kind == "mix-shift" and r.active(day):  # its own stream: the world's draws do not move
                shift_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 31, day, hour, part]))
                business = shift_rng.random(n_sess) < r.drift.magnitude
                s_cabin = np.where(business, _CABIN_INDEX["business"], s_cabin)
                s_trip_rt = s_trip_rt & ~business
                s_dep = np.where(business, today + shift_rng.integers(0, 8, size=n_sess), s_dep)

        route = s_route[sess]
        shift = np.where((np.arange(n) != first[sess]) & (rng.random(n) < 0.4), rng.integers(-3, 4, size=n), 0)
        dep = np.clip(s_dep[sess] + shift, today, today + p.horizon_days)
        dtd = dep - today
        rt = s_trip_rt[sess]
        los = np.where(rt, np.clip(np.round(rng.gamma(2.0, 2.5, size=n)) + 1, 1, 30), 0).astype(np.int64)
        cabin = s_cabin[sess]
        adults = rng.choice(np.arange(1, 10), size=n, p=_ADULTS_P)
        adults = np.where(np.arange(n) == first[sess], adults, np.where(rng.random(n) < 0.8, adults[first[sess]], adults))
        children = np.where((adults >= 2) & (rng.random(n) < 0.18), rng.integers(1, 4, size=n), 0)
        children = np.minimum(children, 9 - adults)
        infants = np.where(rng.random(n) < 0.04, 1, 0)
        seats_needed = adults + children
        gaps = np.cumsum(rng.integers(15, 240, size=n))
        offs = np.minimum(s_start[sess] + gaps - gaps[first[sess]], 3599)  # seconds into the hour
        home = s_home[sess]
        user = s_user[sess]

        # offers: every schedule of the route that day
        cnt = net.route_start[route + 1] - net.route_start[route]
        o_search = np.repeat(np.arange(n), cnt)
        o_sched = net.route_start[route][o_search] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        for r in self.regimes:
            if r.drift.kind == "new-route" and r.active(day):  # the entrant's schedules join its routes' offers
                new_route = net.s_route[r.schedules]
                hit = route[:, None] == new_route[None, :]
                si, sj = np.nonzero(hit)
                o_search = np.concatenate([o_search, si])
                o_sched = np.concatenate([o_sched, r.schedules[sj]])
        o_dep = dep[o_search]
        o_dtd = dtd[o_search]
        o_cabin = cabin[o_search]
        o_route = route[o_search]
        lf = self.flight_load_factor(o_sched, o_dep, search_day=day)
        fill = lf * self.booked_fraction(o_dtd, o_sched, o_dep)
        cab_cap = np.maximum(np.round(net.s_capacity[o_sched] * self.seat_share[net.s_wide[o_sched].astype(int), o_cabin]).astype(np.int64), 2)
        sold = np.minimum(np.floor(cab_cap * fill + 0.5).astype(np.int64), cab_cap)
        seats_left = cab_cap - sold
        keep = seats_left >= seats_needed[o_search]
        o_search, o_sched, o_dep, o_dtd, o_cabin, o_route = (a[keep] for a in (o_search, o_sched, o_dep, o_dtd, o_cabin, o_route))
        seats_left, sold, cab_cap = seats_left[keep], sold[keep], cab_cap[keep]
        nb = self.n_buckets[o_cabin]
        bucket = np.minimum((sold * nb) // cab_cap, nb - 1)

        # structural price, USD per passenger for the whole trip
        hour_dep = net.s_dep_minute[o_sched] // 60
        o_los = los[o_search]
        trip = np.where(
            rt[o_search], p.round_trip_multiplier + p.short_stay_premium * (o_los <= 2), 1.0
        )
        true_price = (
            self.route_base[o_route]
            * self.cabin_mult[o_cabin]
            * net.airline_price[net.s_airline[o_sched]]
            * self.route_comp[o_route]
            * np.where(net.s_stops[o_sched] > 0, p.connecting_multiplier, 1.0)
            * self.dtd_curve(o_dtd)
            * self.month_mult[self.dep_month[o_dep]]
            * self.weekday_mult[self.dep_weekday[o_dep]]
            * self.hour_mult[hour_dep]
            * (1.0 + p.holiday_price_amp * self.holiday_window(o_route, o_dep))
            * (1.0 + p.bucket_step) ** bucket
            * trip
        )
        for r in self.regimes:
            if r.drift.kind == "fare-hike" and r.active(day):
                true_price = np.where(np.isin(o_route, r.routes), true_price * (1.0 + r.drift.magnitude), true_price)
        m = len(true_price)
        noisy = true_price * np.exp(p.price_noise_sd * rng.standard_normal(m))
        is_anom = rng.random(m) < self.anomaly_rate
        factor = np.exp(rng.uniform(np.log(p.anomaly_factor_min), np.log(p.anomaly_factor_max), size=m))
        spike = rng.random(m) < p.anomaly_spike_share
        factor = np.where(is_anom, np.where(spike, factor, 1.0 / factor), 1.0)
        observed_usd = noisy * factor
        cur = self.home_cur[home][o_search]
        fx = _FX[cur]
        amount = np.where(cur == _JPY, np.round(observed_usd * fx, 0), np.round(observed_usd * fx, 2))
        observed_usd = amount / fx if m else amount
        for r in self.regimes:
            if r.drift.kind == "currency-units" and r.active(day):  # the feed's units change, not the fare
                amount = np.where(cur == r.currency, np.round(amount * r.drift.magnitude, 2), amount)

        # results come back cheapest first
        order = np.lexsort((observed_usd, o_search))
        cols = (o_search, o_sched, o_dep, seats_left, bucket, o_cabin, amount, cur, true_price, observed_usd, is_anom, factor)
        o_search, o_sched, o_dep, seats_left, bucket, o_cabin, amount, cur, true_price, observed_usd, is_anom, factor = (a[order] for a in cols)

        cols = EventColumns(
            day=day, hour=hour, n=n, event_bytes=rng.bytes(16 * n), sess_bytes=rng.bytes(8 * (int(sess.max()) + 1 if n else 0)),
            sess=sess, home=home, uid=_mix64((home * 10_000_000 + user).astype(np.uint64) + self.user_salt), offs=offs, route=route, dep=dep,
            rt=rt, los=los, cabin=cabin, adults=adults, children=children, infants=infants,
            o_search=o_search, o_sched=o_sched, o_dep=o_dep, seats_left=seats_left, bucket=bucket, o_cabin=o_cabin,
            amount=amount, cur=cur,
        )
        return Chunk(
            lines=b"",
            n_events=n,
            offer_id=None,
            true_price_usd=true_price,
            observed_usd=observed_usd,
            is_anomaly=is_anom,
            anomaly_factor=factor,
            cabin=o_cabin,
            flight_index=o_sched * self.n_dep_days + o_dep,
            columns=cols,
            part=part,
        )

    # -- what production learns about anomalies ------------------------------------------------
    def review(self, chunk: Chunk) -> dict[str, np.ndarray]:
        """The incident-label rows of one chunk's offers (WorldParams ``label_*``, EFFECTS_DOC).

        Returns aligned arrays: ``offer`` (index into the chunk's offers), ``search_us`` and
        ``confirmed_us`` (microseconds since the epoch, UTC), ``is_incident`` and ``source``
        (index into ``contract.INCIDENT_SOURCES``). Drawn from the chunk's own random stream
        (stream 8: the events' stream 7 is untouched), so chunking does not change them.
        """
        p, c = self.p, chunk.columns
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 8, c.day, c.hour, chunk.part]))
        m = len(chunk.is_anomaly)
        anom = chunk.is_anomaly
        size = np.clip((np.abs(np.log(np.where(anom, chunk.anomaly_factor, 2.0))) - np.log(2.0)) / np.log(5.0), 0.0, 1.0)
        raised_p = np.where(anom, p.label_alert_coverage_min + (p.label_alert_coverage_max - p.label_alert_coverage_min) * size,
                            p.label_normal_review_rate)
        u_raise, u_verdict, u_ext, z = rng.random(m), rng.random(m), rng.random(m), rng.standard_normal(m)
        raised = u_raise < raised_p
        drop = chunk.anomaly_factor < 1.0
        external = anom & ~raised & (u_ext < np.where(drop, p.label_external_drop, p.label_external_spike))
        wrong = u_verdict < np.where(anom, p.label_false_clear_rate, p.label_false_confirm_rate)
        verdict = np.where(raised, anom != wrong, True)  # external reports are confirmed incidents
        median = np.where(external, p.label_external_delay_median_hours, p.label_review_delay_median_hours)
        sigma = np.where(external, p.label_external_delay_sigma, p.label_review_delay_sigma)
        delay_us = (median * np.exp(sigma * z) * 3.6e9).astype(np.int64)
        search_day = self.start_date + dt.timedelta(days=c.day)
        hour_us = (dt.datetime(search_day.year, search_day.month, search_day.day, c.hour, tzinfo=dt.timezone.utc).timestamp()
                   * 1_000_000)
        search_us = int(hour_us) + c.offs[c.o_search].astype(np.int64) * 1_000_000
        keep = (raised | external) & (delay_us <= p.label_review_window_days * 86_400 * 1_000_000)
        # partner vs social media: a viral mistake fare is a drop; half the external reports of drops come from social media
        source = np.where(external, np.where(drop & (u_ext < p.label_external_drop / 2), 2, 1), 0)
        idx = np.flatnonzero(keep)
        return {"offer": idx, "search_us": search_us[idx], "confirmed_us": search_us[idx] + delay_us[idx],
                "is_incident": verdict[idx], "source": source[idx]}

    # -- serialisation --------------------------------------------------------------------------
    def _json_tables(self) -> dict[str, pa.Array]:
        """Lookup tables of ready-made JSON fragments (values JSON-encoded by orjson), built once per world."""
        if self._tables is not None:
            return self._tables
        net = self.net

        def js(v) -> str:
            return orjson.dumps(v).decode()

        hhmm = self._hhmm
        # per schedule: what sits between the offer id and the departure date, and between the
        # departure date and the arrival date (key order of contract.Offer)
        sched_a = [
            f'","airline":{js(net.airline_code[a])},"flight_number":{js(num)},"departure_time":"'
            for a, num in zip(net.s_airline.tolist(), net.s_number)
        ]
        sched_b = [f'T{hhmm[m]}","arrival_time":"' for m in net.s_dep_minute.tolist()]
        sched_c = [f'","stops":{s},"duration_minutes":{d},"fare_class":' for s, d in zip(net.s_stops.tolist(), net.s_duration.tolist())]
        max_b = int(self.n_buckets.max())
        letters = [js(b[k]) if k < len(b) else "null" for b in self.buckets for k in range(max_b)]
        route = [
            f'"origin":{js(net.iata[o])},"destination":{js(net.iata[d])},"departure_date":"'
            for o, d in zip(net.route_o.tolist(), net.route_d.tolist())
        ]
        trip_cabin = [
            f',"trip_type":{js(t)},"cabin":{js(c)},"passengers":{{"adults":'
            for t in ("one_way", "round_trip") for c in contract.CABINS
        ]
        L = pa.large_string()
        self._tables = t = {
            "date": pa.array(self.date_str, L),
            "return": pa.array([js(d) for d in self.date_str] + ["null"], L),
            "hhmm": pa.array([f"T{h}" for h in hhmm], L),
            "mmss": pa.array([f"{s // 60:02d}:{s % 60:02d}Z" for s in range(3600)], L),
            "sched_a": pa.array(sched_a, L),
            "sched_b": pa.array(sched_b, L),
            "sched_c": pa.array(sched_c, L),
            "letters": pa.array(letters, L),
            "currency": pa.array([js(c) + "}}" for c in CURRENCY_CODES.tolist()], L),
            "country": pa.array([js(c) for c in net.country], L),
            "device": pa.array([js(d) for d in _DEVICES], L),
            "tier": pa.array([js(d) for d in _TIERS], L),
            "route": pa.array(route, L),
            "trip_cabin": pa.array(trip_cabin, L),
            "sep": pa.array([",", ""], L),
        }
        t["max_b"] = max_b
        return t

    def encode(self, chunks: list[Chunk]) -> None:
        """Fill ``lines`` and ``offer_id`` of simulated chunks, encoded together (fewer, bigger kernels)."""
        for chunk, (lines, offer_id) in zip(chunks, self.encode_many([c.columns for c in chunks])):
            chunk.lines, chunk.offer_id = lines, offer_id

    def encode_events(self, c: EventColumns) -> tuple[bytes, pa.Array]:
        """JSON lines of one chunk's SearchEvent documents, in time order, and the offer ids (offer order)."""
        return self.encode_many([c])[0]

    def encode_many(self, cols: list[EventColumns]) -> list[tuple[bytes, pa.Array]]:
        """`encode_events` of several chunks in one pass (small chunks cost mostly per-call overhead).

        Built column-wise with Arrow string kernels, byte-for-byte what ``orjson.dumps`` gives for
        the nested dicts (same keys, key order, number formatting): ``tests/world`` checks it against
        a plain dict reference. Event ids are UUID4s from each chunk's random stream.
        """
        L = pa.large_string()
        ns = np.array([c.n for c in cols], dtype=np.int64)
        ms = np.array([len(c.o_search) for c in cols], dtype=np.int64)
        ev_at, of_at = np.r_[0, np.cumsum(ns)], np.r_[0, np.cumsum(ms)]
        c = cols[0] if len(cols) == 1 else _concat_columns(cols, ev_at)
        net, t, n = self.net, self._json_tables(), c.n
        if n == 0:
            return [(b"", pa.array([], L)) for _ in cols]
        chunk_of = np.repeat(np.arange(len(cols)), ns)  # chunk of each search
        stamps = pa.array([f"{(self.start_date + dt.timedelta(days=x.day)).isoformat()}T{x.hour:02d}:" for x in cols], L)

        # event ids: UUID4 text from 16 random bytes per search
        raw = np.frombuffer(c.event_bytes, np.uint8).reshape(n, 16)
        hexd = np.frombuffer(c.event_bytes.hex().encode(), np.uint8).reshape(n, 32)
        uu = np.empty((n, 36), np.uint8)
        uu[:, 0:8], uu[:, 9:13], uu[:, 15:18], uu[:, 20:23], uu[:, 24:36] = hexd[:, 0:8], hexd[:, 8:12], hexd[:, 13:16], hexd[:, 17:20], hexd[:, 20:32]
        uu[:, [8, 13, 18, 23]] = ord("-")
        uu[:, 14] = ord("4")
        uu[:, 19] = np.frombuffer(b"89ab", np.uint8)[(raw[:, 8] >> 4) & 3]
        eid = _fixed_width(uu.tobytes(), 36, n)

        # offer ids in offer order (grouped by search, cheapest first: the truth's row order)
        m = len(c.o_search)
        offers_of = np.searchsorted(c.o_search, np.arange(n + 1))
        rank = np.arange(m) - offers_of[c.o_search]
        rank_tab = pa.array([f"{k:02d}" for k in range(int(rank.max()) + 1 if m else 0)], L)
        offer_id = _cat(eid.take(c.o_search), "-", rank_tab.take(rank))

        # lines come in time order: permute searches (``order``) and offers (``perm``) first, so that
        # the big strings are built once, in place, and never reordered
        order = np.lexsort((c.offs, chunk_of))  # chunk by chunk, each in time order (stable)
        cnt = np.diff(offers_of)[order]
        start = np.r_[0, np.cumsum(cnt)]
        perm = np.repeat(offers_of[:-1][order] - start[:-1], cnt) + np.arange(m)
        o_sched, o_dep, o_cur, o_amount = c.o_sched[perm], c.o_dep[perm], c.cur[perm], c.amount[perm]
        o_route = c.route[c.o_search[perm]]
        org, dest = net.route_o[o_route], net.route_d[o_route]
        arr_total = net.s_dep_minute[o_sched] + net.s_duration[o_sched] + self.utc_off[dest, o_dep] - self.utc_off[org, o_dep]
        amount = _json_numbers(o_amount.tolist())
        jpy = o_cur == _JPY
        if jpy.any():
            amount = pc.if_else(pa.array(jpy), pc.cast(pa.array(o_amount.astype(np.int64)), L), amount)
        last = np.zeros(m, np.int64)
        last[start[1:][cnt > 0] - 1] = 1
        offers = _cat(
            '{"offer_id":"', offer_id.take(perm), t["sched_a"].take(o_sched), t["date"].take(o_dep), t["sched_b"].take(o_sched),
            t["date"].take(o_dep + arr_total // 1440), t["hhmm"].take(arr_total % 1440), t["sched_c"].take(o_sched),
            t["letters"].take(c.o_cabin[perm] * t["max_b"] + c.bucket[perm]), ',"seats_left":', pc.cast(pa.array(c.seats_left[perm]), L),
            ',"price":{"amount":', amount, ',"currency":', t["currency"].take(o_cur), t["sep"].take(last),
        )
        # the offers of a search are one contiguous run: a zero-copy view per search
        off = np.frombuffer(offers.buffers()[1], np.int64)[offers.offset : offers.offset + m + 1]
        joined = pa.LargeStringArray.from_buffers(n, pa.py_buffer(off[start]), offers.buffers()[2])

        uid = c.uid[order].astype(np.uint64)
        sess_hex = _fixed_width(c.sess_bytes.hex().encode(), 16, len(c.sess_bytes) // 8)
        rt, dep = c.rt[order], c.dep[order]
        lines = _cat(
            f'{{"schema_version":{orjson.dumps(contract.SCHEMA_VERSION).decode()},"event_id":"', eid.take(order),
            '","event_time":"', stamps.take(chunk_of[order]), t["mmss"].take(c.offs[order]), '","session":{"session_id":"s-', sess_hex.take(c.sess[order]),
            '","user_id":"u-', _fixed_width(uid.astype(">u8").tobytes().hex().encode(), 16, n),
            '","country":', t["country"].take(c.home[order]), ',"device":', t["device"].take((uid % np.uint64(100)).astype(np.int64)),
            ',"loyalty_tier":', t["tier"].take(((uid >> np.uint64(8)) % np.uint64(100)).astype(np.int64)),
            '},"query":{', t["route"].take(c.route[order]), t["date"].take(dep), '","return_date":',
            t["return"].take(np.where(rt, dep + c.los[order], len(self.date_str))),
            t["trip_cabin"].take(rt.astype(np.int64) * len(contract.CABINS) + c.cabin[order]),
            pc.cast(pa.array(c.adults[order]), L), ',"children":', pc.cast(pa.array(c.children[order]), L),
            ',"infants":', pc.cast(pa.array(c.infants[order]), L), '}},"offers":[', joined, "]}\n",
        )
        off = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset : lines.offset + n + 1]
        data = lines.buffers()[2]
        return [
            (data[int(off[ev_at[k]]) : int(off[ev_at[k + 1]])].to_pybytes(), offer_id.slice(int(of_at[k]), int(ms[k])))
            for k in range(len(cols))
        ]


_EVENT_FIELDS = ("home", "uid", "offs", "route", "dep", "rt", "los", "cabin", "adults", "children", "infants")
_OFFER_FIELDS = ("o_sched", "o_dep", "seats_left", "bucket", "o_cabin", "amount", "cur")


def _concat_columns(cols: list[EventColumns], ev_at: np.ndarray) -> EventColumns:
    """Several chunks' columns as one (search and session indices shifted); day/hour of the first."""
    sess_at = np.r_[0, np.cumsum([len(c.sess_bytes) // 8 for c in cols])]
    return EventColumns(
        day=cols[0].day, hour=cols[0].hour, n=int(ev_at[-1]),
        event_bytes=b"".join(c.event_bytes for c in cols), sess_bytes=b"".join(c.sess_bytes for c in cols),
        sess=np.concatenate([c.sess + sess_at[k] for k, c in enumerate(cols)]),
        o_search=np.concatenate([c.o_search + ev_at[k] for k, c in enumerate(cols)]),
        **{f: np.concatenate([getattr(c, f) for c in cols]) for f in _EVENT_FIELDS + _OFFER_FIELDS},
    )


def _cat(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings (large_string)."""
    L = pa.large_string()
    args = [pa.scalar(p, L) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", L))


def _fixed_width(data: bytes, width: int, count: int) -> pa.Array:
    """``count`` ASCII strings of ``width`` bytes laid end to end, as a string array (no copy)."""
    offsets = np.arange(0, width * (count + 1), width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))


def _json_numbers(values: list) -> pa.Array:
    """Each number as orjson writes it (same shortest round-trip floats), as a string array."""
    L = pa.large_string()
    if not values:
        return pa.array([], L)
    text = np.frombuffer(orjson.dumps(values), np.uint8)[1:-1]  # b"[a,b,c]": numbers have no commas
    comma = np.flatnonzero(text == ord(","))
    digits = np.delete(text, comma)
    offsets = np.concatenate(([0], comma - np.arange(len(comma)), [len(digits)])).astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))


_ADULTS_P = np.array([0.56, 0.28, 0.065, 0.06, 0.015, 0.01, 0.005, 0.003, 0.002])
_ADULTS_P = _ADULTS_P / _ADULTS_P.sum()


def _percent_table(share: dict, keys) -> list[str]:
    """100 slots filled by share: a user's hash picks a stable device / loyalty tier."""
    w = _weights(share, keys)
    counts = np.floor(w * 100).astype(int)
    counts[np.argmax(w)] += 100 - counts.sum()
    return [k for k, c in zip(keys, counts) for _ in range(c)]


_DEVICES = _percent_table(WorldParams().device_share, contract.DEVICES)
_TIERS = _percent_table(WorldParams().loyalty_share, contract.LOYALTY_TIERS)


def validate_options(*, seed: int, days: int, searches_per_day: int, anomaly_rate: float, chunk_size: int = DEFAULT_CHUNK_SIZE,
                     start_date: dt.date | None = None) -> None:
    """Reject impossible options with a message a user can act on (ValueError)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and 2^64-1 ({SEED_MAX}), got {seed}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if searches_per_day < 1:
        raise ValueError(f"searches per day must be >= 1, got {searches_per_day}")
    if not 0.0 <= anomaly_rate <= 0.5:
        raise ValueError(f"anomaly rate must be between 0 and 0.5, got {anomaly_rate}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk_size}")
    if start_date is not None:
        if not isinstance(start_date, dt.date):
            raise ValueError(f"start date must be a date, got {start_date!r}")
        if not FIRST_DATE <= start_date <= LAST_DATE or (LAST_DATE - start_date).days < days - 1:
            raise ValueError(f"search days must lie in {FIRST_DATE.isoformat()}..{LAST_DATE.isoformat()},"
                             f" got {days} day(s) from {start_date.isoformat()}")
