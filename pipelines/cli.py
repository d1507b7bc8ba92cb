"""`airfare`: the project's one console script.

Each package owns its commands in a light ``cli`` module (typer and stdlib at import time only;
heavy libraries are imported inside the command) and this module assembles them, so that
``airfare --help`` stays fast.
"""

from __future__ import annotations

import signal

import typer

from data_quality import cli as dq_cli
from pipelines import deploy_cli, main_job, monitor_cli, pipeline_cli, registry_cli, replay_cli, serve_cli
from seed_infra import cli as seed_cli

app = typer.Typer(
    name="airfare",
    help="Airline ticket shopping MLOps: from flight searches to three production models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
# Top-level commands: generate, produce, etl, query (seed_infra); dq (data_quality); run (main job).
app.add_typer(seed_cli.app)
app.add_typer(dq_cli.app)
app.add_typer(main_job.app)
# deploy: an approved model package to an auto-scaling endpoint with data capture.
app.add_typer(deploy_cli.app)
# serve: a registered model as a local SageMaker endpoint (container contract + runtime API).
app.add_typer(serve_cli.app)
# replay: production day by day (drift, monitoring, alarm-driven retraining, champion/challenger).
app.add_typer(replay_cli.app)
# Command groups.
app.add_typer(pipeline_cli.app, name="pipeline", help="Build, validate, upsert, start or run locally the SageMaker pipeline.")
app.add_typer(registry_cli.app, name="models", help="List, approve or reject registered model packages.")
app.add_typer(monitor_cli.app, name="monitor", help="Model Monitor locally: baselines, data quality and model quality of captured traffic.")


def main() -> None:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the local executor stops the job
    # processes it started (they run in their own sessions) instead of leaving them orphaned.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    app()


if __name__ == "__main__":
    main()
