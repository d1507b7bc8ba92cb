"""The lakes of the local executor, its ``/opt/ml`` mapping, and S3-like copies between them.

Two lakes with one interface (what a job's inputs, outputs and property files need):

- :class:`FolderLake` (the default): ``s3://bucket/key`` <-> ``<lake_root>/bucket/key``
  (docs/contracts.md); every ``s3://`` URI a job sees is rewritten to its folder.
- :class:`S3Lake`: a real S3 API (moto, or AWS itself). URIs stay ``s3://``: inputs are
  downloaded into the job's ``/opt/ml`` paths and outputs uploaded after it, as SageMaker does,
  and step code that reads ``s3://`` itself (Preprocess through awswrangler) reaches the same
  endpoint through ``AWS_ENDPOINT_URL_S3``.

``/opt/ml/...`` -> ``<run>/<step>/opt_ml/...`` (core/sm_paths.py) applies to both. Every
``s3://`` URI is validated (core/s3lake.py): no ``..``, no absolute key, nothing outside the lake.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from core.s3lake import S3UriError, parse_s3_uri

_S3 = re.compile(r"s3://[^\s\"',;]+")
# /opt/ml as a path of its own (not inside another path such as /x/opt/ml).
_OPT_ML = re.compile(r"(?<![\w./-])/opt/ml(?=/|$|[\s\"',;=:])")


class LakeError(RuntimeError):
    """An S3 location has nothing to download, or cannot be mapped."""


def _check(uri: str) -> tuple[str, str]:
    try:
        return parse_s3_uri(uri)
    except S3UriError as exc:
        raise LakeError(str(exc)) from None


class Lake:
    """What both lakes share: ``/opt/ml`` rewriting and walking a job's arguments."""

    is_s3 = False

    def map_uri(self, uri: str) -> str:
        raise NotImplementedError

    def map_text(self, text: str, opt_ml: Path | None) -> str:
        """Map every ``s3://`` URI and (when given) every ``/opt/ml`` path inside ``text``."""
        text = _S3.sub(lambda m: self.map_uri(m.group(0)), text)
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

    def put_archive(self, src: Path, uri: str) -> None:
        """``model.tar.gz`` of the folder's contents (at the archive root, as SageMaker packs it)."""
        with tempfile.TemporaryDirectory(prefix="airfare-tar-") as tmp:
            archive = Path(tmp) / "model.tar.gz"
            _tar_dir(src, archive)
            self.put_file(archive, uri)

    def job_environment(self) -> dict[str, str]:
        """Variables a job needs to reach this lake itself."""
        return {}


class FolderLake(Lake):
    """A folder standing for S3: ``s3://bucket/key`` <-> ``<lake_root>/bucket/key``."""

    def __init__(self, lake_root: Path):
        self.lake_root = Path(lake_root).resolve()

    def s3_to_local(self, uri: str) -> Path:
        bucket, key = _check(uri)
        path = self.lake_root / bucket / key
        # parse_s3_uri already refuses '..' and absolute keys; resolving also catches symlinks out.
        if self.lake_root not in path.resolve().parents:
            raise LakeError(f"cannot map {uri!r} into the lake: it resolves outside {self.lake_root}")
        return path

    def s3_to_local_str(self, uri: str) -> str:
        """Like ``s3_to_local`` but keeps a trailing slash (prefix semantics)."""
        local = str(self.s3_to_local(uri))
        return local + "/" if uri.endswith("/") else local

    map_uri = s3_to_local_str

    def local_to_s3(self, path: Path) -> str | None:
        try:
            rel = Path(path).resolve().relative_to(self.lake_root)
        except ValueError:
            return None
        return "s3://" + rel.as_posix()

    def download(self, uri: str, dest: Path) -> list[Path]:
        return download(self, uri, dest)

    def upload(self, local_dir: Path, uri: str) -> list[Path]:
        return upload(self, local_dir, uri)

    def put_file(self, path: Path, uri: str) -> None:
        target = self.s3_to_local(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".partial")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def exists(self, uri: str) -> bool:
        return self.s3_to_local(uri).exists()

    def read_text(self, uri: str) -> str | None:
        path = self.s3_to_local(uri)
        return path.read_text(errors="replace") if path.is_file() else None

    def read_json(self, uri: str, what: str) -> Any:
        from .expressions import read_json_file

        return read_json_file(self.s3_to_local(uri), what)

    def fingerprint(self, uri: str, h: "hashlib._Hash") -> None:
        _hash_tree(self.s3_to_local(uri), h)

    def registry_artifact(self, uri: str) -> Path:
        """What the local registry copies in: the artifact's file in the lake."""
        return self.s3_to_local(uri)


