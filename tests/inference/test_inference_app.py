"""The serve app in-process (starlette's TestClient drives any ASGI app): health, predictions equal to
model_io's, bad requests."""

from __future__ import annotations

import tarfile

import numpy as np
import orjson
import pandas as pd
import pytest
from inference_support import records
from starlette.testclient import TestClient

from inference.app import create_app
from inference.model import ModelNotFound, resolve_model_dir
from core import contract
from core import model_io
from core.pipeline_contract import MODEL_META_FILE


@pytest.fixture(scope="module")
def clients(model_dirs):
    """One started app (lifespan ran, model loaded) per model kind."""
    out, stack = {}, []
    for kind, path in model_dirs.items():
        c = TestClient(create_app(path, max_instances=50), raise_server_exceptions=False)
        c.__enter__()
        stack.append(c)
        out[kind] = c
    yield out
    for c in stack:
        c.__exit__(None, None, None)


@pytest.fixture(scope="module")
def price_rows(inference_splits, model_dirs):
    test = inference_splits[0]["test"]["offers"].head(40)
    fields = model_io.load(model_dirs["price"]).features
    return test, records(test, fields)


def _post(client, payload, content_type="application/json", **headers):
    body = payload if isinstance(payload, (bytes, str)) else orjson.dumps(payload)
    return client.post("/invocations", content=body, headers={"Content-Type": content_type, **headers})


@pytest.mark.parametrize("kind", ["price", "demand", "anomaly"])
def test_ping_reports_the_loaded_model(clients, kind):
    r = clients[kind].get("/ping")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": kind, "backend": "compiled"}


