"""How `airfare run` scales with the world: wall time per stage and peak memory per step process.

Runs the whole flow (generate -> ETL -> pipeline on the local executor) once per world size, by
default 1x, 3x and 10x the default world (1,500 -> 4,500 -> 15,000 searches a day, 60 days), each
in its own folder, one after the other. While a run is going, every process of its tree is polled
(psutil, every ``--poll`` seconds) and its peak RSS is kept; the local executor starts each step
as a subprocess whose working directory is the step's run folder, so a process is attributed to
its step by its cwd. The Spark JVM of the ETL and the ``airfare`` process itself are reported
apart. ``resource.getrusage(RUSAGE_CHILDREN)`` gives the largest finished descendant as a
cross-check of the polling (it cannot miss a short spike).

Goals (issue 11): peak memory roughly flat, no step process above 3 GiB at 10x; time growing no
faster than the data (the ratio column: time ratio / data ratio <= 1).

    .venv/bin/python benchmarks/bench_scale.py                      # 1x, 3x, 10x (the 10x run is heavy)
    .venv/bin/python benchmarks/bench_scale.py --sizes 300,900 --days 21   # a quick look
    .venv/bin/python benchmarks/bench_scale.py --replicate-from /tmp/airfare-bench-scale/spd1500/lake  # pipeline only

``--replicate-from`` measures the pipeline alone on a 1x world whose every day is replicated 3x and
10x with fresh offer and event ids (same flights, same distributions): it skips generate and the
ETL, which is what makes a 10x run take hours on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
DEFAULT_SEARCHES = 1500


def _step_of(proc: psutil.Process, runs: Path) -> str | None:
    try:
        cwd = Path(proc.cwd())
    except (psutil.Error, OSError):
        return None
    try:
        rel = cwd.relative_to(runs)
    except ValueError:
        return None
    return rel.parts[1] if len(rel.parts) >= 2 else None  # runs/<execution id>/<step>


def _kind(proc: psutil.Process, runs: Path, root_pid: int) -> str:
    if proc.pid == root_pid:
        return "airfare (generate, ETL driver, executor)"
    step = _step_of(proc, runs)
    if step:
        return f"step {step}"
    try:
        exe = (proc.cmdline() or [proc.name()])[0]
    except psutil.Error:
        return "other"
    return "Spark JVM (ETL)" if Path(exe).name == "java" else f"other ({Path(exe).name})"


def run_once(searches: int, days: int, seed: int, work: Path, workers: int, poll: float) -> dict:
    """One `airfare run` in ``work``; returns its timings and peak RSS per process kind."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    lake, runs = work / "lake", work / "runs"
    cmd = [str(Path(sys.executable).with_name("airfare")), "run", "--seed", str(seed), "--days", str(days),
           "--searches-per-day", str(searches), "--lake", str(lake), "--runs", str(runs),
           "--registry", str(lake / "registry"), "--workers", str(workers)]
    return {"searches_per_day": searches, "days": days, **_measure(cmd, work, runs, poll)}


def replicate_lake(base: Path, factor: int, dest: Path) -> tuple[str, str]:
    """``dest`` = ``base``'s curated offers and truth, each day's rows ``factor`` times with fresh ids.

    Copy i of an offer gets ``offer_id``/``event_id`` + ``~r<i>`` (copy 0 keeps the original ids), so
    every day holds ``factor`` times the offers of the same flights, with the same distributions:
    the pipeline's load at ``factor`` x the searches per day, without the ETL (whose speed is not
    what this measures). Flight outcomes are shared. Returns the window's first and last day.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    src, out = base / "airfare-lake", dest / "airfare-lake"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src / "outcomes", out / "outcomes")

    def copies(table: pa.Table, cols: list[str]):
        for i in range(factor):
            t = table
            if i:
                for c in cols:
                    if c in t.column_names:
                        t = t.set_column(t.column_names.index(c), c, pc.binary_join_element_wise(t.column(c), f"r{i}", "~"))
            yield t

    days = []
    for day_dir in sorted((src / "curated" / "offers").glob("dt=*")):
        days.append(day_dir.name.split("=", 1)[1])
        target = out / "curated" / "offers" / day_dir.name
        target.mkdir(parents=True)
        for f in sorted(day_dir.glob("*.parquet")):
            for i, t in enumerate(copies(pq.read_table(f), ["offer_id", "event_id"])):
                pq.write_table(t, target / f"r{i}-{f.name}")
    for f in sorted((src / "truth" / "offers").rglob("*.parquet")):
        rel = f.relative_to(src / "truth" / "offers")
        (out / "truth" / "offers" / rel.parent).mkdir(parents=True, exist_ok=True)
        for i, t in enumerate(copies(pq.read_table(f), ["offer_id"])):
            pq.write_table(t, out / "truth" / "offers" / rel.parent / f"r{i}-{rel.name}")
    return days[0], days[-1]


def run_pipeline_only(base: Path, factor: int, work: Path, workers: int, poll: float) -> dict:
    """`airfare pipeline run-local` on ``base``'s world replicated ``factor`` times (see :func:`replicate_lake`)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    lake, runs = work / "lake", work / "runs"
    t0 = time.perf_counter()
    first, last = replicate_lake(base, factor, lake)
    replicate_seconds = time.perf_counter() - t0
    cmd = [str(Path(sys.executable).with_name("airfare")), "pipeline", "run-local", "--lake", str(lake), "--runs", str(runs),
           "--registry", str(lake / "registry"), "--workers", str(workers), "--no-cache", "--quiet",
           "-p", f"StartDate={first}", "-p", f"EndDate={last}"]
    r = _measure(cmd, work, runs, poll)
    r["stages"] = {"replicate (not measured)": round(replicate_seconds, 1), "pipeline": r["wall_seconds"]}
    return {"factor": factor, **r}


