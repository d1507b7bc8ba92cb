"""The expectation suites, as code: versioned with the project, built from the contract.

Every expectation carries a stable name (``meta["name"]``, e.g. ``offers.price_usd.not_null``)
that the pipeline's Fail step and the report show, and a severity: GX ``critical`` means
*blocking* (the pipeline stops), GX ``warning`` is reported but not fatal.

Each ``*_suite`` function returns the expectations for one table: the stored offers, their
schema (``tables.schema_table``), their partitions, the time window, the flights label table
and the split order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import great_expectations.expectations as gxe

from core import contract

SUITES_VERSION = 1
BLOCKING, WARNING = "critical", "warning"  # GX severities

# Columns a row is worthless without: identity, query, offer and target.
KEY_COLUMNS = [
    "offer_id", "event_id", "event_time", "origin", "destination", "route", "departure_date", "cabin",
    "airline", "flight_key", "currency", "price_usd", "days_to_departure", "seats_left", "stops", contract.PARTITION_COLUMN,
]  # fmt: skip
# Columns the contract allows to be null (one-way trips, searches with a single airline).
NULLABLE_COLUMNS = ["return_date", "competitor_min_price_usd", "competitor_median_price_usd", "price_vs_competitor_median"]

# (column, min, max): hard bounds from the contract and the calendar. (GX costs ~50 ms per
# expectation whatever the data size, so the list keeps the bounds that catch real breakages.)
RANGES = [
    ("price_usd", contract.MIN_PRICE_USD, contract.MAX_PRICE_USD),
    ("days_to_departure", 0, contract.MAX_BOOKING_HORIZON_DAYS),
    ("seats_left", 0, None),
    ("stops", 0, 3),
    ("passengers", 1, 21),
    ("duration_minutes", 1, 4 * 24 * 60),
    ("distance_km", 0, 20_100),  # half the Earth's circumference
    ("length_of_stay", 0, contract.MAX_BOOKING_HORIZON_DAYS),
    ("num_offers_in_search", 1, contract.MAX_OFFERS_PER_SEARCH),
    ("price_rank_in_search", 1, contract.MAX_OFFERS_PER_SEARCH),
]
VALUE_SETS = {
    "cabin": list(contract.CABINS),
    "trip_type": list(contract.TRIP_TYPES),
    "device": list(contract.DEVICES),
    "loyalty_tier": list(contract.LOYALTY_TIERS),
    "currency": list(contract.CURRENCIES),
}
# Format checks: a wrong format is suspicious but the model can live with it -> warnings.
REGEXES = {"airline": r"^[A-Z0-9]{2,3}$", "user_country": r"^[A-Z]{2}$", "fare_class": r"^[A-Z]$"}


@dataclass(frozen=True)
class DQConfig:
    """Thresholds of the suites. Defaults suit a day-partitioned world of a few thousand searches a day."""

    min_rows: int = 1_000
    split_min_rows: dict = field(default_factory=lambda: {"train": 1_000, "validation": 100, "test": 100})
    min_flight_rows: int = 10
    max_staleness_days: int = 2
    max_missing_days: int = 0
    median_factor: float = 2.5  # per-cabin median price within [ref / f, ref * f]: units errors, not mix
    ratio_tolerance: float = 0.35  # cabin/economy median ratio within ±35 % of the reference
    plausible_factor: float = 4.0  # per-cabin plausible range: [q0.1% / f, q99.9% * f] of the reference
    plausible_mostly: float = 0.99  # real anomalies (< 1 %) may fall outside
    min_cabin_rows_for_median: int = 30  # fewer rows in the reference: the median band is only a warning
    feature_null_ceiling: float = 0.01  # non-key, non-nullable columns
    nullable_margin: float = 0.10  # nullable columns: reference null rate + margin
    share_tolerance: float = 0.15  # a split's demand class share within ±15 points of the other splits'
    share_band: tuple = (0.01, 0.85)  # every demand class's share in any split, whatever the season
    partition_rows_band: tuple = (0.2, 5.0)  # a day's rows relative to the median day


@functools.lru_cache(maxsize=1)
def iata_airports() -> frozenset[str]:
    import airportsdata

    return frozenset(airportsdata.load("IATA"))


def airports_suite(prefix: str) -> list:
    """On ``tables.airport_table``: every origin/destination is a known IATA airport (airportsdata)."""
    return [
        _e(gxe.ExpectColumnValuesToBeInSet, f"{prefix}.airports.iata", BLOCKING,
           "origin and destination are known IATA airports (airportsdata)", column="known_iata", value_set=[True]),
    ]  # fmt: skip


def _e(cls, name: str, severity: str, description: str, **kwargs):
    return cls(meta={"name": name}, severity=severity, description=description, **kwargs)


def _cabin(cabin: str) -> dict:
    return {"row_condition": f'cabin=="{cabin}"', "condition_parser": "pandas"}


def schema_suite(prefix: str) -> list:
    """On ``tables.schema_table``: every stored column has the contract's Arrow type."""
    from data_quality.tables import expected_name_types

    return [
        _e(gxe.ExpectColumnValuesToBeInSet, f"{prefix}.schema.types", BLOCKING,
           "every stored column has the contract's Arrow type (unexpected: name:type as stored)",
           column="name_type", value_set=expected_name_types()),
    ]  # fmt: skip


