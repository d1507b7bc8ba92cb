"""Raw search events -> curated offers, as plain PySpark functions (local Spark and Glue alike).

Flow: ``read_raw`` (text, so no line is ever lost) -> ``classify`` (parse with the contract's schema,
one problem or none per line) -> ``deduplicate`` (one copy per event_id, deterministically) ->
``build_offers`` (flatten, features, exact contract schema). ``run_etl`` in ``job.py`` wires them
together with the writes and the reconciliation.

Dates: a record belongs to the search date of its ``event_time`` (the curated ``dt``), or, when it
cannot be parsed, to the ``dt`` of the raw folder it came from (Firehose files by arrival time, so a
folder can hold any event date). Which files a run reads and which dates it rebuilds is decided in
``job.py`` (the processed-files manifest); ``classify`` only flags the lines of dates being rebuilt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core import contract
from seed_infra.etl import lookups
from seed_infra.etl.schema import CURATED_SPARK_TYPES, spark_schema
from seed_infra.etl.validate import (CORRUPT_COLUMN, event_problem, explain_invalid, make_valid_utf8_sql, offers_problem, price_usd,
                                      try_date_sql, usd_sql, valid_utf8_sql, worse)

RAW_DT_PATTERN = r"dt=(\d{4}-\d{2}-\d{2})"
QUARANTINE_RAW_MAX_CHARS = 8192  # oversized lines are kept as a prefix only
UNKNOWN_DT = "unknown"


def read_raw(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """Raw lines as text with their source file and raw ``dt`` folder; blank lines flagged, not dropped."""
    # ignoreCorruptFiles: a file that fails to decompress ends its read instead of the job's;
    # job.unreadable_gzip_files finds such files (bytes read vs gzip trailer) and quarantines them.
    lines = spark.read.option("recursiveFileLookup", "true").option("lineSep", "\n").option("ignoreCorruptFiles", "true").text(list(paths))
    source = F.col("_metadata.file_path")
    raw_dt = F.regexp_extract(source, RAW_DT_PATTERN, 1)
    return lines.select(
        F.col("value"),
        source.alias("source"),
        F.when(raw_dt != "", raw_dt).alias("raw_dt"),
        (F.trim(F.col("value")) == "").alias("is_blank"),
    )


_AIRPORTS: dict[int, DataFrame] = {}


def _airports_df(spark: SparkSession) -> DataFrame:
    """The airports table as a DataFrame, built once per session (7.9k rows through Arrow)."""
    key = id(spark)
    if key not in _AIRPORTS:
        import pandas as pd

        pdf = pd.DataFrame(
            [(code, lat, lon, country) for code, (lat, lon, country) in lookups.airports().items()],
            columns=["iata", "lat", "lon", "country"],
        )
        _AIRPORTS[key] = spark.createDataFrame(pdf, "iata string, lat double, lon double, country string").cache()
    return _AIRPORTS[key]


def _has_nul() -> Column:
    """The raw line holds a NUL byte. ``contains`` compares bytes (fast); ``instr`` steps by UTF-8
    character and so can step over a NUL that follows a broken lead byte. Only an oversized line
    can be invalid UTF-8 without being quarantined as invalid_utf8 (which is bad encoding anyway),
    so it alone keeps instr's reading."""
    return F.when(F.col("problem.reason") == "oversized", F.instr("value", "\u0000") > 0).otherwise(F.col("value").contains("\u0000"))


