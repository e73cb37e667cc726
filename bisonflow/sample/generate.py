"""generate_sample: one deterministic month of BISON inputs, laid out as the buckets hold them.

The local runtime and the tests need realistic inputs without touching AWS or GBIF: a GBIF
snapshot, the US-RIIS master list, county boundaries, and what GBIF's name matcher would say.
Everything derives from one seed through independent numpy streams (species ranges,
taxonomy, RIIS, occurrences), so the same seed gives the same bytes, and changing the record
count leaves the ranges, the taxonomy and the RIIS list unchanged. The counties and AIANNH
areas are real (vendored), and the points records are placed at are drawn once per process
with a seed of their own (geography.POOL_SEED): they are part of the geography.

Layout under out_dir (bucket keys mirrored, so an upload is a walk of the folder):
    gbif/occurrence/<snapshot>/occurrence.parquet/000000 ...   GBIF open-data bucket
    gbif/occurrence/<snapshot>/citation.txt
    bison/input/riis/USRIISv2_MasterList.csv                   BISON bucket
    bison/input/boundaries/cb_us_county.{shp,shx,dbf,prj,cpg}  the real census counties
    bison/input/boundaries/cb_us_aiannh.{shp,shx,dbf,prj,cpg}  the real census AIANNH layer
    gbif_species_match.json                                    /v1/species/match stand-in
    sample_manifest.json                                       the manifest, for humans
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, RIIS_INPUT_KEY, MonthLayout
from bisonflow.riis.columns import RIIS_REGIONS
from bisonflow.sample.geography import AIANNH_SOURCE, Pools, pools
from bisonflow.sample.listings import Listings
from bisonflow.sample.occurrence_draws import Places
from bisonflow.sample.occurrences import FIRST_GBIFID, generate_occurrences, merge_facts
from bisonflow.sample.ranges import build_ranges, county_centres
from bisonflow.sample.riis import DEGREES, RiisRow, RiisTaxon, list_rows, list_taxa, write_riis_csv
from bisonflow.sample.snapshot import write_parts
from bisonflow.sample.taxa import Backbone, build_backbone, match_body
from bisonflow.sample.taxon_arrays import TaxonArrays

#: Snapshot date used when none is given: fixed, so the output depends only on the arguments.
DEFAULT_SNAPSHOT = dt.date(2026, 11, 1)
DEFAULT_SEED = 20261101
DEFAULT_RECORDS = 250_000
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: Rows per parquet part file (GBIF's are ~100 MB each; ours stay small but several).
_ROWS_PER_PART = 50_000
_MIN_PARTS = 2
#: Records generated at once: memory stays near 1.5 GB however many records are asked for
#: (the benchmark's ten million). A sample of at most this many is one chunk.
CHUNK_RECORDS = 1_000_000
#: The manifest's file under the sample's root.
MANIFEST_NAME = "sample_manifest.json"
#: The manifest's fields that are paths under the sample's root.
PATH_FIELDS = (
    "snapshot_dir",
    "riis_csv",
    "county_shapefile",
    "aiannh_shapefile",
    "species_match_json",
)


@dataclass(frozen=True)
class SampleManifest:
    """Where the generated inputs are, and facts about them that tests can assert."""

    root: Path
    snapshot_dir: Path  # the snapshot's occurrence.parquet/ folder of part files
    riis_csv: Path
    county_shapefile: Path  # .shx, .dbf, .prj (and .cpg) beside it
    aiannh_shapefile: Path  # the real census layer (AIANNH_SOURCE), copied; sidecars beside it
    species_match_json: Path
    records: int
    expected: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "snapshot_dir": str(self.snapshot_dir),
            "riis_csv": str(self.riis_csv),
            "county_shapefile": str(self.county_shapefile),
            "aiannh_shapefile": str(self.aiannh_shapefile),
            "species_match_json": str(self.species_match_json),
            "records": self.records,
            "expected": self.expected,
        }

    def write(self) -> None:
        """The manifest as JSON in the sample's root, for humans and for `load`."""
        (self.root / MANIFEST_NAME).write_text(
            json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", "utf-8"
        )

    @classmethod
    def load(cls, root: Path, stored_at: Path | None = None) -> SampleManifest:
        """The manifest of the sample under `root`. `stored_at` is where the sample was when
        its manifest was written (default: the manifest's own root), for a sample copied
        since (bisonflow.sample.cache): its paths are moved under `root`."""
        data = json.loads((root / MANIFEST_NAME).read_text("utf-8"))
        old_root = Path(data["root"]) if stored_at is None else stored_at
        paths = {name: root / Path(data[name]).relative_to(old_root) for name in PATH_FIELDS}
        return cls(root=root, records=data["records"], expected=data["expected"], **paths)


