"""Expressions (Get, Std:Join, Std:JsonGet), property paths and conditions."""

from __future__ import annotations

import pytest

from pipelines.local_executor.expressions import ExpressionError, Resolver, lookup, parse_path
from pipelines.local_executor.lake import LakeError, PathMapper, map_opt_ml

REPORT = {"regression_metrics": {"rmse": {"value": 9.5}, "r2": {"value": None}}, "items": [{"v": 1}, {"v": 2}], "flag": True}
PROPS = {
    "Pre": {
        "ProcessingJobName": "job-pre",
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
            {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test"}},
        ]},  # fmt: skip
    },
    "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/m/model.tar.gz"}},
    "Eval": {},
}


@pytest.fixture()
def resolver():
    return Resolver(
        parameters={"Max": 10.0, "N": 3, "Name": "price", "Flag": True},
        execution_vars={"PipelineExecutionId": "e1"},
        step_properties=PROPS,
        property_file_reader=lambda step, name: REPORT if (step, name) == ("Eval", "Report") else {},
        property_file_owner={"Report": "Eval"},
        s3_reader=lambda uri: {"k": uri},
    )


def test_parse_path():
    assert parse_path("Outputs['train'].S3Output.S3Uri") == ["Outputs", "train", "S3Output", "S3Uri"]
    assert parse_path('$.a.b[0]["c d"]') == ["a", "b", 0, "c d"]
    with pytest.raises(ExpressionError):
        parse_path("a..b")


def test_lookup_by_name_and_index():
    assert lookup(PROPS["Pre"], parse_path("ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"), "x") == "s3://b/test"
    assert lookup(PROPS["Pre"], parse_path("ProcessingOutputConfig.Outputs[0].OutputName"), "x") == "train"
    with pytest.raises(ExpressionError, match="no single element named 'nope'"):
        lookup(PROPS["Pre"], parse_path("ProcessingOutputConfig.Outputs['nope']"), "x")


def test_get_join_and_nested_resolution(resolver):
    expr = {
        "uri": {"Std:Join": {"On": "/", "Values": ["s3:/", "b", {"Get": "Execution.PipelineExecutionId"},
                                                     {"Get": "Parameters.N"}, {"Get": "Parameters.Flag"}]}},
        "model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        "train": {"Get": "Steps.Pre.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
        "list": [{"Get": "Parameters.Max"}, "plain"],
        "job": {"Get": "Execution.ProcessingJobName"},
    }  # fmt: skip
    out = resolver.resolve(expr, {"ProcessingJobName": "pj"})
    assert out == {"uri": "s3://b/e1/3/true", "model": "s3://b/m/model.tar.gz", "train": "s3://b/train",
                   "list": [10.0, "plain"], "job": "pj"}  # fmt: skip
    for bad, msg in [("Parameters.Nope", "unknown parameter"), ("Steps.Later.X", "has not run"),
                     ("Steps.Pre.Nope", "not found"), ("Execution.ProcessingJobName", "unavailable")]:  # fmt: skip
        with pytest.raises(ExpressionError, match=msg):
            resolver.resolve({"Get": bad})


def test_json_get_forms(resolver):
    ref = {"Get": "Steps.Eval.PropertyFiles.Report"}
    assert resolver.resolve({"Std:JsonGet": {"PropertyFile": ref, "Path": "regression_metrics.rmse.value"}}) == 9.5
    assert resolver.resolve({"Std:JsonGet": {"PropertyFile": "Report", "Path": "items[1].v"}}) == 2
    assert resolver.resolve({"Std:JsonGet": {"S3Uri": "s3://b/x.json", "Path": "k"}}) == "s3://b/x.json"
    with pytest.raises(ExpressionError, match="missing"):
        resolver.resolve({"Std:JsonGet": {"PropertyFile": ref, "Path": "regression_metrics.missing"}})


def _cmp(t, left, right):
    return {"Type": t, "LeftValue": left, "RightValue": right}


def test_conditions(resolver):
    rmse = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "regression_metrics.rmse.value"}}
    mx = {"Get": "Parameters.Max"}
    assert resolver.evaluate(_cmp("LessThanOrEqualTo", rmse, mx))
    assert not resolver.evaluate(_cmp("GreaterThan", rmse, mx))
    assert resolver.evaluate(_cmp("LessThan", rmse, 10))
    assert resolver.evaluate(_cmp("GreaterThanOrEqualTo", 9.5, rmse))
    assert resolver.evaluate(_cmp("Equals", {"Get": "Parameters.N"}, 3.0))
    assert resolver.evaluate(_cmp("Equals", {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.N"}]}}, 3))
    assert not resolver.evaluate(_cmp("Equals", "3", "3.0"))  # two strings compare as strings
    assert resolver.evaluate(_cmp("Equals", {"Get": "Parameters.Flag"}, True))
    assert resolver.evaluate({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["demand", "price"]})
    assert resolver.evaluate({"Type": "Not", "Condition": _cmp("Equals", rmse, 1)})
    assert resolver.evaluate({"Type": "Or", "Conditions": [_cmp("Equals", 1, 2), _cmp("LessThan", 1, 2)]})
    assert not resolver.evaluate({"Type": "Or", "Conditions": [_cmp("Equals", 1, 2)]})
    with pytest.raises(ExpressionError, match="cannot compare"):
        resolver.evaluate(_cmp("LessThan", "abc", 1))
    with pytest.raises(ExpressionError, match="unsupported condition"):
        resolver.evaluate({"Type": "Maybe"})


def test_a_null_metric_in_a_gate_is_an_error_naming_it(resolver):
    """A report's metric that could not be computed (null) fails the condition step with its path, not 'None'."""
    r2 = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "regression_metrics.r2.value"}}
    with pytest.raises(ExpressionError, match=r"GreaterThan: LeftValue Eval.PropertyFiles.Report path 'regression_metrics.r2.value' is null"):
        resolver.evaluate(_cmp("GreaterThan", r2, 0.85))


def test_path_mapping(tmp_path):
    m = PathMapper(tmp_path / "lake")
    lake = str((tmp_path / "lake").resolve())
    opt = tmp_path / "step" / "opt_ml"
    assert m.s3_to_local("s3://bkt/k/x.parquet") == (tmp_path / "lake").resolve() / "bkt/k/x.parquet"
    assert m.map_text("--uri=s3://bkt/p/", None) == f"--uri={lake}/bkt/p/"
    assert m.map_text("/opt/ml/processing/x", opt) == f"{opt}/processing/x"
    assert m.map_text("/opt/mlx", opt) == "/opt/mlx" and m.map_text("/data/opt/ml/a", opt) == "/data/opt/ml/a"
    assert m.local_to_s3(tmp_path / "lake" / "bkt" / "k") == "s3://bkt/k"
    assert map_opt_ml("/opt/ml/processing/in", opt) == opt / "processing/in"
    with pytest.raises(LakeError, match="not under /opt/ml"):
        map_opt_ml("/etc/passwd", opt)
    with pytest.raises(LakeError):
        m.s3_to_local("s3://bkt/../../etc")
