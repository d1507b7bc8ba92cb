"""Deterministic, bounded samples of a stream of offers: bottom-k on a seeded hash of ``offer_id``.

Why this sampler:
- **bounded**: it never holds more than ``2 k`` rows, whatever the length of the stream;
- **deterministic and order-free**: the kept rows are the ``k`` with the smallest hash, so the same
  data gives the same sample whatever the batch sizes, file order or number of shards (the union of
  shard samples, cut again to ``k``, is the sample of the whole);
- **proportional**: the hash is independent of day and route, so every day and every route of a
  split contributes in proportion to its volume (a uniform sample without replacement). The sample
  is self-weighting: metrics on it estimate the metrics on the whole split, and the per-day row
  counts keep their shape, so data-quality checks on partition sizes still see a short day;
- **replays stay visible**: an offer delivered twice has the same id, hence the same hash, so it is
  either sampled in both places or in neither (data quality's duplicate checks keep working).

Preprocess samples each split separately (a day belongs to exactly one split), so no sampled row
can cross the time split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

HASH_COLUMN = "offer_id"
# Offers kept per split by Preprocess (pipeline parameters TrainSampleRows, ValidationSampleRows,
# TestSampleRows; 0 = every offer). Chosen from the learning curve: docs/scale.md.
DEFAULT_SAMPLE_ROWS = {"train": 800_000, "validation": 150_000, "test": 150_000}
# Flights whose whole snapshot history makes the demand table (pipeline parameter SampleFlights;
# 0 = every flight). The default world has ~254k flights with ~593k snapshots; 60k flights give
# ~140k snapshots, all of which the demand trainer keeps (max_train_rows 150k), and a test set of
# ~16k snapshots (accuracy's standard error ~0.25 points).
DEFAULT_SAMPLE_FLIGHTS = 60_000


def row_hashes(ids: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray, seed: int) -> np.ndarray:
    """A uint64 per id, fixed for a given ``seed`` (pandas' SipHash with a key derived from the seed)."""
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = ids.to_numpy(zero_copy_only=False)
    values = np.asarray(ids, dtype=object)
    key = f"{int(seed) & 0xFFFFFFFF:016d}"[-16:]  # hash_array needs a 16-character key
    return pd.util.hash_array(values, hash_key=key, categorize=False).astype(np.uint64)


class BottomK:
    """The ``k`` rows with the smallest hash among every table added (``k <= 0``: keep every row)."""

    def __init__(self, k: int, seed: int):
        self.k = int(k)
        self.seed = int(seed)
        self.seen = 0
        self._tables: list[pa.Table] = []
        self._hashes: list[np.ndarray] = []
        self._held = 0
        self._threshold: np.uint64 | None = None  # rows at or above it can never enter the sample

    def add(self, table: pa.Table) -> None:
        self.seen += table.num_rows
        if table.num_rows == 0:
            return
        h = row_hashes(table.column(HASH_COLUMN), self.seed)
        if self.k > 0 and self._threshold is not None:
            keep = h < self._threshold
            if not keep.all():
                idx = np.flatnonzero(keep)
                table, h = table.take(pa.array(idx)), h[idx]
        if table.num_rows == 0:
            return
        self._tables.append(table)
        self._hashes.append(h)
        self._held += table.num_rows
        if self.k > 0 and self._held > 2 * self.k:
            self._compact()

    def _compact(self) -> None:
        if not self._tables:
            return
        table = pa.concat_tables(self._tables, promote_options="none")
        h = np.concatenate(self._hashes)
        if self.k > 0 and len(h) > self.k:
            idx = np.argpartition(h, self.k - 1)[: self.k]
            table, h = table.take(pa.array(idx)), h[idx]
            self._threshold = h.max()
        self._tables, self._hashes, self._held = [table], [h], table.num_rows

    def result(self) -> pa.Table | None:
        """The sample, ordered by hash (a fixed order: the same rows in the same order every run)."""
        self._compact()
        if not self._tables:
            return None
        table, h = self._tables[0], self._hashes[0]
        return table.take(pa.array(np.argsort(h, kind="stable")))


class KeySample:
    """Every row of the ``k`` keys (e.g. flights) with the smallest hash, over a stream (``k <= 0``: every key).

    Rows are filtered on their key's hash *before* they are aggregated (:meth:`keep`): the
    threshold is the ``k``-th smallest key hash seen so far, which only falls, so a key of the
    final sample is never dropped and only the sampled keys' rows (plus a shrinking margin) are
    ever held. A key is kept whole or not at all, so per-key histories (a flight's snapshots over
    the days) stay complete and their features exact.
    """

    def __init__(self, k: int, seed: int, key: str = "flight_key"):
        self.k = int(k)
        self.seed = int(seed)
        self.key = key
        self._smallest = np.zeros(0, dtype=np.uint64)  # the k smallest distinct key hashes seen
        self._frames: list[pd.DataFrame] = []
        self._held = 0

    @property
    def threshold(self) -> np.uint64 | None:
        return self._smallest.max() if self.k > 0 and len(self._smallest) >= self.k else None

    def keep(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` whose key may still be in the sample (and learn its keys)."""
        if self.k <= 0 or table.num_rows == 0:
            return table
        h = row_hashes(table.column(self.key), self.seed)
        t = self.threshold
        fresh = np.unique(h if t is None else h[h <= t])
        self._smallest = np.union1d(self._smallest, fresh)[: self.k]  # union1d sorts
        t = self.threshold
        if t is None:
            return table
        keep = h <= t
        return table if keep.all() else table.take(pa.array(np.flatnonzero(keep)))

    def add(self, frame: pd.DataFrame) -> None:
        """Aggregated rows of sampled keys (keys past the threshold are dropped as it falls)."""
        if frame.empty:
            return
        self._frames.append(frame)
        self._held += len(frame)
        if self._held > 4 * max(self.k, 1) and self.k > 0:
            self._compact()

    def _compact(self) -> None:
        df = pd.concat(self._frames, ignore_index=True)
        t = self.threshold
        if t is not None:
            df = df[row_hashes(df[self.key], self.seed) <= t].reset_index(drop=True)
        self._frames, self._held = [df], len(df)

    def result(self) -> pd.DataFrame | None:
        if not self._frames:
            return None
        self._compact()
        return self._frames[0]
