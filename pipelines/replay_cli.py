"""`airfare replay`: production replayed day by day (pipelines/replay.py). Light at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from core.cli_checks import date_callback
from core.pipeline_contract import MIN_TRAIN_DAYS

app = typer.Typer()


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for pair in values or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint=flag)
        out[name.strip()] = value.strip()
    return out


@app.command("replay")
def replay_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder: timeline.json, timeline.png and work/ (lake, registry, runs, capture, monitoring).")],
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**64 - 1, help="World seed.")] = 42,
    start_date: Annotated[str, typer.Option("--start-date", callback=date_callback, help="First replayed day (YYYY-MM-DD); the initial model trains on the days before it.")] = "2026-03-02",
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Days replayed.")] = 30,
    drift: Annotated[Optional[list[str]], typer.Option("--drift", help="Regime change KIND@YYYY-MM-DD[:MAGNITUDE] (repeatable): fare-hike, new-route, mix-shift, currency-units, demand-collapse.")] = None,
    searches_per_day: Annotated[int, typer.Option("--searches-per-day", min=10, max=5000, help="Searches a day (each quotes about 11 offers).")] = 250,
    train_days: Annotated[int, typer.Option("--train-days", min=MIN_TRAIN_DAYS + 6, max=120, help="Days in each training window (the initial one and the moved ones).")] = 21,
    gate: Annotated[Optional[list[str]], typer.Option("--gate", help="Pipeline gate parameter NAME=VALUE (repeatable), e.g. PriceRmseMax=40 (default: the seed's gates).")] = None,
    retrain_days: Annotated[Optional[int], typer.Option("--retrain-days", min=MIN_TRAIN_DAYS + 2, max=120, help=f"Days in a retraining window (ends on the alarm's day; its last two days are validation and test, and at least {MIN_TRAIN_DAYS} train): the stack's RetrainWindowDays (default: the stack's).")] = None,
    cooldown_days: Annotated[Optional[int], typer.Option("--cooldown-days", min=0, max=60, help="No retraining within this many days of the previous run: the stack's RetrainCooldownDays (default: the stack's).")] = None,
    degradation: Annotated[float, typer.Option("--degradation", min=0.0, max=10.0, help="Model-quality alarm: MAE above the initial model's baseline MAE x (1 + this).")] = 4.0,
) -> None:
    """Replay production day by day: served quotes with capture, late ground truth, Model Monitor,
    an alarm that retrains through the stack's EventBridge rule and trigger, and the pipeline's
    champion/challenger step deciding the promotion."""
    import datetime as dt

    from core.pipeline_contract import GATES
    from pipelines.replay import ReplayOptions, replay
    from seed_infra.world.drift import parse_drifts

    try:
        drifts = parse_drifts(drift)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--drift") from None
    gates = _pairs(gate, "--gate")
    known = {g.parameter for g in GATES}
    for name, value in gates.items():
        if name not in known:
            raise typer.BadParameter(f"unknown gate {name!r}; gates: {', '.join(sorted(known))}", param_hint="--gate")
        try:
            float(value)
        except ValueError:
            raise typer.BadParameter(f"{name} needs a number, got {value!r}", param_hint="--gate") from None
    first = dt.date.fromisoformat(start_date)
    late = [str(d) for d in drifts if not first <= d.date < first + dt.timedelta(days=days)]
    if late:
        raise typer.BadParameter(f"drift(s) {', '.join(late)} outside the replayed days", param_hint="--drift")
    opts = ReplayOptions(seed=seed, start_date=first, days=days, out=out, drifts=tuple(str(d) for d in drifts),
                         searches_per_day=searches_per_day, train_days=train_days, retrain_days=retrain_days, gates=gates,
                         cooldown_days=cooldown_days, degradation=degradation)
    doc = replay(opts, log=lambda m: typer.echo(m, err=True))
    s = doc["summary"]
    typer.echo(f"{days} days: {len(s['alarm_days'])} alarm day(s), {len(s['pipeline_runs'])} pipeline run(s), "
               f"{len(s['promotions'])} promotion(s); {out / 'timeline.json'}, {out / 'timeline.png'}")
    for d in s["drifts"]:
        typer.echo(f"  {d['drift']}: alarm after {d['days_to_alarm']} day(s); RMSE {d['rmse_before']} before, "
                   f"{d['rmse_until_promotion']} until promotion ({d['promoted_on']}), {d['rmse_after_promotion']} after")
