"""The flight-search world generator: search events, flight outcomes and the truth behind them.

How it stays fast and lean: the network (routes, schedules) is built once; searches are generated
per (day, hour, part) chunk of at most ``chunk_size`` searches with numpy, each chunk seeded from
``(seed, day, hour, part)`` so the output does not depend on chunking across runs, and written out
before the next chunk starts. Per-flight hidden state (final load factor, booking-curve jitter) is
a counter-based hash of ``(seed, schedule, departure day)``: no table of flights is kept, only the
set of flight ids seen (bounded by schedules x booking horizon) for the outcomes file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from processing import contract
from seed_infra.world.network import build_network
from seed_infra.world.params import COUNTRY_CURRENCY, FARE_BUCKETS, WorldParams

GENERATOR_VERSION = "1"
DEFAULT_START_DATE = dt.date(2026, 1, 5)
DEFAULT_DAYS = 60
DEFAULT_SEARCHES_PER_DAY = 1500
DEFAULT_ANOMALY_RATE = 0.005
DEFAULT_CHUNK_SIZE = 20_000
_FLIGHT_CODE = 1_000_000  # flight id = schedule * _FLIGHT_CODE + departure-day index
_CABIN_INDEX = {c: i for i, c in enumerate(contract.CABINS)}


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


def _hash_uniform(seed: int, stream: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Uniform(0, 1) that depends only on (seed, stream, a, b)."""
    with np.errstate(over="ignore"):
        key = (
            np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
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
class Chunk:
    """One generated batch of searches, before serialisation (all arrays aligned per offer)."""

    events: list[dict]
    offer_id: list[str]
    true_price_usd: np.ndarray
    observed_usd: np.ndarray
    is_anomaly: np.ndarray
    anomaly_factor: np.ndarray
    cabin: np.ndarray
    flight_codes: np.ndarray  # unique flight ids offered in this chunk


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
    ) -> None:
        validate_options(seed=seed, days=days, searches_per_day=searches_per_day, anomaly_rate=anomaly_rate, chunk_size=chunk_size)
        self.seed, self.start_date, self.days = seed, start_date, days
        self.searches_per_day, self.anomaly_rate, self.chunk_size = searches_per_day, anomaly_rate, chunk_size
        self.p = p = params or WorldParams()
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
        self.devices = np.array(contract.DEVICES)
        self.tiers = np.array(contract.LOYALTY_TIERS)

    # -- calendar -------------------------------------------------------------------------------
    def _holiday_distance(self, dates: list[dt.date]) -> np.ndarray:
        """Days from each date to the nearest public holiday of each airport country (`holidays`)."""
        import holidays

        countries = sorted(set(self.net.country))
        years = sorted({d.year for d in dates} | {dates[0].year - 1, dates[-1].year + 1})
        ords = np.array([d.toordinal() for d in dates])
        out = np.zeros((len(countries), len(dates)), dtype=np.int64)
        for i, c in enumerate(countries):
            hol = np.array(sorted(d.toordinal() for d in holidays.country_holidays(c, years=years)))
            pos = np.clip(np.searchsorted(hol, ords), 1, len(hol) - 1)
            out[i] = np.minimum(np.abs(ords - hol[pos - 1]), np.abs(hol[pos] - ords))
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

    def flight_load_factor(self, sched: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """Final load factor of flight (schedule, departure day): structure + per-flight noise."""
        net, p = self.net, self.p
        lf = (
            self.route_date_lf(net.s_route[sched], dep)
            + net.airline_lf[net.s_airline[sched]]
            + self.lf_hour[net.s_dep_minute[sched] // 60]
            + p.lf_noise_sd * _hash_normal(self.seed, 10, sched, dep)
        )
        return np.clip(lf, p.lf_min, 1.0)

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
        out = []
        for hour, n in enumerate(self.hour_counts(self.searches_per_day)):
            parts = max(1, -(-int(n) // self.chunk_size))
            for part in range(parts):
                size = int(n) // parts + (1 if part < int(n) % parts else 0)
                if size:
                    out.append((hour, part, size))
        return out

    def chunk(self, day: int, hour: int, part: int, n: int) -> Chunk:
        """Simulate ``n`` searches made on day ``day`` (0-based) in UTC hour ``hour``."""
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

        s_route = rng.choice(net.n_routes, size=n_sess, p=self.route_weight)
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
        o_dep = dep[o_search]
        o_dtd = dtd[o_search]
        o_cabin = cabin[o_search]
        o_route = route[o_search]
        lf = self.flight_load_factor(o_sched, o_dep)
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
        m = len(true_price)
        noisy = true_price * np.exp(p.price_noise_sd * rng.standard_normal(m))
        is_anom = rng.random(m) < self.anomaly_rate
        factor = np.exp(rng.uniform(np.log(p.anomaly_factor_min), np.log(p.anomaly_factor_max), size=m))
        spike = rng.random(m) < p.anomaly_spike_share
        factor = np.where(is_anom, np.where(spike, factor, 1.0 / factor), 1.0)
        observed_usd = noisy * factor
        currency = np.array(self.currency)[home][o_search]
        fx = np.array([contract.FX_PER_USD[c] for c in currency]) if m else np.zeros(0)
        amount = np.where(currency == "JPY", np.round(observed_usd * fx, 0), np.round(observed_usd * fx, 2))
        observed_usd = amount / fx if m else amount

        # results come back cheapest first
        order = np.lexsort((observed_usd, o_search))
        cols = (o_search, o_sched, o_dep, seats_left, bucket, o_cabin, amount, currency, true_price, observed_usd, is_anom, factor)
        o_search, o_sched, o_dep, seats_left, bucket, o_cabin, amount, currency, true_price, observed_usd, is_anom, factor = (a[order] for a in cols)

        events, offer_ids = self._events(
            day=day, hour=hour, rng=rng, n=n, sess=sess, sess_user=(home, user), offs=offs, route=route, dep=dep,
            rt=rt, los=los, cabin=cabin, adults=adults, children=children, infants=infants,
            o_search=o_search, o_sched=o_sched, o_dep=o_dep, seats_left=seats_left, bucket=bucket, o_cabin=o_cabin,
            amount=amount, currency=currency,
        )
        return Chunk(
            events=events,
            offer_id=offer_ids,
            true_price_usd=true_price,
            observed_usd=observed_usd,
            is_anomaly=is_anom,
            anomaly_factor=factor,
            cabin=o_cabin,
            flight_codes=np.unique(o_sched * _FLIGHT_CODE + o_dep),
        )

    def _events(self, *, day, hour, rng, n, sess, sess_user, offs, route, dep, rt, los, cabin, adults, children,
                infants, o_search, o_sched, o_dep, seats_left, bucket, o_cabin, amount, currency) -> tuple[list[dict], list[str]]:
        """Assemble the nested SearchEvent documents (plain dicts, JSON-ready strings for dates)."""
        net = self.net
        home, user = sess_user
        ids = rng.bytes(16 * n)
        hexes = ids.hex()
        event_ids = [
            f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
            for h in (hexes[32 * i : 32 * i + 32] for i in range(n))
        ]
        sess_ids = rng.bytes(8 * (int(sess.max()) + 1 if n else 0)).hex()
        search_day = self.start_date + dt.timedelta(days=day)
        stamp = f"{search_day.isoformat()}T{hour:02d}:"
        order = np.argsort(offs, kind="stable")  # events of a chunk come in time order

        # per-offer strings
        dep_min = net.s_dep_minute[o_sched]
        dur = net.s_duration[o_sched]
        o_route = route[o_search]
        dest = net.route_d[o_route]
        org = net.route_o[o_route]
        arr_total = dep_min + dur + self.utc_off[dest, o_dep] - self.utc_off[org, o_dep]
        arr_day = o_dep + arr_total // 1440
        arr_min = arr_total % 1440
        ds, hm = self.date_str, self._hhmm
        letters = [self.buckets[c][b] for c, b in zip(o_cabin.tolist(), bucket.tolist())]
        airline = [net.airline_code[a] for a in net.s_airline[o_sched].tolist()]
        number = net.s_number
        offers_of = np.searchsorted(o_search, np.arange(n + 1))
        sched_l, dep_l, dmin_l = o_sched.tolist(), o_dep.tolist(), dep_min.tolist()
        arrd_l, arrm_l = arr_day.tolist(), arr_min.tolist()
        stops_l, dur_l, seats_l = net.s_stops[o_sched].tolist(), dur.tolist(), seats_left.tolist()
        amount_l, cur_l = amount.tolist(), currency.tolist()
        jpy = [c == "JPY" for c in cur_l]
        amount_l = [int(a) if j else a for a, j in zip(amount_l, jpy)]

        offer_ids: list[str] = [""] * len(sched_l)
        events: list[dict] = []
        iata, cabins = net.iata, contract.CABINS
        s_l, home_l = sess.tolist(), home.tolist()
        uid_l = _mix64(home * 10_000_000 + user + (self.seed << 40)).tolist()
        route_l, dep_l_s, rt_l, los_l, cabin_l = route.tolist(), dep.tolist(), rt.tolist(), los.tolist(), cabin.tolist()
        ad_l, ch_l, in_l, offs_l, bounds = adults.tolist(), children.tolist(), infants.tolist(), offs.tolist(), offers_of.tolist()
        org_code = [iata[o] for o in net.route_o.tolist()]
        dst_code = [iata[d] for d in net.route_d.tolist()]
        for i in order.tolist():
            eid = event_ids[i]
            lo, hi = bounds[i], bounds[i + 1]
            offers = []
            for j in range(lo, hi):
                oid = f"{eid}-{j - lo:02d}"
                offer_ids[j] = oid
                offers.append({
                    "offer_id": oid,
                    "airline": airline[j],
                    "flight_number": number[sched_l[j]],
                    "departure_time": f"{ds[dep_l[j]]}T{hm[dmin_l[j]]}",
                    "arrival_time": f"{ds[arrd_l[j]]}T{hm[arrm_l[j]]}",
                    "stops": stops_l[j],
                    "duration_minutes": dur_l[j],
                    "fare_class": letters[j],
                    "seats_left": seats_l[j],
                    "price": {"amount": amount_l[j], "currency": cur_l[j]},
                })
            r, d, si = route_l[i], dep_l_s[i], s_l[i]
            h, uid = home_l[i], uid_l[i]
            ev_t = offs_l[i]
            events.append({
                "schema_version": contract.SCHEMA_VERSION,
                "event_id": eid,
                "event_time": f"{stamp}{ev_t // 60:02d}:{ev_t % 60:02d}Z",
                "session": {
                    "session_id": f"s-{sess_ids[16 * si:16 * si + 16]}",
                    "user_id": f"u-{uid:016x}",
                    "country": net.country[h],
                    "device": _DEVICES[uid % 100],
                    "loyalty_tier": _TIERS[(uid >> 8) % 100],
                },
                "query": {
                    "origin": org_code[r],
                    "destination": dst_code[r],
                    "departure_date": ds[d],
                    "return_date": ds[d + los_l[i]] if rt_l[i] else None,
                    "trip_type": "round_trip" if rt_l[i] else "one_way",
                    "cabin": cabins[cabin_l[i]],
                    "passengers": {"adults": ad_l[i], "children": ch_l[i], "infants": in_l[i]},
                },
                "offers": offers,
            })
        return events, offer_ids


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


def validate_options(*, seed: int, days: int, searches_per_day: int, anomaly_rate: float, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
    """Reject impossible options with a message a user can act on (ValueError)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if searches_per_day < 1:
        raise ValueError(f"searches per day must be >= 1, got {searches_per_day}")
    if not 0.0 <= anomaly_rate <= 0.5:
        raise ValueError(f"anomaly rate must be between 0 and 0.5, got {anomaly_rate}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk_size}")
