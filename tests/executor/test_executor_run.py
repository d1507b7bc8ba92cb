"""End-to-end runs of small definitions whose jobs are tiny Python modules."""

from __future__ import annotations

import json
import tarfile

import pytest
from executor_defs import env_dirs, get, price_pipeline, processing_step, read_json  # noqa: F401 (env_dirs is a fixture)

from pipelines.local_executor import DefinitionError, run_definition

pytestmark = pytest.mark.integration  # the real thing, run locally: `pytest -m integration`


def _run(dirs, definition, **kw):
    kw.setdefault("progress", False)
    return run_definition(
        definition, run_root=dirs["runs"], lake_root=dirs["lake"], registry_root=dirs["registry"], **kw
    )


def test_happy_path_runs_the_dag_and_registers(env_dirs):
    d = env_dirs
    res = _run(d, price_pipeline(d["code"]), execution_id="exec-1")
    assert res.status == "Succeeded", res.failure_reason
    assert [s.name for s in res.steps] == ["Preprocess", "TrainPrice", "EvaluatePrice", "CheckPriceGates", "RegisterPrice", "FailPrice"]
    assert [s.status for s in res.steps] == ["Succeeded"] * 5 + ["Skipped"]
    assert res.fail_message is None

    # Preprocess: outputs uploaded to the execution's prefix; s3:// and /opt/ml mapped in argv; input copied.
    pre = res.step("Preprocess")
    train_uri = pre.properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert train_uri == "s3://bkt/runs/exec-1/Preprocess/train"
    meta = read_json(d["lake"] / "bkt/runs/exec-1/Preprocess/train/meta.json")
    argv = meta["argv"]
    opt_ml = d["runs"].resolve() / "exec-1" / "Preprocess" / "opt_ml"
    assert argv[argv.index("--raw-uri") + 1] == str(d["lake"].resolve() / "bkt/raw") + "/"
    assert argv[argv.index("--opt") + 1] == str(opt_ml / "processing/output/train")
    assert argv[argv.index("--rows") + 1] == "3"
    assert meta["raw"] == ["a.txt", "b.txt"] and meta["env_a"] == "b"
    assert (opt_ml / "processing/input/raw/nested/b.txt").read_text() == "b"
    assert pre.stdout_log.read_text().strip() == "preprocess done"

    # Training contract: hyperparameters as strings, channels, model.tar.gz under <output>/<job>/output/.
    tr = res.step("TrainPrice")
    job = tr.properties["TrainingJobName"]
    assert job.startswith("pipelines-exec-1-TrainPrice")
    model_uri = tr.properties["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri == f"s3://bkt/models/{job}/output/model.tar.gz"
    t_opt = d["runs"].resolve() / "exec-1" / "TrainPrice" / "opt_ml"
    assert read_json(t_opt / "input/config/hyperparameters.json") == {"model": "price", "n": "3"}
    with tarfile.open(d["lake"] / "bkt/models" / job / "output/model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["model.json", "sub", "sub/weights.txt"]
        model = json.load(tar.extractfile("model.json"))
    assert model["rows"] == 3 and model["channels"] == ["train", "validation"]
    assert model["env_channel"] == str(t_opt / "input/data/train")
    step_json = read_json(d["runs"] / "exec-1/TrainPrice/step.json")
    assert step_json["status"] == "Succeeded" and step_json["ignored"]["EnableManagedSpotTraining"] is True
    assert step_json["resolved_arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == train_uri

    # Evaluate got the single model object as a file inside its input dir.
    e_opt = d["runs"].resolve() / "exec-1" / "EvaluatePrice" / "opt_ml"
    assert (e_opt / "processing/model/model.tar.gz").is_file()

    # Registered: artifact, approval status from a parameter, metrics read back from the S3 URI.
    pkg = read_json(d["registry"] / "airfare-price/1/package.json")
    assert pkg["ModelApprovalStatus"] == "PendingManualApproval"
    assert pkg["Metrics"]["regression_metrics"]["rmse"]["value"] == 5.0
    assert pkg["Source"]["pipeline_execution_id"] == "exec-1" and pkg["Source"]["model_data_url"] == model_uri
    assert res.step("RegisterPrice").properties["ModelPackageVersion"] == 1
    assert res.step("CheckPriceGates").properties == {"Outcome": True}

    ex = read_json(d["runs"] / "exec-1/execution.json")
    assert ex["status"] == "Succeeded" and [s["status"] for s in ex["steps"]][-1] == "Skipped"
    assert (d["runs"] / "exec-1/definition.json").is_file()


def test_failing_gate_ends_in_fail_step_and_registers_nothing(env_dirs):
    d = env_dirs
    res = _run(d, price_pipeline(d["code"]), parameters={"ObservedRmse": "12.5", "ModelApprovalStatus": "Approved"})
    assert res.status == "Failed"
    assert res.failed_step == "FailPrice"
    assert res.fail_message == "price gate failed: rmse=12.5 (max 10.0)"
    statuses = {s.name: s.status for s in res.steps}
    assert statuses["CheckPriceGates"] == "Succeeded" and statuses["RegisterPrice"] == "Skipped"
    assert statuses["FailPrice"] == "Succeeded"
    assert res.step("CheckPriceGates").properties == {"Outcome": False}
    assert not d["registry"].exists() or not any(d["registry"].rglob("package.json"))
    assert read_json(res.run_dir / "execution.json")["fail_message"] == res.fail_message


def test_crashing_training_stops_dependants_with_reason(env_dirs):
    d = env_dirs
    res = _run(d, price_pipeline(d["code"], crash_training=True))
    assert res.status == "Failed" and res.failed_step == "TrainPrice" and res.fail_message is None
    tr = res.step("TrainPrice")
    assert tr.status == "Failed"
    assert "exit code 3" in tr.failure_reason
    assert "AlgorithmError: the trainer was told to crash" in tr.failure_reason
    assert "about to crash" in tr.failure_reason
    assert {s.name: s.status for s in res.steps} == {
        "Preprocess": "Succeeded", "TrainPrice": "Failed", "EvaluatePrice": "NotRun",
        "CheckPriceGates": "NotRun", "RegisterPrice": "NotRun", "FailPrice": "NotRun",
    }  # fmt: skip
    assert read_json(tr.step_dir / "step.json")["failure_reason"] == tr.failure_reason
    assert not (res.run_dir / "EvaluatePrice").exists()


def test_crashing_processing_reports_stderr_and_stops_independent_branches(env_dirs):
    d = env_dirs
    crash = processing_step("Crash", "tj_crash", d["code"])
    after = processing_step("After", "tj_preprocess", d["code"], depends_on=["Crash"],
                            outputs=[("train", "s3://bkt/x/train", "/opt/ml/processing/output/train"),
                                     ("test", "s3://bkt/x/test", "/opt/ml/processing/output/test")])  # fmt: skip
    other = processing_step("Other", "tj_crash", d["code"])
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "ImageUri", "Type": "String", "DefaultValue": "i"}],
                  "Steps": [crash, after, other]}  # fmt: skip
    res = _run(d, definition)
    assert res.failed_step == "Crash"
    assert "ValueError: bad split" in res.failure_reason
    assert res.step("After").status == "NotRun"
    assert res.step("Other").status == "NotRun"  # with one worker, nothing new starts after a failure
    assert res.step("Crash").stdout_log.read_text() == "starting\n"


