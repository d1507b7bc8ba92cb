"""SQL over the curated data: DuckDB over local Parquet, or Athena through awswrangler.

Locally the curated folder's offers are exposed as a view ``offers`` (hive partitioning, so ``dt``
is a column) and, when there is any, the quarantine as ``quarantine``; on AWS the Glue catalog
table is queried in Athena as it is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core import catalog

DEFAULT_CURATED = catalog.Catalog().path("curated")


class QueryError(ValueError):
    """The query could not run (bad SQL, no data): a user mistake, reported without a traceback."""


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def connect(curated: Path | str = DEFAULT_CURATED):
    """An in-memory DuckDB connection with the views ``offers`` (and ``quarantine``) over ``curated``."""
    import duckdb

    curated = Path(curated)
    offers = curated / catalog.relative("offers", "curated")
    if not any(offers.glob("**/*.parquet")):
        raise QueryError(f"no curated offers under {offers} (run `airfare etl` first)")
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW offers AS SELECT * FROM read_parquet({_sql_str(offers / '**' / '*.parquet')}, hive_partitioning = true, hive_types_autocast = false)"
    )
    quarantine = curated / catalog.relative("quarantine", "curated")
    if any(quarantine.glob("**/*.jsonl")):
        con.execute(
            "CREATE VIEW quarantine AS SELECT * FROM read_json("
            f"{_sql_str(quarantine / '**' / '*.jsonl')}, format = 'newline_delimited', hive_partitioning = true, hive_types_autocast = false, "
            "columns = {reason: 'VARCHAR', detail: 'VARCHAR', source: 'VARCHAR', event_id: 'VARCHAR', raw: 'VARCHAR'})"
        )
    return con


def query_local(sql: str, curated: Path | str = DEFAULT_CURATED) -> pd.DataFrame:
    """Run ``sql`` with DuckDB against the local curated folder."""
    import duckdb

    con = connect(curated)
    try:
        return con.execute(sql).df()
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    finally:
        con.close()


def query_athena(sql: str, database: str, workgroup: str | None = None, s3_output: str | None = None) -> pd.DataFrame:
    """Run ``sql`` in Athena (awswrangler; honours AWS_ENDPOINT_URL through botocore)."""
    import awswrangler as wr
    import botocore.exceptions

    try:
        return wr.athena.read_sql_query(sql, database=database, workgroup=workgroup, s3_output=s3_output, ctas_approach=False)
    except (wr.exceptions.QueryFailed, wr.exceptions.InvalidArgumentValue, botocore.exceptions.ClientError) as exc:
        raise QueryError(str(exc)) from None
