"""A small synthetic world in the curated schema, with a known price function, demand and glitches.

Built here (not by the real generator) so the trainer tests are fast and know the answer. Its
fixtures ``world`` and ``splits`` are shared through tests/conftest.py (tests/{core,processing,training}).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core import contract

ROUTES = [("JFK", "LAX", 3980.0, True), ("LHR", "JFK", 5540.0, False), ("SFO", "SEA", 1090.0, True),
          ("CDG", "FCO", 1100.0, False)]
AIRLINES = {"AA": 1.15, "DL": 1.10, "NK": 0.80, "B6": 0.90}
CABIN_MULT = {"economy": 1.0, "premium_economy": 1.7, "business": 4.0, "first": 6.0}
CAPACITY = 180
LF = {"low": 0.6, "medium": 0.8, "high": 0.95}


def clean_price(distance, cabin_mult, dtd, airline_mult):
    """The structural price: sub-linear in distance, x cabin, rising steeply close to departure."""
    return (40 + 0.9 * distance**0.75) * cabin_mult * (1 + 1.2 * np.exp(-dtd / 8.0)) * airline_mult


def make_world(days: int = 30, searches_per_day: int = 40, seed: int = 0, anomaly_rate: float = 0.02):
    """(curated offers, outcomes, truth) DataFrames for ``days`` search days."""
    rng = np.random.default_rng(seed)
    start = dt.date(2026, 3, 1)
    klass = {}  # (route, departure date) -> demand class (shared by the route-date's flights)
    rows = []
    for day in range(days):
        sdate = start + dt.timedelta(days=day)
        for s in range(searches_per_day):
            ri = rng.integers(len(ROUTES))
            org, dst, dist, dom = ROUTES[ri]
            dtd = int(rng.integers(1, 45))
            ddate = sdate + dt.timedelta(days=dtd)
            key = (ri, ddate)
            if key not in klass:
                klass[key] = rng.choice(["low", "medium", "high"], p=[0.3, 0.4, 0.3])
            c = klass[key]
            # high-demand route-dates get searched more: re-draw low-demand ones half the time
            if c == "low" and rng.random() < 0.5:
                continue
            cabin = rng.choice(list(CABIN_MULT), p=[0.7, 0.1, 0.15, 0.05])
            event_id = f"e{day}-{s}"
            t = pd.Timestamp(sdate, tz="UTC") + pd.Timedelta(hours=int(rng.integers(24)))
            for j, (al, am) in enumerate(AIRLINES.items()):
                if rng.random() < 0.2:
                    continue
                progress = 1 - dtd / 45
                seats = max(0, int(CAPACITY * (1 - LF[c] * (0.3 + 0.7 * progress)) + rng.integers(-5, 6)))
                price = clean_price(dist, CABIN_MULT[cabin], dtd, am) * np.exp(rng.normal(0, 0.03))
                rows.append(dict(
                    offer_id=f"{event_id}-{j}", event_id=event_id, event_time=t, session_id=f"s{day}-{s}",
                    user_id=f"u{s}", user_country="US", device=rng.choice(["web", "mobile", "app"]),
                    loyalty_tier="none", origin=org, destination=dst, route=f"{org}-{dst}", departure_date=ddate,
                    return_date=None, trip_type="one_way", cabin=cabin, adults=1, children=0, infants=0,
                    passengers=1, airline=al, flight_number=f"{al}{100 + ri}",
                    flight_key=f"{al}-{al}{100 + ri}-{ddate.isoformat()}",
                    departure_time=pd.Timestamp(ddate) + pd.Timedelta(hours=8 + j),
                    arrival_time=pd.Timestamp(ddate) + pd.Timedelta(hours=12 + j), stops=0,
                    duration_minutes=int(60 + dist / 12), fare_class="Y", seats_left=seats,
                    price_amount=price, currency="USD", price_usd=price, true_price_usd=price / np.exp(0),
                    distance_km=dist, is_domestic=dom, days_to_departure=dtd, length_of_stay=0,
                    search_hour=t.hour, search_weekday=sdate.weekday(), departure_weekday=ddate.weekday(),
                    departure_month=ddate.month, departure_hour=8 + j,
                    is_weekend_departure=ddate.weekday() in (4, 6), days_to_nearest_holiday=30,
                    is_holiday_window=False, is_nonstop=True, is_red_eye=False, demand=c,
                    etl_run_id="test", dt=sdate.isoformat(),
                ))
    df = pd.DataFrame(rows)
    # inject glitches (x3..x6 up or /3../6 down)
    n = len(df)
    is_anom = rng.random(n) < anomaly_rate
    factor = np.where(rng.random(n) < 0.5, rng.uniform(3, 6, n), 1 / rng.uniform(3, 6, n))
    df["is_anomaly"] = is_anom
    df["anomaly_factor"] = np.where(is_anom, factor, np.nan)
    df["true_price_usd"] = df["price_usd"]
    df.loc[is_anom, "price_usd"] = df.loc[is_anom, "price_usd"] * factor[is_anom]
    df["price_amount"] = df["price_usd"]
    # search-level engineered columns, as the ETL computes them
    g = df.groupby("event_id")["price_usd"]
    df["num_offers_in_search"] = g.transform("size").astype("int32")
    df["num_airlines_in_search"] = df.groupby("event_id")["airline"].transform("nunique").astype("int32")
    df["price_rank_in_search"] = g.rank(method="first").astype("int32")
    comp_med, comp_min = [], []
    for eid, idx in df.groupby("event_id").groups.items():
        prices = df.loc[idx, "price_usd"].to_numpy()
        for k in range(len(prices)):
            others = np.delete(prices, k)
            comp_med.append((idx[k], np.median(others) if len(others) else np.nan))
            comp_min.append((idx[k], others.min() if len(others) else np.nan))
    df["competitor_median_price_usd"] = pd.Series(dict(comp_med))
    df["competitor_min_price_usd"] = pd.Series(dict(comp_min))
    df["route_searches_day"] = df.groupby(["route", "dt"])["event_id"].transform("nunique").astype("int32")
    df["route_date_searches_day"] = df.groupby(["route", "departure_date", "dt"])["event_id"].transform("nunique").astype("int32")
    df["route_cabin_median_price_usd"] = df.groupby(["route", "cabin", "dt"])["price_usd"].transform("median")
    df["price_vs_route_median"] = df["price_usd"] / df["route_cabin_median_price_usd"]
    df["price_vs_competitor_median"] = df["price_usd"] / df["competitor_median_price_usd"]

    truth = pd.DataFrame({"offer_id": df["offer_id"], "true_price_usd": df["true_price_usd"],
                          "is_anomaly": df["is_anomaly"],
                          "anomaly_kind": np.where(df["is_anomaly"], np.where(df["anomaly_factor"] > 1, "spike", "drop"), None),
                          "anomaly_factor": df["anomaly_factor"]})
    fl = df.drop_duplicates("flight_key")
    outcomes = pd.DataFrame({
        "flight_key": fl["flight_key"], "airline": fl["airline"], "flight_number": fl["flight_number"],
        "origin": fl["origin"], "destination": fl["destination"], "departure_date": fl["departure_date"],
        "capacity": CAPACITY, "seats_sold": (fl["demand"].map(LF) * CAPACITY).astype(int),
        "load_factor": fl["demand"].map(LF), "demand_class": fl["demand"],
    }).reset_index(drop=True)
    offers = df[contract.CURATED_COLUMNS].copy()
    return offers, outcomes, truth


@pytest.fixture(scope="session")
def world():
    return make_world()


@pytest.fixture(scope="session")
def splits(world):
    from processing.preprocess import preprocess

    offers, outcomes, _ = world
    out, summary = preprocess(offers, outcomes, validation_days=5, test_days=5)
    return out, summary
