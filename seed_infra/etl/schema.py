"""Spark schemas and field rules derived from the data contract (core/contract.py).

The raw event schema is not written by hand: it is walked out of the pydantic ``SearchEvent``
model, so an additive change to the contract reaches the ETL's parser and its validation rules
without touching this package. Dates and datetimes are parsed as strings and converted by the
ETL itself, so that an unparseable date is reported on its own field instead of silently
nulling the whole record.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types as at
import pyarrow as pa
from pydantic import BaseModel
from pyspark.sql import types as T

from core import contract

CORRUPT_COLUMN = "_corrupt_record"

_SCALARS: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool", dt.date: "date", dt.datetime: "datetime"}
_SPARK_SCALARS: dict[str, T.DataType] = {
    "str": T.StringType(),
    "int": T.LongType(),
    "float": T.DoubleType(),
    "bool": T.BooleanType(),
    "date": T.StringType(),
    "datetime": T.StringType(),
}


@dataclass(frozen=True)
class Leaf:
    """One scalar field of the raw event and the rules the contract puts on it."""

    path: tuple[str, ...]
    kind: str  # str | int | float | bool | date | datetime
    required: bool
    default: Any = None
    choices: tuple[str, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_len: int | None = None
    max_len: int | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip ``X | None``; returns (inner annotation, is optional)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        raise TypeError(f"unsupported union in contract: {annotation}")
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def spark_schema(model: type[BaseModel] = contract.SearchEvent, corrupt_column: str | None = CORRUPT_COLUMN) -> T.StructType:
    """The Spark struct for parsing raw JSON of ``model`` (dates/datetimes as strings)."""
    fields = []
    for name, info in model.model_fields.items():
        ann, _ = _unwrap(info.annotation)
        fields.append(T.StructField(name, _spark_type(ann), True))
    if corrupt_column:
        fields.append(T.StructField(corrupt_column, T.StringType(), True))
    return T.StructType(fields)


def _spark_type(ann: Any) -> T.DataType:
    ann, _ = _unwrap(ann)
    if _is_model(ann):
        return spark_schema(ann, corrupt_column=None)
    if typing.get_origin(ann) is list:
        (item,) = typing.get_args(ann)
        return T.ArrayType(_spark_type(item), True)
    if typing.get_origin(ann) is Literal:
        return T.StringType()
    if ann in _SCALARS:
        return _SPARK_SCALARS[_SCALARS[ann]]
    raise TypeError(f"unsupported type in contract: {ann}")


def leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[Leaf]:
    """Scalar fields of ``model`` (recursing into sub-models, not into lists), with their rules."""
    out: list[Leaf] = []
    for name, info in model.model_fields.items():
        ann, optional = _unwrap(info.annotation)
        path = prefix + (name,)
        if typing.get_origin(ann) is list:
            continue
        if _is_model(ann):
            out.extend(leaves(ann, path))
            continue
        rules: dict[str, Any] = {}
        for m in info.metadata:
            if isinstance(m, at.Ge):
                rules["ge"] = m.ge
            elif isinstance(m, at.Gt):
                rules["gt"] = m.gt
            elif isinstance(m, at.Le):
                rules["le"] = m.le
            elif isinstance(m, at.Lt):
                rules["lt"] = m.lt
            elif isinstance(m, at.MinLen):
                rules["min_len"] = m.min_length
            elif isinstance(m, at.MaxLen):
                rules["max_len"] = m.max_length
        if typing.get_origin(ann) is Literal:
            kind, rules["choices"] = "str", tuple(typing.get_args(ann))
        else:
            kind = _SCALARS[ann]
        required = info.is_required() and not optional
        default = None if info.is_required() else info.default
        out.append(Leaf(path=path, kind=kind, required=required, default=default, **rules))
    return out


EVENT_LEAVES = leaves(contract.SearchEvent)
OFFER_LEAVES = leaves(contract.Offer)

_ARROW_TO_SPARK: dict[str, T.DataType] = {
    "string": T.StringType(),
    "timestamp[us, tz=UTC]": T.TimestampType(),
    "timestamp[us]": T.TimestampNTZType(),
    "date32[day]": T.DateType(),
    "int16": T.ShortType(),
    "int32": T.IntegerType(),
    "int64": T.LongType(),
    "double": T.DoubleType(),
    "bool": T.BooleanType(),
}


def spark_type_of(arrow_type: pa.DataType) -> T.DataType:
    """The Spark type that Spark writes to Parquet as ``arrow_type`` (timestamps as TIMESTAMP_MICROS)."""
    return _ARROW_TO_SPARK[str(arrow_type)]


CURATED_SPARK_TYPES: dict[str, T.DataType] = {f.name: spark_type_of(f.type) for f in contract.CURATED_OFFER_SCHEMA}
CURATED_SPARK_SCHEMA = T.StructType([T.StructField(name, t, True) for name, t in CURATED_SPARK_TYPES.items()])
