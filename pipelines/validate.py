"""Static check of a pipeline definition JSON, before it is upserted or run locally.

SageMaker only finds a dangling reference when the execution reaches it (an hour of training
later), and the published JSON schema is out of date (no ``Std:JsonGet``, no ``PropertyFiles``),
so this module proves, without running anything, that every reference resolves:

- ``{"Get": "Parameters.X"}``: X is declared; ``{"Get": "Execution.X"}``: X is an execution variable;
- ``{"Get": "Steps.S...."}``: S exists and is not the referring step; ``ProcessingOutputConfig.Outputs['x']``
  names an output of S; ``ModelArtifacts`` is read from a training step;
- ``{"Std:JsonGet": ...}``: the property file is declared on that step, its output exists, and the
  JSON path is one the report really writes (``REPORT_PATHS`` for evaluation reports,
  ``DQ_REPORT_PATHS`` for the data-quality result, ``CHAMPION_REPORT_PATHS`` for the
  champion/challenger comparison, all in :mod:`core.pipeline_contract`); which
  report a property file is comes from its name (``report_kinds``, passed in or the contract's);
- ``Std:Join`` is well formed; ``DependsOn``, ``IfSteps`` and ``ElseSteps`` name existing steps;
- step names are unique and the step graph has no cycle;
- ``QualityCheck`` steps have a known ``CheckType``, a baseline dataset input, one output and the
  analyzer's environment, and only they are asked for baseline properties
  (``CalculatedBaselineStatistics``, ``BaselineUsedForDriftCheckConstraints``, ...).

Pure stdlib on dicts: it imports only the pipeline contract, never the SageMaker SDK or the
definition, so the local executor can call it cheaply.
"""

from __future__ import annotations

import graphlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from core import pipeline_contract

