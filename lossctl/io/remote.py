"""Paths with a scheme (``s3://``, ``gs://``, ``hdfs://``, ``file://``...), through ``pyarrow.fs``.

``FileSystem.from_uri`` resolves the store and its credentials the standard
way of each (for S3 the AWS environment variables and files, and
``AWS_ENDPOINT_URL`` for an S3-compatible store). Directories and globs
list like local ones. Parquet is read from the store directly (footers and
row groups by range requests); other formats are copied to a local
temporary file first (streamed, deleted at exit) and read as local files.
Readers know files, never metrics.
"""

from __future__ import annotations

import atexit
import fnmatch
import glob
import re
import shutil
import tempfile
from functools import lru_cache
from typing import Any

from lossctl.errors import DataError, UsageProblem

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_COPY_BYTES = 4 << 20

# What a scheme needs when pyarrow cannot reach its store from this machine.
_NEEDS = {
    "hdfs": "a Java runtime and Hadoop's libhdfs (set JAVA_HOME, and HADOOP_HOME or ARROW_LIBHDFS_DIR)",
    "viewfs": "a Java runtime and Hadoop's libhdfs (set JAVA_HOME, and HADOOP_HOME or ARROW_LIBHDFS_DIR)",
    "s3": "a pyarrow built with S3 support: pip install --upgrade pyarrow",
    "gs": "a pyarrow built with GCS support: pip install --upgrade pyarrow",
    "gcs": "a pyarrow built with GCS support: pip install --upgrade pyarrow",
    "abfs": "a pyarrow built with Azure support: pip install --upgrade pyarrow",
    "abfss": "a pyarrow built with Azure support: pip install --upgrade pyarrow",
}


def scheme(path: str) -> str | None:
    """The URI scheme of a path (lower case), or ``None`` for a plain local path."""
    m = _URI.match(path)
    return m.group(1).lower() if m else None


def is_uri(path: str) -> bool:
    return scheme(path) is not None


def filesystem(uri: str) -> tuple[Any, str]:
    """``(pyarrow FileSystem, path in it)`` of a URI; an unknown scheme or a missing piece is exit 2.

    Resolved afresh each time (0.1 ms): credentials and endpoints follow the environment of the moment.
    """
    import pyarrow as pa
    import pyarrow.fs as pafs

    name = scheme(uri) or ""
    try:
        return pafs.FileSystem.from_uri(uri)
    except pa.ArrowInvalid as exc:
        if "Unrecognized filesystem type" in str(exc) or "not supported" in str(exc).lower():
            raise UsageProblem(
                f"{uri}: unknown scheme '{name}://'; lossctl reads local paths and the schemes pyarrow.fs knows "
                "(s3://, gs://, hdfs://, file://)"
            ) from None
        raise UsageProblem(f"{uri}: not a valid {name}:// path ({_one_line(exc)})") from None
    except (pa.ArrowNotImplementedError, ImportError, OSError) as exc:
        need = _NEEDS.get(name, f"a pyarrow built with {name}:// support: pip install --upgrade pyarrow")
        raise UsageProblem(f"{uri}: reading {name}:// needs {need} ({_one_line(exc, 120)})") from None


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def _join(uri: str, path: str) -> str:
    """The URI of ``path`` (a path in the filesystem ``uri`` resolved to)."""
    head = _URI.match(uri)
    assert head is not None
    if head.group(1).lower() == "file":
        return "file://" + (path if path.startswith("/") else "/" + path)
    rest = uri[head.end():]
    # s3://bucket/key resolves to "bucket/key"; hdfs://host:port/path to "/path".
    authority = rest.split("/", 1)[0]
    if path.startswith(authority + "/") or path == authority:
        return f"{head.group(1)}://{path}"
    return f"{head.group(1)}://{authority}{path if path.startswith('/') else '/' + path}"


def _info(fs: Any, path: str, uri: str) -> Any:
    try:
        return fs.get_file_info(path)
    except OSError as exc:
        raise DataError(f"{uri}: cannot read: {_one_line(exc)}") from None


def kind(uri: str) -> str:
    """``file``, ``directory`` or ``missing``."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    t = _info(fs, path, uri).type
    if t == pafs.FileType.File:
        return "file"
    if t == pafs.FileType.Directory:
        return "directory"
    return "missing"


def listed(uri: str, keep: Any) -> list[str]:
    """The files under a directory URI, or matching a glob URI, whose name ``keep(name)`` accepts (URIs, unsorted)."""
    import pyarrow.fs as pafs

    if glob.has_magic(uri):
        cut = min(i for i in (uri.find(c) for c in "*?[") if i >= 0)
        base = uri[: uri.rfind("/", 0, cut)]
        fs, root = filesystem(base)
        pattern = root + uri[len(base):]
    else:
        fs, root = filesystem(uri)
        pattern = None
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise DataError(f"{uri}: cannot list: {_one_line(exc)}") from None
    out = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        name = info.path.rsplit("/", 1)[-1]
        if pattern is not None and not fnmatch.fnmatchcase(info.path, pattern):
            continue
        if keep(name):
            out.append(_join(uri, info.path))
    return out


def open_input(uri: str) -> Any:
    """A random-access pyarrow file of a URI; a missing object is exit 3."""
    fs, path = filesystem(uri)
    try:
        return fs.open_input_file(path)
    except FileNotFoundError:
        raise DataError(f"{uri}: no such file") from None
    except OSError as exc:
        if kind(uri) == "missing":
            raise DataError(f"{uri}: no such file") from None
        raise DataError(f"{uri}: cannot read: {_one_line(exc)}") from None


@lru_cache(maxsize=1)
def _scratch() -> str:
    folder = tempfile.mkdtemp(prefix="lossctl-remote-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def local_copy(uri: str) -> str:
    """A local temporary copy of a remote file (streamed, removed at exit), for the readers that need a path."""
    import os

    source = open_input(uri)
    name = re.sub(r"[^\w.-]", "_", uri.rsplit("/", 1)[-1]) or "input"
    folder = tempfile.mkdtemp(dir=_scratch())
    target = os.path.join(folder, name)
    try:
        with source, open(target, "wb") as out:
            while chunk := source.read(_COPY_BYTES):
                out.write(chunk)
    except OSError as exc:
        raise DataError(f"{uri}: cannot read: {_one_line(exc)}") from None
    return target
