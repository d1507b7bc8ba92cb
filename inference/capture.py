"""Data capture in SageMaker's own format, written by the local server (``airfare serve --capture DIR``).

A real endpoint with ``DataCaptureConfig`` writes JSON lines to
``s3://<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl``, one line per
sampled invocation::

    {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                       "data": "{...}", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "{...}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-11-30T21:40:05Z"},
     "eventVersion": "0"}

``encoding`` is ``JSON`` for the content types listed in ``CaptureContentTypeHeader.JsonContentTypes``,
``CSV`` for ``CsvContentTypes`` (``data`` is then the body as text) and ``BASE64`` otherwise.
``eventMetadata`` carries ``inferenceId`` when the caller passed one (``InferenceId``), which is how
Model Monitor joins ground truth. This writer produces the same lines under ``DIR`` so Model Monitor
code (issue 13) reads local and S3 captures alike.

Cost on the hot path: sampling is one ``random()``; a sampled request appends its bytes, types and
time to a queue. Lines are encoded and written in batches (:meth:`CaptureWriter.flush`), at most
``FLUSH_EVERY_S`` apart and on shutdown, never per request. Measured in process (README, "Serving
speed"): 100 % capture costs 3-4 µs per one-record request of the price model, about 10 % of the
request handler.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import threading
import time
import uuid
from collections import deque
from itertools import chain, repeat
from pathlib import Path

import orjson

VARIANT = "AllTraffic"
EVENT_VERSION = "0"
EVENT_VERSION_BYTES = EVENT_VERSION.encode()
# What `airfare deploy` puts in CaptureContentTypeHeader (pipelines.deploy imports these).
JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")
CSV_CONTENT_TYPES = ("text/csv",)
FLUSH_EVERY_S = 0.1  # a batch of this long stalls the event loop ~1 ms at 7k req/s per worker
# Version 4, variant 1 bits of a UUID (RFC 4122), applied to 128 random bits.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_SET = (0x4 << 76) | (0x2 << 62)
_ID_MASK = (1 << 48) - 1
# A batch is encoded and written in chunks of 32 records (~30 KB): one 1 MB join per batch, and the
# freed escaped bodies, made glibc hand memory back and fault it in again at every batch (measured:
# 2.6 page faults per record, which tripled capture's cost in the request handler).
_CHUNK = 32
_TAIL = b'},"eventVersion":"' + EVENT_VERSION_BYTES + b'"}\n'
_QUOTE_TAIL = b'"' + _TAIL


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def encode_payload(body: bytes, content_type: str, mode: str,
                   json_types=JSON_CONTENT_TYPES, csv_types=CSV_CONTENT_TYPES) -> dict:
    """One ``endpointInput``/``endpointOutput`` object: text for JSON/CSV types, base64 otherwise."""
    media = _media(content_type)
    encoding = "JSON" if media in json_types else "CSV" if media in csv_types else "BASE64"
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if encoding == "BASE64":
        data = base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_file_path(root: Path, endpoint: str, variant: str, when: dt.datetime, token: str) -> Path:
    """``root/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<token>.jsonl`` (UTC), as SageMaker names them."""
    name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{token}.jsonl"
    return root / endpoint / variant / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}" / f"{when:%H}" / name


class CaptureWriter:
    """Samples invocations and appends them, in SageMaker's capture format, to hourly files.

    One writer per worker process: each has its own files (the uuid in the name), so workers never
    share a file handle. ``percent`` is ``InitialSamplingPercentage`` (0..100).

    :meth:`record` only appends the request's bytes (already in hand), its types and its time to a
    queue; the lines are encoded and written in batches by :meth:`flush`, which the server calls
    every ``FLUSH_EVERY_S`` from a background task and on shutdown (:meth:`close`), and which
    :meth:`record` calls itself once ``MAX_PENDING`` records wait (so a caller without that task
    never holds more). A batch is encoded in one loop into one list of byte strings, from constant
    fragments cached per pair of content types, and written with one ``write``. Measured in-process
    (``benchmarks/bench_serving.py --micro``): what each step costs inside the request handler is
    two to three times what it costs in a tight loop (the handler's code and data leave the caches),
    so the per-request part is one ``deque.append`` and everything else is batched. Nothing recorded
    is lost on a graceful shutdown: ``close`` writes what is pending before it closes the file.

    ``eventId`` is UUID-shaped (version 4, variant 1 bits): a random prefix drawn per writer and a
    48-bit counter starting at a random value, unique without a random draw per record.

    Thread safety: :meth:`record` appends to a ``collections.deque`` (atomic), and :meth:`flush`
    takes (under its lock) exactly the records that were queued when it started, so a record
    made by another thread meanwhile waits for the next flush instead of being lost.
    """

    MAX_PENDING = 4096

    def __init__(self, root: str | os.PathLike, endpoint: str, variant: str = VARIANT, percent: float = 100.0,
                 json_types=JSON_CONTENT_TYPES, csv_types=CSV_CONTENT_TYPES, rng: random.Random | None = None,
                 clock=time.time):
        if not 0 <= percent <= 100:
            raise ValueError(f"capture percentage {percent} is not within 0..100")
        self.root, self.endpoint, self.variant = Path(root), endpoint, variant
        self.fraction = percent / 100.0
        self.json_types, self.csv_types = tuple(json_types), tuple(csv_types)
        rng = rng or random.Random()  # seeded from os.urandom
        self._random = rng.random
        h = b"%032x" % ((rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET)
        self._id_prefix = b"-".join((h[:8], h[8:12], h[12:16], h[16:20], b""))
        self._id_counter = rng.getrandbits(47)  # 2^47 ids to go before the 48-bit field could wrap
        self._clock = clock
        self._pending: deque = deque()
        self._append = self._pending.append
        self._lock = threading.Lock()  # flush and close, from the server's flusher, record or shutdown
        self._hour_key = -1
        self._fh = None
        self._hour: tuple | None = None
        self._second = -1
        self._stamp = b""
        self._fragments: dict = {}
        self._heads: dict = {}
        self.path: Path | None = None
        self.records = 0

    def sampled(self) -> bool:
        """Whether this invocation is captured (cheap: one random draw)."""
        return self.fraction > 0 and (self.fraction >= 1 or self._random() < self.fraction)

    def _file(self, now: float):
        hour_key = int(now // 3600)
        if self._fh is not None and hour_key == self._hour_key:
            return self._fh
        when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        hour = (when.year, when.month, when.day, when.hour)
        self._hour_key = hour_key
        if self._fh is None or hour != self._hour:
            self._close_file()
            self.path = capture_file_path(self.root, self.endpoint, self.variant, when, str(uuid.uuid4()))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab", buffering=1 << 20)  # noqa: SIM115 - kept open across requests
            self._hour = hour
        return self._fh

    @property
    def pending(self) -> int:
        """Records taken but not yet written."""
        return len(self._pending)

    def record(self, request_body: bytes, request_type: str, response_body: bytes, response_type: str,
               inference_id: str | None = None) -> None:
        """Take one invocation (call only when :meth:`sampled` said so); written by the next :meth:`flush`."""
        self._append((self._clock(), request_body, request_type, response_body, response_type, inference_id))
        if len(self._pending) >= self.MAX_PENDING:
            self.flush()

    def _fragment(self, content_type: str, mode: str) -> tuple[bytes, bool, bytes]:
        """``encode_payload``'s object as (head up to ``"data":``, text or not, tail after data), cached."""
        parts = self._fragments.get((content_type, mode))
        if parts is None:
            head = orjson.dumps({"observedContentType": content_type, "mode": mode})[:-1] + b',"data":'
            encoding = encode_payload(b"", content_type, mode, self.json_types, self.csv_types)["encoding"]
            parts = self._fragments[(content_type, mode)] = (head, encoding != "BASE64",
                                                             b',"encoding":"%s"}' % encoding.encode())
        return parts

    def _payload(self, body: bytes, content_type: str, mode: str) -> bytes:
        """``encode_payload`` as JSON bytes, one record at a time (same fields, same order)."""
        head, text, tail = self._fragment(content_type, mode)
        if text:
            try:
                return head + orjson.dumps(body.decode("utf-8")) + tail
            except UnicodeDecodeError:
                pass
        return head + b'"' + base64.b64encode(body) + b'","encoding":"BASE64"}'

    def _head(self, request_type: str, response_type: str) -> tuple | None:
        """The constant bytes around two text payloads of these types (None: either is not text)."""
        key = (request_type, response_type)
        parts = self._heads.get(key)
        if parts is None and key not in self._heads:
            in_head, in_text, in_tail = self._fragment(request_type, "INPUT")
            out_head, out_text, out_tail = self._fragment(response_type, "OUTPUT")
            if in_text and out_text:
                parts = (b'{"captureData":{"endpointInput":' + in_head,
                         in_tail + b',"endpointOutput":' + out_head,
                         out_tail + b'},"eventMetadata":{"eventId":"' + self._id_prefix)
            self._heads[key] = parts
        return parts

    def _time_part(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:  # inferenceTime has second resolution, as SageMaker writes it
            self._second = second
            self._stamp = b'","inferenceTime":"' + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
        return self._stamp

    def flush(self) -> None:
        """Encode and write every pending record, each into the file of its own hour, and flush the file."""
        with self._lock:
            queue = self._pending
            n = len(queue)
            if n:
                take = queue.popleft
                self._write([take() for _ in range(n)])
            if self._fh is not None:
                self._fh.flush()

    def _write(self, batch: list[tuple]) -> None:
        """Write ``batch`` in chunks of ``_CHUNK`` records: a chunk of one hour and one pair of text types
        (the usual case) goes through C-level maps and one join, any other record by record."""
        counter = self._id_counter
        self._id_counter = counter + len(batch)
        for start in range(0, len(batch), _CHUNK):
            chunk = batch[start:start + _CHUNK]
            if not self._write_uniform(chunk, counter + start):
                self._write_mixed(chunk, counter + start)
        self.records += len(batch)

    def _write_uniform(self, chunk: list[tuple], first_id: int) -> bool:
        """Write ``chunk`` if its records share their hour and their (text) content types; else False."""
        times, reqs, rtypes, resps, otypes, iids = zip(*chunk)
        n = len(chunk)
        if rtypes.count(rtypes[0]) != n or otypes.count(otypes[0]) != n:
            return False
        first, last = min(times), max(times)
        if first // 3600 != last // 3600:
            return False
        head = self._heads.get((rtypes[0], otypes[0])) or self._head(rtypes[0], otypes[0])
        if head is None:
            return False
        dumps = orjson.dumps
        try:
            ins = list(map(dumps, map(bytes.decode, reqs)))
            outs = list(map(dumps, map(bytes.decode, resps)))
        except (UnicodeDecodeError, TypeError):  # not UTF-8 (base64, record by record), or not bytes
            return False
        fh = self._file(first)
        if int(first) == int(last):
            stamps = repeat(self._time_part(first), n)
        else:
            stamps = [self._time_part(t) for t in times]
        ids = [b"%012x" % (i & _ID_MASK) for i in range(first_id, first_id + n)]
        tails = [b'","inferenceId":' + dumps(iid) + _TAIL if iid else _QUOTE_TAIL for iid in iids]
        fh.write(b"".join(chain.from_iterable(zip(repeat(head[0], n), ins, repeat(head[1], n), outs,
                                                   repeat(head[2], n), ids, stamps, tails))))
        return True

    def _write_mixed(self, chunk: list[tuple], first_id: int) -> None:
        """Write ``chunk`` record by record: each into the file of its hour, text or base64 per body."""
        for i, (now, req, rtype, resp, otype, iid) in enumerate(chunk, start=first_id):
            fh = self._file(now)
            head = self._heads.get((rtype, otype)) or self._head(rtype, otype)
            line = None
            if head is not None:  # both types are captured as text
                try:
                    line = (head[0], orjson.dumps(req.decode()), head[1], orjson.dumps(resp.decode()), head[2])
                except UnicodeDecodeError:  # a body that is not UTF-8 after all: base64, as encode_payload says
                    pass
            if line is None:
                line = (b'{"captureData":{"endpointInput":', self._payload(req, rtype, "INPUT"),
                        b',"endpointOutput":', self._payload(resp, otype, "OUTPUT"),
                        b'},"eventMetadata":{"eventId":"', self._id_prefix)
            fh.write(b"".join((*line, b"%012x" % (i & _ID_MASK), self._time_part(now),
                               b'","inferenceId":' + orjson.dumps(iid) + _TAIL if iid else _QUOTE_TAIL)))

    def _close_file(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        """Write what is pending and close the file (the server calls this on shutdown)."""
        self.flush()
        with self._lock:
            self._close_file()