EXECUTION_VARIABLES = {
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
}
PARAMETER_TYPES = {"String", "Integer", "Float", "Boolean"}
CONDITION_TYPES = {
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "In",
    "Not",
    "Or",
}
_OUTPUT_REF = re.compile(r"^ProcessingOutputConfig\.Outputs\['([^']+)'\]")
# QualityCheck steps (Model Monitor baselines): their properties and what their job needs.
QUALITY_CHECK_PROPERTIES = {
    "CalculatedBaselineStatistics",
    "CalculatedBaselineConstraints",
    "BaselineUsedForDriftCheckStatistics",
    "BaselineUsedForDriftCheckConstraints",
}
QUALITY_CHECK_TYPES = {"DATA_QUALITY", "MODEL_QUALITY"}
QUALITY_PROBLEM_TYPES = {"Regression", "BinaryClassification", "MulticlassClassification"}
_PATH_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class Problem:
    """One unresolved reference or malformed construct; ``where`` is a JSON-ish locator."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def known_report_paths() -> dict[str, set[str]]:
    """Report kind (``dq`` or a model) -> JSON paths its file really contains."""
    paths: dict[str, set[str]] = {"dq": set(pipeline_contract.DQ_REPORT_PATHS),
                                  "champion": set(pipeline_contract.CHAMPION_REPORT_PATHS)}
    for model, model_paths in pipeline_contract.REPORT_PATHS.items():
        paths[model] = set(model_paths)
    return paths


@dataclass
class _Step:
    name: str
    type: str
    body: dict
    where: str
    parent: str | None  # the ConditionStep holding it in IfSteps/ElseSteps


def _flatten_steps(steps: list, where: str, parent: str | None, out: list[_Step], problems: list[Problem]) -> None:
    for i, step in enumerate(steps or []):
        loc = f"{where}[{i}]"
        if isinstance(step, str):  # a branch may name a top-level step instead of nesting it
            continue
        if not isinstance(step, dict) or not isinstance(step.get("Name"), str):
            problems.append(Problem(loc, "a step must be an object with a string Name"))
            continue
        loc = f"{where}[{step['Name']}]"
        out.append(_Step(step["Name"], step.get("Type", ""), step, loc, parent))
        if step.get("Type") == "Condition":
            args = step.get("Arguments") or {}
            for branch in ("IfSteps", "ElseSteps"):
                _flatten_steps(args.get(branch) or [], f"{loc}.{branch}", step["Name"], out, problems)


def _walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Yield (locator, node) for every dict node that is a pipeline expression."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Get", "Std:Join", "Std:JsonGet"):
            yield where, value
            if "Std:Join" in value:
                for i, v in enumerate((value["Std:Join"] or {}).get("Values") or []):
                    yield from _walk(v, f"{where}.Std:Join.Values[{i}]")
            return
        for k, v in value.items():
            if k in ("IfSteps", "ElseSteps"):
                continue  # nested steps are checked as steps of their own
            yield from _walk(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{where}[{i}]")


def _output_names(step: _Step) -> set[str]:
    outputs = ((step.body.get("Arguments") or {}).get("ProcessingOutputConfig") or {}).get("Outputs") or []
    return {o.get("OutputName") for o in outputs if isinstance(o, dict)}


def _property_files(step: _Step) -> dict[str, dict]:
    return {p.get("PropertyFileName"): p for p in step.body.get("PropertyFiles") or [] if isinstance(p, dict)}


def validate_definition(defn: dict, report_kinds: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem found in ``defn`` (an empty list means the definition is sound).

    ``report_kinds`` maps a property file's name to the report it holds (``dq`` or a model);
    default: the pipeline contract's names (``pipeline_contract.report_kinds()``). The JSON
    paths read from a property file of unknown kind are not checked.
    """
    problems: list[Problem] = []
    report_kinds = pipeline_contract.report_kinds() if report_kinds is None else dict(report_kinds)
    if not isinstance(defn, dict):
        return [Problem("$", "the definition must be a JSON object")]

    params: dict[str, dict] = {}
    for i, p in enumerate(defn.get("Parameters") or []):
        name = p.get("Name") if isinstance(p, dict) else None
        if not name:
            problems.append(Problem(f"Parameters[{i}]", "parameter without a Name"))
            continue
        if name in params:
            problems.append(Problem(f"Parameters[{name}]", "declared twice"))
        if p.get("Type") not in PARAMETER_TYPES:
            problems.append(Problem(f"Parameters[{name}]", f"Type {p.get('Type')!r} is not one of {sorted(PARAMETER_TYPES)}"))
        params[name] = p

    if not isinstance(defn.get("Steps"), list) or not defn["Steps"]:
        return problems + [Problem("Steps", "the definition has no steps")]
    flat: list[_Step] = []
    _flatten_steps(defn["Steps"], "Steps", None, flat, problems)
    steps: dict[str, _Step] = {}
    for s in flat:
        if s.name in steps:
            problems.append(Problem(s.where, f"step name {s.name!r} is used twice"))
        steps[s.name] = s

    report_paths = known_report_paths()
    edges: dict[str, set[str]] = {name: set() for name in steps}

    def check_get(ref: Any, where: str, current: _Step) -> None:
        if not isinstance(ref, str):
            problems.append(Problem(where, f"Get must name a string reference, got {ref!r}"))
            return
        namespace, _, rest = ref.partition(".")
        if namespace == "Parameters":
            if rest not in params:
                problems.append(Problem(where, f"parameter {rest!r} is not declared (declared: {', '.join(sorted(params))})"))
        elif namespace == "Execution":
            if rest not in EXECUTION_VARIABLES:
                problems.append(Problem(where, f"unknown execution variable {rest!r}"))
        elif namespace == "Steps":
            step_ref, _, attr = rest.partition(".")
            target = steps.get(step_ref)
            if target is None:
                problems.append(Problem(where, f"{ref!r} refers to step {step_ref!r}, which does not exist"))
                return
            if target.name == current.name:
                problems.append(Problem(where, f"step {current.name!r} refers to its own properties"))
                return
            edges[current.name].add(target.name)
            m = _OUTPUT_REF.match(attr)
            if attr.startswith("ProcessingOutputConfig"):
                if not m:
                    problems.append(Problem(where, f"malformed output reference {attr!r}"))
                elif m.group(1) not in _output_names(target):
                    problems.append(Problem(where, f"step {target.name!r} has no output {m.group(1)!r} "
                                                   f"(outputs: {', '.join(sorted(_output_names(target))) or 'none'})"))  # fmt: skip
            elif attr.startswith("ModelArtifacts") and target.type != "Training":
                problems.append(Problem(where, f"ModelArtifacts of {target.name!r}, which is a {target.type} step, not Training"))
            elif attr.startswith("PropertyFiles"):
                problems.append(Problem(where, "a PropertyFiles reference is only valid inside Std:JsonGet"))
            elif attr in QUALITY_CHECK_PROPERTIES and target.type != "QualityCheck":
                problems.append(Problem(where, f"{attr} of {target.name!r}, which is a {target.type} step, not QualityCheck"))
            elif target.type == "QualityCheck" and not (attr in QUALITY_CHECK_PROPERTIES or attr.startswith("Processing")):
                problems.append(Problem(where, f"QualityCheck step {target.name!r} has no property {attr!r} "
                                               f"(known: {', '.join(sorted(QUALITY_CHECK_PROPERTIES))})"))  # fmt: skip
        else:
            problems.append(Problem(where, f"unknown reference {ref!r} (expected Parameters., Execution. or Steps.)"))

    def check_json_get(spec: Any, where: str, current: _Step) -> None:
        if not isinstance(spec, dict) or "PropertyFile" not in spec or "Path" not in spec:
            problems.append(Problem(where, "Std:JsonGet needs PropertyFile and Path"))
            return
        pf = spec["PropertyFile"]
        if isinstance(pf, str):  # the older plain-name form: the owning step must be unambiguous
            owners = [s.name for s in flat if pf in _property_files(s)]
            if len(owners) != 1:
                problems.append(Problem(where, f"property file {pf!r} is declared by {len(owners)} steps ({', '.join(owners) or 'none'}); "
                                               "use {'Get': 'Steps.<step>.PropertyFiles.<name>'}"))  # fmt: skip
                return
            step_ref, prop_name = owners[0], pf
        else:
            ref = pf.get("Get") if isinstance(pf, dict) else None
            m = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", ref if isinstance(ref, str) else "")
            if not m:
                problems.append(Problem(where, f"PropertyFile must be {{'Get': 'Steps.<step>.PropertyFiles.<name>'}}, got {pf!r}"))
                return
            step_ref, prop_name = m.groups()
        target = steps.get(step_ref)
        if target is None:
            problems.append(Problem(where, f"property file {prop_name!r} refers to step {step_ref!r}, which does not exist"))
            return
        edges[current.name].add(target.name)
        prop = _property_files(target).get(prop_name)
        if prop is None:
            declared = ", ".join(sorted(_property_files(target))) or "none"
            problems.append(Problem(where, f"step {step_ref!r} declares no property file {prop_name!r} (declared: {declared})"))
            return
        if prop.get("OutputName") not in _output_names(target):
            problems.append(Problem(f"{target.where}.PropertyFiles[{prop_name}]",
                                    f"OutputName {prop.get('OutputName')!r} is not an output of step {step_ref!r}"))  # fmt: skip
        path = spec["Path"]
        if not isinstance(path, str) or not path:
            problems.append(Problem(where, f"JsonGet Path must be a non-empty string, got {path!r}"))
            return
        kind = report_kinds.get(prop_name)
        allowed = report_paths.get(kind) if kind else None
        if allowed is not None and _PATH_INDEX.sub("", path) not in allowed:
            problems.append(Problem(where, f"JSON path {path!r} is not in the {kind} report of {prop_name!r} "
                                           f"(known paths: {', '.join(sorted(allowed))})"))  # fmt: skip

    def check_expressions(node: Any, where: str, current: _Step) -> None:
        for loc, expr in _walk(node, where):
            if "Get" in expr:
                check_get(expr["Get"], loc, current)
            elif "Std:JsonGet" in expr:
                check_json_get(expr["Std:JsonGet"], loc, current)
            else:
                join = expr["Std:Join"]
                if not isinstance(join, dict) or not isinstance(join.get("On"), str) or not isinstance(join.get("Values"), list):
                    problems.append(Problem(loc, "Std:Join needs a string On and a list Values"))

    for s in flat:
        check_expressions(s.body.get("Arguments"), f"{s.where}.Arguments", s)
        for i, dep in enumerate(s.body.get("DependsOn") or []):
            if dep not in steps:
                problems.append(Problem(f"{s.where}.DependsOn[{i}]", f"depends on step {dep!r}, which does not exist"))
            elif dep == s.name:
                problems.append(Problem(f"{s.where}.DependsOn[{i}]", "a step cannot depend on itself"))
            else:
                edges[s.name].add(dep)
        if s.parent:
            edges[s.name].add(s.parent)
        if s.type == "Condition":
            args = s.body.get("Arguments") or {}
            conditions = args.get("Conditions")
            if not isinstance(conditions, list) or not conditions:
                problems.append(Problem(f"{s.where}.Arguments.Conditions", "a condition step needs at least one condition"))
            for i, c in enumerate(conditions or []):
                if not isinstance(c, dict) or c.get("Type") not in CONDITION_TYPES:
                    problems.append(Problem(f"{s.where}.Arguments.Conditions[{i}]", f"unknown condition type {c.get('Type') if isinstance(c, dict) else c!r}"))
            for branch in ("IfSteps", "ElseSteps"):
                for i, b in enumerate(args.get(branch) or []):
                    name = b if isinstance(b, str) else (b or {}).get("Name")
                    if name not in steps:
                        problems.append(Problem(f"{s.where}.Arguments.{branch}[{i}]", f"branch step {name!r} does not exist"))
                    elif name == s.name:
                        problems.append(Problem(f"{s.where}.Arguments.{branch}[{i}]", "a condition cannot branch to itself"))
                    elif isinstance(b, str):
                        edges[name].add(s.name)
        if s.type == "QualityCheck":
            problems.extend(_quality_check_problems(s))
        if s.type == "Fail" and not (s.body.get("Arguments") or {}).get("ErrorMessage"):
            problems.append(Problem(f"{s.where}.Arguments", "a Fail step should carry an ErrorMessage"))

    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as e:
        problems.append(Problem("Steps", f"the step graph has a cycle: {' -> '.join(e.args[1])}"))
    return problems


