"""Task: heatmaps, PAMs, biodiversity statistics and figures from the month's count tables.

For each dimension (county, state, AIANNH area) it reads the species-count table Redshift
UNLOADed as parquet parts, builds the sparse heatmap and presence-absence matrix, and writes
them as site/taxon rows with the site, species and diversity statistics; then three figures,
and three maps (bisonflow.graphics.maps) drawn on the county shapefile the aggregate step loaded.

Everything is computed and serialised before the first write, all of it under the run's own
folder (the spec's `summary` output), and the run's month record (`done`) is written last,
after every other file succeeded. The task never writes the month's marker: PublishMonth does,
after this task, in one write (bisonflow.steps.publish), so a task that fails or is stopped half-way
leaves the published month as it was.

A dimension without a single presence (say no record fell in any AIANNH area this month) is
not an error: its tables are written with their headers only, and the marker and the step
output name it under `empty_dimensions` with the reason. A missing table (no parts and no
UNLOAD manifest under its prefix) is an error naming the prefix; so is a month in which no
dimension has a presence, because that means the upstream steps published nothing.
"""

from __future__ import annotations

import io
import itertools
import json
import posixpath
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from bisonflow.aws import client, error_code
from bisonflow.dimensions import COUNTY, REGION_COUNT_COLUMNS, STATE, Dimension, dimension
from bisonflow.graphics import figures, maps
from bisonflow.graphics.shapefile import read_polygons
from bisonflow.layout import COUNTY_SHAPEFILE_KEY, DIMENSIONS, MonthLayout
from bisonflow.sql.unload import MANIFEST_NAME  # the file UNLOAD ... MANIFEST writes
from bisonflow.stats.pam import (
    OCC_COUNT,
    SITE,
    TAXON,
    LabelPieces,
    Matrices,
    add_pieces,
    diversity_stats,
    heatmap_from_pieces,
    presence_absence,
    richness,
    site_stats,
    species_stats,
)
from bisonflow.stats.provenance import read_citation
from bisonflow.stats.streamed_objects import StreamedObject, StreamedOutputs, content_type
from bisonflow.steps.month_record import month_record
from bisonflow.steps.taskspec import CalcStatsSpec

#: Parallel S3 requests (parts of an UNLOAD are read, output files written, concurrently).
S3_CONCURRENCY = 8

STRING, INTEGER = "string", "integer"
#: How STRING columns are read: dictionary-encoded, as parquet stores them, so millions of
#: rows of a few thousand site labels are never decoded into separate strings.
LABELS = pa.dictionary(pa.int32(), pa.string())
#: Per dimension, in the step output and the marker.
SUMMARY_FIELDS = ("sites", "species", "presences")


@dataclass(frozen=True)
class DimensionResult:
    """One dimension's matrices and where they came from."""

    dimension: Dimension
    source: str  # s3://bucket/prefix of the species-count table
    rows: int  # rows read, nulls included
    null_rows: int  # rows without a site, taxon or count (left out, and counted)
    min_count: int
    matrices: Matrices

    @property
    def empty_reason(self) -> str | None:
        """Why the PAM has no presence, or None when it has some."""
        if self.matrices.pam.num_sites:
            return None
        if self.rows == self.null_rows:
            return f"no rows with a {self.dimension.site_column} in {self.source}"
        return f"no occ_count >= min_presence_count {self.min_count} in {self.source}"

    def summary(self) -> dict[str, int]:
        """SUMMARY_FIELDS of the PAM."""
        pam = self.matrices.pam
        return {"sites": pam.num_sites, "species": pam.num_species, "presences": pam.nnz}


def run(spec: CalcStatsSpec) -> dict[str, Any]:
    """Computes and publishes the month; on any failure, the outputs already streamed to S3
    (multipart uploads, invisible until completed) are aborted before the error is raised."""
    s3 = client("s3")
    outputs = StreamedOutputs(s3, spec.bucket, S3_CONCURRENCY)
    try:
        return _run(spec, s3, outputs)
    except BaseException:
        outputs.abort()
        raise
    finally:
        outputs.shutdown()


