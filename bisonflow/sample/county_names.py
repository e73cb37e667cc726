"""NAMELSAD and LSAD of the real counties: the two census fields us-atlas does not carry.

The census county file the workflow loads (cb_YYYY_us_county_500k) names each county twice:
NAME ("Baltimore") and NAMELSAD, the name with its legal/statistical area description
("Baltimore city", "Aleutians East Borough", "Ponce Municipio"), plus LSAD, the code of that
description. The vendored 1:10m layer (npm us-atlas 3.0.1) keeps only NAME, so both come
from `data/us_county_2017_lsad.csv`, written once by `derive` from a real source:

- NAMELSAD: the county names with their descriptions as the Census Bureau publishes them,
  redistributed by the PyPI package addfips 0.4.2 (`addfips/data/counties_2015.csv`, columns
  statefp, countyfp, name; the 2015 file has the counties of the 2017 geography, Kusilvak and
  Oglala Lakota included). addfips also lists other names for some GEOIDs (aliases such as
  "Brooklyn Borough" for Kings County, "Washington" for DC, the pre-2015 "Wade Hampton
  Census Area"), so the row used is the last one whose name is NAME followed by a
  description (compared without accents, spaces and punctuation: addfips writes "Rincon",
  the census "Rincón"); the
  description is appended to the census NAME as written ("LaSalle Parish" where addfips
  writes "La Salle Parish"). addfips is GPL-3.0 and is not a
  dependency: only facts (names) were taken, and `derive` documents how.
- LSAD: the census code of the description's last words (Census Bureau, "Legal/Statistical
  Area Description Codes and Definitions"): City and Borough 03, Borough 04, Census Area 05,
  County 06, District 07, Island 10, Municipality 12, Municipio 13, Parish 15, city 25; a
  name with no description (Carson City, the District of Columbia, Guam) gets 00.
  Known difference: addfips writes the Virgin Islands' as "St. Croix Island District" where
  the census cartographic files write "St. Croix Island" (LSAD 10); the sample keeps addfips.
"""

from __future__ import annotations

import csv
import re
import sys
import unicodedata
from pathlib import Path

NAMES_CSV = Path(__file__).parent / "data" / "us_county_2017_lsad.csv"

#: Description -> census LSAD code, longest first so "City and Borough" wins over "Borough".
LSAD_CODES: tuple[tuple[str, str], ...] = (
    ("City and Borough", "03"),
    ("Census Area", "05"),
    ("Municipality", "12"),
    ("Municipio", "13"),
    ("Borough", "04"),
    ("District", "07"),
    ("County", "06"),
    ("Parish", "15"),
    ("Island", "10"),
    ("city", "25"),
)
NO_DESCRIPTION = "00"


def lsad_code(description: str) -> str:
    """The LSAD code of a county's description ("" for none)."""
    for words, code in LSAD_CODES:
        if description.endswith(words):
            return code
    return NO_DESCRIPTION


def _compact(text: str) -> str:
    """Letters and digits only, accents dropped, case folded: "La Salle" = "LaSalle"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^0-9a-z]", "", ascii_text.casefold())


def description(name: str, candidates: list[str]) -> str:
    """The description addfips gives NAME: of the candidate names for its GEOID, the last
    whose leading words are NAME (compared by `_compact`); the words after them. Raises if
    no candidate starts with NAME."""
    found = None
    for candidate in candidates:
        words = candidate.split(" ")
        for k in range(1, len(words) + 1):
            if _compact(" ".join(words[:k])) == _compact(name):
                found = " ".join(words[k:])
                break
    if found is None:
        raise ValueError(f"no name for {name!r} among {candidates}")
    return found


def derive(addfips_csv: Path, counties: list[tuple[str, str]], out: Path = NAMES_CSV) -> None:
    """Write GEOID, NAMELSAD, LSAD for each (GEOID, NAME) from addfips' county names."""
    names: dict[str, list[str]] = {}
    with addfips_csv.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            names.setdefault(row["statefp"] + row["countyfp"], []).append(row["name"])
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("GEOID", "NAMELSAD", "LSAD"))
        for geoid, name in sorted(counties):
            words = description(name, names[geoid])
            writer.writerow((geoid, f"{name} {words}".strip(), lsad_code(words)))


def read_names(path: Path = NAMES_CSV) -> dict[str, tuple[str, str]]:
    """GEOID -> (NAMELSAD, LSAD), as `derive` wrote them."""
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["GEOID"]: (r["NAMELSAD"], r["LSAD"]) for r in csv.DictReader(fh)}


if __name__ == "__main__":  # python -m bisonflow.sample.county_names ADDFIPS_COUNTIES_2015_CSV
    import duckdb

    from bisonflow.duckdb_ext import load_spatial
    from bisonflow.sample.counties import COUNTY_SOURCE

    con = duckdb.connect()
    load_spatial(con)
    rows = con.execute(f"SELECT GEOID, NAME FROM ST_Read('{COUNTY_SOURCE.as_posix()}')").fetchall()
    derive(Path(sys.argv[1]), rows)