def classify(spark: SparkSession, lines: DataFrame, dates: Sequence[str] | None = None, id_offset: int = 0) -> tuple[DataFrame, DataFrame]:
    """One row per line: the parsed event ``e``, its ``problem`` (null = valid) and scope.

    Columns: line_id, source, raw_dt, is_blank, e, org, dst (airport structs), problem, dep_date,
    event_id, line_hash, record_dt, n_offers, usd (each offer's USD price), value (kept for quarantined lines only), in_scope
    (record_dt is one of ``dates``; every line when ``dates`` is None), bad_encoding (not UTF-8
    text: invalid UTF-8 or NUL bytes, as a UTF-16 file gives). Blank lines are kept, flagged, so one
    scan counts them too. ``id_offset`` keeps line_id unique when two classified frames are unioned.

    Every check, the per-offer ones included, is evaluated in the one projection that is persisted:
    the raw text is parsed once, and every later step (stats, quarantine, curated offers) reads the
    cache. Returns (classified, cached), the same persisted frame: unpersist it when done.
    """
    airports = F.broadcast(_airports_df(spark))
    size_ok = F.octet_length("value") <= contract.MAX_RAW_RECORD_BYTES
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN, "allowNonNumericNumbers": "false"}
    parse = F.when(size_ok & F.expr(valid_utf8_sql("value")), F.from_json("value", spark_schema(), options))
    df = lines.select("value", "source", "raw_dt", "is_blank", F.when(~F.col("is_blank"), parse).alias("e"))
    org = airports.select(F.col("iata").alias("_o"), F.struct("lat", "lon", "country").alias("org"))
    dst = airports.select(F.col("iata").alias("_d"), F.struct("lat", "lon", "country").alias("dst"))
    df = df.join(org, F.col("e.query.origin") == F.col("_o"), "left").join(dst, F.col("e.query.destination") == F.col("_d"), "left")
    event_time = F.expr("try_cast(e.event_time AS TIMESTAMP)")
    record_dt = F.coalesce(F.date_format(event_time, "yyyy-MM-dd"), F.col("raw_dt"), F.lit(UNKNOWN_DT))
    checked = df.select(
        "value",
        "source",
        "raw_dt",
        "is_blank",
        "e",
        "org",
        "dst",
        F.when(~F.col("is_blank"), event_problem()).alias("event_problem"),
        F.expr(try_date_sql("e.query.departure_date")).alias("dep_date"),
        F.expr(usd_sql("e.offers")).alias("usd"),
    )
    # The worst offer problem of the line, over the (already materialized) offers array: its own
    # projection, as worse() reads each side several times. The element-by-element check runs only
    # where the compiled whole-array gate flags the line (validate.offers_gate_sql).
    checked = checked.select("*", offers_problem(usd="usd").alias("offer_problem"))
    problem = worse(F.col("event_problem"), F.col("offer_problem"))
    base = checked.select(
        (F.monotonically_increasing_id() + F.lit(id_offset)).alias("line_id"),
        "source",
        "raw_dt",
        "is_blank",
        "e",
        "org",
        "dst",
        problem.alias("problem"),
        "dep_date",
        F.col("e.event_id").alias("event_id"),
        F.xxhash64("value").alias("line_hash"),
        record_dt.alias("record_dt"),
        F.size("e.offers").alias("n_offers"),
        "usd",
        F.col("value"),
    )
    in_scope = F.lit(True) if not dates else F.col("record_dt").isin(*dates)
    # The raw line is only needed again to quarantine it: valid lines do not carry it into the cache.
    cached = base.select(
        *[c for c in base.columns if c != "value"],
        F.when(F.col("problem").isNotNull(), F.col("value")).alias("value"),
        in_scope.alias("in_scope"),
        (F.octet_length("value") + 1).alias("line_bytes"),
        F.coalesce((F.col("problem.reason") == "invalid_utf8") | _has_nul(), F.lit(False)).alias("bad_encoding"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    return cached, cached


def quarantine_rows(classified: DataFrame) -> DataFrame:
    """The quarantined in-scope records as written to quarantine/: reason, detail, source, raw, dt."""
    bad = classified.filter(~F.col("is_blank") & F.col("in_scope") & F.col("problem").isNotNull())
    reason = F.col("problem.reason")
    explain = F.udf(explain_invalid, T.StringType())
    detail = F.coalesce(explain(F.when(reason == "wrong_type", F.col("value"))), F.col("problem.detail"))
    oversized = reason == "oversized"
    raw = F.when(reason == "invalid_utf8", F.expr(make_valid_utf8_sql("value"))).when(oversized, F.substring("value", 1, QUARANTINE_RAW_MAX_CHARS)).otherwise(F.col("value"))
    return bad.select(
        reason.alias("reason"),
        detail.alias("detail"),
        F.col("source"),
        F.col("event_id"),
        raw.alias("raw"),
        oversized.alias("raw_truncated"),
        F.when(reason == "invalid_utf8", F.base64(F.col("value").cast("binary"))).alias("raw_base64"),
        F.col("raw_dt"),
        F.col("record_dt").alias(contract.PARTITION_COLUMN),
    )


def deduplicate(valid: DataFrame, has_duplicates: bool = True) -> DataFrame:
    """One row per event_id. Kinesis is at least once, so copies are normally identical; when they
    differ, the copy with the smallest line hash wins, so reruns choose the same one.

    Only the (few) duplicated event_ids travel: a narrow aggregation finds the line to keep for
    each, and a broadcast join drops the other copies, so the events themselves are not shuffled.
    With ``has_duplicates=False`` (the run's statistics found none) the rows pass as they are."""
    if not has_duplicates:
        return valid
    keep = (
        valid.groupBy(F.col("event_id").alias("_dup_event_id"))
        .agg(F.count("*").alias("_copies"), F.min_by("line_id", "line_hash").alias("_keep_line"))
        .filter(F.col("_copies") > 1)
        .drop("_copies")
    )
    joined = valid.join(F.broadcast(keep), F.col("event_id") == F.col("_dup_event_id"), "left")
    return joined.filter(F.col("_keep_line").isNull() | (F.col("line_id") == F.col("_keep_line"))).drop("_dup_event_id", "_keep_line")


def _median(sorted_arr: Column) -> Column:
    n = F.size(sorted_arr)
    mid_hi = F.try_element_at(sorted_arr, (F.floor(n / 2) + 1).cast("int"))
    mid_lo = F.try_element_at(sorted_arr, F.floor((n + 1) / 2).cast("int"))
    return F.when(n > 0, (mid_lo + mid_hi) / 2)


def _weekday(d: Column) -> Column:
    return F.weekday(d).cast("short")  # Monday=0


def _distance_km(a: Column, b: Column) -> Column:
    lat1, lat2 = F.radians(a.lat), F.radians(b.lat)
    dlat, dlon = lat2 - lat1, F.radians(b.lon - a.lon)
    h = F.pow(F.sin(dlat / 2), 2) + F.cos(lat1) * F.cos(lat2) * F.pow(F.sin(dlon / 2), 2)
    return 2 * lookups.EARTH_RADIUS_KM * F.asin(F.sqrt(h))


def holiday_table(spark: SparkSession, countries: Sequence[str], start: dt.date, end: dt.date) -> DataFrame:
    rows = lookups.holiday_distance_rows(list(countries), start, end)
    return spark.createDataFrame(rows, "h_country string, h_date date, days_to_nearest_holiday int")


def build_offers(spark: SparkSession, events: DataFrame, run_id: str, holidays_df: DataFrame | None = None,
                 broadcast_route_dates: bool = True) -> DataFrame:
    """Deduplicated valid events -> one row per offer with every curated column, in contract order.

    No shuffle of the offers themselves: the in-search features come from each event's own offers
    array (sorted once per event), and the per-route figures are small aggregates broadcast back.
    ``broadcast_route_dates=False`` lets Spark choose the join for the (route, departure date, day)
    counts, which grow with the number of events. ``events``: event_id, e, org, dst, and the
    ``usd`` array that ``classify`` computed (computed here when absent)."""
    if "usd" not in events.columns:
        events = events.withColumn("usd", F.expr(usd_sql("e.offers")))
    e = F.col("e")
    q = e.query
    event_time = F.expr("try_cast(e.event_time AS TIMESTAMP)")
    search_date = F.to_date(event_time)
    dep = F.expr(try_date_sql("e.query.departure_date"))
    ret = F.expr(try_date_sql("e.query.return_date"))
    # (price_usd, airline) of every offer of the search, sorted by price (then airline): ranks and
    # competitor prices read it. Zipped from the USD array classify computed: no lambda per offer.
    peers = F.sort_array(F.arrays_zip(F.col("usd").alias("p"), e.offers.airline.alias("airline")))
    ev = events.select(
        "event_id",
        event_time.alias("event_time"),
        e.session.alias("session"),
        q.alias("q"),
        dep.alias("departure_date"),
        ret.alias("return_date"),
        F.concat_ws("-", q.origin, q.destination).alias("route"),
        q.cabin.alias("cabin"),
        search_date.alias("search_date"),
        F.date_format(search_date, "yyyy-MM-dd").alias("dt"),
        _distance_km(F.col("org"), F.col("dst")).alias("distance_km"),
        (F.col("org.country") == F.col("dst.country")).alias("is_domestic"),
        F.col("org.country").alias("origin_country"),
        F.size(e.offers).alias("num_offers_in_search"),
        F.size(F.array_distinct(e.offers.airline)).alias("num_airlines_in_search"),
        e.offers.alias("offers"),
        "usd",
        peers.alias("_peers"),
    )
    route_date_day = ev.groupBy("route", "departure_date", "dt").agg(F.count("*").alias("route_date_searches_day"))
    # The day's searches of a route = the sum over its departure dates: the same aggregate's
    # exchange, not another scan of the events.
    route_day = route_date_day.groupBy("route", "dt").agg(F.sum("route_date_searches_day").cast("long").alias("route_searches_day"))
    cabin_median = (
        ev.select("route", "cabin", "dt", F.explode("usd").alias("p"))
        .groupBy("route", "cabin", "dt")
        .agg(F.median("p").alias("route_cabin_median_price_usd"))
    )
    # Competitors = the other airlines' offers, in price order: the same array for every offer of an
    # airline, so it is built once per (search, airline), a few per search, rather than per offer.
    competitors = F.expr("map_from_entries(transform(array_distinct(offers.airline), "
                         "a -> struct(a, filter(_peers, x -> x.airline != a).p)))")
    # (its own projection: beside the explode it would be evaluated once per offer)
    flat = ev.select("*", competitors.alias("_competitors")).select("*", F.explode("offers").alias("o")).drop("offers")
    flat = flat.withColumn("price_usd", price_usd(F.col("o.price.amount"), F.col("o.price.currency")))
    # rank() by price = 1 + offers strictly cheaper = first position of the price among the sorted prices.
    flat = flat.withColumn("price_rank_in_search", F.expr("array_position(_peers.p, price_usd)")).withColumn(
        "_others", F.element_at("_competitors", F.col("o.airline"))
    )
    flat = flat.withColumn("competitor_min_price_usd", F.try_element_at("_others", F.lit(1))).withColumn(
        "competitor_median_price_usd", _median(F.col("_others"))
    )
    route_dates = F.broadcast(route_date_day) if broadcast_route_dates else route_date_day
    flat = (
        flat.join(F.broadcast(route_day), ["route", "dt"], "left")
        .join(route_dates, ["route", "departure_date", "dt"], "left")
        .join(F.broadcast(cabin_median), ["route", "cabin", "dt"], "left")
    )
    if holidays_df is not None:
        flat = flat.join(
            F.broadcast(holidays_df),
            (F.col("origin_country") == F.col("h_country")) & (F.col("departure_date") == F.col("h_date")),
            "left",
        )
    else:
        flat = flat.withColumn("days_to_nearest_holiday", F.lit(None).cast("int"))
    o = F.col("o")
    pax = F.col("q.passengers")
    adults, children, infants = pax.adults, F.coalesce(pax.children, F.lit(0)), F.coalesce(pax.infants, F.lit(0))
    dep_time = F.expr("try_cast(o.departure_time AS TIMESTAMP_NTZ)")
    dep_hour = F.hour(dep_time)
    price = F.col("price_usd")
    cols: dict[str, Column] = {
        "offer_id": o.offer_id,
        "event_id": F.col("event_id"),
        "event_time": F.col("event_time"),
        "session_id": F.col("session.session_id"),
        "user_id": F.col("session.user_id"),
        "user_country": F.col("session.country"),
        "device": F.col("session.device"),
        "loyalty_tier": F.col("session.loyalty_tier"),
        "origin": F.col("q.origin"),
        "destination": F.col("q.destination"),
        "route": F.col("route"),
        "departure_date": F.col("departure_date"),
        "return_date": F.col("return_date"),
        "trip_type": F.col("q.trip_type"),
        "cabin": F.col("cabin"),
        "adults": adults,
        "children": children,
        "infants": infants,
        "passengers": adults + children + infants,
        "airline": o.airline,
        "flight_number": o.flight_number,
        "flight_key": F.concat_ws("-", o.airline, o.flight_number, F.date_format("departure_date", "yyyy-MM-dd")),
        "departure_time": dep_time,
        "arrival_time": F.expr("try_cast(o.arrival_time AS TIMESTAMP_NTZ)"),
        "stops": o.stops,
        "duration_minutes": o.duration_minutes,
        "fare_class": o.fare_class,
        "seats_left": o.seats_left,
        "price_amount": o.price.amount,
        "currency": o.price.currency,
        "price_usd": price,
        "distance_km": F.col("distance_km"),
        "is_domestic": F.col("is_domestic"),
        "days_to_departure": F.datediff("departure_date", "search_date"),
        "length_of_stay": F.coalesce(F.datediff("return_date", "departure_date"), F.lit(0)),
        "search_hour": F.hour("event_time"),
        "search_weekday": _weekday(F.col("search_date")),
        "departure_weekday": _weekday(F.col("departure_date")),
        "departure_month": F.month("departure_date"),
        "departure_hour": dep_hour,
        "is_weekend_departure": _weekday(F.col("departure_date")).isin(4, 6),
        "days_to_nearest_holiday": F.col("days_to_nearest_holiday"),
        "is_holiday_window": F.coalesce(F.col("days_to_nearest_holiday") <= lookups.HOLIDAY_WINDOW_DAYS, F.lit(False)),
        "is_nonstop": o.stops == 0,
        "is_red_eye": (dep_hour >= 21) | (dep_hour < 6),
        "num_offers_in_search": F.col("num_offers_in_search"),
        "num_airlines_in_search": F.col("num_airlines_in_search"),
        "price_rank_in_search": F.col("price_rank_in_search"),
        "competitor_min_price_usd": F.col("competitor_min_price_usd"),
        "competitor_median_price_usd": F.col("competitor_median_price_usd"),
        "route_searches_day": F.col("route_searches_day"),
        "route_date_searches_day": F.col("route_date_searches_day"),
        "route_cabin_median_price_usd": F.col("route_cabin_median_price_usd"),
        "price_vs_route_median": price / F.col("route_cabin_median_price_usd"),
        "price_vs_competitor_median": price / F.col("competitor_median_price_usd"),
        "etl_run_id": F.lit(run_id),
        "dt": F.col("dt"),
    }
    missing = set(contract.CURATED_COLUMNS) ^ set(cols)
    if missing:  # the contract changed: fail at plan time, not with a half-written table
        raise RuntimeError(f"curated columns out of step with the contract: {sorted(missing)}")
    out = flat.select([cols[name].cast(CURATED_SPARK_TYPES[name]).alias(name) for name in contract.CURATED_COLUMNS])
    # Every contract column is nullable; Spark would write provably non-null ones as REQUIRED.
    # A condition on the (nullable) event_id keeps the value and makes the optimizer keep it nullable.
    nullable = F.col("event_id").isNotNull()
    fixed = [F.when(nullable, F.col(f.name)).alias(f.name) if not f.nullable else F.col(f.name) for f in out.schema.fields]
    return out.select(fixed)


__all__ = ["read_raw", "classify", "quarantine_rows", "deduplicate", "build_offers", "holiday_table"]
