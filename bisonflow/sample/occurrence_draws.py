"""What each generated GBIF record is, drawn from one random stream, stage by stage.

bisonflow.sample.occurrences writes the records from these draws. Each stage draws its share
of the stream before the next starts, in the order generate_occurrences calls them, so a sample
is the same for the same seed byte for byte: a stage moved, or a draw added in the middle,
changes every record after it. Every draw is an array for all records at once (a quarter of a
million rows in well under a few seconds), never a loop over records.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from bisonflow.sample.counties import Counties
from bisonflow.sample.geography import PointPool
from bisonflow.sample.listings import Listings
from bisonflow.sample.publishers import DATASETS, GEO_ISSUES, OTHER_ISSUES
from bisonflow.sample.ranges import Ranges
from bisonflow.sample.taxon_arrays import TaxonArrays
from bisonflow.sql.subset_rules import DEFAULT_SUBSET_RULES

#: Why a record is not in the BISON subset; 0 means it is kept. A record whose basisOfRecord
#: the subset leaves out is "excluded_basis_of_record" (so _BASIS_SHARE sets that share); the
#: others draw one kind with _KIND_SHARE.
DROP_KINDS: tuple[str, ...] = (
    "kept",
    "non_us_country",
    "null_coordinates",
    "higher_rank",
    "absent",
    "excluded_basis_of_record",
)
_KIND_SHARE = (0.925, 0.02, 0.02, 0.02, 0.015)
_EXCLUDED_BASIS_KIND = DROP_KINDS.index("excluded_basis_of_record")
#: Share of records of a taxon some US-RIIS listing marks (in some region: where, is its
#: range's business, `ranges`).
RIIS_SHARE = 0.2
#: Share of the records in a county that holds AIANNH areas moved to a point inside one of
#: them. Real AIANNH areas cover a few percent of the lower 48 and much of Alaska; with the
#: county pool points that fall into areas anyway, about 8% of records are in one.
AIANNH_SHARE = 0.12
#: Share of records published under a synonym, of taxa that have one.
SYNONYM_SHARE = 0.3
#: Share of records published under a name the US-RIIS lists as a synonym: by abundance
#: alone a small sample may have none, and every way of matching should have records.
LISTED_SYNONYM_SHARE = 0.003
#: Of the records outside the US, the share in Puerto Rico and the island territories
#: (GBIF's countrycode PR, VI, GU, AS, MP), the rest in Canada and Mexico.
TERRITORY_SHARE = 0.5
#: Share of each GBIF basisOfRecord among the sample's records (made up, observations first
#: as in GBIF's US data). Whether a value is kept is the subset's rule, never this table's:
#: with BISON's rules MATERIAL_SAMPLE, MACHINE_OBSERVATION, MATERIAL_CITATION, fossils and
#: living specimens are generated and dropped.
_BASIS_SHARE = {
    "HUMAN_OBSERVATION": 0.69,
    "OBSERVATION": 0.03,
    "OCCURRENCE": 0.05,
    "PRESERVED_SPECIMEN": 0.145,
    "MATERIAL_SAMPLE": 0.03,
    "MACHINE_OBSERVATION": 0.03,
    "MATERIAL_CITATION": 0.01,
    "FOSSIL_SPECIMEN": 0.0075,
    "LIVING_SPECIMEN": 0.0075,
}
BASIS = tuple(_BASIS_SHARE)
_BASIS_KEPT = np.array([b in DEFAULT_SUBSET_RULES.basis_of_record for b in BASIS])
_OBSERVATION_BASIS = frozenset(
    {"HUMAN_OBSERVATION", "OBSERVATION", "OCCURRENCE", "MACHINE_OBSERVATION"}
)

#: Outside the US: (countrycode, stateprovince, (west, south, east, north)); no box touches a
#: US county (the border is at 49 N in the west, 31.3 N and beyond in the south-west).
ABROAD = (
    ("CA", "British Columbia", (-123.5, 50.0, -116.0, 54.0)),
    ("CA", "Alberta", (-116.0, 50.0, -110.0, 55.0)),
    ("MX", "Sonora", (-112.0, 27.0, -109.5, 31.0)),
    ("MX", "Chihuahua", (-108.5, 26.0, -106.8, 30.0)),
)


@dataclass(frozen=True)
class Places:
    """Everything a chunk needs to place records, computed once per sample."""

    counties: Counties
    points: PointPool  # per county
    aiannh_points: PointPool  # inside AIANNH areas, per county
    aiannh_geoid: list[str]
    ranges: Ranges
    territory_weight: np.ndarray  # per county: > 0 for Puerto Rico and the island territories


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _weighted(
    rng: np.random.Generator, candidates: np.ndarray, w: np.ndarray, size: int
) -> np.ndarray:
    """`size` draws from `candidates`, each with probability proportional to w[candidate]."""
    p = w[candidates]
    return rng.choice(candidates, size=size, p=p / p.sum())


def draw_abundance(rng: np.random.Generator, taxa: int) -> np.ndarray:
    """Zipf-like abundance in a random order: a few common taxa, a long tail of rare ones."""
    abundance = np.empty(taxa)
    abundance[rng.permutation(taxa)] = 1.0 / (np.arange(taxa) + 5.0) ** 0.9
    return abundance


class Kinds(NamedTuple):
    """What each record is: its basisOfRecord, and why (if at all) the subset drops it."""

    basis_idx: np.ndarray  # index into BASIS
    kind: np.ndarray  # index into DROP_KINDS
    foreign: np.ndarray  # outside the US: in a territory, or abroad
    territory: np.ndarray
    abroad: np.ndarray


def draw_kinds(rng: np.random.Generator, n: int) -> Kinds:
    basis_idx = rng.choice(len(BASIS), size=n, p=list(_BASIS_SHARE.values()))
    kind = rng.choice(len(_KIND_SHARE), size=n, p=_KIND_SHARE)
    kind[~_BASIS_KEPT[basis_idx]] = _EXCLUDED_BASIS_KIND
    foreign = kind == 1
    territory = foreign & (rng.random(n) < TERRITORY_SHARE)
    return Kinds(basis_idx, kind, foreign, territory, foreign & ~territory)


class Taxa(NamedTuple):
    """Which taxon each record names, and how: under a synonym, or only to genus or family."""

    taxon: np.ndarray  # index into the TaxonArrays
    fam: np.ndarray  # the taxon's family
    higher: np.ndarray  # named only above species (the "higher_rank" drop kind)
    to_family: np.ndarray
    to_genus: np.ndarray
    use_synonym: np.ndarray


def draw_taxa(
    rng: np.random.Generator,
    n: int,
    tx: TaxonArrays,
    listings: Listings,
    kinds: Kinds,
    abundance: np.ndarray,
) -> Taxa:
    marked = listings.listed_anywhere(tx.species_key, tx.key)
    wants_riis = rng.random(n) < RIIS_SHARE
    taxon = np.empty(n, dtype=np.int64)
    taxon[wants_riis] = _weighted(rng, np.flatnonzero(marked), abundance, int(wants_riis.sum()))
    others = ~wants_riis
    taxon[others] = _weighted(rng, np.flatnonzero(~marked), abundance, int(others.sum()))
    named_as_listed = rng.random(n) < LISTED_SYNONYM_SHARE
    listed_synonym = np.flatnonzero(np.isin(tx.synonym_key, listings.synonym_usage_keys))
    taxon[named_as_listed] = rng.choice(listed_synonym, size=int(named_as_listed.sum()))
    higher = kinds.kind == 3
    to_family = higher & (rng.random(n) < 0.3)
    to_genus = higher & ~to_family
    use_synonym = tx.has_synonym[taxon] & (rng.random(n) < SYNONYM_SHARE)
    use_synonym = (use_synonym | named_as_listed) & ~higher
    return Taxa(taxon, tx.family[taxon], higher, to_family, to_genus, use_synonym)


class Where(NamedTuple):
    """Where each record is: a county's point (or an AIANNH area's), a territory, abroad."""

    county: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    area: np.ndarray  # the AIANNH area, -1 for none
    region: np.ndarray  # index into RIIS_REGIONS, -1 abroad
    state_idx: np.ndarray  # into the counties' state names, then ABROAD's


def draw_places(
    rng: np.random.Generator, n: int, places: Places, kinds: Kinds, species_key: np.ndarray
) -> Where:
    counties, abroad = places.counties, kinds.abroad
    species = np.searchsorted(places.ranges.species_keys, species_key)
    county = places.ranges.draw(rng, species)
    w = places.territory_weight
    county[kinds.territory] = rng.choice(w.size, size=int(kinds.territory.sum()), p=w / w.sum())
    lon, lat, area = _pick(rng, places.points, county)
    in_area = places.aiannh_points.counts()[county] > 0
    move = ~kinds.foreign & (rng.random(n) < AIANNH_SHARE) & in_area
    lon[move], lat[move], area[move] = _pick(rng, places.aiannh_points, county[move])
    which = rng.integers(0, len(ABROAD), size=n)
    boxes = np.array([a[2] for a in ABROAD])
    lon = np.where(abroad, np.round(rng.uniform(boxes[which, 0], boxes[which, 2]), 5), lon)
    lat = np.where(abroad, np.round(rng.uniform(boxes[which, 1], boxes[which, 3]), 5), lat)
    area[abroad] = -1
    region = np.where(abroad, -1, counties.region[county])
    state_idx = np.where(abroad, len(counties) + which, county)
    return Where(county, lon, lat, area, region, state_idx)


class Sources(NamedTuple):
    """Identifiers and provenance: GBIF's id, the dataset and its publisher, the catalogue."""

    gbifid: np.ndarray
    is_obs: np.ndarray  # an observation (else a specimen): which datasets publish it
    dataset: np.ndarray  # index into DATASETS
    dataset_keys: list[str]
    org_keys: list[str]
    catalog_str: pa.Array