def _run(spec: CalcStatsSpec, s3: Any, outputs: StreamedOutputs) -> dict[str, Any]:
    summary_prefix, done_key = spec.outputs.summary, spec.outputs.record
    min_count = spec.settings.min_presence_count
    species_counts = spec.inputs.species_counts
    started = time.perf_counter()
    # Which snapshot, cited as GBIF asks: read first, a month without it is not published.
    layout = MonthLayout.for_summary_prefix(spec.month, summary_prefix)  # the run's folders
    citation = read_citation(s3, spec.inputs.gbif_citation, layout)

    # The dimensions are independent, and hashing, sorting and parquet coding release the
    # GIL, so the dimensions are read and built, and their files serialised, side by side.
    with ThreadPoolExecutor(len(DIMENSIONS) + 1) as pool:
        state_counts, county_counts = (
            pool.submit(
                read_table,
                s3,
                spec.bucket,
                prefix,
                {d.site_column: STRING} | {c: INTEGER for c in REGION_COUNT_COLUMNS},
            )
            for d, prefix in (
                (STATE, spec.inputs.state_counts),
                (COUNTY, spec.inputs.county_counts),
            )
        )
        counties = pool.submit(read_county_map, s3, spec.bucket)  # the aggregate's counties
        pending = {
            dim: pool.submit(
                _dimension_result,
                s3,
                spec.bucket,
                species_counts[dim],
                dimension(dim),
                min_count,
            )
            for dim in DIMENSIONS
        }
        extras = pool.submit(
            month_record,
            s3,
            spec.bucket,
            layout,
            citation,
            species_counts[COUNTY.name],
            lambda prefix: part_keys(s3, spec.bucket, prefix),
        )  # provenance, new this month (bisonflow.steps.month_record)
        extras.add_done_callback(  # the part that grows with the tables' rows, timed apart
            lambda _: _log(f"month record ready at {time.perf_counter() - started:.1f}s")
        )
        # Each dimension's files are written while the others build (the county's last); its
        # streamed outputs stay invisible until published, and are aborted on any failure.
        tables, built = [], {}
        dims = {future: dim for dim, future in pending.items()}
        for future in as_completed(dims):
            built[dims[future]] = result = future.result()
            tables.append(
                pool.submit(
                    dimension_files,
                    dims[future],
                    result.matrices,
                    lambda name: outputs.open(_join(summary_prefix, name)),
                )
            )
        results = {dim: built[dim] for dim in DIMENSIONS}
        if all(r.empty_reason for r in results.values()):
            reasons = "; ".join(f"{d}: {r.empty_reason}" for d, r in results.items())
            raise ValueError(f"no dimension has a presence, nothing to publish ({reasons})")
        _log(f"read and built matrices in {time.perf_counter() - started:.1f}s")

        files: dict[str, bytes | StreamedObject] = {
            **figure_files(spec.month, results, state_counts.result()),  # meanwhile
            **map_files(spec.month, results, county_counts.result(), counties.result()),
        }
        for table in tables:
            files |= table.result()
    _log(f"computed {len(files)} files in {time.perf_counter() - started:.1f}s")

    keys = {_join(summary_prefix, name): body for name, body in files.items()}
    keys |= extras.result().files
    empty = {dim: r.empty_reason for dim, r in results.items() if r.empty_reason}
    _log(f"month record and {len(keys)} files ({sum(map(_size, keys.values())):,} bytes) to write")
    publish(
        s3,
        spec.bucket,
        keys,
        done_key,
        {
            "month": spec.month,
            "min_presence_count": min_count,
            "files": sorted(keys),
            "dimensions": {d: r.summary() | {"null_rows": r.null_rows} for d, r in results.items()},
            "empty_dimensions": empty,
            **extras.result().record,
        },
    )
    _log(f"month complete in {time.perf_counter() - started:.1f}s: s3://{spec.bucket}/{done_key}")
    return {
        "summary_prefix": summary_prefix,
        "done": done_key,
        "files": len(keys),
        "min_presence_count": min_count,
        **{what: {d: r.summary()[what] for d, r in results.items()} for what in SUMMARY_FIELDS},
        "empty_dimensions": sorted(empty),
        **extras.result().record,
    }


