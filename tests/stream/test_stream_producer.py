"""The Kinesis producer: encoding, batching limits, partial-failure retries, delivery to moto."""

from __future__ import annotations

import random
import threading

import orjson
import pytest

from core.contract import SearchEvent, partition_key
from seed_infra.kinesis_producer import (
    MAX_BYTES_PER_REQUEST,
    MAX_RECORD_BYTES,
    DeliveryError,
    KinesisProducer,
    ProducerConfig,
    Record,
    Rejected,
    backoff_delay,
    batch_records,
    encode_event,
    stream_exists,
)


class Spy:
    """Wraps a real client: records every PutRecords call; optionally fails chosen records."""

    def __init__(self, client, fail=None):
        self.client = client
        self.calls: list[list[dict]] = []
        self.fail = fail  # fail(call_no, position, entry) -> ErrorCode | None
        # moto's Kinesis backend is not thread-safe (concurrent PutRecords on one shard can lose
        # records), so the real calls are serialised here; the producer's own concurrency still runs.
        self._moto_lock = threading.Lock()

    def put_records(self, StreamName, Records):
        with self._moto_lock:
            return self._put_records(StreamName, Records)

    def _put_records(self, StreamName, Records):
        call_no = len(self.calls)
        self.calls.append(Records)
        if self.fail is None:
            return self.client.put_records(StreamName=StreamName, Records=Records)
        codes = [self.fail(call_no, pos, entry) for pos, entry in enumerate(Records)]
        ok = [entry for entry, code in zip(Records, codes) if code is None]
        ok_results = iter(self.client.put_records(StreamName=StreamName, Records=ok)["Records"] if ok else [])
        results = [
            next(ok_results) if code is None else {"ErrorCode": code, "ErrorMessage": f"injected {code}"} for code in codes
        ]
        return {"FailedRecordCount": sum(c is not None for c in codes), "Records": results}


def _ids(datas: list[bytes]) -> list[str]:
    return [orjson.loads(d)["event_id"] for d in datas]


# ---------------------------------------------------------------------------------------------
# Encoding and batching (no network)
# ---------------------------------------------------------------------------------------------
def test_encode_event_is_one_valid_json_line_with_route_key(make_events):
    event = make_events(1)[0]
    record = encode_event(event, 7)
    assert isinstance(record, Record)
    assert record.data.endswith(b"\n") and record.data.count(b"\n") == 1
    assert record.partition_key == "JFK-LAX" == partition_key(event)
    assert record.index == 7 and record.event_id == "ev-0000000"
    doc = orjson.loads(record.data)
    assert doc["event_time"] == "2026-03-01T12:00:00Z"  # UTC with 'Z', as the contract says
    assert doc["offers"][0]["departure_time"] == "2026-04-01T08:00:00"  # local time stays naive
    SearchEvent.model_validate(doc)  # round-trips to the contract
    assert record.size == len(record.data) + len("JFK-LAX")


def test_encode_event_rejects_oversize_and_unserialisable(make_events):
    big = make_events(1, padding=MAX_RECORD_BYTES)[0]
    rej = encode_event(big, 3)
    assert isinstance(rej, Rejected) and rej.index == 3 and rej.event_id == "ev-0000000"
    assert "exceeds" in rej.reason and rej.size > MAX_RECORD_BYTES
    bad = make_events(1)[0] | {"extra": object()}
    assert "not serialisable" in encode_event(bad).reason
    assert "not a JSON object" in encode_event(["x"]).reason


def test_record_limit_counts_partition_key_bytes(make_events):
    event = make_events(1)[0]
    data_len = len(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z))
    assert isinstance(encode_event(event, max_record_bytes=data_len + 7), Record)  # 7 = len("JFK-LAX")
    assert isinstance(encode_event(event, max_record_bytes=data_len + 6), Rejected)


def _rec(i: int, size: int) -> Record:
    return Record(b"x" * (size - 1), "k", f"e{i}", i)


def test_batch_records_caps_count_and_keeps_order():
    batches = list(batch_records((_rec(i, 10) for i in range(1201))))
    assert [len(b) for b in batches] == [500, 500, 201]
    assert [r.index for b in batches for r in b] == list(range(1201))


