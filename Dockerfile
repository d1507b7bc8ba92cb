# The one image of DESIGN.md §1: every SageMaker job of the pipeline (processing, training, serving)
# runs this image, built from the same pinned requirements as the local .venv.
#   processing: ContainerEntrypoint ["python", "-m", "<module>"]
#   training:   started with `train`  (SageMaker runs `docker run IMAGE train`)
#   serving:    started with `serve`  (GET /ping, POST /invocations on port 8080)
FROM python:3.11.7-slim-bookworm

# Java for local Spark (ETL tests and Glue-compatible code); curl-free image otherwise.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless=17.* \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SAGEMAKER_VALIDATE_ROLE=false

WORKDIR /opt/program
COPY requirements.lock requirements.in setup.py pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pipelines/ pipelines/
COPY processing/ processing/
COPY training/ training/
COPY evaluation/ evaluation/
COPY inference/ inference/
COPY data_quality/ data_quality/
COPY seed_infra/ seed_infra/
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && useradd --create-home --uid 1000 sagemaker \
    && mkdir -p /opt/ml && chown -R sagemaker /opt/ml

# SageMaker starts the container as `IMAGE train` or `IMAGE serve`: both are console scripts on PATH.
ENV PATH="/opt/program:${PATH}"
USER sagemaker
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8080/ping')" || exit 1
