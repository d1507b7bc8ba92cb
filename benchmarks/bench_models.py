"""Model benchmark: the three models over a matrix of worlds (seeds x seasons x training windows).

Each (seed, season) world is generated once and curated once with the real Spark ETL, then cached
under --cache (the ETL is the slow part; a window is a date range of the same curated data). Each
cell runs the pipeline's own preprocess and trainers in process and prints every metric beside its
floor and the goal (``benchmarks/model_matrix.py`` says which metrics and why).

    .venv/bin/python benchmarks/bench_models.py            # 3 seeds x 2 seasons x 21/60/120-day windows
    .venv/bin/python benchmarks/bench_models.py --quick    # 1 seed x 2 seasons x 21 days, small worlds
    .venv/bin/python benchmarks/bench_models.py --seeds 7 --seasons winter --windows 21 --searches-per-day 3000

--fresh rebuilds cached worlds; --models price trains only the price model; --json keeps every number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from model_matrix import GOAL, Cell, WorldSpec, ensure_world, goal_failures, run_cell  # noqa: E402
from core import contract  # noqa: E402

SEASONS = {"winter": "2027-02-10", "late-summer": "2026-08-24"}
FULL = {"seeds": [7, 42, 2027], "windows": [21, 60, 120], "searches_per_day": 1000}
QUICK = {"seeds": [7], "windows": [21], "searches_per_day": 600}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def _f(v, fmt=".2f"):
    return "-" if v is None else format(v, fmt)


def print_matrix(cells: list[Cell], goal: dict[str, float], models: tuple[str, ...] = ("price", "demand", "anomaly")) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"models over worlds (goal: price RMSE <= ${goal['price_rmse']:.0f}, vs-true <= "
                    f"{goal['price_vs_true_over_floor']}x floor, demand acc >= {goal['demand_accuracy']}, "
                    f"anomaly precision >= {goal['anomaly_precision']})")
    for col in ("seed", "season", "win", "train offers", "price RMSE (w/o incidents; glitches kept)", "vs true / floor", "per cabin vs true/floor (E P B F)",
                "demand acc", "majority", "oracle", "anomaly P / R", "spike R", "drop R", "feed P", "seconds", "goal"):
        t.add_column(col, justify="right", overflow="fold")
    for c in cells:
        m = c.metrics
        if c.refused:
            t.add_row(str(c.spec.seed), c.spec.season, str(c.window), "", f"[yellow]{c.refused}[/yellow]", *[""] * 10,
                      "[yellow]refused[/yellow]")
            continue
        if c.error:
            t.add_row(str(c.spec.seed), c.spec.season, str(c.window), "", f"[red]{c.error}[/red]", *[""] * 10, "[red]ERROR[/red]")
            continue
        cabins = m.get("price_by_cabin", {})
        per_cab = " ".join(f"{cabins[k]['vs_true']:.0f}/{cabins[k]['floor']:.0f}" if k in cabins else "-" for k in contract.CABINS)
        kinds = m.get("anomaly_by_kind", {})
        fails = goal_failures(m, goal, models)
        t.add_row(
            str(c.spec.seed), c.spec.season, str(c.window), f"{m.get('train_offers', 0):,}",
            f"{_f(m.get('price_rmse'))} ({_f(m.get('price_rmse_without_incidents'))}; {m.get('price_glitches_in_clean', '-')})",
            f"{_f(m.get('price_rmse_vs_true'))}/{_f(m.get('price_noise_floor'))} = {_f(m.get('price_vs_true_over_floor'))}",
            per_cab,
            _f(m.get("demand_accuracy"), ".3f"), _f(m.get("demand_majority"), ".3f"), _f(m.get("demand_oracle"), ".3f"),
            f"{_f(m.get('anomaly_precision'), '.3f')} / {_f(m.get('anomaly_recall'), '.3f')}" if "anomaly_error" not in m
            else f"[red]{m['anomaly_error'][:40]}[/red]",
            _f(kinds.get("spike", {}).get("recall"), ".2f"), _f(kinds.get("drop", {}).get("recall"), ".2f"),
            _f(m.get("anomaly_feed_precision"), ".3f"),
            f"{sum(c.seconds.values()):.0f}",
            "[green]met[/green]" if not fails else "[red]" + ",".join(fails) + "[/red]",
        )
    Console(width=250).print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed x 2 seasons x 21 days at 600 searches/day")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--seasons", nargs="+", choices=sorted(SEASONS), default=list(SEASONS))
    ap.add_argument("--windows", type=int, nargs="+", default=None, help="training windows in days (below 21 = 7 validation + 7 test + 7 training days the pipeline refuses; the cell says so)")
    ap.add_argument("--searches-per-day", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=ROOT / ".bench-worlds")
    ap.add_argument("--fresh", action="store_true", help="rebuild cached worlds")
    ap.add_argument("--no-oracle", action="store_true", help="skip the demand structural oracle")
    ap.add_argument("--models", default="price,demand,anomaly", help="comma list of the models to train")
    ap.add_argument("--json", type=Path, default=None, help="also write every cell's metrics here")
    ap.add_argument("--params", type=str, default="{}", help='JSON {"price": {...}, "demand": {...}, "anomaly": {...}}')
    a = ap.parse_args(argv)
    size = QUICK if a.quick else FULL
    seeds = a.seeds or size["seeds"]
    windows = sorted(a.windows or size["windows"])
    spd = a.searches_per_day or size["searches_per_day"]
    if min(windows) < 1:
        ap.error("--windows must be positive (below 21 days the pipeline's preprocess refuses; the cell shows why)")
    try:
        params = json.loads(a.params)
    except json.JSONDecodeError as exc:
        ap.error(f"--params is not JSON: {exc}")

    t0 = time.perf_counter()
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        for seed in seeds:
            for season in a.seasons:
                spec = WorldSpec(seed, season, dt.date.fromisoformat(SEASONS[season]), max(windows), spd)
                world = ensure_world(spec, a.cache, a.fresh)
                for w in windows:
                    cell = Cell(spec, w)
                    try:
                        run_cell(cell, world, Path(tmp), params, oracle=not a.no_oracle, models=tuple(a.models.split(",")))
                    except Exception as exc:  # noqa: BLE001 - report the cell, keep going
                        cell.error = f"{type(exc).__name__}: {exc}"
                    m = cell.metrics
                    if cell.refused:
                        print(f"seed {seed} {season} {w}d: refused by the pipeline: {cell.refused}", flush=True)
                        cells.append(cell)
                        continue
                    print(f"seed {seed} {season} {w}d: price {_f(m.get('price_rmse'))} "
                          f"(vs true {_f(m.get('price_vs_true_over_floor'))}x floor), demand {_f(m.get('demand_accuracy'), '.3f')}, "
                          f"anomaly P {_f(m.get('anomaly_precision'), '.3f')}  [{', '.join(f'{k} {v:.0f}s' for k, v in cell.seconds.items())}]"
                          + (f"  ERROR {cell.error}" if cell.error else ""), flush=True)
                    cells.append(cell)
    models = tuple(a.models.split(","))
    print_matrix(cells, GOAL, models)
    refused = [c for c in cells if c.refused]
    failed = [c for c in cells if not c.refused and (c.error or goal_failures(c.metrics, GOAL, models))]
    print(f"{len(cells)} cells: {len(cells) - len(refused) - len(failed)} meet the goal, {len(failed)} do not, "
          f"{len(refused)} refused (window below the pipeline's minimum); {time.perf_counter() - t0:.0f}s in all")
    if a.json:
        a.json.write_text(json.dumps([{"seed": c.spec.seed, "season": c.spec.season, "start": c.spec.start.isoformat(),
                                       "window": c.window, "searches_per_day": c.spec.searches_per_day,
                                       "metrics": c.metrics, "seconds": c.seconds, "error": c.error, "refused": c.refused}
                                      for c in cells],
                                     indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
