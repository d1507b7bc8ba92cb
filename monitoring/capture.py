"""Reading SageMaker data-capture files and ground-truth files into tables.

Data capture (Developer Guide, "Capture data from real-time endpoint"): JSON lines under
``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``, one line per invocation::

    {"captureData": {"endpointInput":  {"observedContentType", "mode": "INPUT",  "data", "encoding"},
                     "endpointOutput": {"observedContentType", "mode": "OUTPUT", "data", "encoding"}},
     "eventMetadata": {"eventId", "inferenceId"?, "inferenceTime"}, "eventVersion": "0"}

``encoding`` is ``JSON`` or ``CSV`` (the body as text) or ``BASE64``. A body holds one or more
records, in any shape the endpoint accepts: a JSON object, ``{"instances": [...]}``, a JSON list,
JSON lines, or CSV with or without a header (headerless CSV is in the model's feature order).

Ground truth (Developer Guide, "Ingest ground truth labels and merge them with predictions"):
JSON lines under ``<prefix>/yyyy/mm/dd/hh/``, one per label::

    {"groundTruthData": {"data": "...", "encoding": "CSV"|"JSON"|"BASE64"},
     "eventMetadata": {"eventId": "..."}, "eventVersion": "0"}

``eventId`` is the captured event's ``inferenceId`` when the caller gave one (``InferenceId`` of
``invoke_endpoint``), else its ``eventId``. A request carrying n > 1 records gets record ids
``<id>:<i>`` (i = 0..n-1), so each record can be labelled on its own.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

_HOUR_PATH = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})$")
EVENT_COLUMNS = ("record_id", "event_id", "inference_time")


class CaptureError(ValueError):
    """A capture or ground-truth file that does not follow the format (names the file and line)."""


def parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    """ISO 8601 (``Z`` allowed) or a date -> aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        t = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        try:
            t = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def decode(block: dict[str, Any], where: str) -> str:
    """The body text of a ``captureData.endpointInput/endpointOutput`` or ``groundTruthData`` block."""
    if not isinstance(block, dict) or "data" not in block:
        raise CaptureError(f"{where}: no 'data' field")
    data, encoding = block["data"], str(block.get("encoding", "JSON")).upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as e:
            raise CaptureError(f"{where}: BASE64 data does not decode to UTF-8 text: {e}") from None
    if encoding in ("JSON", "CSV"):
        return data if isinstance(data, str) else json.dumps(data)
    raise CaptureError(f"{where}: unknown encoding {encoding!r} (expected JSON, CSV or BASE64)")


def parse_records(text: str, content_type: str | None, columns: list[str] | None, where: str) -> list[Any]:
    """The records of one body: dicts (JSON objects, CSV with a header or in ``columns`` order) or scalars."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    text = text.strip()
    if not text:
        return []
    if "csv" in ctype:
        rows = list(csv.reader(io.StringIO(text)))
        if columns and rows and rows[0] == list(columns[: len(rows[0])]) and len(rows[0]) == len(columns):
            rows = rows[1:]
            return [dict(zip(columns, r)) for r in rows]
        if columns and rows and all(len(r) == len(columns) for r in rows):
            return [dict(zip(columns, r)) for r in rows]
        if rows and len(rows) > 1 and not any(_numberish(c) for c in rows[0]):
            header = rows[0]
            return [dict(zip(header, r)) for r in rows[1:]]
        return [r[0] if len(r) == 1 else r for r in rows]
    if "jsonlines" in ctype or "jsonl" in ctype or ("\n" in text and not text.startswith(("[", "{\"instances"))):
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            pass
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptureError(f"{where}: body is not JSON ({e.msg}) and its content type is {ctype or 'unset'}") from None
    if isinstance(body, dict):
        for key in ("instances", "predictions"):
            if isinstance(body.get(key), list):
                return body[key]
        return [body]
    if isinstance(body, list):
        return body
    return [body]


def _numberish(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def hour_files(root: Path, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[Path]:
    """Every ``.jsonl`` file under ``root``; folders ``yyyy/mm/dd/hh`` outside the window are skipped."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"capture folder {root} does not exist")
    out = []
    for path in sorted(root.rglob("*.jsonl")):
        m = _HOUR_PATH.search(path.parent.as_posix())
        if m and (since or until):
            hour = dt.datetime(*map(int, m.groups()), tzinfo=dt.timezone.utc)
            if (since and hour + dt.timedelta(hours=1) <= since) or (until and hour > until):
                continue
        out.append(path)
    return out


