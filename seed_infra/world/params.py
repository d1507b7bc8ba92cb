"""The world's tunable parameters: every effect the generator simulates, in one documented place.

`truth/world.json` dumps these tables verbatim (``WorldParams.to_dict``), so evaluation and
readers can check a model against the effects the world really has (WORLD.md lists the domain facts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields, replace

# What the generator accepts: any unsigned 64-bit seed (sub-seeds are derived with numpy's
# SeedSequence), and search days in this range. Public holidays come from the `holidays` package,
# which covers most countries from the 1970s-2010s to 2100: outside its years a country simply has
# no holiday effect.
SEED_MAX = 2**64 - 1
FIRST_DATE = dt.date(1971, 1, 1)
LAST_DATE = dt.date(2199, 12, 31)

# Airports of the network: (IATA, size) with size ~ annual passengers in millions (public orders of
# magnitude). Mostly North America, plus a few international hubs. Coordinates, country and time zone
# come from `airportsdata`.
AIRPORTS: tuple[tuple[str, float], ...] = (
    ("ATL", 104), ("LAX", 75), ("ORD", 74), ("DFW", 81), ("DEN", 78), ("JFK", 62), ("SFO", 50),
    ("SEA", 50), ("LAS", 57), ("MCO", 57), ("EWR", 49), ("CLT", 53), ("PHX", 48), ("IAH", 46),
    ("MIA", 52), ("BOS", 40), ("MSP", 37), ("FLL", 35), ("DTW", 32), ("PHL", 28), ("LGA", 33),
    ("BWI", 27), ("SLC", 27), ("SAN", 25), ("IAD", 25), ("DCA", 25), ("TPA", 24), ("PDX", 16),
    ("HNL", 21), ("AUS", 22), ("BNA", 23), ("MDW", 22), ("DAL", 17), ("STL", 15), ("RDU", 15),
    ("MSY", 14), ("YYZ", 45), ("YVR", 26), ("YUL", 21), ("YYC", 18), ("MEX", 48), ("CUN", 32),
    ("GDL", 17), ("LHR", 79), ("CDG", 67), ("FRA", 61), ("AMS", 62), ("MAD", 60), ("NRT", 33),
    ("DXB", 87), ("SIN", 59),
)

# Airlines: (IATA, home country, kind, price level, load-factor effect, hubs).
# Legacy carriers price above low-cost carriers (LCCs); LCCs fill their planes a bit more.
AIRLINES: tuple[tuple[str, str, str, float, float, tuple[str, ...]], ...] = (
    ("AA", "US", "legacy", 1.18, 0.00, ("DFW", "CLT", "MIA", "ORD", "PHX", "PHL")),
    ("DL", "US", "legacy", 1.22, 0.01, ("ATL", "DTW", "MSP", "SLC", "JFK", "SEA")),
    ("UA", "US", "legacy", 1.20, 0.00, ("ORD", "DEN", "IAH", "SFO", "EWR", "IAD")),
    ("AS", "US", "hybrid", 1.00, 0.00, ("SEA", "PDX", "SFO", "LAX")),
    ("B6", "US", "hybrid", 0.95, 0.00, ("JFK", "BOS", "FLL", "MCO")),
    ("WN", "US", "low_cost", 0.82, 0.03, ("LAS", "DEN", "MDW", "DAL", "BWI", "PHX")),
    ("NK", "US", "low_cost", 0.70, 0.04, ("FLL", "LAS", "MCO", "DTW")),
    ("AC", "CA", "legacy", 1.15, 0.00, ("YYZ", "YVR", "YUL", "YYC")),
    ("AM", "MX", "legacy", 1.05, 0.00, ("MEX", "GDL")),
    ("BA", "GB", "legacy", 1.25, 0.00, ("LHR",)),
    ("AF", "FR", "legacy", 1.20, 0.00, ("CDG",)),
    ("LH", "DE", "legacy", 1.22, 0.00, ("FRA",)),
)

# Quoting currency of each user country (point of sale); the contract's FX table converts.
COUNTRY_CURRENCY: dict[str, str] = {
    "US": "USD", "CA": "CAD", "MX": "MXN", "GB": "GBP", "FR": "EUR", "DE": "EUR", "NL": "EUR",
    "ES": "EUR", "JP": "JPY", "AE": "AED", "SG": "SGD",
}

# Fare buckets per cabin, cheapest first. The cheapest open bucket sets the price; a bucket closes
# when the cabin's fill passes its threshold, so prices step up as the flight fills.
FARE_BUCKETS: dict[str, tuple[str, ...]] = {
    "economy": ("L", "V", "Q", "H", "M", "B", "Y"),
    "premium_economy": ("N", "E", "W"),
    "business": ("I", "D", "C", "J"),
    "first": ("A", "F"),
}


@dataclass(frozen=True)
class WorldParams:
    """Every effect of the world, with its size. Defaults are calibrated (see tests/world)."""

    # --- network -------------------------------------------------------------------------------
    n_routes: int = 110  # undirected airport pairs kept by the gravity model (both directions flown)
    gravity_distance_exponent: float = 0.8  # traffic ~ size_a * size_b / distance^k
    min_route_km: float = 300.0
    widebody_above_km: float = 4000.0
    narrowbody_seats: tuple[int, ...] = (150, 160, 172, 180, 190)
    widebody_seats: tuple[int, ...] = (250, 280, 300, 340)
    cabin_seat_share: dict = field(
        default_factory=lambda: {
            "narrow": {"economy": 0.84, "premium_economy": 0.08, "business": 0.06, "first": 0.02},
            "wide": {"economy": 0.72, "premium_economy": 0.10, "business": 0.14, "first": 0.04},
        }
    )
    max_carriers_per_route: int = 4
    max_daily_frequency: int = 5

    # --- search behaviour --------------------------------------------------------------------
    cabin_search_share: dict = field(
        default_factory=lambda: {"economy": 0.80, "premium_economy": 0.08, "business": 0.10, "first": 0.02}
    )
    round_trip_share: float = 0.55
    mean_session_searches: float = 2.0
    user_home_is_origin: float = 0.85
    device_share: dict = field(default_factory=lambda: {"web": 0.45, "mobile": 0.25, "app": 0.30})
    loyalty_share: dict = field(default_factory=lambda: {"none": 0.70, "silver": 0.17, "gold": 0.09, "platinum": 0.04})
    # hourly share of searches (UTC, the market is mostly in the Americas: evening peak at 00-03 UTC)
    search_hour_weights: tuple[float, ...] = (
        6, 6, 5.5, 4.5, 3, 2, 1.5, 1.2, 1.2, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5, 5, 5, 5, 5.5, 6, 6,
    )
    # days ahead of departure: mostly 1-60 days, long tail to the horizon
    horizon_days: int = 330
    horizon_mix: dict = field(default_factory=lambda: {"near_mean_days": 18.0, "near": 0.70, "mid": 0.24, "far": 0.06})
    # route-date search intensity ~ exp(k * (structural load factor - 0.8)): the leading signal
    search_demand_sensitivity: float = 6.0
    date_candidates: int = 6

    # --- price formation (USD per passenger, one way, economy) ---------------------------------
    base_fare_usd: float = 35.0
    fare_per_km_coef: float = 0.55
    distance_exponent: float = 0.72  # cost per mile falls on long haul
    cabin_multiplier: dict = field(
        default_factory=lambda: {"economy": 1.0, "premium_economy": 1.5, "business": 3.0, "first": 4.2}
    )
    bucket_step: float = 0.10  # each closed bucket adds 10 % (compounded) to the fare
    connecting_multiplier: float = 0.84  # nonstop costs more than connecting on the same route
    competition_slope: float = 0.06  # each extra carrier on the route takes 6 % off
    competition_max: float = 1.10
    competition_min: float = 0.88
    round_trip_multiplier: float = 1.85
    short_stay_premium: float = 0.15  # round trips of <= 2 nights (business travel) cost more
    # days-to-departure curve: trough 21-90 days, steep last 2-3 weeks, sharp last days, dearer > 6 months
    dtd_near_amp: float = 0.35
    dtd_near_scale: float = 9.0
    dtd_last_amp: float = 0.30
    dtd_last_scale: float = 2.5
    dtd_far_amp: float = 0.12
    dtd_far_from: int = 120
    dtd_far_full: int = 240
    advance_purchase_fences: dict = field(default_factory=lambda: {21: 0.03, 14: 0.05, 7: 0.06})
    month_multiplier: tuple[float, ...] = (0.92, 0.90, 1.00, 0.98, 1.02, 1.12, 1.15, 1.10, 0.93, 0.96, 0.98, 1.12)
    weekday_multiplier: tuple[float, ...] = (1.02, 0.94, 0.95, 1.02, 1.08, 0.97, 1.07)  # Monday first
    hour_multiplier: dict = field(
        default_factory=lambda: {"0-6": 0.90, "6-7": 0.93, "7-10": 1.05, "10-16": 1.00, "16-20": 1.05, "20-21": 1.00, "21-24": 0.90}
    )
    holiday_price_amp: float = 0.14  # departures within 3 days of a public holiday (origin country)
    holiday_window_days: int = 3
    price_noise_sd: float = 0.015  # multiplicative log-normal noise around the structural price

    # --- demand and outcomes (final load factor) ---------------------------------------------
    lf_base: float = 0.58
    lf_route_gravity: float = 0.11  # per standard deviation of log route traffic
    lf_route_random_sd: float = 0.09
    lf_month: tuple[float, ...] = (-0.06, -0.07, 0.0, -0.02, 0.02, 0.05, 0.07, 0.05, -0.05, -0.02, -0.02, 0.05)
    lf_weekday: tuple[float, ...] = (0.03, -0.08, -0.07, 0.02, 0.08, -0.03, 0.07)
    lf_holiday: float = 0.08
    lf_hour: dict = field(default_factory=lambda: {"0-6": -0.06, "6-7": -0.02, "7-10": 0.03, "16-20": 0.03, "21-24": -0.05})
    lf_noise_sd: float = 0.025  # per-flight noise (modest next to the 0.20 width of the medium class)
    lf_min: float = 0.30
    # fraction of final bookings made by d days out: 1 / (1 + (d / half) ^ shape), per-flight jitter
    booking_half_days: float = 28.0
    booking_shape: float = 1.4
    booking_jitter_sd: float = 0.08

    # --- anomalies -----------------------------------------------------------------------------
    anomaly_factor_min: float = 2.0
    anomaly_factor_max: float = 10.0
    anomaly_spike_share: float = 0.5

    # --- incident labels (what production knows about anomalies: WORLD.md) ----------------------
    # The airline's price alerts raise a glitch with a probability that grows with its size (a x2
    # glitch is easier to miss than a x10 one); analysts review every raised offer. Glitches the
    # alerts miss are sometimes reported by partners or on social media (mistake fares, i.e. drops,
    # go viral more than spikes). Normal offers also reach the queue (the alerts' false alarms and
    # analysts' spot checks) and are cleared. Verdicts are sometimes wrong. A verdict comes hours to
    # days after the quote; one later than the review window is never recorded.
    label_alert_coverage_min: float = 0.80  # P(alerts raise a glitch) at factor 2 (or 1/2) ...
    label_alert_coverage_max: float = 0.98  # ... rising linearly in |log factor| to factor 10
    label_external_drop: float = 0.50  # P(a missed drop is reported by a partner / social media)
    label_external_spike: float = 0.15  # P(a missed spike is reported)
    label_normal_review_rate: float = 0.01  # share of normal offers reviewed (and, mostly, cleared)
    label_false_confirm_rate: float = 0.02  # a reviewed normal offer wrongly confirmed as an incident
    label_false_clear_rate: float = 0.03  # a raised glitch wrongly cleared
    label_review_delay_median_hours: float = 20.0  # log-normal delay quote -> verdict (alert review)
    label_review_delay_sigma: float = 1.0
    label_external_delay_median_hours: float = 60.0  # external reports come later
    label_external_delay_sigma: float = 0.6
    label_review_window_days: int = 7  # no verdict after this (contract.INCIDENT_REVIEW_WINDOW_DAYS)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, overrides: dict[str, str]) -> WorldParams:
        """A copy with scalar parameters replaced from ``NAME=VALUE`` strings (``--param``).

        Only numbers can be overridden; each value is checked (finite, shares in [0, 1], delays and
        sizes positive) and a ValueError names the parameter.
        """
        import math

        kinds = {f.name: f.type for f in fields(self)}
        changes: dict = {}
        for name, text in overrides.items():
            if name not in kinds:
                raise ValueError(f"unknown world parameter {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool) or not isinstance(current, (int, float)):
                raise ValueError(f"world parameter {name!r} is not a number and cannot be set here")
            try:
                value = int(text) if isinstance(current, int) else float(text)
            except ValueError:
                raise ValueError(f"world parameter {name!r} needs a {type(current).__name__}, got {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"world parameter {name!r} must be finite, got {text!r}")
            if name in _SHARES and not 0.0 <= value <= 1.0:
                raise ValueError(f"world parameter {name!r} is a probability: between 0 and 1, got {value}")
            if name in _POSITIVE and value <= 0:
                raise ValueError(f"world parameter {name!r} must be > 0, got {value}")
            if value < 0:
                raise ValueError(f"world parameter {name!r} must be >= 0, got {value}")
            changes[name] = value
        out = replace(self, **changes)
        if out.label_alert_coverage_min > out.label_alert_coverage_max:
            raise ValueError("label_alert_coverage_min must be <= label_alert_coverage_max")
        if out.anomaly_factor_min > out.anomaly_factor_max or out.anomaly_factor_min < 1:
            raise ValueError("anomaly factors need 1 <= anomaly_factor_min <= anomaly_factor_max")
        return out


# Parameters that are probabilities, and those that must be strictly positive (--param checks).
_SHARES = frozenset({
    "round_trip_share", "user_home_is_origin", "anomaly_spike_share", "label_alert_coverage_min",
    "label_alert_coverage_max", "label_external_drop", "label_external_spike", "label_normal_review_rate",
    "label_false_confirm_rate", "label_false_clear_rate", "lf_min",
})
_POSITIVE = frozenset({
    "n_routes", "min_route_km", "max_carriers_per_route", "max_daily_frequency", "mean_session_searches", "horizon_days",
    "date_candidates", "base_fare_usd", "distance_exponent", "dtd_near_scale", "dtd_last_scale", "booking_half_days",
    "booking_shape", "anomaly_factor_min", "anomaly_factor_max", "label_review_delay_median_hours",
    "label_external_delay_median_hours", "label_review_window_days", "round_trip_multiplier", "connecting_multiplier",
})


EFFECTS_DOC = {
    "price": (
        "price_usd_per_passenger = (base_fare_usd + fare_per_km_coef * distance_km^distance_exponent)"
        " * cabin_multiplier[cabin] * airline price level * competition(n carriers on route)"
        " * connecting_multiplier^(stops>0) * dtd_curve(days_to_departure) * month_multiplier"
        " * weekday_multiplier[departure weekday] * hour_multiplier[departure hour]"
        " * (1 + holiday_price_amp * max(0, 1 - days_to_nearest_holiday / (holiday_window_days + 1)))"
        " * (1 + bucket_step)^bucket_index(fare_class) * (round_trip_multiplier + short_stay_premium if"
        " length_of_stay <= 2, for round trips) * lognormal(price_noise_sd); anomalies multiply by a factor"
        " of 2-10 (spike) or 1/10-1/2 (drop)."
    ),
    "fare_buckets": "the cabin's fill at search time picks the bucket: fill quantiles split evenly across the cabin's buckets (cheapest first)",
    "seats_left": "cabin seats * (1 - final_load_factor * booked_fraction(days_to_departure)); falls as departure nears, faster for high-demand flights",
    "load_factor": (
        "final_load_factor = clip(lf_base + route effect (gravity + random) + lf_month + lf_weekday"
        " + lf_holiday (near a holiday) + lf_hour + airline effect + normal(lf_noise_sd), lf_min, 1)"
    ),
    "search_volume": "route share ~ gravity; departure dates drawn with weight exp(search_demand_sensitivity * (structural route-date load factor - 0.8))",
    "incident_labels": (
        "labels/incidents: per glitch, P(alerts raise it) = label_alert_coverage_min + (max - min) *"
        " clip((|ln factor| - ln 2) / (ln 10 - ln 2), 0, 1); a raised glitch is confirmed unless wrongly cleared"
        " (label_false_clear_rate); a missed one is reported externally with label_external_drop / _spike"
        " (always confirmed); label_normal_review_rate of normal offers are reviewed, label_false_confirm_rate of"
        " them wrongly confirmed. Verdict delay ~ lognormal(median, sigma) hours; verdicts later than"
        " label_review_window_days are dropped. Rows are partitioned by the verdict's UTC date."
    ),
    "currency": "price.amount = USD price * FX_PER_USD[currency of the user's country], 2 decimals (JPY 0)",
}
