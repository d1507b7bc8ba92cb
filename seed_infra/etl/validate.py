"""Record validation as Spark expressions: every raw line gets either no problem or exactly one.

A problem is a struct ``(rank, reason, detail)``; when a line breaks several rules the lowest
rank wins, so a truncated line is ``not_json`` rather than a cascade of missing fields. The rules on
individual fields (required, enums, ranges, lengths) come from the pydantic contract through
``schema.leaves``; the cross-field rules (airports, prices, dates) are written here.

Policy: an event with one bad offer is quarantined whole. A partial search would bias the in-search
features (rank, competitor prices, offer counts) of the offers that remain.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pydantic import ValidationError

from processing import contract
from seed_infra.etl.schema import CORRUPT_COLUMN, EVENT_LEAVES, OFFER_LEAVES, Leaf

# rank: lower wins when a record breaks several rules
REASONS: dict[str, int] = {
    "oversized": 10,
    "invalid_utf8": 20,
    "not_json": 30,
    "wrong_type": 40,
    "too_many_offers": 45,
    "missing_field": 50,
    "unsupported_schema_version": 55,
    "invalid_value": 60,
    "unknown_airport": 70,
    "bad_price": 80,
    "departure_before_search": 100,
    "departure_too_far": 101,
    "return_before_departure": 102,
    "duplicate_offer_id": 110,
    "departure_mismatch": 120,
}

INT32_MAX = 2**31 - 1
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def fx_map() -> Column:
    """The contract's FX table as a Spark map literal (units of currency per USD)."""
    return F.create_map(*[x for cur, rate in contract.FX_PER_USD.items() for x in (F.lit(cur), F.lit(rate))])


def problem(reason: str, detail: Column) -> Column:
    return F.struct(F.lit(REASONS[reason]).alias("rank"), F.lit(reason).alias("reason"), detail.cast("string").alias("detail"))


# (rank, condition, problem); kept as triples so that checks sort by rank
Check = tuple[int, Column, Column]


def check(reason: str, cond: Column, detail: Column) -> Check:
    return (REASONS[reason], cond, problem(reason, detail))


def _get(base: Column, path: tuple[str, ...]) -> Column:
    for p in path:
        base = base.getField(p)
    return base


def typed(base: Column, leaf: Leaf) -> Column:
    """The field converted to its contract type (dates and datetimes parsed; null when unparseable)."""
    raw = _get(base, leaf.path)
    if leaf.kind == "date":
        return F.when(raw.rlike(DATE_PATTERN), F.try_to_date(raw, "yyyy-MM-dd"))
    if leaf.kind == "datetime":
        # event_time is UTC (timestamp with zone); offer times are local wall-clock times (NTZ)
        return raw.try_cast("timestamp" if leaf.path == ("event_time",) else "timestamp_ntz")
    if leaf.default is not None:
        return F.coalesce(raw, F.lit(leaf.default))
    return raw


def leaf_checks(base: Column, leaf: Leaf, label: Column) -> list[Check]:
    """The checks of one field; ``label`` names the field in details."""
    raw = _get(base, leaf.path)
    val = typed(base, leaf)
    checks: list[Check] = []
    if leaf.kind in ("date", "datetime"):
        checks.append(check("wrong_type", raw.isNotNull() & val.isNull(), F.concat(label, F.lit(f" is not a {leaf.kind}: "), raw)))
    if leaf.required:
        checks.append(check("missing_field", raw.isNull(), label))
    bad = []
    if leaf.choices:
        bad.append(~val.isin(*leaf.choices))
    if leaf.kind == "int":
        bad.append(F.abs(val) > INT32_MAX)
    if leaf.kind == "float":
        bad.append(F.isnan(val) | (F.abs(val) == float("inf")))
    for attr, op in (("ge", "__lt__"), ("gt", "__le__"), ("le", "__gt__"), ("lt", "__ge__")):
        bound = getattr(leaf, attr)
        if bound is not None:
            bad.append(getattr(val, op)(F.lit(bound)))
    if leaf.min_len is not None:
        bad.append(F.char_length(val) < leaf.min_len)
    if leaf.max_len is not None:
        bad.append(F.char_length(val) > leaf.max_len)
    for b in bad:
        checks.append(check("invalid_value", val.isNotNull() & b, F.concat(label, F.lit("="), val.cast("string"))))
    return checks


def first_problem(checks: list[Check]) -> Column:
    """The problem of the lowest-ranked check that holds, else null (CASE WHEN stops at the first)."""
    ordered = sorted(checks, key=lambda c: c[0])  # stable: same-rank checks keep their order
    _, cond, prob = ordered[0]
    expr = F.when(F.coalesce(cond, F.lit(False)), prob)
    for _, cond, prob in ordered[1:]:
        expr = expr.when(F.coalesce(cond, F.lit(False)), prob)
    return expr


def price_usd(amount: Column, currency: Column) -> Column:
    """contract.to_usd in Spark: amount / units of currency per USD (null for unknown currencies)."""
    return amount / fx_map()[currency]


def _leaf(all_leaves: list[Leaf], name: str) -> Leaf:
    return next(leaf for leaf in all_leaves if leaf.name == name)


def _offer_label(i: Column, name: str) -> Column:
    return F.concat(F.lit("offers["), i.cast("string"), F.lit(f"].{name}"))