def iter_lines(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise CaptureError(f"{path}:{i}: not a JSON line ({e.msg})") from None
            if not isinstance(doc, dict):
                raise CaptureError(f"{path}:{i}: a line must be a JSON object")
            yield i, doc


@dataclass
class Captured:
    """Captured traffic: one row per record with its inputs, and its outputs beside it."""

    inputs: pd.DataFrame
    outputs: pd.DataFrame
    events: pd.DataFrame
    files: int = 0
    skipped: list[str] = field(default_factory=list)


def read_capture(root: Path | str, *, columns: list[str] | None = None, since=None, until=None,
                 output_columns: list[str] | None = None) -> Captured:
    """All records captured under ``root`` with ``since <= inferenceTime < until``.

    ``columns``: the model's feature order, used for headerless CSV bodies. Rows of ``inputs``,
    ``outputs`` and ``events`` (``record_id``, ``event_id``, ``inference_time``) align.
    """
    since, until = parse_time(since), parse_time(until)
    files = hour_files(Path(root), since, until)
    inputs, outputs, events = [], [], []
    for path in files:
        for lineno, doc in iter_lines(path):
            where = f"{path}:{lineno}"
            cap = doc.get("captureData")
            meta = doc.get("eventMetadata") or {}
            if not isinstance(cap, dict) or "endpointInput" not in cap:
                raise CaptureError(f"{where}: no captureData.endpointInput (is this a data-capture file?)")
            when = parse_time(meta.get("inferenceTime"))
            if when is None:
                raise CaptureError(f"{where}: eventMetadata.inferenceTime is missing")
            if (since and when < since) or (until and when >= until):
                continue
            event_id = str(meta.get("inferenceId") or meta.get("eventId") or f"{path.name}:{lineno}")
            inp = cap["endpointInput"]
            recs = parse_records(decode(inp, where + " endpointInput"), inp.get("observedContentType"), columns, where)
            outs: list[Any] = []
            if isinstance(cap.get("endpointOutput"), dict):
                out = cap["endpointOutput"]
                outs = parse_records(decode(out, where + " endpointOutput"), out.get("observedContentType"),
                                     output_columns, where)  # fmt: skip
            for i, rec in enumerate(recs):
                rid = event_id if len(recs) == 1 else f"{event_id}:{i}"
                inputs.append(rec if isinstance(rec, dict) else {"_value": rec})
                o = outs[i] if i < len(outs) and len(outs) == len(recs) else None
                outputs.append(o if isinstance(o, dict) else {"_prediction": o})
                events.append({"record_id": rid, "event_id": event_id, "inference_time": when})
    ev = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    if len(ev):
        ev["inference_time"] = pd.to_datetime(ev["inference_time"], utc=True)
    # object columns: each value keeps the type it was sent with (a JSON 3 stays an int, 3.0 a float,
    # a CSV cell text), which the analyzer's type check reads; pandas would widen ints with nulls to float
    return Captured(inputs=pd.DataFrame(inputs, dtype=object), outputs=pd.DataFrame.from_records(outputs), events=ev,
                    files=len(files))  # fmt: skip


def read_ground_truth(root: Path | str, *, until=None) -> pd.DataFrame:
    """Labels under ``root`` (``record_id``, ``label``), the last delivery of an id winning.

    ``until``: only labels delivered in hour folders up to then (what a job running then sees).
    """
    until = parse_time(until)
    rows = []
    for path in hour_files(Path(root), None, until):
        for lineno, doc in iter_lines(path):
            where = f"{path}:{lineno}"
            gt, meta = doc.get("groundTruthData"), doc.get("eventMetadata") or {}
            if not isinstance(gt, dict) or not meta.get("eventId"):
                raise CaptureError(f"{where}: a ground-truth line needs groundTruthData and eventMetadata.eventId")
            text = decode(gt, where).strip()
            label: Any = text
            if str(gt.get("encoding", "")).upper() == "JSON":
                try:
                    label = json.loads(text)
                except json.JSONDecodeError:
                    label = text
            rows.append({"record_id": str(meta["eventId"]), "label": label})
    frame = pd.DataFrame(rows, columns=["record_id", "label"])
    return frame.drop_duplicates("record_id", keep="last").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Writing (fixtures, the world generator, the benchmark): the same format, from Python objects
# ---------------------------------------------------------------------------------------------
def capture_line(event_id: str, when: dt.datetime, body_in: str, body_out: str, *, content_type: str = "application/json",
                 accept: str = "application/json", inference_id: str | None = None) -> str:
    """One data-capture JSON line, as SageMaker writes it with ``CaptureContentTypeHeader`` set for JSON."""
    meta = {"eventId": event_id, "inferenceTime": when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    if inference_id is not None:
        meta["inferenceId"] = inference_id

    def block(ctype: str, mode: str, data: str) -> dict:
        enc = "JSON" if "json" in ctype else ("CSV" if "csv" in ctype else "BASE64")
        payload = data if enc != "BASE64" else base64.b64encode(data.encode()).decode()
        return {"observedContentType": ctype, "mode": mode, "data": payload, "encoding": enc}

    doc = {
        "captureData": {"endpointInput": block(content_type, "INPUT", body_in), "endpointOutput": block(accept, "OUTPUT", body_out)},
        "eventMetadata": meta,
        "eventVersion": "0",
    }
    return json.dumps(doc, separators=(",", ":"))


def ground_truth_line(event_id: str, label: Any, encoding: str = "CSV") -> str:
    data = json.dumps(label) if encoding == "JSON" else str(label)
    return json.dumps({"groundTruthData": {"data": data, "encoding": encoding}, "eventMetadata": {"eventId": event_id},
                       "eventVersion": "0"}, separators=(",", ":"))  # fmt: skip


def hour_path(root: Path, when: dt.datetime) -> Path:
    w = when.astimezone(dt.timezone.utc)
    return Path(root) / f"{w:%Y/%m/%d/%H}"
