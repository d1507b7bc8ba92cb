"""Feature preparation shared by training, evaluation and inference, and the demand table.

One place turns a DataFrame into a model matrix (:func:`model_matrix`): the same function runs
when a model is trained and when it predicts, with the category levels stored in the model's
``model_meta.json``, so codes never drift between the two.

The demand table (:func:`build_demand_table`) has one row per (flight, search date) snapshot with
only what is known on that search date: search volume so far and its trend, days to departure,
price level against the route's norm, seats left, calendar. It is labelled with the flight's
demand class from the outcomes (known only after departure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from core import contract

# ---------------------------------------------------------------------------------------------
# Request fields: what a model's endpoint receives (and captures), read by inference and monitoring
# ---------------------------------------------------------------------------------------------
# The anomaly model's request fields when its model_meta.json lists no ``source_columns``.
ANOMALY_SOURCE_DEFAULT = ("price_usd", "price_vs_route_median", "price_vs_competitor_median", "competitor_min_price_usd",
                          "price_rank_in_search", "num_offers_in_search", "cabin", "days_to_departure")


def request_fields(meta: Mapping) -> list[str]:
    """The fields a request for the model described by ``meta`` (its ``model_meta.json``) carries,
    in feature order: the anomaly model's curated ``source_columns`` (its features are derived from
    them), else the numeric then the categorical features."""
    if meta.get("model") == "anomaly":
        return list(meta.get("source_columns") or ANOMALY_SOURCE_DEFAULT)
    return [*meta["numeric"], *meta["categorical"]]


# ---------------------------------------------------------------------------------------------
# Generic matrix preparation
# ---------------------------------------------------------------------------------------------


def category_levels(df: pd.DataFrame, columns: Sequence[str]) -> dict[str, list[str]]:
    """Sorted distinct string values of each categorical column (stored with the model)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing categorical columns: {missing}")
    return {c: sorted(df[c].dropna().astype(str).unique().tolist()) for c in columns}


