"""The benchmark month for bench.stats: county x species counts from integer codes, the state
and AIANNH tables aggregated from them as the aggregate SQL does, and the per-site counts per
RIIS assessment, each as UNLOAD-style parquet parts in the bench's bucket (moto's server).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from bisonflow.dimensions import (
    AIANNH,
    ASSESSMENTS,
    BY_NAME,
    MEASURES,
    REGION_COUNT_COLUMNS,
    STATE,
    assessment_column,
)
from bisonflow.layout import COUNTY_SHAPEFILE_KEY, MonthLayout
from bisonflow.sample.counties import load_counties, write_county_shapefile

BUCKET = "bisonflow-bench-stats"
LAYOUT = MonthLayout.for_month("2026-11")
NUM_STATES = 52
NUM_AIANNH = 700
#: Redshift writes one part per slice; a small cluster has a few.
PARTS_PER_TABLE = 4
#: Shares of taxa in each listed tier (riis_schema.LISTED_ASSESSMENTS order: established,
#: invasive, widespread invasive); the rest are presumed native.
RIIS_SHARES = (0.07, 0.02, 0.01)


def upload_counties(s3: Any) -> None:
    """The real county boundaries the sample ships, where the aggregate step's input is: the
    task draws its maps on them (the benchmark's synthetic sites match none, so every county
    is drawn, as in a national month)."""
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / "cb_us_county.shp"
        write_county_shapefile(load_counties(), shp, (2026, 1, 1))
        for part in Path(tmp).iterdir():
            key = COUNTY_SHAPEFILE_KEY.removesuffix(".shp") + part.suffix
            s3.put_object(Bucket=BUCKET, Key=key, Body=part.read_bytes())


#: A table's rows as columns of codes, and what makes one parquet part of them.
Rows = dict[str, np.ndarray]
MakePart = Callable[[Rows], pa.Table]


def upload_month(s3: Any, sites: int, species: int, presences: int) -> None:
    """County x species counts, the state and AIANNH tables aggregated from them, and the
    per-site counts per RIIS assessment, each as UNLOAD-style parquet parts.

    Built from integer codes with numpy (a 50,000,000-row table never exists as Python or
    Arrow strings here): each part is assembled from dictionary arrays just before it is
    written, so the parent holds the codes, one part and moto's copies of the files."""
    rng = np.random.default_rng(2026)
    site, taxon = _distinct_cells(rng, sites, species, presences)
    counts = 1 + rng.geometric(0.3, presences)
    assessment = _assessments(rng, species)
    labels = _site_labels(sites)
    state_of_site = np.arange(sites) * NUM_STATES // sites
    area_of_site = np.arange(sites) // 10 % NUM_AIANNH
    in_area = np.arange(sites) % 10 == 0  # GEOIDs ending in 0, as before
    keep = in_area[site]
    county: Rows = {"site": site, "taxon": taxon, "count": counts}
    state = _sum_by(state_of_site[site], taxon, counts, species)
    aiannh = _sum_by(area_of_site[site[keep]], taxon[keep], counts[keep], species)
    names = pa.array([f"Genus{t // 10} species{t}" for t in range(species)])
    keys = pa.array(np.arange(1_000_000, 1_000_000 + species)).cast(pa.string())  # as text
    riis = pa.array(ASSESSMENTS)
    state_labels = pa.array([f"S{i:02d}" for i in range(NUM_STATES)])
    area_labels = pa.array([f"{i:04d}" for i in range(NUM_AIANNH)])

    def species_columns(rows: dict[str, np.ndarray]) -> dict[str, pa.Array]:
        taxa = pa.array(rows["taxon"].astype(np.int32))
        return {
            "specieskey": _encoded(taxa, keys),
            "species": _encoded(taxa, names),
            "riis_assessment": _encoded(pa.array(assessment[rows["taxon"]]), riis),
            "occ_count": pa.array(rows["count"]),
        }

    def county_part(rows: dict[str, np.ndarray]) -> pa.Table:
        at = pa.array(rows["site"].astype(np.int32))
        return pa.table(
            {
                "geoid": _encoded(at, labels["geoid"]),
                "state": _encoded(at, labels["state"]),
                "county": _encoded(at, labels["geoid"]),
                "riis_region": _encoded(pa.array(np.zeros(len(at), np.int32)), pa.array(["L48"])),
                "aiannh_geoid": _encoded(at, labels["aiannh"]),
                **species_columns(rows),
            }
        )

    def upper_part(column: str, names: pa.Array) -> MakePart:
        return lambda rows: pa.table(
            {column: _encoded(pa.array(rows["site"].astype(np.int32)), names)}
            | species_columns(rows)
        )

    species_tables: dict[str, tuple[Rows, MakePart]] = {
        "county": (county, county_part),
        "state": (state, upper_part(STATE.site_column, state_labels)),
        "aiannh": (aiannh, upper_part(AIANNH.site_column, area_labels)),
    }
    site_names = {"county": labels["geoid"], "state": state_labels, "aiannh": area_labels}
    for dim, (rows, make_part) in species_tables.items():
        _put_parts(
            s3,
            LAYOUT.species_counts_prefix(dim),
            len(rows["site"]),
            _rows_part(rows, make_part),
        )
        table = region_counts(rows, assessment, BY_NAME[dim].site_column, site_names[dim])
        _put_parts(
            s3,
            LAYOUT.region_counts_prefix(dim),
            table.num_rows,
            _table_part(table),
        )