def test_missing_input_fails_the_step_clearly(env_dirs):
    d = env_dirs
    res = _run(d, price_pipeline(d["code"]), parameters={"RawUri": "s3://bkt/nothing-here/"})
    assert res.failed_step == "Preprocess"
    assert "no S3 objects found under s3://bkt/nothing-here/" in res.failure_reason


def test_parallel_workers_run_independent_steps(env_dirs):
    d = env_dirs
    barrier = d["code"].parent / "barrier"  # each job waits for the other two: serial runs fail, not flake
    barrier.mkdir()
    steps = [
        processing_step(f"P{i}", "tj_preprocess", d["code"], args=["--barrier", f"{barrier}:3"],
                        outputs=[("train", f"s3://bkt/p{i}/train", "/opt/ml/processing/output/train"),
                                 ("test", f"s3://bkt/p{i}/test", "/opt/ml/processing/output/test")])
        for i in range(3)
    ]  # fmt: skip
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "ImageUri", "Type": "String", "DefaultValue": "i"}],
                  "Steps": steps}  # fmt: skip
    res = _run(d, definition, max_workers=3)
    assert res.status == "Succeeded", res.failure_reason
    for i in range(3):
        assert (d["lake"] / f"bkt/p{i}/train/data.csv").is_file()
    assert len(list(barrier.iterdir())) == 3


