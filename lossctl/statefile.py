"""State files (SPEC section 7): a run's partial states, safe to open from anywhere.

Layout (``docs/state-format.md`` is the full description)::

    MAGIC (8 bytes) | header length (uint64, little-endian) | header (UTF-8 JSON)
    | zero padding to a multiple of 8 | array payload | SHA-256 of all before it (32 bytes)

The header holds the format version, lossctl's version, the plan, the input
identity (files with sizes and content fingerprints, rows) and, for every
state, its arrays' merge kinds, dtypes, shapes and offsets into the payload.
Arrays are plain little-endian numbers: no pickle, no code, no object dtype.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from lossctl._version import __version__
from lossctl.errors import DataError, LossctlError, UsageProblem
from lossctl.groups import jsonable
from lossctl.outfile import Replacement, cannot_write
from lossctl.partial import Partial
from lossctl.plan import Plan
from lossctl.state import State

MAGIC = b"\x89LCSTATE"
FORMAT = 1
_DIGEST = 32
# Only plain numbers travel in a state file.
DTYPES = {"<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"}
_FINGERPRINT_BYTES = 1 << 16


@dataclass(frozen=True)
class Loaded:
    """One state file read back: where from, its header, plan and partial."""

    path: str
    header: Mapping[str, Any]
    plan: Plan
    partial: Partial

    @property
    def inputs(self) -> list[Mapping[str, Any]]:
        return list(self.header["input"]["files"])


def fingerprint(path: str) -> dict[str, Any]:
    """Size and a SHA-256 of the first and last 64 KiB: the same data has the same one, wherever it lies."""
    entry: dict[str, Any] = {"path": path, "size": None, "sha256": None}
    try:
        if not os.path.isfile(path):
            return entry
        size = os.path.getsize(path)
        digest = hashlib.sha256(str(size).encode())
        with open(path, "rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            if size > _FINGERPRINT_BYTES:
                fh.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
                digest.update(fh.read(_FINGERPRINT_BYTES))
    except OSError:
        return entry
    entry.update(size=size, sha256=digest.hexdigest())
    return entry


def identity(sources: Sequence[str]) -> list[dict[str, Any]]:
    """The fingerprints of every file the inputs name (a Parquet directory or glob: each file in it)."""
    from lossctl.io import data_extension
    from lossctl.io.parquet import parquet_files

    out = []
    for source in sources:
        if source != "-" and not os.path.isfile(source) and data_extension(source) in (None, "parquet"):
            try:
                files = parquet_files(source)
            except LossctlError:
                files = []
            if files:
                out += [fingerprint(f) for f in files]
                continue
        out.append(fingerprint(source))
    return out


def _header_and_pieces(plan: Plan, partial: Partial, files: Sequence[str]) -> tuple[bytes, list[np.ndarray]]:
    """The bytes before the payload, and the payload's arrays in order (each padded to 8 bytes)."""
    pieces: list[np.ndarray] = []
    offset = 0
    states: dict[str, Any] = {}
    for key, state in partial.states.items():
        arrays: dict[str, Any] = {}
        for name, parts in state.parts().items():
            dtype = parts[0].dtype
            if dtype.str not in DTYPES or any(p.dtype != dtype for p in parts):
                raise ValueError(f"state array {name} has dtype {dtype}, which a state file cannot hold")
            shape = [sum(len(p) for p in parts), *parts[0].shape[1:]] if parts[0].ndim else []
            nbytes = sum(p.nbytes for p in parts)
            arrays[name] = {"dtype": dtype.str, "shape": shape, "offset": offset, "nbytes": nbytes}
            pieces += parts
            pad = -nbytes % 8
            if pad:
                pieces.append(np.zeros(pad, dtype=np.uint8))
            offset += nbytes + pad
        states[key] = {"layout": state.layout(), "slots": state.slots, "arrays": arrays}
    header = {
        "format": FORMAT,
        "lossctl": __version__,
        "plan": plan.to_dict(),
        "input": {
            "files": identity(files),
            "sources": {role.role: role.source for role in plan.roles.values()},
            "rows": partial.rows,
            "dropped": partial.dropped,
            "first_row": partial.first_row,
        },
        "warned": [[i, row, text] for i, (row, text) in sorted(partial.warned.items())],
        "groups": None if partial.groups is None else [[jsonable(v) for v in key] for key in partial.groups],
        "states": states,
        "payload_bytes": offset,
    }
    text = json.dumps(header, sort_keys=True, allow_nan=False).encode()
    head = MAGIC + struct.pack("<Q", len(text)) + text
    return head + b"\0" * (-len(head) % 8), pieces


def _write(fh: BinaryIO, plan: Plan, partial: Partial, files: Sequence[str]) -> None:
    """Stream a state file to ``fh``: the arrays are written and hashed in place, never copied."""
    head, pieces = _header_and_pieces(plan, partial, files)
    digest = hashlib.sha256(head)
    fh.write(head)
    for piece in pieces:
        if piece.nbytes == 0:
            # Nothing to write (an empty (0, D) chunk cannot even be viewed as bytes).
            continue
        view = memoryview(np.ascontiguousarray(piece)).cast("B")
        digest.update(view)
        fh.write(view)
    fh.write(digest.digest())


