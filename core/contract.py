"""The data contract: the one place that says what the data looks like.

Everything that produces or consumes flight-search data imports this module:
the world generator and Kinesis producer (raw events), the Glue ETL (raw -> curated),
the processing step (curated -> splits), data quality, training, evaluation and inference.

Layers:
- **Raw search event**: one nested JSON document per flight search, as the front end sends it
  to Kinesis (``SearchEvent``, validated with pydantic).
- **Curated offers**: one row per offered itinerary, flattened and enriched by the ETL
  (``CURATED_OFFER_SCHEMA``), Parquet partitioned by ``dt`` (the search date, UTC).
- **Flight outcomes**: one row per operated flight, observable after departure
  (``FLIGHT_OUTCOME_SCHEMA``); the final load factor gives the demand class.
- **Incident labels**: price incidents confirmed (or cleared) by the airline's review of its price
  alerts and by external reports: partial, delayed, slightly wrong (``INCIDENT_LABEL_SCHEMA``);
  what production trains and gates the anomaly model on.
- **Truth**: what no airline knows (noise-free price, injected anomalies), written by the
  generator only, keyed by ``offer_id``, never a feature (``TRUTH_OFFER_SCHEMA``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# ---------------------------------------------------------------------------------------------
# Domain vocabularies
# ---------------------------------------------------------------------------------------------
CABINS = ("economy", "premium_economy", "business", "first")
TRIP_TYPES = ("one_way", "round_trip")
DEVICES = ("web", "mobile", "app")
LOYALTY_TIERS = ("none", "silver", "gold", "platinum")
# The demand classes are a pipeline fact too (report paths); defined once, in the stdlib-only module.
from core.pipeline_contract import DEMAND_CLASSES  # noqa: E402,F401

# Demand class from a flight's final load factor (WORLD.md: low < 70 %, medium 70-90 %, high > 90 %).
DEMAND_LOW_BELOW = 0.70
DEMAND_HIGH_ABOVE = 0.90

# Fixed reference FX rates (units of currency per 1 USD). Prices are curated in USD with these
# rates; the generator quotes local-currency prices with the same table, so conversion is exact.
FX_PER_USD: dict[str, float] = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "CAD": 1.36,
    "MXN": 17.1,
    "JPY": 151.0,
    "AUD": 1.52,
    "CHF": 0.88,
    "SGD": 1.35,
    "AED": 3.67,
    "BRL": 5.0,
    "INR": 83.0,
}
CURRENCIES = tuple(FX_PER_USD)

# Sanity bounds used by the ETL to quarantine impossible records (not anomalies: those stay).
MIN_PRICE_USD = 1.0
MAX_PRICE_USD = 100_000.0
MAX_RAW_RECORD_BYTES = 1_000_000  # Kinesis' record limit is 1 MiB
MAX_OFFERS_PER_SEARCH = 200
MAX_BOOKING_HORIZON_DAYS = 366


def demand_class(load_factor: float) -> str:
    """Demand class of a flight from its final load factor (0..1)."""
    if load_factor < DEMAND_LOW_BELOW:
        return "low"
    if load_factor > DEMAND_HIGH_ABOVE:
        return "high"
    return "medium"


def to_usd(amount: float, currency: str) -> float:
    """Convert an amount in ``currency`` to USD with the contract's reference rates."""
    return amount / FX_PER_USD[currency]


# ---------------------------------------------------------------------------------------------
# Raw search event (what Kinesis carries, what Firehose writes to S3 raw as JSON lines)
# ---------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)


class Session(_Strict):
    session_id: str
    user_id: str
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    device: Literal["web", "mobile", "app"]
    loyalty_tier: Literal["none", "silver", "gold", "platinum"]


class Passengers(_Strict):
    adults: int = Field(ge=1, le=9)
    children: int = Field(default=0, ge=0, le=8)
    infants: int = Field(default=0, ge=0, le=4)


class Query(_Strict):
    origin: str = Field(min_length=3, max_length=3, description="IATA airport code")
    destination: str = Field(min_length=3, max_length=3, description="IATA airport code")
    departure_date: dt.date
    return_date: dt.date | None = None
    trip_type: Literal["one_way", "round_trip"]
    cabin: Literal["economy", "premium_economy", "business", "first"]
    passengers: Passengers


class Price(_Strict):
    amount: float = Field(description="fare per passenger, in `currency`, for the whole trip")
    currency: str = Field(min_length=3, max_length=3)


