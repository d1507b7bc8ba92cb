"""Reading a split's tables: ``<folder>/<name>.parquet`` or a folder of Parquet files.

Shared by the Evaluate step (the test split) and Model Monitor's baselines (the train split).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds


def read_table(folder: str | Path, name: str) -> pd.DataFrame:
    """``<folder>/<name>.parquet`` or a folder ``<folder>/<name>/`` of Parquet files."""
    folder = Path(folder)
    for candidate in (folder / f"{name}.parquet", folder / name):
        if candidate.exists():
            return ds.dataset(candidate, format="parquet").to_table().to_pandas()
    raise FileNotFoundError(f"no {name}.parquet in {folder}")
