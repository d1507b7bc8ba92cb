"""Running the suites with Great Expectations 1.x, offline, and summing the results up.

One ephemeral GX context per process (building one is slow); each validated table gets a
pandas dataframe asset, a whole-dataframe batch definition, a suite and a validation
definition run with ``batch_parameters={"dataframe": df}``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import html
import itertools
import json
from dataclasses import dataclass, field

import pandas as pd

from data_quality import suites, tables
from data_quality.suites import BLOCKING, DQConfig

_ids = itertools.count()


@functools.lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx, ctx.data_sources.add_pandas("dq")


@dataclass
class Check:
    """One table and the expectations to validate it against."""

    table: str
    frame: pd.DataFrame
    expectations: list
    index_columns: list[str] = field(default_factory=list)  # reported for each failing row


@dataclass
class DQRun:
    """Flat results (one dict per expectation) and the raw GX results per table."""

    rows: list[dict] = field(default_factory=list)
    gx_results: dict[str, dict] = field(default_factory=dict)
    context: dict = field(default_factory=dict)

    @property
    def blocking_failed(self) -> list[dict]:
        return [r for r in self.rows if not r["success"] and r["severity"] == "blocking"]

    @property
    def warnings_failed(self) -> list[dict]:
        return [r for r in self.rows if not r["success"] and r["severity"] == "warning"]


def _jsonable(value, limit: int = 5):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in list(value)[:limit]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _observed(result: dict, exception: dict) -> object:
    """What the data showed: the aggregate, or how many rows broke the rule and a few of them."""
    if exception.get("raised_exception"):
        return f"error: {exception.get('exception_message')}"
    if "observed_value" in result:
        return _jsonable(result["observed_value"], limit=10)
    if "unexpected_count" in result:
        pct = result.get("unexpected_percent") or 0.0
        named = result.get("unexpected_index_column_names") and result.get("partial_unexpected_index_list")
        sample = _jsonable(named or result.get("partial_unexpected_list") or [])
        return f"{result['unexpected_count']} unexpected ({pct:.2f}%)" + (f", e.g. {sample}" if sample else "")
    return None


def run_checks(checks: list[Check], context: dict | None = None) -> DQRun:
    """Validate each table against its expectations; the expectation names must be unique."""
    import great_expectations as gx

    ctx, ds = _context()
    run = DQRun(context=dict(context or {}))
    for check in checks:
        uid = f"{check.table}-{next(_ids)}"
        batch = ds.add_dataframe_asset(uid).add_batch_definition_whole_dataframe("all")
        suite = gx.ExpectationSuite(name=uid, expectations=[copy.copy(e) for e in check.expectations])
        suite = ctx.suites.add(suite)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=uid, data=batch, suite=suite))
        result_format = {"result_format": "SUMMARY"}
        if check.index_columns:
            result_format["unexpected_index_column_names"] = check.index_columns
        result = vd.run(batch_parameters={"dataframe": check.frame}, result_format=result_format)
        run.gx_results[check.table] = result.to_json_dict()
        order = {e.meta["name"]: i for i, e in enumerate(check.expectations)}
        rows = []
        for r in result.results:
            cfg = r.expectation_config
            exc = r.exception_info or {}
            success = bool(r.success) and not exc.get("raised_exception")
            rows.append(
                {
                    "name": cfg.meta["name"],
                    "table": check.table,
                    "expectation": cfg.type,
                    "severity": "blocking" if str(getattr(cfg.severity, "value", cfg.severity)) == BLOCKING else "warning",
                    "success": success,
                    "observed": _observed(r.result or {}, exc),
                    "description": cfg.description or "",
                }
            )
        run.rows.extend(sorted(rows, key=lambda x: order.get(x["name"], 0)))
    return run


# ---------------------------------------------------------------------------------------------
# What to validate
# ---------------------------------------------------------------------------------------------
def curated_checks(
    table: tables.Table,
    reference: dict,
    cfg: DQConfig = DQConfig(),
    *,
    prefix: str = "offers",
    min_rows: int | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
) -> list[Check]:
    """Checks for one offers table: rows and distributions, schema, null rates, partitions, time window."""
    df = table.frame
    win = tables.window_table(df, end_date, start_date)
    return [
        Check(prefix, df, suites.offers_suite(prefix, reference, cfg, cfg.min_rows if min_rows is None else min_rows)),
        Check(f"{prefix}_schema", tables.schema_table(table.schema), suites.schema_suite(prefix)),
        Check(f"{prefix}_airports", tables.airport_table(df, suites.iata_airports()), suites.airports_suite(prefix),
              index_columns=["code"]),
        Check(f"{prefix}_price_ratios", tables.price_ratio_table(df), suites.price_ratio_suite(prefix, reference, cfg)),
        Check(f"{prefix}_null_rates", tables.null_rate_table(df, suites.null_ceilings(reference, cfg)),
              suites.null_rate_suite(prefix, cfg), index_columns=["column"]),
        Check(f"{prefix}_partitions", tables.partition_table(df), suites.partitions_suite(f"{prefix}.partitions", cfg),
              index_columns=["dt"]),
        Check(f"{prefix}_window", win, suites.window_suite(f"{prefix}.window", cfg, end_date is not None)),
    ]  # fmt: skip


def split_checks(splits: dict[str, dict[str, tables.Table]], reference: dict, cfg: DQConfig = DQConfig(), *, end_date=None) -> list[Check]:
    """Checks for Preprocess' output.

    The three splits are one time window cut in three, so the row, distribution, partition and
    window checks run once on their union (same names as for curated offers: ``offers.*``; a day
    duplicated across two splits is caught too). Per split: the stored schema, a row-count floor,
    the flights label table; across splits: the time order.
    """
    union = pd.concat([p["offers"].frame for p in splits.values()], ignore_index=True)
    floor = sum(cfg.split_min_rows.get(n, cfg.min_rows) for n in splits)
    checks = curated_checks(tables.Table(union, next(iter(splits.values()))["offers"].schema), reference, cfg,
                            min_rows=floor, end_date=end_date)  # fmt: skip
    checks = [c for c in checks if c.table != "offers_schema"]
    for name, parts in splits.items():
        offers, flights = parts["offers"], parts["flights"].frame
        p = f"{name}.offers"
        per_split = [
            suites._e(suites.gxe.ExpectTableRowCountToBeBetween, f"{p}.row_count_floor", suites.BLOCKING,
                      f"at least {cfg.split_min_rows.get(name, cfg.min_rows)} rows", min_value=cfg.split_min_rows.get(name, cfg.min_rows)),
            suites._e(suites.gxe.ExpectTableColumnsToMatchSet, f"{p}.schema.columns", suites.BLOCKING,
                      "exactly the contract's columns", column_set=list(tables.contract.CURATED_COLUMNS), exact_match=True),
        ]  # fmt: skip
        checks.append(Check(p, offers.frame, per_split))
        checks.append(Check(f"{p}_schema", tables.schema_table(offers.schema), suites.schema_suite(p)))
        checks.append(Check(f"{name}.flights", flights, suites.flights_suite(f"{name}.flights", cfg)))
        rest = [p["flights"].frame for n, p in splits.items() if n != name]
        others = tables.class_share_table(pd.concat(rest, ignore_index=True)).iloc[0] if rest else None
        others = {c: float(others[f"share_{c}"]) for c in tables.contract.DEMAND_CLASSES} if others is not None else None
        shares = suites.class_share_suite(f"{name}.flights", reference, cfg, others)
        checks.append(Check(f"{name}.flights_shares", tables.class_share_table(flights), shares))
    order = tables.split_order_table({n: p["offers"].frame for n, p in splits.items()})
    checks.append(Check("splits_order", order, suites.split_order_suite(), index_columns=["pair"]))
    return checks


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
def summarize(run: DQRun) -> dict:
    """The property file the pipeline's ConditionStep reads (``blocking_failures == 0``)."""
    blocking, warnings = run.blocking_failed, run.warnings_failed
    return {
        "blocking_failures": len(blocking),
        "warnings": len(warnings),
        "failed_expectations": ",".join(r["name"] for r in blocking) or "none",
        "warning_expectations": ",".join(r["name"] for r in warnings) or "none",
        "passed": not blocking,
        "evaluated": len(run.rows),
        "suites_version": suites.SUITES_VERSION,
        "tables": sorted({r["table"] for r in run.rows}),
        **run.context,
    }


