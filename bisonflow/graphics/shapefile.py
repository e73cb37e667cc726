"""A small reader of ESRI shapefile polygons and their dBASE attributes, with struct and numpy.

calc_stats draws its maps (bisonflow.graphics.maps) on the same county shapefile the aggregate step
loads, and the task image has no GDAL, DuckDB or shapely; reading polygon rings and a few
text attributes needs only the byte layout, from the "ESRI Shapefile Technical Description"
(ESRI white paper, July 1998):

- .shp: a 100-byte header (file code 9994 and file length in 16-bit words, big-endian; version
  1000 and shape type, little-endian; bounding box), then records, each an 8-byte big-endian
  header (record number, content length in 16-bit words) and content starting with its
  little-endian shape type. Polygon (type 5) content: Box (4 doubles), NumParts, NumPoints,
  Parts (NumParts ints: the index of each ring's first point), Points (NumPoints x, y
  doubles). A Null shape (type 0) has no geometry.
- .dbf: dBASE III (the description's "dBASE File" section): record count (uint32 at byte 4),
  header and record lengths (uint16 at 8 and 10), 32-byte field descriptors from byte 32 up
  to a 0x0D terminator (name in 11 bytes, type at 11, length at 16); each record a deletion
  flag byte then the fields as fixed-width text. The i-th .dbf record is the i-th shape.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_FILE_CODE = 9994
_NULL, _POLYGON = 0, 5


@dataclass(frozen=True)
class Polygons:
    """Each shape's rings (arrays of (x, y) points) and its text attributes, in file order."""

    rings: list[list[npt.NDArray[np.float64]]]
    attributes: dict[str, list[str]]


def read_polygons(
    shp: bytes, dbf: bytes, fields: tuple[str, ...], where: str, encoding: str = "utf-8"
) -> Polygons:
    """The polygons of a .shp and the named .dbf fields; `where` names the file in errors.

    `encoding` is the text encoding of the .dbf, which a shapefile names in its .cpg (the
    census files say UTF-8; us-atlas' conversion ISO-8859-1)."""
    rings = _shp_rings(shp, where)
    attributes = _dbf_fields(dbf, fields, where, encoding)
    count = len(next(iter(attributes.values()), rings))
    if count != len(rings):
        raise ValueError(f"{where}: {len(rings)} shapes but {count} attribute records")
    return Polygons(rings, attributes)


def _shp_rings(shp: bytes, where: str) -> list[list[npt.NDArray[np.float64]]]:
    if len(shp) < 100 or struct.unpack_from(">i", shp, 0)[0] != _FILE_CODE:
        raise ValueError(f"{where}: not an ESRI shapefile (no file code 9994 in its header)")
    shape_type = struct.unpack_from("<i", shp, 32)[0]
    if shape_type != _POLYGON:
        raise ValueError(f"{where}: shape type {shape_type}, expected polygons (5)")
    end = min(len(shp), struct.unpack_from(">i", shp, 24)[0] * 2)
    shapes: list[list[npt.NDArray[np.float64]]] = []
    offset = 100
    while offset + 8 <= end:
        words = struct.unpack_from(">i", shp, offset + 4)[0]
        content = offset + 8
        kind = struct.unpack_from("<i", shp, content)[0]
        if kind == _NULL:
            shapes.append([])
        elif kind == _POLYGON:
            parts, points = struct.unpack_from("<2i", shp, content + 36)
            starts = np.frombuffer(shp, "<i4", parts, content + 44)
            xy = np.frombuffer(shp, "<f8", 2 * points, content + 44 + 4 * parts).reshape(-1, 2)
            bounds = [*starts.tolist(), points]
            shapes.append([xy[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        else:
            raise ValueError(f"{where}: record at byte {offset} has shape type {kind}")
        offset = content + 2 * words
    return shapes


def _dbf_fields(
    dbf: bytes, fields: tuple[str, ...], where: str, encoding: str
) -> dict[str, list[str]]:
    if len(dbf) < 32:
        raise ValueError(f"{where}: .dbf shorter than its 32-byte header")
    records, header_len, record_len = struct.unpack_from("<IHH", dbf, 4)
    layout, offset, position = {}, 32, 1  # position 0 of a record is its deletion flag
    while offset < header_len - 1 and dbf[offset] != 0x0D:
        name = dbf[offset : offset + 11].split(b"\0", 1)[0].decode("ascii")
        width = dbf[offset + 16]
        layout[name] = (position, width)
        position += width
        offset += 32
    missing = [f for f in fields if f not in layout]
    if missing:
        raise ValueError(f"{where}: .dbf has no field {missing[0]!r} (fields: {sorted(layout)})")
    values: dict[str, list[str]] = {f: [] for f in fields}
    for i in range(records):
        start = header_len + i * record_len
        for name in fields:
            at, width = layout[name]
            raw = dbf[start + at : start + at + width]
            values[name].append(raw.decode(encoding, errors="replace").strip())
    return values


#: A .dbf field to write: name (at most 10 ASCII characters), "C" (text) or "N" (integer),
#: and width in bytes.
DbfField = tuple[str, str, int]


def dbf_bytes(
    fields: tuple[DbfField, ...], columns: dict[str, list], stamp: tuple[int, int, int]
) -> bytes:
    """A dBASE III file (the layout `_dbf_fields` reads) of the columns, text in UTF-8.

    `stamp` (year, month, day) is the header's last-update date, so the bytes depend only
    on the arguments. Text is left-aligned and space-padded, integers right-aligned, as
    GDAL writes them; a value wider than its field is an error, never cut.
    """
    records = len(next(iter(columns.values()))) if columns else 0
    record_len = 1 + sum(width for _, _, width in fields)
    header_len = 32 + 32 * len(fields) + 1
    year, month, day = stamp
    out = bytearray(
        struct.pack("<BBBBIHH20x", 3, year - 1900, month, day, records, header_len, record_len)
    )
    for name, kind, width in fields:
        out += struct.pack("<11sc4xBB14x", name.encode("ascii"), kind.encode("ascii"), width, 0)
    out += b"\r"
    for i in range(records):
        out += b" "
        for name, kind, width in fields:
            value = columns[name][i]
            raw = str(value).encode("utf-8")
            if len(raw) > width:
                raise ValueError(f"{name} value {value!r} is wider than {width} bytes")
            out += raw.rjust(width) if kind == "N" else raw.ljust(width)
    out += b"\x1a"
    return bytes(out)
