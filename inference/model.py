"""Finding and loading the model a serving container was given.

SageMaker unpacks the model package's ``model.tar.gz`` into ``/opt/ml/model`` before it starts the
container with ``serve``; the local executor and tests may instead hand over the tarball itself
(or a folder holding it). All three lead to a folder with ``model_meta.json`` that
:func:`core.model_io.load` reads, so serving uses the very loader (and feature code) that
evaluation used.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from core import sm_paths
from core import model_io
from core.pipeline_contract import MODEL_META_FILE

ARCHIVE_NAME = "model.tar.gz"


class ModelNotFound(RuntimeError):
    """No loadable model at the given location (the message says what was looked for)."""


def _extract(archive: Path) -> Path:
    """Unpack ``archive`` into a fresh temporary folder (``/opt/ml/model`` may be read-only)."""
    target = Path(tempfile.mkdtemp(prefix="airfare-model-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, filter="data")  # refuses absolute paths, '..' and device files
    except (tarfile.TarError, OSError) as e:
        raise ModelNotFound(f"cannot unpack {archive}: {e}") from e
    return target


def _meta_folder(root: Path) -> Path | None:
    """``root`` if it holds ``model_meta.json``, else its only sub-folder that does (a tar with a top folder)."""
    if (root / MODEL_META_FILE).is_file():
        return root
    nested = [p.parent for p in root.glob(f"*/{MODEL_META_FILE}")]
    return nested[0] if len(nested) == 1 else None


def resolve_model_dir(path: str | Path | None = None) -> Path:
    """The folder with ``model_meta.json`` for ``path`` (default: SageMaker's model dir).

    ``path`` may be that folder, a folder holding ``model.tar.gz``, or the tarball itself.
    """
    root = Path(path) if path is not None else sm_paths.model_dir()
    if root.is_file():
        found = _meta_folder(_extract(root))
    elif root.is_dir():
        found = _meta_folder(root)
        if found is None and (root / ARCHIVE_NAME).is_file():
            found = _meta_folder(_extract(root / ARCHIVE_NAME))
    else:
        raise ModelNotFound(f"model path {root} does not exist")
    if found is None:
        raise ModelNotFound(f"no {MODEL_META_FILE} in {root} (nor in a {ARCHIVE_NAME} there)")
    return found


def load_model(path: str | Path | None = None) -> model_io.LoadedModel:
    """Load the model at ``path`` (see :func:`resolve_model_dir`) with the training loader."""
    return model_io.load(resolve_model_dir(path))
