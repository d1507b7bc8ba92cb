"""The two path mappings of the local executor, and S3-like copies between lake and opt_ml.

``s3://bucket/key`` <-> ``<lake_root>/bucket/key`` (docs/contracts.md) and ``/opt/ml/...`` ->
``<run>/<step>/opt_ml/...`` (core/sm_paths.py), applied to every string a job sees.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

_S3 = re.compile(r"s3://[^\s\"',;]+")
# /opt/ml as a path of its own (not inside another path such as /x/opt/ml).
_OPT_ML = re.compile(r"(?<![\w./-])/opt/ml(?=/|$|[\s\"',;=:])")


class LakeError(RuntimeError):
    """An S3 location has nothing to download, or cannot be mapped."""


class PathMapper:
    def __init__(self, lake_root: Path):
        self.lake_root = Path(lake_root).resolve()

    def s3_to_local(self, uri: str) -> Path:
        if not uri.startswith("s3://"):
            raise LakeError(f"not an s3:// URI: {uri!r}")
        rest = uri[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket or ".." in Path(key).parts:
            raise LakeError(f"cannot map {uri!r} into the lake")
        return self.lake_root / bucket / key

    def s3_to_local_str(self, uri: str) -> str:
        """Like ``s3_to_local`` but keeps a trailing slash (prefix semantics)."""
        local = str(self.s3_to_local(uri))
        return local + "/" if uri.endswith("/") else local

    def local_to_s3(self, path: Path) -> str | None:
        try:
            rel = Path(path).resolve().relative_to(self.lake_root)
        except ValueError:
            return None
        return "s3://" + rel.as_posix()

    def map_text(self, text: str, opt_ml: Path | None) -> str:
        """Rewrite every ``s3://`` URI and (when given) every ``/opt/ml`` path inside ``text``."""
        text = _S3.sub(lambda m: self.s3_to_local_str(m.group(0)), text)
        if opt_ml is not None:
            text = _OPT_ML.sub(lambda m: str(opt_ml), text)
        return text

    def map_any(self, obj: Any, opt_ml: Path | None) -> Any:
        if isinstance(obj, str):
            return self.map_text(obj, opt_ml)
        if isinstance(obj, list):
            return [self.map_any(v, opt_ml) for v in obj]
        if isinstance(obj, dict):
            return {k: self.map_any(v, opt_ml) for k, v in obj.items()}
        return obj


def map_opt_ml(path: str, opt_ml: Path) -> Path:
    """A container path under ``/opt/ml`` -> the step's folder; other absolute paths are refused
    (a local process must not write to arbitrary places of this machine)."""
    p = Path(path)
    try:
        rel = p.relative_to("/opt/ml")
    except ValueError:
        raise LakeError(f"container path {path!r} is not under /opt/ml; the local executor only maps /opt/ml") from None
    return opt_ml / rel


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def download(mapper: PathMapper, uri: str, dest: Path) -> list[Path]:
    """SageMaker ``S3Prefix`` download: every object under the prefix lands in ``dest`` by its
    path relative to the prefix; a URI naming one object lands as ``dest/<its name>``.

    Copies rather than hard-links: a job that rewrites an input in place must not alter the lake.
    """
    src = mapper.s3_to_local(uri)
    dest.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    if src.is_file():
        target = dest / src.name
        _copy_file(src, target)
        copied.append(target)
    elif src.is_dir():
        for path in sorted(src.rglob("*")):
            if path.is_file():
                target = dest / path.relative_to(src)
                _copy_file(path, target)
                copied.append(target)
    if not copied:
        raise LakeError(f"no S3 objects found under {uri} (looked in {src})")
    return copied


def upload(mapper: PathMapper, local_dir: Path, uri: str) -> list[Path]:
    """SageMaker ``EndOfJob`` upload: the folder's files go under the ``S3Uri`` prefix (existing
    objects are overwritten, others left alone, as on S3)."""
    dest = mapper.s3_to_local(uri)
    written: list[Path] = []
    if not local_dir.is_dir():
        return written
    for path in sorted(local_dir.rglob("*")):
        if path.is_file():
            target = dest / path.relative_to(local_dir)
            _copy_file(path, target)
            written.append(target)
    return written


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