def null_ceilings(reference: dict, cfg: DQConfig) -> dict[str, tuple[str, float]]:
    """Null-rate ceiling per non-key column: nullable columns get the reference rate + a margin."""
    ref_null = reference.get("null_rate", {})
    out = {}
    for c in contract.CURATED_COLUMNS:
        if c in KEY_COLUMNS:
            continue
        if c in NULLABLE_COLUMNS:
            out[c] = ("nullable", round(min(1.0, ref_null.get(c, 0.0) + cfg.nullable_margin), 6))
        else:
            out[c] = ("feature", cfg.feature_null_ceiling)
    return out


def null_rate_suite(prefix: str, cfg: DQConfig) -> list:
    """On ``tables.null_rate_table``: null rates under their ceilings (features block, nullable columns warn)."""
    return [
        _e(gxe.ExpectColumnPairValuesAToBeGreaterThanB, f"{prefix}.null_rate.features", BLOCKING,
           f"non-key feature columns null in at most {cfg.feature_null_ceiling:.0%} of rows",
           column_A="ceiling", column_B="null_rate", or_equal=True, row_condition='kind=="feature"', condition_parser="pandas"),
        _e(gxe.ExpectColumnPairValuesAToBeGreaterThanB, f"{prefix}.null_rate.nullable", WARNING,
           f"nullable columns null at most {cfg.nullable_margin:.0%} more often than in the reference",
           column_A="ceiling", column_B="null_rate", or_equal=True, row_condition='kind=="nullable"', condition_parser="pandas"),
    ]  # fmt: skip


def offers_suite(prefix: str, reference: dict, cfg: DQConfig, min_rows: int) -> list:
    """Row-level and distribution expectations on curated offers (or a split's offers)."""
    p = prefix
    out = [
        _e(gxe.ExpectTableColumnsToMatchSet, f"{p}.schema.columns", BLOCKING,
           "exactly the contract's columns (none missing, none extra)", column_set=list(contract.CURATED_COLUMNS), exact_match=True),
        _e(gxe.ExpectTableColumnsToMatchOrderedList, f"{p}.schema.column_order", WARNING,
           "columns in the contract's order", column_list=list(contract.CURATED_COLUMNS)),
        _e(gxe.ExpectTableRowCountToBeBetween, f"{p}.row_count_floor", BLOCKING, f"at least {min_rows} rows", min_value=min_rows),
        _e(gxe.ExpectColumnValuesToBeUnique, f"{p}.offer_id.unique", BLOCKING, "offer_id is the primary key", column="offer_id"),
    ]  # fmt: skip
    for c in KEY_COLUMNS:
        out.append(_e(gxe.ExpectColumnValuesToNotBeNull, f"{p}.{c}.not_null", BLOCKING, f"key column `{c}` never null", column=c))
    for c, lo, hi in RANGES:
        sev = WARNING if c == "price_rank_in_search" else BLOCKING
        desc = f"`{c}` within [{lo}, {'inf' if hi is None else hi}]"
        out.append(_e(gxe.ExpectColumnValuesToBeBetween, f"{p}.{c}.range", sev, desc, column=c, min_value=lo, max_value=hi))
    for c, values in VALUE_SETS.items():
        out.append(_e(gxe.ExpectColumnValuesToBeInSet, f"{p}.{c}.value_set", BLOCKING, f"`{c}` in the contract's set", column=c, value_set=values))
    for c, rx in REGEXES.items():
        out.append(_e(gxe.ExpectColumnValuesToMatchRegex, f"{p}.{c}.format", WARNING, f"`{c}` matches {rx}", column=c, regex=rx))
    # Distribution against the reference: catches a silently broken upstream, not only a malformed one.
    medians = reference.get("price_usd_median_by_cabin", {})
    q001, q999 = reference.get("price_usd_q001_by_cabin", {}), reference.get("price_usd_q999_by_cabin", {})
    cabin_rows = reference.get("cabin_rows", {})
    for cabin in contract.CABINS:
        if cabin in q001 and cabin in q999:
            lo, hi = q001[cabin] / cfg.plausible_factor, q999[cabin] * cfg.plausible_factor
            out.append(
                _e(gxe.ExpectColumnValuesToBeBetween, f"{p}.price_usd.plausible_{cabin}", BLOCKING,
                   f"{cabin} prices within [{lo:.0f}, {hi:.0f}] USD for {cfg.plausible_mostly:.0%} of rows (reference range)",
                   column="price_usd", min_value=round(lo, 2), max_value=round(hi, 2), mostly=cfg.plausible_mostly, **_cabin(cabin))
            )  # fmt: skip
        if cabin in medians:
            m, f = medians[cabin], cfg.median_factor
            sev = BLOCKING if cabin_rows.get(cabin, 0) >= cfg.min_cabin_rows_for_median else WARNING
            out.append(
                _e(gxe.ExpectColumnMedianToBeBetween, f"{p}.price_usd.median_{cabin}", sev,
                   f"median {cabin} price within {f}x of the reference {m:.0f} USD (units, currency)",
                   column="price_usd", min_value=round(m / f, 2), max_value=round(m * f, 2), **_cabin(cabin))
            )  # fmt: skip
    return out


