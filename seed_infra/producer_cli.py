"""Commands of this module for the `airfare` CLI (assembled in seed_infra/cli.py)."""

from __future__ import annotations

import typer

app = typer.Typer()