def test_batch_records_caps_bytes_including_keys():
    size = 1_000_000
    batches = list(batch_records(_rec(i, size) for i in range(12)))
    assert all(sum(r.size for r in b) <= MAX_BYTES_PER_REQUEST for b in batches)
    assert [len(b) for b in batches] == [5, 5, 2]
    # exactly-at-the-limit packs fully
    exact = list(batch_records((_rec(i, 100) for i in range(10)), max_bytes=500))
    assert [len(b) for b in exact] == [5, 5]
    with pytest.raises(ValueError, match="max_records"):
        list(batch_records([], max_records=501))


def test_backoff_is_full_jitter_exponential_and_capped():
    rng = random.Random(42)
    delays = {a: [backoff_delay(a, base=0.1, cap=2.0, rng=rng) for _ in range(2000)] for a in (1, 2, 3, 10)}
    for attempt, ds in delays.items():
        ceiling = min(2.0, 0.1 * 2 ** (attempt - 1))
        assert all(0.0 <= d <= ceiling for d in ds)
        assert max(ds) > 0.9 * ceiling and min(ds) < 0.1 * ceiling  # spread over the whole range: jitter
    assert max(delays[10]) <= 2.0
    assert backoff_delay(5, base=0.1, cap=2.0, rng=random.Random(1)) == backoff_delay(5, base=0.1, cap=2.0, rng=random.Random(1))
    with pytest.raises(ValueError):
        backoff_delay(0, base=0.1, cap=1.0, rng=rng)


def test_config_validates():
    with pytest.raises(ValueError):
        ProducerConfig(max_attempts=0)
    with pytest.raises(ValueError):
        ProducerConfig(delay_between_batches_s=-1)
    with pytest.raises(ValueError):
        ProducerConfig(max_records=0)


# ---------------------------------------------------------------------------------------------
# Against moto
# ---------------------------------------------------------------------------------------------
def test_records_arrive_exactly_once(kinesis, stream, make_events, read_stream):
    events = make_events(1234)
    spy = Spy(kinesis)
    result = KinesisProducer(stream, client=spy).send(iter(events))
    assert result.records_sent == 1234 and result.rejects == []
    assert result.batches == 3 and result.put_calls == 3 and result.retried_records == 0
    assert [len(c) for c in spy.calls] == [500, 500, 234]
    assert sum(result.shards.values()) == 1234 and len(result.shards) == 2  # routes spread over both shards
    assert result.records_per_s > 0 and result.bytes_per_s > 0

    datas = read_stream(stream)
    assert sorted(_ids(datas)) == [e["event_id"] for e in events]
    assert all(d.endswith(b"\n") for d in datas)
    assert result.bytes_sent == sum(len(d) for d in datas) + sum(len(partition_key(e)) for e in events)


def test_large_records_respect_5mib_and_oversize_is_rejected(kinesis, stream, make_events, read_stream):
    events = make_events(11, padding=900_000)
    events.insert(4, make_events(1, padding=1_100_000)[0] | {"event_id": "too-big"})
    spy = Spy(kinesis)
    result = KinesisProducer(stream, client=spy).send(events)
    assert [r.event_id for r in result.rejects] == ["too-big"] and result.rejects[0].index == 4
    assert result.records_sent == 11
    for call in spy.calls:
        assert len(call) <= 500
        assert sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in call) <= MAX_BYTES_PER_REQUEST
    assert len(spy.calls) == 3  # 5 records of ~0.9 MB per call
    assert sorted(_ids(read_stream(stream))) == sorted(e["event_id"] for e in events if e["event_id"] != "too-big")


def test_partial_failures_retry_only_failed_records(kinesis, stream, make_events, read_stream):
    throttled = "ProvisionedThroughputExceededException"

    def fail(call_no, pos, entry):
        # first call: every third record throttled; second call: the first failed one fails again (InternalFailure)
        if call_no == 0 and pos % 3 == 0:
            return throttled
        if call_no == 1 and pos == 0:
            return "InternalFailure"
        return None

    sleeps: list[float] = []
    spy = Spy(kinesis, fail)
    producer = KinesisProducer(
        stream, client=spy, sleep=sleeps.append, rng=random.Random(0), config=ProducerConfig(max_records=100, base_delay_s=0.5, max_delay_s=4)
    )
    events = make_events(300)
    result = producer.send(events)

    assert result.records_sent == 300
    assert [len(c) for c in spy.calls[:3]] == [100, 34, 1]  # only failed records are re-sent
    assert result.throttled_records == 34
    assert result.retried_records == 35 and result.retried_calls == 2
    assert result.put_calls == 5 and result.batches == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    ids = _ids(read_stream(stream))
    assert len(ids) == 300 and sorted(ids) == [e["event_id"] for e in events]  # exactly once