def publish(
    s3: Any,
    bucket: str,
    files: Mapping[str, bytes | StreamedObject],
    done_key: str,
    marker: Mapping[str, Any],
) -> None:
    """Writes every file (concurrently), then, only if all of them succeeded, the marker. A
    file streamed while it was computed (bisonflow.stats.streamed_objects) is completed here: its
    object appears now, like the others."""

    def put(key: str) -> None:
        body = files[key]
        if isinstance(body, StreamedObject):
            body.publish()
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type(key))
        _log(f"wrote s3://{bucket}/{key} ({_size(body):,} bytes)")

    with ThreadPoolExecutor(S3_CONCURRENCY) as pool:
        for future in [pool.submit(put, key) for key in files]:
            future.result()  # the first failure is raised, after every put has finished
    s3.put_object(
        Bucket=bucket,
        Key=done_key,
        Body=json.dumps(marker, indent=2).encode("utf-8"),
        ContentType="application/json",
    )


def dimension_files(
    dim: str, matrices: Matrices, open_output: Callable[[str], StreamedObject]
) -> dict[str, StreamedObject]:
    """Writes one dimension's files, each into a new output `open_output(name)` as it is
    produced (header-only tables when the PAM is empty); file name -> output. The heatmap
    and PAM go out a slice of sites at a time (SiteSpeciesMatrix.to_batches): a national
    county table is 50,000,000 rows."""
    files = {
        name: open_output(name)
        for name in (
            f"pam_{dim}.parquet",
            f"heatmap_{dim}.parquet",
            f"stats_sites_{dim}.csv",
            f"stats_species_{dim}.csv",
            f"stats_diversity_{dim}.csv",
        )
    }
    _write_parquet(matrices.pam.to_batches(), files[f"pam_{dim}.parquet"])
    _write_parquet(matrices.heatmap.to_batches(OCC_COUNT), files[f"heatmap_{dim}.parquet"])
    pa_csv.write_csv(site_stats(matrices.pam), files[f"stats_sites_{dim}.csv"])
    pa_csv.write_csv(species_stats(matrices.pam), files[f"stats_species_{dim}.csv"])
    pa_csv.write_csv(diversity_stats(matrices.pam), files[f"stats_diversity_{dim}.csv"])
    return files


def figure_files(
    month: str, results: Mapping[str, DimensionResult], state_counts: pa.Table
) -> dict[str, bytes]:
    """Richness and RIIS share per state, and the county PAM as an image."""
    state_pam = results[STATE.name].matrices.pam
    return {
        "figure_richness_state.png": figures.richness_per_state(
            state_pam.sites, richness(state_pam), month
        ),
        "figure_riis_share_state.png": figures.riis_share_per_state(
            state_counts, STATE.site_column, month
        ),
        "figure_heatmap_county.png": figures.pam_heatmap(
            results["county"].matrices.pam, month, "county"
        ),
    }


def map_files(
    month: str,
    results: Mapping[str, DimensionResult],
    county_counts: pa.Table,
    counties: maps.CountyMap,
) -> dict[str, bytes]:
    """County richness, county share of species per listed tier, state richness, as maps."""
    species_share = figures.listed_species_shares(county_counts, COUNTY.site_column)
    return {
        "map_richness_county.png": maps.richness_per_county(
            counties, _richness_by_site(results[COUNTY.name]), month
        ),
        "map_riis_share_county.png": maps.listed_share_per_county(counties, species_share, month),
        "map_richness_state.png": maps.richness_per_state(
            counties, _richness_by_site(results[STATE.name]), month
        ),
    }