class Offer(_Strict):
    offer_id: str
    airline: str = Field(min_length=2, max_length=3, description="IATA airline code")
    flight_number: str = Field(description="marketing flight number of the outbound first leg, e.g. 'AA123'")
    departure_time: dt.datetime = Field(description="outbound local departure time")
    arrival_time: dt.datetime
    stops: int = Field(ge=0, le=3)
    duration_minutes: int = Field(gt=0)
    fare_class: str = Field(min_length=1, max_length=1, description="booking class (fare bucket)")
    seats_left: int = Field(ge=0, description="seats left in this fare bucket's cabin")
    price: Price


class SearchEvent(_Strict):
    """One flight search, as the front end posts it to the search stream."""

    schema_version: int = SCHEMA_VERSION
    event_id: str
    event_time: dt.datetime = Field(description="UTC, ISO 8601 with 'Z'")
    session: Session
    query: Query
    offers: list[Offer]


# Kinesis partition key: the route spreads load across shards while keeping a route's events ordered.
def partition_key(event: dict) -> str:
    q = event.get("query") or {}
    return f"{q.get('origin', '???')}-{q.get('destination', '???')}"


# ---------------------------------------------------------------------------------------------
# Curated offers (one row per offered itinerary), written by the ETL as Parquet partitioned by dt
# ---------------------------------------------------------------------------------------------
PARTITION_COLUMN = "dt"  # search date, 'YYYY-MM-DD' (UTC)

# (name, type, description). Order matters: it is the Parquet column order.
_CURATED_COLUMNS: list[tuple[str, pa.DataType, str]] = [
    # identity and lineage
    ("offer_id", pa.string(), "unique offer id (primary key)"),
    ("event_id", pa.string(), "search event id (deduplication key)"),
    ("event_time", pa.timestamp("us", tz="UTC"), "search time"),
    ("session_id", pa.string(), "session"),
    ("user_id", pa.string(), "user"),
    ("user_country", pa.string(), "user's country"),
    ("device", pa.string(), "web|mobile|app"),
    ("loyalty_tier", pa.string(), "none|silver|gold|platinum"),
    # query
    ("origin", pa.string(), "IATA origin"),
    ("destination", pa.string(), "IATA destination"),
    ("route", pa.string(), "'ORG-DST'"),
    ("departure_date", pa.date32(), "outbound date"),
    ("return_date", pa.date32(), "return date (null for one way)"),
    ("trip_type", pa.string(), "one_way|round_trip"),
    ("cabin", pa.string(), "economy|premium_economy|business|first"),
    ("adults", pa.int16(), "adults"),
    ("children", pa.int16(), "children"),
    ("infants", pa.int16(), "infants"),
    ("passengers", pa.int16(), "adults + children + infants"),
    # offer
    ("airline", pa.string(), "IATA airline"),
    ("flight_number", pa.string(), "outbound first-leg flight number"),
    ("flight_key", pa.string(), "'AIRLINE-FLIGHTNUMBER-YYYY-MM-DD': joins flight outcomes"),
    ("departure_time", pa.timestamp("us"), "outbound local departure time"),
    ("arrival_time", pa.timestamp("us"), "outbound local arrival time"),
    ("stops", pa.int16(), "number of stops"),
    ("duration_minutes", pa.int32(), "outbound duration"),
    ("fare_class", pa.string(), "booking class"),
    ("seats_left", pa.int32(), "seats left"),
    ("price_amount", pa.float64(), "price per passenger as quoted"),
    ("currency", pa.string(), "quoted currency"),
    ("price_usd", pa.float64(), "price per passenger in USD (the price model's target)"),
    # engineered features
    ("distance_km", pa.float64(), "great-circle distance origin-destination"),
    ("is_domestic", pa.bool_(), "origin and destination in the same country"),
    ("days_to_departure", pa.int32(), "departure_date - search date"),
    ("length_of_stay", pa.int32(), "return_date - departure_date (0 for one way)"),
    ("search_hour", pa.int16(), "hour of the search (UTC)"),
    ("search_weekday", pa.int16(), "weekday of the search, Monday=0"),
    ("departure_weekday", pa.int16(), "weekday of departure, Monday=0"),
    ("departure_month", pa.int16(), "month of departure"),
    ("departure_hour", pa.int16(), "local hour of departure"),
    ("is_weekend_departure", pa.bool_(), "Friday or Sunday departure"),
    ("days_to_nearest_holiday", pa.int32(), "|departure - nearest public holiday| in origin's country"),
    ("is_holiday_window", pa.bool_(), "departure within 3 days of a public holiday"),
    ("is_nonstop", pa.bool_(), "stops == 0"),
    ("is_red_eye", pa.bool_(), "departure between 21:00 and 05:59 local"),
    ("num_offers_in_search", pa.int32(), "offers returned by the search"),
    ("num_airlines_in_search", pa.int32(), "distinct airlines in the search"),
    ("price_rank_in_search", pa.int32(), "1 = cheapest offer in its search"),
    ("competitor_min_price_usd", pa.float64(), "cheapest other-airline offer in the same search (null if none)"),
    ("competitor_median_price_usd", pa.float64(), "median other-airline price in the same search (null if none)"),
    ("route_searches_day", pa.int32(), "searches for this route on the search day"),
    ("route_date_searches_day", pa.int32(), "searches for this route and departure date on the search day"),
    ("route_cabin_median_price_usd", pa.float64(), "median price of route+cabin on the search day"),
    ("price_vs_route_median", pa.float64(), "price_usd / route_cabin_median_price_usd"),
    ("price_vs_competitor_median", pa.float64(), "price_usd / competitor_median_price_usd (null if none)"),
    ("etl_run_id", pa.string(), "the ETL run that wrote the row"),
]