@pytest.mark.parametrize("distribution", ["FullyReplicated", "ShardedByS3Key"])
def test_multi_instance_processing_gives_each_instance_its_host_and_share(env_dirs, distribution):
    """InstanceCount > 1: one process per instance with SageMaker's resourceconfig.json, inputs whole or
    dealt out by S3 key, and every instance's outputs uploaded to the one output prefix."""
    d = env_dirs
    for i in range(5):
        (d["lake"] / "bkt" / "raw" / f"k{i}.txt").write_text(str(i))
    step = processing_step("P", "tj_hosts", d["code"], instances=3, distribution=distribution,
                           inputs=[("raw", get("Parameters.RawUri"), "/opt/ml/processing/input/raw")],
                           outputs=[("out", "s3://bkt/hosts/out", "/opt/ml/processing/output/out")])  # fmt: skip
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "ImageUri", "Type": "String", "DefaultValue": "i"},
                                                          {"Name": "RawUri", "Type": "String", "DefaultValue": "s3://bkt/raw/"}],
                  "Steps": [step]}  # fmt: skip
    res = _run(d, definition)
    assert res.status == "Succeeded", res.failure_reason
    docs = {h: read_json(d["lake"] / f"bkt/hosts/out/{h}.json") for h in ("algo-1", "algo-2", "algo-3")}
    everything = sorted(["raw/a.txt", "raw/nested/b.txt"] + [f"raw/k{i}.txt" for i in range(5)])
    for h, doc in docs.items():
        assert doc["cfg"] == {"current_host": h, "hosts": ["algo-1", "algo-2", "algo-3"]}
    if distribution == "FullyReplicated":
        assert all(doc["inputs"] == everything for doc in docs.values())
    else:
        shares = [doc["inputs"] for doc in docs.values()]
        assert sorted(f for share in shares for f in share) == everything  # each object on exactly one instance
        assert all(2 <= len(share) <= 3 for share in shares)
    step_json = read_json(d["runs"] / res.execution_id / "P" / "step.json")
    assert step_json["instances"] == ["algo-1", "algo-2", "algo-3"]

    # one broken instance fails the job, naming the instance
    step["Arguments"]["Environment"]["CRASH_HOST"] = "algo-2"
    res = _run(d, definition)
    assert res.failed_step == "P" and res.failure_reason.startswith("instance algo-2 of 3: exit code 1")
    assert "instance algo-2 broke" in res.failure_reason