def _rows_part(rows: Rows, make_part: MakePart) -> Callable[[slice], pa.Table]:
    """The part of `rows` a slice of them is, made by `make_part`."""
    return lambda at: make_part({name: values[at] for name, values in rows.items()})


def _table_part(table: pa.Table) -> Callable[[slice], pa.Table]:
    """The part of `table` a slice of its rows is."""
    return lambda at: table.slice(at.start, at.stop - at.start)


def _put_parts(s3: Any, prefix: str, rows: int, part_of: Callable[[slice], pa.Table]) -> None:
    """PARTS_PER_TABLE parquet parts of a table of `rows` rows, each made when written."""
    step = -(-rows // PARTS_PER_TABLE)
    for part in range(PARTS_PER_TABLE):
        sink = io.BytesIO()
        # as Redshift writes them: no Arrow schema, so readers see plain string columns
        table = part_of(slice(part * step, min(rows, (part + 1) * step)))
        pq.write_table(table, sink, store_schema=False)
        key = f"{prefix}{part:04d}_part_00.parquet"
        s3.put_object(Bucket=BUCKET, Key=key, Body=sink.getvalue())


def _encoded(indices: pa.Array, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _site_labels(sites: int) -> dict[str, pa.Array]:
    """Per county: GEOID, state code and AIANNH area code (the county table's labels)."""
    return {
        "geoid": pa.array([f"{i:05d}" for i in range(sites)]),
        "state": pa.array([f"S{i * NUM_STATES // sites:02d}" for i in range(sites)]),
        "aiannh": pa.array([f"{i // 10 % NUM_AIANNH:04d}" for i in range(sites)]),
    }


def _distinct_cells(
    rng: np.random.Generator, sites: int, species: int, presences: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """`presences` distinct (site, taxon) cells drawn uniformly, in random order.

    `rng.choice(sites * species, replace=False)` permutes the whole population at this
    density (7.7 GB for 3,230 x 300,000), so cells are drawn as a Bernoulli process instead:
    geometric gaps give distinct sorted cells, a few too many, and the surplus is dropped at
    random (every cell kept with the same chance), then the cells are shuffled, as an
    UNLOAD's rows have no order."""
    population = sites * species
    if presences > population:
        raise ValueError(f"{presences:,} presences do not fit {sites:,} x {species:,} cells")
    draw = int(presences * 1.01) + 1000
    cells = np.cumsum(rng.geometric(min(1.0, draw / population), size=draw)) - 1
    cells = cells[cells < population]
    if len(cells) < presences:  # about one chance in a million; fall back to exact
        cells = rng.choice(population, size=presences, replace=False)
    else:
        surplus = rng.choice(len(cells), size=len(cells) - presences, replace=False)
        cells = np.delete(cells, surplus)
    rng.shuffle(cells)
    return (cells // species).astype(np.int32), (cells % species).astype(np.int32)


def _sum_by(
    site: npt.NDArray[np.int64], taxon: npt.NDArray[np.int32], counts: np.ndarray, species: int
) -> dict[str, np.ndarray]:
    """Counts summed per (site, taxon), as the SQL's GROUP BY does for a larger region; the
    name and assessment are the taxon's, so they need no grouping of their own."""
    cells, at = np.unique(site.astype(np.int64) * species + taxon, return_inverse=True)
    summed = np.bincount(at, weights=counts).astype(np.int64)  # exact: sums < 2**53
    return {"site": cells // species, "taxon": cells % species, "count": summed}


def region_counts(
    rows: dict[str, np.ndarray],
    assessment: npt.NDArray[np.int32],
    site_column: str,
    site_names: pa.Array,
) -> pa.Table:
    """Occurrences and species per site, overall and per assessment (REGION_COUNT_COLUMNS),
    for the sites with rows; a species-count row is one species at one site."""
    used = np.unique(rows["site"])
    at = np.searchsorted(used, rows["site"]) * len(ASSESSMENTS) + assessment[rows["taxon"]]
    size = len(used) * len(ASSESSMENTS)
    occurrences = np.bincount(at, weights=rows["count"], minlength=size).astype(np.int64)
    species = np.bincount(at, minlength=size).astype(np.int64)
    columns: dict[str, Any] = {site_column: site_names.take(pa.array(used))}
    by_measure = dict(zip(MEASURES, (occurrences, species), strict=True))
    for measure, values in by_measure.items():
        per_site = values.reshape(len(used), len(ASSESSMENTS))
        columns[measure] = per_site.sum(axis=1)
        for index, name in enumerate(ASSESSMENTS):
            columns[assessment_column(name, measure)] = per_site[:, index]
    return pa.table({name: columns[name] for name in (site_column, *REGION_COUNT_COLUMNS)})


def _assessments(rng: np.random.Generator, species: int) -> npt.NDArray[np.int32]:
    """Index into ASSESSMENTS per species: a listed tier with its RIIS_SHARES chance, else
    presumed native (the last)."""
    tier = np.searchsorted(np.cumsum(RIIS_SHARES), rng.random(species), side="right")
    return tier.astype(np.int32)  # len(RIIS_SHARES) = the index of presumed native