def draw_sources(
    rng: np.random.Generator, n: int, basis_idx: np.ndarray, first_gbifid: int
) -> Sources:
    gbifid = first_gbifid + np.cumsum(rng.integers(1, 4000, size=n))
    observation_basis = np.array([b in _OBSERVATION_BASIS for b in BASIS])
    is_obs = observation_basis[basis_idx]
    ds_w = np.array([d.weight for d in DATASETS])
    obs_ds = np.flatnonzero([d.observation for d in DATASETS])
    spec_ds = np.flatnonzero([not d.observation for d in DATASETS])
    dataset = np.where(is_obs, _weighted(rng, obs_ds, ds_w, n), _weighted(rng, spec_ds, ds_w, n))
    dataset_keys = [_uuid(rng) for _ in DATASETS]
    org_keys = [_uuid(rng) for _ in DATASETS]
    catalog = (10_000_000 + np.arange(n, dtype=np.int64) * 3 + rng.integers(0, 3, size=n)).astype(
        np.int64
    )
    catalog_str = pa.array(catalog).cast(pa.string())
    return Sources(gbifid, is_obs, dataset, dataset_keys, org_keys, catalog_str)


class Dates(NamedTuple):
    """When: the event (mostly the last few years), its identification, GBIF's interpretation."""

    event: np.ndarray
    no_date: np.ndarray
    years: np.ndarray
    months: np.ndarray
    days: np.ndarray
    identified: np.ndarray
    no_ident: np.ndarray
    interpreted: np.ndarray


