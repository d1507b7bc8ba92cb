"""Turn a pipeline definition (Version 2020-12-01) into an executable plan.

Flattens condition branches (the SDK nests ``IfSteps``/``ElseSteps`` inside the condition step
rather than listing them at top level), derives each step's dependencies from ``DependsOn``, from
every ``{"Get": "Steps.X..."}`` reference and from branch membership, and parses parameters.
"""

from __future__ import annotations

import graphlib
import heapq
from dataclasses import dataclass, field
from typing import Any, Iterator

SUPPORTED_VERSIONS = {"2020-12-01"}
SUPPORTED_STEP_TYPES = {"Processing", "Training", "Condition", "Fail", "RegisterModel", "Model", "QualityCheck"}


class DefinitionError(ValueError):
    """The definition cannot be executed locally (malformed, cyclic, unsupported, bad parameters)."""


@dataclass
class StepSpec:
    name: str
    type: str
    raw: dict[str, Any]
    index: int
    """Position in definition order (depth-first through condition branches): the tie-breaker."""
    depends_on: set[str] = field(default_factory=set)
    branch_of: tuple[str, bool] | None = None
    """(condition step, True for IfSteps / False for ElseSteps) when nested in a branch."""

    @property
    def arguments(self) -> dict[str, Any]:
        return self.raw.get("Arguments") or {}


@dataclass
class Plan:
    steps: dict[str, StepSpec]
    order: list[str]
    """A deterministic topological order (definition order breaks ties)."""
    parameters: dict[str, Any]
    property_file_owner: dict[str, str]
    """PropertyFileName -> declaring step (for the plain-string ``PropertyFile`` form)."""


