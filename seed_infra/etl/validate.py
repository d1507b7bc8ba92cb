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

from core import contract
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
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# The rules are generated as Spark SQL text and handed to Spark as one expression: building the
# same tree through the Column API costs thousands of py4j calls (seconds per plan).


def sql_str(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fx_map_sql() -> str:
    """The contract's FX table as a Spark SQL map literal (units of currency per USD)."""
    return "map(" + ", ".join(f"{sql_str(c)}, CAST({r!r} AS DOUBLE)" for c, r in contract.FX_PER_USD.items()) + ")"


def fx_map() -> Column:
    return F.expr(fx_map_sql())


def price_usd(amount: Column, currency: Column) -> Column:
    """contract.to_usd in Spark: amount / units of currency per USD (null for unknown currencies)."""
    return amount / fx_map()[currency]


# (rank, condition SQL, problem SQL); sorted by rank, the first that holds wins
Check = tuple[int, str, str]


def check(reason: str, cond: str, detail: str) -> Check:
    prob = f"named_struct('rank', {REASONS[reason]}, 'reason', {sql_str(reason)}, 'detail', CAST({detail} AS STRING))"
    return (REASONS[reason], cond, prob)


def first_problem(checks: list[Check]) -> str:
    """CASE WHEN over the checks in rank order (it stops at the first that holds), else null."""
    ordered = sorted(checks, key=lambda c: c[0])  # stable: same-rank checks keep their order
    return "CASE " + " ".join(f"WHEN coalesce({c}, false) THEN {p}" for _, c, p in ordered) + " END"


def field_sql(base: str, leaf: Leaf) -> str:
    return ".".join([base, *(f"`{p}`" for p in leaf.path)])


def try_date_sql(raw: str) -> str:
    """``raw`` (yyyy-MM-dd) as a DATE, null when it is not one. Spark 3.5 (Glue 5) has no
    try_to_date; try_to_timestamp (3.5) never raises, whatever spark.sql.ansi.enabled says."""
    return f"to_date(try_to_timestamp({raw}, 'yyyy-MM-dd'))"


def valid_utf8_sql(value: str = "value") -> str:
    """``value`` is well-formed UTF-8. Spark 3.5 has no is_valid_utf8: a UTF-8 decode replaces every
    malformed sequence with U+FFFD, so the bytes survive the round trip exactly when they are valid."""
    binary = f"CAST({value} AS BINARY)"
    return f"(encode(decode({binary}, 'UTF-8'), 'UTF-8') = {binary})"


def make_valid_utf8_sql(value: str = "value") -> str:
    """``value`` with each malformed UTF-8 sequence replaced by U+FFFD (Spark 4's make_valid_utf8)."""
    return f"decode(CAST({value} AS BINARY), 'UTF-8')"


def is_json_sql(value: str = "value") -> str:
    """``value`` is parseable JSON of any shape (Spark 4's try_parse_json IS NOT NULL): the '$' path
    copies the whole document through Jackson, so any syntax error makes it null."""
    return f"get_json_object({value}, '$') IS NOT NULL"


def typed_sql(base: str, leaf: Leaf) -> str:
    """The field converted to its contract type (dates and datetimes parsed; null when unparseable)."""
    raw = field_sql(base, leaf)
    if leaf.kind == "date":
        return f"CASE WHEN {raw} RLIKE {sql_str(DATE_PATTERN)} THEN {try_date_sql(raw)} END"
    if leaf.kind == "datetime":
        # event_time is UTC (timestamp with zone); offer times are local wall-clock times (NTZ)
        return f"try_cast({raw} AS {'TIMESTAMP' if leaf.path == ('event_time',) else 'TIMESTAMP_NTZ'})"
    if leaf.default is not None:
        return f"coalesce({raw}, {leaf.default!r})"
    return raw


def leaf_checks(base: str, leaf: Leaf, label: str) -> list[Check]:
    """The checks of one field; ``label`` (SQL) names the field in details."""
    raw, val = field_sql(base, leaf), typed_sql(base, leaf)
    checks: list[Check] = []
    if leaf.kind in ("date", "datetime"):
        checks.append(check("wrong_type", f"{raw} IS NOT NULL AND ({val}) IS NULL", f"concat({label}, ' is not a {leaf.kind}: ', {raw})"))
    if leaf.required:
        checks.append(check("missing_field", f"{raw} IS NULL", label))
    bad = []
    if leaf.choices:
        bad.append(f"{val} NOT IN ({', '.join(sql_str(c) for c in leaf.choices)})")
    if leaf.kind == "int":
        bad.append(f"abs({val}) > {INT32_MAX}")
    if leaf.kind == "float":
        bad.append(f"(isnan({val}) OR abs({val}) = double('inf'))")
    for attr, op in (("ge", "<"), ("gt", "<="), ("le", ">"), ("lt", ">=")):
        bound = getattr(leaf, attr)
        if bound is not None:
            bad.append(f"{val} {op} {bound!r}")
    if leaf.min_len is not None:
        bad.append(f"char_length({val}) < {leaf.min_len}")
    if leaf.max_len is not None:
        bad.append(f"char_length({val}) > {leaf.max_len}")
    if bad:
        checks.append(check("invalid_value", " OR ".join(f"({b})" for b in bad), f"concat({label}, '=', CAST({val} AS STRING))"))
    return checks


def _leaf(all_leaves: list[Leaf], name: str) -> Leaf:
    return next(leaf for leaf in all_leaves if leaf.name == name)


def offer_problem_sql(o: str, i: str, departure_date: str) -> str:
    """The first problem of one offer ``o`` (index ``i``), or null. ``offers_gate_sql`` must flag
    every offer array in which this finds a problem (tests/etl/test_etl_offers_gate.py)."""

    def label(name: str) -> str:
        return f"concat('offers[', CAST({i} AS STRING), '].{name}')"

    checks: list[Check] = []
    for leaf in OFFER_LEAVES:
        checks += leaf_checks(o, leaf, label(leaf.name))
    amount, currency = f"{o}.price.amount", f"{o}.price.currency"
    fx = f"{fx_map_sql()}[{currency}]"
    usd = f"({amount} / {fx})"
    dep_time = typed_sql(o, _leaf(OFFER_LEAVES, "departure_time"))
    checks += [
        check("bad_price", f"{currency} IS NOT NULL AND {fx} IS NULL", f"concat({label('price.currency')}, ' unknown: ', {currency})"),
        check(
            "bad_price",
            f"{usd} < {contract.MIN_PRICE_USD!r} OR {usd} > {contract.MAX_PRICE_USD!r} OR isnan({usd})",
            f"concat({label('price')}, ' = ', CAST({amount} AS STRING), ' ', {currency})",
        ),
        check("departure_mismatch", f"to_date({dep_time}) != {departure_date}", f"concat({label('departure_time')}, ' not on query.departure_date')"),
    ]
    return first_problem(checks)


def event_problem_sql(e: str = "e", value: str = "value", origin_known: str = "org IS NOT NULL", destination_known: str = "dst IS NOT NULL") -> str:
    """The problem of a raw line (``value``) parsed as struct ``e``, or null when it may be curated."""
    q = f"{e}.query"
    dep = typed_sql(e, _leaf(EVENT_LEAVES, "query.departure_date"))
    ret = typed_sql(e, _leaf(EVENT_LEAVES, "query.return_date"))
    search_date = f"to_date({typed_sql(e, _leaf(EVENT_LEAVES, 'event_time'))})"
    corrupt = f"{e}.{CORRUPT_COLUMN}"
    size = f"octet_length({value})"
    n_offers = f"size({e}.offers)"
    max_bytes, max_offers, horizon = contract.MAX_RAW_RECORD_BYTES, contract.MAX_OFFERS_PER_SEARCH, contract.MAX_BOOKING_HORIZON_DAYS
    checks: list[Check] = [
        check("oversized", f"{size} > {max_bytes}", f"concat(CAST({size} AS STRING), ' bytes > {max_bytes}')"),
        check("invalid_utf8", f"NOT {valid_utf8_sql(value)}", "'line is not valid UTF-8'"),
        check("not_json", f"{corrupt} IS NOT NULL AND NOT ({is_json_sql(value)})", "'not parseable as JSON'"),
        check("wrong_type", f"{corrupt} IS NOT NULL", "'a field has the wrong type'"),
        check("too_many_offers", f"{n_offers} > {max_offers}", f"concat(CAST({n_offers} AS STRING), ' offers > {max_offers}')"),
        check("missing_field", f"{e}.offers IS NULL", "'offers'"),
        check("missing_field", f"{q}.trip_type = 'round_trip' AND {q}.return_date IS NULL", "'query.return_date (round_trip)'"),
        check(
            "unsupported_schema_version",
            f"coalesce({e}.schema_version, {contract.SCHEMA_VERSION}) != {contract.SCHEMA_VERSION}",
            f"concat('schema_version=', CAST({e}.schema_version AS STRING))",
        ),
        check("invalid_value", f"{q}.origin = {q}.destination", f"concat('origin == destination == ', {q}.origin)"),
        check("invalid_value", f"{q}.trip_type = 'one_way' AND {q}.return_date IS NOT NULL", "'query.return_date on a one_way trip'"),
        check("unknown_airport", f"{q}.origin IS NOT NULL AND NOT ({origin_known})", f"concat('query.origin=', {q}.origin)"),
        check("unknown_airport", f"{q}.destination IS NOT NULL AND NOT ({destination_known})", f"concat('query.destination=', {q}.destination)"),
        check("departure_before_search", f"{dep} < {search_date}", f"concat('departure ', CAST({dep} AS STRING), ' < search ', CAST({search_date} AS STRING))"),
        check("departure_too_far", f"datediff({dep}, {search_date}) > {horizon}", f"concat(CAST(datediff({dep}, {search_date}) AS STRING), ' days > {horizon}')"),
        check("return_before_departure", f"{ret} < {dep}", f"concat('return ', CAST({ret} AS STRING), ' < departure ', CAST({dep} AS STRING))"),
        check("duplicate_offer_id", f"size(array_distinct({e}.offers.offer_id)) < {n_offers}", "'an offer_id appears twice in the search'"),
    ]
    for leaf in EVENT_LEAVES:
        checks += leaf_checks(e, leaf, sql_str(leaf.name))
    return first_problem(checks)


def event_problem(e: str = "e", value: str = "value", origin_known: str = "org IS NOT NULL", destination_known: str = "dst IS NOT NULL") -> Column:
    """Event-level problem (offers are checked one row per offer: see ``offer_problem``)."""
    return F.expr(event_problem_sql(e, value, origin_known, destination_known))


def offer_problem(o: str = "o", i: str = "i", departure_date: str = "dep_date") -> Column:
    """Problem of one exploded offer. Checked on exploded rows rather than with array lambdas:
    Spark interprets higher-order functions row by row, while plain expressions are compiled."""
    return F.expr(offer_problem_sql(o, i, departure_date))


def usd_sql(offers: str = "e.offers") -> str:
    """Each offer's price in USD (``price_usd`` element by element), in offer order."""
    return f"transform({offers}, o -> o.price.amount / {fx_map_sql()}[o.price.currency])"


def _has_null_sql(arr: str) -> str:
    # ascending sort_array puts nulls first (compiled; array_compact would be a filter lambda)
    return f"(size({arr}) > 0 AND element_at(sort_array({arr}), 1) IS NULL)"


def offers_gate_sql(offers: str = "e.offers", departure_date: str = "dep_date", usd: str = "usd") -> str:
    """True when some offer of the line *may* have a problem: a superset of ``offer_problem_sql``.

    Spark 3.5 interprets higher-order functions (``transform``) row by row; the exact per-offer
    check is one large lambda. This gate asks the same questions of whole arrays with compiled
    functions (``e.offers.stops`` is the array of every offer's stops: its min and max bound them
    all; a null sorts first), so the lambda runs only on the rare lines that fail it. Field rules
    come from the contract (``OFFER_LEAVES``) like the exact checks; rules without an array form
    (lengths, dates, defaults) use a small lambda of their own. ``usd``: ``usd_sql`` of the line."""
    gates: list[str] = []
    for leaf in OFFER_LEAVES:
        raw = field_sql(offers, leaf)
        if leaf.kind in ("str", "int", "float", "datetime") and leaf.default is None:
            vals = f"try_cast({raw} AS ARRAY<{'TIMESTAMP' if leaf.path == ('event_time',) else 'TIMESTAMP_NTZ'}>)" \
                if leaf.kind == "datetime" else raw  # as typed_sql converts each element
            if leaf.required or leaf.kind == "datetime":  # missing, or not a datetime: null once typed
                gates.append(_has_null_sql(vals))
            if leaf.choices:
                gates.append(f"size(array_except({vals}, array({', '.join(sql_str(c) for c in leaf.choices)}))) > 0")
            if leaf.kind == "int":
                gates.append(f"array_max({vals}) > {INT32_MAX} OR array_min({vals}) < -{INT32_MAX}")
            if leaf.kind == "float":  # NaN sorts above every number, so array_max finds it
                gates.append(f"isnan(array_max({vals})) OR array_max({vals}) = double('inf') OR array_min({vals}) = -double('inf')")
            for attr, agg, op in (("ge", "array_min", "<"), ("gt", "array_min", "<="), ("le", "array_max", ">"), ("lt", "array_max", ">=")):
                if getattr(leaf, attr) is not None:
                    gates.append(f"{agg}({vals}) {op} {getattr(leaf, attr)!r}")
            lengths = [f"char_length(x) < {leaf.min_len}"] if leaf.min_len is not None else []
            lengths += [f"char_length(x) > {leaf.max_len}"] if leaf.max_len is not None else []
            if lengths:
                gates.append(f"exists({raw}, x -> {' OR '.join(lengths)})")
        else:  # no array form: this leaf's own checks, offer by offer
            conds = " OR ".join(f"coalesce({c}, false)" for _, c, _ in leaf_checks("o", leaf, "''"))
            if conds:
                gates.append(f"exists({offers}, o -> {conds})")
    known = ", ".join(sql_str(c) for c in contract.FX_PER_USD)
    dep_dates = f"CAST(try_cast({field_sql(offers, _leaf(OFFER_LEAVES, 'departure_time'))} AS ARRAY<TIMESTAMP_NTZ>) AS ARRAY<DATE>)"
    gates += [
        f"size(array_except({offers}.price.currency, array({known}))) > 0",  # bad_price: unknown currency
        f"array_min({usd}) < {contract.MIN_PRICE_USD!r} OR array_max({usd}) > {contract.MAX_PRICE_USD!r} OR isnan(array_max({usd}))",
        f"array_min({dep_dates}) != {departure_date} OR array_max({dep_dates}) != {departure_date}",  # departure_mismatch
    ]
    # null (an empty or null offers array, a null departure date) -> not proven clean: run the exact check
    return "coalesce(" + " OR ".join(f"({g})" for g in gates) + ", true)"


def offers_problem(offers: str = "e.offers", departure_date: str = "dep_date", usd: str | None = "usd") -> Column:
    """The worst problem among a line's offers (null when none): ``offer_problem`` on each element
    (index ``i`` from 0, as posexplode numbers them), least by array_min, which orders the problem
    structs as min() does. Evaluated element by element, but on the parsed row that is read anyway,
    so it costs no second pass over the offers and no join back to the lines. With ``usd`` (the
    column holding ``usd_sql`` of the line), only lines that ``offers_gate_sql`` flags run the
    (interpreted) element-by-element check; ``usd=None`` runs it on every line."""
    exact = f"array_min(transform({offers}, (o, i) -> {offer_problem_sql('o', 'i', departure_date)}))"
    if usd is None:
        return F.expr(exact)
    return F.expr(f"CASE WHEN {offers_gate_sql(offers, departure_date, usd)} THEN {exact} END")


def worse(a: Column, b: Column) -> Column:
    """The lower-ranked (more fundamental) of two nullable problems."""
    return F.when(a.isNull(), b).when(b.isNull(), a).when(b.rank < a.rank, b).otherwise(a)


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
