"""Where each species lives: contiguous ranges on the real map, and the county draw per record.

Real biota differ by region: Alaska's and Hawaii's species are largely not the lower 48's,
a species occupies neighbouring counties rather than a scatter, and records pile up in a few
species and a few counties. Here every accepted species gets a home region (most the lower
48, some Alaska, some Hawaii, a few boreal ones Alaska and the lower 48) and, in each region
it lives in, one disk on the map: the region's counties whose centre (the mean of the
county's pool points) lies within a radius of a centre county, the radius log-uniform so
range sizes are long-tailed, from one county to most of a region. A species on the US-RIIS
list also lives, with a heavier share of its records, in each region where it is listed:
introduced species are recorded where they were introduced. Subspecies, varieties and
synonym-named records of a species share its range.

A record's county is drawn from its species' range, each county weighted by a lognormal
"recording effort" (a few counties with many observers, many with few) and falling off from
the range's centre, so counts per county are long-tailed too. All draws are vectorized: the
ranges are one array of (species, county, cumulative probability), and a record's county is
one `searchsorted` of its species index plus a uniform number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bisonflow.sample.counties import AK, HI, L48, Counties

#: Home regions of the accepted species: (regions, share). Mostly disjoint: 6% of species
#: are Alaska's, 7% Hawaii's, 3% boreal ones in both Alaska and the lower 48.
_HOMES: tuple[tuple[tuple[int, ...], float], ...] = (
    ((L48,), 0.84),
    ((AK,), 0.06),
    ((HI,), 0.07),
    ((AK, L48), 0.03),
)
#: Range radius (km), log-uniform between these, per region.
_RADIUS_KM = {L48: (60.0, 2500.0), AK: (100.0, 1500.0), HI: (20.0, 350.0)}
#: Relative share of a species' records in a region where it is listed, against 1 at home.
_LISTED_WEIGHT = 3.0
#: Spread of the county recording effort (lognormal sigma).
_EFFORT_SIGMA = 1.2
_EARTH_KM = 6371.0


@dataclass(frozen=True)
class Ranges:
    """Per species (index into `species_keys`) its range: counties and their probabilities.

    Entries of species s are [offsets[s], offsets[s + 1]); `cumulative` runs from s to s + 1
    over them, so one sorted array serves every species' draw.
    """

    species_keys: np.ndarray
    offsets: np.ndarray
    county: np.ndarray
    cumulative: np.ndarray

    def draw(self, rng: np.random.Generator, species: np.ndarray) -> np.ndarray:
        """A county for each record of the given species (index into species_keys)."""
        at = np.searchsorted(self.cumulative, species + rng.random(species.size), side="right")
        return self.county[np.clip(at, self.offsets[species], self.offsets[species + 1] - 1)]

    def regions_of(self, counties: Counties, species: int) -> set[int]:
        return set(counties.region[self.county[self.offsets[species] : self.offsets[species + 1]]])


def county_centres(
    counties: Counties, lon: np.ndarray, lat: np.ndarray, county: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (lon, lat) of each county's pool points (inside it, unlike a bbox centre)."""
    n = len(counties)
    count = np.maximum(np.bincount(county, minlength=n), 1)
    # Longitudes around the antimeridian (the Aleutians) are averaged east of it.
    east = np.where(lon > 0, lon - 360.0, lon)
    return (
        np.bincount(county, weights=east, minlength=n) / count,
        np.bincount(county, weights=lat, minlength=n) / count,
    )


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)


def build_ranges(
    rng: np.random.Generator,
    counties: Counties,
    centres: tuple[np.ndarray, np.ndarray],
    species_keys: np.ndarray,
    listed_regions: dict[int, set[int]],
) -> Ranges:
    """A range for each species key; `listed_regions` maps a species key to the regions
    where the US-RIIS lists it (or one of its subspecies)."""
    xyz = _unit_vectors(*centres)
    effort = rng.lognormal(0.0, _EFFORT_SIGMA, size=len(counties))
    in_region = {r: np.flatnonzero(counties.region == r) for r in (AK, HI, L48)}
    homes = rng.choice(len(_HOMES), size=species_keys.size, p=[h[1] for h in _HOMES])
    offsets = [0]
    county_parts: list[np.ndarray] = []
    cum_parts: list[np.ndarray] = []
    for s, key in enumerate(species_keys.tolist()):
        home = _HOMES[homes[s]][0]
        listed = listed_regions.get(key, set())
        regions = sorted(set(home) | listed)
        chosen: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for region in regions:
            pool = in_region[region]
            centre = pool[int(rng.choice(pool.size, p=effort[pool] / effort[pool].sum()))]
            low, high = _RADIUS_KM[region]
            radius = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            # Chord length in km: within 0.5% of the great-circle distance below 2,500 km.
            d = _EARTH_KM * np.linalg.norm(xyz[pool] - xyz[centre], axis=1)
            near = d <= radius
            w = effort[pool][near] * np.exp(-2.0 * d[near] / radius)
            share = _LISTED_WEIGHT if region in listed else 1.0
            chosen.append(pool[near])
            weights.append(share * w / w.sum())
        county = np.concatenate(chosen)
        w = np.concatenate(weights)
        county_parts.append(county)
        cum_parts.append(s + np.cumsum(w) / w.sum())
        offsets.append(offsets[-1] + county.size)
    return Ranges(
        species_keys=species_keys,
        offsets=np.array(offsets, dtype=np.int64),
        county=np.concatenate(county_parts),
        cumulative=np.concatenate(cum_parts),
    )