def test_max_runtime_stops_a_hung_job(env_dirs):
    d = env_dirs
    definition = price_pipeline(d["code"])
    train = definition["Steps"][1]
    train["Arguments"]["HyperParameters"]["sleep"] = "30"
    train["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] = 1
    res = _run(d, definition)
    assert res.failed_step == "TrainPrice"
    assert "MaxRuntimeInSeconds (1) exceeded" in res.failure_reason
    assert res.step("TrainPrice").seconds < 10


def test_cache_hit_reuses_earlier_outputs(env_dirs):
    d = env_dirs
    cached = price_pipeline(d["code"], preprocess_cache={"Enabled": True, "ExpireAfter": "P30D"})
    # A fixed output prefix: with the execution id in it, the arguments (hence the key) change.
    for out in cached["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
        out["S3Output"]["S3Uri"] = f"s3://bkt/fixed/{out['OutputName']}"
    first = _run(d, cached, execution_id="c1")
    second = _run(d, cached, execution_id="c2")
    assert first.status == second.status == "Succeeded"
    assert first.step("Preprocess").cached_from is None
    assert second.step("Preprocess").cached_from == "c1"
    assert not (second.run_dir / "Preprocess" / "opt_ml").exists()
    assert second.step("TrainPrice").cached_from is None  # no CacheConfig
    # A changed input misses the cache.
    (d["lake"] / "bkt/raw/a.txt").write_text("changed")
    third = _run(d, cached, execution_id="c3")
    assert third.step("Preprocess").cached_from is None
    # use_cache=False ignores it.
    fourth = _run(d, cached, execution_id="c4", use_cache=False)
    assert fourth.step("Preprocess").cached_from is None


def test_definition_errors_raise_before_running(env_dirs):
    d = env_dirs
    with pytest.raises(DefinitionError, match="unknown parameter"):
        _run(d, price_pipeline(d["code"]), parameters={"Nope": 1})
    with pytest.raises(DefinitionError, match="not a valid Integer"):
        _run(d, price_pipeline(d["code"]), parameters={"Rows": "three"})
    with pytest.raises(DefinitionError, match="not one of"):
        _run(d, price_pipeline(d["code"]), parameters={"ModelApprovalStatus": "Maybe"})
    assert not d["runs"].exists() or not any(d["runs"].iterdir())
    _run(d, price_pipeline(d["code"]), execution_id="same")
    with pytest.raises(ValueError, match="already exists"):
        _run(d, price_pipeline(d["code"]), execution_id="same")


def test_progress_lines(env_dirs, capsys):
    d = env_dirs
    res = _run(d, price_pipeline(d["code"]), parameters={"ObservedRmse": 99}, progress=True)
    err = capsys.readouterr().err
    assert res.status == "Failed"
    assert "▶ Preprocess (Processing) started" in err
    assert "✔ TrainPrice succeeded in" in err
    assert "↷ RegisterPrice skipped" in err
    assert "■ FailPrice (Fail): price gate failed: rmse=99.0" in err


def test_condition_step_json_records_resolved_operands(env_dirs):
    d = env_dirs
    res = _run(d, price_pipeline(d["code"]), parameters={"ObservedRmse": 11})
    doc = read_json(res.run_dir / "CheckPriceGates" / "step.json")
    (evaluated,) = doc["evaluated_conditions"]
    assert evaluated["value"] is False
    assert evaluated["condition"] == {"Type": "LessThanOrEqualTo", "LeftValue": 11.0, "RightValue": 10.0}


def test_s3_lake_runs_the_same_dag_through_s3_calls(env_dirs, moto_server, monkeypatch):
    """With an S3 endpoint, inputs are downloaded into /opt/ml, outputs, model.tar.gz and the registry
    artifact uploaded, s3:// arguments reach the job unchanged, cache keys follow the objects."""
    import boto3

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    d = env_dirs
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    bucket_dir = d["lake"] / "bkt"
    s3.create_bucket(Bucket="bkt")
    for path in bucket_dir.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "bkt", path.relative_to(bucket_dir).as_posix())
    import shutil

    shutil.rmtree(d["lake"])  # the folder lake must not be needed
    definition = price_pipeline(d["code"], preprocess_cache={"Enabled": True})
    for out in definition["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
        out["S3Output"]["S3Uri"] = f"s3://bkt/fixed/{out['OutputName']}"  # so that the cache key can repeat
    args = definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"]
    i = args.index("--uri-check")
    del args[i : i + 2]  # that check is of a mapped local path: not applicable to S3

    res = _run(d, definition, execution_id="s3-1", s3_endpoint_url=moto_server)
    assert res.status == "Succeeded", res.failure_reason
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]}
    job = res.step("TrainPrice").properties["TrainingJobName"]
    assert {"fixed/train/data.csv", "fixed/train/meta.json", "fixed/test/data.csv",
            f"models/{job}/output/model.tar.gz", "runs/s3-1/EvaluatePrice/evaluation/evaluation.json",
            "registry/airfare-price/1/model.tar.gz"} <= keys  # fmt: skip
    meta = json.loads(s3.get_object(Bucket="bkt", Key="fixed/train/meta.json")["Body"].read())
    assert meta["argv"][meta["argv"].index("--raw-uri") + 1] == "s3://bkt/raw/"  # not rewritten to a folder
    assert meta["raw"] == ["a.txt", "b.txt"]  # the input was downloaded into /opt/ml/processing/input/raw
    pkg = read_json(d["registry"] / "airfare-price/1/package.json")
    assert pkg["ModelDataUrl"] == "s3://bkt/registry/airfare-price/1/model.tar.gz"
    assert pkg["Metrics"]["regression_metrics"]["rmse"]["value"] == 5.0  # read back through GetObject
    assert not d["lake"].exists()

    # Cache: a second run hits; changing an input object misses.
    again = _run(d, definition, execution_id="s3-2", s3_endpoint_url=moto_server)
    assert again.step("Preprocess").cached_from == "s3-1"
    s3.put_object(Bucket="bkt", Key="raw/a.txt", Body=b"changed")
    third = _run(d, definition, execution_id="s3-3", s3_endpoint_url=moto_server)
    assert third.step("Preprocess").cached_from is None


def test_a_channel_name_cannot_name_a_folder_outside_the_job(env_dirs):
    from executor_defs import training_step

    d = env_dirs
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "ImageUri", "Type": "String", "DefaultValue": "img"}],
                  "Steps": [training_step("TrainX", d["code"], channels={"..": "s3://bkt/raw/"}, hyperparameters={})]}  # fmt: skip
    res = _run(d, definition)
    assert res.status == "Failed" and "channel name '..'" in res.failure_reason