PathMapper = FolderLake  # the name the executor's tests and older callers use


class S3Lake(Lake):
    """The lake behind a real S3 API; URIs stay ``s3://`` (validated), transfers are S3 calls."""

    is_s3 = True

    def __init__(self, endpoint_url: str | None = None, client: Any = None):
        from core.s3lake import S3Lake as _S3

        self.s3 = _S3(endpoint_url=endpoint_url, client=client)
        self.endpoint_url = endpoint_url

    def map_uri(self, uri: str) -> str:
        _check(uri)
        return uri

    def _call(self, fn, *args):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args)
        except S3UriError as exc:
            raise LakeError(str(exc)) from None
        except (ClientError, BotoCoreError) as exc:
            raise LakeError(f"S3 ({self.s3.endpoint_url}): {exc}") from None

    def download(self, uri: str, dest: Path) -> list[Path]:
        copied = self._call(self.s3.download, uri, dest)
        if not copied:
            raise LakeError(f"no S3 objects found under {uri} ({self.s3.endpoint_url})")
        return copied

    def upload(self, local_dir: Path, uri: str) -> list[str]:
        return self._call(self.s3.upload, local_dir, uri)

    def put_file(self, path: Path, uri: str) -> None:
        self._call(self.s3.upload_file, path, uri)

    def exists(self, uri: str) -> bool:
        return self._call(self.s3.exists, uri)

    def read_text(self, uri: str) -> str | None:
        if not self.exists(uri):
            return None
        return self._call(self.s3.read_bytes, uri).decode("utf-8", errors="replace")

    def read_json(self, uri: str, what: str) -> Any:
        from .expressions import ExpressionError

        text = self.read_text(uri)
        if text is None:
            raise ExpressionError(f"{what}: {uri} does not exist")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExpressionError(f"{what}: {uri} is not valid JSON: {exc}") from None

    def fingerprint(self, uri: str, h: "hashlib._Hash") -> None:
        self._call(self.s3.fingerprint, uri, h)

    def registry_artifact(self, uri: str) -> str:
        """The local registry copies the artifact server-side within S3 (see pipelines/registry.py)."""
        _check(uri)
        return uri

    def job_environment(self) -> dict[str, str]:
        from core.s3lake import ENDPOINT_ENV

        return {ENDPOINT_ENV: self.endpoint_url} if self.endpoint_url else {}


def make_lake(lake_root: Path, s3_endpoint_url: str | None = None, s3_client: Any = None) -> Lake:
    """The folder lake, or the S3 one when an endpoint (or a client) is given."""
    if s3_endpoint_url or s3_client is not None:
        return S3Lake(s3_endpoint_url, s3_client)
    return FolderLake(lake_root)


def _hash_tree(path: Path, h: "hashlib._Hash") -> None:
    if path.is_file():
        files = [path]
        base = path.parent
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        base = path
    else:
        h.update(b"<missing>")
        return
    for f in files:
        h.update(f.relative_to(base).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")


def _tar_dir(src: Path, dest: Path) -> None:
    """``model.tar.gz`` with the folder's contents at the archive root, as SageMaker packs it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(src.rglob("*")):
            tar.add(path, arcname=path.relative_to(src).as_posix(), recursive=False)
    os.replace(tmp, dest)


def map_opt_ml(path: str, opt_ml: Path) -> Path:
    """A container path under ``/opt/ml`` -> the step's folder; other absolute paths are refused
    (a local process must not write to arbitrary places of this machine)."""
    p = Path(path)
    try:
        rel = p.relative_to("/opt/ml")
    except ValueError:
        raise LakeError(f"container path {path!r} is not under /opt/ml; the local executor only maps /opt/ml") from None
    if ".." in rel.parts:
        raise LakeError(f"container path {path!r} climbs out of /opt/ml with '..'")
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
