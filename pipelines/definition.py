"""The airfare SageMaker pipeline: one function that reads top to bottom like the DAG.

    Preprocess (n instances) -> MergeSplits -> DataQuality -> CheckDataQuality --else--> FailDataQuality
                                        |if
              +-------------------------+-------------------------+
         TrainPrice                TrainDemand               TrainAnomaly
              |                         |                         |
        EvaluatePrice             EvaluateDemand            EvaluateAnomaly
              |  (+ DataQualityCheck<Model>, ModelQualityCheck<Model>: Model Monitor baselines)
              |                         |                         |
        CheckPriceGates           CheckDemandGates          CheckAnomalyGates
         |if      |else            |if      |else            |if      |else
  CheckPriceChampion FailPrice RegisterDemand FailDemand RegisterAnomaly FailAnomaly
         |if      |else
   RegisterPrice FailPriceChampion

ComparePrice (beside EvaluatePrice) scores the new price model and the serving one (parameter
``ChampionModelUri``, empty: none) on the same test split, the window's most recent labelled days;
CheckPriceChampion registers the challenger only when there is no champion or it is better
(``core.pipeline_contract``, "champion / challenger"). The absolute gates come first: a challenger
that beats a champion must still be within the seed's gates.

Every job runs the project's one image (DESIGN.md §1, parameter ``ImageUri``); code is in the
image, so building the definition uploads nothing and makes no network call. The same JSON is
upserted to SageMaker and run by the local executor.

Managed spot training cannot be a runtime parameter: the SDK types ``EnableManagedSpotTraining``
as a plain bool, and SageMaker rejects ``MaxWaitTimeInSeconds`` unless spot is on
(sagemaker-python-sdk issue 4140), so one boolean parameter could not drop it. The switch is
therefore made when the definition is built: ``get_pipeline(use_spot_instances=...)``
(``airfare pipeline definition --spot/--no-spot``); the choice is recorded in the pipeline
description.
"""

from __future__ import annotations

import functools
import json

from inference import content_types as served_types
from core import catalog
from core.pipeline_contract import (
    CHAMPION_CHECK_STEP, CHAMPION_FAIL_STEP, CHAMPION_FILE, CHAMPION_METRIC, CHAMPION_MODEL, CHAMPION_OUTPUT,
    CHAMPION_PARAMETER, REGIME_PARAMETER, CHAMPION_PROPERTY_FILE, CHAMPION_STEP, DQ_CHECK_STEP, DQ_FAIL_STEP, DQ_OUTPUT, DQ_PROPERTY_FILE, DQ_REPORT_PATHS, DQ_RESULT_FILE, DQ_STEP, EVALUATION_FILE,
    EVALUATION_OUTPUT, GATES, MERGE_STEP, MODEL_PACKAGE_GROUPS, MODELS, MONITORING_OUTPUT, PREPROCESS_STEP,
    QUALITY_PROBLEM_TYPES, SHARDS_OUTPUT, SPLITS, gates_of, gates_step_name, report_name, step_name,
)  # fmt: skip
from pipelines import sdk
from processing.sampling import DEFAULT_SAMPLE_FLIGHTS, DEFAULT_SAMPLE_ROWS

DEFAULT_PIPELINE_NAME = "airfare-pipeline"
DEFAULT_IMAGE_URI = "airfare-mlops:latest"  # overridden with the ECR URI by CodeBuild (parameter ImageUri)
# The lean serving image (Dockerfile target `serve`) that registered models run in (parameter
# InferenceImageUri): its start-up time decides how fast auto-scaling reacts.
DEFAULT_SERVE_IMAGE_URI = "airfare-mlops:serve-latest"
DEFAULT_ROLE_ARN = "arn:aws:iam::000000000000:role/AirfareSageMakerExecution"
DEFAULT_START_DATE = "2026-01-01"
DEFAULT_END_DATE = "2026-12-31"

# Container paths (docs/contracts.md, "Pipeline steps").
PROCESSING = "/opt/ml/processing"


