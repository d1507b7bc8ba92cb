"""Every request shape and response type, strict field types, the body limit while reading, and no
internal names in a 500: the ASGI app driven directly (no sockets)."""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson
import pytest
from inference_support import asgi_call, model_fields, records, split_frame

from inference.app import create_app


@pytest.fixture(scope="module")
def apps(model_dirs):
    out = {}
    for kind, path in model_dirs.items():
        app = create_app(path, max_instances=200)
        app.load()
        assert app.predictor is not None, app.error
        out[kind] = app
    return out


@pytest.fixture(scope="module")
def rows(apps, inference_splits):
    """Three JSON-ready test rows per model, in field order."""
    return {k: records(split_frame(inference_splits, k).head(3), model_fields(app.predictor.model.model_dir))
            for k, app in apps.items()}


def post(app, body, content_type="application/json", accept=None, path="/invocations", **extra):
    headers = [("content-type", content_type)] if content_type is not None else []
    if accept is not None:
        headers.append(("accept", accept))
    headers += list(extra.items())
    if not isinstance(body, (bytes, str)):
        body = orjson.dumps(body)
    status, hdrs, out, _ = asgi_call(app, "POST", path, body.encode() if isinstance(body, str) else body, headers)
    return status, hdrs, out


def _csv(rows, fields, header):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(fields)
    for r in rows:
        w.writerow(["" if r[f] is None else ("true" if r[f] is True else "false" if r[f] is False else r[f]) for f in fields])
    return buf.getvalue().encode()


@pytest.mark.parametrize("kind", ["price", "demand", "anomaly"])
def test_every_request_shape_gives_the_same_predictions(apps, rows, kind):
    app, rs = apps[kind], rows[kind]
    fields = app.predictor.field_names
    status, _, body = post(app, {"instances": rs})
    assert status == 200, body
    want = orjson.loads(body)["predictions"]
    assert len(want) == 3

    def preds(status, body):
        assert status == 200, body
        return orjson.loads(body)["predictions"]

    assert preds(*post(app, rs[0])[::2]) == want[:1]  # the frontend's bare object
    assert preds(*post(app, rs)[::2]) == want  # a JSON list
    jl = b"\n".join(orjson.dumps(r) for r in rs)
    assert preds(*post(app, jl, "application/jsonlines", "application/json")[::2]) == want
    shuffled = fields[::-1]  # a header names the columns, in any order
    assert preds(*post(app, _csv(rs, shuffled, header=True), "text/csv", "application/json")[::2]) == _close(want)
    assert preds(*post(app, _csv(rs, fields, header=False), "text/csv", "application/json")[::2]) == _close(want)


def _close(preds):
    """CSV carries decimal text; the floats it gives back are the JSON ones (repr round-trips)."""
    return preds


@pytest.mark.parametrize("accept,ctype", [
    (None, "application/json"), ("application/json", "application/json"), ("application/jsonlines", "application/jsonlines"),
    ("text/csv", "text/csv"), ("text/csv;q=0.5, application/jsonlines", "application/jsonlines"),
    ("*/*", "application/json"), ("image/png, */*;q=0.1", "application/json")])
def test_accept_negotiation(apps, rows, accept, ctype):
    status, headers, body = post(apps["demand"], {"instances": rows["demand"]}, accept=accept)
    assert status == 200 and headers["content-type"] == ctype
    if ctype == "text/csv":
        lines = body.decode().splitlines()
        assert len(lines) == 3 and all(len(line.split(",")) == 4 for line in lines)
        assert lines[0].split(",")[0] in ("low", "medium", "high")
    elif ctype == "application/jsonlines":
        assert len(body.splitlines()) == 3


def test_csv_in_csv_out_by_default_as_batch_transform_expects(apps, rows):
    app = apps["price"]
    status, headers, body = post(app, _csv(rows["price"], app.predictor.field_names, header=False), "text/csv")
    assert status == 200 and headers["content-type"] == "text/csv"
    prices = [float(x) for x in body.decode().split()]
    json_prices = [p["price_usd"] for p in orjson.loads(post(app, rows["price"])[2])["predictions"]]
    assert prices == json_prices


@pytest.mark.parametrize("field,value", [("days_to_departure", "5"), ("days_to_departure", "+3"),
                                          ("days_to_departure", "1_000"), ("days_to_departure", True),
                                          ("days_to_departure", 5.5), ("is_nonstop", 1), ("departure_month", None)])
def test_json_types_are_strict(apps, rows, field, value):
    status, _, body = post(apps["price"], {**rows["price"][0], field: value})
    assert status == 422, body
    assert f"instances[0].{field}" in orjson.loads(body)["error"]