CURATED_OFFER_SCHEMA = pa.schema(
    [pa.field(n, t, metadata={"description": d}) for n, t, d in _CURATED_COLUMNS]
    + [pa.field(PARTITION_COLUMN, pa.string(), metadata={"description": "search date partition"})]
)
CURATED_COLUMNS = [n for n, _, _ in _CURATED_COLUMNS] + [PARTITION_COLUMN]
CURATED_COLUMN_DESCRIPTIONS = {n: d for n, _, d in _CURATED_COLUMNS}

# ---------------------------------------------------------------------------------------------
# Flight outcomes (observable after departure: the revenue-management system's export)
# ---------------------------------------------------------------------------------------------
FLIGHT_OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("flight_key", pa.string()),
        pa.field("airline", pa.string()),
        pa.field("flight_number", pa.string()),
        pa.field("origin", pa.string()),
        pa.field("destination", pa.string()),
        pa.field("departure_date", pa.date32()),
        pa.field("capacity", pa.int32()),
        pa.field("seats_sold", pa.int32()),
        pa.field("load_factor", pa.float64()),
        pa.field("demand_class", pa.string()),
    ]
)

# ---------------------------------------------------------------------------------------------
# Incident labels (the price-integrity team's feed: what production knows about anomalies)
# ---------------------------------------------------------------------------------------------
# One row per reviewed offer, Parquet under ``labels/incidents/dt=<confirmation date>/``, plus a
# ``_manifest.json`` (``INCIDENT_MANIFEST``) saying up to when the feed is complete. An offer that
# is not in the feed was never reviewed: it is not a confirmed negative.
INCIDENT_LABEL_SCHEMA = pa.schema(
    [
        pa.field("offer_id", pa.string(), metadata={"description": "the reviewed offer (curated offer_id)"}),
        pa.field("event_id", pa.string(), metadata={"description": "its search event (Model Monitor eventId)"}),
        pa.field("search_time", pa.timestamp("us", tz="UTC"), metadata={"description": "when the price was quoted"}),
        pa.field("confirmed_at", pa.timestamp("us", tz="UTC"), metadata={"description": "when the verdict was recorded"}),
        pa.field("is_incident", pa.bool_(), metadata={"description": "true: confirmed price incident; false: reviewed and cleared"}),
        pa.field("source", pa.string(), metadata={"description": "alert_review|partner|social_media"}),
    ]
)
INCIDENT_COLUMNS = tuple(INCIDENT_LABEL_SCHEMA.names)
INCIDENT_SOURCES = ("alert_review", "partner", "social_media")
INCIDENT_MANIFEST = "_manifest.json"  # {"as_of": ISO time, "review_window_days": N, "schema_version": 1}
# Reviews of an offer are recorded within this many days of its quote; after that an unreviewed
# offer stays unreviewed (the price-integrity team's service level).
INCIDENT_REVIEW_WINDOW_DAYS = 7

# ---------------------------------------------------------------------------------------------
# Truth (generator only; evaluation may read it, features never may)
# ---------------------------------------------------------------------------------------------
TRUTH_OFFER_SCHEMA = pa.schema(
    [
        pa.field("offer_id", pa.string()),
        pa.field("true_price_usd", pa.float64(), metadata={"description": "noise-free structural price"}),
        pa.field("is_anomaly", pa.bool_(), metadata={"description": "an injected glitch price"}),
        pa.field("anomaly_kind", pa.string(), metadata={"description": "spike|drop|null"}),
        pa.field("anomaly_factor", pa.float64(), metadata={"description": "observed/clean price for anomalies"}),
    ]
)
TRUTH_COLUMNS = tuple(TRUTH_OFFER_SCHEMA.names)

