"""The lake as a real S3 API (moto, MinIO or AWS): checked ``s3://`` URIs and SageMaker-like copies.

``airfare run --s3-endpoint-url URL`` / ``airfare pipeline run-local --s3-endpoint-url URL`` (or
``AWS_ENDPOINT_URL_S3``) put the lake behind S3 calls instead of a folder; with no endpoint and AWS
credentials, the same code reads and writes real buckets. Transfers go through boto3's managed
transfer (multipart, threads), never through hand-written loops.

Every URI is validated by :func:`parse_s3_uri` first: a key may not start with ``/``, hold an
empty, ``.`` or ``..`` segment, so nothing a pipeline computes can name an object outside the
prefix it was given, and the folder lake (``<lake>/<bucket>/<key>``) cannot escape its root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
# S3 bucket naming rules (general purpose buckets): 3-63 characters, lower case, digits, '.', '-'.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3UriError(ValueError):
    """An ``s3://`` URI that is malformed or could name something outside its bucket's lake."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b/")``; refuses what could escape the lake.

    A trailing ``/`` is kept (prefix semantics). Refused: another scheme, a bad bucket name, a key
    starting with ``/`` (``s3://b//etc/passwd``), an empty, ``.`` or ``..`` segment, a backslash
    or a control character.
    """
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise S3UriError(f"{uri!r}: {bucket!r} is not a valid S3 bucket name")
    if key.startswith("/"):
        raise S3UriError(f"{uri!r}: the key starts with '/' (an absolute path)")
    segments = key.split("/")
    if key.endswith("/"):
        segments = segments[:-1]
    if key and any(s in ("", ".", "..") for s in segments):
        raise S3UriError(f"{uri!r}: empty, '.' or '..' path segments are not allowed in a lake key")
    if "\\" in key or any(ord(c) < 32 for c in key):
        raise S3UriError(f"{uri!r}: backslashes and control characters are not allowed in a lake key")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    """``join("s3://b/p/", "x", "y.json") == "s3://b/p/x/y.json"`` (validated)."""
    out = "/".join([uri.rstrip("/"), *[p.strip("/") for p in parts if p]])
    parse_s3_uri(out)
    return out


def endpoint_url() -> str | None:
    """The S3 endpoint from the environment (botocore reads the same variable itself)."""
    return os.environ.get(ENDPOINT_ENV) or None


class S3Lake:
    """Objects of one S3 API, with SageMaker's ``S3Prefix`` download and ``EndOfJob`` upload."""

    def __init__(self, endpoint_url: str | None = None, client: Any = None):
        if client is None:
            from core import aws

            client = aws.client("s3", **({"endpoint_url": endpoint_url} if endpoint_url else {}))
        self.client = client
        self.endpoint_url = endpoint_url or client.meta.endpoint_url

    # ---- reading ------------------------------------------------------------------------------
    def list(self, uri: str) -> Iterator[dict]:
        """Objects whose key starts with the URI's key (S3 prefix match), in key order."""
        bucket, key = parse_s3_uri(uri)
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            yield from page.get("Contents", [])

    def _objects_under(self, uri: str) -> tuple[str, str, list[dict]]:
        """(bucket, base key, objects) for a URI naming one object or a folder-like prefix.

        An exact object wins (``s3://b/x/model.tar.gz``); otherwise everything under ``key/``, so
        ``s3://b/curated/offers`` never picks up ``curated/offers_old/``, as in the folder lake.
        """
        bucket, key = parse_s3_uri(uri)
        if key and not key.endswith("/"):
            from botocore.exceptions import ClientError

            try:
                head = self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            else:
                obj = {"Key": key, "ETag": head.get("ETag", ""), "Size": head.get("ContentLength", 0)}
                return bucket, key.rsplit("/", 1)[0] + "/" if "/" in key else "", [obj]
            key += "/"
        return bucket, key, list(self.list(f"s3://{bucket}/{key}"))

    def exists(self, uri: str) -> bool:
        """True when the URI names an object or a non-empty prefix."""
        return bool(self._objects_under(uri)[2])

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri))

    def download(self, uri: str, dest: Path) -> list[Path]:
        """Every object under the prefix lands in ``dest`` by its key relative to the prefix; a URI
        naming one object lands as ``dest/<its name>``. Returns the files written."""
        bucket, base, objects = self._objects_under(uri)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written = []
        for obj in objects:
            rel = obj["Key"][len(base) :]
            if not rel or rel.endswith("/"):
                continue  # a "folder" marker object
            parse_s3_uri(f"s3://{bucket}/{obj['Key']}")  # keys written by others are checked too
            target = (dest / rel).resolve()
            if root not in target.parents:
                raise S3UriError(f"s3://{bucket}/{obj['Key']} would land outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(bucket, obj["Key"], str(target))
            written.append(target)
        return written

    def fingerprint(self, uri: str, h: "hashlib._Hash") -> None:
        """Feed (relative key, ETag, size) of every object under the URI into ``h`` (step caching)."""
        bucket, base, objects = self._objects_under(uri)
        if not objects:
            h.update(b"<missing>")
        for obj in objects:
            h.update(f"{obj['Key'][len(base):]}\0{obj.get('ETag', '')}\0{obj.get('Size', 0)}\0".encode())

    # ---- writing ------------------------------------------------------------------------------
    def upload_file(self, path: Path, uri: str) -> str:
        bucket, key = parse_s3_uri(uri)
        if not key or key.endswith("/"):
            raise S3UriError(f"{uri!r} names a prefix, not an object")
        self.client.upload_file(str(path), bucket, key)
        return uri

    def upload(self, local_dir: Path, uri: str) -> list[str]:
        """SageMaker ``EndOfJob`` upload: the folder's files go under the prefix (same keys
        overwritten, others left alone, as on S3)."""
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            return []
        return [
            self.upload_file(path, join(uri, path.relative_to(local_dir).as_posix()))
            for path in sorted(local_dir.rglob("*"))
            if path.is_file()
        ]

    def put_bytes(self, data: bytes, uri: str) -> str:
        bucket, key = parse_s3_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return uri

    def copy(self, src: str, dst: str) -> str:
        """Server-side copy of one object (managed: multipart above the threshold)."""
        sb, sk = parse_s3_uri(src)
        db, dk = parse_s3_uri(dst)
        self.client.copy({"Bucket": sb, "Key": sk}, db, dk)
        return dst

    def delete_prefix(self, uri: str) -> int:
        """Delete every object under ``uri`` (a folder-like prefix); returns how many."""
        bucket, key = parse_s3_uri(uri)
        if not key.endswith("/"):
            key += "/"
        keys = [{"Key": o["Key"]} for o in self.list(f"s3://{bucket}/{key}")]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000], "Quiet": True})
        return len(keys)

    def replace_partitions(self, local_dir: Path, uri: str) -> list[str]:
        """Upload a Spark-written folder the way dynamic partition overwrite replaces partitions:
        each ``name=value`` leaf folder present locally first has its S3 prefix emptied, so part
        files of an earlier run do not stay beside the new ones; other partitions are left alone."""
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            return []
        partitions = {p.parent for p in local_dir.rglob("*") if p.is_file() and "=" in p.parent.name}
        for part in sorted(partitions):
            self.delete_prefix(join(uri, part.relative_to(local_dir).as_posix()) + "/")
        return [
            self.upload_file(path, join(uri, path.relative_to(local_dir).as_posix()))
            for path in sorted(local_dir.rglob("*"))
            if path.is_file() and not path.name.startswith((".", "_"))  # no .crc / _SUCCESS markers
        ]


def staging_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A scratch folder for S3 staging, removed on exit (also on error)."""
    return tempfile.TemporaryDirectory(prefix=f"airfare-{prefix}-")


__all__ = ["ENDPOINT_ENV", "S3Lake", "S3UriError", "endpoint_url", "join", "parse_s3_uri", "staging_dir"]