# Gate operator -> the SDK condition that keeps a model (evaluated in the pipeline, not in Python).
CONDITIONS = {
    "<": sdk.ConditionLessThan,
    ">": sdk.ConditionGreaterThan,
    ">=": sdk.ConditionGreaterThanOrEqualTo,
}
CONDITION_TYPES = {"<": "LessThan", ">": "GreaterThan", ">=": "GreaterThanOrEqualTo"}


def get_pipeline(
    region: str | None = None,
    role: str | None = None,
    default_bucket: str = catalog.DEFAULT_BUCKET,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    image_uri: str = DEFAULT_IMAGE_URI,
    *,
    serve_image_uri: str = DEFAULT_SERVE_IMAGE_URI,
    use_spot_instances: bool = True,
    max_runtime_in_seconds: int = 3600,
    max_wait_time_in_seconds: int = 7200,
    processing_max_runtime_in_seconds: int = 3600,
    subnets: list[str] | None = None,
    security_group_ids: list[str] | None = None,
    volume_kms_key: str | None = None,
    output_kms_key: str | None = None,
    artifacts_prefix: str = catalog.key("pipeline_runs"),
    sagemaker_client=None,
):
    """Build the pipeline (an SDK ``Pipeline``); ``.definition()`` gives the JSON.

    ``role`` is the SageMaker execution role baked into every job (``upsert --role-arn``
    rebuilds with the real one). ``sagemaker_client`` (from ``core.aws.client``) is only
    needed to upsert. Step outputs go to
    ``s3://<default_bucket>/<artifacts_prefix>/<execution id>/<step>/<output>``.
    """
    if use_spot_instances and max_wait_time_in_seconds < max_runtime_in_seconds:
        raise ValueError("max_wait_time_in_seconds must be >= max_runtime_in_seconds for spot training")
    import boto3

    session = sdk.PipelineSession(
        boto_session=boto3.Session(region_name=region or _region()),
        sagemaker_client=sagemaker_client,  # from core.aws for upsert; unused when only building
        default_bucket=default_bucket,
    )
    role = role or DEFAULT_ROLE_ARN

    # ---- parameters: every runtime knob ------------------------------------------------------
    lake = catalog.Catalog(bucket=default_bucket)
    curated_uri = sdk.ParameterString("CuratedDataUri", default_value=lake.uri("offers"))
    outcomes_uri = sdk.ParameterString("OutcomesDataUri", default_value=lake.uri("outcomes"))
    # What production has: the incident feed (confirmed / cleared price incidents) for the anomaly
    # model. The truth is the simulator's answer key, only for "against truth" report columns:
    # empty by default (as on AWS), and no step needs it.
    labels_uri = sdk.ParameterString("LabelsDataUri", default_value=lake.uri("incident_labels"))
    truth_uri = sdk.ParameterString("TruthDataUri", default_value="")
    start_date = sdk.ParameterString("StartDate", default_value=DEFAULT_START_DATE)
    end_date = sdk.ParameterString("EndDate", default_value=DEFAULT_END_DATE)
    validation_days = sdk.ParameterInteger("ValidationDays", default_value=7)  # the last days before test
    test_days = sdk.ParameterInteger("TestDays", default_value=7)  # the last days of the window
    # Offers kept per split (a deterministic hash sample, processing.sampling; 0 = every offer):
    # what bounds the memory of every step after Preprocess. Defaults: docs/scale.md (learning curve).
    sample_rows = {
        "train": sdk.ParameterInteger("TrainSampleRows", default_value=DEFAULT_SAMPLE_ROWS["train"]),
        "validation": sdk.ParameterInteger("ValidationSampleRows", default_value=DEFAULT_SAMPLE_ROWS["validation"]),
        "test": sdk.ParameterInteger("TestSampleRows", default_value=DEFAULT_SAMPLE_ROWS["test"]),
    }
    # Flights whose whole snapshot history makes the demand table (0 = every flight).
    sample_flights = sdk.ParameterInteger("SampleFlights", default_value=DEFAULT_SAMPLE_FLIGHTS)
    image = sdk.ParameterString("ImageUri", default_value=image_uri)
    serve_image = sdk.ParameterString("InferenceImageUri", default_value=serve_image_uri)
    processing_instance_type = sdk.ParameterString("ProcessingInstanceType", default_value="ml.m5.xlarge")
    # Instances of the Preprocess map (each streams every n-th day of the window); the steps after it
    # work on bounded samples and run on one instance (docs/scale.md).
    processing_instance_count = sdk.ParameterInteger("ProcessingInstanceCount", default_value=1)
    training_instance_type = sdk.ParameterString("TrainingInstanceType", default_value="ml.m5.xlarge")
    training_instance_count = sdk.ParameterInteger("TrainingInstanceCount", default_value=1)
    approval_status = sdk.ParameterString(
        "ModelApprovalStatus",
        default_value="PendingManualApproval",
        enum_values=["PendingManualApproval", "Approved", "Rejected"],
    )
    thresholds = {g.parameter: sdk.ParameterFloat(g.parameter, default_value=g.default) for g in GATES}
    # The serving price model's model.tar.gz (the approved package's ModelDataUrl); empty: no
    # champion (a first run), and the absolute gates alone decide.
    champion_uri = sdk.ParameterString(CHAMPION_PARAMETER, default_value="")
    regime_days = sdk.ParameterString(REGIME_PARAMETER, default_value="0")  # "auto" on a retraining run
    parameters = [
        curated_uri, outcomes_uri, labels_uri, truth_uri, start_date, end_date, validation_days, test_days, *sample_rows.values(), sample_flights, image,
        serve_image, processing_instance_type, processing_instance_count, training_instance_type, training_instance_count,
        *thresholds.values(), champion_uri, regime_days, approval_status,
    ]  # fmt: skip

    def s3_out(step: str, output: str):
        return sdk.Join(
            on="/",
            values=["s3:/", default_bucket, artifacts_prefix, sdk.ExecutionVariables.PIPELINE_EXECUTION_ID, step, output],
        )

    network = None
    if subnets or security_group_ids:
        network = sdk.NetworkConfig(subnets=subnets, security_group_ids=security_group_ids)

    def processor(module: str, instance_count=1) -> sdk.Processor:
        return sdk.Processor(
            role=role,
            image_uri=image,
            instance_type=processing_instance_type,
            instance_count=instance_count,
            entrypoint=["python", "-m", module],
            max_runtime_in_seconds=processing_max_runtime_in_seconds,
            volume_kms_key=volume_kms_key,
            output_kms_key=output_kms_key,
            network_config=network,
            sagemaker_session=session,
        )

    def s3_input(name: str, uri, local: str) -> sdk.ProcessingInput:
        return sdk.ProcessingInput(
            input_name=name,
            s3_input=sdk.ProcessingS3Input(
                s3_uri=uri, local_path=local, s3_data_type="S3Prefix", s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )  # fmt: skip

    def s3_output(step: str, name: str, local: str) -> sdk.ProcessingOutput:
        return sdk.ProcessingOutput(
            output_name=name,
            s3_output=sdk.ProcessingS3Output(s3_uri=s3_out(step, name), local_path=local, s3_upload_mode="EndOfJob"),
        )

    # ---- Preprocess (map, n instances): each streams its days -> offer samples + flight snapshots --
    sampling_args = [*[a for split, n in sample_rows.items() for a in (f"--{split}-sample-rows", sdk.Join(on="", values=[n]))],
                     "--sample-flights", sdk.Join(on="", values=[sample_flights])]
    preprocess = sdk.ProcessingStep(
        name=PREPROCESS_STEP,
        step_args=processor("processing.entry", processing_instance_count).run(
            outputs=[s3_output(PREPROCESS_STEP, SHARDS_OUTPUT, f"{PROCESSING}/output/{SHARDS_OUTPUT}")],
            arguments=["--curated-uri", curated_uri, "--start-date", start_date, "--end-date", end_date,
                       # ContainerArguments are strings: Join turns the Integer parameters into text.
                       "--validation-days", sdk.Join(on="", values=[validation_days]),
                       "--test-days", sdk.Join(on="", values=[test_days]), *sampling_args],
        ),
    )  # fmt: skip

    # ---- MergeSplits (reduce, one instance): shards + outcomes -> train/validation/test ----------
    merge = sdk.ProcessingStep(
        name=MERGE_STEP,
        step_args=processor("processing.merge_splits").run(
            inputs=[s3_input(SHARDS_OUTPUT, preprocess.properties.ProcessingOutputConfig.Outputs[SHARDS_OUTPUT].S3Output.S3Uri,
                             f"{PROCESSING}/input/{SHARDS_OUTPUT}")],
            outputs=[s3_output(MERGE_STEP, s, f"{PROCESSING}/output/{s}") for s in SPLITS],
            arguments=["--outcomes-uri", outcomes_uri, *sampling_args],
        ),
    )

    def split_uri(split: str):
        return merge.properties.ProcessingOutputConfig.Outputs[split].S3Output.S3Uri

    # ---- DataQuality: Great Expectations on the splits; blocking failures stop the run ---------
    dq_report = sdk.PropertyFile(name=DQ_PROPERTY_FILE, output_name=DQ_OUTPUT, path=DQ_RESULT_FILE)
    data_quality = sdk.ProcessingStep(
        name=DQ_STEP,
        step_args=processor("data_quality.entry").run(
            inputs=[s3_input(s, split_uri(s), f"{PROCESSING}/input/{s}") for s in SPLITS],
            outputs=[s3_output(DQ_STEP, DQ_OUTPUT, f"{PROCESSING}/output/{DQ_OUTPUT}")],
            # Freshness is judged against the window's end, not the wall clock.
            arguments=["--end-date", end_date],
        ),
        property_files=[dq_report],
    )
    dq_get = {p: sdk.JsonGet(step_name=data_quality.name, property_file=dq_report, json_path=p) for p in DQ_REPORT_PATHS}
    fail_data_quality = sdk.FailStep(
        name=DQ_FAIL_STEP,
        error_message=sdk.Join(
            on="",
            values=["data quality failed: ", dq_get["blocking_failures"], " blocking failure(s): ",
                    dq_get["failed_expectations"]],
        ),
    )  # fmt: skip

    # ---- Train<Model>: the image started with `train`, hyperparameter model=<m> ----------------
    stopping = sdk.StoppingCondition(
        max_runtime_in_seconds=max_runtime_in_seconds,
        **({"max_wait_time_in_seconds": max_wait_time_in_seconds} if use_spot_instances else {}),
    )
    networking = (
        sdk.Networking(subnets=subnets, security_group_ids=security_group_ids) if (subnets or security_group_ids) else None
    )
    train_steps = {}
    for model in MODELS:
        channels = [
            sdk.InputData(channel_name="train", data_source=split_uri("train")),
            sdk.InputData(channel_name="validation", data_source=split_uri("validation")),
        ]
        if model == "anomaly":  # the anomaly threshold is tuned against confirmed incidents
            channels.append(sdk.InputData(channel_name="labels", data_source=labels_uri))
        trainer = sdk.ModelTrainer(
            training_image=image,
            role=role,
            sagemaker_session=session,
            base_job_name=f"airfare-{model}",
            compute=sdk.Compute(
                instance_type=training_instance_type,
                instance_count=training_instance_count,
                volume_size_in_gb=30,
                enable_managed_spot_training=use_spot_instances,
                **({"volume_kms_key_id": volume_kms_key} if volume_kms_key else {}),
            ),
            stopping_condition=stopping,
            networking=networking,
            output_data_config=sdk.OutputDataConfig(
                s3_output_path=s3_out(step_name("Train", model), "model"),
                **({"kms_key_id": output_kms_key} if output_kms_key else {}),
            ),
            hyperparameters={"model": model, **({"regime_days": regime_days} if model == "price" else {})},
        )
        train_steps[model] = sdk.TrainingStep(name=step_name("Train", model), step_args=trainer.train(input_data_config=channels))

    check_data_quality = sdk.ConditionStep(
        name=DQ_CHECK_STEP,
        conditions=[sdk.ConditionEquals(left=dq_get["blocking_failures"], right=0)],
        if_steps=list(train_steps.values()),
        else_steps=[fail_data_quality],
    )

    # ---- Evaluate<Model>: metrics on the test split (anomaly: against the incident feed) --------
    # The truth is an argument, not an input: a processing input cannot be empty, and the truth is
    # optional ("--truth-uri=" with nothing after it: no "against truth" columns).
    evaluate_steps, reports = {}, {}
    for model in MODELS:
        train = train_steps[model]
        reports[model] = report = sdk.PropertyFile(name=report_name(model), output_name=EVALUATION_OUTPUT, path=EVALUATION_FILE)
        inputs = [
            s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING}/model"),
            s3_input("test", split_uri("test"), f"{PROCESSING}/test"),
            s3_input("train", split_uri("train"), f"{PROCESSING}/train"),  # the data-quality baseline's source
        ]
        if model == "anomaly":
            inputs.append(s3_input("labels", labels_uri, f"{PROCESSING}/labels"))
        evaluate = sdk.ProcessingStep(
            name=step_name("Evaluate", model),
            step_args=processor("evaluation.entry").run(
                inputs=inputs,
                outputs=[s3_output(step_name("Evaluate", model), EVALUATION_OUTPUT, f"{PROCESSING}/{EVALUATION_OUTPUT}"),
                         s3_output(step_name("Evaluate", model), MONITORING_OUTPUT, f"{PROCESSING}/{MONITORING_OUTPUT}")],
                arguments=["--model", model, sdk.Join(on="", values=["--truth-uri=", truth_uri])],
            ),
            property_files=[report],
        )
        evaluate_steps[model] = evaluate

    # ---- ComparePrice: the challenger and the champion on the same test split ----------------
    # The champion is an argument, not an input, for the same reason as the truth: it may be empty.
    champion_report = sdk.PropertyFile(name=CHAMPION_PROPERTY_FILE, output_name=CHAMPION_OUTPUT, path=CHAMPION_FILE)
    compare = sdk.ProcessingStep(
        name=CHAMPION_STEP,
        step_args=processor("evaluation.champion").run(
            inputs=[s3_input("model", train_steps[CHAMPION_MODEL].properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING}/model"),
                    s3_input("test", split_uri("test"), f"{PROCESSING}/test")],
            outputs=[s3_output(CHAMPION_STEP, CHAMPION_OUTPUT, f"{PROCESSING}/{CHAMPION_OUTPUT}")],
            arguments=[sdk.Join(on="", values=["--champion-model-uri=", champion_uri])],
        ),
        property_files=[champion_report],
    )  # fmt: skip

    # ---- DataQualityCheck<Model>, ModelQualityCheck<Model>: Model Monitor baselines ------------
    # The SageMaker Projects template's shape: each step computes a fresh baseline (skip_check,
    # register_new_baseline) that is registered with the model as its drift-check baseline. On
    # AWS they run Model Monitor's analyzer image; the local executor runs monitoring.job.
    quality_checks = {}
    for model in MODELS:
        monitoring_uri = evaluate_steps[model].properties.ProcessingOutputConfig.Outputs[MONITORING_OUTPUT].S3Output.S3Uri
        check_job = sdk.CheckJobConfig(
            role=role,
            instance_count=1,
            instance_type=processing_instance_type,
            volume_kms_key=volume_kms_key,
            output_kms_key=output_kms_key,
            max_runtime_in_seconds=processing_max_runtime_in_seconds,
            sagemaker_session=session,
            # The SDK (3.27) copies this object into the request unconverted: give it the request form.
            network_config=network._to_request_dict() if network else None,
            env={"airfare_model": model},  # the local analyzer's gate constraints; AWS's ignores it
        )
        data_check = sdk.QualityCheckStep(
            name=step_name("DataQualityCheck", model),
            quality_check_config=sdk.DataQualityCheckConfig(
                baseline_dataset=sdk.Join(on="/", values=[monitoring_uri, "data"]),
                dataset_format=sdk.DatasetFormat.csv(header=True),
                output_s3_uri=s3_out(step_name("DataQualityCheck", model), "baseline"),
            ),
            check_job_config=check_job,
            skip_check=True,
            register_new_baseline=True,
            model_package_group_name=MODEL_PACKAGE_GROUPS[model],
        )
        model_check = sdk.QualityCheckStep(
            name=step_name("ModelQualityCheck", model),
            quality_check_config=sdk.ModelQualityCheckConfig(
                baseline_dataset=sdk.Join(on="/", values=[monitoring_uri, "model"]),
                dataset_format=sdk.DatasetFormat.csv(header=True),
                output_s3_uri=s3_out(step_name("ModelQualityCheck", model), "baseline"),
                problem_type=QUALITY_PROBLEM_TYPES[model],
                inference_attribute="prediction",
                ground_truth_attribute="label",
                **({"probability_attribute": "probability"} if model != "price" else {}),
            ),
            check_job_config=check_job,
            skip_check=True,
            register_new_baseline=True,
            model_package_group_name=MODEL_PACKAGE_GROUPS[model],
        )
        quality_checks[model] = (data_check, model_check)

    def champion_check(register) -> sdk.ConditionStep:
        """CheckPriceChampion: register only with no champion or a lower metric than the champion's.
        ``Or`` stops at the first true condition, so with no champion its (null) metric is not read."""
        got = {who: sdk.JsonGet(step_name=compare.name, property_file=champion_report, json_path=f"{who}.{CHAMPION_METRIC}.value")
               for who in ("challenger", "champion")}  # fmt: skip
        fail = sdk.FailStep(name=CHAMPION_FAIL_STEP, error_message=sdk.Join(on="", values=[
            f"{CHAMPION_MODEL} challenger did not beat the champion: {CHAMPION_METRIC}=", got["challenger"],
            " vs the champion's ", got["champion"], " on the same test split (champion ", champion_uri, ")"]))  # fmt: skip
        return sdk.ConditionStep(
            name=CHAMPION_CHECK_STEP,
            conditions=[sdk.ConditionOr(conditions=[sdk.ConditionEquals(left=champion_uri, right=""),
                                                    sdk.ConditionLessThan(left=got["challenger"], right=got["champion"])])],
            if_steps=[register],
            else_steps=[fail],
        )  # fmt: skip

    # ---- Check<Model>Gates -> Register<Model> | Fail<Model> -----------------------------------
    check_steps = []
    for model in MODELS:
        train, evaluate, report = train_steps[model], evaluate_steps[model], reports[model]
        data_check, model_check = quality_checks[model]

        def source(prop):
            return sdk.MetricsSource(s3_uri=prop, content_type="application/json")

        gates = gates_of(model)
        metric = {g.metric: sdk.JsonGet(step_name=evaluate.name, property_file=report, json_path=g.path) for g in gates}
        conditions = [
            CONDITIONS[g.op](left=metric[g.metric], right=thresholds[g.parameter])
            for g in gates
        ]
        message: list = [f"{model} gate failed:"]
        for i, g in enumerate(gates):
            bound = "max" if g.op.startswith("<") else "min"
            message += [f"{',' if i else ''} {g.metric}=", metric[g.metric], f" ({bound} ", thresholds[g.parameter], ")"]
        fail = sdk.FailStep(name=step_name("Fail", model), error_message=sdk.Join(on="", values=message))

        evaluation_json = sdk.Join(
            on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs[EVALUATION_OUTPUT].S3Output.S3Uri, EVALUATION_FILE]
        )
        builder = sdk.ModelBuilder(
            image_uri=serve_image,
            s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,  # model_path drops a PipelineVariable
            role_arn=role,
            sagemaker_session=session,
            dependencies={},  # the default makes register() call default_bucket(): network
        )
        register = sdk.ModelStep(
            name=step_name("Register", model),
            step_args=builder.register(
                model_package_group_name=MODEL_PACKAGE_GROUPS[model],
                # exactly what the serve container parses and answers (inference.content_types)
                content_types=list(served_types.CONTENT_TYPES),
                response_types=list(served_types.RESPONSE_TYPES),
                inference_instances=["ml.m5.large", "ml.c5.large"],
                transform_instances=["ml.m5.large"],
                model_metrics=sdk.ModelMetrics(
                    model_statistics=sdk.MetricsSource(s3_uri=evaluation_json, content_type="application/json"),
                    model_constraints=source(model_check.properties.CalculatedBaselineConstraints),
                    model_data_statistics=source(data_check.properties.CalculatedBaselineStatistics),
                    model_data_constraints=source(data_check.properties.CalculatedBaselineConstraints),
                ),
                drift_check_baselines=sdk.DriftCheckBaselines(
                    model_statistics=source(model_check.properties.BaselineUsedForDriftCheckStatistics),
                    model_constraints=source(model_check.properties.BaselineUsedForDriftCheckConstraints),
                    model_data_statistics=source(data_check.properties.BaselineUsedForDriftCheckStatistics),
                    model_data_constraints=source(data_check.properties.BaselineUsedForDriftCheckConstraints),
                ),
                approval_status=approval_status,
                description=f"airfare {model} model",
            ),
        )
        if model == CHAMPION_MODEL:
            register = champion_check(register)
        check = sdk.ConditionStep(
            name=gates_step_name(model),
            conditions=conditions,
            if_steps=[register],
            else_steps=[fail],
        )
        check_steps.append(check)

    return sdk.Pipeline(
        name=pipeline_name,
        parameters=parameters,
        steps=[preprocess, merge, data_quality, check_data_quality, *evaluate_steps.values(), compare,
               *(step for pair in quality_checks.values() for step in pair), *check_steps],
        sagemaker_session=session,
        pipeline_experiment_config=None,  # no Experiments trial per execution: lineage is in the registry
    )