def validation_json(run: DQRun) -> dict:
    """Everything: the summary, the flat results and GX's own validation results per table."""
    return {"summary": summarize(run), "expectations": run.rows, "great_expectations": run.gx_results}


def render_html(run: DQRun, title: str = "Data quality report") -> str:
    """A self-contained page: summary, then every expectation (failures first) with its observed value."""
    s = summarize(run)
    esc = html.escape
    rank = {(False, "blocking"): 0, (False, "warning"): 1}
    rows = sorted(run.rows, key=lambda r: (rank.get((r["success"], r["severity"]), 2), r["table"]))
    body = []
    for r in rows:
        status = "PASS" if r["success"] else "FAIL"
        cls = "pass" if r["success"] else ("block" if r["severity"] == "blocking" else "warn")
        observed = r["observed"] if isinstance(r["observed"], str) else json.dumps(r["observed"])
        body.append(
            f'<tr class="{cls}"><td>{status}</td><td>{esc(r["severity"])}</td><td><code>{esc(r["name"])}</code></td>'
            f"<td>{esc(r['description'])}</td><td>{esc(r['expectation'])}</td><td>{esc(str(observed))}</td></tr>"
        )
    verdict = "PASSED" if s["passed"] else "FAILED"
    context = "".join(f"<li>{esc(str(k))}: {esc(str(v))}</li>" for k, v in run.context.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}}
tr.block td{{background:#fdd}} tr.warn td{{background:#ffd}} tr.pass td:first-child{{color:#070}}
</style></head><body>
<h1>{esc(title)}: {verdict}</h1>
<p>{s["blocking_failures"]} blocking failure(s), {s["warnings"]} warning(s), {s["evaluated"]} expectations evaluated.</p>
<p>Failed blocking expectations: <code>{esc(s["failed_expectations"])}</code></p>
<ul>{context}</ul>
<table><thead><tr><th>status</th><th>severity</th><th>name</th><th>rule</th><th>GX expectation</th><th>observed</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
