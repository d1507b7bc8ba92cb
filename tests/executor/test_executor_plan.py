"""Planning: parameters, dependencies (DependsOn, property references, branches), ordering."""

from __future__ import annotations

import pytest

from pipelines.local_executor import DefinitionError, build_plan
from pipelines.local_executor.jobs import _train_command, job_name


def _step(name, type_="Fail", args=None, **extra):
    return {"Name": name, "Type": type_, "Arguments": args or {"ErrorMessage": "x"}, **extra}


def _definition(steps, params=()):
    return {"Version": "2020-12-01", "Parameters": list(params), "Steps": steps}


def test_order_follows_depends_on_references_and_definition_order():
    steps = [
        _step("C", args={"ErrorMessage": {"Get": "Steps.B.Outcome"}}),
        _step("B", DependsOn=["A"]),
        _step("A"),
        _step("D"),
    ]
    plan = build_plan(_definition(steps))
    assert plan.order == ["A", "B", "C", "D"] or plan.order == ["A", "B", "D", "C"]
    assert plan.order.index("A") < plan.order.index("B") < plan.order.index("C")
    assert plan.steps["C"].depends_on == {"B"}
    # Ties are broken by definition order: A is the first ready step, D comes before B's dependants.
    assert plan.order[0] == "A"


def test_branch_steps_are_flattened_and_depend_on_their_condition():
    cond = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": {"Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "a"}}, "RightValue": 1}],
            "IfSteps": [_step("Yes", args={"ErrorMessage": {"Get": "Steps.Eval.ProcessingJobName"}})],
            "ElseSteps": [_step("No")],
        },
    }  # fmt: skip
    ev = _step("Eval", PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "o", "FilePath": "r.json"}])
    plan = build_plan(_definition([cond, ev]))
    assert plan.order == ["Eval", "Check", "Yes", "No"]
    assert plan.steps["Check"].depends_on == {"Eval"}  # not its branches' references
    assert plan.steps["Yes"].depends_on == {"Check", "Eval"} and plan.steps["Yes"].branch_of == ("Check", True)
    assert plan.steps["No"].branch_of == ("Check", False)


def test_plain_string_property_file_resolves_its_owner():
    ev = _step("Eval", PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "o", "FilePath": "r.json"}])
    use = _step("Use", args={"ErrorMessage": {"Std:JsonGet": {"PropertyFile": "Report", "Path": "a"}}})
    plan = build_plan(_definition([use, ev]))
    assert plan.order == ["Eval", "Use"] and plan.property_file_owner == {"Report": "Eval"}
    bad = _step("Bad", args={"ErrorMessage": {"Std:JsonGet": {"PropertyFile": "Nope", "Path": "a"}}})
    with pytest.raises(DefinitionError, match="not declared"):
        build_plan(_definition([bad]))


@pytest.mark.parametrize(
    "steps, message",
    [
        ([_step("A", DependsOn=["B"]), _step("B", DependsOn=["A"])], "cycle"),
        ([_step("A", DependsOn=["Z"])], "unknown step"),
        ([_step("A"), _step("A")], "duplicate"),
        ([_step("L", "Lambda")], "not supported"),
    ],
)
def test_bad_definitions(steps, message):
    with pytest.raises(DefinitionError, match=message):
        build_plan(_definition(steps))


def test_version_is_checked():
    with pytest.raises(DefinitionError, match="Version"):
        build_plan({"Version": "2019-01-01", "Steps": []})


