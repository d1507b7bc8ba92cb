# The one image of DESIGN.md §1: every SageMaker job of the pipeline (processing, training, serving)
# runs this image, built from the same pinned requirements as the local .venv.
#   processing: ContainerEntrypoint ["python", "-m", "<module>"]
#   training:   started with `train`  (SageMaker runs `docker run IMAGE train`)
#   serving:    started with `serve`  (GET /ping, POST /invocations on port 8080)
# Built and pushed by CodeBuild (buildspec.yml), tagged with the commit.
#
# Two targets. `serve` (docker build --target serve): the lean serving image, only what `serve`
# imports (requirements-serve.lock: no Spark, no Java, no SageMaker SDK, no AWS clients), because
# its start-up time decides how fast auto-scaling reacts. The last stage (the default build) is the
# pipeline image for every job, serving included. Development tools (the -dev lock: pytest,
# moto, linters, notebooks) enter neither. Both carry gcc: serve compiles the model's trees with
# tl2cgen at start-up (inference/compiled.py) and falls back to the libraries' own predict without it.

# ---- the serving image --------------------------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS serve

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc=4:12.* libc6-dev=2.36-* \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFARE_COMPILE_CACHE=/tmp/airfare-compiled

WORKDIR /opt/program
COPY requirements-serve.lock ./
RUN pip install --no-cache-dir "pip==26.3" \
    && pip install --no-cache-dir -r requirements-serve.lock

COPY setup.py pyproject.toml requirements.in ./
COPY core/ core/
COPY inference/ inference/
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && command -v serve \
    && python -c "import inference.entry, inference.app, inference.compiled, inference.model" \
    && mkdir -p /opt/ml
EXPOSE 8080

# ---- the pipeline image (default) ---------------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS pipeline

# Java 17 for PySpark: `airfare run` / `airfare etl` (the whole flow, ETL included) work in the
# image as on a laptop. The SageMaker steps themselves do not start Spark.
# Pinned to the Debian bookworm 17.x line; security rebuilds within it are wanted.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless=17.* gcc=4:12.* libc6-dev=2.36-* \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SAGEMAKER_VALIDATE_ROLE=false

WORKDIR /opt/program

# Dependencies first: this layer is reused until requirements.lock (runtime only) changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir "pip==26.3" \
    && pip install --no-cache-dir -r requirements.lock

COPY setup.py pyproject.toml requirements.in ./
COPY pipelines/ pipelines/
COPY core/ core/
COPY processing/ processing/
COPY training/ training/
COPY evaluation/ evaluation/
COPY inference/ inference/
COPY data_quality/ data_quality/
COPY seed_infra/ seed_infra/
COPY monitoring/ monitoring/

# `train` and `serve` must be on PATH (SageMaker's container contract). `train` is a console script
# of setup.py; `serve` (inference.entry:main) gets a shim only until setup.py declares it. The
# build fails if either is missing rather than at the first SageMaker job.
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && if ! command -v serve >/dev/null; then \
         printf '#!/bin/sh\nexec python -c "import sys; from inference.entry import main; sys.exit(main())" "$@"\n' > /usr/local/bin/serve \
         && chmod 0755 /usr/local/bin/serve; \
       fi \
    && command -v train && command -v serve \
    && mkdir -p /opt/ml

# No USER: SageMaker mounts /opt/ml/{model,output,input,processing} root-owned and runs training and
# processing containers as root; a non-root user cannot write the model or the failure file there.
# Isolation comes from SageMaker (private VPC subnets, per-job IAM role, no inbound access).
EXPOSE 8080
