"""Request validation: which fields an instance must carry for a model, and of what type.

The fields come from the loaded model's ``model_meta.json`` (its numeric and categorical feature
lists; for the anomaly model the curated ``source_columns`` its features are derived from), and
their types, nullability and domain bounds from the data contract, so a request that the model
would silently mis-read (a string where a number belongs, an unknown cabin, a negative seat
count) is refused with the field's name instead of turned into a NaN.

Instances are validated into plain dicts (a pydantic ``TypedDict``), which is cheaper than model
objects on the one-record hot path and feeds the array encoder of :mod:`inference.fast` directly.

Types are strict, as JSON means them: ``"5"``, ``"+3"`` and ``"1_000"`` are strings, not numbers, and
``true`` is a boolean, not 1 (pydantic's lax mode would coerce all four). An integer field takes
only JSON integers; a float field takes integers or floats; a boolean field only ``true``/``false``.
Every numeric field has a plausible upper bound, so a fat-fingered 1e300 is refused by name.
CSV cells are strings by nature: :func:`typed_cell` turns them into these types with the same rules
(a plain decimal number, no sign ``+``, no ``_``; ``true``/``false`` for booleans; empty = null).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import Required, TypedDict  # pydantic needs these on Python < 3.12

from core import contract, features

# Domain bounds per column name (inclusive unless noted); only applied to fields a model uses.
# Upper bounds are physical or far above anything the world or a real search can produce.
_MAX_COUNT = 100_000_000  # searches or offers of a route or flight per day (10M searches/day in all)
_MAX_SEATS = 1_000  # the largest airliner has about 850 seats
_MAX_RATIO = 1_000.0  # price ratios: a glitch may be 100x, not 1000x
_BOUNDS: dict[str, dict[str, float]] = {
    "days_to_departure": {"ge": 0, "le": contract.MAX_BOOKING_HORIZON_DAYS},
    "length_of_stay": {"ge": 0, "le": contract.MAX_BOOKING_HORIZON_DAYS},
    "departure_weekday": {"ge": 0, "le": 6},
    "search_weekday": {"ge": 0, "le": 6},
    "departure_month": {"ge": 1, "le": 12},
    "departure_hour": {"ge": 0, "le": 23},
    "search_hour": {"ge": 0, "le": 23},
    "stops": {"ge": 0, "le": 3},
    "duration_minutes": {"gt": 0, "le": 3 * 24 * 60},  # three days door to door with three stops
    "seats_left": {"ge": 0, "le": _MAX_SEATS},
    "passengers": {"ge": 1, "le": 21},
    "distance_km": {"ge": 0, "le": 20_040},  # half the Earth's circumference
    "days_to_nearest_holiday": {"ge": 0, "le": contract.MAX_BOOKING_HORIZON_DAYS},
    "route_searches_day": {"ge": 0, "le": _MAX_COUNT},
    "route_date_searches_day": {"ge": 0, "le": _MAX_COUNT},
    "num_offers_in_search": {"ge": 1, "le": contract.MAX_OFFERS_PER_SEARCH},
    "price_rank_in_search": {"ge": 1, "le": contract.MAX_OFFERS_PER_SEARCH},
    "price_usd": {"ge": contract.MIN_PRICE_USD, "le": contract.MAX_PRICE_USD},
    "competitor_min_price_usd": {"gt": 0, "le": contract.MAX_PRICE_USD},
    "competitor_median_price_usd": {"gt": 0, "le": contract.MAX_PRICE_USD},
    "route_cabin_median_price_usd": {"gt": 0, "le": contract.MAX_PRICE_USD},
    "price_vs_route_median": {"gt": 0, "le": _MAX_RATIO},
    "price_vs_competitor_median": {"gt": 0, "le": _MAX_RATIO},
    "num_airlines_in_search": {"ge": 1, "le": contract.MAX_OFFERS_PER_SEARCH},
    # demand-table features (processing.features.DEMAND_NUMERIC)
    "flight_offers_day": {"ge": 0, "le": _MAX_COUNT},
    "flight_searches_day": {"ge": 0, "le": _MAX_COUNT},
    "flight_searches_cum": {"ge": 0, "le": _MAX_COUNT * 400},
    "route_date_searches_cum": {"ge": 0, "le": _MAX_COUNT * 400},
    "route_date_searches_7d": {"ge": 0, "le": _MAX_COUNT * 7},
    "route_date_searches_prev_7d": {"ge": 0, "le": _MAX_COUNT * 7},
    "route_date_searches_trend": {"ge": 0, "le": _MAX_COUNT * 7 + 1},
    "route_date_share_of_route": {"ge": 0, "le": 1},
    "min_seats_left": {"ge": 0, "le": _MAX_SEATS},
    "economy_min_seats_left": {"ge": 0, "le": _MAX_SEATS},
    "economy_seats_left_vs_max_seen": {"ge": 0, "le": 1},
    "economy_price_vs_route_median": {"gt": 0, "le": _MAX_RATIO},
    "economy_min_price_usd": {"ge": contract.MIN_PRICE_USD, "le": contract.MAX_PRICE_USD},
    "is_domestic": {"ge": 0, "le": 1},
    "is_weekend_departure": {"ge": 0, "le": 1},
    "is_holiday_window": {"ge": 0, "le": 1},
    "is_nonstop": {"ge": 0, "le": 1},
    "is_red_eye": {"ge": 0, "le": 1},
}
# A numeric field without a bound of its own (a feature added later) still gets one.
_DEFAULT_BOUNDS: dict[str, float] = {"ge": -1e9, "le": 1e9}
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
    names = features.request_fields(meta)
    categorical: set[str] = set() if kind == "anomaly" else set(meta["categorical"])
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
        base = Annotated[py, Field(allow_inf_nan=False, **_BOUNDS.get(spec.name, _DEFAULT_BOUNDS))]
    return Required[base | None] if spec.nullable else Required[base]


def instance_adapter(specs: list[FieldSpec], title: str = "Instance") -> TypeAdapter:
    """A validator for a list of instances; unknown keys (offer ids, other curated columns) are ignored."""
    td = TypedDict(title, {s.name: _annotation(s) for s in specs})  # type: ignore[misc]
    # strict: no "5" -> 5, no true -> 1, no 5.0 -> 5 for an integer field.
    td.__pydantic_config__ = ConfigDict(extra="ignore", str_strip_whitespace=False, strict=True)  # type: ignore[attr-defined]
    return TypeAdapter(list[td])


_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INT_RE = re.compile(r"-?[0-9]+")


class CellError(ValueError):
    """A CSV cell that is not of its field's type (the message says what was expected)."""