def iter_gets(obj: Any) -> Iterator[str]:
    """Every ``Get`` expression string anywhere inside ``obj``."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "Get" and isinstance(value, str):
                yield value
            else:
                yield from iter_gets(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from iter_gets(item)


def iter_plain_property_files(obj: Any) -> Iterator[str]:
    """Names used as ``"Std:JsonGet": {"PropertyFile": "Name"}`` (string form)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "Std:JsonGet" and isinstance(value, dict) and isinstance(value.get("PropertyFile"), str):
                yield value["PropertyFile"]
            yield from iter_plain_property_files(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from iter_plain_property_files(item)


def referenced_steps(obj: Any) -> set[str]:
    """Step names referenced by ``{"Get": "Steps.<name>...."}`` inside ``obj``."""
    names = set()
    for expr in iter_gets(obj):
        if expr.startswith("Steps."):
            rest = expr[len("Steps.") :]
            names.add(rest.split(".", 1)[0].split("[", 1)[0])
    return names


def _convert(name: str, ptype: str, value: Any) -> Any:
    try:
        if ptype == "String":
            return value if isinstance(value, str) else str(value)
        if ptype == "Integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if ptype == "Float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if ptype == "Boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "1", "yes"}:
                return True
            if text in {"false", "0", "no"}:
                return False
            raise ValueError(value)
    except (TypeError, ValueError):
        raise DefinitionError(f"parameter {name}: {value!r} is not a valid {ptype}") from None
    raise DefinitionError(f"parameter {name}: unsupported Type {ptype!r}")


def parse_parameters(definition: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults from ``Parameters`` overridden by ``overrides``, converted per declared Type."""
    declared = {p["Name"]: p for p in definition.get("Parameters") or []}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DefinitionError(f"unknown parameter(s) {unknown}; declared: {sorted(declared)}")
    values: dict[str, Any] = {}
    for name, p in declared.items():
        ptype = p.get("Type", "String")
        if name in overrides:
            raw = overrides[name]
        elif "DefaultValue" in p:
            raw = p["DefaultValue"]
        else:
            raise DefinitionError(f"parameter {name} has no DefaultValue and was not given")
        value = _convert(name, ptype, raw)
        enum = p.get("EnumValues")
        if enum and value not in enum:
            raise DefinitionError(f"parameter {name}: {value!r} is not one of {enum}")
        values[name] = value
    return values


def _flatten(steps: list[dict[str, Any]], out: list[StepSpec], branch: tuple[str, bool] | None) -> None:
    for raw in steps:
        if not isinstance(raw, dict) or "Name" not in raw or "Type" not in raw:
            raise DefinitionError(f"a step needs Name and Type: {str(raw)[:200]}")
        spec = StepSpec(name=raw["Name"], type=raw["Type"], raw=raw, index=len(out), branch_of=branch)
        out.append(spec)
        if spec.type == "Condition":
            _flatten(spec.arguments.get("IfSteps") or [], out, (spec.name, True))
            _flatten(spec.arguments.get("ElseSteps") or [], out, (spec.name, False))


def _own_content(spec: StepSpec) -> dict[str, Any]:
    """The parts of a step whose references are its own (a condition's branches are not)."""
    content = {k: v for k, v in spec.raw.items() if k not in ("Arguments", "DependsOn")}
    args = spec.arguments
    if spec.type == "Condition":
        args = {k: v for k, v in args.items() if k not in ("IfSteps", "ElseSteps")}
    content["Arguments"] = args
    return content


def build_plan(definition: dict[str, Any], parameters: dict[str, Any] | None = None) -> Plan:
    """Validate the definition, resolve dependencies and order the steps; raise DefinitionError."""
    if not isinstance(definition, dict) or "Steps" not in definition:
        raise DefinitionError("not a pipeline definition: no 'Steps'")
    version = definition.get("Version")
    if version not in SUPPORTED_VERSIONS:
        raise DefinitionError(f"unsupported definition Version {version!r}; expected one of {sorted(SUPPORTED_VERSIONS)}")
    params = parse_parameters(definition, parameters)

    flat: list[StepSpec] = []
    _flatten(definition["Steps"], flat, None)
    steps: dict[str, StepSpec] = {}
    for spec in flat:
        if spec.name in steps:
            raise DefinitionError(f"duplicate step name {spec.name!r}")
        steps[spec.name] = spec
    unsupported = sorted(f"{s.name} ({s.type})" for s in flat if s.type not in SUPPORTED_STEP_TYPES)
    if unsupported:
        raise DefinitionError(
            f"step type(s) not supported by the local executor: {', '.join(unsupported)}; "
            f"supported: {sorted(SUPPORTED_STEP_TYPES)}"
        )

    owners: dict[str, str] = {}
    for spec in flat:
        for pf in spec.raw.get("PropertyFiles") or []:
            name = pf.get("PropertyFileName")
            if name in owners:
                # Ambiguous only for the plain-string form; the Get form names its step.
                owners[name] = ""
            else:
                owners[name] = spec.name

    for spec in flat:
        content = _own_content(spec)
        deps = set(spec.raw.get("DependsOn") or [])
        deps |= referenced_steps(content)
        for pf_name in iter_plain_property_files(content):
            owner = owners.get(pf_name)
            if not owner:
                raise DefinitionError(
                    f"step {spec.name}: property file {pf_name!r} is "
                    + ("declared by several steps" if owner == "" else "not declared by any step")
                )
            deps.add(owner)
        if spec.branch_of:
            deps.add(spec.branch_of[0])
        deps.discard(spec.name)
        missing = sorted(d for d in deps if d not in steps)
        if missing:
            raise DefinitionError(f"step {spec.name} depends on unknown step(s) {missing}")
        spec.depends_on = deps

    sorter = graphlib.TopologicalSorter({name: spec.depends_on for name, spec in steps.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise DefinitionError(f"dependency cycle: {' -> '.join(exc.args[1])}") from None
    # Kahn's algorithm with definition order as the tie-breaker: deterministic and readable.
    waiting = {name: set(spec.depends_on) for name, spec in steps.items()}
    ready = [(spec.index, name) for name, spec in steps.items() if not spec.depends_on]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    heapq.heappush(ready, (steps[other].index, other))
    return Plan(steps=steps, order=order, parameters=params, property_file_owner={k: v for k, v in owners.items() if v})