def _match_table(backbone: Backbone, riis_taxa: list[RiisTaxon]) -> dict[str, dict[str, Any]]:
    """Query name -> /species/match body: every RIIS name and every backbone taxon records use.

    Occurrence taxa are listed by canonical name ("Festuca rubra fallax" for a subspecies),
    whether or not this run's records happen to draw them, so the table does not depend on
    the record count. Every synonym's acceptedUsageKey is the usageKey of an ACCEPTED entry.
    """
    table: dict[str, dict[str, Any]] = {}
    for usage in backbone.occurrence_taxa:
        table[usage.canonical] = match_body(backbone, usage, "EXACT", 99)
    for taxon in riis_taxa:
        table[taxon.name] = taxon.match  # the list's own spelling wins if both exist
    return dict(sorted(table.items()))


def _json_lines(table: dict[str, Any]) -> str:
    """A JSON object with one name per line: valid JSON that still diffs and greps well."""
    lines = [
        f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in table.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _citation(snapshot: dt.date) -> str:
    return (
        "Sample data generated by bisonflow.sample for a GBIF occurrence snapshot of "
        f"{snapshot.isoformat()}. Not real GBIF data.\n"
    )


def generate_sample(
    out_dir: Path,
    records: int = DEFAULT_RECORDS,
    seed: int = DEFAULT_SEED,
    snapshot: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SampleManifest:
    """Write one month of sample inputs under out_dir and describe them.

    Deterministic for (records, seed, snapshot). Files of a previous run in the same places
    are replaced; the snapshot's part folder is emptied first so no stale part survives.
    """
    if records < 1:
        raise ValueError(f"records must be >= 1, got {records}")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    snapshot = (snapshot or DEFAULT_SNAPSHOT).replace(day=1)  # GBIF snapshots are monthly
    out_dir = Path(out_dir)
    # Four streams: ranges, taxonomy, RIIS, occurrences (the geography's point pools have
    # their own fixed seed, geography.POOL_SEED).
    seeds = np.random.SeedSequence(seed).spawn(4)
    geo_rng, taxa_rng, riis_rng, occ_rng = (np.random.default_rng(s) for s in seeds)
    where = _files_under(out_dir, snapshot, records)  # what they hold comes last (`expected`)

    geography = pools()
    _write_boundaries(geography, where, snapshot, say)
    backbone = build_backbone(taxa_rng)
    riis_taxa = list_taxa(backbone, taxa_rng)
    rows = list_rows(riis_taxa, riis_rng)
    say(f"writing {len(rows)} US-RIIS rows ({len(riis_taxa)} names) ...")
    n_riis = write_riis_csv(where.riis_csv, rows, riis_rng)
    listings = Listings(backbone, rows)
    tx = TaxonArrays(backbone)
    places = _places(geography, geo_rng, tx, listings)

    say(f"writing {records:,} GBIF records ...")
    streams = _OccurrenceStreams(occ_rng, seeds[3])
    facts, paths = _write_records(where, snapshot, chunk_records, streams, tx, places, listings)
    citation = where.snapshot_dir.parent / "citation.txt"
    citation.write_text(_citation(snapshot), encoding="utf-8")

    table = _match_table(backbone, riis_taxa)
    say(f"writing {len(table)} species-match answers ...")
    where.species_match_json.parent.mkdir(parents=True, exist_ok=True)
    where.species_match_json.write_text(_json_lines(table), "utf-8")

    counties = places.counties
    expected: dict[str, Any] = {
        "seed": seed,
        "snapshot": snapshot.isoformat(),
        "records": records,
        **facts,
        "states": counties.states,
        "counties": len(counties),
        "aiannh_areas_with_points": int(np.unique(places.aiannh_points.area).size),
        "part_files": [p.name for p in paths],
        **_riis_facts(rows, riis_taxa, n_riis),
        "match_names": len(table),
    }
    manifest = dataclasses.replace(where, expected=expected)
    manifest.write()
    say(f"sample data ready in {out_dir} ({time.perf_counter() - started:.1f} s)")
    return manifest


def _files_under(out_dir: Path, snapshot: dt.date, records: int) -> SampleManifest:
    """Where the sample's files go, bucket keys mirrored; nothing about their content yet."""
    return SampleManifest(
        root=out_dir,
        snapshot_dir=out_dir / "gbif" / MonthLayout(snapshot).gbif_prefix,
        riis_csv=out_dir / "bison" / RIIS_INPUT_KEY,
        county_shapefile=out_dir / "bison" / COUNTY_SHAPEFILE_KEY,
        aiannh_shapefile=out_dir / "bison" / AIANNH_SHAPEFILE_KEY,
        species_match_json=out_dir / "gbif_species_match.json",
        records=records,
        expected={},
    )


def _riis_facts(rows: list[RiisRow], riis_taxa: list[RiisTaxon], n_riis: int) -> dict[str, Any]:
    """What the US-RIIS list holds, for the manifest's `expected`."""
    kinds = sorted({t.kind for t in riis_taxa})
    return {
        "riis_rows": n_riis,
        "riis_names": len({t.name for t in riis_taxa}),
        "riis_rows_by_region": {r: sum(row.locality == r for row in rows) for r in RIIS_REGIONS},
        "riis_rows_by_degree": {d: sum(row.degree == d for row in rows) for d in DEGREES},
        "riis_names_by_kind": {k: sorted(t.name for t in riis_taxa if t.kind == k) for k in kinds},
        "riis_resolved": {t.name: t.key for t in riis_taxa},
    }


def _write_boundaries(
    geography: Pools, manifest: SampleManifest, snapshot: dt.date, say: Callable[[str], None]
) -> None:
    """The county shapefile drawn from the vendored layer, and the AIANNH areas as vendored."""
    counties = geography.geography.counties
    shapefile, aiannh = manifest.county_shapefile, manifest.aiannh_shapefile
    say(
        f"writing {len(counties)} counties in {len(counties.states)} states to {shapefile.name} ..."
    )
    geography.geography.write_county_shapefile(
        shapefile, (snapshot.year, snapshot.month, snapshot.day)
    )
    aiannh.parent.mkdir(parents=True, exist_ok=True)
    for suffix in _SHAPEFILE_PARTS:
        shutil.copyfile(AIANNH_SOURCE.with_suffix(suffix), aiannh.with_suffix(suffix))


def _places(
    geography: Pools, geo_rng: np.random.Generator, tx: TaxonArrays, listings: Listings
) -> Places:
    """Where records can be: county points, AIANNH points, each species' range."""
    counties = geography.geography.counties
    points = geography.county
    return Places(
        counties=counties,
        points=points,
        aiannh_points=geography.aiannh,
        aiannh_geoid=geography.geography.aiannh_geoid,
        ranges=build_ranges(
            geo_rng,
            counties,
            county_centres(counties, points.lon, points.lat, points.county),
            np.unique(tx.species_key),
            listings.species_regions,
        ),
        territory_weight=np.where(
            counties.region < 0, np.sqrt(counties.aland.astype(np.float64)), 0.0
        ),
    )


@dataclass(frozen=True)
class _OccurrenceStreams:
    """Chunk 0 draws from the occurrence stream itself, later chunks from its children."""

    first: np.random.Generator
    seed: np.random.SeedSequence

    def for_chunks(self, chunks: int) -> list[np.random.Generator]:
        return [self.first] + [np.random.default_rng(s) for s in self.seed.spawn(chunks - 1)]


def _write_records(
    manifest: SampleManifest,
    snapshot: dt.date,
    chunk_records: int,
    streams: _OccurrenceStreams,
    tx: TaxonArrays,
    places: Places,
    listings: Listings,
) -> tuple[dict[str, Any], list[Path]]:
    """The snapshot's parquet parts, chunk by chunk, and the facts its records add up to."""
    records, snapshot_dir = manifest.records, manifest.snapshot_dir
    if snapshot_dir.exists():
        shutil.rmtree(snapshot_dir)
    chunks = math.ceil(records / chunk_records)
    facts: dict[str, Any] = {}
    taxonkeys: list[np.ndarray] = []
    specieskeys: list[np.ndarray] = []
    paths: list[Path] = []
    gbifid = FIRST_GBIFID
    for k, rng in enumerate(streams.for_chunks(chunks)):
        size = min(chunk_records, records - k * chunk_records)
        occ = generate_occurrences(rng, size, snapshot, tx, places, listings, gbifid)
        parts = max(_MIN_PARTS if chunks == 1 else 1, math.ceil(size / _ROWS_PER_PART))
        paths += write_parts(occ.table, snapshot_dir, min(parts, size), first=len(paths))
        merge_facts(facts, occ.facts)
        taxonkeys.append(occ.valid_taxonkeys)
        specieskeys.append(occ.valid_specieskeys)
        gbifid = occ.last_gbifid
    facts["valid_distinct_taxonkeys"] = int(np.unique(np.concatenate(taxonkeys)).size)
    # Species are accepted species (specieskey): subspecies and synonyms are not extra ones.
    facts["valid_distinct_species"] = int(np.unique(np.concatenate(specieskeys)).size)
    return facts, paths
