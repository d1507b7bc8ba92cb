"""Production, replayed day by day: served quotes with capture, late ground truth, Model Monitor on
schedule, an alarm, retraining through the AWS event shape, and a champion/challenger promotion.

Everything runs the project's own code; only time is simulated:

1. **World.** ``generate_world`` (with the ``--drift`` regime changes) for a training window of
   ``train_days`` before ``start_date`` and the ``days`` replayed, plus its ground-truth feeds
   (``seed_infra.world.ground_truth``: booked prices arrive 1-48 h after the quote); the Glue ETL
   (local Spark) curates it once, up front. Curated partitions are per search day and every pipeline
   run reads a window that ends on the replayed day, so no run sees a later day.
2. **Initial model.** The SageMaker pipeline (``local_run.run_locally``, as ``airfare pipeline
   run-local``) on the training window; the registered price package is approved and served.
3. **Each day.** The day's offers are quoted by the served model through the serve app, called in
   process over ASGI (``inference.app``: the same request validation, prediction and capture code as
   ``airfare serve --capture``; the capture writer's clock is the simulated time), one request per
   offer with ``InferenceId`` = offer id, as the frontend does. At the end of the day the data-quality
   monitor (the day's captured inputs against the serving package's baseline) and the model-quality
   monitor (predictions of the last two days joined with the ground truth delivered so far) run
   (``monitoring.monitor``, what ``airfare monitor`` runs).
4. **Alarm.** One alarm per metric, as ``airfare monitor schedule`` creates them, on 2 of 2 datapoints
   (``Replay.alarm_rule``): the same ``feature_baseline_drift_<f>`` over its threshold two days running,
   or MAE over its bound on two consecutive daily windows. A change to ALARM is a "CloudWatch Alarm
   State Change" event of the alarm ``<endpoint>-drift-<feature>`` or ``<endpoint>-mae-degraded``.
   The stack's own rule (``seed_infra/mlops_stack.yaml``: ``RetrainRule``'s event pattern, and its
   target ``RetrainTriggerFunction``'s configuration, loaded by ``load_retraining``) routes it:
   the replay matches the pattern and runs the trigger's code (``pipelines.retrain_trigger.handle``)
   against ``LocalSageMaker``, the local registry and executor behind the SageMaker calls it makes
   (ListPipelineExecutions for the cooldown, ListModelPackages/DescribeModelPackage for the
   champion, StartPipelineExecution). After a run, the alarm is set back to OK (``SetAlarmState``)
   so that a problem that persists raises it again.
5. **Promotion.** The pipeline decides: its ComparePrice step scores the challenger and the champion
   (``ChampionModelUri``: the approved package's model) on the same test split, the retraining
   window's last labelled day, and CheckPriceChampion registers the challenger only if it is
   better, after the seed's absolute gates. A registered challenger is approved and served (the
   replay plays the reviewer); else the champion stays.
6. **Output.** ``timeline.json`` (one record a day) and ``timeline.png``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.catalog import DEFAULT_BUCKET, Catalog

MODEL = "price"
RETRAIN_METRIC = "mae"  # the model-quality metric whose alarm starts retraining (see Replay.alarm_rule)
REGION = "us-east-1"
ACCOUNT = "000000000000"
PROJECT, ENVIRONMENT = "airfare", "dev"
ENDPOINT = f"{PROJECT}-{ENVIRONMENT}-price"  # the stack's price endpoint (DeployProject: <prefix>-<model>)
STACK = Path(__file__).resolve().parents[1] / "seed_infra" / "mlops_stack.yaml"
RULE_RESOURCE = "RetrainRule"


# ---------------------------------------------------------------------------------------------
# The stack's retraining rule: alarm -> EventBridge -> trigger Lambda -> StartPipelineExecution
# ---------------------------------------------------------------------------------------------
def load_retraining(path: Path = STACK, **parameters: Any) -> dict:
    """The stack's ``RetrainRule`` as deployed with ``parameters`` (else the template's defaults):
    ``{"Name", "EventPattern", "Target": the target's logical id, "config": the trigger Lambda's
    configuration}`` with ``Ref``/``Fn::Sub`` resolved for this account and region."""
    import re

    import yaml

    from pipelines.retrain_trigger import config_from

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", tag)
    doc = yaml.load(path.read_text(), Loader=Loader)
    values = {k: v.get("Default") for k, v in (doc.get("Parameters") or {}).items()}
    values.update({k: v for k, v in parameters.items() if v is not None})
    values.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})

    def resolve(x: Any) -> Any:
        if isinstance(x, dict) and len(x) == 1:
            (k, v), = x.items()
            if k == "Ref":
                if values.get(v) is None:
                    raise ValueError(f"{path.name}: parameter {v} has no value")
                return str(values[v])
            if k == "Fn::Sub" and isinstance(v, str):
                return re.sub(r"\$\{([^}]+)\}", lambda m: resolve({"Ref": m.group(1)}), v)
        if isinstance(x, dict):
            return {k: resolve(v) for k, v in x.items()}
        if isinstance(x, list):
            return [resolve(v) for v in x]
        return x

    resources = doc["Resources"]
    rule = resources[RULE_RESOURCE]["Properties"]
    (target,) = rule["Targets"]
    att = target["Arn"]["Fn::GetAtt"]  # !GetAtt X.Arn or [X, Arn]
    function = att.split(".")[0] if isinstance(att, str) else att[0]
    env = resolve(resources[function]["Properties"]["Environment"]["Variables"])
    return {"Name": resolve(rule["Name"]), "EventPattern": resolve(rule["EventPattern"]), "Target": function,
            "config": config_from({k: str(v) for k, v in env.items()})}  # fmt: skip


def alarm_arn(name: str) -> str:
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def alarm_event(when: dt.datetime, reason: str, alarm_name: str, previous: str = "OK") -> dict:
    """A "CloudWatch Alarm State Change" event as EventBridge delivers it (ALARM state)."""
    stamp = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = alarm_arn(alarm_name)
    return {
        "version": "0", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}/{stamp}")),
        "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "account": ACCOUNT,
        "time": stamp, "region": REGION, "resources": [arn],
        "detail": {"alarmName": alarm_name, "state": {"value": "ALARM", "reason": reason, "timestamp": stamp},
                   "previousState": {"value": previous}},
    }  # fmt: skip


class LocalSageMaker:
    """The SageMaker calls the retrain trigger makes, answered by the local registry and executor
    (as moto answers them in the trigger's own tests). ``now`` is the simulated clock of the call."""

    def __init__(self, catalog: Catalog, runs: list) -> None:
        from pipelines.registry import LocalRegistry

        self.catalog, self.runs = catalog, runs
        self.registry = LocalRegistry(catalog.registry_root)
        self.started: list[tuple[dt.datetime, str]] = []  # (simulated start, execution id)
        self.now = dt.datetime.now(dt.timezone.utc)

    def list_pipeline_executions(self, PipelineName: str, CreatedAfter: dt.datetime, MaxResults: int = 10) -> dict:
        found = [{"PipelineExecutionArn": e, "StartTime": t} for t, e in reversed(self.started) if t > CreatedAfter]
        return {"PipelineExecutionSummaries": found[:MaxResults]}

    def list_model_packages(self, ModelPackageGroupName: str, ModelApprovalStatus: str, SortBy: str = "CreationTime",
                            SortOrder: str = "Descending", MaxResults: int = 10) -> dict:  # fmt: skip
        packages = [p for p in self.registry.list(ModelPackageGroupName) if p["ModelApprovalStatus"] == ModelApprovalStatus]
        packages.sort(key=lambda p: int(p["ModelPackageVersion"]), reverse=SortOrder == "Descending")
        return {"ModelPackageSummaryList": [{"ModelPackageArn": p["ModelPackageArn"]} for p in packages[:MaxResults]]}

    def describe_model_package(self, ModelPackageName: str) -> dict:
        p = self.registry.get(ModelPackageName)
        url = Path(p["ModelDataUrl"]).resolve().relative_to(self.catalog.lake_root.resolve()).as_posix()
        return {**p, "InferenceSpecification": {"Containers": [{"Image": p["ImageUri"], "ModelDataUrl": f"s3://{url}"}]}}

    def start_pipeline_execution(self, **request: Any) -> dict:
        result = start_pipeline_execution(request, self.catalog, self.runs)
        self.started.append((self.now, result.execution_id))
        return {"PipelineExecutionArn": f"local:pipeline-execution/{request['PipelineName']}/{result.execution_id}"}


def start_pipeline_execution(request: dict, catalog: Catalog, runs: list) -> Any:
    """Run a ``StartPipelineExecution`` request with the local executor (as ``airfare pipeline run-local``)."""
    from pipelines.local_run import run_locally

    params = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    execution_id = f"{request.get('PipelineExecutionDisplayName', 'run')}-{len(runs) + 1}"
    result = run_locally(parameters=params, catalog=catalog, execution_id=execution_id, progress=False, max_workers=2)
    runs.append(result)
    return result


# ---------------------------------------------------------------------------------------------
# Serving in process: the serve app, its capture writer on the simulated clock
# ---------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """The serve app (``inference.app``) for a package's model, capturing to ``capture_dir``."""

    def __init__(self, capture_dir: Path, clock: Clock) -> None:
        from inference.capture import CaptureWriter

        self.capture = CaptureWriter(capture_dir, ENDPOINT, percent=100.0, clock=clock)
        self.clock = clock
        self.app = None
        self.package: dict | None = None

    def deploy(self, package: dict) -> None:
        from inference.app import create_app

        app = create_app(_model_path(package), endpoint_name=ENDPOINT, capture=self.capture)
        app.load()
        if app.predictor is None:
            raise RuntimeError(f"the serve app could not load {package['ModelPackageArn']}: {app.error}")
        self.app, self.package = app, package

    def quote(self, bodies: list[bytes], ids: list[str], times: list[float]) -> dict:
        """POST each body to /invocations (one request per offer, ``InferenceId`` = offer id)."""
        import logging

        import httpx

        logging.getLogger("httpx").setLevel(logging.WARNING)  # not one log line per quote

        async def go() -> dict:
            counts = {"requests": 0, "errors": 0}
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://endpoint") as client:
                for body, rid, t in zip(bodies, ids, times):
                    self.clock.now = t
                    r = await client.post("/invocations", content=body, headers={
                        "content-type": "application/json", "x-amzn-sagemaker-inference-id": rid})  # fmt: skip
                    counts["requests"] += 1
                    counts["errors"] += r.status_code != 200
            return counts

        counts = asyncio.run(go())
        self.capture.flush()
        return counts

    def close(self) -> None:
        self.capture.close()


def _model_path(package: dict) -> str:
    return str(package["ModelDataUrl"])


def _version(package: dict | None) -> int | None:
    return int(package["ModelPackageVersion"]) if package else None


# ---------------------------------------------------------------------------------------------
# The replay
# ---------------------------------------------------------------------------------------------
@dataclass
class ReplayOptions:
    seed: int
    start_date: dt.date
    days: int
    out: Path
    drifts: tuple[str, ...] = ()
    searches_per_day: int = 250
    train_days: int = 21  # the initial model's window (validation and test days: 3 each)
    validation_days: int = 3
    test_days: int = 3
    # a retraining window: recent days only, so a new regime soon dominates it; the pipeline's minimum
    # of MIN_TRAIN_DAYS training days (core.pipeline_contract) plus 1 validation and 1 test day. With
    # cooldown_days, the stack's parameters RetrainWindowDays / RetrainCooldownDays (None: the stack's default)
    retrain_days: int | None = None
    gates: dict = field(default_factory=dict)  # pipeline gate parameters (default: the seed's)
    # model-quality alarm: MAE above the initial model's baseline MAE x (1 + this). Production's daily MAE
    # runs at 2-3x the offline test MAE (a day's ~100 booked quotes include the odd booked glitch fare):
    # x5 gave no false alarm on a quiet month (seed 7), with the 2-of-2 rule below
    degradation: float = 4.0
    cooldown_days: int | None = None
    min_labels: int = 50  # a daily window with fewer labels is reported, not judged


@dataclass
class Day:
    date: str
    serving_version: int | None
    traffic: dict
    data_quality: dict
    model_quality: dict
    alarm: dict
    pipeline: dict | None = None
    promotion: dict | None = None
    seconds: float = 0.0


class Replay:
    def __init__(self, opts: ReplayOptions, log: Callable[[str], None] = lambda m: None) -> None:
        from seed_infra.world.drift import parse_drifts

        self.o = opts
        self.drifts = parse_drifts(opts.drifts)
        self.log = log
        self.work = opts.out / "work"
        self.lake = self.work / "lake"
        self.root = self.lake / DEFAULT_BUCKET
        # the registry inside the lake's bucket, as SageMaker keeps packages' artifacts in S3: a package's
        # ModelDataUrl is then also s3://<bucket>/registry/..., what the pipeline's ChampionModelUri takes
        self.catalog = Catalog(lake_root=self.lake, registry_root=self.root / "registry", runs_root=self.work / "runs")
        self.capture_dir = self.work / "capture"
        self.truth_dir = self.root / "ground_truth" / MODEL
        self.runs: list = []
        self.days: list[Day] = []
        self.alarm_state = "OK"
        self.serving_since: dt.date | None = None
        self.bad_windows: dict[str, bool] = {}  # model-quality window (date) -> violated, latest judgement
        self.bad_dq: dict[str, set[str]] = {}  # day -> features in violation
        # the stack's rule and trigger configuration, with the replay's window and cooldown as stack parameters
        self.rule = load_retraining(RetrainWindowDays=opts.retrain_days, RetrainCooldownDays=opts.cooldown_days)
        self.sm = LocalSageMaker(self.catalog, self.runs)

    # -- set-up -----------------------------------------------------------------------------------
    def prepare(self) -> None:
        from seed_infra.etl.job import run_etl, spark_session
        from seed_infra.world import generate_world
        from seed_infra.world.ground_truth import write_ground_truth

        o = self.o
        if self.work.exists():
            shutil.rmtree(self.work)
        first = o.start_date - dt.timedelta(days=o.train_days)
        t = time.perf_counter()
        generate_world(self.root, seed=o.seed, start_date=first, days=o.train_days + o.days,
                       searches_per_day=o.searches_per_day, drifts=self.drifts, progress=False)  # fmt: skip
        write_ground_truth(self.root, seed=o.seed)
        self.log(f"world: {o.train_days + o.days} days from {first} ({time.perf_counter() - t:.0f} s)")
        t = time.perf_counter()
        spark = spark_session()
        try:
            run_etl(spark, str(self.root / "raw"), str(self.root / "curated"))
        finally:
            spark.stop()
        self.log(f"ETL ({time.perf_counter() - t:.0f} s)")

    def registry(self):
        from pipelines.registry import LocalRegistry

        return LocalRegistry(self.catalog.registry_root)

    def _price_packages(self) -> dict[int, dict]:
        from core.pipeline_contract import MODEL_PACKAGE_GROUPS

        return {int(p["ModelPackageVersion"]): p for p in self.registry().list(MODEL_PACKAGE_GROUPS[MODEL])}

    def run_pipeline(self, start: Callable[[], Any]) -> tuple[dict, dict | None]:
        """Start the pipeline (``start`` returns the execution request it ran, or None when it started
        nothing); return its record and the price package it registered (or None)."""
        before = set(self._price_packages())
        t = time.perf_counter()
        request = start()
        if request is None:
            return None, None
        result = self.runs[-1]
        new = sorted(set(self._price_packages()) - before)
        pkg = self._price_packages()[new[-1]] if new else None
        params = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
        record = {"execution_id": result.execution_id, "status": result.status,
                  "window": [params.get("StartDate"), params.get("EndDate")], "champion": params.get("ChampionModelUri") or None,
                  "seconds": round(time.perf_counter() - t, 1), "registered_version": _version(pkg),
                  "failed_step": result.failed_step, "failure": result.fail_message or result.failure_reason}  # fmt: skip
        self.log(f"pipeline {result.execution_id}: {result.status} ({record['seconds']} s)"
                 + (f", registered airfare-price/{_version(pkg)}" if pkg else f" {record['failure'] or ''}"))
        return record, pkg

    def initial_model(self) -> dict:
        from pipelines.retrain_trigger import window_parameters

        o = self.o
        end = o.start_date - dt.timedelta(days=1)
        params = {**{k: str(v) for k, v in o.gates.items()}, **window_parameters(end, o.train_days, o.validation_days, o.test_days)}
        request = {"PipelineName": self.rule["config"]["pipeline"], "PipelineExecutionDisplayName": "initial",
                   "PipelineParameters": [{"Name": k, "Value": v} for k, v in params.items()]}  # fmt: skip
        record, pkg = self.run_pipeline(lambda: (start_pipeline_execution(request, self.catalog, self.runs), request)[1])
        if pkg is None:
            raise RuntimeError(f"the initial pipeline run registered no price model: {record['failure']} "
                               "(pass --gate NAME=VALUE for a world this small, or more --searches-per-day)")  # fmt: skip
        self.registry().approve(pkg["ModelPackageArn"], "initial model of the replay")
        return self.registry().get(pkg["ModelPackageArn"])

    def retrain(self, event: dict, now: dt.datetime) -> tuple[dict | None, dict | None, str | None]:
        """The stack's rule on ``event``: (pipeline record, registered package, why nothing started)."""
        from pipelines.retrain_trigger import handle, matches

        if not matches(self.rule["EventPattern"], event):
            return None, None, f"the rule {self.rule['Name']} does not match {event['detail']['alarmName']}"
        self.sm.now = now
        cfg = {**self.rule["config"], "parameters": {**self.rule["config"]["parameters"], **{k: str(v) for k, v in self.o.gates.items()}}}
        answer: dict = {}

        def start():
            answer.update(handle(event, cfg, self.sm))
            return answer.get("request")

        record, pkg = self.run_pipeline(start)
        return record, pkg, answer.get("reason")

    def decision(self, record: dict, champion: dict, challenger: dict | None) -> dict | None:
        """The pipeline's champion/challenger decision (ComparePrice's report; None when the run
        stopped before it): promoted = the pipeline registered the challenger."""
        from core.pipeline_contract import CHAMPION_FILE, CHAMPION_METRIC, CHAMPION_OUTPUT, CHAMPION_STEP

        result = next(r for r in self.runs if r.execution_id == record["execution_id"])
        try:
            step = result.step(CHAMPION_STEP)
        except KeyError:
            return None
        if step.status != "Succeeded":
            return None
        outputs = step.properties["ProcessingOutputConfig"]["Outputs"]  # DescribeProcessingJob's list
        uri = next(o for o in outputs if o["OutputName"] == CHAMPION_OUTPUT)["S3Output"]["S3Uri"]
        report = json.loads((self.lake / uri.removeprefix("s3://").rstrip("/") / CHAMPION_FILE).read_text())
        out = {"metric": CHAMPION_METRIC, "n_compared": report["n_compared"], "champion_version": _version(champion),
               "challenger_version": _version(challenger), "promoted": challenger is not None,
               "pipeline_step": record["failed_step"] or "RegisterPrice"}  # fmt: skip
        for who in ("champion", "challenger"):
            for m in ("rmse", "mae"):
                out[f"{who}_{m}"] = _num(report[who][m])
        return out

    # -- monitoring ---------------------------------------------------------------------------------
    def baseline(self, package: dict):
        from monitoring import monitor

        base = monitor.baseline_from_package_dir(Path(package["ModelDataUrl"]).parent / "baselines", package["ModelPackageArn"])
        base.meta = monitor.model_meta_from_package(package)
        return base

    def mq_constraints(self, base) -> dict:
        """Model-quality constraints: the gates (the seed's, or those passed) plus an MAE bound at the
        initial model's baseline MAE x (1 + degradation), the service's accuracy-degradation alarm. MAE,
        not RMSE: a day's ~100 labels include the odd booked glitch fare, which swings RMSE tenfold."""
        from monitoring import model_quality

        constraints = model_quality.constraints_from_gates(MODEL, {k: float(v) for k, v in self.o.gates.items()})
        stats = base.model_statistics or {}
        mae = ((stats.get("regression_metrics") or {}).get("mae") or {}).get("value")
        if isinstance(mae, (int, float)):
            constraints["regression_constraints"]["mae"] = {"threshold": float(mae) * (1 + self.o.degradation),
                                                            "comparison_operator": "GreaterThanThreshold"}
            # the robust companion (monitoring.model_quality.trimmed_mae), outside Model Monitor's
            # constraints file: the glitch fares it trims are what forced MAE's loose bound
            self.robust_bound = {"trimmed_mae": float(mae) * (1 + model_quality.TRIMMED_MAE_DEGRADATION),
                                 "min_labels": model_quality.TRIMMED_MAE_MIN_LABELS}
        return constraints

    def monitor(self, day: dt.date, base, constraints: dict) -> tuple[dict, dict]:
        from monitoring import monitor

        start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
        end = start + dt.timedelta(days=1)
        out = self.work / "monitoring" / day.isoformat()
        dq = monitor.run_data_quality(MODEL, self.capture_dir, out / "data-quality", baseline=base, since=start, until=end,
                                      endpoint=ENDPOINT)  # fmt: skip
        dq_rec = {"records": dq.records, "violations": len(dq.violations["violations"]),
                  "features": sorted({v["feature_name"] for v in dq.violations["violations"]})}  # fmt: skip
        since = max(start - dt.timedelta(days=1), dt.datetime.combine(self.serving_since, dt.time(), dt.timezone.utc))
        mq = monitor.run_model_quality(MODEL, self.capture_dir, self.truth_dir, out / "model-quality", constraints=constraints,
                                       since=since, until=end, now=end, endpoint=ENDPOINT, min_labels=self.o.min_labels)  # fmt: skip
        windows = []
        for w in mq.windows:
            m = (w.statistics or {}).get("regression_metrics", {})
            robust = getattr(self, "robust_bound", None)
            tmae = w.robust.get("trimmed_mae")
            judged = robust is not None and tmae is not None and w.labelled >= robust["min_labels"]
            windows.append({"start": w.start[:10], "labelled": w.labelled, "mae": _num(m.get("mae")),
                            "rmse": _num(m.get("rmse")), "r2": _num(m.get("r2")),
                            "trimmed_mae": round(tmae, 4) if tmae is not None else None,
                            "robust_judged": judged, "robust_violation": bool(judged and tmae > robust["trimmed_mae"]),
                            "violations": [v["metric_name"] for v in w.violations["violations"]]})  # fmt: skip
        mq_rec = {"windows": windows, "mae_threshold": constraints["regression_constraints"].get("mae", {}).get("threshold"),
                  "trimmed_mae_threshold": (getattr(self, "robust_bound", None) or {}).get("trimmed_mae"),
                  "violations": sum(len(w["violations"]) for w in windows)}  # fmt: skip
        dq_rec["feed"] = self._feed_checks(day, base)
        return dq_rec, mq_rec

    def _feed_checks(self, day: dt.date, base) -> dict:
        """Search volume and price-feed levels of the day against the previous days of the stream
        (``monitoring.traffic``; read from its curated partitions): the CloudWatch anomaly-detection
        alarms a team adds beside Model Monitor for what a model's inputs do not show (a region's
        searches gone, a feed in cents)."""
        import pyarrow.dataset as ds

        from monitoring import traffic

        if getattr(self, "_feed_base", None) is not base:  # a new model is served: its alarms start afresh
            self._feed_base, self.stream_alarm = base, traffic.StreamAlarm()
        stream = self.__dict__.setdefault("_stream", traffic.StreamMonitor())
        for k in range(stream.history_days, -1, -1):
            d = day - dt.timedelta(days=k)
            folder = self.root / "curated" / "offers" / f"dt={d.isoformat()}"
            if d not in stream.days and folder.is_dir():
                df = ds.dataset(folder, format="parquet").to_table(columns=["event_id", "currency", "price_usd"]).to_pandas()
                stream.add(d, df["event_id"].nunique(), traffic.price_levels(df))
        checks = stream.check(day)
        return {"checks": [c.as_dict() for c in checks],
                "violations": [f"{c.metric}:{c.violation}" for c in checks if c.violation]}  # fmt: skip

    def alarm_rule(self, day: dt.date, dq: dict, mq: dict) -> tuple[bool, list[str]]:
        """The CloudWatch alarms, each on 2 out of 2 datapoints: in ALARM when the data-quality monitor
        flagged the same feature on this day and the day before, or the model-quality monitor a metric
        on two consecutive daily windows (one outlier day, e.g. a booked glitch fare, is no alarm). Of
        the model-quality metrics only MAE's alarm, and its robust companion's (trimmed MAE, judged
        from 20 labels, so on the day itself), retrain: RMSE and R² (the gates, still reported in
        each window's violations) swing with a single booked glitch fare among a day's ~100 labels.
        Beside them, the search-stream alarms (``monitoring.traffic.StreamAlarm``): a currency's price
        level out of its band on its last two datapoints, or the 2-day search volume out of its band."""
        today, yesterday = day.isoformat(), (day - dt.timedelta(days=1)).isoformat()
        self.bad_dq[today] = set(dq["features"])
        for w in mq["windows"]:
            if w["rmse"] is not None or w.get("robust_judged"):  # judged (enough labels for either metric)
                self.bad_windows[w["start"]] = RETRAIN_METRIC in w["violations"] or bool(w.get("robust_violation"))
        reasons = []
        both = sorted(self.bad_dq.get(today, set()) & self.bad_dq.get(yesterday, set()))
        if both:  # one alarm per feature_baseline_drift_<feature> metric, as `airfare monitor schedule` creates them
            reasons.append(f"data quality on {yesterday} and {today}: {', '.join(both)}")
        # one anomaly-detection alarm per stream metric (monitoring.traffic.StreamAlarm)
        if not hasattr(self, "stream_alarm"):
            from monitoring.traffic import StreamAlarm

            self.stream_alarm = StreamAlarm()
        feed = self.stream_alarm.update((dq.get("feed") or {}).get("checks") or [])
        if feed:
            reasons.append(f"search stream on {today}: {', '.join(feed)}")
        bad = sorted(d for d, v in self.bad_windows.items() if v)
        pairs = [d for d in bad if (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat() in bad and d >= yesterday]
        if pairs:
            w = next(x for x in mq["windows"] if x["start"] == pairs[-1]) if any(x["start"] == pairs[-1] for x in mq["windows"]) else None
            names = (w["violations"] + (["trimmed_mae"] if w.get("robust_violation") else [])) if w else []
            reasons.append(f"model quality ({RETRAIN_METRIC} or trimmed_mae) on the windows of {pairs[-1]} and the day before"
                           + (f": {', '.join(names)}" if names else ""))
        return bool(reasons), reasons

    # -- the days ----------------------------------------------------------------------------------------
    def traffic(self, day: dt.date):
        """The day's quotes, in time order: request bodies (the model's request fields of each
        curated offer), inference ids (offer ids) and times (epoch seconds)."""
        import pandas as pd
        import pyarrow.dataset as ds

        folder = self.root / "curated" / "offers" / f"dt={day.isoformat()}"
        fields = [s.name for s in self.endpoint.app.predictor.specs]
        table = ds.dataset(folder, format="parquet").to_table(columns=["offer_id", "event_time", *fields])
        df = table.to_pandas().sort_values(["event_time", "offer_id"], kind="stable")
        bodies = [line.encode() for line in df[fields].to_json(orient="records", lines=True).splitlines()]
        times = pd.to_datetime(df["event_time"], utc=True)
        seconds = ((times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).tolist()
        return bodies, df["offer_id"].astype(str).tolist(), seconds

    def run(self) -> list[Day]:
        o = self.o
        self.prepare()
        self.endpoint = Endpoint(self.capture_dir, Clock())
        champion = self.initial_model()
        self.endpoint.deploy(champion)
        self.serving_since = o.start_date
        base = self.baseline(champion)
        constraints = self.mq_constraints(base)  # the initial model's quality is the service's bar
        try:
            for k in range(o.days):
                t0 = time.perf_counter()
                day = o.start_date + dt.timedelta(days=k)
                bodies, ids, times = self.traffic(day)
                traffic = self.endpoint.quote(bodies, ids, times)
                dq, mq = self.monitor(day, base, constraints)
                violated, reasons = self.alarm_rule(day, dq, mq)
                now = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 5), dt.timezone.utc)
                alarm = {"state": "ALARM" if violated else "OK", "reasons": reasons, "event": None, "started": False}
                record = Day(day.isoformat(), _version(self.endpoint.package), traffic, dq, mq, alarm)
                if violated and self.alarm_state == "OK":
                    event = alarm_event(now, "; ".join(reasons), self.alarm_name(day))
                    alarm["event"], alarm["name"] = event["id"], event["detail"]["alarmName"]
                    record.pipeline, challenger, why_not = self.retrain(event, now)
                    if record.pipeline is None:
                        alarm["note"] = f"no run: {why_not}"
                    else:
                        alarm["started"] = True
                        record.promotion = self.decision(record.pipeline, self.endpoint.package, challenger)
                        if challenger is not None:  # the pipeline registered it: it passed the gates and beat the champion
                            reg = self.registry()
                            reg.approve(challenger["ModelPackageArn"], "registered by the pipeline: within the gates, beat the champion")
                            self.endpoint.deploy(reg.get(challenger["ModelPackageArn"]))
                            self.serving_since = day + dt.timedelta(days=1)
                            base = self.baseline(self.endpoint.package)
                            self.bad_windows.clear()
                            self.bad_dq.clear()
                    # SetAlarmState OK once the event is handled: a problem that persists raises it again
                    # the next day (and the rule's cooldown decides whether that starts another run)
                    self.alarm_state = "OK"
                else:
                    self.alarm_state = "ALARM" if violated else "OK"
                record.seconds = round(time.perf_counter() - t0, 1)
                self.days.append(record)
                self.log(f"{day}: v{record.serving_version} {traffic['requests']} quotes, DQ {dq['violations']} violation(s),"
                         f" MQ {[(w['start'][5:], w['rmse'], w['labelled']) for w in mq['windows']]}, {alarm['state']}"
                         + (f", pipeline {record.pipeline['status']}" if record.pipeline else "")
                         + (f", promoted={record.promotion['promoted']}" if record.promotion else ""))
        finally:
            self.endpoint.close()
        self.hindsight()
        return self.days

    def alarm_name(self, day: dt.date) -> str:
        """The alarm in ALARM, named as ``airfare monitor schedule`` names them: a feature's drift alarm
        when the same feature was flagged today and yesterday, else the model-quality one."""
        both = sorted(self.bad_dq.get(day.isoformat(), set()) & self.bad_dq.get((day - dt.timedelta(days=1)).isoformat(), set()))
        return f"{ENDPOINT}-drift-{both[0]}" if both else f"{ENDPOINT}-{RETRAIN_METRIC}-degraded"

    def hindsight(self) -> None:
        """Each day's final model quality (all labels in), for the plot and the benchmark."""
        from monitoring import monitor

        if not self.days:
            return
        first = dt.datetime.combine(self.o.start_date, dt.time(), dt.timezone.utc)
        end = first + dt.timedelta(days=self.o.days)
        mq = monitor.run_model_quality(MODEL, self.capture_dir, self.truth_dir, self.work / "monitoring" / "hindsight",
                                       since=first, until=end, now=end + dt.timedelta(days=3), endpoint=ENDPOINT,
                                       min_labels=1)  # fmt: skip
        final = {w.start[:10]: ((w.statistics or {}).get("regression_metrics") or {}) for w in mq.windows}
        for d in self.days:
            d.model_quality["final_rmse"] = _num(final.get(d.date, {}).get("rmse"))
            d.model_quality["final_mae"] = _num(final.get(d.date, {}).get("mae"))


def _num(metric) -> float | None:
    value = (metric or {}).get("value") if isinstance(metric, dict) else None
    return round(float(value), 4) if isinstance(value, (int, float)) else None


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def write_timeline(replay: Replay) -> dict:
    o = replay.o
    o.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "seed": o.seed, "start_date": o.start_date.isoformat(), "days": o.days,
        "drifts": [{"kind": d.kind, "date": d.date.isoformat(), "magnitude": d.magnitude} for d in replay.drifts],
        "options": {k: (str(v) if isinstance(v, (Path, dt.date)) else v) for k, v in asdict(o).items() if k not in ("drifts",)},
        "rule": {k: v for k, v in replay.rule.items()},
        "summary": summarize(replay.days, replay.drifts),
        "timeline": [asdict(d) for d in replay.days],
    }  # fmt: skip
    (o.out / "timeline.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    plot_timeline(doc, o.out / "timeline.png")
    return doc


def summarize(days: list[Day], drifts) -> dict:
    """Alarms, runs, promotions, and per drift: days from onset to the first alarm, RMSE meanwhile and after."""
    alarms = [d.date for d in days if d.alarm["state"] == "ALARM"]
    runs = [d.date for d in days if d.pipeline]
    promotions = [d.date for d in days if d.promotion and d.promotion["promoted"]]
    out: dict[str, Any] = {"alarm_days": alarms, "pipeline_runs": runs, "promotions": promotions, "drifts": []}
    for drift in drifts:
        onset = drift.date.isoformat()
        first = next((a for a in alarms if a >= onset), None)
        before = [d.model_quality.get("final_rmse") for d in days if d.date < onset and d.model_quality.get("final_rmse")]
        promo = next((p for p in promotions if p >= onset), None)
        lost = [d.model_quality.get("final_rmse") for d in days if onset <= d.date <= (promo or days[-1].date)
                and d.model_quality.get("final_rmse")]  # fmt: skip
        after = [d.model_quality.get("final_rmse") for d in days if promo and d.date > promo and d.model_quality.get("final_rmse")]
        # a first retraining soon after the onset may hold no training day of the new market; the
        # last promotion's own test-day RMSE (the pipeline's ComparePrice) shows where it ended
        last = next((d for d in reversed(days) if d.date >= onset and d.promotion and d.promotion["promoted"]), None)
        out["drifts"].append({
            "drift": str(drift), "days_to_alarm": (dt.date.fromisoformat(first) - drift.date).days if first else None,
            "rmse_before": _mean(before), "rmse_until_promotion": _mean(lost), "promoted_on": promo, "rmse_after_promotion": _mean(after),
            "last_promoted_on": last.date if last else None,
            "last_promotion_test_rmse": last.promotion["challenger_rmse"] if last else None,
        })  # fmt: skip
    return out


def _mean(values) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def plot_timeline(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = doc["timeline"]
    x = [dt.datetime.fromisoformat(d["date"]) for d in days]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1]})
    def series(key):
        return [np.nan if d["model_quality"].get(key) is None else d["model_quality"][key] for d in days]

    ax1.plot(x, series("final_rmse"), "o-", color="tab:blue", label="price RMSE (every label in, hindsight)")
    ax1.plot(x, series("final_mae"), "s-", ms=4, color="tab:orange", label="price MAE (hindsight)")
    ax1.step(x, [d["model_quality"]["mae_threshold"] or np.nan for d in days], where="mid", color="tab:red", lw=1,
             label="MAE alarm threshold")
    for d, when in zip(days, x):
        if d["alarm"]["state"] == "ALARM":
            ax1.axvspan(when - dt.timedelta(hours=12), when + dt.timedelta(hours=12), color="tab:red", alpha=0.12, lw=0)
        if d.get("pipeline"):
            ax1.axvline(when, color="tab:purple", ls=":", lw=1.5)
            ax1.annotate(f"retrain: {d['pipeline']['status'].lower()}", (when, 0.55), xycoords=("data", "axes fraction"),
                         rotation=90, fontsize=7, color="tab:purple", xytext=(-9, 0), textcoords="offset points")
        if d.get("promotion"):
            p = d["promotion"]
            text = f"v{p['challenger_version']} promoted" if p["promoted"] else f"not registered: {p.get('pipeline_step')}"
            ax1.annotate(text, (when, 0.3), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                         color="tab:green" if p["promoted"] else "tab:gray", xytext=(3, 0), textcoords="offset points")
    ax1.set_ylabel("USD")
    ax1.legend(fontsize=7, loc="upper left", title="red: alarm days", title_fontsize=7)
    ax2.bar(x, [d["data_quality"]["violations"] for d in days], color="tab:orange")
    ax2.set_ylabel("DQ violations")
    ax3.bar(x, [d["traffic"]["requests"] for d in days], color="tab:gray")
    ax3.set_ylabel("quotes")
    for drift in doc["drifts"]:
        onset = dt.datetime.fromisoformat(drift["date"])
        for ax in (ax1, ax2, ax3):
            ax.axvline(onset, color="black", ls="--", lw=1)
        ax1.annotate(f"{drift['kind']} ({drift['magnitude']:g})", (onset, 1), xycoords=("data", "axes fraction"),
                     xytext=(3, -12), textcoords="offset points", fontsize=8)
    ax1.set_title(f"airfare replay: seed {doc['seed']}, {doc['days']} days from {doc['start_date']}")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replay(opts: ReplayOptions, log: Callable[[str], None] = lambda m: None) -> dict:
    """Run a replay and write ``timeline.json`` and ``timeline.png`` under ``opts.out``; return the timeline."""
    r = Replay(opts, log)
    r.run()
    return write_timeline(r)