def test_price_predictions_equal_model_io(clients, price_rows, model_dirs):
    test, rows = price_rows
    r = _post(clients["price"], {"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "price" and len(body["predictions"]) == len(rows)
    got = np.array([p["price_usd"] for p in body["predictions"]])
    m = model_io.load(model_dirs["price"])
    np.testing.assert_allclose(got, m.predict_price(pd.DataFrame(rows)), rtol=1e-4)  # the very rows sent
    np.testing.assert_allclose(got, m.predict_price(test), rtol=1e-4)  # the curated frame they came from
    assert (got > 0).all()


def test_extra_fields_are_ignored_and_order_kept(clients, price_rows):
    _, rows = price_rows
    noisy = [{**row, "offer_id": f"o{i}", "note": {"nested": True}} for i, row in enumerate(rows[:5])]
    a = _post(clients["price"], {"instances": noisy}).json()["predictions"]
    b = _post(clients["price"], {"instances": rows[:5][::-1]}).json()["predictions"]
    assert a == b[::-1]


def test_demand_predictions_equal_model_io(clients, inference_splits, model_dirs):
    flights = inference_splits[0]["test"]["flights"].head(30)
    m = model_io.load(model_dirs["demand"])
    rows = records(flights, m.features)
    assert any(v is None for row in rows for v in row.values()), "the demand table has NaN features to send as null"
    r = _post(clients["demand"], {"instances": rows})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    frame = pd.DataFrame(rows)
    proba = m.predict_demand_proba(frame)
    assert [p["demand_class"] for p in preds] == list(m.predict_demand(frame))
    got = np.array([[p["probabilities"][c] for c in contract.DEMAND_CLASSES] for p in preds])
    np.testing.assert_allclose(got, proba, atol=1e-5, rtol=0)


def test_anomaly_predictions_equal_model_io(clients, inference_splits, model_dirs):
    offers = inference_splits[0]["test"]["offers"]
    m = model_io.load(model_dirs["anomaly"])
    fields = m.meta["source_columns"]
    # a spiked price among normal ones: the flag must fire for it
    sample = offers.sort_values("price_vs_route_median").iloc[[0, 1, 2, len(offers) // 2, -1]]
    rows = records(sample, fields)
    r = _post(clients["anomaly"], {"instances": rows})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    frame = pd.DataFrame(rows)
    np.testing.assert_allclose([p["anomaly_score"] for p in preds], m.anomaly_score(frame), atol=1e-6)
    assert [p["is_anomaly"] for p in preds] == list(m.is_anomaly(frame))
    assert any(p["is_anomaly"] for p in preds) and not all(p["is_anomaly"] for p in preds)


def test_jsonlines_in_and_out(clients, price_rows):
    _, rows = price_rows
    body = b"\n".join(orjson.dumps(r) for r in rows[:4]) + b"\n\n"
    r = _post(clients["price"], body, "application/jsonlines")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jsonlines")
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    as_json = _post(clients["price"], {"instances": rows[:4]}).json()["predictions"]
    assert lines == as_json
    r = _post(clients["price"], body, "application/jsonlines", Accept="application/json")
    assert r.json()["predictions"] == as_json


def _bad_price_cases(rows):
    row = rows[0]
    without_cabin = {k: v for k, v in row.items() if k != "cabin"}
    return [
        ("missing field", {"instances": [row, without_cabin]}, "application/json", 422, "instances[1].cabin: required field is missing"),
        ("wrong type", {"instances": [{**row, "days_to_departure": "soon"}]}, "application/json", 422, "instances[0].days_to_departure"),
        ("string for a number", {"instances": [{**row, "airline": 7}]}, "application/json", 422, "instances[0].airline"),
        ("unknown cabin", {"instances": [{**row, "cabin": "luxury"}]}, "application/json", 422, "instances[0].cabin"),
        ("out of range", {"instances": [{**row, "departure_month": 13}]}, "application/json", 422, "instances[0].departure_month"),
        ("null not allowed", {"instances": [{**row, "length_of_stay": None}]}, "application/json", 422, "instances[0].length_of_stay"),
        ("malformed code", {"instances": [{**row, "route": "JFK to LAX"}]}, "application/json", 422, "instances[0].route"),
        ("instance not an object", {"instances": [row, 42]}, "application/json", 422, "instances[1]"),
        ("empty batch", {"instances": []}, "application/json", 400, "batch is empty"),
        ("an object without the fields", {"rows": [row]}, "application/json", 422, f"instances[0].{contract.PRICE_NUMERIC[0]}: required"),
        ("instances not a list", {"instances": row}, "application/json", 400, "must be a list, not an object"),
        ("a bare number", 42, "application/json", 400, "not a number"),
        ("not JSON", b"{instances: [", "application/json", 400, "not valid JSON"),
        ("NaN is not JSON", b'{"instances": [{"stops": NaN}]}', "application/json", 400, "not valid JSON"),
        ("empty body", b"", "application/json", 400, "empty request body"),
        ("bad JSON line", orjson.dumps(row) + b"\n{oops\n", "application/jsonlines", 400, "line 2"),
        ("too many", {"instances": [row] * 51}, "application/json", 413, "51 > 50"),
        ("short CSV row", b"1,2,3", "text/csv", 400, f"has 3 values, expected {len(contract.PRICE_FEATURES)}"),
        ("unknown type", b"x", "application/x-protobuf", 415, "application/x-protobuf"),
    ]


def test_bad_requests_get_the_right_4xx_and_say_why(clients, price_rows):
    _, rows = price_rows
    for name, payload, ctype, status, needle in _bad_price_cases(rows):
        r = _post(clients["price"], payload, ctype)
        assert r.status_code == status, (name, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json", name
        assert needle in r.json()["error"], (name, r.json())


def test_many_bad_fields_are_all_listed(clients, price_rows):
    _, rows = price_rows
    r = _post(clients["price"], {"instances": [{}]})
    assert r.status_code == 422
    body = r.json()
    assert "more" in body["error"]
    assert {d["field"] for d in body["details"]} <= {f"instances[0].{f}" for f in contract.PRICE_FEATURES}
    assert len(body["details"]) == 10


def test_accept_body_size_and_method(clients, price_rows, model_dirs):
    _, rows = price_rows
    r = _post(clients["price"], {"instances": rows[:1]}, Accept="image/png")
    assert r.status_code == 406 and "image/png" in r.json()["error"]
    assert _post(clients["price"], {"instances": rows[:1]}, Accept="*/*").status_code == 200
    assert clients["price"].get("/invocations").status_code == 405
    with TestClient(create_app(model_dirs["price"], max_body_bytes=100)) as small:
        r = _post(small, {"instances": rows[:1]})
        assert r.status_code == 413 and "exceeds 100 bytes" in r.json()["error"]


def test_model_from_a_tarball(model_dirs, price_rows, tmp_path):
    _, rows = price_rows
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in model_dirs["price"].iterdir():
            tar.add(f, arcname=f.name)
    # the tarball itself, and a folder that holds it (what the local executor leaves)
    assert (resolve_model_dir(archive) / MODEL_META_FILE).is_file()
    with TestClient(create_app(tmp_path)) as c:
        assert c.get("/ping").status_code == 200
        r = _post(c, {"instances": rows[:3]})
        assert r.status_code == 200
        m = model_io.load(model_dirs["price"])
        np.testing.assert_allclose([p["price_usd"] for p in r.json()["predictions"]],
                                   m.predict_price(pd.DataFrame(rows[:3])), rtol=1e-4)


def test_no_model_means_503_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "missing"))
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model_dir()
    with TestClient(create_app()) as c:
        r = c.get("/ping")
        assert r.status_code == 503 and "does not exist" in r.json()["error"]
        assert c.post("/invocations", json={"instances": [{}]}).status_code == 503
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no model_meta.json"):
        resolve_model_dir(tmp_path / "empty")