def test_permanent_failure_raises_naming_undelivered(kinesis, stream, make_events, read_stream):
    def fail(call_no, pos, entry):
        return "ProvisionedThroughputExceededException" if orjson.loads(entry["Data"])["event_id"] in {"ev-0000003", "ev-0000007"} else None

    sleeps: list[float] = []
    producer = KinesisProducer(stream, client=Spy(kinesis, fail), sleep=sleeps.append, config=ProducerConfig(max_attempts=3, max_records=10))
    with pytest.raises(DeliveryError) as err:
        producer.send(make_events(25))
    e = err.value
    assert "2 record(s) not delivered" in str(e) and "after 3 attempts" in str(e)
    assert "ev-0000003" in str(e) and "ev-0000007" in str(e)
    assert {f.event_id for f in e.failed} == {"ev-0000003", "ev-0000007"}
    assert e.result.records_sent == 8 and len(sleeps) == 2  # the first batch's 8 others arrived; stopped there
    assert len(read_stream(stream)) == 8


def test_delay_between_batches_uses_injected_sleep(kinesis, stream, make_events):
    sleeps: list[float] = []
    producer = KinesisProducer(stream, client=kinesis, sleep=sleeps.append, config=ProducerConfig(max_records=10, delay_between_batches_s=0.25))
    progress: list[int] = []
    result = producer.send(make_events(35), on_batch=lambda r, n: progress.append(r.records_sent))
    assert sleeps == [0.25, 0.25, 0.25]  # between the 4 batches, not after the last
    assert progress == [10, 20, 30, 35] and result.batches == 4


def test_stream_exists(kinesis, stream):
    assert stream_exists(stream, kinesis)
    assert not stream_exists("no-such-stream-xyz", kinesis)


def test_concurrent_sends_deliver_exactly_once_with_retries(kinesis, stream, make_events, read_stream):
    import threading

    seen: dict[str, int] = {}
    lock = threading.Lock()

    def fail(call_no, pos, entry):
        # every 5th event is throttled on its first two sends, whichever thread sends it
        event_id = orjson.loads(entry["Data"])["event_id"]
        with lock:
            seen[event_id] = seen.get(event_id, 0) + 1
            n = seen[event_id]
        return "ProvisionedThroughputExceededException" if int(event_id[3:]) % 5 == 0 and n <= 2 else None

    events = make_events(1000)
    producer = KinesisProducer(stream, client=Spy(kinesis, fail), sleep=lambda s: None, config=ProducerConfig(max_records=50, concurrency=4))
    progress: list[int] = []
    result = producer.send(events, on_batch=lambda r, n: progress.append(n))
    assert result.records_sent == 1000 and result.batches == 20 and sum(progress) == 1000
    assert result.throttled_records == 400 and result.retried_records == 400 and result.retried_calls == 40
    ids = _ids(read_stream(stream))
    assert len(ids) == 1000 and sorted(ids) == [e["event_id"] for e in events]


def test_concurrent_permanent_failure_reports_all_undelivered(kinesis, stream, make_events):
    bad = {"ev-0000005", "ev-0000042", "ev-0000077"}

    def fail(call_no, pos, entry):
        return "InternalFailure" if orjson.loads(entry["Data"])["event_id"] in bad else None

    producer = KinesisProducer(
        stream, client=Spy(kinesis, fail), sleep=lambda s: None, config=ProducerConfig(max_records=10, max_attempts=2, concurrency=8)
    )
    with pytest.raises(DeliveryError) as err:
        producer.send(make_events(400))
    failed = {f.event_id for f in err.value.failed}
    assert failed <= bad and "ev-0000005" in failed  # the first failing batch, plus any in flight with it
    assert err.value.result.records_sent < 400  # stopped starting new batches
    assert all(f.error_code == "InternalFailure" for f in err.value.failed)
