"""DuckDB's values and types as the Data API returns them: ColumnMetadata with Redshift's
type names and Records of Fields (longValue, doubleValue, stringValue, booleanValue,
blobValue, isNull), as the Redshift Data API reference's GetStatementResult and Field
define them. The workflow reads its summary rows through these shapes
(`bisonflow.steps.statements.summary`), so they must be the API's, not DuckDB's.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Iterable
from typing import Any

from bisonflow.local.redshift.records import ResultSet

__all__ = ["column_metadata", "redshift_type_name", "result_set", "to_field"]

#: DuckDB type name prefix -> the Redshift type name ColumnMetadata reports; the first prefix
#: that matches wins, so "TIMESTAMP WITH TIME ZONE" is tried before "TIMESTAMP". An unsigned
#: type maps to the smallest Redshift type holding its range (Redshift has none).
_TYPE_NAMES: tuple[tuple[str, str], ...] = (
    ("BOOLEAN", "bool"),
    ("TINYINT", "int2"),
    ("SMALLINT", "int2"),
    ("UTINYINT", "int2"),
    ("USMALLINT", "int4"),
    ("INTEGER", "int4"),
    ("UINTEGER", "int8"),
    ("BIGINT", "int8"),
    ("UBIGINT", "numeric"),
    ("HUGEINT", "numeric"),
    ("UHUGEINT", "numeric"),
    ("DECIMAL", "numeric"),
    ("FLOAT", "float4"),
    ("DOUBLE", "float8"),
    ("VARCHAR", "varchar"),
    ("UUID", "varchar"),
    ("DATE", "date"),
    ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
    ("TIMESTAMP", "timestamp"),
    ("TIME WITH TIME ZONE", "timetz"),
    ("TIME", "time"),
    ("INTERVAL", "interval"),
    ("BLOB", "varbyte"),
    ("GEOMETRY", "geometry"),
    ("JSON", "super"),
)


def redshift_type_name(duckdb_type: str) -> str:
    """The Redshift type name the Data API would report for a DuckDB result column."""
    upper = duckdb_type.upper()
    if upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION", "LIST")):
        return "super"
    for prefix, name in _TYPE_NAMES:
        if upper.startswith(prefix):
            return name
    return upper.lower()


def column_metadata(description: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """GetStatementResult's ColumnMetadata for a DuckDB cursor's description."""
    columns = []
    for item in description:
        name, type_code = str(item[0]), str(item[1])
        type_name = redshift_type_name(type_code)
        precision = scale = 0
        if m := re.match(r"DECIMAL\((\d+),\s*(\d+)\)", type_code.upper()):
            precision, scale = int(m.group(1)), int(m.group(2))
        columns.append(
            {
                "name": name.lower(),
                "label": name.lower(),
                "typeName": type_name,
                "nullable": 1,
                "isSigned": type_name in ("int2", "int4", "int8", "numeric", "float4", "float8"),
                "isCaseSensitive": type_name == "varchar",
                "isCurrency": False,
                "precision": precision,
                "scale": scale,
                "length": 0,
                "schemaName": "",
                "tableName": "",
            }
        )
    return columns


def _json_default(value: Any) -> Any:
    """Nested values (SUPER, arrays) as JSON text: dates ISO, decimals exact, bytes hex."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


def to_field(value: Any, type_name: str) -> dict[str, Any]:
    """One value as a Data API Field."""
    if value is None:
        return {"isNull": True}
    if type_name == "geometry" and isinstance(value, bytes | bytearray):
        return {"stringValue": bytes(value).hex().upper()}  # Redshift shows hex (E)WKB
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return {"longValue": value}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"stringValue": str(value)}  # JSON has no NaN/Infinity
    if isinstance(value, bytes | bytearray):
        return {"blobValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, dt.date | dt.time):
        return {"stringValue": value.isoformat()}
    if isinstance(value, list | tuple | dict):
        return {"stringValue": json.dumps(value, default=_json_default)}
    return {"stringValue": str(value)}


def result_set(description: list[tuple[Any, ...]], rows: Iterable[tuple[Any, ...]]) -> ResultSet:
    """A query's rows as GetStatementResult returns them."""
    columns = column_metadata(description)
    types = [c["typeName"] for c in columns]
    records = [[to_field(v, t) for v, t in zip(row, types, strict=True)] for row in rows]
    return ResultSet(columns, records)