def read_county_map(s3: Any, bucket: str) -> maps.CountyMap:
    """The county shapefile the aggregate step loads (.shp and .dbf), projected for the maps."""
    bodies = {}
    for suffix in (".shp", ".dbf"):
        key = COUNTY_SHAPEFILE_KEY.removesuffix(".shp") + suffix
        try:
            bodies[suffix] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            code = error_code(error)
            raise ValueError(f"county boundaries s3://{bucket}/{key}: {code}") from None
    where = f"s3://{bucket}/{COUNTY_SHAPEFILE_KEY}"
    polygons = read_polygons(bodies[".shp"], bodies[".dbf"], ("GEOID", "STUSPS"), where)
    return maps.county_map(polygons)


def _richness_by_site(result: DimensionResult) -> dict[str, float]:
    pam = result.matrices.pam
    return dict(zip(pam.sites.to_pylist(), richness(pam).tolist(), strict=True))


def read_table(s3: Any, bucket: str, prefix: str, columns: Mapping[str, str]) -> pa.Table:
    """The named columns of every part under `prefix`, each part cast to one schema (parts
    of one UNLOAD can differ in integer width): INTEGER columns as int64, STRING columns as
    LABELS. STRING columns must be strings: an integer FIPS code has lost its leading zeros,
    so it is refused rather than guessed at, and taxon keys are text from the subset on
    (bisonflow.gbif.schema), so an integer species key means a table from older SQL."""
    keys = part_keys(s3, bucket, prefix)
    with ThreadPoolExecutor(S3_CONCURRENCY) as pool:
        parts = list(pool.map(lambda key: _read_part(s3, bucket, key, columns), keys))
    schema = pa.schema(
        [(name, LABELS if kind == STRING else pa.int64()) for name, kind in columns.items()]
    )
    return pa.concat_tables(parts) if parts else schema.empty_table()


