"""A small curated-like world with known effects (helpers for the evaluation tests).

Built in-process (not by seed_infra's generator + Spark ETL) so the evaluation tests run in
seconds and know the answer: the price rises as departure nears and as seats run out, demand
is set per route-date and drives both seats and search volume, and 2 % of prices are glitches
(x3..x8 up or down). The curated columns that the ETL derives per search (ranks, competitor
medians, route medians) are computed the same way here. A uniquely named module (not
conftest) so that test files can import it without clashing with other test folders.
"""

from __future__ import annotations

import datetime as dt
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from core import contract

# great-circle distances in km, with decimals as the ETL computes them (a whole-number float column
# would get an Integral Model Monitor baseline that CSV captures such as "3980.0" then violate)
ROUTES = [("JFK", "LAX", 3983.2, True), ("LHR", "JFK", 5554.8, False), ("SFO", "SEA", 1093.4, True),
          ("CDG", "FCO", 1105.6, False), ("ORD", "MIA", 1917.3, True)]
AIRLINES = {"AA": 1.15, "DL": 1.08, "NK": 0.80, "B6": 0.92}
CABIN_MULT = {"economy": 1.0, "premium_economy": 1.7, "business": 4.0}
CAPACITY = 180
START = dt.date(2026, 3, 2)


# Fare buckets, cheapest first: as seats sell, the lower buckets close (as in the generator's world),
# so scarcity reaches the price through the fare class that is still open.
FARE_LADDER = "LVQHMBY"


def fare_class_for(seats_left) -> np.ndarray:
    """The cheapest open bucket when ``seats_left`` of CAPACITY seats remain."""
    sold = 1 - np.asarray(seats_left, float) / CAPACITY
    bucket = np.minimum((sold * len(FARE_LADDER)).astype(int), len(FARE_LADDER) - 1)
    return np.array(list(FARE_LADDER))[bucket]


def structural_price(distance, cabin_mult, dtd, fare_class, airline_mult):
    """Noise-free price: sub-linear in distance, x cabin, x booking-window curve, x bucket step, x airline."""
    window = 1 + 1.5 * np.exp(-np.asarray(dtd, float) / 7.0)
    bucket = np.array([FARE_LADDER.index(f) for f in np.atleast_1d(fare_class)])
    scarcity = 1.12**bucket
    return (40 + 0.9 * distance**0.75) * cabin_mult * window * scarcity * airline_mult


def make_world(days: int = 28, searches_per_day: int = 45, seed: int = 7, anomaly_rate: float = 0.02):
    """(curated offers, flight outcomes, truth) for ``days`` search days."""
    rng = np.random.default_rng(seed)
    route_date_lf: dict[tuple[int, dt.date], float] = {}
    rows = []
    for day in range(days):
        sdate = START + dt.timedelta(days=day)
        for s in range(searches_per_day):
            ri = int(rng.integers(len(ROUTES)))
            org, dst, dist, dom = ROUTES[ri]
            dtd = int(rng.integers(1, 50))
            ddate = sdate + dt.timedelta(days=dtd)
            lf = route_date_lf.setdefault((ri, ddate), float(rng.choice([0.55, 0.8, 0.96], p=[0.3, 0.4, 0.3])))
            if lf < 0.7 and rng.random() < 0.5:  # busy route-dates are searched more
                continue
            cabin = str(rng.choice(list(CABIN_MULT), p=[0.75, 0.1, 0.15]))
            event_id = f"e{day}-{s}"
            t = pd.Timestamp(sdate, tz="UTC") + pd.Timedelta(hours=int(rng.integers(24)))
            device = str(rng.choice(contract.DEVICES))
            for j, (al, am) in enumerate(AIRLINES.items()):
                if rng.random() < 0.25:
                    continue
                booked = lf * (1 - dtd / 60) ** 1.5  # share of seats sold by this search date
                seats = int(np.clip(CAPACITY * (1 - booked) + rng.integers(-6, 7), 0, CAPACITY))
                fare_class = str(fare_class_for(seats)[0])
                true_price = float(structural_price(dist, CABIN_MULT[cabin], dtd, fare_class, am)[0])
                rows.append(dict(
                    offer_id=f"{event_id}-{j}", event_id=event_id, event_time=t, session_id=f"s{day}-{s}",
                    user_id=f"u{s}", user_country="US", device=device, loyalty_tier="none",
                    origin=org, destination=dst, route=f"{org}-{dst}", departure_date=ddate, return_date=None,
                    trip_type="one_way", cabin=cabin, adults=1, children=0, infants=0, passengers=1,
                    airline=al, flight_number=f"{al}{100 + ri}", flight_key=f"{al}-{al}{100 + ri}-{ddate.isoformat()}",
                    departure_time=pd.Timestamp(ddate) + pd.Timedelta(hours=8 + j),
                    arrival_time=pd.Timestamp(ddate) + pd.Timedelta(hours=12 + j), stops=0,
                    duration_minutes=int(60 + dist / 12), fare_class=fare_class, seats_left=seats,
                    true_price_usd=true_price, price_usd=true_price * float(np.exp(rng.normal(0, 0.03))),
                    currency="USD", distance_km=dist, is_domestic=dom, days_to_departure=dtd, length_of_stay=0,
                    search_hour=t.hour, search_weekday=sdate.weekday(), departure_weekday=ddate.weekday(),
                    departure_month=ddate.month, departure_hour=8 + j, is_weekend_departure=ddate.weekday() in (4, 6),
                    days_to_nearest_holiday=30, is_holiday_window=False, is_nonstop=True, is_red_eye=False,
                    load_factor=lf, etl_run_id="test", dt=sdate.isoformat(),
                ))
    df = pd.DataFrame(rows)
    n = len(df)
    is_anom = rng.random(n) < anomaly_rate
    factor = np.where(rng.random(n) < 0.5, rng.uniform(3, 8, n), 1 / rng.uniform(3, 8, n))
    df["is_anomaly"] = is_anom
    df["anomaly_factor"] = np.where(is_anom, factor, np.nan)
    df.loc[is_anom, "price_usd"] *= factor[is_anom]
    df["price_amount"] = df["price_usd"]
    add_search_columns(df)

    truth = pd.DataFrame({
        "offer_id": df["offer_id"], "true_price_usd": df["true_price_usd"], "is_anomaly": df["is_anomaly"],
        "anomaly_kind": np.where(df["is_anomaly"], np.where(df["anomaly_factor"] > 1, "spike", "drop"), None),
        "anomaly_factor": df["anomaly_factor"],
    })
    fl = df.drop_duplicates("flight_key")
    seats_sold = (fl["load_factor"] * CAPACITY).round().astype(int)
    outcomes = pd.DataFrame({
        "flight_key": fl["flight_key"], "airline": fl["airline"], "flight_number": fl["flight_number"],
        "origin": fl["origin"], "destination": fl["destination"], "departure_date": fl["departure_date"],
        "capacity": CAPACITY, "seats_sold": seats_sold, "load_factor": seats_sold / CAPACITY,
        "demand_class": [contract.demand_class(x) for x in seats_sold / CAPACITY],
    }).reset_index(drop=True)
    return df[contract.CURATED_COLUMNS].copy(), outcomes, truth