def price_ratio_suite(prefix: str, reference: dict, cfg: DQConfig) -> list:
    """On ``tables.price_ratio_table``: each premium cabin's median relative to economy near the reference."""
    medians, rows = reference.get("price_usd_median_by_cabin", {}), reference.get("cabin_rows", {})
    out = []
    for cabin in contract.CABINS[1:]:
        if cabin not in medians or not medians.get("economy"):
            continue
        r, tol = medians[cabin] / medians["economy"], cfg.ratio_tolerance
        sev = BLOCKING if rows.get(cabin, 0) >= cfg.min_cabin_rows_for_median else WARNING
        out.append(
            _e(gxe.ExpectColumnMaxToBeBetween, f"{prefix}.price_usd.{cabin}_vs_economy", sev,
               f"median {cabin} / median economy price within ±{tol:.0%} of the reference ratio {r:.2f}",
               column=f"ratio_{cabin}", min_value=round(r * (1 - tol), 4), max_value=round(r * (1 + tol), 4))
        )  # fmt: skip
    return out


def partitions_suite(prefix: str, cfg: DQConfig) -> list:
    """On ``tables.partition_table``: no day delivered twice, events on their partition's date."""
    p = prefix
    lo, hi = cfg.partition_rows_band
    return [
        _e(gxe.ExpectColumnValuesToBeUnique, f"{p}.no_duplicated_day", BLOCKING,
           "no two dt partitions with the same content", column="fingerprint"),
        _e(gxe.ExpectColumnValuesToBeBetween, f"{p}.event_ids_in_one_partition", BLOCKING,
           "no event_id in two dt partitions", column="shared_event_ids", min_value=0, max_value=0),
        _e(gxe.ExpectColumnValuesToBeBetween, f"{p}.offer_ids_in_one_partition", BLOCKING,
           "no offer_id in two dt partitions", column="shared_offer_ids", min_value=0, max_value=0),
        _e(gxe.ExpectColumnValuesToBeBetween, f"{p}.event_time_on_partition_date", BLOCKING,
           "every event_time falls on its dt partition's date (UTC)", column="rows_off_partition_date", min_value=0, max_value=0),
        _e(gxe.ExpectColumnValuesToBeBetween, f"{p}.rows_per_day", WARNING,
           f"each day holds {lo}x to {hi}x the median day's rows", column="rows_vs_median", min_value=lo, max_value=hi),
    ]  # fmt: skip