def part_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The parquet parts of the table under `prefix`.

    With an UNLOAD manifest, exactly the parts it lists (each must exist; anything else under
    the prefix is not part of this UNLOAD and is left out, with a log line). Redshift writes
    no part for an empty result, so a manifest listing no entries is an empty table. Without
    a manifest, every object except `_`-named ones (_SUCCESS etc.) and folder markers; a
    prefix holding nothing at all is a missing table."""
    where = f"s3://{bucket}/{prefix}"
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    except ClientError as exc:
        raise FileNotFoundError(f"cannot list {where}: {exc}") from exc
    names = {posixpath.basename(k): k for k in keys}
    parts = sorted(k for k in keys if _is_part(posixpath.basename(k)))
    if MANIFEST_NAME in names:
        listed = _manifest_parts(s3, bucket, names[MANIFEST_NAME])
        missing = sorted(set(listed) - set(parts))
        if missing:
            raise FileNotFoundError(f"{where}: parts listed in the manifest are missing: {missing}")
        unlisted = sorted(set(parts) - set(listed))
        if unlisted:
            _log(f"{where}: ignoring {unlisted}: not in the UNLOAD manifest")
        return sorted(listed)
    if not parts:
        raise FileNotFoundError(f"no parquet part files under {where} (and no UNLOAD manifest)")
    return parts


def _dimension_result(
    s3: Any, bucket: str, prefix: str, dim: Dimension, min_count: int
) -> DimensionResult:
    """Reads the species-count table one part at a time, keeping of each only its rows' label
    indices and counts (16 bytes a row), and builds the matrices from those pieces: a
    national county table (50,000,000 rows) is never one Arrow table."""
    source = f"s3://{bucket}/{prefix}"
    columns = {dim.site_column: STRING, TAXON: STRING, OCC_COUNT: INTEGER}
    sites: LabelPieces = []
    taxa: LabelPieces = []
    counts: list[npt.NDArray[np.integer]] = []
    rows = null_rows = negative = 0
    for key in part_keys(s3, bucket, prefix):
        part = _read_part(s3, bucket, key, columns)
        complete = part.drop_null()
        rows, null_rows = rows + part.num_rows, null_rows + part.num_rows - complete.num_rows
        negative += pc.sum(pc.less(complete[OCC_COUNT], 0)).as_py() or 0
        add_pieces(complete.select(list(columns)), sites, taxa, counts)
        del part, complete
    if negative:
        raise ValueError(f"{source}: {negative} rows have a negative {OCC_COUNT}")
    heatmap = heatmap_from_pieces(sites, taxa, counts)
    matrices = Matrices(heatmap, presence_absence(heatmap, min_count))
    result = DimensionResult(dim, source, rows, null_rows, min_count, matrices)
    pam = matrices.pam
    _log(
        f"{dim.name}: {rows} rows ({result.null_rows} with nulls left out) -> "
        f"{pam.num_sites} sites x {pam.num_species} species, {pam.nnz} presences"
        + (f"; EMPTY: {result.empty_reason}" if result.empty_reason else "")
    )
    return result


def _manifest_parts(s3: Any, bucket: str, key: str) -> list[str]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        entries = json.loads(body)["entries"]
        urls = [entry["url"] for entry in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"s3://{bucket}/{key} is not an UNLOAD manifest: {exc!r}") from None
    return [url.removeprefix(f"s3://{bucket}/") for url in urls]


def _is_part(name: str) -> bool:
    return bool(name) and not name.startswith("_") and name != MANIFEST_NAME


def _read_part(s3: Any, bucket: str, key: str, columns: Mapping[str, str]) -> pa.Table:
    where = f"s3://{bucket}/{key}"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    strings = [name for name, kind in columns.items() if kind == STRING]
    try:
        names = pq.read_schema(io.BytesIO(body)).names
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"{where} is not a parquet file: {exc}") from None
    missing = [c for c in columns if c not in names]
    if missing:  # checked first: read_dictionary of a column the file lacks is a KeyError
        raise ValueError(f"{where} lacks column(s) {missing}; has {names}")
    part = pq.ParquetFile(io.BytesIO(body), read_dictionary=strings)
    table = part.read(columns=list(columns))
    return pa.table({name: _cast(table, name, kind, where) for name, kind in columns.items()})


def _cast(table: pa.Table, name: str, kind: str, where: str) -> pa.ChunkedArray:
    column = table[name]
    value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if kind == STRING:
        if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
            raise ValueError(f"{where}: column {name} must be a string, got {column.type}")
        return pc.cast(column, LABELS)
    if not pa.types.is_integer(value_type):
        raise ValueError(f"{where}: column {name} must be an integer, got {column.type}")
    return pc.cast(column, pa.int64())


def _write_parquet(batches: Iterator[pa.Table], sink: StreamedObject) -> None:
    """The batches (one table's slices, SiteSpeciesMatrix.to_batches) as one parquet file,
    a row group per slice. Dictionary-encoded label columns are written as dictionary pages
    straight from their indices, and without the Arrow schema (store_schema=False), so a
    reader sees plain string columns, as the published schema says. Column statistics are
    kept for the site only: rows are ordered by site, so its min/max lets a reader skip row
    groups, while every row group spans nearly every species, and computing the species'
    min/max from its dictionary-encoded column tripled the write time."""
    first = next(batches)
    with pq.ParquetWriter(
        sink, first.schema, store_schema=False, write_statistics=[SITE]
    ) as writer:
        for batch in itertools.chain([first], batches):
            writer.write_table(batch, row_group_size=max(batch.num_rows, 1))


def _size(body: bytes | StreamedObject) -> int:
    return body.size if isinstance(body, StreamedObject) else len(body)


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def _log(message: str) -> None:
    print(f"calc_stats: {message}", flush=True)
