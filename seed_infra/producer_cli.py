"""Commands of this module for the `airfare` CLI (assembled in seed_infra/cli.py).

`airfare produce`: stream the world's flight searches to a Kinesis data stream.
Heavy imports (boto3, the world generator) happen inside the command so `airfare --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import typer

from core.cli_checks import date_callback, finite_callback

app = typer.Typer()


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def world_events(seed: int, start_date: dt.date, num_records: int, searches_per_day: int):
    """The first ``num_records`` searches of the world, generated lazily (never all in memory)."""
    import itertools

    from seed_infra.world import iter_search_events

    days = check_world(seed, start_date, num_records, searches_per_day)
    events = iter_search_events(seed=seed, start_date=start_date, days=days, searches_per_day=searches_per_day)
    return itertools.islice(events, num_records)


def check_world(seed: int, start_date: dt.date, num_records: int, searches_per_day: int) -> int:
    """The world's options for these records (ValueError: the user's mistake); returns its days."""
    from seed_infra.world import validate_options

    days = math.ceil(num_records / searches_per_day)  # the generator makes exactly searches_per_day a day
    validate_options(seed=seed, days=days, searches_per_day=searches_per_day, anomaly_rate=0.0, start_date=start_date)
    return days


@app.command("produce")
def produce(
    stream_name: str = typer.Option(..., "--stream-name", "-s", envvar="AIRFARE_STREAM_NAME", help="Kinesis data stream to write to."),
    num_records: int = typer.Option(10_000, "--num-records", "-n", min=1, help="Number of search events to send."),
    delay: float = typer.Option(0.0, "--delay", min=0.0, max=3600.0, callback=finite_callback,
                                help="Seconds to wait between PutRecords batches (demo-speed streaming)."),
    # Defaults are the world generator's (seed_infra.world.generator), not imported here to keep --help fast.
    seed: int = typer.Option(42, "--seed", min=0, max=2**64 - 1, help="World seed (0 to 2^64-1): the same seed streams the same searches."),
    start_date: dt.datetime = typer.Option("2026-01-05", "--start-date", formats=["%Y-%m-%d"], callback=date_callback,
                                           help="First search day (UTC), YYYY-MM-DD."),
    searches_per_day: int = typer.Option(1500, "--searches-per-day", min=1, max=100_000_000, help="World search volume per day."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, max=500, help="Records per PutRecords call (Kinesis allows 500)."),
    max_attempts: int = typer.Option(6, "--max-attempts", min=1, help="PutRecords attempts per batch before failed records are reported."),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, max=64, help="PutRecords calls in flight (more hides network latency; batches may then land out of order)."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON."),
) -> None:
    """Stream the world's flight searches to a Kinesis data stream with PutRecords.

    Records are JSON lines partitioned by route; failed records of a partial failure are retried with backoff, and anything not delivered is reported (exit code 1; 2 if the stream does not exist).
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from seed_infra.kinesis_producer import DeliveryError, KinesisProducer, ProducerConfig, stream_exists

    console = Console(stderr=True)
    try:  # the world's options first: a bad combination fails before any AWS call
        check_world(seed, start_date.date(), num_records, searches_per_day)
    except ValueError as exc:
        raise _fail(f"{exc} (--seed, --start-date, --num-records / --searches-per-day)", 2) from None
    try:
        if not stream_exists(stream_name):
            raise _fail(f"Kinesis stream {stream_name!r} does not exist (create it, e.g. with the seed stack).", 2)
        events = world_events(seed, start_date.date(), num_records, searches_per_day)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    except ClientError as exc:
        raise _fail(f"cannot reach stream {stream_name!r}: {exc}", 2) from None
    except BotoCoreError as exc:  # no credentials, no endpoint, ...
        raise _fail(f"AWS is not reachable: {exc}", 2) from None

    config = ProducerConfig(max_records=batch_size, max_attempts=max_attempts, delay_between_batches_s=delay, concurrency=concurrency)
    producer = KinesisProducer(stream_name, config=config)
    columns = (
        TextColumn("[bold]produce[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10} rec/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=as_json) as progress:
            task = progress.add_task("produce", total=num_records, rate="-")

            def on_batch(result, n):
                progress.update(task, advance=n, rate=f"{result.records_per_s:,.0f}")

            result = producer.send(events, on_batch=on_batch)
    except DeliveryError as exc:
        _print_summary(exc.result, as_json)
        raise _fail(str(exc), 1) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise _fail(f"Kinesis stream {stream_name!r} does not exist.", 2) from None
        raise _fail(f"PutRecords failed on stream {stream_name!r}: {exc}", 1) from None
    except BotoCoreError as exc:
        raise _fail(f"AWS is not reachable: {exc}", 2) from None

    _print_summary(result, as_json)
    if result.rejects:
        for rej in result.rejects[:10]:
            typer.secho(f"rejected #{rej.index} ({rej.event_id}): {rej.reason}", fg=typer.colors.YELLOW, err=True)
        raise _fail(f"{len(result.rejects)} event(s) were rejected before sending (see above).", 1)


def _print_summary(result, as_json: bool) -> None:
    """The delivery figures: a table for people, or JSON for scripts (on stdout)."""
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Kinesis producer: {result.stream_name}", show_header=False)
    rows = [
        ("records sent", f"{result.records_sent:,}"),
        ("bytes sent", f"{result.bytes_sent:,}"),
        ("batches / PutRecords calls", f"{result.batches:,} / {result.put_calls:,}"),
        ("records retried (calls)", f"{result.retried_records:,} ({result.retried_calls:,})"),
        ("records throttled", f"{result.throttled_records:,}"),
        ("rejected", f"{len(result.rejects):,}"),
        ("elapsed", f"{result.elapsed_s:,.2f} s"),
        ("throughput", f"{result.records_per_s:,.0f} records/s, {result.bytes_per_s / 1e6:,.2f} MB/s"),
        ("records per shard", ", ".join(f"{k}: {v:,}" for k, v in sorted(result.shards.items())) or "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
