"""NPY and NPZ arrays, memory-mapped (or stream-decompressed) and read chunk by chunk.

A plain ``.npy`` array is one column named after the file's stem (a 2-D
array is one multi-value column); a structured array's fields are columns.
An ``.npz`` holds one column per array name. Arrays stored uncompressed in
the ``.npz`` are memory-mapped in place; compressed ones are decompressed
as a stream, one chunk at a time.
"""

from __future__ import annotations

import math
import mmap
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np

from lossctl.errors import DataError
from lossctl.io.base import (
    Arrays,
    ColumnInfo,
    Converters,
    Table,
    check_unchanged,
    release_pages,
)


def _kind(dtype: np.dtype) -> str:
    if dtype.kind in "iuf":
        return "number"
    if dtype.kind == "b":
        return "bool"
    if dtype.kind in "US":
        return "text"
    return "other"


def _as_float(values: np.ndarray, label: str, name: str, start: int) -> np.ndarray:
    if values.dtype.kind in "iufb":
        return np.asarray(values, dtype=np.float64)
    if values.dtype.kind in "US":
        try:
            return values.astype(np.float64)
        except ValueError:
            for i, v in enumerate(values.reshape(len(values), -1)[:, 0]):
                try:
                    float(v)
                except ValueError:
                    raise DataError(f"{label} row {start + i}: column '{name}' holds non-numeric value {str(v)!r}") from None
    raise DataError(f"{label}: column '{name}' has dtype {values.dtype}, which is not numeric")


def _columns_of(name: str, dtype: np.dtype, shape: tuple[int, ...], label: str) -> list[ColumnInfo]:
    if dtype.names:
        cols = []
        for field in dtype.names:
            sub = dtype.fields[field][0]  # type: ignore[index]  # fields is set when names is
            width = int(np.prod(sub.shape)) if sub.shape else 1
            base = sub.base if sub.shape else sub
            cols.append(ColumnInfo(field, "list" if sub.shape else _kind(base), width, str(sub)))
        return cols
    if len(shape) == 0:
        raise DataError(f"{label}: array '{name}' is a scalar; expected one value per row")
    # More than two dimensions (N, H, W, C): the last axis is the class axis (lossctl.elements).
    width = shape[-1] if len(shape) >= 2 else 1
    kind = "list" if len(shape) >= 2 else _kind(dtype)
    return [ColumnInfo(name, kind, width, f"{dtype}{list(shape)}")]


def _check_open(path: str) -> None:
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied")


# Chunks kept mapped behind the one being read: more than can be in flight
# between the reader and the lanes (a page released while still in use is read
# again, and would then stay resident).
_LAG = 16


def _read_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """An ``.npy`` header: shape, Fortran order, dtype; a shape no array can have is a ValueError.

    A negative dimension, or one whose bytes pass what a 64-bit size can
    count (computed exactly, where ``np.prod`` would wrap around), is a
    corrupt header, not an array to map.
    """
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    shape = tuple(shape)
    if any(not isinstance(n, int) or n < 0 for n in shape) or math.prod(shape) * dtype.itemsize >= 1 << 63:
        raise ValueError(f"its header gives the shape {shape}, which no array can have")
    return shape, fortran, dtype


def _map_npy(path: str) -> tuple[np.ndarray, mmap.mmap | None, int]:
    """Memory-map an ``.npy`` file: the array, the map (to release pages from) and the data offset."""
    with open(path, "rb") as fh:
        shape, fortran, dtype = _read_header(fh)
        if dtype.hasobject:
            raise ValueError("object arrays cannot be read without pickle")
        offset = fh.tell()
        size = math.prod(shape) * dtype.itemsize
        if os.fstat(fh.fileno()).st_size < offset + size:
            raise ValueError(f"the file is shorter than its {shape} array")
        if size == 0:
            return np.empty(shape, dtype), None, offset
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    array = np.ndarray(shape, dtype, buffer=mapped, offset=offset, order="F" if fortran else "C")
    return array, mapped, offset