def _measure(cmd: list[str], work: Path, runs: Path, poll: float) -> dict:
    log = open(work / "airfare-run.log", "wb")
    rusage = work / "children_maxrss_kib"
    # A thin wrapper whose RUSAGE_CHILDREN covers exactly this run's process tree.
    wrapper = [sys.executable, "-c", "import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(rc)",
               str(rusage)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(wrapper + cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wrapper_proc = psutil.Process(proc.pid)
    root = None
    while root is None and proc.poll() is None:
        kids = wrapper_proc.children()
        root = kids[0] if kids else None
        time.sleep(0.01)
    root = root or wrapper_proc
    peaks: dict[str, int] = {}
    seen: dict[int, psutil.Process] = {root.pid: root}
    while proc.poll() is None:
        try:
            for child in root.children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.Error:
            pass
        for pid, p in list(seen.items()):
            try:
                rss = p.memory_info().rss
                kind = _kind(p, runs.resolve(), root.pid)
            except psutil.Error:
                seen.pop(pid, None)
                continue
            peaks[kind] = max(peaks.get(kind, 0), rss)
        time.sleep(poll)
    wall = time.perf_counter() - t0
    log.close()
    execution = sorted(runs.glob("*/execution.json"))
    steps = {}
    status = "no execution"
    if execution:
        doc = json.loads(execution[-1].read_text())
        status = doc["status"]
        steps = {s["name"]: s.get("seconds") for s in doc["steps"] if s.get("seconds")}
    timings = {}
    for line in (work / "airfare-run.log").read_text(errors="replace").splitlines():
        if line.startswith("timings:"):
            for part in line[len("timings:"):].split(";")[0].split(","):
                name, value = part.split()
                timings[name] = float(value.rstrip("s"))
    step_peaks = {k[len("step "):]: v for k, v in peaks.items() if k.startswith("step ")}
    return {
        "exit_code": proc.returncode,
        "status": status,
        "wall_seconds": round(wall, 1),
        "stages": timings,
        "step_seconds": steps,
        "peak_rss_bytes": peaks,
        "largest_step": max(step_peaks.items(), key=lambda kv: kv[1]) if step_peaks else None,
        # the largest process of the tree (airfare itself included), by the kernel's own count
        "max_rss_bytes_getrusage": int(rusage.read_text()) * 1024 if rusage.exists() else None,
    }


def _gib(b: int | None) -> str:
    return "-" if b is None else f"{b / GIB:.2f}"


def print_report(results: list[dict]) -> None:
    base = results[0]
    print("\nPer stage (seconds) and the ratio time/data vs the first size (<= 1: time grows no faster than the data)")
    stages = ["generate", "etl", "pipeline", "total"]
    print(f"{'searches/day':>12} {'status':>10} " + " ".join(f"{s:>9}" for s in stages) + f" {'data x':>7} {'pipeline t/d':>12}")
    for r in results:
        data = r["searches_per_day"] * r["days"] / (base["searches_per_day"] * base["days"])
        pl = r["stages"].get("pipeline")
        ratio = pl / base["stages"]["pipeline"] / data if pl and base["stages"].get("pipeline") else float("nan")
        print(f"{r['searches_per_day']:>12,} {r['status']:>10} " + " ".join(f"{r['stages'].get(s, float('nan')):>9.1f}" for s in stages)
              + f" {data:>7.1f} {ratio:>12.2f}")
    _print_steps_and_memory(results, [f"{r['searches_per_day']:,}" for r in results])


def _print_steps_and_memory(results: list[dict], labels: list[str]) -> None:
    names = []
    for r in results:
        names += [n for n in r["step_seconds"] if n not in names]
    print("\nStep seconds")
    print(f"{'step':<20}" + "".join(f"{lab:>10}" for lab in labels))
    for n in names:
        print(f"{n:<20}" + "".join(f"{r['step_seconds'].get(n, float('nan')):>10.1f}" for r in results))
    kinds = []
    for r in results:
        kinds += [k for k in r["peak_rss_bytes"] if k not in kinds]
    print("\nPeak RSS (GiB) per process")
    print(f"{'process':<44}" + "".join(f"{lab:>10}" for lab in labels))
    for k in sorted(kinds):
        print(f"{k:<44}" + "".join(f"{_gib(r['peak_rss_bytes'].get(k)):>10}" for r in results))
    print(f"{'largest step process':<44}" + "".join(f"{_gib(r['largest_step'][1] if r['largest_step'] else None):>10}" for r in results))
    for lab, r in zip(labels, results):
        big = r["largest_step"]
        verdict = "ok" if big and big[1] <= 3 * GIB else "ABOVE 3 GiB" if big else "no step ran"
        print(f"  {lab}: largest step {big[0] if big else '-'} {_gib(big[1] if big else None)} GiB ({verdict}); "
              f"largest process of the run by getrusage {_gib(r['max_rss_bytes_getrusage'])} GiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1500,4500,15000", help="searches per day, comma-separated (default: 1x, 3x, 10x)")
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=2, help="airfare run --workers")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between RSS samples")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/airfare-bench-scale"))
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--keep", action="store_true", help="keep each size's lake and runs")
    p.add_argument("--replicate-from", type=Path, default=None,
                   help="pipeline only: a lake folder from a 1x `airfare run` (holding airfare-lake/); each size is "
                        "that world's days replicated size/1500 times (no generate, no ETL)")
    a = p.parse_args(argv)
    try:
        sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes must be integers, got {a.sizes!r}")
    if not sizes or min(sizes) < 50:
        p.error("--sizes: at least one size, each >= 50 searches a day")
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.0f} GiB; "
          f"load average at start {os.getloadavg()}")
    results = []
    if a.replicate_from is not None:
        for n in sizes:
            factor = max(1, round(n / DEFAULT_SEARCHES))
            print(f"== pipeline only, {factor}x the world in {a.replicate_from} ({n:,} searches/day equivalent)", flush=True)
            load = os.getloadavg()
            r = run_pipeline_only(a.replicate_from, factor, a.workdir / f"x{factor}", a.workers, a.poll)
            r.update(searches_per_day=n, load_average_before=load, load_average_after=os.getloadavg())
            results.append(r)
            print(f"   {r['status']} in {r['wall_seconds']:.0f}s; load {load} -> {r['load_average_after']}", flush=True)
            if not a.keep:
                shutil.rmtree(a.workdir / f"x{factor}" / "lake", ignore_errors=True)
        _print_steps_and_memory(results, [f"{r['factor']}x" for r in results])
        base = results[0]
        print("\nPipeline wall time vs data (ratio <= 1: time grows no faster than the data)")
        for r in results:
            print(f"  {r['factor']:>3}x: {r['wall_seconds']:7.1f}s  time x{r['wall_seconds'] / base['wall_seconds']:.2f}  "
                  f"ratio {r['wall_seconds'] / base['wall_seconds'] / (r['factor'] / base['factor']):.2f}")
        if a.out:
            a.out.write_text(json.dumps(results, indent=2))
        return 0 if all(r["status"] == "Succeeded" for r in results) else 1
    for n in sizes:
        print(f"== {n:,} searches/day x {a.days} days", flush=True)
        load = os.getloadavg()
        r = run_once(n, a.days, a.seed, a.workdir / f"spd{n}", a.workers, a.poll)
        r["load_average_before"] = load
        r["load_average_after"] = os.getloadavg()
        results.append(r)
        print(f"   {r['status']} in {r['wall_seconds']:.0f}s; stages {r['stages']}; load {load} -> {r['load_average_after']}", flush=True)
        if not a.keep:
            shutil.rmtree(a.workdir / f"spd{n}" / "lake", ignore_errors=True)
    print_report(results)
    if a.out:
        a.out.write_text(json.dumps(results, indent=2))
    return 0 if all(r["status"] == "Succeeded" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