# ---------------------------------------------------------------------------------------------
# Model features (what a model may see). Labels and truth are never in these lists;
# evaluation's leakage check enforces it.
# ---------------------------------------------------------------------------------------------
PRICE_TARGET = "price_usd"
PRICE_CATEGORICAL = ["origin", "destination", "route", "airline", "cabin", "trip_type", "fare_class", "device", "user_country"]
PRICE_NUMERIC = [
    "distance_km",
    "is_domestic",
    "days_to_departure",
    "length_of_stay",
    "departure_weekday",
    "departure_month",
    "departure_hour",
    "is_weekend_departure",
    "days_to_nearest_holiday",
    "is_holiday_window",
    "stops",
    "is_nonstop",
    "is_red_eye",
    "duration_minutes",
    "seats_left",
    "passengers",
    "search_hour",
    "search_weekday",
    "route_searches_day",
    "route_date_searches_day",
]
PRICE_FEATURES = PRICE_NUMERIC + PRICE_CATEGORICAL

ANOMALY_FEATURES = [
    "price_vs_route_median",
    "price_vs_competitor_median",
    "price_rank_in_search",
    "num_offers_in_search",
]

# Calendar-driven features: they move with the calendar even in a quiet market, so a monitoring
# window (a day, an hour) cannot be compared with a baseline spanning weeks on their distribution.
# - clock: a function of the request time; a daily window holds one search weekday, an hourly one one hour;
# - departure calendar: where the searched departure dates fall in the year; next month's traffic
#   departs in other months and at other distances to the holidays than the baseline's did.
# Model Monitor baselines give them ``perform_comparison: Disabled`` (``monitoringConfigOverrides``)
# and still check their type, completeness and domain. Not here: features that only look calendar-like
# but whose mix a quiet market keeps (days_to_departure, departure_weekday: docs/monitoring.md).
CLOCK_FEATURES = ("search_hour", "search_weekday")
DEPARTURE_CALENDAR_FEATURES = ("departure_month", "days_to_nearest_holiday", "is_holiday_window")
CALENDAR_FEATURES = CLOCK_FEATURES + DEPARTURE_CALENDAR_FEATURES
# Market-state features: the inventory a quote is made from (the open fare bucket, the seats left in
# it). They follow how full the flights are, which moves with the season's load factors: a quiet
# month's daily windows differ from a training window by more than sampling noise (docs/monitoring.md,
# section 4). Unlike the calendar features, a real change in them matters (a demand collapse empties
# flights), so their distribution is still compared, against a wider threshold
# (``monitoringConfigOverrides.comparison_threshold``).
MARKET_STATE_FEATURES = ("fare_class", "seats_left")
MARKET_STATE_DRIFT_THRESHOLD = 0.2

# Features whose value belongs to a group of requests, not to one request: on a search day, every
# request of the group carries the same value. A monitoring window holds as many independent draws
# of such a feature as it holds groups, so the drift test counts the groups, named by request fields
# (within a search day, a route and a days-to-departure name a route and departure date):
# - the query: a search fixes route, dates, trip and cabin for every offer it returns (and the
#   demand model's flight-days of a route-date share them too);
# - the flight's cabin that day: its open fare bucket and the seats left in it are the same in every
#   search that quotes it;
# - route and route-date search volumes of the day;
# - the route itself (its distance, whether it is domestic).
_ROUTE_DATE = ("route", "days_to_departure")
_FLIGHT_CABIN = ("route", "airline", "days_to_departure", "departure_hour", "cabin")
SHARED_VALUE_UNITS: dict[str, tuple[str, ...]] = {
    **{f: _ROUTE_DATE for f in ("route", "origin", "destination", "days_to_departure", "length_of_stay", "trip_type",
                                "cabin", "departure_weekday", "departure_month", "is_weekend_departure",
                                "days_to_nearest_holiday", "is_holiday_window")},
    **{f: _FLIGHT_CABIN for f in ("fare_class", "seats_left")},
    **{f: ("route",) for f in ("route_searches_day", "distance_km", "is_domestic")},
    **{f: _ROUTE_DATE for f in ("route_date_searches_day", "route_date_searches_cum", "route_date_searches_7d",
                                "route_date_searches_prev_7d", "route_date_searches_trend", "route_date_share_of_route")},
}

DEMAND_TARGET = "demand_class"
# Columns never allowed as model inputs: labels, truth, identifiers and lineage.
FORBIDDEN_FEATURES = {
    "price_usd",
    "price_amount",
    "demand_class",
    "load_factor",
    "seats_sold",
    *TRUTH_COLUMNS,
    "is_incident",
    "confirmed_at",
    "event_id",
    "session_id",
    "user_id",
    "etl_run_id",
}