def _region() -> str:
    from core import aws

    return aws.region()


def definition_dict(**kwargs) -> dict:
    """The pipeline definition as a fresh dict (the JSON that is upserted and run locally).

    Takes :func:`get_pipeline`'s arguments. The JSON is cached per set of arguments, since the
    SDK needs seconds to build it and it depends on nothing else.
    """
    if "sagemaker_client" in kwargs:
        with sdk.quiet():
            return json.loads(get_pipeline(**kwargs).definition())
    return json.loads(_definition_json(json.dumps(kwargs, sort_keys=True)))


@functools.lru_cache(maxsize=8)
def _definition_json(kwargs_json: str) -> str:
    with sdk.quiet():
        return get_pipeline(**json.loads(kwargs_json)).definition()


def upsert(role_arn: str, description: str | None = None, **kwargs) -> dict:
    """Create or update the pipeline in SageMaker with the jobs' role set to ``role_arn``.

    The definition is statically checked first; the SageMaker client comes from
    ``core.aws`` (so ``AWS_ENDPOINT_URL`` points it at moto in tests).
    """
    from core import aws
    from pipelines.validate import validate_definition

    with sdk.quiet():
        pipeline = get_pipeline(role=role_arn, sagemaker_client=aws.client("sagemaker"), **kwargs)
        definition = json.loads(pipeline.definition())
    problems = validate_definition(definition)
    if problems:
        raise ValueError("the pipeline definition does not validate:\n" + "\n".join(f"  {p}" for p in problems))
    with sdk.quiet():
        return pipeline.upsert(role_arn=role_arn, description=description or "airfare: price, demand and anomaly models")


def start(pipeline_name: str = DEFAULT_PIPELINE_NAME, parameters: dict | None = None, display_name: str | None = None) -> str:
    """Start an execution of an upserted pipeline; return its execution ARN.

    Parameter names are checked against the deployed definition so that a typo fails here
    rather than in SageMaker's execution.
    """
    from core import aws

    sm = aws.client("sagemaker")
    deployed = json.loads(sm.describe_pipeline(PipelineName=pipeline_name)["PipelineDefinition"])
    declared = {p["Name"] for p in deployed.get("Parameters") or []}
    unknown = sorted(set(parameters or {}) - declared)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; {pipeline_name} declares: {', '.join(sorted(declared))}")
    kwargs: dict = {
        "PipelineName": pipeline_name,
        "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in (parameters or {}).items()],
    }
    if display_name:
        kwargs["PipelineExecutionDisplayName"] = display_name
    return sm.start_pipeline_execution(**kwargs)["PipelineExecutionArn"]