@pytest.mark.parametrize("cell", ["+3", "1_000", "0x10", "5.0e", "true", " 5"])
def test_csv_numbers_are_plain_decimals(apps, rows, cell):
    app = apps["price"]
    fields = app.predictor.field_names
    body = _csv(rows["price"][:1], fields, header=True).decode().splitlines()
    cells = body[1].split(",")
    cells[fields.index("days_to_departure")] = cell
    status, _, out = post(app, body[0] + "\n" + ",".join(cells) + "\n", "text/csv")
    assert status == 422 and b"instances[0].days_to_departure" in out


@pytest.mark.parametrize("kind,field,value", [
    ("price", "days_to_departure", 10**9), ("price", "length_of_stay", 367), ("anomaly", "price_usd", 1e300),
    ("anomaly", "competitor_min_price_usd", 1e12), ("anomaly", "price_vs_route_median", 5000.0),
    ("demand", "flight_searches_cum", 1e30), ("demand", "distance_km", 50_000.0)])
def test_numbers_have_plausible_upper_bounds(apps, rows, kind, field, value):
    status, _, body = post(apps[kind], {**rows[kind][0], field: value})
    assert status == 422 and f"instances[0].{field}".encode() in body, body


def test_the_body_limit_holds_while_reading(model_dirs, rows):
    app = create_app(model_dirs["price"], max_body_bytes=10_000)
    app.load()
    chunk = b" " * 4096
    status, _, body, asked = asgi_call(app, "POST", "/invocations", headers=[("content-type", "application/json")],
                                       chunks=[chunk] * 25_000)  # a 100 MB chunked upload
    assert status == 413 and b"exceeds 10000 bytes" in body
    assert asked <= 4, "stopped reading at the limit"
    status, _, body, asked = asgi_call(app, "POST", "/invocations", b"{}", [("content-length", str(10**8))])
    assert status == 413 and asked == 0  # a declared size over the limit is refused before reading


def test_a_500_names_no_internal_type(apps, rows, monkeypatch):
    class SecretInternalError(Exception):
        pass

    app = apps["price"]

    def boom(rows):
        raise SecretInternalError("numpy.core._exceptions internal detail")

    monkeypatch.setattr(app.predictor, "predict", boom)
    status, _, body = post(app, rows["price"][0])
    assert status == 500
    text = body.decode()
    assert "SecretInternalError" not in text and "numpy" not in text and "reference" in text


def test_validation_messages_name_no_python_type(apps, rows):
    for payload in ({"instances": {"a": 1}}, 3.5, "text", {"instances": [[1, 2]]}):
        status, _, body = post(apps["price"], payload)
        assert 400 <= status < 500
        for word in ("dict", "list[", "NoneType", "builtins", "TypedDict"):
            assert word not in body.decode(), (payload, body)


def test_custom_attributes_pass_through_and_runtime_errors_are_botocore_shaped(apps, rows):
    app = apps["price"]
    path = "/endpoints/price-prediction-endpoint/invocations"
    status, headers, _ = post(app, rows["price"][0], path=path, **{"x-amzn-sagemaker-custom-attributes": "trace=abc"})
    assert status == 200
    assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
    assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    status, headers, body = post(app, {**rows["price"][0], "cabin": "luxury"}, path=path)
    doc = orjson.loads(body)
    assert status == 424 and headers["x-amzn-errortype"] == "ModelError"
    assert doc["OriginalStatusCode"] == 422 and "instances[0].cabin" in doc["OriginalMessage"]


def test_model_packages_advertise_exactly_what_the_container_serves(apps, rows):
    from inference import content_types
    from pipelines.definition import definition_dict

    def walk(steps):
        for s in steps:
            yield s
            yield from walk(s.get("Arguments", {}).get("IfSteps", []) + s.get("Arguments", {}).get("ElseSteps", []))

    steps = [s for s in walk(definition_dict()["Steps"]) if s["Type"] == "RegisterModel"]
    assert len(steps) == 3
    for step in steps:
        spec = step["Arguments"]["InferenceSpecification"]
        assert spec["SupportedContentTypes"] == list(content_types.CONTENT_TYPES)
        assert spec["SupportedResponseMIMETypes"] == list(content_types.RESPONSE_TYPES)
    app = apps["price"]
    fields = app.predictor.field_names
    bodies = {"application/json": orjson.dumps(rows["price"][0]),
              "application/jsonlines": orjson.dumps(rows["price"][0]) + b"\n",
              "text/csv": _csv(rows["price"][:1], fields, header=False)}
    for ctype in content_types.CONTENT_TYPES:
        for accept in content_types.RESPONSE_TYPES:
            status, headers, _ = post(app, bodies[ctype], ctype, accept)
            assert status == 200 and headers["content-type"] == accept, (ctype, accept)
