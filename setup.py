"""Airfare MLOps: flight searches -> Kinesis -> Glue -> SageMaker Pipeline -> three models."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGES = ["core", "pipelines", "processing", "training", "evaluation", "inference", "data_quality", "seed_infra", "monitoring"]


def _requirements() -> list[str]:
    # Direct dependencies (ranges); exact versions are pinned in requirements.lock.
    lines = Path(__file__).with_name("requirements.in").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="airfare-mlops",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=[f"{p}*" for p in PACKAGES]),
    package_data={"": ["*.yaml", "*.yml", "*.json", "*.sql", "*.html", "*.j2"]},
    install_requires=_requirements(),
    entry_points={
        "console_scripts": [
            "airfare=pipelines.cli:main",
            # SageMaker's container contract: the image is started with `train` or `serve`.
            "train=training.entry:main",
            "serve=inference.entry:main",
        ]
    },
)
