"""Builders for small pipeline definitions shaped like the SDK's output, and tiny job modules.

The job modules are written into the test's tmp dir and put on PYTHONPATH through each step's
``Environment``, exactly as the executor would see any project code.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

JOBS = {
    "tj_preprocess.py": '''
        """Writes train/test CSVs; reads an optional raw input; echoes its argv."""
        import json, os, sys
        from pathlib import Path
        from core.sm_paths import processing_dir

        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        rows = int(args.get("--rows", "3"))
        raw = processing_dir("input", "raw")
        seen = sorted(p.name for p in raw.rglob("*") if p.is_file()) if raw.exists() else []
        for split in ("train", "test"):
            out = processing_dir("output", split)
            (out / "data.csv").write_text("x,y\\n" + "".join(f"{i},{2*i}\\n" for i in range(rows)))
        (processing_dir("output", "train") / "meta.json").write_text(json.dumps({"argv": sys.argv[1:], "raw": seen,
            "env_a": os.environ.get("A")}))
        if args.get("--uri-check"):
            assert Path(args["--uri-check"]).exists(), args["--uri-check"]
        if args.get("--barrier"):  # DIR:N - wait until N jobs have arrived: proves they run at once
            import time
            folder, n = args["--barrier"].rsplit(":", 1)
            Path(folder, str(os.getpid())).touch()
            deadline = time.monotonic() + 60
            while len(os.listdir(folder)) < int(n):
                if time.monotonic() > deadline:
                    sys.exit("barrier: the other jobs never started alongside this one")
                time.sleep(0.05)
        print("preprocess done")
    ''',
    "tj_train.py": '''
        """A training job following the container contract."""
        import json, os, sys
        from pathlib import Path
        from core.sm_paths import hyperparameters_file, model_dir, training_channel, failure_file

        hps = json.loads(hyperparameters_file().read_text())
        if hps.get("crash") == "true":
            failure_file().parent.mkdir(parents=True, exist_ok=True)
            failure_file().write_text("AlgorithmError: the trainer was told to crash")
            print("about to crash", file=sys.stderr)
            sys.exit(3)
        if hps.get("sleep"):
            import time; time.sleep(float(hps["sleep"]))
        train = training_channel("train")
        lines = (train / "data.csv").read_text().splitlines()
        (model_dir() / "model.json").write_text(json.dumps({"hps": hps, "rows": len(lines) - 1,
            "channels": sorted(os.listdir(Path(os.environ["SM_OPT_ML"]) / "input" / "data")),
            "env_channel": os.environ["SM_CHANNEL_TRAIN"]}))
        (model_dir() / "sub").mkdir(exist_ok=True)
        (model_dir() / "sub" / "weights.txt").write_text("w")
    ''',
    "tj_evaluate.py": '''
        """Evaluates: unpacks model.tar.gz and writes evaluation.json with the rmse it is given."""
        import json, sys, tarfile
        from core.sm_paths import processing_dir

        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        with tarfile.open(processing_dir("model", "model.tar.gz")) as tar:
            meta = json.load(tar.extractfile("model.json"))
        report = {"model": "price", "rows": meta["rows"],
                  "regression_metrics": {"rmse": {"value": float(args["--rmse"])}, "r2": {"value": 0.9}},
                  "items": [{"v": 1}, {"v": 2}]}
        out = processing_dir("evaluation")
        (out / "evaluation.json").write_text(json.dumps(report))
    ''',
    "tj_hosts.py": '''
        import json
        import os
        from pathlib import Path

        from core.sm_paths import opt_ml, processing_dir

        cfg = json.loads(opt_ml("config", "resourceconfig.json").read_text())
        host = cfg["current_host"]
        if host == os.environ.get("CRASH_HOST"):
            raise SystemExit("instance " + host + " broke")
        got = sorted(str(p.relative_to(processing_dir("input"))) for p in processing_dir("input").rglob("*") if p.is_file())
        (processing_dir("output", "out") / (host + ".json")).write_text(json.dumps({"cfg": cfg, "inputs": got}))
    ''',
    "tj_crash.py": '''
        import sys
        print("starting", flush=True)
        print("Traceback: ValueError: bad split", file=sys.stderr)
        sys.exit(1)
    ''',
}


@pytest.fixture()
def env_dirs(tmp_path: Path) -> dict[str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    for name, source in JOBS.items():
        (code / name).write_text(textwrap.dedent(source))
    lake = tmp_path / "lake"
    (lake / "bkt" / "raw").mkdir(parents=True)
    (lake / "bkt" / "raw" / "a.txt").write_text("a")
    (lake / "bkt" / "raw" / "nested").mkdir()
    (lake / "bkt" / "raw" / "nested" / "b.txt").write_text("b")
    return {"code": code, "lake": lake, "runs": tmp_path / "runs", "registry": tmp_path / "registry"}


def join(on: str, *values) -> dict:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def get(expr: str) -> dict:
    return {"Get": expr}


def processing_step(name: str, module: str, code: Path, *, args=(), inputs=(), outputs=(), property_files=None,
                    depends_on=None, env=None, cache=None, max_runtime=None, instances=1, distribution="FullyReplicated") -> dict:  # fmt: skip
    """A Processing step as ``ProcessingStep(step_args=Processor(...).run(...))`` emits it."""
    arguments = {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": get("Parameters.ImageUri"), "ContainerEntrypoint": ["python", "-m", module]},
        "RoleArn": "arn:aws:iam::123456789012:role/x",
        "ProcessingInputs": [
            {"InputName": n, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                          "S3InputMode": "File", "S3DataDistributionType": distribution,
                                          "S3CompressionType": "None"}}
            for n, uri, local in inputs
        ],  # fmt: skip
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": n, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}
                for n, uri, local in outputs
            ]
        },
        "Environment": {"PYTHONPATH": str(code), **(env or {})},
    }
    if args:
        arguments["AppSpecification"]["ContainerArguments"] = list(args)
    if max_runtime:
        arguments["StoppingCondition"] = {"MaxRuntimeInSeconds": max_runtime}
    step = {"Name": name, "Type": "Processing", "Arguments": arguments}
    if property_files:
        step["PropertyFiles"] = property_files
    if depends_on:
        step["DependsOn"] = depends_on
    if cache:
        step["CacheConfig"] = cache
    return step


def training_step(name: str, code: Path, *, channels: dict, hyperparameters: dict, output_path="s3://bkt/models",
                  max_runtime=600, cache=None) -> dict:  # fmt: skip
    """A Training step as ``TrainingStep(step_args=ModelTrainer(...).train(...))`` emits it, with the
    image's entrypoint given explicitly so that the test's tiny trainer runs."""
    step = {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": get("Parameters.ImageUri"),
                                       "ContainerEntrypoint": ["python3", "-m", "tj_train"]},  # fmt: skip
            "HyperParameters": hyperparameters,
            "InputDataConfig": [
                {"ChannelName": ch, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                                                     "S3DataDistributionType": "FullyReplicated"}},
                 "InputMode": "File"}
                for ch, uri in channels.items()
            ],  # fmt: skip
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "RoleArn": "arn:aws:iam::123456789012:role/x",
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
            "OutputDataConfig": {"S3OutputPath": output_path, "CompressionType": "GZIP"},
            "EnableManagedSpotTraining": True,
            "Environment": {"PYTHONPATH": str(code)},
        },
    }
    if cache:
        step["CacheConfig"] = cache
    return step


def price_pipeline(code: Path, *, crash_training: bool = False, preprocess_cache=None) -> dict:
    """Preprocess -> TrainPrice -> EvaluatePrice -> CheckPriceGates -> RegisterPrice | FailPrice."""
    out = lambda step, o: join("/", "s3:/", "bkt", "runs", get("Execution.PipelineExecutionId"), step, o)  # noqa: E731
    pre = processing_step(
        "Preprocess", "tj_preprocess", code,
        args=["--rows", join("", get("Parameters.Rows")), "--raw-uri", "s3://bkt/raw/", "--uri-check", "s3://bkt/raw/a.txt",
              "--opt", "/opt/ml/processing/output/train"],
        inputs=[("raw", get("Parameters.RawUri"), "/opt/ml/processing/input/raw")],
        outputs=[(s, out("Preprocess", s), f"/opt/ml/processing/output/{s}") for s in ("train", "test")],
        env={"A": "b"}, cache=preprocess_cache,
    )  # fmt: skip
    split = lambda s: get(f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{s}'].S3Output.S3Uri")  # noqa: E731
    hps = {"model": "price", "n": "3", **({"crash": "true"} if crash_training else {})}
    train = training_step("TrainPrice", code, channels={"train": split("train"), "validation": split("test")}, hyperparameters=hps)
    evaluate = processing_step(
        "EvaluatePrice", "tj_evaluate", code,
        args=["--rmse", join("", get("Parameters.ObservedRmse"))],
        inputs=[("model", get("Steps.TrainPrice.ModelArtifacts.S3ModelArtifacts"), "/opt/ml/processing/model"),
                ("test", split("test"), "/opt/ml/processing/test")],
        outputs=[("evaluation", out("EvaluatePrice", "evaluation"), "/opt/ml/processing/evaluation")],
        property_files=[{"PropertyFileName": "PriceEvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}],
    )  # fmt: skip
    rmse = {"Std:JsonGet": {"PropertyFile": get("Steps.EvaluatePrice.PropertyFiles.PriceEvaluationReport"),
                            "Path": "regression_metrics.rmse.value"}}  # fmt: skip
    register = {
        "Name": "RegisterPrice",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "airfare-price",
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": join(
                    "/", get("Steps.EvaluatePrice.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"), "evaluation.json")}},
                "Bias": {}, "Explainability": {},
            },  # fmt: skip
            "InferenceSpecification": {
                "Containers": [{"Image": get("Parameters.ImageUri"), "Environment": {},
                                "ModelDataUrl": get("Steps.TrainPrice.ModelArtifacts.S3ModelArtifacts")}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
            },  # fmt: skip
            "ModelApprovalStatus": get("Parameters.ModelApprovalStatus"),
            "SkipModelValidation": "None",
        },
    }
    fail = {"Name": "FailPrice", "Type": "Fail", "Arguments": {"ErrorMessage": join(
        "", "price gate failed: rmse=", rmse, " (max ", get("Parameters.PriceRmseMax"), ")")}}  # fmt: skip
    check = {
        "Name": "CheckPriceGates",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "LessThanOrEqualTo", "LeftValue": rmse, "RightValue": get("Parameters.PriceRmseMax")}],
            "IfSteps": [register],
            "ElseSteps": [fail],
        },
    }
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "ImageUri", "Type": "String", "DefaultValue": "airfare:latest"},
            {"Name": "RawUri", "Type": "String", "DefaultValue": "s3://bkt/raw/"},
            {"Name": "Rows", "Type": "Integer", "DefaultValue": 3},
            {"Name": "ObservedRmse", "Type": "Float", "DefaultValue": 5.0},
            {"Name": "PriceRmseMax", "Type": "Float", "DefaultValue": 10.0},
            {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval",
             "EnumValues": ["PendingManualApproval", "Approved", "Rejected"]},
        ],  # fmt: skip
        "PipelineExperimentConfig": {"ExperimentName": get("Execution.PipelineName"), "TrialName": get("Execution.PipelineExecutionId")},
        "Steps": [pre, train, evaluate, check],
    }


def read_json(path: Path):
    return json.loads(Path(path).read_text())