def model_matrix(
    df: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    levels: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """Model input: numeric columns as float64, categoricals as pandas ``category`` with fixed levels.

    Values unseen at training time become missing (both XGBoost and LightGBM route them down
    the default branch) instead of silently getting another level's code.
    """
    missing = [c for c in [*numeric, *categorical] if c not in df.columns]
    if missing:
        raise ValueError(f"input lacks feature columns: {missing}")
    out = {}
    for c in numeric:
        col = df[c]
        if col.dtype == bool or str(col.dtype) == "boolean":
            col = col.astype("float64")
        out[c] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
    for c in categorical:
        if c not in levels:
            raise ValueError(f"no category levels stored for {c!r}")
        values = df[c].astype("string").astype(object).where(df[c].notna(), None)
        out[c] = pd.Categorical(values, categories=list(levels[c]))
    return pd.DataFrame(out, index=df.index)[[*numeric, *categorical]]


# ---------------------------------------------------------------------------------------------
# Anomaly features: the price relative to its norms, in log space (symmetric for spikes and drops)
# ---------------------------------------------------------------------------------------------
ANOMALY_DERIVED = [
    "log_price_vs_model",
    "log_price_vs_competitor_adj",
    "log_price_vs_expected_route",
    "log_price_vs_competitor_median",
    "log_price_vs_route_median",
    "log_price_vs_competitor_min",
    "rank_fraction_in_search",
]
# What the anomaly model uses by default (measured on the default world: the two norm-adjusted
# ratios separate glitches best; the rank and the raw ratios only add noise to the forest).
ANOMALY_DEFAULT_FEATURES = ["log_price_vs_model"]
# Days-to-departure buckets for the learned "expected ratio to the route median" norm.
DTD_BUCKET_EDGES = (0, 3, 7, 14, 21, 35, 60, 90, 150, 240, 10_000)
# Group keys of the learned norms: the route+cabin median of the day mixes one-way and round trips
# and all booking windows; the competitor median mixes price levels (legacy vs low-cost carriers).
ROUTE_NORM_KEYS = ("cabin", "trip_type", "_dtd_bucket")
COMPETITOR_NORM_KEYS = ("airline", "is_nonstop")


def dtd_bucket(days: pd.Series) -> np.ndarray:
    """Index of the days-to-departure bucket (``DTD_BUCKET_EDGES``), -1 when unknown."""
    d = pd.to_numeric(days, errors="coerce").to_numpy(dtype=float)
    idx = np.searchsorted(np.asarray(DTD_BUCKET_EDGES[1:-1], dtype=float), d, side="right")
    return np.where(np.isfinite(d), idx, -1)


def _safe_log(x: pd.Series | np.ndarray) -> np.ndarray:
    a = pd.to_numeric(pd.Series(np.asarray(x)), errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(a)
    out[~np.isfinite(out)] = np.nan
    return out


def _norm_keys(df: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    parts = []
    for c in cols:
        if c == "_dtd_bucket":
            parts.append(dtd_bucket(df["days_to_departure"]).astype(str))
        else:
            parts.append(df[c].astype(str).to_numpy())
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + "|" + p
    return out


def fit_anomaly_norms(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Median log price ratios per group, learned on clean training rows, stored in ``model_meta.json``.

    ``route``: log(price / route+cabin median) per cabin, trip type and booking-window bucket;
    ``competitor``: log(price / competitor median) per airline and nonstop flag. A single offer can
    then be compared with what its kind of offer normally pays, which removes most legitimate spread.
    """
    out = {}
    for name, col, keys in (("route", "price_vs_route_median", ROUTE_NORM_KEYS),
                            ("competitor", "price_vs_competitor_median", COMPETITOR_NORM_KEYS)):
        lr = pd.Series(_safe_log(df[col]), index=df.index)
        med = lr.groupby(_norm_keys(df, keys)).median().dropna()
        out[name] = {str(k): float(v) for k, v in med.items()}
    return out


def anomaly_frame(df: pd.DataFrame, norms: Mapping[str, Mapping[str, float]] | None = None,
                  expected_log_price: np.ndarray | None = None) -> pd.DataFrame:
    """Price-relative features for the Isolation Forest (float64; NaN filled with 0 = "at the norm").

    ``expected_log_price``: a learned norm per row (the anomaly model's own structural price
    regression); ``log_price_vs_model`` is the observed log price minus it (0 when not given).
    """
    need = [*contract.ANOMALY_FEATURES, "price_usd", "competitor_min_price_usd", "cabin", "trip_type",
            "days_to_departure", "airline", "is_nonstop"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"input lacks anomaly feature columns: {missing}")
    norms = norms or {}
    lr = _safe_log(df["price_vs_route_median"])
    lc = _safe_log(df["price_vs_competitor_median"])
    with np.errstate(divide="ignore", invalid="ignore"):
        lmin = _safe_log(pd.to_numeric(df["price_usd"], errors="coerce").to_numpy(dtype=float)
                         / pd.to_numeric(df["competitor_min_price_usd"], errors="coerce").to_numpy(dtype=float))

    def expected(name: str, keys: Sequence[str]) -> np.ndarray:
        table = norms.get(name) or {}
        return np.array([table.get(k, 0.0) for k in _norm_keys(df, keys)], dtype=float) if len(df) else np.zeros(0)

    n = pd.to_numeric(df["num_offers_in_search"], errors="coerce").to_numpy(dtype=float)
    rank = pd.to_numeric(df["price_rank_in_search"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rank_frac = np.where(n > 1, (rank - 1) / (n - 1), 0.5)
    if expected_log_price is None:
        vs_model = np.zeros(len(df))
    else:
        vs_model = _safe_log(df["price_usd"]) - np.asarray(expected_log_price, dtype=float)
    out = pd.DataFrame(
        {
            "log_price_vs_model": vs_model,
            "log_price_vs_competitor_adj": lc - expected("competitor", COMPETITOR_NORM_KEYS),
            "log_price_vs_expected_route": lr - expected("route", ROUTE_NORM_KEYS),
            "log_price_vs_competitor_median": lc,
            "log_price_vs_route_median": lr,
            "log_price_vs_competitor_min": lmin,
            "rank_fraction_in_search": rank_frac,
        },
        index=df.index,
    )
    return out.fillna(0.0).astype("float64")


# ---------------------------------------------------------------------------------------------
# The demand table: one row per (flight_key, search date)
# ---------------------------------------------------------------------------------------------
DEMAND_KEYS = ["flight_key", "search_date"]
DEMAND_NUMERIC = [
    "days_to_departure",
    "distance_km",
    "is_domestic",
    "departure_weekday",
    "departure_month",
    "departure_hour",
    "is_weekend_departure",
    "days_to_nearest_holiday",
    "is_holiday_window",
    "is_nonstop",
    "is_red_eye",
    "flight_offers_day",
    "flight_searches_day",
    "flight_searches_cum",
    "route_searches_day",
    "route_date_searches_day",
    "route_date_searches_cum",
    "route_date_searches_7d",
    "route_date_searches_prev_7d",
    "route_date_searches_trend",
    "route_date_share_of_route",
    "min_seats_left",
    "economy_min_seats_left",
    "economy_seats_left_vs_max_seen",
    "economy_price_vs_route_median",
    "price_vs_route_median",
    "price_vs_competitor_median",
    "economy_min_price_usd",
]
DEMAND_CATEGORICAL = ["airline", "route", "origin", "destination"]
DEMAND_FEATURES = DEMAND_NUMERIC + DEMAND_CATEGORICAL
DEMAND_TABLE_COLUMNS = [*DEMAND_KEYS, "departure_date", "flight_number", *DEMAND_FEATURES]
# Columns the demand table must never carry (labels and truth leak the answer).
DEMAND_LEAKY = {"load_factor", "seats_sold", "capacity", *contract.TRUTH_COLUMNS}


def search_date_of(df: pd.DataFrame) -> pd.Series:
    """The search date (UTC) of each offer: the ``dt`` partition, else the date of ``event_time``."""
    if contract.PARTITION_COLUMN in df.columns and df[contract.PARTITION_COLUMN].notna().all():
        return pd.to_datetime(df[contract.PARTITION_COLUMN].astype(str), format="%Y-%m-%d")
    if "event_time" not in df.columns:
        raise ValueError("need a 'dt' or 'event_time' column to know the search date")
    return pd.to_datetime(df["event_time"], utc=True).dt.tz_localize(None).dt.normalize()


def _rolling_sum(frame: pd.DataFrame, group: list[str], value: str, window: str, date: str = "search_date") -> pd.Series:
    """Sum of ``value`` over the trailing calendar ``window`` (inclusive) within each group."""
    f = frame.sort_values([*group, date])
    rolled = f.groupby(group, sort=False, observed=True).rolling(window, on=date)[value].sum()
    return pd.Series(rolled.to_numpy(), index=f.index).reindex(frame.index)


# Offer columns the per-day snapshot aggregation reads (Preprocess projects a day's offers to these).
DEMAND_SOURCE_COLUMNS = [
    "flight_key", "event_id", "offer_id", "route", "departure_date", "flight_number", "airline", "origin", "destination",
    "distance_km", "is_domestic", "departure_weekday", "departure_month", "departure_hour", "is_weekend_departure",
    "days_to_nearest_holiday", "is_holiday_window", "is_nonstop", "is_red_eye", "cabin", "seats_left", "price_usd",
    "days_to_departure", "route_searches_day", "route_date_searches_day", "price_vs_route_median",
    "price_vs_competitor_median", contract.PARTITION_COLUMN, "event_time",
]  # fmt: skip


def demand_snapshots(offers: pd.DataFrame) -> pd.DataFrame:
    """Per-(flight_key, search date) aggregates of the offers of those search dates (stage 1).

    Every group lies within one search date, so this can run one day at a time and the results
    be concatenated: Preprocess streams the window day by day and never holds it whole.
    """
    need = {"flight_key", "route", "departure_date", "cabin", "seats_left", "price_usd", "event_id",
            "route_searches_day", "route_date_searches_day", "days_to_departure"}
    missing = sorted(need - set(offers.columns))
    if missing:
        raise ValueError(f"offers lack columns for the demand table: {missing}")
    o = offers.copy()
    o["search_date"] = search_date_of(o).to_numpy()
    o["departure_date"] = pd.to_datetime(o["departure_date"]).astype("datetime64[ns]")
    is_eco = o["cabin"].astype(str) == "economy"
    o["_eco_seats"] = o["seats_left"].where(is_eco)
    o["_eco_ratio"] = o["price_vs_route_median"].where(is_eco)
    o["_eco_price"] = o["price_usd"].where(is_eco)

    g = o.groupby(DEMAND_KEYS, sort=False, observed=True)
    first = ["departure_date", "flight_number", "airline", "route", "origin", "destination", "distance_km",
             "is_domestic", "departure_weekday", "departure_month", "departure_hour", "is_weekend_departure",
             "days_to_nearest_holiday", "is_holiday_window", "is_nonstop", "is_red_eye"]
    agg = {c: (c, "first") for c in first}
    agg.update(
        days_to_departure=("days_to_departure", "min"),
        flight_offers_day=("offer_id", "size") if "offer_id" in o.columns else ("event_id", "size"),
        flight_searches_day=("event_id", "nunique"),
        route_searches_day=("route_searches_day", "max"),
        route_date_searches_day=("route_date_searches_day", "max"),
        min_seats_left=("seats_left", "min"),
        economy_min_seats_left=("_eco_seats", "min"),
        economy_price_vs_route_median=("_eco_ratio", "median"),
        price_vs_route_median=("price_vs_route_median", "median"),
        price_vs_competitor_median=("price_vs_competitor_median", "median"),
        economy_min_price_usd=("_eco_price", "min"),
    )
    t = g.agg(**agg).reset_index()
    for c in t.columns:  # categoricals of one day's read would not concatenate with another day's
        if isinstance(t[c].dtype, pd.CategoricalDtype):
            t[c] = t[c].astype(object)
    return t


def build_demand_table(offers: pd.DataFrame, outcomes: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Snapshot features per (flight_key, search date), labelled from ``outcomes`` when given.

    Every feature uses offers of that search date or earlier only. Returns the table and stats:
    ``snapshots``, ``labelled``, ``dropped_without_outcome`` (flights with no outcome yet, e.g.
    departing after the data ends, are dropped and counted).
    """
    return demand_table_from_snapshots(demand_snapshots(offers), outcomes)


def route_date_days(offers_or_snapshots: pd.DataFrame) -> pd.DataFrame:
    """Searches per (route, departure date, search day): the series the route-date volume features sum.

    From offers or snapshots of any subset of days (a ``max`` per key, so partial results combine
    with another ``max``). Built from every offer, it keeps those features exact when the demand
    table itself holds only a sample of flights.
    """
    df = offers_or_snapshots
    if "search_date" not in df.columns:
        df = df.assign(search_date=search_date_of(df).to_numpy())
    df = df.assign(departure_date=pd.to_datetime(df["departure_date"]).astype("datetime64[ns]"),
                   route=df["route"].astype(str))
    return (df.groupby(["route", "departure_date", "search_date"], observed=True)["route_date_searches_day"]
            .max().reset_index())


def demand_table_from_snapshots(t: pd.DataFrame, outcomes: pd.DataFrame | None = None,
                                route_dates: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Stage 2 of :func:`build_demand_table`: the cross-day features (volume so far, trend) and labels.

    Takes :func:`demand_snapshots` of every search date of the window (one row per flight and
    day: far fewer rows than offers), or of a sample of flights together with ``route_dates``
    (:func:`route_date_days` of every offer).
    """
    t = t.reset_index(drop=True)
    # Route-date search volume so far and its trend (one value per route, departure date, search day).
    rd = route_date_days(t) if route_dates is None else route_dates
    rd = rd.sort_values(["route", "departure_date", "search_date"])
    rd["route_date_searches_cum"] = rd.groupby(["route", "departure_date"], observed=True)["route_date_searches_day"].cumsum()
    rd["route_date_searches_7d"] = _rolling_sum(rd, ["route", "departure_date"], "route_date_searches_day", "7D")
    last14 = _rolling_sum(rd, ["route", "departure_date"], "route_date_searches_day", "14D")
    rd["route_date_searches_prev_7d"] = last14 - rd["route_date_searches_7d"]
    rd["route_date_searches_trend"] = (rd["route_date_searches_7d"] + 1.0) / (rd["route_date_searches_prev_7d"] + 1.0)
    t = t.merge(rd.drop(columns="route_date_searches_day"), on=["route", "departure_date", "search_date"], how="left")

    t = t.sort_values(["flight_key", "search_date"]).reset_index(drop=True)
    fg = t.groupby("flight_key", sort=False)
    t["flight_searches_cum"] = fg["flight_searches_day"].cumsum()
    t["economy_seats_left_vs_max_seen"] = t["economy_min_seats_left"] / fg["economy_min_seats_left"].cummax()
    t["route_date_share_of_route"] = t["route_date_searches_day"] / t["route_searches_day"].where(t["route_searches_day"] > 0)
    for c in DEMAND_NUMERIC:
        t[c] = pd.to_numeric(t[c].astype("float64") if t[c].dtype == bool else t[c], errors="coerce").astype("float64")
    t = t[DEMAND_TABLE_COLUMNS]

    stats = {"snapshots": int(len(t)), "flights": int(t["flight_key"].nunique())}
    if outcomes is None:
        return t, stats
    if "flight_key" not in outcomes.columns or contract.DEMAND_TARGET not in outcomes.columns:
        raise ValueError("outcomes need 'flight_key' and 'demand_class'")
    labels = outcomes[["flight_key", contract.DEMAND_TARGET]].drop_duplicates("flight_key")
    bad = set(labels[contract.DEMAND_TARGET].dropna().unique()) - set(contract.DEMAND_CLASSES)
    if bad:
        raise ValueError(f"unknown demand classes in outcomes: {sorted(bad)}")
    t = t.merge(labels, on="flight_key", how="left")
    has = t[contract.DEMAND_TARGET].notna()
    stats.update(
        labelled=int(has.sum()),
        dropped_without_outcome=int((~has).sum()),
        dropped_flights_without_outcome=int(t.loc[~has, "flight_key"].nunique()),
    )
    return t.loc[has].reset_index(drop=True), stats
