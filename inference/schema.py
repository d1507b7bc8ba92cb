"""Request validation: which fields an instance must carry for a model, and of what type.

The fields come from the loaded model's ``model_meta.json`` (its numeric and categorical feature
lists; for the anomaly model the curated ``source_columns`` its features are derived from), and
their types, nullability and domain bounds from the data contract, so a request that the model
would silently mis-read (a string where a number belongs, an unknown cabin, a negative seat
count) is refused with the field's name instead of turned into a NaN.

Instances are validated into plain dicts (a pydantic ``TypedDict``), which is cheaper than model
objects on the one-record hot path and feeds ``pandas.DataFrame.from_records`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import Required, TypedDict  # pydantic needs these on Python < 3.12

from core import contract

# Domain bounds per column name (inclusive unless noted); only applied to fields a model uses.
_BOUNDS: dict[str, dict[str, float]] = {
    "days_to_departure": {"ge": 0, "le": contract.MAX_BOOKING_HORIZON_DAYS},
    "length_of_stay": {"ge": 0, "le": contract.MAX_BOOKING_HORIZON_DAYS},
    "departure_weekday": {"ge": 0, "le": 6},
    "search_weekday": {"ge": 0, "le": 6},
    "departure_month": {"ge": 1, "le": 12},
    "departure_hour": {"ge": 0, "le": 23},
    "search_hour": {"ge": 0, "le": 23},
    "stops": {"ge": 0, "le": 3},
    "duration_minutes": {"gt": 0},
    "seats_left": {"ge": 0},
    "passengers": {"ge": 1, "le": 21},
    "distance_km": {"ge": 0},
    "days_to_nearest_holiday": {"ge": 0},
    "route_searches_day": {"ge": 0},
    "route_date_searches_day": {"ge": 0},
    "num_offers_in_search": {"ge": 1, "le": contract.MAX_OFFERS_PER_SEARCH},
    "price_rank_in_search": {"ge": 1, "le": contract.MAX_OFFERS_PER_SEARCH},
    "price_usd": {"ge": contract.MIN_PRICE_USD, "le": contract.MAX_PRICE_USD},
    "competitor_min_price_usd": {"gt": 0},
    "competitor_median_price_usd": {"gt": 0},
    "price_vs_route_median": {"gt": 0},
    "price_vs_competitor_median": {"gt": 0},
}
# Closed vocabularies of the contract.
_VOCAB: dict[str, tuple[str, ...]] = {
    "cabin": contract.CABINS,
    "trip_type": contract.TRIP_TYPES,
    "device": contract.DEVICES,
    "loyalty_tier": contract.LOYALTY_TIERS,
}
# Code shapes (airports, airlines, countries): a malformed code is a client bug, an unseen one is not.
_PATTERNS: dict[str, str] = {
    "origin": r"^[A-Z]{3}$",
    "destination": r"^[A-Z]{3}$",
    "route": r"^[A-Z]{3}-[A-Z]{3}$",
    "airline": r"^[A-Z0-9]{2,3}$",
    "user_country": r"^[A-Z]{2}$",
    "fare_class": r"^[A-Z]$",
}
_ANOMALY_SOURCE_DEFAULT = ["price_usd", "price_vs_route_median", "price_vs_competitor_median", "competitor_min_price_usd",
                           "price_rank_in_search", "num_offers_in_search", "cabin", "days_to_departure"]
_CURATED_TYPES = {f.name: f.type for f in contract.CURATED_OFFER_SCHEMA}


@dataclass(frozen=True)
class FieldSpec:
    """One request field: its name, its Python type name and whether ``null`` is allowed."""

    name: str
    kind: Literal["str", "int", "float", "bool"]
    nullable: bool


def _kind_of(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    return "str"


def field_specs(meta: dict[str, Any]) -> list[FieldSpec]:
    """The fields an instance must carry for the model described by ``meta``, in feature order."""
    kind = meta.get("model")
    if kind == "anomaly":
        names = list(meta.get("source_columns") or _ANOMALY_SOURCE_DEFAULT)
        categorical: set[str] = set()
    else:
        names = [*meta["numeric"], *meta["categorical"]]
        categorical = set(meta["categorical"])
    specs = []
    for name in names:
        if kind == "demand" and name not in categorical:
            # The demand table (core.features) stores every numeric as float64, NaN allowed.
            k, nullable = "float", True
        elif name in _CURATED_TYPES:
            k = _kind_of(_CURATED_TYPES[name])
            # The contract documents which curated columns may be null ("... (null if none)").
            nullable = "null" in contract.CURATED_COLUMN_DESCRIPTIONS.get(name, "")
        elif name in categorical:
            k, nullable = "str", False
        else:  # a derived numeric feature outside the curated schema
            k, nullable = "float", True
        specs.append(FieldSpec(name, k, nullable))
    return specs


def _annotation(spec: FieldSpec):
    if spec.name in _VOCAB:
        base: Any = Literal[_VOCAB[spec.name]]  # type: ignore[valid-type]
    elif spec.kind == "str":
        pattern = _PATTERNS.get(spec.name)
        base = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=pattern)]
    elif spec.kind == "bool":
        base = bool
    else:
        py = int if spec.kind == "int" else float
        base = Annotated[py, Field(allow_inf_nan=False, **_BOUNDS.get(spec.name, {}))]
    return Required[base | None] if spec.nullable else Required[base]


def instance_adapter(specs: list[FieldSpec], title: str = "Instance") -> TypeAdapter:
    """A validator for a list of instances; unknown keys (offer ids, other curated columns) are ignored."""
    td = TypedDict(title, {s.name: _annotation(s) for s in specs})  # type: ignore[misc]
    td.__pydantic_config__ = ConfigDict(extra="ignore", str_strip_whitespace=False)  # type: ignore[attr-defined]
    return TypeAdapter(list[td])


def describe_errors(err: ValidationError, limit: int = 10) -> list[dict[str, str]]:
    """pydantic errors as ``{"field": "instances[3].cabin", "error": "..."}``, at most ``limit``."""
    out = []
    for e in err.errors(include_url=False)[:limit]:
        loc = e.get("loc", ())
        path = "instances"
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        msg = e.get("msg", "invalid")
        if e.get("type") == "missing":
            msg = "required field is missing"
        out.append({"field": path, "error": msg})
    return out
