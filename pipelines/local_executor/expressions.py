"""Resolve pipeline expressions (``Get``, ``Std:Join``, ``Std:JsonGet``) and evaluate conditions.

SageMaker resolves these server-side; here the resolver looks values up in the parsed parameters,
the execution variables and the properties each finished step exposed (shaped like the
Describe*Job responses, so the SDK's property paths work unchanged).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

_TOKEN = re.compile(r"""\.?([A-Za-z_][A-Za-z0-9_:\-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


class ExpressionError(ValueError):
    """An expression cannot be resolved (unknown parameter/step/property, bad JSON path)."""


def parse_path(path: str) -> list[str | int]:
    """``Outputs['train'].S3Output.S3Uri`` -> ``['Outputs', 'train', 'S3Output', 'S3Uri']``;
    ``a.b[0].c`` -> ``['a', 'b', 0, 'c']`` (the JsonPath subset SageMaker's JsonGet accepts)."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse path {path!r} at {path[pos:]!r}")
        name, index, sq, dq = m.groups()
        if index is not None:
            tokens.append(int(index))
        else:
            tokens.append(name if name is not None else (sq if sq is not None else dq))
        pos = m.end()
    return tokens


def lookup(obj: Any, tokens: list[str | int], what: str) -> Any:
    """Walk ``tokens`` into ``obj``. A string index into a list picks the element whose ``*Name``
    field equals it, as SageMaker does for ``Outputs['train']`` or ``InputDataConfig['train']``."""
    cur = obj
    for i, tok in enumerate(tokens):
        here = ".".join(str(t) for t in tokens[: i + 1])
        if isinstance(cur, dict) and isinstance(tok, str) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and isinstance(tok, int) and -len(cur) <= tok < len(cur):
            cur = cur[tok]
        elif isinstance(cur, list) and isinstance(tok, str):
            matches = [
                item
                for item in cur
                if isinstance(item, dict) and any(k.endswith("Name") and v == tok for k, v in item.items())
            ]
            if len(matches) != 1:
                raise ExpressionError(f"{what}: no single element named {tok!r} at {here}")
            cur = matches[0]
        else:
            raise ExpressionError(f"{what}: {here} not found")
    return cur


def to_text(value: Any) -> str:
    """How SageMaker renders a primitive inside a string (Join, hyperparameters, arguments)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


class Resolver:
    """Resolves expressions against parameters, execution variables and step properties.

    ``property_file_reader(step, name)`` returns the parsed JSON of a step's property file; it is
    injected so that this module knows nothing about the lake layout.
    """

    def __init__(
        self,
        parameters: dict[str, Any],
        execution_vars: dict[str, Any],
        step_properties: dict[str, dict[str, Any]],
        property_file_reader: Callable[[str, str], Any],
        property_file_owner: dict[str, str],
        s3_reader: Callable[[str], Any] | None = None,
    ):
        self.parameters = parameters
        self.execution_vars = execution_vars
        self.step_properties = step_properties
        self.read_property_file = property_file_reader
        self.property_file_owner = property_file_owner
        self.read_s3_json = s3_reader

    def resolve(self, obj: Any, local_vars: dict[str, Any] | None = None) -> Any:
        """Return ``obj`` with every expression replaced by its value (recursively).

        ``local_vars`` are execution variables that depend on the step being run
        (``Execution.ProcessingJobName``, ``Execution.TrainingJobName``)."""
        if isinstance(obj, list):
            return [self.resolve(item, local_vars) for item in obj]
        if not isinstance(obj, dict):
            return obj
        if len(obj) == 1:
            (key, value), = obj.items()
            if key == "Get" and isinstance(value, str):
                return self._get(value, local_vars or {})
            if key == "Std:Join":
                on = self.resolve(value.get("On", ""), local_vars)
                values = self.resolve(value.get("Values") or [], local_vars)
                return to_text(on).join(to_text(v) for v in values)
            if key == "Std:JsonGet":
                return self._json_get(value, local_vars)
        return {k: self.resolve(v, local_vars) for k, v in obj.items()}

    def _get(self, expr: str, local_vars: dict[str, Any]) -> Any:
        head, _, rest = expr.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise ExpressionError(f"unknown parameter in {{'Get': {expr!r}}}")
            return self.parameters[rest]
        if head == "Execution":
            if rest in local_vars:
                return local_vars[rest]
            if rest not in self.execution_vars:
                raise ExpressionError(f"unknown or unavailable execution variable in {{'Get': {expr!r}}}")
            return self.execution_vars[rest]
        if head == "Steps":
            tokens = parse_path(rest)
            if not tokens or not isinstance(tokens[0], str):
                raise ExpressionError(f"bad step reference {expr!r}")
            step = tokens[0]
            if step not in self.step_properties:
                raise ExpressionError(f"{{'Get': {expr!r}}}: step {step} has not run (or was skipped)")
            if len(tokens) >= 3 and tokens[1] == "PropertyFiles":
                # The property file itself; only meaningful inside Std:JsonGet.
                return {"__property_file__": (step, tokens[2])}
            return lookup(self.step_properties[step], tokens[1:], f"{{'Get': {expr!r}}}")
        raise ExpressionError(f"unsupported Get expression {expr!r}")

    def _json_get(self, spec: dict[str, Any], local_vars: dict[str, Any] | None) -> Any:
        path = self.resolve(spec.get("Path"), local_vars)
        if not isinstance(path, str):
            raise ExpressionError(f"Std:JsonGet needs a string Path: {spec!r}")
        if "PropertyFile" in spec:
            pf = spec["PropertyFile"]
            if isinstance(pf, str):
                owner = self.property_file_owner.get(pf)
                if not owner:
                    raise ExpressionError(f"Std:JsonGet: property file {pf!r} is not declared by one step")
                step, name = owner, pf
                if step not in self.step_properties:
                    raise ExpressionError(f"Std:JsonGet: step {step} has not run")
            else:
                ref = self.resolve(pf, local_vars)
                if not isinstance(ref, dict) or "__property_file__" not in ref:
                    raise ExpressionError(f"Std:JsonGet: PropertyFile must reference Steps.X.PropertyFiles.NAME: {pf!r}")
                step, name = ref["__property_file__"]
            doc = self.read_property_file(step, name)
            where = f"Std:JsonGet {step}.PropertyFiles.{name} path {path!r}"
        elif "S3Uri" in spec:
            if self.read_s3_json is None:
                raise ExpressionError("Std:JsonGet with S3Uri is not available here")
            uri = self.resolve(spec["S3Uri"], local_vars)
            doc = self.read_s3_json(uri)
            where = f"Std:JsonGet {uri} path {path!r}"
        else:
            raise ExpressionError(f"Std:JsonGet needs PropertyFile or S3Uri: {spec!r}")
        return lookup(doc, parse_path(path), where)

    # ---- conditions -------------------------------------------------------------------------

    def evaluate(self, condition: dict[str, Any]) -> bool:
        """Evaluate one condition of a Condition step (the step's list is an AND)."""
        ctype = condition.get("Type")
        if ctype == "Not":
            inner = condition.get("Condition") or condition.get("Expression")
            return not self.evaluate(inner)
        if ctype == "Or":
            return any(self.evaluate(c) for c in condition.get("Conditions") or [])
        if ctype == "And":
            return all(self.evaluate(c) for c in condition.get("Conditions") or [])
        if ctype == "In":
            value = self.resolve(condition.get("QueryValue"))
            options = self.resolve(condition.get("Values") or [])
            return any(_equals(value, o) for o in options)
        if ctype in _ORDER_OPS or ctype == "Equals":
            left = self.resolve(condition.get("LeftValue"))
            right = self.resolve(condition.get("RightValue"))
            if ctype == "Equals":
                return _equals(left, right)
            for side, value in (("LeftValue", left), ("RightValue", right)):
                if value is None:  # e.g. a metric a report could not compute: say which, not "None"
                    raise ExpressionError(f"{ctype}: {side} {_describe(condition.get(side))} is null: the value was not "
                                          "computed (a missing metric is no pass and no fail; see the step's report)")
            a, b = _comparable(left, right, ctype)
            return _ORDER_OPS[ctype](a, b)
        raise ExpressionError(f"unsupported condition Type {ctype!r}")


def _describe(expr: Any) -> str:
    """A readable name for a condition operand: a JsonGet's step, property file and path."""
    if isinstance(expr, dict) and "Std:JsonGet" in expr:
        spec = expr["Std:JsonGet"] or {}
        pf = spec.get("PropertyFile")
        where = pf.get("Get", pf) if isinstance(pf, dict) else pf
        return f"{str(where).removeprefix('Steps.')} path {spec.get('Path')!r}"
    if isinstance(expr, dict) and "Get" in expr:
        return str(expr["Get"])
    return repr(expr)


_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _comparable(left: Any, right: Any, ctype: str) -> tuple[Any, Any]:
    """Numbers compare numerically (a numeric string counts, since Join/arguments give strings)."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None and (not isinstance(left, str) or not isinstance(right, str)):
        return a, b
    if type(left) is type(right) and isinstance(left, (str, int, float)):
        return left, right
    raise ExpressionError(f"{ctype}: cannot compare {left!r} with {right!r}")


def _equals(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return to_text(left) == to_text(right)
    a, b = _number(left), _number(right)
    if a is not None and b is not None and (not isinstance(left, str) or not isinstance(right, str)):
        return a == b
    return left == right if type(left) is type(right) else to_text(left) == to_text(right)


def read_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ExpressionError(f"{what}: {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ExpressionError(f"{what}: {path} is not valid JSON ({exc})") from None