def window_suite(prefix: str, cfg: DQConfig, end_declared: bool) -> list:
    """On ``tables.window_table``: the newest day is recent enough. Blocking only when the window end is declared."""
    p = prefix
    return [
        _e(gxe.ExpectColumnMaxToBeBetween, f"{p}.freshness", BLOCKING if end_declared else WARNING,
           f"newest dt at most {cfg.max_staleness_days} days before the expected window end "
           + ("" if end_declared else "(no end declared: today, UTC)"),
           column="lag_days", min_value=0, max_value=cfg.max_staleness_days),
        _e(gxe.ExpectColumnMaxToBeBetween, f"{p}.no_missing_days", WARNING,
           f"at most {cfg.max_missing_days} days missing in the window", column="missing_days", min_value=0, max_value=cfg.max_missing_days),
    ]  # fmt: skip


def flights_suite(prefix: str, cfg: DQConfig) -> list:
    """On a split's flights (demand) table: the label is present and valid."""
    p, y = prefix, contract.DEMAND_TARGET
    return [
        _e(gxe.ExpectTableRowCountToBeBetween, f"{p}.row_count_floor", BLOCKING, f"at least {cfg.min_flight_rows} rows",
           min_value=cfg.min_flight_rows),
        _e(gxe.ExpectColumnToExist, f"{p}.flight_key.exists", BLOCKING, "the join key is present", column="flight_key"),
        _e(gxe.ExpectColumnValuesToNotBeNull, f"{p}.flight_key.not_null", BLOCKING, "flight_key never null", column="flight_key"),
        _e(gxe.ExpectColumnToExist, f"{p}.{y}.exists", BLOCKING, "the demand label is present", column=y),
        _e(gxe.ExpectColumnValuesToNotBeNull, f"{p}.{y}.not_null", BLOCKING, "every row labelled", column=y),
        _e(gxe.ExpectColumnValuesToBeInSet, f"{p}.{y}.value_set", BLOCKING, "classes from the contract", column=y,
           value_set=list(contract.DEMAND_CLASSES)),
    ]  # fmt: skip


def class_share_suite(prefix: str, reference: dict, cfg: DQConfig, others: dict[str, float] | None = None) -> list:
    """On ``tables.class_share_table``: each demand class's share (a broken load-factor feed relabels
    flights wholesale).

    Blocking: within ``share_band`` (no class vanishes or takes over), and within ``share_tolerance``
    of ``others``, the other splits' shares of the same window (a feed that breaks mid-window). Not
    blocking: the distance to the reference world's shares. Demand moves with the season and the
    market (a June world: 'high' 0.40 of flights against the January reference's 0.17), so a band
    around one reference world refused to train on any summer window.
    """
    shares = reference.get("demand_class_share") or {}
    lo_band, hi_band = cfg.share_band
    out = []
    for c in contract.DEMAND_CLASSES:
        name = f"{prefix}.{contract.DEMAND_TARGET}.share_{c}"
        out.append(_e(gxe.ExpectColumnMaxToBeBetween, f"{name}.plausible", BLOCKING, f"share of '{c}' within [{lo_band:.2f}, {hi_band:.2f}]",
                      column=f"share_{c}", min_value=lo_band, max_value=hi_band))  # fmt: skip
        if others is not None and c in others and others[c] == others[c]:
            lo, hi = max(0.0, others[c] - cfg.share_tolerance), min(1.0, others[c] + cfg.share_tolerance)
            out.append(_e(gxe.ExpectColumnMaxToBeBetween, name, BLOCKING,
                          f"share of '{c}' within [{lo:.2f}, {hi:.2f}] (the window's other splits: {others[c]:.2f})",
                          column=f"share_{c}", min_value=round(lo, 4), max_value=round(hi, 4)))  # fmt: skip
        if c in shares:
            lo, hi = max(0.0, shares[c] - cfg.share_tolerance), min(1.0, shares[c] + cfg.share_tolerance)
            out.append(_e(gxe.ExpectColumnMaxToBeBetween, f"{name}.vs_reference", WARNING,
                          f"share of '{c}' within [{lo:.2f}, {hi:.2f}] (reference world {shares[c]:.2f}; seasons move it)",
                          column=f"share_{c}", min_value=round(lo, 4), max_value=round(hi, 4)))  # fmt: skip
    return out


def split_order_suite() -> list:
    """On ``tables.split_order_table``: train dates < validation dates < test dates."""
    return [
        _e(gxe.ExpectColumnPairValuesAToBeGreaterThanB, "splits.time_order", BLOCKING,
           "each split starts after the previous one ends (train < validation < test)",
           column_A="later_oldest", column_B="earlier_newest", or_equal=False, ignore_row_if="neither"),
    ]  # fmt: skip
