"""The ``serve`` HTTP app: SageMaker's inference contract on starlette (DESIGN.md §1).

- ``GET /ping``: 200 once the model is loaded, 503 with the reason otherwise (SageMaker keeps
  the instance out of service until it answers 200).
- ``POST /invocations``: ``application/json`` ``{"instances": [{...}, ...]}`` or
  ``application/jsonlines`` (one instance object per line, as batch transform sends it). The
  answer is ``{"model": KIND, "predictions": [...]}`` in JSON, or one prediction per line when the
  client accepts ``application/jsonlines`` (the default for a jsonlines request).
- ``GET /execution-parameters``: batch transform's optional tuning hint.

Every client mistake is a 4xx whose JSON body says what is wrong: 400 malformed body, 406
unsupported ``Accept``, 413 too many instances or too large a body, 415 unsupported
``Content-Type``, 422 invalid fields (listed by ``instances[i].field``). The prediction runs
inline in the event loop: each worker has one model thread (NOTES-platform.md), so a thread
pool would only add hand-offs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inference.schema import describe_errors

log = logging.getLogger("inference")

JSON = "application/json"
JSONLINES = "application/jsonlines"
_JSONLINES_ALIASES = {JSONLINES, "application/jsonl", "application/x-jsonlines", "application/json-lines"}
# SageMaker real-time endpoints cap a request payload at 6 MB.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_INSTANCES = 1000


class RequestError(Exception):
    """A client error: HTTP status, message and optional per-field details."""

    def __init__(self, status: int, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def _error(status: int, message: str, details: list | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _content_type(request: Request) -> str:
    ct = _media_type(request.headers.get("content-type"))
    if ct in ("", JSON, "text/json"):
        return JSON  # curl and the SageMaker runtime default to JSON-ish bodies
    if ct in _JSONLINES_ALIASES:
        return JSONLINES
    raise RequestError(415, f"unsupported Content-Type {ct!r}: use {JSON} or {JSONLINES}")


def _accept(request: Request, content_type: str) -> str:
    """The response type: the first acceptable of JSON / jsonlines in ``Accept`` (default: the request's)."""
    header = request.headers.get("accept")
    if not header:
        return content_type
    for part in header.split(","):
        mt = _media_type(part)
        if mt in ("*/*", "application/*"):
            return content_type
        if mt == JSON:
            return JSON
        if mt in _JSONLINES_ALIASES:
            return JSONLINES
    raise RequestError(406, f"cannot answer with Accept {header!r}: use {JSON} or {JSONLINES}")


def parse_instances(body: bytes, content_type: str, max_instances: int) -> list:
    """The list of instances in a JSON or jsonlines body (their fields are checked later)."""
    if not body.strip():
        raise RequestError(400, "empty request body: send {\"instances\": [...]} or JSON lines")
    if content_type == JSONLINES:
        instances = []
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                instances.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                raise RequestError(400, f"line {number} is not valid JSON: {e}") from None
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise RequestError(400, f"body is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or "instances" not in doc:
            raise RequestError(400, 'body must be a JSON object with an "instances" list')
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise RequestError(400, f'"instances" must be a list, not {type(instances).__name__}')
    if not instances:
        raise RequestError(400, "no instances to predict: the batch is empty")
    if len(instances) > max_instances:
        raise RequestError(413, f"too many instances: {len(instances)} > {max_instances} per request; split the batch")
    return instances


def _encode(kind: str, predictions: list[dict], accept: str) -> Response:
    if accept == JSONLINES:
        return Response(b"\n".join(orjson.dumps(p) for p in predictions) + b"\n", media_type=JSONLINES)
    return Response(orjson.dumps({"model": kind, "predictions": predictions}), media_type=JSON)


def create_app(
    model_path: str | os.PathLike | None = None,
    predictor=None,
    max_instances: int | None = None,
    max_body_bytes: int | None = None,
) -> Starlette:
    """The app. The model is loaded at startup (lifespan) from ``model_path`` (default: SageMaker's
    model dir), unless a ready :class:`~inference.predict.Predictor` is given."""
    max_instances = max_instances or int(os.environ.get("AIRFARE_MAX_INSTANCES", DEFAULT_MAX_INSTANCES))
    max_body_bytes = max_body_bytes or int(os.environ.get("AIRFARE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    state: dict[str, Any] = {"predictor": predictor, "error": None}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if state["predictor"] is None:
            from inference.model import load_model
            from inference.predict import Predictor

            try:
                state["predictor"] = Predictor(load_model(model_path))
                p = state["predictor"]
                log.info("loaded the %s model from %s (%d request fields)", p.kind, p.model.model_dir, len(p.specs))
            except Exception as e:  # noqa: BLE001 - reported by /ping, which keeps the instance out of service
                state["error"] = f"{type(e).__name__}: {e}"
                log.error("model not loaded: %s", state["error"])
        yield

    async def ping(request: Request) -> Response:
        if state["predictor"] is None:
            return _error(503, f"model not loaded: {state['error'] or 'starting'}")
        return Response(orjson.dumps({"status": "ok", "model": state["predictor"].kind}), media_type=JSON)

    async def invocations(request: Request) -> Response:
        predictor = state["predictor"]
        if predictor is None:
            return _error(503, f"model not loaded: {state['error'] or 'starting'}")
        try:
            content_type = _content_type(request)
            accept = _accept(request, content_type)
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_body_bytes:
                raise RequestError(413, f"request body of {declared} bytes exceeds {max_body_bytes} bytes")
            body = await request.body()
            if len(body) > max_body_bytes:
                raise RequestError(413, f"request body of {len(body)} bytes exceeds {max_body_bytes} bytes")
            instances = parse_instances(body, content_type, max_instances)
            try:
                rows = predictor.validate(instances)
            except ValidationError as e:
                details = describe_errors(e)
                first = details[0]
                more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
                raise RequestError(422, f"invalid instance: {first['field']}: {first['error']}{more}", details) from None
        except RequestError as e:
            return _error(e.status, e.message, e.details)
        try:
            predictions = predictor.predict(rows)
        except Exception as e:  # noqa: BLE001 - valid input the model could not score is our bug: say so, stay up
            log.exception("prediction failed")
            return _error(500, f"prediction failed: {type(e).__name__}: {e}")
        return _encode(predictor.kind, predictions, accept)

    async def execution_parameters(request: Request) -> Response:
        workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1))
        return Response(orjson.dumps({"MaxConcurrentTransforms": workers, "BatchStrategy": "MULTI_RECORD",
                                      "MaxPayloadInMB": max_body_bytes // (1024 * 1024)}), media_type=JSON)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/execution-parameters", execution_parameters, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_factory() -> Starlette:
    """What each uvicorn worker imports (``inference.app:app_factory``, factory mode): its own model copy."""
    return create_app(os.environ.get("AIRFARE_MODEL_PATH") or None)