def encode(plan: Plan, partial: Partial, files: Sequence[str]) -> bytes:
    """The bytes of a state file for ``partial`` (which holds no error)."""
    buffer = io.BytesIO()
    _write(buffer, plan, partial, files)
    return buffer.getvalue()


def save(path: str, plan: Plan, partial: Partial, files: Sequence[str]) -> None:
    """Write the state file whole or not at all (a temporary file renamed into place)."""
    out = Replacement(path, "--save-state")
    try:
        with open(out.tmp, "wb") as fh:
            _write(fh, plan, partial, files)
        out.commit()
    except BaseException as exc:
        out.discard()
        if isinstance(exc, OSError):
            raise cannot_write("--save-state", path, exc) from None
        raise


def decode(data: bytes | bytearray, label: str) -> tuple[dict[str, Any], dict[str, State]]:
    """The header and states of a state file's bytes; a malformed file is a data error (exit 3)."""
    if not data.startswith(MAGIC):
        raise DataError(f"{label}: not a lossctl state file")
    if len(data) < len(MAGIC) + 8 + _DIGEST:
        raise DataError(f"{label}: state file is truncated")
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    if length > len(data) - start - _DIGEST:
        raise DataError(f"{label}: state file is truncated or corrupt (header of {length} bytes)")
    try:
        header = json.loads(data[start : start + length].decode())
        version = header["format"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise DataError(f"{label}: state file is corrupt (unreadable header)") from None
    if not isinstance(version, int):
        raise DataError(f"{label}: state file is corrupt (format {version!r})")
    if version > FORMAT:
        raise UsageProblem(
            f"{label}: state file format {version} was written by a newer lossctl "
            f"({header.get('lossctl', '?')}); this lossctl {__version__} reads format {FORMAT}: upgrade lossctl"
        )
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise DataError(f"{label}: state file is truncated or corrupt (checksum mismatch)")
    payload_start = start + length + (-(start + length) % 8)
    payload = memoryview(body)[payload_start:]
    try:
        if header["payload_bytes"] != len(payload):
            raise DataError(f"{label}: state file is corrupt (payload size)")
        states = {key: _state(desc, payload) for key, desc in header["states"].items()}
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{label}: state file is corrupt ({type(exc).__name__}: {exc})") from None
    return header, states


def _state(desc: Mapping[str, Any], payload: memoryview) -> State:
    arrays = {}
    for name, a in desc["arrays"].items():
        dtype = a["dtype"]
        if dtype not in DTYPES:
            raise DataError(f"state array '{name}' has dtype {dtype!r}, which a state file never holds")
        shape = tuple(int(n) for n in a["shape"])
        offset, nbytes = int(a["offset"]), int(a["nbytes"])
        if any(n < 0 for n in shape) or offset < 0 or offset + nbytes > len(payload):
            raise DataError(f"state array '{name}' lies outside the file")
        dt = np.dtype(dtype)
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != nbytes:
            raise DataError(f"state array '{name}' has {nbytes} bytes for shape {shape}")
        arrays[name] = np.frombuffer(payload, dtype=dt, count=nbytes // dt.itemsize, offset=offset).reshape(shape)
    state = State.from_arrays(desc["layout"], arrays)
    if state.slots != desc["slots"]:
        raise DataError("state slot count does not match its header")
    return state


def _groups(doc: Any, by: tuple[str, ...]) -> list[tuple[Any, ...]] | None:
    """The group keys of a header (``None`` without ``--by``)."""
    if doc is None:
        if by:
            raise DataError("the plan slices by " + ",".join(by) + " but the state holds no group keys")
        return None
    keys = [tuple(key) for key in doc]
    if any(len(key) != len(by) for key in keys) or len(set(keys)) != len(keys):
        raise DataError("state file is corrupt (group keys)")
    return keys


def partial_of(header: Mapping[str, Any], states: dict[str, State], by: tuple[str, ...]) -> Partial:
    """The partial a decoded header and its states describe (see :func:`decode`)."""
    ci = header["plan"].get("ci")
    partial = Partial(
        states,
        rows=int(header["input"]["rows"]),
        dropped=int(header["input"]["dropped"]),
        warned={int(i): (int(row), str(text)) for i, row, text in header["warned"]},
        groups=_groups(header.get("groups"), by),
        stride=1 if ci is None else int(ci["replicates"]) + 1,
    )
    partial.first_row = int(header["input"].get("first_row", 0))
    return partial


def load(path: str) -> Loaded:
    """Read and check one state file: exit 3 when unreadable, corrupt or truncated."""
    try:
        with open(path, "rb") as fh:
            # A bytearray: the arrays read from it are writable (finishing may sort in place).
            data = bytearray(fh.read())
    except FileNotFoundError:
        raise DataError(f"{path}: no such state file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a state file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    header, states = decode(data, path)
    try:
        plan = Plan.from_dict(header["plan"], header["input"].get("sources"))
        partial = partial_of(header, states, plan.by)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: state file is corrupt ({type(exc).__name__}: {exc})") from None
    if set(states) != set(plan.state_keys()):
        raise DataError(f"{path}: its states do not match its plan")
    for key, acc in plan.state_keys().items():
        try:
            acc.check(states[key])
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
    return Loaded(path, header, plan, partial)
