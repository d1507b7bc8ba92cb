"""Property-based fuzzing of the serving app: 10,000 generated requests (wrong types, missing and extra
fields, huge and deeply nested bodies, bad encodings, NaN/Infinity, wrong content types). Every one
gets a 200 or a 4xx JSON error; none a 5xx; the app still answers /ping afterwards."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from inference_support import asgi_call, model_fields, records, split_frame

from inference.app import create_app

EXAMPLES = 10_000
LIMIT = 8 * 1024

CONTENT_TYPES = ["application/json", "application/jsonlines", "text/csv", "text/csv; charset=latin-1",
                 "application/json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json;;;", "\x00", "application/JSON"]
ACCEPTS = [None, "application/json", "text/csv", "application/jsonlines", "*/*", "image/png", "text/*;q=0",
           "application/json;q=abc", ",,,", "text/csv;q=0.1, application/json;q=0.9"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                    st.sampled_from(["5", "+3", "1_000", "economy", "JFK-LAX", "", "NaN", "Infinity", "true"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                           max_leaves=6)


@pytest.fixture(scope="module")
def fuzz_app(model_dirs):
    app = create_app(model_dirs["price"], max_instances=50, max_body_bytes=LIMIT)
    app.load()
    return app


@pytest.fixture(scope="module")
def valid_row(model_dirs, inference_splits):
    return records(split_frame(inference_splits, "price").head(1), model_fields(model_dirs["price"]))[0]


def _dumps(value) -> bytes:
    """JSON text with integers beyond 64 bits too (the stdlib writes them; orjson refuses)."""
    return json.dumps(value).encode()


def _mutations(row):
    keys = sorted(row)

    @st.composite
    def mutated(draw):
        r = dict(row)
        for _ in range(draw(st.integers(0, 4))):
            action = draw(st.sampled_from(["drop", "set", "add"]))
            if action == "drop" and r:
                r.pop(draw(st.sampled_from(sorted(r))), None)
            elif action == "set":
                r[draw(st.sampled_from(keys))] = draw(json_values)
            else:
                r[draw(st.text(max_size=10))] = draw(json_values)
        return r

    return mutated()


def _bodies(row):
    fields = list(row)
    mutated = _mutations(row)
    as_json = st.one_of(mutated, st.lists(mutated, max_size=3), st.fixed_dictionaries({"instances": st.lists(mutated, max_size=3)}),
                        json_values).map(_dumps)
    nested = st.integers(1, 5000).map(lambda d: b"[" * d + b"]" * d)
    nan_inf = st.sampled_from([b'{"days_to_departure": NaN}', b"[Infinity]", b'{"instances": [-Infinity]}', b"NaN"])
    jsonlines = st.lists(mutated, max_size=4).map(lambda rs: b"\n".join(_dumps(r) for r in rs))
    csv_rows = st.lists(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=8), min_size=len(fields) - 1,
                                 max_size=len(fields) + 1), max_size=3)
    as_csv = st.tuples(st.booleans(), csv_rows).map(
        lambda t: "\n".join([",".join(fields)] * t[0] + [",".join(c) for c in t[1]]).encode("utf-8"))
    huge = st.integers(LIMIT - 10, 3 * LIMIT).map(lambda n: b"[" + b"1," * (n // 2) + b"1]")
    return st.one_of(as_json, nested, nan_inf, jsonlines, as_csv, huge, st.binary(max_size=200))


@pytest.mark.slow
def test_ten_thousand_generated_requests_never_get_a_5xx(fuzz_app, valid_row):
    loop = asyncio.new_event_loop()
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    @given(body=_bodies(valid_row), content_type=st.sampled_from(CONTENT_TYPES), accept=st.sampled_from(ACCEPTS),
           chunked=st.booleans())
    def one_request(body, content_type, accept, chunked):
        headers = [("content-type", content_type)]
        if accept is not None:
            headers.append(("accept", accept))
        chunks = [body[i:i + 4096] for i in range(0, len(body), 4096)] or [b""] if chunked else None
        if not chunked:
            headers.append(("content-length", str(len(body))))
        status, hdrs, out, _ = asgi_call(fuzz_app, "POST", "/invocations", body, headers, chunks=chunks, loop=loop)
        seen[status] = seen.get(status, 0) + 1
        assert status in (200, 400, 406, 413, 415, 422), (status, out[:300])
        if status != 200:
            assert hdrs["content-type"] == "application/json" and orjson.loads(out)["error"]

    try:
        one_request()
        status, _, body, _ = asgi_call(fuzz_app, "GET", "/ping", loop=loop)
    finally:
        loop.close()
    assert status == 200 and orjson.loads(body)["status"] == "ok"
    assert sum(seen.values()) >= EXAMPLES
    assert seen.get(200, 0) > 0 and len(seen) >= 5, seen  # the generator reached both success and every error kind
