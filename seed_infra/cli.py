"""seed_infra's commands for the `airfare` CLI: generate, produce, etl, query."""

from __future__ import annotations

import typer

from seed_infra import producer_cli
from seed_infra.etl import cli as etl_cli
from seed_infra.world import cli as world_cli

app = typer.Typer()
app.add_typer(world_cli.app)
app.add_typer(producer_cli.app)
app.add_typer(etl_cli.app)