def make_verdicts(offers: pd.DataFrame, truth: pd.DataFrame, seed: int = 3, coverage: float = 0.9,
                  normal_rate: float = 0.05) -> pd.DataFrame:
    """An incident feed as a review team would leave it: ``coverage`` of the glitches confirmed,
    ``normal_rate`` of the normal offers reviewed and cleared, a verdict 2-30 hours after the quote,
    the rest never reviewed (``INCIDENT_LABEL_SCHEMA`` columns)."""
    rng = np.random.default_rng(seed)
    v = offers[["offer_id", "event_id", "event_time"]].merge(truth[["offer_id", "is_anomaly"]], on="offer_id")
    reviewed = rng.random(len(v)) < np.where(v["is_anomaly"], coverage, normal_rate)
    v = v.loc[reviewed]
    delay = pd.to_timedelta(rng.uniform(2, 30, len(v)), unit="h")
    return pd.DataFrame({"offer_id": v["offer_id"], "event_id": v["event_id"], "search_time": v["event_time"],
                         "confirmed_at": v["event_time"] + delay, "is_incident": v["is_anomaly"], "source": "alert_review"})


def add_search_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The per-search and per-day columns the ETL derives from prices (in place; also returned)."""
    g = df.groupby("event_id")["price_usd"]
    df["num_offers_in_search"] = g.transform("size").astype("int32")
    df["num_airlines_in_search"] = df.groupby("event_id")["airline"].transform("nunique").astype("int32")
    df["price_rank_in_search"] = g.rank(method="first").astype("int32")
    med, mn = pd.Series(np.nan, index=df.index), pd.Series(np.nan, index=df.index)
    for _, idx in df.groupby("event_id").groups.items():
        prices = df.loc[idx, "price_usd"].to_numpy()
        for k, i in enumerate(idx):
            others = np.delete(prices, k)
            if len(others):
                med[i], mn[i] = np.median(others), others.min()
    df["competitor_median_price_usd"] = med
    df["competitor_min_price_usd"] = mn
    df["route_searches_day"] = df.groupby(["route", "dt"])["event_id"].transform("nunique").astype("int32")
    df["route_date_searches_day"] = df.groupby(["route", "departure_date", "dt"])["event_id"].transform("nunique").astype("int32")
    df["route_cabin_median_price_usd"] = df.groupby(["route", "cabin", "dt"])["price_usd"].transform("median")
    df["price_vs_route_median"] = df["price_usd"] / df["route_cabin_median_price_usd"]
    df["price_vs_competitor_median"] = df["price_usd"] / df["competitor_median_price_usd"]
    return df


FAST = {
    "price": {"n_estimators": 250, "max_depth": 6, "learning_rate": 0.1, "early_stopping_rounds": 30, "nthread": 1},
    "demand": {"n_estimators": 60, "max_depth": 4, "num_leaves": 15, "early_stopping_rounds": 15, "nthread": 1},
    "anomaly": {"n_estimators": 100, "max_samples": 256, "nthread": 1},
}


def make_tar(model_dir: Path, tar_path: Path) -> Path:
    """``model.tar.gz`` as SageMaker packs ``/opt/ml/model``: the folder's files at the archive root."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz") as tar:
        for f in sorted(Path(model_dir).iterdir()):
            tar.add(f, arcname=f.name)
    return tar_path