class NpyTable(Table):
    """One ``.npy`` file, memory-mapped."""

    def __init__(self, path: str) -> None:
        _check_open(path)
        self.label = path
        try:
            self.array, self._map, self._offset = _map_npy(path)
            self._size = self._map.size() if self._map is not None else 0
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: cannot read: not a valid .npy file ({' '.join(str(exc).split())})") from None
        stem = os.path.basename(path)
        stem = stem[: -len(".npy")] if stem.lower().endswith(".npy") else stem
        self.stem = stem
        self.columns = tuple(_columns_of(stem, self.array.dtype, self.array.shape, path))

    @property
    def num_rows(self) -> int:
        return int(self.array.shape[0])

    def chunks(self, names: Sequence[str], rows: int, convert: Converters | None = None) -> Iterator[Arrays]:
        convert = convert or {}
        n = self.num_rows
        row_bytes = self.array.itemsize * (self.array.size // max(n, 1)) if n else 0
        released = 0
        for start in range(0, n, rows):
            # Pages of rows read several chunks ago go back to the page cache:
            # mapped pages count as our memory, and the file may be larger than it.
            if self._map is not None:
                check_unchanged(self._map.size(), self._size, self.label)
                if self.array.flags.c_contiguous:
                    released = release_pages(self._map, released, self._offset + (start - _LAG * rows) * row_bytes)
            part = self.array[start : start + rows]
            out: Arrays = {}
            for name in names:
                values = part[name] if self.array.dtype.names else part
                if name in convert:
                    out[name] = convert[name](np.asarray(values), start)
                    continue
                out[name] = _as_float(np.asarray(values), self.label, name, start)
            yield out


@dataclass
class _Member:
    name: str
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    data_offset: int  # offset of the array data inside the member


class NpzTable(Table):
    """An ``.npz`` archive: each array a column, all arrays the same length."""

    def __init__(self, path: str) -> None:
        _check_open(path)
        self.label = path
        try:
            self.zf = zipfile.ZipFile(path)
            members = [self._member(info) for info in self.zf.infolist() if info.filename.endswith(".npy")]
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: cannot read: not a valid .npz file ({' '.join(str(exc).split())})") from None
        if not members:
            raise DataError(f"{path}: the archive holds no arrays")
        seen: set[str] = set()
        for m in members:
            if m.name in seen:
                raise DataError(f"{path}: array '{m.name}' appears twice in the archive; which one is meant is unclear")
            seen.add(m.name)
        self.members = {m.name: m for m in members}
        cols: list[ColumnInfo] = []
        for m in members:
            if m.dtype.names:
                raise DataError(f"{path}: array '{m.name}' is structured; save plain arrays in the .npz")
            cols += _columns_of(m.name, m.dtype, m.shape, path)
        self.columns = tuple(cols)

    def _member(self, info: zipfile.ZipInfo) -> _Member:
        with self.zf.open(info) as fh:
            shape, fortran, dtype = _read_header(fh)
            offset = fh.tell()
        return _Member(info.filename[: -len(".npy")], info, dtype, tuple(shape), fortran, offset)

    @property
    def num_rows(self) -> int | None:
        lengths = {m.shape[0] for m in self.members.values() if m.shape}
        return lengths.pop() if len(lengths) == 1 else None

    def row_count(self, name: str) -> int:
        return self.members[name].shape[0]

    def _stream(self, name: str, rows: int) -> Iterator[np.ndarray]:
        m = self.members[name]
        if m.fortran and len(m.shape) > 1:
            # Column-major data cannot be cut into row chunks from a stream.
            whole = np.load(self.label, allow_pickle=False)[name]
            for start in range(0, m.shape[0], rows):
                yield whole[start : start + rows]
            return
        per_row = int(np.prod(m.shape[1:])) if len(m.shape) > 1 else 1
        row_bytes = per_row * m.dtype.itemsize
        if m.info.compress_type == zipfile.ZIP_STORED:
            local = self._local_data_offset(m.info)
            with open(self.label, "rb") as fh:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            size = mapped.size()
            if local + m.data_offset + int(np.prod(m.shape)) * m.dtype.itemsize > size:
                raise DataError(f"{self.label}: array '{name}' is truncated")
            array = np.ndarray(m.shape, m.dtype, buffer=mapped, offset=local + m.data_offset)
            # The archive's CRC of the member, checked as its bytes stream past
            # (zipfile does it for compressed members): a flipped bit is exit 3.
            crc = zlib.crc32(mapped[local : local + m.data_offset])
            for start in range(0, m.shape[0], rows):
                check_unchanged(mapped.size(), size, self.label)
                part = array[start : start + rows]
                crc = zlib.crc32(part, crc)
                yield part
            if crc != m.info.CRC:
                raise DataError(f"{self.label}: array '{name}' is corrupt (its CRC does not match the archive's)")
            return
        with self.zf.open(m.info) as fh:
            fh.seek(m.data_offset)
            left = m.shape[0]
            while left > 0:
                take = min(rows, left)
                try:  # zipfile checks the CRC when it reaches the member's end
                    buf = fh.read(take * row_bytes)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise DataError(f"{self.label}: array '{name}' is corrupt ({' '.join(str(exc).split())})") from None
                if len(buf) < take * row_bytes:
                    raise DataError(f"{self.label}: array '{name}' is truncated")
                yield np.frombuffer(buf, dtype=m.dtype).reshape((take, *m.shape[1:]))
                left -= take

    def _local_data_offset(self, info: zipfile.ZipInfo) -> int:
        with open(self.label, "rb") as fh:
            fh.seek(info.header_offset)
            header = fh.read(30)
            name_len = int.from_bytes(header[26:28], "little")
            extra_len = int.from_bytes(header[28:30], "little")
        return info.header_offset + 30 + name_len + extra_len

    def chunks(self, names: Sequence[str], rows: int, convert: Converters | None = None) -> Iterator[Arrays]:
        convert = convert or {}
        lengths = {n: self.row_count(n) for n in names}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"'{n}' has {k}" for n, k in lengths.items())
            raise DataError(f"{self.label}: arrays differ in length: {detail}")
        streams = [self._stream(n, rows) for n in names]
        start = 0
        for parts in zip(*streams, strict=True):
            out = {
                n: convert[n](np.asarray(p), start) if n in convert else _as_float(np.asarray(p), self.label, n, start)
                for n, p in zip(names, parts, strict=True)
            }
            start += len(parts[0])
            yield out
