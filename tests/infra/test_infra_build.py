"""The image, the buildspec and the setup script: hadolint, CLI/Makefile agreement, bash syntax."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SETUP = ROOT / "seed_infra" / "setup_aws_resources.sh"


def test_dockerfile_passes_hadolint():
    proc = subprocess.run([str(BIN / "hadolint"), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_copies_every_installed_package():
    text = (ROOT / "Dockerfile").read_text()
    packages = re.search(r"PACKAGES = \[(.*?)\]", (ROOT / "setup.py").read_text()).group(1)
    for pkg in re.findall(r'"(\w+)"', packages):
        assert re.search(rf"^COPY {pkg}/ {pkg}/$", text, re.M), f"the image lacks the {pkg} package"
    assert "requirements.lock" in text
    # SageMaker starts the image as `IMAGE train` / `IMAGE serve`; the build checks both exist.
    assert "command -v train && command -v serve" in text
    assert "EXPOSE 8080" in text


# ---------------------------------------------------------------------------------------------
# buildspec.yml
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def buildspec() -> dict:
    return yaml.safe_load((ROOT / "buildspec.yml").read_text())


def buildspec_lines(spec: dict) -> list[str]:
    return [line.strip() for phase in spec["phases"].values() for cmd in phase.get("commands", []) for line in cmd.splitlines()]


def test_buildspec_has_the_phases(buildspec):
    assert buildspec["version"] == 0.2
    assert list(buildspec["phases"]) == ["install", "pre_build", "build", "post_build"]
    assert "pipeline-definition.json" in buildspec["artifacts"]["files"]
    lines = buildspec_lines(buildspec)
    order = [next(i for i, line in enumerate(lines) if needle in line) for needle in ("make test", "docker push", "pipeline upsert", "pipeline start")]
    assert order == sorted(order), "tests, then push, then upsert, then start"


def airfare_invocations(spec: dict) -> list[tuple[list[str], set[str]]]:
    """(subcommand path, --flags) of every `airfare ...` line; ${NET_ARGS[@]} expands to its flags."""
    lines = buildspec_lines(spec)
    array_flags: set[str] = set()
    for line in lines:
        if re.match(r"NET_ARGS\+?=\(", line) or line.startswith("for s in"):
            array_flags |= set(re.findall(r"(--[a-z][a-z-]*)", line))
    out = []
    for line in lines:
        if "bin/airfare " not in line:
            continue
        tokens = shlex.split(line.split("bin/airfare ", 1)[1])
        path = []
        for tok in tokens:
            if tok.startswith("-") or "$" in tok or "." in tok:
                break
            path.append(tok)
        flags = {t.split("=")[0] for t in tokens if t.startswith("--")}
        if "${NET_ARGS[@]}" in line:
            flags |= array_flags
        out.append((path, flags))
    return out


def test_buildspec_airfare_commands_and_flags_exist(buildspec):
    invocations = airfare_invocations(buildspec)
    assert {tuple(p) for p, _ in invocations} == {("pipeline", c) for c in ("definition", "validate", "upsert", "start")}
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    for path, flags in invocations:
        proc = subprocess.run([str(BIN / "airfare"), *path, "--help"], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, f"airfare {' '.join(path)} --help: {proc.stderr}"
        offered = set(re.findall(r"(--[a-z][a-z-]*)", proc.stdout))
        assert flags <= offered, f"airfare {' '.join(path)} has no {sorted(flags - offered)}"


def test_buildspec_make_targets_exist(buildspec):
    targets = {m for line in buildspec_lines(buildspec) for m in re.findall(r"\bmake (\w+)", line)}
    assert targets >= {"venv", "test"}
    for target in targets:
        proc = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, f"make {target}: {proc.stderr}"


def test_buildspec_tags_the_image_with_the_commit(buildspec):
    text = (ROOT / "buildspec.yml").read_text()
    assert 'IMAGE_TAG="${CODEBUILD_RESOLVED_SOURCE_VERSION}"' in text
    assert 'push_once "${IMAGE_TAG}" "${IMAGE_URI}"' in text and '--image-uri "${IMAGE_URI}"' in text
    # the lean serving image: built from the Dockerfile's `serve` target, named as the models' image
    assert 'SERVE_IMAGE_URI="${REGISTRY}/${ECR_REPOSITORY}:serve-${IMAGE_TAG}"' in text
    assert 'push_once "serve-${IMAGE_TAG}" "${SERVE_IMAGE_URI}" --target serve' in text
    assert '--serve-image-uri "${SERVE_IMAGE_URI}"' in text
    assert "FROM python:3.11.7-slim-bookworm AS serve" in (ROOT / "Dockerfile").read_text()


def test_buildspec_build_script_parses(buildspec):
    for cmd in buildspec["phases"]["build"]["commands"]:
        assert subprocess.run(["bash", "-n"], input=cmd, text=True, capture_output=True).returncode == 0, cmd


# ---------------------------------------------------------------------------------------------
# setup_aws_resources.sh
# ---------------------------------------------------------------------------------------------
def test_setup_script_parses_and_is_strict():
    assert subprocess.run(["bash", "-n", str(SETUP)], capture_output=True).returncode == 0
    text = SETUP.read_text()
    assert "set -euo pipefail" in text
    assert os.access(SETUP, os.X_OK)


@pytest.mark.parametrize("args", [[], ["staging"], ["dev", "prod"]])
def test_setup_script_usage_on_bad_arguments(args):
    proc = subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 2
    assert "Usage: seed_infra/setup_aws_resources.sh dev|prod" in proc.stderr


def test_setup_script_deploys_in_order_with_real_parameters():
    text = SETUP.read_text()
    calls = re.findall(r"^\s*deploy (\w+) (\S+\.yaml)(.*(?:\\\n.*)*)$", text, re.M)
    assert [c[0] for c in calls] == ["kinesis", "glue", "mlops", "cicd"]
    for _, template, rest in calls:
        parsed, errors = decode(str(ROOT / "seed_infra" / template))
        assert not errors
        declared = set(parsed["Parameters"])
        passed = set(re.findall(r"\b([A-Z]\w+)=", rest)) | {"ProjectName", "Environment"}
        assert passed <= declared, f"{template}: unknown parameters {passed - declared}"
        required = {k for k, p in parsed["Parameters"].items() if "Default" not in p}
        assert required <= passed, f"{template}: required parameters not passed: {required - passed}"
    # The code the glue stack points at is uploaded before it is deployed.
    assert text.index("aws s3 cp") < text.index("deploy glue glue_stack.yaml")


def test_setup_script_zips_what_the_glue_job_and_lambda_import(tmp_path):
    """Run the script's own zip builder; the Glue job's imports must resolve from the source zip alone."""
    text = SETUP.read_text()
    builder = re.search(r"<<'PY'\n(.*?)\nPY\n", text, re.S).group(1)
    subprocess.run([sys.executable, "-", str(ROOT), str(tmp_path)], input=builder, text=True, check=True, timeout=60)
    src = tmp_path / "airfare_src.zip"
    lambda_key = (tmp_path / "lambda_key").read_text()
    assert re.fullmatch(r"lambda/lambda_trigger-[0-9a-f]{16}\.zip", lambda_key)
    with zipfile.ZipFile(tmp_path / "lambda.zip") as z:
        assert z.namelist() == ["lambda_trigger.py"]
    with zipfile.ZipFile(src) as z:
        names = set(z.namelist())
    assert {"seed_infra/etl/job.py", "core/contract.py", "seed_infra/__init__.py", "core/__init__.py"} <= names
    assert not any("__pycache__" in n for n in names)
    # The zip first on sys.path, as --extra-py-files puts it on Glue: the job's modules load from it.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import seed_infra.etl.job as j, core.contract as c;"
        "assert j.__file__.startswith(sys.argv[1]) and c.__file__.startswith(sys.argv[1]), (j.__file__, c.__file__)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(src)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Content-addressed: building again gives the same Lambda key.
    again = tmp_path / "again"
    again.mkdir()
    subprocess.run([sys.executable, "-", str(ROOT), str(again)], input=builder, text=True, check=True, timeout=60)
    assert (again / "lambda_key").read_text() == lambda_key


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return {a.lower(): b for a, b in (line.split("==") for line in lines if "==" in line and not line.startswith("#"))}


def test_runtime_and_serving_locks_are_subsets_of_the_development_lock():
    dev, runtime, serve = _pins("requirements-dev.lock"), _pins("requirements.lock"), _pins("requirements-serve.lock")
    for name, lock in (("requirements.lock", runtime), ("requirements-serve.lock", serve)):
        drift = {p: (v, dev.get(p)) for p, v in lock.items() if dev.get(p) != v}
        assert not drift, f"{name} disagrees with requirements-dev.lock: {drift}"
    assert set(serve) <= set(runtime)
    for tool in ("pytest", "moto", "cfn-lint", "checkov", "hypothesis", "nbclient", "ipykernel"):
        assert tool not in runtime and tool not in serve, f"{tool} is a development tool"
    for heavy in ("pyspark", "sagemaker", "boto3", "great-expectations", "duckdb", "mlflow"):
        assert heavy not in serve, f"the serving image does not need {heavy}"
    for needed in ("uvicorn", "uvloop", "httptools", "orjson", "pydantic", "xgboost-cpu", "lightgbm", "scikit-learn",
                   "skops", "treelite", "tl2cgen"):
        assert needed in serve, f"serve imports {needed}"
    text = (ROOT / "Dockerfile").read_text()
    assert "AS serve" in text and "requirements-serve.lock" in text and "requirements-dev.lock" not in text