def _quality_check_problems(s: _Step) -> list[Problem]:
    """A QualityCheck step: a known CheckType, one baseline dataset input, one output, and the
    analyzer's environment (dataset_format, dataset_source, output_path; problem_type for model quality)."""
    out: list[Problem] = []
    body, args = s.body, s.body.get("Arguments") or {}
    check_type = body.get("CheckType")
    if check_type not in QUALITY_CHECK_TYPES:
        out.append(Problem(f"{s.where}.CheckType", f"CheckType {check_type!r} is not one of {sorted(QUALITY_CHECK_TYPES)}"))
    inputs = [i.get("InputName") for i in args.get("ProcessingInputs") or [] if isinstance(i, dict)]
    if "baseline_dataset_input" not in inputs:
        out.append(Problem(f"{s.where}.Arguments.ProcessingInputs", "no baseline_dataset_input (the dataset to baseline)"))
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    if len(outputs) != 1:
        out.append(Problem(f"{s.where}.Arguments.ProcessingOutputConfig", f"a QualityCheck job has one output, not {len(outputs)}"))
    env = args.get("Environment") or {}
    for key in ("dataset_format", "dataset_source", "output_path"):
        if key not in env:
            out.append(Problem(f"{s.where}.Arguments.Environment", f"the analyzer needs {key!r}"))
    if isinstance(env.get("dataset_format"), str):
        try:
            json.loads(env["dataset_format"])
        except json.JSONDecodeError:
            out.append(Problem(f"{s.where}.Arguments.Environment.dataset_format", "is not JSON"))
    if check_type == "MODEL_QUALITY":
        if env.get("analysis_type") != "MODEL_QUALITY":
            out.append(Problem(f"{s.where}.Arguments.Environment", "a MODEL_QUALITY check needs analysis_type MODEL_QUALITY"))
        problem = env.get("problem_type")
        if isinstance(problem, str) and problem not in QUALITY_PROBLEM_TYPES:
            out.append(Problem(f"{s.where}.Arguments.Environment.problem_type", f"{problem!r} is not one of {sorted(QUALITY_PROBLEM_TYPES)}"))
        if not env.get("ground_truth_attribute") or not env.get("inference_attribute"):
            out.append(Problem(f"{s.where}.Arguments.Environment", "a MODEL_QUALITY check needs inference_attribute and ground_truth_attribute"))
    return out


def validate_file(path: Path | str, report_kinds: Mapping[str, str] | None = None) -> list[Problem]:
    """Load a definition JSON file and validate it; unreadable files are reported as problems."""
    path = Path(path)
    try:
        defn = json.loads(path.read_text())
    except FileNotFoundError:
        return [Problem(str(path), "file not found")]
    except (OSError, UnicodeDecodeError) as e:
        return [Problem(str(path), f"cannot read: {e}")]
    except json.JSONDecodeError as e:
        return [Problem(f"{path}:{e.lineno}:{e.colno}", f"not valid JSON: {e.msg}")]
    return validate_definition(defn, report_kinds)
