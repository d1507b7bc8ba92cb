"""Request bodies in, response bodies out: every shape a SageMaker caller sends, every type it accepts.

Requests (``Content-Type``):

- ``application/json``: a bare instance object (the frontend's ``json.dumps(features)``),
  ``{"instances": [...]}``, or a list of instance objects;
- ``application/jsonlines``: one instance object per line (batch transform's ``SplitType=Line``);
- ``text/csv``: one instance per row, with a header row naming the fields, or without one in the
  model's field order (:attr:`inference.predict.Predictor.field_names`), as batch transform sends it.

Responses (``Accept``; default: the request's own type): ``application/json``
``{"model": KIND, "predictions": [...]}``, ``application/jsonlines`` (one prediction object per line),
or ``text/csv`` (one row per instance, no header: ``price_usd``; ``demand_class,p_<class>...``;
``anomaly_score,is_anomaly``).

What the container serves is :mod:`inference.content_types`; the model packages advertise exactly
these (``pipelines.definition`` and ``pipelines.registry`` import them).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from inference.schema import CellError, FieldSpec, typed_cell

from inference.content_types import CONTENT_TYPES, CSV, JSON, JSONLINES
from inference.content_types import RESPONSE_TYPES as ACCEPT_TYPES
_ALIASES = {
    "": JSON, JSON: JSON, "text/json": JSON,
    JSONLINES: JSONLINES, "application/jsonl": JSONLINES, "application/x-jsonlines": JSONLINES,
    "application/json-lines": JSONLINES, "application/x-ndjson": JSONLINES,
    CSV: CSV, "application/csv": CSV,
}


class RequestError(Exception):
    """A client error: HTTP status, message and optional per-field details."""

    def __init__(self, status: int, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def request_type(header: str | None) -> str:
    """The canonical request type of a ``Content-Type`` header (415 when we cannot read it)."""
    mt = _ALIASES.get(media_type(header))
    if mt is None:
        raise RequestError(415, f"unsupported Content-Type {media_type(header)!r}: use one of {', '.join(CONTENT_TYPES)}")
    params = (header or "").split(";")[1:]
    for p in params:
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v.strip().strip('"').lower() not in ("utf-8", "utf8", "us-ascii"):
            raise RequestError(415, f"unsupported charset {v.strip()!r}: send UTF-8")
    return mt


def response_type(header: str | None, default: str) -> str:
    """The first type of ``Accept`` we can produce, by q-value then order (406 when none)."""
    if not header or not header.strip():
        return default
    offers = []
    for i, part in enumerate(header.split(",")):
        bits = part.split(";")
        mt = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            k, _, v = b.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0 and mt:
            offers.append((-q, i, mt))
    for _, _, mt in sorted(offers):
        if mt in ("*/*", "application/*") or (mt == "text/*" and default == CSV):
            return default
        if mt == "text/*":
            return CSV
        canon = _ALIASES.get(mt) if mt else None
        if canon is not None:
            return canon
    raise RequestError(406, f"cannot answer with Accept {header!r}: use one of {', '.join(ACCEPT_TYPES)}")


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(400, f"body is not UTF-8 text: {e.reason} at byte {e.start}") from None


def _json(text: bytes | str, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise RequestError(400, f"{where} is not valid JSON: {e}") from None


def _csv_rows(body: bytes, specs: list[FieldSpec], max_instances: int) -> list[dict]:
    text = _utf8(body)
    names = [s.name for s in specs]
    by_name = {s.name: s for s in specs}
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as e:
        raise RequestError(400, f"body is not valid CSV: {e}") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise RequestError(400, "empty request body: no CSV rows")
    header = [c.strip() for c in rows[0]]
    if set(names) <= set(header):  # a header row naming (at least) every field
        columns, rows = header, rows[1:]
        if len(set(header)) != len(header):
            raise RequestError(400, "the CSV header names a column twice")
    elif any(h in by_name for h in header) and not any(_looks_numeric(h) for h in header):
        missing = [n for n in names if n not in header]
        raise RequestError(400, f"the CSV header lacks fields: {', '.join(missing)}")
    else:
        columns = names
    if not rows:
        raise RequestError(400, "no instances to predict: the CSV has a header but no rows")
    if len(rows) > max_instances:
        raise RequestError(413, f"too many instances: {len(rows)} > {max_instances} per request; split the batch")
    out = []
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise RequestError(400, f"CSV row {i + 1} has {len(row)} values, expected {len(columns)} "
                                    f"({'as the header' if columns is header else 'in the order ' + ','.join(names)})")
        record = {}
        for col, cell in zip(columns, row):
            spec = by_name.get(col)
            if spec is None:
                continue
            try:
                record[col] = typed_cell(spec, cell)
            except CellError as e:
                raise RequestError(422, f"invalid instance: instances[{i}].{col}: {e} (got {cell[:40]!r})",
                                   [{"field": f"instances[{i}].{col}", "error": str(e)}]) from None
        out.append(record)
    return out


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def parse_instances(body: bytes, content_type: str, specs: list[FieldSpec], max_instances: int) -> list:
    """The list of instances in a body (their fields are validated later, by the schema)."""
    if not body.strip():
        raise RequestError(400, "empty request body: send an instance object, {\"instances\": [...]}, JSON lines or CSV")
    if content_type == CSV:
        return _csv_rows(body, specs, max_instances)
    if content_type == JSONLINES:
        instances = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                instances.append(_json(line, f"line {number}"))
                if len(instances) > max_instances:
                    raise RequestError(413, f"too many instances: more than {max_instances} per request; split the batch")
    else:
        doc = _json(body, "body")
        if isinstance(doc, dict):
            instances = doc["instances"] if "instances" in doc else [doc]
            if not isinstance(instances, list):
                raise RequestError(400, f'"instances" must be a list, not {_json_type(instances)}')
        elif isinstance(doc, list):
            instances = doc
        else:
            raise RequestError(400, f"body must be an instance object, {{\"instances\": [...]}} or a list, not {_json_type(doc)}")
    if not instances:
        raise RequestError(400, "no instances to predict: the batch is empty")
    if len(instances) > max_instances:
        raise RequestError(413, f"too many instances: {len(instances)} > {max_instances} per request; split the batch")
    return instances


def _json_type(v: Any) -> str:
    """JSON's name for a value's type (never a Python class name in a client message)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _csv_cells(kind: str, p: dict) -> list:
    if kind == "price":
        return [repr(p["price_usd"])]
    if kind == "demand":
        return [p["demand_class"], *(repr(v) for v in p["probabilities"].values())]
    return [repr(p["anomaly_score"]), "true" if p["is_anomaly"] else "false"]


def encode(kind: str, predictions: list[dict], accept: str) -> bytes:
    """The response body for ``predictions`` in the negotiated type."""
    if accept == JSONLINES:
        return b"\n".join(orjson.dumps(p) for p in predictions) + b"\n"
    if accept == CSV:
        return "".join(",".join(_csv_cells(kind, p)) + "\n" for p in predictions).encode()
    return orjson.dumps({"model": kind, "predictions": predictions})
