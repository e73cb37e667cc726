"""Task: heatmaps, PAMs and biodiversity statistics from the month's species counts.

Reads the county and state species-count tables Redshift UNLOADed as parquet parts, and
writes, per dimension, the heatmap and PAM (as site/taxon triples) and the site, species and
diversity statistics. Everything is computed before the first write, and the done marker is
written last: a reader that sees the marker sees a complete month.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from bisonflow.aws import client
from bisonflow.pam import Matrices, build_matrices, diversity_stats, site_stats, species_stats
from bisonflow.taskspec import TaskSpec


@dataclass(frozen=True)
class Dimension:
    name: str  # "county" / "state", used in file names
    input_name: str  # spec.inputs entry holding the parquet prefix
    site_column: str  # column identifying the site in that table


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("county", "county_counts", "geoid"),
    Dimension("state", "state_counts", "state"),
)
TAXON_COLUMN = "taxonkey"
COUNT_COLUMN = "occ_count"


def run(spec: TaskSpec) -> dict[str, Any]:
    summary_prefix = _spec_value(spec.outputs, "outputs", "summary")
    done_key = _spec_value(spec.outputs, "outputs", "done")
    min_count = _min_presence_count(spec.params)
    s3 = client("s3")

    results: dict[str, Matrices] = {}
    for dim in DIMENSIONS:
        prefix = _spec_value(spec.inputs, "inputs", dim.input_name)
        table = read_counts(s3, spec.bucket, prefix, dim.site_column)
        results[dim.name] = _matrices(table, dim, min_count, f"s3://{spec.bucket}/{prefix}")

    files = {
        _join(summary_prefix, name): body
        for dim_name, matrices in results.items()
        for name, body in dimension_files(dim_name, matrices).items()
    }
    for key, body in files.items():
        s3.put_object(Bucket=spec.bucket, Key=key, Body=body)
        print(f"calc_stats: wrote s3://{spec.bucket}/{key}", flush=True)

    sites = {name: m.pam.num_sites for name, m in results.items()}
    species = {name: m.pam.num_species for name, m in results.items()}
    marker = {
        "month": spec.month,
        "min_presence_count": min_count,
        "files": sorted(files),
        "sites": sites,
        "species": species,
    }
    s3.put_object(
        Bucket=spec.bucket,
        Key=done_key,
        Body=json.dumps(marker, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    print(f"calc_stats: month complete, marker s3://{spec.bucket}/{done_key}", flush=True)
    return {
        "summary_prefix": summary_prefix,
        "files": len(files),
        "sites": sites,
        "species": species,
    }


def read_counts(s3: Any, bucket: str, prefix: str, site_column: str) -> pa.Table:
    """(site_column, taxonkey, occ_count) from every part under `prefix`, nulls dropped."""
    columns = [site_column, TAXON_COLUMN, COUNT_COLUMN]
    parts = [_read_part(s3, bucket, key, columns) for key in _part_keys(s3, bucket, prefix)]
    table = pa.concat_tables(parts)
    complete = table.drop_null()
    if complete.num_rows < table.num_rows:
        dropped = table.num_rows - complete.num_rows
        print(f"calc_stats: s3://{bucket}/{prefix}: dropped {dropped} rows with nulls", flush=True)
    return complete


def dimension_files(dim: str, matrices: Matrices) -> dict[str, bytes]:
    """File name -> content for one dimension."""
    site, taxon, count = matrices.heatmap.triples()
    pam_site, pam_taxon, _ = matrices.pam.triples()
    return {
        f"pam_{dim}.parquet": _parquet({"site": pam_site, "taxonkey": pam_taxon}),
        f"heatmap_{dim}.parquet": _parquet({"site": site, "taxonkey": taxon, "occ_count": count}),
        f"stats_sites_{dim}.csv": _csv(site_stats(matrices.pam)),
        f"stats_species_{dim}.csv": _csv(species_stats(matrices.pam)),
        f"stats_diversity_{dim}.csv": _csv(
            {k: [v] for k, v in diversity_stats(matrices.pam).items()}
        ),
    }


def _matrices(table: pa.Table, dim: Dimension, min_count: int, where: str) -> Matrices:
    matrices = build_matrices(
        table.column(dim.site_column).to_numpy(zero_copy_only=False),
        table.column(TAXON_COLUMN).to_numpy(),
        table.column(COUNT_COLUMN).to_numpy(),
        min_count,
    )
    if matrices.pam.num_sites == 0:
        raise ValueError(
            f"{where}: {table.num_rows} rows but no {dim.name} has a species with "
            f"occ_count >= {min_count}; refusing to write empty statistics"
        )
    print(
        f"calc_stats: {dim.name}: {matrices.pam.num_sites} sites x "
        f"{matrices.pam.num_species} species, {matrices.pam.matrix.nnz} presences",
        flush=True,
    )
    return matrices


def _part_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Objects under the prefix except `_`-named ones (_SUCCESS etc.), folder markers and an
    UNLOAD ... MANIFEST file, which is JSON, not a part."""
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    except ClientError as exc:
        raise FileNotFoundError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
    parts = [k for k in keys if _is_part(posixpath.basename(k))]
    if not parts:
        raise FileNotFoundError(f"no parquet part files under s3://{bucket}/{prefix}")
    return sorted(parts)