def offer_problem(o: Column, i: Column, departure_date: Column) -> Column:
    """The first problem of one offer (index ``i``), or null."""
    checks: list[Check] = []
    for leaf in OFFER_LEAVES:
        checks += leaf_checks(o, leaf, _offer_label(i, leaf.name))
    amount, currency = o.price.amount, o.price.currency
    usd = price_usd(amount, currency)
    dep_time = typed(o, _leaf(OFFER_LEAVES, "departure_time"))
    checks += [
        check("bad_price", currency.isNotNull() & fx_map()[currency].isNull(), F.concat(_offer_label(i, "price.currency"), F.lit(" unknown: "), currency)),
        check(
            "bad_price",
            (usd < contract.MIN_PRICE_USD) | (usd > contract.MAX_PRICE_USD) | F.isnan(usd),
            F.concat(_offer_label(i, "price"), F.lit(" = "), amount.cast("string"), F.lit(" "), currency),
        ),
        check("departure_mismatch", F.to_date(dep_time) != departure_date, F.concat(_offer_label(i, "departure_time"), F.lit(" not on query.departure_date"))),
    ]
    return first_problem(checks)


def event_problem(e: Column, value: Column, origin_known: Column, destination_known: Column) -> Column:
    """The problem of a raw line (``value``) parsed as ``e``, or null when it may be curated."""
    size = F.octet_length(value)
    q = e.query
    dep = typed(e, _leaf(EVENT_LEAVES, "query.departure_date"))
    ret = typed(e, _leaf(EVENT_LEAVES, "query.return_date"))
    search_date = F.to_date(typed(e, _leaf(EVENT_LEAVES, "event_time")))
    corrupt = e.getField(CORRUPT_COLUMN)
    checks: list[Check] = [
        check("oversized", size > contract.MAX_RAW_RECORD_BYTES, F.concat(size.cast("string"), F.lit(f" bytes > {contract.MAX_RAW_RECORD_BYTES}"))),
        check("invalid_utf8", ~F.is_valid_utf8(value), F.lit("line is not valid UTF-8")),
        check("not_json", corrupt.isNotNull() & F.try_parse_json(value).isNull(), F.lit("not parseable as JSON")),
        check("wrong_type", corrupt.isNotNull(), F.lit("a field has the wrong type")),
        check(
            "too_many_offers",
            F.size(e.offers) > contract.MAX_OFFERS_PER_SEARCH,
            F.concat(F.size(e.offers).cast("string"), F.lit(f" offers > {contract.MAX_OFFERS_PER_SEARCH}")),
        ),
        check("missing_field", e.offers.isNull(), F.lit("offers")),
        check("missing_field", (q.trip_type == "round_trip") & q.return_date.isNull(), F.lit("query.return_date (round_trip)")),
        check(
            "unsupported_schema_version",
            F.coalesce(e.schema_version, F.lit(contract.SCHEMA_VERSION)) != contract.SCHEMA_VERSION,
            F.concat(F.lit("schema_version="), e.schema_version.cast("string")),
        ),
        check("invalid_value", q.origin == q.destination, F.concat(F.lit("origin == destination == "), q.origin)),
        check("invalid_value", (q.trip_type == "one_way") & q.return_date.isNotNull(), F.lit("query.return_date on a one_way trip")),
        check("unknown_airport", q.origin.isNotNull() & ~origin_known, F.concat(F.lit("query.origin="), q.origin)),
        check("unknown_airport", q.destination.isNotNull() & ~destination_known, F.concat(F.lit("query.destination="), q.destination)),
        check(
            "departure_before_search",
            dep < search_date,
            F.concat(F.lit("departure "), dep.cast("string"), F.lit(" < search "), search_date.cast("string")),
        ),
        check(
            "departure_too_far",
            F.datediff(dep, search_date) > contract.MAX_BOOKING_HORIZON_DAYS,
            F.concat(F.datediff(dep, search_date).cast("string"), F.lit(f" days > {contract.MAX_BOOKING_HORIZON_DAYS}")),
        ),
        check("return_before_departure", ret < dep, F.concat(F.lit("return "), ret.cast("string"), F.lit(" < departure "), dep.cast("string"))),
        check(
            "duplicate_offer_id",
            F.size(F.array_distinct(e.offers.offer_id)) < F.size(e.offers),
            F.lit("an offer_id appears twice in the search"),
        ),
    ]
    for leaf in EVENT_LEAVES:
        checks += leaf_checks(e, leaf, F.lit(leaf.name))
    event_level = first_problem(checks)
    offers = F.coalesce(e.offers, F.array())
    per_offer = F.filter(F.transform(offers, lambda o, i: offer_problem(o, i, dep)), lambda p: p.isNotNull())
    return F.array_min(F.filter(F.concat(F.array(event_level), per_offer), lambda p: p.isNotNull()))


def explain_invalid(line: str | None) -> str | None:
    """A readable reason why pydantic rejects a raw line (used for the rare wrong_type records)."""
    if line is None:
        return None
    try:
        contract.SearchEvent.model_validate_json(line)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<record>"
        return f"{loc}: {err['msg']} (got {str(err.get('input'))[:80]!r})"
    except ValueError as exc:  # pragma: no cover - pydantic wraps almost everything
        return str(exc)[:200]
    return "Spark's JSON parser rejected a field type that pydantic coerces"
