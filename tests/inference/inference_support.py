"""Three tiny models trained with the project's trainers on the training tests' synthetic world.

The world maker is imported from ``tests/small_world.py`` by file path, so inference tests use
exactly the curated-like frame the trainer tests use, at a smaller size.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_WORLD_FILE = Path(__file__).resolve().parents[1] / "small_world.py"


def _load_world_module():
    spec = importlib.util.spec_from_file_location("inference_training_world", _WORLD_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def records(df, fields):
    """Rows of ``df`` as JSON-ready dicts of ``fields`` (NaN -> null, numpy -> Python)."""
    return json.loads(df[fields].to_json(orient="records", date_format="iso"))


@pytest.fixture(scope="session")
def inference_splits():
    from processing.preprocess import preprocess

    world = _load_world_module().make_world(days=24, searches_per_day=30, seed=3, anomaly_rate=0.05)
    offers, outcomes, truth = world
    splits, _ = preprocess(offers, outcomes, validation_days=5, test_days=5)
    return splits, truth


@pytest.fixture(scope="session")
def model_dirs(inference_splits, tmp_path_factory):
    """``{kind: model_dir}`` for price, demand and anomaly."""
    from training import anomaly, demand, price

    splits, truth = inference_splits
    root = tmp_path_factory.mktemp("inference_models")
    price.train(splits["train"]["offers"], splits["validation"]["offers"], root / "price",
                {"n_estimators": 80, "max_depth": 5, "nthread": 1})
    demand.train(splits["train"]["flights"], splits["validation"]["flights"], root / "demand",
                 {"n_estimators": 30, "max_depth": 4, "num_leaves": 15, "nthread": 1})
    anomaly.train(splits["train"]["offers"], splits["validation"]["offers"], root / "anomaly",
                  truth[["offer_id", "is_anomaly"]], {"n_estimators": 50, "max_samples": 256, "nthread": 1})
    return {k: root / k for k in ("price", "demand", "anomaly")}


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory):
    """Compiled trees of this session's models go to a fresh folder (content-keyed, built once)."""
    import os

    path = tmp_path_factory.mktemp("compiled")
    old = os.environ.get("AIRFARE_COMPILE_CACHE")
    os.environ["AIRFARE_COMPILE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("AIRFARE_COMPILE_CACHE", None)
    else:
        os.environ["AIRFARE_COMPILE_CACHE"] = old


def model_fields(model_dir):
    """The request fields of a model, in the order a header-less CSV row gives them."""
    from inference.schema import field_specs
    from core import model_io

    return [s.name for s in field_specs(model_io.load(model_dir).meta)]


def split_frame(inference_splits, kind):
    """The test split a model is scored on (flights for demand, offers otherwise)."""
    return inference_splits[0]["test"]["flights" if kind == "demand" else "offers"]


def asgi_call(app, method, path, body=b"", headers=(), chunks=None, loop=None):
    """One HTTP request straight into an ASGI app (no sockets): ``(status, headers dict, body, chunks read)``.

    ``chunks``: the body as a sequence of pieces sent with ``more_body`` (a chunked upload); the
    last value tells how many of them the app asked for, i.e. whether it stopped reading early.
    """
    import asyncio

    pieces = list(chunks) if chunks is not None else [body]
    state = {"i": 0, "start": None, "body": b""}

    async def receive():
        i = state["i"]
        state["i"] += 1
        if i < len(pieces):
            return {"type": "http.request", "body": pieces[i], "more_body": i < len(pieces) - 1}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            state["start"] = message
        else:
            state["body"] += message.get("body", b"")

    scope = {"type": "http", "method": method, "path": path, "headers": [(k.lower().encode(), v.encode() if isinstance(v, str) else v) for k, v in headers]}
    run = loop.run_until_complete if loop is not None else asyncio.run
    run(app(scope, receive, send))
    start = state["start"]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, state["body"], state["i"]