def typed_cell(spec: FieldSpec, cell: str) -> Any:
    """A CSV cell as the JSON value it stands for, by the field's kind (strict, see the module doc)."""
    if cell == "":
        return None
    if spec.kind == "str":
        return cell
    if spec.kind == "bool":
        if cell in ("true", "false"):
            return cell == "true"
        raise CellError("expected true or false")
    if spec.kind == "int":
        if _INT_RE.fullmatch(cell):
            return int(cell)
        raise CellError("expected a whole number")
    if _NUMBER_RE.fullmatch(cell):
        return float(cell)
    raise CellError("expected a number")


# pydantic's wording for wrong types speaks Python ("valid dictionary"); clients speak JSON.
_MESSAGES = {
    "missing": "required field is missing",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "int_type": "must be a whole number (a JSON integer, not a string or boolean)",
    "float_type": "must be a number (not a string or boolean)",
    "bool_type": "must be true or false",
    "int_from_float": "must be a whole number",
}


def describe_errors(err: ValidationError, limit: int = 10) -> list[dict[str, str]]:
    """pydantic errors as ``{"field": "instances[3].cabin", "error": "..."}``, at most ``limit``."""
    out = []
    for e in err.errors(include_url=False)[:limit]:
        loc = e.get("loc", ())
        path = "instances"
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        msg = _MESSAGES.get(e.get("type"), e.get("msg", "invalid"))
        out.append({"field": path, "error": msg})
    return out