def draw_dates(rng: np.random.Generator, n: int, snapshot: dt.date) -> Dates:
    snap = np.datetime64(snapshot.isoformat(), "D")
    max_days = (snapshot - dt.date(1900, 1, 1)).days
    recent = rng.random(n) < 0.85
    back = np.where(recent, rng.exponential(1800.0, size=n), rng.uniform(0, max_days, size=n))
    back = np.clip(back.astype(np.int64), 1, max_days)
    day_date = snap - back.astype("timedelta64[D]")
    has_time = rng.random(n) < 0.5
    seconds = np.where(has_time, rng.integers(6 * 3600, 20 * 3600, size=n), 0)
    event = day_date.astype("datetime64[us]") + (seconds * 1_000_000).astype("timedelta64[us]")
    no_date = rng.random(n) < 0.01
    years = day_date.astype("datetime64[Y]").astype(np.int64) + 1970
    months = day_date.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (day_date - day_date.astype("datetime64[M]")).astype(np.int64) + 1
    ident_lag = rng.integers(0, 400, size=n).astype("timedelta64[D]")
    identified = np.minimum(day_date + ident_lag, snap - np.timedelta64(1, "D"))
    no_ident = no_date | (rng.random(n) < 0.45)
    interpreted = snap.astype("datetime64[us]") - (
        rng.integers(3600, 40 * 86400, size=n) * 1_000_000
    ).astype("timedelta64[us]")
    return Dates(event, no_date, years, months, days, identified, no_ident, interpreted)


class MultiValued(NamedTuple):
    """How many items each record's list fields hold, and which issues it has."""

    n_rec: np.ndarray
    n_ident: np.ndarray
    media_counts: np.ndarray
    type_counts: np.ndarray
    n_issue: np.ndarray
    issue_idx: np.ndarray


def draw_multi_valued(rng: np.random.Generator, n: int, is_obs: np.ndarray) -> MultiValued:
    n_rec = (rng.random(n) < 0.9).astype(np.int32)
    n_ident = (rng.random(n) < 0.6).astype(np.int32)
    media_counts = (is_obs & (rng.random(n) < 0.4)).astype(np.int32)
    type_counts = (~is_obs & (rng.random(n) < 0.005)).astype(np.int32)
    n_issue = rng.choice(3, size=n, p=[0.35, 0.45, 0.2]).astype(np.int32)
    first_issue = rng.integers(0, len(GEO_ISSUES), size=n)
    second_issue = len(GEO_ISSUES) + rng.integers(0, len(OTHER_ISSUES), size=n)
    issue_idx = np.stack([first_issue, second_issue], axis=1)
    issue_idx = issue_idx[np.arange(2)[None, :] < n_issue[:, None]]
    return MultiValued(n_rec, n_ident, media_counts, type_counts, n_issue, issue_idx)


class Counts(NamedTuple):
    """What was counted: none for an absence, often not said, and a specimen's number."""

    absent: np.ndarray
    specimen_number: np.ndarray
    count_values: np.ndarray
    no_count: np.ndarray


def draw_counts(rng: np.random.Generator, n: int, kinds: Kinds, is_obs: np.ndarray) -> Counts:
    absent = kinds.kind == 4
    specimen_number = ~is_obs & (rng.random(n) < 0.5)
    count_values = np.where(absent, 0, rng.geometric(0.45, size=n))
    no_count = ~absent & (rng.random(n) < 0.4)
    return Counts(absent, specimen_number, count_values, no_count)


def _pick(
    rng: np.random.Generator, pool: PointPool, county: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, AIANNH area) of a point of each county's pool, uniformly."""
    at = pool.offsets[county] + (rng.random(county.size) * pool.counts()[county]).astype(np.int64)
    return pool.lon[at], pool.lat[at], pool.area[at].copy()
