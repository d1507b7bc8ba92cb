"""Commands of this package for the `airfare` CLI (see pipelines/cli.py)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