def _is_part(name: str) -> bool:
    return bool(name) and not name.startswith("_") and name != "manifest"


def _read_part(s3: Any, bucket: str, key: str, columns: list[str]) -> pa.Table:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        part = pq.ParquetFile(io.BytesIO(body))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"s3://{bucket}/{key} is not a parquet file: {exc}") from None
    missing = [c for c in columns if c not in part.schema_arrow.names]
    if missing:
        raise ValueError(
            f"s3://{bucket}/{key} lacks column(s) {missing}; has {part.schema_arrow.names}"
        )
    table = part.read(columns=columns)
    return _normalised(table, columns, f"s3://{bucket}/{key}")


def _normalised(table: pa.Table, columns: list[str], where: str) -> pa.Table:
    """Parts of one UNLOAD can differ in integer width; give every part one schema."""
    site, taxon, count = columns
    site_type = table.schema.field(site).type
    if not (pa.types.is_string(site_type) or pa.types.is_large_string(site_type)):
        # An integer FIPS code has lost its leading zeros: refuse rather than guess.
        raise ValueError(f"{where}: column {site} must be a string, got {site_type}")
    for name in (taxon, count):
        if not pa.types.is_integer(table.schema.field(name).type):
            raise ValueError(f"{where}: column {name} must be an integer, got {table[name].type}")
    return pa.table(
        {
            site: pc.cast(table[site], pa.string()),
            taxon: pc.cast(table[taxon], pa.int64()),
            count: pc.cast(table[count], pa.int64()),
        }
    )


def _parquet(columns: Mapping[str, np.ndarray]) -> bytes:
    types = {"site": pa.string(), "taxonkey": pa.int64(), "occ_count": pa.int64()}
    table = pa.table({name: pa.array(values, type=types[name]) for name, values in columns.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _csv(columns: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(_plain(values) for values in columns.values()), strict=True))
    return out.getvalue().encode("utf-8")


def _plain(values: Any) -> list[Any]:
    """numpy scalars -> Python ones, so CSV cells read '3' and '0.75', not 'np.int64(3)'."""
    return np.asarray(values).tolist()


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def _min_presence_count(params: Mapping[str, Any]) -> int:
    raw = params.get("min_presence_count", 1)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    if isinstance(raw, str) and raw.strip().isdigit() and int(raw) >= 1:
        return int(raw)
    raise ValueError(f"params.min_presence_count must be an integer >= 1, got {raw!r}")


def _spec_value(mapping: Mapping[str, str], section: str, name: str) -> str:
    value = str(mapping.get(name, "")).strip()
    if not value:
        raise ValueError(f"task spec has no {section}[{name!r}]")
    return value
