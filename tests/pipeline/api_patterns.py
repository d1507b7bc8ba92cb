"""Check AWS requests against the service model's ``pattern`` constraints, as AWS itself does.

botocore validates types, required members and lengths but not patterns, and moto accepts what
AWS would reject (e.g. ``"airfare-price/3"`` as a ``ModelPackageArn``). Registering
:func:`check_patterns` on a client makes such a request fail locally with the member's name.
"""

from __future__ import annotations

import re
from functools import lru_cache


class PatternError(ValueError):
    """A request member does not match its pattern in the service model."""


@lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern | None:
    body = pattern.removeprefix("^").removesuffix("$")
    try:
        return re.compile(body)
    except re.error:  # Java-only syntax such as \p{L}: not checkable with Python's re
        return None


def _walk(shape, value, path: str) -> None:
    if value is None:
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _walk(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "string" and isinstance(value, str):
        pattern = shape.metadata.get("pattern")
        rx = _compiled(pattern) if pattern else None
        if rx is not None and not rx.fullmatch(value):
            raise PatternError(f"{path}={value!r} does not match the API's pattern {pattern!r}")


def check_patterns(params, model, **_):
    """``before-parameter-build`` handler: raise PatternError on the first mismatching member."""
    if model.input_shape is not None:
        _walk(model.input_shape, params, model.name)


def validating(client):
    """The client, with every request checked against the service model's patterns."""
    client.meta.events.register("before-parameter-build", check_patterns)
    return client
