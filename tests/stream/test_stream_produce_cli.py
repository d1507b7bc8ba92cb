"""`airfare produce`: streams the world's searches, prints a summary, clean errors."""

from __future__ import annotations

import json

import orjson
import pytest
import typer
from typer.testing import CliRunner

from seed_infra import producer_cli


@pytest.fixture()
def cli():
    root = typer.Typer()
    root.add_typer(producer_cli.app)

    @root.callback()
    def _root():  # a group, so the command is invoked by its name as under `airfare`
        pass

    runner = CliRunner()
    return lambda *args: runner.invoke(root, ["produce", *args])


@pytest.fixture()
def fake_world(monkeypatch, make_events):
    """The generator's lazy iterator, stood in by contract-shaped events; records what was asked."""
    asked = {}

    def world_events(seed, start_date, num_records, searches_per_day):
        asked.update(seed=seed, start_date=start_date, num_records=num_records)
        return iter(make_events(num_records))

    monkeypatch.setattr(producer_cli, "world_events", world_events)
    return asked


def test_produce_streams_and_summarises(cli, stream, fake_world, read_stream):
    # One call in flight: moto's Kinesis backend is not thread-safe, and concurrent PutRecords on one
    # shard can overwrite each other's records in it (concurrency is covered with a stubbed client).
    res = cli("--stream-name", stream, "--num-records", "700", "--seed", "7", "--concurrency", "1", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["records_sent"] == 700 and summary["batches"] == 2 and summary["rejected"] == 0
    assert fake_world["seed"] == 7 and fake_world["num_records"] == 700
    ids = sorted(orjson.loads(d)["event_id"] for d in read_stream(stream))
    assert ids == [f"ev-{i:07d}" for i in range(700)]


def test_produce_table_summary_with_delay(cli, stream, fake_world):
    res = cli("--stream-name", stream, "-n", "30", "--batch-size", "10", "--delay", "0.01")
    assert res.exit_code == 0, res.output
    assert "records sent" in res.stdout and "30" in res.stdout


def test_produce_missing_stream_is_a_clean_error(cli, aws_endpoint, fake_world):
    res = cli("--stream-name", "no-such-stream-abc", "-n", "5")
    assert res.exit_code == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.output
    assert fake_world == {}  # checked before generating anything


def test_produce_bad_options_are_usage_errors(cli):
    assert cli("--stream-name", "s", "--batch-size", "501").exit_code == 2
    assert cli("--stream-name", "s", "--delay", "-1").exit_code == 2
    assert cli("--stream-name", "s", "--concurrency", "0").exit_code == 2
    assert cli("--stream-name", "s", "--seed", "-1").exit_code == 2
    assert cli("--stream-name", "s", "--start-date", "01/02/2026").exit_code == 2


def test_world_events_slices_the_generator(monkeypatch):
    import sys
    import types

    calls = {}

    def iter_search_events(*, seed, start_date, days, searches_per_day):
        calls.update(seed=seed, days=days, searches_per_day=searches_per_day)
        for i in range(days * searches_per_day):
            yield {"event_id": str(i)}

    fake = types.ModuleType("seed_infra.world")
    fake.iter_search_events = iter_search_events
    fake.validate_options = lambda **kw: None
    monkeypatch.setitem(sys.modules, "seed_infra.world", fake)
    import datetime as dt

    out = list(producer_cli.world_events(3, dt.date(2026, 1, 1), 250, 100))
    assert len(out) == 250 and calls == {"seed": 3, "days": 3, "searches_per_day": 100}


def test_cli_defaults_match_the_world_generator():
    import inspect

    from seed_infra.world import iter_search_events

    world = inspect.signature(iter_search_events).parameters
    cli = inspect.signature(producer_cli.produce).parameters
    assert cli["seed"].default.default == world["seed"].default
    assert cli["searches_per_day"].default.default == world["searches_per_day"].default
    assert cli["start_date"].default.default == world["start_date"].default.isoformat()


def test_produce_real_world_events(cli, stream, read_stream):
    res = cli("--stream-name", stream, "-n", "120", "--searches-per-day", "50", "--seed", "3", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["records_sent"] == 120
    docs = [orjson.loads(d) for d in read_stream(stream)]
    assert len({d["event_id"] for d in docs}) == 120
    assert {d["event_time"][:10] for d in docs} == {"2026-01-05", "2026-01-06", "2026-01-07"}
    from core.contract import SearchEvent

    for d in docs[:20]:
        SearchEvent.model_validate(d)
