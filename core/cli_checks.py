"""Up-front checks of command-line values, as typer callbacks: a bad value stops the command
before any work, with a message that names the flag (click's "Invalid value for '--flag': ...").

Ranges of integers are declared with ``typer.Option(min=..., max=...)`` where the command is
defined; these callbacks cover what click's types let through: NaN and infinity in float
ranges (``nan < 0`` is false, so click accepts ``--rate nan``), calendar ranges, and paths.
Stdlib and typer only (imported by ``--help``).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import typer

# Dates a command accepts: wide enough for any plausible world, narrow enough that a date plus the
# booking horizon (330 days) and a return still fits the calendar and the holiday tables.
MIN_DATE = dt.date(1971, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)
MAX_SEED = 2**64 - 1  # the world generator's seeds are unsigned 64-bit integers


def _flag(param: typer.CallbackParam | None, default: str) -> str:
    if param is not None and getattr(param, "opts", None):
        return max(param.opts, key=len)
    return default


def parse_date(value: str | dt.date | dt.datetime, flag: str) -> dt.date:
    """'YYYY-MM-DD' -> date in [MIN_DATE, MAX_DATE], else ``typer.BadParameter`` naming ``flag``."""
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD format", param_hint=flag) from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise typer.BadParameter(f"{day.isoformat()} is outside {MIN_DATE.isoformat()}..{MAX_DATE.isoformat()}", param_hint=flag)
    return day


def date_callback(ctx: typer.Context, param: typer.CallbackParam, value):
    """Callback for a YYYY-MM-DD option (str or click DateTime); keeps the value's type, None passes."""
    if value is None or ctx.resilient_parsing:
        return value
    day = parse_date(value, _flag(param, "date"))
    return value if isinstance(value, (dt.date, dt.datetime)) else day.isoformat()


def finite_callback(ctx: typer.Context, param: typer.CallbackParam, value):
    """Callback for a float option: NaN and infinity are refused (click's ranges let them through)."""
    if value is None or ctx.resilient_parsing:
        return value
    if not math.isfinite(float(value)):
        raise typer.BadParameter(f"{value!r} is not a finite number", param_hint=_flag(param, "value"))
    return value


def out_dir_callback(ctx: typer.Context, param: typer.CallbackParam, value: Path | None):
    """Callback for an output folder: it may not exist yet, but it must not be a file, nor be under one."""
    if value is None or ctx.resilient_parsing:
        return value
    flag = _flag(param, "folder")
    path = Path(value)
    if str(value).strip() == "":
        raise typer.BadParameter("an empty path", param_hint=flag)
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} exists and is not a folder", param_hint=flag)
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{parent} is a file, so {path} cannot be created", param_hint=flag)
            break
    return value


def existing_dir_callback(ctx: typer.Context, param: typer.CallbackParam, value: Path | None):
    """Callback for an input folder that must exist."""
    if value is None or ctx.resilient_parsing:
        return value
    if not Path(value).is_dir():
        raise typer.BadParameter(f"{value} is not an existing folder", param_hint=_flag(param, "folder"))
    return value


def existing_path_callback(ctx: typer.Context, param: typer.CallbackParam, value: Path | None):
    """Callback for an input file or folder that must exist."""
    if value is None or ctx.resilient_parsing:
        return value
    if not Path(value).exists():
        raise typer.BadParameter(f"{value} does not exist", param_hint=_flag(param, "path"))
    return value
