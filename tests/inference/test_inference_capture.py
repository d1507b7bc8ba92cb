"""Data capture in SageMaker's format: file layout, record fields, encodings, sampling, and through the app."""

from __future__ import annotations

import base64
import datetime as dt
import random
import re

import orjson
import pytest
from inference_support import asgi_call, model_fields, records, split_frame

from inference.app import create_app
from inference.capture import CaptureWriter, encode_payload

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
T0 = dt.datetime(2026, 11, 30, 21, 59, 58, 123000, tzinfo=dt.timezone.utc).timestamp()


def _lines(root):
    files = sorted(root.rglob("*.jsonl"))
    return files, [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]


def test_records_are_sagemaker_capture_lines_in_hourly_folders(tmp_path):
    clock = iter([T0, T0 + 0.5, T0 + 3.0]).__next__
    w = CaptureWriter(tmp_path, "price-prediction-endpoint", clock=clock)
    w.record(b'{"a": 1}', "application/json", b'{"model":"price"}', "application/json", inference_id="q-1")
    w.record(b"1,2\n", "text/csv", b"99.5\n", "text/csv")
    w.record(b"\x00\x01", "application/x-npy", b"\xff", "application/octet-stream")  # the next hour
    w.close()
    files, lines = _lines(tmp_path)
    rel = [f.relative_to(tmp_path).as_posix() for f in files]
    assert re.fullmatch(rf"price-prediction-endpoint/AllTraffic/2026/11/30/21/59-58-123-{UUID}\.jsonl", rel[0]), rel
    assert re.fullmatch(rf"price-prediction-endpoint/AllTraffic/2026/11/30/22/00-01-123-{UUID}\.jsonl", rel[1]), rel
    first = lines[0]
    assert set(first) == {"captureData", "eventMetadata", "eventVersion"} and first["eventVersion"] == "0"
    assert first["captureData"] == {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": '{"a": 1}', "encoding": "JSON"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": '{"model":"price"}',
                           "encoding": "JSON"}}
    meta = first["eventMetadata"]
    assert re.fullmatch(UUID, meta["eventId"]) and meta["inferenceTime"] == "2026-11-30T21:59:58Z"
    assert meta["inferenceId"] == "q-1" and "inferenceId" not in lines[1]["eventMetadata"]
    assert lines[1]["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert lines[1]["captureData"]["endpointInput"]["data"] == "1,2\n"
    raw = lines[2]["captureData"]["endpointInput"]
    assert raw["encoding"] == "BASE64" and base64.b64decode(raw["data"]) == b"\x00\x01"
    assert len({line["eventMetadata"]["eventId"] for line in lines}) == 3


def test_undecodable_json_is_captured_as_base64():
    out = encode_payload(b"\xff\xfe", "application/json; charset=utf-8", "INPUT")
    assert out["encoding"] == "BASE64" and out["observedContentType"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("percent,expected", [(0, 0), (100, 2000), (20, 400)])
def test_sampling_percentage(tmp_path, percent, expected):
    w = CaptureWriter(tmp_path, "e", percent=percent, rng=random.Random(7))
    n = sum(w.sampled() for _ in range(2000))
    assert abs(n - expected) <= 60


def test_the_app_captures_what_it_answered(model_dirs, inference_splits, tmp_path):
    writer = CaptureWriter(tmp_path, "price-prediction-endpoint", percent=100)
    app = create_app(model_dirs["price"], capture=writer)
    app.load()
    row = records(split_frame(inference_splits, "price").head(1), model_fields(model_dirs["price"]))[0]
    body = orjson.dumps(row)
    path = "/endpoints/price-prediction-endpoint/invocations"
    status, _, answer, _ = asgi_call(app, "POST", path, body, [("content-type", "application/json"),
                                                              ("x-amzn-sagemaker-inference-id", "search-7")])
    assert status == 200
    status, _, _, _ = asgi_call(app, "POST", "/invocations", b"{}", [("content-type", "application/json")])
    assert status == 422  # refused requests are not captured
    csv_status, _, csv_answer, _ = asgi_call(app, "POST", "/invocations", b"1,2", [("content-type", "image/png")])
    writer.close()
    _, lines = _lines(tmp_path)
    assert len(lines) == 1
    cap = lines[0]["captureData"]
    assert orjson.loads(cap["endpointInput"]["data"]) == row
    assert cap["endpointOutput"]["data"] == answer.decode()
    assert lines[0]["eventMetadata"]["inferenceId"] == "search-7"


def test_lines_built_from_fragments_say_what_encode_payload_says(tmp_path):
    w = CaptureWriter(tmp_path, "e", clock=lambda: T0)
    cases = [(b'{"a": "\\u00e9\\n\\"x"}', "application/json", b'{"m":1}', "application/json", 'id-"7'),
             (b"1,2\n", "text/csv", b"9\n", "text/csv", None),
             (b"\xff\xfe", "application/json; charset=utf-8", b"\x00", "application/x-npy", None)]
    for c in cases:
        w.record(*c)
    w.close()
    _, lines = _lines(tmp_path)
    for (req, req_type, resp, resp_type, iid), line in zip(cases, lines):
        assert list(line) == ["captureData", "eventMetadata", "eventVersion"]
        assert line["captureData"] == {"endpointInput": encode_payload(req, req_type, "INPUT"),
                                       "endpointOutput": encode_payload(resp, resp_type, "OUTPUT")}
        assert line["eventMetadata"].get("inferenceId") == iid


def test_records_wait_for_a_batch_and_close_loses_none(tmp_path, monkeypatch):
    w = CaptureWriter(tmp_path, "e", clock=lambda: T0)
    monkeypatch.setattr(w, "MAX_PENDING", 50)
    for i in range(49):
        w.record(b'{"i": %d}' % i, "application/json", b"{}", "application/json")
    assert w.pending == 49 and not _lines(tmp_path)[1]  # nothing encoded or written per request
    w.record(b'{"i": 49}', "application/json", b"{}", "application/json")  # the 50th writes the batch
    assert w.pending == 0 and len(_lines(tmp_path)[1]) == 50
    for i in range(50, 57):
        w.record(b'{"i": %d}' % i, "application/json", b"{}", "application/json")
    w.close()  # what the server's shutdown calls
    _, lines = _lines(tmp_path)
    assert [orjson.loads(x["captureData"]["endpointInput"]["data"])["i"] for x in lines] == list(range(57))


def test_records_from_threads_racing_a_flusher_are_all_written_once(tmp_path):
    """record appends while flush takes a batch from another thread: nothing lost, nothing twice."""
    import threading

    w = CaptureWriter(tmp_path, "e")
    stop = threading.Event()

    def recorder(tag):
        for i in range(1500):
            w.record(b'{"t": %d, "i": %d}' % (tag, i), "application/json", b"{}", "application/json", f"{tag}-{i}")

    def flusher():
        while not stop.is_set():
            w.flush()

    threads = [threading.Thread(target=recorder, args=(t,)) for t in range(3)]
    f = threading.Thread(target=flusher)
    f.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    f.join()
    w.close()
    _, lines = _lines(tmp_path)
    ids = [x["eventMetadata"]["inferenceId"] for x in lines]
    assert sorted(ids) == sorted(f"{t}-{i}" for t in range(3) for i in range(1500))
    assert len({x["eventMetadata"]["eventId"] for x in lines}) == len(lines)
    assert all(re.fullmatch(UUID, x["eventMetadata"]["eventId"]) for x in lines)


def test_a_batch_of_many_lines_is_written_whole_and_in_order(tmp_path):
    """More lines than one written piece (the batch goes out in chunks), text and base64 mixed."""
    w = CaptureWriter(tmp_path, "e", clock=lambda: T0)
    sent = []
    for i in range(300):
        req = b'{"i": %d, "s": "\\u00e9\\"q"}' % i if i % 7 else b"\xff%d" % i
        sent.append(req)
        w.record(req, "application/json", b'{"p": %d}' % i, "application/json", None if i % 2 else f"id-{i}")
    w.close()
    _, lines = _lines(tmp_path)
    assert len(lines) == 300
    for i, (req, line) in enumerate(zip(sent, lines)):
        assert line["captureData"]["endpointInput"] == encode_payload(req, "application/json", "INPUT")
        assert line["captureData"]["endpointOutput"]["data"] == '{"p": %d}' % i
        assert line["eventMetadata"].get("inferenceId") == (None if i % 2 else f"id-{i}")
