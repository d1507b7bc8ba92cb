"""Small contract-conforming worlds for the data-quality tests (no generator or Spark needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from core import contract

AIRPORTS = {"JFK": "US", "LAX": "US", "ORD": "US", "LHR": "GB", "CDG": "FR", "FRA": "DE", "NRT": "JP", "SIN": "SG"}
CABIN_P = {"economy": 0.7, "premium_economy": 0.12, "business": 0.13, "first": 0.05}
CABIN_MULT = {"economy": 1.0, "premium_economy": 1.7, "business": 4.0, "first": 7.0}
END = dt.date(2026, 3, 10)


def make_offers(days: int = 6, searches_per_day: int = 60, offers_per_search: int = 6, seed: int = 0, end: dt.date = END) -> pd.DataFrame:
    """Curated offers with the contract's columns and types (via Arrow), plausible values."""
    rng = np.random.default_rng(seed)
    rows = []
    codes = list(AIRPORTS)
    for d in range(days):
        day = end - dt.timedelta(days=days - 1 - d)
        for s in range(searches_per_day):
            eid = f"e-{seed}-{day:%Y%m%d}-{s}"
            org, dst = rng.choice(codes, 2, replace=False)
            cabin = rng.choice(list(CABIN_P), p=list(CABIN_P.values()))
            dtd = int(rng.integers(1, 120))
            dep = day + dt.timedelta(days=dtd)
            round_trip = rng.random() < 0.6
            ret = dep + dt.timedelta(days=int(rng.integers(2, 14))) if round_trip else None
            t = dt.datetime(day.year, day.month, day.day, int(rng.integers(0, 24)), int(rng.integers(0, 60)), tzinfo=dt.UTC)
            dist = float(rng.uniform(500, 10_000))
            n_airlines = int(rng.integers(1, 4))
            for o in range(offers_per_search):
                airline = ["AA", "BA", "LH"][o % n_airlines]
                price = (60 + 0.9 * dist**0.75) * CABIN_MULT[cabin] * float(rng.lognormal(0, 0.1))
                cur = "USD" if AIRPORTS[org] == "US" else "EUR"
                dep_time = dt.datetime(dep.year, dep.month, dep.day, int(rng.integers(0, 24)))
                rows.append(
                    {
                        "offer_id": f"{eid}-{o}", "event_id": eid, "event_time": t, "session_id": f"s-{s}", "user_id": f"u-{s % 40}",
                        "user_country": AIRPORTS[org], "device": rng.choice(contract.DEVICES), "loyalty_tier": "none",
                        "origin": org, "destination": dst, "route": f"{org}-{dst}", "departure_date": dep, "return_date": ret,
                        "trip_type": "round_trip" if round_trip else "one_way", "cabin": cabin, "adults": 1, "children": 0,
                        "infants": 0, "passengers": 1, "airline": airline, "flight_number": f"{airline}{100 + o}",
                        "flight_key": f"{airline}-{airline}{100 + o}-{dep.isoformat()}", "departure_time": dep_time,
                        "arrival_time": dep_time + dt.timedelta(hours=5), "stops": o % 2, "duration_minutes": 300,
                        "fare_class": "Y", "seats_left": int(rng.integers(0, 9)), "price_amount": price * contract.FX_PER_USD[cur],
                        "currency": cur, "price_usd": price, "distance_km": dist, "is_domestic": AIRPORTS[org] == AIRPORTS[dst],
                        "days_to_departure": dtd, "length_of_stay": (ret - dep).days if ret else 0, "search_hour": t.hour,
                        "search_weekday": day.weekday(), "departure_weekday": dep.weekday(), "departure_month": dep.month,
                        "departure_hour": dep_time.hour, "is_weekend_departure": dep.weekday() in (4, 6),
                        "days_to_nearest_holiday": 10, "is_holiday_window": False, "is_nonstop": o % 2 == 0, "is_red_eye": False,
                        "num_offers_in_search": offers_per_search, "num_airlines_in_search": n_airlines,
                        "price_rank_in_search": o + 1, "competitor_min_price_usd": None if n_airlines == 1 else price * 0.9,
                        "competitor_median_price_usd": None if n_airlines == 1 else price, "route_searches_day": 5,
                        "route_date_searches_day": 1, "route_cabin_median_price_usd": price,
                        "price_vs_route_median": 1.0, "price_vs_competitor_median": None if n_airlines == 1 else 1.0,
                        "etl_run_id": "run-1", "dt": day.isoformat(),
                    }
                )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=contract.CURATED_OFFER_SCHEMA).to_pandas()


def make_flights(offers: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The demand table: one row per (flight_key, search date) with a demand class."""
    rng = np.random.default_rng(seed)
    f = offers[["flight_key", "dt"]].drop_duplicates().reset_index(drop=True)
    f["demand_class"] = rng.choice(contract.DEMAND_CLASSES, size=len(f), p=[0.3, 0.5, 0.2])
    return f


def write_curated(df: pd.DataFrame, root: Path) -> Path:
    """Write offers as Spark would: ``root/offers/dt=YYYY-MM-DD/part-*.parquet``."""
    offers = root / "offers"
    table = pa.Table.from_pandas(df, schema=contract.CURATED_OFFER_SCHEMA, preserve_index=False)
    part = pads.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
    pads.write_dataset(table, offers, format="parquet", partitioning=part, basename_template="part-{i}.parquet")
    return offers


def write_splits(offers: pd.DataFrame, flights: pd.DataFrame, root: Path) -> Path:
    """Time-split offers and flights as Preprocess would: ``root/{train,validation,test}/{offers,flights}.parquet``."""
    days = sorted(offers["dt"].unique())
    n = len(days)
    cuts = {"train": days[: n - 2], "validation": days[n - 2 : n - 1], "test": days[n - 1 :]}
    for split, ds in cuts.items():
        d = root / split
        d.mkdir(parents=True)
        o = offers[offers["dt"].isin(ds)]
        pa.Table.from_pandas(o, schema=contract.CURATED_OFFER_SCHEMA, preserve_index=False).to_pandas().to_parquet(d / "offers.parquet", index=False)
        flights[flights["dt"].isin(ds)].to_parquet(d / "flights.parquet", index=False)
    return root


@pytest.fixture(scope="session")
def clean_offers() -> pd.DataFrame:
    return make_offers()


@pytest.fixture(scope="session")
def clean_flights(clean_offers) -> pd.DataFrame:
    return make_flights(clean_offers)


@pytest.fixture(scope="session")
def reference(clean_offers, clean_flights) -> dict:
    """A reference from a different (but equally clean) world than the one validated."""
    from data_quality.reference import build_reference

    other = make_offers(days=4, searches_per_day=80, seed=7)
    return build_reference(other, make_flights(other, seed=7), source="tests")
