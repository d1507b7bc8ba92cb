"""Stream search events to a Kinesis data stream with PutRecords.

What the seed's ``kinesis_producer.py`` did with one ``put_record`` per event, done the way
Kinesis wants it: events are serialised once with orjson (one JSON document plus a newline, so
that Firehose writes JSON lines to ``raw/``), packed into PutRecords calls within the service
limits (500 records, 5 MiB counting data and partition keys), and the *failed records* of a
partial failure are re-sent with exponential backoff and full jitter. Throttling of a whole
call is retried by botocore (``core.aws.RETRY_CONFIG``), not here.

Nothing is lost silently: a record that can never be accepted (larger than 1 MiB, no usable
partition key, not serialisable) goes to ``ProduceResult.rejects`` with a reason, and records
still failing after the last attempt raise ``DeliveryError`` naming them.

Ordering: re-sending only the failed records can reorder events of one route (partition key)
relative to each other; consumers dedupe and order by ``event_id``/``event_time``, not arrival.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.contract import partition_key

# Kinesis Data Streams limits (PutRecords): https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
MAX_RECORDS_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024  # data + partition keys of all records
MAX_RECORD_BYTES = 1024 * 1024  # data + partition key of one record
MAX_PARTITION_KEY_CHARS = 256

# Aware UTC datetimes as ISO 8601 with "Z" (the contract's event_time); naive ones (local departure
# times) stay naive; numpy scalars in case a generator yields them.
_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class Record:
    """One encoded event, ready for PutRecords."""

    data: bytes
    partition_key: str
    event_id: str | None
    index: int  # position in the input stream, for error reports

    @property
    def size(self) -> int:
        """Bytes counted against Kinesis limits: data plus the UTF-8 partition key."""
        return len(self.data) + len(self.partition_key.encode())


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event refused before sending, and why."""

    index: int
    event_id: str | None
    reason: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A record Kinesis still refused after the last attempt."""

    index: int
    event_id: str | None
    error_code: str
    error_message: str


@dataclass
class ProduceResult:
    """What a run delivered and how fast (the figures ``airfare produce`` prints)."""

    stream_name: str
    records_sent: int = 0
    bytes_sent: int = 0
    batches: int = 0  # batches delivered (each took one or more PutRecords calls)
    put_calls: int = 0  # PutRecords calls made, first attempts and retries
    retried_records: int = 0  # record re-sends after a partial failure
    retried_calls: int = 0  # PutRecords calls that re-sent failed records
    throttled_records: int = 0  # per-record ProvisionedThroughputExceededException seen
    elapsed_s: float = 0.0
    rejects: list[Rejected] = field(default_factory=list)
    shards: Counter = field(default_factory=Counter)  # records per ShardId

    @property
    def records_per_s(self) -> float:
        return self.records_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "stream_name": self.stream_name,
            "records_sent": self.records_sent,
            "bytes_sent": self.bytes_sent,
            "batches": self.batches,
            "put_calls": self.put_calls,
            "retried_records": self.retried_records,
            "retried_calls": self.retried_calls,
            "throttled_records": self.throttled_records,
            "rejected": len(self.rejects),
            "elapsed_s": round(self.elapsed_s, 3),
            "records_per_s": round(self.records_per_s, 1),
            "bytes_per_s": round(self.bytes_per_s, 1),
            "shards": dict(self.shards),
        }


class DeliveryError(RuntimeError):
    """Records Kinesis kept refusing after the last attempt; ``result`` says what did arrive."""

    def __init__(self, stream_name: str, failed: list[FailedRecord], attempts: int, result: ProduceResult):
        self.stream_name = stream_name
        self.failed = failed
        self.attempts = attempts
        self.result = result
        codes = Counter(f.error_code for f in failed)
        shown = ", ".join(f"{f.event_id or f'#{f.index}'}" for f in failed[:5])
        more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(
            f"{len(failed)} record(s) not delivered to stream {stream_name!r} after {attempts} attempts "
            f"({', '.join(f'{c}: {n}' for c, n in codes.items())}); undelivered: {shown}{more}. "
            f"{result.records_sent} record(s) were delivered before this."
        )


# ---------------------------------------------------------------------------------------------
# Encoding and batching (no network)
# ---------------------------------------------------------------------------------------------
def encode_event(event: dict, index: int = 0, *, max_record_bytes: int = MAX_RECORD_BYTES) -> Record | Rejected:
    """Serialise one event to a Kinesis record, or say why it cannot be one."""
    event_id = event.get("event_id") if isinstance(event, dict) else None
    if not isinstance(event, dict):
        return Rejected(index, None, f"not a JSON object: {type(event).__name__}")
    try:
        data = orjson.dumps(event, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError) as exc:
        return Rejected(index, event_id, f"not serialisable: {exc}")
    key = partition_key(event)
    if not key or len(key) > MAX_PARTITION_KEY_CHARS:
        return Rejected(index, event_id, f"partition key must be 1..{MAX_PARTITION_KEY_CHARS} characters, got {len(key)}")
    record = Record(data, key, event_id, index)
    if record.size > max_record_bytes:
        return Rejected(index, event_id, f"record of {record.size} bytes exceeds the {max_record_bytes}-byte limit", record.size)
    return record


def encode_events(events: Iterable[dict], *, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record | Rejected]:
    """Encode events lazily, keeping their input positions."""
    for index, event in enumerate(events):
        yield encode_event(event, index, max_record_bytes=max_record_bytes)


def batch_records(
    records: Iterable[Record],
    *,
    max_records: int = MAX_RECORDS_PER_REQUEST,
    max_bytes: int = MAX_BYTES_PER_REQUEST,
) -> Iterator[list[Record]]:
    """Pack records, in order, into batches that fit one PutRecords call.

    Every record must already fit on its own (``encode_event`` rejects those that do not).
    """
    if not 1 <= max_records <= MAX_RECORDS_PER_REQUEST:
        raise ValueError(f"max_records must be 1..{MAX_RECORDS_PER_REQUEST}, got {max_records}")
    batch: list[Record] = []
    size = 0
    for record in records:
        if record.size > max_bytes:
            raise ValueError(f"record #{record.index} of {record.size} bytes cannot fit a {max_bytes}-byte batch")
        if batch and (len(batch) >= max_records or size + record.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record.size
    if batch:
        yield batch


def put_records_entries(batch: list[Record]) -> list[dict]:
    """The ``Records`` parameter of a PutRecords call for ``batch``."""
    return [{"Data": r.data, "PartitionKey": r.partition_key} for r in batch]


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): full jitter, uniform in [0, min(cap, base * 2**(attempt-1))].

    Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") spreads retries of
    many producers apart instead of having them hit a hot shard in lock-step.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    return rng.uniform(0.0, ceiling)


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProducerConfig:
    """How the producer batches, retries and paces."""

    max_records: int = MAX_RECORDS_PER_REQUEST
    max_bytes: int = MAX_BYTES_PER_REQUEST
    max_record_bytes: int = MAX_RECORD_BYTES
    max_attempts: int = 6  # PutRecords attempts per batch, the first one included
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0
    delay_between_batches_s: float = 0.0  # demo-speed streaming (the seed's --delay)
    concurrency: int = 1  # PutRecords calls in flight; 1 keeps batches in order

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be 1..64")
        if self.delay_between_batches_s < 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must not be negative")
        if not 1 <= self.max_records <= MAX_RECORDS_PER_REQUEST:
            raise ValueError(f"max_records must be 1..{MAX_RECORDS_PER_REQUEST}")
        if not 1 <= self.max_bytes <= MAX_BYTES_PER_REQUEST:
            raise ValueError(f"max_bytes must be 1..{MAX_BYTES_PER_REQUEST}")
        if not 1 <= self.max_record_bytes <= min(MAX_RECORD_BYTES, self.max_bytes):
            raise ValueError("max_record_bytes must be positive and fit both the Kinesis record limit and max_bytes")


class KinesisProducer:
    """Send event dicts to one stream; ``client`` is any object with boto3's ``put_records``."""

    def __init__(
        self,
        stream_name: str,
        *,
        client: Any = None,
        config: ProducerConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        if client is None:
            from core.aws import client as aws_client

            client = aws_client("kinesis")
        self.stream_name = stream_name
        self.client = client
        self.config = config or ProducerConfig()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()  # random.Random is not safe to share across threads
        self.clock = clock

    def send(
        self,
        events: Iterable[dict],
        *,
        on_batch: Callable[[ProduceResult, int], None] | None = None,
    ) -> ProduceResult:
        """Stream ``events`` (consumed lazily) and return the delivery figures.

        ``on_batch(result, n)`` is called, in this thread, after each delivered batch of ``n``
        records (progress bars). With ``config.concurrency`` > 1, that many PutRecords calls are in
        flight at once (boto3 clients are thread-safe), which hides network latency; batches may
        then land out of order. Raises ``DeliveryError`` when a batch still has failed records
        after the last attempt; no new batch is started after that, in-flight ones are awaited.
        """
        cfg = self.config
        result = ProduceResult(self.stream_name)
        start = self.clock()
        failed: list[FailedRecord] = []

        def accepted() -> Iterator[Record]:
            for item in encode_events(events, max_record_bytes=cfg.max_record_bytes):
                if isinstance(item, Rejected):
                    result.rejects.append(item)
                else:
                    yield item

        def merge(stats: _BatchStats, n: int) -> None:
            stats.merge_into(result)
            result.elapsed_s = self.clock() - start
            if stats.failed:
                failed.extend(stats.failed)
            elif on_batch is not None:
                on_batch(result, n)

        batches = batch_records(accepted(), max_records=cfg.max_records, max_bytes=cfg.max_bytes)
        try:
            if cfg.concurrency == 1:
                for i, batch in enumerate(batches):
                    if i and cfg.delay_between_batches_s > 0:
                        self.sleep(cfg.delay_between_batches_s)
                    merge(self._put_batch(batch), len(batch))
                    if failed:
                        break
            else:
                with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="kinesis-put") as pool:
                    window: deque[tuple[Future, int]] = deque()
                    for i, batch in enumerate(batches):
                        if i and cfg.delay_between_batches_s > 0:
                            self.sleep(cfg.delay_between_batches_s)
                        window.append((pool.submit(self._put_batch, batch), len(batch)))
                        while len(window) >= cfg.concurrency or (window and window[0][0].done()):
                            future, n = window.popleft()
                            merge(future.result(), n)
                        if failed:
                            break
                    while window:
                        future, n = window.popleft()
                        merge(future.result(), n)
        finally:
            result.elapsed_s = self.clock() - start
        if failed:
            raise DeliveryError(self.stream_name, sorted(failed, key=lambda f: f.index), cfg.max_attempts, result)
        return result

    def _put_batch(self, batch: list[Record]) -> _BatchStats:
        """Deliver one batch, re-sending only the records a partial failure names."""
        cfg = self.config
        stats = _BatchStats()
        pending = batch
        failed: list[tuple[Record, dict]] = []
        for attempt in range(1, cfg.max_attempts + 1):
            if attempt > 1:
                with self._rng_lock:
                    delay = backoff_delay(attempt - 1, base=cfg.base_delay_s, cap=cfg.max_delay_s, rng=self.rng)
                self.sleep(delay)
                stats.retried_calls += 1
                stats.retried_records += len(pending)
            response = self.client.put_records(StreamName=self.stream_name, Records=put_records_entries(pending))
            stats.put_calls += 1
            entries = response.get("Records") or []
            if len(entries) != len(pending):
                raise RuntimeError(
                    f"PutRecords returned {len(entries)} results for {len(pending)} records on stream {self.stream_name!r}"
                )
            failed = []
            for record, entry in zip(pending, entries, strict=True):
                if entry.get("ErrorCode"):
                    failed.append((record, entry))
                    if entry["ErrorCode"] == "ProvisionedThroughputExceededException":
                        stats.throttled_records += 1
                else:
                    stats.records_sent += 1
                    stats.bytes_sent += record.size
                    stats.shards[entry.get("ShardId", "?")] += 1
            if not failed:
                stats.batches = 1
                return stats
            pending = [record for record, _ in failed]
        stats.failed = [FailedRecord(r.index, r.event_id, e.get("ErrorCode", "?"), e.get("ErrorMessage", "")) for r, e in failed]
        return stats


@dataclass
class _BatchStats:
    """One batch's figures, built in a worker thread and merged into the result in the caller's."""

    records_sent: int = 0
    bytes_sent: int = 0
    batches: int = 0
    put_calls: int = 0
    retried_records: int = 0
    retried_calls: int = 0
    throttled_records: int = 0
    shards: Counter = field(default_factory=Counter)
    failed: list[FailedRecord] = field(default_factory=list)

    def merge_into(self, result: ProduceResult) -> None:
        for name in ("records_sent", "bytes_sent", "batches", "put_calls", "retried_records", "retried_calls", "throttled_records"):
            setattr(result, name, getattr(result, name) + getattr(self, name))
        result.shards.update(self.shards)


def stream_exists(stream_name: str, client: Any = None) -> bool:
    """Whether ``stream_name`` exists (checked before a long run starts consuming the generator)."""
    if client is None:
        from core.aws import client as aws_client

        client = aws_client("kinesis")
    try:
        client.describe_stream_summary(StreamName=stream_name)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True
