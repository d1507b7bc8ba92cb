"""The ``serve`` HTTP app: SageMaker's container contract and its runtime API, as one small ASGI app.

Routes:

- ``GET /ping``: 200 once the model is loaded, 503 with the reason otherwise (SageMaker keeps the
  instance out of service until it answers 200).
- ``POST /invocations``: the container contract. Bodies and types: :mod:`inference.codec`.
- ``POST /endpoints/{EndpointName}/invocations``: SageMaker Runtime's ``InvokeEndpoint``, so
  ``boto3.client("sagemaker-runtime", endpoint_url=...)`` works unchanged against ``airfare serve``.
  Errors come back as the runtime sends them: a container 4xx/5xx becomes HTTP 424 ``ModelError``
  (``OriginalStatusCode``, ``OriginalMessage``), an unknown endpoint a 400 ``ValidationError``, so
  botocore raises the very exceptions a caller of a real endpoint handles.
- ``GET /execution-parameters``: batch transform's optional tuning hint.

``X-Amzn-SageMaker-Custom-Attributes`` is passed through (echoed on the response, as a container
may do), and ``X-Amzn-SageMaker-Inference-Id`` goes into the capture record.

Why raw ASGI and not a framework: on the one-record hot path each request has ~100 µs of CPU on a
2-core box, and a router plus request/response objects cost a fair share of it. Client mistakes are
4xx JSON naming the problem (400 malformed, 406 ``Accept``, 413 too large, 415 ``Content-Type``,
422 invalid fields); the body limit is enforced while the body is read, so a 100 MB chunked body
is cut off at the limit. A 500 says only that the prediction failed and gives a reference to the
server log, never internal type names. The prediction runs inline in the event loop: each worker
has one model thread (NOTES-platform.md), so a thread pool would only add hand-offs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from inference import codec
from inference.codec import RequestError
from inference.schema import describe_errors

log = logging.getLogger("inference")

# SageMaker real-time endpoints cap a request payload at 6 MB.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_INSTANCES = 1000
VARIANT = "AllTraffic"
ACCOUNT = "000000000000"  # what a local endpoint reports as its account in runtime error messages
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_JSON_HEADERS = [(b"content-type", codec.JSON.encode())]


def _json_response(status: int, body: dict, extra: list | None = None) -> tuple[int, list, bytes]:
    return status, _JSON_HEADERS + (extra or []), orjson.dumps(body)


def _client_error(e: RequestError) -> tuple[int, list, bytes]:
    body: dict[str, Any] = {"error": e.message}
    if e.details:
        body["details"] = e.details
    return _json_response(e.status, body)


def runtime_error(status: int, body: bytes, endpoint: str) -> tuple[int, list, bytes]:
    """A container error as SageMaker Runtime reports it: 424 ``ModelError`` (botocore's shape)."""
    original = body.decode("utf-8", "replace")
    side = "client" if status < 500 else "server"
    log_stream = f"arn:aws:logs:local:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
    return _json_response(424, {
        "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": log_stream,
        "OriginalMessage": original,
        "OriginalStatusCode": status,
        "Message": f"Received {side} error ({status}) from primary with message \"{original}\". "
                   f"See {log_stream} in account {ACCOUNT} for more information.",
    }, [(b"x-amzn-errortype", b"ModelError")])


def _validation_error(message: str) -> tuple[int, list, bytes]:
    return _json_response(400, {"message": message}, [(b"x-amzn-errortype", b"ValidationError")])


async def read_body(receive, limit: int, declared: bytes | None) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise RequestError(413, f"request body of {int(declared)} bytes exceeds {limit} bytes")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ServingApp:
    """The ASGI app for one model (one instance per worker process)."""

    def __init__(self, model_path=None, predictor=None, max_instances: int | None = None,
                 max_body_bytes: int | None = None, endpoint_name: str | None = None, capture=None):
        self.model_path = model_path
        self.predictor = predictor
        self.error: str | None = None
        self.max_instances = max_instances or int(os.environ.get("AIRFARE_MAX_INSTANCES", DEFAULT_MAX_INSTANCES))
        self.max_body_bytes = max_body_bytes or int(os.environ.get("AIRFARE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        self.endpoint_name = endpoint_name or os.environ.get("AIRFARE_ENDPOINT_NAME") or None
        self.capture = capture
        self._flusher: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def load(self) -> None:
        if self.predictor is not None:
            return
        from inference.model import load_model
        from inference.predict import Predictor

        try:
            self.predictor = Predictor(load_model(self.model_path))
            p = self.predictor
            log.info("loaded the %s model from %s (%d request fields, %s backend)", p.kind, p.model.model_dir,
                     len(p.specs), p.backend)
        except Exception as e:  # noqa: BLE001 - reported by /ping, which keeps the instance out of service
            self.error = str(e) or "the model could not be loaded"
            log.exception("model not loaded")

    async def _flush_loop(self) -> None:
        """Writes the capture records of the last ``FLUSH_EVERY_S`` in one batch (``CaptureWriter.flush``)."""
        from inference.capture import FLUSH_EVERY_S

        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                self.capture.flush()
            except Exception:  # noqa: BLE001 - a full disk must not stop the endpoint (that batch is lost, and logged)
                log.exception("capture batch not written")

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.load()
                if self.capture is not None:
                    self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                if self.capture is not None:
                    self.capture.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP ---------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, headers, body = await self.handle(scope, receive)
        except ConnectionAbortedError:
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def handle(self, scope, receive) -> tuple[int, list, bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/invocations" or path.startswith("/endpoints/"):
            runtime = None
            if path != "/invocations":
                m = _RUNTIME_PATH.match(path)
                if m is None:
                    return _json_response(404, {"error": f"no route {path}"})
                runtime = m.group(1)
                if self.endpoint_name and runtime != self.endpoint_name:
                    return _validation_error(f"Endpoint {runtime} of account {ACCOUNT} not found.")
            if method != "POST":
                return _json_response(405, {"error": f"{method} not allowed on {path}: use POST"},
                                      [(b"allow", b"POST")])
            status, headers, body = await self.invoke(scope, receive, runtime)
            if runtime is not None and status >= 400:
                return runtime_error(status, body, runtime)
            return status, headers, body
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return _json_response(405, {"error": f"{method} not allowed on /ping: use GET"}, [(b"allow", b"GET")])
            if self.predictor is None:
                return _json_response(503, {"error": f"model not loaded: {self.error or 'starting'}"})
            return _json_response(200, {"status": "ok", "model": self.predictor.kind, "backend": self.predictor.backend})
        if path == "/execution-parameters" and method == "GET":
            workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1))
            return _json_response(200, {"MaxConcurrentTransforms": workers, "BatchStrategy": "MULTI_RECORD",
                                        "MaxPayloadInMB": max(1, self.max_body_bytes // (1024 * 1024))})
        return _json_response(404, {"error": f"no route {method} {path}"})

    async def invoke(self, scope, receive, runtime: str | None) -> tuple[int, list, bytes]:
        predictor = self.predictor
        if predictor is None:
            return _json_response(503, {"error": f"model not loaded: {self.error or 'starting'}"})
        content_type = accept = declared = attributes = inference_id = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
            elif name == b"x-amzn-sagemaker-custom-attributes":
                attributes = value
            elif name == b"x-amzn-sagemaker-inference-id":
                inference_id = value.decode("latin-1")
        try:
            request_type = codec.request_type(content_type)
            answer_type = codec.response_type(accept, request_type)
            body = await read_body(receive, self.max_body_bytes, declared)
            instances = codec.parse_instances(body, request_type, predictor.specs, self.max_instances)
            try:
                rows = predictor.validate(instances)
            except ValidationError as e:
                details = describe_errors(e)
                first = details[0]
                more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
                raise RequestError(422, f"invalid instance: {first['field']}: {first['error']}{more}", details) from None
        except RequestError as e:
            return _client_error(e)
        try:
            out = codec.encode(predictor.kind, predictor.predict(rows), answer_type)
        except Exception:  # noqa: BLE001 - valid input we could not score is our bug: log it, say little, stay up
            reference = uuid.uuid4().hex[:12]
            log.exception("prediction failed (reference %s)", reference)
            return _json_response(500, {"error": f"prediction failed; the server log has the details (reference {reference})"})
        headers = [(b"content-type", answer_type.encode())]
        if runtime is not None:
            headers.append((b"x-amzn-invoked-production-variant", VARIANT.encode()))
        if attributes is not None:
            headers.append((b"x-amzn-sagemaker-custom-attributes", attributes))
        capture = self.capture
        if capture is not None and capture.sampled():
            # the header as sent, but as the shared constant when it is the canonical type: one string
            # object fewer kept alive per captured request until the batch is written
            observed = request_type if content_type == request_type or not content_type else content_type
            capture.record(body, observed, out, answer_type, inference_id)
        return 200, headers, out


def create_app(model_path: str | os.PathLike | None = None, predictor=None, max_instances: int | None = None,
               max_body_bytes: int | None = None, endpoint_name: str | None = None, capture=None) -> ServingApp:
    """The app. The model is loaded at startup (lifespan) from ``model_path`` (default: SageMaker's
    model dir), unless a ready :class:`~inference.predict.Predictor` is given."""
    return ServingApp(model_path, predictor, max_instances, max_body_bytes, endpoint_name, capture)


def capture_from_env():
    """The capture writer ``serve --capture DIR`` asked for (``AIRFARE_CAPTURE_DIR``), or None."""
    root = os.environ.get("AIRFARE_CAPTURE_DIR")
    if not root:
        return None
    from inference.capture import CaptureWriter

    endpoint = os.environ.get("AIRFARE_ENDPOINT_NAME") or "local-endpoint"
    return CaptureWriter(root, endpoint, percent=float(os.environ.get("AIRFARE_CAPTURE_PERCENT", "100")))


def app_factory() -> ServingApp:
    """What each uvicorn worker imports (``inference.app:app_factory``, factory mode): its own model copy."""
    return create_app(os.environ.get("AIRFARE_MODEL_PATH") or None, capture=capture_from_env())