def test_parameters_defaults_overrides_and_types():
    params = [
        {"Name": "S", "Type": "String", "DefaultValue": "a"},
        {"Name": "I", "Type": "Integer", "DefaultValue": 1},
        {"Name": "F", "Type": "Float", "DefaultValue": 1.5},
        {"Name": "B", "Type": "Boolean", "DefaultValue": False},
        {"Name": "N", "Type": "String"},
    ]
    plan = build_plan(_definition([], params), {"I": "7", "F": "2", "B": "true", "N": 5})
    assert plan.parameters == {"S": "a", "I": 7, "F": 2.0, "B": True, "N": "5"}
    with pytest.raises(DefinitionError, match="no DefaultValue"):
        build_plan(_definition([], params))
    with pytest.raises(DefinitionError, match="not a valid Integer"):
        build_plan(_definition([], params), {"N": "x", "I": 1.5})
    with pytest.raises(DefinitionError, match="not a valid Boolean"):
        build_plan(_definition([], params), {"N": "x", "B": "maybe"})


def test_job_names_are_valid_sagemaker_names():
    name = job_name("20260101T000000-abc123", "TrainPrice")
    assert name == "pipelines-20260101T000000-abc123-TrainPrice"
    long = job_name("x" * 40, "Step_With_Underscores_And_A_Long_Name")
    assert len(long) <= 63 and "_" not in long
    assert long != job_name("x" * 40, "Step_With_Underscores_And_A_Long_Other")


def test_training_runs_the_images_train_unless_an_entrypoint_is_given():
    import sys
    from pathlib import Path

    cmd = _train_command({"TrainingImage": "img"})
    train = Path(sys.executable).with_name("train")
    assert cmd == ([str(train)] if train.is_file() else [sys.executable, "-m", "training.entry"])
    assert _train_command({"ContainerEntrypoint": ["python", "-m", "x"], "ContainerArguments": ["--a"]}) == [
        "python", "-m", "x", "--a"]  # fmt: skip


@pytest.mark.slow
def test_real_definition_orders_into_the_expected_dag():
    """The project's definition (pipelines/definition.py), built by the SDK, is planned, not run."""
    from pipelines.definition import definition_dict

    plan = build_plan(definition_dict())
    deps = {name: spec.depends_on for name, spec in plan.steps.items()}
    assert deps["Preprocess"] == set()
    assert deps["MergeSplits"] == {"Preprocess"}
    assert deps["DataQuality"] == {"MergeSplits"}
    assert deps["CheckDataQuality"] == {"DataQuality"}
    assert plan.steps["FailDataQuality"].branch_of == ("CheckDataQuality", False)
    for model in ("Price", "Demand", "Anomaly"):
        assert plan.steps[f"Train{model}"].branch_of == ("CheckDataQuality", True)
        assert deps[f"Train{model}"] == {"CheckDataQuality", "MergeSplits"}
        assert deps[f"Evaluate{model}"] == {"MergeSplits", f"Train{model}"}
        assert deps[f"Check{model}Gates"] == {f"Evaluate{model}"}
        # the price model passes its gates, then the champion/challenger check (ComparePrice's report)
        gate = "CheckPriceChampion" if model == "Price" else f"Check{model}Gates"
        assert plan.steps[f"Register{model}"].branch_of == (gate, True)
        assert plan.steps[f"Register{model}"].type == "RegisterModel"
        assert plan.steps[f"Fail{model}"].branch_of == (f"Check{model}Gates", False)
        o = plan.order
        assert o.index("CheckDataQuality") < o.index(f"Train{model}") < o.index(f"Evaluate{model}") < o.index(f"Register{model}")
        for check in (f"DataQualityCheck{model}", f"ModelQualityCheck{model}"):  # Model Monitor baselines
            assert deps[check] == {f"Evaluate{model}"}
            assert check in deps[f"Register{model}"]
    assert deps["ComparePrice"] == {"MergeSplits", "TrainPrice"}
    assert deps["CheckPriceChampion"] == {"CheckPriceGates", "ComparePrice"}
    assert plan.steps["CheckPriceChampion"].branch_of == ("CheckPriceGates", True)
    assert plan.steps["FailPriceChampion"].branch_of == ("CheckPriceChampion", False)
    assert len(plan.order) == 29  # 26 + ComparePrice, CheckPriceChampion, FailPriceChampion
